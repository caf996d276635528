//! What a run reports while it goes: the [`Observer`] trait through which
//! the CLI draws its progress bar, and [`LogObserver`], which writes
//! `tracing` lines (what CI logs and the study show).

use crate::run::MetricsRow;

/// Receives progress; the CLI draws a bar, [`LogObserver`] writes log lines.
pub trait Observer {
    /// The run starts (or resumes at `done` of `total` optimizer steps).
    fn started(&self, _total_steps: usize, _done: usize) {}
    /// An optimizer step finished.
    fn step(&self, _step: usize, _loss: f64, _lr: f64) {}
    /// A logged interval: mean loss and throughput.
    fn logged(&self, _row: &MetricsRow) {}
    /// Validation ran.
    fn validated(&self, _step: usize, _loss: f64, _best: bool) {}
}

/// Progress as `tracing` log lines (what CI logs show).
pub struct LogObserver;

impl Observer for LogObserver {
    fn started(&self, total: usize, done: usize) {
        tracing::info!(total_steps = total, resumed_at = done, "training");
    }

    fn logged(&self, row: &MetricsRow) {
        // Rows without a training loss only carry a validation, which
        // `validated` reports.
        if row.train_loss.is_none() {
            return;
        }
        tracing::info!(
            step = row.step,
            epoch = format!("{:.2}", row.epoch),
            loss = row.train_loss.map(|l| format!("{l:.4}")),
            lr = format!("{:.3e}", row.lr),
            images_per_second = row.images_per_second.map(|r| format!("{r:.1}")),
            "train"
        );
    }

    fn validated(&self, step: usize, loss: f64, best: bool) {
        tracing::info!(step, val_loss = format!("{loss:.4}"), best, "validation");
    }
}
