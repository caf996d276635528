//! `embeddings.*`: word, absolute position and token-type embeddings,
//! summed and layer-normalised.

use tch::{Kind, Tensor, nn, nn::Module};

use super::BertConfig;

/// BERT's input embeddings.
#[derive(Debug)]
pub struct BertEmbeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: nn::Embedding,
    token_type_embeddings: nn::Embedding,
    layer_norm: nn::LayerNorm,
}

impl BertEmbeddings {
    /// Variables under `p` (`embeddings`), named as the checkpoint's keys.
    pub fn new(p: nn::Path<'_>, c: &BertConfig) -> Self {
        let e = Default::default;
        Self {
            word_embeddings: nn::embedding(
                &p / "word_embeddings",
                c.vocab_size,
                c.hidden_size,
                e(),
            ),
            position_embeddings: nn::embedding(
                &p / "position_embeddings",
                c.max_position_embeddings,
                c.hidden_size,
                e(),
            ),
            token_type_embeddings: nn::embedding(
                &p / "token_type_embeddings",
                c.type_vocab_size,
                c.hidden_size,
                e(),
            ),
            layer_norm: super::layer_norm(&p / "LayerNorm", c),
        }
    }

    /// `input_ids`: `[batch, seq]`; token type 0 everywhere, positions from 0.
    pub fn forward(&self, input_ids: &Tensor) -> Tensor {
        let seq = input_ids.size()[1];
        let positions = Tensor::arange(seq, (Kind::Int64, input_ids.device())).unsqueeze(0);
        let types = input_ids.zeros_like();
        let sum = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(&positions)
            + self.token_type_embeddings.forward(&types);
        self.layer_norm.forward(&sum)
    }
}
