//! The prepare pipeline: a MedICaT release in, clean validated splits out.
//!
//! Stages: stream and parse the JSONL (in parallel batches) → pick the
//! caption → select (chest filter) → clean the caption → check the image
//! (in parallel) → split by paper → write the CSVs, a problem report and a
//! JSON summary. A bad record is reported and skipped; only unusable input
//! (no JSONL, unreadable root) or `strict` mode stops the run. Every output
//! file is written atomically, and nothing under the input root is modified.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clean::clean_caption;
use crate::error::DatasetError;
use crate::filter::{FigureSelector, KeywordRule, Selection};
use crate::image_check::{ImageLimits, ImageProblem, check_image, image_path, resolve_image};
use crate::layout;
use crate::output::{write_atomic, write_csv, write_json_atomic};
use crate::paths::PathWriter;
use crate::reader::{JsonlBatches, MalformedLine};
use crate::record::FigureRecord;
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
    /// Which figures to keep.
    pub selector: Box<dyn FigureSelector>,
    /// Split sizes.
    pub plan: SplitPlan,
    /// Seed of the split.
    pub seed: u64,
    /// Stop at the first malformed line instead of reporting and skipping it.
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

/// Where a MedICaT release's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseLayout {
    /// The figure JSONL.
    pub jsonl: PathBuf,
    /// The figures directory.
    pub figures_dir: PathBuf,
}

/// Finds the release in `root`: either `root` is the `release/` directory
/// itself or it contains one.
pub fn locate_release(root: &Path) -> Result<ReleaseLayout, DatasetError> {
    std::fs::read_dir(root).map_err(DatasetError::io(root))?;
    for dir in [root.to_owned(), root.join(layout::RELEASE_DIR)] {
        let jsonl = dir.join(layout::JSONL_NAME);
        if jsonl.is_file() {
            return Ok(ReleaseLayout {
                jsonl,
                figures_dir: dir.join(layout::FIGURES_DIR),
            });
        }
    }
    Err(DatasetError::NoJsonl {
        root: root.to_owned(),
        expected: layout::JSONL_NAME,
    })
}

/// One row of `figures.csv`: every record that parsed, kept or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureRow {
    /// `{pdf_hash}_{fig_uri}`.
    pub id: String,
    /// Source paper.
    pub pdf_hash: String,
    /// 1-based line in the JSONL.
    pub line: u64,
    /// Path of the image, relative to `figures.csv` (see [`crate::paths`]).
    pub image_path: String,
    /// Caption as in the release (`s2_caption`, else `s2orc_caption`).
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
    /// 1-based line in the JSONL.
    pub line: u64,
    /// The figure, when the line parsed.
    pub id: Option<String>,
    /// Kind: `malformed`, `duplicate`, or an image problem's kind.
    pub kind: String,
    /// What exactly is wrong.
    pub detail: String,
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
    /// The JSONL read.
    pub jsonl: PathBuf,
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
    /// Records with neither caption.
    pub empty_caption: u64,
    /// Records set aside by an exclusion term.
    pub excluded: u64,
    /// Records without a keyword.
    pub no_keyword: u64,
    /// Records the selector kept.
    pub selected: u64,
    /// Selected records whose caption was nothing but labels and markers.
    pub empty_after_cleanup: u64,
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

