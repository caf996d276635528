//! Deterministic splits grouped by source paper.
//!
//! Figures of one paper share authors, style and often the patient, so a
//! paper with figures on both sides of a split leaks. Papers (`pdf_hash`)
//! are shuffled with a seed and whole papers are placed, in the study's
//! order: the test set first, then validation, then FT-1's training set,
//! then the figures that FT-2 adds to FT-1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use medcap_rng::SplitMix64;

/// Where a figure goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Held-out test figures (the study's 300).
    Test,
    /// Validation figures.
    Val,
    /// FT-1's training figures; FT-2 trains on them too.
    Ft1,
    /// The figures FT-2 adds to FT-1's.
    Ft2Extra,
    /// Usable figures that no split needed.
    Unused,
}

impl Split {
    /// Every split, in assignment order.
    pub const ALL: [Split; 5] = [
        Split::Test,
        Split::Val,
        Split::Ft1,
        Split::Ft2Extra,
        Split::Unused,
    ];

    /// The name used in CSV columns and file names.
    pub fn name(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Val => "val",
            Split::Ft1 => "ft1",
            Split::Ft2Extra => "ft2_extra",
            Split::Unused => "unused",
        }
    }
}

/// How many figures each split should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPlan {
    /// Test figures (the study: 300).
    pub test: usize,
    /// Validation figures.
    pub val: usize,
    /// FT-1 training figures (the study: 1,800).
    pub ft1: usize,
    /// Figures FT-2 adds to FT-1 (the study: 1,000, for 2,800 in all).
    pub ft2_extra: usize,
}

impl Default for SplitPlan {
    fn default() -> Self {
        Self {
            test: 300,
            val: 200,
            ft1: 1_800,
            ft2_extra: 1_000,
        }
    }
}

impl SplitPlan {
    fn target(&self, split: Split) -> usize {
        match split {
            Split::Test => self.test,
            Split::Val => self.val,
            Split::Ft1 => self.ft1,
            Split::Ft2Extra => self.ft2_extra,
            Split::Unused => usize::MAX,
        }
    }
}

/// Assigns each item to a split, keeping items with the same group key
/// (the `pdf_hash`) together.
///
/// Groups are sorted, then shuffled with `seed`, so the result depends on the
/// set of items and the seed, not on input order. Each split is filled
/// first-fit: a paper too large for the room left is skipped and offered to
/// the next split, so that sizes are exact whenever the papers allow it.
/// When data run short, later splits get fewer figures than planned.
///
/// ```
/// use medcap_dataset::split::{assign_splits, Split, SplitPlan};
///
/// let papers = ["p1", "p1", "p2", "p3", "p3", "p4"];
/// let plan = SplitPlan { test: 2, val: 1, ft1: 2, ft2_extra: 0 };
/// let splits = assign_splits(&papers, &plan, 42);
/// assert_eq!(splits[0], splits[1]); // one paper, one split
/// assert_eq!(splits.iter().filter(|s| **s == Split::Test).count(), 2);
/// ```
pub fn assign_splits<S: AsRef<str>>(group_keys: &[S], plan: &SplitPlan, seed: u64) -> Vec<Split> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, key) in group_keys.iter().enumerate() {
        groups.entry(key.as_ref()).or_default().push(i);
    }
    let mut order: Vec<Vec<usize>> = groups.into_values().collect();
    SplitMix64::new(seed).shuffle(&mut order);

    let mut result = vec![Split::Unused; group_keys.len()];
    let mut placed = vec![false; order.len()];
    for split in [Split::Test, Split::Val, Split::Ft1, Split::Ft2Extra] {
        let target = plan.target(split);
        let mut filled = 0;
        for (g, members) in order.iter().enumerate() {
            if filled == target {
                break;
            }
            if placed[g] || filled + members.len() > target {
                continue;
            }
            placed[g] = true;
            filled += members.len();
            for &i in members {
                result[i] = split;
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn papers(n_papers: usize, seed: u64) -> Vec<String> {
        let mut rng = SplitMix64::new(seed);
        (0..n_papers)
            .flat_map(|p| std::iter::repeat_n(format!("paper{p}"), 1 + rng.below(4)))
            .collect()
    }

    #[test]
    fn no_paper_is_on_two_sides() {
        let keys = papers(2_000, 1);
        let splits = assign_splits(&keys, &SplitPlan::default(), 9);
        let mut side: HashMap<&str, Split> = HashMap::new();
        for (k, s) in keys.iter().zip(&splits) {
            assert_eq!(*side.entry(k).or_insert(*s), *s, "{k} crosses splits");
        }
    }

    #[test]
    fn sizes_are_exact_when_papers_allow() {
        let keys = papers(2_000, 2);
        let splits = assign_splits(&keys, &SplitPlan::default(), 9);
        let count = |s| splits.iter().filter(|x| **x == s).count();
        assert_eq!(count(Split::Test), 300);
        assert_eq!(count(Split::Val), 200);
        assert_eq!(count(Split::Ft1), 1_800);
        assert_eq!(count(Split::Ft2Extra), 1_000);
        assert_eq!(count(Split::Unused), keys.len() - 3_300);
    }

    #[test]
    fn deterministic_and_independent_of_input_order() {
        let keys = papers(300, 3);
        let plan = SplitPlan {
            test: 50,
            val: 20,
            ft1: 100,
            ft2_extra: 50,
        };
        let a = assign_splits(&keys, &plan, 5);
        assert_eq!(a, assign_splits(&keys, &plan, 5));
        let mut reversed = keys.clone();
        reversed.reverse();
        let mut b = assign_splits(&reversed, &plan, 5);
        b.reverse();
        let by_paper = |splits: &[Split]| -> HashSet<(String, Split)> {
            keys.iter().cloned().zip(splits.iter().copied()).collect()
        };
        assert_eq!(by_paper(&a), by_paper(&b));
        assert_ne!(a, assign_splits(&keys, &plan, 6), "the seed matters");
    }

    #[test]
    fn short_data_fills_splits_in_order() {
        let keys: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
        let plan = SplitPlan {
            test: 4,
            val: 4,
            ft1: 4,
            ft2_extra: 4,
        };
        let splits = assign_splits(&keys, &plan, 1);
        let count = |s| splits.iter().filter(|x| **x == s).count();
        assert_eq!(
            (count(Split::Test), count(Split::Val), count(Split::Ft1)),
            (4, 4, 2)
        );
        assert_eq!(count(Split::Ft2Extra), 0);
    }
}
