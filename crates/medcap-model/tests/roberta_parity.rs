//! BERTScore with a RoBERTa model against bert-score 0.3.13 itself: a small
//! random RoBERTa with a byte-level BPE tokenizer trained for the purpose
//! (`data-fixtures/roberta`, made by `gen.py` there), on 306 caption pairs
//! (empty texts, punctuation, non-ASCII, texts past the 40-token limit):
//! token ids exactly, P/R/F plain, with idf and rescaled to 1e-6.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::metrics_common as common;

use std::path::{Path, PathBuf};

use common::{assert_no_mismatch, token_ids};
use medcap_metrics::bertscore::{Baseline, BertScoreOptions, BertScoreValue, bert_score_with};
use medcap_model::bertscore::BertScorer;
use medcap_model::tch::Device;
use medcap_model::text_encoder::BertTextEncoder;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/roberta")
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap()).unwrap()
}

fn layer(g: &Value) -> usize {
    g["layer"].as_u64().unwrap() as usize
}

#[test]
fn byte_level_bpe_ids_equal_bert_scores_with_and_without_tokenizer_json() {
    let g = golden();
    let model = fixtures().join("tiny-roberta");
    // The same directory without tokenizer.json: vocab.json and merges.txt only.
    let bare = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&model).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "tokenizer.json" {
            std::fs::copy(entry.path(), bare.path().join(entry.file_name())).unwrap();
        }
    }
    let mut failures = Vec::new();
    for dir in [model.as_path(), bare.path()] {
        let encoder = BertTextEncoder::from_dir(dir, layer(&g), Device::Cpu).unwrap();
        assert_eq!(
            encoder.max_len() as u64,
            g["model_max_length"].as_u64().unwrap()
        );
        for (text, want) in g["tokens"].as_object().unwrap() {
            let got = encoder.tokenize(text).unwrap();
            if got != token_ids(want) {
                failures.push(format!("{}: {text:?}: {got:?} vs {want}", dir.display()));
            }
        }
    }
    assert_no_mismatch(&failures);
}

fn compare(label: &str, got: &[BertScoreValue], want: &Value, failures: &mut Vec<String>) {
    for (i, (s, w)) in got.iter().zip(want.as_array().unwrap()).enumerate() {
        for (value, expected) in [s.precision, s.recall, s.f1]
            .iter()
            .zip(w.as_array().unwrap())
        {
            let ok = match expected.as_f64() {
                None => value.is_nan(),
                Some(e) => (value - e).abs() <= 1e-6,
            };
            if !ok {
                failures.push(format!("{label} pair {i}: {value} vs {expected}"));
            }
        }
    }
}

#[test]
fn scores_equal_bert_score_plain_idf_and_rescaled() {
    let g = golden();
    let cands: Vec<&str> = g["cands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let refs: Vec<Vec<&str>> = g["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect()
        })
        .collect();
    let scorer =
        BertScorer::from_dir(&fixtures().join("tiny-roberta"), layer(&g), Device::Cpu).unwrap();
    let batch_size = Some(g["batch_size"].as_u64().unwrap() as usize);
    let mut failures = Vec::new();
    let plain = bert_score_with(
        &scorer,
        &cands,
        &refs,
        &BertScoreOptions {
            idf: false,
            batch_size,
        },
    )
    .unwrap();
    assert!(plain.truncated_texts >= 4, "{}", plain.truncated_texts);
    compare("plain", &plain.values, &g["plain"], &mut failures);
    let idf = bert_score_with(
        &scorer,
        &cands,
        &refs,
        &BertScoreOptions {
            idf: true,
            batch_size,
        },
    )
    .unwrap();
    compare("idf", &idf.values, &g["idf"], &mut failures);
    let text = std::fs::read_to_string(fixtures().join("baseline.tsv")).unwrap();
    let baseline = Baseline::from_csv(&text, layer(&g)).unwrap();
    let rescaled: Vec<BertScoreValue> = plain.values.iter().map(|s| baseline.rescale(*s)).collect();
    compare("rescaled", &rescaled, &g["rescaled"], &mut failures);
    assert_no_mismatch(&failures);
}

#[test]
fn an_unsupported_model_type_names_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("tiny-roberta")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["model_type"] = "deberta-v2".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = BertTextEncoder::from_dir(dir.path(), 1, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("deberta-v2") && err.contains("bert, roberta") && err.contains("config.json"),
        "{err}"
    );
}

/// roberta-large's exact geometry (24 layers, width 1024, layer 17), random
/// weights, which `cargo xtask parity --roberta-large` makes with
/// transformers (`gen.py --large`, about 1.4 GB under `target/`) and points
/// `MEDCAP_ROBERTA_LARGE_DIR` at.
#[test]
#[ignore = "needs the roberta-large-size model that `cargo xtask parity --roberta-large` makes"]
fn roberta_large_geometry_matches() {
    let dir = PathBuf::from(
        std::env::var("MEDCAP_ROBERTA_LARGE_DIR")
            .expect("MEDCAP_ROBERTA_LARGE_DIR names the directory gen.py --large wrote"),
    );
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let cands = strings(&g["cands"]);
    let refs: Vec<Vec<String>> = g["refs"].as_array().unwrap().iter().map(strings).collect();
    let cand_refs: Vec<&str> = cands.iter().map(String::as_str).collect();
    let scorer = BertScorer::from_dir(&dir.join("model"), layer(&g), Device::Cpu).unwrap();
    let scores = bert_score_with(
        &scorer,
        &cand_refs,
        &refs,
        &BertScoreOptions {
            idf: false,
            batch_size: Some(g["batch_size"].as_u64().unwrap() as usize),
        },
    )
    .unwrap();
    let mut failures = Vec::new();
    compare(
        "roberta-large geometry",
        &scores.values,
        &g["plain"],
        &mut failures,
    );
    assert_no_mismatch(&failures);
}
