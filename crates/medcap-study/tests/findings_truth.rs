//! The findings labeller on the reference captions of 2,000 synthetic chest
//! radiographs recovers the findings drawn into them (the truth side file):
//! micro-F1 at least 0.98 by observation, and the sides of lateral findings.
#![allow(clippy::unwrap_used, missing_docs)]

use medcap_dataset::clean::clean_caption;
use medcap_dataset::synth::{SynthConfig, truth_and_captions};
use medcap_metrics::findings::Labeller;
use medcap_metrics::findings::scores::{FindingsOptions, Prf};
use medcap_study::truth::{truth_findings, without_sides};

#[test]
fn the_labeller_recovers_the_true_findings_of_synthetic_references() {
    let figures = truth_and_captions(&SynthConfig {
        figures: 2_000,
        seed: 99,
        non_chest_share: 0.0,
    });
    let labeller = Labeller::default();
    let options = FindingsOptions::default();
    let with_side = FindingsOptions {
        with_side: true,
        ..options
    };
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    let (mut side_tp, mut side_fp, mut side_fn) = (0, 0, 0);
    let mut misses = Vec::new();
    let mut side_misses = Vec::new();
    let mut captions = 0;
    for (truth, caption) in &figures {
        let Some(caption) = caption else { continue };
        let reference = clean_caption(caption);
        if reference.is_empty() {
            continue;
        }
        captions += 1;
        let labels = labeller.label(&reference);
        let want = truth_findings(truth);
        let got = with_side.findings(&labels);
        let (w, g) = (without_sides(&want), without_sides(&got));
        let hit = w.intersection(&g).count();
        tp += hit;
        fp += g.len() - hit;
        fn_ += w.len() - hit;
        if w != g && misses.len() < 10 {
            misses.push(format!("{reference}\n    truth {w:?}\n    got   {g:?}"));
        }
        let hit = want.intersection(&got).count();
        if want != got && side_misses.len() < 8 {
            side_misses.push(format!(
                "{reference}\n    truth {want:?}\n    got   {got:?}"
            ));
        }
        side_tp += hit;
        side_fp += got.len() - hit;
        side_fn += want.len() - hit;
    }
    let observation = Prf::from_counts(tp, fp, fn_);
    let sided = Prf::from_counts(side_tp, side_fp, side_fn);
    eprintln!(
        "{captions} captions: observation micro-F1 {:.4} (P {:.4}, R {:.4}); with sides {:.4}; first misses:\n{}\nfirst side misses:\n{}",
        observation.f1,
        observation.precision,
        observation.recall,
        sided.f1,
        misses.join("\n"),
        side_misses.join("\n")
    );
    assert!(captions > 1_900, "{captions}");
    assert!(observation.f1 >= 0.98, "micro-F1 {}", observation.f1);
    assert!(sided.f1 >= 0.98, "micro-F1 with sides {}", sided.f1);
}

/// The study's own scoring against the truth (`eval::truth_scores`, pooled
/// as the report pools it) gives the reference captions the same scores:
/// a reference names its figure's findings on their sides.
#[test]
fn truth_scores_of_the_references_are_perfect_with_sides() {
    use std::collections::HashMap;

    use medcap_metrics::findings::scores::FindingCounts;
    use medcap_study::eval::{CaptionRow, truth_scores};

    let figures = truth_and_captions(&SynthConfig {
        figures: 600,
        seed: 7,
        non_chest_share: 0.0,
    });
    let labeller = Labeller::default();
    let mut rows = Vec::new();
    let mut truth = HashMap::new();
    for (record, caption) in &figures {
        let Some(caption) = caption else { continue };
        let reference = clean_caption(caption);
        rows.push(CaptionRow {
            id: record.id.clone(),
            image_path: String::new(),
            reference: reference.clone(),
            caption: reference,
        });
        truth.insert(record.id.clone(), record.clone());
    }
    let labels: Vec<_> = rows.iter().map(|r| labeller.label(&r.caption)).collect();
    let scores: Vec<_> = truth_scores(&rows, &labels, &truth)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let sided: FindingCounts = scores.iter().map(|s| s.with_sides).sum();
    let observations: FindingCounts = scores.iter().map(|s| s.observations).sum();
    assert!(sided.tp > 500, "{sided:?}");
    assert!(Prf::from(sided).f1 >= 0.98, "{sided:?}");
    assert!(Prf::from(observations).f1 >= 0.98, "{observations:?}");
    // A caption with the sides swapped scores 0 with sides, not at observation level.
    let swapped: Vec<_> = rows
        .iter()
        .map(|r| {
            let text = r
                .caption
                .replace("left", "LEFT")
                .replace("right", "left")
                .replace("LEFT", "right");
            labeller.label(&text)
        })
        .collect();
    let scores: Vec<_> = truth_scores(&rows, &swapped, &truth)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let sided: FindingCounts = scores.iter().map(|s| s.with_sides).sum();
    let observations: FindingCounts = scores.iter().map(|s| s.observations).sum();
    assert!(Prf::from(sided).f1 < 0.35, "{sided:?}");
    assert!(Prf::from(observations).f1 >= 0.98, "{observations:?}");
}
