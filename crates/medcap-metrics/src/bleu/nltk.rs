//! nltk's `corpus_bleu`/`sentence_bleu` and the eight methods of its
//! `SmoothingFunction` (Chen and Cherry, 2014), with nltk's quirks:
//! zero precisions are skipped in the geometric mean, method 0 turns them
//! into the smallest positive double, and at corpus level methods 5 to 7 see
//! only the last segment.

use super::stats::{NgramStats, Segment};

/// `SmoothingFunction().methodN` with nltk's defaults (epsilon 0.1, alpha 5, k 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NltkSmoothing {
    /// No smoothing: zero precisions become `f64::MIN_POSITIVE` (about e^-708).
    #[default]
    Method0,
    /// Zero-match orders get epsilon (0.1) matches.
    Method1,
    /// Add one to matches and totals of orders 2 and up (Lin and Och).
    Method2,
    /// NIST geometric sequence: the k-th zero order gets 1/2^k matches.
    Method3,
    /// Like method 3, scaled by 5/ln(hypothesis length).
    Method4,
    /// Average of the n-1, n and n+1 precisions.
    Method5,
    /// Interpolation with a prior (alpha 5). Undefined (NaN) when the trigram
    /// precision is 0, where nltk raises `AssertionError`.
    Method6,
    /// Method 4, then method 5.
    Method7,
}

impl NltkSmoothing {
    /// All methods, in order.
    pub const ALL: [NltkSmoothing; 8] = [
        Self::Method0,
        Self::Method1,
        Self::Method2,
        Self::Method3,
        Self::Method4,
        Self::Method5,
        Self::Method6,
        Self::Method7,
    ];

    /// The method number (0 to 7).
    pub fn number(self) -> usize {
        Self::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }
}

const EPSILON: f64 = 0.1;
const ALPHA: f64 = 5.0;
const K: f64 = 5.0;

/// One precision as nltk keeps it: an unreduced fraction until smoothing
/// turns it into a float.
#[derive(Debug, Clone, Copy)]
struct Precision {
    numerator: f64,
    denominator: f64,
}

impl Precision {
    fn value(self) -> f64 {
        self.numerator / self.denominator
    }

    fn float(v: f64) -> Self {
        Self {
            numerator: v,
            denominator: 1.0,
        }
    }
}

fn method4(p: &mut [Precision], hyp_len: usize) {
    let mut k = 1;
    for pi in p.iter_mut() {
        if pi.numerator == 0.0 && hyp_len > 1 {
            let numerator = 1.0 / (2f64.powi(k) * K / (hyp_len as f64).ln());
            *pi = Precision::float(numerator / pi.denominator);
            k += 1;
        }
    }
}

fn method5(p: &mut [Precision], last: Option<&Segment>) {
    // The precision of order 5 (whatever the max order), for the last segment.
    let extra = match last {
        Some(segment) => Precision {
            numerator: segment.clipped_matches(5)[4] as f64,
            denominator: (segment.hyp.len().saturating_sub(4)).max(1) as f64,
        },
        None => Precision {
            numerator: 0.0,
            denominator: 1.0,
        },
    };
    let original: Vec<f64> = p
        .iter()
        .map(|x| x.value())
        .chain(std::iter::once(extra.value()))
        .collect();
    let mut previous = original[0] + 1.0;
    for (i, pi) in p.iter_mut().enumerate() {
        let averaged = (previous + original[i] + original[i + 1]) / 3.0;
        *pi = Precision::float(averaged);
        previous = averaged;
    }
}

fn method6(p: &mut [Precision], last: Option<&Segment>) -> bool {
    if p.len() < 3 || p[2].numerator == 0.0 {
        return false;
    }
    let hyp_len = last.map_or(0, |segment| segment.hyp.len());
    for i in 2..p.len() {
        let (p2, p1) = (p[i - 2].value(), p[i - 1].value());
        let pi0 = if p2 == 0.0 { 0.0 } else { p1 * p1 / p2 };
        let m = p[i].numerator;
        let l = hyp_len.saturating_sub(i) as f64;
        p[i] = Precision::float((m + ALPHA * pi0) / (l + ALPHA));
    }
    true
}

/// nltk BLEU on summed statistics; `last` is the last segment.
pub(super) fn bleu(s: &NgramStats, smoothing: NltkSmoothing, last: Option<&Segment>) -> f64 {
    let n = s.matches.len();
    let (c, r) = (s.hyp_len as f64, s.ref_len_closest as f64);
    let bp = if c > r {
        1.0
    } else if c == 0.0 {
        0.0
    } else {
        (1.0 - r / c).exp()
    };
    let mut p: Vec<Precision> = (0..n)
        .map(|i| Precision {
            numerator: s.matches[i] as f64,
            denominator: s.nltk_totals[i] as f64,
        })
        .collect();
    if s.matches.first().copied().unwrap_or(0) == 0 {
        return 0.0;
    }
    match smoothing {
        NltkSmoothing::Method0 => {
            for pi in &mut p {
                if pi.numerator == 0.0 {
                    *pi = Precision::float(f64::MIN_POSITIVE);
                }
            }
        }
        NltkSmoothing::Method1 => {
            for pi in &mut p {
                if pi.numerator == 0.0 {
                    *pi = Precision::float(EPSILON / pi.denominator);
                }
            }
        }
        NltkSmoothing::Method2 => {
            for pi in p.iter_mut().skip(1) {
                *pi = Precision {
                    numerator: pi.numerator + 1.0,
                    denominator: pi.denominator + 1.0,
                };
            }
        }
        NltkSmoothing::Method3 => {
            let mut k = 1;
            for pi in &mut p {
                if pi.numerator == 0.0 {
                    *pi = Precision::float(1.0 / (2f64.powi(k) * pi.denominator));
                    k += 1;
                }
            }
        }
        NltkSmoothing::Method4 => method4(&mut p, s.hyp_len),
        NltkSmoothing::Method5 => method5(&mut p, last),
        NltkSmoothing::Method6 => {
            if !method6(&mut p, last) {
                return f64::NAN;
            }
        }
        NltkSmoothing::Method7 => {
            method4(&mut p, s.hyp_len);
            method5(&mut p, last);
        }
    }
    let w = 1.0 / n as f64;
    let log_sum: f64 = p
        .iter()
        .map(|x| x.value())
        .filter(|v| *v > 0.0)
        .map(|v| w * v.ln())
        .sum();
    bp * log_sum.exp()
}
