//! Progress bars for long library work, drawn with indicatif on a terminal
//! and hidden otherwise (CI logs stay plain). Training's bar is in
//! `train_progress` (it needs medcap-train, which links libtorch).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use medcap_dataset::prepare::Progress;

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
