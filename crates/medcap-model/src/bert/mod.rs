//! A BERT encoder that loads Hugging Face BERT checkpoints (`config.json`,
//! `model.safetensors`) with module paths equal to their keys. BLIP's text
//! encoder and decoder are this network with cross-attention and without
//! token types, and BERTScore uses it as its encoder: one implementation.

mod config;
mod embeddings;
mod layer;

pub use config::BertConfig;
pub use embeddings::BertEmbeddings;
pub use layer::{BertLayer, KeyValue, LayerContext};

use tch::{Kind, Tensor, nn};

/// A `LayerNorm` over the hidden size with the checkpoint's epsilon.
fn layer_norm(p: nn::Path<'_>, c: &BertConfig) -> nn::LayerNorm {
    crate::layers::layer_norm(p, c.hidden_size, c.layer_norm_eps)
}

/// One pass of the text model.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextPass<'a> {
    /// `[batch, past + seq]`: 1 for tokens, 0 for padding; `None`: no padding.
    pub attention_mask: Option<&'a Tensor>,
    /// Each token sees only earlier ones (the decoder).
    pub causal: bool,
    /// Per-layer self-attention caches from earlier steps.
    pub past: Option<&'a [KeyValue]>,
    /// Per-layer cross-attention keys and values (`None`: unimodal pass).
    pub cross: Option<&'a [KeyValue]>,
    /// Training mode (dropout on).
    pub train: bool,
}

/// BERT without its pooler.
#[derive(Debug)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    masked_score: f64,
}

impl BertModel {
    /// Variables under `p` (the checkpoint's root: `embeddings`,
    /// `encoder.layer.N`); `cross_width`: see [`BertLayer::new`].
    pub fn new(p: &nn::Path<'_>, c: &BertConfig, cross_width: Option<i64>) -> Self {
        let layers = (0..c.num_hidden_layers)
            .map(|i| BertLayer::new(p / "encoder" / "layer" / i, c, cross_width))
            .collect();
        Self {
            embeddings: BertEmbeddings::new(p / "embeddings", c),
            layers,
            // transformers' BERT masks with the dtype's minimum; BLIP's text
            // side (the one with cross-attention) with -10000, which is also
            // safe in fp16.
            masked_score: if cross_width.is_some() {
                -10000.0
            } else {
                f64::from(f32::MIN)
            },
        }
    }

    /// The input embeddings (their word matrix is what an LM head may tie to).
    pub fn embeddings(&self) -> &BertEmbeddings {
        &self.embeddings
    }

    /// Cross-attention keys and values of `states` for every layer, computed
    /// once per image and reused at every generation step.
    pub fn cross_key_values(&self, states: &Tensor) -> Option<Vec<KeyValue>> {
        self.layers
            .iter()
            .map(|l| l.cross_key_value(states))
            .collect()
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
        let bias = attention_bias(
            Some(attention_mask),
            input_ids.size()[1],
            0,
            false,
            input_ids.device(),
            self.masked_score,
        );
        let mut x = self.embeddings.forward_t(input_ids, 0, false);
        for l in self.layers.iter().take(layer) {
            x = l
                .forward(
                    &x,
                    LayerContext {
                        mask: bias.as_ref(),
                        ..Default::default()
                    },
                )
                .0;
        }
        x
    }

    /// The last hidden state `[batch, seq, hidden]` and every layer's
    /// self-attention keys and values (the cache for the next step).
    pub fn forward(&self, input_ids: &Tensor, pass: TextPass<'_>) -> (Tensor, Vec<KeyValue>) {
        let past_len = pass.past.and_then(|p| p.first()).map_or(0, KeyValue::len);
        let seq = input_ids.size()[1];
        let bias = attention_bias(
            pass.attention_mask,
            seq,
            past_len,
            pass.causal,
            input_ids.device(),
            self.masked_score,
        );
        let mut x = self.embeddings.forward_t(input_ids, past_len, pass.train);
        let mut cache = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let (next, kv) = layer.forward(
                &x,
                LayerContext {
                    mask: bias.as_ref(),
                    past: pass.past.and_then(|p| p.get(i)),
                    cross: pass.cross.and_then(|c| c.get(i)),
                    train: pass.train,
                },
            );
            x = next;
            cache.push(kv);
        }
        (x, cache)
    }
}

/// The additive self-attention bias `[batch or 1, 1, seq, past + seq]`: 0
/// where a query may look, `masked_score` elsewhere, or `None` when every
/// query may look everywhere.
pub(crate) fn attention_bias(
    attention_mask: Option<&Tensor>,
    seq: i64,
    past_len: i64,
    causal: bool,
    device: tch::Device,
    masked_score: f64,
) -> Option<Tensor> {
    let causal = causal && seq > 1;
    let keys = past_len + seq;
    let allowed = match (attention_mask, causal) {
        (None, false) => return None,
        (Some(mask), false) => mask.to_kind(Kind::Float).unsqueeze(1).unsqueeze(1),
        (mask, true) => {
            let rows = Tensor::arange(seq, (Kind::Int64, device)).unsqueeze(1) + past_len;
            let cols = Tensor::arange(keys, (Kind::Int64, device)).unsqueeze(0);
            let lower = cols
                .le_tensor(&rows)
                .to_kind(Kind::Float)
                .unsqueeze(0)
                .unsqueeze(0);
            match mask {
                Some(mask) => lower * mask.to_kind(Kind::Float).unsqueeze(1).unsqueeze(1),
                None => lower,
            }
        }
    };
    Some((1.0 - allowed) * masked_score)
}
