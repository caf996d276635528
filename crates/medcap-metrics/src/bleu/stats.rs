//! N-gram match statistics of one segment, and their corpus sum: the
//! sufficient statistics of every BLEU convention.

use crate::ngram::{Gram, Interner, counts, overlap, raise_to};

/// Counts for one segment, or summed over a corpus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NgramStats {
    /// Hypothesis length in tokens.
    pub hyp_len: usize,
    /// Length of the reference closest to the hypothesis (ties: shorter).
    pub ref_len_closest: usize,
    /// Length of the shortest reference.
    pub ref_len_shortest: usize,
    /// Clipped n-gram matches per order (index 0 = unigrams).
    pub matches: Vec<u64>,
    /// Hypothesis n-grams per order: `max(0, hyp_len - n + 1)`.
    pub totals: Vec<u64>,
    /// nltk's denominators: per segment `max(1, total)`, then summed (a
    /// hypothesis shorter than n counts as one n-gram there).
    pub nltk_totals: Vec<u64>,
}

impl NgramStats {
    /// Statistics of one hypothesis against its references.
    pub fn new(hypothesis: &[&str], references: &[Vec<&str>], max_order: usize) -> Self {
        let hyp_len = hypothesis.len();
        let ref_len_closest = references
            .iter()
            .map(Vec::len)
            .min_by_key(|&r| (r.abs_diff(hyp_len), r))
            .unwrap_or(0);
        let ref_len_shortest = references.iter().map(Vec::len).min().unwrap_or(0);
        let mut words = Interner::default();
        let hyp = words.ids(hypothesis);
        let refs: Vec<Vec<u32>> = references.iter().map(|r| words.ids(r)).collect();
        let mut matches = Vec::with_capacity(max_order);
        let mut totals = Vec::with_capacity(max_order);
        for n in 1..=max_order {
            totals.push(hyp_len.saturating_sub(n - 1) as u64);
            matches.push(if hyp_len < n {
                0
            } else {
                clipped_matches_ids(&hyp, &refs, n)
            });
        }
        let nltk_totals = totals.iter().map(|t| (*t).max(1)).collect();
        Self {
            hyp_len,
            ref_len_closest,
            ref_len_shortest,
            matches,
            totals,
            nltk_totals,
        }
    }

    /// The element-wise sum over segments.
    pub fn sum(segments: &[NgramStats], max_order: usize) -> Self {
        let mut total = Self {
            matches: vec![0; max_order],
            totals: vec![0; max_order],
            nltk_totals: vec![0; max_order],
            ..Self::default()
        };
        for s in segments {
            total.hyp_len += s.hyp_len;
            total.ref_len_closest += s.ref_len_closest;
            total.ref_len_shortest += s.ref_len_shortest;
            for i in 0..max_order {
                total.matches[i] += s.matches[i];
                total.totals[i] += s.totals[i];
                total.nltk_totals[i] += s.nltk_totals[i];
            }
        }
        total
    }
}

/// `Σ_g min(count_h(g), max_r count_r(g))` for order `n`.
pub(crate) fn clipped_matches(hypothesis: &[&str], references: &[Vec<&str>], n: usize) -> u64 {
    if hypothesis.len() < n {
        return 0;
    }
    let mut words = Interner::default();
    let hyp = words.ids(hypothesis);
    let refs: Vec<Vec<u32>> = references.iter().map(|r| words.ids(r)).collect();
    clipped_matches_ids(&hyp, &refs, n)
}

fn clipped_matches_ids(hyp: &[u32], refs: &[Vec<u32>], n: usize) -> u64 {
    let hyp_counts = counts(hyp, n);
    let mut max_ref: Vec<(Gram, u32)> = hyp_counts.iter().map(|(g, _)| (g.clone(), 0)).collect();
    for r in refs {
        raise_to(&mut max_ref, &counts(r, n));
    }
    u64::from(overlap(&hyp_counts, &max_ref))
}
