//! open_clip's layout for image–text models whose towers come from timm
//! and Hugging Face (BiomedCLIP: a ViT-B/16 and PubMedBERT), read from a
//! local directory as open_clip's `local-dir:` reads it:
//! `open_clip_config.json`, `open_clip_model.safetensors` (or
//! `model.safetensors`), and the text tower's tokenizer (`tokenizer.json`).
//!
//! Features are open_clip's `encode_image` / `encode_text` (not
//! normalised). Images go through open_clip's transform (torchvision's
//! shortest-side `Resize` and `CenterCrop`, `ToTensor`, `Normalize`); texts
//! through its cleaning ([`clean`]) and the tokenizer with `[CLS]`/`[SEP]`,
//! cut at `context_length`.

mod clean;
mod config;
mod vision;

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor, nn, nn::Module};
use tokenizers::Tokenizer;

pub use clean::clean;
pub use config::{OpenClipConfig, OpenClipModelCfg, PreprocessCfg, TextCfg, VisionCfg};

use crate::bert::{BertConfig, BertModel};
use crate::checkpoint::{self, KeyRules, LoadReport};
use crate::error::ModelError;
use crate::preprocess::{Convention, ImageProcessor, ImageProcessorConfig, RgbImage, SizeSpec};

/// The weight files open_clip looks for in a directory, in its order of
/// preference (safetensors only: pickles are not loaded).
const WEIGHT_FILES: [&str; 3] = [
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "model.safetensors",
];

/// How the text tower's last hidden state becomes one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooler {
    /// The `[CLS]` position (`cls_last_hidden_state_pooler`).
    Cls,
    /// The mean over tokens (`mean_pooler`).
    Mean,
}

/// The projection after pooling.
#[derive(Debug)]
enum Projection {
    /// `proj.0`, exact GELU, `proj.2`, no biases (`mlp`).
    Mlp(nn::Linear, nn::Linear),
    /// `proj` without bias (`linear`).
    Linear(nn::Linear),
    /// None (the tower's width is the embedding's).
    Identity,
}

/// An open_clip model with a timm image tower and a Hugging Face text tower.
#[derive(Debug)]
pub struct OpenClipModel {
    config: OpenClipConfig,
    vars: nn::VarStore,
    visual: vision::TimmVit,
    text: BertModel,
    text_layers: usize,
    pooler: Pooler,
    projection: Projection,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    cls_sep_pad: (u32, u32, u32),
    processor: ImageProcessor,
}

