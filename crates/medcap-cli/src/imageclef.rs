//! `medcap score --suite imageclef-YYYY` and `medcap check-submission`:
//! ImageCLEFmedical Caption's files read and checked as that year's
//! official evaluator does (medcap_metrics::imageclef), the components
//! medcap computes, the official aggregates where every component is
//! there, and medcap's statistics beside them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use medcap_metrics::imageclef::concepts::{self, ConceptScore, Concepts};
use medcap_metrics::imageclef::submission::{self, Pairs, Rejection, decode_utf8};
use medcap_metrics::imageclef::{Component, Suite};
use medcap_metrics::stats::{Bootstrap, Summary, compare_paired, summarize};
use serde_json::json;

use crate::score::Format;

/// The task of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// Caption prediction: `ID,Caption`.
    Caption,
    /// Concept detection: `ID,CUI;CUI;...`.
    Concepts,
}

/// The options of `--suite` scoring, and of `check-submission`.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    /// Score a submission as ImageCLEFmedical Caption's official evaluator
    /// of that year does: imageclef-2023, imageclef-2025, imageclef-2026.
    #[arg(long, value_name = "SUITE", conflicts_with_all = ["refs", "hyps", "csv", "compare"])]
    pub suite: Option<Suite>,
    /// The submission file (CSV as the year's task wants it); give two to
    /// compare them (paired bootstrap and permutation test).
    #[arg(long, value_name = "FILE", requires = "suite", num_args = 1, action = clap::ArgAction::Append)]
    pub submission: Vec<PathBuf>,
    /// The official ground truth (`captions.csv`, or `concepts.csv` for
    /// the concept task).
    #[arg(long, value_name = "FILE", requires = "suite")]
    pub ground_truth: Option<PathBuf>,
    /// The concept task's manually checked ground truth
    /// (`concepts_manual.csv`), for the secondary score.
    #[arg(long, value_name = "FILE", requires = "suite")]
    pub ground_truth_secondary: Option<PathBuf>,
    /// The task of the submission.
    #[arg(long, value_enum, default_value_t = Task::Caption, requires = "suite")]
    pub task: Task,
}

/// `medcap check-submission`: the official format checks alone.
#[derive(Debug, Clone, Args)]
pub struct CheckSubmissionArgs {
    /// The year whose checks apply: imageclef-2023, imageclef-2025, imageclef-2026.
    #[arg(long, value_name = "SUITE")]
    pub suite: Suite,
    /// The task of the submission.
    #[arg(long, value_enum, default_value_t = Task::Caption)]
    pub task: Task,
    /// The submission file.
    #[arg(long, value_name = "FILE")]
    pub submission: PathBuf,
    /// The official ground truth.
    #[arg(long, value_name = "FILE")]
    pub ground_truth: PathBuf,
    /// The concept task's manual ground truth (2026's check reads its ids).
    #[arg(long, value_name = "FILE")]
    pub ground_truth_secondary: Option<PathBuf>,
}

/// A file's text, as the official evaluator opens it (UTF-8).
fn read(path: &Path, what: &str) -> Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let text = decode_utf8(&bytes).map_err(|python| {
        anyhow::anyhow!(
            "the {what} {} is not UTF-8: {python} (the official evaluator stops there too; \
             save it as UTF-8)",
            path.display()
        )
    })?;
    Ok(text.to_owned())
}

fn refused(what: &str, path: &Path, suite: Suite, rejection: &Rejection) -> anyhow::Error {
    anyhow::anyhow!(
        "the {what} {} does not pass {suite}'s official checks: {rejection}",
        path.display()
    )
}

/// The files of a caption or concept evaluation, read and checked.
struct Caption {
    truth: Pairs,
    submissions: Vec<(PathBuf, Pairs)>,
}

struct Concept {
    truth: Concepts,
    manual: Option<Concepts>,
    submissions: Vec<(PathBuf, Concepts)>,
}

fn load_caption(suite: Suite, truth_path: &Path, submissions: &[PathBuf]) -> Result<Caption> {
    let truth_text = read(truth_path, "ground truth")?;
    let truth = submission::ground_truth(suite, &truth_text)
        .map_err(|r| refused("ground truth", truth_path, suite, &r))?;
    let mut out = Vec::new();
    for path in submissions {
        let text = read(path, "submission")?;
        let pairs = submission::submission(suite, &text, &truth, &truth_text)
            .map_err(|r| refused("submission", path, suite, &r))?;
        out.push((path.clone(), pairs));
    }
    Ok(Caption {
        truth,
        submissions: out,
    })
}

