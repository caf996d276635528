//! One optimizer step: the micro-batches of an accumulation group, each
//! micro-batch's captioning and contrastive losses, their combination with
//! token-exact normalisation (every micro-batch divided by the whole step's
//! target tokens, so the update equals one large batch's), the NaN guard,
//! clipping and the update. Each micro-batch seeds libtorch's generator
//! from the run seed, the step number and its place in the step, so that
//! dropout is the same on a resume and whichever process runs it.

use medcap_model::precision::Autocast;
use tch::{Kind, Tensor};

use super::Trainer;
use crate::config::LossKind;
use crate::data::Batch;
use crate::error::TrainError;
use crate::loss::{caption_loss_sum, margin_contrastive_loss};
use crate::optim::{clip_coefficient, learning_rate};
use crate::targets::{CaptionTargets, caption_targets};

/// libtorch's seed for the micro-batch at `position` in optimizer step
/// `step` (the first micro-batch's is the step's own seed).
pub(super) fn micro_batch_seed(seed: u64, step: usize, position: usize) -> i64 {
    let mut rng = medcap_rng::SplitMix64::for_item(seed, step as u64);
    let mut value = rng.next_u64();
    for _ in 0..position {
        value = rng.next_u64();
    }
    (value >> 1) as i64
}

/// One micro-batch's share of a step's objective: its summed cross-entropy
/// over the step's target tokens, plus the contrastive loss times `weight`
/// over the step's micro-batches.
fn step_objective(
    ce_sum: &Tensor,
    contrastive: Option<&Tensor>,
    weight: f64,
    step_tokens: i64,
    batches: usize,
) -> Tensor {
    let mut loss = ce_sum / (step_tokens.max(1) as f64);
    if let Some(c) = contrastive {
        loss += c * (weight / batches as f64);
    }
    loss
}

impl Trainer {
    pub(super) fn current_lr(&self, total: usize) -> f64 {
        learning_rate(&self.config.optim, self.state.step.saturating_sub(1), total)
    }

    pub(super) fn pending_mean(&self) -> f64 {
        let (sum, n) = self.pending_loss;
        if n == 0 { f64::NAN } else { sum / n as f64 }
    }

    /// The decoder inputs and labels of a micro-batch's captions.
    pub(super) fn targets(&self, batch: &Batch) -> Result<CaptionTargets, TrainError> {
        caption_targets(
            &self.tokenizer,
            &batch.captions,
            self.config.data.prompt.as_deref(),
            self.config.data.max_tokens,
        )
    }

    /// Forward pass of one micro-batch: summed captioning loss (not yet
    /// divided) and the contrastive loss.
    pub(super) fn batch_losses(
        &self,
        batch: &Batch,
        targets: &CaptionTargets,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>), TrainError> {
        let pixels = batch.pixel_tensor().to_device(self.device);
        let model = &self.model;
        // Mixed precision covers the forward pass only; the backward pass
        // runs after the guard is dropped, as torch.autocast advises.
        let _autocast = Autocast::enter(self.device, self.config.optim.precision)?;
        let image_embeds = if self.config.model.freeze_vision || !train {
            let _guard = tch::no_grad_guard();
            model.encode_images_t(&pixels, false, false)?
        } else {
            model.encode_images_t(&pixels, false, train)?
        };
        let ids = targets.input_ids.to_device(self.device);
        let mask = targets.attention_mask.to_device(self.device);
        let ce = if self.config.loss.kind == LossKind::Contrastive {
            Tensor::zeros([], (Kind::Float, self.device))
        } else {
            let out = model.decode(&image_embeds, &ids, Some(&mask), train);
            caption_loss_sum(
                &out.logits,
                &targets.labels,
                self.config.loss.label_smoothing,
            )
            .to_kind(Kind::Float)
        };
        let contrastive = match &self.heads {
            Some(heads) if batch.len >= 2 => {
                let image = heads.projections.project_image(&image_embeds);
                let text = heads
                    .projections
                    .project_text(&model.unimodal_text_hidden(&ids, &mask, train));
                Some(
                    margin_contrastive_loss(
                        &image,
                        &text,
                        self.config.loss.margin,
                        self.config.loss.hardest_negative,
                    )
                    .to_kind(Kind::Float),
                )
            }
            _ => None,
        };
        Ok((ce, contrastive))
    }

