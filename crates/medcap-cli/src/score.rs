//! `medcap score`: caption metrics of a hypothesis file against reference
//! files, per caption and summarized, optionally compared with a second
//! system on the same references.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};
use medcap_metrics::bertscore::{Baseline, TokenEmbedder};
use medcap_metrics::bleu::{Bleu, BleuImpl, NltkSmoothing, SacreSmoothing};
use medcap_metrics::caption_files::{CaptionLines, CsvCaptions};
use medcap_metrics::caption_scores::{
    BertScoreSetup, CaptionScorer, Metrics, ScoreColumns, ScoredChunk,
};
use medcap_metrics::findings::Labels;
use medcap_metrics::findings::scores::{
    ClinicalEfficacy, FindingsOptions, UncertainPolicy, clinical_efficacy,
};
use medcap_metrics::metric::Metric;
use medcap_metrics::rouge::{Rouge, RougeTokenizer};
use medcap_metrics::stats::Bootstrap;
use medcap_metrics::table1::Table1;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Reference captions, one per line (repeat for several references per caption).
    #[arg(long = "refs", value_name = "FILE", required_unless_present_any = ["csv", "suite"])]
    pub(crate) refs: Vec<PathBuf>,
    /// Hypothesis captions, one per line; an empty line is an empty caption.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present_any = ["csv", "suite"],
        conflicts_with = "csv"
    )]
    pub(crate) hyps: Option<PathBuf>,
    /// A CSV file with `reference` and `candidate` columns, instead of --refs/--hyps.
    #[arg(long, value_name = "FILE", conflicts_with = "refs")]
    pub(crate) csv: Option<PathBuf>,
    /// A second system's hypotheses: adds a paired comparison (bootstrap interval, permutation p-value).
    #[arg(long, value_name = "FILE")]
    pub(crate) compare: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
    /// BLEU convention: the study's (HF evaluate / tensorflow-nmt), sacrebleu or nltk.
    #[arg(long, value_enum, default_value_t = BleuChoice::Study)]
    pub(crate) bleu_impl: BleuChoice,
    /// BLEU smoothing: none|add-one (study), none|floor|add-k|exp (sacrebleu), method0..method7 (nltk).
    #[arg(long)]
    pub(crate) bleu_smoothing: Option<String>,
    /// Porter-stem ROUGE tokens (rouge-score's use_stemmer).
    #[arg(long)]
    pub(crate) rouge_stemmer: bool,
    /// Keep non-ASCII letters in ROUGE tokens (rouge-score deletes them).
    #[arg(long)]
    pub(crate) rouge_unicode: bool,
    /// Bootstrap resamples for the 95% intervals.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// BERTScore model: a BERT-family Hugging Face directory (config.json,
    /// model.safetensors, tokenizer.json). Default: the all-MiniLM-L6-v2 that
    /// `cargo xtask setup` installs (MEDCAP_MINILM_DIR).
    #[arg(long, value_name = "DIR")]
    pub(crate) bertscore_model: Option<PathBuf>,
    /// Hidden layer whose embeddings BERTScore matches. Default: bert-score's layer for the
    /// model (its table, e.g. roberta-large 17, roberta-base 10, bert-base-uncased 9), 5 for
    /// the default MiniLM.
    #[arg(long, value_name = "N")]
    pub(crate) bertscore_layer: Option<usize>,
    /// bert-score's name of the model in --bertscore-model (e.g. roberta-large): selects its
    /// default layer and, with --bertscore-rescale, its baseline. Default: the directory's name.
    #[arg(long, value_name = "NAME")]
    pub(crate) bertscore_model_type: Option<String>,
    /// Rescale with bert-score's own baseline for the model and layer (English), as its
    /// rescale_with_baseline=True (the files `cargo xtask setup` installs).
    #[arg(long, conflicts_with = "bertscore_baseline")]
    pub(crate) bertscore_rescale: bool,
    /// idf-weight BERTScore tokens, from the references.
    #[arg(long)]
    pub(crate) bertscore_idf: bool,
    /// Rescale BERTScore with a bert-score baseline file (CSV `LAYER,P,R,F`; the row of --bertscore-layer).
    #[arg(long, value_name = "FILE")]
    pub(crate) bertscore_baseline: Option<PathBuf>,
    /// Reproduce bert-score's value at its `batch_size=N` exactly (its batches pad texts,
    /// and a padded position offers a similarity of 0): for matching a published number.
    /// Default: the batch-independent value, bert-score's at batch size 1.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) bertscore_batch_size: Option<u64>,
    /// Skip BERTScore (no model needed).
    #[arg(long, conflicts_with_all = ["bertscore_model", "bertscore_idf", "bertscore_baseline", "bertscore_batch_size", "bertscore_layer", "bertscore_model_type", "bertscore_rescale"])]
    pub(crate) no_bertscore: bool,
    /// Skip the findings (clinical-efficacy) scores, which are on by default.
    #[arg(long)]
    pub(crate) no_findings: bool,
    /// Count uncertain findings as present (default: positive findings only).
    #[arg(long, conflicts_with = "no_findings")]
    pub(crate) findings_uncertain_positive: bool,
    /// Where BERTScore's encoder runs: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub(crate) device: String,
    #[command(flatten)]
    pub(crate) imageclef: crate::imageclef::SuiteArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Jsonl,
    Csv,
    Table,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum BleuChoice {
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

type Lines = CaptionLines<std::io::BufReader<std::fs::File>>;

/// Where the captions come from: line files or one CSV file. Read twice:
/// once for the references alone (corpus statistics), once for scoring.
enum Source<'a> {
    Lines {
        hyps: &'a Path,
        refs: &'a [PathBuf],
        compare: Option<&'a Path>,
    },
    Csv(&'a Path),
}

/// One caption: hypothesis, references and the second system's hypothesis.
type Item = (String, Vec<String>, Option<String>);

/// A pass over a [`Source`].
enum Reader {
    Lines {
        /// `None` in the references-only pass.
        hyps: Option<Lines>,
        refs: Vec<Lines>,
        compare: Option<Lines>,
    },
    Csv(CsvCaptions<std::fs::File>),
}

impl Source<'_> {
    /// Checks that the files line up (one reference per hypothesis, line
    /// by line), naming the one that does not.
    fn check(&self) -> Result<()> {
        let Source::Lines {
            hyps,
            refs,
            compare,
        } = self
        else {
            return Ok(());
        };
        let n = Lines::count(hyps)?;
        for path in *refs {
            let lines = Lines::count(path)?;
            ensure!(
                lines == n,
                "{} has {lines} lines but {} has {n}: one reference per hypothesis, line by line",
                path.display(),
                hyps.display(),
            );
        }
        if let Some(path) = compare {
            let lines = Lines::count(path)?;
            ensure!(
                lines == n,
                "{} has {lines} lines but the hypotheses have {n}",
                path.display()
            );
        }
        Ok(())
    }

    /// A pass over every caption; with `references_only`, over the
    /// references alone (line files: the others are not read; the
    /// hypotheses come back empty).
    fn open(&self, references_only: bool) -> Result<Reader> {
        Ok(match self {
            Source::Lines {
                hyps,
                refs,
                compare,
            } => Reader::Lines {
                hyps: (!references_only).then(|| Lines::open(hyps)).transpose()?,
                refs: refs
                    .iter()
                    .map(|p| Lines::open(p))
                    .collect::<Result<_, _>>()?,
                compare: compare
                    .filter(|_| !references_only)
                    .map(Lines::open)
                    .transpose()?,
            },
            Source::Csv(path) => Reader::Csv(CsvCaptions::open(path)?),
        })
    }
}

