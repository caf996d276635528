//! CIDEr-D as pycocoevalcap computes it (its `Cider` class implements
//! CIDEr-D): tf-idf weighted n-gram vectors (n = 1..4), clipped cosine
//! similarity, a Gaussian length penalty (sigma 6), times 10, averaged over
//! references and then over images.
//!
//! Document frequencies come from the evaluated corpus's references, so the
//! score of an image depends on the whole corpus, and a one-image corpus
//! scores 0 (every n-gram has the maximum document frequency).
//!
//! Tokens: pycocoevalcap expects text already run through Stanford's Java PTB
//! tokenizer (lowercased, punctuation removed). medcap does not run Java: the
//! text API tokenizes with the same tokenizer as the chosen BLEU convention
//! (13a or white space), so numbers differ from COCO's where punctuation or
//! case differ. Given identical tokens, the arithmetic is pycocoevalcap's,
//! including its quirk that the length penalty counts bigrams, not tokens.
//!
//! ```
//! use medcap_metrics::cider::cider_d;
//!
//! let pairs = [
//!     (vec!["the", "cat", "sat", "on", "the", "mat"], vec![vec!["the", "cat", "is", "on", "the", "mat"], vec!["a", "cat", "sits", "on", "a", "mat"]]),
//!     (vec!["small", "left", "pleural", "effusion"], vec![vec!["left", "pleural", "effusion"], vec!["there", "is", "a", "left", "pleural", "effusion"]]),
//! ];
//! let scores = cider_d(&pairs);
//! assert!((scores.corpus - 3.87801).abs() < 1e-5);
//! ```

use std::collections::HashMap;

const N: usize = 4;
const SIGMA: f64 = 6.0;

/// Per-image scores and their mean.
#[derive(Debug, Clone, PartialEq)]
pub struct CiderScores {
    /// Mean over images.
    pub corpus: f64,
    /// One score per image, in input order.
    pub per_image: Vec<f64>,
}

type Counts<'a> = HashMap<&'a [&'a str], u32>;

fn counts<'a>(tokens: &'a [&'a str]) -> Counts<'a> {
    let mut c = HashMap::new();
    for n in 1..=N {
        if tokens.len() >= n {
            for g in tokens.windows(n) {
                *c.entry(g).or_insert(0) += 1;
            }
        }
    }
    c
}

struct Vector<'a> {
    weights: [HashMap<&'a [&'a str], f64>; N],
    norms: [f64; N],
    /// pycocoevalcap's "length": the number of bigrams.
    length: f64,
}

fn to_vector<'a>(c: &Counts<'a>, df: &HashMap<&[&str], u32>, ref_len: f64) -> Vector<'a> {
    let mut v = Vector {
        weights: Default::default(),
        norms: [0.0; N],
        length: 0.0,
    };
    for (gram, &tf) in c {
        let n = gram.len() - 1;
        let idf = ref_len - f64::from(df.get(gram).copied().unwrap_or(0).max(1)).ln();
        let w = f64::from(tf) * idf;
        v.weights[n].insert(gram, w);
        v.norms[n] += w * w;
        if n == 1 {
            v.length += f64::from(tf);
        }
    }
    for x in &mut v.norms {
        *x = x.sqrt();
    }
    v
}

fn similarity(h: &Vector<'_>, r: &Vector<'_>) -> [f64; N] {
    let delta = h.length - r.length;
    let penalty = (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp();
    std::array::from_fn(|n| {
        let mut val: f64 = h.weights[n]
            .iter()
            .map(|(g, &wh)| {
                let wr = r.weights[n].get(g).copied().unwrap_or(0.0);
                wh.min(wr) * wr
            })
            .sum();
        if h.norms[n] != 0.0 && r.norms[n] != 0.0 {
            val /= h.norms[n] * r.norms[n];
        }
        val * penalty
    })
}

/// CIDEr-D of (hypothesis tokens, reference token lists) pairs, one per image.
pub fn cider_d<S: AsRef<str>>(pairs: &[(Vec<S>, Vec<Vec<S>>)]) -> CiderScores {
    let borrowed: Vec<(Vec<&str>, Vec<Vec<&str>>)> = pairs
        .iter()
        .map(|(h, refs)| {
            (
                h.iter().map(AsRef::as_ref).collect(),
                refs.iter()
                    .map(|r| r.iter().map(AsRef::as_ref).collect())
                    .collect(),
            )
        })
        .collect();
    let hyp_counts: Vec<Counts<'_>> = borrowed.iter().map(|(h, _)| counts(h)).collect();
    let ref_counts: Vec<Vec<Counts<'_>>> = borrowed
        .iter()
        .map(|(_, refs)| refs.iter().map(|r| counts(r)).collect())
        .collect();
    let mut df: HashMap<&[&str], u32> = HashMap::new();
    for refs in &ref_counts {
        let mut seen: Vec<&[&str]> = refs.iter().flat_map(|c| c.keys().copied()).collect();
        seen.sort_unstable();
        seen.dedup();
        for g in seen {
            *df.entry(g).or_insert(0) += 1;
        }
    }
    let ref_len = (pairs.len().max(1) as f64).ln();
    let per_image: Vec<f64> = hyp_counts
        .iter()
        .zip(&ref_counts)
        .map(|(h, refs)| {
            if refs.is_empty() {
                return 0.0;
            }
            let hv = to_vector(h, &df, ref_len);
            let mut total = [0.0; N];
            for r in refs {
                let rv = to_vector(r, &df, ref_len);
                for (t, s) in total.iter_mut().zip(similarity(&hv, &rv)) {
                    *t += s;
                }
            }
            total.iter().sum::<f64>() / N as f64 / refs.len() as f64 * 10.0
        })
        .collect();
    let corpus = if per_image.is_empty() {
        0.0
    } else {
        per_image.iter().sum::<f64>() / per_image.len() as f64
    };
    CiderScores { corpus, per_image }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_image_corpus_scores_zero() {
        let s = cider_d(&[(vec!["a", "b"], vec![vec!["a", "b"]])]);
        assert_eq!(s.corpus, 0.0);
    }
}
