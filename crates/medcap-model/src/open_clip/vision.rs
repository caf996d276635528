//! `visual.*`: open_clip's `TimmModel` around a timm `VisionTransformer`
//! (`trunk`: patch embedding with bias, `cls_token`, `pos_embed`, pre-norm
//! `blocks` with a fused `qkv`, final `norm`, the class token pooled) and
//! its `head.proj`, as BiomedCLIP's image tower. The geometry is read from
//! the weights; the heads from timm's model name.

use std::collections::HashMap;

use tch::{Tensor, nn, nn::Module};

use crate::error::ModelError;

/// The tower's geometry.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct VitGeometry {
    pub width: i64,
    pub depth: usize,
    pub heads: i64,
    pub mlp: i64,
    pub patch: i64,
    pub image_size: i64,
    pub embed_dim: i64,
    pub proj_bias: bool,
}

impl VitGeometry {
    /// The geometry of the stored `visual.*` tensors, `heads` from timm's
    /// name for the model (`vit_base_patch16_224`: 12), else one head per
    /// 64 channels (every timm ViT but `huge` has 64-channel heads).
    pub(super) fn from_shapes(
        shapes: &HashMap<String, Vec<i64>>,
        timm_name: &str,
        image_size: i64,
        embed_dim: i64,
        proj_bias: bool,
    ) -> Result<Self, String> {
        let shape = |key: &str| {
            shapes
                .get(key)
                .cloned()
                .ok_or_else(|| format!("no `{key}` in the weights"))
        };
        let patch = shape("visual.trunk.patch_embed.proj.weight")?;
        let (width, patch) = match patch.as_slice() {
            [w, 3, p, q] if p == q => (*w, *p),
            other => return Err(format!("visual.trunk.patch_embed.proj.weight is {other:?}")),
        };
        let depth = (0..)
            .take_while(|i| {
                shapes.contains_key(&format!("visual.trunk.blocks.{i}.attn.qkv.weight"))
            })
            .count();
        let mlp = shape("visual.trunk.blocks.0.mlp.fc1.weight")?[0];
        let heads = match timm_name.split('_').nth(1) {
            Some("huge") => 16,
            _ if width % 64 == 0 => width / 64,
            _ => {
                return Err(format!(
                    "cannot tell the heads of `{timm_name}` (width {width} is not a multiple of 64)"
                ));
            }
        };
        let positions = shape("visual.trunk.pos_embed")?;
        let grid = image_size / patch;
        if image_size % patch != 0 || positions != [1, grid * grid + 1, width] {
            return Err(format!(
                "visual.trunk.pos_embed is {positions:?}, not the [1, {}, {width}] of {image_size} px \
                 images in {patch} px patches",
                grid * grid + 1
            ));
        }
        Ok(Self {
            width,
            depth,
            heads,
            mlp,
            patch,
            image_size,
            embed_dim,
            proj_bias,
        })
    }
}

/// `trunk.blocks.N`.
#[derive(Debug)]
struct Block {
    norm1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
}

/// timm's layer norms use epsilon 1e-6.
const EPS: f64 = 1e-6;

impl Block {
    fn new(p: nn::Path<'_>, g: &VitGeometry) -> Self {
        let d = g.width;
        let linear = |q: nn::Path<'_>, i, o| nn::linear(q, i, o, Default::default());
        Self {
            norm1: crate::layers::layer_norm(&p / "norm1", d, EPS),
            qkv: linear(&p / "attn" / "qkv", d, 3 * d),
            proj: linear(&p / "attn" / "proj", d, d),
            norm2: crate::layers::layer_norm(&p / "norm2", d, EPS),
            fc1: linear(&p / "mlp" / "fc1", d, g.mlp),
            fc2: linear(&p / "mlp" / "fc2", g.mlp, d),
            heads: g.heads,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let (b, n, d) = (size[0], size[1], size[2]);
        let qkv = self
            .qkv
            .forward(&self.norm1.forward(x))
            .reshape([b, n, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let context = Tensor::scaled_dot_product_attention(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None::<&Tensor>,
            0.0,
            false,
            None,
            false,
        );
        let x = x + self
            .proj
            .forward(&context.transpose(1, 2).reshape([b, n, d]));
        let inner = self.fc1.forward(&self.norm2.forward(&x)).gelu("none");
        &x + self.fc2.forward(&inner)
    }
}

/// The image tower.
#[derive(Debug)]
pub(super) struct TimmVit {
    cls_token: Tensor,
    pos_embed: Tensor,
    patch_embed: nn::Conv2D,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    head: nn::Linear,
    image_size: i64,
}

impl TimmVit {
    /// Variables under `p` (`visual`).
    pub(super) fn new(p: &nn::Path<'_>, g: &VitGeometry) -> Self {
        let trunk = p / "trunk";
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        Self {
            cls_token: trunk.var("cls_token", &[1, 1, g.width], init),
            pos_embed: trunk.var(
                "pos_embed",
                &[1, (g.image_size / g.patch).pow(2) + 1, g.width],
                init,
            ),
            patch_embed: nn::conv2d(
                &trunk / "patch_embed" / "proj",
                3,
                g.width,
                g.patch,
                nn::ConvConfig {
                    stride: g.patch,
                    ..Default::default()
                },
            ),
            blocks: (0..g.depth)
                .map(|i| Block::new(&trunk / "blocks" / i, g))
                .collect(),
            norm: crate::layers::layer_norm(&trunk / "norm", g.width, EPS),
            head: nn::linear(
                p / "head" / "proj",
                g.width,
                g.embed_dim,
                nn::LinearConfig {
                    bias: g.proj_bias,
                    ..Default::default()
                },
            ),
            image_size: g.image_size,
        }
    }

    /// `pixel_values` `[batch, 3, side, side]` to image features `[batch, embed_dim]`.
    pub(super) fn features(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
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
            .patch_embed
            .forward(pixel_values)
            .flatten(2, -1)
            .transpose(1, 2);
        let class = self.cls_token.expand([size[0], 1, -1], false);
        let mut x = Tensor::cat(&[class, patches], 1) + &self.pos_embed;
        for block in &self.blocks {
            x = block.forward(&x);
        }
        Ok(self.head.forward(&self.norm.forward(&x).select(1, 0)))
    }
}
