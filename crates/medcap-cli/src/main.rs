//! `medcap-torch`: the `medcap` commands that run libtorch (caption, itm,
//! train, reproduce, info, score with BERTScore), and every other command
//! too, under one parser. Users type `medcap`: its front end (`front.rs`)
//! runs the libtorch-free commands itself and replaces itself with this
//! binary for the rest, so that scoring text metrics, preparing data and
//! labelling findings never load libtorch (hundreds of megabytes and, from
//! a cold disk, a long wait).
#![allow(clippy::print_stdout)]

mod caption;
mod data;
mod dist;
mod imageclef;
mod label;
mod progress;
mod reproduce;
mod score;
mod score_bert;
mod train;
mod train_progress;

use std::process::ExitCode;

use medcap_cli::logging;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use medcap_cli::cli_args::about;
use medcap_model::device::runtime_info;

/// Fine-tune and evaluate BLIP image captioning on medical figures.
#[derive(Debug, Parser)]
#[command(name = "medcap", bin_name = "medcap", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
enum Command {
    #[command(about = about::SYNTH)]
    Synth(data::SynthArgs),
    #[command(about = about::PREPARE)]
    Prepare(data::PrepareArgs),
    #[command(about = about::SCORE)]
    Score(score::ScoreArgs),
    /// Caption images with a BLIP checkpoint (greedy, beam search or sampling).
    Caption(caption::CaptionArgs),
    /// Image-text match (ITM probability, ITC similarity) with a BLIP retrieval checkpoint.
    Itm(caption::ItmArgs),
    /// Fine-tune BLIP from a run configuration (checkpoints, resume, validation, plots).
    Train(train::TrainArgs),
    /// Rerun the study end to end: data, base model, FT-1, FT-2, evaluation, report.
    Reproduce(reproduce::ReproduceArgs),
    #[command(about = about::LABEL)]
    Label(label::LabelArgs),
    #[command(about = about::CHECK_SUBMISSION)]
    CheckSubmission(imageclef::CheckSubmissionArgs),
    /// Show what the linked libtorch sees: version, CUDA, threads.
    Info,
}

fn main() -> ExitCode {
    // Under torchrun, rank 0 tells the story; the others say only warnings
    // and errors, and say which rank they are.
    let rank = dist::rank_from_env().map(|(rank, _)| rank);
    logging::init_with_default(if rank.is_some_and(|r| r > 0) {
        "warn"
    } else {
        "info"
    });
    let _rank_span = rank.map(|rank| tracing::error_span!("rank", rank).entered());
    let matches = medcap_cli::cli_args::allow_negative_numbers(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    logging::exit_as(rank, run(cli))
}

fn run(cli: Cli) -> Result<()> {
    let one_process = match &cli.command {
        Command::Synth(_) => Some("synth"),
        Command::Prepare(_) => Some("prepare"),
        Command::Score(_) => Some("score"),
        Command::Label(_) => Some("label"),
        Command::CheckSubmission(_) => Some("check-submission"),
        Command::Caption(_)
        | Command::Itm(_)
        | Command::Train(_)
        | Command::Reproduce(_)
        | Command::Info => None,
    };
    if let Some(name) = one_process {
        medcap_cli::single_process::require(name)?;
    }
    match cli.command {
        Command::Synth(args) => data::synth(args),
        Command::Prepare(args) => data::prepare_command(args),
        // The ImageCLEF suites load only the model components given.
        Command::Score(args) if args.imageclef.suite.is_some() => {
            let models = score_bert::suite_models(&args)?;
            score::run_suite(&args, &models.as_models())
        }
        Command::Score(args) => {
            let bert = score_bert::bertscore_encoder(&args)?;
            let clip = score_bert::clip_scorer(&args)?;
            score::run(
                &args,
                bert.as_ref().map(|(e, b)| (e as _, *b)),
                clip.as_ref().map(|c| c as _),
            )
        }
        Command::Label(args) => label::run(&args),
        Command::CheckSubmission(args) => imageclef::check(&args),
        Command::Caption(args) => caption::caption(&args),
        Command::Itm(args) => caption::itm(&args),
        Command::Train(args) => train::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Info => {
            use std::io::Write;
            let info = runtime_info();
            let mut out = medcap_cli::results_out::results_out();
            writeln!(out, "libtorch:       {}", info.torch_version)?;
            writeln!(out, "CUDA available: {}", info.cuda_available)?;
            writeln!(out, "CUDA devices:   {}", info.cuda_devices)?;
            writeln!(out, "cuDNN:          {}", info.cudnn_available)?;
            writeln!(out, "CPU threads:    {}", info.cpu_threads)?;
            out.flush()?;
            Ok(())
        }
    }
}
