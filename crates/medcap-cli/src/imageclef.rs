//! `medcap score --suite imageclef-YYYY` and `medcap check-submission`:
//! ImageCLEFmedical Caption's files read and checked as that year's
//! official evaluator does (medcap_metrics::imageclef), the components
//! medcap computes, the official aggregates where every component is
//! there, and medcap's statistics beside them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use medcap_metrics::alignscore::AlignmentModel;
use medcap_metrics::bertscore::TokenEmbedder;
use medcap_metrics::clipscore::ImageCaptionScorer;
use medcap_metrics::imageclef::concepts::{self, ConceptScore, Concepts};
use medcap_metrics::imageclef::submission::{self, Pairs, Rejection, decode_utf8};
use medcap_metrics::imageclef::{Component, Entity, PairScorer, Suite};
use medcap_metrics::punkt::Punkt;
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
    /// The MedCAT component from the entities MedCAT found: JSONL, one line
    /// per image, `{"id": ..., "reference": [...], "candidate": [...]}`, each
    /// entity a CUI or `{"cui": ..., "pretty_name": ...}` (one file per
    /// --submission).
    #[arg(long, value_name = "FILE", requires = "suite")]
    pub medcat_entities: Vec<PathBuf>,
    /// The Similarity component from precomputed embeddings: JSONL, one line
    /// per image, `{"id": ..., "image": [...], "text": [...]}`, the text
    /// embedding of the raw candidate caption (one file per --submission).
    #[arg(long, value_name = "FILE", requires = "suite")]
    pub similarity_embeddings: Vec<PathBuf>,
    /// The BLEURT component with this BLEURT checkpoint directory
    /// (lucadiliello/BLEURT-20-D12: config.json, model.safetensors, spm.model).
    #[arg(long, value_name = "DIR", requires = "suite")]
    pub bleurt_model: Option<PathBuf>,
    /// The AlignScore component with this directory: AlignScore-base's
    /// weights as model.safetensors beside roberta-base's config.json,
    /// vocab.json and merges.txt.
    #[arg(long, value_name = "DIR", requires = "suite")]
    pub alignscore_model: Option<PathBuf>,
    /// nltk's Punkt parameters for English (`punkt_tab/english`), which
    /// AlignScore splits sentences with. Default: the first
    /// `tokenizers/punkt_tab/english` under $NLTK_DATA, ~/nltk_data,
    /// /usr/share/nltk_data, /usr/local/share/nltk_data, /usr/lib/nltk_data
    /// or /usr/local/lib/nltk_data, as nltk looks.
    #[arg(long, value_name = "DIR", requires = "alignscore_model")]
    pub punkt: Option<PathBuf>,
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

/// The model components of a suite, loaded by the caller (libtorch lives
/// in `medcap-torch` only), each with how the signature names it.
#[derive(Default)]
pub struct SuiteModels<'a> {
    /// BERTScore's encoder, labelled by its directory's name and layer
    /// (`deberta-xlarge-mnli:L40`).
    pub bert: Option<(&'a dyn TokenEmbedder, String)>,
    /// BLEURT, labelled by its directory's name (`BLEURT-20-D12`).
    pub bleurt: Option<(&'a dyn PairScorer, String)>,
    /// AlignScore's model and sentence splitter, labelled by the model
    /// directory's name (`AlignScore-base`).
    pub align: Option<(&'a dyn AlignmentModel, &'a Punkt, String)>,
    /// The Similarity component's image–text encoder (no prefix: the raw
    /// candidate caption) and the directory of the test images, named by
    /// their ids (`ID.jpg`, `ID.jpeg` or `ID.png`).
    pub similarity: Option<(&'a dyn ImageCaptionScorer, &'a Path)>,
}

/// `medcap score --suite ...`: the caption or concept task of a year;
/// the model components in `models`.
///
/// # Errors
/// A file cannot be read or fails the year's checks; two submissions of
/// the concept task score different images; the encoder fails.
pub fn score(
    args: &SuiteArgs,
    models: &SuiteModels<'_>,
    format: Format,
    bootstrap: &Bootstrap,
) -> Result<()> {
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
            let inputs = ComponentInputs::read(args)?;
            let loaded = load_caption(suite, truth, &args.submission)?;
            caption_report(suite, &loaded, &inputs, models, format, bootstrap, &mut out)?;
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
            "give --bertscore-model DIR (microsoft/deberta-xlarge-mnli's Hugging Face directory)"
        }
        Component::Bleurt => {
            "give --bleurt-model DIR (lucadiliello/BLEURT-20-D12's Hugging Face directory)"
        }
        Component::AlignScore => {
            "give --alignscore-model DIR (AlignScore-base converted; see README) and nltk's \
             punkt_tab/english (--punkt DIR)"
        }
        Component::Similarity => {
            "give --clip-model DIR --images DIR (an image-text encoder and the test images, \
             named by id), or --similarity-embeddings (MedImageInsight's image and caption \
             embeddings)"
        }
        Component::MedCat => "give --medcat-entities (the concepts MedCAT finds in each caption)",
        Component::Rouge1 => "",
    }
}

