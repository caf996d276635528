//! Caption metrics that match the reference Python implementations.
//!
//! This crate is a documented skeleton: its issue fills it with BLEU
//! (NLTK, sacrebleu and the study's per-caption convention), ROUGE
//! (Google's `rouge-score`), CIDEr-D and, behind the `bertscore` feature,
//! BERTScore on medcap-model's BERT encoder.
//!
//! Architecture invariant: without the `bertscore` feature this crate does
//! not depend on `tch` or libtorch.

/// Whether this build can compute BERTScore (the `bertscore` feature).
pub const HAS_BERTSCORE: bool = cfg!(feature = "bertscore");
