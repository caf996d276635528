//! Contextual token embeddings from a BERT, RoBERTa or DeBERTa (v1)
//! checkpoint directory (`config.json`, `model.safetensors`,
//! `tokenizer.json`, or for RoBERTa and DeBERTa `vocab.json` +
//! `merges.txt`): what BERTScore needs from a model. The family comes from
//! `config.json`'s `model_type`; weights are found with or without the
//! `bert.` / `roberta.` / `deberta.` prefix that checkpoints with a head
//! (the Hub's bert-base-uncased, roberta-large, deberta-xlarge-mnli) put
//! before the encoder's keys.
//!
//! RoBERTa follows bert-score's call for it too: the stripped text with a
//! space before it (`add_prefix_space=True`), `<s>` and `</s>` as the
//! special tokens, byte-level BPE from `tokenizers`. DeBERTa's tokenizer is
//! the same byte-level BPE with `[CLS]` and `[SEP]` and no prefix space.
//!
//! Tokenization follows bert-score's call of transformers,
//! `tokenizer.encode(text.strip(), add_special_tokens=True,
//! max_length=tokenizer.model_max_length, truncation=True)`: `[CLS]`, at most
//! `max_len - 2` word pieces, `[SEP]`. `max_len` is the `model_max_length`
//! that `tokenizer_config.json` declares (512 for BERT checkpoints, less for
//! some), capped at the model's `max_position_embeddings`; without a
//! declaration it is the model's positions (transformers would not truncate
//! at all and the model would fail on a longer text). Longer texts are
//! truncated and flagged; the tokenizer file's own padding and truncation
//! settings are ignored.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor, nn};
use tokenizers::Tokenizer;

use crate::bert::{BertConfig, BertModel};
use crate::deberta::{DebertaConfig, DebertaModel};
use crate::error::ModelError;

/// One sentence's tokens and their hidden states.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedSentence {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Which tokens are `[CLS]` or `[SEP]` (`<s>`, `</s>` for RoBERTa).
    pub special: Vec<bool>,
    /// Hidden states, one row of `dim` values per token.
    pub vectors: Vec<Vec<f32>>,
    /// Whether word pieces were cut off at the length limit.
    pub truncated: bool,
}

/// The model families this encoder runs, by `config.json`'s `model_type`.
pub const SUPPORTED_MODEL_TYPES: [&str; 3] = ["bert", "roberta", "deberta"];

/// The network of a family.
enum Network {
    Bert(BertModel),
    Deberta(DebertaModel),
}

impl Network {
    fn hidden_state(&self, input_ids: &Tensor, attention_mask: &Tensor, layer: usize) -> Tensor {
        match self {
            Self::Bert(m) => m.hidden_state(input_ids, attention_mask, layer),
            Self::Deberta(m) => m.hidden_state(input_ids, attention_mask, layer),
        }
    }
}

/// A family's tokenizer conventions, as bert-score calls transformers'
/// tokenizer of it.
struct Family {
    cls: &'static str,
    sep: &'static str,
    /// A space goes before the text (RoBERTa's `add_prefix_space=True`).
    prefix_space: bool,
    /// The special tokens of a byte-level BPE built from `vocab.json` and
    /// `merges.txt`; `None`: the family needs `tokenizer.json`.
    byte_level_specials: Option<&'static [&'static str]>,
}

