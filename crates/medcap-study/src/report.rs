//! The report: Table 1 in the study's layout (Markdown, CSV, JSON) with
//! 95% confidence intervals, paired significance tests between every pair
//! of models, the loss curves of FT-1 and FT-2, a self-contained HTML page
//! comparing captions figure by figure (sortable by any score), and the
//! run's provenance.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use medcap_metrics::caption_scores::CaptionScores;
use medcap_metrics::stats::{Bootstrap, PairedComparison, Summary, compare_paired, summarize};
use serde::Serialize;

use medcap_metrics::findings::scores::{ClinicalEfficacy, FindingsOptions, clinical_efficacy};
use medcap_metrics::findings::{Label, Labeller, Labels, Observation, Side};

use crate::error::{StudyError, io};
use crate::eval::CaptionRow;

/// Table 1's metrics: the study's five in its column order, then the
/// findings F1 against the reference captions and, on synthetic data,
/// against the figures' true findings: (key, heading).
pub const TABLE_METRICS: [(&str, &str); 7] = [
    ("bleu", "BLEU"),
    ("bert_f1", "BERT-F1"),
    ("rouge1", "ROUGE-1"),
    ("rouge2", "ROUGE-2"),
    ("rougeL", "ROUGE-L"),
    ("findings_f1", "Findings F1"),
    (TRUTH_F1, "Findings F1 vs truth"),
];

/// The key of the findings F1 against a synthetic figure's true findings.
pub const TRUTH_F1: &str = "truth_findings_f1";

/// The metrics of `data`'s Table 1 (those with values), in column order.
pub fn table_metrics(data: &ReportData) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    TABLE_METRICS
        .into_iter()
        .filter(|(k, _)| data.metrics.iter().any(|m| m == k))
}

/// One model's evaluation.
pub struct ModelResult {
    /// Display name (BLIP, FT-1, FT-2).
    pub name: String,
    /// Captions of the test figures.
    pub rows: Vec<CaptionRow>,
    /// Their scores.
    pub scores: Vec<CaptionScores>,
    /// Findings F1 against each figure's true findings (synthetic data only).
    pub truth_f1: Option<Vec<f64>>,
}

impl ModelResult {
    fn column(&self, metric: &str) -> Vec<f64> {
        if metric == TRUTH_F1 {
            return self
                .truth_f1
                .clone()
                .unwrap_or_else(|| vec![f64::NAN; self.scores.len()]);
        }
        self.scores
            .iter()
            .map(|s| {
                s.named()
                    .into_iter()
                    .find(|(k, _)| *k == metric)
                    .map_or(f64::NAN, |(_, v)| v)
            })
            .collect()
    }
}

/// One cell group of Table 1.
#[derive(Debug, Clone, Serialize)]
pub struct TableEntry {
    /// Model.
    pub model: String,
    /// Metric key.
    pub metric: String,
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
    /// Metric key.
    pub metric: String,
    /// Mean difference, its interval, and the permutation p-value.
    pub result: PairedComparison,
}

/// Everything the report says, as written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// The metric keys Table 1 has, in column order.
    pub metrics: Vec<String>,
    /// Table 1.
    pub table: Vec<TableEntry>,
    /// Paired tests.
    pub comparisons: Vec<Comparison>,
    /// Each model's clinical efficacy against the reference captions.
    pub findings: BTreeMap<String, ClinicalEfficacy>,
}

/// Computes Table 1 and the paired tests.
pub fn analyse(models: &[ModelResult], bootstrap: Bootstrap) -> ReportData {
    // A metric no model has a value of (truth on real data) has no column.
    let present: Vec<&str> = TABLE_METRICS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| {
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
                metric: metric.into(),
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
                    metric: metric.into(),
                    result: compare_paired(&a.column(metric), &b.column(metric), &bootstrap),
                });
            }
        }
    }
    ReportData {
        metrics: present.iter().map(|k| (*k).to_owned()).collect(),
        table,
        comparisons,
        findings: clinical_efficacy_by_model(models),
    }
}

fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    // Three significant digits, as the study prints its table.
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

fn entry<'a>(data: &'a ReportData, model: &str, metric: &str) -> Option<&'a TableEntry> {
    data.table
        .iter()
        .find(|e| e.model == model && e.metric == metric)
}

