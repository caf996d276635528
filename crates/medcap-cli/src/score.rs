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
use medcap_metrics::clipscore::{
    ClipScoreForm, ClipScoreSettings, ClipScoreValue, HESSEL_PREFIX, ImageCaptionScorer, RefForm,
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
    /// Optional with --clip-model: CLIPScore alone needs no references.
    #[arg(long = "refs", value_name = "FILE", required_unless_present_any = ["csv", "suite", "clip_model"])]
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
    /// The captions' images, for --clip-model: a line file of image paths, one per
    /// caption line (relative paths are read against the file's directory), or a
    /// directory whose image files, in file-name order, belong to the caption lines in
    /// order. With --csv, the file's `image` column instead.
    #[arg(
        long,
        value_name = "FILE|DIR",
        requires = "clip_model",
        conflicts_with = "csv"
    )]
    pub(crate) images: Option<PathBuf>,
    /// Score each caption against its image (CLIPScore, and RefCLIPScore with
    /// references) with this image-text encoder: a Hugging Face CLIP directory, an
    /// open_clip directory (BiomedCLIP) or a BLIP retrieval checkpoint (its ITC heads).
    #[arg(long, value_name = "DIR")]
    pub(crate) clip_model: Option<PathBuf>,
    /// The score's form: hessel (2.5 * max(cos, 0), "A photo depicts " before each
    /// text), pacs (2.0 * max(cos, 0)), torchmetrics (100 * cos per caption).
    #[arg(long, value_enum, default_value_t = ClipFormChoice::Hessel, requires = "clip_model")]
    pub(crate) clip_score_form: ClipFormChoice,
    /// Text before every caption and reference for CLIPScore (default: "A photo
    /// depicts " with --clip-score-form hessel, none otherwise).
    #[arg(
        long,
        value_name = "TEXT",
        requires = "clip_model",
        conflicts_with = "no_clip_prefix"
    )]
    pub(crate) clip_prefix: Option<String>,
    /// No text before captions and references (Hessel's prefix off).
    #[arg(long, requires = "clip_model")]
    pub(crate) no_clip_prefix: bool,
    /// RefCLIPScore's caption-reference cosine: code (as clipscore.py: as it is) or
    /// paper (clamped at 0, as the paper writes it).
    #[arg(long, value_enum, default_value_t = RefFormChoice::Code, requires = "clip_model")]
    pub(crate) refclip_form: RefFormChoice,
    /// Images or texts per encoder batch.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..), requires = "clip_model")]
    pub(crate) clip_batch_size: u64,
    #[command(flatten)]
    pub(crate) imageclef: crate::imageclef::SuiteArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ClipFormChoice {
    Hessel,
    Pacs,
    Torchmetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RefFormChoice {
    Code,
    Paper,
}

impl ScoreArgs {
    /// The CLIPScore settings the flags give.
    #[allow(
        dead_code,
        reason = "score.rs is compiled into both binaries; medcap-torch loads the encoder"
    )]
    pub(crate) fn clip_settings(&self) -> ClipScoreSettings {
        let form = match self.clip_score_form {
            ClipFormChoice::Hessel => ClipScoreForm::Hessel,
            ClipFormChoice::Pacs => ClipScoreForm::Pacs,
            ClipFormChoice::Torchmetrics => ClipScoreForm::Torchmetrics,
        };
        let mut settings = ClipScoreSettings::defaults(form);
        if self.no_clip_prefix {
            settings.prefix = String::new();
        } else if let Some(p) = &self.clip_prefix {
            settings.prefix = p.clone();
        }
        settings.ref_form = match self.refclip_form {
            RefFormChoice::Code => RefForm::Code,
            RefFormChoice::Paper => RefForm::Paper,
        };
        settings
    }

    /// Whether only CLIPScore is asked for (an encoder, no references):
    /// the text metrics, BERTScore and findings need references.
    pub(crate) fn clip_only(&self) -> bool {
        self.clip_model.is_some() && self.refs.is_empty() && self.csv.is_none()
    }
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

/// One caption: hypothesis, references, the second system's hypothesis
/// and, from a CSV `image` column, its image (as written in the file).
type Item = (String, Vec<String>, Option<String>, Option<String>);

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
                Ok(Some((hyp, references, other, None)))
            }
            Reader::Csv(rows) => Ok(rows
                .next_pair()?
                .map(|pair| (pair.candidate, vec![pair.reference], None, pair.image))),
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
    /// Captions whose image could not be scored: (0-based row, why).
    clip_errors: Vec<(usize, String)>,
}

/// One caption's CLIPScore, or why its image could not be scored.
type ClipRow = Result<ClipScoreValue, String>;

