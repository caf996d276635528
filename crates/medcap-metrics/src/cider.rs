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

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

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

/// CIDEr-D's corpus statistics: how many images' references contain each
/// n-gram (orders 1 to 4), and how many images there are. Built in one pass
/// over the references ([`DocumentFrequencies::add_image`]), then used to
/// score any number of hypotheses ([`DocumentFrequencies::score`]).
///
/// Words and n-grams are interned: a word gets an id once, an n-gram of
/// order n > 1 is the pair (id of its first n-1 words, id of its last word),
/// so nothing is hashed as a string after the word lookup. Memory grows with
/// the references' distinct n-grams, not with the number of images.
#[derive(Debug, Default)]
pub struct DocumentFrequencies {
    /// Word → id of its unigram.
    words: FxHashMap<Box<str>, u32>,
    /// (prefix n-gram id, last word's unigram id) → n-gram id.
    grams: FxHashMap<(u32, u32), u32>,
    /// Document frequency per n-gram id.
    df: Vec<u32>,
    images: u64,
    /// `ln(images) - ln(max(df, 1))` per n-gram id, computed at the first
    /// score after the last image was added.
    idf: OnceLock<Vec<f64>>,
    /// Scratch: the n-grams of the image being added, and its word ids.
    seen: Vec<u32>,
    ids: Vec<u32>,
}

/// A packed n-gram key: the order index (0..4) in the top bits, then a flag
/// for n-grams the corpus has never seen, then the id.
const ORDER_SHIFT: u32 = 60;
const UNSEEN: u64 = 1 << 59;
const ID_MASK: u64 = (1 << 59) - 1;

/// One text's n-grams: (packed key, term frequency), sorted by key.
type GramCounts = Vec<(u64, u32)>;

/// Keys for the words and n-grams of one comparison that the corpus has
/// never seen (a hypothesis's new words): equal n-grams get equal keys.
#[derive(Default)]
struct Unseen {
    words: FxHashMap<Box<str>, u64>,
    grams: FxHashMap<(u64, u64), u64>,
}

impl Unseen {
    fn next(&self) -> u64 {
        UNSEEN | (self.words.len() + self.grams.len()) as u64
    }
}

thread_local! {
    static UNSEEN_TABLES: std::cell::RefCell<Unseen> = std::cell::RefCell::new(Unseen::default());
}

/// Runs `f` with empty unseen-key tables, reusing this thread's (their
/// memory stays allocated between comparisons).
fn with_unseen<R>(f: impl FnOnce(&mut Unseen) -> R) -> R {
    UNSEEN_TABLES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut tables) => {
            tables.words.clear();
            tables.grams.clear();
            if tables.grams.capacity() > 1 << 16 {
                // Memory back after one very long text.
                *tables = Unseen::default();
            }
            f(&mut tables)
        }
        Err(_) => f(&mut Unseen::default()),
    })
}

/// A tokenizer: calls its second argument with each token of its first.
pub(crate) type Tokenizer<'a, T> = dyn Fn(&T, &mut dyn FnMut(&str)) + Sync + 'a;

/// One text's tokens: calls its argument with each.
type EachToken<'a> = dyn FnMut(&mut dyn FnMut(&str)) + 'a;

impl DocumentFrequencies {
    /// Empty statistics (no image yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of images added.
    pub fn images(&self) -> u64 {
        self.images
    }

    /// Number of distinct n-grams in the references so far.
    pub fn distinct_ngrams(&self) -> usize {
        self.df.len()
    }

    fn new_id(&mut self) -> u32 {
        self.df.push(0);
        (self.df.len() - 1) as u32
    }

    fn intern_word(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.words.get(word) {
            return id;
        }
        let id = self.new_id();
        self.words.insert(word.into(), id);
        id
    }

    fn intern_gram(&mut self, prefix: u32, word: u32) -> u32 {
        // One probe whether the n-gram is new or not.
        let df = &mut self.df;
        *self.grams.entry((prefix, word)).or_insert_with(|| {
            df.push(0);
            (df.len() - 1) as u32
        })
    }

    /// Counts the references of one image, given as token lists
    /// (pycocoevalcap's `cook_refs` then `compute_doc_freq`): each n-gram
    /// once per image however many references contain it.
    pub fn add_image<S: AsRef<str>>(&mut self, references: &[Vec<S>]) {
        self.add_image_with(
            references,
            &|tokens: &Vec<S>, visit: &mut dyn FnMut(&str)| {
                tokens.iter().for_each(|t| visit(t.as_ref()));
            },
        );
    }

    /// [`Self::add_image`] with references as texts and the tokenizer that
    /// splits them.
    pub(crate) fn add_image_with<T>(&mut self, references: &[T], tokenize: &Tokenizer<'_, T>) {
        self.idf.take();
        let mut seen = std::mem::take(&mut self.seen);
        let mut ids = std::mem::take(&mut self.ids);
        seen.clear();
        for text in references {
            ids.clear();
            tokenize(text, &mut |t| ids.push(self.intern_word(t)));
            for i in 0..ids.len() {
                let mut gram = ids[i];
                seen.push(gram);
                for &word in ids.iter().skip(i + 1).take(N - 1) {
                    gram = self.intern_gram(gram, word);
                    seen.push(gram);
                }
            }
        }
        seen.sort_unstable();
        seen.dedup();
        for &g in &seen {
            self.df[g as usize] += 1;
        }
        (self.seen, self.ids) = (seen, ids);
        self.images += 1;
    }

