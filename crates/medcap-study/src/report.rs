//! The report: Table 1 in the study's layout (Markdown, CSV, JSON) with
//! 95% confidence intervals, paired significance tests between every pair
//! of models, the loss curves of FT-1 and FT-2, a self-contained HTML page
//! comparing captions figure by figure (sortable by any score), and the
//! run's provenance.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use medcap_metrics::caption_scores::CaptionScores;
use medcap_metrics::clipscore::ClipScoreValue;
use medcap_metrics::metric::Metric;
use medcap_metrics::stats::{Bootstrap, PairedComparison, Summary, compare_paired, summarize};
use medcap_metrics::table1::{Table1, three_significant as sig};
use medcap_train::plot::{IntervalSeries, interval_plot};
use serde::Serialize;

use medcap_metrics::findings::scores::{ClinicalEfficacy, FindingsOptions, clinical_efficacy};
use medcap_metrics::findings::{Labeller, Observation};

use crate::error::{StudyError, io};
use crate::eval::CaptionRow;
pub use crate::page::write_html;
use crate::truth::TruthScore;
use medcap_metrics::findings::scores::{FindingCounts, Prf};
use medcap_metrics::repetition::share_repeating;

/// Table 1's metrics: the study's five in its column order, then the
/// findings F1 against the reference captions and, on synthetic data,
/// against the figures' true findings.
pub const TABLE_METRICS: [Metric; 9] = [
    Metric::Bleu,
    Metric::BertF1,
    Metric::Rouge1,
    Metric::Rouge2,
    Metric::RougeL,
    Metric::FindingsF1,
    Metric::TruthFindingsF1,
    Metric::ClipScore,
    Metric::RefClipScore,
];

/// The metrics of `data`'s Table 1 (those with values), in column order.
pub fn table_metrics(data: &ReportData) -> impl Iterator<Item = Metric> + '_ {
    data.metrics.iter().copied()
}

/// One model's evaluation.
pub struct ModelResult {
    /// Display name (BLIP, FT-1, FT-2).
    pub name: String,
    /// Captions of the test figures.
    pub rows: Vec<CaptionRow>,
    /// Their scores.
    pub scores: Vec<CaptionScores>,
    /// Each caption against its figure's true findings (synthetic data only).
    pub truth: Option<Vec<TruthScore>>,
    /// Each caption's CLIPScore against its figure, when the study has an
    /// image–text encoder (`clip_model`); `None` in a row whose image could
    /// not be read.
    pub clip: Option<Vec<Option<ClipScoreValue>>>,
}

impl ModelResult {
    /// Caption `i`'s value of `metric` (NaN where it has none).
    pub(crate) fn value(&self, i: usize, metric: Metric) -> f64 {
        if matches!(metric, Metric::ClipScore | Metric::RefClipScore) {
            let value = self.clip.as_ref().and_then(|c| c.get(i).copied().flatten());
            return match metric {
                Metric::ClipScore => value.map(|v| v.clip_s),
                _ => value.and_then(|v| v.ref_clip_s),
            }
            .unwrap_or(f64::NAN);
        }
        if metric == Metric::TruthFindingsF1 {
            return self
                .truth
                .as_ref()
                .and_then(|t| t.get(i))
                .map_or(f64::NAN, |t| t.f1);
        }
        self.scores
            .get(i)
            .and_then(|s| s.get(metric))
            .unwrap_or(f64::NAN)
    }

    fn column(&self, metric: Metric) -> Vec<f64> {
        (0..self.scores.len())
            .map(|i| self.value(i, metric))
            .collect()
    }
}

/// One cell group of Table 1.
#[derive(Debug, Clone, Serialize)]
pub struct TableEntry {
    /// Model.
    pub model: String,
    /// Metric.
    pub metric: Metric,
    /// Mean, s.d., n and 95% bootstrap interval.
    pub summary: Summary,
}

/// A paired test of model `b` against model `a` on one metric.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Baseline model.
    pub a: String,
    /// Compared model.
    pub b: String,
    /// Metric.
    pub metric: Metric,
    /// Mean difference, its interval, and the permutation p-value.
    pub result: PairedComparison,
}

