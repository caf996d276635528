//! Fine-tuning BLIP on prepared medcap splits.
//!
//! This crate is a documented skeleton: its issue fills it with the study's
//! recipe (micro-batches with gradient accumulation, Adam, the margin
//! contrastive loss and the language-model loss), checkpoints that survive a
//! crash, resume, validation and loss curves. It builds on
//! [`medcap_model`] for tensors and devices.

pub use medcap_model::device::DeviceChoice;
