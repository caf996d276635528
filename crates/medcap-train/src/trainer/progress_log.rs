//! What a run writes as it goes: rows of `metrics.jsonl` (mean loss since
//! the last row, learning rate, throughput, validation loss), the loss plot
//! at the end, and one warning per epoch for images that could not be read.

use std::time::Instant;

use super::{Observer, Trainer};
use crate::data;
use crate::error::TrainError;
use crate::plot::{Series, line_plot};
use crate::run::MetricsRow;

/// How many unreadable images a warning names before it counts the rest.
const NAMED: usize = 3;

/// The first [`NAMED`] reasons, then how many more (`None` for none).
fn skipped_summary(skipped: &[String]) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let mut named = skipped[..skipped.len().min(NAMED)].join("; ");
    if skipped.len() > NAMED {
        named += &format!(" and {} more", skipped.len() - NAMED);
    }
    Some(named)
}

impl Trainer {
    /// One warning for the images of `epoch` that could not be read: the
    /// first few named, then a count (never a line per image).
    /// Returns the first skipped image's reason.
    pub(super) fn report_skipped(&mut self, epoch: usize) -> Option<String> {
        let skipped = std::mem::take(&mut self.skipped_in_epoch);
        let named = skipped_summary(&skipped)?;
        tracing::warn!(
            epoch,
            skipped = skipped.len(),
            "training images could not be read and were skipped: {named}"
        );
        skipped.into_iter().next()
    }

    pub(super) fn log_row(
        &mut self,
        observer: &dyn Observer,
        val_loss: Option<f64>,
    ) -> Result<(), TrainError> {
        let total = self.total_steps();
        let elapsed = self.pending_since.elapsed().as_secs_f64();
        let per_epoch =
            data::batches_per_epoch(self.train.len(), self.config.optim.micro_batch).max(1);
        let row = MetricsRow {
            step: self.state.step,
            epoch: self.state.epoch as f64 + self.state.batch_in_epoch as f64 / per_epoch as f64,
            train_loss: (self.pending_loss.1 > 0).then(|| self.pending_mean()),
            val_loss,
            lr: self.current_lr(total),
            images_per_second: (self.pending_images > 0 && elapsed > 0.0)
                .then(|| self.pending_images as f64 / elapsed),
            grad_norm: self.last_grad_norm.filter(|_| val_loss.is_none()),
            communication: if val_loss.is_none() {
                self.replicas.take_traffic()
            } else {
                None
            },
        };
        // Rank 0 keeps the log; every rank has the same row.
        let appended = if self.replicas.leader() {
            self.run.append_metrics(&row)
        } else {
            Ok(())
        };
        self.replicas.settle("writing metrics.jsonl", appended)?;
        observer.logged(&row);
        self.pending_loss = (0.0, 0);
        self.pending_images = 0;
        self.pending_since = Instant::now();
        Ok(())
    }

    /// Draws `loss.svg` from the metrics log (rank 0 alone).
    pub(super) fn write_plot(&self) -> Result<(), TrainError> {
        let drawn = if self.replicas.leader() {
            self.draw_plot()
        } else {
            Ok(())
        };
        self.replicas.settle("drawing the loss plot", drawn)
    }

    fn draw_plot(&self) -> Result<(), TrainError> {
        let rows = self.run.read_metrics()?;
        let train: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.train_loss.map(|l| (r.step as f64, l)))
            .collect();
        let val: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.val_loss.map(|l| (r.step as f64, l)))
            .collect();
        let svg = line_plot(
            &format!("{}: loss", self.config.run.name),
            "iteration (optimizer step)",
            "loss",
            &[
                Series {
                    label: "training".into(),
                    colour: "#1f77b4".into(),
                    points: train,
                },
                Series {
                    label: "validation".into(),
                    colour: "#d62728".into(),
                    points: val,
                },
            ],
        );
        Ok(medcap_io::write_atomic(
            &self.run.plot_path(),
            svg.as_bytes(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_names_three_images_and_counts_the_rest() {
        assert_eq!(skipped_summary(&[]), None);
        let two = ["a.png: truncated".to_owned(), "b.png: missing".to_owned()];
        assert_eq!(
            skipped_summary(&two).unwrap(),
            "a.png: truncated; b.png: missing"
        );
        let five: Vec<String> = (0..5).map(|i| format!("{i}.png")).collect();
        assert_eq!(
            skipped_summary(&five).unwrap(),
            "0.png; 1.png; 2.png and 2 more"
        );
    }
}
