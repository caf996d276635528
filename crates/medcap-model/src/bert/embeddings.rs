//! `embeddings.*`: word, absolute position and (when the checkpoint has
//! them) token-type embeddings, summed and layer-normalised.
//!
//! BERT numbers positions 0, 1, 2, ...; RoBERTa (transformers'
//! `create_position_ids_from_input_ids`) numbers the non-padding tokens
//! `padding_idx + 1, padding_idx + 2, ...` and gives padding `padding_idx`,
//! which is why its table has `padding_idx + 1` more rows than inputs.

use tch::{Kind, Tensor, nn, nn::Module};

use super::BertConfig;

/// BERT's input embeddings.
#[derive(Debug)]
pub struct BertEmbeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: nn::Embedding,
    token_type_embeddings: Option<nn::Embedding>,
    layer_norm: nn::LayerNorm,
    dropout: f64,
    /// RoBERTa: the padding id its positions count from.
    roberta_padding_idx: Option<i64>,
}

impl BertEmbeddings {
    /// Variables under `p` (`embeddings`), named as the checkpoint's keys.
    pub fn new(p: nn::Path<'_>, c: &BertConfig) -> Self {
        let word_config = nn::EmbeddingConfig {
            padding_idx: c.pad_token_id,
            ..Default::default()
        };
        Self {
            word_embeddings: nn::embedding(
                &p / "word_embeddings",
                c.vocab_size,
                c.hidden_size,
                word_config,
            ),
            position_embeddings: nn::embedding(
                &p / "position_embeddings",
                c.max_position_embeddings,
                c.hidden_size,
                Default::default(),
            ),
            token_type_embeddings: (c.type_vocab_size > 0).then(|| {
                nn::embedding(
                    &p / "token_type_embeddings",
                    c.type_vocab_size,
                    c.hidden_size,
                    Default::default(),
                )
            }),
            layer_norm: super::layer_norm(&p / "LayerNorm", c),
            dropout: c.hidden_dropout_prob,
            roberta_padding_idx: c.roberta_positions().then_some(c.pad_token_id),
        }
    }

    /// The word-embedding matrix `[vocab, hidden]`.
    pub fn word_embeddings(&self) -> &Tensor {
        &self.word_embeddings.ws
    }

    /// `input_ids`: `[batch, seq]`; token type 0 everywhere; positions start
    /// at `past_len` (the tokens already in a generation cache), or for
    /// RoBERTa follow its padding rule (see the module docs).
    pub fn forward_t(&self, input_ids: &Tensor, past_len: i64, train: bool) -> Tensor {
        let seq = input_ids.size()[1];
        let positions = match self.roberta_padding_idx {
            Some(pad) => {
                let real = input_ids.ne(pad).to_kind(Kind::Int64);
                (real.cumsum(1, Kind::Int64) + past_len) * &real + pad
            }
            None => {
                Tensor::arange_start(past_len, past_len + seq, (Kind::Int64, input_ids.device()))
                    .unsqueeze(0)
            }
        };
        let mut sum =
            self.word_embeddings.forward(input_ids) + self.position_embeddings.forward(&positions);
        if let Some(types) = &self.token_type_embeddings {
            sum += types.forward(&input_ids.zeros_like());
        }
        self.layer_norm.forward(&sum).dropout(self.dropout, train)
    }
}