impl Scored {
    /// Appends a chunk's CLIPScore values (from caption `first` on): NaN
    /// where the image failed, so that it is left out of the summaries;
    /// RefCLIPScore when references were given.
    fn add_clip(&mut self, values: &[ClipRow], first: usize, with_references: bool) {
        let mut push = |metric: Metric, value: f64| match self
            .columns
            .columns
            .iter_mut()
            .find(|(m, _)| *m == metric)
        {
            Some((_, v)) => v.push(value),
            None => self.columns.columns.push((metric, vec![value])),
        };
        for (i, v) in values.iter().enumerate() {
            match v {
                Ok(v) => {
                    push(Metric::ClipScore, v.clip_s);
                    if with_references {
                        push(Metric::RefClipScore, v.ref_clip_s.unwrap_or(f64::NAN));
                    }
                }
                Err(e) => {
                    push(Metric::ClipScore, f64::NAN);
                    if with_references {
                        push(Metric::RefClipScore, f64::NAN);
                    }
                    self.clip_errors.push((first + i, e.clone()));
                }
            }
        }
    }

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
            || self.clip_model.is_some()
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

/// The images of the caption lines, from `--images`: a line file of paths
/// (relative ones read against its directory) or a directory's image
/// files in file-name order. `None` for a line left empty.
fn image_list(path: &Path) -> Result<Vec<Option<PathBuf>>> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list the image directory {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str())
                    })
            })
            .collect();
        files.sort();
        ensure!(
            !files.is_empty(),
            "{} has no JPEG or PNG files",
            path.display()
        );
        return Ok(files.into_iter().map(Some).collect());
    }
    let base = path.parent().unwrap_or(Path::new(""));
    let mut lines = Lines::open(path)?;
    let mut list = Vec::new();
    while let Some(line) = lines.next_line()? {
        let line = line.trim();
        list.push((!line.is_empty()).then(|| base.join(line)));
    }
    Ok(list)
}

/// `medcap score`: BERTScore from `bert` (the encoder and its baseline)
/// and CLIPScore from `clip` when given; the caller loads them (libtorch
/// lives in `medcap-torch` only).
pub fn run(
    args: &ScoreArgs,
    bert: Option<(&dyn TokenEmbedder, Option<Baseline>)>,
    clip: Option<&dyn ImageCaptionScorer>,
) -> Result<()> {
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
    let images = match (clip, &args.images, &source) {
        (None, _, _) => None,
        (Some(_), Some(path), Source::Lines { hyps, .. }) => {
            let list = image_list(path)?;
            let n = Lines::count(hyps)?;
            ensure!(
                list.len() == n,
                "{} gives {} images but {} has {n} captions: one image per caption line",
                path.display(),
                list.len(),
                hyps.display()
            );
            Some(list)
        }
        (Some(_), None, Source::Lines { .. }) => bail!(
            "--clip-model scores captions against their images: give --images FILE|DIR \
             (one image per caption line), or a --csv file with an `image` column"
        ),
        (Some(_), _, Source::Csv(path)) => {
            ensure!(
                CsvCaptions::open(path)?.has_images(),
                "{} has no `image` column: --clip-model scores captions against their images",
                path.display()
            );
            None
        }
    };
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
        // Findings compare a caption with its references.
        findings: (!args.no_findings && !args.clip_only()).then_some(FindingsOptions {
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
            .map(|(_, refs, _, _)| refs)
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
    let clip = clip.map(|scorer| ClipRun {
        scorer,
        images: images.as_deref(),
        csv_dir: match &source {
            Source::Csv(path) => path.parent().map(Path::to_owned),
            Source::Lines { .. } => None,
        },
        with_references: !args.clip_only(),
    });
    let (a, b) = score_stream(args, &source, &scorer, clip.as_ref(), chunk_size, &mut out)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "captions scored");
    let mut summary = match args.format {
        Format::Jsonl => jsonl_summary(&a, b.as_ref(), &metrics),
        Format::Csv => String::new(),
        Format::Table => table(&a, b.as_ref(), &metrics),
    };
    if let (Some(c), Format::Table) = (&clip, args.format) {
        summary.push_str(&clip_notes(c, &a));
    }
    out.write_all(summary.as_bytes())?;
    out.flush()?;
    let failed: Vec<&(usize, String)> = a
        .clip_errors
        .iter()
        .chain(b.iter().flat_map(|(_, b)| &b.clip_errors))
        .collect();
    if let Some((row, first)) = failed.first() {
        bail!(
            "{} captions have no CLIPScore: their images could not be read (the other captions \
             were scored); the first, caption {}: {first}",
            failed.len(),
            row + 1
        );
    }
    Ok(())
}

/// CLIPScore's part of a run: the scorer and where each caption's image is.
struct ClipRun<'a> {
    scorer: &'a dyn ImageCaptionScorer,
    /// From --images, one per caption line.
    images: Option<&'a [Option<PathBuf>]>,
    /// With --csv: the directory its relative `image` paths are read against.
    csv_dir: Option<PathBuf>,
    /// Whether references were given (RefCLIPScore).
    with_references: bool,
}

