//! Fine-tuning BLIP on prepared medcap splits with the study's recipe:
//! micro-batches with gradient accumulation (4 x 4 by default), Adam or
//! AdamW, the captioning cross-entropy and the study's margin contrastive
//! loss (alone or weighted together), a learning-rate schedule and gradient
//! clipping, fp32 or bf16/fp16 mixed precision; with a run directory that survives crashes (atomic
//! checkpoints, exact resume), validation, early stopping and loss plots.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use medcap_train::{config::TrainConfig, trainer::{LogObserver, Trainer}};
//!
//! let config = TrainConfig::from_file("ft1.toml".as_ref())?;
//! let mut trainer = Trainer::new(config, tch::Device::Cpu, true)?;
//! let summary = trainer.run(&LogObserver, &AtomicBool::new(false))?;
//! println!("best checkpoint: {}", summary.checkpoint.display());
//! # Ok::<(), medcap_train::TrainError>(())
//! ```

pub mod config;
pub mod data;
pub mod error;
pub mod loss;
pub mod loss_scale;
pub mod optim;
pub mod plot;
pub mod run;
pub mod targets;
pub mod trainer;

pub use error::TrainError;
pub use medcap_model::device::DeviceChoice;
