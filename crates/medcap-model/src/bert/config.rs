//! `config.json` of a BERT-family checkpoint, field for field.

use serde::Deserialize;

/// The fields of a Hugging Face `BertConfig` that the forward pass needs.
///
/// BLIP's text side is the same network without token-type embeddings and
/// with cross-attention; [`crate::blip::BlipTextConfig`] converts to this.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Width of every hidden state.
    pub hidden_size: i64,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: i64,
    /// Width of the feed-forward layer.
    pub intermediate_size: i64,
    /// Feed-forward activation; only `gelu` (the exact, erf-based one) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Number of position embeddings (the longest input).
    pub max_position_embeddings: i64,
    /// Number of token-type (segment) embeddings; 0 for none (BLIP).
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: i64,
    /// Epsilon of every layer norm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id (its embedding row gets no gradient).
    #[serde(default)]
    pub pad_token_id: i64,
    /// Dropout after each residual projection and on embeddings (training only).
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (training only).
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
}

fn default_act() -> String {
    "gelu".into()
}

fn default_type_vocab() -> i64 {
    2
}

fn default_eps() -> f64 {
    1e-12
}

fn default_dropout() -> f64 {
    0.1
}
