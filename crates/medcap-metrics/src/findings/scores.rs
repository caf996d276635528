//! Clinical-efficacy scores: how well generated captions' findings agree
//! with the references' (or with a figure's known truth), as radiology
//! report generation reports them (precision, recall and F1 of the positive
//! labels per observation, micro and macro averages over the 14 observations
//! and over the five of CheXpert's competition), and a per-caption findings
//! F1 that the bootstrap and paired tests treat like any other metric.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Label, Labels, Observation, Side};

/// How uncertain labels count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UncertainPolicy {
    /// Only positive labels are findings (uncertain ones count as absent):
    /// the common convention of clinical-efficacy scores.
    #[default]
    PositiveOnly,
    /// Uncertain labels count as findings too.
    UncertainAsPositive,
}

/// Options of the findings scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FindingsOptions {
    /// How uncertain labels count.
    pub uncertain: UncertainPolicy,
    /// A finding must also be on the same side (per-caption F1 only; a
    /// mention without a side matches only one without a side).
    pub with_side: bool,
}

impl FindingsOptions {
    fn counts(&self, label: Option<Label>) -> bool {
        matches!(
            (label, self.uncertain),
            (Some(Label::Positive), _)
                | (Some(Label::Uncertain), UncertainPolicy::UncertainAsPositive)
        )
    }

    /// The findings of one text under these options.
    pub fn findings(&self, labels: &Labels) -> BTreeSet<(Observation, Option<Side>)> {
        let mut set = BTreeSet::new();
        for o in Observation::ALL {
            if !self.counts(labels.get(o)) {
                continue;
            }
            let sides = if self.with_side {
                labels.sides(o)
            } else {
                Vec::new()
            };
            if sides.is_empty() {
                set.insert((o, None));
            } else {
                set.extend(sides.into_iter().map(|s| (o, Some(s))));
            }
        }
        set
    }
}

/// Precision, recall and F1.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Prf {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

impl Prf {
    /// From true positives, false positives and false negatives (0 where a
    /// denominator is 0, as scikit-learn's `zero_division=0`).
    pub fn from_counts(tp: usize, fp: usize, fn_: usize) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Self {
            precision,
            recall,
            f1,
        }
    }
}

/// Pooled counts of findings named against findings present, for micro
/// averages over a caption set (see [`Prf::from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct FindingCounts {
    /// Named and present.
    pub tp: usize,
    /// Named, not present.
    pub fp: usize,
    /// Present, not named.
    pub fn_: usize,
}

impl FindingCounts {
    /// The counts of one caption's findings against a reference set.
    pub fn of(
        hypothesis: &BTreeSet<(Observation, Option<Side>)>,
        reference: &BTreeSet<(Observation, Option<Side>)>,
    ) -> Self {
        let tp = hypothesis.intersection(reference).count();
        Self {
            tp,
            fp: hypothesis.len() - tp,
            fn_: reference.len() - tp,
        }
    }
}

impl std::ops::Add for FindingCounts {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            tp: self.tp + other.tp,
            fp: self.fp + other.fp,
            fn_: self.fn_ + other.fn_,
        }
    }
}

impl std::iter::Sum for FindingCounts {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| a + b)
    }
}

impl From<FindingCounts> for Prf {
    /// The micro average of pooled counts.
    fn from(c: FindingCounts) -> Self {
        Self::from_counts(c.tp, c.fp, c.fn_)
    }
}

/// The findings F1 of one caption against one reference's findings: 1 when
/// both name none, 0 when only one does.
pub fn findings_f1(
    hypothesis: &BTreeSet<(Observation, Option<Side>)>,
    reference: &BTreeSet<(Observation, Option<Side>)>,
) -> f64 {
    if hypothesis.is_empty() && reference.is_empty() {
        return 1.0;
    }
    Prf::from(FindingCounts::of(hypothesis, reference)).f1
}

