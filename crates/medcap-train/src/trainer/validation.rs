//! Validation: the training objective on the validation split, without
//! dropout or augmentation, after every `eval_every` steps (or each
//! epoch), feeding the early-stopping strategy and the best checkpoint.

use super::early_stopping::{EarlyStoppingStrategy, Patience};
use super::{Observer, Trainer};
use crate::config::LossKind;
use crate::data::{self, Augment};
use crate::error::TrainError;

/// The validation loss from its sums: captioning cross-entropy per target
/// token (none for the contrastive loss alone) plus `weight` times the mean
/// contrastive loss per micro-batch.
fn validation_objective(
    kind: LossKind,
    weight: f64,
    (ce_total, tokens): (f64, i64),
    (contrastive_total, batches): (f64, usize),
) -> f64 {
    let mut loss = if kind == LossKind::Contrastive {
        0.0
    } else {
        ce_total / tokens.max(1) as f64
    };
    if batches > 0 {
        loss += weight * contrastive_total / batches as f64;
    }
    loss
}

impl Trainer {
    /// Mean validation objective per example batch (same objective as
    /// training, no dropout). In a data-parallel run each rank takes every
    /// N-th micro-batch and the sums are added over the ranks, so every
    /// rank returns the one-process value.
    pub fn validation_loss(&self) -> Result<Option<f64>, TrainError> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let _guard = tch::no_grad_guard();
        let indices: Vec<usize> = (0..self.val.len()).collect();
        let (mut ce_total, mut tokens, mut contrastive_total, mut batches) =
            (0.0, 0i64, 0.0, 0usize);
        let share = indices
            .chunks(self.config.optim.micro_batch)
            .skip(self.replicas.rank())
            .step_by(self.replicas.size());
        let mut failure = Ok(());
        for chunk in share {
            let batch = data::load_batch(
                &self.val,
                chunk,
                &self.processor,
                Augment::default(),
                self.config.run.seed,
                0,
            );
            if batch.len == 0 {
                continue;
            }
            let losses = self
                .targets(&batch)
                .and_then(|t| Ok((t.target_tokens, self.batch_losses(&batch, &t, false)?)));
            let (n, (ce, contrastive)) = match losses {
                Ok(losses) => losses,
                Err(e) => {
                    failure = Err(e);
                    break;
                }
            };
            ce_total += ce.double_value(&[]);
            tokens += n;
            if let Some(c) = contrastive {
                contrastive_total += c.double_value(&[]);
                batches += 1;
            }
        }
        let sums = self.replicas.sum_unless_failed(
            "validation",
            &[ce_total, tokens as f64, contrastive_total, batches as f64],
            failure,
        )?;
        Ok(Some(validation_objective(
            self.config.loss.kind,
            self.contrastive_weight(),
            (sums[0], sums[1] as i64),
            (sums[2], sums[3] as usize),
        )))
    }

    /// Validates, keeps the best checkpoint, and says whether to stop early
    /// (the [`Patience`] strategy of `run.early_stopping_patience`).
    pub(super) fn validate_and_track(
        &mut self,
        observer: &dyn Observer,
    ) -> Result<bool, TrainError> {
        let Some(loss) = self.validation_loss()? else {
            return Ok(false);
        };
        let strategy = Patience(self.config.run.early_stopping_patience);
        let verdict = strategy.record(&mut self.state, loss);
        observer.validated(self.state.step, loss, verdict.best);
        self.log_row(observer, Some(loss))?;
        if verdict.best {
            self.save_checkpoint("best")?;
        }
        Ok(verdict.stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_objective_is_per_token_cross_entropy_plus_weighted_contrastive_per_batch() {
        let ce = validation_objective(LossKind::Ce, 0.0, (12.0, 4), (0.0, 0));
        assert_eq!(ce, 3.0);
        let both = validation_objective(LossKind::CePlusContrastive, 0.1, (12.0, 4), (6.0, 3));
        assert!((both - 3.2).abs() < 1e-12);
        let contrastive = validation_objective(LossKind::Contrastive, 1.0, (12.0, 4), (6.0, 3));
        assert_eq!(contrastive, 2.0);
        assert_eq!(
            validation_objective(LossKind::Ce, 0.0, (0.0, 0), (0.0, 0)),
            0.0
        );
    }
}