/// Table 1 as Markdown: means and s.d. as in the study, then the intervals.
pub fn table_markdown(data: &ReportData, models: &[String]) -> String {
    let mut md = String::from("| Model |");
    for (_, heading) in table_metrics(data) {
        let _ = write!(md, " {heading} Avg. | {heading} S.d. |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|---:|".repeat(table_metrics(data).count()));
    md.push('\n');
    for model in models {
        let _ = write!(md, "| {model} |");
        for (metric, _) in table_metrics(data) {
            match entry(data, model, metric) {
                Some(e) => {
                    let _ = write!(md, " {} | {} |", sig(e.summary.mean), sig(e.summary.sd));
                }
                None => md.push_str(" - | - |"),
            }
        }
        md.push('\n');
    }
    md.push_str("\n95% bootstrap confidence intervals of the means:\n\n| Model |");
    for (_, heading) in table_metrics(data) {
        let _ = write!(md, " {heading} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(table_metrics(data).count()));
    md.push('\n');
    for model in models {
        let _ = write!(md, "| {model} |");
        for (metric, _) in table_metrics(data) {
            if let Some(e) = entry(data, model, metric) {
                let _ = write!(
                    md,
                    " [{}, {}] |",
                    sig(e.summary.ci95.0),
                    sig(e.summary.ci95.1)
                );
            }
        }
        md.push('\n');
    }
    md
}

/// Table 1 as CSV: one row per model, mean and s.d. per metric.
pub fn table_csv(data: &ReportData, models: &[String]) -> String {
    let mut csv = String::from("model");
    for (metric, _) in table_metrics(data) {
        let _ = write!(
            csv,
            ",{metric}_mean,{metric}_sd,{metric}_ci95_low,{metric}_ci95_high"
        );
    }
    csv.push('\n');
    for model in models {
        csv.push_str(model);
        for (metric, _) in table_metrics(data) {
            if let Some(e) = entry(data, model, metric) {
                let s = &e.summary;
                let _ = write!(csv, ",{},{},{},{}", s.mean, s.sd, s.ci95.0, s.ci95.1);
            }
        }
        csv.push('\n');
    }
    csv
}

/// The paired tests as Markdown.
pub fn comparisons_markdown(data: &ReportData) -> String {
    let mut md = String::from(
        "| B vs A | metric | mean difference (B - A) | 95% CI | p (paired permutation) |\n|---|---|---:|---|---:|\n",
    );
    for c in &data.comparisons {
        let heading = TABLE_METRICS
            .iter()
            .find(|(k, _)| *k == c.metric)
            .map_or(c.metric.as_str(), |(_, h)| h);
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
         th.sortable{cursor:pointer}th.sortable:hover{background:#e0e8ff}td.num{text-align:right;font-variant-numeric:tabular-nums}\
         img{width:160px;image-rendering:auto}.cap{max-width:260px}.ref{max-width:260px;color:#444}\
         .findings{margin-top:4px}.f{display:inline-block;font-size:11px;padding:0 4px;margin:1px;border-radius:3px;background:#eee}\
         .f.hit{background:#d4f5d4}.f.miss{background:#f8d0d0}.f.missed{background:#fff;border:1px dashed #c66;color:#a33}\n</style></head><body>\n\
         <h1>Fine-tuned vs general-purpose captioning: reproduction report</h1>\n",
    );
    let model_names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let _ = write!(
        html,
        "<h2>Table 1: mean and standard deviation over {n} test figures</h2>\n<table id=\"table1\"><tr><th rowspan=\"2\">Model</th>"
    );
    for (_, heading) in table_metrics(data) {
        let _ = write!(html, "<th colspan=\"2\">{heading}</th>");
    }
    html.push_str("</tr><tr>");
    html.push_str(&"<th>Avg.</th><th>S.d.</th>".repeat(table_metrics(data).count()));
    html.push_str("</tr>\n");
    for model in &model_names {
        let _ = write!(html, "<tr><td>{}</td>", escape(model));
        for (metric, _) in table_metrics(data) {
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
    html.push_str("</table>\n<h2>Paired tests</h2>\n<table id=\"tests\"><tr><th>B vs A</th><th>metric</th><th>mean difference</th><th>95% CI</th><th>p</th></tr>\n");
    for c in &data.comparisons {
        let _ = writeln!(
            html,
            "<tr><td>{} vs {}</td><td>{}</td><td class=\"num\">{}</td><td>[{}, {}]</td><td class=\"num\">{}</td></tr>",
            escape(&c.b),
            escape(&c.a),
            escape(&c.metric),
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
    html.push_str("</table>\n<h2>Loss curves</h2>\n<p><img src=\"figure3_ft1_loss.svg\" alt=\"FT-1 loss\" style=\"width:480px\"> <img src=\"figure4_ft2_loss.svg\" alt=\"FT-2 loss\" style=\"width:480px\"></p>\n");
    let _ = write!(
        html,
        "<h2>Captions of {} test figures</h2>\n<p>Decoding: {}. Click a score heading to sort by it (again to reverse).</p>\n<table id=\"captions\"><thead><tr><th>Figure</th><th>Reference</th>",
        picks.len(),
        escape(decoding)
    );
    for model in &model_names {
        let _ = write!(html, "<th>{} caption</th>", escape(model));
        for (metric, heading) in table_metrics(data) {
            let key = format!("{}.{metric}", model.to_lowercase().replace('-', ""));
            let _ = write!(
                html,
                "<th class=\"sortable\" data-key=\"{key}\">{} {heading}</th>",
                escape(model)
            );
        }
    }
    html.push_str("</tr></thead><tbody>\n");
    let labeller = Labeller::built_in();
    let options = FindingsOptions::default();
    for &i in &picks {
        let Some(first) = models.first().map(|m| &m.rows[i]) else {
            break;
        };
        let source = Path::new(&first.image_path);
        let extension = source.extension().and_then(|e| e.to_str()).unwrap_or("png");
        let file = format!("{i:04}.{extension}");
        std::fs::copy(source, images.join(&file)).map_err(io(source))?;
        let reference_labels = labeller.label(&first.reference);
        let reference_findings = options.findings(&reference_labels);
        let _ = write!(
            html,
            "<tr data-id=\"{}\"><td><img src=\"images/{file}\" alt=\"{}\"><br>{}</td><td class=\"ref\">{}{}</td>",
            escape(&first.id),
            escape(&first.id),
            escape(&first.id),
            escape(&first.reference),
            findings_html(&reference_labels, None)
        );
        for m in models {
            let _ = write!(
                html,
                "<td class=\"cap\">{}{}</td>",
                escape(&m.rows[i].caption),
                findings_html(
                    &labeller.label(&m.rows[i].caption),
                    Some(&reference_findings)
                )
            );
            let named = m.scores[i].named();
            for (metric, _) in table_metrics(data) {
                let v = named
                    .iter()
                    .find(|(k, _)| *k == metric)
                    .map_or(f64::NAN, |(_, v)| *v);
                let key = format!("{}.{metric}", m.name.to_lowercase().replace('-', ""));
                let _ = write!(
                    html,
                    "<td class=\"num\" data-key=\"{key}\" data-value=\"{v}\">{v:.3}</td>"
                );
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table>\n<h2>Provenance</h2>\n<pre id=\"provenance\">");
    html.push_str(&escape(
        &serde_json::to_string_pretty(provenance).unwrap_or_default(),
    ));
    html.push_str(
        "</pre>\n<script>\n\
         function sortBy(key, descending) {\n\
           const body = document.querySelector('#captions tbody');\n\
           const rows = Array.from(body.rows);\n\
           const value = r => { const c = r.querySelector('td[data-key=\"' + key + '\"]'); return c ? parseFloat(c.dataset.value) : NaN; };\n\
           rows.sort((a, b) => { const x = value(a), y = value(b); const d = (isNaN(x) ? -Infinity : x) - (isNaN(y) ? -Infinity : y); return descending ? -d : d; });\n\
           rows.forEach(r => body.appendChild(r));\n\
           document.body.dataset.sortedBy = key + (descending ? ':desc' : ':asc');\n\
         }\n\
         document.querySelectorAll('#captions th.sortable').forEach(th => th.addEventListener('click', () => {\n\
           const desc = document.body.dataset.sortedBy !== th.dataset.key + ':desc';\n\
           sortBy(th.dataset.key, desc);\n\
         }));\n\
         const wanted = new URLSearchParams(location.hash.slice(1)).get('sort');\n\
         if (wanted) { sortBy(wanted.replace(/:asc$/, ''), !wanted.endsWith(':asc')); }\n\
         </script>\n</body></html>\n",
    );
    let path = dir.join("index.html");
    crate::write_atomic(&path, html.as_bytes())?;
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
    provenance: &serde_json::Value,
) -> Result<ReportData, StudyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let data = analyse(models, bootstrap);
    let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let mut md = String::from(
        "# Table 1: average and standard deviation of the study's five metrics and the findings F1 between models\n\n",
    );
    md += &table_markdown(&data, &names);
    md += "\n## Paired tests\n\n";
    md += &comparisons_markdown(&data);
    crate::write_atomic(&dir.join("table1.md"), md.as_bytes())?;
    crate::write_atomic(&dir.join("table1.csv"), table_csv(&data, &names).as_bytes())?;
    let json = serde_json::to_string_pretty(&data).unwrap_or_default();
    crate::write_atomic(&dir.join("report.json"), json.as_bytes())?;
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
    let per_caption = serde_json::to_string(&per_caption).unwrap_or_default();
    crate::write_atomic(&dir.join("captions.json"), per_caption.as_bytes())?;
    let provenance_text = serde_json::to_string_pretty(provenance).unwrap_or_default();
    crate::write_atomic(&dir.join("provenance.json"), provenance_text.as_bytes())?;
    write_html(dir, models, &data, sample, decoding, provenance)?;
    Ok(data)
}
