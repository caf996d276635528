//! BLIP image captioning on libtorch, through `tch`.
//!
//! This crate is the only place in medcap where tensors live: BLIP's ViT
//! vision encoder, its BERT text encoder and causal text decoder ([`blip`]),
//! with module paths equal to the Hugging Face checkpoint keys; generation
//! ([`generation`]); the device layer (where tensors run, what libtorch can
//! see); precision and mixed-precision autocast ([`precision`]); process groups of
//! several processes over PyTorch's c10d ([`distributed`]); the BERT-family and DeBERTa encoders (`bert`, `deberta`, [`text_encoder`]) and, on them,
//! BERTScore's encoder ([`bertscore::BertScorer`], medcap-metrics'
//! `TokenEmbedder`).
//!
//! ```
//! use medcap_model::device::{DeviceChoice, runtime_info};
//!
//! let device = DeviceChoice::Cpu.resolve()?;
//! let info = runtime_info();
//! assert_eq!(info.torch_version, "2.11.0");
//! assert_eq!(device, medcap_model::tch::Device::Cpu);
//! # Ok::<(), medcap_model::device::DeviceError>(())
//! ```

pub mod alignscore;
mod batch;
mod bert;
pub mod bertscore;
pub mod bleurt;
pub mod blip;
pub mod checkpoint;
pub mod clip;
mod deberta;
pub mod device;
pub mod distributed;
pub mod error;
mod ffi;
pub mod generation;
pub mod image_text;
mod layers;
pub mod open_clip;
pub mod pipeline;
pub mod precision;
pub mod preprocess;
mod resize;
pub mod sentencepiece;
pub mod text_encoder;
pub mod tokenizer;

pub use error::ModelError;

pub use tch;
