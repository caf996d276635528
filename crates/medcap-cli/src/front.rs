//! `medcap`, the command users type: a front end that runs the commands
//! needing no libtorch itself (synth, prepare, label, check-submission,
//! and score without BERTScore or CLIPScore) and replaces itself (`exec`) with `medcap-torch`, installed
//! beside it, for the others. libtorch is linked only into `medcap-torch`,
//! so `medcap score --no-bertscore` starts in milliseconds and its memory
//! is its data's, not libtorch's several hundred megabytes.
#![allow(clippy::print_stdout)]

mod data;
mod imageclef;
mod label;
mod progress;
mod score;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use medcap_cli::cli_args::about;
use medcap_cli::logging;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// The commands the front end runs; anything else goes to `medcap-torch`,
/// whose parser knows every command (and prints the full `--help`).
#[derive(Debug, Parser)]
#[command(name = "medcap", disable_help_subcommand = true)]
struct Front {
    #[command(subcommand)]
    command: FrontCommand,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
enum FrontCommand {
    #[command(about = about::SYNTH)]
    Synth(data::SynthArgs),
    #[command(about = about::PREPARE)]
    Prepare(data::PrepareArgs),
    #[command(about = about::SCORE)]
    Score(score::ScoreArgs),
    #[command(about = about::LABEL)]
    Label(label::LabelArgs),
    #[command(about = about::CHECK_SUBMISSION)]
    CheckSubmission(imageclef::CheckSubmissionArgs),
    /// Every other command, forwarded whole (from argv) to medcap-torch.
    #[command(external_subcommand)]
    Other(#[expect(dead_code, reason = "forwarded from argv, not from here")] Vec<OsString>),
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Global flags (--help, --version) and no command at all: the full parser's answer.
    let first = argv.get(1).and_then(|a| a.to_str());
    if first.is_none_or(|a| a.starts_with('-')) {
        return torch(&argv);
    }
    let parsed = medcap_cli::cli_args::allow_negative_numbers(Front::command())
        .try_get_matches_from(&argv)
        .and_then(|m| Front::from_arg_matches(&m));
    let command = match parsed {
        Ok(front) => front.command,
        // `medcap score --help` and mistakes in the front end's commands.
        Err(e) => e.exit(),
    };
    match command {
        // ImageCLEF's suites need libtorch only for a model component.
        FrontCommand::Score(args)
            if args.clip_model.is_none()
                && (args.no_bertscore
                    || (args.imageclef.suite.is_some() && !args.suite_needs_models())) =>
        {
            here("score", || score::run(&args, None, None))
        }
        FrontCommand::Score(_) | FrontCommand::Other(_) => torch(&argv),
        FrontCommand::Synth(args) => here("synth", || data::synth(args)),
        FrontCommand::Prepare(args) => here("prepare", || data::prepare_command(args)),
        FrontCommand::Label(args) => here("label", || label::run(&args)),
        FrontCommand::CheckSubmission(args) => here("check-submission", || imageclef::check(&args)),
    }
}

/// Runs a command in this process.
fn here(name: &str, command: impl FnOnce() -> Result<()>) -> ExitCode {
    logging::init();
    logging::exit(medcap_cli::single_process::require(name).and_then(|()| command()))
}

/// Runs `medcap-torch` with the same arguments, in this process's place.
fn torch(argv: &[OsString]) -> ExitCode {
    let run = || -> Result<ExitCode> {
        let path = torch_path()?;
        let mut command = std::process::Command::new(&path);
        command.args(argv.iter().skip(1));
        exec(command).with_context(|| {
            format!(
                "cannot run {}: medcap runs its libtorch commands (caption, itm, train, \
                 reproduce, info, score with BERTScore) in medcap-torch, which \
                 `cargo install --path crates/medcap-cli` installs and \
                 `cargo build -p medcap-cli` builds beside medcap",
                path.display()
            )
        })
    };
    run().unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::FAILURE
    })
}

/// `medcap-torch` beside this executable.
fn torch_path() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the medcap executable's path")?;
    Ok(exe.with_file_name(format!("medcap-torch{}", std::env::consts::EXE_SUFFIX)))
}

/// Replaces this process (Unix); elsewhere waits for the child and passes
/// its exit status on.
#[cfg(unix)]
fn exec(mut command: std::process::Command) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    // exec returns only on failure.
    Err(command.exec().into())
}

#[cfg(not(unix))]
fn exec(mut command: std::process::Command) -> Result<ExitCode> {
    let status = command.status()?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
