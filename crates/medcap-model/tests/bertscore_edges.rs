//! BERTScore's edge rules against bert-score 0.3.13 itself
//! (`data-fixtures/metrics/bertscore_edges.json`, made by
//! `gen_bertscore_edges.py`), with the all-MiniLM-L6-v2 model that
//! `cargo xtask setup` installs: a side without idf weight is NaN and F1 is
//! 0; the tokenizer's declared `model_max_length` truncates; bert-score's
//! batch padding is reproduced at each batch size, and the default is its
//! batch-size-1 value. Within 1e-6.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::metrics_common as common;

use std::path::Path;

use common::{assert_no_mismatch, model_dir, token_ids};
use medcap_metrics::bertscore::{BertScoreOptions, BertScoreValue, bert_score_with};
use medcap_model::bertscore::BertScorer;
use medcap_model::tch::Device;
use medcap_model::text_encoder::BertTextEncoder;
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;

fn edges() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data-fixtures/metrics/bertscore_edges.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// References as lists: a plain string is one reference.
fn reference_lists(v: &Value) -> Vec<Vec<String>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| match r {
            Value::String(s) => vec![s.clone()],
            other => strings(other),
        })
        .collect()
}

/// Compares P, R, F with bert-score's (null is NaN).
fn compare(label: &str, got: &[BertScoreValue], want: &Value, failures: &mut Vec<String>) {
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{label}");
    for (i, (s, w)) in got.iter().zip(want).enumerate() {
        for ((name, value), expected) in [("P", s.precision), ("R", s.recall), ("F", s.f1)]
            .iter()
            .zip(w.as_array().unwrap())
        {
            let ok = match expected.as_f64() {
                None => value.is_nan(),
                Some(e) => (value - e).abs() <= TOLERANCE,
            };
            if !ok {
                failures.push(format!("{label} pair {i} {name}: {value} vs {expected}"));
            }
        }
    }
}

fn score(
    scorer: &BertScorer,
    cands: &[String],
    refs: &[Vec<String>],
    idf: bool,
    batch_size: Option<usize>,
) -> medcap_metrics::bertscore::BertScores {
    let cands: Vec<&str> = cands.iter().map(String::as_str).collect();
    bert_score_with(scorer, &cands, refs, &BertScoreOptions { idf, batch_size }).unwrap()
}

#[test]
fn a_side_without_idf_weight_is_nan_and_f1_is_zero() {
    let g = edges();
    let nan = &g["nan_sides"];
    let layer = nan["layer"].as_u64().unwrap() as usize;
    let scorer = BertScorer::from_dir(&model_dir(), layer, Device::Cpu).unwrap();
    let mut failures = Vec::new();
    let mut nan_sides = 0;
    for (name, case) in nan["cases"].as_object().unwrap() {
        let (cands, refs) = (strings(&case["cands"]), reference_lists(&case["refs"]));
        // bert-score ran with its default batch size, 64.
        let got = score(&scorer, &cands, &refs, true, Some(64)).values;
        compare(name, &got, &case["prf"], &mut failures);
        nan_sides += got
            .iter()
            .map(|s| usize::from(s.precision.is_nan()) + usize::from(s.recall.is_nan()))
            .sum::<usize>();
    }
    assert_no_mismatch(&failures);
    // The cases cover NaN on each side, both, and through several references.
    assert!(nan_sides >= 7, "{nan_sides}");
}

/// A copy of the model directory whose tokenizer declares `max_len`.
fn model_with_max_length(dir: &Path, max_len: u64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
        }
    }
    let path = tmp.path().join("tokenizer_config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["model_max_length"] = max_len.into();
    std::fs::write(&path, config.to_string()).unwrap();
    tmp
}

#[test]
fn the_tokenizers_declared_model_max_length_truncates() {
    let g = edges();
    let t = &g["truncation"];
    let max_len = t["model_max_length"].as_u64().unwrap();
    let layer = t["layer"].as_u64().unwrap() as usize;
    let dir = model_with_max_length(&model_dir(), max_len);
    let encoder = BertTextEncoder::from_dir(dir.path(), layer, Device::Cpu).unwrap();
    assert_eq!(encoder.max_len() as u64, max_len);
    for (text, want) in t["tokens"].as_object().unwrap() {
        let want = token_ids(want);
        assert_eq!(encoder.tokenize(text).unwrap(), want, "{text}");
    }
    let scorer = BertScorer::from_dir(dir.path(), layer, Device::Cpu).unwrap();
    let (cands, refs) = (strings(&t["cands"]), reference_lists(&t["refs"]));
    let mut failures = Vec::new();
    for (key, idf) in [("plain", false), ("idf", true)] {
        let got = score(&scorer, &cands, &refs, idf, Some(64));
        compare(key, &got.values, &t[key], &mut failures);
        // Texts of more than max_len tokens under the model's own limit, counted once each.
        let full = BertTextEncoder::from_dir(&model_dir(), layer, Device::Cpu).unwrap();
        let mut texts: Vec<&String> = cands.iter().chain(refs.iter().flatten()).collect();
        texts.sort();
        texts.dedup();
        let long = texts
            .iter()
            .filter(|text| full.tokenize(text).unwrap().len() as u64 > max_len)
            .count();
        assert!(long >= 5, "{long}");
        assert_eq!(got.truncated_texts, long);
    }
    assert_no_mismatch(&failures);
    // The model's own limit (512) leaves these texts whole.
    let whole = BertScorer::from_dir(&model_dir(), layer, Device::Cpu).unwrap();
    assert_eq!(score(&whole, &cands, &refs, false, None).truncated_texts, 0);
}

#[test]
fn bert_scores_batches_are_reproduced_and_the_default_is_batch_independent() {
    let g = edges();
    let b = &g["batches"];
    let layer = b["layer"].as_u64().unwrap() as usize;
    let scorer = BertScorer::from_dir(&model_dir(), layer, Device::Cpu).unwrap();
    let (cands, refs) = (strings(&b["cands"]), reference_lists(&b["refs"]));
    let mut failures = Vec::new();
    for (key, want) in b["scores"].as_object().unwrap() {
        let idf = key.starts_with("idf");
        let size: usize = key.rsplit("batch").next().unwrap().parse().unwrap();
        let got = score(&scorer, &cands, &refs, idf, Some(size));
        compare(key, &got.values, want, &mut failures);
        if size == 1 {
            let default = score(&scorer, &cands, &refs, idf, None);
            compare(
                &format!("{key} (default)"),
                &default.values,
                want,
                &mut failures,
            );
        }
    }
    assert_no_mismatch(&failures);
    // Batching matters on this set: bert-score's values at 64 differ from those at 1.
    let at = |k: &str| b["scores"][k].as_array().unwrap().clone();
    let differing = at("plain_batch1")
        .iter()
        .zip(at("plain_batch64"))
        .filter(|(a, c)| (a[2].as_f64().unwrap() - c[2].as_f64().unwrap()).abs() > 1e-4)
        .count();
    assert!(differing > 10, "{differing}");
}
