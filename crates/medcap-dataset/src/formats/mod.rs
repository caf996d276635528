//! The release formats `prepare` reads, one reader per data set, all giving
//! the same [`SourceFigure`]s to the same selection, cleanup, image checks,
//! grouped splits and outputs.
//!
//! | format | layout | grouping key | licence |
//! |---|---|---|---|
//! | [`ReleaseFormat::Medicat`] | `release/s2_full_figures_...jsonl` + `release/figures/` | `pdf_hash` (the paper) | `oa_info.oa.license` |
//! | [`ReleaseFormat::Roco`] | `data/{train,validation,test}/{radiology,non-radiology}/` with `captions.txt`, `licences.txt`, `dlinks.txt`, `images/` | the PMC article id | `licences.txt` |
//! | [`ReleaseFormat::Rocov2`] | `{split}_captions.csv` (+ `{split}_concepts.csv`), images in `{split}/`; or the Hugging Face copy's `data/{split}-*.parquet` with the images inside | a PMC id column when there is one, else the image | a licence column when there is one |
//! | [`ReleaseFormat::PmcOa`] | a JSONL of `image`, `caption`, `pmcid`, images in `images/` | `pmcid` | none |
//! | [`ReleaseFormat::Table`] | any CSV, TSV or JSONL with named columns | the `group` column | an optional column |
//!
//! Image names that come from a release are confined to it (no `..`, no
//! absolute path, no symlink leading out); a table names the user's own
//! files, relative to the table or absolute.

mod medicat;
mod parquet;
mod pmc_oa;
mod roco;
mod rocov2;
mod table;

use std::path::{Path, PathBuf};

pub use medicat::{ReleaseLayout, locate_release};
pub use table::TableColumns;

use crate::error::DatasetError;
use crate::image_check::ImageProblem;
use crate::reader::MalformedLine;

/// A data set layout `prepare` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseFormat {
    /// MedICaT's release (the study's data).
    Medicat,
    /// ROCO's published repository layout; radiology figures only unless
    /// `non_radiology` is set.
    Roco {
        /// Also read the `non-radiology` directories.
        non_radiology: bool,
    },
    /// ROCOv2's CSV release (ImageCLEFmedical Caption).
    Rocov2,
    /// PMC-OA's JSONL.
    PmcOa,
    /// A CSV, TSV or JSONL with named columns.
    Table(TableColumns),
}

/// Which published split a figure came in, for formats that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PublishedSplit {
    /// Training.
    Train,
    /// Validation.
    Validation,
    /// Test.
    Test,
}

impl PublishedSplit {
    /// From a directory or file-name part (`train`, `valid`, `validation`,
    /// `val`, `dev`, `test`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Self::Train),
            "validation" | "valid" | "val" | "dev" => Some(Self::Validation),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

/// One figure as a reader gives it, before selection.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFigure {
    /// Unique figure identifier (duplicates are reported and dropped).
    pub id: String,
    /// Grouping key for leak-free splits: the source paper.
    pub group: String,
    /// 1-based line where the record starts in `file`.
    pub line: u64,
    /// The file that holds the record (a release can span several).
    pub file: PathBuf,
    /// The image file, or why its name is refused.
    pub image: Result<PathBuf, ImageProblem>,
    /// The caption as released (may be empty).
    pub caption: String,
    /// The licence, when the format records one.
    pub license: String,
    /// The split the data set published it in, when it has one.
    pub published: Option<PublishedSplit>,
}

/// One batch of records: a record, or why its line is not one.
pub type Batch = Vec<(u64, Result<SourceFigure, MalformedLine>)>;

/// An opened release: where it is, and its records in batches.
pub struct Source {
    /// The file (or directory) the records come from, for the summary.
    pub main_file: PathBuf,
    /// The directory image paths must stay inside (canonical); `None` for a
    /// table, whose paths are the user's own.
    pub image_root: Option<PathBuf>,
    /// The records, in order.
    pub batches: Box<dyn Iterator<Item = Result<Batch, DatasetError>> + Send>,
}

impl ReleaseFormat {
    /// The name the CLI uses.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Medicat => "medicat",
            Self::Roco { .. } => "roco",
            Self::Rocov2 => "rocov2",
            Self::PmcOa => "pmc-oa",
            Self::Table(_) => "table",
        }
    }

    /// Opens `input` as this format. A format that stores its images
    /// inside its files (ROCOv2's parquet copy) writes them under
    /// `extract_to`; no format writes anywhere else, and none writes under
    /// `input`.
    ///
    /// # Errors
    /// [`DatasetError::Layout`] when `input` does not have the format's
    /// layout (naming what was expected); I/O errors.
    pub fn open(&self, input: &Path, extract_to: &Path) -> Result<Source, DatasetError> {
        match self {
            Self::Medicat => medicat::open(input),
            Self::Roco { non_radiology } => roco::open(input, *non_radiology),
            Self::Rocov2 => rocov2::open(input, extract_to),
            Self::PmcOa => pmc_oa::open(input),
            Self::Table(columns) => table::open(input, columns),
        }
    }

    /// The format of the directory `input`, from its layout, when exactly
    /// one format matches (a table is never guessed).
    ///
    /// # Errors
    /// [`DatasetError::Layout`] naming what was found: no format, or several.
    pub fn detect(input: &Path) -> Result<Self, DatasetError> {
        std::fs::read_dir(input).map_err(DatasetError::io(input))?;
        let mut found = Vec::new();
        if locate_release(input).is_ok() {
            found.push(Self::Medicat);
        }
        if roco::looks_like(input) {
            found.push(Self::Roco {
                non_radiology: false,
            });
        }
        if rocov2::looks_like(input) {
            found.push(Self::Rocov2);
        }
        if pmc_oa::looks_like(input) {
            found.push(Self::PmcOa);
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(DatasetError::Layout {
                path: input.to_owned(),
                reason: "no known data set layout: expected MedICaT's release JSONL, ROCO's \
                         data/<split>/radiology/captions.txt, ROCOv2's <split>_captions.csv or a \
                         PMC-OA JSONL (for any other table pass --format table --columns ...)"
                    .into(),
            }),
            _ => Err(DatasetError::Layout {
                path: input.to_owned(),
                reason: format!(
                    "ambiguous layout: it looks like {}; pass --format",
                    found
                        .iter()
                        .map(Self::name)
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            }),
        }
    }
}

