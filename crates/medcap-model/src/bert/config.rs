//! `config.json` of a BERT-family checkpoint (BERT, RoBERTa), field for field.

use serde::Deserialize;

/// The fields of a Hugging Face `BertConfig` or `RobertaConfig` that the
/// forward pass needs.
///
/// BLIP's text side is the same network without token-type embeddings and
/// with cross-attention; [`crate::blip::BlipTextConfig`] converts to this.
/// RoBERTa is the same network with other position ids (see
/// [`crate::bert::BertEmbeddings`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// `bert` or `roberta` (transformers' `model_type`); absent means `bert`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Only `absolute` position embeddings are supported (transformers'
    /// default; relative-key BERTs are refused).
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
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

fn default_model_type() -> String {
    "bert".into()
}

fn default_position_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Whether positions follow RoBERTa's rule (counted from the padding id).
    pub fn roberta_positions(&self) -> bool {
        self.model_type == "roberta"
    }

    /// The longest input the position table allows: RoBERTa spends
    /// `pad_token_id + 1` rows before its first position.
    pub fn max_input_len(&self) -> i64 {
        if self.roberta_positions() {
            self.max_position_embeddings - self.pad_token_id - 1
        } else {
            self.max_position_embeddings
        }
    }
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
