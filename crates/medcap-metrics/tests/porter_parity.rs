//! The Porter stemmer against nltk 3.10.4's `PorterStemmer()` on every word of
//! `data-fixtures/metrics/golden.json`'s word list.
#![allow(clippy::unwrap_used, missing_docs)]

use crate::common;

use common::assert_no_mismatch;

use medcap_metrics::porter::stem;

#[test]
fn every_word_stems_as_nltk_does() {
    let golden = common::golden();
    let words = golden["porter"].as_object().unwrap();
    assert!(words.len() > 300, "{} words", words.len());
    let failures: Vec<String> = words
        .iter()
        .filter_map(|(word, want)| {
            let got = stem(word);
            (got != want.as_str().unwrap()).then(|| format!("{word}: {got} vs {want}"))
        })
        .collect();
    assert_no_mismatch(&failures);
}