fn fmt_summary(s: &Summary) -> String {
    format!("{:.4} [{:.4}, {:.4}]", s.mean, s.ci95.0, s.ci95.1)
}

/// The signature of a caption evaluation: the suite and how each
/// computed component was computed, so that a number can be traced.
fn signature(suite: Suite, computed: &[Component], models: &SuiteModels<'_>) -> String {
    let mut parts = vec![suite.name().to_owned()];
    for c in computed {
        parts.push(match c {
            Component::BertScore => format!(
                "bertscore:{}:{}:preprocessed",
                models
                    .bert
                    .as_ref()
                    .map_or("?", |(_, label)| label.as_str()),
                if suite.bertscore_idf() {
                    "idf=gt"
                } else {
                    "noidf"
                }
            ),
            Component::Rouge1 => "rouge1:nostem:preprocessed".to_owned(),
            Component::AlignScore => format!(
                "align:{}:nli_sp:punkt",
                models
                    .align
                    .as_ref()
                    .map_or("?", |(_, _, label)| label.as_str())
            ),
            Component::Bleurt => format!(
                "bleurt:{}:preprocessed",
                models
                    .bleurt
                    .as_ref()
                    .map_or("?", |(_, label)| label.as_str())
            ),
            Component::MedCat => "medcat:given-entities".to_owned(),
            Component::Similarity => match &models.similarity {
                Some((scorer, _)) => format!(
                    "similarity:{}:{}:w2.5",
                    scorer.encoder().layout,
                    scorer.encoder().name
                ),
                None => "similarity:given-embeddings:w2.5".to_owned(),
            },
        });
    }
    parts.push(format!("medcap-{}", env!("CARGO_PKG_VERSION")));
    parts.join("|")
}

/// Each submission's per-caption values of the components medcap can
/// compute from what it was given, in the official order.
struct Scored {
    ids: Vec<String>,
    columns: Vec<(Component, Vec<f64>)>,
    /// AlignScore's candidates without a sentence (scored 0; the official
    /// code stops on them).
    align_without_sentences: usize,
}

/// The Similarity component with an image–text encoder: each row's image
/// (`dir/ID.jpg`, `.jpeg` or `.png`) against its raw candidate caption,
/// under the year's rules ([`Suite::similarity`]). Missing images are
/// named all at once, as the official check names missing embeddings.
fn encoder_similarity(
    suite: Suite,
    scorer: &dyn ImageCaptionScorer,
    dir: &Path,
    rows: &[(&str, &str, &str)],
) -> Result<Vec<f64>> {
    let found: Vec<Option<PathBuf>> = rows
        .iter()
        .map(|(id, _, _)| {
            ["jpg", "jpeg", "png", "JPG", "JPEG", "PNG"]
                .iter()
                .map(|e| dir.join(format!("{id}.{e}")))
                .find(|p| p.is_file())
        })
        .collect();
    let missing: Vec<&str> = rows
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|((id, _, _), _)| *id)
        .collect();
    if !missing.is_empty() {
        bail!(
            "no image in {} for the ids {} (looked for ID.jpg, ID.jpeg and ID.png)",
            dir.display(),
            missing.join(", ")
        );
    }
    let paths: Vec<&Path> = found.iter().flatten().map(PathBuf::as_path).collect();
    let captions: Vec<&str> = rows.iter().map(|(_, _, c)| *c).collect();
    let (images, texts) = scorer
        .embeddings(&paths, &captions)
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut values = Vec::with_capacity(rows.len());
    for (((id, reference, caption), image), text) in rows.iter().zip(images).zip(texts) {
        let image = image.map_err(|e| anyhow::anyhow!("image {id}: {e}"))?;
        let widen = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<f64>>();
        if let Some(value) = suite.similarity(reference, caption, &widen(&image), &widen(&text)) {
            values.push(value.map_err(|e| anyhow::anyhow!("image {id}: {e}"))?);
        }
    }
    Ok(values)
}

