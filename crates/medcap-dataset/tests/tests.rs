//! medcap-dataset's integration tests, one binary: readers, cleanup, preparation and the synthetic generator on files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod caption_cleanup;
mod formats;
mod prepare;
mod properties;
mod synth;
