//! Caption metrics that match the reference Python implementations.
//!
//! - [`bertscore`]: BERTScore's matching, idf and conventions; the encoder is
//!   any [`bertscore::TokenEmbedder`] (medcap-model's `bertscore::BertScorer`).
//! - [`bleu`]: BLEU in the study's convention (Hugging Face evaluate /
//!   tensorflow/nmt, per caption), sacrebleu's and nltk's, with every
//!   smoothing method of each.
//! - [`caption_files`]: caption line files and CSV files, as `medcap score` reads them.
//! - [`caption_scores`]: every text metric of a caption set, with summaries.
//! - [`cider`]: CIDEr-D as pycocoevalcap computes it.
//! - [`clipscore`]: CLIPScore, RefCLIPScore and PAC-S from an image–text
//!   encoder's embeddings (the encoders are medcap-model's).
//! - [`metric`]: the metrics by name ([`metric::Metric`]: key in files, heading in tables).
//! - [`imageclef`]: ImageCLEFmedical Caption's evaluators: each year's
//!   file checks, preprocessing, per-caption rules, concept-detection F1
//!   and aggregates.
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
//! Every metric takes the hypothesis (the generated caption) first, then
//! its references. One example per metric, as a program that depends on
//! `medcap-metrics` alone writes it:
//!
//! **BLEU** in the study's convention, sacrebleu's and nltk's:
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
//!
//! **ROUGE-1/2/L/Lsum** as rouge-score (F-measure, precision, recall):
//!
//! ```
//! use medcap_metrics::rouge::Rouge;
//!
//! let rouge = Rouge::default();
//! let s = rouge.score_multi("small left pleural effusion", &["left pleural effusion", "normal chest"]);
//! assert!((s.rouge1.fmeasure - 6.0 / 7.0).abs() < 1e-12);
//! assert_eq!(s.rouge_l.recall, 1.0);
//! ```
//!
//! **CIDEr-D** as pycocoevalcap, over tokenized pairs (document
//! frequencies come from the references of all pairs):
//!
//! ```
//! use medcap_metrics::cider::cider_d;
//!
//! let pairs = vec![
//!     (vec!["left", "effusion"], vec![vec!["left", "pleural", "effusion"]]),
//!     (vec!["normal", "heart"], vec![vec!["normal", "heart", "size"]]),
//! ];
//! let scores = cider_d(&pairs);
//! assert_eq!(scores.per_image.len(), 2);
//! assert!(scores.corpus > 0.0);
//! ```
//!
//! **BERTScore** over any encoder of contextual token vectors (medcap-model's
//! `bertscore::BertScorer` loads BERT or RoBERTa checkpoints; here a
//! stand-in that gives each word a vector by its first letter):
//!
//! ```
//! use medcap_metrics::bertscore::{BertScoreError, EmbeddedText, TokenEmbedder, bert_score};
//!
//! struct FirstLetter;
//! impl TokenEmbedder for FirstLetter {
//!     fn embed(&self, texts: &[&str]) -> Result<Vec<EmbeddedText>, BertScoreError> {
//!         // [CLS] words [SEP], as a BERT tokenizer frames a text.
//!         let vector = |slot: usize| {
//!             let mut v = vec![0.0; 27];
//!             v[slot] = 1.0;
//!             v
//!         };
//!         Ok(texts.iter().map(|text| {
//!             let words: Vec<&str> = text.split_whitespace().collect();
//!             let mut ids = vec![101];
//!             let mut vectors = vec![vector(26)];
//!             for w in &words {
//!                 let letter = usize::from(w.as_bytes()[0] - b'a');
//!                 ids.push(letter as u32);
//!                 vectors.push(vector(letter));
//!             }
//!             ids.push(102);
//!             vectors.push(vector(26));
//!             let mut special = vec![false; ids.len()];
//!             special[0] = true;
//!             special[ids.len() - 1] = true;
//!             EmbeddedText { ids, special, vectors, truncated: false }
//!         }).collect())
//!     }
//! }
//!
//! let s = bert_score(&FirstLetter, &["left effusion"], &[vec!["left pleural effusion"]], false)?;
//! assert!((s[0].precision - 1.0).abs() < 1e-6); // each word of the caption has a match
//! assert!((s[0].recall - 2.0 / 3.0).abs() < 1e-6); // "pleural" has none
//! # Ok::<(), BertScoreError>(())
//! ```
//!
//! **Findings F1** with the built-in labeller of the CheXpert observations:
//!
//! ```
//! use medcap_metrics::findings::Labeller;
//! use medcap_metrics::findings::scores::{FindingsOptions, best_reference};
//!
//! let labeller = Labeller::built_in();
//! let hypothesis = labeller.label("left pleural effusion and cardiomegaly");
//! let references = [labeller.label("Small left pleural effusion. No pneumothorax.")];
//! let (best, f1) = best_reference(&hypothesis, &references, FindingsOptions::default()).unwrap();
//! assert_eq!(best, 0);
//! assert!((f1 - 2.0 / 3.0).abs() < 1e-12); // effusion named by both, cardiomegaly only by the caption
//! ```
//!
//! **Everything at once**, with summaries and bootstrap intervals (what
//! `medcap score` computes):
//!
//! ```
//! use medcap_metrics::caption_scores::{Metrics, score_captions};
//! use medcap_metrics::metric::Metric;
//!
//! let hyps = ["left pleural effusion", "normal chest radiograph"];
//! let refs = vec![vec!["small left pleural effusion"], vec!["normal chest radiograph"]];
//! let scored = score_captions(&hyps, &refs, &Metrics::default())?;
//! let rouge_l = &scored.summary[&Metric::RougeL];
//! assert!(rouge_l.ci95.0 <= rouge_l.mean && rouge_l.mean <= rouge_l.ci95.1);
//! # Ok::<(), medcap_metrics::caption_scores::ScoreError>(())
//! ```

pub mod alignscore;
pub mod bertscore;
pub mod bleu;
pub mod caption_files;
pub mod caption_scores;
pub mod cider;
pub mod clipscore;
pub mod findings;
pub mod imageclef;
pub mod metric;
mod ngram;
pub mod porter;
pub mod punkt;
pub mod repetition;
pub mod rouge;
pub mod stats;
pub mod table1;
pub mod tokenize;