fn score_captions(
    suite: Suite,
    loaded: &Caption,
    inputs: &ComponentInputs,
    models: &SuiteModels<'_>,
) -> Result<Vec<Scored>> {
    let mut all = Vec::new();
    for (k, (path, pairs)) in loaded.submissions.iter().enumerate() {
        let rows: Vec<(&str, &str, &str)> = pairs
            .iter()
            .map(|(id, caption)| (id, loaded.truth.get(id).unwrap_or_default(), caption))
            .collect();
        let mut columns = Vec::new();
        let pairs: Vec<(&str, &str)> = rows.iter().map(|(_, r, c)| (*r, *c)).collect();
        if let Some((embedder, _)) = models.bert {
            let values = suite
                .bertscore(embedder, loaded.truth.iter().map(|(_, c)| c), &pairs)
                .with_context(|| format!("BERTScore of {}", path.display()))?;
            columns.push((Component::BertScore, values));
        }
        columns.push((
            Component::Rouge1,
            rows.iter().map(|(_, r, c)| suite.rouge1(r, c)).collect(),
        ));
        if let Some(entities) = inputs.medcat.get(k) {
            let mut values = Vec::with_capacity(rows.len());
            for (id, reference, caption) in &rows {
                let (r, c) = entities.get(id).with_context(|| {
                    format!(
                        "{} has no MedCAT entities for image {id} (of {})",
                        entities.path.display(),
                        path.display()
                    )
                })?;
                values.extend(suite.medcat(reference, caption, r, c));
            }
            if !values.is_empty() {
                columns.push((Component::MedCat, values));
            }
        }
        if let (None, Some((scorer, dir))) = (inputs.similarity.get(k), &models.similarity) {
            let values = encoder_similarity(suite, *scorer, dir, &rows)
                .with_context(|| format!("Similarity of {}", path.display()))?;
            if !values.is_empty() {
                columns.push((Component::Similarity, values));
            }
        }
        if let Some(embeddings) = inputs.similarity.get(k) {
            // As the official check: every missing id at once.
            let missing: Vec<&str> = rows
                .iter()
                .map(|(id, _, _)| *id)
                .filter(|id| embeddings.get(id).is_none())
                .collect();
            if !missing.is_empty() {
                bail!(
                    "Missing precomputed embeddings for image IDs: {} (in {})",
                    missing.join(", "),
                    embeddings.path.display()
                );
            }
            let mut values = Vec::with_capacity(rows.len());
            for (id, reference, caption) in &rows {
                let (image, text) = embeddings.get(id).with_context(|| {
                    format!(
                        "Missing precomputed embeddings for image IDs: {id} (in {})",
                        embeddings.path.display()
                    )
                })?;
                if let Some(value) = suite.similarity(reference, caption, image, text) {
                    values.push(value.map_err(|e| {
                        anyhow::anyhow!("{}, image {id}: {e}", embeddings.path.display())
                    })?);
                }
            }
            if !values.is_empty() {
                columns.push((Component::Similarity, values));
            }
        }
        if let Some((scorer, _)) = models.bleurt
            && let Some(values) = suite.bleurt(scorer, &pairs)
        {
            let values = values
                .map_err(|e| anyhow::anyhow!(e))
                .with_context(|| format!("BLEURT of {}", path.display()))?;
            columns.push((Component::Bleurt, values));
        }
        let mut align_without_sentences = 0;
        if let Some((model, punkt, _)) = models.align
            && let Some(found) = suite.alignscore(model, punkt, &pairs)
        {
            let found = found
                .map_err(|e| anyhow::anyhow!(e))
                .with_context(|| format!("AlignScore of {}", path.display()))?;
            align_without_sentences = found.without_sentences;
            columns.push((Component::AlignScore, found.values));
        }
        all.push(Scored {
            ids: rows.iter().map(|(id, _, _)| (*id).to_owned()).collect(),
            columns,
            align_without_sentences,
        });
    }
    Ok(all)
}

