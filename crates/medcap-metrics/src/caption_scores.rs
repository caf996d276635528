//! Every text metric of one set of captions at once: per-caption scores and
//! their summaries, as `medcap score` and the study's Table 1 need them.
//!
//! ```
//! use medcap_metrics::caption_scores::{score_captions, Metrics};
//! use medcap_metrics::metric::Metric;
//!
//! let hyps = ["left pleural effusion", "normal chest radiograph"];
//! let refs = vec![vec!["small left pleural effusion"], vec!["normal chest radiograph"]];
//! let scored = score_captions(&hyps, &refs, &Metrics::default())?;
//! assert_eq!(scored.per_caption.len(), 2);
//! assert!(scored.summary[&Metric::Rouge1].mean > 0.8);
//! # Ok::<(), medcap_metrics::caption_scores::ScoreError>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bertscore::{
    Baseline, BertScoreError, BertScoreValue, IdfWeights, TokenEmbedder, bert_score_chunk,
};
use crate::bleu::Bleu;
use crate::cider::DocumentFrequencies;
use crate::findings::scores::{
    ClinicalEfficacy, FindingsOptions, best_reference, clinical_efficacy,
};
use crate::findings::{Labeller, Labels};
use crate::metric::Metric;
use crate::rouge::Rouge;
use crate::stats::{
    Bootstrap, PairedComparison, Summary, compare_paired_columns, summarize_columns,
};

/// Why a caption set cannot be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// Hypotheses and reference sets differ in number: each hypothesis is
    /// scored against the references at its own position, so nothing is
    /// scored rather than a silently shortened set.
    #[error(
        "{hypotheses} hypotheses but {references} sets of references: each hypothesis needs its references"
    )]
    LengthMismatch {
        /// Hypotheses given.
        hypotheses: usize,
        /// Reference sets given.
        references: usize,
    },
    /// BERTScore's encoder failed.
    #[error(transparent)]
    BertScore(#[from] BertScoreError),
}

/// Each hypothesis must have its references.
fn check_lengths(hypotheses: usize, references: usize) -> Result<(), ScoreError> {
    if hypotheses == references {
        Ok(())
    } else {
        Err(ScoreError::LengthMismatch {
            hypotheses,
            references,
        })
    }
}

/// Which conventions to score with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// BLEU convention (default: the study's).
    pub bleu: Bleu,
    /// ROUGE options (default: no stemmer, rouge-score tokens).
    pub rouge: Rouge,
    /// Bootstrap for the confidence intervals.
    pub bootstrap: Bootstrap,
    /// Findings with the built-in labeller (default: on, positive labels
    /// only); `None` skips them.
    pub findings: Option<FindingsOptions>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            bleu: Bleu::default(),
            rouge: Rouge::default(),
            bootstrap: Bootstrap::default(),
            findings: Some(FindingsOptions::default()),
        }
    }
}

/// Scores of one caption; ROUGE values are F-measures. Serialized with
/// the [`Metric`] keys (`rougeL`), undefined scores as `null`, and read
/// back the same way (`null` is NaN again).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CaptionScores {
    /// Sentence BLEU (NaN where nltk's method 6 is undefined).
    #[serde(deserialize_with = "crate::metric::nan_if_null")]
    pub bleu: f64,
    /// ROUGE-1 F.
    #[serde(deserialize_with = "crate::metric::nan_if_null")]
    pub rouge1: f64,
    /// ROUGE-2 F.
    #[serde(deserialize_with = "crate::metric::nan_if_null")]
    pub rouge2: f64,
    /// ROUGE-L F.
    #[serde(rename = "rougeL", deserialize_with = "crate::metric::nan_if_null")]
    pub rouge_l: f64,
    /// ROUGE-Lsum F.
    #[serde(rename = "rougeLsum", deserialize_with = "crate::metric::nan_if_null")]
    pub rouge_lsum: f64,
    /// CIDEr-D of this caption within the scored set.
    #[serde(deserialize_with = "crate::metric::nan_if_null")]
    pub cider_d: f64,
    /// BERTScore, when an encoder was given.
    #[serde(default)]
    pub bert: Option<BertScoreValue>,
    /// Findings F1 against the best-matching reference (see
    /// [`crate::findings::scores`]), when findings are on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::metric::some_nan_if_null"
    )]
    pub findings_f1: Option<f64>,
}

