//! BLIP (`BlipForConditionalGeneration`, `BlipForImageTextRetrieval`) with
//! module paths equal to the Hugging Face checkpoint keys, loading and
//! saving the same directory layout transformers uses.

mod config;
mod projection;
mod text_decoder;
mod text_encoder;
mod vision;

pub use config::{BlipConfig, BlipTextConfig, BlipVisionConfig};
pub use projection::{ContrastiveProjections, l2_normalize};
pub use text_decoder::{BlipTextDecoder, DecoderOutput};
pub use text_encoder::BlipTextEncoder;
pub use vision::BlipVisionModel;

use std::path::Path;

use tch::{Device, Kind, Tensor, nn, nn::Module};

use crate::checkpoint::{self, KeyRules, LoadReport};
use crate::error::ModelError;

/// Precision of the weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// fp32 everywhere (the parity setting).
    #[default]
    F32,
    /// bf16 weights and activations (CUDA); libtorch's LayerNorm and
    /// softmax kernels accumulate in fp32.
    Bf16,
    /// fp16 weights and activations (CUDA), same accumulation rule.
    F16,
}

impl Precision {
    fn kind(self) -> Kind {
        match self {
            Self::F32 => Kind::Float,
            Self::Bf16 => Kind::BFloat16,
            Self::F16 => Kind::Half,
        }
    }
}

fn read_config(dir: &Path) -> Result<(BlipConfig, serde_json::Value), ModelError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let config = BlipConfig::from_json_text(&text, &path)?;
    let raw = medcap_io::config::parse(&text, medcap_io::config::Format::Json, &path)?;
    Ok((config, raw))
}

fn write_config(
    dir: &Path,
    config: &BlipConfig,
    raw: Option<&serde_json::Value>,
    architecture: &str,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_owned(),
        source,
    })?;
    // A loaded checkpoint's own config.json goes back unchanged (keys this
    // crate does not read included); a fresh model gets a full dump.
    let value = raw.cloned().unwrap_or_else(|| config.to_json(architecture));
    Ok(medcap_io::write_json_atomic(&dir.join("config.json"), &value)?)
}

/// BLIP's captioner: the ViT and the causal text decoder.
#[derive(Debug)]
pub struct BlipForConditionalGeneration {
    config: BlipConfig,
    raw_config: Option<serde_json::Value>,
    vars: nn::VarStore,
    vision_model: BlipVisionModel,
    text_decoder: BlipTextDecoder,
}

const DECODER_WEIGHT: &str = "text_decoder.cls.predictions.decoder.weight";
const WORD_EMBEDDINGS: &str = "text_decoder.bert.embeddings.word_embeddings.weight";

impl BlipForConditionalGeneration {
    /// A model with fresh weights (libtorch's default initialisation).
    pub fn new(config: BlipConfig, device: Device) -> Self {
        let vars = nn::VarStore::new(device);
        let root = vars.root();
        let vision_model = BlipVisionModel::new(&(&root / "vision_model"), &config.vision_config);
        let text_decoder = BlipTextDecoder::new(&(&root / "text_decoder"), &config.text_config);
        Self {
            config,
            raw_config: None,
            vars,
            vision_model,
            text_decoder,
        }
    }

    /// Loads `config.json` and the safetensors weights of `dir`.
    ///
    /// With `tie_word_embeddings` (transformers' default) the LM head
    /// projects with the word-embedding matrix itself, and a stored
    /// `cls.predictions.decoder.weight` is not read; without it, a missing
    /// decoder weight is copied from the word embeddings. The bias may be
    /// stored as `cls.predictions.bias` or `cls.predictions.decoder.bias`.
    pub fn from_dir(dir: &Path, device: Device) -> Result<(Self, LoadReport), ModelError> {
        let (config, raw) = read_config(dir)?;
        let mut model = Self::new(config, device);
        model.raw_config = Some(raw);
        let rules = KeyRules {
            aliases: vec![(
                "text_decoder.cls.predictions.bias".into(),
                "text_decoder.cls.predictions.decoder.bias".into(),
            )],
            ties: vec![(DECODER_WEIGHT.into(), WORD_EMBEDDINGS.into())],
            // Tied checkpoints may store the shared matrix under both names.
            ignored: vec![DECODER_WEIGHT.into()],
        };
        let report = checkpoint::load(&model.vars, dir, &rules)?;
        Ok((model, report))
    }

