//! ImageCLEFmedical Caption as its organisers' evaluators score it: each
//! year's reading of submission and ground-truth files (the checks, their
//! messages and their quirks), the caption preprocessing, the per-caption
//! rules, the concept-detection F1 scores and the aggregates.
//!
//! Sources, read (not copied) at these commits: the 2025 evaluator
//! (taubsity/clef-caption-evaluation `ce13086`), the 2026 one
//! (taubsity/clef-caption-evaluation-2026 `9966c13`, with its
//! `submission_check.py`), and the 2023 one as a participating team kept
//! it (TiagoFilipeSousaGoncalves/ImageCLEFmedical2023VCMI `d8fa3f1`). No
//! 2024 evaluator is public; its year is not offered.
//!
//! - [`pycsv`]: CSV records as Python's `csv` module reads them;
//! - [`submission`]: caption files (ground truth and submission), each
//!   year's checks;
//! - [`concepts`]: the concept-detection task's files and F1 scores;
//! - [`Suite`]: the years, their components and aggregates;
//! - [`preprocess`]: the caption preprocessing of BERTScore, ROUGE and
//!   BLEURT.

pub mod concepts;
pub mod pycsv;
pub mod submission;

use std::fmt;
use std::str::FromStr;

use crate::bertscore::{BertScoreError, IdfWeights, TokenEmbedder, bert_score_chunk};
use crate::rouge::Rouge;

/// One year's evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// 2023: BERTScore (DeBERTa-xlarge-MNLI, no idf) and ROUGE-1; files
    /// separated by `|` (or a tab) without quoting.
    Y2023,
    /// 2025: Relevance (BERTScore with idf, ROUGE-1, image–caption
    /// similarity) and Factuality (MedCAT concept F1, AlignScore); BLEURT
    /// reported beside them.
    Y2025,
    /// 2026: as 2025 with BLEURT inside Relevance, a strict format check
    /// first, and an empty caption's similarity 0.
    Y2026,
}

impl Suite {
    /// Every suite, oldest first.
    pub const ALL: [Self; 3] = [Self::Y2023, Self::Y2025, Self::Y2026];

    /// The name `--suite` takes: `imageclef-2025`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Y2023 => "imageclef-2023",
            Self::Y2025 => "imageclef-2025",
            Self::Y2026 => "imageclef-2026",
        }
    }

    /// The caption task's components, in the order the official table
    /// lists them.
    pub fn components(self) -> &'static [Component] {
        use Component::*;
        match self {
            Self::Y2023 => &[BertScore, Rouge1],
            Self::Y2025 | Self::Y2026 => {
                &[BertScore, Rouge1, Similarity, Bleurt, MedCat, AlignScore]
            }
        }
    }

    /// The caption task's aggregates: the official primary and secondary
    /// scores, each the mean of its components.
    pub fn aggregates(self) -> &'static [Aggregate] {
        match self {
            Self::Y2023 => &[
                Aggregate {
                    name: "Primary (BERTScore)",
                    components: &[Component::BertScore],
                },
                Aggregate {
                    name: "Secondary (ROUGE-1)",
                    components: &[Component::Rouge1],
                },
            ],
            Self::Y2025 => &[
                Aggregate {
                    name: "Relevance",
                    components: &[
                        Component::BertScore,
                        Component::Rouge1,
                        Component::Similarity,
                    ],
                },
                Aggregate {
                    name: "Factuality",
                    components: &[Component::MedCat, Component::AlignScore],
                },
            ],
            Self::Y2026 => &[
                Aggregate {
                    name: "Relevance",
                    components: &[
                        Component::BertScore,
                        Component::Rouge1,
                        Component::Similarity,
                        Component::Bleurt,
                    ],
                },
                Aggregate {
                    name: "Factuality",
                    components: &[Component::MedCat, Component::AlignScore],
                },
            ],
        }
    }

    /// Whether a pair is empty on both sides by the official rule, which
    /// then scores it 1: every component but BLEURT (scored as text) and,
    /// in 2026, Similarity (an empty candidate scores 0 there), on the raw
    /// captions in 2025–2026; on the preprocessed captions in 2023, whose
    /// code meant 1 but stops with a `TypeError` instead.
    pub fn both_empty(self, reference: &str, candidate: &str) -> bool {
        match self {
            Self::Y2023 => preprocess(reference).is_empty() && preprocess(candidate).is_empty(),
            Self::Y2025 | Self::Y2026 => reference.is_empty() && candidate.is_empty(),
        }
    }

    /// ROUGE-1 F of one pair as the year's evaluator computes it:
    /// rouge-score's unigram F (no stemming) of the preprocessed captions,
    /// 1 for a pair empty on both sides ([`Self::both_empty`]).
    ///
    /// ```
    /// use medcap_metrics::imageclef::Suite;
    ///
    /// let s = Suite::Y2025;
    /// assert_eq!(s.rouge1("Effusion, 3.5 cm", "effusion 35 cm"), 0.0 + 2.0 / 3.0);
    /// assert_eq!(s.rouge1("", ""), 1.0);
    /// assert_eq!(s.rouge1("", "x"), 0.0);
    /// ```
    pub fn rouge1(self, reference: &str, candidate: &str) -> f64 {
        if self.both_empty(reference, candidate) {
            return 1.0;
        }
        Rouge::default()
            .score(&preprocess(candidate), &preprocess(reference))
            .rouge1
            .fmeasure
    }
}