impl ClipRun<'_> {
    /// The chunk's CLIPScore values (captions `first..` of the input).
    fn score(
        &self,
        chunk: &[Item],
        first: usize,
        hypotheses: &[&str],
        references: &[Vec<&str>],
    ) -> Result<Vec<ClipRow>> {
        let paths: Vec<Option<PathBuf>> = match self.images {
            Some(list) => list
                .get(first..first + chunk.len())
                .context("fewer images than captions")?
                .to_vec(),
            None => chunk
                .iter()
                .map(|c| {
                    c.3.as_deref().filter(|p| !p.trim().is_empty()).map(|p| {
                        self.csv_dir
                            .as_deref()
                            .unwrap_or(Path::new(""))
                            .join(p.trim())
                    })
                })
                .collect(),
        };
        // Rows without an image are errors of their own; the others go to the encoder.
        let given: Vec<usize> = (0..paths.len()).filter(|&i| paths[i].is_some()).collect();
        let pick = |i: &usize| paths[*i].as_deref().unwrap_or(Path::new(""));
        let scored = self
            .scorer
            .score_captions(
                &given.iter().map(pick).collect::<Vec<_>>(),
                &given.iter().map(|&i| hypotheses[i]).collect::<Vec<_>>(),
                &given
                    .iter()
                    .map(|&i| {
                        if self.with_references {
                            references[i].clone()
                        } else {
                            Vec::new()
                        }
                    })
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| anyhow::anyhow!(e))
            .context("CLIPScore's encoder failed")?;
        let mut rows: Vec<ClipRow> = (0..paths.len())
            .map(|_| {
                Err(match self.images {
                    Some(_) => "no image given: its line of --images is empty".to_owned(),
                    None => "no image given: its `image` cell is empty".to_owned(),
                })
            })
            .collect();
        for (i, v) in given.into_iter().zip(scored) {
            rows[i] = v;
        }
        Ok(rows)
    }
}

/// What the table says about CLIPScore: how it was computed, failed
/// images, the encoder's training data.
fn clip_notes(clip: &ClipRun<'_>, a: &Scored) -> String {
    let settings = clip.scorer.settings();
    let encoder = clip.scorer.encoder();
    let mut out = format!("\nCLIPScore: {}\n", settings.signature(encoder));
    let reference_form = if clip.with_references && settings.form.has_reference_form() {
        format!(
            "; RefCLIP-S = harmonic mean of CLIP-S and the best caption-reference cosine ({})",
            match settings.ref_form {
                RefForm::Code => "as clipscore.py computes it, not clamped",
                RefForm::Paper => "clamped at 0, as the paper writes it",
            }
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  CLIP-S = {} * {}{reference_form}; prefix {}",
        settings.form.weight(),
        match settings.form {
            ClipScoreForm::Torchmetrics => "cos (torchmetrics reports max(mean, 0))",
            _ => "max(cos, 0)",
        },
        if settings.prefix.is_empty() {
            "none".to_owned()
        } else if settings.prefix == HESSEL_PREFIX {
            format!("{:?} (Hessel's)", settings.prefix)
        } else {
            format!("{:?}", settings.prefix)
        }
    );
    if encoder.trained_on_pmc {
        let _ = writeln!(
            out,
            "  note: {} was trained on PubMed Central figures, which overlap ROCO, PMC-OA and \
             MedICaT: its scores on those test sets are optimistic",
            encoder.name
        );
    }
    if !a.clip_errors.is_empty() {
        let _ = writeln!(
            out,
            "  {} images could not be read; their captions are left out",
            a.clip_errors.len()
        );
    }
    out
}

/// Second pass: scores chunk by chunk, writing each caption's row (JSONL,
/// CSV) as its chunk is done, in input order; keeps what the summaries need.
fn score_stream(
    args: &ScoreArgs,
    source: &Source<'_>,
    scorer: &CaptionScorer<'_>,
    clip: Option<&ClipRun<'_>>,
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
        // Without references (CLIPScore alone) there are no text scores.
        let text = |hyps: &[&str]| -> Result<ScoredChunk> {
            if args.clip_only() {
                return Ok(ScoredChunk {
                    scores: Vec::new(),
                    findings: None,
                    bertscore_truncated: None,
                });
            }
            scorer.score_chunk(hyps, &refs).context("BERTScore failed")
        };
        let scored = text(&hyps)?;
        let clip_rows = clip
            .map(|c| c.score(&chunk, index, &hyps, &refs))
            .transpose()?;
        let mut rows = String::new();
        match args.format {
            Format::Jsonl => jsonl_rows(&scored, clip_rows.as_deref(), &mut rows),
            Format::Csv => {
                csv_rows(
                    &scored,
                    clip_rows.as_deref().zip(clip.map(|c| {
                        c.with_references && c.scorer.settings().form.has_reference_form()
                    })),
                    index,
                    &mut rows,
                )
            }
            Format::Table => {}
        }
        out.write_all(rows.as_bytes())?;
        a.add(scored);
        if let (Some(c), Some(values)) = (clip, &clip_rows) {
            a.add_clip(values, index, c.with_references);
        }
        if let Some((_, b)) = &mut b {
            let other: Vec<&str> = chunk
                .iter()
                .map(|c| c.2.as_deref().unwrap_or_default())
                .collect();
            b.add(text(&other)?);
            if let Some(c) = clip {
                let values = c.score(&chunk, index, &other, &refs)?;
                b.add_clip(&values, index, c.with_references);
            }
        }
        index += chunk.len();
    }
    if index == 0 && matches!(args.format, Format::Csv) {
        out.write_all(b"index,\n")?;
    }
    Ok((a, b))
}

