//! medcap-model's integration tests, one binary (libtorch linked once): parity with transformers and Pillow, BERTScore with the real encoder against bert-score, checkpoints, the vocabulary subset.
//! Shared helpers live in `common`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod alignscore_parity;
mod bertscore_edges;
mod bertscore_parity;
mod bleurt_parity;
mod blip_parity;
mod checkpoint;
mod clip_parity;
mod common;
mod deberta_parity;
mod distributed;
// The golden values of the metrics fixtures, shared with medcap-metrics'
// tests (BERTScore's parity needs this crate's encoder).
mod jpeg_parity;
mod libtorch;
#[path = "../../medcap-metrics/tests/common/mod.rs"]
mod metrics_common;
mod model_settings;
mod open_clip_parity;
mod preprocess_parity;
mod roberta_parity;
mod vocabulary_subset;
