//! The prepare pipeline: a release in (MedICaT, ROCO, ROCOv2, PMC-OA or a
//! table, see [`crate::formats`]), clean validated splits out.
//!
//! Stages: read the records (MedICaT's JSONL streamed in parallel batches)
//! → licence filter → select (chest filter) → clean the caption → check the
//! image (in parallel) → split by source paper (or keep the published split)
//! → write the CSVs, a problem report and a JSON summary. A bad record is reported and skipped; only unusable input
//! (no JSONL, unreadable root) or `strict` mode stops the run. Every output
//! file is written atomically, and nothing under the input root is modified.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clean::{CleanupAudit, audit_caption};
use crate::error::DatasetError;
use crate::filter::{FigureSelector, KeywordRule, Selection};
use crate::formats::{PublishedSplit, ReleaseFormat, SourceFigure, normalize_licence};
pub use crate::formats::{ReleaseLayout, locate_release};
use crate::image_check::{ImageLimits, ImageProblem, check_image, resolve_path};
use crate::output::{write_atomic, write_csv, write_json_atomic};
use crate::paths::PathWriter;
use crate::split::{Split, SplitPlan, assign_splits};
use crate::split_csv::write_split_csv;

/// Reports progress of long stages; the CLI draws bars with it. Every method
/// has an empty default.
pub trait Progress: Sync {
    /// A stage starts; `total` is its number of items when known.
    fn begin(&self, _stage: &'static str, _total: Option<u64>) {}
    /// `n` more items of the current stage are done.
    fn advance(&self, _n: u64) {}
    /// The current stage is over.
    fn end(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// How to prepare.
pub struct PrepareOptions {
    /// The release's format; `None`: detected from its layout
    /// ([`ReleaseFormat::detect`]).
    pub format: Option<ReleaseFormat>,
    /// Keep only figures under one of these licences (compared as
    /// [`normalize_licence`] spells them: `cc-by` is `CC BY`); `None`: all.
    pub licences: Option<Vec<String>>,
    /// Write `cleanup_audit.jsonl`: every caption cleanup changed, with the
    /// words it removed and those no removal rule accounts for.
    pub cleanup_audit: bool,
    /// Keep the data set's published split (test → test, validation → val,
    /// train → FT-1/FT-2 grouped by paper) instead of regrouping everything.
    pub published_split: bool,
    /// Which figures to keep.
    pub selector: Box<dyn FigureSelector>,
    /// Split sizes.
    pub plan: SplitPlan,
    /// Seed of the split.
    pub seed: u64,
    /// Stop at the first malformed record instead of reporting and skipping it.
    pub strict: bool,
    /// Decode every kept figure's image (off: only the file name is checked).
    pub check_images: bool,
    /// Size limits for images.
    pub limits: ImageLimits,
    /// A directory tree that moves as one with the output (the study's
    /// output directory): image paths inside it are stored relative to the
    /// CSVs even when absolute. Paths are always stored relative when the
    /// release was named by a relative path; see [`crate::paths`].
    pub path_tree: Option<PathBuf>,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            format: None,
            licences: None,
            published_split: false,
            cleanup_audit: false,
            selector: Box::new(KeywordRule::chest()),
            plan: SplitPlan::default(),
            seed: 0,
            strict: false,
            check_images: true,
            limits: ImageLimits::default(),
            path_tree: None,
        }
    }
}

/// One row of `figures.csv`: every record that parsed, kept or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureRow {
    /// The figure's id (MedICaT: `{pdf_hash}_{fig_uri}`; ROCO: `ROCO_00001`).
    pub id: String,
    /// Grouping key, the source paper (MedICaT's `pdf_hash`; the PMC
    /// article id for ROCO and PMC-OA); the column keeps MedICaT's name.
    pub pdf_hash: String,
    /// 1-based line (record) in the file that holds it.
    pub line: u64,
    /// Path of the image, relative to `figures.csv` (see [`crate::paths`]).
    pub image_path: String,
    /// Caption as in the release (MedICaT: `s2_caption`, else `s2orc_caption`).
    pub raw_caption: String,
    /// Cleaned caption; empty when the figure was dropped before cleanup.
    pub caption: String,
    /// Split name; empty when dropped.
    pub split: String,
    /// Why the figure was dropped; empty when kept.
    pub dropped: String,
    /// The article's license, when recorded.
    pub license: String,
}

