//! BLIP's tokenizer: the checkpoint's `tokenizer.json` (bert-base-uncased
//! word pieces) through the `tokenizers` crate, with `[DEC]` used by id
//! (the text config's `bos_token_id`, 30522 in the Hub checkpoints, as
//! transformers' BLIP uses it), whether the tokenizer holds it or not.
//! Also: a word-piece vocabulary cut down to what a corpus uses, for the
//! small models medcap trains from scratch.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use crate::blip::BlipTextConfig;
use crate::error::ModelError;

/// Right-padded token ids of a batch of texts.
#[derive(Debug)]
pub struct Batch {
    /// `[batch, longest]` token ids.
    pub input_ids: tch::Tensor,
    /// `[batch, longest]`: 1 for tokens, 0 for padding.
    pub attention_mask: tch::Tensor,
}

/// The tokenizer of a BLIP checkpoint.
#[derive(Debug, Clone)]
pub struct BlipTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    cls: i64,
    sep: i64,
    pad: i64,
    dec: i64,
    vocab_size: i64,
    max_positions: usize,
}

impl BlipTokenizer {
    /// Loads `dir/tokenizer.json` and checks it against the model's text
    /// configuration: `[DEC]` (`bos_token_id`) is a row of the embedding,
    /// and `[SEP]` and `[PAD]` have the ids the model stops and pads with.
    /// Every layout transformers runs is accepted: `[DEC]` inside the
    /// tokenizer (salesforce/BLIP's `init_tokenizer`) or after it (the
    /// Hub's files), and a tokenizer with more tokens than `vocab_size`
    /// (a text that uses one of them is refused when it is encoded).
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] naming `tokenizer.json` when it is missing,
    /// does not parse or disagrees with the configuration.
    pub fn from_dir(dir: &Path, text: &BlipTextConfig) -> Result<Self, ModelError> {
        let vocab_size = text.vocab_size;
        let path = dir.join("tokenizer.json");
        let err = |reason: String| ModelError::Tokenizer {
            path: path.clone(),
            reason,
        };
        if !path.is_file() {
            return Err(err(
                "missing (only tokenizer.json is read; a checkpoint with only vocab.txt can be \
                 converted with transformers' BertTokenizerFast(...).save_pretrained)"
                    .into(),
            ));
        }
        let mut inner = Tokenizer::from_file(&path).map_err(|e| err(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| err(e.to_string()))?;
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .map(i64::from)
                .ok_or_else(|| err(format!("no {token} token")))
        };
        let (cls, sep, pad) = (id("[CLS]")?, id("[SEP]")?, id("[PAD]")?);
        // transformers' BLIP feeds `bos_token_id` to the decoder's embedding
        // whatever the tokenizer holds there: `[DEC]` as an added special
        // token (salesforce/BLIP's `init_tokenizer`: 30522, then `[ENC]`),
        // an id past the tokenizer (the Hub's files, the vocabulary
        // subsets), or another token. Only the embedding bounds it.
        let dec = text.bos_token_id;
        if !(0..vocab_size).contains(&dec) {
            return Err(err(format!(
                "the model's [DEC] (text_config.bos_token_id {dec}) lies outside its \
                 vocab_size {vocab_size}"
            )));
        }
        for (name, ours, model) in [
            ("[SEP]", sep, text.sep_token_id),
            ("[PAD]", pad, text.pad_token_id),
        ] {
            if ours != model {
                return Err(err(format!(
                    "{name} is {ours} here but the model's config says {model}"
                )));
            }
        }
        Ok(Self {
            inner,
            path,
            cls,
            sep,
            pad,
            dec,
            vocab_size,
            max_positions: usize::try_from(text.max_position_embeddings).unwrap_or(0),
        })
    }

    /// Token ids of `text` as transformers' processor gives them:
    /// `[CLS]`, word pieces, `[SEP]`.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, ModelError> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        let ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i64::from(i)).collect();
        if let Some(&bad) = ids.iter().find(|&&i| i >= self.vocab_size) {
            return Err(ModelError::Tokenizer {
                path: self.path.clone(),
                reason: format!(
                    "{text:?} uses token {bad} ({:?}), which the model's vocab_size {} has no \
                     embedding for",
                    self.inner.id_to_token(bad as u32).unwrap_or_default(),
                    self.vocab_size
                ),
            });
        }
        Ok(ids)
    }

    /// The decoder's input for a caption prompt, as transformers' BLIP
    /// `generate` builds it: `[DEC]` in place of `[CLS]` and `[SEP]` dropped
    /// (`[DEC]` alone without a prompt).
    pub fn decoder_prompt(&self, prompt: Option<&str>) -> Result<Vec<i64>, ModelError> {
        let mut ids = match prompt {
            Some(text) if !text.trim().is_empty() => self.encode(text)?,
            _ => return Ok(vec![self.dec]),
        };
        // A text the tokenizer gives nothing for (no post-processor, and
        // only characters its normalizer drops) is no prompt.
        let Some(first) = ids.first_mut() else {
            return Ok(vec![self.dec]);
        };
        *first = self.dec;
        ids.pop();
        Ok(ids)
    }

    /// Right-padded ids and mask for `texts`; with `max_len`, each text is
    /// cut to that many tokens (keeping the final `[SEP]`).
    ///
    /// # Errors
    /// [`ModelError::TextTooLong`] for a text that has, after any cut, more
    /// tokens than the model's position table (transformers fails there
    /// too); [`ModelError::Tokenizer`] as [`Self::encode`].
    pub fn batch(&self, texts: &[&str], max_len: Option<usize>) -> Result<Batch, ModelError> {
        let mut rows = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let mut ids = self.encode(text)?;
            if let Some(max) = max_len.filter(|&m| m >= 2 && ids.len() > m) {
                ids.truncate(max - 1);
                ids.push(self.sep);
            }
            if ids.len() > self.max_positions {
                return Err(ModelError::TextTooLong {
                    index,
                    tokens: ids.len(),
                    positions: self.max_positions,
                });
            }
            rows.push(ids);
        }
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![self.pad; rows.len() * longest];
        let mut mask = vec![0i64; rows.len() * longest];
        for (r, row) in rows.iter().enumerate() {
            ids[r * longest..r * longest + row.len()].copy_from_slice(row);
            mask[r * longest..r * longest + row.len()].fill(1);
        }
        let shape = [rows.len() as i64, longest as i64];
        Ok(Batch {
            input_ids: tch::Tensor::from_slice(&ids).view(shape),
            attention_mask: tch::Tensor::from_slice(&mask).view(shape),
        })
    }

    /// Text of `ids` without special tokens (`[CLS]`, `[SEP]`, `[PAD]`,
    /// `[DEC]` and `[ENC]` where the tokenizer holds them as special
    /// tokens, ...), as transformers' `decode(ids,
    /// skip_special_tokens=True)`: ids the tokenizer does not have (`[DEC]`
    /// and `[ENC]` past the Hub's tokenizer) are dropped, as the
    /// `tokenizers` library drops them.
    pub fn decode(&self, ids: &[i64]) -> Result<String, ModelError> {
        let kept: Vec<u32> = ids
            .iter()
            .filter_map(|&id| u32::try_from(id).ok())
            .collect();
        self.inner
            .decode(&kept, true)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    /// The model's position table: the most tokens a text can have.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// `[DEC]`'s id: the first token of every caption.
    pub fn dec_id(&self) -> i64 {
        self.dec
    }

    /// `[CLS]`, `[SEP]` and `[PAD]` ids.
    pub fn cls_sep_pad(&self) -> (i64, i64, i64) {
        (self.cls, self.sep, self.pad)
    }

    /// Copies the tokenizer files of `source` (the checkpoint it came
    /// from) into `dir`, so that a saved model loads with transformers.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let source = self.path.parent().unwrap_or(Path::new("."));
        for name in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",
        ] {
            let from = source.join(name);
            if !from.is_file() {
                continue;
            }
            let bytes = std::fs::read(&from).map_err(|source| ModelError::Io {
                path: from.clone(),
                source,
            })?;
            medcap_io::write_atomic(&dir.join(name), &bytes)?;
        }
        Ok(())
    }
}

