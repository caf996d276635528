//! sacrebleu's `compute_bleu`: its smoothing methods, effective order and
//! early stop, on the 0–1 scale.

use super::stats::NgramStats;

/// sacrebleu's `smooth_method`, with its default values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SacreSmoothing {
    /// No smoothing.
    None,
    /// Zero-match orders get `value` matches (default 0.1).
    Floor(f64),
    /// Orders 2 and up get `k` added to matches and totals (default 1).
    AddK(f64),
    /// NIST: the k-th zero-match order gets 1/2^k matches (sacrebleu's default).
    #[default]
    Exp,
}

impl SacreSmoothing {
    /// `floor` with sacrebleu's default value 0.1.
    pub const FLOOR: Self = Self::Floor(0.1);
    /// `add-k` with sacrebleu's default k = 1.
    pub const ADD_K: Self = Self::AddK(1.0);
}

pub(super) fn bleu(s: &NgramStats, smoothing: SacreSmoothing, effective_order: bool) -> f64 {
    let n = s.matches.len();
    let (sys_len, ref_len) = (s.hyp_len as f64, s.ref_len_closest as f64);
    let bp = if sys_len >= ref_len {
        1.0
    } else if sys_len > 0.0 {
        (1.0 - ref_len / sys_len).exp()
    } else {
        0.0
    };
    // Early stop: no match of any order scores 0, whatever the smoothing.
    if s.matches.iter().all(|m| *m == 0) {
        return 0.0;
    }
    let mut smooth_mteval = 1.0;
    let mut eff_order = n;
    let mut precisions = vec![0.0f64; n];
    for (i, precision) in precisions.iter_mut().enumerate() {
        let (mut correct, mut total) = (s.matches[i] as f64, s.totals[i] as f64);
        if let SacreSmoothing::AddK(k) = smoothing
            && i > 0
        {
            correct += k;
            total += k;
        }
        if total == 0.0 {
            break;
        }
        if effective_order {
            eff_order = i + 1;
        }
        if correct == 0.0 {
            match smoothing {
                SacreSmoothing::Exp => {
                    smooth_mteval *= 2.0;
                    *precision = 1.0 / (smooth_mteval * total);
                }
                SacreSmoothing::Floor(value) => *precision = value / total,
                SacreSmoothing::None | SacreSmoothing::AddK(_) => {}
            }
        } else {
            *precision = correct / total;
        }
    }
    if precisions[..eff_order].iter().any(|p| *p <= 0.0) {
        return 0.0;
    }
    let log_mean: f64 =
        precisions[..eff_order].iter().map(|p| p.ln()).sum::<f64>() / eff_order as f64;
    bp * log_mean.exp()
}