    /// [`Self::add_image_with`] for several images at once, with the same
    /// result: the images whose words and n-grams the tables already hold
    /// (most of them, once a corpus has been partly read) are looked up in
    /// parallel; only the others are interned, one after the other, in order.
    pub(crate) fn add_images_with<T: Sync>(
        &mut self,
        images: &[Vec<T>],
        tokenize: &Tokenizer<'_, T>,
    ) {
        use rayon::prelude::*;
        let known: Vec<Option<Vec<u32>>> = images
            .par_iter()
            .map(|references| self.known_ngrams(references, tokenize))
            .collect();
        for (references, known) in images.iter().zip(known) {
            match known {
                Some(grams) => {
                    self.idf.take();
                    for g in grams {
                        self.df[g as usize] += 1;
                    }
                    self.images += 1;
                }
                None => self.add_image_with(references, tokenize),
            }
        }
    }

    /// The distinct n-gram ids of one image's references, sorted, when the
    /// tables hold all of them; `None` when one is new.
    fn known_ngrams<T>(&self, references: &[T], tokenize: &Tokenizer<'_, T>) -> Option<Vec<u32>> {
        let mut grams = Vec::new();
        let mut ids = Vec::new();
        for text in references {
            ids.clear();
            let mut complete = true;
            tokenize(text, &mut |t| match self.words.get(t) {
                Some(&id) => ids.push(id),
                None => complete = false,
            });
            if !complete {
                return None;
            }
            for i in 0..ids.len() {
                let mut gram = ids[i];
                grams.push(gram);
                for &word in ids.iter().skip(i + 1).take(N - 1) {
                    gram = *self.grams.get(&(gram, word))?;
                    grams.push(gram);
                }
            }
        }
        grams.sort_unstable();
        grams.dedup();
        Some(grams)
    }

    /// A text's n-grams of orders 1 to 4, counted: each keyed by its id
    /// where the corpus knows it, else by a key from `unseen`.
    fn gram_counts(&self, each_token: &mut EachToken<'_>, unseen: &mut Unseen) -> GramCounts {
        let mut keys: Vec<u64> = Vec::with_capacity(32);
        each_token(&mut |word| {
            keys.push(match self.words.get(word) {
                Some(&id) => u64::from(id),
                None => match unseen.words.get(word) {
                    Some(&k) => k,
                    None => {
                        let next = unseen.next();
                        unseen.words.insert(word.into(), next);
                        next
                    }
                },
            });
        });
        let mut grams: Vec<u64> = Vec::with_capacity(keys.len() * N);
        for i in 0..keys.len() {
            let mut gram = keys[i];
            grams.push(gram);
            for (order, &word) in (1u64..).zip(keys.iter().skip(i + 1).take(N - 1)) {
                let known = (gram & UNSEEN == 0 && word & UNSEEN == 0)
                    .then(|| self.grams.get(&(gram as u32, word as u32)))
                    .flatten();
                gram = match known {
                    Some(&id) => u64::from(id),
                    None => {
                        let next = unseen.next();
                        *unseen.grams.entry((gram, word)).or_insert(next)
                    }
                };
                grams.push((order << ORDER_SHIFT) | gram);
            }
        }
        grams.sort_unstable();
        let mut counts: GramCounts = Vec::with_capacity(grams.len());
        for key in grams {
            match counts.last_mut() {
                Some(last) if last.0 == key => last.1 += 1,
                _ => counts.push((key, 1)),
            }
        }
        counts
    }

    fn idf(&self) -> &[f64] {
        self.idf.get_or_init(|| {
            let log_images = (self.images.max(1) as f64).ln();
            self.df
                .iter()
                .map(|&df| log_images - f64::from(df.max(1)).ln())
                .collect()
        })
    }

    /// pycocoevalcap's `counts2vec`: tf-idf weights in the order of `counts`,
    /// per-order norms and the "length" (the number of bigrams).
    fn vector(&self, idf: &[f64], counts: &GramCounts) -> Vector {
        // An n-gram no reference has: df 0, counted as 1.
        let unseen_idf = (self.images.max(1) as f64).ln();
        let mut v = Vector {
            weights: Vec::with_capacity(counts.len()),
            norms: [0.0; N],
            length: 0.0,
        };
        for &(key, tf) in counts {
            let order = (key >> ORDER_SHIFT) as usize;
            let w = f64::from(tf)
                * if key & UNSEEN == 0 {
                    idf[(key & ID_MASK) as usize]
                } else {
                    unseen_idf
                };
            v.weights.push(w);
            v.norms[order] += w * w;
            if order == 1 {
                v.length += f64::from(tf);
            }
        }
        for x in &mut v.norms {
            *x = x.sqrt();
        }
        v
    }

