//! ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum as Google's `rouge-score`
//! package computes them (`RougeScorer.score` / `score_multi`).
//!
//! Tokens come from rouge-score's tokenizer (lowercase; only `a-z0-9`
//! survive, so non-ASCII words vanish) or, as a documented option, a
//! Unicode-aware one. The optional stemmer is nltk's Porter
//! ([`crate::porter`]), applied to tokens longer than three characters.
//! ROUGE-Lsum splits on newlines only; without a newline it equals ROUGE-L.
//!
//! ```
//! use medcap_metrics::rouge::Rouge;
//!
//! let hypothesis = "the cat sat on the mat";
//! let s = Rouge::default().score(hypothesis, "the cat is on the mat");
//! assert!((s.rouge1.fmeasure - 0.833333).abs() < 1e-6);
//! assert!((s.rouge2.fmeasure - 0.6).abs() < 1e-12);
//! ```

use std::collections::HashMap;

use crate::ngram::{Vocabulary, clipped_matches, with_vocabulary};
use crate::porter;
use crate::tokenize::{collect, each_rouge, each_rouge_unicode};

/// Precision, recall and F-measure (F = 2PR/(P+R), 0 when P+R = 0).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Score {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F-measure.
    pub fmeasure: f64,
}

impl Score {
    fn new(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// The four ROUGE types of one prediction.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct RougeScores {
    /// ROUGE-1.
    pub rouge1: Score,
    /// ROUGE-2.
    pub rouge2: Score,
    /// ROUGE-L (LCS over the whole text).
    pub rouge_l: Score,
    /// ROUGE-Lsum (summary-level LCS over newline-separated sentences).
    pub rouge_lsum: Score,
}

/// Which tokenizer to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RougeTokenizer {
    /// rouge-score's: `[^a-z0-9]+` separates tokens after lowercasing.
    #[default]
    RougeScore,
    /// Unicode letters and digits kept (not rouge-score compatible on non-ASCII text).
    Unicode,
}

/// A ROUGE scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rouge {
    /// Porter-stem tokens longer than three characters (off, as in the study).
    pub stemmer: bool,
    /// The tokenizer.
    pub tokenizer: RougeTokenizer,
}

impl Rouge {
    /// Tokens of a text, as this scorer sees them.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        collect(|visit| self.each_token(text, visit))
    }

    /// Calls `visit` with each token of `text`, as [`Rouge::tokenize`] gives them.
    fn each_token(&self, text: &str, visit: &mut dyn FnMut(&str)) {
        let mut stemmed = |t: &str| {
            if self.stemmer && t.chars().count() > 3 {
                visit(&porter::stem(t));
            } else {
                visit(t);
            }
        };
        match self.tokenizer {
            RougeTokenizer::RougeScore => each_rouge(text, &mut stemmed),
            RougeTokenizer::Unicode => each_rouge_unicode(text, &mut stemmed),
        }
    }

    fn ids(&self, words: &mut Vocabulary, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 4);
        self.each_token(text, &mut |t| out.push(words.id(t)));
        out
    }

    /// Scores `hypothesis` against one `reference` (rouge-score's
    /// `score(target=reference, prediction=hypothesis)`; arguments in the
    /// order every metric of this crate takes them).
    pub fn score(&self, hypothesis: &str, reference: &str) -> RougeScores {
        with_vocabulary(|words| {
            let (t, p) = (self.ids(words, reference), self.ids(words, hypothesis));
            let mut overlap = [0u64; 2];
            clipped_matches(&p, std::slice::from_ref(&t), words.len(), &mut overlap);
            let rouge_n = |n: usize| {
                let grams = |len: usize| len.saturating_sub(n - 1).max(1) as f64;
                let hits = overlap[n - 1] as f64;
                Score::new(hits / grams(p.len()), hits / grams(t.len()))
            };
            let rouge_l = rouge_l(&t, &p);
            let rouge_lsum = if reference.contains('\n') || hypothesis.contains('\n') {
                let mut sentences = |text: &str| -> Vec<Vec<u32>> {
                    text.split('\n')
                        .filter(|s| !s.is_empty())
                        .map(|s| self.ids(words, s))
                        .collect()
                };
                let (ts, ps) = (sentences(reference), sentences(hypothesis));
                rouge_lsum(&ts, &ps)
            } else {
                // One sentence each: the union of one LCS is that LCS, and
                // every one of its tokens is within both texts' budgets.
                rouge_l
            };
            RougeScores {
                rouge1: rouge_n(1),
                rouge2: rouge_n(2),
                rouge_l,
                rouge_lsum,
            }
        })
    }

    /// Scores `hypothesis` against several references: for each ROUGE type
    /// separately, the whole score of the reference with the best F (the
    /// first on ties), as rouge-score's `score_multi`. No reference scores
    /// all zeros.
    pub fn score_multi(&self, hypothesis: &str, references: &[&str]) -> RougeScores {
        let all: Vec<RougeScores> = references
            .iter()
            .map(|r| self.score(hypothesis, r))
            .collect();
        let best = |pick: fn(&RougeScores) -> Score| -> Score {
            all.iter()
                .map(pick)
                .fold(None, |best: Option<Score>, s| match best {
                    Some(b) if b.fmeasure >= s.fmeasure => Some(b),
                    _ => Some(s),
                })
                .unwrap_or_default()
        };
        RougeScores {
            rouge1: best(|s| s.rouge1),
            rouge2: best(|s| s.rouge2),
            rouge_l: best(|s| s.rouge_l),
            rouge_lsum: best(|s| s.rouge_lsum),
        }
    }
}

