//! Adam and AdamW with torch's update rule, a learning-rate schedule and
//! global-norm gradient clipping. The moments live in plain tensors so that
//! a checkpoint can save and restore them exactly (resume is bit-identical).

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Kind, Tensor};

use crate::config::{OptimConfig, OptimizerKind, Schedule};
use crate::error::TrainError;

/// Per-parameter first and second moments and the step count.
pub struct Adam {
    kind: OptimizerKind,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    params: Vec<(String, Tensor)>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    /// Updates done so far.
    pub step: usize,
}

impl Adam {
    /// An optimizer over `params` (name, trainable tensor).
    pub fn new(params: Vec<(String, Tensor)>, config: &OptimConfig) -> Self {
        let first = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let second = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            kind: config.optimizer,
            betas: config.betas,
            eps: config.eps,
            weight_decay: config.weight_decay,
            params,
            first,
            second,
            step: 0,
        }
    }

    /// The parameters it updates (name, tensor), sorted by name.
    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// The global L2 norm of the gradients.
    pub fn grad_norm(&self) -> f64 {
        let _guard = tch::no_grad_guard();
        let mut total = 0.0;
        for (_, p) in &self.params {
            let g = p.grad();
            if g.defined() {
                total += g
                    .to_kind(Kind::Float)
                    .square()
                    .sum(Kind::Float)
                    .double_value(&[]);
            }
        }
        total.sqrt()
    }

    /// Multiplies every gradient by `factor` (fp16 training divides out its
    /// loss scale with this).
    pub fn scale_grads(&mut self, factor: f64) {
        let _guard = tch::no_grad_guard();
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.g_mul_scalar_(factor);
            }
        }
    }

    /// Scales the gradients so that their global norm is at most `max_norm`
    /// (torch's `clip_grad_norm_`); returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let norm = self.grad_norm();
        let coefficient = clip_coefficient(max_norm, norm);
        if coefficient < 1.0 {
            self.scale_grads(coefficient);
        }
        norm
    }

    /// One update with learning rate `lr`, as torch's Adam / AdamW.
    pub fn update(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let (b1, b2) = self.betas;
        let bias1 = 1.0 - b1.powi(self.step as i32);
        let bias2 = 1.0 - b2.powi(self.step as i32);
        for (i, (_, p)) in self.params.iter_mut().enumerate() {
            let mut g = p.grad();
            if !g.defined() {
                continue;
            }
            if self.weight_decay != 0.0 {
                match self.kind {
                    OptimizerKind::Adam => g = &g + &*p * self.weight_decay,
                    OptimizerKind::Adamw => {
                        let _ = p.g_mul_scalar_(1.0 - lr * self.weight_decay);
                    }
                }
            }
            let m = &mut self.first[i];
            let _ = m.g_mul_scalar_(b1);
            let _ = m.g_add_(&(&g * (1.0 - b1)));
            let v = &mut self.second[i];
            let _ = v.g_mul_scalar_(b2);
            let _ = v.g_add_(&(g.square() * (1.0 - b2)));
            let denom = v.sqrt() / bias2.sqrt() + self.eps;
            let _ = p.g_sub_(&(&*m / denom * (lr / bias1)));
        }
    }

    /// Writes the moments to `path` (safetensors) for resuming.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut tensors: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.params.len());
        for (i, (name, _)) in self.params.iter().enumerate() {
            tensors.push((
                format!("m.{name}"),
                self.first[i].to_device(tch::Device::Cpu),
            ));
            tensors.push((
                format!("v.{name}"),
                self.second[i].to_device(tch::Device::Cpu),
            ));
        }
        Tensor::write_safetensors(&tensors, path).map_err(|source| TrainError::Torch {
            context: format!("writing {}", path.display()),
            source,
        })
    }

    /// Restores the moments saved by [`Self::save`] and the step count.
    pub fn load(&mut self, path: &Path, step: usize) -> Result<(), TrainError> {
        let stored: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|source| TrainError::Torch {
                context: format!("reading {}", path.display()),
                source,
            })?
            .into_iter()
            .collect();
        let _guard = tch::no_grad_guard();
        for (i, (name, _)) in self.params.iter().enumerate() {
            for (prefix, target) in [("m", &mut self.first[i]), ("v", &mut self.second[i])] {
                let key = format!("{prefix}.{name}");
                let saved = stored.get(&key).ok_or_else(|| TrainError::Resume {
                    path: path.to_owned(),
                    reason: format!(
                        "optimizer state has no `{key}` (were parameters frozen differently?)"
                    ),
                })?;
                target.f_copy_(saved).map_err(|source| TrainError::Torch {
                    context: format!("restoring {key}"),
                    source,
                })?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// The learning rate of optimizer update `step` (0-based: the rate the
/// first update uses is `learning_rate(c, 0, total)`) out of `total`.
///
/// The schedules of transformers' `get_constant_schedule_with_warmup`,
/// `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup`
/// (half a cycle), which are `LambdaLR`s stepped after each optimizer step:
/// update `k` runs at `lr * lambda(k)`, where during warm-up `lambda(k) =
/// k / warmup` (so the first update has rate 0 and the peak is reached at
/// update `warmup`), and afterwards, with `progress = (k - warmup) /
/// max(1, total - warmup)`, 1 (constant), `max(0, (total - k) / max(1,
/// total - warmup))` (linear)
/// or `max(0, (1 + cos(pi * progress)) / 2)` (cosine).
///
/// ```
/// use medcap_train::config::{OptimConfig, Schedule};
/// use medcap_train::optim::learning_rate;
///
/// let c = OptimConfig { lr: 1.0, warmup_steps: 2, schedule: Schedule::Cosine, ..Default::default() };
/// assert_eq!(learning_rate(&c, 0, 10), 0.0);
/// assert_eq!(learning_rate(&c, 1, 10), 0.5);
/// assert_eq!(learning_rate(&c, 2, 10), 1.0);
/// assert!(learning_rate(&c, 9, 10) < 0.05);
/// ```
pub fn learning_rate(config: &OptimConfig, step: usize, total: usize) -> f64 {
    let warmup = config.warmup_steps;
    if step < warmup {
        return config.lr * step as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = (step - warmup) as f64 / span;
    let factor = match config.schedule {
        Schedule::Constant => 1.0,
        // As transformers writes it: with no update after warm-up
        // (`total == warmup`) the rate is 0 from there, not 1 - progress.
        Schedule::Linear => ((total as f64 - step as f64) / span).max(0.0),
        Schedule::Cosine => (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0),
    };
    config.lr * factor
}

/// The factor torch's `clip_grad_norm_` multiplies gradients of global norm
/// `norm` by to bring it to at most `max_norm`: `max_norm / (norm + 1e-6)`,
/// or 1 when that is not below 1.
pub fn clip_coefficient(max_norm: f64, norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_each_weight_by_the_learning_rate() {
        // With bias correction, step one is lr * g / (|g| + eps) = lr * sign(g).
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let loss = (&p * Tensor::from_slice(&[3.0f32, -0.5])).sum(Kind::Float);
        loss.backward();
        let mut adam = Adam::new(
            vec![("p".into(), p.shallow_clone())],
            &OptimConfig::default(),
        );
        adam.update(0.1);
        let after: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        assert!(
            (after[0] - 0.9).abs() < 1e-6 && (after[1] - (-1.9)).abs() < 1e-6,
            "{after:?}"
        );
    }

    #[test]
    fn clipping_caps_the_global_norm() {
        let p = Tensor::from_slice(&[0.0f32, 0.0]).set_requires_grad(true);
        (&p * Tensor::from_slice(&[3.0f32, 4.0]))
            .sum(Kind::Float)
            .backward();
        let mut adam = Adam::new(
            vec![("p".into(), p.shallow_clone())],
            &OptimConfig::default(),
        );
        assert!((adam.clip_grad_norm(1.0) - 5.0).abs() < 1e-6);
        assert!((adam.grad_norm() - 1.0).abs() < 1e-5);
        // The factor the trainer multiplies by: 1 at or under the maximum.
        assert_eq!(clip_coefficient(1.0, 0.5), 1.0);
        assert_eq!(clip_coefficient(1.0, 1.0 - 1e-6), 1.0);
        assert_eq!(clip_coefficient(1.0, 4.0), 1.0 / (4.0 + 1e-6));
    }
}