/// A concept MedCAT found in a caption: its CUI and the name MedCAT
/// prints for it (`pretty_name`), in the order MedCAT lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The UMLS concept identifier.
    pub cui: String,
    /// MedCAT's name of the concept.
    pub pretty_name: String,
}

impl Suite {
    /// The MedCAT component of one pair from the entities MedCAT found in
    /// the raw reference and candidate (`medcat_scorer.py`): each side's
    /// concepts (a CUI kept once under each name); precision the share of
    /// the candidate's CUIs among the reference's, recall the reverse, F1
    /// their harmonic mean, 0 when either is 0; 1 for a pair empty on
    /// both sides. `None` for 2023, which has no MedCAT component.
    ///
    /// ```
    /// use medcap_metrics::imageclef::{Entity, Suite};
    ///
    /// let e = |cui: &str| Entity { cui: cui.into(), pretty_name: cui.into() };
    /// let f = Suite::Y2025.medcat("a b", "a c", &[e("C1"), e("C2")], &[e("C1"), e("C3")]);
    /// assert_eq!(f, Some(0.5));
    /// ```
    pub fn medcat(
        self,
        reference: &str,
        candidate: &str,
        reference_entities: &[Entity],
        candidate_entities: &[Entity],
    ) -> Option<f64> {
        if self == Self::Y2023 {
            return None;
        }
        if self.both_empty(reference, candidate) {
            return Some(1.0);
        }
        let (truth, predicted) = (cui_list(reference_entities), cui_list(candidate_entities));
        let correct = truth.iter().filter(|c| predicted.contains(c)).count() as f64;
        let precision = if predicted.is_empty() {
            0.0
        } else {
            correct / predicted.len() as f64
        };
        let recall = if truth.is_empty() {
            0.0
        } else {
            correct / truth.len() as f64
        };
        Some(if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        })
    }

    /// The Similarity component of one pair from the image's and the raw
    /// candidate caption's embeddings (MedImageInsight's, or any encoder's:
    /// the numbers compare only within one encoder): 2.5 · max(cos, 0);
    /// 2025 scores a pair empty on both sides 1, 2026 an empty candidate 0.
    /// `None` for 2023, which has no Similarity component.
    ///
    /// # Errors
    /// The two embeddings differ in length, or one has no direction (all
    /// zeros, or not finite), where the official code's cosine is NaN.
    pub fn similarity(
        self,
        reference: &str,
        candidate: &str,
        image: &[f64],
        text: &[f64],
    ) -> Option<Result<f64, String>> {
        match self {
            Self::Y2023 => return None,
            Self::Y2025 if self.both_empty(reference, candidate) => return Some(Ok(1.0)),
            Self::Y2026 if candidate.is_empty() => return Some(Ok(0.0)),
            Self::Y2025 | Self::Y2026 => {}
        }
        if image.len() != text.len() {
            return Some(Err(format!(
                "the image embedding has {} values, the caption's {}",
                image.len(),
                text.len()
            )));
        }
        let dot: f64 = image.iter().zip(text).map(|(a, b)| a * b).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cos = dot / (norm(image) * norm(text));
        if !cos.is_finite() {
            return Some(Err("an embedding is all zeros or not finite".to_owned()));
        }
        Some(Ok(2.5 * cos.max(0.0)))
    }
}

