//! PMC-OA (Lin et al., 2023, PMC-CLIP): JSONL files of `{"image", "caption",
//! "pmcid"}` objects (`pmc_oa.jsonl`, or `train.jsonl`/`valid.jsonl`/
//! `test.jsonl`), images in `images/` beside them. Grouped by `pmcid`, else
//! by the `PMC<digits>` the image name starts with. PMC-OA records no licence.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Batch, PublishedSplit, Source, SourceFigure};
use crate::error::DatasetError;
use crate::image_check::confined_path;
use crate::layout;
use crate::reader::{MalformedLine, parse_line_as};

/// One PMC-OA record; other fields are ignored.
#[derive(Debug, Deserialize)]
struct Record {
    image: String,
    caption: Option<String>,
    #[serde(default)]
    pmcid: Option<String>,
}

/// The JSONL files under `input` whose first record has `image` and
/// `caption` (MedICaT's own JSONL excluded).
fn jsonl_files(input: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(input) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && p.file_name().is_some_and(|n| n != layout::JSONL_NAME)
                && first_record_fits(p)
        })
        .collect();
    files.sort();
    files
}

fn first_record_fits(path: &Path) -> bool {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(file);
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if !line.trim().is_empty() {
            return serde_json::from_str::<serde_json::Value>(&line)
                .is_ok_and(|v| v.get("image").is_some() && v.get("caption").is_some());
        }
        line.clear();
    }
    false
}

pub(super) fn looks_like(input: &Path) -> bool {
    !jsonl_files(input).is_empty()
}

/// `PMC123_fig1.jpg` → `PMC123`.
fn pmc_prefix(image: &str) -> Option<&str> {
    let digits = image.strip_prefix("PMC")?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    (end > 0).then(|| &image[..3 + end])
}

pub(super) fn open(input: &Path) -> Result<Source, DatasetError> {
    let files = jsonl_files(input);
    if files.is_empty() {
        return Err(DatasetError::Layout {
            path: input.to_owned(),
            reason:
                "no PMC-OA JSONL: expected a .jsonl file of {\"image\", \"caption\", \"pmcid\"} \
                     objects"
                    .into(),
        });
    }
    let root = std::fs::canonicalize(input).map_err(DatasetError::io(input))?;
    let images = if input.join("images").is_dir() {
        PathBuf::from("images")
    } else {
        PathBuf::new()
    };
    let mut batch: Batch = Vec::new();
    for file in &files {
        let split = file
            .file_stem()
            .and_then(|s| PublishedSplit::from_name(&s.to_string_lossy()));
        let shown = file.display().to_string();
        let bytes = std::fs::read(file).map_err(DatasetError::io(file))?;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i as u64 + 1;
            let Some(parsed) = parse_line_as::<Record>(line, raw, "a PMC-OA record") else {
                continue;
            };
            let figure = parsed
                .map_err(|e| MalformedLine {
                    line,
                    reason: format!("{shown}: {}", e.reason),
                })
                .map(|r| {
                    let group = r
                        .pmcid
                        .clone()
                        .filter(|g| !g.trim().is_empty())
                        .or_else(|| pmc_prefix(&r.image).map(str::to_owned))
                        .unwrap_or_else(|| r.image.clone());
                    SourceFigure {
                        id: r.image.clone(),
                        group,
                        line,
                        file: file.clone(),
                        image: confined_path(&root, &images.join(&r.image).to_string_lossy()),
                        caption: r.caption.unwrap_or_default(),
                        license: String::new(),
                        published: split,
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_article_id_is_the_pmc_prefix_of_the_image_name() {
        assert_eq!(pmc_prefix("PMC212319_Fig3_4.jpg"), Some("PMC212319"));
        assert_eq!(pmc_prefix("PMC_x.jpg"), None);
        assert_eq!(pmc_prefix("fig.jpg"), None);
    }
}
