//! BLIP's tokenizer: the checkpoint's `tokenizer.json` (bert-base-uncased
//! word pieces) through the `tokenizers` crate, with `[DEC]` (30522) and
//! `[ENC]` (30523) used by id, since the Hub files do not contain them.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use crate::error::ModelError;

/// `[DEC]`: the first token of every caption.
pub const DEC_ID: i64 = 30522;
/// `[ENC]`: the first token of the original BLIP's multimodal encoder input.
pub const ENC_ID: i64 = 30523;

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
    special: Vec<i64>,
}

impl BlipTokenizer {
    /// Loads `dir/tokenizer.json` and checks it against the model's
    /// vocabulary size (`vocab_size` from `config.json`).
    pub fn from_dir(dir: &Path, vocab_size: i64) -> Result<Self, ModelError> {
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
        let mut special: Vec<i64> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&i, _)| i64::from(i))
            .collect();
        special.extend([DEC_ID, ENC_ID]);
        let size = inner.get_vocab_size(true) as i64;
        if size > vocab_size {
            return Err(err(format!(
                "{size} tokens, more than the model's vocab_size {vocab_size}"
            )));
        }
        if vocab_size <= DEC_ID {
            return Err(err(format!(
                "the model's vocab_size {vocab_size} has no room for [DEC] = {DEC_ID}"
            )));
        }
        Ok(Self {
            inner,
            path,
            cls,
            sep,
            pad,
            special,
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
        Ok(encoding.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// The decoder's input for a caption prompt, as transformers' BLIP
    /// `generate` builds it: `[DEC]` in place of `[CLS]` and `[SEP]` dropped
    /// (`[DEC]` alone without a prompt).
    pub fn decoder_prompt(&self, prompt: Option<&str>) -> Result<Vec<i64>, ModelError> {
        let mut ids = match prompt {
            Some(text) if !text.trim().is_empty() => self.encode(text)?,
            _ => return Ok(vec![DEC_ID]),
        };
        ids[0] = DEC_ID;
        ids.pop();
        Ok(ids)
    }

    /// Right-padded ids and mask for `texts`; with `max_len`, each text is
    /// cut to that many tokens (keeping the final `[SEP]`).
    pub fn batch(&self, texts: &[&str], max_len: Option<usize>) -> Result<Batch, ModelError> {
        let mut rows = Vec::with_capacity(texts.len());
        for text in texts {
            let mut ids = self.encode(text)?;
            if let Some(max) = max_len.filter(|&m| m >= 2 && ids.len() > m) {
                ids.truncate(max - 1);
                ids.push(self.sep);
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

    /// Text of `ids` without special tokens (`[DEC]`, `[ENC]`, `[CLS]`,
    /// `[SEP]`, `[PAD]`, ...), as transformers' `decode(ids,
    /// skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[i64]) -> Result<String, ModelError> {
        let kept: Vec<u32> = ids
            .iter()
            .filter(|id| !self.special.contains(id))
            .filter_map(|&id| u32::try_from(id).ok())
            .collect();
        self.inner
            .decode(&kept, true)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                reason: e.to_string(),
            })
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
            crate::checkpoint::write_atomic(&dir.join(name), &bytes)?;
        }
        Ok(())
    }
}
