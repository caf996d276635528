//! Punkt against nltk 3.9.1: parameters trained by nltk's PunktTrainer and
//! written as `punkt_tab` (`data-fixtures/punkt`, made by `gen.py` there),
//! and the sentences nltk's tokenizer returns with them for texts built to
//! hit every rule, exactly; malformed parameter files refused with their
//! line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_metrics::punkt::{Punkt, PunktError, PunktParameters};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/punkt")
}

#[test]
fn sentences_equal_nltk() {
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden.json")).unwrap())
            .unwrap();
    let punkt = Punkt::new(PunktParameters::from_dir(&fixtures().join("punkt_tab")).unwrap());
    let mut failures = Vec::new();
    for case in g["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<&str> = case["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        let got = punkt.sentences(text);
        if got != want {
            failures.push(format!("{text:?}:\n  {got:?}\n  {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_parameters_are_refused_with_their_line() {
    let dir = Path::new("punkt_tab");
    let err = PunktParameters::from_texts(dir, "fig\n", "a\tb\nonly\n", "", "").unwrap_err();
    assert!(
        matches!(&err, PunktError::Format { line: 2, .. })
            && err.to_string().contains("collocations.tab, line 2"),
        "{err}"
    );
    let err = PunktParameters::from_texts(dir, "", "", "", "the\tx\n").unwrap_err();
    assert!(err.to_string().contains("`x` is not an integer"), "{err}");
    let missing = PunktParameters::from_dir(Path::new("/nonexistent/punkt_tab")).unwrap_err();
    assert!(
        missing.to_string().contains("abbrev_types.txt"),
        "{missing}"
    );
}
