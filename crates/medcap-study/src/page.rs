//! The report's HTML page (`index.html`): the data the page shows, as Rust
//! types gathered from the report's results, rendered by the template
//! `templates/index.html` (askama: checked at compile time, every value
//! escaped for HTML). Numbers are formatted here, so the template holds
//! only the page's structure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use askama::Template;
use medcap_metrics::findings::scores::{FindingsOptions, Prf};
use medcap_metrics::findings::{Label, Labeller, Labels, Observation, Side};
use medcap_metrics::metric::Metric;
use medcap_metrics::table1::three_significant as sig;

use crate::error::{StudyError, io};
use crate::report::{ModelResult, ReportData, by_finding, entry, table_metrics};

/// The page, as the template reads it.
#[derive(Template)]
#[template(path = "index.html")]
struct Page<'a> {
    /// Test figures each model captioned.
    figures: usize,
    /// Table 1's column headings.
    headings: Vec<&'static str>,
    table1: Vec<Table1Row<'a>>,
    /// How the CLIP-S columns were computed, when the study has them.
    clip_note: Option<&'a str>,
    tests: Vec<TestRow<'a>>,
    models: &'a [String],
    findings: Vec<FindingsRow>,
    truth: Vec<TruthRow<'a>>,
    truth_by_finding: Vec<TruthByFindingRow<'a>>,
    repetition: Vec<RepetitionRow<'a>>,
    targets: Vec<TargetRow<'a>>,
    decoding: &'a str,
    sort_options: Vec<SortOption>,
    cards: Vec<Card<'a>>,
    /// The run's provenance, pretty-printed JSON.
    provenance: String,
}

struct Table1Row<'a> {
    model: &'a str,
    /// One per column; `None` where the model has no value of the metric.
    cells: Vec<Option<Table1Cell>>,
}

/// A mean, its standard deviation and its 95% interval, to three
/// significant figures as Table 1 prints them.
struct Table1Cell {
    mean: String,
    sd: String,
    low: String,
    high: String,
}

struct TestRow<'a> {
    a: &'a str,
    b: &'a str,
    metric: &'static str,
    difference: String,
    low: String,
    high: String,
    p: String,
}

struct FindingsRow {
    label: &'static str,
    /// Precision, recall and F1 of each model.
    cells: Vec<(String, String, String)>,
    /// Reference captions with the observation (empty on the averages).
    support: String,
}

struct TruthRow<'a> {
    model: &'a str,
    precision: String,
    recall: String,
    f1: String,
    observations_f1: String,
}

struct TruthByFindingRow<'a> {
    model: &'a str,
    finding: &'static str,
    present: usize,
    named_right: usize,
    recall: String,
    invented: usize,
    precision: String,
}

struct RepetitionRow<'a> {
    model: &'a str,
    /// Share of captions repeating, as a percentage.
    repeating: String,
    distinct: usize,
    captions: usize,
    most_common: &'a str,
    most_common_count: usize,
}

/// Whether a reproduction target is met, or is a goal not yet reached.
enum Met {
    Yes,
    No,
    Goal,
}

struct TargetRow<'a> {
    requirement: &'a str,
    measured: &'a str,
    met: Met,
}

/// An entry of the sort menu: a score's key and its label.
struct SortOption {
    key: String,
    label: String,
}

/// One test figure: its image, its reference and each model's caption.
struct Card<'a> {
    id: &'a str,
    /// Position in the test set's order (the page's unsorted order).
    order: usize,
    /// The image's file name under `images/`.
    file: String,
    reference: &'a str,
    reference_findings: Vec<Chip>,
    captions: Vec<CardCaption<'a>>,
}

struct CardCaption<'a> {
    model: &'a str,
    caption: &'a str,
    findings: Vec<Chip>,
    scores: Vec<CardScore>,
}

struct CardScore {
    /// The sort key (`ft2.rouge1`).
    key: String,
    value: f64,
    heading: &'static str,
    /// The value to three decimals.
    shown: String,
}

