//! DeBERTa (v1) against transformers 4.57.1: two small random checkpoints
//! (`data-fixtures/deberta`, made by `gen.py` there) covering
//! deberta-xlarge-mnli's options (relative attention with c2p and p2c, no
//! absolute positions, a stored position table to drop, a classification
//! checkpoint's `deberta.` prefix) and the others (absolute positions,
//! token types, `embed_proj`, a clamped relative span, an extra
//! `pos_att_type` entry): the slow DebertaTokenizer's ids as bert-score
//! encodes them, exactly; hidden states to 1e-5, in one padded batch and
//! one text at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_model::tch::Device;
use medcap_model::text_encoder::BertTextEncoder;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/deberta")
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap()).unwrap()
}

const MODELS: [&str; 2] = ["tiny-deberta", "tiny-deberta-abs"];

#[test]
fn deberta_tokens_equal_the_slow_tokenizer_through_bert_score() {
    let g = golden();
    let mut failures = Vec::new();
    for name in MODELS {
        let encoder = BertTextEncoder::from_dir(&fixtures().join(name), 1, Device::Cpu).unwrap();
        assert_eq!(
            encoder.max_len() as u64,
            g["model_max_length"].as_u64().unwrap()
        );
        let case = &g[name];
        for (text, want) in case["texts"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["ids"].as_array().unwrap())
        {
            let want: Vec<u32> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let got = encoder.tokenize(text.as_str().unwrap()).unwrap();
            if got != want {
                failures.push(format!("{name}: {text}: {got:?} vs {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn deberta_hidden_states_equal_transformers_batched_and_alone() {
    let g = golden();
    for name in MODELS {
        let case = &g[name];
        let texts: Vec<&str> = case["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for (layer, want) in case["hidden"].as_object().unwrap() {
            let layer: usize = layer.parse().unwrap();
            let encoder =
                BertTextEncoder::from_dir(&fixtures().join(name), layer, Device::Cpu).unwrap();
            for batch_size in [texts.len(), 1] {
                let got = encoder.encode(&texts, batch_size).unwrap();
                for (i, (sentence, want)) in got.iter().zip(want.as_array().unwrap()).enumerate() {
                    let flat: Vec<f32> = sentence.vectors.concat();
                    let want = want.as_array().unwrap();
                    assert_eq!(flat.len(), want.len(), "{name} layer {layer} text {i}");
                    for (a, b) in flat.iter().zip(want) {
                        let d = (f64::from(*a) - b.as_f64().unwrap()).abs();
                        assert!(
                            d <= 1e-5,
                            "{name} layer {layer} text {i} (batch {batch_size}): {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn deberta_options_medcap_does_not_run_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("tiny-deberta");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let path = dir.path().join("config.json");
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (key, value, expect) in [
        ("talking_head", Value::Bool(true), "talking_head"),
        ("hidden_act", Value::from("relu"), "hidden_act `relu`"),
        ("model_type", Value::from("deberta-v2"), "deberta-v2"),
    ] {
        let mut config = original.clone();
        config[key] = value;
        std::fs::write(&path, config.to_string()).unwrap();
        let err = BertTextEncoder::from_dir(dir.path(), 1, Device::Cpu)
            .err()
            .expect("refused");
        let text = format!("{err}: {:?}", err);
        assert!(
            text.contains(expect) && text.contains("config.json"),
            "{text}"
        );
    }
    std::fs::write(&path, original.to_string()).unwrap();
    let err = BertTextEncoder::from_dir(dir.path(), 4, Device::Cpu)
        .err()
        .expect("no layer 4");
    assert!(format!("{err}").contains('4'), "{err}");
}

/// ImageCLEFmedical Caption's BERTScore component against each year's
/// official `compute_bertscore`, run with the tiny DeBERTa in place of
/// deberta-xlarge-mnli (`data-fixtures/imageclef/models.json`, made by
/// `gen_models.py` there): per pair to 1e-6 (idf from the ground truth in
/// 2025/2026, none in 2023; pairs empty on both sides score 1, where the
/// 2023 code meant 1 and stops with a TypeError instead).
#[test]
fn imageclef_bertscore_equals_the_official_evaluators() {
    use medcap_metrics::imageclef::Suite;
    use medcap_model::bertscore::BertScorer;

    let scorer = BertScorer::from_dir(&fixtures().join("tiny-deberta"), 2, Device::Cpu).unwrap();
    for c in crate::common::imageclef_model_cases() {
        let (suite, case, rows) = (c.suite, &c.record, c.rows());
        assert_eq!(case["suite"], suite.name());
        let got = suite
            .bertscore(&scorer, c.truth.iter().map(String::as_str), &rows)
            .unwrap();
        let mut errors = 0;
        for ((value, want), (reference, candidate)) in got
            .iter()
            .zip(case["bertscore"].as_array().unwrap())
            .zip(&rows)
        {
            match want.as_f64() {
                Some(w) => assert!(
                    (value - w).abs() <= 1e-6,
                    "{suite}: {reference:?} / {candidate:?}: {value} vs {w}"
                ),
                None => {
                    errors += 1;
                    assert_eq!(want["error"], "TypeError", "{suite}: {want}");
                    assert!(suite.both_empty(reference, candidate) && *value == 1.0);
                }
            }
        }
        if let Some(mean) = case["bertscore_official_mean"].as_f64() {
            let ours = got.iter().sum::<f64>() / got.len() as f64;
            assert!((ours - mean).abs() <= 1e-6, "{suite}: {ours} vs {mean}");
        }
        assert_eq!(errors > 0, suite == Suite::Y2023, "{suite}");
    }
}
