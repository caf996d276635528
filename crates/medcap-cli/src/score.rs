//! `medcap score`: caption metrics of a hypothesis file against reference
//! files, per caption and summarized, optionally compared with a second
//! system on the same references.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};
use medcap_metrics::bertscore::{Baseline, BertScorer, baseline_file, choose_model};
use medcap_metrics::bleu::{Bleu, BleuImpl, NltkSmoothing, SacreSmoothing};
use medcap_metrics::caption_scores::{
    BertScoreSetup, Metrics, ScoredCaptions, score_captions, score_captions_with_bertscore,
};
use medcap_metrics::findings::scores::{ClinicalEfficacy, FindingsOptions, UncertainPolicy};
use medcap_metrics::rouge::{Rouge, RougeTokenizer};
use medcap_metrics::stats::{Bootstrap, compare_paired};
use medcap_model::device::DeviceChoice;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Reference captions, one per line (repeat for several references per caption).
    #[arg(long = "refs", value_name = "FILE", required_unless_present = "csv")]
    refs: Vec<PathBuf>,
    /// Hypothesis captions, one per line; an empty line is an empty caption.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "csv",
        conflicts_with = "csv"
    )]
    hyps: Option<PathBuf>,
    /// A CSV file with `reference` and `candidate` columns, instead of --refs/--hyps.
    #[arg(long, value_name = "FILE", conflicts_with = "refs")]
    csv: Option<PathBuf>,
    /// A second system's hypotheses: adds a paired comparison (bootstrap interval, permutation p-value).
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// BLEU convention: the study's (HF evaluate / tensorflow-nmt), sacrebleu or nltk.
    #[arg(long, value_enum, default_value_t = BleuChoice::Study)]
    bleu_impl: BleuChoice,
    /// BLEU smoothing: none|add-one (study), none|floor|add-k|exp (sacrebleu), method0..method7 (nltk).
    #[arg(long)]
    bleu_smoothing: Option<String>,
    /// Porter-stem ROUGE tokens (rouge-score's use_stemmer).
    #[arg(long)]
    rouge_stemmer: bool,
    /// Keep non-ASCII letters in ROUGE tokens (rouge-score deletes them).
    #[arg(long)]
    rouge_unicode: bool,
    /// Bootstrap resamples for the 95% intervals.
    #[arg(long, default_value_t = 1_000)]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// BERTScore model: a BERT-family Hugging Face directory (config.json,
    /// model.safetensors, tokenizer.json). Default: the all-MiniLM-L6-v2 that
    /// `cargo xtask setup` installs (MEDCAP_MINILM_DIR).
    #[arg(long, value_name = "DIR")]
    bertscore_model: Option<PathBuf>,
    /// Hidden layer whose embeddings BERTScore matches. Default: bert-score's layer for the
    /// model (its table, e.g. roberta-large 17, roberta-base 10, bert-base-uncased 9), 5 for
    /// the default MiniLM.
    #[arg(long, value_name = "N")]
    bertscore_layer: Option<usize>,
    /// bert-score's name of the model in --bertscore-model (e.g. roberta-large): selects its
    /// default layer and, with --bertscore-rescale, its baseline. Default: the directory's name.
    #[arg(long, value_name = "NAME")]
    bertscore_model_type: Option<String>,
    /// Rescale with bert-score's own baseline for the model and layer (English), as its
    /// rescale_with_baseline=True (the files `cargo xtask setup` installs).
    #[arg(long, conflicts_with = "bertscore_baseline")]
    bertscore_rescale: bool,
    /// idf-weight BERTScore tokens, from the references.
    #[arg(long)]
    bertscore_idf: bool,
    /// Rescale BERTScore with a bert-score baseline file (CSV `LAYER,P,R,F`; the row of --bertscore-layer).
    #[arg(long, value_name = "FILE")]
    bertscore_baseline: Option<PathBuf>,
    /// Reproduce bert-score's value at its `batch_size=N` exactly (its batches pad texts,
    /// and a padded position offers a similarity of 0): for matching a published number.
    /// Default: the batch-independent value, bert-score's at batch size 1.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    bertscore_batch_size: Option<u64>,
    /// Skip BERTScore (no model needed).
    #[arg(long, conflicts_with_all = ["bertscore_model", "bertscore_idf", "bertscore_baseline", "bertscore_batch_size", "bertscore_layer", "bertscore_model_type", "bertscore_rescale"])]
    no_bertscore: bool,
    /// Skip the findings (clinical-efficacy) scores, which are on by default.
    #[arg(long)]
    no_findings: bool,
    /// Count uncertain findings as present (default: positive findings only).
    #[arg(long, conflicts_with = "no_findings")]
    findings_uncertain_positive: bool,
    /// Where BERTScore's encoder runs: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
    Table,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BleuChoice {
    Study,
    Sacrebleu,
    Nltk,
}

