//! BERTScore as the `bert-score` package computes it: greedy cosine
//! matching of contextual token embeddings, optional idf weights from the
//! references, and its conventions for special tokens, empty texts and
//! multiple references.
//!
//! The matching is plain Rust; embeddings come from a [`TokenEmbedder`].
//! medcap-model's `bertscore::BertScorer` implements it on its BERT-family
//! encoder, loading any BERT or RoBERTa checkpoint directory; this crate
//! never links libtorch. The default model is the all-MiniLM-L6-v2 directory
//! that `cargo xtask setup` installs, at layer 5 of its 6: bert-score has no
//! tuned layer for it, and 5 is what bert-score's own table picks for the
//! other 6-layer distilled BERT (distilbert-base-uncased), keeping the last
//! layer's sentence-similarity fine-tuning from dominating token matches.
//! The study used roberta-large at layer 17; a RoBERTa encoder can implement
//! the same trait.
//!
//! Conventions, as bert-score 0.3.13:
//! - `[CLS]`/`[SEP]` get weight 0 but stay candidates in every max;
//! - a text that is only `[CLS][SEP]` (empty) scores P = R = F = 0;
//! - a side whose weights sum to zero (with idf, every token of it occurs in
//!   every reference) is NaN, the other side keeps its value, and F is 0;
//! - with several references, P, R and F are each the max over references,
//!   NaN if any of them is NaN (`torch.max`);
//! - idf: `ln((M+1)/(df+1))` over the M references (as listed, one per
//!   candidate-reference pair), `ln(M+1)` for unseen tokens, 0 for specials;
//! - texts beyond the tokenizer's `model_max_length` are truncated (see
//!   `medcap_model::text_encoder`).
//!
//! One departure, by default: bert-score pads the pairs of a batch to the
//! longest text and multiplies the similarity matrix by the padding mask
//! before taking maxima, so a padded position offers a similarity of 0.
//! When all real similarities of a token are negative (short or unrelated
//! texts, late layers), its score depends on which other pairs share its
//! batch. medcap computes the batch-independent value, bert-score's with
//! `batch_size=1`; [`BertScoreOptions::batch_size`] reproduces bert-score's
//! batches exactly for a published number.
//!
//! ```
//! use medcap_metrics::bertscore::{greedy_match, EmbeddedText};
//!
//! // bert-score's arithmetic on 2-D toy embeddings ([CLS] a b [SEP] vs [CLS] c [SEP]).
//! let hyp = EmbeddedText {
//!     ids: vec![101, 1, 2, 102],
//!     special: vec![true, false, false, true],
//!     vectors: vec![vec![1.0, 0.0], vec![0.6, 0.8], vec![0.0, 1.0], vec![1.0, 0.0]],
//!     truncated: false,
//! };
//! let reference = EmbeddedText {
//!     ids: vec![101, 3, 102],
//!     special: vec![true, false, true],
//!     vectors: vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]],
//!     truncated: false,
//! };
//! let s = greedy_match(&hyp, &reference, &|_| 1.0);
//! assert!((s.precision - 0.98).abs() < 1e-6); // f32 similarities, as bert-score
//! assert!((s.recall - 0.96).abs() < 1e-6);
//! assert!((s.f1 - 0.969897).abs() < 1e-6);
//! ```

use std::collections::HashMap;

use rayon::prelude::*;

/// One text's tokens and contextual embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedText {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Which tokens are special (`[CLS]`, `[SEP]`): weight 0.
    pub special: Vec<bool>,
    /// One embedding per token (need not be normalized).
    pub vectors: Vec<Vec<f32>>,
    /// Whether the text was cut at the encoder's length limit.
    pub truncated: bool,
}

/// BERTScore precision, recall and F1 of one candidate. Precision or
/// recall is NaN where its side has no weight (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct BertScoreValue {
    /// Precision.
    #[serde(deserialize_with = "crate::metric::nan_if_null")]
    pub precision: f64,
    /// Recall.
    #[serde(deserialize_with = "crate::metric::nan_if_null")]
    pub recall: f64,
    /// F1.
    #[serde(deserialize_with = "crate::metric::nan_if_null")]
    pub f1: f64,
}

