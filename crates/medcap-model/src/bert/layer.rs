//! `encoder.layer.N.*`: one transformer layer (self-attention, then the
//! feed-forward block), post-layer-norm as in BERT.

use tch::{Tensor, nn, nn::Module};

use super::BertConfig;

/// `attention.self`: multi-head scaled dot-product attention.
#[derive(Debug)]
struct SelfAttention {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    heads: i64,
    head_dim: i64,
}

impl SelfAttention {
    fn new(p: nn::Path<'_>, c: &BertConfig) -> Self {
        let h = c.hidden_size;
        Self {
            query: nn::linear(&p / "query", h, h, Default::default()),
            key: nn::linear(&p / "key", h, h, Default::default()),
            value: nn::linear(&p / "value", h, h, Default::default()),
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        }
    }

    /// `mask_bias`: `[batch, 1, 1, seq]`, 0 where attended, a large negative elsewhere.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> Tensor {
        let (b, t) = (x.size()[0], x.size()[1]);
        let split = |y: Tensor| y.view([b, t, self.heads, self.head_dim]).transpose(1, 2);
        let q = split(self.query.forward(x));
        let k = split(self.key.forward(x));
        let v = split(self.value.forward(x));
        // libtorch's fused kernel: softmax(QK^T/sqrt(d) + mask) V, as
        // transformers' default "sdpa" attention computes it.
        let context = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            Some(mask_bias),
            0.0,
            false,
            None,
            false,
        );
        context
            .transpose(1, 2)
            .contiguous()
            .view([b, t, self.heads * self.head_dim])
    }
}

/// A dense projection, then residual and layer norm (`attention.output`, `output`).
#[derive(Debug)]
struct ResidualOutput {
    dense: nn::Linear,
    layer_norm: nn::LayerNorm,
}

impl ResidualOutput {
    fn new(p: nn::Path<'_>, input: i64, c: &BertConfig) -> Self {
        Self {
            dense: nn::linear(&p / "dense", input, c.hidden_size, Default::default()),
            layer_norm: super::layer_norm(&p / "LayerNorm", c),
        }
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Tensor {
        self.layer_norm.forward(&(self.dense.forward(x) + residual))
    }
}

/// One BERT layer.
#[derive(Debug)]
pub struct BertLayer {
    attention: SelfAttention,
    attention_output: ResidualOutput,
    intermediate: nn::Linear,
    output: ResidualOutput,
}

impl BertLayer {
    /// Variables under `p` (`encoder.layer.N`), named as the checkpoint's keys.
    pub fn new(p: nn::Path<'_>, c: &BertConfig) -> Self {
        let attention = &p / "attention";
        Self {
            attention: SelfAttention::new(&attention / "self", c),
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

    /// `x`: `[batch, seq, hidden]`.
    pub fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> Tensor {
        let attended = self
            .attention_output
            .forward(&self.attention.forward(x, mask_bias), x);
        // BERT's "gelu" is the exact, erf-based one.
        let hidden = self.intermediate.forward(&attended).gelu("none");
        self.output.forward(&hidden, &attended)
    }
}
