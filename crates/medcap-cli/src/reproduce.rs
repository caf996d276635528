//! `medcap reproduce`: the study end to end (see medcap-study), resumable,
//! with its report in `--out`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use medcap_io::config::ConfigError;
use medcap_study::StudyError;
use medcap_study::config::StudyConfig;
use medcap_study::pipeline::Study;
use medcap_train::trainer::{Observer, Replicas};

use medcap_cli::results_out::results_out;
use medcap_cli::study_args::StudyInputs;

use crate::dist::{DistArgs, Quiet};
use crate::train_progress::TrainBar;

#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Study configuration (TOML or JSON); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output directory (data, runs, evaluation, report).
    #[arg(long, default_value = "medcap-out")]
    out: PathBuf,
    #[command(flatten)]
    inputs: StudyInputs,
    /// Start over instead of continuing from the first unfinished stage.
    #[arg(long)]
    fresh: bool,
    /// Seed of everything random (overrides the configuration's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Exit with an error unless the run meets the reproduction targets
    /// (embedded synthetic data only; see README).
    #[arg(long)]
    check_targets: bool,
    #[command(flatten)]
    dist: DistArgs,
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(_) if args.inputs.reduced => {
            bail!("--reduced is a configuration of its own; drop it or --config")
        }
        Some(path) => StudyConfig::from_file(path)?,
        None if args.inputs.reduced => StudyConfig::reduced(),
        None => StudyConfig::default(),
    };
    if args.inputs.medicat.is_some() {
        config.medicat.clone_from(&args.inputs.medicat);
    }
    if args.inputs.base_model.is_some() {
        config.base_model.clone_from(&args.inputs.base_model);
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.check_targets && config.medicat.is_some() {
        bail!("--check-targets applies to the embedded synthetic data only (drop --medicat)");
    }
    let (group, device) = crate::dist::join(&args.dist, &args.inputs.device)?;
    let replicas = group.map_or_else(Replicas::single, Replicas::new);
    let leader = replicas.leader();
    let stop = medcap_cli::interrupt::stop_flag_on_ctrl_c(
        "checkpointing; rerun the same command to continue",
    )?;
    let bar = TrainBar::new();
    // Under torchrun rank 0 shows the progress and prints the table.
    let observer: &dyn Observer = if leader { &bar } else { &Quiet };
    let study = match Study::with_replicas(
        config, &args.out, device, args.fresh, observer, &stop, replicas,
    ) {
        Err(e @ StudyError::Config(ConfigError::Changed { .. })) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot continue the study in {}: add --fresh to start it over there, or \
                     choose another --out",
                    args.out.display()
                )
            });
        }
        other => {
            other.with_context(|| format!("cannot start the study in {}", args.out.display()))?
        }
    };
    let outcome = study.run().with_context(|| {
        format!(
            "the study in {} stopped; rerun the same command to continue from where it \
             stopped (add --fresh to start over)",
            args.out.display()
        )
    });
    bar.finish();
    let outcome = outcome?;
    if !leader {
        return Ok(());
    }
    let table = std::fs::read_to_string(outcome.report_dir.join("table1.md"))
        .with_context(|| format!("cannot read {}", outcome.report_dir.display()))?;
    let mut out = results_out();
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "report: {}",
        outcome.report_dir.join("index.html").display()
    )?;
    out.flush()?;
    if args.check_targets {
        let missed: Vec<String> = outcome
            .data
            .targets
            .iter()
            .filter(|t| t.failed())
            .map(|t| format!("  {}: measured {}", t.requirement, t.measured))
            .collect();
        if !missed.is_empty() {
            bail!(
                "the run misses {} reproduction target(s):\n{}",
                missed.len(),
                missed.join("\n")
            );
        }
        writeln!(out, "every required reproduction target met")?;
        out.flush()?;
    }
    Ok(())
}