impl CaptionScores {
    /// Each metric with its value, in output order (BERTScore's only when
    /// computed, findings F1 only when findings are on).
    pub fn named(&self) -> Vec<(Metric, f64)> {
        let mut named = vec![
            (Metric::Bleu, self.bleu),
            (Metric::Rouge1, self.rouge1),
            (Metric::Rouge2, self.rouge2),
            (Metric::RougeL, self.rouge_l),
            (Metric::RougeLsum, self.rouge_lsum),
            (Metric::CiderD, self.cider_d),
        ];
        if let Some(b) = self.bert {
            named.extend([
                (Metric::BertP, b.precision),
                (Metric::BertR, b.recall),
                (Metric::BertF1, b.f1),
            ]);
        }
        if let Some(f) = self.findings_f1 {
            named.push((Metric::FindingsF1, f));
        }
        named
    }

    /// The value of `metric` (`None` for one not computed).
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Bleu => Some(self.bleu),
            Metric::Rouge1 => Some(self.rouge1),
            Metric::Rouge2 => Some(self.rouge2),
            Metric::RougeL => Some(self.rouge_l),
            Metric::RougeLsum => Some(self.rouge_lsum),
            Metric::CiderD => Some(self.cider_d),
            Metric::BertP => self.bert.map(|b| b.precision),
            Metric::BertR => self.bert.map(|b| b.recall),
            Metric::BertF1 => self.bert.map(|b| b.f1),
            Metric::FindingsF1 => self.findings_f1,
            // Scored against images, not kept with the text scores.
            Metric::TruthFindingsF1 | Metric::ClipScore | Metric::RefClipScore => None,
        }
    }
}

/// Per-caption scores and a summary per metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredCaptions {
    /// One entry per hypothesis, in input order.
    pub per_caption: Vec<CaptionScores>,
    /// Mean, s.d. and 95% bootstrap interval per metric name.
    pub summary: BTreeMap<Metric, Summary>,
    /// Labels and clinical-efficacy scores, when findings are on.
    pub findings: Option<Findings>,
    /// With BERTScore: how many distinct texts were cut at the encoder's
    /// length limit.
    pub bertscore_truncated: Option<usize>,
}

/// The findings side of a scored caption set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Findings {
    /// Labels of each hypothesis.
    pub hypotheses: Vec<Labels>,
    /// Labels of each hypothesis's best-matching reference.
    pub references: Vec<Labels>,
    /// Per-observation and averaged precision, recall and F1.
    pub efficacy: ClinicalEfficacy,
}

/// BERTScore settings for [`score_captions_with_bertscore`] and
/// [`CaptionScorer::with_bertscore`].
#[derive(Clone, Copy)]
pub struct BertScoreSetup<'a> {
    /// The encoder.
    pub embedder: &'a dyn TokenEmbedder,
    /// idf weights from the references.
    pub idf: bool,
    /// Rescale with this baseline (bert-score's `rescale_with_baseline`).
    pub baseline: Option<Baseline>,
    /// `None`: batch-independent values; `Some(n)`: bert-score's values at
    /// its `batch_size=n` (see [`crate::bertscore`]).
    pub batch_size: Option<usize>,
}

/// Each metric's per-caption values.
fn columns(per_caption: &[CaptionScores]) -> BTreeMap<Metric, Vec<f64>> {
    let mut columns = ScoreColumns::default();
    columns.extend(per_caption);
    columns.columns.into_iter().collect()
}

impl ScoredCaptions {
    /// Each metric's per-caption values (input order).
    pub fn columns(&self) -> BTreeMap<Metric, Vec<f64>> {
        columns(&self.per_caption)
    }
}

