//! A SentencePiece model file (`spm.model`, a `ModelProto` protobuf) as a
//! `tokenizers` tokenizer, built as transformers' `DebertaV2Converter`
//! builds its fast tokenizer from the slow `DebertaV2Tokenizer` (which
//! BLEURT-20's `BleurtSPTokenizer` is): the unigram pieces and scores,
//! `[Lowercase] + Strip + Precompiled(the model's charsmap) + " {2,}" → " "`
//! as normalizer, `Metaspace` (`▁`, prepended to every word) as
//! pre-tokenizer, control (type 3) and user-defined (type 4) pieces as added
//! tokens. Only the fields that needs are read from the protobuf (field
//! numbers of sentencepiece's `sentencepiece_model.proto`); a BPE or other
//! model type is refused.

use std::path::Path;

use tokenizers::normalizers::{Lowercase, Precompiled, Replace, Sequence, Strip};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, NormalizerWrapper, Tokenizer};

use crate::error::ModelError;

/// One vocabulary entry of the model.
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    piece: String,
    score: f32,
    /// sentencepiece's `Type`: 1 normal, 2 unknown, 3 control, 4
    /// user-defined, 5 unused, 6 byte.
    kind: u64,
}

/// The parts of `ModelProto` a unigram tokenizer needs.
#[derive(Debug, Default)]
struct ModelProto {
    pieces: Vec<Piece>,
    /// `TrainerSpec.model_type`: 1 unigram (the default), 2 BPE, 3 word, 4 char.
    model_type: u64,
    unk_id: u64,
    precompiled_charsmap: Vec<u8>,
}

/// A cursor over protobuf wire format.
struct Wire<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// A field's value as the wire carries it.
enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl<'a> Wire<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or("the file ends inside a number")?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("a field runs past the end of the file")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    /// The next field number and value, `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.at == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Varint(0)
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(format!("protobuf wire type {other} is not a model file's")),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn parse(bytes: &[u8]) -> Result<ModelProto, String> {
    let mut model = ModelProto {
        model_type: 1,
        ..Default::default()
    };
    let mut wire = Wire::new(bytes);
    while let Some((field, value)) = wire.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => model.pieces.push(parse_piece(b)?),
            (2, Value::Bytes(b)) => {
                let mut spec = Wire::new(b);
                while let Some((field, value)) = spec.next()? {
                    match (field, value) {
                        (3, Value::Varint(v)) => model.model_type = v,
                        (40, Value::Varint(v)) => model.unk_id = v,
                        _ => {}
                    }
                }
            }
            (3, Value::Bytes(b)) => {
                let mut spec = Wire::new(b);
                while let Some((field, value)) = spec.next()? {
                    if let (2, Value::Bytes(map)) = (field, value) {
                        model.precompiled_charsmap = map.to_vec();
                    }
                }
            }
            _ => {}
        }
    }
    Ok(model)
}

fn parse_piece(bytes: &[u8]) -> Result<Piece, String> {
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: 1,
    };
    let mut wire = Wire::new(bytes);
    while let Some((field, value)) = wire.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                piece.piece =
                    String::from_utf8(b.to_vec()).map_err(|_| "a piece is not UTF-8".to_owned())?;
            }
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(v)) => piece.kind = v,
            _ => {}
        }
    }
    Ok(piece)
}

/// The tokenizer of the SentencePiece model at `path`, lowercasing first
/// when `do_lower_case` (the slow tokenizer's option), with its own
/// padding and truncation off.
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be read,
/// [`ModelError::Tokenizer`] when it is not a unigram SentencePiece model.
pub fn unigram_tokenizer(path: &Path, do_lower_case: bool) -> Result<Tokenizer, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| ModelError::Tokenizer {
        path: path.to_owned(),
        reason,
    };
    let model = parse(&bytes).map_err(|e| bad(format!("not a SentencePiece model file: {e}")))?;
    if model.pieces.is_empty() {
        return Err(bad("not a SentencePiece model file: no pieces".into()));
    }
    if model.model_type != 1 {
        return Err(bad(format!(
            "SentencePiece model type {} is not supported (only unigram, 1)",
            model.model_type
        )));
    }
    let unk = usize::try_from(model.unk_id)
        .ok()
        .filter(|&u| u < model.pieces.len())
        .ok_or_else(|| bad(format!("unk_id {} is not a piece", model.unk_id)))?;
    let vocab = model
        .pieces
        .iter()
        .map(|p| (p.piece.clone(), f64::from(p.score)))
        .collect();
    // As the converter: byte fallback is not carried over (a byte-fallback
    // model's unknown characters become the unknown piece).
    let unigram = tokenizers::models::unigram::Unigram::from(vocab, Some(unk), false)
        .map_err(|e| bad(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(unigram);
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if do_lower_case {
        normalizers.push(Lowercase.into());
    }
    normalizers.push(Strip::new(true, true).into());
    if !model.precompiled_charsmap.is_empty() {
        let precompiled = Precompiled::from(&model.precompiled_charsmap)
            .map_err(|e| bad(format!("its normalization map cannot be read: {e}")))?;
        normalizers.push(precompiled.into());
    }
    let spaces = Replace::new(
        tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()),
        " ",
    )
    .map_err(|e| bad(e.to_string()))?;
    normalizers.push(spaces.into());
    tokenizer
        .with_normalizer(Some(Sequence::new(normalizers)))
        .map_err(|e| bad(e.to_string()))?;
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    let added: Vec<AddedToken> = model
        .pieces
        .iter()
        .filter(|p| matches!(p.kind, 3 | 4))
        .map(|p| AddedToken::from(p.piece.clone(), p.kind == 3).normalized(false))
        .collect();
    tokenizer
        .add_tokens(added)
        .map_err(|e| bad(e.to_string()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| bad(e.to_string()))?;
    Ok(tokenizer)
}