/// Why BERTScore could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum BertScoreError {
    /// The encoder failed.
    #[error("the BERTScore encoder failed")]
    Encoder(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Candidates and reference sets differ in number.
    #[error(
        "{candidates} candidates but {references} sets of references: each candidate needs its references"
    )]
    LengthMismatch {
        /// Candidates given.
        candidates: usize,
        /// Reference sets given.
        references: usize,
    },
    /// No model or layer could be chosen ([`choose_model`]).
    #[error(transparent)]
    Model(#[from] ModelChoiceError),
}

/// Something that turns texts into contextual token embeddings.
pub trait TokenEmbedder {
    /// Embeds every text, in input order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<EmbeddedText>, BertScoreError>;

    /// Token ids of every text, specials included, as [`Self::embed`] gives
    /// them: what idf weights need. The default embeds; an encoder with a
    /// tokenizer at hand should only tokenize.
    fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, BertScoreError> {
        Ok(self.embed(texts)?.into_iter().map(|e| e.ids).collect())
    }
}

/// Unit-length copies of the token vectors, flattened row-major.
fn normalized(vectors: &[Vec<f32>]) -> Vec<f32> {
    vectors
        .iter()
        .flat_map(|v| {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(move |x| x / norm)
        })
        .collect()
}

/// Dot product with 16 independent partial sums, which the compiler turns
/// into SIMD lanes (a single running sum is one long dependency chain).
/// The summation order differs from bert-score's matrix product anyway;
/// both are f32 and agree well within the parity tolerance.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A text ready for matching: normalized vectors and their width.
struct Prepared<'a> {
    text: &'a EmbeddedText,
    unit: Vec<f32>,
    dim: usize,
}

impl<'a> Prepared<'a> {
    fn new(text: &'a EmbeddedText) -> Self {
        let dim = text.vectors.first().map_or(0, Vec::len);
        Self {
            text,
            unit: normalized(&text.vectors),
            dim,
        }
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.unit[i * self.dim..(i + 1) * self.dim]
    }
}

/// Greedy matching of one candidate against one reference, with token
/// weights from `weight(id)` (specials always 0, then normalized per text).
pub fn greedy_match(
    hyp: &EmbeddedText,
    reference: &EmbeddedText,
    weight: &dyn Fn(u32) -> f64,
) -> BertScoreValue {
    match_prepared(
        &Prepared::new(hyp),
        &Prepared::new(reference),
        weight,
        NO_PADDING,
    )
}

/// Whether bert-score's batch padded the candidate and the reference of a
/// pair (each was shorter than the longest of its side in the batch).
#[derive(Debug, Clone, Copy)]
struct Padded {
    hyp: bool,
    reference: bool,
}

const NO_PADDING: Padded = Padded {
    hyp: false,
    reference: false,
};

fn match_prepared(
    h: &Prepared<'_>,
    r: &Prepared<'_>,
    weight: &dyn Fn(u32) -> f64,
    padded: Padded,
) -> BertScoreValue {
    let (hyp, reference) = (h.text, r.text);
    if hyp.ids.len() <= 2 || reference.ids.len() <= 2 {
        return BertScoreValue::default();
    }
    let (nh, nr) = (hyp.ids.len(), reference.ids.len());
    debug_assert!(h.unit.len() == nh * h.dim && r.unit.len() == nr * r.dim);
    // Cosine similarities in f32, as bert-score's batched matrix product. A
    // padded partner offers bert-score's masked similarity of 0 to every max.
    let floor = |padded: bool| if padded { 0.0 } else { f32::NEG_INFINITY };
    let mut row_max = vec![floor(padded.reference); nh];
    let mut col_max = vec![floor(padded.hyp); nr];
    for (i, best_in_row) in row_max.iter_mut().enumerate() {
        let a = h.row(i);
        for (j, best_in_col) in col_max.iter_mut().enumerate() {
            let s = dot(a, r.row(j));
            *best_in_row = best_in_row.max(s);
            *best_in_col = best_in_col.max(s);
        }
    }
    let weights = |t: &EmbeddedText| -> Vec<f64> {
        let w: Vec<f64> = t
            .ids
            .iter()
            .zip(&t.special)
            .map(|(id, s)| if *s { 0.0 } else { weight(*id) })
            .collect();
        let total: f64 = w.iter().sum();
        // A zero total gives NaN weights, hence a NaN side, as bert-score.
        w.iter().map(|x| x / total).collect()
    };
    let (wh, wr) = (weights(hyp), weights(reference));
    let precision: f64 = row_max
        .iter()
        .zip(&wh)
        .map(|(m, w)| w * f64::from(*m))
        .sum();
    let recall: f64 = col_max
        .iter()
        .zip(&wr)
        .map(|(m, w)| w * f64::from(*m))
        .sum();
    let f1 = 2.0 * precision * recall / (precision + recall);
    let f1 = if f1.is_nan() { 0.0 } else { f1 };
    BertScoreValue {
        precision,
        recall,
        f1,
    }
}

