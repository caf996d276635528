//! AlignScore's alignment model against the AlignScore code itself
//! (yuh-zha/AlignScore `a0936d5` on transformers 4.57.1): a small random
//! checkpoint of its BERTAlignModel (`data-fixtures/alignscore`, made by
//! `gen.py` there and converted as README says): the inferencer's pair ids
//! exactly (`only_first` truncation at `model_max_length`) and its nli
//! probabilities to 1e-6.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_model::alignscore::AlignScoreModel;
use medcap_model::tch::Device;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/alignscore")
}

#[test]
fn alignscore_pairs_and_probabilities_equal_the_inferencer() {
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap())
            .unwrap();
    let model =
        AlignScoreModel::from_dir(&fixtures().join("tiny-alignscore"), Device::Cpu).unwrap();
    assert_eq!(
        model.max_len() as u64,
        g["model_max_length"].as_u64().unwrap()
    );
    let rows = g["pairs"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> = rows
        .iter()
        .map(|p| {
            (
                p["premise"].as_str().unwrap(),
                p["hypothesis"].as_str().unwrap(),
            )
        })
        .collect();
    for ((premise, hypothesis), row) in pairs.iter().zip(rows) {
        let want: Vec<u32> = row["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            model.encode_pair(premise, hypothesis).unwrap(),
            want,
            "{premise:?}"
        );
    }
    for batch in [32, 1] {
        let got = model.aligned(&pairs, batch).unwrap();
        for (value, row) in got.iter().zip(rows) {
            let want = row["aligned"].as_f64().unwrap();
            assert!(
                (value - want).abs() <= 1e-6,
                "{}: {value} vs {want}",
                row["premise"]
            );
        }
    }
    // A hypothesis that alone fills the window is refused, not cut.
    let long = "catheter ".repeat(200);
    let err = model
        .encode_pair("a premise", &long)
        .unwrap_err()
        .to_string();
    assert!(err.contains("leaves no room for its premise"), "{err}");
}

/// ImageCLEFmedical Caption's AlignScore component against 2025's and
/// 2026's official `compute_alignscore`, run with the tiny model in place
/// of AlignScore-base and nltk's Punkt with the fixture's parameters
/// (`data-fixtures/imageclef/models.json`): per pair to 1e-6; a pair empty
/// on both sides 1; a candidate without a sentence, where the official
/// code stops with a `ValueError`, 0 and counted; 2023 has none.
#[test]
fn imageclef_alignscore_equals_the_official_evaluators() {
    use medcap_metrics::imageclef::Suite;
    use medcap_metrics::punkt::{Punkt, PunktParameters};

    let model =
        AlignScoreModel::from_dir(&fixtures().join("tiny-alignscore"), Device::Cpu).unwrap();
    let punkt =
        Punkt::new(PunktParameters::from_dir(&fixtures().join("../punkt/punkt_tab")).unwrap());
    let mut years = 0;
    for c in crate::common::imageclef_model_cases() {
        let (suite, case, rows) = (c.suite, &c.record, c.rows());
        let Some(got) = suite.alignscore(&model, &punkt, &rows) else {
            assert_eq!(suite, Suite::Y2023);
            continue;
        };
        let got = got.unwrap();
        years += 1;
        let mut crashes = 0;
        for ((value, want), (reference, candidate)) in got
            .values
            .iter()
            .zip(case["align"].as_array().unwrap())
            .zip(&rows)
        {
            match want.as_f64() {
                Some(w) => assert!(
                    (value - w).abs() <= 1e-6,
                    "{suite}: {reference:?} / {candidate:?}: {value} vs {w}"
                ),
                None => {
                    crashes += 1;
                    assert!(
                        want["message"].as_str().unwrap().contains("torch.cat"),
                        "{want}"
                    );
                    assert!(candidate.trim().is_empty() && !reference.is_empty());
                    assert_eq!(*value, 0.0);
                }
            }
        }
        assert_eq!(got.without_sentences, crashes);
        assert!(crashes > 0);
    }
    assert_eq!(years, 2);
}
