//! `vision_model.*`: BLIP's pre-norm ViT (patch embedding, class token,
//! position embeddings, encoder layers, post-LayerNorm), as transformers'
//! `BlipVisionModel`.

use tch::{Tensor, nn, nn::Module};

use super::BlipVisionConfig;
use crate::error::ModelError;

fn layer_norm(p: nn::Path<'_>, c: &BlipVisionConfig) -> nn::LayerNorm {
    crate::layers::layer_norm(p, c.hidden_size, c.layer_norm_eps)
}

/// `embeddings`: patches, class token and position embeddings.
#[derive(Debug)]
struct VisionEmbeddings {
    class_embedding: Tensor,
    patch_embedding: nn::Conv2D,
    position_embedding: Tensor,
    patch_size: i64,
    grid: i64,
}

impl VisionEmbeddings {
    fn new(p: nn::Path<'_>, c: &BlipVisionConfig) -> Self {
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: c.initializer_range,
        };
        Self {
            class_embedding: p.var("class_embedding", &[1, 1, c.hidden_size], init),
            patch_embedding: nn::conv2d(
                &p / "patch_embedding",
                3,
                c.hidden_size,
                c.patch_size,
                nn::ConvConfig {
                    stride: c.patch_size,
                    ..Default::default()
                },
            ),
            position_embedding: p.var(
                "position_embedding",
                &[1, c.num_positions(), c.hidden_size],
                init,
            ),
            patch_size: c.patch_size,
            grid: c.grid(),
        }
    }

    /// The position embeddings resized to a `rows` x `cols` patch grid
    /// (bicubic, `align_corners=False`; the class position is kept), as
    /// transformers' `interpolate_pos_encoding`.
    fn positions_for(&self, rows: i64, cols: i64) -> Tensor {
        if rows == self.grid && cols == self.grid {
            return self.position_embedding.shallow_clone();
        }
        let dim = self.position_embedding.size()[2];
        let class_position = self.position_embedding.narrow(1, 0, 1);
        let grid = self
            .position_embedding
            .narrow(1, 1, self.grid * self.grid)
            .reshape([1, self.grid, self.grid, dim])
            .permute([0, 3, 1, 2]);
        let resized = grid
            .upsample_bicubic2d([rows, cols], false, None, None)
            .permute([0, 2, 3, 1])
            .reshape([1, rows * cols, dim]);
        Tensor::cat(&[class_position, resized], 1)
    }

    fn forward(&self, pixel_values: &Tensor, interpolate: bool) -> Result<Tensor, ModelError> {
        let size = pixel_values.size();
        let (height, width) = (size[2], size[3]);
        let expected = self.grid * self.patch_size;
        if !interpolate && (height != expected || width != expected) {
            return Err(ModelError::ImageSize {
                expected,
                height,
                width,
            });
        }
        let weight_kind = self.patch_embedding.ws.kind();
        let patches = self
            .patch_embedding
            .forward(&pixel_values.to_kind(weight_kind))
            .flatten(2, -1)
            .transpose(1, 2);
        let batch = patches.size()[0];
        let class = self
            .class_embedding
            .expand([batch, 1, -1], false)
            .to_kind(patches.kind());
        let tokens = Tensor::cat(&[class, patches], 1);
        let positions = self.positions_for(height / self.patch_size, width / self.patch_size);
        Ok(tokens + positions)
    }
}

/// `self_attn`: fused `qkv` projection, attention, `projection`.
#[derive(Debug)]
struct VisionAttention {
    qkv: nn::Linear,
    projection: nn::Linear,
    heads: i64,
    dropout: f64,
}

impl VisionAttention {
    fn new(p: nn::Path<'_>, c: &BlipVisionConfig) -> Self {
        let d = c.hidden_size;
        Self {
            qkv: nn::linear(&p / "qkv", d, 3 * d, Default::default()),
            projection: nn::linear(&p / "projection", d, d, Default::default()),
            heads: c.num_attention_heads,
            dropout: c.attention_dropout,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let size = x.size();
        let (b, n, d) = (size[0], size[1], size[2]);
        // The qkv rows are laid out [q; k; v], each split into heads.
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let context = Tensor::scaled_dot_product_attention(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None::<&Tensor>,
            if train { self.dropout } else { 0.0 },
            false,
            None,
            false,
        );
        self.projection
            .forward(&context.permute([0, 2, 1, 3]).reshape([b, n, d]))
    }
}

/// `encoder.layers.N`: pre-norm attention and MLP blocks.
#[derive(Debug)]
struct VisionLayer {
    self_attn: VisionAttention,
    layer_norm1: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    layer_norm2: nn::LayerNorm,
}

impl VisionLayer {
    fn new(p: nn::Path<'_>, c: &BlipVisionConfig) -> Self {
        let mlp = &p / "mlp";
        Self {
            self_attn: VisionAttention::new(&p / "self_attn", c),
            layer_norm1: layer_norm(&p / "layer_norm1", c),
            fc1: nn::linear(
                &mlp / "fc1",
                c.hidden_size,
                c.intermediate_size,
                Default::default(),
            ),
            fc2: nn::linear(
                &mlp / "fc2",
                c.intermediate_size,
                c.hidden_size,
                Default::default(),
            ),
            layer_norm2: layer_norm(&p / "layer_norm2", c),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = x + self
            .self_attn
            .forward_t(&self.layer_norm1.forward(x), train);
        let inner = self.fc1.forward(&self.layer_norm2.forward(&h)).gelu("none");
        &h + self.fc2.forward(&inner)
    }
}

/// BLIP's image encoder.
#[derive(Debug)]
pub struct BlipVisionModel {
    embeddings: VisionEmbeddings,
    layers: Vec<VisionLayer>,
    post_layernorm: nn::LayerNorm,
}

impl BlipVisionModel {
    /// Variables under `p` (`vision_model`), named as the checkpoint's keys.
    pub fn new(p: &nn::Path<'_>, c: &BlipVisionConfig) -> Self {
        let layers = (0..c.num_hidden_layers)
            .map(|i| VisionLayer::new(p / "encoder" / "layers" / i, c))
            .collect();
        Self {
            embeddings: VisionEmbeddings::new(p / "embeddings", c),
            layers,
            post_layernorm: layer_norm(p / "post_layernorm", c),
        }
    }

    /// `pixel_values`: `[batch, 3, height, width]`, normalised. Returns the
    /// image tokens `[batch, 1 + patches, width]` (transformers'
    /// `last_hidden_state`: what cross-attention, ITM and ITC read). Inputs
    /// of another size than the configured one need `interpolate`, which
    /// resizes the position embeddings to the patch grid.
    pub fn forward_t(
        &self,
        pixel_values: &Tensor,
        interpolate: bool,
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let size = pixel_values.size();
        if size.len() != 4 || size[1] != 3 {
            return Err(ModelError::Shape {
                what: "pixel_values",
                expected: "[batch, 3, height, width]".into(),
                found: size,
            });
        }
        let mut x = self.embeddings.forward(pixel_values, interpolate)?;
        for layer in &self.layers {
            x = layer.forward_t(&x, train);
        }
        Ok(self.post_layernorm.forward(&x))
    }
}
