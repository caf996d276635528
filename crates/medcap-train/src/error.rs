//! The error type of medcap-train.

use std::path::PathBuf;

use medcap_model::ModelError;

/// Why a training run cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file or directory cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration is not usable.
    #[error("config {}: {reason}", path.display())]
    Config {
        /// The configuration file (empty for one built in code).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration file cannot be read, parsed or used, or a run is
    /// continued with another configuration than it started with.
    #[error(transparent)]
    ConfigFile(#[from] medcap_io::config::ConfigError),
    /// A data file is not usable.
    #[error("data {}: {reason}", path.display())]
    Data {
        /// The CSV.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model cannot be loaded, run or saved.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// libtorch refused an operation.
    #[error("{context}: {source}")]
    Torch {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: tch::TchError,
    },
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error(
        "the training loss is {loss} at step {step}; stopped. The last good checkpoint is {}",
        checkpoint.as_ref().map_or("none (no checkpoint written yet)".into(), |p| p.display().to_string())
    )]
    NonFinite {
        /// Optimizer step at which it happened.
        step: usize,
        /// The loss value.
        loss: f64,
        /// The checkpoint that is still intact.
        checkpoint: Option<PathBuf>,
    },
    /// A resumed run's saved state does not fit the configuration.
    #[error("cannot resume from {}: {reason}", path.display())]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// No training image could be read.
    #[error(
        "no usable training example: all {skipped} images failed to load (first: {first}); \
         check the CSV's image_path column (relative paths are taken from the CSV's directory)"
    )]
    NoData {
        /// Images that failed.
        skipped: usize,
        /// The first failure's reason.
        first: String,
    },
}

impl From<medcap_io::IoError> for TrainError {
    fn from(e: medcap_io::IoError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