fn bleu(choice: BleuChoice, smoothing: Option<&str>) -> Result<Bleu> {
    let implementation = match (choice, smoothing) {
        (BleuChoice::Study, None | Some("none")) => BleuImpl::Study { smooth: false },
        (BleuChoice::Study, Some("add-one")) => BleuImpl::Study { smooth: true },
        (BleuChoice::Sacrebleu, s) => {
            let smoothing = match s.unwrap_or("exp") {
                "exp" => SacreSmoothing::Exp,
                "none" => SacreSmoothing::None,
                "floor" => SacreSmoothing::FLOOR,
                "add-k" => SacreSmoothing::ADD_K,
                other => {
                    bail!("--bleu-smoothing {other}: sacrebleu takes none, floor, add-k or exp")
                }
            };
            BleuImpl::Sacrebleu {
                smoothing,
                effective_order: true,
                lowercase: false,
            }
        }
        (BleuChoice::Nltk, s) => {
            let name = s.unwrap_or("method0");
            let number: usize = name
                .strip_prefix("method")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n < 8)
                .with_context(|| {
                    format!("--bleu-smoothing {name}: nltk takes method0 to method7")
                })?;
            BleuImpl::Nltk {
                smoothing: NltkSmoothing::ALL[number],
            }
        }
        (BleuChoice::Study, Some(other)) => {
            bail!("--bleu-smoothing {other}: the study's BLEU takes none or add-one")
        }
    };
    Ok(Bleu {
        implementation,
        max_order: 4,
    })
}

/// Lines of a caption file: `\n` or `\r\n` separated, a final newline
/// optional, every line a caption (empty lines are empty captions).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        anyhow::anyhow!("{}: line {line} is not valid UTF-8", path.display())
    })?;
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    Ok(body
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
        .collect())
}

fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| {
                format!(
                    "{}: no `{name}` column (columns: {})",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
    };
    let (r, c) = (column("reference")?, column("candidate")?);
    let (mut hyps, mut refs) = (Vec::new(), Vec::new());
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        hyps.push(record.get(c).unwrap_or_default().to_owned());
        refs.push(vec![record.get(r).unwrap_or_default().to_owned()]);
    }
    Ok((hyps, refs))
}

fn inputs(args: &ScoreArgs) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    if let Some(csv) = &args.csv {
        return read_csv(csv);
    }
    let hyps_path = args
        .hyps
        .as_ref()
        .context("--hyps is required without --csv")?;
    let hyps = read_lines(hyps_path)?;
    let mut refs: Vec<Vec<String>> = vec![Vec::new(); hyps.len()];
    for path in &args.refs {
        let lines = read_lines(path)?;
        ensure!(
            lines.len() == hyps.len(),
            "{} has {} lines but {} has {}: one reference per hypothesis, line by line",
            path.display(),
            lines.len(),
            hyps_path.display(),
            hyps.len()
        );
        for (slot, line) in refs.iter_mut().zip(lines) {
            slot.push(line);
        }
    }
    Ok((hyps, refs))
}

fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

