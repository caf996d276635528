//! medcap-model's integration tests, one binary (libtorch linked once): parity with transformers and Pillow, checkpoints, the vocabulary subset.
//! Shared helpers live in `common`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod blip_parity;
mod checkpoint;
mod common;
mod jpeg_parity;
mod libtorch;
mod preprocess_parity;
mod vocabulary_subset;