/// The model of every year's BERTScore component, as bert-score names it.
pub const BERTSCORE_MODEL: &str = "microsoft/deberta-xlarge-mnli";

/// The layer every year's BERTScore takes (bert-score's default for
/// [`BERTSCORE_MODEL`]).
pub const BERTSCORE_LAYER: usize = 40;

impl Suite {
    /// Whether the year's BERTScore weighs tokens by idf: 2025 and 2026 do
    /// (`BERTScorer(idf=True, idf_sents=<the preprocessed ground truth>)`),
    /// 2023's `evaluate` call does not.
    pub fn bertscore_idf(self) -> bool {
        self != Self::Y2023
    }

    /// The BERTScore component (F1) of each `(reference, candidate)` pair
    /// as the year's evaluator computes it: both captions preprocessed
    /// ([`preprocess`]), one pair per bert-score call (so no batch padding
    /// enters), idf weights from every ground-truth caption of the split
    /// (`truth`, preprocessed) in 2025 and 2026, none in 2023; 1 for a pair
    /// empty on both sides ([`Self::both_empty`]). `embedder` is the
    /// year's model, [`BERTSCORE_MODEL`] at [`BERTSCORE_LAYER`], or a
    /// stand-in of its architecture.
    ///
    /// # Errors
    /// [`BertScoreError::Encoder`] when the encoder fails.
    pub fn bertscore<'a>(
        self,
        embedder: &dyn TokenEmbedder,
        truth: impl IntoIterator<Item = &'a str>,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<f64>, BertScoreError> {
        let idf = if self.bertscore_idf() {
            let sentences: Vec<String> = truth.into_iter().map(preprocess).collect();
            let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
            let mut idf = IdfWeights::default();
            for ids in embedder.token_ids(&texts)? {
                idf.add_reference(&ids);
            }
            Some(idf)
        } else {
            None
        };
        let scored: Vec<usize> = (0..pairs.len())
            .filter(|&i| !self.both_empty(pairs[i].0, pairs[i].1))
            .collect();
        let candidates: Vec<String> = scored.iter().map(|&i| preprocess(pairs[i].1)).collect();
        let references: Vec<Vec<String>> = scored
            .iter()
            .map(|&i| vec![preprocess(pairs[i].0)])
            .collect();
        let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let values =
            bert_score_chunk(embedder, &candidates, &references, idf.as_ref(), None)?.values;
        let mut out = vec![1.0; pairs.len()];
        for (i, v) in scored.into_iter().zip(values) {
            out[i] = v.f1;
        }
        Ok(out)
    }
}

/// A model that scores (reference, candidate) pairs, one number each:
/// BLEURT for the suites (medcap-model's `Bleurt` implements it).
pub trait PairScorer {
    /// The score of each pair, in input order.
    ///
    /// # Errors
    /// The model's failure, boxed.
    fn score_pairs(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<f64>, Box<dyn std::error::Error + Send + Sync>>;
}

impl Suite {
    /// The BLEURT component of each `(reference, candidate)` pair as the
    /// year's evaluator computes it: BLEURT-20-D12's raw logit of the
    /// preprocessed captions ([`preprocess`]), with no rule for empty
    /// captions; `None` for 2023, which has no BLEURT.
    ///
    /// # Errors
    /// The scorer's failure.
    pub fn bleurt(
        self,
        scorer: &dyn PairScorer,
        pairs: &[(&str, &str)],
    ) -> Option<Result<Vec<f64>, Box<dyn std::error::Error + Send + Sync>>> {
        if self == Self::Y2023 {
            return None;
        }
        let texts: Vec<(String, String)> = pairs
            .iter()
            .map(|(r, c)| (preprocess(r), preprocess(c)))
            .collect();
        let pairs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(r, c)| (r.as_str(), c.as_str()))
            .collect();
        Some(scorer.score_pairs(&pairs))
    }
}

