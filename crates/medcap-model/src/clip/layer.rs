//! `encoder.layers.N`: the pre-norm transformer layer both CLIP towers
//! share (`self_attn.{q,k,v,out}_proj`, `layer_norm1`, `mlp.fc1`/`fc2`,
//! `layer_norm2`), as transformers' `CLIPEncoderLayer`.

use tch::{Tensor, nn, nn::Module};

use super::config::ClipTowerConfig;

/// The feed-forward activation.
#[derive(Debug, Clone, Copy)]
enum Activation {
    /// `x * sigmoid(1.702 x)`, OpenAI CLIP's.
    QuickGelu,
    /// The exact, erf-based GELU.
    Gelu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::QuickGelu => x * (x * 1.702).sigmoid(),
            Activation::Gelu => x.gelu("none"),
        }
    }
}

/// One layer.
#[derive(Debug)]
pub(super) struct ClipLayer {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    out_proj: nn::Linear,
    layer_norm1: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    layer_norm2: nn::LayerNorm,
    heads: i64,
    activation: Activation,
}

impl ClipLayer {
    pub(super) fn new(p: nn::Path<'_>, c: &ClipTowerConfig) -> Self {
        let d = c.hidden_size;
        let attn = &p / "self_attn";
        let mlp = &p / "mlp";
        let linear = |q: nn::Path<'_>, i, o| nn::linear(q, i, o, Default::default());
        Self {
            q_proj: linear(&attn / "q_proj", d, d),
            k_proj: linear(&attn / "k_proj", d, d),
            v_proj: linear(&attn / "v_proj", d, d),
            out_proj: linear(&attn / "out_proj", d, d),
            layer_norm1: crate::layers::layer_norm(&p / "layer_norm1", d, c.layer_norm_eps),
            fc1: linear(&mlp / "fc1", d, c.intermediate_size),
            fc2: linear(&mlp / "fc2", c.intermediate_size, d),
            layer_norm2: crate::layers::layer_norm(&p / "layer_norm2", d, c.layer_norm_eps),
            heads: c.num_attention_heads,
            activation: if c.hidden_act == "gelu" {
                Activation::Gelu
            } else {
                Activation::QuickGelu
            },
        }
    }

    /// `x`: `[batch, seq, width]`; `causal`: each position attends to
    /// itself and the positions before it (the text tower), else to all.
    pub(super) fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        let size = x.size();
        let (b, n, d) = (size[0], size[1], size[2]);
        let heads = |t: Tensor| t.view([b, n, self.heads, d / self.heads]).transpose(1, 2);
        let h = self.layer_norm1.forward(x);
        let context = Tensor::scaled_dot_product_attention(
            &heads(self.q_proj.forward(&h)),
            &heads(self.k_proj.forward(&h)),
            &heads(self.v_proj.forward(&h)),
            None::<&Tensor>,
            0.0,
            causal,
            None,
            false,
        );
        let x = x + self
            .out_proj
            .forward(&context.transpose(1, 2).reshape([b, n, d]));
        let inner = self
            .activation
            .apply(&self.fc1.forward(&self.layer_norm2.forward(&x)));
        &x + self.fc2.forward(&inner)
    }
}
