//! ROUGE parity with rouge-score 0.1.2 (with and without its Porter stemmer)
//! on the 300 caption pairs of `data-fixtures/metrics/golden.json`.
#![allow(clippy::unwrap_used, missing_docs)]

use crate::common;

use common::assert_no_mismatch;

use medcap_metrics::rouge::{Rouge, RougeScores, Score};

#[test]
fn every_pair_every_type_precision_recall_and_f_match() {
    let golden = common::golden();
    let mut failures = Vec::new();
    let mut compared = 0;
    for row in golden["pairs"].as_array().unwrap() {
        let hyp = row["hyp"].as_str().unwrap();
        let refs: Vec<&str> = row["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        for (key, stemmer) in [("rouge", false), ("rouge_stem", true)] {
            let rouge = Rouge {
                stemmer,
                ..Rouge::default()
            };
            let got = if refs.len() > 1 {
                rouge.score_multi(hyp, &refs)
            } else {
                rouge.score(hyp, refs[0])
            };
            let pick = |name: &str, s: &RougeScores| -> Score {
                match name {
                    "rouge1" => s.rouge1,
                    "rouge2" => s.rouge2,
                    "rougeL" => s.rouge_l,
                    _ => s.rouge_lsum,
                }
            };
            for name in ["rouge1", "rouge2", "rougeL", "rougeLsum"] {
                let want = &row[key][name];
                let g = pick(name, &got);
                for (i, v) in [g.precision, g.recall, g.fmeasure].into_iter().enumerate() {
                    compared += 1;
                    let w = want[i].as_f64().unwrap();
                    if (v - w).abs() > 1e-9 {
                        failures.push(format!("{key} {name}[{i}] {hyp:?} vs {refs:?}: {v} != {w}"));
                    }
                }
            }
        }
    }
    assert!(compared > 7_000);
    assert_no_mismatch(&failures);
}
