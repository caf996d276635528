//! Parquet files of figures with the images inside them, as Hugging Face
//! stores image data sets (ROCOv2's copy among them): an `image` column of
//! `{bytes, path}` structs, an id column (`image_id` or `ID`) and a
//! `caption` column. Read with the `parquet` crate's Arrow reader; each
//! image is written under `extract_to/{split}/` so that the pipeline and
//! training read it as a file. Every row gets a file of its own: a row
//! whose id an earlier row of the split already used (a duplicate, which
//! `prepare` reports and leaves out) is written beside it under
//! `{id}~{shard}-{row}`, never over the earlier row's image.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{
    Array, BinaryArray, LargeBinaryArray, LargeStringArray, StringArray, StructArray,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Batch, PublishedSplit, Source, SourceFigure};
use crate::error::DatasetError;
use crate::image_check::ImageProblem;
use crate::reader::MalformedLine;

/// A string column of either width.
fn strings(batch: &arrow_array::RecordBatch, names: &[&str]) -> Option<Vec<Option<String>>> {
    let column = names.iter().find_map(|n| batch.column_by_name(n))?;
    if let Some(a) = column.as_any().downcast_ref::<StringArray>() {
        return Some(
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
                .collect(),
        );
    }
    let a = column.as_any().downcast_ref::<LargeStringArray>()?;
    Some(
        (0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
            .collect(),
    )
}

/// The `bytes` of the `image` struct column, row by row.
fn image_bytes(batch: &arrow_array::RecordBatch) -> Option<Vec<Option<Vec<u8>>>> {
    let image = batch.column_by_name("image")?;
    let image = image.as_any().downcast_ref::<StructArray>()?;
    let bytes = image.column_by_name("bytes")?;
    let valid = |i: usize| image.is_valid(i) && bytes.is_valid(i);
    if let Some(a) = bytes.as_any().downcast_ref::<BinaryArray>() {
        return Some(
            (0..a.len())
                .map(|i| valid(i).then(|| a.value(i).to_vec()))
                .collect(),
        );
    }
    let a = bytes.as_any().downcast_ref::<LargeBinaryArray>()?;
    Some(
        (0..a.len())
            .map(|i| valid(i).then(|| a.value(i).to_vec()))
            .collect(),
    )
}

/// The extension an image's bytes call for.
fn extension(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpg"
    } else if bytes.starts_with(b"\x89PNG") {
        "png"
    } else {
        "bin"
    }
}

/// Writes `bytes` to `path` atomically, unless the file is already there
/// with those bytes (a rerun).
fn write_image(path: &Path, bytes: &[u8]) -> Result<(), medcap_io::IoError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    medcap_io::write_atomic(path, bytes)
}

pub(super) fn open(
    input: &Path,
    files: &[(PathBuf, Option<PublishedSplit>)],
    extract_to: &Path,
) -> Result<Source, DatasetError> {
    let mut batch_out: Batch = Vec::new();
    std::fs::create_dir_all(extract_to).map_err(DatasetError::io(extract_to))?;
    let root = std::fs::canonicalize(extract_to).map_err(DatasetError::io(extract_to))?;
    // The image files this run has written: a later row never replaces one.
    let mut claimed: HashSet<PathBuf> = HashSet::new();
    for (shard, (path, split)) in files.iter().enumerate() {
        let bad = |reason: String| DatasetError::Layout {
            path: path.clone(),
            reason,
        };
        let file = File::open(path).map_err(DatasetError::io(path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| bad(format!("not a readable parquet file: {e}")))?;
        let split_dir = root.join(match split {
            Some(PublishedSplit::Train) => "train",
            Some(PublishedSplit::Validation) => "validation",
            Some(PublishedSplit::Test) => "test",
            None => "other",
        });
        std::fs::create_dir_all(&split_dir).map_err(DatasetError::io(&split_dir))?;
        let shown = path.display().to_string();
        let mut line = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| bad(format!("cannot read a row group: {e}")))?;
            let (Some(ids), Some(captions), Some(images)) = (
                strings(&batch, &["image_id", "ID", "id"]),
                strings(&batch, &["caption", "Caption"]),
                image_bytes(&batch),
            ) else {
                return Err(bad(format!(
                    "expected columns image ({{bytes, path}}), image_id and caption; found {}",
                    batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            for ((id, caption), bytes) in ids.into_iter().zip(captions).zip(images) {
                line += 1;
                let figure =
                    match id.filter(|i| !i.is_empty() && !i.contains(['/', '\\']) && i != "..") {
                        None => Err(MalformedLine {
                            line,
                            reason: format!("{shown}: row {line} has no usable image id"),
                        }),
                        Some(id) => {
                            let image = match bytes {
                                None => Err(ImageProblem::Missing(format!(
                                    "{shown}: row {line} ({id}) has no image bytes"
                                ))),
                                Some(bytes) => {
                                    let ext = extension(&bytes);
                                    let mut file = split_dir.join(format!("{id}.{ext}"));
                                    // A name no earlier row has, even one whose id
                                    // looks like a fallback name.
                                    let mut n = 0;
                                    while !claimed.insert(file.clone()) {
                                        n += 1;
                                        let again = if n == 1 {
                                            String::new()
                                        } else {
                                            format!("-{n}")
                                        };
                                        file = split_dir
                                            .join(format!("{id}~{shard}-{line}{again}.{ext}"));
                                    }
                                    match write_image(&file, &bytes) {
                                        Ok(()) => Ok(file),
                                        // The error names the file.
                                        Err(e) => Err(ImageProblem::Undecodable(format!(
                                            "cannot write {e}"
                                        ))),
                                    }
                                }
                            };
                            Ok(SourceFigure {
                                group: id.clone(),
                                id,
                                line,
                                file: path.clone(),
                                image,
                                caption: caption.unwrap_or_default(),
                                license: String::new(),
                                published: *split,
                            })
                        }
                    };
                batch_out.push((line, figure));
            }
        }
    }
    Ok(Source {
        main_file: input.to_owned(),
        image_root: Some(root),
        batches: Box::new(std::iter::once(Ok(batch_out))),
    })
}
