//! Fast n-gram matching for short texts, shared by BLEU and ROUGE.
//!
//! Tokens of one comparison (a hypothesis and its references) become dense
//! integer ids through a [`Vocabulary`]. [`clipped_matches`] counts unigram
//! matches with arrays indexed by id; longer n-grams become `u64` keys
//! through a [`GramCoder`], the hypothesis's go into a small hash table, and
//! the references' are looked up in it. Nothing is allocated per token, and
//! nothing is sorted.
//!
//! Packed keys carry the order in the top 8 bits and the ids below, so keys
//! of different orders never collide; interned keys are ids that a table
//! hands out across all orders, unique by construction.

use std::cell::RefCell;
use std::collections::HashMap;

/// Bits of a packed key below the order tag.
const GRAM_BITS: u32 = 56;

/// Dense ids (0, 1, ...) for the distinct words of one comparison. A word
/// of up to 8 bytes is kept whole in its packed [`head`]; longer words are
/// copied once into an arena, so tokens may come from short-lived buffers.
///
/// Scoring reuses one vocabulary per thread ([`with_vocabulary`]): slots
/// carry the generation that filled them, so emptying the table is a
/// counter increment rather than a memset or an allocation.
#[derive(Debug)]
pub(crate) struct Vocabulary {
    /// Bytes 9 onwards of the words longer than 8 bytes.
    arena: Vec<u8>,
    /// Indexed by id.
    words: Vec<Word>,
    /// Open addressing: `(generation, id)`; a slot of an older generation
    /// is empty. Length is a power of two.
    slots: Vec<(u32, u32)>,
    generation: u32,
}

#[derive(Debug, Clone, Copy)]
struct Word {
    head: u64,
    len: u32,
    /// Where bytes 9 onwards start in the arena (words longer than 8 bytes).
    tail: u32,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self {
            arena: Vec::with_capacity(256),
            words: Vec::with_capacity(32),
            slots: vec![(0, 0); 64],
            generation: 1,
        }
    }
}

thread_local! {
    static VOCABULARY: RefCell<Vocabulary> = RefCell::new(Vocabulary::default());
    static BUDGETS: RefCell<Budgets> = RefCell::new(Budgets::default());
}

/// Runs `f` with an empty vocabulary, reusing this thread's buffers (a
/// fresh one if the thread's is in use further up the stack).
pub(crate) fn with_vocabulary<R>(f: impl FnOnce(&mut Vocabulary) -> R) -> R {
    VOCABULARY.with(|cell| match cell.try_borrow_mut() {
        Ok(mut words) => {
            words.clear();
            f(&mut words)
        }
        Err(_) => f(&mut Vocabulary::default()),
    })
}

/// The first 8 bytes of a word as one integer, read with at most two loads
/// and no copy loop: among words of the same length, equal heads mean equal
/// first 8 bytes (shorter words are covered by overlapping reads).
fn head(word: &[u8]) -> u64 {
    let n = word.len();
    let u32_at = |i: usize| {
        word.get(i..i + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes)
    };
    if n >= 8 {
        word.get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
    } else if n >= 4 {
        u64::from(u32_at(0)) | (u64::from(u32_at(n - 4)) << 32)
    } else if n > 0 {
        u64::from(word[0]) | (u64::from(word[n / 2]) << 8) | (u64::from(word[n - 1]) << 16)
    } else {
        0
    }
}

/// FxHash-style mixing of a word's length, head and bytes beyond the
/// eighth (`tail`).
fn hash(len: usize, head: u64, tail: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = ((len as u64).rotate_left(5) ^ head).wrapping_mul(K);
    for c in tail.chunks(8) {
        h = (h.rotate_left(5) ^ self::head(c)).wrapping_mul(K);
    }
    // The multiply leaves the high bits best mixed; fold them down.
    h ^ (h >> 32)
}

/// The bytes of a word beyond the eighth.
fn tail(word: &[u8]) -> &[u8] {
    word.get(8..).unwrap_or_default()
}

