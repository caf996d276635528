//! `medcap train`: a fine-tuning run from a configuration file, with a
//! progress bar on a terminal, log lines otherwise, and Ctrl-C writing a
//! checkpoint before exiting (rerun with `--resume` to continue).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medcap_model::device::DeviceChoice;
use medcap_train::config::TrainConfig;
use medcap_train::run::MetricsRow;
use medcap_train::trainer::{LogObserver, Observer, Outcome, Trainer};

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

/// A bar with loss, learning rate and throughput on a terminal; log lines otherwise.
struct Bar {
    bar: ProgressBar,
    log: LogObserver,
}

impl Observer for Bar {
    fn started(&self, total: usize, done: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.log.started(total, done);
    }

    fn step(&self, step: usize, loss: f64, lr: f64) {
        self.bar.set_position(step as u64);
        self.bar.set_message(format!("loss {loss:.4}  lr {lr:.2e}"));
    }

    fn logged(&self, row: &MetricsRow) {
        if let Some(rate) = row.images_per_second {
            self.bar.set_prefix(format!("{rate:.1} img/s"));
        }
        if self.bar.is_hidden() {
            self.log.logged(row);
        }
    }

    fn validated(&self, step: usize, loss: f64, best: bool) {
        self.bar.suspend(|| self.log.validated(step, loss, best));
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let config = TrainConfig::from_file(&args.config)?;
    let device = args.device.parse::<DeviceChoice>()?.resolve()?;
    let mut trainer = Trainer::new(config, device, args.resume).context("cannot start the run")?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C means "now".
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing the current step and writing a checkpoint (Ctrl-C again to abort)");
    })
    .context("cannot install the Ctrl-C handler")?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} steps {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let observer = Bar {
        bar,
        log: LogObserver,
    };
    let summary = trainer.run(&observer, &stop)?;
    observer.bar.finish_and_clear();
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
            println!(
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
            );
            if summary.skipped_images > 0 {
                eprintln!(
                    "warning: {} training images could not be read and were skipped",
                    summary.skipped_images
                );
            }
        }
    }
    Ok(())
}
