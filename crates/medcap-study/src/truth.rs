//! The true findings of synthetic figures (`synthetic_truth.jsonl`, written
//! by medcap-dataset's generator) as the findings labeller's observations,
//! so that captions can be scored against what a figure really shows, not
//! only against its reference caption.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use medcap_dataset::synth::TruthRecord;
use medcap_dataset::synth::{Device, Finding, Side as TruthSide};
use medcap_metrics::findings::scores::{FindingCounts, findings_f1};
use medcap_metrics::findings::{Observation, Side};
use serde::{Deserialize, Serialize};

use crate::error::{StudyError, io};

/// A figure's findings: observations with their side where the finding has
/// one (devices without a stated side have none). A chest radiograph without
/// a finding, or with devices only, is No Finding.
pub fn truth_findings(record: &TruthRecord) -> BTreeSet<(Observation, Option<Side>)> {
    let side = |s: TruthSide| {
        Some(match s {
            TruthSide::Left => Side::Left,
            TruthSide::Right => Side::Right,
        })
    };
    let mut set = BTreeSet::new();
    for f in &record.findings {
        set.insert(match f {
            Finding::Nodule { side: s, .. } | Finding::Mass { side: s, .. } => {
                (Observation::LungLesion, side(*s))
            }
            Finding::PleuralEffusion { side: s, .. } => (Observation::PleuralEffusion, side(*s)),
            Finding::Pneumothorax { side: s } => (Observation::Pneumothorax, side(*s)),
            Finding::Cardiomegaly { .. } => (Observation::Cardiomegaly, None),
            Finding::Consolidation { side: s, .. } => (Observation::Consolidation, side(*s)),
            Finding::Line {
                device, side: s, ..
            } => match device {
                // Captions name the side of these two only.
                Device::CentralLine | Device::ChestTube => (Observation::SupportDevices, side(*s)),
                Device::EndotrachealTube | Device::NasogastricTube => {
                    (Observation::SupportDevices, None)
                }
            },
        });
    }
    if set.iter().all(|(o, _)| *o == Observation::SupportDevices) {
        set.insert((Observation::NoFinding, None));
    }
    set
}

/// One caption's findings against its figure's true findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthScore {
    /// Findings F1 at observation level (Table 1's "Findings F1 vs truth").
    pub f1: f64,
    /// Counts of findings at observation level, for micro averages. No
    /// Finding is left out of the counts: a caption that names nothing would
    /// otherwise score on every normal figure.
    pub observations: FindingCounts,
    /// Counts of findings with their side (a finding named on the wrong
    /// side is both a false positive and a false negative), No Finding left out.
    pub with_sides: FindingCounts,
    /// `with_sides` split by observation, for each observation the caption
    /// or the figure has (No Finding left out): which findings a model
    /// names, misses or invents.
    #[serde(default)]
    pub by_observation: BTreeMap<Observation, FindingCounts>,
}

impl TruthScore {
    /// Scores `caption`'s findings (with sides where the caption gives them)
    /// against `truth` ([`truth_findings`]).
    pub fn of(
        caption: &BTreeSet<(Observation, Option<Side>)>,
        truth: &BTreeSet<(Observation, Option<Side>)>,
    ) -> Self {
        let (c, t) = (without_sides(caption), without_sides(truth));
        let findings = |set: &BTreeSet<(Observation, Option<Side>)>| {
            set.iter()
                .filter(|(o, _)| *o != Observation::NoFinding)
                .copied()
                .collect::<BTreeSet<_>>()
        };
        let (named, present) = (findings(caption), findings(truth));
        let of_observation = |set: &BTreeSet<(Observation, Option<Side>)>, o: Observation| {
            set.iter()
                .filter(|(x, _)| *x == o)
                .copied()
                .collect::<BTreeSet<_>>()
        };
        let by_observation = named
            .iter()
            .chain(&present)
            .map(|(o, _)| *o)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|o| {
                let counts =
                    FindingCounts::of(&of_observation(&named, o), &of_observation(&present, o));
                (o, counts)
            })
            .collect();
        Self {
            f1: findings_f1(&c, &t),
            observations: FindingCounts::of(&findings(&c), &findings(&t)),
            with_sides: FindingCounts::of(&named, &present),
            by_observation,
        }
    }
}

/// `set` without sides (observation level).
pub fn without_sides(
    set: &BTreeSet<(Observation, Option<Side>)>,
) -> BTreeSet<(Observation, Option<Side>)> {
    set.iter().map(|(o, _)| (*o, None)).collect()
}

/// Reads a truth side file into a map by figure id.
pub fn read_truth(path: &Path) -> Result<HashMap<String, TruthRecord>, StudyError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let record: TruthRecord =
                serde_json::from_str(line).map_err(|e| StudyError::Stage {
                    stage: "eval",
                    reason: format!("{}: line {}: {e}", path.display(), i + 1),
                })?;
            Ok((record.id.clone(), record))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_split_by_observation_with_sides() {
        let caption = BTreeSet::from([
            (Observation::Pneumothorax, Some(Side::Left)),
            (Observation::PleuralEffusion, Some(Side::Right)),
            (Observation::NoFinding, None),
        ]);
        let truth = BTreeSet::from([
            (Observation::Pneumothorax, Some(Side::Right)),
            (Observation::PleuralEffusion, Some(Side::Right)),
            (Observation::Cardiomegaly, None),
        ]);
        let score = TruthScore::of(&caption, &truth);
        let counts = |tp, fp, fn_| FindingCounts { tp, fp, fn_ };
        assert_eq!(
            score.by_observation,
            BTreeMap::from([
                // Named on the wrong side: both invented and missed.
                (Observation::Pneumothorax, counts(0, 1, 1)),
                (Observation::PleuralEffusion, counts(1, 0, 0)),
                (Observation::Cardiomegaly, counts(0, 0, 1)),
            ])
        );
        // The split adds up to the pooled counts.
        let total = score
            .by_observation
            .values()
            .fold(FindingCounts::default(), |a, b| a + *b);
        assert_eq!(total, score.with_sides);
        assert_eq!(score.with_sides, counts(1, 1, 2));
    }
}
