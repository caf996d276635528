//! A BERT encoder that loads Hugging Face BERT checkpoints (`config.json`,
//! `model.safetensors`) with module paths equal to their keys: the text side
//! of BLIP is built from the same layer, and BERTScore uses it as its encoder.

mod config;
mod embeddings;
mod layer;

pub use config::BertConfig;
pub use embeddings::BertEmbeddings;
pub use layer::BertLayer;

use tch::{Kind, Tensor, nn};

/// A `LayerNorm` over the hidden size with the checkpoint's epsilon.
fn layer_norm(p: nn::Path<'_>, c: &BertConfig) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![c.hidden_size],
        nn::LayerNormConfig {
            eps: c.layer_norm_eps,
            ..Default::default()
        },
    )
}

/// BERT without its pooler.
#[derive(Debug)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
}

impl BertModel {
    /// Variables under `p` (the checkpoint's root: `embeddings`, `encoder.layer.N`).
    pub fn new(p: &nn::Path<'_>, c: &BertConfig) -> Self {
        let layers = (0..c.num_hidden_layers)
            .map(|i| BertLayer::new(p / "encoder" / "layer" / i, c))
            .collect();
        Self {
            embeddings: BertEmbeddings::new(p / "embeddings", c),
            layers,
        }
    }

    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The hidden state after `layer` transformer layers (0: the embedding
    /// output), as `hidden_states[layer]` in transformers; later layers are
    /// not run. `attention_mask`: `[batch, seq]`, 1 for tokens, 0 for padding.
    pub fn hidden_state(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layer: usize,
    ) -> Tensor {
        let mask = attention_mask
            .to_kind(Kind::Float)
            .unsqueeze(1)
            .unsqueeze(1);
        // Additive mask as transformers builds it: 0 to attend, the dtype's minimum to ignore.
        let bias = (1.0 - mask) * f64::from(f32::MIN);
        let mut x = self.embeddings.forward(input_ids);
        for l in self.layers.iter().take(layer) {
            x = l.forward(&x, &bias);
        }
        x
    }
}