/// The reference that `hypothesis`'s findings match best, by findings F1
/// (the first on ties, like BERTScore's and ROUGE's multi-reference rule):
/// its index and the F1; `None` without references.
pub fn best_reference(
    hypothesis: &Labels,
    references: &[Labels],
    options: FindingsOptions,
) -> Option<(usize, f64)> {
    let h = options.findings(hypothesis);
    let mut best: Option<(usize, f64)> = None;
    for (i, r) in references.iter().enumerate() {
        let f1 = findings_f1(&h, &options.findings(r));
        if best.is_none_or(|(_, b)| f1 > b) {
            best = Some((i, f1));
        }
    }
    best
}

/// One observation's scores over a caption set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ObservationScore {
    /// The observation.
    pub observation: Observation,
    /// Precision, recall, F1.
    #[serde(flatten)]
    pub prf: Prf,
    /// Captions whose reference has it.
    pub support: usize,
    /// Captions that name it.
    pub predicted: usize,
    /// Captions that name it and whose reference has it.
    pub true_positives: usize,
}

/// Clinical-efficacy scores of a caption set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClinicalEfficacy {
    /// The options they were computed with.
    pub options: FindingsOptions,
    /// Per observation, in column order.
    pub per_observation: Vec<ObservationScore>,
    /// Micro average over the 14 (pooled counts).
    pub micro_14: Prf,
    /// Macro average over the 14 (mean of per-observation values).
    pub macro_14: Prf,
    /// Micro average over the five of [`Observation::TOP5`].
    pub micro_5: Prf,
    /// Macro average over the five.
    pub macro_5: Prf,
}

/// Scores `hypotheses[i]` against `references[i]` (one reference each: pick
/// the best-matching one beforehand when there are several).
pub fn clinical_efficacy(
    hypotheses: &[Labels],
    references: &[&Labels],
    options: FindingsOptions,
) -> ClinicalEfficacy {
    let per_observation: Vec<ObservationScore> = Observation::ALL
        .iter()
        .map(|&o| {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for (h, r) in hypotheses.iter().zip(references) {
                match (options.counts(h.get(o)), options.counts(r.get(o))) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    (false, false) => {}
                }
            }
            ObservationScore {
                observation: o,
                prf: Prf::from_counts(tp, fp, fn_),
                support: tp + fn_,
                predicted: tp + fp,
                true_positives: tp,
            }
        })
        .collect();
    let average = |keep: &dyn Fn(Observation) -> bool| {
        let chosen: Vec<&ObservationScore> = per_observation
            .iter()
            .filter(|s| keep(s.observation))
            .collect();
        let (tp, fp, fn_) = chosen.iter().fold((0, 0, 0), |(tp, fp, fn_), s| {
            let t = s.true_positives;
            (tp + t, fp + (s.predicted - t), fn_ + (s.support - t))
        });
        let n = chosen.len().max(1) as f64;
        let mean = |f: fn(&Prf) -> f64| chosen.iter().map(|s| f(&s.prf)).sum::<f64>() / n;
        (
            Prf::from_counts(tp, fp, fn_),
            Prf {
                precision: mean(|p| p.precision),
                recall: mean(|p| p.recall),
                f1: mean(|p| p.f1),
            },
        )
    };
    let (micro_14, macro_14) = average(&|_| true);
    let (micro_5, macro_5) = average(&|o| Observation::TOP5.contains(&o));
    ClinicalEfficacy {
        options,
        per_observation,
        micro_14,
        macro_14,
        micro_5,
        macro_5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Labeller;

    #[test]
    fn the_best_reference_wins_and_ties_keep_the_first() {
        let l = Labeller::built_in();
        let hyp = l.label("Left pleural effusion and cardiomegaly.");
        let refs = [
            l.label("Right pneumothorax."),
            l.label("Cardiomegaly."),
            l.label("Cardiomegaly and a left pleural effusion."),
            l.label("Pleural effusion with cardiomegaly."),
        ];
        let options = FindingsOptions::default();
        assert_eq!(best_reference(&hyp, &refs, options), Some((2, 1.0)));
        let (i, f1) = best_reference(&hyp, &refs[..2], options).unwrap_or_default();
        assert_eq!(i, 1);
        assert!((f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(best_reference(&hyp, &[], options), None);
    }
}