pub use crate::split_csv::SplitRow;

/// A record-level problem, one line of `problems.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// 1-based line (record) in the file that holds it.
    pub line: u64,
    /// The figure, when the line parsed.
    pub id: Option<String>,
    /// Kind: `malformed`, `duplicate`, or an image problem's kind.
    pub kind: String,
    /// What exactly is wrong.
    pub detail: String,
}

/// One line of `cleanup_audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct AuditRow {
    id: String,
    line: u64,
    raw: String,
    cleaned: String,
    removed: Vec<String>,
    unexpected: Vec<String>,
}

/// Image outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCounts {
    /// Whether images were opened and decoded.
    pub checked: bool,
    /// Images that passed.
    pub ok: u64,
    /// Paths that leave the figures directory.
    pub outside_root: u64,
    /// Images that do not exist.
    pub missing: u64,
    /// Images that do not decode (truncated, not an image).
    pub undecodable: u64,
    /// Images with implausible dimensions.
    pub bad_dimensions: u64,
}

/// Figures and papers in one split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCount {
    /// Figures the plan asked for (none for `unused`).
    pub requested: Option<usize>,
    /// Figures it got.
    pub figures: usize,
    /// Distinct papers among them.
    pub papers: usize,
}

/// Counts of every step, written to `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrepareSummary {
    /// The file (MedICaT's JSONL, a table) or directory read.
    pub jsonl: PathBuf,
    /// The release format (`medicat`, `roco`, `rocov2`, `pmc-oa`, `table`).
    #[serde(default)]
    pub format: String,
    /// The selection rule.
    pub selector: String,
    /// The split seed.
    pub seed: u64,
    /// Non-blank lines read.
    pub lines: u64,
    /// Lines that were not a figure record.
    pub malformed: u64,
    /// Records whose id appeared on an earlier line.
    pub duplicates: u64,
    /// Records with no caption.
    pub empty_caption: u64,
    /// Records whose licence is not among those asked for.
    #[serde(default)]
    pub licence_excluded: u64,
    /// Records set aside by an exclusion term.
    pub excluded: u64,
    /// Records without a keyword.
    pub no_keyword: u64,
    /// Records the selector kept.
    pub selected: u64,
    /// Selected records whose caption was nothing but labels and markers.
    pub empty_after_cleanup: u64,
    /// Selected captions that cleanup changed.
    #[serde(default)]
    pub cleanup_changed: u64,
    /// Of those, captions that lost a word no removal rule accounts for
    /// (see [`crate::clean::audit_caption`]; listed in `cleanup_audit.jsonl`).
    #[serde(default)]
    pub cleanup_unexpected: u64,
    /// Image outcomes of the remaining records.
    pub images: ImageCounts,
    /// Records usable for training and evaluation.
    pub usable: u64,
    /// Per split (`test`, `val`, `ft1`, `ft2_extra`, `unused`, and `ft2` = FT-1 + extra).
    pub splits: BTreeMap<String, SplitCount>,
}

