//! BERTScore's encoder: [`BertScorer`] implements medcap-metrics'
//! [`TokenEmbedder`] on [`BertTextEncoder`], so that any BERT or RoBERTa
//! checkpoint directory gives BERTScore its contextual token embeddings.
//!
//! The matching, idf and bert-score's conventions live in
//! `medcap_metrics::bertscore`, which never links libtorch; this adapter is
//! the only BERTScore code that does.

use std::path::Path;

use medcap_metrics::bertscore::{
    BertScoreError, EmbeddedText, ModelChoice, TokenEmbedder, choose_model,
};
use tch::Device;

use crate::text_encoder::BertTextEncoder;

/// The layer used for the default all-MiniLM-L6-v2 (see `medcap_metrics::bertscore`).
pub const DEFAULT_LAYER: usize = medcap_metrics::bertscore::DEFAULT_LAYER_MINILM;

/// BERTScore's encoder: the hidden states of one layer of a BERT-family
/// checkpoint, `[tokens, hidden]` f32 per text.
pub struct BertScorer {
    encoder: BertTextEncoder,
    /// Texts per forward pass (64, bert-score's default).
    pub batch_size: usize,
}

impl BertScorer {
    /// Loads `dir` (config.json, model.safetensors, tokenizer.json or
    /// RoBERTa's vocab.json and merges.txt) to use the hidden states after
    /// `layer` layers, on `device`.
    ///
    /// # Errors
    /// [`BertScoreError::Encoder`] with the loading error (missing file,
    /// unsupported model type, layer beyond the model's).
    pub fn from_dir(dir: &Path, layer: usize, device: Device) -> Result<Self, BertScoreError> {
        let encoder = BertTextEncoder::from_dir(dir, layer, device)
            .map_err(|e| BertScoreError::Encoder(Box::new(e)))?;
        Ok(Self {
            encoder,
            batch_size: 64,
        })
    }
}

impl BertScorer {
    /// The encoder a user names, the one lookup for `medcap score`, the
    /// study and applications: `dir` (default: the installed
    /// all-MiniLM-L6-v2), bert-score's `name` for it and the `layer`, chosen
    /// by [`choose_model`], then loaded on `device`.
    ///
    /// # Errors
    /// [`BertScoreError::Model`] when no model or layer can be chosen,
    /// [`BertScoreError::Encoder`] when it cannot be loaded.
    pub fn choose(
        dir: Option<&Path>,
        name: Option<&str>,
        layer: Option<usize>,
        device: Device,
    ) -> Result<(Self, ModelChoice), BertScoreError> {
        let choice = choose_model(dir, name, layer)?;
        let scorer = Self::from_dir(&choice.dir, choice.layer, device)?;
        Ok((scorer, choice))
    }
}

impl TokenEmbedder for BertScorer {
    fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, BertScoreError> {
        texts
            .iter()
            .map(|t| self.encoder.tokenize(t))
            .collect::<Result<_, _>>()
            .map_err(|e| BertScoreError::Encoder(Box::new(e)))
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<EmbeddedText>, BertScoreError> {
        let encoded = self
            .encoder
            .encode(texts, self.batch_size)
            .map_err(|e| BertScoreError::Encoder(Box::new(e)))?;
        Ok(encoded
            .into_iter()
            .map(|e| EmbeddedText {
                ids: e.ids,
                special: e.special,
                vectors: e.vectors,
                truncated: e.truncated,
            })
            .collect())
    }
}
