//! Caption metrics that match the reference Python implementations.
//!
//! - [`bertscore`]: BERTScore's matching, idf and conventions; the encoder is
//!   any [`bertscore::TokenEmbedder`] (medcap-model's `bertscore::BertScorer`).
//! - [`bleu`]: BLEU in the study's convention (Hugging Face evaluate /
//!   tensorflow/nmt, per caption), sacrebleu's and nltk's, with every
//!   smoothing method of each.
//! - [`caption_scores`]: every text metric of a caption set, with summaries.
//! - [`cider`]: CIDEr-D as pycocoevalcap computes it.
//! - [`metric`]: the metrics by name ([`metric::Metric`]: key in files, heading in tables).
//! - [`findings`]: a rule-based labeller of the CheXpert labeller's 14
//!   observations and clinical-efficacy scores (findings precision, recall, F1).
//! - [`porter`]: nltk's Porter stemmer (NLTK_EXTENSIONS mode), for ROUGE.
//! - [`repetition`]: degenerate repetition of words in generated captions.
//! - [`rouge`]: ROUGE-1/2/L/Lsum as Google's rouge-score computes them.
//! - [`stats`]: mean, s.d., seeded bootstrap intervals, paired comparison.
//! - [`table1`]: Table 1 in the study's layout (Markdown, CSV, plain text).
//! - [`tokenize`]: the reference tokenizers (13a, white space, rouge-score).
//!
//! Scores are on the 0–1 scale.
//!
//! Architecture invariant: this crate does not depend on `tch` or libtorch,
//! so that text metrics load no libtorch (the `medcap` front end runs
//! `medcap score --no-bertscore` without it).
//!
//! ```
//! use medcap_metrics::bleu::{Bleu, NltkSmoothing};
//!
//! let refs = ["the cat is on the mat"];
//! let hyp = "the cat sat on the mat";
//! assert_eq!(Bleu::default().sentence(hyp, &refs), 0.0); // no 4-gram match
//! let sacre = Bleu::sacrebleu_sentence().sentence(hyp, &refs);
//! assert!((sacre * 100.0 - 37.9918).abs() < 1e-3);
//! let nltk = Bleu::nltk(NltkSmoothing::Method1).sentence(hyp, &refs);
//! assert!((nltk - 0.254066).abs() < 1e-6);
//! ```

pub mod bertscore;
pub mod bleu;
pub mod caption_scores;
pub mod cider;
pub mod findings;
pub mod metric;
mod ngram;
pub mod porter;
pub mod repetition;
pub mod rouge;
pub mod stats;
pub mod table1;
pub mod tokenize;
