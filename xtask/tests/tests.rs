//! xtask's integration tests, one binary: the built xtask in a moved
//! checkout, and a crate outside the workspace that imports medcap-metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod moved_checkout;
mod outside_crate;
