//! Statistics over per-caption scores: mean, sample standard deviation, a
//! seeded 95% bootstrap interval, and a paired comparison of two systems
//! scored on the same references.
//!
//! The study reported mean and s.d. only. With 300 captions and scores this
//! skewed (BLEU is 0 for almost every caption), an interval and a paired
//! test say whether a difference is more than noise.
//!
//! ```
//! use medcap_metrics::stats::{summarize, Bootstrap};
//!
//! // The study's BLEU: one caption at 0.0519 among 299 zeros.
//! let scores: Vec<f64> = std::iter::once(0.0519).chain(std::iter::repeat(0.0).take(299)).collect();
//! let s = summarize(&scores, &Bootstrap::default());
//! assert!((s.mean - 0.000173).abs() < 1e-6);
//! assert!((s.sd - 0.0030).abs() < 1e-4);
//! assert!(s.ci95.0 <= s.mean && s.mean <= s.ci95.1);
//! ```

use medcap_rng::SplitMix64;
use serde::Serialize;

/// Bootstrap settings: resamples and seed (results are reproducible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bootstrap {
    /// Number of resamples.
    pub resamples: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self {
            resamples: 1_000,
            seed: 0,
        }
    }
}

/// Mean, sample standard deviation and 95% percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of scores summarized.
    pub n: usize,
    /// Scores left out because they are undefined (NaN): BLEU where nltk's
    /// smoothing is undefined, a BERTScore side without weight.
    pub left_out: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator; 0 for n < 2).
    pub sd: f64,
    /// 2.5th and 97.5th percentiles of the bootstrap means.
    pub ci95: (f64, f64),
}

/// Paired comparison of system B against system A on the same items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedComparison {
    /// Mean of B minus A.
    pub mean_difference: f64,
    /// 95% paired bootstrap interval of the mean difference.
    pub ci95: (f64, f64),
    /// Two-sided p-value of a paired permutation (sign-flip) test:
    /// (count of |permuted mean| >= |observed| + 1) / (resamples + 1).
    pub p_value: f64,
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

fn sample_sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Percentile with linear interpolation between order statistics (numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The 2.5th and 97.5th percentiles of resampled means (NaN means, from
/// resamples that drew no defined score, are left out).
fn interval(mut means: Vec<f64>) -> (f64, f64) {
    means.retain(|m| !m.is_nan());
    means.sort_by(f64::total_cmp);
    (percentile(&means, 0.025), percentile(&means, 0.975))
}

/// Per-item scores of several metrics, row-major (`width` values per item),
/// so that one resampled item reads one contiguous row.
struct Rows<'a> {
    values: &'a [f64],
    width: usize,
}

impl Rows<'_> {
    fn items(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }
}

/// How a resample draws from the items.
#[derive(Clone, Copy)]
enum Draw {
    /// n items with replacement (the bootstrap).
    Items,
    /// Every item once, its sign flipped with probability 1/2 (the paired
    /// permutation test).
    Signs,
}

/// Stream of the permutation test's signs, apart from the bootstrap's.
const SIGN_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// Means of each column over `b.resamples` resamples: `result[metric][r]`.
/// Resample `r` draws from its own generator (`SplitMix64::for_item`), so
/// results do not depend on the number of threads, and every metric sees
/// the same drawn items. NaN values are left out of a resample's mean.
///
/// Nothing is allocated per resample: each writes its row of one
/// preallocated matrix, counting in a per-thread buffer.
fn resampled_means(rows: &Rows<'_>, b: &Bootstrap, draw: Draw) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    let (n, width) = (rows.items(), rows.width);
    let mut matrix = vec![0.0; b.resamples * width];
    if n == 0 || width == 0 {
        return vec![vec![f64::NAN; b.resamples]; width];
    }
    // Scores are rarely undefined: without NaN, a resample is a plain sum
    // per metric, with no count to keep.
    let defined = !rows.values.iter().any(|x| x.is_nan());
    matrix.par_chunks_mut(width).enumerate().for_each_init(
        || vec![0u64; width],
        |counts, (r, sums)| {
            let mut rng = match draw {
                Draw::Items => SplitMix64::for_item(b.seed, r as u64),
                Draw::Signs => SplitMix64::for_item(b.seed ^ SIGN_STREAM, r as u64),
            };
            if defined {
                each_draw(rows, draw, &mut rng, |row, negate| {
                    for (sum, &x) in sums.iter_mut().zip(row) {
                        *sum += if negate { -x } else { x };
                    }
                });
                for sum in sums.iter_mut() {
                    *sum /= n as f64;
                }
            } else {
                counts.fill(0);
                each_draw(rows, draw, &mut rng, |row, negate| {
                    for ((sum, count), &x) in sums.iter_mut().zip(counts.iter_mut()).zip(row) {
                        if !x.is_nan() {
                            *sum += if negate { -x } else { x };
                            *count += 1;
                        }
                    }
                });
                for (sum, &count) in sums.iter_mut().zip(counts.iter()) {
                    *sum = if count == 0 {
                        f64::NAN
                    } else {
                        *sum / count as f64
                    };
                }
            }
        },
    );
    (0..width)
        .map(|k| matrix.iter().skip(k).step_by(width).copied().collect())
        .collect()
}