fn load_concepts(
    suite: Suite,
    truth_path: &Path,
    manual_path: Option<&Path>,
    submissions: &[PathBuf],
) -> Result<Concept> {
    let truth_text = read(truth_path, "ground truth")?;
    let truth = concepts::ground_truth(suite, &truth_text)
        .map_err(|r| refused("ground truth", truth_path, suite, &r))?;
    let (manual_text, manual) = match manual_path {
        Some(path) => {
            let text = read(path, "manual ground truth")?;
            let manual = concepts::ground_truth(suite, &text)
                .map_err(|r| refused("manual ground truth", path, suite, &r))?;
            (text, Some(manual))
        }
        None if suite == Suite::Y2026 => bail!(
            "{suite}'s concept check reads the ids of the manual ground truth too: give \
             --ground-truth-secondary concepts_manual.csv"
        ),
        None => (String::new(), None),
    };
    let mut out = Vec::new();
    for path in submissions {
        let text = read(path, "submission")?;
        let predicted = concepts::submission(suite, &text, &truth, (&truth_text, &manual_text))
            .map_err(|r| refused("submission", path, suite, &r))?;
        out.push((path.clone(), predicted));
    }
    Ok(Concept {
        truth,
        manual,
        submissions: out,
    })
}

/// `medcap check-submission`.
///
/// # Errors
/// The submission (or a ground truth) fails the year's checks.
pub fn check(args: &CheckSubmissionArgs) -> Result<()> {
    let count = match args.task {
        Task::Caption => {
            let loaded = load_caption(
                args.suite,
                &args.ground_truth,
                std::slice::from_ref(&args.submission),
            )?;
            loaded.submissions[0].1.len()
        }
        Task::Concepts => {
            let loaded = load_concepts(
                args.suite,
                &args.ground_truth,
                args.ground_truth_secondary.as_deref(),
                std::slice::from_ref(&args.submission),
            )?;
            loaded.submissions[0].1.len()
        }
    };
    let mut out = medcap_cli::results_out::results_out();
    writeln!(
        out,
        "{} passes {}'s official checks ({} task, {count} images)",
        args.submission.display(),
        args.suite,
        match args.task {
            Task::Caption => "caption",
            Task::Concepts => "concept",
        }
    )?;
    out.flush()?;
    Ok(())
}

