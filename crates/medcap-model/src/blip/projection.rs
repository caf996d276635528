//! BLIP's image-text contrastive projections (`vision_proj`, `text_proj`):
//! the class token of each side projected into a shared space of
//! `image_text_hidden_size`, then L2-normalised, as transformers'
//! `BlipForImageTextRetrieval` computes its ITC features. The retrieval
//! model and the fine-tuning recipe's contrastive loss use the same heads.

use tch::Tensor;
use tch::nn::{self, Module};

/// `x / max(|x|, 1e-12)` along the last dimension, as
/// `torch.nn.functional.normalize(x, dim=-1)`.
pub fn l2_normalize(x: &Tensor) -> Tensor {
    let norm = x
        .norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)
        .clamp_min(1e-12);
    x / norm
}

/// The two linear projections, under `vision_proj.*` and `text_proj.*` of
/// the path they are created at.
#[derive(Debug)]
pub struct ContrastiveProjections {
    /// `vision_proj`: vision width → shared width.
    pub vision_proj: nn::Linear,
    /// `text_proj`: text width → shared width.
    pub text_proj: nn::Linear,
}

impl ContrastiveProjections {
    /// Fresh projections at `path` (torch's default Linear initialisation
    /// from libtorch's generator): `vision_width` and `text_width` to `width`.
    pub fn new(path: &nn::Path<'_>, vision_width: i64, text_width: i64, width: i64) -> Self {
        Self {
            vision_proj: nn::linear(
                path / "vision_proj",
                vision_width,
                width,
                Default::default(),
            ),
            text_proj: nn::linear(path / "text_proj", text_width, width, Default::default()),
        }
    }

    /// The class token of `image_embeds` `[images, patches + 1, vision width]`
    /// through `vision_proj`: `[images, width]`, not normalised.
    pub fn project_image(&self, image_embeds: &Tensor) -> Tensor {
        self.vision_proj.forward(&image_embeds.select(1, 0))
    }

    /// The class token of `text_hidden` `[texts, seq, text width]` through
    /// `text_proj`: `[texts, width]`, not normalised.
    pub fn project_text(&self, text_hidden: &Tensor) -> Tensor {
        self.text_proj.forward(&text_hidden.select(1, 0))
    }

    /// ITC image features: [`Self::project_image`], L2-normalised.
    pub fn image_features(&self, image_embeds: &Tensor) -> Tensor {
        l2_normalize(&self.project_image(image_embeds))
    }

    /// ITC text features: [`Self::project_text`], L2-normalised.
    pub fn text_features(&self, text_hidden: &Tensor) -> Tensor {
        l2_normalize(&self.project_text(text_hidden))
    }
}