/// Output file names inside the `--out` directory.
pub mod outputs {
    /// Every record that parsed, with its split or why it was dropped.
    pub const FIGURES: &str = "figures.csv";
    /// Record-level problems, one JSON object per line.
    pub const PROBLEMS: &str = "problems.jsonl";
    /// Counts of every step.
    pub const SUMMARY: &str = "summary.json";
    /// Images a release stores inside its files (ROCOv2's parquet copy),
    /// written out for the split CSVs to point at.
    pub const EXTRACTED_IMAGES: &str = "images";
    /// With [`super::PrepareOptions::cleanup_audit`]: every caption cleanup changed.
    pub const CLEANUP_AUDIT: &str = "cleanup_audit.jsonl";
    /// The split CSVs: test, validation, FT-1 and FT-2 (FT-1 plus its extra figures).
    pub const SPLITS: [(&str, &[crate::split::Split]); 4] = [
        ("test.csv", &[crate::split::Split::Test]),
        ("val.csv", &[crate::split::Split::Val]),
        ("ft1.csv", &[crate::split::Split::Ft1]),
        (
            "ft2.csv",
            &[crate::split::Split::Ft1, crate::split::Split::Ft2Extra],
        ),
    ];
}

/// What happened to a record before the image stage, with cleanup's audit
/// once the caption was cleaned.
enum Verdict {
    Candidate(Option<CleanupAudit>),
    Dropped(&'static str, Option<CleanupAudit>),
}

const DROP_DUPLICATE: &str = "duplicate";
const DROP_EMPTY_CAPTION: &str = "empty_caption";
const DROP_EXCLUDED: &str = "excluded";
const DROP_NO_KEYWORD: &str = "no_keyword";
const DROP_EMPTY_AFTER_CLEANUP: &str = "empty_after_cleanup";
const DROP_LICENCE: &str = "licence";

fn judge(
    figure: &SourceFigure,
    selector: &dyn FigureSelector,
    licences: Option<&[String]>,
) -> (FigureRow, Verdict) {
    let raw = figure.caption.trim().to_owned();
    let mut row = FigureRow {
        id: figure.id.clone(),
        pdf_hash: figure.group.clone(),
        line: figure.line,
        image_path: String::new(),
        raw_caption: raw.clone(),
        caption: String::new(),
        split: String::new(),
        dropped: String::new(),
        license: figure.license.clone(),
    };
    if let Ok(path) = &figure.image {
        row.image_path = path.display().to_string();
    }
    if raw.is_empty() {
        return (row, Verdict::Dropped(DROP_EMPTY_CAPTION, None));
    }
    if let Some(allowed) = licences
        && !allowed.contains(&normalize_licence(&figure.license))
    {
        row.dropped = format!("{DROP_LICENCE}:{}", figure.license);
        return (row, Verdict::Dropped(DROP_LICENCE, None));
    }
    match selector.select(&raw) {
        Selection::Keep => {}
        Selection::Excluded(term) => {
            row.dropped = format!("{DROP_EXCLUDED}:{term}");
            return (row, Verdict::Dropped(DROP_EXCLUDED, None));
        }
        Selection::NoKeyword => return (row, Verdict::Dropped(DROP_NO_KEYWORD, None)),
    }
    let (cleaned, audit) = audit_caption(&raw);
    row.caption = cleaned;
    if row.caption.is_empty() {
        return (row, Verdict::Dropped(DROP_EMPTY_AFTER_CLEANUP, Some(audit)));
    }
    (row, Verdict::Candidate(Some(audit)))
}

/// Runs the pipeline on the release in `input`, writing into `out`.
///
/// Returns the summary that is also written to `out/summary.json`.
///
/// # Errors
/// [`DatasetError`] when the input has no known layout, cannot be read, or
/// (in `strict` mode) has a malformed record; outputs cannot be written.
pub fn prepare(
    input: &Path,
    out: &Path,
    options: &PrepareOptions,
    progress: &dyn Progress,
) -> Result<PrepareSummary, DatasetError> {
    let format = match &options.format {
        Some(format) => format.clone(),
        None => ReleaseFormat::detect(input)?,
    };
    // Images stored inside the release's files go under the output.
    let source = format.open(input, &out.join(outputs::EXTRACTED_IMAGES))?;
    let licences: Option<Vec<String>> = options
        .licences
        .as_ref()
        .map(|l| l.iter().map(|x| normalize_licence(x)).collect());
    let mut summary = PrepareSummary {
        jsonl: source.main_file.clone(),
        format: format.name().into(),
        selector: options.selector.describe(),
        seed: options.seed,
        ..PrepareSummary::default()
    };
    let mut rows: Vec<FigureRow> = Vec::new();
    // Per row: its image (or why its name was refused) and published split.
    let mut images: Vec<Result<PathBuf, ImageProblem>> = Vec::new();
    let mut published: Vec<Option<PublishedSplit>> = Vec::new();
    let mut candidates: Vec<usize> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    // Each figure id's first place: (file, line).
    let mut seen: HashMap<String, (PathBuf, u64)> = HashMap::new();
    let mut audits: Vec<AuditRow> = Vec::new();

    progress.begin("reading records", None);
    for batch in source.batches {
        let batch = batch?;
        summary.lines += batch.len() as u64;
        let judged: Vec<_> = batch
            .into_par_iter()
            .map(|(_, parsed)| {
                parsed.map(|figure| {
                    let (row, verdict) =
                        judge(&figure, options.selector.as_ref(), licences.as_deref());
                    (row, verdict, figure.image, figure.published, figure.file)
                })
            })
            .collect();
        progress.advance(judged.len() as u64);
        for item in judged {
            let (mut row, verdict, image, split, file) = match item {
                Ok(judged) => judged,
                Err(bad) => {
                    if options.strict {
                        return Err(DatasetError::MalformedLine {
                            path: source.main_file.clone(),
                            line: bad.line,
                            reason: bad.reason,
                        });
                    }
                    tracing::debug!(line = bad.line, reason = %bad.reason, "skipping malformed line");
                    summary.malformed += 1;
                    problems.push(Problem {
                        line: bad.line,
                        id: None,
                        kind: "malformed".into(),
                        detail: bad.reason,
                    });
                    continue;
                }
            };
            if let Some((first_file, first_line)) = seen.get(&row.id) {
                summary.duplicates += 1;
                problems.push(Problem {
                    line: row.line,
                    id: Some(row.id.clone()),
                    kind: DROP_DUPLICATE.into(),
                    detail: format!(
                        "figure id `{}` at {}:{} was already read at {}:{}; the first is kept",
                        row.id,
                        file.display(),
                        row.line,
                        first_file.display(),
                        first_line
                    ),
                });
                row.dropped = DROP_DUPLICATE.into();
            } else {
                seen.insert(row.id.clone(), (file, row.line));
                let audit = match &verdict {
                    Verdict::Candidate(a) | Verdict::Dropped(_, a) => a.as_ref(),
                };
                if let Some(audit) =
                    audit.filter(|a| !a.removed.is_empty() || row.caption != row.raw_caption)
                {
                    summary.cleanup_changed += 1;
                    summary.cleanup_unexpected += u64::from(!audit.unexpected.is_empty());
                    if options.cleanup_audit {
                        audits.push(AuditRow {
                            id: row.id.clone(),
                            line: row.line,
                            raw: row.raw_caption.clone(),
                            cleaned: row.caption.clone(),
                            removed: audit.removed.clone(),
                            unexpected: audit.unexpected.clone(),
                        });
                    }
                }
                match verdict {
                    Verdict::Candidate(_) => {
                        summary.selected += 1;
                        candidates.push(rows.len());
                    }
                    Verdict::Dropped(reason, _) => {
                        match reason {
                            DROP_EMPTY_CAPTION => summary.empty_caption += 1,
                            DROP_LICENCE => summary.licence_excluded += 1,
                            DROP_EXCLUDED => summary.excluded += 1,
                            DROP_NO_KEYWORD => summary.no_keyword += 1,
                            _ => {
                                summary.selected += 1;
                                summary.empty_after_cleanup += 1;
                            }
                        }
                        if row.dropped.is_empty() {
                            row.dropped = reason.into();
                        }
                    }
                }
            }
            rows.push(row);
            images.push(image);
            published.push(split);
        }
    }
    progress.end();

    // Images: only for figures that survived selection and cleanup.
    summary.images.checked = options.check_images;
    progress.begin("checking images", Some(candidates.len() as u64));
    let root = source.image_root.as_deref();
    let outcomes: Vec<Result<(), ImageProblem>> = candidates
        .par_iter()
        .map(|&i| {
            let outcome = images[i].clone().and_then(|path| {
                if options.check_images {
                    resolve_path(&path, root)
                        .and_then(|p| check_image(&p, options.limits).map(|_| ()))
                } else {
                    Ok(())
                }
            });
            progress.advance(1);
            outcome
        })
        .collect();
    progress.end();
    let mut usable: Vec<usize> = Vec::new();
    for (&i, outcome) in candidates.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                summary.images.ok += u64::from(options.check_images);
                usable.push(i);
            }
            Err(problem) => {
                let counter = match problem {
                    ImageProblem::OutsideRoot(_) => &mut summary.images.outside_root,
                    ImageProblem::Missing(_) => &mut summary.images.missing,
                    ImageProblem::Undecodable(_) => &mut summary.images.undecodable,
                    ImageProblem::BadDimensions(_) => &mut summary.images.bad_dimensions,
                };
                *counter += 1;
                let row = &mut rows[i];
                tracing::debug!(line = row.line, id = %row.id, %problem, "skipping figure");
                row.dropped = problem.kind().into();
                problems.push(Problem {
                    line: row.line,
                    id: Some(row.id.clone()),
                    kind: problem.kind().into(),
                    detail: problem.detail().into(),
                });
            }
        }
    }
    summary.usable = usable.len() as u64;

    // A format without a published split would put every figure in
    // `unused`: say so instead.
    if options.published_split
        && !usable.is_empty()
        && usable.iter().all(|&i| published[i].is_none())
    {
        return Err(DatasetError::Layout {
            path: input.to_owned(),
            reason: format!(
                "--published-split: this {} release records no published split",
                format.name()
            ),
        });
    }
    let splits = if options.published_split {
        published_splits(&rows, &usable, &published, &options.plan, options.seed)
    } else {
        let keys: Vec<&str> = usable.iter().map(|&i| rows[i].pdf_hash.as_str()).collect();
        assign_splits(&keys, &options.plan, options.seed)
    };
    for (&i, split) in usable.iter().zip(&splits) {
        rows[i].split = split.name().into();
    }
    summary.splits = count_splits(&rows, &options.plan);
    problems.sort_by_key(|p| p.line);

    std::fs::create_dir_all(out).map_err(DatasetError::io(out))?;
    // Images written under the output (extracted from a release's files)
    // move with it: stored relative.
    let mut writer = PathWriter::new(out)
        .and_then(|w| w.within(out))
        .map_err(DatasetError::io(out))?;
    if let Some(tree) = &options.path_tree {
        writer = writer.within(tree).map_err(DatasetError::io(tree))?;
    }
    if input.is_relative() {
        writer = writer.within(input).map_err(DatasetError::io(input))?;
    }
    for row in &mut rows {
        if !row.image_path.is_empty() {
            row.image_path = writer
                .store(Path::new(&row.image_path))
                .map_err(DatasetError::io(out))?;
        }
    }
    let mut written = summary.clone();
    written.jsonl = writer
        .store(&summary.jsonl)
        .map_err(DatasetError::io(out))?
        .into();
    if options.cleanup_audit {
        let path = out.join(outputs::CLEANUP_AUDIT);
        write_atomic(&path, |w| {
            for a in &audits {
                let line = serde_json::to_string(a).map_err(|source| DatasetError::Json {
                    path: path.clone(),
                    source,
                })?;
                writeln!(w, "{line}").map_err(DatasetError::io(&path))?;
            }
            Ok(())
        })?;
    }
    write_outputs(out, &rows, &problems, &written)?;
    Ok(summary)
}

