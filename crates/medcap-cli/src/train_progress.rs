//! Training progress: indicatif's bar on a terminal, [`LogObserver`]'s
//! plain lines elsewhere (`medcap train`, `medcap reproduce`).

use indicatif::{ProgressBar, ProgressStyle};
use medcap_train::run::MetricsRow;
use medcap_train::trainer::{LogObserver, Observer};

/// Training progress: a bar with loss, learning rate and throughput on a
/// terminal; off a terminal, [`LogObserver`]'s lines (one per `log_every`
/// optimizer steps, and validations).
pub struct TrainBar {
    bar: ProgressBar,
    log: LogObserver,
}

impl TrainBar {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {pos}/{len} steps {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self {
            bar,
            log: LogObserver,
        }
    }

    /// Clears the bar (a training run may be followed by another).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for TrainBar {
    fn started(&self, total: usize, done: usize) {
        self.bar.reset();
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.bar.suspend(|| self.log.started(total, done));
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