/// Per-caption values of every metric, in input order: all that the
/// summaries need of a scored set, 8 bytes per caption and metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreColumns {
    /// Each metric and its values, in [`CaptionScores::named`] order.
    pub columns: Vec<(Metric, Vec<f64>)>,
}

impl ScoreColumns {
    /// Appends the values of `scores`, caption by caption.
    pub fn extend<'s>(&mut self, scores: impl IntoIterator<Item = &'s CaptionScores>) {
        for caption in scores {
            for (k, (name, value)) in caption.named().into_iter().enumerate() {
                match self.columns.get_mut(k) {
                    Some((n, values)) if *n == name => values.push(value),
                    _ => match self.columns.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, values)) => values.push(value),
                        None => self.columns.push((name, vec![value])),
                    },
                }
            }
        }
    }

    /// The values of `metric`.
    pub fn get(&self, metric: Metric) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(n, _)| *n == metric)
            .map(|(_, v)| v.as_slice())
    }

    /// Mean, s.d. and interval of every metric, from one set of resamples
    /// ([`crate::stats::summarize_columns`]).
    pub fn summarize(&self, bootstrap: &Bootstrap) -> BTreeMap<Metric, Summary> {
        let values: Vec<&[f64]> = self.columns.iter().map(|(_, v)| v.as_slice()).collect();
        self.columns
            .iter()
            .map(|(name, _)| *name)
            .zip(summarize_columns(&values, bootstrap))
            .collect()
    }

    /// Paired comparisons of `other` (system B) against these scores
    /// (system A), for every metric both have, from one set of resamples.
    pub fn compare(
        &self,
        other: &ScoreColumns,
        bootstrap: &Bootstrap,
    ) -> BTreeMap<Metric, PairedComparison> {
        let shared: Vec<(Metric, &[f64], &[f64])> = self
            .columns
            .iter()
            .filter_map(|(metric, a)| Some((*metric, a.as_slice(), other.get(*metric)?)))
            .collect();
        let a: Vec<&[f64]> = shared.iter().map(|s| s.1).collect();
        let b: Vec<&[f64]> = shared.iter().map(|s| s.2).collect();
        shared
            .iter()
            .map(|s| s.0)
            .zip(compare_paired_columns(&a, &b, bootstrap))
            .collect()
    }
}

/// The findings of one caption: its labels and those of its best-matching
/// reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptionFindings {
    /// Labels of the hypothesis.
    pub hypothesis: Labels,
    /// Labels of the reference with the highest findings F1.
    pub reference: Labels,
}

/// One chunk of scored captions, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredChunk {
    /// Scores of each caption.
    pub scores: Vec<CaptionScores>,
    /// Findings of each caption, when findings are on.
    pub findings: Option<Vec<CaptionFindings>>,
    /// With BERTScore: distinct texts of the chunk cut at the encoder's
    /// length limit.
    pub bertscore_truncated: Option<usize>,
}

/// Scores captions chunk by chunk against corpus statistics counted first
/// over every reference: CIDEr-D's document frequencies and, with idf,
/// BERTScore's weights. The streaming form of [`score_captions`], which is
/// this scorer run on one chunk; memory beyond those statistics is one
/// chunk's.
///
/// ```
/// use medcap_metrics::caption_scores::{CaptionScorer, Metrics, ScoreColumns};
/// use medcap_metrics::metric::Metric;
///
/// let refs = vec![vec!["small left pleural effusion"], vec!["normal chest radiograph"]];
/// let mut scorer = CaptionScorer::new(Metrics::default());
/// for r in &refs {
///     scorer.add_references(r)?;
/// }
/// let mut columns = ScoreColumns::default();
/// for (hyps, refs) in [(&["left pleural effusion"][..], &refs[..1]), (&["normal chest radiograph"][..], &refs[1..])] {
///     columns.extend(&scorer.score_chunk(hyps, refs)?.scores);
/// }
/// assert!(columns.summarize(&Default::default())[&Metric::Rouge1].mean > 0.8);
/// # Ok::<(), medcap_metrics::caption_scores::ScoreError>(())
/// ```
pub struct CaptionScorer<'a> {
    metrics: Metrics,
    cider: DocumentFrequencies,
    bert: Option<(BertScoreSetup<'a>, Option<IdfWeights>)>,
}

