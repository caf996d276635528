//! ROCO (Pelka et al., 2018) in its published repository's layout:
//! `data/{train,validation,test}/{radiology,non-radiology}/`, each with
//! tab-separated `captions.txt` (`ROCO_00001<TAB> caption`), `keywords.txt`,
//! `cuis.txt`, `semtypes.txt`, `dlinks.txt` (the PMC package's download
//! command and the file name in it), `licences.txt` (CSV: `ROCO_ID,PMC_ID,CC`,
//! `PMC_ID` being `PMC4608653_<file>`) and, once fetched, `images/ROCO_xxxxx.jpg`.
//!
//! The grouping key is the PMC article id, from `licences.txt`, else from
//! `dlinks.txt`; the licence comes from `licences.txt`. The input may be the
//! repository, its `data/`, one split or one category directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::{Batch, PublishedSplit, Source, SourceFigure, delimited, numbered_records, text_lines};
use crate::error::DatasetError;
use crate::image_check::confined_path;
use crate::reader::MalformedLine;

const CATEGORIES: [&str; 2] = ["radiology", "non-radiology"];

/// The category directories under `input` (those holding `captions.txt`),
/// with the split their parent names.
fn category_dirs(input: &Path, non_radiology: bool) -> Vec<(PathBuf, Option<PublishedSplit>)> {
    let wanted = |name: &str| name == "radiology" || (non_radiology && name == "non-radiology");
    let mut found = Vec::new();
    let mut visit = |dir: PathBuf| {
        if dir.join("captions.txt").is_file() {
            let split = dir
                .parent()
                .and_then(Path::file_name)
                .and_then(|n| PublishedSplit::from_name(&n.to_string_lossy()));
            found.push((dir, split));
        }
    };
    // The input itself is a category directory.
    if input.join("captions.txt").is_file() {
        visit(input.to_owned());
        return found;
    }
    let data = if input.join("data").is_dir() {
        input.join("data")
    } else {
        input.to_owned()
    };
    // `data/` (splits inside) or a split directory (categories inside).
    let splits: Vec<PathBuf> = if CATEGORIES.iter().any(|c| data.join(c).is_dir()) {
        vec![data]
    } else {
        ["train", "validation", "test"]
            .iter()
            .map(|s| data.join(s))
            .filter(|d| d.is_dir())
            .collect()
    };
    for split in splits {
        for category in CATEGORIES {
            if wanted(category) {
                visit(split.join(category));
            }
        }
    }
    found
}

pub(super) fn looks_like(input: &Path) -> bool {
    !category_dirs(input, true).is_empty()
}

pub(super) fn open(input: &Path, non_radiology: bool) -> Result<Source, DatasetError> {
    let dirs = category_dirs(input, non_radiology);
    if dirs.is_empty() {
        return Err(DatasetError::Layout {
            path: input.to_owned(),
            reason: format!(
                "no ROCO captions: expected data/{{train,validation,test}}/radiology/captions.txt{}",
                if non_radiology {
                    " (or non-radiology/)"
                } else {
                    ""
                }
            ),
        });
    }
    let root = std::fs::canonicalize(input).map_err(DatasetError::io(input))?;
    let mut batch: Batch = Vec::new();
    for (dir, split) in &dirs {
        read_category(&root, input, dir, *split, &mut batch)?;
    }
    Ok(Source {
        main_file: input.to_owned(),
        image_root: Some(root),
        batches: Box::new(std::iter::once(Ok(batch))),
    })
}

