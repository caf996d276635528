//! Where a run starts: a fresh run directory, or the latest checkpoint of
//! an earlier run with the same configuration (the record in the run's
//! `config.json`, compared through medcap-io), with the trainer's state,
//! the optimizer's moments and the metrics log brought back to its step.

use std::path::PathBuf;

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::optim::Adam;
use crate::run::{RunDir, TrainState};

use super::checkpointing::{OPTIMIZER_FILE, STATE_FILE};

/// Opens the run directory of `config` and says where to start: `None` for
/// a fresh run (the metrics log of an earlier one removed), or the
/// checkpoint to continue from when `resume` is asked and one exists.
///
/// # Errors
/// [`TrainError::Config`] when the run already has a checkpoint and
/// `resume` is not asked; [`TrainError::ConfigFile`] when continuing with
/// another configuration; [`TrainError::Io`] for the run directory.
pub(super) fn open_run(
    config: &TrainConfig,
    resume: bool,
) -> Result<(RunDir, Option<PathBuf>), TrainError> {
    let run = RunDir::create(config.run.runs_dir.join(&config.run.name))?;
    let latest = run.latest();
    let resume_from = match (resume, latest) {
        (true, Some(dir)) => Some(dir),
        (true, None) => {
            tracing::info!(run = %run.root().display(), "no checkpoint to resume from; starting fresh");
            None
        }
        (false, Some(dir)) => {
            return Err(TrainError::Config {
                path: run.config_path(),
                reason: format!(
                    "the run directory already has a checkpoint ({}); resume it or choose another run name",
                    dir.display()
                ),
            });
        }
        (false, None) => None,
    };
    // Paths as stored in the run directory (relative to it where they lie
    // in the same tree), so a moved or copied run directory still resumes.
    let stored = config
        .stored_in(run.root())
        .map_err(|source| TrainError::Io {
            path: run.root().to_owned(),
            source,
        })?;
    medcap_io::config::pin_run_config(&run.config_path(), &stored, resume_from.is_some())?;
    if resume_from.is_none() {
        match std::fs::remove_file(run.metrics_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(TrainError::Io {
                    path: run.metrics_path(),
                    source: e,
                });
            }
            _ => {}
        }
    }

    Ok((run, resume_from))
}

/// The run directory of `config` as another rank than 0 finds it once
/// rank 0 has opened it ([`open_run`]): the checkpoint to continue from
/// when `resume` is asked. Writes nothing.
///
/// # Errors
/// [`TrainError::Io`] for the run directory.
pub(super) fn follow_run(
    config: &TrainConfig,
    resume: bool,
) -> Result<(RunDir, Option<PathBuf>), TrainError> {
    let run = RunDir::open(config.run.runs_dir.join(&config.run.name));
    let resume_from = if resume { run.latest() } else { None };
    Ok((run, resume_from))
}

/// The trainer's state at the checkpoint `dir`, with the optimizer's
/// moments loaded and, by the process that writes the run (`writer`), the
/// metrics log cut back to that step.
///
/// # Errors
/// [`TrainError::Io`] or [`TrainError::Resume`] for a missing or unreadable
/// state; the optimizer's errors for its moments.
pub(super) fn restore(
    dir: &std::path::Path,
    optimizer: &mut Adam,
    run: &RunDir,
    writer: bool,
) -> Result<TrainState, TrainError> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).map_err(|source| TrainError::Io {
        path: dir.join(STATE_FILE),
        source,
    })?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| TrainError::Resume {
        path: dir.join(STATE_FILE),
        reason: e.to_string(),
    })?;
    // Adam counts its updates; fp16 steps skipped for overflow made none.
    let updates = state.step.saturating_sub(state.overflow_steps);
    optimizer.load(&dir.join(OPTIMIZER_FILE), updates)?;
    if writer {
        run.truncate_metrics(state.step)?;
    }
    tracing::info!(step = state.step, from = %dir.display(), "resuming");
    Ok(state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(root: &std::path::Path) -> TrainConfig {
        let mut config = TrainConfig::default();
        config.data.train_csv = root.join("ft1.csv");
        config.model.base_model = root.join("base");
        config.run.runs_dir = root.join("runs");
        config.run.name = "ft1".into();
        config
    }

    /// A checkpoint as the trainer leaves one: a complete `latest`.
    fn checkpoint(run: &RunDir) {
        run.write_checkpoint("latest", |d| {
            Ok(medcap_io::write_json_atomic(
                &d.join(STATE_FILE),
                &TrainState::default(),
            )?)
        })
        .unwrap();
    }

    #[test]
    fn a_fresh_run_records_its_configuration_and_drops_an_old_metrics_log() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let (run, from) = open_run(&config, false).unwrap();
        assert_eq!(from, None);
        assert!(run.config_path().is_file());
        std::fs::write(run.metrics_path(), "{}\n").unwrap();
        let (run, from) = open_run(&config, true).unwrap();
        assert_eq!(from, None, "nothing to resume: a fresh start");
        assert!(!run.metrics_path().exists());
    }

    #[test]
    fn a_checkpoint_is_resumed_only_when_asked_and_only_with_the_same_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let (run, _) = open_run(&config, false).unwrap();
        checkpoint(&run);
        let err = open_run(&config, false).unwrap_err();
        assert!(matches!(err, TrainError::Config { .. }), "{err}");
        let (_, from) = open_run(&config, true).unwrap();
        assert_eq!(from, Some(run.checkpoint("latest")));
        let mut changed = config.clone();
        changed.optim.lr *= 2.0;
        let err = open_run(&changed, true).unwrap_err();
        assert!(
            matches!(
                err,
                TrainError::ConfigFile(medcap_io::config::ConfigError::Changed { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn restoring_a_checkpoint_without_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (run, _) = open_run(&config(dir.path()), false).unwrap();
        let mut optimizer = Adam::new(Vec::new(), &crate::config::OptimConfig::default());
        let err = restore(dir.path(), &mut optimizer, &run, true).unwrap_err();
        assert!(err.to_string().contains(STATE_FILE), "{err}");
        std::fs::write(dir.path().join(STATE_FILE), "not json").unwrap();
        let err = restore(dir.path(), &mut optimizer, &run, true).unwrap_err();
        assert!(matches!(err, TrainError::Resume { .. }), "{err}");
    }
}
