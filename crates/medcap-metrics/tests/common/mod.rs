//! Shared by the parity tests: the golden values and how a list of
//! mismatches is reported.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

/// `data-fixtures/metrics/golden.json`, made by `gen.py` beside it.
pub fn golden() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data-fixtures/metrics/golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Fails with every mismatch listed, not only the first.
#[track_caller]
pub fn assert_no_mismatch(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The all-MiniLM-L6-v2 directory that `cargo xtask setup` installs.
pub fn model_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var("MEDCAP_MINILM_DIR")
            .expect("MEDCAP_MINILM_DIR is set by `cargo xtask setup`"),
    )
}

/// Token ids from a JSON array.
pub fn token_ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}
