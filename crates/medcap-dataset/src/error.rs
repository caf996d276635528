//! The crate's error type: what stops a run, as opposed to per-record
//! problems, which are reported and skipped.

use std::path::PathBuf;

/// An error that stops a dataset operation.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file or directory could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The MedICaT root holds no figure JSONL.
    #[error("no MedICaT figure JSONL under {}: expected {}", root.display(), expected)]
    NoJsonl {
        /// The directory that was searched.
        root: PathBuf,
        /// The file name that was looked for.
        expected: &'static str,
    },
    /// The input does not have a data set's layout, or a table's columns
    /// are not usable.
    #[error("{}: {reason}", path.display())]
    Layout {
        /// The input directory or file.
        path: PathBuf,
        /// What was expected and what was found.
        reason: String,
    },
    /// A malformed line in `--strict` mode.
    #[error("{}: line {line}: {reason} (strict mode stops at the first malformed record)", path.display())]
    MalformedLine {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A keyword of the chest filter is unusable.
    #[error("keyword `{keyword}`: {reason}")]
    InvalidKeyword {
        /// The keyword as given.
        keyword: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A CSV output could not be written.
    #[error("{}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The underlying error.
        source: csv::Error,
    },
    /// A split CSV could not be read: a missing column or a malformed row.
    #[error("{}: {reason}", path.display())]
    SplitCsv {
        /// The CSV file.
        path: PathBuf,
        /// What is wrong, with the line number for a row.
        reason: String,
    },
    /// A JSON output could not be written.
    #[error("{}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A synthetic figure could not be encoded.
    #[error("{}: cannot encode PNG", path.display())]
    Encode {
        /// The image file.
        path: PathBuf,
        /// The underlying error.
        source: image::ImageError,
    },
    /// The synthetic data set's output directory holds something else.
    #[error("{} is not empty and was not made by `medcap synth`; choose another directory", path.display())]
    OutputNotEmpty {
        /// The directory.
        path: PathBuf,
    },
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

impl From<medcap_io::IoError> for DatasetError {
    fn from(e: medcap_io::IoError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