/// One finding of a caption, as a labelled chip.
struct Chip {
    /// `hit`, `miss`, `missed` or `other` (the page's colours).
    class: &'static str,
    text: String,
}

/// A caption's findings as chips: each mentioned observation with its
/// label (`?` uncertain, `no` negative) and side; against `reference`'s
/// findings, positive ones the reference has are `hit`, others `miss`, and
/// the reference's findings the caption lacks are listed as `missed`.
fn chips(labels: &Labels, reference: Option<&BTreeSet<(Observation, Option<Side>)>>) -> Vec<Chip> {
    let own = FindingsOptions::default().findings(labels);
    let mut chips: Vec<Chip> = labels
        .iter()
        .map(|(o, label)| {
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
            Chip {
                class,
                text: format!("{mark}{}{side}", o.name()),
            }
        })
        .collect();
    if let Some(r) = reference {
        chips.extend(r.iter().filter(|k| !own.contains(k)).map(|(o, _)| Chip {
            class: "missed",
            text: format!("missed: {}", o.name()),
        }));
    }
    chips
}

/// The sort key of one model's score in the report's caption cards, as
/// `#sort=KEY` selects it: `ft2.rouge1` for FT-2's ROUGE-1.
fn score_key(model: &str, metric: Metric) -> String {
    format!("{}.{metric}", model.to_lowercase().replace('-', ""))
}

/// A cell whose value is undefined (a ratio of 0 to 0).
const UNDEFINED: &str = "\u{2014}";

fn three(x: f64) -> String {
    format!("{x:.3}")
}

/// The page: Table 1, the statistics tables and the sort menu from `data`,
/// with the caption `cards` of `figures` test figures.
fn page<'a>(
    data: &'a ReportData,
    models: &'a [String],
    figures: usize,
    decoding: &'a str,
    cards: Vec<Card<'a>>,
    provenance: String,
) -> Page<'a> {
    let table1 = models
        .iter()
        .map(|model| Table1Row {
            model,
            cells: table_metrics(data)
                .map(|metric| {
                    entry(data, model, metric).map(|e| Table1Cell {
                        mean: sig(e.summary.mean),
                        sd: sig(e.summary.sd),
                        low: sig(e.summary.ci95.0),
                        high: sig(e.summary.ci95.1),
                    })
                })
                .collect(),
        })
        .collect();
    let tests = data
        .comparisons
        .iter()
        .map(|c| TestRow {
            a: &c.a,
            b: &c.b,
            metric: c.metric.heading(),
            difference: sig(c.result.mean_difference),
            low: sig(c.result.ci95.0),
            high: sig(c.result.ci95.1),
            p: sig(c.result.p_value),
        })
        .collect();
    let observations = Observation::ALL.len();
    let findings = (0..observations + 2)
        .map(|i| {
            let label = match i {
                i if i < observations => Observation::ALL[i].name(),
                i if i == observations => "micro avg (14)",
                _ => "micro avg (5)",
            };
            let mut support = String::new();
            let cells = models
                .iter()
                .filter_map(|model| data.findings.get(model))
                .map(|e| {
                    let Some(o) = e.per_observation.get(i) else {
                        let prf = if i == observations {
                            e.micro_14
                        } else {
                            e.micro_5
                        };
                        return (three(prf.precision), three(prf.recall), three(prf.f1));
                    };
                    support = o.support.to_string();
                    // Precision of a finding no caption names, recall of one
                    // no reference has, and F1 of both are undefined, not 0.
                    let defined = |yes: bool, v: f64| if yes { three(v) } else { UNDEFINED.into() };
                    (
                        defined(o.predicted > 0, o.prf.precision),
                        defined(o.support > 0, o.prf.recall),
                        defined(o.predicted > 0 || o.support > 0, o.prf.f1),
                    )
                })
                .collect();
            FindingsRow {
                label,
                cells,
                support,
            }
        })
        .collect();
    let truth = models
        .iter()
        .filter_map(|model| {
            let t = data.truth_findings.get(model)?;
            Some(TruthRow {
                model,
                precision: three(t.with_sides.precision),
                recall: three(t.with_sides.recall),
                f1: three(t.with_sides.f1),
                observations_f1: three(t.observations.f1),
            })
        })
        .collect();
    let truth_by_finding = by_finding(data, models)
        .map(|(model, o, c)| {
            let prf = Prf::from(c);
            TruthByFindingRow {
                model,
                finding: o.name(),
                present: c.tp + c.fn_,
                named_right: c.tp,
                recall: format!("{:.2}", prf.recall),
                invented: c.fp,
                precision: format!("{:.2}", prf.precision),
            }
        })
        .collect();
    let repetition = models
        .iter()
        .filter_map(|model| {
            let r = data.repetition.get(model)?;
            Some(RepetitionRow {
                model,
                repeating: format!("{:.1}%", 100.0 * r.three_times_in_a_row),
                distinct: r.distinct,
                captions: r.captions,
                most_common: &r.most_common.0,
                most_common_count: r.most_common.1,
            })
        })
        .collect();
    let targets = data
        .targets
        .iter()
        .map(|t| TargetRow {
            requirement: &t.requirement,
            measured: &t.measured,
            met: match (t.met, t.required) {
                (true, _) => Met::Yes,
                (false, true) => Met::No,
                (false, false) => Met::Goal,
            },
        })
        .collect();
    let sort_options = models
        .iter()
        .flat_map(|model| {
            table_metrics(data).map(move |metric| SortOption {
                key: score_key(model, metric),
                label: format!("{model} {}", metric.heading()),
            })
        })
        .collect();
    Page {
        figures,
        headings: table_metrics(data).map(Metric::heading).collect(),
        table1,
        clip_note: data.clip_encoder.as_deref(),
        tests,
        models,
        findings,
        truth,
        truth_by_finding,
        repetition,
        targets,
        decoding,
        sort_options,
        cards,
        provenance,
    }
}