impl<'a> CaptionScorer<'a> {
    /// A scorer of the text metrics (and findings) in `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            cider: DocumentFrequencies::new(),
            bert: None,
        }
    }

    /// Adds BERTScore; call before [`Self::add_references`].
    pub fn with_bertscore(mut self, setup: BertScoreSetup<'a>) -> Self {
        let idf = setup.idf.then(IdfWeights::default);
        self.bert = Some((setup, idf));
        self
    }

    /// The conventions this scorer uses.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts the references of one caption into the corpus statistics.
    /// Every caption to be scored must be added, once, before scoring.
    ///
    /// # Errors
    /// [`BertScoreError::Encoder`] when idf weights need the tokenizer and it fails.
    pub fn add_references<R: AsRef<str>>(
        &mut self,
        references: &[R],
    ) -> Result<(), BertScoreError> {
        let bleu = self.metrics.bleu;
        self.cider
            .add_image_with(references, &|r, visit| bleu.each_token(r.as_ref(), visit));
        self.count_idf(references)
    }

    /// [`Self::add_references`] for many captions at once (`references[i]`
    /// the references of one caption), counted in parallel where the corpus
    /// statistics allow; the same result as one caption at a time.
    ///
    /// # Errors
    /// [`BertScoreError::Encoder`] when idf weights need the tokenizer and it fails.
    pub fn add_references_chunk<R: AsRef<str> + Sync>(
        &mut self,
        references: &[Vec<R>],
    ) -> Result<(), BertScoreError> {
        self.count_text(references);
        references.iter().try_for_each(|r| self.count_idf(r))
    }

    /// CIDEr-D's document frequencies of a chunk (the part that cannot fail).
    fn count_text<R: AsRef<str> + Sync>(&mut self, references: &[Vec<R>]) {
        let bleu = self.metrics.bleu;
        self.cider
            .add_images_with(references, &|r, visit| bleu.each_token(r.as_ref(), visit));
    }

    /// BERTScore's idf counts of one caption's references, when idf is on.
    fn count_idf<R: AsRef<str>>(&mut self, references: &[R]) -> Result<(), BertScoreError> {
        if let Some((setup, Some(idf))) = &mut self.bert {
            let texts: Vec<&str> = references.iter().map(AsRef::as_ref).collect();
            for ids in setup.embedder.token_ids(&texts)? {
                idf.add_reference(&ids);
            }
        }
        Ok(())
    }

    /// Scores `hypotheses[i]` against `references[i]`, in parallel.
    ///
    /// # Errors
    /// [`ScoreError::LengthMismatch`] when the slices differ in length,
    /// [`ScoreError::BertScore`] when BERTScore's encoder fails.
    pub fn score_chunk<H: AsRef<str> + Sync, R: AsRef<str> + Sync>(
        &self,
        hypotheses: &[H],
        references: &[Vec<R>],
    ) -> Result<ScoredChunk, ScoreError> {
        check_lengths(hypotheses.len(), references.len())?;
        let Some((setup, idf)) = &self.bert else {
            return Ok(self.score_text_chunk(hypotheses, references, None));
        };
        let hyps: Vec<&str> = hypotheses.iter().map(AsRef::as_ref).collect();
        let computed = bert_score_chunk(
            setup.embedder,
            &hyps,
            references,
            idf.as_ref(),
            setup.batch_size,
        )?;
        if computed.truncated_texts > 0 {
            tracing::warn!(
                texts = computed.truncated_texts,
                "BERTScore: texts longer than the tokenizer's model_max_length were truncated, as bert-score truncates them"
            );
        }
        let values: Vec<BertScoreValue> = match &setup.baseline {
            Some(b) => computed.values.into_iter().map(|s| b.rescale(s)).collect(),
            None => computed.values,
        };
        let mut chunk = self.score_text_chunk(hypotheses, references, Some(&values));
        chunk.bertscore_truncated = Some(computed.truncated_texts);
        Ok(chunk)
    }

    /// The text metrics and findings of a chunk, with BERTScore values given.
    fn score_text_chunk<H: AsRef<str> + Sync, R: AsRef<str> + Sync>(
        &self,
        hypotheses: &[H],
        references: &[Vec<R>],
        bert: Option<&[BertScoreValue]>,
    ) -> ScoredChunk {
        use rayon::prelude::*;
        let (metrics, cider) = (&self.metrics, &self.cider);
        let scored: Vec<(CaptionScores, Option<CaptionFindings>)> = (0..hypotheses.len())
            .into_par_iter()
            .map(|i| {
                score_one(
                    metrics,
                    cider,
                    hypotheses[i].as_ref(),
                    &references[i],
                    bert.and_then(|b| b.get(i).copied()),
                )
            })
            .collect();
        let (scores, findings): (Vec<CaptionScores>, Vec<Option<CaptionFindings>>) =
            scored.into_iter().unzip();
        ScoredChunk {
            scores,
            findings: metrics
                .findings
                .map(|_| findings.into_iter().flatten().collect()),
            bertscore_truncated: None,
        }
    }
}

