//! The options that say what the study runs on and where, the same for
//! `medcap reproduce` and the fine-tuning examples (flattened into each).

use std::path::PathBuf;

use clap::Args;

/// Data, base model, device and size of a study run.
#[derive(Debug, Clone, Args)]
pub struct StudyInputs {
    /// A MedICaT release (default: the embedded synthetic one).
    #[arg(long)]
    pub medicat: Option<PathBuf>,
    /// A BLIP captioning checkpoint to fine-tune (default: a small BLIP trained here first).
    #[arg(long)]
    pub base_model: Option<PathBuf>,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// The reduced configuration the tests use (a few hundred figures, a
    /// tiny model, minutes on a CPU): a check that everything runs, not a
    /// result.
    #[arg(long)]
    pub reduced: bool,
}
