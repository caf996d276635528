//! Every text metric of one set of captions at once: per-caption scores and
//! their summaries, as `medcap score` and the study's Table 1 need them.
//!
//! ```
//! use medcap_metrics::caption_scores::{score_captions, Metrics};
//!
//! let hyps = ["left pleural effusion", "normal chest radiograph"];
//! let refs = vec![vec!["small left pleural effusion"], vec!["normal chest radiograph"]];
//! let scored = score_captions(&hyps, &refs, &Metrics::default());
//! assert_eq!(scored.per_caption.len(), 2);
//! assert!(scored.summary["rouge1"].mean > 0.8);
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bertscore::{
    Baseline, BertScoreError, BertScoreOptions, BertScoreValue, TokenEmbedder, bert_score_with,
};
use crate::bleu::Bleu;
use crate::cider::cider_d;
use crate::findings::scores::{
    ClinicalEfficacy, FindingsOptions, best_reference, clinical_efficacy,
};
use crate::findings::{Labeller, Labels};
use crate::rouge::Rouge;
use crate::stats::{Bootstrap, Summary, summarize};

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

/// Scores of one caption; ROUGE values are F-measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CaptionScores {
    /// Sentence BLEU (NaN where nltk's method 6 is undefined).
    pub bleu: f64,
    /// ROUGE-1 F.
    pub rouge1: f64,
    /// ROUGE-2 F.
    pub rouge2: f64,
    /// ROUGE-L F.
    #[serde(rename = "rougeL")]
    pub rouge_l: f64,
    /// ROUGE-Lsum F.
    #[serde(rename = "rougeLsum")]
    pub rouge_lsum: f64,
    /// CIDEr-D of this caption within the scored set.
    pub cider_d: f64,
    /// BERTScore, when an encoder was given.
    pub bert: Option<BertScoreValue>,
    /// Findings F1 against the best-matching reference (see
    /// [`crate::findings::scores`]), when findings are on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings_f1: Option<f64>,
}

impl CaptionScores {
    /// Metric names and values, in output order (BERTScore's only when computed).
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        let mut named = vec![
            ("bleu", self.bleu),
            ("rouge1", self.rouge1),
            ("rouge2", self.rouge2),
            ("rougeL", self.rouge_l),
            ("rougeLsum", self.rouge_lsum),
            ("cider_d", self.cider_d),
        ];
        if let Some(b) = self.bert {
            named.extend([
                ("bert_p", b.precision),
                ("bert_r", b.recall),
                ("bert_f1", b.f1),
            ]);
        }
        if let Some(f) = self.findings_f1 {
            named.push(("findings_f1", f));
        }
        named
    }
}

/// Per-caption scores and a summary per metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredCaptions {
    /// One entry per hypothesis, in input order.
    pub per_caption: Vec<CaptionScores>,
    /// Mean, s.d. and 95% bootstrap interval per metric name.
    pub summary: BTreeMap<&'static str, Summary>,
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

/// BERTScore settings for [`score_captions_with_bertscore`].
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

/// Each metric's per-caption values, by metric name.
fn columns(per_caption: &[CaptionScores]) -> BTreeMap<&'static str, Vec<f64>> {
    let mut columns: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for caption in per_caption {
        for (name, value) in caption.named() {
            columns.entry(name).or_default().push(value);
        }
    }
    columns
}

impl ScoredCaptions {
    /// Each metric's per-caption values, by metric name (input order).
    pub fn columns(&self) -> BTreeMap<&'static str, Vec<f64>> {
        columns(&self.per_caption)
    }
}

/// Scores each hypothesis against its references. `references[i]` holds the
/// references of `hypotheses[i]`; the slices must have the same length (the
/// shorter one decides otherwise).
pub fn score_captions<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[Vec<R>],
    metrics: &Metrics,
) -> ScoredCaptions {
    score_text_metrics(hypotheses, references, metrics, None)
}