/// idf weights over references, as bert-score's `get_idf_dict`.
pub fn idf_weights(references: &[&EmbeddedText]) -> impl Fn(u32) -> f64 + use<> {
    let mut idf = IdfWeights::default();
    for r in references {
        idf.add_reference(&r.ids);
    }
    move |id| idf.weight(id)
}

/// bert-score's idf dictionary, built one reference at a time (so that a
/// corpus can be counted before it is scored in chunks):
/// `ln((M+1)/(df+1))` over the M references added, `ln(M+1)` for a token
/// no reference has.
#[derive(Debug, Clone, Default)]
pub struct IdfWeights {
    df: HashMap<u32, u32>,
    references: u64,
    /// Scratch: the distinct ids of the reference being added.
    seen: Vec<u32>,
}

impl IdfWeights {
    /// Counts the token ids of one reference (each distinct id once).
    pub fn add_reference(&mut self, ids: &[u32]) {
        self.seen.clear();
        self.seen.extend_from_slice(ids);
        self.seen.sort_unstable();
        self.seen.dedup();
        for &id in &self.seen {
            *self.df.entry(id).or_insert(0) += 1;
        }
        self.references += 1;
    }

    /// The weight of token `id`.
    pub fn weight(&self, id: u32) -> f64 {
        let m = self.references as f64;
        ((m + 1.0) / (f64::from(self.df.get(&id).copied().unwrap_or(0)) + 1.0)).ln()
    }
}

/// How to compute BERTScore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BertScoreOptions {
    /// idf weights from the references.
    pub idf: bool,
    /// `None` (default): the batch-independent value. `Some(n)`: bert-score's
    /// value for its `batch_size=n`, padding zeros included (see the module
    /// docs).
    pub batch_size: Option<usize>,
}

/// BERTScore of a caption set, with what the user should know about it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BertScores {
    /// One value per candidate, in input order.
    pub values: Vec<BertScoreValue>,
    /// Distinct texts (candidates and references) cut at the encoder's
    /// length limit.
    pub truncated_texts: usize,
}

/// BERTScore of each candidate against its references (the max over them),
/// batch-independent; see [`bert_score_with`].
///
/// # Errors
/// [`BertScoreError::Encoder`] when the encoder fails.
pub fn bert_score<R: AsRef<str>>(
    embedder: &dyn TokenEmbedder,
    candidates: &[&str],
    references: &[Vec<R>],
    idf: bool,
) -> Result<Vec<BertScoreValue>, BertScoreError> {
    let options = BertScoreOptions {
        idf,
        batch_size: None,
    };
    Ok(bert_score_with(embedder, candidates, references, &options)?.values)
}

/// BERTScore of each candidate against its references (`references[i]`
/// for `candidates[i]`; P, R and F each the max over them), with `options`.
///
/// # Errors
/// [`BertScoreError::LengthMismatch`] when the slices differ in length,
/// [`BertScoreError::Encoder`] when the encoder fails.
pub fn bert_score_with<R: AsRef<str>>(
    embedder: &dyn TokenEmbedder,
    candidates: &[&str],
    references: &[Vec<R>],
    options: &BertScoreOptions,
) -> Result<BertScores, BertScoreError> {
    check_lengths(candidates.len(), references.len())?;
    let idf = if options.idf {
        let mut idf = IdfWeights::default();
        let texts: Vec<&str> = references.iter().flatten().map(AsRef::as_ref).collect();
        for ids in embedder.token_ids(&texts)? {
            idf.add_reference(&ids);
        }
        Some(idf)
    } else {
        None
    };
    bert_score_chunk(
        embedder,
        candidates,
        references,
        idf.as_ref(),
        options.batch_size,
    )
}

/// Each candidate must have its references.
fn check_lengths(candidates: usize, references: usize) -> Result<(), BertScoreError> {
    if candidates == references {
        Ok(())
    } else {
        Err(BertScoreError::LengthMismatch {
            candidates,
            references,
        })
    }
}

