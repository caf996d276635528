//! `config.json` of a Hugging Face BLIP checkpoint (`BlipConfig`,
//! `BlipVisionConfig`, `BlipTextConfig`), with transformers' class defaults
//! for every missing key: saved configs often hold only non-default values.

use std::path::Path;

use medcap_io::config::{ConfigError, Format, InvalidConfig};
use serde::{Deserialize, Serialize};

use crate::bert::BertConfig;
use crate::error::ModelError;
use crate::generation::StoredGeneration;

/// The ViT image encoder's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlipVisionConfig {
    /// Width of every token.
    pub hidden_size: i64,
    /// Width of the MLP.
    pub intermediate_size: i64,
    /// Unused by captioning and retrieval; kept for round trips.
    pub projection_dim: i64,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: i64,
    /// Input side in pixels (square).
    pub image_size: i64,
    /// Patch side in pixels.
    pub patch_size: i64,
    /// Activation; only `gelu` (exact) is supported.
    pub hidden_act: String,
    /// Epsilon of every layer norm (1e-5 in transformers; the original ViT used 1e-6).
    pub layer_norm_eps: f64,
    /// Dropout on attention probabilities (training only).
    pub attention_dropout: f64,
    /// Standard deviation of fresh weights.
    pub initializer_range: f64,
}

impl Default for BlipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 384,
            patch_size: 16,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-5,
            attention_dropout: 0.0,
            initializer_range: 1e-10,
        }
    }
}

impl BlipVisionConfig {
    /// Patches per image side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }

    /// Tokens per image: the patches and the class token.
    pub fn num_positions(&self) -> i64 {
        self.grid() * self.grid() + 1
    }
}

/// The BERT text encoder / decoder's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlipTextConfig {
    /// Vocabulary size (30,524: bert-base-uncased plus `[DEC]` and `[ENC]`).
    pub vocab_size: i64,
    /// Width of every hidden state.
    pub hidden_size: i64,
    /// Width of the image tokens cross-attention reads (always the vision width).
    pub encoder_hidden_size: i64,
    /// Width of the feed-forward layer.
    pub intermediate_size: i64,
    /// Unused by captioning and retrieval; kept for round trips.
    pub projection_dim: i64,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (the class default is 8; the checkpoints use 12).
    pub num_attention_heads: i64,
    /// Longest token sequence.
    pub max_position_embeddings: i64,
    /// Activation; only `gelu` (exact) is supported.
    pub hidden_act: String,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
    /// Dropout after residual projections and embeddings (training only).
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (training only).
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of fresh weights.
    pub initializer_range: f64,
    /// `[DEC]`: the first token of every caption.
    pub bos_token_id: i64,
    /// Unused by generation (which stops at `sep_token_id`); kept for round trips.
    pub eos_token_id: Option<i64>,
    /// `[PAD]`.
    pub pad_token_id: i64,
    /// `[SEP]`: ends a caption.
    pub sep_token_id: i64,
    /// Whether layers have cross-attention (true in every BLIP checkpoint).
    pub is_decoder: bool,
    /// Kept for round trips.
    pub use_cache: bool,
    /// Label smoothing of the captioning loss.
    pub label_smoothing: f64,
    /// Whether the LM head's projection is the word-embedding matrix itself
    /// (transformers' default; such checkpoints may omit
    /// `cls.predictions.decoder.weight`).
    pub tie_word_embeddings: bool,
    /// Decoding settings stored beside the network's (`num_beams`,
    /// `max_length`, ...): transformers' `generate` defaults for this
    /// decoder ([`StoredGeneration::resolve`]).
    #[serde(flatten)]
    pub generation: StoredGeneration,
}

impl Default for BlipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30524,
            hidden_size: 768,
            encoder_hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 768,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 512,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            initializer_range: 0.02,
            bos_token_id: 30522,
            eos_token_id: Some(2),
            pad_token_id: 0,
            sep_token_id: 102,
            is_decoder: true,
            use_cache: true,
            label_smoothing: 0.0,
            tie_word_embeddings: true,
            generation: StoredGeneration::default(),
        }
    }
}

impl BlipTextConfig {
    /// The same network as a `BertConfig` (BLIP has no token types).
    pub fn bert_config(&self) -> BertConfig {
        BertConfig {
            model_type: "bert".into(),
            position_embedding_type: "absolute".into(),
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act.clone(),
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: 0,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            hidden_dropout_prob: self.hidden_dropout_prob,
            attention_probs_dropout_prob: self.attention_probs_dropout_prob,
        }
    }
}

/// A whole BLIP checkpoint's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlipConfig {
    /// The text side.
    pub text_config: BlipTextConfig,
    /// The image side.
    pub vision_config: BlipVisionConfig,
    /// Unused by captioning and retrieval; kept for round trips.
    pub projection_dim: i64,
    /// Unused by captioning and retrieval; kept for round trips.
    pub logit_scale_init_value: f64,
    /// Width of the ITC projections (`vision_proj`, `text_proj`).
    pub image_text_hidden_size: i64,
    /// Label smoothing of the captioning loss.
    pub label_smoothing: f64,
}

impl Default for BlipConfig {
    fn default() -> Self {
        Self {
            text_config: BlipTextConfig::default(),
            vision_config: BlipVisionConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
            image_text_hidden_size: 256,
            label_smoothing: 0.0,
        }
    }
}

