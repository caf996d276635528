//! The report: Table 1 in the study's layout (Markdown, CSV, JSON) with
//! 95% confidence intervals, paired significance tests between every pair
//! of models, the loss curves of FT-1 and FT-2, a self-contained HTML page
//! comparing captions figure by figure (sortable by any score), and the
//! run's provenance.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use medcap_metrics::caption_scores::CaptionScores;
use medcap_metrics::clipscore::ClipScoreValue;
use medcap_metrics::metric::Metric;
use medcap_metrics::stats::{Bootstrap, PairedComparison, Summary, compare_paired, summarize};
use medcap_metrics::table1::{Table1, three_significant as sig};
use medcap_train::plot::{IntervalSeries, interval_plot};
use serde::Serialize;

use medcap_metrics::findings::scores::{ClinicalEfficacy, FindingsOptions, clinical_efficacy};
use medcap_metrics::findings::{Label, Labeller, Labels, Observation, Side};

use crate::error::{StudyError, io};
use crate::eval::CaptionRow;
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
    fn value(&self, i: usize, metric: Metric) -> f64 {
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
    let mut table = Vec::new();
    for m in models {
        for &metric in &present {
            table.push(TableEntry {
                model: m.name.clone(),
                metric,
                summary: summarize(&m.column(metric), &bootstrap),
            });
        }
    }
    let mut comparisons = Vec::new();
    for (i, a) in models.iter().enumerate() {
        for b in &models[i + 1..] {
            for &metric in &present {
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

fn entry<'a>(data: &'a ReportData, model: &str, metric: Metric) -> Option<&'a TableEntry> {
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
fn by_finding<'a>(
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A caption's findings as HTML: each mentioned observation with its label
/// (`?` uncertain, `no` negative) and side; against `reference`'s findings,
/// positive ones the reference has are marked `hit`, others `miss`, and the
/// reference's findings the caption lacks are listed as missed.
fn findings_html(
    labels: &Labels,
    reference: Option<&BTreeSet<(Observation, Option<Side>)>>,
) -> String {
    let mut parts = Vec::new();
    let options = FindingsOptions::default();
    let own = options.findings(labels);
    for (o, label) in labels.iter() {
        let sides: Vec<&str> = labels
            .sides(o)
            .iter()
            .map(|s| match s {
                Side::Left => "L",
                Side::Right => "R",
                Side::Bilateral => "bilat.",
            })
            .collect();
        let mark = match label {
            Label::Positive => "",
            Label::Uncertain => "? ",
            Label::Negative => "no ",
        };
        let class = match reference {
            Some(r) if label == Label::Positive => {
                if r.contains(&(o, None)) {
                    "hit"
                } else {
                    "miss"
                }
            }
            _ => "other",
        };
        let side = if sides.is_empty() {
            String::new()
        } else {
            format!(" ({})", sides.join(", "))
        };
        parts.push(format!(
            "<span class=\"f {class}\">{mark}{}{side}</span>",
            escape(o.name())
        ));
    }
    if let Some(r) = reference {
        for (o, _) in r.iter().filter(|k| !own.contains(k)) {
            parts.push(format!(
                "<span class=\"f missed\">missed: {}</span>",
                escape(o.name())
            ));
        }
    }
    format!("<div class=\"findings\">{}</div>", parts.join(" "))
}

/// The sort key of one model's score in the report's caption cards, as
/// `#sort=KEY` selects it: `ft2.rouge1` for FT-2's ROUGE-1.
fn score_key(model: &str, metric: Metric) -> String {
    format!("{}.{metric}", model.to_lowercase().replace('-', ""))
}

/// Writes `index.html` and copies the sample's images to `dir/images/`.
pub fn write_html(
    dir: &Path,
    models: &[ModelResult],
    data: &ReportData,
    sample: usize,
    decoding: &str,
    provenance: &serde_json::Value,
) -> Result<PathBuf, StudyError> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).map_err(io(&images))?;
    let n = models.first().map_or(0, |m| m.rows.len());
    // An even spread over the test set, the same figures for every model.
    let picks: Vec<usize> = if n <= sample {
        (0..n).collect()
    } else {
        (0..sample).map(|i| i * n / sample).collect()
    };
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>medcap: study reproduction</title>\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
         th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}th{background:#f3f3f3}\
         td.num{text-align:right;font-variant-numeric:tabular-nums}\
         .card{display:flex;gap:1em;border:1px solid #ccc;border-radius:6px;padding:.8em;margin:.8em 0;max-width:60em}\
         .card figure{margin:0;flex:none;text-align:center;font-size:12px;color:#666}.card img{width:200px;image-rendering:auto}\
         .texts{flex:1}.texts>div{margin-bottom:.6em}.ref{color:#444}.who{font-weight:600;display:inline-block;min-width:5.5em}\
         .scores{font-size:11px;color:#555;margin-top:2px}.score{margin-right:.9em;font-variant-numeric:tabular-nums}\
         .findings{margin-top:4px}.f{display:inline-block;font-size:11px;padding:0 4px;margin:1px;border-radius:3px;background:#eee}\
         .f.hit{background:#d4f5d4}.f.miss{background:#f8d0d0}.f.missed{background:#fff;border:1px dashed #c66;color:#a33}\n</style></head><body>\n\
         <h1>Fine-tuned vs general-purpose captioning: reproduction report</h1>\n",
    );
    let model_names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let _ = write!(
        html,
        "<h2>Table 1: mean and standard deviation over {n} test figures</h2>\n<table id=\"table1\"><tr><th rowspan=\"2\">Model</th>"
    );
    for metric in table_metrics(data) {
        let _ = write!(html, "<th colspan=\"2\">{}</th>", metric.heading());
    }
    html.push_str("</tr><tr>");
    html.push_str(&"<th>Avg.</th><th>S.d.</th>".repeat(table_metrics(data).count()));
    html.push_str("</tr>\n");
    for model in &model_names {
        let _ = write!(html, "<tr><td>{}</td>", escape(model));
        for metric in table_metrics(data) {
            if let Some(e) = entry(data, model, metric) {
                let _ = write!(
                    html,
                    "<td class=\"num\" title=\"95% CI [{}, {}]\">{}</td><td class=\"num\">{}</td>",
                    sig(e.summary.ci95.0),
                    sig(e.summary.ci95.1),
                    sig(e.summary.mean),
                    sig(e.summary.sd)
                );
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html.push_str("<p><img src=\"table1.svg\" alt=\"Table 1 as a chart: each model's mean and 95% interval per metric\" style=\"width:640px\"></p>\n");
    if let Some(note) = &data.clip_encoder {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(note));
    }
    html.push_str("<h2>Paired tests</h2>\n<table id=\"tests\"><tr><th>B vs A</th><th>metric</th><th>mean difference</th><th>95% CI</th><th>p</th></tr>\n");
    for c in &data.comparisons {
        let _ = writeln!(
            html,
            "<tr><td>{} vs {}</td><td>{}</td><td class=\"num\">{}</td><td>[{}, {}]</td><td class=\"num\">{}</td></tr>",
            escape(&c.b),
            escape(&c.a),
            escape(c.metric.heading()),
            sig(c.result.mean_difference),
            sig(c.result.ci95.0),
            sig(c.result.ci95.1),
            sig(c.result.p_value)
        );
    }
    html.push_str("</table>\n<h2>Findings: clinical efficacy against the reference captions</h2>\n<table id=\"findings\"><tr><th>Observation</th>");
    let efficacy = &data.findings;
    for model in &model_names {
        let _ = write!(
            html,
            "<th>{} P</th><th>{} R</th><th>{} F1</th>",
            escape(model),
            escape(model),
            escape(model)
        );
    }
    html.push_str("<th>Support</th></tr>\n");
    let rows = Observation::ALL.len();
    for i in 0..rows + 2 {
        let label = match i {
            i if i < rows => Observation::ALL[i].name(),
            i if i == rows => "micro avg (14)",
            _ => "micro avg (5)",
        };
        let _ = write!(html, "<tr><td>{}</td>", escape(label));
        let mut support = 0;
        for model in &model_names {
            let Some(e) = efficacy.get(model) else {
                continue;
            };
            let prf = match i {
                i if i < rows => {
                    support = e.per_observation[i].support;
                    e.per_observation[i].prf
                }
                i if i == rows => e.micro_14,
                _ => e.micro_5,
            };
            let _ = write!(
                html,
                "<td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td>",
                prf.precision, prf.recall, prf.f1
            );
        }
        let _ = writeln!(
            html,
            "<td class=\"num\">{}</td></tr>",
            if i < rows {
                support.to_string()
            } else {
                String::new()
            }
        );
    }
    html.push_str("</table>\n");
    if !data.truth_findings.is_empty() {
        html.push_str("<h2>Findings against the figures' true findings</h2>\n<p>Pooled over the test set (micro averages); with sides, a finding counts when the caption names it on its true side.</p>\n<table id=\"truth\"><tr><th>Model</th><th>P (with sides)</th><th>R (with sides)</th><th>F1 (with sides)</th><th>F1 (observations)</th></tr>\n");
        for model in &model_names {
            if let Some(t) = data.truth_findings.get(model) {
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td></tr>",
                    escape(model),
                    t.with_sides.precision,
                    t.with_sides.recall,
                    t.with_sides.f1,
                    t.observations.f1
                );
            }
        }
        html.push_str("</table>\n<p>By finding, with sides: present on the figures, named on its true side (recall), and invented (not there, or on the wrong side).</p>\n<table id=\"truth-by-finding\"><tr><th>Model</th><th>Finding</th><th>Present</th><th>Named right</th><th>Recall</th><th>Invented</th><th>Precision</th></tr>\n");
        for (model, o, c) in by_finding(data, &model_names) {
            let prf = Prf::from(c);
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td></tr>",
                escape(model),
                escape(o.name()),
                c.tp + c.fn_,
                c.tp,
                prf.recall,
                c.fp,
                prf.precision
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("<h2>Repetition</h2>\n<table id=\"repetition\"><tr><th>Model</th><th>Captions repeating a word, phrase or word piece 3 times in a row</th><th>Distinct captions</th><th>Most frequent caption</th></tr>\n");
    for model in &model_names {
        if let Some(r) = data.repetition.get(model) {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{} of {}</td><td>{} ({}&times;)</td></tr>",
                escape(model),
                100.0 * r.three_times_in_a_row,
                r.distinct,
                r.captions,
                escape(&r.most_common.0),
                r.most_common.1
            );
        }
    }
    html.push_str("</table>\n");
    if !data.targets.is_empty() {
        html.push_str("<h2>Reproduction targets</h2>\n<table id=\"targets\"><tr><th>Target</th><th>Measured</th><th>Met</th></tr>\n");
        for t in &data.targets {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&t.requirement),
                escape(&t.measured),
                match (t.met, t.required) {
                    (true, _) => "yes",
                    (false, true) => "<b>no</b>",
                    (false, false) => "not yet (goal)",
                }
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("<h2>Loss curves</h2>\n<p><img src=\"figure3_ft1_loss.svg\" alt=\"FT-1 loss\" style=\"width:480px\"> <img src=\"figure4_ft2_loss.svg\" alt=\"FT-2 loss\" style=\"width:480px\"></p>\n");
    let _ = write!(
        html,
        "<h2>Captions of {} test figures</h2>\n<p>Decoding: {}. Each card shows a figure, its reference caption and each model's caption with its scores and findings \
         (green: named by the reference too; red: not in the reference; dashed: the reference's findings the caption misses).</p>\n\
         <p><label>Sort by <select id=\"sort\"><option value=\"\">test-set order</option>",
        picks.len(),
        escape(decoding)
    );
    for model in &model_names {
        for metric in table_metrics(data) {
            let _ = write!(
                html,
                "<option value=\"{}\">{} {}</option>",
                score_key(model, metric),
                escape(model),
                metric.heading()
            );
        }
    }
    html.push_str(
        "</select></label> <label><input type=\"checkbox\" id=\"ascending\"> lowest first</label></p>\n<div id=\"captions\">\n",
    );
    let labeller = Labeller::built_in();
    let options = FindingsOptions::default();
    for (order, &i) in picks.iter().enumerate() {
        let Some(first) = models.first().map(|m| &m.rows[i]) else {
            break;
        };
        let source = Path::new(&first.image_path);
        let extension = source.extension().and_then(|e| e.to_str()).unwrap_or("png");
        let file = format!("{i:04}.{extension}");
        medcap_io::copy_atomic(source, &images.join(&file))?;
        let reference_labels = labeller.label(&first.reference);
        let reference_findings = options.findings(&reference_labels);
        let _ = write!(
            html,
            "<div class=\"card\" data-id=\"{}\" data-order=\"{order}\"><figure><img src=\"images/{file}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\
             <div class=\"texts\"><div class=\"ref\"><span class=\"who\">Reference</span> {}{}</div>",
            escape(&first.id),
            escape(&first.id),
            escape(&first.id),
            escape(&first.reference),
            findings_html(&reference_labels, None)
        );
        for m in models {
            let _ = write!(
                html,
                "<div class=\"cap\"><span class=\"who\">{}</span> {}{}<div class=\"scores\">",
                escape(&m.name),
                escape(&m.rows[i].caption),
                findings_html(
                    &labeller.label(&m.rows[i].caption),
                    Some(&reference_findings)
                )
            );
            for metric in table_metrics(data) {
                let v = m.value(i, metric);
                // A model without the encoder's values, or a figure whose
                // image could not be read, has no CLIPScore to show.
                if v.is_nan() && matches!(metric, Metric::ClipScore | Metric::RefClipScore) {
                    continue;
                }
                let _ = write!(
                    html,
                    "<span class=\"score\" data-key=\"{}\" data-value=\"{v}\">{} {v:.3}</span>",
                    score_key(&m.name, metric),
                    metric.heading()
                );
            }
            html.push_str("</div></div>");
        }
        html.push_str("</div></div>\n");
    }
    html.push_str("</div>\n<h2>Provenance</h2>\n<pre id=\"provenance\">");
    html.push_str(&escape(&format!("{provenance:#}")));
    html.push_str(
        "</pre>\n<script>\n\
         function sortBy(key, descending) {\n\
           const box = document.getElementById('captions');\n\
           const cards = Array.from(box.children);\n\
           const value = c => { if (!key) { return parseFloat(c.dataset.order); } const s = c.querySelector('span[data-key=\"' + key + '\"]'); return s ? parseFloat(s.dataset.value) : NaN; };\n\
           cards.sort((a, b) => { const x = value(a), y = value(b); const d = (isNaN(x) ? -Infinity : x) - (isNaN(y) ? -Infinity : y); return descending ? -d : d; });\n\
           cards.forEach(c => box.appendChild(c));\n\
           document.body.dataset.sortedBy = key + (descending ? ':desc' : ':asc');\n\
         }\n\
         const select = document.getElementById('sort'), ascending = document.getElementById('ascending');\n\
         const resort = () => sortBy(select.value, select.value !== '' && !ascending.checked);\n\
         select.addEventListener('change', resort);\n\
         ascending.addEventListener('change', resort);\n\
         const wanted = new URLSearchParams(location.hash.slice(1)).get('sort');\n\
         if (wanted) { select.value = wanted.replace(/:asc$/, ''); ascending.checked = wanted.endsWith(':asc'); resort(); }\n\
         </script>\n</body></html>\n",
    );
    let path = dir.join("index.html");
    medcap_io::write_atomic(&path, html.as_bytes())?;
    Ok(path)
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