impl Family {
    const BERT_TOKENS: Self = Self {
        cls: "[CLS]",
        sep: "[SEP]",
        prefix_space: false,
        byte_level_specials: None,
    };
    const ROBERTA_TOKENS: Self = Self {
        cls: "<s>",
        sep: "</s>",
        prefix_space: true,
        byte_level_specials: Some(&["<s>", "<pad>", "</s>", "<unk>", "<mask>"]),
    };
    // DebertaTokenizer: GPT-2's byte-level BPE with BERT's special tokens,
    // and no prefix space (bert-score adds one only for GPT-2 and RoBERTa
    // tokenizers).
    const DEBERTA_TOKENS: Self = Self {
        cls: "[CLS]",
        sep: "[SEP]",
        prefix_space: false,
        byte_level_specials: Some(&["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]),
    };
}

/// A BERT, RoBERTa or DeBERTa encoder and its tokenizer, returning one
/// layer's hidden states.
pub struct BertTextEncoder {
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    model: Network,
    _vars: nn::VarStore,
    device: Device,
    layer: usize,
    cls: u32,
    sep: u32,
    pad: i64,
    max_len: usize,
    /// RoBERTa: a space goes before the text, as bert-score asks.
    prefix_space: bool,
}

pub(crate) fn special_id(
    tokenizer: &Tokenizer,
    path: &Path,
    token: &str,
) -> Result<u32, ModelError> {
    tokenizer
        .token_to_id(token)
        .ok_or_else(|| ModelError::Tokenizer {
            path: path.to_owned(),
            reason: format!("no {token} token"),
        })
}

impl BertTextEncoder {
    /// Loads the checkpoint in `dir`, to return the hidden states after
    /// `layer` layers (0: embeddings; at most the model's layer count).
    pub fn from_dir(dir: &Path, layer: usize, device: Device) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|source| ModelError::Io {
            path: config_path.clone(),
            source,
        })?;
        let bad_config = |reason: String| ModelError::Config {
            path: config_path.clone(),
            reason,
        };
        #[derive(serde::Deserialize)]
        struct ModelType {
            #[serde(default)]
            model_type: Option<String>,
        }
        let family: ModelType =
            serde_json::from_str(&text).map_err(|e| bad_config(e.to_string()))?;
        let family = family.model_type.unwrap_or_else(|| "bert".into());
        if !SUPPORTED_MODEL_TYPES.contains(&family.as_str()) {
            return Err(bad_config(format!(
                "model_type `{family}` is not supported (supported: {})",
                SUPPORTED_MODEL_TYPES.join(", ")
            )));
        }
        let vars = nn::VarStore::new(device);
        // The checkpoint's key list (headers only), read once: it says the
        // prefix and which keys are heads.
        let mut keys = Vec::new();
        for file in crate::checkpoint::weight_files(dir)? {
            keys.extend(crate::checkpoint::stored_keys(&file)?);
        }
        let prefix = weight_prefix(&keys, &family);
        let root = match &prefix {
            Some(p) => vars.root() / p.as_str(),
            None => vars.root(),
        };
        let (network, layers, positions, pad, tokens, unused_positions) = if family == "deberta" {
            let config: DebertaConfig =
                serde_json::from_str(&text).map_err(|e| bad_config(e.to_string()))?;
            if let Some(reason) = config.unsupported() {
                return Err(bad_config(reason));
            }
            let network = Network::Deberta(DebertaModel::new(&root, &config));
            (
                network,
                config.num_hidden_layers,
                config.max_position_embeddings,
                config.pad_token_id,
                Family::DEBERTA_TOKENS,
                // transformers drops a stored position table the model does
                // not use (deberta-xlarge-mnli keeps one).
                !config.position_biased_input,
            )
        } else {
            let config: BertConfig =
                serde_json::from_str(&text).map_err(|e| bad_config(e.to_string()))?;
            if config.hidden_act != "gelu" {
                return Err(bad_config(format!(
                    "hidden_act `{}` is not supported (only gelu)",
                    config.hidden_act
                )));
            }
            if config.position_embedding_type != "absolute" {
                return Err(bad_config(format!(
                    "position_embedding_type `{}` is not supported (only absolute)",
                    config.position_embedding_type
                )));
            }
            let roberta = config.roberta_positions();
            (
                Network::Bert(BertModel::new(&root, &config, None)),
                config.num_hidden_layers,
                config.max_input_len(),
                config.pad_token_id,
                if roberta {
                    Family::ROBERTA_TOKENS
                } else {
                    Family::BERT_TOKENS
                },
                false,
            )
        };
        if layer > layers {
            return Err(ModelError::NoSuchLayer {
                layer,
                available: layers,
            });
        }
        let (tokenizer, tokenizer_path) = load_tokenizer(dir, &tokens)?;
        let cls = special_id(&tokenizer, &tokenizer_path, tokens.cls)?;
        let sep = special_id(&tokenizer, &tokenizer_path, tokens.sep)?;
        // Heads and the pooler of the checkpoint are not part of the encoder.
        let encoder_key = |key: &str| {
            let rest = match &prefix {
                Some(p) => key
                    .strip_prefix(p.as_str())
                    .and_then(|k| k.strip_prefix('.')),
                None => Some(key),
            };
            rest.is_some_and(|k| {
                (k.starts_with("embeddings.") || k.starts_with("encoder."))
                    && !(unused_positions && k == "embeddings.position_embeddings.weight")
            })
        };
        let ignored: Vec<String> = keys.into_iter().filter(|k| !encoder_key(k)).collect();
        crate::checkpoint::load(
            &vars,
            dir,
            &crate::checkpoint::KeyRules {
                ignored,
                ..Default::default()
            },
        )?;
        let max_len = max_len(dir, positions)?;
        Ok(Self {
            tokenizer,
            tokenizer_path,
            model: network,
            _vars: vars,
            device,
            layer,
            cls,
            sep,
            pad,
            max_len,
            prefix_space: tokens.prefix_space,
        })
    }

