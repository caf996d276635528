//! The Porter stemmer against nltk 3.10.4's `PorterStemmer()` on every word of
//! `data-fixtures/metrics/golden.json`'s word list.
#![allow(clippy::unwrap_used, missing_docs)]

use medcap_metrics::porter::stem;

#[test]
fn every_word_stems_as_nltk_does() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data-fixtures/metrics/golden.json"
    );
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let words = golden["porter"].as_object().unwrap();
    assert!(words.len() > 300, "{} words", words.len());
    let failures: Vec<String> = words
        .iter()
        .filter_map(|(word, want)| {
            let got = stem(word);
            (got != want.as_str().unwrap()).then(|| format!("{word}: {got} vs {want}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        words.len(),
        failures.join("\n")
    );
}