/// A caption's CLIPScore columns, in output order: (metric, value), NaN
/// where undefined.
fn clip_named(row: &ClipRow) -> Vec<(Metric, f64)> {
    match row {
        Ok(v) => {
            let mut named = vec![(Metric::ClipScore, v.clip_s)];
            named.extend(v.ref_clip_s.map(|r| (Metric::RefClipScore, r)));
            named
        }
        Err(_) => vec![(Metric::ClipScore, f64::NAN)],
    }
}

/// One JSON object per caption: its scores, with findings its labels, with
/// CLIPScore its values (or why its image failed).
fn jsonl_rows(scored: &ScoredChunk, clip: Option<&[ClipRow]>, out: &mut String) {
    let n = scored.scores.len().max(clip.map_or(0, <[ClipRow]>::len));
    for i in 0..n {
        let mut obj: serde_json::Map<String, serde_json::Value> = scored
            .scores
            .get(i)
            .map(|c| c.named())
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.key().to_owned(), json_number(*v)))
            .collect();
        if let Some(row) = clip.and_then(|c| c.get(i)) {
            for (k, v) in clip_named(row) {
                obj.insert(k.key().to_owned(), json_number(v));
            }
            if let Err(e) = row {
                obj.insert("clip_error".into(), serde_json::Value::String(e.clone()));
            }
        }
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

/// CSV rows from caption number `first` on, with the header before the
/// first; CLIPScore's columns last (`ref_clip_s` when references were given).
fn csv_rows(
    scored: &ScoredChunk,
    clip: Option<(&[ClipRow], bool)>,
    first: usize,
    out: &mut String,
) {
    let clip_columns: Vec<Metric> = match clip {
        None => Vec::new(),
        Some((_, true)) => vec![Metric::ClipScore, Metric::RefClipScore],
        Some((_, false)) => vec![Metric::ClipScore],
    };
    let clip = clip.map(|(rows, _)| rows);
    let n = scored.scores.len().max(clip.map_or(0, <[ClipRow]>::len));
    if first == 0 && n > 0 {
        let mut names: Vec<&str> = scored
            .scores
            .first()
            .map(|c| c.named().iter().map(|(k, _)| k.key()).collect())
            .unwrap_or_default();
        names.extend(clip_columns.iter().map(|m| m.key()));
        let _ = writeln!(out, "index,{}", names.join(","));
    }
    for i in 0..n {
        let _ = write!(out, "{}", first + i);
        let mut values: Vec<(Metric, f64)> =
            scored.scores.get(i).map(|c| c.named()).unwrap_or_default();
        if let Some(row) = clip.and_then(|c| c.get(i)) {
            let named = clip_named(row);
            for m in &clip_columns {
                let v = named
                    .iter()
                    .find(|(k, _)| k == m)
                    .map_or(f64::NAN, |(_, v)| *v);
                values.push((*m, v));
            }
        }
        for (_, v) in values {
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
                    let got: Vec<(String, String)> = items.into_iter().map(|(h, r, _, _)| (h, r[0].clone())).collect();
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
            let got: Vec<(String, String)> = items.into_iter().map(|(h, r, _, _)| (h, r[0].clone())).collect();
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
