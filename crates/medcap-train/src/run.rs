//! The run directory `<runs_dir>/<name>/`: the resolved configuration, the
//! metrics log, the loss plot and the checkpoints (`checkpoints/latest`,
//! `checkpoints/best`), each written to a temporary directory and swapped
//! in by renames so that a crash or a full disk never leaves a broken one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Where the trainer stands: everything besides weights and moments that
/// resuming needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: usize,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Micro-batches of the current epoch already consumed.
    pub batch_in_epoch: usize,
    /// Best validation loss so far.
    pub best_val_loss: Option<f64>,
    /// Validations since the best one.
    pub evals_without_improvement: usize,
    /// Training images skipped because they could not be read.
    pub skipped_images: usize,
    /// The run ended (all steps done or early stopping).
    pub finished: bool,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Optimizer step.
    pub step: usize,
    /// Epoch (fractional: how far through the data).
    pub epoch: f64,
    /// Mean training loss since the previous row.
    pub train_loss: Option<f64>,
    /// Validation loss, on rows where validation ran.
    pub val_loss: Option<f64>,
    /// Learning rate of the step.
    pub lr: f64,
    /// Training images per second since the previous row.
    pub images_per_second: Option<f64>,
}

/// Paths of one run.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

impl RunDir {
    /// `<runs_dir>/<name>`, created if needed.
    pub fn create(root: PathBuf) -> Result<Self, TrainError> {
        std::fs::create_dir_all(root.join("checkpoints")).map_err(io(&root))?;
        Ok(Self { root })
    }

    /// The run directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.json`: the resolved configuration.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// `metrics.jsonl`.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `loss.svg`.
    pub fn plot_path(&self) -> PathBuf {
        self.root.join("loss.svg")
    }

    /// `checkpoints/<which>` (`latest` or `best`).
    pub fn checkpoint(&self, which: &str) -> PathBuf {
        self.root.join("checkpoints").join(which)
    }

    /// The latest complete checkpoint, if any (a half-swapped one is
    /// recovered from its `.old` copy).
    pub fn latest(&self) -> Option<PathBuf> {
        let latest = self.checkpoint("latest");
        if latest.join("state.json").is_file() {
            return Some(latest);
        }
        let old = self.checkpoint("latest.old");
        old.join("state.json").is_file().then_some(old)
    }

    /// Writes a checkpoint: `fill` writes its files into a fresh temporary
    /// directory, which then replaces `checkpoints/<which>`.
    pub fn write_checkpoint(
        &self,
        which: &str,
        fill: impl FnOnce(&Path) -> Result<(), TrainError>,
    ) -> Result<PathBuf, TrainError> {
        let target = self.checkpoint(which);
        let partial = self.checkpoint(&format!(".{which}.partial"));
        let old = self.checkpoint(&format!("{which}.old"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(io(&partial))?;
        if let Err(e) = fill(&partial) {
            // The previous checkpoint is untouched; do not leave debris.
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        if target.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            std::fs::rename(&target, &old).map_err(io(&target))?;
        }
        std::fs::rename(&partial, &target).map_err(io(&target))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(target)
    }

    /// Reads the rows of `metrics.jsonl`.
    pub fn read_metrics(&self) -> Result<Vec<MetricsRow>, TrainError> {
        let path = self.metrics_path();
        if !path.is_file() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| TrainError::Data {
                    path: path.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Keeps only rows up to `step` (a resumed run rewrites what follows).
    pub fn truncate_metrics(&self, step: usize) -> Result<(), TrainError> {
        let rows: Vec<MetricsRow> = self
            .read_metrics()?
            .into_iter()
            .filter(|r| r.step <= step)
            .collect();
        let mut text = String::new();
        for row in &rows {
            text += &serde_json::to_string(row).unwrap_or_default();
            text.push('\n');
        }
        write_atomic(&self.metrics_path(), text.as_bytes())
    }

    /// Appends one row to `metrics.jsonl` (and flushes it).
    pub fn append_metrics(&self, row: &MetricsRow) -> Result<(), TrainError> {
        let path = self.metrics_path();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let line = serde_json::to_string(row).unwrap_or_default();
        writeln!(file, "{line}").map_err(io(&path))?;
        file.flush().map_err(io(&path))
    }
}

/// `contents` to `path` through a temporary file and a rename (the one
/// implementation, medcap-model's).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), TrainError> {
    Ok(medcap_model::checkpoint::write_atomic(path, contents)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_checkpoint_write_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path().join("r")).unwrap();
        run.write_checkpoint("latest", |d| {
            write_atomic(&d.join("state.json"), b"{\"step\": 1}")
        })
        .unwrap();
        let failed = run.write_checkpoint("latest", |_| {
            Err(TrainError::Data {
                path: PathBuf::from("disk"),
                reason: "full".into(),
            })
        });
        assert!(failed.is_err());
        let kept = std::fs::read_to_string(run.latest().unwrap().join("state.json")).unwrap();
        assert_eq!(kept, "{\"step\": 1}");
        assert!(!run.checkpoint(".latest.partial").exists());
    }
}