fn config_error(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Config {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl OpenClipModel {
    /// Loads an open_clip directory.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming `open_clip_config.json` when its towers
    /// are not a timm ViT and a BERT-family Hugging Face model, or its
    /// preprocessing is not supported; [`ModelError::Checkpoint`] when no
    /// safetensors weights are there (with the conversion of
    /// `open_clip_pytorch_model.bin`) or they do not fit;
    /// [`ModelError::Tokenizer`] for a missing tokenizer.
    pub fn from_dir(dir: &Path, device: Device) -> Result<(Self, LoadReport), ModelError> {
        let path = dir.join("open_clip_config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let config: OpenClipConfig =
            serde_json::from_str(&text).map_err(|e| config_error(&path, e.to_string()))?;
        let files = weight_file(dir)?;
        let shapes = checkpoint::stored_shapes(&files)?;
        let m = &config.model_cfg;
        let timm_name = m.vision_cfg.timm_model_name.as_deref().ok_or_else(|| {
            config_error(
                &path,
                "model_cfg.vision_cfg has no timm_model_name: only timm image towers \
                 (BiomedCLIP's kind) are read; for OpenAI-style CLIP use a Hugging Face \
                 CLIPModel directory",
            )
        })?;
        if !timm_name.starts_with("vit_") {
            return Err(config_error(
                &path,
                format!("timm model `{timm_name}` is not a ViT (vit_*): not supported"),
            ));
        }
        if !m.vision_cfg.timm_pool.as_deref().unwrap_or("").is_empty()
            && m.vision_cfg.timm_pool.as_deref() != Some("token")
        {
            return Err(config_error(
                &path,
                format!(
                    "vision_cfg.timm_pool `{}` is not supported (empty or token: the class token)",
                    m.vision_cfg.timm_pool.as_deref().unwrap_or_default()
                ),
            ));
        }
        if m.vision_cfg.timm_proj != "linear" {
            return Err(config_error(
                &path,
                format!(
                    "vision_cfg.timm_proj `{}` is not supported (linear)",
                    m.vision_cfg.timm_proj
                ),
            ));
        }
        let image_size = match &m.vision_cfg.image_size {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::Array(a) if a.len() == 2 && a[0] == a[1] => a[0].as_i64(),
            _ => None,
        }
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            config_error(
                &path,
                format!(
                    "vision_cfg.image_size {} is not one positive side",
                    m.vision_cfg.image_size
                ),
            )
        })?;
        let geometry = vision::VitGeometry::from_shapes(
            &shapes,
            timm_name,
            image_size,
            m.embed_dim,
            m.vision_cfg.timm_proj_bias,
        )
        .map_err(|reason| ModelError::Checkpoint {
            path: files[0].clone(),
            reason,
        })?;
        let pooler = match m.text_cfg.hf_pooler_type.as_deref() {
            Some("cls_last_hidden_state_pooler") => Pooler::Cls,
            Some("mean_pooler") => Pooler::Mean,
            other => {
                return Err(config_error(
                    &path,
                    format!(
                        "text_cfg.hf_pooler_type {other:?} is not supported \
                         (cls_last_hidden_state_pooler or mean_pooler)"
                    ),
                ));
            }
        };
        let (tokenizer, tokenizer_path, cls_sep_pad) = load_tokenizer(dir)?;
        let bert =
            bert_config(&shapes, cls_sep_pad.2).map_err(|reason| ModelError::Checkpoint {
                path: files[0].clone(),
                reason,
            })?;
        if m.text_cfg.context_length < 2
            || m.text_cfg.context_length as i64 > bert.max_position_embeddings
        {
            return Err(config_error(
                &path,
                format!(
                    "text_cfg.context_length {} does not fit the text tower's {} positions",
                    m.text_cfg.context_length, bert.max_position_embeddings
                ),
            ));
        }
        let vars = nn::VarStore::new(device);
        let root = vars.root();
        let visual = vision::TimmVit::new(&(&root / "visual"), &geometry);
        let text_root = &root / "text";
        let text = BertModel::new(&(&text_root / "transformer"), &bert, None);
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let d = bert.hidden_size;
        let projection = match m.text_cfg.hf_proj_type.as_deref() {
            Some("mlp") => {
                let hidden = (d + m.embed_dim) / 2;
                Projection::Mlp(
                    nn::linear(&text_root / "proj" / "0", d, hidden, no_bias),
                    nn::linear(&text_root / "proj" / "2", hidden, m.embed_dim, no_bias),
                )
            }
            Some("linear") => {
                Projection::Linear(nn::linear(&text_root / "proj", d, m.embed_dim, no_bias))
            }
            None if d == m.embed_dim => Projection::Identity,
            other => {
                return Err(config_error(
                    &path,
                    format!("text_cfg.hf_proj_type {other:?} is not supported (mlp or linear)"),
                ));
            }
        };
        let _logit_scale = root.var("logit_scale", &[], nn::Init::Const(0.0));
        // The position ids buffer transformers once stored is not a weight.
        let rules = KeyRules {
            ignored: vec!["text.transformer.embeddings.position_ids".into()],
            ..Default::default()
        };
        let report = checkpoint::load_files(&vars, &files, dir, &rules)?;
        let processor = transform(&config.preprocess_cfg, image_size)
            .map_err(|reason| config_error(&path, reason))?;
        let text_layers = bert.num_hidden_layers;
        Ok((
            Self {
                config,
                vars,
                visual,
                text,
                text_layers,
                pooler,
                projection,
                tokenizer,
                tokenizer_path,
                cls_sep_pad,
                processor,
            },
            report,
        ))
    }

    /// The configuration.
    pub fn config(&self) -> &OpenClipConfig {
        &self.config
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vars.device()
    }

    /// The image transform.
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// Token ids of `text` as open_clip's `HFTokenizer` gives them (cleaned,
    /// `[CLS]` pieces `[SEP]`, the pieces cut so that all fit in
    /// `context_length`), padding left off.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when the tokenizer fails on the text.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding =
            self.tokenizer
                .encode(clean(text), false)
                .map_err(|e| ModelError::Tokenizer {
                    path: self.tokenizer_path.clone(),
                    reason: e.to_string(),
                })?;
        let pieces = encoding.get_ids();
        let keep = pieces
            .len()
            .min(self.config.model_cfg.text_cfg.context_length - 2);
        let mut ids = Vec::with_capacity(keep + 2);
        ids.push(self.cls_sep_pad.0);
        ids.extend_from_slice(&pieces[..keep]);
        ids.push(self.cls_sep_pad.1);
        Ok(ids)
    }

    /// Text features `[texts, embed_dim]` (float32, not normalised).
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when a text cannot be tokenized.
    pub fn text_features(&self, texts: &[&str]) -> Result<Tensor, ModelError> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let device = self.device();
        let input_ids = crate::batch::padded(&rows, i64::from(self.cls_sep_pad.2), device);
        // open_clip masks the padding id wherever it occurs.
        let mask = input_ids
            .ne(i64::from(self.cls_sep_pad.2))
            .to_kind(Kind::Int64);
        let _guard = tch::no_grad_guard();
        let hidden = self.text.hidden_state(&input_ids, &mask, self.text_layers);
        let pooled = match self.pooler {
            Pooler::Cls => hidden.select(1, 0),
            Pooler::Mean => {
                let m = mask.to_kind(hidden.kind()).unsqueeze(-1);
                (&hidden * &m).sum_dim_intlist(1, false, None) / m.sum_dim_intlist(1, false, None)
            }
        };
        let projected = match &self.projection {
            Projection::Mlp(a, b) => b.forward(&a.forward(&pooled).gelu("none")),
            Projection::Linear(a) => a.forward(&pooled),
            Projection::Identity => pooled,
        };
        Ok(projected.to_kind(Kind::Float))
    }

    /// Image features `[images, embed_dim]` of preprocessed pixel values.
    ///
    /// # Errors
    /// [`ModelError::Shape`] / [`ModelError::ImageSize`] for pixel values of
    /// another shape.
    pub fn image_features_of_pixels(&self, pixel_values: &Tensor) -> Result<Tensor, ModelError> {
        let _guard = tch::no_grad_guard();
        Ok(self
            .visual
            .features(&pixel_values.to_device(self.device()))?
            .to_kind(Kind::Float))
    }

    /// Image features `[images, embed_dim]` of decoded images, through the
    /// transform.
    ///
    /// # Errors
    /// As [`Self::image_features_of_pixels`].
    pub fn image_features(&self, images: &[RgbImage]) -> Result<Tensor, ModelError> {
        self.image_features_of_pixels(&self.processor.pixel_values(images)?)
    }
}

