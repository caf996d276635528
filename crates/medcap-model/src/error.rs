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
    /// A configuration file (`config.json`, `preprocessor_config.json`)
    /// that is not valid JSON, not this configuration, or breaks its rules.
    #[error(transparent)]
    ConfigFile(#[from] medcap_io::config::ConfigError),
    /// The tokenizer cannot be loaded or fails on an input.
    #[error("tokenizer {}: {reason}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// libtorch cannot run mixed precision of this kind on this device.
    #[error("libtorch cannot autocast to {precision} on {device:?}")]
    Autocast {
        /// The device.
        device: tch::Device,
        /// The precision asked for.
        precision: crate::precision::Precision,
    },
    /// libtorch refused: missing or mis-shaped weights, device errors.
    #[error("{context}: {source}")]
    Torch {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: tch::TchError,
    },
    /// Weights that cannot be used: missing, mis-shaped or unreadable keys.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong (with the keys and shapes involved).
        reason: String,
    },
    /// A PyTorch pickle checkpoint, which is not loaded: unpickling runs code.
    #[error(
        "{}: PyTorch pickle weights are not loaded (unpickling can run arbitrary code); convert \
         them once, in that directory, with torch: `python -c \"import torch, safetensors.torch \
         as s; s.save_file({{k: v.contiguous().clone() for k, v in \
         torch.load('pytorch_model.bin').items()}}, 'model.safetensors')\"`, or for BLIP with \
         transformers: `BlipForConditionalGeneration.from_pretrained(DIR).save_pretrained(DIR, \
         safe_serialization=True)` (or BlipForImageTextRetrieval)",
        path.display()
    )]
    PickleRefused {
        /// The pickle file.
        path: PathBuf,
    },
    /// An image of a size the model cannot take without position interpolation.
    #[error(
        "image is {height}x{width} pixels but the model takes {expected}x{expected}; resize it          or enable position-embedding interpolation"
    )]
    ImageSize {
        /// The configured side.
        expected: i64,
        /// Input height.
        height: i64,
        /// Input width.
        width: i64,
    },
    /// A tensor argument of the wrong shape.
    #[error("{what} must be {expected}, found shape {found:?}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// The expected layout.
        expected: String,
        /// The shape given.
        found: Vec<i64>,
    },
    /// An image file that cannot be read or decoded (it names the file).
    #[error("image {0}")]
    Image(#[from] medcap_image::ImageError),
    /// A text with more tokens than the model has positions (transformers
    /// raises an index error there; nothing is cut without saying so).
    #[error(
        "text {} has {tokens} tokens, more than the model's {positions} positions \
         (text_config.max_position_embeddings): shorten it",
        index + 1
    )]
    TextTooLong {
        /// 0-based place of the text in its batch.
        index: usize,
        /// Its token count, `[CLS]` and `[SEP]` included.
        tokens: usize,
        /// The model's position table.
        positions: usize,
    },
    /// A process group that cannot be joined or a collective that failed
    /// (a lost peer, the timeout), or a launcher environment that does not
    /// describe a group.
    #[error("{}{operation}: {reason}", rank.map(|r| format!("rank {r}: ")).unwrap_or_default())]
    Distributed {
        /// This process's rank, when known.
        rank: Option<usize>,
        /// What was being done.
        operation: &'static str,
        /// c10d's message, or what is wrong.
        reason: String,
    },
    /// An input that another process of a sharded run could not handle
    /// (an unreadable image, say): that process's message, as it would
    /// read alone.
    #[error("{message}")]
    OnRank {
        /// The process that met it.
        rank: usize,
        /// Its error, as text.
        message: String,
    },
    /// Generation settings that contradict each other or the model.
    #[error("generation settings: {0}")]
    Generation(String),
    /// A requested layer does not exist.
    #[error("layer {layer} requested, but the model has {available} layers")]
    NoSuchLayer {
        /// The requested layer.
        layer: usize,
        /// How many the model has.
        available: usize,
    },
}

impl From<medcap_io::IoError> for ModelError {
    fn from(e: medcap_io::IoError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
