//! BLEURT against bleurt-pytorch 0.0.1 on transformers 4.57.1: a small
//! random BLEURT-20-style checkpoint (`data-fixtures/bleurt`, made by
//! `gen.py` there: SentencePiece unigram tokenizer with nmt_nfkc
//! normalization, embeddings narrower than the layers) on pairs built to hit
//! every rule: the ids and token types of the official call exactly
//! (normalization, whitespace, [CLS] in a text, `longest_first` truncation
//! at 512), and the logits to 1e-6 in one batch, in batches of 8 and alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_model::bleurt::Bleurt;
use medcap_model::tch::Device;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/bleurt")
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn bleurt_pairs_encode_as_the_official_call() {
    let g = golden();
    assert_eq!(g["tokenizer_class"], "BleurtSPTokenizer");
    let bleurt = Bleurt::from_dir(&fixtures().join("tiny-bleurt"), Device::Cpu).unwrap();
    assert_eq!(bleurt.max_len(), 512);
    let mut failures = Vec::new();
    for pair in g["pairs"].as_array().unwrap() {
        let (r, c) = (
            pair["reference"].as_str().unwrap(),
            pair["candidate"].as_str().unwrap(),
        );
        let (got_ids, got_types) = bleurt.encode_pair(r, c).unwrap();
        if got_ids != ids(&pair["ids"]) || got_types != ids(&pair["types"]) {
            failures.push(format!(
                "{r:?} / {c:?}:\n  {got_ids:?} {got_types:?}\n  {} {}",
                pair["ids"], pair["types"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bleurt_scores_equal_bleurt_pytorch_in_any_batching() {
    let g = golden();
    let bleurt = Bleurt::from_dir(&fixtures().join("tiny-bleurt"), Device::Cpu).unwrap();
    let pairs: Vec<(&str, &str)> = g["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["reference"].as_str().unwrap(),
                p["candidate"].as_str().unwrap(),
            )
        })
        .collect();
    for (batch, key) in [
        (pairs.len(), "logits_one_batch"),
        (8, "logits_batches_of_8"),
        (1, "logits_one_batch"),
    ] {
        let got = bleurt.score(&pairs, batch).unwrap();
        for (i, (a, b)) in got.iter().zip(g[key].as_array().unwrap()).enumerate() {
            let b = b.as_f64().unwrap();
            assert!((a - b).abs() <= 1e-6, "pair {i}, batch {batch}: {a} vs {b}");
        }
    }
}

/// ImageCLEFmedical Caption's BLEURT component against 2025's and 2026's
/// official `compute_bleurt`, run with the tiny BLEURT in place of
/// BLEURT-20-D12 (`data-fixtures/imageclef/models.json`, made by
/// `gen_models.py` there): preprocessed captions, no empty-caption rule,
/// per pair and the official mean to 1e-6; 2023 has no BLEURT.
#[test]
fn imageclef_bleurt_equals_the_official_evaluators() {
    use medcap_metrics::imageclef::Suite;

    let bleurt = Bleurt::from_dir(&fixtures().join("tiny-bleurt"), Device::Cpu).unwrap();
    let mut years = 0;
    for c in crate::common::imageclef_model_cases() {
        let (suite, case, rows) = (c.suite, &c.record, c.rows());
        let Some(got) = suite.bleurt(&bleurt, &rows) else {
            assert_eq!(suite, Suite::Y2023);
            assert!(case.get("bleurt").is_none());
            continue;
        };
        let got = got.unwrap();
        years += 1;
        for (i, (a, b)) in got
            .iter()
            .zip(case["bleurt"].as_array().unwrap())
            .enumerate()
        {
            let b = b.as_f64().unwrap();
            assert!((a - b).abs() <= 1e-6, "{suite} pair {i}: {a} vs {b}");
        }
        let mean = got.iter().sum::<f64>() / got.len() as f64;
        let official = case["bleurt_official_mean"].as_f64().unwrap();
        assert!(
            (mean - official).abs() <= 1e-6,
            "{suite}: {mean} vs {official}"
        );
    }
    assert_eq!(years, 2);
}