/// `medcap score --suite ...`.
///
/// # Errors
/// A file cannot be read or fails the year's checks; two submissions of
/// the concept task score different images.
pub fn score(args: &SuiteArgs, format: Format, bootstrap: &Bootstrap) -> Result<()> {
    let Some(suite) = args.suite else {
        bail!("--suite is needed");
    };
    let truth = args
        .ground_truth
        .as_deref()
        .context("--suite needs --ground-truth (the official captions.csv or concepts.csv)")?;
    match args.submission.len() {
        1 | 2 => {}
        0 => bail!("--suite needs --submission FILE"),
        n => bail!("--submission takes one file, or two to compare ({n} given)"),
    }
    let mut out = medcap_cli::results_out::results_out();
    match args.task {
        Task::Caption => {
            let loaded = load_caption(suite, truth, &args.submission)?;
            caption_report(suite, &loaded, format, bootstrap, &mut out)?;
        }
        Task::Concepts => {
            let loaded = load_concepts(
                suite,
                truth,
                args.ground_truth_secondary.as_deref(),
                &args.submission,
            )?;
            concept_report(suite, &loaded, format, bootstrap, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// What medcap cannot compute yet, per component.
fn missing_reason(component: Component) -> &'static str {
    match component {
        Component::BertScore => {
            "needs microsoft/deberta-xlarge-mnli, a DeBERTa model medcap does not load yet"
        }
        Component::Bleurt => "needs BLEURT-20-D12, which medcap does not load yet",
        Component::AlignScore => "needs AlignScore-base, which medcap does not load yet",
        Component::Similarity => "needs MedImageInsight embeddings, which medcap does not read yet",
        Component::MedCat => "needs MedCAT's concepts, which medcap does not read yet",
        Component::Rouge1 => "",
    }
}

fn fmt_summary(s: &Summary) -> String {
    format!("{:.4} [{:.4}, {:.4}]", s.mean, s.ci95.0, s.ci95.1)
}

/// The signature of a caption evaluation: the suite and how each
/// computed component was computed, so that a number can be traced.
fn signature(suite: Suite, computed: &[Component]) -> String {
    let mut parts = vec![suite.name().to_owned()];
    for c in computed {
        parts.push(match c {
            Component::Rouge1 => "rouge1:nostem:preprocessed".to_owned(),
            other => other.key().to_owned(),
        });
    }
    parts.push(format!("medcap-{}", env!("CARGO_PKG_VERSION")));
    parts.join("|")
}

fn caption_report(
    suite: Suite,
    loaded: &Caption,
    format: Format,
    bootstrap: &Bootstrap,
    out: &mut impl Write,
) -> Result<()> {
    // Per caption, in the official order of each submission.
    let scored: Vec<Vec<(String, f64)>> = loaded
        .submissions
        .iter()
        .map(|(_, pairs)| {
            pairs
                .iter()
                .map(|(id, caption)| {
                    let reference = loaded.truth.get(id).unwrap_or_default();
                    (id.to_owned(), suite.rouge1(reference, caption))
                })
                .collect()
        })
        .collect();
    match format {
        Format::Jsonl | Format::Csv => {
            if format == Format::Csv {
                writeln!(out, "submission,id,rouge1")?;
            }
            for ((path, _), rows) in loaded.submissions.iter().zip(&scored) {
                for (id, rouge) in rows {
                    if format == Format::Csv {
                        writeln!(
                            out,
                            "{},{},{rouge}",
                            csv_cell(&path.display().to_string()),
                            csv_cell(id)
                        )?;
                    } else {
                        let row = json!({"submission": path, "id": id, "rouge1": rouge});
                        writeln!(out, "{row}")?;
                    }
                }
            }
            return Ok(());
        }
        Format::Table => {}
    }
    let summaries: Vec<Summary> = scored
        .iter()
        .map(|rows| summarize(&rows.iter().map(|(_, r)| *r).collect::<Vec<_>>(), bootstrap))
        .collect();
    for ((path, pairs), summary) in loaded.submissions.iter().zip(&summaries) {
        writeln!(
            out,
            "{} caption task, {} ({} captions); 95% bootstrap intervals\n",
            suite,
            path.display(),
            pairs.len()
        )?;
        writeln!(out, "| component | score |")?;
        writeln!(out, "|---|---|")?;
        for &component in suite.components() {
            match component {
                Component::Rouge1 => writeln!(out, "| ROUGE-1 | {} |", fmt_summary(summary))?,
                other => writeln!(
                    out,
                    "| {} | missing: {} |",
                    other.heading(),
                    missing_reason(other)
                )?,
            }
        }
        for aggregate in suite.aggregates() {
            let value = aggregate.of(|c| (c == Component::Rouge1).then_some(summary.mean));
            match value {
                Ok(v) => writeln!(out, "| {} | {v:.4} |", aggregate.name)?,
                Err(missing) => writeln!(
                    out,
                    "| {} | incomplete: lacks {} |",
                    aggregate.name,
                    missing
                        .iter()
                        .map(|c| c.heading())
                        .collect::<Vec<_>>()
                        .join(", ")
                )?,
            }
        }
        let both_empty = pairs
            .iter()
            .filter(|(id, c)| suite.both_empty(loaded.truth.get(id).unwrap_or_default(), c))
            .count();
        if both_empty > 0 && both_empty < pairs.len() && suite != Suite::Y2023 {
            writeln!(
                out,
                "\nnote: pairs empty on both sides: {both_empty}; each scores 1, as the official \
                 code intends; its ROUGE step itself stops with a ValueError on such a mix"
            )?;
        } else if both_empty > 0 && suite == Suite::Y2023 {
            writeln!(
                out,
                "\nnote: pairs empty on both sides after preprocessing: {both_empty}; each scores \
                 1, as the 2023 code intends; that code itself stops with a TypeError on them"
            )?;
        }
        writeln!(
            out,
            "\nsignature: {}\n",
            signature(suite, &[Component::Rouge1])
        )?;
    }
    if let [a, b] = scored.as_slice() {
        let ids_a: Vec<&String> = a.iter().map(|(i, _)| i).collect();
        let by_id: std::collections::HashMap<&String, f64> =
            b.iter().map(|(i, r)| (i, *r)).collect();
        let b_aligned: Vec<f64> = ids_a
            .iter()
            .map(|i| by_id.get(i).copied().unwrap_or(f64::NAN))
            .collect();
        let a_values: Vec<f64> = a.iter().map(|(_, r)| *r).collect();
        let paired = compare_paired(&a_values, &b_aligned, bootstrap);
        writeln!(
            out,
            "ROUGE-1, {} minus {}: {:+.4} [{:+.4}, {:+.4}], permutation p = {:.4}",
            loaded.submissions[1].0.display(),
            loaded.submissions[0].0.display(),
            paired.mean_difference,
            paired.ci95.0,
            paired.ci95.1,
            paired.p_value
        )?;
    }
    Ok(())
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn concept_report(
    suite: Suite,
    loaded: &Concept,
    format: Format,
    bootstrap: &Bootstrap,
    out: &mut impl Write,
) -> Result<()> {
    let mut scores: Vec<(ConceptScore, Option<ConceptScore>)> = Vec::new();
    for (path, predicted) in &loaded.submissions {
        let primary = concepts::primary(&loaded.truth, predicted)
            .with_context(|| format!("cannot score {}", path.display()))?;
        let secondary = match &loaded.manual {
            Some(manual) => concepts::secondary(suite, manual, predicted)
                .transpose()
                .with_context(|| {
                    format!(
                        "cannot score {} against the manual ground truth",
                        path.display()
                    )
                })?,
            None => None,
        };
        scores.push((primary, secondary));
    }
    if matches!(format, Format::Jsonl | Format::Csv) {
        if format == Format::Csv {
            writeln!(out, "submission,score,id,f1")?;
        }
        for ((path, _), (primary, secondary)) in loaded.submissions.iter().zip(&scores) {
            for (which, score) in [
                ("primary", Some(primary)),
                ("secondary", secondary.as_ref()),
            ] {
                for (id, f1) in score.map(|s| s.per_image.as_slice()).unwrap_or_default() {
                    if format == Format::Csv {
                        writeln!(
                            out,
                            "{},{which},{},{f1}",
                            csv_cell(&path.display().to_string()),
                            csv_cell(id)
                        )?;
                    } else {
                        writeln!(
                            out,
                            "{}",
                            json!({"submission": path, "score": which, "id": id, "f1": f1})
                        )?;
                    }
                }
            }
        }
        return Ok(());
    }
    for ((path, predicted), (primary, secondary)) in loaded.submissions.iter().zip(&scores) {
        writeln!(
            out,
            "{suite} concept task, {} ({} images); intervals: 95% bootstrap over the scored images\n",
            path.display(),
            predicted.len()
        )?;
        writeln!(
            out,
            "| score | official | images scored | mean of scored [95% CI] |"
        )?;
        writeln!(out, "|---|---|---|---|")?;
        let row = |name: &str, s: &ConceptScore| {
            let per: Vec<f64> = s.per_image.iter().map(|(_, f)| *f).collect();
            let summary = summarize(&per, bootstrap);
            format!(
                "| {name} | {:.4} | {} of {} | {} |",
                s.score,
                s.per_image.len(),
                s.denominator,
                fmt_summary(&summary)
            )
        };
        writeln!(out, "{}", row("primary F1", primary))?;
        match (secondary, &loaded.manual, suite) {
            (Some(s), _, _) => writeln!(out, "{}", row("secondary F1 (curated concepts)", s))?,
            (None, _, Suite::Y2023) => writeln!(
                out,
                "| secondary F1 | missing: the available 2023 evaluator defines none | | |"
            )?,
            (None, None, _) => writeln!(
                out,
                "| secondary F1 | missing: give --ground-truth-secondary concepts_manual.csv | | |"
            )?,
            (None, Some(_), _) => {}
        }
        writeln!(
            out,
            "\nsignature: {}|concepts|f1:binary:upper|medcap-{}\n",
            suite,
            env!("CARGO_PKG_VERSION")
        )?;
    }
    Ok(())
}