    /// Writes `config.json` and `model.safetensors` into `dir` in the layout
    /// transformers loads (`BlipForConditionalGeneration.from_pretrained`).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        write_config(
            dir,
            &self.config,
            self.raw_config.as_ref(),
            "BlipForConditionalGeneration",
        )?;
        checkpoint::save(&self.vars, dir)
    }

    /// Casts the weights (bf16/fp16 are for CUDA).
    pub fn set_precision(&mut self, precision: Precision) {
        self.vars.set_kind(precision.kind());
    }

    /// The configuration.
    pub fn config(&self) -> &BlipConfig {
        &self.config
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vars.device()
    }

    /// The variables (for an optimiser).
    pub fn vars(&self) -> &nn::VarStore {
        &self.vars
    }

    /// The variables, mutably (freezing, casting).
    pub fn vars_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vars
    }

    /// The image encoder.
    pub fn vision_model(&self) -> &BlipVisionModel {
        &self.vision_model
    }

    /// The text decoder.
    pub fn text_decoder(&self) -> &BlipTextDecoder {
        &self.text_decoder
    }

    /// Image tokens for `pixel_values` (see [`BlipVisionModel::forward_t`]).
    pub fn encode_images(
        &self,
        pixel_values: &Tensor,
        interpolate: bool,
    ) -> Result<Tensor, ModelError> {
        let pixels = pixel_values.to_device(self.device());
        self.vision_model.forward_t(&pixels, interpolate, false)
    }
}

/// BLIP's image-text matcher: the ViT, the bidirectional text encoder, the
/// ITC projections and the ITM head.
#[derive(Debug)]
pub struct BlipForImageTextRetrieval {
    config: BlipConfig,
    raw_config: Option<serde_json::Value>,
    vars: nn::VarStore,
    vision_model: BlipVisionModel,
    text_encoder: BlipTextEncoder,
    projections: ContrastiveProjections,
    itm_head: nn::Linear,
}

impl BlipForImageTextRetrieval {
    /// A model with fresh weights.
    pub fn new(config: BlipConfig, device: Device) -> Self {
        let vars = nn::VarStore::new(device);
        let root = vars.root();
        let v = &config.vision_config;
        let t = &config.text_config;
        let width = config.image_text_hidden_size;
        Self {
            vision_model: BlipVisionModel::new(&(&root / "vision_model"), v),
            text_encoder: BlipTextEncoder::new(&(&root / "text_encoder"), t),
            projections: ContrastiveProjections::new(&root, v.hidden_size, t.hidden_size, width),
            itm_head: nn::linear(&root / "itm_head", t.hidden_size, 2, Default::default()),
            config,
            raw_config: None,
            vars,
        }
    }

    /// Loads `config.json` and the safetensors weights of `dir` (a
    /// `blip-itm-*` checkpoint; captioning checkpoints have no text encoder
    /// or heads, and loading one fails listing the missing keys).
    pub fn from_dir(dir: &Path, device: Device) -> Result<(Self, LoadReport), ModelError> {
        let (config, raw) = read_config(dir)?;
        let mut model = Self::new(config, device);
        model.raw_config = Some(raw);
        let report = checkpoint::load(&model.vars, dir, &KeyRules::default())?;
        Ok((model, report))
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        write_config(
            dir,
            &self.config,
            self.raw_config.as_ref(),
            "BlipForImageTextRetrieval",
        )?;
        checkpoint::save(&self.vars, dir)
    }

    /// The configuration.
    pub fn config(&self) -> &BlipConfig {
        &self.config
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vars.device()
    }

    /// Image tokens `[batch, 1 + patches, width]`.
    pub fn encode_images(
        &self,
        pixel_values: &Tensor,
        interpolate: bool,
    ) -> Result<Tensor, ModelError> {
        let pixels = pixel_values.to_device(self.device());
        self.vision_model.forward_t(&pixels, interpolate, false)
    }

    /// ITM match probabilities `[batch, 2]` (column 1: "matches") for
    /// image `i` with text `i`; `image_embeds` from [`Self::encode_images`].
    pub fn itm_probabilities(
        &self,
        image_embeds: &Tensor,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Tensor {
        let device = self.device();
        let hidden = self.text_encoder.forward_t(
            &input_ids.to_device(device),
            &attention_mask.to_device(device),
            Some(image_embeds),
            false,
        );
        self.itm_head
            .forward(&hidden.select(1, 0))
            .softmax(-1, Kind::Float)
    }

    /// L2-normalised image features `[images, image_text_hidden_size]` (the
    /// class token through `vision_proj`).
    pub fn image_features(&self, image_embeds: &Tensor) -> Tensor {
        self.projections.image_features(image_embeds)
    }

    /// L2-normalised text features `[texts, image_text_hidden_size]` from the
    /// unimodal pass (no cross-attention) through `text_proj`.
    pub fn text_features(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let device = self.device();
        let hidden = self.text_encoder.forward_t(
            &input_ids.to_device(device),
            &attention_mask.to_device(device),
            None,
            false,
        );
        self.projections.text_features(&hidden)
    }

    /// The unimodal text encoder's last hidden state `[texts, seq, hidden]`.
    pub fn text_hidden(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let device = self.device();
        self.text_encoder.forward_t(
            &input_ids.to_device(device),
            &attention_mask.to_device(device),
            None,
            false,
        )
    }
}