impl Reader {
    fn next_item(&mut self) -> Result<Option<Item>> {
        match self {
            Reader::Lines {
                hyps,
                refs,
                compare,
            } => {
                let (hyp, first) = match hyps {
                    Some(h) => match h.next_line()? {
                        Some(line) => (line, h.path()),
                        None => return Ok(None),
                    },
                    None => match refs.first() {
                        Some(r) => (String::new(), r.path()),
                        None => return Ok(None),
                    },
                };
                let first = first.to_owned();
                let mut references = Vec::with_capacity(refs.len());
                for (k, r) in refs.iter_mut().enumerate() {
                    match r.next_line()? {
                        Some(line) => references.push(line),
                        // The references-only pass ends with the first file.
                        None if k == 0 && hyps.is_none() => return Ok(None),
                        // Line counts were checked first; a file that shrank since is an error.
                        None => bail!("{} ended before {}", r.path().display(), first.display()),
                    }
                }
                let other = match compare {
                    Some(c) => Some(c.next_line()?.with_context(|| {
                        format!("{} ended before {}", c.path().display(), first.display())
                    })?),
                    None => None,
                };
                Ok(Some((hyp, references, other)))
            }
            Reader::Csv(rows) => Ok(rows
                .next_pair()?
                .map(|pair| (pair.candidate, vec![pair.reference], None))),
        }
    }

