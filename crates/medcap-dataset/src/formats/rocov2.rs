//! ROCOv2 (Rückert et al., 2024; ImageCLEFmedical Caption) as its CSV
//! release: `{train,valid,test}_captions.csv` (`ID,Caption`) beside the
//! concept files, images `{ID}.jpg` in `{split}/`, `{split}_images/{split}/`,
//! `{split}_images/` or `images/`.
//!
//! ROCOv2's caption files carry no article id; a column named `PMC_ID`,
//! `pmcid` or `PMCID` is used as the grouping key when present, and each
//! image is otherwise its own group (so its splits cannot be grouped by
//! paper: the summary's papers then count images). A `License`/`licence`/
//! `CC` column is carried when present.
//!
//! The Hugging Face copy (`data/{train,validation,test}-NNNNN-of-NNNNN.parquet`,
//! columns `image` = {`bytes`, `path`}, `image_id`, `caption`) stores the
//! images inside the parquet files; they are read with the `parquet` crate
//! and written, once, under the output's `images/` directory, which the
//! split CSVs then point into (the input is never modified). Snappy and
//! uncompressed files are read; another codec is an error naming it.

use std::path::{Path, PathBuf};

use super::{Batch, PublishedSplit, Source, SourceFigure, delimited, numbered_records};
use crate::error::DatasetError;
use crate::image_check::confined_path;
use crate::reader::MalformedLine;

/// The `*_captions.csv` files under `input`, with their split.
fn caption_files(input: &Path) -> Vec<(PathBuf, Option<PublishedSplit>)> {
    let Ok(entries) = std::fs::read_dir(input) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, Option<PublishedSplit>)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let split = name.strip_suffix("_captions.csv")?;
            Some((e.path(), PublishedSplit::from_name(split)))
        })
        .collect();
    files.sort();
    files
}

/// The `*.parquet` files under `input` or `input/data`, with their split
/// (the file name's part before the first `-`).
fn parquet_files(input: &Path) -> Vec<(PathBuf, Option<PublishedSplit>)> {
    let mut files = Vec::new();
    for dir in [input.to_owned(), input.join("data")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".parquet") {
                let split = stem.split('-').next().and_then(PublishedSplit::from_name);
                files.push((e.path(), split));
            }
        }
    }
    files.sort();
    files
}

pub(super) fn looks_like(input: &Path) -> bool {
    !caption_files(input).is_empty() || !parquet_files(input).is_empty()
}

/// The directory (relative to the input) holding a split's images.
fn image_dir(input: &Path, split: &str) -> PathBuf {
    let candidates = [
        PathBuf::from(split),
        Path::new(&format!("{split}_images")).join(split),
        PathBuf::from(format!("{split}_images")),
        PathBuf::from("images"),
    ];
    candidates
        .iter()
        .find(|c| input.join(c).is_dir())
        .cloned()
        .unwrap_or_else(|| PathBuf::from(split))
}

fn column(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers
        .iter()
        .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
}

pub(super) fn open(input: &Path, extract_to: &Path) -> Result<Source, DatasetError> {
    let files = caption_files(input);
    if files.is_empty() {
        let parquet = parquet_files(input);
        if !parquet.is_empty() {
            return super::parquet::open(input, &parquet, extract_to);
        }
        return Err(DatasetError::Layout {
            path: input.to_owned(),
            reason: "no ROCOv2 caption file: expected train_captions.csv, valid_captions.csv or \
                     test_captions.csv, or the Hugging Face copy's data/*.parquet"
                .into(),
        });
    }
    let root = std::fs::canonicalize(input).map_err(DatasetError::io(input))?;
    let mut batch: Batch = Vec::new();
    for (file, split) in &files {
        let stem = file
            .file_name()
            .map(|n| n.to_string_lossy().replace("_captions.csv", ""))
            .unwrap_or_default();
        let images = image_dir(input, &stem);
        let (mut reader, headers) = delimited(file, b',')?;
        let (Some(id_col), Some(caption_col)) = (
            column(&headers, &["ID", "image_id"]),
            column(&headers, &["Caption", "caption"]),
        ) else {
            return Err(DatasetError::Layout {
                path: file.clone(),
                reason: format!(
                    "expected ID and Caption columns, found {}",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        let group_col = column(&headers, &["PMC_ID", "pmcid", "PMCID"]);
        let licence_col = column(&headers, &["License", "licence", "CC"]);
        let shown = file.display().to_string();
        for (line, record) in numbered_records(&mut reader, file, headers.len(), &shown) {
            let figure = record.and_then(|record| {
                let id = record.get(id_col).unwrap_or_default().trim().to_owned();
                if id.is_empty() || id.contains(['/', '\\']) {
                    return Err(MalformedLine {
                        line,
                        reason: format!("{shown}: `{id}` is not an image id"),
                    });
                }
                let group = group_col
                    .and_then(|c| record.get(c))
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .unwrap_or(&id)
                    .to_owned();
                let relative = images.join(format!("{id}.jpg"));
                Ok(SourceFigure {
                    image: confined_path(&root, &relative.to_string_lossy()),
                    caption: record
                        .get(caption_col)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    license: licence_col
                        .and_then(|c| record.get(c))
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    id,
                    group,
                    line,
                    file: file.clone(),
                    published: *split,
                })
            });
            batch.push((line, figure));
        }
    }
    Ok(Source {
        main_file: input.to_owned(),
        image_root: Some(root),
        batches: Box::new(std::iter::once(Ok(batch))),
    })
}