pub fn run(args: &ScoreArgs) -> Result<()> {
    let (hyps, refs) = inputs(args)?;
    let metrics = Metrics {
        bleu: bleu(args.bleu_impl, args.bleu_smoothing.as_deref())?,
        rouge: Rouge {
            stemmer: args.rouge_stemmer,
            tokenizer: if args.rouge_unicode {
                RougeTokenizer::Unicode
            } else {
                RougeTokenizer::RougeScore
            },
        },
        bootstrap: Bootstrap {
            resamples: args.bootstrap,
            seed: args.seed,
        },
        findings: (!args.no_findings).then_some(FindingsOptions {
            uncertain: if args.findings_uncertain_positive {
                UncertainPolicy::UncertainAsPositive
            } else {
                UncertainPolicy::PositiveOnly
            },
            with_side: false,
        }),
    };
    let scorer = if args.no_bertscore {
        None
    } else {
        let choice = choose_model(
            args.bertscore_model.as_deref(),
            args.bertscore_model_type.as_deref(),
            args.bertscore_layer,
        )
        .map_err(|e| anyhow::anyhow!("{e}; or pass --no-bertscore to score without it"))?;
        let device: DeviceChoice = args.device.parse()?;
        let scorer = BertScorer::from_dir(&choice.dir, choice.layer, device.resolve()?)
            .with_context(|| format!("cannot load the BERTScore model {}", choice.dir.display()))?;
        Some((scorer, choice))
    };
    let baseline_path = match (&args.bertscore_baseline, &scorer) {
        (Some(path), _) => Some(path.clone()),
        (None, Some((_, choice))) if args.bertscore_rescale => {
            let name = choice.name.with_context(|| {
                format!(
                    "--bertscore-rescale needs bert-score's name for {} (--bertscore-model-type)",
                    choice.dir.display()
                )
            })?;
            Some(baseline_file(name, "en")?)
        }
        _ => None,
    };
    let baseline = match (&baseline_path, &scorer) {
        (Some(path), Some((_, choice))) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                Baseline::from_csv(&text, choice.layer)
                    .with_context(|| format!("{}", path.display()))?,
            )
        }
        _ => None,
    };
    let score = |hyps: &[String]| -> Result<ScoredCaptions> {
        Ok(match &scorer {
            Some((s, _)) => score_captions_with_bertscore(
                hyps,
                &refs,
                &metrics,
                &BertScoreSetup {
                    embedder: s,
                    idf: args.bertscore_idf,
                    baseline,
                    batch_size: args.bertscore_batch_size.map(|n| n as usize),
                },
            )
            .context("BERTScore failed")?,
            None => score_captions(hyps, &refs, &metrics),
        })
    };
    let scored = score(&hyps)?;
    let comparison = match &args.compare {
        Some(path) => {
            let other = read_lines(path)?;
            ensure!(
                other.len() == hyps.len(),
                "{} has {} lines but the hypotheses have {}",
                path.display(),
                other.len(),
                hyps.len()
            );
            Some((path.clone(), score(&other)?))
        }
        None => None,
    };
    let out = match args.format {
        Format::Jsonl => jsonl(&scored, comparison.as_ref(), &metrics.bootstrap),
        Format::Csv => csv_rows(&scored),
        Format::Table => table(&scored, comparison.as_ref(), &metrics.bootstrap),
    };
    print!("{out}");
    Ok(())
}

fn jsonl(
    scored: &ScoredCaptions,
    comparison: Option<&(PathBuf, ScoredCaptions)>,
    b: &Bootstrap,
) -> String {
    let mut out = String::new();
    for (i, c) in scored.per_caption.iter().enumerate() {
        let mut obj: serde_json::Map<String, serde_json::Value> = c
            .named()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json_number(*v)))
            .collect();
        if let Some(f) = &scored.findings {
            obj.insert(
                "findings".into(),
                serde_json::json!({"hypothesis": f.hypotheses[i], "reference": f.references[i]}),
            );
        }
        let _ = writeln!(out, "{}", serde_json::Value::Object(obj));
    }
    let summary: BTreeMap<&str, serde_json::Value> = scored
        .summary
        .iter()
        .map(|(k, s)| {
            (*k, serde_json::json!({"mean": json_number(s.mean), "sd": json_number(s.sd), "ci95": [json_number(s.ci95.0), json_number(s.ci95.1)], "n": s.n, "left_out": s.left_out}))
        })
        .collect();
    let mut last = serde_json::json!({ "summary": summary });
    if let Some(truncated) = scored.bertscore_truncated {
        last["bertscore_truncated_texts"] = serde_json::json!(truncated);
    }
    if let Some(f) = &scored.findings {
        last["clinical_efficacy"] = serde_json::json!(f.efficacy);
    }
    if let Some((path, other)) = comparison {
        let cmp: BTreeMap<&str, serde_json::Value> = paired(scored, other, b)
            .into_iter()
            .map(|(k, c)| (k, serde_json::json!({"mean_difference": json_number(c.mean_difference), "ci95": [json_number(c.ci95.0), json_number(c.ci95.1)], "p_value": json_number(c.p_value)})))
            .collect();
        last["comparison"] =
            serde_json::json!({ "system_b": path.display().to_string(), "b_minus_a": cmp });
    }
    let _ = writeln!(out, "{last}");
    out
}

fn paired(
    a: &ScoredCaptions,
    b: &ScoredCaptions,
    bootstrap: &Bootstrap,
) -> Vec<(&'static str, medcap_metrics::stats::PairedComparison)> {
    let other = b.columns();
    a.columns()
        .into_iter()
        .filter_map(|(name, xa)| Some((name, compare_paired(&xa, other.get(name)?, bootstrap))))
        .collect()
}

