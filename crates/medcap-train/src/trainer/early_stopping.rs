//! Early stopping as a strategy, as burn-train keeps it apart from the loop:
//! after each validation, whether the loss is the best so far and whether
//! the run should stop. The counts live in [`TrainState`], so a resumed run
//! continues the count where it stopped.

use crate::run::TrainState;

/// What one validation means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The loss is the best so far (the best checkpoint is replaced).
    pub best: bool,
    /// The run should stop now.
    pub stop: bool,
}

/// Decides, validation by validation, when a run stops early.
pub trait EarlyStoppingStrategy {
    /// Records `loss` in `state` and returns the verdict.
    fn record(&self, state: &mut TrainState, loss: f64) -> Verdict;
}

/// Stop after `patience` validations in a row without a new best loss
/// (`None`: never stop early). A loss that is not a number is never best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience(pub Option<usize>);

impl EarlyStoppingStrategy for Patience {
    fn record(&self, state: &mut TrainState, loss: f64) -> Verdict {
        let best = state.best_val_loss.is_none_or(|b| loss < b);
        if best {
            state.best_val_loss = Some(loss);
            state.evals_without_improvement = 0;
        } else {
            state.evals_without_improvement += 1;
        }
        Verdict {
            best,
            stop: self.0.is_some_and(|p| state.evals_without_improvement >= p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(patience: Option<usize>, losses: &[f64]) -> Vec<(bool, bool)> {
        let mut state = TrainState::default();
        losses
            .iter()
            .map(|&l| {
                let v = Patience(patience).record(&mut state, l);
                (v.best, v.stop)
            })
            .collect()
    }

    #[test]
    fn stops_after_patience_validations_without_a_new_best() {
        assert_eq!(
            verdicts(Some(2), &[3.0, 2.0, 2.5, 1.0, 1.5, 1.0]),
            [
                (true, false),
                (true, false),
                (false, false),
                (true, false),
                (false, false),
                (false, true)
            ]
        );
    }

    #[test]
    fn without_patience_it_never_stops_and_nan_is_never_best() {
        assert_eq!(
            verdicts(None, &[1.0, 2.0, f64::NAN, 3.0]),
            [
                (true, false),
                (false, false),
                (false, false),
                (false, false)
            ]
        );
        let mut state = TrainState::default();
        assert!(!Patience(Some(1)).record(&mut state, 1.0).stop);
        assert_eq!(state.best_val_loss, Some(1.0));
    }

    #[test]
    fn a_resumed_count_continues() {
        let mut state = TrainState {
            best_val_loss: Some(1.0),
            evals_without_improvement: 2,
            ..TrainState::default()
        };
        assert!(Patience(Some(3)).record(&mut state, 1.5).stop);
    }
}