/// A word-piece vocabulary cut down by [`write_vocabulary_subset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VocabularySubset {
    /// Tokens kept; ids run from 0 to `len - 1`, so a BLIP model over this
    /// vocabulary puts `[DEC]` at `len` and has `vocab_size = len + 2`
    /// (room for `[ENC]`, as the Hub checkpoints have).
    pub len: i64,
    /// `[CLS]`'s new id.
    pub cls: i64,
    /// `[SEP]`'s new id.
    pub sep: i64,
    /// `[PAD]`'s new id.
    pub pad: i64,
}

/// Writes into `to` a tokenizer whose vocabulary is the BERT word-piece
/// vocabulary of `from` (its `tokenizer.json`) restricted to: the special
/// tokens, every piece the source tokenizer gives any of `texts`, and every
/// printable ASCII character alone and as a continuation (`##c`), so that
/// any ASCII word still has a spelling. Kept tokens keep their source
/// order. Each of `texts` tokenizes to the same pieces as with the source:
/// WordPiece takes the longest piece that matches, and the source's choice
/// is kept while every longer candidate was already absent from it.
///
/// Writes `tokenizer.json` and `vocab.txt` (so that transformers'
/// `BertTokenizer` and `BertTokenizerFast` load the directory) and copies
/// `tokenizer_config.json` and `special_tokens_map.json`, which hold no ids.
/// Why: a model trained from scratch on one corpus needs no output row for
/// the 28,000 pieces it never sees, and the LM head over the full
/// bert-base-uncased vocabulary is most of a small model's training step.
///
/// # Errors
/// [`ModelError::Tokenizer`] when the source is not a BERT word-piece
/// tokenizer (no `[CLS]`, `[SEP]`, `[PAD]` or `[UNK]`, another model type),
/// [`ModelError::Io`] when a file cannot be written.
pub fn write_vocabulary_subset<'a>(
    from: &Path,
    to: &Path,
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<VocabularySubset, ModelError> {
    use std::collections::{BTreeSet, HashMap};
    use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::processors::template::TemplateProcessing;
    use tokenizers::{AddedToken, ModelWrapper};

    let path = from.join("tokenizer.json");
    let err = |reason: String| ModelError::Tokenizer {
        path: path.clone(),
        reason,
    };
    let mut source = Tokenizer::from_file(&path).map_err(|e| err(e.to_string()))?;
    source.with_padding(None);
    source
        .with_truncation(None)
        .map_err(|e| err(e.to_string()))?;
    let ModelWrapper::WordPiece(pieces) = source.get_model() else {
        return Err(err("not a word-piece (BERT) tokenizer".into()));
    };
    let vocab = source.get_vocab(false);
    let id_of = |token: &str| {
        vocab
            .get(token)
            .copied()
            .ok_or_else(|| err(format!("no {token} token")))
    };
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut kept = BTreeSet::new();
    for token in specials {
        if token != "[MASK]" || vocab.contains_key(token) {
            kept.insert(id_of(token)?);
        }
    }
    let prefix = pieces.continuing_subword_prefix.clone();
    for c in (0x21u8..0x7f).map(char::from) {
        for piece in [c.to_string(), format!("{prefix}{c}")] {
            if let Some(&id) = vocab.get(&piece) {
                kept.insert(id);
            }
        }
    }
    for text in texts {
        let encoding = source.encode(text, false).map_err(|e| err(e.to_string()))?;
        kept.extend(encoding.get_ids().iter().copied());
    }
    let by_id: HashMap<u32, &str> = vocab.iter().map(|(t, &i)| (i, t.as_str())).collect();
    let order: Vec<&str> = kept.iter().filter_map(|i| by_id.get(i).copied()).collect();
    let new_vocab: HashMap<String, u32> = order
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let new_id = |token: &str| new_vocab.get(token).map_or(-1, |&i| i64::from(i));
    std::fs::create_dir_all(to).map_err(|source| ModelError::Io {
        path: to.to_owned(),
        source,
    })?;
    let vocab_txt = to.join("vocab.txt");
    let lines: String = order.iter().map(|t| format!("{t}\n")).collect();
    medcap_io::write_atomic(&vocab_txt, lines.as_bytes())?;
    let vocab_path = vocab_txt.to_string_lossy().into_owned();
    let model = WordPiece::from_file(&vocab_path)
        .unk_token(pieces.unk_token.clone())
        .continuing_subword_prefix(prefix.clone())
        .max_input_chars_per_word(pieces.max_input_chars_per_word)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let (cls, sep, pad) = (new_id("[CLS]"), new_id("[SEP]"), new_id("[PAD]"));
    let template = TemplateProcessing::builder()
        .try_single("[CLS]:0 $A:0 [SEP]:0")
        .and_then(|b| b.try_pair("[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1"))
        .map_err(|e| err(e.to_string()))?
        .special_tokens(vec![("[CLS]", cls as u32), ("[SEP]", sep as u32)])
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut subset = Tokenizer::new(model);
    subset
        .with_normalizer(source.get_normalizer().cloned())
        .map_err(|e| err(e.to_string()))?;
    subset.with_pre_tokenizer(source.get_pre_tokenizer().cloned());
    subset.with_post_processor(Some(template));
    subset.with_decoder(Some(WordPieceDecoder::new(prefix, true)));
    let added: Vec<AddedToken> = specials
        .iter()
        .filter(|t| new_vocab.contains_key(**t))
        .map(|t| AddedToken::from(t.to_string(), true))
        .collect();
    subset
        .add_special_tokens(added)
        .map_err(|e| err(e.to_string()))?;

    let json = subset.to_string(true).map_err(|e| err(e.to_string()))?;
    medcap_io::write_atomic(&to.join("tokenizer.json"), json.as_bytes())?;
    for name in ["tokenizer_config.json", "special_tokens_map.json"] {
        let file = from.join(name);
        if file.is_file() {
            let bytes = std::fs::read(&file).map_err(|source| ModelError::Io {
                path: file.clone(),
                source,
            })?;
            medcap_io::write_atomic(&to.join(name), &bytes)?;
        }
    }
    Ok(VocabularySubset {
        len: order.len() as i64,
        cls,
        sep,
        pad,
    })
}