/// [`bert_score_with`] with idf weights given (`None`: every token weighs
/// 1), counted over a whole corpus of which these candidates may be one
/// chunk. With `batch_size`, bert-score's batches are counted from the
/// chunk's first pair: a chunk whose pair count is a multiple of the batch
/// size leaves the next chunk's values exact.
///
/// # Errors
/// [`BertScoreError::LengthMismatch`] when the slices differ in length,
/// [`BertScoreError::Encoder`] when the encoder fails.
pub fn bert_score_chunk<R: AsRef<str>>(
    embedder: &dyn TokenEmbedder,
    candidates: &[&str],
    references: &[Vec<R>],
    idf: Option<&IdfWeights>,
    batch_size: Option<usize>,
) -> Result<BertScores, BertScoreError> {
    check_lengths(candidates.len(), references.len())?;
    // Each distinct text is embedded once (as bert-score does).
    let mut unique: Vec<&str> = Vec::new();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    let mut position = |t| {
        *slot.entry(t).or_insert_with(|| {
            unique.push(t);
            unique.len() - 1
        })
    };
    let cand_index: Vec<usize> = candidates.iter().map(|c| position(c)).collect();
    let ref_index: Vec<Vec<usize>> = references
        .iter()
        .map(|refs| refs.iter().map(|r| position(r.as_ref())).collect())
        .collect();
    // Normalized copies replace the embeddings text by text, so that the
    // chunk holds each text's vectors once.
    let (embedded, units): (Vec<EmbeddedText>, Vec<(Vec<f32>, usize)>) = embedder
        .embed(&unique)?
        .into_par_iter()
        .map(|mut text| {
            let dim = text.vectors.first().map_or(0, Vec::len);
            let unit = normalized(&text.vectors);
            text.vectors = Vec::new();
            (text, (unit, dim))
        })
        .unzip();
    let prepared: Vec<Prepared<'_>> = embedded
        .iter()
        .zip(units)
        .map(|(text, (unit, dim))| Prepared { text, unit, dim })
        .collect();
    let weight: Box<dyn Fn(u32) -> f64 + Sync> = match idf {
        Some(idf) => Box::new(|id| idf.weight(id)),
        None => Box::new(|_| 1.0),
    };
    // bert-score's pairs: each candidate repeated for each of its references.
    let pairs: Vec<(usize, usize, usize)> = ref_index
        .iter()
        .enumerate()
        .flat_map(|(c, refs)| {
            let h = cand_index[c];
            refs.iter().map(move |&r| (c, h, r))
        })
        .collect();
    let padding = pair_padding(&pairs, &embedded, batch_size);
    // Pairs are independent: spread them over rayon's threads.
    let scores: Vec<BertScoreValue> = pairs
        .par_iter()
        .zip(&padding)
        .map(|(&(_, h, r), &padded)| match_prepared(&prepared[h], &prepared[r], &*weight, padded))
        .collect();
    let mut values: Vec<Option<BertScoreValue>> = vec![None; candidates.len()];
    for (&(c, _, _), s) in pairs.iter().zip(scores) {
        values[c] = Some(match values[c] {
            None => s,
            Some(b) => BertScoreValue {
                precision: nan_max(b.precision, s.precision),
                recall: nan_max(b.recall, s.recall),
                f1: nan_max(b.f1, s.f1),
            },
        });
    }
    Ok(BertScores {
        values: values.into_iter().map(Option::unwrap_or_default).collect(),
        truncated_texts: embedded.iter().filter(|e| e.truncated).count(),
    })
}

/// `torch.max`'s rule: NaN if either is NaN.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Which pairs bert-score's batches of `batch_size` pad, on each side: the
/// pairs in order, `batch_size` at a time, each side padded to its longest
/// text in the batch. No padding without a batch size.
fn pair_padding(
    pairs: &[(usize, usize, usize)],
    embedded: &[EmbeddedText],
    batch_size: Option<usize>,
) -> Vec<Padded> {
    let Some(size) = batch_size else {
        return vec![NO_PADDING; pairs.len()];
    };
    let len = |i: usize| embedded[i].ids.len();
    pairs
        .chunks(size.max(1))
        .flat_map(|batch| {
            let longest_hyp = batch.iter().map(|p| len(p.1)).max().unwrap_or(0);
            let longest_ref = batch.iter().map(|p| len(p.2)).max().unwrap_or(0);
            batch.iter().map(move |p| Padded {
                hyp: len(p.1) < longest_hyp,
                reference: len(p.2) < longest_ref,
            })
        })
        .collect()
}