/// A licence in one spelling: `cc-by-nc` (MedICaT), `CC BY-NC` (ROCO) and
/// `CC_BY_NC` all become `CC BY NC`.
pub fn normalize_licence(licence: &str) -> String {
    licence
        .trim()
        .to_ascii_uppercase()
        .split(|c: char| c == '-' || c == '_' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A delimited file opened with its header row (ragged rows allowed: each
/// record is checked by its reader).
pub(crate) fn delimited(
    path: &Path,
    delimiter: u8,
) -> Result<(csv::Reader<std::fs::File>, csv::StringRecord), DatasetError> {
    let csv_error = |source| DatasetError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(csv_error)?;
    let headers = reader.headers().map_err(csv_error)?.clone();
    Ok((reader, headers))
}

/// The line (1-based) a record starts on, from where the `csv` reader
/// started reading it: past any line ends there (the `\n` of a CRLF the
/// reader stopped before, blank lines it skips), counting every `\n` before.
pub(crate) fn record_line(bytes: &[u8], newlines: &[usize], byte: u64) -> u64 {
    let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
        start += 1;
    }
    newlines.partition_point(|&n| n < start) as u64 + 1
}

/// Where each `\n` of `bytes` is, for [`record_line`].
pub(crate) fn newline_offsets(bytes: &[u8]) -> Vec<usize> {
    bytes
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| (b == b'\n').then_some(i))
        .collect()
}

/// The records of `path`, opened by [`delimited`], each with the line it
/// starts on (the header is line 1; a quoted field may span lines; LF or
/// CRLF line ends, blank lines skipped). A record is what the `csv` crate's
/// strict mode reads as one: one with more or fewer fields than the header
/// (`expected`; pandas too refuses extra fields, though it pads short
/// rows), or that the reader cannot read, comes back as a [`MalformedLine`]
/// naming the file (`shown`), never cut or padded to fit.
pub(crate) fn numbered_records<'a>(
    reader: &'a mut csv::Reader<std::fs::File>,
    path: &Path,
    expected: usize,
    shown: &'a str,
) -> impl Iterator<Item = (u64, Result<csv::StringRecord, MalformedLine>)> + 'a {
    // The file's bytes, to count lines as an editor shows them (the
    // reader's own line count lags on CRLF files and blank lines).
    let bytes = std::fs::read(path).unwrap_or_default();
    let newlines = newline_offsets(&bytes);
    let mut previous = 1;
    reader.records().map(move |record| {
        let position = match &record {
            Ok(r) => r.position(),
            Err(e) => e.position(),
        };
        // A record the reader could not place follows the one before.
        let line = position.map_or(previous + 1, |p| record_line(&bytes, &newlines, p.byte()));
        previous = line;
        let record = record
            .map_err(|e| MalformedLine {
                line,
                reason: format!("{shown}: {e}"),
            })
            .and_then(|r| {
                if r.len() == expected {
                    Ok(r)
                } else {
                    Err(MalformedLine {
                        line,
                        reason: format!(
                            "{shown}: line {line} has {} fields but the header has {expected} \
                             (a field holding the delimiter must be quoted)",
                            r.len()
                        ),
                    })
                }
            });
        (line, record)
    })
}

/// A text line with its 1-based number, or why it is not text.
pub(crate) type TextLine = (u64, Result<String, MalformedLine>);

/// The non-blank lines of a text file, each with its 1-based number; a line
/// that is not UTF-8 comes back as an error naming the line.
pub(crate) fn text_lines(path: &Path) -> Result<Vec<TextLine>, DatasetError> {
    let bytes = std::fs::read(path).map_err(DatasetError::io(path))?;
    Ok(bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let number = i as u64 + 1;
            let text = std::str::from_utf8(line)
                .map(str::to_owned)
                .map_err(|e| MalformedLine {
                    line: number,
                    reason: format!(
                        "not valid UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ),
                });
            (number, text)
        })
        .filter(|(_, text)| !matches!(text, Ok(t) if t.trim().is_empty()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_compare_in_one_spelling() {
        assert_eq!(normalize_licence("cc-by-nc"), "CC BY NC");
        assert_eq!(normalize_licence(" CC BY-NC "), "CC BY NC");
        assert_eq!(normalize_licence("CC_BY"), "CC BY");
        assert_eq!(normalize_licence(""), "");
    }

    #[test]
    fn split_names_are_recognised() {
        assert_eq!(
            PublishedSplit::from_name("validation"),
            Some(PublishedSplit::Validation)
        );
        assert_eq!(
            PublishedSplit::from_name("valid"),
            Some(PublishedSplit::Validation)
        );
        assert_eq!(
            PublishedSplit::from_name("TEST"),
            Some(PublishedSplit::Test)
        );
        assert_eq!(PublishedSplit::from_name("radiology"), None);
    }
}
