//! The error type of medcap-study.

use std::path::PathBuf;

/// Why a study stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A file or directory cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The study configuration is not usable, or an output directory holds
    /// a run started with another one.
    #[error(transparent)]
    Config(#[from] medcap_io::config::ConfigError),
    /// Data preparation failed.
    #[error(transparent)]
    Dataset(#[from] medcap_dataset::DatasetError),
    /// A model could not be created, loaded or run.
    #[error(transparent)]
    Model(#[from] medcap_model::ModelError),
    /// A training run failed.
    #[error(transparent)]
    Train(#[from] medcap_train::TrainError),
    /// BERTScore's model cannot be chosen (none installed, no known layer).
    #[error("BERTScore: {0}")]
    BertScoreModel(#[from] medcap_metrics::bertscore::ModelChoiceError),
    /// BERTScore's encoder cannot be loaded.
    #[error("BERTScore: {0}")]
    BertScore(#[from] medcap_metrics::bertscore::BertScoreError),
    /// Scoring the captions failed.
    #[error("scoring: {0}")]
    Score(#[from] medcap_metrics::caption_scores::ScoreError),
    /// A stage's inputs are inconsistent (e.g. a CSV without its columns).
    #[error("{stage}: {reason}")]
    Stage {
        /// The stage.
        stage: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The run was interrupted; rerunning continues where it stopped.
    #[error("interrupted during {0}; rerun to continue")]
    Interrupted(&'static str),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StudyError + '_ {
    move |source| StudyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl From<medcap_io::IoError> for StudyError {
    fn from(e: medcap_io::IoError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
