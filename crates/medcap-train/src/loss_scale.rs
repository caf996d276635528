//! Dynamic loss scaling for fp16 training, with the rule and defaults of
//! PyTorch's `torch.amp.GradScaler`: the loss is multiplied by the scale
//! before the backward pass so that small gradients survive fp16's range;
//! the gradients are divided by it before clipping and the update; a step
//! whose gradients overflowed is skipped and the scale halved; after 2000
//! steps in a row without overflow the scale doubles. The state is part of
//! the run's `state.json`, so a resumed run scales as the uninterrupted one.

use serde::{Deserialize, Serialize};

/// PyTorch's `GradScaler` defaults.
const INIT_SCALE: f64 = 65536.0;
const GROWTH_FACTOR: f64 = 2.0;
const BACKOFF_FACTOR: f64 = 0.5;
const GROWTH_INTERVAL: usize = 2000;

/// The current scale and the count of overflow-free steps since it last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// Factor the loss is multiplied by before the backward pass.
    pub scale: f64,
    /// Steps without overflow since the scale last changed.
    pub growth_tracker: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: INIT_SCALE,
            growth_tracker: 0,
        }
    }
}

impl LossScaler {
    /// Records a step's outcome: `overflowed` when its scaled gradients
    /// held an infinity or NaN (the step was skipped).
    ///
    /// ```
    /// use medcap_train::loss_scale::LossScaler;
    ///
    /// let mut s = LossScaler::default();
    /// s.record(true);
    /// assert_eq!(s.scale, 32768.0);
    /// for _ in 0..2000 { s.record(false); }
    /// assert_eq!(s.scale, 65536.0);
    /// ```
    pub fn record(&mut self, overflowed: bool) {
        if overflowed {
            self.scale *= BACKOFF_FACTOR;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == GROWTH_INTERVAL {
                let grown = self.scale * GROWTH_FACTOR;
                // As torch: never grow into infinity.
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.growth_tracker = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_halves_and_resets_the_count_and_growth_waits_a_full_interval() {
        let mut s = LossScaler::default();
        for _ in 0..1999 {
            s.record(false);
        }
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 1999));
        s.record(true);
        assert_eq!((s.scale, s.growth_tracker), (32768.0, 0));
        for _ in 0..1999 {
            s.record(false);
        }
        assert_eq!(s.scale, 32768.0);
        s.record(false);
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 0));
    }

    #[test]
    fn the_scale_never_grows_to_infinity() {
        let mut s = LossScaler {
            scale: f64::MAX,
            growth_tracker: GROWTH_INTERVAL - 1,
        };
        s.record(false);
        assert_eq!(s.scale, f64::MAX);
    }
}