/// The AlignScore component of a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignScores {
    /// One value per pair.
    pub values: Vec<f64>,
    /// Pairs whose candidate has no sentence (empty or blank) but whose
    /// reference is not empty: the official code stops with a
    /// `ValueError` there; medcap scores them 0.
    pub without_sentences: usize,
}

impl Suite {
    /// The AlignScore component of each `(reference, candidate)` pair as
    /// the year's evaluator computes it: AlignScore-base in `nli_sp` mode
    /// with the raw reference as context and the raw candidate as claim
    /// ([`crate::alignscore::align_scores`]), 1 for a pair empty on both
    /// sides, 0 for a candidate without a sentence (see
    /// [`AlignScores::without_sentences`]); `None` for 2023.
    ///
    /// # Errors
    /// The model's failure.
    pub fn alignscore(
        self,
        model: &dyn crate::alignscore::AlignmentModel,
        punkt: &crate::punkt::Punkt,
        pairs: &[(&str, &str)],
    ) -> Option<Result<AlignScores, Box<dyn std::error::Error + Send + Sync>>> {
        if self == Self::Y2023 {
            return None;
        }
        let scored: Vec<usize> = (0..pairs.len())
            .filter(|&i| !self.both_empty(pairs[i].0, pairs[i].1))
            .collect();
        let inputs: Vec<(&str, &str)> = scored.iter().map(|&i| pairs[i]).collect();
        Some(
            crate::alignscore::align_scores(model, punkt, &inputs).map(|found| {
                let mut values = vec![1.0; pairs.len()];
                let mut without_sentences = 0;
                for (i, v) in scored.into_iter().zip(found) {
                    values[i] = v.unwrap_or_else(|| {
                        without_sentences += 1;
                        0.0
                    });
                }
                AlignScores {
                    values,
                    without_sentences,
                }
            }),
        )
    }
}

