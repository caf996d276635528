//! BLEU in the three conventions that captioning papers use, each matching
//! its reference implementation.
//!
//! | [`BleuImpl`] | reference | tokens | reference length | zero matches |
//! |---|---|---|---|---|
//! | [`BleuImpl::Study`] (default) | Hugging Face `evaluate.load("bleu")` = tensorflow/nmt `compute_bleu`, per caption | 13a | shortest | exactly 0 |
//! | [`BleuImpl::Sacrebleu`] | sacrebleu `sentence_bleu`/`corpus_bleu` | 13a (optionally lowercased) | closest | per smoothing |
//! | [`BleuImpl::Nltk`] | nltk `sentence_bleu`/`corpus_bleu` | as given (white space in the CLI) | closest | per smoothing |
//!
//! The study's numbers (BLEU 0.000173, s.d. 0.003 over 300 captions) are
//! per-caption `Study` BLEU-4 without smoothing: almost every caption scores
//! exactly 0. One deviation from the reference: an empty hypothesis scores 0
//! where tensorflow/nmt raises `ZeroDivisionError`, and so does a reference
//! that tokenizes to nothing.
//!
//! Scores are on the 0–1 scale everywhere; multiply by 100 for sacrebleu's.
//!
//! ```
//! use medcap_metrics::bleu::Bleu;
//!
//! let bleu = Bleu::default(); // the study's convention, BLEU-4
//! let refs = ["the heart is normal", "heart size is normal and the lungs are clear"];
//! let s = bleu.sentence("the heart is normal in size", &refs);
//! assert!((s - 0.537285).abs() < 1e-6);
//! // Three tokens have no 4-gram: exactly 0, even for a perfect match.
//! assert_eq!(bleu.sentence("left pleural effusion", &["left pleural effusion"]), 0.0);
//! ```

mod nltk;
mod sacre;
mod stats;

pub use nltk::NltkSmoothing;
pub use sacre::SacreSmoothing;
pub use stats::NgramStats;

use crate::tokenize::{collect, each_13a, each_whitespace};
use stats::Segment;

/// Which reference implementation's BLEU to compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BleuImpl {
    /// Hugging Face evaluate's `bleu` (tensorflow/nmt): 13a tokens, shortest
    /// reference, `smooth` adds one to every order's counts.
    Study {
        /// tensorflow/nmt's `smooth=True`.
        smooth: bool,
    },
    /// sacrebleu.
    Sacrebleu {
        /// Smoothing method.
        smoothing: SacreSmoothing,
        /// Effective order (sacrebleu's `sentence_bleu` default).
        effective_order: bool,
        /// Lowercase before tokenizing.
        lowercase: bool,
    },
    /// nltk, with one of `SmoothingFunction`'s methods.
    Nltk {
        /// Smoothing method.
        smoothing: NltkSmoothing,
    },
}

impl Default for BleuImpl {
    fn default() -> Self {
        Self::Study { smooth: false }
    }
}

/// A BLEU scorer: a convention and a maximum n-gram order (uniform weights).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bleu {
    /// The convention.
    pub implementation: BleuImpl,
    /// Largest n-gram order (BLEU-4: 4).
    pub max_order: usize,
}

impl Default for Bleu {
    fn default() -> Self {
        Self {
            implementation: BleuImpl::default(),
            max_order: 4,
        }
    }
}

impl Bleu {
    /// sacrebleu's `sentence_bleu` defaults: `exp` smoothing, effective order.
    pub fn sacrebleu_sentence() -> Self {
        Self {
            implementation: BleuImpl::Sacrebleu {
                smoothing: SacreSmoothing::Exp,
                effective_order: true,
                lowercase: false,
            },
            max_order: 4,
        }
    }

    /// sacrebleu's `corpus_bleu` defaults: `exp` smoothing, no effective order.
    pub fn sacrebleu_corpus() -> Self {
        Self {
            implementation: BleuImpl::Sacrebleu {
                smoothing: SacreSmoothing::Exp,
                effective_order: false,
                lowercase: false,
            },
            max_order: 4,
        }
    }

    /// nltk with the given smoothing method.
    pub fn nltk(smoothing: NltkSmoothing) -> Self {
        Self {
            implementation: BleuImpl::Nltk { smoothing },
            max_order: 4,
        }
    }

