//! `encoder.layer.N.*`: one post-layer-norm transformer layer: self-attention,
//! the optional cross-attention of BLIP's text side (`crossattention`, keys
//! and values from the image), then the feed-forward block.

use tch::{Tensor, nn, nn::Module};

use super::BertConfig;

/// Keys and values of one attention block, `[batch, heads, tokens, head_dim]`:
/// the self-attention cache during generation, or the cross-attention
/// inputs computed once per image.
#[derive(Debug)]
pub struct KeyValue {
    /// Keys.
    pub key: Tensor,
    /// Values.
    pub value: Tensor,
}

impl KeyValue {
    /// Number of cached tokens.
    pub fn len(&self) -> i64 {
        self.key.size()[2]
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows `index` of the batch (beam search reorders its cache so).
    pub fn index_select(&self, index: &Tensor) -> Self {
        Self {
            key: self.key.index_select(0, index),
            value: self.value.index_select(0, index),
        }
    }
}

/// `attention.self` / `crossattention.self`: multi-head scaled dot-product
/// attention with separate query, key and value projections.
#[derive(Debug)]
struct Attention {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    heads: i64,
    head_dim: i64,
    dropout: f64,
}

impl Attention {
    /// `source_width`: the width keys and values are computed from (the
    /// vision width for cross-attention).
    fn new(p: nn::Path<'_>, c: &BertConfig, source_width: i64) -> Self {
        let h = c.hidden_size;
        Self {
            query: nn::linear(&p / "query", h, h, Default::default()),
            key: nn::linear(&p / "key", source_width, h, Default::default()),
            value: nn::linear(&p / "value", source_width, h, Default::default()),
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            dropout: c.attention_probs_dropout_prob,
        }
    }

    fn split_heads(&self, y: Tensor) -> Tensor {
        let (b, t) = (y.size()[0], y.size()[1]);
        y.view([b, t, self.heads, self.head_dim]).transpose(1, 2)
    }

    fn key_value(&self, source: &Tensor) -> KeyValue {
        KeyValue {
            key: self.split_heads(self.key.forward(source)),
            value: self.split_heads(self.value.forward(source)),
        }
    }

    /// `mask`: additive, broadcastable to `[batch, heads, queries, keys]`.
    fn attend(&self, x: &Tensor, kv: &KeyValue, mask: Option<&Tensor>, train: bool) -> Tensor {
        let (b, t) = (x.size()[0], x.size()[1]);
        let q = self.split_heads(self.query.forward(x));
        // libtorch's fused kernel computes softmax(QK^T/sqrt(d) + mask) V, as
        // transformers' attention does.
        let context = Tensor::scaled_dot_product_attention(
            &q,
            &kv.key,
            &kv.value,
            mask,
            if train { self.dropout } else { 0.0 },
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
    dropout: f64,
}

impl ResidualOutput {
    fn new(p: nn::Path<'_>, input: i64, c: &BertConfig) -> Self {
        Self {
            dense: nn::linear(&p / "dense", input, c.hidden_size, Default::default()),
            layer_norm: super::layer_norm(&p / "LayerNorm", c),
            dropout: c.hidden_dropout_prob,
        }
    }

    fn forward_t(&self, x: &Tensor, residual: &Tensor, train: bool) -> Tensor {
        let projected = self.dense.forward(x).dropout(self.dropout, train);
        self.layer_norm.forward(&(projected + residual))
    }
}

/// What one layer attends to besides its input.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerContext<'a> {
    /// Additive self-attention mask (`None`: every token sees every token).
    pub mask: Option<&'a Tensor>,
    /// Keys and values of earlier tokens (generation cache).
    pub past: Option<&'a KeyValue>,
    /// Cross-attention keys and values; `None` skips cross-attention (the
    /// unimodal text pass).
    pub cross: Option<&'a KeyValue>,
    /// Training mode (dropout on).
    pub train: bool,
}

/// One BERT layer.
#[derive(Debug)]
pub struct BertLayer {
    attention: Attention,
    attention_output: ResidualOutput,
    crossattention: Option<(Attention, ResidualOutput)>,
    intermediate: nn::Linear,
    output: ResidualOutput,
}

impl BertLayer {
    /// Variables under `p` (`encoder.layer.N`), named as the checkpoint's
    /// keys; `cross_width`: the width of the states cross-attention reads
    /// (`None`: a plain BERT layer without `crossattention`).
    pub fn new(p: nn::Path<'_>, c: &BertConfig, cross_width: Option<i64>) -> Self {
        let attention = &p / "attention";
        let crossattention = cross_width.map(|width| {
            let cross = &p / "crossattention";
            (
                Attention::new(&cross / "self", c, width),
                ResidualOutput::new(&cross / "output", c.hidden_size, c),
            )
        });
        Self {
            attention: Attention::new(&attention / "self", c, c.hidden_size),
            attention_output: ResidualOutput::new(&attention / "output", c.hidden_size, c),
            crossattention,
            intermediate: nn::linear(
                &p / "intermediate" / "dense",
                c.hidden_size,
                c.intermediate_size,
                Default::default(),
            ),
            output: ResidualOutput::new(&p / "output", c.intermediate_size, c),
        }
    }

    /// Cross-attention keys and values of `states` (`[batch, tokens,
    /// width]`), or `None` for a layer without cross-attention.
    pub fn cross_key_value(&self, states: &Tensor) -> Option<KeyValue> {
        self.crossattention
            .as_ref()
            .map(|(attention, _)| attention.key_value(states))
    }

    /// `x`: `[batch, seq, hidden]`. Returns the layer's output and the
    /// self-attention keys and values of all tokens so far (past included).
    pub fn forward(&self, x: &Tensor, ctx: LayerContext<'_>) -> (Tensor, KeyValue) {
        let fresh = self.attention.key_value(x);
        let kv = match ctx.past {
            Some(past) if !past.is_empty() => KeyValue {
                key: Tensor::cat(&[&past.key, &fresh.key], 2),
                value: Tensor::cat(&[&past.value, &fresh.value], 2),
            },
            _ => fresh,
        };
        let attended = self.attention.attend(x, &kv, ctx.mask, ctx.train);
        let mut hidden = self.attention_output.forward_t(&attended, x, ctx.train);
        if let (Some((attention, output)), Some(cross)) = (&self.crossattention, ctx.cross) {
            let read = attention.attend(&hidden, cross, None, ctx.train);
            hidden = output.forward_t(&read, &hidden, ctx.train);
        }
        // BERT's "gelu" is the exact, erf-based one.
        let inner = self.intermediate.forward(&hidden).gelu("none");
        (self.output.forward_t(&inner, &hidden, ctx.train), kv)
    }
}
