//! `text_model.*`: CLIP's causal text transformer (token and position
//! embeddings, encoder layers under a causal mask,
//! `final_layer_norm`, pooled at the end-of-text token), as transformers'
//! `CLIPTextTransformer`.

use tch::{Device, Kind, Tensor, nn, nn::Module};

use super::config::ClipTextConfig;
use super::layer::ClipLayer;

/// The text tower, up to its pooled output.
#[derive(Debug)]
pub(super) struct ClipTextTransformer {
    token_embedding: nn::Embedding,
    position_embedding: Tensor,
    layers: Vec<ClipLayer>,
    final_layer_norm: nn::LayerNorm,
    eos_token_id: i64,
}

impl ClipTextTransformer {
    pub(super) fn new(p: &nn::Path<'_>, c: &ClipTextConfig) -> Self {
        let t = &c.tower;
        let e = p / "embeddings";
        Self {
            token_embedding: nn::embedding(
                &e / "token_embedding",
                c.vocab_size,
                t.hidden_size,
                Default::default(),
            ),
            position_embedding: (&e / "position_embedding").var(
                "weight",
                &[c.max_position_embeddings, t.hidden_size],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.01,
                },
            ),
            layers: (0..t.num_hidden_layers)
                .map(|i| ClipLayer::new(p / "encoder" / "layers" / i, t))
                .collect(),
            final_layer_norm: crate::layers::layer_norm(
                p / "final_layer_norm",
                t.hidden_size,
                t.layer_norm_eps,
            ),
            eos_token_id: c.eos_token_id,
        }
    }

    /// Right-padded `input_ids` `[batch, seq]` (seq at most the context
    /// length, checked by the caller) to the pooled output `[batch, hidden]`.
    ///
    /// transformers also masks the padding, but that changes nothing here:
    /// padding lies after every real token, which causal attention never
    /// lets a real token see, and only a real token is pooled. Without the
    /// mask libtorch runs its causal attention kernel.
    pub(super) fn pooled(&self, input_ids: &Tensor) -> Tensor {
        let size = input_ids.size();
        let (b, n) = (size[0], size[1]);
        let device = input_ids.device();
        let x = self.token_embedding.forward(input_ids)
            + self.position_embedding.narrow(0, 0, n).unsqueeze(0);
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(&x, true);
        }
        let x = self.final_layer_norm.forward(&x);
        let position = if self.eos_token_id == 2 {
            input_ids.to_kind(Kind::Int).argmax(-1, false)
        } else {
            input_ids
                .eq(self.eos_token_id)
                .to_kind(Kind::Int)
                .argmax(-1, false)
        };
        let rows = Tensor::arange(b, (Kind::Int64, Device::Cpu)).to_device(device);
        x.index(&[Some(rows), Some(position)])
    }
}
