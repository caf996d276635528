//! `encoder.layer.N.attention.self`: DeBERTa's disentangled self-attention
//! (He et al. 2021, "DeBERTa: Decoding-enhanced BERT with Disentangled
//! Attention"), as transformers' `DisentangledSelfAttention` computes it:
//!
//! - queries, keys and values from one projection without bias
//!   (`in_proj`, laid out head by head: q, k, v of head 0, then head 1, ...),
//!   then `q_bias` and `v_bias` added;
//! - scores `q·k / sqrt(d·f)` with `f = 1 + len(pos_att_type)`;
//! - content-to-position (`c2p`): `q_i · pos_proj(r)` and
//!   position-to-content (`p2c`): `k_j · pos_q_proj(r) / sqrt(d·f)`, both at
//!   the relative distance `clamp(i - j + span, 0, 2·span - 1)` into the
//!   rows `max_relative - span .. max_relative + span` of
//!   `encoder.rel_embeddings`, where `span = min(seq, max_relative)`;
//! - masked keys get the dtype's minimum, softmax, values.

use tch::{Kind, Tensor, nn, nn::Module};

use super::DebertaConfig;

/// What the relative terms of every layer share in one pass.
#[derive(Debug)]
pub struct RelativeContext {
    /// `encoder.rel_embeddings` rows of the span, `[2·span, hidden]`.
    pub embeddings: Tensor,
    /// `[seq, seq]`: `clamp(i - j + span, 0, 2·span - 1)` (int64).
    pub index: Tensor,
}

impl RelativeContext {
    /// The context of a pass over `seq` tokens: `rel_embeddings`
    /// `[2·max_relative, hidden]`.
    pub fn new(rel_embeddings: &Tensor, seq: i64, max_relative: i64) -> Self {
        let span = seq.min(max_relative);
        let device = rel_embeddings.device();
        let i = Tensor::arange(seq, (Kind::Int64, device)).unsqueeze(1);
        let j = Tensor::arange(seq, (Kind::Int64, device)).unsqueeze(0);
        let index = (i - j + span).clamp(0, 2 * span - 1);
        Self {
            embeddings: rel_embeddings.narrow(0, max_relative - span, 2 * span),
            index,
        }
    }
}

/// Disentangled self-attention of one layer.
#[derive(Debug)]
pub struct DisentangledSelfAttention {
    in_proj: nn::Linear,
    q_bias: Tensor,
    v_bias: Tensor,
    pos_proj: Option<nn::Linear>,
    pos_q_proj: Option<nn::Linear>,
    heads: i64,
    head_dim: i64,
    scale_factor: i64,
}

impl DisentangledSelfAttention {
    /// Variables under `p` (`attention.self`), named as the checkpoint's keys.
    pub fn new(p: nn::Path<'_>, c: &DebertaConfig) -> Self {
        let h = c.hidden_size;
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        Self {
            in_proj: nn::linear(&p / "in_proj", h, 3 * h, no_bias),
            q_bias: p.zeros("q_bias", &[h]),
            v_bias: p.zeros("v_bias", &[h]),
            pos_proj: c.c2p().then(|| nn::linear(&p / "pos_proj", h, h, no_bias)),
            pos_q_proj: c
                .p2c()
                .then(|| nn::linear(&p / "pos_q_proj", h, h, Default::default())),
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            scale_factor: c.scale_factor(),
        }
    }

    /// `[batch, seq, heads·w]` → `[batch, heads, seq, w]`.
    fn split_heads(&self, y: &Tensor) -> Tensor {
        let size = y.size();
        y.view([size[0], size[1], self.heads, -1])
            .permute([0, 2, 1, 3])
    }

    /// `sqrt(head_dim · factor)`, in f32 as transformers computes it.
    fn scale(&self) -> f64 {
        f64::from(((self.head_dim * self.scale_factor) as f32).sqrt())
    }

    /// `x`: `[batch, seq, hidden]`; `mask`: `[batch, 1, seq, seq]` bool;
    /// `relative`: the shared relative context, `None` without relative
    /// attention. Returns `[batch, seq, hidden]` (before `attention.output`).
    pub fn forward(&self, x: &Tensor, mask: &Tensor, relative: Option<&RelativeContext>) -> Tensor {
        let (b, t) = (x.size()[0], x.size()[1]);
        let qkv = self.split_heads(&self.in_proj.forward(x)).chunk(3, -1);
        let bias = |v: &Tensor| v.view([1, self.heads, 1, self.head_dim]);
        let query = (&qkv[0] + bias(&self.q_bias)) / self.scale();
        let key = &qkv[1];
        let value = &qkv[2] + bias(&self.v_bias);
        let mut scores = query.matmul(&key.transpose(-1, -2));
        if let Some(rel) = relative {
            let expanded = rel.index.expand([b, self.heads, t, t], false);
            let positions = rel.embeddings.unsqueeze(0);
            if let Some(pos_proj) = &self.pos_proj {
                let pos_key = self.split_heads(&pos_proj.forward(&positions));
                let c2p = query.matmul(&pos_key.transpose(-1, -2));
                scores += c2p.gather(-1, &expanded, false);
            }
            if let Some(pos_q_proj) = &self.pos_q_proj {
                let pos_query = self.split_heads(&pos_q_proj.forward(&positions)) / self.scale();
                let p2c = key.matmul(&pos_query.transpose(-1, -2).to_kind(key.kind()));
                // Entry (i, j) is key j against the distance of (i, j):
                // gathered at [j, i], then transposed.
                let transposed = rel
                    .index
                    .transpose(0, 1)
                    .expand([b, self.heads, t, t], false);
                scores += p2c.gather(-1, &transposed, false).transpose(-1, -2);
            }
        }
        let min = match scores.kind() {
            // torch.finfo(float16 / bfloat16).min
            Kind::Half => -65504.0,
            Kind::BFloat16 => -3.389_531_389_251_535_5e38,
            Kind::Double => f64::MIN,
            _ => f64::from(f32::MIN),
        };
        let probs = scores
            .masked_fill(&mask.logical_not(), min)
            .softmax(-1, scores.kind());
        probs
            .matmul(&value)
            .permute([0, 2, 1, 3])
            .contiguous()
            .view([b, t, self.heads * self.head_dim])
    }
}