/// The weights: the first of [`WEIGHT_FILES`] present.
fn weight_file(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    if let Some(file) = WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|f| f.is_file())
    {
        return Ok(vec![file]);
    }
    let pickle = dir.join("open_clip_pytorch_model.bin");
    Err(ModelError::Checkpoint {
        path: dir.to_owned(),
        reason: if pickle.is_file() {
            "only open_clip_pytorch_model.bin, a PyTorch pickle, which is not loaded \
             (unpickling can run arbitrary code); convert it once, in that directory: \
             `python -c \"import torch, safetensors.torch as s; s.save_file({k: \
             v.contiguous().clone() for k, v in torch.load('open_clip_pytorch_model.bin').items()}, \
             'open_clip_model.safetensors')\"`"
                .into()
        } else {
            format!("none of {} found", WEIGHT_FILES.join(", "))
        },
    })
}

/// The text tower's tokenizer (`tokenizer.json`) and its `[CLS]`, `[SEP]`
/// and `[PAD]` ids.
/// A tokenizer, its file and its `[CLS]`, `[SEP]` and `[PAD]` ids.
type LoadedTokenizer = (Tokenizer, PathBuf, (u32, u32, u32));

fn load_tokenizer(dir: &Path) -> Result<LoadedTokenizer, ModelError> {
    let path = dir.join("tokenizer.json");
    let fail = |reason: String| ModelError::Tokenizer {
        path: path.clone(),
        reason,
    };
    let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| fail(e.to_string()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| fail(e.to_string()))?;
    let id = |token: &str| {
        tokenizer
            .token_to_id(token)
            .ok_or_else(|| fail(format!("no {token} token: not a BERT-family tokenizer")))
    };
    let ids = (id("[CLS]")?, id("[SEP]")?, id("[PAD]")?);
    Ok((tokenizer, path, ids))
}

