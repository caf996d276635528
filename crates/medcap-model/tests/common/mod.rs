//! Helpers shared by the model tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `data-fixtures/blip`: tiny checkpoints, images, resized images and the
/// golden outputs of transformers and Pillow (`gen.py` beside them).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip")
}

/// One year's case of `data-fixtures/imageclef/models.json` (the official
/// evaluators run with tiny models): its record, and the (reference,
/// candidate) pairs as medcap reads the files, in the official order.
pub struct ImageclefCase {
    /// The suite.
    pub suite: medcap_metrics::imageclef::Suite,
    /// The ground truth's captions, in file order.
    pub truth: Vec<String>,
    /// `(reference, candidate)` per submitted id.
    pub pairs: Vec<(String, String)>,
    /// The record itself (official values, ids).
    pub record: serde_json::Value,
}

impl ImageclefCase {
    /// The pairs as borrowed strings.
    pub fn rows(&self) -> Vec<(&str, &str)> {
        self.pairs
            .iter()
            .map(|(r, c)| (r.as_str(), c.as_str()))
            .collect()
    }
}

/// Every case of `data-fixtures/imageclef/models.json`, read through
/// medcap-metrics' official readers.
pub fn imageclef_model_cases() -> Vec<ImageclefCase> {
    use medcap_metrics::imageclef::submission;

    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/imageclef/models.json");
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let suite = case["suite"].as_str().unwrap().parse().unwrap();
            let truth_text = case["ground_truth"].as_str().unwrap();
            let truth = submission::ground_truth(suite, truth_text).unwrap();
            let submitted = submission::submission(
                suite,
                case["submission"].as_str().unwrap(),
                &truth,
                truth_text,
            )
            .unwrap();
            let ids: Vec<&str> = submitted.iter().map(|(id, _)| id).collect();
            assert_eq!(
                serde_json::json!(ids),
                case["ids"],
                "the official order of {suite}"
            );
            ImageclefCase {
                suite,
                truth: truth.iter().map(|(_, c)| c.to_owned()).collect(),
                pairs: submitted
                    .iter()
                    .map(|(id, c)| (truth.get(id).unwrap().to_owned(), c.to_owned()))
                    .collect(),
                record: case.clone(),
            }
        })
        .collect()
}

/// Each of `golden["texts"]` (`text`, `ids`, `features`) through an
/// image–text encoder's tokenizer and text tower: the ids exactly, the
/// features to 1e-5, all texts in one batch and each alone.
pub fn assert_golden_texts(
    golden: &serde_json::Value,
    tokenize: impl Fn(&str) -> Vec<u32>,
    features: impl Fn(&[&str]) -> Vec<Vec<f64>>,
) {
    let cases = golden["texts"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|t| t["text"].as_str().unwrap()).collect();
    let batched = features(&texts);
    for (i, t) in cases.iter().enumerate() {
        let ids: Vec<u32> = t["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tokenize(texts[i]), ids, "{:?}", texts[i]);
        let want: Vec<f64> = t["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for (how, got) in [
            ("batched", batched[i].clone()),
            ("alone", features(&texts[i..=i])[0].clone()),
        ] {
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                got.len() == want.len() && worst <= 1e-5,
                "text {i} {how}: differs by {worst}"
            );
        }
    }
}
