//! AlignScore's aggregation (Zha et al. 2023; yuh-zha/AlignScore's
//! `Inferencer.inference_per_example` in its `nli_sp` mode): the context is
//! split into sentences and grouped into chunks of about 350 words, the
//! claim into sentences; each claim sentence takes the probability of its
//! best-supporting chunk; the score is their mean. Sentences are split as
//! nltk's `sent_tokenize` splits them ([`crate::punkt`]); the alignment
//! model itself (a RoBERTa with its heads) is medcap-model's.

use crate::punkt::Punkt;
use crate::tokenize::is_python_space;

/// A model giving, for (premise, hypothesis) pairs, the probability that
/// the premise supports the hypothesis.
pub trait AlignmentModel {
    /// One probability per pair, in input order.
    ///
    /// # Errors
    /// The model's failure, boxed.
    fn aligned(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<f64>, Box<dyn std::error::Error + Send + Sync>>;
}

/// The chunks of a context as the inferencer builds them: its sentences
/// (one empty sentence if it has none), grouped `k` at a time and joined
/// by a space, where `k = max(sentences / (words / 350 + 1), 1)`.
pub fn chunks(punkt: &Punkt, context: &str) -> Vec<String> {
    let mut sentences = punkt.sentences(context);
    if sentences.is_empty() {
        sentences.push("");
    }
    let words = context
        .split(is_python_space)
        .filter(|w| !w.is_empty())
        .count();
    let per_chunk = (sentences.len() / (words / 350 + 1)).max(1);
    sentences
        .chunks(per_chunk)
        .map(|group| group.join(" "))
        .collect()
}

/// AlignScore (`nli_sp`) of each `(context, claim)` pair: the mean over
/// the claim's sentences of the best probability over the context's
/// chunks, computed in f32 as torch does; `None` for a claim without a
/// sentence (empty or blank), where the official inferencer stops with a
/// `ValueError` (`torch.cat` of nothing). All pairs go to the model in
/// one call.
///
/// # Errors
/// The model's failure.
pub fn align_scores(
    model: &dyn AlignmentModel,
    punkt: &Punkt,
    pairs: &[(&str, &str)],
) -> Result<Vec<Option<f64>>, Box<dyn std::error::Error + Send + Sync>> {
    let mut prepared = Vec::with_capacity(pairs.len());
    for (context, claim) in pairs {
        prepared.push((chunks(punkt, context), punkt.sentences(claim)));
    }
    let mut inputs: Vec<(&str, &str)> = Vec::new();
    for (chunks, sentences) in &prepared {
        for chunk in chunks {
            for sentence in sentences {
                inputs.push((chunk.as_str(), sentence));
            }
        }
    }
    let probabilities = model.aligned(&inputs)?;
    let mut at = 0;
    let mut out = Vec::with_capacity(pairs.len());
    for (chunks, sentences) in &prepared {
        let (n_chunks, n_sentences) = (chunks.len(), sentences.len());
        if n_sentences == 0 {
            out.push(None);
            continue;
        }
        let block = &probabilities[at..at + n_chunks * n_sentences];
        at += n_chunks * n_sentences;
        // Row i is chunk i, column j sentence j: the max down each column.
        let best: Vec<f32> = (0..n_sentences)
            .map(|j| {
                (0..n_chunks)
                    .map(|i| block[i * n_sentences + j] as f32)
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .collect();
        let mean = best.iter().sum::<f32>() / n_sentences as f32;
        out.push(Some(f64::from(mean)));
    }
    Ok(out)
}