impl BlipConfig {
    /// Parses `config.json` text: transformers' defaults fill missing keys,
    /// the cross-attention width is taken from the vision width (as
    /// `BlipConfig.__init__` does), and the shapes are checked.
    ///
    /// ```
    /// use medcap_model::blip::BlipConfig;
    ///
    /// // The Hub's base config omits encoder_hidden_size; a fine-tuned copy may store even less.
    /// let config = BlipConfig::from_json_str(r#"{"text_config": {"num_attention_heads": 12},
    ///     "vision_config": {"hidden_size": 1024, "num_attention_heads": 16}}"#)?;
    /// assert_eq!(config.text_config.encoder_hidden_size, 1024);
    /// assert_eq!(config.vision_config.num_positions(), 577);
    /// # Ok::<(), medcap_io::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for text that is not such a configuration,
    /// [`ConfigError::Invalid`] for one that breaks [`BlipConfig::check`].
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_json_text(text, Path::new("<text>"))
    }

    /// [`BlipConfig::from_json_str`] with `path` naming the source in errors.
    pub(crate) fn from_json_text(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = medcap_io::config::parse(text, Format::Json, path)?;
        config.text_config.encoder_hidden_size = config.vision_config.hidden_size;
        config.check().map_err(|source| ConfigError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        Ok(config)
    }

    /// Reads and checks `path` (a `config.json`).
    ///
    /// # Errors
    /// [`ModelError::Io`] when it cannot be read, [`ModelError::ConfigFile`]
    /// when it is not a usable configuration.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::from_json_text(&text, path)?)
    }

    /// Shape rules the forward pass relies on.
    pub fn check(&self) -> Result<(), InvalidConfig> {
        let v = &self.vision_config;
        let t = &self.text_config;
        let positive = [
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.image_size", v.image_size),
            ("vision_config.patch_size", v.patch_size),
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.intermediate_size", t.intermediate_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            ("text_config.vocab_size", t.vocab_size),
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
            ),
            ("image_text_hidden_size", self.image_text_hidden_size),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(InvalidConfig::new(
                    name,
                    format!("must be positive, found {value}"),
                ));
            }
        }
        if v.hidden_size % v.num_attention_heads != 0 {
            return Err(InvalidConfig::new(
                "vision_config.num_attention_heads",
                format!(
                    "{} attention heads do not divide the width {}",
                    v.num_attention_heads, v.hidden_size
                ),
            ));
        }
        if t.hidden_size % t.num_attention_heads != 0 {
            return Err(InvalidConfig::new(
                "text_config.num_attention_heads",
                format!(
                    "{} attention heads do not divide the width {}",
                    t.num_attention_heads, t.hidden_size
                ),
            ));
        }
        if v.image_size % v.patch_size != 0 {
            return Err(InvalidConfig::new(
                "vision_config.patch_size",
                format!(
                    "{} does not divide the image size {}",
                    v.patch_size, v.image_size
                ),
            ));
        }
        for (name, act) in [
            ("vision_config", &v.hidden_act),
            ("text_config", &t.hidden_act),
        ] {
            if act != "gelu" {
                return Err(InvalidConfig::new(
                    format!("{name}.hidden_act"),
                    format!("`{act}` is not supported (only gelu)"),
                ));
            }
        }
        for (name, id) in [
            ("bos_token_id", t.bos_token_id),
            ("pad_token_id", t.pad_token_id),
            ("sep_token_id", t.sep_token_id),
        ] {
            if id < 0 || id >= t.vocab_size {
                return Err(InvalidConfig::new(
                    format!("text_config.{name}"),
                    format!("{id} is outside the vocabulary of {}", t.vocab_size),
                ));
            }
        }
        Ok(())
    }

    /// The JSON transformers reads back (`model_type` and `architectures` included).
    ///
    /// # Errors
    /// [`ModelError::Config`] if the configuration cannot be serialized.
    pub fn to_json(&self, architecture: &str) -> Result<serde_json::Value, ModelError> {
        let mut value = serde_json::to_value(self).map_err(|e| ModelError::Config {
            path: "config.json".into(),
            reason: format!("cannot be serialized: {e}"),
        })?;
        if let Some(map) = value.as_object_mut() {
            map.insert("model_type".into(), "blip".into());
            map.insert("architectures".into(), serde_json::json!([architecture]));
            for (key, model_type) in [
                ("text_config", "blip_text_model"),
                ("vision_config", "blip_vision_model"),
            ] {
                if let Some(sub) = map.get_mut(key).and_then(|s| s.as_object_mut()) {
                    sub.insert("model_type".into(), model_type.into());
                }
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_class_defaults() {
        let c = BlipConfig::from_json_str("{}").unwrap();
        assert_eq!(c.text_config.num_attention_heads, 8);
        assert_eq!(c.vision_config.layer_norm_eps, 1e-5);
        assert_eq!(c.text_config.bos_token_id, 30522);
        assert_eq!(c.image_text_hidden_size, 256);
    }

    #[test]
    fn heads_must_divide_width() {
        let err = BlipConfig::from_json_str(r#"{"text_config": {"num_attention_heads": 7}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("7 attention heads"), "{err}");
    }

    #[test]
    fn round_trip_through_json() {
        let c = BlipConfig::from_json_str(r#"{"vision_config": {"image_size": 224}}"#).unwrap();
        let json = c
            .to_json("BlipForConditionalGeneration")
            .unwrap()
            .to_string();
        assert_eq!(BlipConfig::from_json_str(&json).unwrap(), c);
    }

    #[test]
    fn unsupported_activation_is_named() {
        let err = BlipConfig::from_json_str(r#"{"vision_config": {"hidden_act": "quick_gelu"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("quick_gelu"), "{err}");
    }
}
