//! BLEU and CIDEr-D parity with nltk 3.10.4, sacrebleu 2.6.0 and pycocoevalcap 1.2 on the 300 caption pairs of
//! `data-fixtures/metrics/golden.json` (made by `gen.py` beside it), and with
//! the worked examples of the study's convention (tensorflow/nmt).
#![allow(clippy::unwrap_used, missing_docs)]

use medcap_metrics::bleu::{Bleu, BleuImpl, NltkSmoothing, SacreSmoothing};
use serde_json::Value;

use crate::common;

use common::{assert_no_mismatch, golden};

fn pair(row: &Value) -> (String, Vec<String>) {
    let refs = row["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    (row["hyp"].as_str().unwrap().to_owned(), refs)
}

/// Equal to 1e-9 relative, or in log space for nltk's ~1e-77 values.
fn close(got: f64, want: f64) -> bool {
    if want == 0.0 || got == 0.0 {
        return got == want;
    }
    if want < 1e-30 {
        return (got.ln() - want.ln()).abs() < 1e-9;
    }
    ((got - want) / want).abs() < 1e-9
}

#[test]
fn nltk_sentence_bleu_matches_for_every_smoothing_method() {
    let g = golden();
    let mut failures = Vec::new();
    for row in g["pairs"].as_array().unwrap() {
        let (hyp, refs) = pair(row);
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        for method in NltkSmoothing::ALL {
            let got = Bleu::nltk(method).sentence(&hyp, &refs);
            match row["nltk"][method.number()].as_f64() {
                Some(want) if !close(got, want) => {
                    failures.push(format!("m{} {hyp:?}: {got} vs {want}", method.number()))
                }
                None if !got.is_nan() => {
                    failures.push(format!("m{} {hyp:?}: {got}, nltk raised", method.number()))
                }
                _ => {}
            }
        }
    }
    assert_no_mismatch(&failures);
}

#[test]
fn sacrebleu_sentence_bleu_matches_for_every_smoothing_method() {
    let g = golden();
    let variants: [(&str, SacreSmoothing, bool, bool); 6] = [
        ("exp", SacreSmoothing::Exp, true, false),
        ("floor", SacreSmoothing::FLOOR, true, false),
        ("add-k", SacreSmoothing::ADD_K, true, false),
        ("none", SacreSmoothing::None, true, false),
        ("exp_no_eff", SacreSmoothing::Exp, false, false),
        ("exp_lower", SacreSmoothing::Exp, true, true),
    ];
    let mut failures = Vec::new();
    for row in g["pairs"].as_array().unwrap() {
        let (hyp, refs) = pair(row);
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        for (name, smoothing, effective_order, lowercase) in variants {
            let bleu = Bleu {
                implementation: BleuImpl::Sacrebleu {
                    smoothing,
                    effective_order,
                    lowercase,
                },
                max_order: 4,
            };
            let got = bleu.sentence(&hyp, &refs);
            let want = row["sacrebleu"][name].as_f64().unwrap();
            if !close(got, want) && (got - want).abs() > 1e-12 {
                failures.push(format!("{name} {hyp:?} {refs:?}: {got} vs {want}"));
            }
        }
    }
    assert_no_mismatch(&failures);
}

#[test]
fn corpus_bleu_matches() {
    let g = golden();
    let rows = g["pairs"].as_array().unwrap();
    let pairs: Vec<(String, Vec<String>)> = rows.iter().map(pair).collect();
    let first_ref: Vec<(&str, Vec<&str>)> = pairs
        .iter()
        .map(|(h, r)| (h.as_str(), vec![r[0].as_str()]))
        .collect();
    let sacre = Bleu::sacrebleu_corpus().corpus(&first_ref);
    let want = g["corpus_first_reference"]["sacrebleu_exp"]
        .as_f64()
        .unwrap();
    assert!(close(sacre, want), "{sacre} vs {want}");
    let methods = NltkSmoothing::ALL
        .iter()
        .filter(|m| **m != NltkSmoothing::Method6);
    for (method, want) in methods.zip(g["corpus_first_reference"]["nltk"].as_array().unwrap()) {
        let got = Bleu::nltk(*method).corpus(&first_ref);
        let want = want.as_f64().unwrap();
        assert!(
            close(got, want),
            "nltk corpus m{}: {got} vs {want}",
            method.number()
        );
    }
}

/// tensorflow/nmt `compute_bleu` (Hugging Face evaluate's `bleu`): the worked
/// examples of shared/docs/metrics-spec.md §1.5, computed there with the
/// fetched reference code.
#[test]
fn study_convention_matches_tensorflow_nmt_examples() {
    let plain = Bleu::default();
    let smooth = Bleu {
        implementation: BleuImpl::Study { smooth: true },
        max_order: 4,
    };
    let cases: [(&str, &[&str], f64, f64); 6] = [
        (
            "the cat sat on the mat",
            &["the cat is on the mat"],
            0.0,
            0.488923,
        ),
        (
            "a chest x-ray",
            &["chest x-ray showing a left pleural effusion"],
            0.0,
            0.200291,
        ),
        ("effusion", &["left pleural effusion"], 0.0, 0.135335),
        (
            "a dog on the grass",
            &["chest radiograph with effusion"],
            0.0,
            0.229575,
        ),
        (
            "the heart is normal in size",
            &[
                "the heart is normal",
                "heart size is normal and the lungs are clear",
            ],
            0.537285,
            0.643459,
        ),
        (
            "left pleural effusion",
            &["left pleural effusion"],
            0.0,
            1.0,
        ),
    ];
    for (hyp, refs, want, want_smooth) in cases {
        assert!((plain.sentence(hyp, refs) - want).abs() < 1e-6, "{hyp}");
        assert!(
            (smooth.sentence(hyp, refs) - want_smooth).abs() < 1e-6,
            "{hyp} smooth"
        );
    }
    // Where tensorflow/nmt raises ZeroDivisionError, medcap scores 0.
    assert_eq!(plain.sentence("", &["left pleural effusion"]), 0.0);
    assert_eq!(plain.sentence("left pleural effusion", &[""]), 0.0);
}

#[test]
fn cider_d_matches_pycocoevalcap_on_white_space_tokens() {
    let g = golden();
    let rows = g["pairs"].as_array().unwrap();
    let pairs: Vec<(Vec<String>, Vec<Vec<String>>)> = rows
        .iter()
        .map(pair)
        .map(|(h, refs)| {
            let split = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
            (split(&h), refs.iter().map(|r| split(r)).collect())
        })
        .collect();
    let scores = medcap_metrics::cider::cider_d(&pairs);
    let want = g["cider_d_corpus"].as_f64().unwrap();
    assert!(
        (scores.corpus - want).abs() < 1e-9,
        "{} vs {want}",
        scores.corpus
    );
    for (row, got) in rows.iter().zip(&scores.per_image) {
        let want = row["cider_d"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-9,
            "{:?}: {got} vs {want}",
            row["hyp"]
        );
    }
}