    /// The factor of the contrastive loss in the objective.
    pub(super) fn contrastive_weight(&self) -> f64 {
        match self.config.loss.kind {
            LossKind::Ce => 0.0,
            LossKind::Contrastive => 1.0,
            LossKind::CePlusContrastive => self.config.loss.contrastive_weight,
        }
    }

    /// Combines one micro-batch's losses into its share of the step's objective.
    fn objective(
        &self,
        ce_sum: &Tensor,
        contrastive: Option<&Tensor>,
        step_tokens: i64,
        batches: usize,
    ) -> Tensor {
        step_objective(
            ce_sum,
            contrastive,
            self.contrastive_weight(),
            step_tokens,
            batches,
        )
    }

    /// One optimizer step over this rank's micro-batches of it, `group`:
    /// (position in the step, micro-batch). Alone, the positions are
    /// `0..accumulation`; in a data-parallel run each rank has its share
    /// and the counts, losses and gradients are summed over the ranks.
    pub(super) fn optimizer_step(
        &mut self,
        group: Vec<(usize, Batch)>,
        total: usize,
    ) -> Result<(), TrainError> {
        let mut batches = Vec::with_capacity(group.len());
        let mut skipped = 0;
        for (position, batch) in group {
            skipped += batch.skipped.len();
            self.skipped_in_epoch.extend(batch.skipped.iter().cloned());
            if batch.len > 0 {
                batches.push((position, batch));
            }
        }
        let (targets, failure) = match batches
            .iter()
            .map(|(_, b)| self.targets(b))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(targets) => (targets, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        };
        // Token and batch counts of the whole step first, so that every
        // micro-batch is divided by them: the update equals one big batch's
        // on one process or many.
        let local = [
            targets.iter().map(|t| t.target_tokens).sum::<i64>() as f64,
            batches.len() as f64,
            batches.iter().map(|(_, b)| b.len).sum::<usize>() as f64,
            skipped as f64,
        ];
        let counts =
            self.replicas
                .sum_unless_failed("counting the step's tokens", &local, failure)?;
        let (step_tokens, count, images) =
            (counts[0] as i64, counts[1] as usize, counts[2] as usize);
        self.state.skipped_images += counts[3] as usize;
        if count == 0 {
            return Ok(());
        }
        let mut step_loss = 0.0;
        let mut non_finite = None;
        let mut failure = Ok(());
        for ((position, batch), targets) in batches.iter().zip(&targets) {
            // Dropout depends on the step and the micro-batch's place in
            // it, not on the process that runs it.
            tch::manual_seed(micro_batch_seed(
                self.config.run.seed,
                self.state.step,
                *position,
            ));
            let (ce, contrastive) = match self.batch_losses(batch, targets, true) {
                Ok(losses) => losses,
                Err(e) => {
                    failure = Err(e);
                    break;
                }
            };
            let loss = self.objective(&ce, contrastive.as_ref(), step_tokens, count);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                non_finite = Some(value);
                break;
            }
            match &self.state.loss_scale {
                Some(scaler) => (loss * scaler.scale).backward(),
                None => loss.backward(),
            }
            step_loss += value;
        }
        let summed = self.replicas.sum_unless_failed(
            "the step's forward and backward passes",
            &[step_loss, f64::from(u8::from(non_finite.is_some()))],
            failure,
        )?;
        if summed[1] > 0.0 {
            return Err(self.non_finite(non_finite.unwrap_or(f64::NAN)));
        }
        let step_loss = summed[0];
        self.pending_images += images;
        self.replicas.sum_gradients(self.optimizer.params())?;
        // The global gradient norm, computed once: logged, fp16 reads an
        // overflow off the scaled gradients' norm, and dividing out the loss
        // scale and clipping are then one multiplication of the gradients.
        let scale = self.state.loss_scale.as_ref().map_or(1.0, |s| s.scale);
        let clip = self.config.grad_clip();
        let scaled_norm = self.optimizer.grad_norm();
        if let Some(scaler) = self.state.loss_scale.as_mut() {
            // An overflow in the scaled gradients skips the update, as
            // GradScaler does; the scale backs off and the run goes on.
            let overflowed = !scaled_norm.is_finite();
            scaler.record(overflowed);
            if overflowed {
                self.last_grad_norm = None;
                self.optimizer.zero_grad();
                self.state.overflow_steps += 1;
                tracing::warn!(
                    step = self.state.step + 1,
                    scale,
                    "fp16 gradients overflowed; update skipped, loss scale halved"
                );
                self.finish_step(step_loss);
                return Ok(());
            }
        }
        // The scale is a power of two, so this is the unscaled norm exactly.
        let norm = scaled_norm / scale;
        self.last_grad_norm = norm.is_finite().then_some(norm);
        let mut factor = 1.0 / scale;
        if let Some(max) = clip {
            if !norm.is_finite() {
                return Err(self.non_finite(norm));
            }
            factor *= clip_coefficient(max, norm);
        }
        if factor != 1.0 {
            self.optimizer.scale_grads(factor);
        }
        let lr = learning_rate(&self.config.optim, self.state.step, total);
        self.optimizer.update(lr);
        self.optimizer.zero_grad();
        self.finish_step(step_loss);
        Ok(())
    }

    /// Drops the step's gradients and names the step that went non-finite
    /// (`value`: its loss or gradient norm) and the checkpoint to go back to.
    fn non_finite(&mut self, value: f64) -> TrainError {
        self.optimizer.zero_grad();
        TrainError::NonFinite {
            step: self.state.step + 1,
            loss: value,
            checkpoint: self.run.latest(),
        }
    }

    /// Counts a step (updated or, in fp16, skipped) and its loss.
    fn finish_step(&mut self, step_loss: f64) {
        self.state.step += 1;
        self.pending_loss.0 += step_loss;
        self.pending_loss.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn micro_batch_seeds_are_fixed_by_seed_step_and_position_and_never_negative() {
        assert_eq!(micro_batch_seed(7, 3, 1), micro_batch_seed(7, 3, 1));
        assert_ne!(micro_batch_seed(7, 3, 0), micro_batch_seed(7, 4, 0));
        assert_ne!(micro_batch_seed(7, 3, 0), micro_batch_seed(8, 3, 0));
        assert_ne!(micro_batch_seed(7, 3, 0), micro_batch_seed(7, 3, 1));
        assert!((0..100).all(|s| (0..4).all(|p| micro_batch_seed(1, s, p) >= 0)));
    }

    #[test]
    fn micro_batches_share_the_steps_token_count_and_batch_count() {
        let ce = Tensor::from(6.0f32);
        let contrastive = Tensor::from(2.0f32);
        let share = step_objective(&ce, Some(&contrastive), 0.5, 12, 2);
        assert!((share.double_value(&[]) - (0.5 + 0.5)).abs() < 1e-6);
        // Two micro-batches of 6 and 6 tokens sum to one batch of 12.
        let whole = step_objective(&Tensor::from(12.0f32), None, 0.0, 12, 1);
        let halves: f64 = (0..2)
            .map(|_| step_objective(&ce, None, 0.0, 12, 2).double_value(&[]))
            .sum();
        assert!((whole.double_value(&[]) - halves).abs() < 1e-6);
    }
}
