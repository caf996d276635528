//! N-gram match statistics of one segment, and their corpus sum: the
//! sufficient statistics of every BLEU convention.

use std::collections::HashMap;

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
        let mut matches = Vec::with_capacity(max_order);
        let mut totals = Vec::with_capacity(max_order);
        for n in 1..=max_order {
            totals.push(hyp_len.saturating_sub(n - 1) as u64);
            matches.push(clipped_matches(hypothesis, references, n));
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
    let mut hyp: HashMap<&[&str], u32> = HashMap::new();
    for gram in hypothesis.windows(n) {
        *hyp.entry(gram).or_insert(0) += 1;
    }
    let mut max_ref: HashMap<&[&str], u32> = HashMap::with_capacity(hyp.len());
    for reference in references {
        if reference.len() < n {
            continue;
        }
        let mut counts: HashMap<&[&str], u32> = HashMap::new();
        for gram in reference.windows(n) {
            if hyp.contains_key(gram) {
                *counts.entry(gram).or_insert(0) += 1;
            }
        }
        for (gram, c) in counts {
            let slot = max_ref.entry(gram).or_insert(0);
            *slot = (*slot).max(c);
        }
    }
    hyp.iter()
        .map(|(g, &c)| u64::from(c.min(max_ref.get(g).copied().unwrap_or(0))))
        .sum()
}
