//! `medcap train`: a fine-tuning run from a configuration file, with a
//! progress bar on a terminal, log lines otherwise, and Ctrl-C writing a
//! checkpoint before exiting (rerun with `--resume` to continue).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use medcap_model::device::DeviceChoice;
use medcap_train::config::TrainConfig;
use medcap_train::trainer::{Outcome, Trainer};

use crate::train_progress::TrainBar;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run configuration (TOML or JSON; see docs/TRAINING.md).
    #[arg(long)]
    config: PathBuf,
    /// Continue the run from its latest checkpoint (starts fresh when it has none).
    #[arg(long)]
    resume: bool,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let config = TrainConfig::from_file(&args.config)?;
    let device = args.device.parse::<DeviceChoice>()?.resolve()?;
    let mut trainer = Trainer::new(config, device, args.resume).context("cannot start the run")?;
    let stop = medcap_cli::interrupt::stop_flag_on_ctrl_c(
        "finishing the current step and writing a checkpoint; continue with --resume",
    )?;
    let observer = TrainBar::new();
    let summary = trainer.run(&observer, &stop)?;
    observer.finish();
    match summary.outcome {
        Outcome::Interrupted => {
            eprintln!(
                "interrupted at step {}; continue with --resume (run directory {})",
                summary.steps,
                summary.run_dir.display()
            );
            std::process::exit(130);
        }
        Outcome::Finished | Outcome::EarlyStopped => {
            let mut out = medcap_cli::results_out::results_out();
            writeln!(
                out,
                "{} after {} steps; best validation loss {}; model: {}",
                if summary.outcome == Outcome::Finished {
                    "finished"
                } else {
                    "stopped early"
                },
                summary.steps,
                summary
                    .best_val_loss
                    .map_or("-".into(), |l| format!("{l:.4}")),
                summary.checkpoint.display()
            )?;
            out.flush()?;
            if summary.skipped_images > 0 {
                eprintln!(
                    "warning: {} training image reads failed and were skipped (see the warnings of each epoch)",
                    summary.skipped_images
                );
            }
        }
    }
    Ok(())
}