impl Vocabulary {
    /// Number of distinct words seen.
    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }

    fn tail_of(&self, w: Word) -> &[u8] {
        let start = w.tail as usize;
        let len = (w.len as usize).saturating_sub(8);
        self.arena.get(start..start + len).unwrap_or_default()
    }

    /// Forgets every word, keeping the buffers.
    fn clear(&mut self) {
        if self.slots.len() > 1 << 16 {
            // Memory back after one very long text.
            *self = Self::default();
            return;
        }
        self.arena.clear();
        self.words.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill((0, 0));
            self.generation = 1;
        }
    }

    /// The id of `word`, adding it if new.
    pub(crate) fn id(&mut self, word: &str) -> u32 {
        let bytes = word.as_bytes();
        let (head, tail) = (head(bytes), tail(bytes));
        let mask = self.slots.len() - 1;
        let mut i = hash(bytes.len(), head, tail) as usize & mask;
        while let (g, id) = self.slots[i]
            && g == self.generation
        {
            let w = self.words[id as usize];
            if w.head == head
                && w.len as usize == bytes.len()
                && (tail.is_empty() || self.tail_of(w) == tail)
            {
                return id;
            }
            i = (i + 1) & mask;
        }
        let id = self.words.len() as u32;
        let start = self.arena.len() as u32;
        if !tail.is_empty() {
            self.arena.extend_from_slice(tail);
        }
        self.words.push(Word {
            head,
            len: bytes.len() as u32,
            tail: start,
        });
        self.slots[i] = (self.generation, id);
        // Keep the table at most half full.
        if self.words.len() * 2 > self.slots.len() {
            self.grow();
        }
        id
    }

    fn grow(&mut self) {
        let mut slots = vec![(0u32, 0u32); self.slots.len() * 2];
        let mask = slots.len() - 1;
        for (id, &w) in self.words.iter().enumerate() {
            let mut i = hash(w.len as usize, w.head, self.tail_of(w)) as usize & mask;
            while slots[i].0 == self.generation {
                i = (i + 1) & mask;
            }
            slots[i] = (self.generation, id as u32);
        }
        self.slots = slots;
    }

    /// Ids of a token list.
    pub(crate) fn ids<S: AsRef<str>>(&mut self, tokens: &[S]) -> Vec<u32> {
        tokens.iter().map(|t| self.id(t.as_ref())).collect()
    }
}

/// Turns n-grams of word ids into keys that are equal exactly when the
/// n-grams are, within one comparison.
#[derive(Debug)]
pub(crate) enum GramCoder {
    /// Ids packed side by side, `bits` per id (id + 1, so that no n-gram
    /// packs to the same value as a shorter one).
    Packed { bits: u32 },
    /// Too many words or too high an order to pack: each n-gram gets a
    /// dense id from its order, its (n-1)-gram prefix's id and its last word.
    Interned { ids: HashMap<(u32, u32, u32), u32> },
}

impl GramCoder {
    /// A coder for `vocabulary_size` distinct words and orders up to `max_order`.
    pub(crate) fn new(vocabulary_size: usize, max_order: usize) -> Self {
        let bits = u64::BITS - (vocabulary_size as u64).leading_zeros();
        if max_order < 256 && (bits as usize).saturating_mul(max_order) <= GRAM_BITS as usize {
            Self::Packed { bits: bits.max(1) }
        } else {
            Self::Interned {
                ids: HashMap::new(),
            }
        }
    }

