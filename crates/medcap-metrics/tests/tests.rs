//! medcap-metrics' integration tests, one binary (libtorch, for the BERTScore encoder, linked once): parity with the reference packages and edge cases.
//! Shared helpers live in `common`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod bertscore_edges;
mod bertscore_parity;
mod bleu_cider_parity;
mod common;
mod findings;
mod porter_parity;
mod roberta_parity;
mod rouge_parity;
