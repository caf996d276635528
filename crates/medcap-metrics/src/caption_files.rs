//! Caption files as `medcap score` reads them: line files (one caption per
//! line) and CSV files with `reference` and `candidate` columns.
//!
//! Both read from any reader, so that the same code serves files, standard
//! input and the fuzz targets, and both name the file and the line or row in
//! every error. A UTF-8 byte-order mark (files saved by some Windows
//! editors) is not part of the first caption; `\r\n` line ends are accepted.
//!
//! ```
//! use std::io::Cursor;
//! use std::path::Path;
//! use medcap_metrics::caption_files::{CaptionLines, CsvCaptions};
//!
//! let mut lines = CaptionLines::new(Cursor::new("\u{feff}a left effusion\r\n\r\n"), Path::new("hyps.txt"));
//! assert_eq!(lines.next_line()?.as_deref(), Some("a left effusion"));
//! assert_eq!(lines.next_line()?.as_deref(), Some("")); // an empty caption
//! assert_eq!(lines.next_line()?, None);
//!
//! let csv = "id,reference,candidate\n1,\"two\nlines\",a caption\n";
//! let mut rows = CsvCaptions::new(Cursor::new(csv), Path::new("pairs.csv"))?;
//! let pair = rows.next_pair()?.unwrap();
//! assert_eq!((pair.candidate.as_str(), pair.reference.as_str()), ("a caption", "two\nlines"));
//! # Ok::<(), medcap_metrics::caption_files::CaptionFileError>(())
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Why a caption file cannot be read; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptionFileError {
    /// The file cannot be opened or read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A line is not UTF-8.
    #[error("{}: line {line} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// Where the invalid byte is.
        #[source]
        source: std::str::Utf8Error,
    },
    /// A CSV file without a readable header row.
    #[error("{}: no header row", path.display())]
    NoHeader {
        /// The file.
        path: PathBuf,
        /// The CSV reader's reason.
        #[source]
        source: csv::Error,
    },
    /// A CSV file without one of the columns.
    #[error("{}: no `{column}` column (columns: {columns})", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        column: &'static str,
        /// The columns it has, comma-separated.
        columns: String,
    },
    /// A CSV row that cannot be read (a ragged row, invalid UTF-8).
    #[error("{}: row {row}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// The row, counting the header as row 1.
        row: usize,
        /// The CSV reader's reason.
        #[source]
        source: csv::Error,
    },
}

/// A caption file read line by line: `\n` or `\r\n` separated, a final
/// newline optional, every line a caption (an empty line is an empty
/// caption).
pub struct CaptionLines<R> {
    reader: R,
    path: PathBuf,
    line: usize,
    buf: Vec<u8>,
}

impl CaptionLines<BufReader<File>> {
    /// Opens the file `path`.
    ///
    /// # Errors
    /// [`CaptionFileError::Read`].
    pub fn open(path: &Path) -> Result<Self, CaptionFileError> {
        let file = File::open(path).map_err(|source| CaptionFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(BufReader::with_capacity(1 << 16, file), path))
    }

    /// The number of lines of the file `path` (one pass, nothing kept).
    ///
    /// # Errors
    /// As [`CaptionLines::open`] and [`CaptionLines::next_line`].
    pub fn count(path: &Path) -> Result<usize, CaptionFileError> {
        let mut lines = Self::open(path)?;
        let mut n = 0;
        while lines.next_line()?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

impl<R: BufRead> CaptionLines<R> {
    /// Lines of `reader`; `path` names it in errors.
    pub fn new(reader: R, path: &Path) -> Self {
        Self {
            reader,
            path: path.to_owned(),
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The file these lines come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next caption, `None` at the end.
    ///
    /// # Errors
    /// [`CaptionFileError::Read`] or [`CaptionFileError::NotUtf8`].
    pub fn next_line(&mut self) -> Result<Option<String>, CaptionFileError> {
        self.buf.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| CaptionFileError::Read {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        let mut line = self.buf.as_slice();
        if self.line == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|source| CaptionFileError::NotUtf8 {
            path: self.path.clone(),
            line: self.line,
            source,
        })?;
        Ok(Some(text.to_owned()))
    }
}

/// One row of a CSV caption file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionPair {
    /// The generated caption (`candidate` column).
    pub candidate: String,
    /// Its reference (`reference` column).
    pub reference: String,
    /// The image it describes (`image` column, when the file has one).
    pub image: Option<String>,
}

/// A CSV caption file: a header row naming `reference` and `candidate`
/// and optionally `image` (other columns are ignored; names are compared
/// without surrounding white space), then one pair per row. Quoted fields may hold commas and
/// line breaks; every row must have the header's number of fields.
pub struct CsvCaptions<R> {
    records: csv::StringRecordsIntoIter<R>,
    path: PathBuf,
    reference: usize,
    candidate: usize,
    image: Option<usize>,
    row: usize,
}

impl CsvCaptions<File> {
    /// Opens the file `path` and reads its header.
    ///
    /// # Errors
    /// [`CaptionFileError::Read`], or as [`CsvCaptions::new`].
    pub fn open(path: &Path) -> Result<Self, CaptionFileError> {
        let file = File::open(path).map_err(|source| CaptionFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::new(file, path)
    }
}

impl<R: Read> CsvCaptions<R> {
    /// Reads the header of `reader`; `path` names it in errors.
    ///
    /// # Errors
    /// [`CaptionFileError::NoHeader`] or [`CaptionFileError::MissingColumn`].
    pub fn new(reader: R, path: &Path) -> Result<Self, CaptionFileError> {
        let mut reader = csv::Reader::from_reader(reader);
        let headers = reader
            .headers()
            .map_err(|source| CaptionFileError::NoHeader {
                path: path.to_owned(),
                source,
            })?
            .clone();
        let find = |name: &str| headers.iter().position(|h| h.trim() == name);
        let column = |name: &'static str| {
            find(name).ok_or_else(|| CaptionFileError::MissingColumn {
                path: path.to_owned(),
                column: name,
                columns: headers.iter().collect::<Vec<_>>().join(", "),
            })
        };
        Ok(Self {
            reference: column("reference")?,
            candidate: column("candidate")?,
            image: find("image"),
            records: reader.into_records(),
            path: path.to_owned(),
            row: 1,
        })
    }

    /// The file these rows come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has an `image` column.
    pub fn has_images(&self) -> bool {
        self.image.is_some()
    }

    /// The next pair, `None` at the end.
    ///
    /// # Errors
    /// [`CaptionFileError::Row`].
    pub fn next_pair(&mut self) -> Result<Option<CaptionPair>, CaptionFileError> {
        let Some(record) = self.records.next() else {
            return Ok(None);
        };
        self.row += 1;
        let record = record.map_err(|source| CaptionFileError::Row {
            path: self.path.clone(),
            row: self.row,
            source,
        })?;
        // The reader refuses rows whose length differs from the header's,
        // so both columns are present.
        let field = |i: usize| record.get(i).unwrap_or_default().to_owned();
        Ok(Some(CaptionPair {
            candidate: field(self.candidate),
            reference: field(self.reference),
            image: self.image.map(field),
        }))
    }
}
