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

/// The one-line descriptions of the commands both binaries parse (`medcap`
/// runs these itself, `medcap-torch` knows them too), so that `--help`
/// says the same from either.
pub mod about {
    /// `medcap synth`.
    pub const SYNTH: &str =
        "Generate a synthetic MedICaT-format data set (figures, JSONL, ground truth).";
    /// `medcap prepare`.
    pub const PREPARE: &str = "Turn a release (MedICaT, ROCO, ROCOv2, PMC-OA, or a table of figures and captions) into clean, validated, paper-grouped splits.";
    /// `medcap score`.
    pub const SCORE: &str = "Score captions against references (BLEU, ROUGE, CIDEr-D, BERTScore, findings) and against their images (CLIPScore), with statistics; or a submission as ImageCLEFmedical Caption's evaluators score it (--suite).";
    /// `medcap label`.
    pub const LABEL: &str =
        "Label the findings of each line of a file, as the CheXpert labeller's CSV.";
    /// `medcap check-submission`.
    pub const CHECK_SUBMISSION: &str =
        "Check an ImageCLEFmedical Caption submission as that year's official evaluator does.";
}
