//! `config.json` of a Hugging Face `CLIPModel` checkpoint (`model_type =
//! "clip"`), with transformers' `CLIPTextConfig` / `CLIPVisionConfig`
//! defaults for missing keys.

use serde::Deserialize;

/// Settings both towers share the names of.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipTowerConfig {
    /// Width of every hidden state.
    pub hidden_size: i64,
    /// Width of the feed-forward layer.
    pub intermediate_size: i64,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: i64,
    /// Feed-forward activation: `quick_gelu` (OpenAI's) or `gelu` (exact).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Epsilon of every layer norm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

/// `text_config`: the causal text transformer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipTextConfig {
    /// Layer settings.
    #[serde(flatten)]
    pub tower: ClipTowerConfig,
    /// Vocabulary size.
    #[serde(default = "default_vocab")]
    pub vocab_size: i64,
    /// The context length (77 for OpenAI's models): longer texts are cut.
    #[serde(default = "default_text_positions")]
    pub max_position_embeddings: i64,
    /// End-of-text id: the pooled state is the first position holding it,
    /// or, when it is 2 (configurations written before transformers fixed
    /// it), the position of the highest id, as transformers pools.
    #[serde(default = "default_eos")]
    pub eos_token_id: i64,
}

/// `vision_config`: the vision transformer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipVisionConfig {
    /// Layer settings.
    #[serde(flatten)]
    pub tower: ClipTowerConfig,
    /// Input side in pixels.
    #[serde(default = "default_image_size")]
    pub image_size: i64,
    /// Patch side in pixels.
    #[serde(default = "default_patch")]
    pub patch_size: i64,
    /// Input channels.
    #[serde(default = "default_channels")]
    pub num_channels: i64,
}

impl ClipVisionConfig {
    /// Patches per side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }
}

/// The whole `CLIPModel` configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipConfig {
    /// `clip`.
    pub model_type: String,
    /// The text tower.
    pub text_config: ClipTextConfig,
    /// The image tower.
    pub vision_config: ClipVisionConfig,
    /// Width of the shared embedding space.
    #[serde(default = "default_projection")]
    pub projection_dim: i64,
}

impl ClipConfig {
    /// Checks what the forward pass relies on.
    ///
    /// # Errors
    /// A sentence naming the key and what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.model_type != "clip" {
            return Err(format!("model_type `{}` is not clip", self.model_type));
        }
        for (name, t) in [
            ("text_config", &self.text_config.tower),
            ("vision_config", &self.vision_config.tower),
        ] {
            if !matches!(t.hidden_act.as_str(), "quick_gelu" | "gelu") {
                return Err(format!(
                    "{name}.hidden_act `{}` is not supported (quick_gelu or gelu)",
                    t.hidden_act
                ));
            }
            if t.num_attention_heads <= 0 || t.hidden_size % t.num_attention_heads != 0 {
                return Err(format!(
                    "{name}: hidden_size {} is not a multiple of num_attention_heads {}",
                    t.hidden_size, t.num_attention_heads
                ));
            }
        }
        let v = &self.vision_config;
        if v.patch_size <= 0 || v.image_size % v.patch_size != 0 {
            return Err(format!(
                "vision_config: image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        Ok(())
    }
}

fn default_act() -> String {
    "quick_gelu".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_vocab() -> i64 {
    49408
}
fn default_text_positions() -> i64 {
    77
}
fn default_eos() -> i64 {
    49407
}
fn default_image_size() -> i64 {
    224
}
fn default_patch() -> i64 {
    32
}
fn default_channels() -> i64 {
    3
}
fn default_projection() -> i64 {
    512
}
