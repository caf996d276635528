//! The ImageCLEF readers, checks and scores against the official
//! evaluators' own verdicts and values (`data-fixtures/imageclef/gen.py`,
//! which runs the 2023, 2025 and 2026 evaluators on files built to hit
//! every rule).

use medcap_metrics::imageclef::submission::{self, Rejection};
use medcap_metrics::imageclef::{Entity, Suite, concepts, preprocess};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data-fixtures/imageclef/golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key].as_str().unwrap()
}

/// medcap refuses what the official code refuses: with its exact message
/// where it raises one of its own, with a note naming the Python error
/// where it stops with one.
fn assert_refused_alike(
    name: &str,
    official: &Value,
    ours: Result<impl std::fmt::Debug, Rejection>,
) {
    let rejection = match ours {
        Ok(v) => panic!("{name}: accepted ({v:?}), the official evaluator says {official}"),
        Err(r) => r,
    };
    let kind = official["error"].as_str().unwrap();
    if matches!(kind, "Exception" | "SubmissionFormatError") {
        assert_eq!(
            rejection.official,
            official["message"].as_str().unwrap(),
            "{name}"
        );
    } else {
        let note = rejection.note.unwrap_or_default();
        assert!(
            note.contains(kind) || note.contains("Python error"),
            "{name}: {kind} but note {note:?}"
        );
    }
}

#[test]
fn caption_files_are_read_and_scored_as_the_official_evaluators_do() {
    let golden = golden();
    let cases = golden["captions"].as_array().unwrap();
    assert!(cases.len() >= 40);
    let mut with_models = 0;
    for case in cases {
        let suite: Suite = text(case, "suite").parse().unwrap();
        let name = format!("{suite} {}", text(case, "case"));
        let gt_text = text(case, "ground_truth");
        let truth = submission::ground_truth(suite, gt_text).unwrap();
        let ours = submission::submission(suite, text(case, "submission"), &truth, gt_text);
        if let Some(error) = case.get("error") {
            assert_refused_alike(&name, error, ours);
            continue;
        }
        if let Some(error) = case.get("scoring_error") {
            let rejection = ours.expect_err(&name);
            assert!(
                rejection.note.unwrap_or_default().contains("KeyError"),
                "{name}: {error}"
            );
            continue;
        }
        let pairs = ours.unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: Vec<(String, String)> = case["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let got: Vec<(String, String)> = pairs
            .iter()
            .map(|(i, c)| (i.to_owned(), c.to_owned()))
            .collect();
        assert_eq!(got, expected, "{name}");
        let rouge: Vec<f64> = pairs
            .iter()
            .map(|(id, caption)| suite.rouge1(truth.get(id).unwrap(), caption))
            .collect();
        let official: Vec<f64> = case["rouge1"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(rouge.len(), official.len(), "{name}");
        for (a, b) in rouge.iter().zip(&official) {
            assert!((a - b).abs() < 1e-12, "{name}: ROUGE-1 {a} against {b}");
        }
        // Where the official mean exists (no pair empty on both sides, or
        // every pair), it is the mean of the per-caption values.
        if let Some(mean) = case["rouge1_official_mean"].as_f64() {
            let ours = rouge.iter().sum::<f64>() / rouge.len() as f64;
            assert!((ours - mean).abs() < 1e-12, "{name}");
        }
        // The official MedCAT F1 and Similarity on the entities and
        // embeddings the generator gave them.
        if case.get("medcat").is_some() {
            let floats = |v: &Value| -> Vec<f64> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            };
            let entities = |v: &Value| -> Vec<Entity> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|e| Entity {
                        cui: e[0].as_str().unwrap().to_owned(),
                        pretty_name: e[1].as_str().unwrap().to_owned(),
                    })
                    .collect()
            };
            let official_medcat = floats(&case["medcat"]);
            let official_similarity = floats(&case["similarity"]);
            for (k, (id, caption)) in pairs.iter().enumerate() {
                let reference = truth.get(id).unwrap();
                let sides = &case["entities"][id];
                let ours = suite
                    .medcat(
                        reference,
                        caption,
                        &entities(&sides[0]),
                        &entities(&sides[1]),
                    )
                    .unwrap();
                assert!(
                    (ours - official_medcat[k]).abs() < 1e-12,
                    "{name} {id}: MedCAT {ours} against {}",
                    official_medcat[k]
                );
                let vectors = &case["embeddings"][id];
                let ours = suite
                    .similarity(
                        reference,
                        caption,
                        &floats(&vectors[0]),
                        &floats(&vectors[1]),
                    )
                    .unwrap()
                    .unwrap();
                // The official cosine is float32 arithmetic.
                assert!(
                    (ours - official_similarity[k]).abs() < 1e-6,
                    "{name} {id}: Similarity {ours} against {}",
                    official_similarity[k]
                );
            }
            with_models += 1;
        }
    }
    assert!(
        with_models >= 8,
        "only {with_models} cases with MedCAT and Similarity"
    );
}

#[test]
fn concept_files_are_read_and_scored_as_the_official_evaluators_do() {
    let golden = golden();
    let cases = golden["concepts"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let suite: Suite = text(case, "suite").parse().unwrap();
        let name = format!("{suite} {}", text(case, "case"));
        let (gt_text, manual_text) = (text(case, "ground_truth"), text(case, "manual"));
        let truth = concepts::ground_truth(suite, gt_text).unwrap();
        let manual = concepts::ground_truth(suite, manual_text).unwrap();
        let ours = concepts::submission(
            suite,
            text(case, "submission"),
            &truth,
            (gt_text, manual_text),
        );
        if let Some(error) = case.get("error") {
            assert_refused_alike(&name, error, ours);
            continue;
        }
        let predicted = ours.unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: Vec<(String, Vec<String>)> = case["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let concepts = p[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned());
                (p[0].as_str().unwrap().to_owned(), concepts.collect())
            })
            .collect();
        let got: Vec<(String, Vec<String>)> = predicted
            .iter()
            .map(|(i, c)| (i.to_owned(), c.to_vec()))
            .collect();
        assert_eq!(got, expected, "{name}");
        let primary = concepts::primary(&truth, &predicted).unwrap();
        let official = case["primary"].as_f64().unwrap();
        assert!(
            (primary.score - official).abs() < 1e-12,
            "{name}: {} against {official}",
            primary.score
        );
        match (
            concepts::secondary(suite, &manual, &predicted),
            case.get("secondary"),
        ) {
            (None, None) => {}
            (Some(Ok(ours)), Some(official)) => {
                let official = official.as_f64().unwrap();
                assert!(
                    (ours.score - official).abs() < 1e-12,
                    "{name}: {} against {official}",
                    ours.score
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn preprocessing_is_the_official_one() {
    for pair in golden()["preprocess"].as_array().unwrap() {
        assert_eq!(
            preprocess(pair[0].as_str().unwrap()),
            pair[1].as_str().unwrap()
        );
    }
}
