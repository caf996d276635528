//! The contrastive projections a fine-tuning run trains beside the
//! captioner (medcap-model's [`ContrastiveProjections`]): seeded fresh
//! initialisation, loading from a checkpoint (this run's own file, or an
//! ITM-style checkpoint's `vision_proj`/`text_proj`), saving.

use std::path::Path;

use medcap_model::blip::ContrastiveProjections;
use tch::{Device, Tensor, nn};

use crate::error::TrainError;

/// The file the projections are saved in, beside the model's weights.
pub(super) const HEADS_FILE: &str = "contrastive_heads.safetensors";

/// Image and text projections for the contrastive loss.
pub(super) struct Heads {
    pub(super) vars: nn::VarStore,
    pub(super) projections: ContrastiveProjections,
}

impl Heads {
    /// From `dir/contrastive_heads.safetensors`, or the checkpoint's own
    /// `vision_proj` / `text_proj` (ITM-style checkpoints), or fresh.
    pub(super) fn load_or_new(
        dir: &Path,
        (vision_width, text_width): (i64, i64),
        width: i64,
        device: Device,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let vars = nn::VarStore::new(device);
        let root = vars.root();
        let projections = ContrastiveProjections::new(&root, vision_width, text_width, width);
        let heads = Self { vars, projections };
        heads.seeded_init(seed);
        for file in [dir.join(HEADS_FILE), dir.join("model.safetensors")] {
            if !file.is_file() {
                continue;
            }
            // A base-size model.safetensors is 1 GB: look at its header
            // before loading anything from it.
            let variables = heads.vars.variables();
            let keys = medcap_model::checkpoint::stored_keys(&file)?;
            if !variables.keys().all(|v| keys.contains(v)) {
                continue;
            }
            let stored = Tensor::read_safetensors(&file).map_err(|source| TrainError::Torch {
                context: format!("reading {}", file.display()),
                source,
            })?;
            let found: Vec<_> = stored
                .iter()
                .filter(|(n, _)| variables.contains_key(n))
                .collect();
            if found.len() == variables.len() {
                let _guard = tch::no_grad_guard();
                for (name, tensor) in found {
                    let mut var = variables[name].shallow_clone();
                    if var.size() != tensor.size() {
                        return Err(TrainError::Resume {
                            path: file.clone(),
                            reason: format!(
                                "{name} is {:?}, expected {:?}",
                                tensor.size(),
                                var.size()
                            ),
                        });
                    }
                    var.f_copy_(tensor).map_err(|source| TrainError::Torch {
                        context: format!("loading {name}"),
                        source,
                    })?;
                }
                tracing::info!(file = %file.display(), "contrastive projections loaded");
                return Ok(heads);
            }
        }
        Ok(heads)
    }

    /// torch's default Linear initialisation (uniform within 1/sqrt(fan_in)),
    /// drawn from the run seed rather than libtorch's global generator, so
    /// that fresh projections do not depend on anything else drawing from it.
    fn seeded_init(&self, seed: u64) {
        let _guard = tch::no_grad_guard();
        let mut rng = medcap_rng::SplitMix64::for_item(seed, 0x4ead5);
        for layer in [&self.projections.vision_proj, &self.projections.text_proj] {
            let bound = 1.0 / (layer.ws.size()[1] as f64).sqrt();
            let tensors = std::iter::once(&layer.ws).chain(layer.bs.as_ref());
            for var in tensors {
                let values: Vec<f32> = (0..var.numel())
                    .map(|_| rng.range_f64(-bound, bound) as f32)
                    .collect();
                let fresh = Tensor::from_slice(&values)
                    .view(var.size().as_slice())
                    .to_device(var.device());
                var.shallow_clone().copy_(&fresh);
            }
        }
    }

    pub(super) fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut tensors: Vec<(String, Tensor)> = self
            .vars
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu)))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Tensor::write_safetensors(&tensors, path).map_err(|source| TrainError::Torch {
            context: format!("writing {}", path.display()),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn weights(heads: &Heads) -> Vec<(String, Vec<f32>)> {
        let mut all: Vec<(String, Vec<f32>)> = heads
            .vars
            .variables()
            .into_iter()
            .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    #[test]
    fn fresh_heads_depend_on_the_seed_alone_and_load_back_as_saved() {
        let dir = tempfile::tempdir().unwrap();
        let new = |seed| Heads::load_or_new(dir.path(), (8, 6), 4, Device::Cpu, seed).unwrap();
        let (a, again, other) = (new(1), new(1), new(2));
        assert_eq!(weights(&a), weights(&again));
        assert_ne!(weights(&a), weights(&other));
        let names: Vec<String> = weights(&a).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "text_proj.bias",
                "text_proj.weight",
                "vision_proj.bias",
                "vision_proj.weight"
            ]
        );
        a.save(&dir.path().join(HEADS_FILE)).unwrap();
        // A different seed, but the saved file wins.
        assert_eq!(weights(&new(3)), weights(&a));
    }

    #[test]
    fn a_saved_head_of_another_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Heads::load_or_new(dir.path(), (8, 6), 4, Device::Cpu, 1)
            .unwrap()
            .save(&dir.path().join(HEADS_FILE))
            .unwrap();
        let err = Heads::load_or_new(dir.path(), (8, 6), 5, Device::Cpu, 1)
            .err()
            .unwrap();
        assert!(matches!(err, TrainError::Resume { .. }), "{err}");
    }
}
