//! Building blocks every network of the crate shares: a layer norm over a
//! checkpoint's hidden width with its epsilon (`LayerNorm.weight`,
//! `LayerNorm.bias`).

use tch::nn;

/// A `LayerNorm` over the last `width` values with epsilon `eps`, its
/// weight and bias under `p`. libtorch's layer norm is the biased-variance,
/// epsilon-inside-the-root one of BERT, DeBERTa and ViT alike.
pub(crate) fn layer_norm(p: nn::Path<'_>, width: i64, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![width],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}
