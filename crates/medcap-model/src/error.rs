//! The error type of medcap-model.

use std::path::PathBuf;

/// Why a model or tokenizer cannot be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file cannot be read.
    #[error("{}: cannot read", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` is not a configuration this crate understands.
    #[error("{}: not a usable config.json: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer cannot be loaded or fails on an input.
    #[error("tokenizer {}: {reason}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// libtorch refused: missing or mis-shaped weights, device errors.
    #[error("{context}: {source}")]
    Torch {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: tch::TchError,
    },
    /// A requested layer does not exist.
    #[error("layer {layer} requested, but the model has {available} layers")]
    NoSuchLayer {
        /// The requested layer.
        layer: usize,
        /// How many the model has.
        available: usize,
    },
}