/// Writes `index.html` into `dir` and copies the images of `sample` test
/// figures (an even spread over the test set, the same for every model)
/// to `dir/images/`.
///
/// # Errors
/// An image that cannot be copied, a page that cannot be written.
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
    let figures = models.first().map_or(0, |m| m.rows.len());
    let picks: Vec<usize> = if figures <= sample {
        (0..figures).collect()
    } else {
        (0..sample).map(|i| i * figures / sample).collect()
    };
    let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let labeller = Labeller::built_in();
    let options = FindingsOptions::default();
    let mut cards = Vec::with_capacity(picks.len());
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
        let captions = models
            .iter()
            .map(|m| CardCaption {
                model: &m.name,
                caption: &m.rows[i].caption,
                findings: chips(
                    &labeller.label(&m.rows[i].caption),
                    Some(&reference_findings),
                ),
                scores: table_metrics(data)
                    .filter_map(|metric| {
                        let value = m.value(i, metric);
                        // A model without the encoder's values, or a figure
                        // whose image could not be read, has no CLIPScore.
                        let missing = value.is_nan()
                            && matches!(metric, Metric::ClipScore | Metric::RefClipScore);
                        (!missing).then(|| CardScore {
                            key: score_key(&m.name, metric),
                            value,
                            heading: metric.heading(),
                            shown: three(value),
                        })
                    })
                    .collect(),
            })
            .collect();
        cards.push(Card {
            id: &first.id,
            order,
            file,
            reference: &first.reference,
            reference_findings: chips(&reference_labels, None),
            captions,
        });
    }
    let page = page(
        data,
        &names,
        figures,
        decoding,
        cards,
        format!("{provenance:#}"),
    );
    let html = page.render().map_err(|e| StudyError::Stage {
        stage: "report",
        reason: format!("index.html: {e}"),
    })?;
    let path = dir.join("index.html");
    medcap_io::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
