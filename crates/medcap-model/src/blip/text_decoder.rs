//! `text_decoder.*`: BLIP's causal text decoder (`BlipTextLMHeadModel`): the
//! shared BERT network with cross-attention under `bert`, and the language
//! modelling head under `cls.predictions`.

use tch::{Tensor, nn, nn::Module};

use super::BlipTextConfig;
use crate::bert::{BertModel, KeyValue, TextPass};

/// `cls.predictions`: transform (dense, GELU, LayerNorm), then the
/// vocabulary projection `decoder.weight` plus its separate `bias`.
#[derive(Debug)]
struct LmPredictionHead {
    dense: nn::Linear,
    layer_norm: nn::LayerNorm,
    decoder_weight: Tensor,
    bias: Tensor,
}

impl LmPredictionHead {
    /// `tied`: the word-embedding matrix when the projection is tied to it.
    fn new(p: nn::Path<'_>, c: &BlipTextConfig, tied: Option<&Tensor>) -> Self {
        let transform = &p / "transform";
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: c.initializer_range,
        };
        Self {
            dense: nn::linear(
                &transform / "dense",
                c.hidden_size,
                c.hidden_size,
                Default::default(),
            ),
            layer_norm: nn::layer_norm(
                &transform / "LayerNorm",
                vec![c.hidden_size],
                nn::LayerNormConfig {
                    eps: c.layer_norm_eps,
                    ..Default::default()
                },
            ),
            decoder_weight: match tied {
                Some(words) => words.shallow_clone(),
                None => (&p / "decoder").var("weight", &[c.vocab_size, c.hidden_size], init),
            },
            bias: p.zeros("bias", &[c.vocab_size]),
        }
    }

    fn forward(&self, hidden: &Tensor) -> Tensor {
        let h = self
            .layer_norm
            .forward(&self.dense.forward(hidden).gelu("none"));
        // One `linear`, as transformers' nn.Linear: under autocast the bias
        // is cast with the product, so the logits come out in half precision.
        h.linear(&self.decoder_weight, Some(&self.bias))
    }
}

/// The causal decoder and its LM head.
#[derive(Debug)]
pub struct BlipTextDecoder {
    bert: BertModel,
    cls: LmPredictionHead,
}

/// Output of one decoder pass.
#[derive(Debug)]
pub struct DecoderOutput {
    /// `[batch, seq, vocab]`.
    pub logits: Tensor,
    /// `[batch, seq, hidden]`: the last hidden state before the LM head.
    pub hidden: Tensor,
    /// Self-attention keys and values of every token so far, per layer.
    pub cache: Vec<KeyValue>,
}

impl BlipTextDecoder {
    /// Variables under `p` (`text_decoder`), named as the checkpoint's keys.
    pub fn new(p: &nn::Path<'_>, c: &BlipTextConfig) -> Self {
        let bert = BertModel::new(&(p / "bert"), &c.bert_config(), Some(c.encoder_hidden_size));
        let tied = c
            .tie_word_embeddings
            .then(|| bert.embeddings().word_embeddings());
        let cls = LmPredictionHead::new(p / "cls" / "predictions", c, tied);
        Self { bert, cls }
    }

    /// Cross-attention keys and values of the image tokens for every layer
    /// (computed once per image; generation reuses them at every step).
    pub fn cross_key_values(&self, image_embeds: &Tensor) -> Vec<KeyValue> {
        self.bert.cross_key_values(image_embeds).unwrap_or_default()
    }

    /// A bidirectional pass over `input_ids` without the image (no
    /// cross-attention): the unimodal text representation a contrastive
    /// objective projects, `[batch, seq, hidden]`.
    pub fn unimodal_hidden(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        train: bool,
    ) -> Tensor {
        self.bert
            .forward(
                input_ids,
                TextPass {
                    attention_mask: Some(attention_mask),
                    causal: false,
                    past: None,
                    cross: None,
                    train,
                },
            )
            .0
    }

    /// One causal pass over `input_ids` (`[batch, seq]`), after `past`
    /// cached tokens, reading the image through `cross`.
    pub fn forward_t(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        past: Option<&[KeyValue]>,
        cross: &[KeyValue],
        train: bool,
    ) -> DecoderOutput {
        let (hidden, cache) = self.bert.forward(
            input_ids,
            TextPass {
                attention_mask,
                causal: true,
                past,
                cross: Some(cross),
                train,
            },
        );
        DecoderOutput {
            logits: self.cls.forward(&hidden),
            hidden,
            cache,
        }
    }
}
