//! CLIP in the Hugging Face `CLIPModel` layout: the vision transformer
//! (`vision`), the causal text transformer (`text`), both projections
//! and `logit_scale`, module paths equal to the checkpoint keys; its BPE
//! tokenizer (`tokenizer.json`, through `tokenizers`) and
//! `CLIPImageProcessor` (`preprocessor_config.json`).
//!
//! Features are transformers' `get_image_features` / `get_text_features`:
//! the pooled outputs through `visual_projection` / `text_projection`, not
//! normalised.

mod config;
mod layer;
mod text;
mod vision;

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor, nn, nn::Module};
use tokenizers::Tokenizer;

pub use config::{ClipConfig, ClipTextConfig, ClipTowerConfig, ClipVisionConfig};

use crate::checkpoint::{self, KeyRules, LoadReport, read_config};
use crate::error::ModelError;
use crate::preprocess::{ImageProcessor, RgbImage};

/// A `CLIPModel` with its tokenizer and image processor.
#[derive(Debug)]
pub struct ClipModel {
    config: ClipConfig,
    vars: nn::VarStore,
    text_model: text::ClipTextTransformer,
    vision_model: vision::ClipVisionTransformer,
    visual_projection: nn::Linear,
    text_projection: nn::Linear,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    processor: ImageProcessor,
    bos_eos: (u32, u32),
}

impl ClipModel {
    /// Loads `config.json`, the safetensors weights, `tokenizer.json` and
    /// `preprocessor_config.json` of `dir`.
    ///
    /// # Errors
    /// [`ModelError::Config`] for a configuration that is not a usable
    /// CLIP one, [`ModelError::Checkpoint`] for missing or mis-shaped
    /// weights, [`ModelError::Tokenizer`] for a missing or unusable
    /// tokenizer, [`ModelError::ConfigFile`] for a bad preprocessor file.
    pub fn from_dir(dir: &Path, device: Device) -> Result<(Self, LoadReport), ModelError> {
        let (config, path): (ClipConfig, _) = read_config(dir)?;
        config
            .check()
            .map_err(|reason| ModelError::Config { path, reason })?;
        let vars = nn::VarStore::new(device);
        let root = vars.root();
        let (t, v) = (&config.text_config, &config.vision_config);
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let text_model = text::ClipTextTransformer::new(&(&root / "text_model"), t);
        let vision_model = vision::ClipVisionTransformer::new(&(&root / "vision_model"), v);
        let visual_projection = nn::linear(
            &root / "visual_projection",
            v.tower.hidden_size,
            config.projection_dim,
            no_bias,
        );
        let text_projection = nn::linear(
            &root / "text_projection",
            t.tower.hidden_size,
            config.projection_dim,
            no_bias,
        );
        // Read so that the checkpoint's scalar is accounted for; similarity
        // scores use cosines, not logits.
        let _logit_scale = root.var("logit_scale", &[], nn::Init::Const(2.6592));
        let report = checkpoint::load(&vars, dir, &KeyRules::default())?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| ModelError::Tokenizer {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        let special = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| ModelError::Tokenizer {
                    path: tokenizer_path.clone(),
                    reason: format!("no {token} token: not a CLIP tokenizer"),
                })
        };
        let bos_eos = (special("<|startoftext|>")?, special("<|endoftext|>")?);
        let processor = ImageProcessor::from_dir(dir, v.image_size)?;
        Ok((
            Self {
                config,
                vars,
                text_model,
                vision_model,
                visual_projection,
                text_projection,
                tokenizer,
                tokenizer_path,
                processor,
                bos_eos,
            },
            report,
        ))
    }

    /// The configuration.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vars.device()
    }

    /// The image processor (`preprocessor_config.json`).
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// Token ids of `text`: `<|startoftext|>`, the pieces, `<|endoftext|>`;
    /// past the context length (77), the pieces are cut and the last
    /// position holds `<|endoftext|>`, as OpenAI's `clip.tokenize(...,
    /// truncate=True)` and transformers' `truncation=True` do.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when the tokenizer fails on the text.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer {
                path: self.tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        let context = self.config.text_config.max_position_embeddings as usize;
        let pieces = encoding.get_ids();
        let keep = pieces.len().min(context.saturating_sub(2));
        let mut ids = Vec::with_capacity(keep + 2);
        ids.push(self.bos_eos.0);
        ids.extend_from_slice(&pieces[..keep]);
        ids.push(self.bos_eos.1);
        Ok(ids)
    }

    /// [`Self::text_features`] with the ids sliced at the context length
    /// instead of cut before `<|endoftext|>`, as torchmetrics' `CLIPScore`
    /// truncates (the end token of a long text is then lost, and the
    /// pooled position is the first `<|endoftext|>` or, with none, the
    /// first token).
    ///
    /// # Errors
    /// As [`Self::text_features`].
    pub fn text_features_sliced(&self, texts: &[&str]) -> Result<Tensor, ModelError> {
        let context = self.config.text_config.max_position_embeddings as usize;
        let ids = texts
            .iter()
            .map(|t| {
                let encoding =
                    self.tokenizer
                        .encode(*t, false)
                        .map_err(|e| ModelError::Tokenizer {
                            path: self.tokenizer_path.clone(),
                            reason: e.to_string(),
                        })?;
                let mut ids = Vec::with_capacity(encoding.get_ids().len() + 2);
                ids.push(self.bos_eos.0);
                ids.extend_from_slice(encoding.get_ids());
                ids.push(self.bos_eos.1);
                ids.truncate(context);
                Ok(ids)
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        self.features_of_ids(&ids)
    }

    /// Text features `[texts, projection_dim]` (float32, not normalised).
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when a text cannot be tokenized,
    /// [`ModelError::Torch`] when libtorch fails.
    pub fn text_features(&self, texts: &[&str]) -> Result<Tensor, ModelError> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        self.features_of_ids(&ids)
    }

    fn features_of_ids(&self, ids: &[Vec<u32>]) -> Result<Tensor, ModelError> {
        // Padding after `<|endoftext|>` is masked and never pooled.
        let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let device = self.device();
        let input_ids = crate::batch::padded(&rows, i64::from(self.bos_eos.1), device);
        let _guard = tch::no_grad_guard();
        let pooled = self.text_model.pooled(&input_ids);
        Ok(self.text_projection.forward(&pooled).to_kind(Kind::Float))
    }

    /// Image features `[images, projection_dim]` of preprocessed
    /// `pixel_values` `[images, 3, image_size, image_size]`.
    ///
    /// # Errors
    /// [`ModelError::Shape`] / [`ModelError::ImageSize`] for pixel values of
    /// another shape.
    pub fn image_features_of_pixels(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
        let _guard = tch::no_grad_guard();
        let pooled = self
            .vision_model
            .pooled(&pixel_values.to_device(self.device()))?;
        Ok(self.visual_projection.forward(&pooled).to_kind(Kind::Float))
    }

    /// Image features `[images, projection_dim]` of decoded images, through
    /// the processor.
    ///
    /// # Errors
    /// As [`Self::image_features_of_pixels`].
    pub fn image_features(&self, images: &[RgbImage]) -> Result<Tensor, ModelError> {
        self.image_features_of_pixels(&self.processor.pixel_values(images)?)
    }
}
