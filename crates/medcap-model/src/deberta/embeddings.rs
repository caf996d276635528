//! `embeddings.*`: word embeddings, absolute positions when the checkpoint
//! is `position_biased_input`, token types when it has them, an
//! `embed_proj` up to the hidden width when the embeddings are narrower,
//! then layer norm; padding positions are zeroed by the attention mask, as
//! transformers' `DebertaEmbeddings` does.

use tch::{Kind, Tensor, nn, nn::Module};

use super::DebertaConfig;

/// DeBERTa's input embeddings.
#[derive(Debug)]
pub struct DebertaEmbeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: Option<nn::Embedding>,
    token_type_embeddings: Option<nn::Embedding>,
    embed_proj: Option<nn::Linear>,
    layer_norm: nn::LayerNorm,
}

impl DebertaEmbeddings {
    /// Variables under `p` (`embeddings`), named as the checkpoint's keys.
    pub fn new(p: nn::Path<'_>, c: &DebertaConfig) -> Self {
        let width = c.embedding_width();
        let word_config = nn::EmbeddingConfig {
            padding_idx: c.pad_token_id,
            ..Default::default()
        };
        Self {
            word_embeddings: nn::embedding(
                &p / "word_embeddings",
                c.vocab_size,
                width,
                word_config,
            ),
            position_embeddings: c.position_biased_input.then(|| {
                nn::embedding(
                    &p / "position_embeddings",
                    c.max_position_embeddings,
                    width,
                    Default::default(),
                )
            }),
            token_type_embeddings: (c.type_vocab_size > 0).then(|| {
                nn::embedding(
                    &p / "token_type_embeddings",
                    c.type_vocab_size,
                    width,
                    Default::default(),
                )
            }),
            embed_proj: (width != c.hidden_size).then(|| {
                nn::linear(
                    &p / "embed_proj",
                    width,
                    c.hidden_size,
                    nn::LinearConfig {
                        bias: false,
                        ..Default::default()
                    },
                )
            }),
            layer_norm: super::layer_norm(&p / "LayerNorm", c),
        }
    }

    /// `input_ids`, `attention_mask`: `[batch, seq]` (mask 1 for tokens, 0
    /// for padding); positions 0, 1, ...; token type 0. Returns `[batch,
    /// seq, hidden]` with padding rows zero.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let seq = input_ids.size()[1];
        let mut sum = self.word_embeddings.forward(input_ids);
        if let Some(positions) = &self.position_embeddings {
            let ids = Tensor::arange(seq, (Kind::Int64, input_ids.device())).unsqueeze(0);
            sum += positions.forward(&ids);
        }
        if let Some(types) = &self.token_type_embeddings {
            sum += types.forward(&input_ids.zeros_like());
        }
        if let Some(proj) = &self.embed_proj {
            sum = proj.forward(&sum);
        }
        let normed = self.layer_norm.forward(&sum);
        let kind = normed.kind();
        normed * attention_mask.unsqueeze(2).to_kind(kind)
    }
}
