//! medcap-cli's integration tests, one binary: the `medcap` and `medcap-torch` executables run as users type them.
//! Shared helpers live in `common`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod as_typed;
mod caption;
mod cli;
mod clipscore;
mod common;
mod disk_faults;
mod distributed;
mod errors;
mod findings;
mod imageclef;
mod kill_resume;