    /// The most tokens of one text, specials included (see the module docs).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The ids of `[CLS]` and `[SEP]`.
    pub fn special_ids(&self) -> (u32, u32) {
        (self.cls, self.sep)
    }

    /// Token ids of one text: `[CLS]`, the word pieces of the stripped text
    /// (at most [`Self::max_len`] - 2), `[SEP]`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenize_flagged(text).map(|(ids, _)| ids)
    }

    /// [`Self::tokenize`] and whether word pieces were cut off.
    fn tokenize_flagged(&self, text: &str) -> Result<(Vec<u32>, bool), ModelError> {
        let stripped =
            text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c));
        // bert-score gives an empty text no prefix space: only the specials.
        let spaced;
        let input = if self.prefix_space && !stripped.is_empty() {
            spaced = format!(" {stripped}");
            spaced.as_str()
        } else {
            stripped
        };
        let encoding = self
            .tokenizer
            .encode(input, false)
            .map_err(|e| ModelError::Tokenizer {
                path: self.tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        let pieces = encoding.get_ids();
        let keep = pieces.len().min(self.max_len - 2);
        let mut ids = Vec::with_capacity(keep + 2);
        ids.push(self.cls);
        ids.extend_from_slice(&pieces[..keep]);
        ids.push(self.sep);
        Ok((ids, keep < pieces.len()))
    }

    /// Encodes texts in batches of `batch_size`, longest first (as bert-score
    /// does, so that batches are padded little), returning them in input order.
    pub fn encode(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<Vec<EncodedSentence>, ModelError> {
        let (ids, truncated): (Vec<Vec<u32>>, Vec<bool>) = texts
            .iter()
            .map(|t| self.tokenize_flagged(t))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut out: Vec<Option<EncodedSentence>> = vec![None; ids.len()];
        let _guard = tch::no_grad_guard();
        for chunk in crate::batch::longest_first(&lengths, batch_size) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let input = crate::batch::padded(&rows, self.pad, self.device);
            let mask = crate::batch::mask(&rows, self.device);
            let hidden = self
                .model
                .hidden_state(&input, &mask, self.layer)
                .to_kind(Kind::Float)
                .to_device(Device::Cpu);
            let dim = hidden.size()[2];
            for (row, &i) in chunk.iter().enumerate() {
                let n = ids[i].len() as i64;
                let flat: Vec<f32> = Vec::try_from(
                    hidden
                        .get(row as i64)
                        .narrow(0, 0, n)
                        .contiguous()
                        .view([-1]),
                )
                .map_err(|source| ModelError::Torch {
                    context: "reading hidden states".into(),
                    source,
                })?;
                let vectors = flat.chunks(dim as usize).map(<[f32]>::to_vec).collect();
                let special = ids[i]
                    .iter()
                    .map(|&t| t == self.cls || t == self.sep)
                    .collect();
                out[i] = Some(EncodedSentence {
                    ids: ids[i].clone(),
                    special,
                    vectors,
                    truncated: truncated[i],
                });
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

/// The tokenizer: `tokenizer.json`, else (RoBERTa, DeBERTa) `vocab.json`
/// and `merges.txt` as byte-level BPE; its own padding and truncation off.
fn load_tokenizer(dir: &Path, family: &Family) -> Result<(Tokenizer, PathBuf), ModelError> {
    let json = dir.join("tokenizer.json");
    let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    let byte_level = family
        .byte_level_specials
        .filter(|_| !json.is_file() && vocab.is_file());
    let (mut tokenizer, path) = if let Some(specials) = byte_level {
        let bpe = tokenizers::models::bpe::BPE::from_file(
            &vocab.to_string_lossy(),
            &merges.to_string_lossy(),
        )
        .build()
        .map_err(|e| ModelError::Tokenizer {
            path: vocab.clone(),
            reason: e.to_string(),
        })?;
        let mut tokenizer = Tokenizer::new(bpe);
        // GPT-2's byte-level rules, as RobertaTokenizer and DebertaTokenizer
        // apply them.
        let byte_level = tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true);
        tokenizer.with_pre_tokenizer(Some(byte_level));
        tokenizer.with_decoder(Some(byte_level));
        let specials: Vec<_> = specials
            .iter()
            .map(|t| tokenizers::AddedToken::from(*t, true))
            .collect();
        tokenizer
            .add_special_tokens(specials)
            .map_err(|e| ModelError::Tokenizer {
                path: vocab.clone(),
                reason: e.to_string(),
            })?;
        (tokenizer, vocab)
    } else {
        let tokenizer = Tokenizer::from_file(&json).map_err(|e| ModelError::Tokenizer {
            path: json.clone(),
            reason: e.to_string(),
        })?;
        (tokenizer, json)
    };
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    Ok((tokenizer, path))
}

/// RoBERTa's tokenizer in `dir` (`tokenizer.json`, else `vocab.json` and
/// `merges.txt`), for models on a RoBERTa encoder.
pub(crate) fn roberta_tokenizer(dir: &Path) -> Result<(Tokenizer, PathBuf), ModelError> {
    load_tokenizer(dir, &Family::ROBERTA_TOKENS)
}

/// The length limit a model directory declares (see [`BertTextEncoder::max_len`]).
pub(crate) fn declared_max_len(dir: &Path, positions: i64) -> Result<usize, ModelError> {
    max_len(dir, positions)
}

/// The key prefix before the encoder's weights: `bert` / `roberta` in a
/// masked-LM checkpoint, none in a bare encoder's.
fn weight_prefix(keys: &[String], model_type: &str) -> Option<String> {
    let prefixed = format!("{model_type}.embeddings.");
    keys.iter()
        .any(|k| k.starts_with(&prefixed))
        .then(|| model_type.to_owned())
}

/// The length limit: `model_max_length` of `dir/tokenizer_config.json` when
/// it declares a usable one, capped at the model's positions.
fn max_len(dir: &Path, positions: i64) -> Result<usize, ModelError> {
    let positions = positions.max(2) as usize;
    let path = dir.join("tokenizer_config.json");
    let declared = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::Config {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            // transformers writes 1e30 ("no limit") for tokenizers without one.
            value
                .get("model_max_length")
                .and_then(serde_json::Value::as_f64)
                .filter(|v| v.is_finite() && *v >= 2.0 && *v < positions as f64)
                .map(|v| v as usize)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(ModelError::Io { path, source }),
    };
    Ok(declared.unwrap_or(positions))
}
