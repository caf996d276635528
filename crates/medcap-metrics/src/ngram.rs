//! Fast n-gram counting for short texts: tokens become small integer ids,
//! n-grams become packed integer keys, and counts come from sorting, which
//! for captions of a few dozen tokens beats hashing strings by far.

/// Token ids local to one comparison (a hypothesis and its references).
#[derive(Debug, Default)]
pub(crate) struct Interner<'a> {
    words: Vec<&'a str>,
    /// Built once the vocabulary outgrows a linear search.
    index: Option<std::collections::HashMap<&'a str, u32>>,
}

/// Beyond this many distinct words a hash map beats scanning.
const LINEAR_LIMIT: usize = 48;

impl<'a> Interner<'a> {
    /// The id of `word`, adding it if new. Captions hold few distinct short
    /// words, where a linear scan is fastest; long texts switch to a map.
    pub(crate) fn id(&mut self, word: &'a str) -> u32 {
        let next = self.words.len() as u32;
        if let Some(index) = &mut self.index {
            let id = *index.entry(word).or_insert(next);
            if id == next {
                self.words.push(word);
            }
            return id;
        }
        if let Some(i) = self.words.iter().position(|w| *w == word) {
            return i as u32;
        }
        self.words.push(word);
        if self.words.len() > LINEAR_LIMIT {
            self.index = Some(
                self.words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (*w, i as u32))
                    .collect(),
            );
        }
        next
    }

    pub(crate) fn ids<S: AsRef<str>>(&mut self, tokens: &'a [S]) -> Vec<u32> {
        tokens.iter().map(|t| self.id(t.as_ref())).collect()
    }
}

/// An n-gram key: up to four 32-bit ids packed, or for longer orders a
/// hash-free fallback of the ids themselves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Gram {
    Packed(u128),
    Long(Vec<u32>),
}

fn key(window: &[u32]) -> Gram {
    if window.len() <= 4 {
        Gram::Packed(
            window
                .iter()
                .fold(0u128, |k, &id| (k << 32) | u128::from(id + 1)),
        )
    } else {
        Gram::Long(window.to_vec())
    }
}

/// Sorted (n-gram, count) pairs of order `n`.
pub(crate) fn counts(ids: &[u32], n: usize) -> Vec<(Gram, u32)> {
    if n == 0 || ids.len() < n {
        return Vec::new();
    }
    if n <= 4 {
        // The common case: sort plain integers, then wrap.
        let mut keys: Vec<u128> = ids
            .windows(n)
            .map(|w| {
                w.iter()
                    .fold(0u128, |k, &id| (k << 32) | u128::from(id + 1))
            })
            .collect();
        keys.sort_unstable();
        let mut out: Vec<(Gram, u32)> = Vec::with_capacity(keys.len());
        for k in keys {
            match out.last_mut() {
                Some((Gram::Packed(last), c)) if *last == k => *c += 1,
                _ => out.push((Gram::Packed(k), 1)),
            }
        }
        return out;
    }
    let mut keys: Vec<Gram> = ids.windows(n).map(key).collect();
    keys.sort_unstable();
    let mut out: Vec<(Gram, u32)> = Vec::with_capacity(keys.len());
    for k in keys {
        match out.last_mut() {
            Some((last, c)) if *last == k => *c += 1,
            _ => out.push((k, 1)),
        }
    }
    out
}

/// `Σ_g min(a(g), b(g))` over two sorted count lists.
pub(crate) fn overlap(a: &[(Gram, u32)], b: &[(Gram, u32)]) -> u32 {
    let (mut i, mut j, mut sum) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1.min(b[j].1);
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// Raises each count in `max` (sorted, same keys as the hypothesis) to the
/// count of that n-gram in `other` when higher.
pub(crate) fn raise_to(max: &mut [(Gram, u32)], other: &[(Gram, u32)]) {
    let (mut i, mut j) = (0, 0);
    while i < max.len() && j < other.len() {
        match max[i].0.cmp(&other[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                max[i].1 = max[i].1.max(other[j].1);
                i += 1;
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_overlap() {
        let mut words = Interner::default();
        let a = ["the", "cat", "the", "cat", "sat"];
        let b = ["the", "cat", "sat"];
        let (a, b) = (words.ids(&a), words.ids(&b));
        assert_eq!(overlap(&counts(&a, 2), &counts(&b, 2)), 2);
        assert_eq!(overlap(&counts(&a, 1), &counts(&b, 1)), 3);
        assert_eq!(counts(&a, 6), Vec::new());
        assert_eq!(overlap(&counts(&a, 5), &counts(&a, 5)), 1);
    }
}