/// What happened to a record before the image stage.
enum Verdict {
    Candidate,
    Dropped(&'static str),
}

const DROP_DUPLICATE: &str = "duplicate";
const DROP_EMPTY_CAPTION: &str = "empty_caption";
const DROP_EXCLUDED: &str = "excluded";
const DROP_NO_KEYWORD: &str = "no_keyword";
const DROP_EMPTY_AFTER_CLEANUP: &str = "empty_after_cleanup";

fn judge(
    record: &FigureRecord,
    line: u64,
    selector: &dyn FigureSelector,
    figures_dir: &Path,
) -> (FigureRow, Verdict) {
    let raw = record.caption().unwrap_or_default().to_owned();
    let mut row = FigureRow {
        id: record.id(),
        pdf_hash: record.pdf_hash.clone(),
        line,
        image_path: String::new(),
        raw_caption: raw.clone(),
        caption: String::new(),
        split: String::new(),
        dropped: String::new(),
        license: record.license().unwrap_or_default().to_owned(),
    };
    if let Ok(path) = image_path(figures_dir, &record.pdf_hash, &record.fig_uri) {
        row.image_path = path.display().to_string();
    }
    if raw.is_empty() {
        return (row, Verdict::Dropped(DROP_EMPTY_CAPTION));
    }
    match selector.select(&raw) {
        Selection::Keep => {}
        Selection::Excluded(term) => {
            row.dropped = format!("{DROP_EXCLUDED}:{term}");
            return (row, Verdict::Dropped(DROP_EXCLUDED));
        }
        Selection::NoKeyword => return (row, Verdict::Dropped(DROP_NO_KEYWORD)),
    }
    row.caption = clean_caption(&raw);
    if row.caption.is_empty() {
        return (row, Verdict::Dropped(DROP_EMPTY_AFTER_CLEANUP));
    }
    (row, Verdict::Candidate)
}

/// Runs the pipeline on the release in `input`, writing into `out`.
///
/// Returns the summary that is also written to `out/summary.json`.
pub fn prepare(
    input: &Path,
    out: &Path,
    options: &PrepareOptions,
    progress: &dyn Progress,
) -> Result<PrepareSummary, DatasetError> {
    let release = locate_release(input)?;
    // Canonical, so that symlinks out of it can be recognised; a missing
    // figures directory is not fatal: every image is then reported missing.
    let figures_dir =
        std::fs::canonicalize(&release.figures_dir).unwrap_or(release.figures_dir.clone());
    let mut summary = PrepareSummary {
        jsonl: release.jsonl.clone(),
        selector: options.selector.describe(),
        seed: options.seed,
        ..PrepareSummary::default()
    };
    let mut rows: Vec<FigureRow> = Vec::new();
    let mut candidates: Vec<usize> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();

    let file = File::open(&release.jsonl).map_err(DatasetError::io(&release.jsonl))?;
    progress.begin("reading records", None);
    for batch in JsonlBatches::new(BufReader::with_capacity(1 << 20, file), 8_192) {
        let batch = batch.map_err(DatasetError::io(&release.jsonl))?;
        summary.lines += batch.len() as u64;
        let judged: Vec<Result<(FigureRow, Verdict), MalformedLine>> = batch
            .into_par_iter()
            .map(|(line, parsed)| {
                parsed.map(|r| judge(&r, line, options.selector.as_ref(), &figures_dir))
            })
            .collect();
        progress.advance(judged.len() as u64);
        for item in judged {
            let (mut row, verdict) = match item {
                Ok(judged) => judged,
                Err(bad) => {
                    if options.strict {
                        return Err(DatasetError::MalformedLine {
                            path: release.jsonl.clone(),
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
            if !seen.insert(row.id.clone()) {
                summary.duplicates += 1;
                problems.push(Problem {
                    line: row.line,
                    id: Some(row.id.clone()),
                    kind: DROP_DUPLICATE.into(),
                    detail: "the same pdf_hash and fig_uri appeared on an earlier line".into(),
                });
                row.dropped = DROP_DUPLICATE.into();
                rows.push(row);
                continue;
            }
            match verdict {
                Verdict::Candidate => {
                    summary.selected += 1;
                    candidates.push(rows.len());
                }
                Verdict::Dropped(reason) => {
                    match reason {
                        DROP_EMPTY_CAPTION => summary.empty_caption += 1,
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
            rows.push(row);
        }
    }
    progress.end();

    // Images: only for figures that survived selection and cleanup.
    summary.images.checked = options.check_images;
    progress.begin("checking images", Some(candidates.len() as u64));
    let outcomes: Vec<Result<(), ImageProblem>> = candidates
        .par_iter()
        .map(|&i| {
            let row = &rows[i];
            let (pdf_hash, rest) = row.id.split_at(row.pdf_hash.len());
            let fig_uri = rest.strip_prefix('_').unwrap_or(rest);
            let outcome = if options.check_images {
                resolve_image(&figures_dir, pdf_hash, fig_uri)
                    .and_then(|p| check_image(&p, options.limits).map(|_| ()))
            } else {
                image_path(&figures_dir, pdf_hash, fig_uri).map(|_| ())
            };
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

    let keys: Vec<&str> = usable.iter().map(|&i| rows[i].pdf_hash.as_str()).collect();
    let splits = assign_splits(&keys, &options.plan, options.seed);
    for (&i, split) in usable.iter().zip(&splits) {
        rows[i].split = split.name().into();
    }
    summary.splits = count_splits(&rows, &options.plan);
    problems.sort_by_key(|p| p.line);

    std::fs::create_dir_all(out).map_err(DatasetError::io(out))?;
    let mut writer = PathWriter::new(out).map_err(DatasetError::io(out))?;
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
    write_outputs(out, &rows, &problems, &written)?;
    Ok(summary)
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