/// Everything the report says, as written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// The metrics Table 1 has, in column order.
    pub metrics: Vec<Metric>,
    /// Table 1.
    pub table: Vec<TableEntry>,
    /// Paired tests.
    pub comparisons: Vec<Comparison>,
    /// Each model's clinical efficacy against the reference captions.
    pub findings: BTreeMap<String, ClinicalEfficacy>,
    /// Each model's findings against the figures' true findings (synthetic
    /// data only; empty otherwise).
    pub truth_findings: BTreeMap<String, TruthEfficacy>,
    /// Each model's repetition and variety of captions.
    pub repetition: BTreeMap<String, Repetition>,
    /// The reproduction targets and whether this run meets them (synthetic
    /// data only; empty otherwise), see [`crate::targets`].
    pub targets: Vec<crate::targets::Target>,
    /// How the CLIP-S and RefCLIP-S columns were computed (the encoder and
    /// form), when the study has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_encoder: Option<String>,
}

/// A model's captions against the figures' true findings, pooled over the
/// test set (micro averages: a model that names no finding scores 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthEfficacy {
    /// Observations with their side: the finding and where it is.
    pub with_sides: Prf,
    /// Observations alone.
    pub observations: Prf,
    /// Pooled counts with sides for each observation that some figure or
    /// caption has: named on the right side (`tp`), invented or named on the
    /// wrong side (`fp`), missed or named on the wrong side (`fn_`).
    pub by_observation: BTreeMap<Observation, FindingCounts>,
}

/// How degenerate a model's captions are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repetition {
    /// Share of captions that say a word, a phrase or a piece of a word
    /// three or more times in a row (medcap-metrics' `repetition`).
    pub three_times_in_a_row: f64,
    /// Distinct captions.
    pub distinct: usize,
    /// Captions.
    pub captions: usize,
    /// The most frequent caption and how often it comes.
    pub most_common: (String, usize),
}

impl Repetition {
    fn of(captions: &[&str]) -> Self {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in captions {
            *counts.entry(c).or_default() += 1;
        }
        // The most frequent, the first in sort order on ties.
        let most_common = counts
            .iter()
            .max_by_key(|&(c, &n)| (n, std::cmp::Reverse(*c)))
            .map_or((String::new(), 0), |(c, &n)| ((*c).to_owned(), n));
        Self {
            three_times_in_a_row: share_repeating(captions, 3),
            distinct: counts.len(),
            captions: captions.len(),
            most_common,
        }
    }
}

/// Computes Table 1 and the paired tests.
pub fn analyse(models: &[ModelResult], bootstrap: Bootstrap) -> ReportData {
    // A metric no model has a value of (truth on real data) has no column.
    let present: Vec<Metric> = TABLE_METRICS
        .into_iter()
        .filter(|&k| {
            models
                .iter()
                .any(|m| m.column(k).iter().any(|v| !v.is_nan()))
        })
        .collect();
    // A model with no value of a metric (no CLIPScore from the encoder) has
    // no entry and no test on it, rather than a mean of 0.
    let mut table = Vec::new();
    for m in models {
        for &metric in &present {
            let summary = summarize(&m.column(metric), &bootstrap);
            if summary.n > 0 {
                table.push(TableEntry {
                    model: m.name.clone(),
                    metric,
                    summary,
                });
            }
        }
    }
    let mut comparisons = Vec::new();
    for (i, a) in models.iter().enumerate() {
        for b in &models[i + 1..] {
            for &metric in &present {
                let paired = a
                    .column(metric)
                    .iter()
                    .zip(b.column(metric))
                    .any(|(x, y)| !x.is_nan() && !y.is_nan());
                if !paired {
                    continue;
                }
                comparisons.push(Comparison {
                    a: a.name.clone(),
                    b: b.name.clone(),
                    metric,
                    result: compare_paired(&a.column(metric), &b.column(metric), &bootstrap),
                });
            }
        }
    }
    let truth_findings = models
        .iter()
        .filter_map(|m| {
            let truth = m.truth.as_ref()?;
            let pool =
                |f: fn(&TruthScore) -> FindingCounts| truth.iter().map(f).sum::<FindingCounts>();
            Some((
                m.name.clone(),
                TruthEfficacy {
                    with_sides: Prf::from(pool(|t| t.with_sides)),
                    observations: Prf::from(pool(|t| t.observations)),
                    by_observation: truth.iter().flat_map(|t| &t.by_observation).fold(
                        BTreeMap::new(),
                        |mut pooled, (o, counts)| {
                            let sum: &mut FindingCounts = pooled.entry(*o).or_default();
                            *sum = *sum + *counts;
                            pooled
                        },
                    ),
                },
            ))
        })
        .collect();
    let repetition = models
        .iter()
        .map(|m| {
            let captions: Vec<&str> = m.rows.iter().map(|r| r.caption.as_str()).collect();
            (m.name.clone(), Repetition::of(&captions))
        })
        .collect();
    let mut data = ReportData {
        metrics: present,
        table,
        comparisons,
        findings: clinical_efficacy_by_model(models),
        truth_findings,
        repetition,
        targets: Vec::new(),
        clip_encoder: None,
    };
    data.targets = crate::targets::check(&data);
    data
}

