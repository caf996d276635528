//! `text_encoder.*`: BLIP's bidirectional text encoder
//! (`BlipTextModel` without pooler), used by retrieval: with
//! cross-attention to the image for ITM, without it for ITC's unimodal pass.

use tch::{Tensor, nn};

use super::BlipTextConfig;
use crate::bert::{BertModel, TextPass};

/// The text encoder of `BlipForImageTextRetrieval`.
#[derive(Debug)]
pub struct BlipTextEncoder {
    bert: BertModel,
}

impl BlipTextEncoder {
    /// Variables under `p` (`text_encoder`), named as the checkpoint's keys.
    pub fn new(p: &nn::Path<'_>, c: &BlipTextConfig) -> Self {
        Self {
            bert: BertModel::new(p, &c.bert_config(), Some(c.encoder_hidden_size)),
        }
    }

    /// Last hidden state `[batch, seq, hidden]`; `image_embeds`: `Some` for
    /// the multimodal (ITM) pass, `None` for the unimodal (ITC) one.
    pub fn forward_t(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        image_embeds: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let cross = image_embeds.and_then(|e| self.bert.cross_key_values(e));
        self.bert
            .forward(
                input_ids,
                TextPass {
                    attention_mask: Some(attention_mask),
                    causal: false,
                    past: None,
                    cross: cross.as_deref(),
                    train,
                },
            )
            .0
    }
}
