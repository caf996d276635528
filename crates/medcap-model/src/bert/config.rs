//! `config.json` of a BERT-family checkpoint, field for field.

use serde::Deserialize;

/// The fields of a Hugging Face `BertConfig` that the forward pass needs.
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
    /// Number of token-type (segment) embeddings.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: i64,
    /// Epsilon of every layer norm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: i64,
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
