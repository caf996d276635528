//! `vision_model.*`: CLIP's vision transformer (patch embedding without
//! bias, class embedding, position embeddings, `pre_layrnorm`, encoder
//! layers, `post_layernorm` on the class token), as transformers'
//! `CLIPVisionTransformer`.

use tch::{Tensor, nn, nn::Module};

use super::config::ClipVisionConfig;
use super::layer::ClipLayer;
use crate::error::ModelError;

/// The image tower, up to its pooled output.
#[derive(Debug)]
pub(super) struct ClipVisionTransformer {
    class_embedding: Tensor,
    patch_embedding: nn::Conv2D,
    position_embedding: Tensor,
    pre_layrnorm: nn::LayerNorm,
    layers: Vec<ClipLayer>,
    post_layernorm: nn::LayerNorm,
    image_size: i64,
}

impl ClipVisionTransformer {
    pub(super) fn new(p: &nn::Path<'_>, c: &ClipVisionConfig) -> Self {
        let t = &c.tower;
        let e = p / "embeddings";
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        Self {
            class_embedding: e.var("class_embedding", &[t.hidden_size], init),
            patch_embedding: nn::conv2d(
                &e / "patch_embedding",
                c.num_channels,
                t.hidden_size,
                c.patch_size,
                nn::ConvConfig {
                    stride: c.patch_size,
                    bias: false,
                    ..Default::default()
                },
            ),
            position_embedding: (&e / "position_embedding").var(
                "weight",
                &[c.grid() * c.grid() + 1, t.hidden_size],
                init,
            ),
            pre_layrnorm: crate::layers::layer_norm(
                p / "pre_layrnorm",
                t.hidden_size,
                t.layer_norm_eps,
            ),
            layers: (0..t.num_hidden_layers)
                .map(|i| ClipLayer::new(p / "encoder" / "layers" / i, t))
                .collect(),
            post_layernorm: crate::layers::layer_norm(
                p / "post_layernorm",
                t.hidden_size,
                t.layer_norm_eps,
            ),
            image_size: c.image_size,
        }
    }

    /// `pixel_values` `[batch, 3, image_size, image_size]` to the pooled
    /// output `[batch, hidden]` (the class token after `post_layernorm`).
    pub(super) fn pooled(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
        let size = pixel_values.size();
        if size.len() != 4 || size[1] != 3 {
            return Err(ModelError::Shape {
                what: "pixel_values",
                expected: "[batch, 3, height, width]".into(),
                found: size,
            });
        }
        if size[2] != self.image_size || size[3] != self.image_size {
            return Err(ModelError::ImageSize {
                expected: self.image_size,
                height: size[2],
                width: size[3],
            });
        }
        let patches = self
            .patch_embedding
            .forward(&pixel_values.to_kind(self.patch_embedding.ws.kind()))
            .flatten(2, -1)
            .transpose(1, 2);
        let batch = patches.size()[0];
        let class = self
            .class_embedding
            .view([1, 1, -1])
            .expand([batch, 1, -1], false);
        let mut x = self
            .pre_layrnorm
            .forward(&(Tensor::cat(&[class, patches], 1) + self.position_embedding.unsqueeze(0)));
        for layer in &self.layers {
            x = layer.forward(&x, false);
        }
        Ok(self.post_layernorm.forward(&x.select(1, 0)))
    }
}
