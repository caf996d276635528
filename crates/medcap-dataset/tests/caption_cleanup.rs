//! Golden tests of caption cleanup: the hand-written cases in
//! `data-fixtures/caption-cleanup/cases.tsv`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;

use medcap_dataset::clean::clean_caption;

fn cases() -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data-fixtures/caption-cleanup/cases.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (raw, expected) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("no tab in {l:?}"));
            (raw.to_owned(), expected.to_owned())
        })
        .collect()
}

#[test]
fn golden_cases_clean_as_written() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(raw, expected)| {
            let got = clean_caption(raw);
            (got != *expected)
                .then(|| format!("raw:      {raw}\nexpected: {expected}\ngot:      {got}\n"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn cleanup_is_idempotent() {
    for (_, expected) in cases() {
        assert_eq!(
            clean_caption(&expected),
            expected,
            "cleaning a clean caption changed it"
        );
    }
}
