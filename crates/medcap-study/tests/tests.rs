//! medcap-study's integration tests, one binary (libtorch linked once): the reduced study, the report, the targets, findings against truth.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod eval;
mod findings_truth;
mod html_report;
mod reproduce;
mod targets;