    /// Calls `visit(order, key)` for every n-gram of `ids` of orders 2 to
    /// `max_order` made only of words for which `keep` is true, position by
    /// position, each n-gram grown from the one before it; when `visit`
    /// returns false, the longer n-grams at that position are skipped.
    fn each_key(
        &mut self,
        ids: &[u32],
        max_order: usize,
        keep: impl Fn(u32) -> bool,
        mut visit: impl FnMut(usize, u64) -> bool,
    ) {
        for i in 0..ids.len() {
            let longest = max_order.min(ids.len() - i);
            let mut words = ids[i..i + longest].iter().copied();
            let Some(first) = words.next().filter(|&w| keep(w)) else {
                continue;
            };
            match self {
                Self::Packed { bits } => {
                    let mut gram = u64::from(first + 1);
                    for (n, id) in (2..).zip(words) {
                        if !keep(id) {
                            break;
                        }
                        gram = (gram << *bits) | u64::from(id + 1);
                        if !visit(n, ((n as u64) << GRAM_BITS) | gram) {
                            break;
                        }
                    }
                }
                Self::Interned { ids: table } => {
                    let mut gram = first;
                    for (n, id) in (2..).zip(words) {
                        if !keep(id) {
                            break;
                        }
                        let next = table.len() as u32;
                        gram = *table.entry((n as u32, gram, id)).or_insert(next);
                        if !visit(n, u64::from(gram)) {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// One slot of [`Budgets`]: a hypothesis n-gram.
#[derive(Debug, Clone, Copy, Default)]
struct Budget {
    key: u64,
    /// The comparison that filled the slot; older ones mean empty.
    generation: u32,
    /// Occurrences in the hypothesis.
    in_hyp: u32,
    /// The most occurrences in any one reference so far.
    in_refs: u32,
    /// Occurrences in the reference being read, and which reference that is.
    run: u32,
    owner: u32,
}

/// Open-addressing table of the hypothesis's n-grams, reused per thread
/// (slots stamped with a generation, like [`Vocabulary`]'s), and word-level
/// counts indexed by word id.
#[derive(Debug, Default)]
struct Budgets {
    slots: Vec<Budget>,
    /// Slots in use this comparison: a power of two, at most `slots.len()`.
    size: usize,
    generation: u32,
    /// Per word id: occurrences in the hypothesis, the most in any one
    /// reference, and in the reference being read.
    words: Vec<WordCounts>,
}

#[derive(Debug, Clone, Copy, Default)]
struct WordCounts {
    in_hyp: u32,
    in_refs: u32,
    run: u32,
}

impl Budgets {
    /// Empties the table and makes room for `grams` keys (at most half full).
    fn reset(&mut self, grams: usize) {
        self.size = (2 * grams).next_power_of_two().max(16);
        // Grow when needed; give memory back after one very long text.
        if self.slots.len() < self.size || self.slots.len() > (8 * self.size).max(1 << 16) {
            self.slots = vec![Budget::default(); self.size];
            self.generation = 0;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill(Budget::default());
            self.generation = 1;
        }
    }

    /// The slot of `key`, or the free slot where it would go.
    fn slot(&self, key: u64) -> usize {
        let mask = self.size - 1;
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & mask;
        loop {
            let b = &self.slots[i];
            if b.generation != self.generation || b.key == key {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Counts one occurrence of `key` in the hypothesis.
    fn add_hyp(&mut self, key: u64) {
        let i = self.slot(key);
        let generation = self.generation;
        let b = &mut self.slots[i];
        if b.generation != generation {
            *b = Budget {
                key,
                generation,
                owner: u32::MAX,
                ..Budget::default()
            };
        }
        b.in_hyp += 1;
    }

    /// Counts one occurrence of `key` in reference number `reference`:
    /// `None` when the hypothesis lacks `key` (and so every longer n-gram
    /// that starts with it), else whether this occurrence adds a clipped
    /// match (it raises the reference maximum, still within the
    /// hypothesis's count).
    fn add_ref(&mut self, key: u64, reference: u32) -> Option<bool> {
        let i = self.slot(key);
        let b = &mut self.slots[i];
        if b.generation != self.generation {
            return None;
        }
        if b.owner != reference {
            (b.run, b.owner) = (0, reference);
        }
        b.run += 1;
        if b.run <= b.in_refs {
            return Some(false);
        }
        b.in_refs = b.run;
        Some(b.in_refs <= b.in_hyp)
    }
}

/// `Σ_g min(count_h(g), max_r count_r(g))` for each order `n` of `sums`
/// (`sums[n - 1]`, overwritten): BLEU's clipped matches, and with one
/// reference ROUGE-N's overlap. Ids are below `vocabulary`.
///
/// Words are counted in arrays indexed by id, which gives order 1 directly
/// and tells which words the hypothesis shares with some reference: only
/// n-grams made of those can match, so only those enter the table of the
/// hypothesis's n-grams, and each reference's n-grams are looked up in it
/// until the first miss (no longer n-gram at that position can be in the
/// hypothesis either). Every rise of an n-gram's reference maximum up to its
/// hypothesis count is one more clipped match.
pub(crate) fn clipped_matches(hyp: &[u32], refs: &[Vec<u32>], vocabulary: usize, sums: &mut [u64]) {
    let coder = GramCoder::new(vocabulary, sums.len());
    clipped_matches_with(coder, hyp, refs, vocabulary, sums);
}

fn clipped_matches_with(
    mut coder: GramCoder,
    hyp: &[u32],
    refs: &[Vec<u32>],
    vocabulary: usize,
    sums: &mut [u64],
) {
    sums.fill(0);
    let max_order = sums.len();
    if hyp.is_empty() || max_order == 0 {
        return;
    }
    let mut count = |budgets: &mut Budgets| {
        let words = &mut budgets.words;
        words.clear();
        words.resize(vocabulary, WordCounts::default());
        for &w in hyp {
            words[w as usize].in_hyp += 1;
        }
        for r in refs {
            for &w in r {
                let c = &mut words[w as usize];
                c.run += 1;
                c.in_refs = c.in_refs.max(c.run);
            }
            for &w in r {
                words[w as usize].run = 0;
            }
        }
        sums[0] = words
            .iter()
            .map(|c| u64::from(c.in_hyp.min(c.in_refs)))
            .sum();
        if max_order == 1 {
            return;
        }
        let shared: Vec<bool> = words
            .iter()
            .map(|c| c.in_hyp > 0 && c.in_refs > 0)
            .collect();
        let keep = |w: u32| shared[w as usize];
        budgets.reset(hyp.len() * (max_order - 1));
        coder.each_key(hyp, max_order, keep, |_, k| {
            budgets.add_hyp(k);
            true
        });
        for (index, r) in refs.iter().enumerate() {
            coder.each_key(r, max_order, keep, |n, k| {
                match budgets.add_ref(k, index as u32) {
                    None => false,
                    Some(matched) => {
                        sums[n - 1] += u64::from(matched);
                        true
                    }
                }
            });
        }
    };
    BUDGETS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut budgets) => count(&mut budgets),
        Err(_) => count(&mut Budgets::default()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clipped matches per order, the slow obvious way.
    fn naive(hyp: &[u32], refs: &[Vec<u32>], max_order: usize) -> Vec<u64> {
        let grams = |t: &[u32], n: usize| -> HashMap<Vec<u32>, u64> {
            let mut m = HashMap::new();
            if t.len() >= n {
                for w in t.windows(n) {
                    *m.entry(w.to_vec()).or_insert(0) += 1;
                }
            }
            m
        };
        (1..=max_order)
            .map(|n| {
                let r: Vec<_> = refs.iter().map(|r| grams(r, n)).collect();
                grams(hyp, n)
                    .iter()
                    .map(|(g, c)| {
                        let most = r.iter().map(|m| m.get(g).copied().unwrap_or(0)).max();
                        (*c).min(most.unwrap_or(0))
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn clipped_matches_follow_the_definition_packed_or_interned() {
        let mut words = Vocabulary::default();
        let mut rng = medcap_rng::SplitMix64::new(3);
        let mut text = |len: usize| -> Vec<u32> {
            let pool = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far"];
            (0..len)
                .map(|_| {
                    let word = rng.pick(&pool);
                    words.id(word)
                })
                .collect()
        };
        for round in 0..300 {
            let hyp = text(round % 13);
            let refs: Vec<Vec<u32>> = (0..1 + round % 3).map(|k| text((round + k) % 11)).collect();
            for max_order in [1, 2, 4, 6, 300] {
                let want = naive(&hyp, &refs, max_order);
                let mut got = vec![0; max_order];
                clipped_matches(&hyp, &refs, 9, &mut got);
                assert_eq!(got, want, "{hyp:?} {refs:?}");
                let interned = GramCoder::Interned {
                    ids: HashMap::new(),
                };
                clipped_matches_with(interned, &hyp, &refs, 9, &mut got);
                assert_eq!(got, want, "interned {hyp:?} {refs:?}");
            }
        }
        assert!(matches!(
            GramCoder::new(1 << 28, 2),
            GramCoder::Interned { .. }
        ));
        // Orders that do not fit the 8-bit tag are interned too.
        assert!(matches!(GramCoder::new(9, 300), GramCoder::Interned { .. }));
    }

    #[test]
    fn a_huge_comparison_leaves_a_small_reused_vocabulary() {
        let big: Vec<String> = (0..40_000).map(|i| format!("w{i}")).collect();
        with_vocabulary(|words| {
            words.ids(&big);
            assert_eq!(words.len(), 40_000);
        });
        with_vocabulary(|words| {
            assert_eq!(words.len(), 0);
            assert_eq!(words.slots.len(), 64);
            assert_eq!(words.id("w7"), 0);
        });
        let hyp: Vec<u32> = (0..40_000).collect();
        let mut sums = [0; 2];
        clipped_matches(&hyp, std::slice::from_ref(&hyp), 40_000, &mut sums);
        assert_eq!(sums, [40_000, 39_999]);
        clipped_matches(&[0, 1], &[vec![1, 0, 1]], 2, &mut sums);
        assert_eq!(sums, [2, 1]);
        clipped_matches(&[0, 1], &[vec![1, 0]], 2, &mut sums);
        assert_eq!(sums, [2, 0]);
        BUDGETS.with(|b| assert!(b.borrow().slots.len() <= 1 << 16));
    }

    #[test]
    fn vocabulary_grows_and_keeps_ids() {
        let mut words = Vocabulary::default();
        let tokens: Vec<String> = (0..1000).map(|i| format!("w{}", i % 300)).collect();
        let ids = words.ids(&tokens);
        assert_eq!(words.len(), 300);
        for (t, id) in tokens.iter().zip(&ids) {
            assert_eq!(words.id(t), *id);
        }
        assert_eq!(words.id(""), 300);
        assert_eq!(words.id(""), 300);
        // Words that share heads, lengths or prefixes stay apart.
        let tricky = [
            "a",
            "aa",
            "aaa",
            "aba",
            "abca",
            "abcb",
            "abcdefgh",
            "abcdefghi",
            "abcdefghj",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
            "bcdefgha",
            "aab",
            "baa",
            "é",
            "éé",
        ];
        let ids: Vec<u32> = tricky.iter().map(|w| words.id(w)).collect();
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), tricky.len());
        for (w, id) in tricky.iter().zip(&ids) {
            assert_eq!(words.id(w), *id, "{w}");
        }
    }
}