/// The BERT tower's configuration from its stored shapes (open_clip builds
/// it from the Hugging Face model named in the config, which a local
/// directory does not hold): one head per 64 channels, as every BERT size.
fn bert_config(
    shapes: &std::collections::HashMap<String, Vec<i64>>,
    pad_token_id: u32,
) -> Result<BertConfig, String> {
    let prefix = "text.transformer.";
    let shape = |key: &str| {
        shapes
            .get(&format!("{prefix}{key}"))
            .cloned()
            .ok_or_else(|| format!("no `{prefix}{key}` in the weights: not a BERT text tower"))
    };
    let words = shape("embeddings.word_embeddings.weight")?;
    let [vocab_size, hidden_size] = words[..] else {
        return Err(format!(
            "{prefix}embeddings.word_embeddings.weight is {words:?}"
        ));
    };
    let positions = shape("embeddings.position_embeddings.weight")?[0];
    let type_vocab_size = shapes
        .get(&format!("{prefix}embeddings.token_type_embeddings.weight"))
        .map_or(0, |s| s[0]);
    let layers = (0..)
        .take_while(|i| {
            shapes.contains_key(&format!(
                "{prefix}encoder.layer.{i}.attention.self.query.weight"
            ))
        })
        .count();
    let intermediate = shape("encoder.layer.0.intermediate.dense.weight")?[0];
    if hidden_size % 64 != 0 {
        return Err(format!(
            "text tower width {hidden_size} is not a multiple of 64 (BERT's head width)"
        ));
    }
    Ok(BertConfig {
        model_type: "bert".into(),
        position_embedding_type: "absolute".into(),
        vocab_size,
        hidden_size,
        num_hidden_layers: layers,
        num_attention_heads: hidden_size / 64,
        intermediate_size: intermediate,
        hidden_act: "gelu".into(),
        max_position_embeddings: positions,
        type_vocab_size,
        layer_norm_eps: 1e-12,
        pad_token_id: i64::from(pad_token_id),
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
    })
}

/// open_clip's inference transform as an [`ImageProcessor`] with
/// torchvision's arithmetic.
fn transform(cfg: &PreprocessCfg, image_size: i64) -> Result<ImageProcessor, String> {
    let resample = match cfg.interpolation.as_str() {
        "bicubic" => 3,
        "bilinear" => 2,
        other => {
            return Err(format!(
                "preprocess_cfg.interpolation `{other}` is not supported"
            ));
        }
    };
    let (size, crop) = match cfg.resize_mode.as_str() {
        "shortest" => (
            SizeSpec::ShortestEdge {
                shortest_edge: image_size,
            },
            true,
        ),
        "squash" => (
            SizeSpec::HeightWidth {
                height: image_size,
                width: image_size,
            },
            false,
        ),
        other => {
            return Err(format!(
                "preprocess_cfg.resize_mode `{other}` is not supported (shortest or squash)"
            ));
        }
    };
    let config = ImageProcessorConfig {
        size,
        resample,
        image_mean: cfg.mean,
        image_std: cfg.std,
        do_center_crop: crop,
        crop_size: crop.then_some(SizeSpec::Square(image_size)),
        image_processor_type: "open_clip".into(),
        processor_class: "open_clip".into(),
        ..Default::default()
    };
    ImageProcessor::new(config)
        .map(|p| p.with_convention(Convention::Torchvision))
        .map_err(|e| e.to_string())
}
