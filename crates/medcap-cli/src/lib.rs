//! What medcap's binaries share (the `medcap` front end, `medcap-torch` and
//! the examples of `cargo run --example`): the logging setup and the exit
//! of a command ([`logging`]), the Ctrl-C stop flag that long runs poll
//! ([`interrupt`]), standard output for results ([`results_out`]), the options of a study run ([`study_args`]), and the refusal of commands that run as one process to run under `torchrun` ([`single_process`]). Support code for binaries, not a library API: it uses
//! `anyhow` and `tracing-subscriber`, which libraries do not.

pub mod cli_args;
pub mod interrupt;
pub mod logging;
pub mod results_out;
pub mod single_process;
pub mod study_args;
