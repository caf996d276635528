//! Shared by `finetune_ft1` and `finetune_ft2`: the study's data and base
//! stages, then one fine-tuning, in a run directory of the caller's choice.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use medcap_cli::study_args::StudyInputs;
use medcap_model::device::DeviceChoice;
use medcap_study::config::StudyConfig;
use medcap_study::pipeline::Study;
use medcap_train::trainer::LogObserver;

#[derive(Debug, Parser)]
pub struct Args {
    /// Directory for the data, the base model and the run (`runs/<ft1|ft2>`).
    #[arg(long, default_value = "medcap-examples-out")]
    out: PathBuf,
    #[command(flatten)]
    inputs: StudyInputs,
}

/// Runs the data and base stages (once), then `which` ("ft1" or "ft2").
pub fn main_for(which: &'static str) -> Result<()> {
    medcap_cli::logging::init();
    let args = Args::parse();
    let config = StudyConfig {
        medicat: args.inputs.medicat,
        base_model: args.inputs.base_model,
        ..if args.inputs.reduced {
            StudyConfig::reduced()
        } else {
            StudyConfig::default()
        }
    };
    let device = args.inputs.device.parse::<DeviceChoice>()?.resolve()?;
    let stop = medcap_cli::interrupt::stop_flag_on_ctrl_c(
        "checkpointing; rerun the same command to continue",
    )?;
    let study = Study::new(config, &args.out, device, false, &LogObserver, &stop)
        .with_context(|| format!("cannot use {}", args.out.display()))?;
    let stopped = || {
        format!(
            "stopped; rerun the same command to continue where it stopped (output in {})",
            args.out.display()
        )
    };
    let prepared = study.data_stage().with_context(stopped)?;
    let base = study.base_stage(&prepared).with_context(stopped)?;
    let model = study
        .fine_tune_stage(which, &base, &prepared)
        .with_context(stopped)?;
    // Through the CLI's results writer: a full standard output is an error
    // that names it, not a panic.
    let mut out = medcap_cli::results_out::results_out();
    writeln!(out, "{which}: fine-tuned model in {}", model.display())?;
    writeln!(
        out,
        "run directory (config, metrics.jsonl, loss.svg, checkpoints): {}",
        args.out.join("runs").join(which).display()
    )?;
    out.flush()?;
    Ok(())
}