/// A bert-score baseline: the expected P, R and F of unrelated sentences
/// for one model and layer, used to rescale scores to a readable range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Baseline precision.
    pub precision: f64,
    /// Baseline recall.
    pub recall: f64,
    /// Baseline F1.
    pub f1: f64,
}

impl Baseline {
    /// The baseline of `choice`'s layer, as `medcap score` and the study ask
    /// for it: from `file` when given, else with `rescale` bert-score's
    /// own file for the model ([`baseline_file`], English), else none.
    ///
    /// # Errors
    /// [`BaselineError`]: the file unreadable or without the layer, no
    /// bert-score name for the model, no baseline installed for it.
    pub fn for_model(
        choice: &ModelChoice,
        file: Option<&std::path::Path>,
        rescale: bool,
    ) -> Result<Option<Self>, BaselineError> {
        let path = match (file, rescale) {
            (Some(path), _) => path.to_owned(),
            (None, true) => {
                let name = choice
                    .name
                    .ok_or_else(|| BaselineError::Unnamed(choice.dir.clone()))?;
                baseline_file(name, "en")?
            }
            (None, false) => return Ok(None),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| BaselineError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_csv(&text, choice.layer)
            .map(Some)
            .map_err(|e| BaselineError::InFile {
                path,
                source: Box::new(e),
            })
    }

    /// Reads the row `LAYER == layer` of a bert-score baseline file
    /// (`rescale_baseline/{lang}/{model}.tsv`: CSV with header `LAYER,P,R,F`).
    pub fn from_csv(text: &str, layer: usize) -> Result<Self, BaselineError> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| BaselineError::Format(format!("no `{name}` column")))
        };
        let (l, p, r, f) = (column("LAYER")?, column("P")?, column("R")?, column("F")?);
        for line in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let number = |i: usize| -> Result<f64, BaselineError> {
                cells
                    .get(i)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| BaselineError::Format(format!("bad row `{line}`")))
            };
            if number(l)? as usize == layer {
                return Ok(Self {
                    precision: number(p)?,
                    recall: number(r)?,
                    f1: number(f)?,
                });
            }
        }
        Err(BaselineError::NoLayer(layer))
    }

    /// `(x - b) / (1 - b)` for each of P, R and F separately (F is not
    /// recomputed), as bert-score's `rescale_with_baseline`.
    pub fn rescale(&self, s: BertScoreValue) -> BertScoreValue {
        let r = |x: f64, b: f64| (x - b) / (1.0 - b);
        BertScoreValue {
            precision: r(s.precision, self.precision),
            recall: r(s.recall, self.recall),
            f1: r(s.f1, self.f1),
        }
    }
}

/// Why a baseline file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Rescaling was asked for a model bert-score has no name for.
    #[error(
        "rescaling needs bert-score's name for {} (--bertscore-model-type), or a baseline file",
        .0.display()
    )]
    Unnamed(std::path::PathBuf),
    /// bert-score has no baseline for the model.
    #[error(transparent)]
    NotFound(#[from] BaselineNotFound),
    /// A file's problem, with the file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong in it.
        source: Box<BaselineError>,
    },
    /// Not a `LAYER,P,R,F` CSV.
    #[error("not a bert-score baseline file: {0}")]
    Format(String),
    /// The file has no row for the layer.
    #[error("the baseline file has no row for layer {0}")]
    NoLayer(usize),
}