/// Calls `visit(row, negate)` for each row one resample draws: `n` rows
/// with replacement (bootstrap), or every row with a random sign (sign flip).
/// Generic, so that each caller's accumulation is inlined into the loop.
#[inline(always)]
fn each_draw(
    rows: &Rows<'_>,
    draw: Draw,
    rng: &mut SplitMix64,
    mut visit: impl FnMut(&[f64], bool),
) {
    let (n, width) = (rows.items(), rows.width);
    match draw {
        Draw::Items => {
            for _ in 0..n {
                let i = rng.below(n);
                visit(&rows.values[i * width..(i + 1) * width], false);
            }
        }
        Draw::Signs => {
            let mut bits = 0u64;
            for (i, row) in rows.values.chunks_exact(width).enumerate() {
                if i % 64 == 0 {
                    bits = rng.next_u64();
                }
                visit(row, bits & 1 == 1);
                bits >>= 1;
            }
        }
    }
}

/// The columns side by side, row-major.
fn interleave(columns: &[&[f64]]) -> Vec<f64> {
    let n = columns.iter().map(|c| c.len()).min().unwrap_or(0);
    (0..n)
        .flat_map(|i| columns.iter().map(move |c| c[i]))
        .collect()
}

/// Summarizes per-item scores. NaN scores (an undefined metric) are left
/// out of the mean, the s.d. and each resample's mean.
pub fn summarize(scores: &[f64], bootstrap: &Bootstrap) -> Summary {
    summarize_columns(&[scores], bootstrap)
        .pop()
        .unwrap_or(Summary {
            n: 0,
            left_out: 0,
            mean: 0.0,
            sd: 0.0,
            ci95: (0.0, 0.0),
        })
}

/// [`summarize`] for several metrics of the same items at once (columns of
/// equal length; the shortest decides otherwise). Every resample draws one
/// set of items for all metrics, so the intervals of different metrics come
/// from the same resamples, and the cost is one pass per resample, not one
/// per metric.
pub fn summarize_columns(columns: &[&[f64]], bootstrap: &Bootstrap) -> Vec<Summary> {
    let values = interleave(columns);
    let rows = Rows {
        values: &values,
        width: columns.len(),
    };
    let means = resampled_means(&rows, bootstrap, Draw::Items);
    columns
        .iter()
        .zip(means)
        .map(|(column, means)| {
            let xs: Vec<f64> = column[..rows.items()]
                .iter()
                .copied()
                .filter(|x| !x.is_nan())
                .collect();
            Summary {
                n: xs.len(),
                left_out: rows.items() - xs.len(),
                mean: mean(&xs),
                sd: sample_sd(&xs),
                ci95: if xs.is_empty() {
                    (0.0, 0.0)
                } else {
                    interval(means)
                },
            }
        })
        .collect()
}

/// Compares system `b` with system `a` item by item. The slices must have
/// the same length (the same references in the same order); pairs where
/// either score is NaN are left out.
pub fn compare_paired(a: &[f64], b: &[f64], bootstrap: &Bootstrap) -> PairedComparison {
    compare_paired_columns(&[a], &[b], bootstrap)
        .pop()
        .unwrap_or(PairedComparison {
            mean_difference: 0.0,
            ci95: (0.0, 0.0),
            p_value: 1.0,
        })
}

