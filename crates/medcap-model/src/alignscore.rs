//! AlignScore's alignment model (Zha et al. 2023, yuh-zha/AlignScore's
//! `BERTAlignModel`): a RoBERTa encoder, its pooler (dense and tanh on
//! `<s>`) and the three-way head `tri_layer`, whose softmax's first class
//! is the probability that the premise supports the hypothesis (the
//! `nli_sp` score ImageCLEF uses). Keys as the Lightning checkpoint stores
//! them (`base_model.*`, `tri_layer.*`; its other heads are ignored);
//! `config.json` and the tokenizer (`vocab.json` and `merges.txt`, or
//! `tokenizer.json`) are the base model's, roberta-base for AlignScore-base.
//!
//! A (premise, hypothesis) pair is encoded as the official inferencer
//! encodes it, `tokenizer(premise, hypothesis, truncation="only_first",
//! max_length=model_max_length)`: `<s> premise </s></s> hypothesis </s>`,
//! the premise cut from its end when the pair is too long.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, nn, nn::Module};
use tokenizers::Tokenizer;

use crate::bert::{BertConfig, BertModel};
use crate::error::ModelError;

/// AlignScore's alignment model and its tokenizer.
pub struct AlignScoreModel {
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    encoder: BertModel,
    pooler: nn::Linear,
    tri_layer: nn::Linear,
    _vars: nn::VarStore,
    device: Device,
    cls: u32,
    sep: u32,
    pad: i64,
    layers: usize,
    max_len: usize,
}

impl AlignScoreModel {
    /// Loads `dir` (`config.json` of the RoBERTa base model,
    /// `model.safetensors` converted from the AlignScore checkpoint, the
    /// base model's tokenizer) onto `device`.
    ///
    /// # Errors
    /// [`ModelError`]: a missing or unreadable file, a base model that is
    /// not RoBERTa, weights that do not fit.
    pub fn from_dir(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (config, config_path): (BertConfig, _) = crate::checkpoint::read_config(dir)?;
        if config.model_type != "roberta" || config.hidden_act != "gelu" {
            return Err(ModelError::Config {
                path: config_path,
                reason: format!(
                    "model_type `{}` with hidden_act `{}`: AlignScore's base model is RoBERTa \
                     (gelu)",
                    config.model_type, config.hidden_act
                ),
            });
        }
        let (tokenizer, tokenizer_path) = crate::text_encoder::roberta_tokenizer(dir)?;
        let special = |token| crate::text_encoder::special_id(&tokenizer, &tokenizer_path, token);
        let (cls, sep) = (special("<s>")?, special("</s>")?);
        let vars = nn::VarStore::new(device);
        let root = vars.root();
        let base = &root / "base_model";
        let encoder = BertModel::new(&base, &config, None);
        let h = config.hidden_size;
        let pooler = nn::linear(&base / "pooler" / "dense", h, h, Default::default());
        let tri_layer = nn::linear(&root / "tri_layer", h, 3, Default::default());
        // The checkpoint's MLM head and other heads are not used.
        let ignored = crate::checkpoint::keys_outside(dir, |k| {
            (k.starts_with("base_model.embeddings.")
                || k.starts_with("base_model.encoder.")
                || k.starts_with("base_model.pooler.")
                || k.starts_with("tri_layer."))
                && !k.ends_with("position_ids")
        })?;
        crate::checkpoint::load(
            &vars,
            dir,
            &crate::checkpoint::KeyRules {
                ignored,
                ..Default::default()
            },
        )?;
        let max_len = crate::text_encoder::declared_max_len(dir, config.max_input_len())?;
        Ok(Self {
            tokenizer,
            tokenizer_path,
            encoder,
            pooler,
            tri_layer,
            _vars: vars,
            device,
            cls,
            sep,
            pad: config.pad_token_id,
            layers: config.num_hidden_layers,
            max_len,
        })
    }

    /// The most tokens of one pair, specials included (the tokenizer's
    /// `model_max_length`, 512 for RoBERTa's).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn pieces(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer {
                path: self.tokenizer_path.clone(),
                reason: e.to_string(),
            })
    }

    /// The token ids of one pair (see the module docs).
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when the tokenizer fails or the hypothesis
    /// alone does not fit (`only_first` cannot cut enough; the official
    /// code then stops in the model).
    pub fn encode_pair(&self, premise: &str, hypothesis: &str) -> Result<Vec<u32>, ModelError> {
        let (mut a, b) = (self.pieces(premise)?, self.pieces(hypothesis)?);
        let excess = (a.len() + b.len() + 4).saturating_sub(self.max_len);
        if excess > 0 {
            if excess >= a.len() {
                return Err(ModelError::Tokenizer {
                    path: self.tokenizer_path.clone(),
                    reason: format!(
                        "a hypothesis sentence of {} tokens leaves no room for its premise within \
                         {} tokens",
                        b.len(),
                        self.max_len
                    ),
                });
            }
            a.truncate(a.len() - excess);
        }
        let mut ids = Vec::with_capacity(a.len() + b.len() + 4);
        ids.push(self.cls);
        ids.extend_from_slice(&a);
        ids.extend_from_slice(&[self.sep, self.sep]);
        ids.extend_from_slice(&b);
        ids.push(self.sep);
        Ok(ids)
    }

    /// The probability that each premise supports its hypothesis: the
    /// softmax of `tri_layer` over the pooled output, class 0; `batch_size`
    /// pairs per forward pass (values independent of it).
    ///
    /// # Errors
    /// As [`Self::encode_pair`]; [`ModelError::Torch`] when libtorch fails.
    pub fn aligned(
        &self,
        pairs: &[(&str, &str)],
        batch_size: usize,
    ) -> Result<Vec<f64>, ModelError> {
        let encoded = pairs
            .iter()
            .map(|(p, h)| self.encode_pair(p, h))
            .collect::<Result<Vec<_>, _>>()?;
        let lengths: Vec<usize> = encoded.iter().map(Vec::len).collect();
        let mut out = vec![f64::NAN; encoded.len()];
        let _guard = tch::no_grad_guard();
        for chunk in crate::batch::longest_first(&lengths, batch_size) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            let ids = crate::batch::padded(&rows, self.pad, self.device);
            let mask = crate::batch::mask(&rows, self.device);
            let hidden = self.encoder.hidden_state(&ids, &mask, self.layers);
            let pooled = self.pooler.forward(&hidden.select(1, 0)).tanh();
            let probs = self
                .tri_layer
                .forward(&pooled)
                .softmax(-1, Kind::Float)
                .select(1, 0);
            crate::batch::scatter(&mut out, &chunk, &probs, "AlignScore's probabilities")?;
        }
        Ok(out)
    }
}

/// Pairs per forward pass (the official inferencer's `batch_size=32`; the
/// values do not depend on it).
pub const BATCH_SIZE: usize = 32;

impl medcap_metrics::alignscore::AlignmentModel for AlignScoreModel {
    fn aligned(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<f64>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AlignScoreModel::aligned(self, pairs, BATCH_SIZE)?)
    }
}
