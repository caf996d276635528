//! `medcap train`: a fine-tuning run from a configuration file, with a
//! progress bar on a terminal, log lines otherwise, and Ctrl-C writing a
//! checkpoint before exiting (rerun with `--resume` to continue). Under
//! `torchrun` each process is one rank of a data-parallel run; a group
//! restarted by torchrun after a failure resumes by itself.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use medcap_train::config::TrainConfig;
use medcap_train::trainer::{Outcome, Replicas, Trainer};

use crate::dist::{DistArgs, Quiet};
use crate::train_progress::TrainBar;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run configuration (TOML or JSON; see docs/TRAINING.md).
    #[arg(long)]
    config: PathBuf,
    /// Continue the run from its latest checkpoint (starts fresh when it has none).
    #[arg(long)]
    resume: bool,
    /// auto (CUDA when present), cpu, cuda or cuda:N. Under torchrun, auto
    /// and cuda mean each process's own GPU, cuda:LOCAL_RANK.
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    dist: DistArgs,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let config = TrainConfig::from_file(&args.config)?;
    let (group, device) = crate::dist::join(&args.dist, &args.device)?;
    // torchrun restarts a failed group from the start: it continues from
    // the last checkpoint.
    let restarted = group.as_ref().is_some_and(|g| g.world().restart_count > 0);
    let replicas = group.map_or_else(Replicas::single, Replicas::new);
    let leader = replicas.leader();
    let mut trainer = Trainer::with_replicas(config, device, args.resume || restarted, replicas)
        .context("cannot start the run")?;
    let stop = medcap_cli::interrupt::stop_flag_on_ctrl_c(
        "finishing the current step and writing a checkpoint; continue with --resume",
    )?;
    let summary = if leader {
        let observer = TrainBar::new();
        let summary = trainer.run(&observer, &stop)?;
        observer.finish();
        summary
    } else {
        let summary = trainer.run(&Quiet, &stop)?;
        // Rank 0 reports the run.
        return match summary.outcome {
            Outcome::Interrupted => std::process::exit(130),
            Outcome::Finished | Outcome::EarlyStopped => Ok(()),
        };
    };
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
