//! `config.json` of a BLEURT checkpoint as bleurt-pytorch's `BleurtConfig`
//! reads it (`model_type = "bleurt"`), with its defaults.

use serde::Deserialize;

use crate::bert::BertConfig;

/// The fields of bleurt-pytorch's `BleurtConfig` that the forward pass needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BleurtConfig {
    /// `bleurt`.
    pub model_type: String,
    /// Vocabulary size.
    #[serde(default = "default_vocab")]
    pub vocab_size: i64,
    /// Width of the embeddings when it differs from `hidden_size` (then
    /// `encoder.embedding_projection` maps them up; BLEURT-20's are narrower).
    #[serde(default)]
    pub embedding_size: Option<i64>,
    /// Width of every hidden state.
    #[serde(default = "default_hidden")]
    pub hidden_size: i64,
    /// Number of transformer layers.
    #[serde(default = "default_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(default = "default_heads")]
    pub num_attention_heads: i64,
    /// Width of the feed-forward layer.
    #[serde(default = "default_intermediate")]
    pub intermediate_size: i64,
    /// Feed-forward activation; only `gelu` (the exact one) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Number of position embeddings (the longest input).
    #[serde(default = "default_positions")]
    pub max_position_embeddings: i64,
    /// Number of token-type embeddings (reference 0, candidate 1).
    #[serde(default = "default_types")]
    pub type_vocab_size: i64,
    /// Epsilon of every layer norm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: i64,
    /// The classifier's labels (transformers stores labels, not their
    /// count); BLEURT's regression head has one.
    #[serde(default)]
    pub id2label: Option<serde_json::Map<String, serde_json::Value>>,
}

impl BleurtConfig {
    /// The width of the embeddings.
    pub fn embedding_width(&self) -> i64 {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// The outputs of the classifier.
    pub fn num_labels(&self) -> usize {
        self.id2label.as_ref().map_or(1, serde_json::Map::len)
    }

    /// The BERT layer settings of the encoder (BLEURT's layers are BERT's,
    /// with the same keys).
    pub fn layer_config(&self) -> BertConfig {
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
            type_vocab_size: self.type_vocab_size,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
        }
    }
}

fn default_vocab() -> i64 {
    30522
}

fn default_hidden() -> i64 {
    768
}

fn default_layers() -> usize {
    12
}

fn default_heads() -> i64 {
    12
}

fn default_intermediate() -> i64 {
    3072
}

fn default_act() -> String {
    "gelu".into()
}

fn default_positions() -> i64 {
    512
}

fn default_types() -> i64 {
    2
}

fn default_eps() -> f64 {
    1e-12
}