    /// Tokenizes text the way this convention's reference does.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        collect(|visit| self.each_token(text, visit))
    }

    /// Calls `visit` with each token of `text`, as [`Bleu::tokenize`] splits it.
    pub(crate) fn each_token(&self, text: &str, visit: &mut dyn FnMut(&str)) {
        match self.implementation {
            BleuImpl::Sacrebleu {
                lowercase: true, ..
            } => each_13a(&text.to_lowercase(), visit),
            BleuImpl::Study { .. } | BleuImpl::Sacrebleu { .. } => each_13a(text, visit),
            BleuImpl::Nltk { .. } => each_whitespace(text, visit),
        }
    }

    fn segment(&self, hypothesis: &str, references: &[&str]) -> Segment {
        Segment::from_texts(hypothesis, references, |text, visit| {
            self.each_token(text, visit)
        })
    }

    fn order(&self) -> usize {
        self.max_order.max(1)
    }

    /// Sentence BLEU of one hypothesis against its references, from text.
    pub fn sentence(&self, hypothesis: &str, references: &[&str]) -> f64 {
        self.corpus_of(std::iter::once(self.segment(hypothesis, references)))
    }

    /// Sentence BLEU from tokens (nltk's interface).
    pub fn sentence_tokens<S: AsRef<str>>(&self, hypothesis: &[S], references: &[Vec<S>]) -> f64 {
        self.corpus_of(std::iter::once(Segment::from_tokens(
            hypothesis, references,
        )))
    }

    /// Corpus BLEU over (hypothesis, references) pairs, from text: n-gram
    /// statistics are summed over the corpus and combined once.
    pub fn corpus(&self, pairs: &[(&str, Vec<&str>)]) -> f64 {
        self.corpus_of(pairs.iter().map(|(h, refs)| self.segment(h, refs)))
    }

    /// Corpus BLEU from tokens.
    pub fn corpus_tokens(&self, pairs: &[(Vec<&str>, Vec<Vec<&str>>)]) -> f64 {
        self.corpus_of(pairs.iter().map(|(h, refs)| Segment::from_tokens(h, refs)))
    }

    fn corpus_of(&self, segments: impl Iterator<Item = Segment>) -> f64 {
        let n = self.order();
        let mut total: Option<NgramStats> = None;
        let mut last = None;
        for segment in segments {
            let stats = NgramStats::of_segment(&segment, n);
            match &mut total {
                Some(total) => total.add(&stats),
                None => total = Some(stats),
            }
            last = Some(segment);
        }
        let total = total.unwrap_or_else(|| NgramStats::zeros(n));
        match self.implementation {
            BleuImpl::Study { smooth } => study_bleu(&total, smooth),
            BleuImpl::Sacrebleu {
                smoothing,
                effective_order,
                ..
            } => sacre::bleu(&total, smoothing, effective_order),
            // nltk hands its smoothing function the last segment's texts
            // (methods 5 to 7 use them): reproduced for parity.
            BleuImpl::Nltk { smoothing } => nltk::bleu(&total, smoothing, last.as_ref()),
        }
    }
}

/// tensorflow/nmt `compute_bleu` on summed statistics.
fn study_bleu(s: &NgramStats, smooth: bool) -> f64 {
    let n = s.matches.len();
    if s.hyp_len == 0 || s.ref_len_shortest == 0 {
        return 0.0;
    }
    let precisions: Vec<f64> = (0..n)
        .map(|i| {
            let (m, t) = (s.matches[i] as f64, s.totals[i] as f64);
            if smooth {
                (m + 1.0) / (t + 1.0)
            } else if t > 0.0 {
                m / t
            } else {
                0.0
            }
        })
        .collect();
    if precisions.iter().any(|p| *p <= 0.0) {
        return 0.0;
    }
    let geo_mean = (precisions.iter().map(|p| p.ln() / n as f64).sum::<f64>()).exp();
    let ratio = s.hyp_len as f64 / s.ref_len_shortest as f64;
    let bp = if ratio > 1.0 {
        1.0
    } else {
        (1.0 - 1.0 / ratio).exp()
    };
    geo_mean * bp
}
