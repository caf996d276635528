//! The run directory `<runs_dir>/<name>/`: the resolved configuration, the
//! metrics log, the loss plot and the checkpoints (`checkpoints/latest`,
//! `checkpoints/best`), each written to a temporary directory and swapped
//! in by renames so that a crash or a full disk never leaves a broken one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::trainer::Traffic;

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
    /// fp16 training's loss scale (absent in other precisions, and in
    /// the state files of runs from before mixed precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<crate::loss_scale::LossScaler>,
    /// Steps whose update was skipped because the scaled gradients
    /// overflowed (fp16 only).
    #[serde(default)]
    pub overflow_steps: usize,
    /// Processes that ran the run when the checkpoint was written (absent
    /// in state files from before data parallelism: one). A run resumes
    /// with any number that divides `optim.accumulation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_size: Option<usize>,
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
    /// Training images per second since the previous row, over all processes.
    pub images_per_second: Option<f64>,
    /// The global L2 norm of the last step's gradients before clipping (as
    /// transformers' Trainer logs it; absent on validation-only rows and
    /// in logs from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// In a data-parallel run, rank 0's all-reduce traffic since the
    /// previous training row: `all_reduced_bytes` and
    /// `communication_seconds` (absent alone).
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub communication: Option<Traffic>,
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

    /// `<runs_dir>/<name>` as it is, creating nothing (another process
    /// prepares it).
    pub fn open(root: PathBuf) -> Self {
        Self { root }
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

    /// The latest complete checkpoint, if any (a swap interrupted between
    /// its renames is recovered from its `.old` copy).
    pub fn latest(&self) -> Option<PathBuf> {
        medcap_io::recover_dir(&self.checkpoint("latest"), |d| {
            d.join("state.json").is_file()
        })
    }

    /// Writes a checkpoint: `fill` writes its files into a fresh temporary
    /// directory, which then replaces `checkpoints/<which>`
    /// ([`medcap_io::replace_dir`]: files and directories synced, the
    /// previous checkpoint kept until the new one is in place).
    pub fn write_checkpoint(
        &self,
        which: &str,
        fill: impl FnOnce(&Path) -> Result<(), TrainError>,
    ) -> Result<PathBuf, TrainError> {
        let target = self.checkpoint(which);
        medcap_io::replace_dir(&target, fill)?;
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
        let path = self.metrics_path();
        let rows: Vec<MetricsRow> = self
            .read_metrics()?
            .into_iter()
            .filter(|r| r.step <= step)
            .collect();
        medcap_io::write_atomic_with(&path, |out| {
            rows.iter().try_for_each(|row| write_row(out, row, &path))
        })
    }

    /// Appends one row to `metrics.jsonl` (and flushes it).
    pub fn append_metrics(&self, row: &MetricsRow) -> Result<(), TrainError> {
        let path = self.metrics_path();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        write_row(&mut file, row, &path)?;
        file.flush().map_err(io(&path))
    }
}

/// One JSON line of `metrics.jsonl`.
fn write_row(out: &mut impl Write, row: &MetricsRow, path: &Path) -> Result<(), TrainError> {
    serde_json::to_writer(&mut *out, row)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_rows_carry_traffic_only_in_data_parallel_runs() {
        let mut row = MetricsRow {
            step: 3,
            epoch: 0.5,
            train_loss: Some(2.0),
            val_loss: None,
            lr: 1e-3,
            images_per_second: None,
            grad_norm: Some(1.5),
            communication: None,
        };
        let alone = serde_json::to_string(&row).unwrap();
        assert!(!alone.contains("communication_seconds"), "{alone}");
        assert_eq!(serde_json::from_str::<MetricsRow>(&alone).unwrap(), row);
        row.communication = Some(Traffic {
            all_reduced_bytes: 4096,
            seconds: 0.25,
        });
        let shared = serde_json::to_string(&row).unwrap();
        assert!(
            shared.contains(r#""all_reduced_bytes":4096,"communication_seconds":0.25"#),
            "{shared}"
        );
        assert_eq!(serde_json::from_str::<MetricsRow>(&shared).unwrap(), row);
    }

    #[test]
    fn a_failed_checkpoint_write_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path().join("r")).unwrap();
        run.write_checkpoint("latest", |d| {
            Ok(medcap_io::write_atomic(
                &d.join("state.json"),
                b"{\"step\": 1}",
            )?)
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
        let names: Vec<_> = std::fs::read_dir(run.root().join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["latest"], "no temporary directory is left");
    }
}