/// bert-score 0.3.13's default layer per model name (its `model2layers`,
/// tuned on WMT16), for the models whose family medcap runs: BERT and
/// RoBERTa with absolute positions, DeBERTa v1. Names as bert-score spells
/// them.
pub const DEFAULT_LAYERS: [(&str, usize); 31] = [
    ("bert-base-uncased", 9),
    ("bert-large-uncased", 18),
    ("bert-base-cased-finetuned-mrpc", 9),
    ("bert-base-multilingual-cased", 9),
    ("bert-base-chinese", 8),
    ("roberta-base", 10),
    ("roberta-large", 17),
    ("roberta-large-mnli", 19),
    ("roberta-base-openai-detector", 7),
    ("roberta-large-openai-detector", 15),
    ("distilroberta-base", 5),
    ("allenai/scibert_scivocab_uncased", 8),
    ("allenai/scibert_scivocab_cased", 9),
    ("nfliu/scibert_basevocab_uncased", 9),
    ("SpanBERT/spanbert-base-cased", 8),
    ("SpanBERT/spanbert-large-cased", 17),
    ("princeton-nlp/unsup-simcse-bert-base-uncased", 10),
    ("princeton-nlp/unsup-simcse-bert-large-uncased", 18),
    ("princeton-nlp/unsup-simcse-roberta-base", 8),
    ("princeton-nlp/unsup-simcse-roberta-large", 13),
    ("princeton-nlp/sup-simcse-bert-base-uncased", 10),
    ("princeton-nlp/sup-simcse-bert-large-uncased", 18),
    ("princeton-nlp/sup-simcse-roberta-base", 10),
    ("princeton-nlp/sup-simcse-roberta-large", 16),
    ("dbmdz/bert-base-turkish-cased", 10),
    ("microsoft/deberta-base", 9),
    ("microsoft/deberta-base-mnli", 9),
    ("microsoft/deberta-large", 16),
    ("microsoft/deberta-large-mnli", 18),
    ("microsoft/deberta-xlarge", 18),
    ("microsoft/deberta-xlarge-mnli", 40),
];

/// The row of [`DEFAULT_LAYERS`] for `name`: bert-score's spelling
/// (`roberta-large`, `allenai/scibert_scivocab_uncased`), or the last part
/// of it, which is what a downloaded directory is usually called
/// (`scibert_scivocab_uncased`). Returns bert-score's name and its layer.
pub fn default_layer(name: &str) -> Option<(&'static str, usize)> {
    DEFAULT_LAYERS
        .iter()
        .copied()
        .find(|(known, _)| *known == name || known.rsplit('/').next() == Some(name))
}

/// The BERTScore model to load: its directory, bert-score's name for it
/// (when known) and the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    /// The Hugging Face directory.
    pub dir: std::path::PathBuf,
    /// bert-score's name of the model ([`DEFAULT_LAYERS`]), which also
    /// names its baseline file; `None` for the default MiniLM or an unknown
    /// model.
    pub name: Option<&'static str>,
    /// The hidden layer whose embeddings are matched.
    pub layer: usize,
}

/// Why no BERTScore model or layer could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelChoiceError {
    /// No directory given and none installed.
    #[error(transparent)]
    NoModel(#[from] DefaultModelError),
    /// A model name bert-score's table does not have.
    #[error(
        "`{0}` is not in bert-score's model table for the families medcap runs (BERT, \
         RoBERTa, DeBERTa v1); pass --bertscore-layer N, or one of: {names}",
        names = DEFAULT_LAYERS.map(|(n, _)| n).join(", ")
    )]
    UnknownName(String),
    /// A directory whose layer cannot be inferred.
    #[error(
        "no default layer for {0}: name the model with --bertscore-model-type (bert-score's \
         names, e.g. roberta-large) or pass --bertscore-layer N"
    )]
    NoLayer(std::path::PathBuf),
}

/// Chooses the model and layer as bert-score does when only a model is
/// named: `dir` (default: [`default_model_dir`], all-MiniLM-L6-v2 at
/// [`DEFAULT_LAYER_MINILM`]); its name from `name`, else from the
/// directory's own name; the layer from `layer`, else bert-score's table.
///
/// # Errors
/// [`ModelChoiceError`]: no model installed, a name outside the table, or
/// a directory with no known layer and none given.
pub fn choose_model(
    dir: Option<&std::path::Path>,
    name: Option<&str>,
    layer: Option<usize>,
) -> Result<ModelChoice, ModelChoiceError> {
    let known = match name {
        Some(n) => Some(default_layer(n).ok_or_else(|| ModelChoiceError::UnknownName(n.into()))?),
        None => dir
            .and_then(|d| d.file_name())
            .and_then(|n| default_layer(&n.to_string_lossy())),
    };
    let Some(dir) = dir else {
        let dir = default_model_dir()?;
        return Ok(ModelChoice {
            dir,
            name: known.map(|(n, _)| n),
            layer: layer
                .or(known.map(|(_, l)| l))
                .unwrap_or(DEFAULT_LAYER_MINILM),
        });
    };
    let layer = match (layer, known) {
        (Some(l), _) => l,
        (None, Some((_, l))) => l,
        (None, None) => return Err(ModelChoiceError::NoLayer(dir.to_owned())),
    };
    Ok(ModelChoice {
        dir: dir.to_owned(),
        name: known.map(|(n, _)| n),
        layer,
    })
}