/// The PMC id and licence of each figure, from `licences.txt`
/// (`ROCO_ID,PMC_ID,CC`), and its records that are not one: a record with
/// another number of fields, or an id given twice (the first is kept).
#[allow(clippy::type_complexity)]
fn licences(
    dir: &Path,
) -> Result<(HashMap<String, (String, String)>, Vec<MalformedLine>), DatasetError> {
    let path = dir.join("licences.txt");
    let mut out = HashMap::new();
    let mut bad = Vec::new();
    if !path.is_file() {
        return Ok((out, bad));
    }
    let (mut reader, headers) = delimited(&path, b',')?;
    let shown = path.display().to_string();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, record) in numbered_records(&mut reader, &path, headers.len(), &shown) {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(e);
                continue;
            }
        };
        let (Some(id), Some(pmc), Some(licence)) = (record.get(0), record.get(1), record.get(2))
        else {
            bad.push(MalformedLine {
                line,
                reason: format!("{shown}: expected ROCO_ID,PMC_ID,CC"),
            });
            continue;
        };
        let id = id.trim().to_owned();
        if let Some(first) = first_line.get(&id) {
            bad.push(MalformedLine {
                line,
                reason: format!("{shown}: {id} was already given on line {first}; that is kept"),
            });
            continue;
        }
        first_line.insert(id.clone(), line);
        let pmc_id = pmc.split('_').next().unwrap_or_default().trim().to_owned();
        out.insert(id, (pmc_id, licence.trim().to_owned()));
    }
    Ok((out, bad))
}

/// The PMC id of each figure, from `dlinks.txt`'s package URL.
fn download_links(dir: &Path) -> Result<HashMap<String, String>, DatasetError> {
    let path = dir.join("dlinks.txt");
    let mut out = HashMap::new();
    if !path.is_file() {
        return Ok(out);
    }
    #[allow(clippy::unwrap_used)] // a constant pattern
    let pmc = Regex::new(r"PMC[0-9]+").unwrap();
    for (_, line) in text_lines(&path)? {
        let Ok(line) = line else { continue };
        if let (Some((id, _)), Some(m)) = (line.split_once('\t'), pmc.find(&line)) {
            out.insert(id.trim().to_owned(), m.as_str().to_owned());
        }
    }
    Ok(out)
}

fn read_category(
    root: &Path,
    input: &Path,
    dir: &Path,
    split: Option<PublishedSplit>,
    batch: &mut Batch,
) -> Result<(), DatasetError> {
    let captions = dir.join("captions.txt");
    let (licences, bad_licences) = licences(dir)?;
    batch.extend(bad_licences.into_iter().map(|bad| (bad.line, Err(bad))));
    let links = download_links(dir)?;
    // Image names are confined to the input; the category directory is
    // named relative to it.
    let relative_dir = dir.strip_prefix(input).unwrap_or(Path::new(""));
    let shown = captions.display().to_string();
    for (line, text) in text_lines(&captions)? {
        let record = text.and_then(|text| {
            let (id, caption) = text.split_once('\t').ok_or_else(|| MalformedLine {
                line,
                reason: format!("{shown}: no tab between the figure id and the caption"),
            })?;
            let id = id.trim();
            if id.is_empty() || id.contains(['/', '\\', '.']) {
                return Err(MalformedLine {
                    line,
                    reason: format!("{shown}: `{id}` is not a ROCO figure id"),
                });
            }
            let (group, license) = match (licences.get(id), links.get(id)) {
                (Some((pmc, licence)), _) if !pmc.is_empty() => (pmc.clone(), licence.clone()),
                (Some((_, licence)), Some(pmc)) => (pmc.clone(), licence.clone()),
                (None, Some(pmc)) => (pmc.clone(), String::new()),
                // No article id: the figure is its own group.
                (Some((_, licence)), None) => (id.to_owned(), licence.clone()),
                (None, None) => (id.to_owned(), String::new()),
            };
            let relative = relative_dir.join("images").join(format!("{id}.jpg"));
            Ok(SourceFigure {
                id: id.to_owned(),
                group,
                line,
                file: captions.clone(),
                image: confined_path(root, &relative.to_string_lossy()),
                caption: caption.trim().to_owned(),
                license,
                published: split,
            })
        });
        batch.push((line, record));
    }
    Ok(())
}
