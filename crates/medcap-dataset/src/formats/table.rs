//! Any table of figures: a CSV (`.csv`), TSV (`.tsv`, `.txt`) or JSONL
//! (`.jsonl`) file with named columns for the image path, the caption and
//! the grouping key (optionally the licence and an id). Image paths are the
//! user's own: relative to the table's directory, or absolute.

use std::path::Path;

use super::{Batch, Source, SourceFigure, delimited, numbered_records};
use crate::error::DatasetError;
use crate::reader::{MalformedLine, parse_line_as};

/// Which column holds what (`--columns image=...,caption=...,group=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableColumns {
    /// The image path column.
    pub image: String,
    /// The caption column.
    pub caption: String,
    /// The grouping key column (the source paper); the image column itself
    /// when figures have no group.
    pub group: String,
    /// The licence column, if any.
    pub license: Option<String>,
    /// The figure id column; default: the image path.
    pub id: Option<String>,
}

impl TableColumns {
    /// Parses `image=COL,caption=COL,group=COL[,license=COL][,id=COL]`.
    ///
    /// # Errors
    /// [`DatasetError::Layout`] naming the unknown key or the missing one.
    pub fn parse(spec: &str) -> Result<Self, DatasetError> {
        let bad = |reason: String| DatasetError::Layout {
            path: "--columns".into(),
            reason,
        };
        let (mut image, mut caption, mut group, mut license, mut id) =
            (None, None, None, None, None);
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("`{part}` is not KEY=COLUMN")))?;
            let value = Some(value.trim().to_owned());
            match key.trim() {
                "image" => image = value,
                "caption" => caption = value,
                "group" => group = value,
                "license" | "licence" => license = value,
                "id" => id = value,
                other => {
                    return Err(bad(format!(
                        "unknown key `{other}` (image, caption, group, license, id)"
                    )));
                }
            }
        }
        let need = |v: Option<String>, key: &str| {
            v.filter(|c| !c.is_empty())
                .ok_or_else(|| bad(format!("`{key}=COLUMN` is required")))
        };
        Ok(Self {
            image: need(image, "image")?,
            caption: need(caption, "caption")?,
            group: need(group, "group")?,
            license,
            id,
        })
    }
}

impl TableColumns {
    /// Every column the table must have.
    fn named(&self) -> Vec<&String> {
        [&self.image, &self.caption, &self.group]
            .into_iter()
            .chain(self.license.as_ref())
            .chain(self.id.as_ref())
            .collect()
    }
}

/// A row as named cells.
fn figure(
    get: &dyn Fn(&str) -> Option<String>,
    columns: &TableColumns,
    base: &Path,
    file: &Path,
    line: u64,
    shown: &str,
) -> Result<SourceFigure, MalformedLine> {
    let missing = |column: &str| MalformedLine {
        line,
        reason: format!("{shown}: no value in column `{column}`"),
    };
    let image = get(&columns.image)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| missing(&columns.image))?;
    let group = get(&columns.group)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| missing(&columns.group))?;
    let id = match &columns.id {
        Some(c) => get(c)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| missing(c))?,
        None => image.clone(),
    };
    Ok(SourceFigure {
        id,
        group,
        line,
        file: file.to_owned(),
        image: Ok(base.join(image.trim())),
        caption: get(&columns.caption).unwrap_or_default(),
        license: columns
            .license
            .as_ref()
            .and_then(|c| get(c))
            .unwrap_or_default(),
        published: None,
    })
}

pub(super) fn open(input: &Path, columns: &TableColumns) -> Result<Source, DatasetError> {
    if !input.is_file() {
        return Err(DatasetError::Layout {
            path: input.to_owned(),
            reason: "a table is a CSV, TSV or JSONL file".into(),
        });
    }
    let base = input.parent().unwrap_or(Path::new("."));
    let shown = input.display().to_string();
    let extension = input
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut batch: Batch = Vec::new();
    if extension == "jsonl" {
        let bytes = std::fs::read(input).map_err(DatasetError::io(input))?;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i as u64 + 1;
            let Some(parsed) =
                parse_line_as::<serde_json::Map<String, serde_json::Value>>(line, raw, "an object")
            else {
                continue;
            };
            let record = parsed.and_then(|object| {
                // Text, or a number as its JSON digits (numeric ids); an
                // array, object or boolean is not a cell's value and is
                // reported rather than turned into text.
                for column in columns.named() {
                    match object.get(column) {
                        None if *column == columns.caption => {
                            return Err(MalformedLine {
                                line,
                                reason: format!("{shown}: no `{column}` key"),
                            });
                        }
                        Some(
                            v @ (serde_json::Value::Array(_)
                            | serde_json::Value::Object(_)
                            | serde_json::Value::Bool(_)),
                        ) => {
                            return Err(MalformedLine {
                                line,
                                reason: format!(
                                    "{shown}: `{column}` holds {}, not text",
                                    match v {
                                        serde_json::Value::Array(_) => "an array",
                                        serde_json::Value::Object(_) => "an object",
                                        _ => "a boolean",
                                    }
                                ),
                            });
                        }
                        _ => {}
                    }
                }
                let get = |c: &str| {
                    object.get(c).and_then(|v| match v {
                        serde_json::Value::String(s) => Some(s.clone()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                };
                figure(&get, columns, base, input, line, &shown)
            });
            batch.push((line, record));
        }
    } else {
        let delimiter = if extension == "csv" { b',' } else { b'\t' };
        let (mut reader, headers) = delimited(input, delimiter)?;
        for column in columns.named() {
            if !headers.iter().any(|h| h.trim() == column) {
                return Err(DatasetError::Layout {
                    path: input.to_owned(),
                    reason: format!(
                        "no column `{column}` (the header has: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        for (line, record) in numbered_records(&mut reader, input, headers.len(), &shown) {
            let figure = record.and_then(|record| {
                let get = |c: &str| {
                    headers
                        .iter()
                        .position(|h| h.trim() == c)
                        .and_then(|i| record.get(i))
                        .map(str::to_owned)
                };
                figure(&get, columns, base, input, line, &shown)
            });
            batch.push((line, figure));
        }
    }
    Ok(Source {
        main_file: input.to_owned(),
        image_root: None,
        batches: Box::new(std::iter::once(Ok(batch))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_specs_parse_and_name_what_is_wrong() {
        let c = TableColumns::parse("image=path,caption=text,group=pmcid,licence=cc").unwrap();
        assert_eq!(
            (c.image.as_str(), c.caption.as_str(), c.group.as_str()),
            ("path", "text", "pmcid")
        );
        assert_eq!(c.license.as_deref(), Some("cc"));
        let err = TableColumns::parse("image=path,caption=text")
            .unwrap_err()
            .to_string();
        assert!(err.contains("group=COLUMN"), "{err}");
        let err = TableColumns::parse("image=a,caption=b,group=c,colour=d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