pub(crate) fn entry<'a>(
    data: &'a ReportData,
    model: &str,
    metric: Metric,
) -> Option<&'a TableEntry> {
    data.table
        .iter()
        .find(|e| e.model == model && e.metric == metric)
}

/// Table 1 of `data` for `models` in medcap-metrics' layout.
pub fn table1(data: &ReportData, models: &[String]) -> Table1 {
    let rows = models
        .iter()
        .map(|model| {
            let summaries = data
                .table
                .iter()
                .filter(|e| &e.model == model)
                .map(|e| (e.metric, e.summary))
                .collect();
            (model.clone(), summaries)
        })
        .collect();
    Table1::new(&data.metrics, rows)
}

/// Table 1 as a chart: each model's mean and 95% interval per metric of
/// the 0–1 scale (CLIPScore's 0–2.5 is left to the table), drawn by the
/// plotting code of the loss curves.
pub fn table1_chart(data: &ReportData, models: &[String]) -> String {
    const COLOURS: [&str; 6] = [
        "#7f7f7f", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let metrics: Vec<Metric> = data
        .metrics
        .iter()
        .copied()
        .filter(|m| !matches!(m, Metric::ClipScore | Metric::RefClipScore))
        .collect();
    let headings: Vec<&str> = metrics.iter().map(|m| m.heading()).collect();
    let series: Vec<IntervalSeries> = models
        .iter()
        .enumerate()
        .map(|(i, model)| IntervalSeries {
            label: model.clone(),
            colour: COLOURS[i % COLOURS.len()].to_owned(),
            values: metrics
                .iter()
                .map(|&m| {
                    entry(data, model, m).map_or((f64::NAN, f64::NAN, f64::NAN), |e| {
                        (e.summary.mean, e.summary.ci95.0, e.summary.ci95.1)
                    })
                })
                .collect(),
        })
        .collect();
    interval_plot(
        "Table 1: means and 95% bootstrap intervals",
        "mean over the test figures",
        &headings,
        &series,
    )
}

/// The paired tests as Markdown.
pub fn comparisons_markdown(data: &ReportData) -> String {
    let mut md = String::from(
        "| B vs A | metric | mean difference (B - A) | 95% CI | p (paired permutation) |\n|---|---|---:|---|---:|\n",
    );
    for c in &data.comparisons {
        let heading = c.metric.heading();
        let _ = writeln!(
            md,
            "| {} vs {} | {heading} | {} | [{}, {}] | {} |",
            c.b,
            c.a,
            sig(c.result.mean_difference),
            sig(c.result.ci95.0),
            sig(c.result.ci95.1),
            sig(c.result.p_value)
        );
    }
    md
}

/// The rows of the by-finding table: each model (in `models`' order) with
/// each observation its figures or captions have, and the pooled counts.
pub(crate) fn by_finding<'a>(
    data: &'a ReportData,
    models: &'a [String],
) -> impl Iterator<Item = (&'a str, Observation, FindingCounts)> + 'a {
    models.iter().flat_map(move |m| {
        data.truth_findings
            .get(m)
            .into_iter()
            .flat_map(|t| &t.by_observation)
            .map(move |(o, c)| (m.as_str(), *o, *c))
    })
}

/// The findings against the figures' true findings (pooled micro averages)
/// and the captions' repetition and variety, as Markdown.
pub fn captions_markdown(data: &ReportData, models: &[String]) -> String {
    let mut md = String::new();
    if !data.truth_findings.is_empty() {
        md += "| Model | micro P (with sides) | micro R (with sides) | micro F1 (with sides) | micro F1 (observations) |\n|---|---:|---:|---:|---:|\n";
        for m in models {
            if let Some(t) = data.truth_findings.get(m) {
                let _ = writeln!(
                    md,
                    "| {m} | {:.3} | {:.3} | {:.3} | {:.3} |",
                    t.with_sides.precision, t.with_sides.recall, t.with_sides.f1, t.observations.f1
                );
            }
        }
        md.push('\n');
        md += "By finding, with sides (present: on the figures; named right: on its true side; invented: not there or on the wrong side):\n\n| Model | Finding | present | named right | recall | invented | precision |\n|---|---|---:|---:|---:|---:|---:|\n";
        for (m, o, c) in by_finding(data, models) {
            let prf = Prf::from(c);
            let _ = writeln!(
                md,
                "| {m} | {} | {} | {} | {:.2} | {} | {:.2} |",
                o.name(),
                c.tp + c.fn_,
                c.tp,
                prf.recall,
                c.fp,
                prf.precision
            );
        }
        md.push('\n');
    }
    md += "| Model | captions repeating a word, phrase or word piece 3 times in a row | distinct captions | most frequent caption |\n|---|---:|---:|---|\n";
    for m in models {
        if let Some(r) = data.repetition.get(m) {
            let _ = writeln!(
                md,
                "| {m} | {:.1}% | {} of {} | {} ({}x) |",
                100.0 * r.three_times_in_a_row,
                r.distinct,
                r.captions,
                r.most_common.0.replace('|', "\\|"),
                r.most_common.1
            );
        }
    }
    md
}

/// Each model's clinical efficacy against the reference captions (positive
/// labels): per observation and averaged, as `report.json` holds it.
fn clinical_efficacy_by_model(models: &[ModelResult]) -> BTreeMap<String, ClinicalEfficacy> {
    let labeller = Labeller::built_in();
    models
        .iter()
        .map(|m| {
            let captions: Vec<&str> = m.rows.iter().map(|r| r.caption.as_str()).collect();
            let references: Vec<&str> = m.rows.iter().map(|r| r.reference.as_str()).collect();
            let hyps = labeller.label_all(&captions);
            let refs = labeller.label_all(&references);
            let efficacy = clinical_efficacy(
                &hyps,
                &refs.iter().collect::<Vec<_>>(),
                FindingsOptions::default(),
            );
            (m.name.clone(), efficacy)
        })
        .collect()
}

/// Writes every report file into `dir`.
pub fn write_report(
    dir: &Path,
    models: &[ModelResult],
    bootstrap: Bootstrap,
    sample: usize,
    decoding: &str,
    clip_encoder: Option<&str>,
    provenance: &serde_json::Value,
) -> Result<ReportData, StudyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut data = analyse(models, bootstrap);
    data.clip_encoder = clip_encoder.map(str::to_owned);
    let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let mut md = String::from(
        "# Table 1: average and standard deviation of the study's five metrics and the findings F1 between models\n\n",
    );
    let table = table1(&data, &names);
    md += &table.to_markdown();
    if let Some(note) = &data.clip_encoder {
        md += &format!("\n{note}\n");
    }
    md += "\n## Paired tests\n\n";
    md += &comparisons_markdown(&data);
    md += "\n## Findings against the figures' true findings, and repetition\n\n";
    md += &captions_markdown(&data, &names);
    if !data.targets.is_empty() {
        md += "\n## Reproduction targets\n\n";
        md += &crate::targets::markdown(&data.targets);
    }
    medcap_io::write_atomic(&dir.join("table1.md"), md.as_bytes())?;
    medcap_io::write_atomic(
        &dir.join("table1.svg"),
        table1_chart(&data, &names).as_bytes(),
    )?;
    medcap_io::write_atomic(&dir.join("table1.csv"), table.to_csv().as_bytes())?;
    medcap_io::write_json_atomic(&dir.join("report.json"), &data)?;
    let per_caption: BTreeMap<&str, Vec<serde_json::Value>> = models
        .iter()
        .map(|m| {
            let rows = m
                .rows
                .iter()
                .zip(&m.scores)
                .map(|(r, s)| serde_json::json!({"id": r.id, "reference": r.reference, "caption": r.caption, "scores": s}))
                .collect();
            (m.name.as_str(), rows)
        })
        .collect();
    let captions = dir.join("captions.json");
    let per_caption = serde_json::to_vec(&per_caption).map_err(|e| io(&captions)(e.into()))?;
    medcap_io::write_atomic(&captions, &per_caption)?;
    medcap_io::write_json_atomic(&dir.join("provenance.json"), provenance)?;
    write_html(dir, models, &data, sample, decoding, provenance)?;
    Ok(data)
}