/// [`compare_paired`] for several metrics at once: `a[k]` and `b[k]` are
/// metric k's columns of the two systems. Resamples and sign flips are
/// shared by all metrics, as in [`summarize_columns`].
pub fn compare_paired_columns(
    a: &[&[f64]],
    b: &[&[f64]],
    bootstrap: &Bootstrap,
) -> Vec<PairedComparison> {
    let diffs: Vec<Vec<f64>> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            x.iter()
                .zip(*y)
                .map(|(x, y)| {
                    if x.is_nan() || y.is_nan() {
                        f64::NAN
                    } else {
                        y - x
                    }
                })
                .collect()
        })
        .collect();
    let columns: Vec<&[f64]> = diffs.iter().map(Vec::as_slice).collect();
    let values = interleave(&columns);
    let rows = Rows {
        values: &values,
        width: columns.len(),
    };
    let boot = resampled_means(&rows, bootstrap, Draw::Items);
    let flips = resampled_means(&rows, bootstrap, Draw::Signs);
    columns
        .iter()
        .zip(boot.into_iter().zip(flips))
        .map(|(column, (means, permuted))| {
            let defined: Vec<f64> = column.iter().copied().filter(|x| !x.is_nan()).collect();
            if defined.is_empty() {
                return PairedComparison {
                    mean_difference: 0.0,
                    ci95: (0.0, 0.0),
                    p_value: 1.0,
                };
            }
            let observed = mean(&defined);
            let extreme = permuted
                .iter()
                .filter(|m| m.abs() >= observed.abs() - 1e-15)
                .count();
            PairedComparison {
                mean_difference: observed,
                ci95: interval(means),
                p_value: (extreme + 1) as f64 / (bootstrap.resamples + 1) as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_uses_n_minus_one_and_percentiles_interpolate() {
        assert!((sample_sd(&[1.0, 2.0, 3.0, 4.0]) - 1.2909944487358056).abs() < 1e-15);
        assert_eq!(sample_sd(&[5.0]), 0.0);
        assert_eq!(percentile(&[0.0, 10.0], 0.25), 2.5);
    }

    #[test]
    fn bootstrap_is_seeded() {
        let xs: Vec<f64> = (0..50).map(|i| (i % 7) as f64).collect();
        let b = Bootstrap::default();
        assert_eq!(summarize(&xs, &b), summarize(&xs, &b));
        assert_ne!(
            summarize(&xs, &b).ci95,
            summarize(&xs, &Bootstrap { seed: 1, ..b }).ci95
        );
    }

    #[test]
    fn a_clear_improvement_is_significant_and_noise_is_not() {
        let a: Vec<f64> = (0..300).map(|i| ((i * 37) % 100) as f64 / 100.0).collect();
        let better: Vec<f64> = a.iter().map(|x| x + 0.05).collect();
        let c = compare_paired(&a, &better, &Bootstrap::default());
        assert!((c.mean_difference - 0.05).abs() < 1e-12);
        assert!(c.p_value < 0.01, "{c:?}");
        assert!(c.ci95.0 > 0.0);
        let shuffled: Vec<f64> = (0..300).map(|i| ((i * 53) % 100) as f64 / 100.0).collect();
        let c = compare_paired(&a, &shuffled, &Bootstrap::default());
        assert!(c.p_value > 0.05, "{c:?}");
    }

    #[test]
    fn columns_share_resamples_and_match_one_at_a_time() {
        let a: Vec<f64> = (0..97).map(|i| ((i * 31) % 17) as f64 / 17.0).collect();
        let b: Vec<f64> = a.iter().map(|x| 2.0 * x + 1.0).collect();
        let boot = Bootstrap::default();
        let both = summarize_columns(&[&a, &b], &boot);
        assert_eq!(both[0], summarize(&a, &boot));
        assert_eq!(both[1], summarize(&b, &boot));
        // The same items in every resample: b's interval is a's, transformed.
        let (lo, hi) = both[0].ci95;
        assert!((both[1].ci95.0 - (2.0 * lo + 1.0)).abs() < 1e-12);
        assert!((both[1].ci95.1 - (2.0 * hi + 1.0)).abs() < 1e-12);
        let paired = compare_paired_columns(&[&a, &b], &[&b, &a], &boot);
        assert_eq!(paired[0], compare_paired(&a, &b, &boot));
        assert!((paired[0].mean_difference + paired[1].mean_difference).abs() < 1e-12);
        assert_eq!(paired[0].p_value, paired[1].p_value);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let xs: Vec<f64> = (0..500).map(|i| ((i * 7919) % 101) as f64).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let b = Bootstrap::default();
        assert_eq!(
            one.install(|| summarize(&xs, &b)),
            three.install(|| summarize(&xs, &b))
        );
        let ys: Vec<f64> = xs.iter().rev().copied().collect();
        assert_eq!(
            one.install(|| compare_paired(&xs, &ys, &b)),
            three.install(|| compare_paired(&xs, &ys, &b))
        );
    }

    #[test]
    fn an_empty_or_undefined_column_gives_a_zero_interval() {
        let b = Bootstrap::default();
        assert_eq!(summarize(&[], &b).ci95, (0.0, 0.0));
        let s = summarize(&[f64::NAN, f64::NAN], &b);
        assert_eq!((s.n, s.left_out, s.ci95), (0, 2, (0.0, 0.0)));
        assert_eq!(compare_paired(&[f64::NAN], &[1.0], &b).p_value, 1.0);
    }

    #[test]
    fn nan_scores_are_left_out() {
        let s = summarize(&[1.0, f64::NAN, 3.0], &Bootstrap::default());
        assert_eq!((s.n, s.mean), (2, 2.0));
    }
}