fn caption_report(
    suite: Suite,
    loaded: &Caption,
    inputs: &ComponentInputs,
    models: &SuiteModels<'_>,
    format: Format,
    bootstrap: &Bootstrap,
    out: &mut impl Write,
) -> Result<()> {
    let scored = score_captions(suite, loaded, inputs, models)?;
    if matches!(format, Format::Jsonl | Format::Csv) {
        let keys: Vec<&str> = scored[0].columns.iter().map(|(c, _)| c.key()).collect();
        if format == Format::Csv {
            writeln!(out, "submission,id,{}", keys.join(","))?;
        }
        for ((path, _), s) in loaded.submissions.iter().zip(&scored) {
            for (i, id) in s.ids.iter().enumerate() {
                if format == Format::Csv {
                    let values: Vec<String> =
                        s.columns.iter().map(|(_, v)| v[i].to_string()).collect();
                    writeln!(
                        out,
                        "{},{},{}",
                        csv_cell(&path.display().to_string()),
                        csv_cell(id),
                        values.join(",")
                    )?;
                } else {
                    let mut row = json!({"submission": path, "id": id});
                    for (c, v) in &s.columns {
                        row[c.key()] = json!(v[i]);
                    }
                    writeln!(out, "{row}")?;
                }
            }
        }
        return Ok(());
    }
    for ((path, pairs), s) in loaded.submissions.iter().zip(&scored) {
        writeln!(
            out,
            "{} caption task, {} ({} captions); 95% bootstrap intervals\n",
            suite,
            path.display(),
            pairs.len()
        )?;
        writeln!(out, "| component | score |")?;
        writeln!(out, "|---|---|")?;
        let summaries: Vec<(Component, Summary)> = s
            .columns
            .iter()
            .map(|(c, v)| (*c, summarize(v, bootstrap)))
            .collect();
        let mean = |c: Component| summaries.iter().find(|(k, _)| *k == c).map(|(_, s)| s.mean);
        for &component in suite.components() {
            match summaries.iter().find(|(c, _)| *c == component) {
                Some((c, summary)) => {
                    writeln!(out, "| {} | {} |", c.heading(), fmt_summary(summary))?
                }
                None => writeln!(
                    out,
                    "| {} | missing: {} |",
                    component.heading(),
                    missing_reason(component)
                )?,
            }
        }
        for aggregate in suite.aggregates() {
            match aggregate.of(mean) {
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
        if s.align_without_sentences > 0 {
            writeln!(
                out,
                "\nnote: candidates without a sentence (empty or blank) against a reference that \
                 is not empty: {}; AlignScore scores each 0; the official code stops with a \
                 ValueError on them",
                s.align_without_sentences
            )?;
        }
        let computed: Vec<Component> = s.columns.iter().map(|(c, _)| *c).collect();
        writeln!(
            out,
            "\nsignature: {}\n",
            signature(suite, &computed, models)
        )?;
    }
    if let [a, b] = scored.as_slice() {
        for ((component, a_values), (_, b_values)) in a.columns.iter().zip(&b.columns) {
            // The same ids in both (the checks make both the ground truth's);
            // b's values in a's order.
            let by_id: std::collections::HashMap<&String, f64> =
                b.ids.iter().zip(b_values).map(|(i, v)| (i, *v)).collect();
            let b_aligned: Vec<f64> = a
                .ids
                .iter()
                .map(|i| by_id.get(i).copied().unwrap_or(f64::NAN))
                .collect();
            let paired = compare_paired(a_values, &b_aligned, bootstrap);
            writeln!(
                out,
                "{}, {} minus {}: {:+.4} [{:+.4}, {:+.4}], permutation p = {:.4}",
                component.heading(),
                loaded.submissions[1].0.display(),
                loaded.submissions[0].0.display(),
                paired.mean_difference,
                paired.ci95.0,
                paired.ci95.1,
                paired.p_value
            )?;
        }
    }
    Ok(())
}

/// Precomputed inputs of the components medcap takes from outside: one
/// file per submission, in the submissions' order.
#[derive(Default)]
struct ComponentInputs {
    medcat: Vec<EntityFile>,
    similarity: Vec<EmbeddingFile>,
}

struct EntityFile {
    path: PathBuf,
    by_id: std::collections::HashMap<String, (Vec<Entity>, Vec<Entity>)>,
}

impl EntityFile {
    fn get(&self, id: &str) -> Option<&(Vec<Entity>, Vec<Entity>)> {
        self.by_id.get(id)
    }
}

struct EmbeddingFile {
    path: PathBuf,
    by_id: std::collections::HashMap<String, (Vec<f64>, Vec<f64>)>,
}

impl EmbeddingFile {
    fn get(&self, id: &str) -> Option<(&[f64], &[f64])> {
        self.by_id
            .get(id)
            .map(|(i, t)| (i.as_slice(), t.as_slice()))
    }
}

/// JSONL lines of `path`, each parsed by `each` (given the line number).
fn jsonl<T>(
    path: &Path,
    mut each: impl FnMut(usize, serde_json::Value) -> Result<(String, T)>,
) -> Result<std::collections::HashMap<String, T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = std::collections::HashMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}, line {}: not JSON", path.display(), n + 1))?;
        let (id, item) =
            each(n + 1, value).with_context(|| format!("{}, line {}", path.display(), n + 1))?;
        if out.insert(id.clone(), item).is_some() {
            bail!(
                "{}, line {}: image {id} appears twice",
                path.display(),
                n + 1
            );
        }
    }
    Ok(out)
}

