//! N-gram match statistics of one segment, and their corpus sum: the
//! sufficient statistics of every BLEU convention.

use crate::ngram::{clipped_matches, with_vocabulary};

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

/// One segment as word ids: a hypothesis and its references, with the size
/// of the vocabulary they share.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    pub(crate) hyp: Vec<u32>,
    pub(crate) refs: Vec<Vec<u32>>,
    pub(crate) vocabulary: usize,
}

impl Segment {
    /// A segment from tokens.
    pub(crate) fn from_tokens<S: AsRef<str>, R: AsRef<str>>(hyp: &[S], refs: &[Vec<R>]) -> Self {
        with_vocabulary(|words| Self {
            hyp: words.ids(hyp),
            refs: refs.iter().map(|r| words.ids(r)).collect(),
            vocabulary: words.len(),
        })
    }

    /// A segment from texts, tokenized by `each_token` (a visitor over one
    /// text's tokens), without allocating a string per token.
    pub(crate) fn from_texts(
        hyp: &str,
        refs: &[&str],
        each_token: impl Fn(&str, &mut dyn FnMut(&str)),
    ) -> Self {
        with_vocabulary(|words| {
            let mut ids = |text: &str| {
                let mut out = Vec::with_capacity(text.len() / 4);
                each_token(text, &mut |t| out.push(words.id(t)));
                out
            };
            let hyp = ids(hyp);
            let refs = refs.iter().map(|r| ids(r)).collect();
            Self {
                hyp,
                refs,
                vocabulary: words.len(),
            }
        })
    }

    /// `Σ_g min(count_h(g), max_r count_r(g))` for each order 1 to `max_order`.
    pub(crate) fn clipped_matches(&self, max_order: usize) -> Vec<u64> {
        let mut sums = vec![0; max_order];
        clipped_matches(&self.hyp, &self.refs, self.vocabulary, &mut sums);
        sums
    }
}

impl NgramStats {
    /// Statistics of one hypothesis against its references.
    pub fn new(hypothesis: &[&str], references: &[Vec<&str>], max_order: usize) -> Self {
        Self::of_segment(&Segment::from_tokens(hypothesis, references), max_order)
    }

    pub(crate) fn of_segment(segment: &Segment, max_order: usize) -> Self {
        let hyp_len = segment.hyp.len();
        let ref_len_closest = segment
            .refs
            .iter()
            .map(Vec::len)
            .min_by_key(|&r| (r.abs_diff(hyp_len), r))
            .unwrap_or(0);
        let ref_len_shortest = segment.refs.iter().map(Vec::len).min().unwrap_or(0);
        let matches = segment.clipped_matches(max_order);
        let totals: Vec<u64> = (1..=max_order)
            .map(|n| hyp_len.saturating_sub(n - 1) as u64)
            .collect();
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
        let mut total = Self::zeros(max_order);
        for s in segments {
            total.add(s);
        }
        total
    }

    /// All counts zero, for orders 1 to `max_order`.
    pub(crate) fn zeros(max_order: usize) -> Self {
        Self {
            matches: vec![0; max_order],
            totals: vec![0; max_order],
            nltk_totals: vec![0; max_order],
            ..Self::default()
        }
    }

    /// Adds another segment's statistics to these.
    pub(crate) fn add(&mut self, s: &NgramStats) {
        self.hyp_len += s.hyp_len;
        self.ref_len_closest += s.ref_len_closest;
        self.ref_len_shortest += s.ref_len_shortest;
        for (total, v) in [
            (&mut self.matches, &s.matches),
            (&mut self.totals, &s.totals),
            (&mut self.nltk_totals, &s.nltk_totals),
        ] {
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
        }
    }
}
