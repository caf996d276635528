//! medcap-metrics' integration tests, one binary: parity with the reference packages (BERTScore's, which need the libtorch encoder, are medcap-model's tests).
//! Shared helpers live in `common`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod bleu_cider_parity;
mod common;
mod findings;
mod imageclef_parity;
mod porter_parity;
mod properties;
mod punkt_parity;
mod rouge_parity;
