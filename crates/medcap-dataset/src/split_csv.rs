//! The split CSV format (`test.csv`, `val.csv`, `ft1.csv`, `ft2.csv`, and the
//! synthetic scenes of the reproduction): one writer and one reader for the
//! whole workspace.
//!
//! Columns: `id`, `pdf_hash`, `image_path`, `caption`, `raw_caption`. Only
//! `image_path` and `caption` are required when reading, so a hand-made
//! table of images and captions works too. `image_path` follows
//! [`crate::paths`]: relative to the CSV's own directory, or absolute.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::output::write_csv;
use crate::paths;

/// One row of a split CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRow {
    /// `{pdf_hash}_{fig_uri}` (a row number when the CSV has no `id`).
    #[serde(default)]
    pub id: String,
    /// Source paper.
    #[serde(default)]
    pub pdf_hash: String,
    /// Path of the image: on disk as stored (see [`crate::paths`]); as
    /// returned by [`read_split_csv`], resolved against the CSV's directory.
    pub image_path: String,
    /// Cleaned caption: the training target.
    pub caption: String,
    /// Caption as in the release.
    #[serde(default)]
    pub raw_caption: String,
}

/// Writes `rows` to `path` atomically; their `image_path`s must already be
/// in stored form (a [`paths::PathWriter`] for `path`'s directory).
///
/// # Errors
/// [`DatasetError::Io`] or [`DatasetError::Csv`] naming `path`.
pub fn write_split_csv<'a>(
    path: &Path,
    rows: impl IntoIterator<Item = &'a SplitRow>,
) -> Result<(), DatasetError> {
    write_csv(path, rows.into_iter())
}

/// Reads a split CSV, resolving every `image_path` against the CSV's
/// directory. Rows with an empty image path or caption are skipped, with one
/// warning per file that counts them and names the first lines; a row that
/// does not parse stops the read.
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be opened,
/// [`DatasetError::SplitCsv`] for a missing column or a malformed row (with
/// its line number).
pub fn read_split_csv(path: &Path) -> Result<Vec<SplitRow>, DatasetError> {
    let file = std::fs::File::open(path).map_err(DatasetError::io(path))?;
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let bad = |reason: String| DatasetError::SplitCsv {
        path: path.to_owned(),
        reason,
    };
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    for required in ["image_path", "caption"] {
        if !headers.iter().any(|h| h == required) {
            return Err(bad(format!(
                "no `{required}` column (found: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let dir = paths::parent_dir(path);
    let mut rows = Vec::new();
    let mut empty_lines = Vec::new();
    // Lines as an editor shows them: a quoted caption may span lines.
    let bytes = std::fs::read(path).unwrap_or_default();
    let newlines = crate::formats::newline_offsets(&bytes);
    let mut previous = 1;
    for record in reader.records() {
        let position = match &record {
            Ok(r) => r.position(),
            Err(e) => e.position(),
        };
        let line = position.map_or(previous + 1, |p| {
            crate::formats::record_line(&bytes, &newlines, p.byte())
        });
        previous = line;
        let mut row: SplitRow = record
            .and_then(|r| r.deserialize(Some(&headers)))
            .map_err(|e| bad(format!("line {line}: {e}")))?;
        row.image_path = row.image_path.trim().to_owned();
        row.caption = row.caption.trim().to_owned();
        if row.image_path.is_empty() || row.caption.is_empty() {
            empty_lines.push(line);
            continue;
        }
        if row.id.is_empty() {
            row.id = format!("line{line}");
        }
        row.image_path = paths::resolve(&row.image_path, dir).display().to_string();
        rows.push(row);
    }
    if let Some(first) = empty_lines.first() {
        let more = empty_lines.len() - 1;
        tracing::warn!(
            csv = %path.display(),
            skipped = empty_lines.len(),
            "rows with an empty image path or caption skipped (line {first}{})",
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn relative_image_paths_resolve_against_the_csv_directory_not_the_working_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("prepared");
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("ft1.csv");
        std::fs::write(
            &csv,
            "image_path,caption\nimages/a.png,a chest x-ray\n,no image\n/abs/b.png,  b  \n",
        )
        .unwrap();
        let rows = read_split_csv(&csv).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(Path::new(&rows[0].image_path), dir.join("images/a.png"));
        assert_eq!(rows[0].id, "line2");
        assert_eq!(rows[1].image_path, "/abs/b.png");
        assert_eq!(rows[1].caption, "b");
    }

    #[test]
    fn a_missing_column_and_a_bad_row_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let csv = tmp.path().join("x.csv");
        std::fs::write(&csv, "image,caption\na.png,c\n").unwrap();
        let err = read_split_csv(&csv).unwrap_err().to_string();
        assert!(
            err.contains("x.csv") && err.contains("no `image_path` column"),
            "{err}"
        );
        std::fs::write(&csv, "image_path,caption\na.png,c\nb.png,c,extra\n").unwrap();
        let err = read_split_csv(&csv).unwrap_err().to_string();
        assert!(err.contains("x.csv") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn written_rows_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let csv = tmp.path().join("s.csv");
        let row = SplitRow {
            id: "p_1.png".into(),
            pdf_hash: "p".into(),
            image_path: "figures/p_1.png".into(),
            caption: "a, \"quoted\" caption".into(),
            raw_caption: "Fig. 1 a caption".into(),
        };
        write_split_csv(&csv, [&row]).unwrap();
        let back = read_split_csv(&csv).unwrap();
        assert_eq!(back[0].caption, row.caption);
        assert_eq!(
            Path::new(&back[0].image_path),
            tmp.path().join("figures/p_1.png")
        );
    }
}