/// Every metric of one caption.
fn score_one<R: AsRef<str>>(
    m: &Metrics,
    cider: &DocumentFrequencies,
    hypothesis: &str,
    references: &[R],
    bert: Option<BertScoreValue>,
) -> (CaptionScores, Option<CaptionFindings>) {
    let refs_text: Vec<&str> = references.iter().map(AsRef::as_ref).collect();
    let rouge = m.rouge.score_multi(hypothesis, &refs_text);
    let findings = m.findings.map(|options| {
        let labeller = Labeller::built_in();
        let hypothesis = labeller.label(hypothesis);
        let mut candidates: Vec<Labels> = refs_text.iter().map(|r| labeller.label(r)).collect();
        let (reference, f1) = match best_reference(&hypothesis, &candidates, options) {
            Some((best, f1)) => (candidates.swap_remove(best), f1),
            None => (Labels::default(), 0.0),
        };
        (
            CaptionFindings {
                hypothesis,
                reference,
            },
            f1,
        )
    });
    let scores = CaptionScores {
        bleu: m.bleu.sentence(hypothesis, &refs_text),
        rouge1: rouge.rouge1.fmeasure,
        rouge2: rouge.rouge2.fmeasure,
        rouge_l: rouge.rouge_l.fmeasure,
        rouge_lsum: rouge.rouge_lsum.fmeasure,
        cider_d: cider.score_with(hypothesis, &refs_text, &|t, visit| {
            m.bleu.each_token(t, visit);
        }),
        bert,
        findings_f1: findings.as_ref().map(|(_, f1)| *f1),
    };
    (scores, findings.map(|(f, _)| f))
}

/// Scores each hypothesis against its references. `references[i]` holds the
/// references of `hypotheses[i]`.
///
/// # Errors
/// [`ScoreError::LengthMismatch`] when the slices differ in length.
pub fn score_captions<H: AsRef<str> + Sync, R: AsRef<str> + Sync>(
    hypotheses: &[H],
    references: &[Vec<R>],
    metrics: &Metrics,
) -> Result<ScoredCaptions, ScoreError> {
    check_lengths(hypotheses.len(), references.len())?;
    let mut scorer = CaptionScorer::new(*metrics);
    scorer.count_text(references);
    let chunk = scorer.score_text_chunk(hypotheses, references, None);
    Ok(scored_captions(chunk, metrics))
}