    /// Up to `size` captions.
    fn next_chunk(&mut self, size: usize) -> Result<Vec<Item>> {
        let mut chunk = Vec::with_capacity(size);
        while chunk.len() < size {
            match self.next_item()? {
                Some(item) => chunk.push(item),
                None => break,
            }
        }
        Ok(chunk)
    }
}

fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Captions scored per chunk: large enough to keep both cores busy, small
/// enough that a chunk's texts and n-gram tables stay a few megabytes.
const CHUNK: usize = 8192;

/// Captions per chunk with BERTScore: memory is then the embeddings of the
/// chunk's distinct texts (tokens x hidden size x 4 bytes each, about 60 KB
/// for a caption with MiniLM), as bert-score holds those of the whole set.
const BERTSCORE_CHUNK: usize = 32_768;

/// What one scored system leaves for the summaries.
#[derive(Default)]
struct Scored {
    columns: ScoreColumns,
    /// Labels of each hypothesis and of its best-matching reference.
    hypothesis_labels: Vec<Labels>,
    reference_labels: Vec<Labels>,
    bertscore_truncated: Option<usize>,
}

impl Scored {
    fn add(&mut self, chunk: ScoredChunk) {
        self.columns.extend(&chunk.scores);
        if let Some(t) = chunk.bertscore_truncated {
            *self.bertscore_truncated.get_or_insert(0) += t;
        }
        // The summaries need the labels only; the mentions were written with the rows.
        for mut f in chunk.findings.into_iter().flatten() {
            f.hypothesis.mentions = Vec::new();
            f.reference.mentions = Vec::new();
            self.hypothesis_labels.push(f.hypothesis);
            self.reference_labels.push(f.reference);
        }
    }

    fn efficacy(&self, options: FindingsOptions) -> ClinicalEfficacy {
        let references: Vec<&Labels> = self.reference_labels.iter().collect();
        clinical_efficacy(&self.hypothesis_labels, &references, options)
    }

    fn captions(&self) -> usize {
        self.columns.columns.first().map_or(0, |(_, v)| v.len())
    }
}

impl ScoreArgs {
    /// Whether `--suite` was given a model directory, so that it runs in
    /// `medcap-torch` (the one test both binaries use).
    pub(crate) fn suite_needs_models(&self) -> bool {
        self.bertscore_model.is_some()
            || self.imageclef.bleurt_model.is_some()
            || self.imageclef.alignscore_model.is_some()
    }
}

/// The year fixes how BERTScore is computed (idf, no rescaling, one pair
/// per call): options that would change it are refused with `--suite`.
pub(crate) fn check_suite_bertscore(args: &ScoreArgs) -> Result<()> {
    for (given, flag) in [
        (args.bertscore_idf, "--bertscore-idf"),
        (args.bertscore_rescale, "--bertscore-rescale"),
        (args.bertscore_baseline.is_some(), "--bertscore-baseline"),
        (
            args.bertscore_batch_size.is_some(),
            "--bertscore-batch-size",
        ),
        (
            args.bertscore_model_type.is_some(),
            "--bertscore-model-type",
        ),
    ] {
        if given {
            anyhow::bail!(
                "{flag} does not apply to --suite: the year's evaluator fixes how BERTScore is \
                 computed (leave out --bertscore-model to skip the component)"
            );
        }
    }
    Ok(())
}

/// `medcap score --suite ...` with the model components in `models`
/// (loaded by the caller).
pub fn run_suite(args: &ScoreArgs, models: &crate::imageclef::SuiteModels<'_>) -> Result<()> {
    check_suite_bertscore(args)?;
    let bootstrap = Bootstrap {
        resamples: args.bootstrap,
        seed: args.seed,
    };
    crate::imageclef::score(&args.imageclef, models, args.format, &bootstrap)
}

