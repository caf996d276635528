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

fn bootstrap_means(xs: &[f64], b: &Bootstrap) -> Vec<f64> {
    let mut rng = SplitMix64::new(b.seed);
    let mut means: Vec<f64> = (0..b.resamples)
        .map(|_| (0..xs.len()).map(|_| xs[rng.below(xs.len())]).sum::<f64>() / xs.len() as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    means
}

/// Summarizes per-item scores. NaN scores (an undefined metric) are left out.
pub fn summarize(scores: &[f64], bootstrap: &Bootstrap) -> Summary {
    let xs: Vec<f64> = scores.iter().copied().filter(|x| !x.is_nan()).collect();
    let m = mean(&xs);
    let ci95 = if xs.is_empty() {
        (0.0, 0.0)
    } else {
        let means = bootstrap_means(&xs, bootstrap);
        (percentile(&means, 0.025), percentile(&means, 0.975))
    };
    Summary {
        n: xs.len(),
        left_out: scores.len() - xs.len(),
        mean: m,
        sd: sample_sd(&xs),
        ci95,
    }
}

/// Compares system `b` with system `a` item by item. The slices must have
/// the same length (the same references in the same order); pairs where
/// either score is NaN are left out.
pub fn compare_paired(a: &[f64], b: &[f64], bootstrap: &Bootstrap) -> PairedComparison {
    let diffs: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(x, y)| y - x)
        .collect();
    let observed = mean(&diffs);
    if diffs.is_empty() {
        return PairedComparison {
            mean_difference: 0.0,
            ci95: (0.0, 0.0),
            p_value: 1.0,
        };
    }
    let means = bootstrap_means(&diffs, bootstrap);
    let ci95 = (percentile(&means, 0.025), percentile(&means, 0.975));
    let mut rng = SplitMix64::new(bootstrap.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut extreme = 0usize;
    for _ in 0..bootstrap.resamples {
        let permuted: f64 = diffs
            .iter()
            .map(|d| if rng.chance(0.5) { -d } else { *d })
            .sum::<f64>()
            / diffs.len() as f64;
        if permuted.abs() >= observed.abs() - 1e-15 {
            extreme += 1;
        }
    }
    let p_value = (extreme + 1) as f64 / (bootstrap.resamples + 1) as f64;
    PairedComparison {
        mean_difference: observed,
        ci95,
        p_value,
    }
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
    fn nan_scores_are_left_out() {
        let s = summarize(&[1.0, f64::NAN, 3.0], &Bootstrap::default());
        assert_eq!((s.n, s.mean), (2, 2.0));
    }
}
