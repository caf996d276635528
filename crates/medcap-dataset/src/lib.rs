//! From a data set release (MedICaT, ROCO, ROCOv2, PMC-OA or any table) to
//! clean, validated, leak-free caption splits.
//!
//! - [`formats`] reads each release format into the same figure records.
//! - [`reader`] streams the figure JSONL into typed [`record::FigureRecord`]s,
//!   reporting malformed lines by number.
//! - [`filter`] selects figures by caption ([`filter::KeywordRule`], or the
//!   study's own [`filter::StudyRule`]).
//! - [`clean`] removes figure labels, panel markers and stray punctuation.
//! - [`image_check`] confines image paths to the release and decodes images.
//! - [`split`] splits by source paper, deterministically from a seed.
//! - [`split_csv`] reads and writes the split CSVs; [`paths`] is the rule for
//!   paths stored in files (relative to the file's directory).
//! - [`prepare`] runs all of it and writes CSVs and a summary.
//! - [`synth`] generates synthetic MedICaT-format data sets.
//!
//! Architecture invariant: this crate does not link libtorch.
//!
//! ```no_run
//! use medcap_dataset::prepare::{prepare, NoProgress, PrepareOptions};
//!
//! let summary = prepare(
//!     "medicat/release".as_ref(),
//!     "prepared".as_ref(),
//!     &PrepareOptions::default(),
//!     &NoProgress,
//! )?;
//! println!("{} usable figures, {} malformed lines", summary.usable, summary.malformed);
//! # Ok::<(), medcap_dataset::DatasetError>(())
//! ```

pub mod clean;
pub mod error;
pub mod filter;
pub mod formats;
pub mod image_check;
pub mod layout;
mod output;
pub mod paths;
pub mod prepare;
pub mod reader;
pub mod record;
pub mod split;
pub mod split_csv;
pub mod synth;

pub use error::DatasetError;