    /// CIDEr-D of one hypothesis against its references, given as token
    /// lists, with these corpus statistics (0 without references).
    pub fn score<S: AsRef<str>, R: AsRef<str>>(
        &self,
        hypothesis: &[S],
        references: &[Vec<R>],
    ) -> f64 {
        with_unseen(|unseen| {
            let hyp = self.gram_counts(
                &mut |visit| hypothesis.iter().for_each(|t| visit(t.as_ref())),
                unseen,
            );
            let refs: Vec<GramCounts> = references
                .iter()
                .map(|r| {
                    self.gram_counts(
                        &mut |visit| r.iter().for_each(|t| visit(t.as_ref())),
                        unseen,
                    )
                })
                .collect();
            self.score_counts(&hyp, &refs)
        })
    }

    /// [`Self::score`] from texts and the tokenizer that splits them.
    pub(crate) fn score_with(
        &self,
        hypothesis: &str,
        references: &[&str],
        tokenize: &Tokenizer<'_, str>,
    ) -> f64 {
        with_unseen(|unseen| {
            let hyp = self.gram_counts(&mut |visit| tokenize(hypothesis, visit), unseen);
            let refs: Vec<GramCounts> = references
                .iter()
                .map(|r| self.gram_counts(&mut |visit| tokenize(r, visit), unseen))
                .collect();
            self.score_counts(&hyp, &refs)
        })
    }

    fn score_counts(&self, hyp: &GramCounts, refs: &[GramCounts]) -> f64 {
        if refs.is_empty() {
            return 0.0;
        }
        let idf = self.idf();
        let hv = self.vector(idf, hyp);
        let mut total = 0.0;
        for counts in refs {
            let rv = self.vector(idf, counts);
            total += similarity((hyp, &hv), (counts, &rv)).iter().sum::<f64>();
        }
        total / N as f64 / refs.len() as f64 * 10.0
    }
}

struct Vector {
    /// One weight per entry of the text's [`GramCounts`].
    weights: Vec<f64>,
    norms: [f64; N],
    /// pycocoevalcap's "length": the number of bigrams.
    length: f64,
}

/// pycocoevalcap's `sim`: per order, Σ over the hypothesis's n-grams of
/// min(w_h, w_r) · w_r, over the product of norms, times the length
/// penalty. Both gram lists are sorted, so one merge finds the shared ones.
fn similarity(h: (&GramCounts, &Vector), r: (&GramCounts, &Vector)) -> [f64; N] {
    let delta = h.1.length - r.1.length;
    let penalty = (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp();
    let mut val = [0.0; N];
    let (mut i, mut j) = (0, 0);
    while i < h.0.len() && j < r.0.len() {
        let (a, b) = (h.0[i].0, r.0[j].0);
        match a.cmp(&b) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let (wh, wr) = (h.1.weights[i], r.1.weights[j]);
                val[(a >> ORDER_SHIFT) as usize] += wh.min(wr) * wr;
                i += 1;
                j += 1;
            }
        }
    }
    std::array::from_fn(|n| {
        let mut v = val[n];
        if h.1.norms[n] != 0.0 && r.1.norms[n] != 0.0 {
            v /= h.1.norms[n] * r.1.norms[n];
        }
        v * penalty
    })
}

/// CIDEr-D of (hypothesis tokens, reference token lists) pairs, one per
/// image, with document frequencies from these pairs' references.
pub fn cider_d<S: AsRef<str> + Sync>(pairs: &[(Vec<S>, Vec<Vec<S>>)]) -> CiderScores {
    use rayon::prelude::*;
    let mut df = DocumentFrequencies::new();
    for (_, refs) in pairs {
        df.add_image(refs);
    }
    let per_image: Vec<f64> = pairs
        .par_iter()
        .map(|(h, refs)| df.score(h, refs))
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

    #[test]
    fn unseen_ngrams_count_in_the_norm_and_repeat_as_one() {
        // "x y x y": the unseen bigram "x y" twice, "y x" once; the reference
        // shares none of the hypothesis's words.
        let mut df = DocumentFrequencies::new();
        df.add_image(&[vec!["a", "b"]]);
        df.add_image(&[vec!["a", "c"]]);
        let mut unseen = Unseen::default();
        let counts = df.gram_counts(
            &mut |visit| ["x", "y", "x", "y"].into_iter().for_each(&mut *visit),
            &mut unseen,
        );
        let bigrams: Vec<u32> = counts
            .iter()
            .filter(|c| c.0 >> ORDER_SHIFT == 1)
            .map(|c| c.1)
            .collect();
        assert_eq!(bigrams.iter().sum::<u32>(), 3);
        assert_eq!(bigrams.len(), 2);
        assert_eq!(df.score(&["x", "y"], &[vec!["a", "b"]]), 0.0);
        assert!(df.score(&["a", "b"], &[vec!["a", "b"]]) > 0.0);
        assert_eq!(df.distinct_ngrams(), 5);
    }
}
