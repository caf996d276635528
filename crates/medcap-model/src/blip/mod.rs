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
use text_decoder::BlipTextDecoder;
use text_encoder::BlipTextEncoder;
use vision::BlipVisionModel;

use std::path::Path;

use tch::{Device, Kind, Tensor, nn, nn::Module};

use crate::bert::KeyValue;
use crate::checkpoint::{self, KeyRules, LoadReport};
use crate::error::ModelError;
use crate::generation::{self, GenerationConfig, NextTokenLogits, TokenSpec};

pub use crate::precision::Precision;

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
    let value = match raw {
        Some(raw) => raw.clone(),
        None => config.to_json(architecture)?,
    };
    Ok(medcap_io::write_json_atomic(
        &dir.join("config.json"),
        &value,
    )?)
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

    /// The text decoder.
    pub(crate) fn text_decoder(&self) -> &BlipTextDecoder {
        &self.text_decoder
    }

    /// Image tokens `[images, patches + 1, vision width]` for `pixel_values`
    /// `[images, 3, height, width]`, in inference mode. With `interpolate`
    /// the position embeddings are resized to another image size, as
    /// transformers' `interpolate_pos_encoding`.
    ///
    /// # Errors
    /// [`ModelError::ImageSize`] for a size the model does not take without
    /// interpolation; [`ModelError::Shape`] for a tensor of the wrong shape.
    pub fn encode_images(
        &self,
        pixel_values: &Tensor,
        interpolate: bool,
    ) -> Result<Tensor, ModelError> {
        self.encode_images_t(pixel_values, interpolate, false)
    }

    /// [`Self::encode_images`] with dropout when `train` (fine-tuning).
    ///
    /// # Errors
    /// As [`Self::encode_images`].
    pub fn encode_images_t(
        &self,
        pixel_values: &Tensor,
        interpolate: bool,
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let pixels = pixel_values.to_device(self.device());
        self.vision_model.forward_t(&pixels, interpolate, train)
    }

    /// The teacher-forced decoder pass of fine-tuning: `input_ids`
    /// `[batch, seq]` (`[DEC]` first) read causally, attending to
    /// `image_embeds` from [`Self::encode_images_t`]; `attention_mask`
    /// `[batch, seq]` masks padding; dropout when `train`.
    pub fn decode(
        &self,
        image_embeds: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> DecoderStates {
        let cross = self.text_decoder.cross_key_values(image_embeds);
        let out = self
            .text_decoder
            .forward_t(input_ids, attention_mask, None, &cross, train);
        DecoderStates {
            logits: out.logits,
            hidden: out.hidden,
        }
    }

    /// The decoder's bidirectional pass over `input_ids` without the image:
    /// the unimodal text representation `[batch, seq, hidden]` that the
    /// contrastive objective projects (dropout when `train`).
    pub fn unimodal_text_hidden(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        train: bool,
    ) -> Tensor {
        self.text_decoder
            .unimodal_hidden(input_ids, attention_mask, train)
    }

    /// The decoder conditioned on `image_embeds`, one row per image: the
    /// [`NextTokenLogits`] model that generation drives, step by step with
    /// its self-attention cache.
    pub fn conditioned_decoder(&self, image_embeds: &Tensor) -> impl NextTokenLogits + '_ {
        ImageConditionedDecoder {
            decoder: &self.text_decoder,
            cross: self.text_decoder.cross_key_values(image_embeds),
        }
    }
}

/// What a teacher-forced decoder pass gives.
#[derive(Debug)]
pub struct DecoderStates {
    /// `[batch, seq, vocab]`.
    pub logits: Tensor,
    /// `[batch, seq, hidden]`: the last hidden state before the LM head.
    pub hidden: Tensor,
}

/// BLIP's text decoder conditioned on a batch of images (one row per image,
/// or per beam of an image): the model [`generation::generate`] drives.
struct ImageConditionedDecoder<'a> {
    decoder: &'a BlipTextDecoder,
    /// Cross-attention keys and values per row, computed once.
    cross: Vec<KeyValue>,
}

impl NextTokenLogits for ImageConditionedDecoder<'_> {
    type Cache = Vec<KeyValue>;

    fn next_token_logits(
        &self,
        tokens: &Tensor,
        cache: Option<&Vec<KeyValue>>,
    ) -> (Tensor, Vec<KeyValue>) {
        let out =
            self.decoder
                .forward_t(tokens, None, cache.map(Vec::as_slice), &self.cross, false);
        (out.logits.select(1, -1).to_kind(Kind::Float), out.cache)
    }

    fn reorder_cache(&self, cache: &Vec<KeyValue>, rows: &Tensor) -> Vec<KeyValue> {
        cache.iter().map(|kv| kv.index_select(rows)).collect()
    }
}

impl BlipForConditionalGeneration {
    /// Generates one token sequence per image with transformers' semantics
    /// ([`generation::generate`]). `image_embeds`: from
    /// [`Self::encode_images`]; `prompt`: the decoder's start,
    /// [`crate::tokenizer::BlipTokenizer::decoder_prompt`] (`[DEC]` alone, or
    /// `[DEC]` and a prompt's word pieces). Each returned sequence starts
    /// with the prompt and ends with `[SEP]` unless it reached the length
    /// limit, as transformers' `generate` returns it (without batch padding).
    ///
    /// # Errors
    /// As [`generation::generate`].
    pub fn generate(
        &self,
        image_embeds: &Tensor,
        prompt: &[i64],
        config: &GenerationConfig,
    ) -> Result<Vec<Vec<i64>>, ModelError> {
        config.check()?;
        let _no_grad = tch::no_grad_guard();
        let device = self.device();
        let image_embeds = image_embeds.to_device(device);
        let images = image_embeds.size()[0] as usize;
        let mut cross = if images == 0 {
            Vec::new()
        } else {
            self.text_decoder().cross_key_values(&image_embeds)
        };
        if config.num_beams > 1 && images > 0 {
            // Beams of one image are adjacent rows; they share the image's
            // cross-attention keys and values, which never need reordering.
            let k = config.num_beams as i64;
            let per_beam: Vec<i64> = (0..images as i64 * k).map(|r| r / k).collect();
            let per_beam = Tensor::from_slice(&per_beam).to_device(device);
            cross = cross.iter().map(|kv| kv.index_select(&per_beam)).collect();
        }
        let text = &self.config().text_config;
        let spec = TokenSpec {
            vocab_size: text.vocab_size,
            eos_token_id: text.sep_token_id,
            pad_token_id: text.pad_token_id,
            max_positions: text.max_position_embeddings as usize,
        };
        let decoder = ImageConditionedDecoder {
            decoder: self.text_decoder(),
            cross,
        };
        generation::generate(&decoder, images, prompt, config, spec, device)
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
