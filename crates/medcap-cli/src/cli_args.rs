//! What the two parsers (the `medcap` front end's and `medcap-torch`'s)
//! share about reading options.

/// Lets every option that takes a value take a negative number as it is
/// typed (`--length-penalty -1.0`), in every subcommand of `cmd`: clap
/// otherwise reads `-1.0` as an unknown flag.
pub fn allow_negative_numbers(cmd: clap::Command) -> clap::Command {
    cmd.mut_subcommands(|sub| {
        sub.mut_args(|arg| {
            if arg.get_action().takes_values() {
                arg.allow_negative_numbers(true)
            } else {
                arg
            }
        })
    })
}
