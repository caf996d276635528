//! medcap-image's integration tests, one binary: decoding against Pillow's
//! golden pixels, and properties over arbitrary bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod pillow_parity;
mod properties;