/// MedCAT's matches as `medcat_scorer.py` lists them: each CUI once under
/// each of its names, in MedCAT's order.
fn cui_list(entities: &[Entity]) -> Vec<&str> {
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    entities
        .iter()
        .filter(|e| seen.insert((e.pretty_name.as_str(), e.cui.as_str())))
        .map(|e| e.cui.as_str())
        .collect()
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--suite` name that is not one of [`Suite::ALL`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown suite `{0}`; known: imageclef-2023, imageclef-2025, imageclef-2026 (no 2024 \
     evaluator is public)"
)]
pub struct UnknownSuite(pub String);

impl FromStr for Suite {
    type Err = UnknownSuite;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|suite| suite.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSuite(s.to_owned()))
    }
}

/// A component of the caption task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// BERTScore F1 with `microsoft/deberta-xlarge-mnli` (layer 40), on
    /// preprocessed captions.
    BertScore,
    /// ROUGE-1 F, no stemming, on preprocessed captions.
    Rouge1,
    /// Image–caption similarity, 2.5 · max(cos, 0), MedImageInsight
    /// embeddings of the image and the raw caption.
    Similarity,
    /// BLEURT-20-D12's score of (reference, candidate), preprocessed.
    Bleurt,
    /// F1 of the UMLS concepts MedCAT finds in the raw captions.
    MedCat,
    /// AlignScore-base (`nli_sp`) of the raw caption given the reference.
    AlignScore,
}

impl Component {
    /// The key of the component in the official result (`bert`, `rouge`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Self::BertScore => "bert",
            Self::Rouge1 => "rouge",
            Self::Similarity => "similarity",
            Self::Bleurt => "bleurt",
            Self::MedCat => "medcat",
            Self::AlignScore => "align",
        }
    }

    /// The heading of the component in tables.
    pub fn heading(self) -> &'static str {
        match self {
            Self::BertScore => "BERTScore",
            Self::Rouge1 => "ROUGE-1",
            Self::Similarity => "Similarity",
            Self::Bleurt => "BLEURT",
            Self::MedCat => "MedCAT",
            Self::AlignScore => "AlignScore",
        }
    }
}

/// An official aggregate: the mean of its components' means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    /// Its name in the official results.
    pub name: &'static str,
    /// What it averages.
    pub components: &'static [Component],
}

impl Aggregate {
    /// The aggregate of the component means `value` gives, or the
    /// components it lacks: an aggregate is never taken over fewer
    /// components than the official one.
    ///
    /// # Errors
    /// The components `value` has no mean for.
    pub fn of(&self, value: impl Fn(Component) -> Option<f64>) -> Result<f64, Vec<Component>> {
        let mut missing = Vec::new();
        let mut sum = 0.0;
        for &c in self.components {
            match value(c) {
                Some(v) => sum += v,
                None => missing.push(c),
            }
        }
        if missing.is_empty() {
            Ok(sum / self.components.len() as f64)
        } else {
            Err(missing)
        }
    }
}

/// The caption preprocessing of every year, before BERTScore, ROUGE and
/// BLEURT: lowercase (Unicode, as Python's `str.lower`), then each run of
/// decimal digits (Unicode `Nd`, as Python's `\d`) becomes `number`, then
/// ASCII punctuation (Python's `string.punctuation`) is deleted; nothing
/// else, so `3.5 cm` becomes `numbernumber cm` and spaces stay as they are.
///
/// ```
/// use medcap_metrics::imageclef::preprocess;
///
/// assert_eq!(preprocess("CT 3.5 cm, ²٣ x"), "ct numbernumber cm ²number x");
/// assert_eq!(preprocess("  (A)  "), "  a  ");
/// ```
pub fn preprocess(caption: &str) -> String {
    let lower = caption.to_lowercase();
    let mut out = String::with_capacity(lower.len() + 8);
    let mut in_digits = false;
    for c in lower.chars() {
        if is_decimal_digit(c) {
            if !in_digits {
                out.push_str("number");
                in_digits = true;
            }
            continue;
        }
        in_digits = false;
        if !c.is_ascii_punctuation() {
            out.push(c);
        }
    }
    out
}

/// Unicode general category `Nd`, which Python's `\d` matches in a str
/// pattern (not `No` such as `²`, nor `Nl` such as Roman numerals).
fn is_decimal_digit(c: char) -> bool {
    if c.is_ascii_digit() {
        return true;
    }
    if c.is_ascii() || !c.is_numeric() {
        return false;
    }
    // Every Nd block is a run of ten code points whose first is a zero;
    // `is_numeric` also holds for No and Nl, which come in other runs.
    DECIMAL_ZEROS
        .iter()
        .any(|&zero| (zero..zero + 10).contains(&(c as u32)))
}

/// The zero of each run of ten decimal digits beyond ASCII (Unicode 14,
/// Python 3.11's `unicodedata`, category Nd).
const DECIMAL_ZEROS: [u32; 65] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_python_s_decimal_digits() {
        assert!(is_decimal_digit('٣'));
        assert!(is_decimal_digit('７'));
        assert!(!is_decimal_digit('²'));
        assert!(!is_decimal_digit('Ⅻ'));
        assert!(!is_decimal_digit('½'));
        assert_eq!(preprocess("a1b22"), "anumberbnumber");
    }

    #[test]
    fn suites_by_name() {
        assert_eq!("imageclef-2025".parse::<Suite>().unwrap(), Suite::Y2025);
        let err = "imageclef-2024".parse::<Suite>().unwrap_err().to_string();
        assert!(err.contains("no 2024 evaluator"), "{err}");
    }

    #[test]
    fn aggregates_never_drop_a_component() {
        let relevance = Suite::Y2026.aggregates()[0];
        let some = |c: Component| (c != Component::Bleurt).then_some(0.5);
        assert_eq!(relevance.of(some), Err(vec![Component::Bleurt]));
        assert_eq!(relevance.of(|_| Some(0.25)), Ok(0.25));
    }
}
