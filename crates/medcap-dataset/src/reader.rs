//! Streaming reader for MedICaT's figure JSONL.
//!
//! The file is read line by line in batches, never whole. Each line becomes a
//! [`FigureRecord`] or a [`MalformedLine`] that names its line number and what
//! is wrong with it; a bad line never stops the lines after it.

use std::io::BufRead;

use rayon::prelude::*;

use crate::record::FigureRecord;

/// A line that is not a usable figure record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MalformedLine {
    /// 1-based line number in the JSONL file.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for MalformedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// One parsed line: its number and its record, or why it has none.
pub type ParsedLine = (u64, Result<FigureRecord, MalformedLine>);

/// Parses one JSONL line. Blank lines are not records and return `None`.
pub fn parse_line(line_number: u64, bytes: &[u8]) -> Option<Result<FigureRecord, MalformedLine>> {
    parse_line_as(line_number, bytes, "a figure record")
}

/// Parses one JSONL line as any `T` (`what` names it in the error). Blank
/// lines return `None`; invalid UTF-8 and JSON are reported by line number.
pub fn parse_line_as<T: serde::de::DeserializeOwned>(
    line_number: u64,
    bytes: &[u8],
    what: &str,
) -> Option<Result<T, MalformedLine>> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let malformed = |reason: String| MalformedLine {
        line: line_number,
        reason,
    };
    // Checked up front so the report says "not UTF-8" rather than serde's
    // less telling "invalid unicode code point".
    if let Err(e) = std::str::from_utf8(bytes) {
        return Some(Err(malformed(format!(
            "not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))));
    }
    Some(serde_json::from_slice::<T>(bytes).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Data => format!("not {what}: {e}"),
            _ => format!("invalid JSON: {e}"),
        };
        malformed(reason)
    }))
}

/// Reads JSONL in batches of raw lines and parses each batch in parallel,
/// keeping file order.
pub struct JsonlBatches<R> {
    reader: R,
    batch_lines: usize,
    next_line: u64,
    done: bool,
}

impl<R: BufRead> JsonlBatches<R> {
    /// Batches of `batch_lines` lines (at least 1) from `reader`.
    pub fn new(reader: R, batch_lines: usize) -> Self {
        Self {
            reader,
            batch_lines: batch_lines.max(1),
            next_line: 1,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for JsonlBatches<R> {
    type Item = std::io::Result<Vec<ParsedLine>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut raw = Vec::with_capacity(self.batch_lines);
        while raw.len() < self.batch_lines {
            let mut buf = Vec::new();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(_) => {
                    raw.push((self.next_line, buf));
                    self.next_line += 1;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        if raw.is_empty() {
            return None;
        }
        let parsed = raw
            .par_iter()
            .filter_map(|(n, bytes)| parse_line(*n, bytes).map(|r| (*n, r)))
            .collect();
        Some(Ok(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &[u8], batch: usize) -> Vec<ParsedLine> {
        JsonlBatches::new(text, batch)
            .flat_map(Result::unwrap)
            .collect()
    }

    #[test]
    fn reports_each_bad_line_with_its_number_and_keeps_the_rest() {
        let mut text = Vec::new();
        text.extend_from_slice(br#"{"pdf_hash":"a","fig_key":"F1","fig_uri":"1.png"}"#);
        text.extend_from_slice(b"\n\n{\"pdf_hash\": \"b\", \n");
        text.extend_from_slice(
            b"{\"pdf_hash\":\"c\",\"fig_key\":\"F\",\"fig_uri\":\"x\xff.png\"}\n",
        );
        text.extend_from_slice(br#"{"pdf_hash":"d","fig_key":"F"}"#);
        text.extend_from_slice(b"\n[1,2]\r\n");
        text.extend_from_slice(br#"{"pdf_hash":"e","fig_key":"F2","fig_uri":"2.png"}"#);
        for batch in [1, 2, 100] {
            let parsed = parse_all(&text, batch);
            let lines: Vec<u64> = parsed.iter().map(|(n, _)| *n).collect();
            assert_eq!(lines, [1, 3, 4, 5, 6, 7], "batch {batch}");
            let errors: Vec<&MalformedLine> = parsed
                .iter()
                .filter_map(|(_, r)| r.as_ref().err())
                .collect();
            assert_eq!(errors.len(), 4);
            assert!(
                errors[0].reason.starts_with("invalid JSON"),
                "{}",
                errors[0]
            );
            assert_eq!(
                errors[1].reason,
                "not valid UTF-8 (invalid byte at offset 42)"
            );
            assert!(
                errors[2].reason.contains("missing field `fig_uri`"),
                "{}",
                errors[2]
            );
            assert!(
                errors[3].reason.starts_with("not a figure record"),
                "{}",
                errors[3]
            );
            assert_eq!(parsed[5].1.as_ref().unwrap().pdf_hash, "e");
        }
    }

    #[test]
    fn last_line_without_newline_is_read() {
        let parsed = parse_all(br#"{"pdf_hash":"a","fig_key":"F1","fig_uri":"1.png"}"#, 8);
        assert_eq!(parsed.len(), 1);
        assert!(parsed[0].1.is_ok());
    }
}