/// [`score_captions`] plus BERTScore from `bert`'s encoder.
///
/// # Errors
/// [`ScoreError::LengthMismatch`] when the slices differ in length,
/// [`ScoreError::BertScore`] when BERTScore's encoder fails.
pub fn score_captions_with_bertscore<H: AsRef<str> + Sync, R: AsRef<str> + Sync>(
    hypotheses: &[H],
    references: &[Vec<R>],
    metrics: &Metrics,
    bert: &BertScoreSetup<'_>,
) -> Result<ScoredCaptions, ScoreError> {
    check_lengths(hypotheses.len(), references.len())?;
    let mut scorer = CaptionScorer::new(*metrics).with_bertscore(*bert);
    scorer.add_references_chunk(references)?;
    let chunk = scorer.score_chunk(hypotheses, references)?;
    Ok(scored_captions(chunk, metrics))
}

/// Summaries and clinical efficacy of a whole set scored as one chunk.
fn scored_captions(chunk: ScoredChunk, metrics: &Metrics) -> ScoredCaptions {
    let mut columns = ScoreColumns::default();
    columns.extend(&chunk.scores);
    let summary = columns.summarize(&metrics.bootstrap);
    let findings = match (chunk.findings, metrics.findings) {
        (Some(f), Some(options)) => Some(Findings::from_captions(f, options)),
        _ => None,
    };
    ScoredCaptions {
        per_caption: chunk.scores,
        summary,
        findings,
        bertscore_truncated: chunk.bertscore_truncated,
    }
}

impl Findings {
    /// The labels of every caption and the clinical efficacy over them.
    pub fn from_captions(captions: Vec<CaptionFindings>, options: FindingsOptions) -> Self {
        let (hypotheses, references): (Vec<Labels>, Vec<Labels>) = captions
            .into_iter()
            .map(|f| (f.hypothesis, f.reference))
            .unzip();
        let efficacy =
            clinical_efficacy(&hypotheses, &references.iter().collect::<Vec<_>>(), options);
        Self {
            hypotheses,
            references,
            efficacy,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scores_read_back_as_written_undefined_scores_included() {
        let scores = CaptionScores {
            bleu: f64::NAN,
            rouge1: 0.5,
            rouge2: 0.25,
            rouge_l: 0.5,
            rouge_lsum: 0.5,
            cider_d: 1.25,
            bert: Some(BertScoreValue {
                precision: f64::NAN,
                recall: 0.75,
                f1: f64::NAN,
            }),
            findings_f1: Some(1.0),
        };
        let json = serde_json::to_string(&scores).unwrap();
        assert!(
            json.contains("\"bleu\":null") && json.contains("\"rougeL\":0.5"),
            "{json}"
        );
        let back: CaptionScores = serde_json::from_str(&json).unwrap();
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        for ((ka, a), (kb, b)) in scores.named().into_iter().zip(back.named()) {
            assert!(ka == kb && same(a, b), "{ka}: {a} vs {b}");
        }
        // Without BERTScore and findings the keys are absent or null.
        let plain = r#"{"bleu":0.1,"rouge1":0.2,"rouge2":0.3,"rougeL":0.4,"rougeLsum":0.5,"cider_d":0.6,"bert":null}"#;
        let plain: CaptionScores = serde_json::from_str(plain).unwrap();
        assert_eq!(plain.bert, None);
        assert_eq!(plain.findings_f1, None);
        assert_eq!(plain.get(Metric::RougeLsum), Some(0.5));
        assert_eq!(plain.get(Metric::BertF1), None);
    }

    #[test]
    fn hypotheses_and_references_of_different_numbers_are_refused_not_truncated() {
        let err = score_captions(&["a", "b"], &[vec!["a"]], &Metrics::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ScoreError::LengthMismatch {
                    hypotheses: 2,
                    references: 1
                }
            ),
            "{err}"
        );
        let scorer = CaptionScorer::new(Metrics::default());
        assert!(scorer.score_chunk(&["a"], &[vec!["a"], vec!["b"]]).is_err());
    }
}
