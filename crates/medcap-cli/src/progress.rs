//! Progress bars for long library work, drawn with indicatif on a terminal
//! and hidden otherwise (CI logs stay plain).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use medcap_dataset::prepare::Progress;
use medcap_train::run::MetricsRow;
use medcap_train::trainer::{LogObserver, Observer};

/// The bar of the current stage.
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            current: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means a drawing thread panicked; drawing is optional.
        if let Ok(mut guard) = self.current.lock() {
            f(&mut guard);
        }
    }
}

impl Progress for Bars {
    fn begin(&self, stage: &'static str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg:>18} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg:>18} {spinner} {pos} ({per_sec})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(stage);
        self.with(|c| *c = Some(bar));
    }

    fn advance(&self, n: u64) {
        self.with(|c| {
            if let Some(bar) = c {
                bar.inc(n);
            }
        });
    }

    fn end(&self) {
        self.with(|c| {
            if let Some(bar) = c.take() {
                bar.finish_and_clear();
            }
        });
    }
}

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
