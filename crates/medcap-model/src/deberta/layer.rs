//! `encoder.layer.N.*`: one DeBERTa layer: disentangled self-attention
//! (`attention.self`), its projection with residual and layer norm
//! (`attention.output`), then the feed-forward block (`intermediate`,
//! `output`), post-layer-norm as in BERT.

use tch::{Tensor, nn, nn::Module};

use super::DebertaConfig;
use super::attention::{DisentangledSelfAttention, RelativeContext};

/// A dense projection, then residual and layer norm.
#[derive(Debug)]
struct ResidualOutput {
    dense: nn::Linear,
    layer_norm: nn::LayerNorm,
}

impl ResidualOutput {
    fn new(p: nn::Path<'_>, input: i64, c: &DebertaConfig) -> Self {
        Self {
            dense: nn::linear(&p / "dense", input, c.hidden_size, Default::default()),
            layer_norm: super::layer_norm(&p / "LayerNorm", c),
        }
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Tensor {
        self.layer_norm.forward(&(self.dense.forward(x) + residual))
    }
}

/// One DeBERTa layer.
#[derive(Debug)]
pub struct DebertaLayer {
    attention: DisentangledSelfAttention,
    attention_output: ResidualOutput,
    intermediate: nn::Linear,
    output: ResidualOutput,
}

impl DebertaLayer {
    /// Variables under `p` (`encoder.layer.N`), named as the checkpoint's keys.
    pub fn new(p: nn::Path<'_>, c: &DebertaConfig) -> Self {
        let attention = &p / "attention";
        Self {
            attention: DisentangledSelfAttention::new(&attention / "self", c),
            attention_output: ResidualOutput::new(&attention / "output", c.hidden_size, c),
            intermediate: nn::linear(
                &p / "intermediate" / "dense",
                c.hidden_size,
                c.intermediate_size,
                Default::default(),
            ),
            output: ResidualOutput::new(&p / "output", c.intermediate_size, c),
        }
    }

    /// `x`: `[batch, seq, hidden]`; `mask`: `[batch, 1, seq, seq]`, true
    /// where a query may look at a key.
    pub fn forward(&self, x: &Tensor, mask: &Tensor, relative: Option<&RelativeContext>) -> Tensor {
        let attended = self.attention.forward(x, mask, relative);
        let hidden = self.attention_output.forward(&attended, x);
        // DeBERTa's "gelu" is the exact, erf-based one.
        let inner = self.intermediate.forward(&hidden).gelu("none");
        self.output.forward(&inner, &hidden)
    }
}
