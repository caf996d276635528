//! BLEURT (Sellam et al. 2020; BLEURT-20, Pu et al. 2021) as bleurt-pytorch
//! defines it, for ImageCLEFmedical Caption's BLEURT component: a BERT
//! encoder whose embeddings may be narrower than its layers
//! (`encoder.embedding_projection`), a tanh pooler on the first token and a
//! one-output regression head; the score of a (reference, candidate) pair is
//! the raw logit. Keys as `BleurtForSequenceClassification` saves them
//! (`bleurt.embeddings`, `bleurt.encoder`, `bleurt.pooler`, `classifier`).
//!
//! Pairs are encoded as bleurt-pytorch's tokenizer encodes them for the
//! official evaluator, `tokenizer(references, candidates, truncation=True,
//! max_length=512, padding="longest")`: `[CLS] reference [SEP] candidate
//! [SEP]`, token types 0 then 1, the longer side cut first (transformers'
//! `longest_first`). The tokenizer is `tokenizer.json` when the directory
//! has one (the WordPiece BLEURT checkpoints), else `spm.model` (BLEURT-20's
//! SentencePiece, [`crate::sentencepiece`]).

mod config;
mod embeddings;

pub use config::BleurtConfig;
use embeddings::BleurtEmbeddings;

use std::path::{Path, PathBuf};

use tch::{Device, Tensor, nn, nn::Module};
use tokenizers::Tokenizer;

use crate::bert::{BertLayer, LayerContext};
use crate::error::ModelError;

/// The longest pair the official evaluator lets through (`max_length=512`).
pub const MAX_LENGTH: usize = 512;

/// `BleurtForSequenceClassification` in evaluation mode.
#[derive(Debug)]
struct BleurtNetwork {
    embeddings: BleurtEmbeddings,
    embedding_projection: Option<nn::Linear>,
    layers: Vec<BertLayer>,
    pooler: nn::Linear,
    classifier: nn::Linear,
}

impl BleurtNetwork {
    fn new(root: &nn::Path<'_>, c: &BleurtConfig) -> Self {
        let bleurt = root / "bleurt";
        let encoder = &bleurt / "encoder";
        let layer_config = c.layer_config();
        Self {
            embeddings: BleurtEmbeddings::new(&bleurt / "embeddings", c),
            embedding_projection: c.embedding_size.map(|width| {
                nn::linear(
                    &encoder / "embedding_projection",
                    width,
                    c.hidden_size,
                    Default::default(),
                )
            }),
            layers: (0..c.num_hidden_layers)
                .map(|i| BertLayer::new(&encoder / "layer" / i, &layer_config, None))
                .collect(),
            pooler: nn::linear(
                &bleurt / "pooler" / "dense",
                c.hidden_size,
                c.hidden_size,
                Default::default(),
            ),
            classifier: nn::linear(root / "classifier", c.hidden_size, 1, Default::default()),
        }
    }

    /// `input_ids`, `token_type_ids`, `attention_mask`: `[batch, seq]`.
    /// Returns the logits, `[batch]`.
    fn logits(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Tensor {
        let mut x = self.embeddings.forward(input_ids, token_type_ids);
        if let Some(projection) = &self.embedding_projection {
            x = projection.forward(&x);
        }
        let bias = crate::bert::attention_bias(
            Some(attention_mask),
            input_ids.size()[1],
            0,
            false,
            input_ids.device(),
            f64::from(f32::MIN),
        );
        for layer in &self.layers {
            x = layer
                .forward(
                    &x,
                    LayerContext {
                        mask: bias.as_ref(),
                        ..Default::default()
                    },
                )
                .0;
        }
        let pooled = self.pooler.forward(&x.select(1, 0)).tanh();
        self.classifier.forward(&pooled).squeeze_dim(-1)
    }
}

/// A BLEURT checkpoint and its tokenizer: scores of (reference, candidate)
/// pairs.
pub struct Bleurt {
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    network: BleurtNetwork,
    _vars: nn::VarStore,
    device: Device,
    cls: u32,
    sep: u32,
    pad: i64,
    max_len: usize,
}

impl Bleurt {
    /// Loads the checkpoint in `dir` (`config.json`, `model.safetensors`,
    /// `spm.model` or `tokenizer.json`, optionally `tokenizer_config.json`
    /// for `do_lower_case`) onto `device`.
    ///
    /// # Errors
    /// [`ModelError`]: a missing or unreadable file, a configuration this
    /// implementation does not run (named), weights that do not fit it.
    pub fn from_dir(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (config, config_path): (BleurtConfig, _) = crate::checkpoint::read_config(dir)?;
        let bad_config = |reason: String| ModelError::Config {
            path: config_path.clone(),
            reason,
        };
        if config.model_type != "bleurt" {
            return Err(bad_config(format!(
                "model_type `{}` is not BLEURT's (`bleurt`)",
                config.model_type
            )));
        }
        if config.hidden_act != "gelu" {
            return Err(bad_config(format!(
                "hidden_act `{}` is not supported (only gelu)",
                config.hidden_act
            )));
        }
        if config.num_labels() != 1 {
            return Err(bad_config(format!(
                "{} labels: BLEURT's regression head has one output",
                config.num_labels()
            )));
        }
        let (tokenizer, tokenizer_path) = load_tokenizer(dir)?;
        let special = |token| crate::text_encoder::special_id(&tokenizer, &tokenizer_path, token);
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        let vars = nn::VarStore::new(device);
        let network = BleurtNetwork::new(&vars.root(), &config);
        // The position-id buffers some exports carry are not weights.
        let ignored = crate::checkpoint::keys_outside(dir, |k| {
            !(k.ends_with("embeddings.position_ids") || k.ends_with("embeddings.token_type_ids"))
        })?;
        crate::checkpoint::load(
            &vars,
            dir,
            &crate::checkpoint::KeyRules {
                ignored,
                ..Default::default()
            },
        )?;
        let positions = usize::try_from(config.max_position_embeddings).unwrap_or(0);
        Ok(Self {
            tokenizer,
            tokenizer_path,
            network,
            _vars: vars,
            device,
            cls,
            sep,
            pad: config.pad_token_id,
            max_len: MAX_LENGTH.min(positions).max(3),
        })
    }

