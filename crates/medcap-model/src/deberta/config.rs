//! `config.json` of a DeBERTa (v1, `model_type = "deberta"`) checkpoint,
//! field for field as transformers' `DebertaConfig` reads it.

use serde::Deserialize;

/// The fields of a Hugging Face `DebertaConfig` that the forward pass needs,
/// with transformers' defaults for absent ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DebertaConfig {
    /// `deberta`.
    pub model_type: String,
    /// Vocabulary size.
    #[serde(default = "default_vocab")]
    pub vocab_size: i64,
    /// Width of every hidden state.
    #[serde(default = "default_hidden")]
    pub hidden_size: i64,
    /// Width of the word embeddings when it differs from `hidden_size`
    /// (then `embeddings.embed_proj` maps them up).
    #[serde(default)]
    pub embedding_size: Option<i64>,
    /// Number of transformer layers.
    #[serde(default = "default_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(default = "default_heads")]
    pub num_attention_heads: i64,
    /// Width of the feed-forward layer.
    #[serde(default = "default_intermediate")]
    pub intermediate_size: i64,
    /// Feed-forward activation; only `gelu` (the exact, erf-based one) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Absolute positions (when `position_biased_input`) and the default
    /// relative span.
    #[serde(default = "default_positions")]
    pub max_position_embeddings: i64,
    /// Number of token-type embeddings; 0 for none.
    #[serde(default)]
    pub type_vocab_size: i64,
    /// Epsilon of every layer norm.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Whether attention adds relative-position terms (`pos_att_type`).
    #[serde(default)]
    pub relative_attention: bool,
    /// Relative distances beyond this are clamped; below 1 means
    /// `max_position_embeddings`.
    #[serde(default = "default_max_relative")]
    pub max_relative_positions: i64,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: i64,
    /// Whether absolute position embeddings are added to the input.
    #[serde(default = "default_true")]
    pub position_biased_input: bool,
    /// The relative terms: `c2p` (content to position), `p2c` (position to
    /// content); a list or the older `"c2p|p2c"` string. Other entries add
    /// no term but count in the attention scale, as in transformers.
    #[serde(default, deserialize_with = "pos_att_type")]
    pub pos_att_type: Vec<String>,
    /// Talking-heads attention (not supported; refused when set).
    #[serde(default)]
    pub talking_head: bool,
}

impl DebertaConfig {
    /// The relative span: `max_relative_positions`, or the absolute
    /// positions when it is below 1.
    pub fn relative_span(&self) -> i64 {
        if self.max_relative_positions < 1 {
            self.max_position_embeddings
        } else {
            self.max_relative_positions
        }
    }

    /// The width of the word embeddings.
    pub fn embedding_width(&self) -> i64 {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// Whether attention has the content-to-position term.
    pub fn c2p(&self) -> bool {
        self.relative_attention && self.pos_att_type.iter().any(|t| t == "c2p")
    }

    /// Whether attention has the position-to-content term.
    pub fn p2c(&self) -> bool {
        self.relative_attention && self.pos_att_type.iter().any(|t| t == "p2c")
    }

    /// The attention scale's factor: 1 + the entries of `pos_att_type`
    /// (scores are divided by `sqrt(head_dim * factor)`).
    pub fn scale_factor(&self) -> i64 {
        1 + self.pos_att_type.len() as i64
    }

    /// What this implementation cannot run, if anything.
    pub fn unsupported(&self) -> Option<String> {
        if self.hidden_act != "gelu" {
            return Some(format!(
                "hidden_act `{}` is not supported (only gelu)",
                self.hidden_act
            ));
        }
        if self.talking_head {
            return Some("talking_head attention is not supported".into());
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Some(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        None
    }
}

fn pos_att_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Joined(String),
        Absent(()),
    }
    Ok(match Form::deserialize(d)? {
        // A list is taken as written: transformers tests membership of
        // `c2p` and `p2c` and counts every entry in the attention scale.
        Form::List(list) => list,
        // transformers splits the older string form on `|`.
        Form::Joined(s) => s
            .to_lowercase()
            .split('|')
            .map(|t| t.trim().to_owned())
            .collect(),
        Form::Absent(()) => Vec::new(),
    })
}

fn default_vocab() -> i64 {
    50265
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

fn default_eps() -> f64 {
    1e-7
}

fn default_max_relative() -> i64 {
    -1
}

fn default_true() -> bool {
    true
}