/// `medcap score`: BERTScore from `bert` (the encoder and its baseline)
/// when given; the caller loads it (libtorch lives in `medcap-torch` only).
pub fn run(args: &ScoreArgs, bert: Option<(&dyn TokenEmbedder, Option<Baseline>)>) -> Result<()> {
    if args.imageclef.suite.is_some() {
        // The model components are loaded by medcap-torch, which calls
        // run_suite itself; here none may have been asked for.
        if args.suite_needs_models() {
            bail!("--suite with a model directory runs in medcap-torch, not here");
        }
        return run_suite(args, &crate::imageclef::SuiteModels::default());
    }
    let source = match (&args.csv, &args.hyps) {
        (Some(csv), _) => Source::Csv(csv),
        (None, Some(hyps)) => Source::Lines {
            hyps,
            refs: &args.refs,
            compare: args.compare.as_deref(),
        },
        (None, None) => bail!("--hyps is required without --csv"),
    };
    source.check()?;
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
    let mut scorer = CaptionScorer::new(metrics);
    if let Some((embedder, baseline)) = bert {
        scorer = scorer.with_bertscore(BertScoreSetup {
            embedder,
            idf: args.bertscore_idf,
            baseline,
            batch_size: args.bertscore_batch_size.map(|n| n as usize),
        });
    }
    // First pass: the references alone, for CIDEr-D's document frequencies
    // (and BERTScore's idf).
    let started = std::time::Instant::now();
    let mut reader = source.open(true)?;
    let mut captions = 0usize;
    loop {
        let chunk: Vec<Vec<String>> = reader
            .next_chunk(CHUNK)?
            .into_iter()
            .map(|(_, refs, _)| refs)
            .collect();
        if chunk.is_empty() {
            break;
        }
        scorer
            .add_references_chunk(&chunk)
            .context("BERTScore's tokenizer failed")?;
        captions += chunk.len();
    }
    tracing::debug!(
        captions,
        seconds = started.elapsed().as_secs_f64(),
        "corpus statistics counted"
    );
    let started = std::time::Instant::now();
    // With BERTScore, chunks are larger: each distinct text of a chunk is
    // embedded once (as bert-score embeds each of the whole set once), and
    // texts repeated across chunks would be embedded again. bert-score's
    // batches restart at each chunk: keep chunks whole batches.
    let chunk_size = match (&bert, args.bertscore_batch_size) {
        (None, _) => CHUNK,
        (Some(_), None) => BERTSCORE_CHUNK,
        (Some(_), Some(b)) => BERTSCORE_CHUNK.div_ceil(b as usize) * b as usize,
    };
    let mut out = medcap_cli::results_out::results_out();
    // A reader that goes away (`| head`) ends the run quietly: `logging::exit`.
    let (a, b) = score_stream(args, &source, &scorer, chunk_size, &mut out)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "captions scored");
    let summary = match args.format {
        Format::Jsonl => jsonl_summary(&a, b.as_ref(), &metrics),
        Format::Csv => String::new(),
        Format::Table => table(&a, b.as_ref(), &metrics),
    };
    out.write_all(summary.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Second pass: scores chunk by chunk, writing each caption's row (JSONL,
/// CSV) as its chunk is done, in input order; keeps what the summaries need.
fn score_stream(
    args: &ScoreArgs,
    source: &Source<'_>,
    scorer: &CaptionScorer<'_>,
    chunk_size: usize,
    out: &mut impl Write,
) -> Result<(Scored, Option<(PathBuf, Scored)>)> {
    let mut reader = source.open(false)?;
    let mut a = Scored::default();
    let mut b = args
        .compare
        .as_ref()
        .map(|p| (p.clone(), Scored::default()));
    let mut index = 0usize;
    loop {
        let chunk = reader.next_chunk(chunk_size)?;
        if chunk.is_empty() {
            break;
        }
        let hyps: Vec<&str> = chunk.iter().map(|c| c.0.as_str()).collect();
        let refs: Vec<Vec<&str>> = chunk
            .iter()
            .map(|c| c.1.iter().map(String::as_str).collect())
            .collect();
        let scored = scorer
            .score_chunk(&hyps, &refs)
            .context("BERTScore failed")?;
        let mut rows = String::new();
        match args.format {
            Format::Jsonl => jsonl_rows(&scored, &mut rows),
            Format::Csv => csv_rows(&scored, index, &mut rows),
            Format::Table => {}
        }
        out.write_all(rows.as_bytes())?;
        index += scored.scores.len();
        a.add(scored);
        if let Some((_, b)) = &mut b {
            let other: Vec<&str> = chunk
                .iter()
                .map(|c| c.2.as_deref().unwrap_or_default())
                .collect();
            b.add(
                scorer
                    .score_chunk(&other, &refs)
                    .context("BERTScore failed")?,
            );
        }
    }
    if index == 0 && matches!(args.format, Format::Csv) {
        out.write_all(b"index,\n")?;
    }
    Ok((a, b))
}

/// One JSON object per caption: its scores and, with findings, its labels.
fn jsonl_rows(scored: &ScoredChunk, out: &mut String) {
    for (i, c) in scored.scores.iter().enumerate() {
        let mut obj: serde_json::Map<String, serde_json::Value> = c
            .named()
            .iter()
            .map(|(k, v)| (k.key().to_owned(), json_number(*v)))
            .collect();
        if let Some(f) = scored.findings.as_ref().and_then(|f| f.get(i)) {
            obj.insert(
                "findings".into(),
                serde_json::json!({"hypothesis": f.hypothesis, "reference": f.reference}),
            );
        }
        let _ = writeln!(out, "{}", serde_json::Value::Object(obj));
    }
}

/// The last JSONL line: summaries, clinical efficacy, the comparison.
fn jsonl_summary(a: &Scored, b: Option<&(PathBuf, Scored)>, metrics: &Metrics) -> String {
    let summary: BTreeMap<&str, serde_json::Value> = a
        .columns
        .summarize(&metrics.bootstrap)
        .into_iter()
        .map(|(k, s)| {
            (k.key(), serde_json::json!({"mean": json_number(s.mean), "sd": json_number(s.sd), "ci95": [json_number(s.ci95.0), json_number(s.ci95.1)], "n": s.n, "left_out": s.left_out}))
        })
        .collect();
    let mut last = serde_json::json!({ "summary": summary });
    if let Some(truncated) = a.bertscore_truncated {
        last["bertscore_truncated_texts"] = serde_json::json!(truncated);
    }
    if let Some(options) = metrics.findings {
        last["clinical_efficacy"] = serde_json::json!(a.efficacy(options));
    }
    if let Some((path, other)) = b {
        let cmp: BTreeMap<&str, serde_json::Value> = a
            .columns
            .compare(&other.columns, &metrics.bootstrap)
            .into_iter()
            .map(|(k, c)| (k.key(), serde_json::json!({"mean_difference": json_number(c.mean_difference), "ci95": [json_number(c.ci95.0), json_number(c.ci95.1)], "p_value": json_number(c.p_value)})))
            .collect();
        last["comparison"] =
            serde_json::json!({ "system_b": path.display().to_string(), "b_minus_a": cmp });
    }
    format!("{last}\n")
}

/// CSV rows from caption number `first` on, with the header before the first.
fn csv_rows(scored: &ScoredChunk, first: usize, out: &mut String) {
    if first == 0
        && let Some(c) = scored.scores.first()
    {
        let names: Vec<&str> = c.named().iter().map(|(k, _)| k.key()).collect();
        let _ = writeln!(out, "index,{}", names.join(","));
    }
    for (i, c) in scored.scores.iter().enumerate() {
        let _ = write!(out, "{}", first + i);
        for (_, v) in c.named() {
            if v.is_nan() {
                out.push(',');
            } else {
                let _ = write!(out, ",{v}");
            }
        }
        out.push('\n');
    }
}

/// The study's Table 1 layout: one row per system, mean (s.d.) per metric,
/// with the 95% interval underneath.
fn table(a: &Scored, b: Option<&(PathBuf, Scored)>, metrics: &Metrics) -> String {
    if a.captions() == 0 {
        return "no captions to score\n".into();
    }
    let bootstrap = &metrics.bootstrap;
    let summary_a = a.columns.summarize(bootstrap);
    let mut systems = vec![("A".to_owned(), summary_a.clone())];
    if let Some((_, other)) = b {
        systems.push(("B".to_owned(), other.columns.summarize(bootstrap)));
    }
    let table = Table1::new(&Metric::TABLE_ORDER, systems);
    let diffs = b.map(|(_, other)| a.columns.compare(&other.columns, bootstrap));
    let mut out = table.to_text(diffs.as_ref().map(|d| ("B - A", d)));
    let _ = writeln!(
        out,
        "n = {} captions; mean (sample s.d.); 95% CI: percentile bootstrap, {} resamples",
        a.captions(),
        bootstrap.resamples
    );
    let left_out: Vec<String> = summary_a
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
    if let Some(t) = a.bertscore_truncated.filter(|t| *t > 0) {
        let _ = writeln!(
            out,
            "BERTScore: {t} texts truncated at the tokenizer's model_max_length"
        );
    }
    if let Some(options) = metrics.findings {
        out.push_str(&efficacy_table(&a.efficacy(options)));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Every caption of `source`, in order.
    fn read_all(source: &Source<'_>) -> Result<Vec<Item>> {
        source.check()?;
        let mut reader = source.open(false)?;
        let mut items = Vec::new();
        while let Some(item) = reader.next_item()? {
            items.push(item);
        }
        Ok(items)
    }

    /// A caption on one line: any text without line breaks (nor a U+FEFF,
    /// which at the start of a file is read as its byte-order mark).
    fn line_caption() -> impl Strategy<Value = String> {
        "[^\r\n\u{feff}]{0,30}"
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6d65_6463_6170), ..ProptestConfig::default() })]

        /// Line files as editors save them: LF or CRLF, a final newline or
        /// not, a byte-order mark or not; every caption comes back as written.
        #[test]
        fn line_files_read_back_their_captions(
            captions in prop::collection::vec((line_caption(), line_caption()), 1..20),
            crlf in any::<bool>(),
            final_newline in any::<bool>(),
            bom in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let write = |name: &str, texts: Vec<&str>| {
                let end = if crlf { "\r\n" } else { "\n" };
                let mut body = if bom { "\u{feff}".to_owned() } else { String::new() };
                body += &texts.join(end);
                if final_newline {
                    body += end;
                }
                let path = dir.path().join(name);
                std::fs::write(&path, body).unwrap();
                path
            };
            // Without a final newline, a last empty caption cannot be written.
            let last = captions.last().unwrap();
            prop_assume!(final_newline || (!last.0.is_empty() && !last.1.is_empty()));
            let hyps = write("hyps.txt", captions.iter().map(|c| c.0.as_str()).collect());
            let refs = [write("refs.txt", captions.iter().map(|c| c.1.as_str()).collect())];
            let source = Source::Lines { hyps: &hyps, refs: &refs, compare: None };
            match read_all(&source) {
                Ok(items) => {
                    let got: Vec<(String, String)> = items.into_iter().map(|(h, r, _)| (h, r[0].clone())).collect();
                    prop_assert_eq!(got, captions);
                }
                Err(e) => prop_assert!(false, "{:#}", e),
            }
        }

        /// CSV files with quoted fields (commas, quotes, line breaks inside),
        /// CRLF, a byte-order mark and columns in any order.
        #[test]
        fn csv_files_read_back_their_captions(
            captions in prop::collection::vec(("\\PC{0,20}", "\\PC{0,20}"), 1..12),
            crlf in any::<bool>(),
            bom in any::<bool>(),
            reference_first in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pairs.csv");
            let mut writer = csv::WriterBuilder::new()
                .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                .quote_style(csv::QuoteStyle::Always)
                .from_writer(Vec::new());
            let header = if reference_first { ["reference", "candidate", "id"] } else { ["id", "candidate", "reference"] };
            writer.write_record(header).unwrap();
            for (i, (candidate, reference)) in captions.iter().enumerate() {
                let id = i.to_string();
                let row: [&str; 3] = if reference_first { [reference, candidate, &id] } else { [&id, candidate, reference] };
                writer.write_record(row).unwrap();
            }
            let mut bytes = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            bytes.extend(writer.into_inner().unwrap());
            std::fs::write(&path, bytes).unwrap();
            let items = read_all(&Source::Csv(&path)).unwrap();
            let got: Vec<(String, String)> = items.into_iter().map(|(h, r, _)| (h, r[0].clone())).collect();
            prop_assert_eq!(got, captions);
        }
    }

    #[test]
    fn a_ragged_csv_row_and_non_utf8_lines_are_errors_naming_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("pairs.csv");
        std::fs::write(&csv, "candidate,reference\na,b\nc,d,e\n").unwrap();
        let err = format!("{:#}", read_all(&Source::Csv(&csv)).unwrap_err());
        assert!(err.contains("pairs.csv: row 3"), "{err}");
        let hyps = dir.path().join("hyps.txt");
        std::fs::write(&hyps, b"ok\n\xff\xfe\n").unwrap();
        let refs = [hyps.clone()];
        let source = Source::Lines {
            hyps: &hyps,
            refs: &refs,
            compare: None,
        };
        let err = format!("{:#}", read_all(&source).unwrap_err());
        assert!(err.contains("line 2 is not valid UTF-8"), "{err}");
    }
}