    /// The most tokens of one pair, specials included: 512 as the official
    /// call asks, or fewer when the model has fewer positions.
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

    /// The token ids and token types of one pair (see the module docs).
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when the tokenizer fails.
    pub fn encode_pair(
        &self,
        reference: &str,
        candidate: &str,
    ) -> Result<(Vec<u32>, Vec<u32>), ModelError> {
        let (mut a, mut b) = (self.pieces(reference)?, self.pieces(candidate)?);
        let excess = (a.len() + b.len() + 3).saturating_sub(self.max_len);
        if excess > 0 {
            // transformers' longest_first: the difference comes off the
            // longer side, the rest is split, the second side taking the
            // odd one when the first is not longer.
            let first = excess.min(a.len().abs_diff(b.len()));
            let rest = excess - first;
            let (from_a, from_b) = if a.len() > b.len() {
                (first + rest / 2, rest - rest / 2)
            } else {
                (rest / 2, first + rest - rest / 2)
            };
            a.truncate(a.len().saturating_sub(from_a));
            b.truncate(b.len().saturating_sub(from_b));
        }
        let mut ids = Vec::with_capacity(a.len() + b.len() + 3);
        ids.push(self.cls);
        ids.extend_from_slice(&a);
        ids.push(self.sep);
        let first = ids.len();
        ids.extend_from_slice(&b);
        ids.push(self.sep);
        let mut types = vec![0u32; first];
        types.resize(ids.len(), 1);
        Ok((ids, types))
    }

    /// BLEURT's score of each `(reference, candidate)` pair, in input order,
    /// `batch_size` pairs per forward pass (padded to the longest; the
    /// values do not depend on the batching beyond float rounding).
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] when the tokenizer fails,
    /// [`ModelError::Torch`] when libtorch does.
    pub fn score(&self, pairs: &[(&str, &str)], batch_size: usize) -> Result<Vec<f64>, ModelError> {
        let encoded = pairs
            .iter()
            .map(|(r, c)| self.encode_pair(r, c))
            .collect::<Result<Vec<_>, _>>()?;
        let lengths: Vec<usize> = encoded.iter().map(|(ids, _)| ids.len()).collect();
        let mut out = vec![f64::NAN; encoded.len()];
        let _guard = tch::no_grad_guard();
        for chunk in crate::batch::longest_first(&lengths, batch_size) {
            let ids: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].0.as_slice()).collect();
            let types: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].1.as_slice()).collect();
            let logits = self.network.logits(
                &crate::batch::padded(&ids, self.pad, self.device),
                &crate::batch::padded(&types, 0, self.device),
                &crate::batch::mask(&ids, self.device),
            );
            crate::batch::scatter(&mut out, &chunk, &logits, "BLEURT's logits")?;
        }
        Ok(out)
    }
}

/// Pairs per forward pass when scoring for the suites (2026's
/// `TEXT_BATCH_SIZE` default; the values do not depend on it).
pub const BATCH_SIZE: usize = 8;

impl medcap_metrics::imageclef::PairScorer for Bleurt {
    fn score_pairs(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<f64>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.score(pairs, BATCH_SIZE)?)
    }
}

/// `tokenizer.json` when present, else `spm.model` with `do_lower_case`
/// from `tokenizer_config.json` (default false, as BLEURT-20's).
fn load_tokenizer(dir: &Path) -> Result<(Tokenizer, PathBuf), ModelError> {
    let json = dir.join("tokenizer.json");
    if json.is_file() {
        let mut tokenizer = Tokenizer::from_file(&json).map_err(|e| ModelError::Tokenizer {
            path: json.clone(),
            reason: e.to_string(),
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer {
                path: json.clone(),
                reason: e.to_string(),
            })?;
        return Ok((tokenizer, json));
    }
    let spm = dir.join("spm.model");
    let config_path = dir.join("tokenizer_config.json");
    let lower = match std::fs::read_to_string(&config_path) {
        Ok(text) => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::Config {
                    path: config_path.clone(),
                    reason: e.to_string(),
                })?;
            value
                .get("do_lower_case")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(source) => {
            return Err(ModelError::Io {
                path: config_path,
                source,
            });
        }
    };
    let tokenizer = crate::sentencepiece::unigram_tokenizer(&spm, lower)?;
    Ok((tokenizer, spm))
}
