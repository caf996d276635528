//! DeBERTa (v1, `model_type = "deberta"`, as `microsoft/deberta-xlarge-mnli`)
//! loading Hugging Face checkpoints with module paths equal to their keys:
//! what ImageCLEFmedical Caption's BERTScore runs. Mirrors transformers'
//! `modeling_deberta.py`: [`DebertaEmbeddings`], disentangled attention in
//! [`attention`], [`DebertaLayer`], and the encoder's shared
//! `rel_embeddings` here.

mod attention;
mod config;
mod embeddings;
mod layer;

use attention::RelativeContext;
pub use config::DebertaConfig;
use embeddings::DebertaEmbeddings;
use layer::DebertaLayer;

use tch::{Tensor, nn};

/// DeBERTa's `LayerNorm`: epsilon inside the square root, biased variance
/// (what libtorch's layer norm computes).
fn layer_norm(p: nn::Path<'_>, c: &DebertaConfig) -> nn::LayerNorm {
    crate::layers::layer_norm(p, c.hidden_size, c.layer_norm_eps)
}

/// The DeBERTa encoder without a head (transformers' `DebertaModel`).
#[derive(Debug)]
pub struct DebertaModel {
    embeddings: DebertaEmbeddings,
    layers: Vec<DebertaLayer>,
    /// `encoder.rel_embeddings`, `[2·max_relative, hidden]`, with relative attention.
    rel_embeddings: Option<Tensor>,
    max_relative: i64,
}

impl DebertaModel {
    /// Variables under `p` (the checkpoint's root: `embeddings`,
    /// `encoder.layer.N`, `encoder.rel_embeddings`).
    pub fn new(p: &nn::Path<'_>, c: &DebertaConfig) -> Self {
        let encoder = p / "encoder";
        let max_relative = c.relative_span();
        let rel_embeddings = c.relative_attention.then(|| {
            nn::embedding(
                &encoder / "rel_embeddings",
                2 * max_relative,
                c.hidden_size,
                Default::default(),
            )
            .ws
        });
        Self {
            embeddings: DebertaEmbeddings::new(p / "embeddings", c),
            layers: (0..c.num_hidden_layers)
                .map(|i| DebertaLayer::new(&encoder / "layer" / i, c))
                .collect(),
            rel_embeddings,
            max_relative,
        }
    }

    /// The hidden state after `layer` layers (0: the embedding output), as
    /// `hidden_states[layer]` in transformers; later layers are not run.
    /// `input_ids`, `attention_mask`: `[batch, seq]` (mask 1 for tokens, 0
    /// for padding). Returns `[batch, seq, hidden]`.
    pub fn hidden_state(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layer: usize,
    ) -> Tensor {
        let seq = input_ids.size()[1];
        let mut x = self.embeddings.forward(input_ids, attention_mask);
        // transformers' get_attention_mask: a query and a key must both be
        // tokens, [batch, 1, seq, seq].
        let keys = attention_mask.unsqueeze(1).unsqueeze(2);
        let mask = (&keys * keys.squeeze_dim(-2).unsqueeze(-1)).gt(0);
        let relative = self
            .rel_embeddings
            .as_ref()
            .map(|rel| RelativeContext::new(rel, seq, self.max_relative));
        for l in self.layers.iter().take(layer) {
            x = l.forward(&x, &mask, relative.as_ref());
        }
        x
    }
}
