//! The study end to end, as `medcap reproduce` and `cargo xtask reproduce`
//! run it: data (a MedICaT release, or the embedded synthetic one) through
//! medcap-dataset, a general-purpose base captioner (a given BLIP
//! checkpoint, or a small BLIP trained here on synthetic general-domain
//! scenes), FT-1 and FT-2 with medcap-train, captions of the test figures
//! from all three with identical decoding, every metric of medcap-metrics,
//! and a report: Table 1 (Markdown, CSV, JSON) with confidence intervals and
//! paired tests, the loss curves, an HTML page of captions figure by figure,
//! and, on the synthetic data, the [`targets`] a reproduction must meet.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use medcap_study::{config::StudyConfig, pipeline::Study};
//! use medcap_train::trainer::LogObserver;
//!
//! let stop = AtomicBool::new(false);
//! let study = Study::new(StudyConfig::default(), "medcap-out".as_ref(), tch::Device::Cpu, false, &LogObserver, &stop)?;
//! let outcome = study.run()?;
//! println!("report: {}", outcome.report_dir.join("index.html").display());
//! # Ok::<(), medcap_study::StudyError>(())
//! ```

pub mod config;
pub mod error;
pub mod eval;
mod page;
pub mod pipeline;
pub mod report;
pub mod scenes;
pub mod small_model;
pub mod targets;
pub mod truth;

pub use error::StudyError;

/// README's Rust examples, compiled and run as doctests (`cargo test --doc`),
/// so that what the README shows keeps working.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

/// The library guide's examples, run as doctests like README's.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/library.md")]
pub struct LibraryGuideExamples;
