//! BERTScore parity with bert-score 0.3.13 (transformers 4.57.1, torch
//! 2.11.0) on the 300 caption pairs of golden.json, with the all-MiniLM-L6-v2
//! model that `cargo xtask setup` installs (`MEDCAP_MINILM_DIR`), layer 5:
//! `data-fixtures/metrics/bertscore_golden.json`, made by `gen_bertscore.py`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::metrics_common as common;

use common::{assert_no_mismatch, golden, model_dir, token_ids};
use medcap_metrics::bertscore::bert_score;
use medcap_model::bertscore::{BertScorer, DEFAULT_LAYER};
use medcap_model::tch::Device;
use medcap_model::text_encoder::BertTextEncoder;

fn bertscore_golden() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data-fixtures/metrics/bertscore_golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn word_pieces_match_the_slow_bert_tokenizer() {
    let g = bertscore_golden();
    let encoder = BertTextEncoder::from_dir(&model_dir(), DEFAULT_LAYER, Device::Cpu).unwrap();
    let mut failures = Vec::new();
    for (text, want) in g["tokens"].as_object().unwrap() {
        let want = token_ids(want);
        let got = encoder.tokenize(text).unwrap();
        if got != want {
            failures.push(format!("{text:?}: {got:?} vs {want:?}"));
        }
    }
    assert_no_mismatch(&failures);
}

#[test]
fn precision_recall_f1_match_with_and_without_idf() {
    let (g, b) = (golden(), bertscore_golden());
    assert_eq!(b["layer"].as_u64(), Some(DEFAULT_LAYER as u64));
    let pairs = g["pairs"].as_array().unwrap();
    let hyps: Vec<&str> = pairs.iter().map(|p| p["hyp"].as_str().unwrap()).collect();
    let refs: Vec<Vec<&str>> = pairs
        .iter()
        .map(|p| {
            p["refs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect()
        })
        .collect();
    let scorer = BertScorer::from_dir(&model_dir(), DEFAULT_LAYER, Device::Cpu).unwrap();
    let mut failures = Vec::new();
    for (key, idf) in [("plain", false), ("idf", true)] {
        let scores = bert_score(&scorer, &hyps, &refs, idf).unwrap();
        for ((s, want), hyp) in scores.iter().zip(b[key].as_array().unwrap()).zip(&hyps) {
            let want: Vec<f64> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            for (got, w) in [s.precision, s.recall, s.f1].iter().zip(&want) {
                if (got - w).abs() > 1e-4 {
                    failures.push(format!("{key} {hyp:?}: {got} vs {w}"));
                }
            }
        }
    }
    assert_no_mismatch(&failures);
}