fn csv_rows(scored: &ScoredCaptions) -> String {
    let names: Vec<&str> = scored
        .per_caption
        .first()
        .map(|c| c.named().iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let mut out = format!("index,{}\n", names.join(","));
    for (i, c) in scored.per_caption.iter().enumerate() {
        let values: Vec<String> = c
            .named()
            .iter()
            .map(|(_, v)| {
                if v.is_nan() {
                    String::new()
                } else {
                    v.to_string()
                }
            })
            .collect();
        let _ = writeln!(out, "{i},{}", values.join(","));
    }
    out
}

/// The study's Table 1 layout: one row per system, mean (s.d.) per metric,
/// with the 95% interval underneath.
fn table(
    scored: &ScoredCaptions,
    comparison: Option<&(PathBuf, ScoredCaptions)>,
    b: &Bootstrap,
) -> String {
    // The study's Table 1 order: BLEU, BERT-F1, ROUGE-1, ROUGE-2, ROUGE-L; then the rest.
    let all: [(&str, &str); 8] = [
        ("bleu", "BLEU"),
        ("bert_f1", "BERT-F1"),
        ("rouge1", "ROUGE-1"),
        ("rouge2", "ROUGE-2"),
        ("rougeL", "ROUGE-L"),
        ("rougeLsum", "ROUGE-Lsum"),
        ("cider_d", "CIDEr-D"),
        ("findings_f1", "Findings F1"),
    ];
    let columns: Vec<(&str, &str)> = all
        .into_iter()
        .filter(|(k, _)| scored.summary.contains_key(k))
        .collect();
    let mut out = format!("{:<12}", "system");
    for (_, title) in &columns {
        let _ = write!(out, "{title:>22}");
    }
    out.push('\n');
    let mut row = |name: &str, s: &ScoredCaptions| {
        let _ = write!(out, "{name:<12}");
        for (key, _) in &columns {
            let m = &s.summary[key];
            let _ = write!(out, "{:>22}", format!("{:.6} ({:.6})", m.mean, m.sd));
        }
        let _ = write!(out, "\n{:<12}", "  95% CI");
        for (key, _) in &columns {
            let m = &s.summary[key];
            let _ = write!(out, "{:>22}", format!("[{:.4}, {:.4}]", m.ci95.0, m.ci95.1));
        }
        out.push('\n');
    };
    if scored.per_caption.is_empty() {
        return "no captions to score\n".into();
    }
    row("A", scored);
    if let Some((_, other)) = comparison {
        row("B", other);
        let _ = write!(out, "{:<12}", "B - A");
        let diffs = paired(scored, other, b);
        for (key, _) in &columns {
            if let Some((_, c)) = diffs.iter().find(|(name, _)| name == key) {
                let _ = write!(
                    out,
                    "{:>22}",
                    format!("{:+.4} p={:.3}", c.mean_difference, c.p_value)
                );
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "n = {} captions; mean (sample s.d.); 95% CI: percentile bootstrap, {} resamples",
        scored.per_caption.len(),
        b.resamples
    );
    let left_out: Vec<String> = scored
        .summary
        .iter()
        .filter(|(_, s)| s.left_out > 0)
        .map(|(k, s)| format!("{k} {}", s.left_out))
        .collect();
    if !left_out.is_empty() {
        let _ = writeln!(
            out,
            "undefined scores (NaN) left out of means, s.d. and intervals: {}",
            left_out.join(", ")
        );
    }
    if let Some(t) = scored.bertscore_truncated.filter(|t| *t > 0) {
        let _ = writeln!(
            out,
            "BERTScore: {t} texts truncated at the tokenizer's model_max_length"
        );
    }
    if let Some(f) = &scored.findings {
        out.push_str(&efficacy_table(&f.efficacy));
    }
    out
}

/// Clinical efficacy of system A: per observation and averaged.
fn efficacy_table(e: &ClinicalEfficacy) -> String {
    let mut out = format!(
        "\nfindings (clinical efficacy, {} labels):\n{:<28}{:>10}{:>10}{:>10}{:>9}{:>11}\n",
        match e.options.uncertain {
            UncertainPolicy::PositiveOnly => "positive",
            UncertainPolicy::UncertainAsPositive => "positive and uncertain",
        },
        "observation",
        "precision",
        "recall",
        "F1",
        "support",
        "predicted"
    );
    for s in &e.per_observation {
        let _ = writeln!(
            out,
            "{:<28}{:>10.4}{:>10.4}{:>10.4}{:>9}{:>11}",
            s.observation.name(),
            s.prf.precision,
            s.prf.recall,
            s.prf.f1,
            s.support,
            s.predicted
        );
    }
    for (name, p) in [
        ("micro avg (14)", e.micro_14),
        ("macro avg (14)", e.macro_14),
        ("micro avg (5)", e.micro_5),
        ("macro avg (5)", e.macro_5),
    ] {
        let _ = writeln!(
            out,
            "{name:<28}{:>10.4}{:>10.4}{:>10.4}",
            p.precision, p.recall, p.f1
        );
    }
    out
}