/// The LCS table, (|a|+1) x (|b|+1), row-major.
fn lcs_table(a: &[u32], b: &[u32]) -> Vec<u32> {
    let cols = b.len() + 1;
    let mut t = vec![0u32; (a.len() + 1) * cols];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * cols + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * cols + j - 1] + 1
            } else {
                t[(i - 1) * cols + j].max(t[i * cols + j - 1])
            };
        }
    }
    t
}

/// The LCS length alone, with one row of the table.
fn lcs_length(a: &[u32], b: &[u32]) -> u32 {
    let mut row = vec![0u32; b.len() + 1];
    for &x in a {
        let mut diagonal = 0;
        for j in 1..=b.len() {
            let above = row[j];
            row[j] = if x == b[j - 1] {
                diagonal + 1
            } else {
                above.max(row[j - 1])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

fn rouge_l(target: &[u32], prediction: &[u32]) -> Score {
    if target.is_empty() || prediction.is_empty() {
        return Score::default();
    }
    let lcs = f64::from(lcs_length(target, prediction));
    Score::new(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// Indices into `r` of one LCS of `r` and `c`, walking back the table the
/// way rouge-score does (left only when strictly better).
fn lcs_indices(r: &[u32], c: &[u32]) -> Vec<usize> {
    let t = lcs_table(r, c);
    let cols = c.len() + 1;
    let (mut i, mut j) = (r.len(), c.len());
    let mut out = Vec::new();
    while i > 0 && j > 0 {
        if r[i - 1] == c[j - 1] {
            out.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i * cols + j - 1] > t[(i - 1) * cols + j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    out.reverse();
    out
}

fn rouge_lsum(target: &[Vec<u32>], prediction: &[Vec<u32>]) -> Score {
    let m: usize = target.iter().map(Vec::len).sum();
    let n: usize = prediction.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return Score::default();
    }
    let mut budget_r: HashMap<u32, u32> = HashMap::new();
    let mut budget_c: HashMap<u32, u32> = HashMap::new();
    for &t in target.iter().flatten() {
        *budget_r.entry(t).or_insert(0) += 1;
    }
    for &t in prediction.iter().flatten() {
        *budget_c.entry(t).or_insert(0) += 1;
    }
    let mut hits = 0u32;
    for r in target {
        let mut union: Vec<usize> = prediction.iter().flat_map(|c| lcs_indices(r, c)).collect();
        union.sort_unstable();
        union.dedup();
        for i in union {
            let token = r[i];
            let (cr, cc) = (
                budget_r.get(&token).copied().unwrap_or(0),
                budget_c.get(&token).copied().unwrap_or(0),
            );
            if cr > 0 && cc > 0 {
                hits += 1;
                budget_r.insert(token, cr - 1);
                budget_c.insert(token, cc - 1);
            }
        }
    }
    Score::new(f64::from(hits) / n as f64, f64::from(hits) / m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsum_uses_newlines_and_equals_l_without_them() {
        let r = Rouge::default();
        let s = r.score(
            "no effusion.\nthe heart is normal.",
            "the heart is normal.\nno effusion.",
        );
        assert!((s.rouge_lsum.fmeasure - 1.0).abs() < 1e-12);
        assert!((s.rouge_l.fmeasure - 0.666667).abs() < 1e-6);
        let flat = r.score(
            "no effusion. the heart is normal.",
            "the heart is normal. no effusion.",
        );
        assert_eq!(flat.rouge_lsum, flat.rouge_l);
    }

    #[test]
    fn lcs_length_is_the_last_cell_of_the_table() {
        let texts: [&[u32]; 5] = [&[], &[1], &[1, 2, 3, 1, 2], &[2, 1, 3, 3, 1, 2, 2], &[4, 4]];
        for a in texts {
            for b in texts {
                let table = lcs_table(a, b);
                assert_eq!(lcs_length(a, b), table[table.len() - 1], "{a:?} {b:?}");
            }
        }
        assert_eq!(lcs_length(&[1, 2, 3, 1, 2], &[2, 1, 3, 3, 1, 2, 2]), 4);
    }

    #[test]
    fn empty_texts_score_zero() {
        let s = Rouge::default().score("", "left pleural effusion");
        assert_eq!(s, RougeScores::default());
    }
}
