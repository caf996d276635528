//! `bleurt.embeddings.*`: word, absolute position and token-type
//! embeddings at the embedding width, summed and layer-normalised (the
//! projection to the hidden width is the encoder's, `embedding_projection`).

use tch::{Kind, Tensor, nn, nn::Module};

use super::BleurtConfig;

/// BLEURT's input embeddings.
#[derive(Debug)]
pub struct BleurtEmbeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: nn::Embedding,
    token_type_embeddings: nn::Embedding,
    layer_norm: nn::LayerNorm,
}

impl BleurtEmbeddings {
    /// Variables under `p` (`bleurt.embeddings`), named as the checkpoint's keys.
    pub fn new(p: nn::Path<'_>, c: &BleurtConfig) -> Self {
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
            position_embeddings: nn::embedding(
                &p / "position_embeddings",
                c.max_position_embeddings,
                width,
                Default::default(),
            ),
            token_type_embeddings: nn::embedding(
                &p / "token_type_embeddings",
                c.type_vocab_size,
                width,
                Default::default(),
            ),
            layer_norm: crate::layers::layer_norm(&p / "LayerNorm", width, c.layer_norm_eps),
        }
    }

    /// `input_ids`, `token_type_ids`: `[batch, seq]`; positions 0, 1, ...
    /// Returns `[batch, seq, embedding width]`.
    pub fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor) -> Tensor {
        let seq = input_ids.size()[1];
        let positions = Tensor::arange(seq, (Kind::Int64, input_ids.device())).unsqueeze(0);
        let sum = self.word_embeddings.forward(input_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + self.position_embeddings.forward(&positions);
        self.layer_norm.forward(&sum)
    }
}