/// The layer used for the default all-MiniLM-L6-v2 (see the module docs).
pub const DEFAULT_LAYER_MINILM: usize = 5;

/// No bert-score baseline file for a model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{reason}")]
pub struct BaselineNotFound {
    /// What was looked for.
    pub reason: String,
}

/// The environment variable that names bert-score's `rescale_baseline`
/// directory (the one `cargo xtask setup` installs with the bert-score wheel).
pub const BASELINES_DIR_ENV: &str = "MEDCAP_BERTSCORE_BASELINES";

/// bert-score's baseline file for `model` (bert-score's name, see
/// [`default_layer`]) and `lang`, as `rescale_with_baseline=True` picks it:
/// `rescale_baseline/{lang}/{model}.tsv` under `MEDCAP_BERTSCORE_BASELINES`,
/// else under the directory `cargo xtask setup` recorded at build time.
///
/// # Errors
/// [`BaselineNotFound`] naming what was looked for.
pub fn baseline_file(model: &str, lang: &str) -> Result<std::path::PathBuf, BaselineNotFound> {
    let dir = match std::env::var_os(BASELINES_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => match option_env!("MEDCAP_BERTSCORE_BASELINES") {
            Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
            _ => {
                return Err(BaselineNotFound {
                    reason: format!(
                        "no bert-score baselines: {BASELINES_DIR_ENV} is not set and this build \
                         recorded none (run `cargo xtask setup`, or pass --bertscore-baseline FILE)"
                    ),
                });
            }
        },
    };
    let file = dir.join(lang).join(format!("{model}.tsv"));
    if file.is_file() {
        Ok(file)
    } else {
        Err(BaselineNotFound {
            reason: format!(
                "bert-score has no baseline for `{model}` in `{lang}` ({} does not exist; \
                 pass --bertscore-baseline FILE)",
                file.display()
            ),
        })
    }
}

/// The environment variable that names the default BERTScore model directory.
pub const MODEL_DIR_ENV: &str = "MEDCAP_MINILM_DIR";

/// Why no default BERTScore model was found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no BERTScore model: {reason}. Pass a BERT or RoBERTa model directory (--bertscore-model DIR, \
     or bertscore_model in a study configuration), set {MODEL_DIR_ENV}=DIR, or run \
     `cargo xtask setup` in the medcap checkout to install all-MiniLM-L6-v2"
)]
pub struct DefaultModelError {
    /// What was looked at.
    pub reason: String,
}