/// [`score_captions`] plus BERTScore from `bert`'s encoder.
pub fn score_captions_with_bertscore<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[Vec<R>],
    metrics: &Metrics,
    bert: &BertScoreSetup<'_>,
) -> Result<ScoredCaptions, BertScoreError> {
    let n = hypotheses.len().min(references.len());
    let hyps: Vec<&str> = hypotheses[..n].iter().map(AsRef::as_ref).collect();
    let options = BertScoreOptions {
        idf: bert.idf,
        batch_size: bert.batch_size,
    };
    let computed = bert_score_with(bert.embedder, &hyps, &references[..n], &options)?;
    if computed.truncated_texts > 0 {
        tracing::warn!(
            texts = computed.truncated_texts,
            "BERTScore: texts longer than the tokenizer's model_max_length were truncated, as bert-score truncates them"
        );
    }
    let mut scores = computed.values;
    if let Some(baseline) = &bert.baseline {
        scores = scores.into_iter().map(|s| baseline.rescale(s)).collect();
    }
    let mut scored = score_text_metrics(hypotheses, references, metrics, Some(&scores));
    scored.bertscore_truncated = Some(computed.truncated_texts);
    Ok(scored)
}

fn score_text_metrics<H: AsRef<str>, R: AsRef<str>>(
    hypotheses: &[H],
    references: &[Vec<R>],
    metrics: &Metrics,
    bert: Option<&[BertScoreValue]>,
) -> ScoredCaptions {
    let n = hypotheses.len().min(references.len());
    let bleu_tokens: Vec<(Vec<String>, Vec<Vec<String>>)> = (0..n)
        .map(|i| {
            (
                metrics.bleu.tokenize(hypotheses[i].as_ref()),
                references[i]
                    .iter()
                    .map(|r| metrics.bleu.tokenize(r.as_ref()))
                    .collect(),
            )
        })
        .collect();
    let cider = cider_d(&bleu_tokens);
    let findings = metrics.findings.map(|options| {
        let labeller = Labeller::built_in();
        let texts: Vec<&str> = hypotheses[..n].iter().map(AsRef::as_ref).collect();
        let hyps = labeller.label_all(&texts);
        // Each caption's best-matching reference, by findings F1.
        let mut f1s = Vec::with_capacity(n);
        let refs: Vec<Labels> = (0..n)
            .map(|i| {
                let mut candidates: Vec<Labels> = references[i]
                    .iter()
                    .map(|r| labeller.label(r.as_ref()))
                    .collect();
                match best_reference(&hyps[i], &candidates, options) {
                    Some((best, f1)) => {
                        f1s.push(f1);
                        candidates.swap_remove(best)
                    }
                    None => {
                        f1s.push(0.0);
                        Labels::default()
                    }
                }
            })
            .collect();
        let efficacy = clinical_efficacy(&hyps, &refs.iter().collect::<Vec<_>>(), options);
        (
            f1s,
            Findings {
                hypotheses: hyps,
                references: refs,
                efficacy,
            },
        )
    });
    let per_caption: Vec<CaptionScores> = (0..n)
        .map(|i| {
            let (h, refs) = &bleu_tokens[i];
            let refs_text: Vec<&str> = references[i].iter().map(AsRef::as_ref).collect();
            let rouge = metrics
                .rouge
                .score_multi(&refs_text, hypotheses[i].as_ref());
            CaptionScores {
                bleu: metrics.bleu.sentence_tokens(h, refs),
                rouge1: rouge.rouge1.fmeasure,
                rouge2: rouge.rouge2.fmeasure,
                rouge_l: rouge.rouge_l.fmeasure,
                rouge_lsum: rouge.rouge_lsum.fmeasure,
                cider_d: cider.per_image[i],
                bert: bert.and_then(|b| b.get(i).copied()),
                findings_f1: findings.as_ref().map(|(f1s, _)| f1s[i]),
            }
        })
        .collect();
    let summary = columns(&per_caption)
        .into_iter()
        .map(|(name, values)| (name, summarize(&values, &metrics.bootstrap)))
        .collect();
    ScoredCaptions {
        per_caption,
        summary,
        findings: findings.map(|(_, f)| f),
        bertscore_truncated: None,
    }
}