/// The published split kept: published test and validation figures are the
/// test and validation splits, and the published training figures are
/// grouped by paper into FT-1, FT-2's extra figures and unused, as the plan
/// asks. Figures without a published split are not used.
fn published_splits(
    rows: &[FigureRow],
    usable: &[usize],
    published: &[Option<PublishedSplit>],
    plan: &SplitPlan,
    seed: u64,
) -> Vec<Split> {
    let train: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&i| published[i] == Some(PublishedSplit::Train))
        .collect();
    let keys: Vec<&str> = train.iter().map(|&i| rows[i].pdf_hash.as_str()).collect();
    let train_plan = SplitPlan {
        test: 0,
        val: 0,
        ..*plan
    };
    let assigned = assign_splits(&keys, &train_plan, seed);
    let mut by_row: HashMap<usize, Split> = train.into_iter().zip(assigned).collect();
    usable
        .iter()
        .map(|i| match published[*i] {
            Some(PublishedSplit::Test) => Split::Test,
            Some(PublishedSplit::Validation) => Split::Val,
            Some(PublishedSplit::Train) => by_row.remove(i).unwrap_or(Split::Unused),
            None => Split::Unused,
        })
        .collect()
}

fn count_splits(rows: &[FigureRow], plan: &SplitPlan) -> BTreeMap<String, SplitCount> {
    let requested = |s: Split| match s {
        Split::Test => Some(plan.test),
        Split::Val => Some(plan.val),
        Split::Ft1 => Some(plan.ft1),
        Split::Ft2Extra => Some(plan.ft2_extra),
        Split::Unused => None,
    };
    let mut counts = BTreeMap::new();
    let mut tally = |name: &str, members: &[Split], requested: Option<usize>| {
        let names: Vec<&str> = members.iter().map(|s| s.name()).collect();
        let in_split: Vec<&FigureRow> = rows
            .iter()
            .filter(|r| names.contains(&r.split.as_str()))
            .collect();
        let papers: HashSet<&str> = in_split.iter().map(|r| r.pdf_hash.as_str()).collect();
        counts.insert(
            name.to_owned(),
            SplitCount {
                requested,
                figures: in_split.len(),
                papers: papers.len(),
            },
        );
    };
    for s in Split::ALL {
        tally(s.name(), &[s], requested(s));
    }
    tally(
        "ft2",
        &[Split::Ft1, Split::Ft2Extra],
        Some(plan.ft1 + plan.ft2_extra),
    );
    counts
}

