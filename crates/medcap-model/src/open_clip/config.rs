//! `open_clip_config.json`: the model and preprocessing settings open_clip
//! reads from a `local-dir:` or `hf-hub:` checkpoint (BiomedCLIP's layout:
//! a timm image tower and a Hugging Face text tower).

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpenClipConfig {
    /// The towers.
    pub model_cfg: OpenClipModelCfg,
    /// Image preprocessing (open_clip's `PreprocessCfg`; missing keys take
    /// its defaults).
    #[serde(default)]
    pub preprocess_cfg: PreprocessCfg,
}

/// `model_cfg`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpenClipModelCfg {
    /// Width of the shared embedding space.
    pub embed_dim: i64,
    /// The image tower.
    pub vision_cfg: VisionCfg,
    /// The text tower.
    pub text_cfg: TextCfg,
}

/// `vision_cfg`: only timm towers are read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VisionCfg {
    /// timm's model name (`vit_base_patch16_224`): a ViT is required.
    #[serde(default)]
    pub timm_model_name: Option<String>,
    /// timm pooling; empty keeps the network's own (the class token for ViTs).
    #[serde(default)]
    pub timm_pool: Option<String>,
    /// The head: `linear` (BiomedCLIP) or `none`.
    #[serde(default = "default_proj")]
    pub timm_proj: String,
    /// Whether the linear head has a bias.
    #[serde(default)]
    pub timm_proj_bias: bool,
    /// Input side in pixels (a number, or height and width).
    #[serde(default = "default_image_size")]
    pub image_size: serde_json::Value,
}

/// `text_cfg`: only Hugging Face towers are read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TextCfg {
    /// The Hugging Face model the tower was built from (informative: the
    /// network's shape is read from the weights).
    #[serde(default)]
    pub hf_model_name: Option<String>,
    /// The tokenizer's name (its files are expected in the directory, as
    /// open_clip's `local-dir:` reads them).
    #[serde(default)]
    pub hf_tokenizer_name: Option<String>,
    /// Projection after pooling: `mlp`, `linear` or none.
    #[serde(default)]
    pub hf_proj_type: Option<String>,
    /// Pooling: `cls_last_hidden_state_pooler` or `mean_pooler`.
    #[serde(default)]
    pub hf_pooler_type: Option<String>,
    /// Tokens per text; longer texts are cut.
    #[serde(default = "default_context")]
    pub context_length: usize,
}

/// `preprocess_cfg`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct PreprocessCfg {
    /// Per-channel mean.
    pub mean: [f64; 3],
    /// Per-channel standard deviation.
    pub std: [f64; 3],
    /// `bicubic` or `bilinear`.
    pub interpolation: String,
    /// `shortest` (resize the short side, centre crop) or `squash`.
    pub resize_mode: String,
}

impl Default for PreprocessCfg {
    fn default() -> Self {
        Self {
            // OpenAI CLIP's statistics, open_clip's defaults.
            mean: [0.48145466, 0.4578275, 0.40821073],
            std: [0.26862954, 0.26130258, 0.27577711],
            interpolation: "bicubic".into(),
            resize_mode: "shortest".into(),
        }
    }
}

fn default_proj() -> String {
    "linear".into()
}
fn default_image_size() -> serde_json::Value {
    serde_json::json!(224)
}
fn default_context() -> usize {
    77
}