/// The default BERTScore model, the one lookup of the workspace (used by
/// `medcap score`, `medcap reproduce`, the study and the examples):
/// `MEDCAP_MINILM_DIR` when set, else the all-MiniLM-L6-v2 directory that
/// `cargo xtask setup` had installed when this crate was built (so an
/// installed or directly started binary finds it without any variable).
///
/// # Errors
/// [`DefaultModelError`] when the directory is unset or has no `config.json`.
pub fn default_model_dir() -> Result<std::path::PathBuf, DefaultModelError> {
    let (dir, from) = match std::env::var_os(MODEL_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => (std::path::PathBuf::from(dir), MODEL_DIR_ENV),
        None => match option_env!("MEDCAP_MINILM_DIR") {
            Some(dir) if !dir.is_empty() => (
                std::path::PathBuf::from(dir),
                "the location recorded by `cargo xtask setup` at build time",
            ),
            _ => {
                return Err(DefaultModelError {
                    reason: format!(
                        "{MODEL_DIR_ENV} is not set and this build recorded no installed model"
                    ),
                });
            }
        },
    };
    if dir.join("config.json").is_file() {
        Ok(dir)
    } else {
        Err(DefaultModelError {
            reason: format!("{} (from {from}) has no config.json", dir.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_scores_table_gives_default_layers_by_name_or_directory_name() {
        assert_eq!(default_layer("roberta-large"), Some(("roberta-large", 17)));
        assert_eq!(default_layer("roberta-base"), Some(("roberta-base", 10)));
        assert_eq!(
            default_layer("bert-base-uncased"),
            Some(("bert-base-uncased", 9))
        );
        assert_eq!(
            default_layer("scibert_scivocab_uncased"),
            Some(("allenai/scibert_scivocab_uncased", 8))
        );
        assert_eq!(
            default_layer("deberta-xlarge-mnli"),
            Some(("microsoft/deberta-xlarge-mnli", 40))
        );
        assert_eq!(default_layer("deberta-v2-xlarge"), None);
        let dir = std::path::Path::new("/models/roberta-large");
        let choice = choose_model(Some(dir), None, None).unwrap();
        assert_eq!((choice.name, choice.layer), (Some("roberta-large"), 17));
        let choice = choose_model(Some(dir), None, Some(12)).unwrap();
        assert_eq!(choice.layer, 12);
        let other = std::path::Path::new("/models/my-encoder");
        assert_eq!(
            choose_model(Some(other), None, None),
            Err(ModelChoiceError::NoLayer(other.to_owned()))
        );
        let named = choose_model(Some(other), Some("roberta-base"), None).unwrap();
        assert_eq!((named.name, named.layer), (Some("roberta-base"), 10));
        assert!(matches!(
            choose_model(Some(other), Some("gpt-7"), None),
            Err(ModelChoiceError::UnknownName(_))
        ));
    }

    #[test]
    fn rescaling_matches_the_spec_example() {
        // roberta-large L17 baseline applied to the toy example (P .98, R .96, F .969897).
        let csv = "LAYER,P,R,F\n16,0.1,0.1,0.1\n17,0.83150584,0.8314941,0.83122575\n";
        let b = Baseline::from_csv(csv, 17).unwrap();
        let s = b.rescale(BertScoreValue {
            precision: 0.98,
            recall: 0.96,
            f1: 0.969897,
        });
        assert!((s.f1 - 0.821637).abs() < 1e-5, "{s:?}");
        assert!((s.precision - 0.881302).abs() < 1e-5);
        assert!((s.recall - 0.762620).abs() < 1e-5);
        assert!(matches!(
            Baseline::from_csv(csv, 3),
            Err(BaselineError::NoLayer(3))
        ));
        assert!(Baseline::from_csv("a,b\n1,2", 1).is_err());
    }

    #[test]
    fn a_models_baseline_comes_from_the_file_given_or_only_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.tsv");
        std::fs::write(&file, "LAYER,P,R,F\n5,0.5,0.25,0.4\n").unwrap();
        let unnamed = ModelChoice {
            dir: dir.path().join("my-model"),
            name: None,
            layer: 5,
        };
        let given = Baseline::for_model(&unnamed, Some(&file), false).unwrap();
        assert_eq!(given.map(|b| b.recall), Some(0.25));
        assert!(
            Baseline::for_model(&unnamed, None, false)
                .unwrap()
                .is_none()
        );
        let err = Baseline::for_model(&unnamed, None, true).unwrap_err();
        assert!(err.to_string().contains("my-model"), "{err}");
        let other_layer = ModelChoice {
            layer: 7,
            ..unnamed
        };
        let err = Baseline::for_model(&other_layer, Some(&file), false).unwrap_err();
        assert!(
            err.to_string().contains("b.tsv") && err.to_string().contains("layer 7"),
            "{err}"
        );
        let missing = dir.path().join("none.tsv");
        let err = Baseline::for_model(&other_layer, Some(&missing), false).unwrap_err();
        assert!(matches!(err, BaselineError::Read { .. }), "{err}");
    }

    #[test]
    fn empty_texts_score_zero_and_idf_follows_bert_score() {
        let text = |n: usize| EmbeddedText {
            ids: (0..n as u32).collect(),
            special: (0..n).map(|i| i == 0 || i + 1 == n).collect(),
            vectors: (0..n).map(|i| vec![1.0, i as f32]).collect(),
            truncated: false,
        };
        assert_eq!(
            greedy_match(&text(2), &text(4), &|_| 1.0),
            BertScoreValue::default()
        );
        assert_eq!(
            greedy_match(&text(4), &text(2), &|_| 1.0),
            BertScoreValue::default()
        );
        let (a, b) = (text(3), text(4));
        let w = idf_weights(&[&a, &b]);
        assert!((w(99) - 3f64.ln()).abs() < 1e-12); // unseen
        assert!((w(3) - 1.5f64.ln()).abs() < 1e-12); // in one of two
        assert!(w(1).abs() < 1e-12); // in both
    }
}