fn write_outputs(
    out: &Path,
    rows: &[FigureRow],
    problems: &[Problem],
    summary: &PrepareSummary,
) -> Result<(), DatasetError> {
    write_csv(&out.join(outputs::FIGURES), rows.iter())?;
    for (file, members) in outputs::SPLITS {
        let names: Vec<&str> = members.iter().map(|s| s.name()).collect();
        let split_rows: Vec<SplitRow> = rows
            .iter()
            .filter(|r| names.contains(&r.split.as_str()))
            .map(|r| SplitRow {
                id: r.id.clone(),
                pdf_hash: r.pdf_hash.clone(),
                image_path: r.image_path.clone(),
                caption: r.caption.clone(),
                raw_caption: r.raw_caption.clone(),
            })
            .collect();
        write_split_csv(&out.join(file), &split_rows)?;
    }
    let problems_path = out.join(outputs::PROBLEMS);
    write_atomic(&problems_path, |w| {
        for p in problems {
            let line = serde_json::to_string(p).map_err(|source| DatasetError::Json {
                path: problems_path.clone(),
                source,
            })?;
            writeln!(w, "{line}").map_err(DatasetError::io(&problems_path))?;
        }
        Ok(())
    })?;
    // Last, so that a summary means the run finished.
    write_json_atomic(&out.join(outputs::SUMMARY), summary)
}