fn entities(value: &serde_json::Value, side: &str) -> Result<Vec<Entity>> {
    let list = value[side]
        .as_array()
        .with_context(|| format!("no `{side}` list of MedCAT entities"))?;
    list.iter()
        .map(|e| match e {
            serde_json::Value::String(cui) => Ok(Entity {
                cui: cui.clone(),
                pretty_name: cui.clone(),
            }),
            serde_json::Value::Object(_) => {
                let cui = e["cui"].as_str().context("an entity without a `cui`")?;
                Ok(Entity {
                    cui: cui.to_owned(),
                    pretty_name: e["pretty_name"].as_str().unwrap_or(cui).to_owned(),
                })
            }
            other => bail!("an entity is neither a CUI nor an object: {other}"),
        })
        .collect()
}

fn vector(value: &serde_json::Value, key: &str) -> Result<Vec<f64>> {
    value[key]
        .as_array()
        .with_context(|| format!("no `{key}` embedding"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .with_context(|| format!("`{key}` holds a value that is not a number: {x}"))
        })
        .collect()
}

fn id_of(value: &serde_json::Value) -> Result<String> {
    Ok(value["id"].as_str().context("no `id`")?.to_owned())
}

impl ComponentInputs {
    fn read(args: &SuiteArgs) -> Result<Self> {
        let n = args.submission.len();
        for (flag, given) in [
            ("--medcat-entities", args.medcat_entities.len()),
            ("--similarity-embeddings", args.similarity_embeddings.len()),
        ] {
            if given != 0 && given != n {
                bail!(
                    "{flag} takes one file per --submission ({n}), in the same order ({given} given)"
                );
            }
        }
        let mut inputs = Self::default();
        for path in &args.medcat_entities {
            let by_id = jsonl(path, |_, v| {
                Ok((
                    id_of(&v)?,
                    (entities(&v, "reference")?, entities(&v, "candidate")?),
                ))
            })?;
            inputs.medcat.push(EntityFile {
                path: path.clone(),
                by_id,
            });
        }
        for path in &args.similarity_embeddings {
            let by_id = jsonl(path, |_, v| {
                Ok((id_of(&v)?, (vector(&v, "image")?, vector(&v, "text")?)))
            })?;
            inputs.similarity.push(EmbeddingFile {
                path: path.clone(),
                by_id,
            });
        }
        Ok(inputs)
    }
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
