//! Caption files as each year's evaluator reads them: the ground truth
//! (`ID,Caption`) and a submission, with the official checks in the
//! official order and the official messages' words, and the file's own
//! line beside them. Where the official code accepts or refuses something
//! for a reason a user would not guess (a first row that is neither
//! checked nor counted without a header, a blank line that stops the
//! evaluator with a Python error), medcap refuses or accepts the same and
//! says why.

use std::collections::{HashMap, HashSet};

use super::Suite;
use super::pycsv::{self, Dialect, Record, repr_list, splitlines};

/// What a check refused, as the official evaluator words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The official message, with the official line count in it.
    pub official: String,
    /// The line of the file (1-based, physical) where it was found.
    pub line: Option<usize>,
    /// What the official wording leaves unsaid: why, and what to do.
    pub note: Option<String>,
}

impl Rejection {
    fn new(official: impl Into<String>, line: Option<usize>) -> Self {
        Self {
            official: official.into(),
            line,
            note: None,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}", self.official)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// The text of a file the official evaluator opens as UTF-8, or Python's
/// `UnicodeDecodeError` message for it (`'utf-8' codec can't decode byte
/// 0xff in position 0: invalid start byte`).
///
/// # Errors
/// That message when `bytes` are not UTF-8.
pub fn decode_utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let byte = bytes[at];
        match e.error_len() {
            None if bytes.len() - at > 1 => format!(
                "'utf-8' codec can't decode bytes in position {at}-{}: unexpected end of data",
                bytes.len() - 1
            ),
            None => format!(
                "'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: unexpected end \
                 of data"
            ),
            Some(_) if !matches!(byte, 0xc2..=0xf4) => format!(
                "'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: invalid start byte"
            ),
            Some(1) => format!(
                "'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: invalid \
                 continuation byte"
            ),
            Some(n) => format!(
                "'utf-8' codec can't decode bytes in position {at}-{}: invalid continuation byte",
                at + n - 1
            ),
        }
    })
}

/// Pairs in the order the official evaluator iterates them (a Python
/// dict's: first insertion), a later value for a key replacing the earlier
/// in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Pairs {
    fn insert(&mut self, key: &str, value: &str) {
        match self.index.get(key) {
            Some(&i) => self.entries[i].1 = value.to_owned(),
            None => {
                self.index.insert(key.to_owned(), self.entries.len());
                self.entries.push((key.to_owned(), value.to_owned()));
            }
        }
    }

    /// The caption of `id`.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.index.get(id).map(|&i| self.entries[i].1.as_str())
    }

    /// (id, caption) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is present.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }
}

/// The 2023 evaluator's dialect: `|` when the first line holds one, else
/// a tab; no quoting.
pub(crate) fn dialect_2023(text: &str) -> Dialect {
    let first = text.split(['\n', '\r']).next().unwrap_or("");
    Dialect {
        delimiter: if first.contains('|') { '|' } else { '\t' },
        quoting: false,
        universal_newlines: true,
    }
}

pub(crate) fn read(text: &str, dialect: Dialect) -> Result<Vec<Record>, Rejection> {
    pycsv::records(text, dialect).map_err(|e| {
        Rejection::new(e.to_string(), Some(e.line))
            .note("Python's csv module stops there; the official evaluator with it")
    })
}

fn crash(line: usize, what: &str) -> Rejection {
    Rejection::new(what.to_owned(), Some(line))
        .note("the official evaluator stops there with a Python error; mend the line")
}

/// The ground truth captions (`ID,Caption`, or `ID|Caption` in 2023) as
/// the year's `load_gt` reads them: a first row whose first cell is `id`
/// (any case; 2023: holds `ID`) is the header; a later id replaces an
/// earlier one.
///
/// # Errors
/// A row the official loader stops at (a blank line, one field).
pub fn ground_truth(suite: Suite, text: &str) -> Result<Pairs, Rejection> {
    let dialect = match suite {
        Suite::Y2023 => dialect_2023(text),
        Suite::Y2025 | Suite::Y2026 => Dialect::EXCEL,
    };
    let records = read(text, dialect)?;
    let mut pairs = Pairs::default();
    let Some((first, rest)) = records.split_first() else {
        return Err(Rejection::new("the ground truth is empty", None)
            .note("the official evaluator stops with StopIteration"));
    };
    let header = match suite {
        Suite::Y2023 => first.fields.first().is_some_and(|c| c.contains("ID")),
        // A blank first line is neither header nor data there.
        Suite::Y2025 | Suite::Y2026 => first
            .fields
            .first()
            .is_none_or(|c| c.to_lowercase() == "id"),
    };
    for record in std::iter::once(first).filter(|_| !header).chain(rest) {
        match record.fields.as_slice() {
            [id, caption, ..] => pairs.insert(id, caption),
            [] => return Err(crash(record.line, "a blank line in the ground truth")),
            [_] => return Err(crash(record.line, "a ground-truth row without a caption")),
        }
    }
    Ok(pairs)
}

/// A submission as the year's `load_predictions` reads it against
/// `truth`, after 2026's strict check ([`check_2026`]) where that year
/// runs it: every id of the ground truth once, no other. Returns the
/// pairs in the order the official evaluator scores them.
///
/// # Errors
/// The first [`Rejection`] of the official checks.
pub fn submission(
    suite: Suite,
    text: &str,
    truth: &Pairs,
    truth_text: &str,
) -> Result<Pairs, Rejection> {
    match suite {
        Suite::Y2023 => submission_2023(text, truth),
        Suite::Y2025 => submission_2025(text, truth),
        Suite::Y2026 => {
            check_2026(text, "ID,Caption", || truth_ids_2026(truth_text))?;
            submission_2025(text, truth)
        }
    }
}

fn submission_2023(text: &str, truth: &Pairs) -> Result<Pairs, Rejection> {
    let records = read(text, dialect_2023(text))?;
    let suffix = |n: usize| format!(" Error occured at record line {n}.");
    let mut pairs = Pairs::default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut count = 0;
    for record in &records {
        let Some(first) = record.fields.first() else {
            return Err(crash(record.line, "a blank line in the submission"));
        };
        if first.contains("ID") {
            continue;
        }
        count += 1;
        let line = Some(record.line);
        let [id, caption, ..] = record.fields.as_slice() else {
            return Err(Rejection::new(
                format!(
                    "Wrong format: Each line must consist of an image ID followed by a '|' \
                     (vertical line) and a caption (<imageID><vertical line><caption>).{}",
                    suffix(count)
                ),
                line,
            ));
        };
        check_id(truth, &seen, id, line, &suffix(count))?;
        seen.insert(id);
        pairs.insert(id, caption);
    }
    if seen.len() != truth.len() {
        return Err(Rejection::new(
            format!(
                "Number of image IDs in submission file not equal to number of image IDs in \
                 testset.{}",
                suffix(count)
            ),
            None,
        )
        .note(missing_note(truth, &seen)));
    }
    Ok(pairs)
}

fn check_id(
    truth: &Pairs,
    seen: &HashSet<&str>,
    id: &str,
    line: Option<usize>,
    suffix: &str,
) -> Result<(), Rejection> {
    if !truth.contains(id) {
        return Err(Rejection::new(
            format!("Image ID '{id}' in submission file does not exist in testset.{suffix}"),
            line,
        ));
    }
    if seen.contains(id) {
        return Err(Rejection::new(
            format!("Image ID '{id}' was specified more than once in submission file.{suffix}"),
            line,
        ));
    }
    Ok(())
}

/// Which ground-truth ids a submission lacks, as a note (the official
/// message gives only counts).
fn missing_note(truth: &Pairs, seen: &HashSet<&str>) -> String {
    let missing: Vec<&str> = truth
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !seen.contains(id))
        .take(5)
        .collect();
    if missing.is_empty() {
        "the submission's ids are the ground truth's, but the official loader did not count \
         one of them"
            .to_owned()
    } else {
        format!("missing, first of them: {}", missing.join(", "))
    }
}

fn submission_2025(text: &str, truth: &Pairs) -> Result<Pairs, Rejection> {
    let records = read(text, Dialect::EXCEL)?;
    let Some((first, rest)) = records.split_first() else {
        return Err(Rejection::new("the submission is empty", None)
            .note("the official evaluator stops with StopIteration"));
    };
    let suffix = |n: usize| format!(" Error occurred at record line {n}.");
    let mut pairs = Pairs::default();
    let header = first
        .fields
        .first()
        .is_none_or(|c| c.to_lowercase() == "id");
    if !header {
        // Stored unchecked and uncounted, as the official loader does.
        match first.fields.as_slice() {
            [id, caption, ..] => pairs.insert(id, caption),
            _ => {
                return Err(crash(first.line, "a first row without a caption"));
            }
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut last = None;
    for (count, record) in rest.iter().enumerate() {
        last = Some(count);
        let line = Some(record.line);
        let [id, caption, ..] = record.fields.as_slice() else {
            return Err(Rejection::new(
                format!(
                    "Wrong format: Each line must consist of an image ID followed by a ',' \
                     (comma) and a caption (<imageID><comma><caption>).{}",
                    suffix(count)
                ),
                line,
            ));
        };
        check_id(truth, &seen, id, line, &suffix(count))?;
        seen.insert(id);
        pairs.insert(id, caption);
    }
    if seen.len() != truth.len() {
        let Some(last) = last else {
            return Err(Rejection::new(
                "the submission has no row after its first",
                Some(first.line),
            )
            .note("the official evaluator stops with UnboundLocalError"));
        };
        let mut rejection = Rejection::new(
            format!(
                "Number of image IDs in submission file not equal to number of image IDs in \
                 testset.\nNumber in testset: {}\nNumber in submission: {}{}",
                truth.len(),
                seen.len(),
                suffix(last)
            ),
            None,
        );
        rejection = if header {
            rejection.note(missing_note(truth, &seen))
        } else {
            rejection.note(format!(
                "the file has no `ID,Caption` header, and the official loader neither checks \
                 nor counts a first row that is not one (here {:?}): add the header",
                first.fields.first().map_or("", String::as_str)
            ))
        };
        return Err(rejection);
    }
    // Without a header the unchecked first row may name an id the ground
    // truth lacks; the official evaluator then fails while scoring.
    if let Some((id, _)) = pairs.iter().find(|(id, _)| !truth.contains(id)) {
        return Err(Rejection::new(
            format!("the first row's id '{id}' is not in the ground truth"),
            Some(first.line),
        )
        .note(
            "the official loader does not check a first row that is not the header; the \
               evaluator then stops with KeyError while scoring: add the `ID,Caption` header",
        ));
    }
    Ok(pairs)
}

/// 2026's `submission_check.py` (both tasks; `header` is `ID,Caption` or
/// `ID,CUIs`): UTF-8, no blank line but perhaps the first, the exact
/// header, then every ground-truth id once in the ground truth's order,
/// ids without surrounding spaces, and a caption with a comma quoted.
/// `truth_ids` gives the ground truth's ids, in order, once the header has
/// passed (as the official check reads them then).
///
/// # Errors
/// The first [`Rejection`], in the official words.
pub fn check_2026(
    text: &str,
    header: &str,
    truth_ids: impl FnOnce() -> Result<Vec<String>, Rejection>,
) -> Result<(), Rejection> {
    let captions = header == "ID,Caption";
    let lines = splitlines(text);
    if let Some(first) = lines.first()
        && let Some(blank) = lines.iter().position(|l| l != first && l.trim().is_empty())
    {
        return Err(Rejection::new(
            if captions {
                "Empty line detected: The submission must not contain extra blank lines."
            } else {
                "Empty line detected: No extra blank lines are allowed."
            },
            Some(blank + 1),
        ));
    }
    let records = read(text, Dialect::EXCEL_RAW_NEWLINES).map_err(|r| Rejection {
        official: format!("CSV parsing error: {}", r.official),
        ..r
    })?;
    let Some((first, rest)) = records.split_first() else {
        return Err(Rejection::new(
            format!("Missing header row. Expected columns: {header}."),
            None,
        ));
    };
    let (id_name, value_name) = header.split_once(',').unwrap_or((header, ""));
    if first.fields.len() != 2 || first.fields[0] != id_name || first.fields[1] != value_name {
        let mut rejection = Rejection::new(
            format!(
                "Invalid header. Expected exactly two columns: {header}. Found: {}",
                repr_list(&first.fields)
            ),
            Some(first.line),
        );
        if first
            .fields
            .first()
            .is_some_and(|c| c.starts_with('\u{feff}'))
        {
            rejection = rejection
                .note("the file starts with a byte-order mark: save it as UTF-8 without one");
        }
        return Err(rejection);
    }
    let truth_ids = truth_ids()?;
    let truth_set: HashSet<&str> = truth_ids.iter().map(String::as_str).collect();
    let mut seen: HashSet<&str> = HashSet::new();
    for (k, (record, raw)) in rest.iter().zip(lines.iter().skip(1)).enumerate() {
        let i = k + 2;
        let line = Some(record.line);
        let at = |message: String| Rejection::new(format!("Row {i}: {message}"), line);
        let [id, value] = record.fields.as_slice() else {
            return Err(at(format!(
                "Expected exactly 2 columns. Found: {}",
                repr_list(&record.fields)
            )));
        };
        if id.as_str() != python_strip(id) {
            return Err(at(format!(
                "ID has leading/trailing whitespace. Found: '{id}'."
            )));
        }
        if !captions && value.as_str() != python_strip(value) {
            return Err(at(format!(
                "CUIs field has leading/trailing whitespace. Found: '{value}'."
            )));
        }
        if seen.contains(id.as_str()) {
            return Err(at(format!("Duplicate ID detected: {id}.")));
        }
        let position = seen.len();
        let Some(expected) = truth_ids.get(position) else {
            return Err(at(format!("Extra ID beyond ground truth length: {id}.")));
        };
        if id != expected {
            return Err(at(format!(
                "ID order mismatch. Expected '{expected}' at position {}, found '{id}'.",
                position + 1
            )));
        }
        seen.insert(id);
        if captions {
            if let Some((_, after)) = raw.split_once(',')
                && after.contains(',')
                && !(after.starts_with('"') && after.ends_with('"'))
            {
                return Err(at(
                    "Caption contains a comma but is not enclosed in double quotes.".to_owned(),
                ));
            }
        } else if !python_strip(value).is_empty() {
            check_cuis_2026(value).map_err(at)?;
        }
    }
    let mut missing: Vec<&str> = truth_set.difference(&seen).copied().collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        let count = missing.len();
        missing.truncate(5);
        return Err(Rejection::new(
            format!(
                "Submission incomplete: {count} official IDs are missing. Example: {}",
                repr_list(&missing)
            ),
            None,
        ));
    }
    Ok(())
}

/// The CUI rules of 2026's concept check, for a non-blank field.
fn check_cuis_2026(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split(';').map(python_strip).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(
            "Empty CUI detected (possible trailing ';' or consecutive separators).".to_owned(),
        );
    }
    let invalid: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|p| {
            let mut chars = p.chars();
            !(chars.next() == Some('C') && p.len() > 1 && chars.all(super::is_decimal_digit))
        })
        .collect();
    if !invalid.is_empty() {
        return Err(format!(
            "Invalid CUI format for entries: {}. Expected 'C' followed by digits.",
            repr_list(&invalid)
        ));
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in &parts {
        *counts.entry(p).or_default() += 1;
    }
    let mut dupes: Vec<&str> = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(p, _)| p)
        .collect();
    if !dupes.is_empty() {
        dupes.sort_unstable();
        return Err(format!(
            "Duplicate CUIs not allowed for an ID. Duplicates: {}",
            repr_list(&dupes)
        ));
    }
    Ok(())
}

/// The ground-truth ids 2026's check compares with: the first row skipped
/// always, blank rows skipped, ids stripped, order and repeats kept.
fn truth_ids_2026(text: &str) -> Result<Vec<String>, Rejection> {
    let records = read(text, Dialect::EXCEL_RAW_NEWLINES).map_err(|r| Rejection {
        official: format!("CSV parsing error: {}", r.official),
        ..r
    })?;
    match records.first() {
        Some(first) if !first.fields.is_empty() => {}
        _ => {
            return Err(Rejection::new(
                "Ground truth file header is missing or invalid.",
                None,
            ));
        }
    }
    Ok(records[1..]
        .iter()
        .filter_map(|r| r.fields.first())
        .map(|id| python_strip(id).to_owned())
        .collect())
}

/// Python's `str.strip()`: Unicode white space at both ends.
pub(crate) fn python_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> (Pairs, &'static str) {
        let text = "ID,Caption\na,one\nb,\"two, three\"\nc,\n";
        (ground_truth(Suite::Y2025, text).unwrap(), text)
    }

    #[test]
    fn the_2025_loader_wants_its_header() {
        let (gt, text) = truth();
        let ok = submission(Suite::Y2025, "ID,Caption\nb,x\na,y\nc,z\n", &gt, text).unwrap();
        assert_eq!(
            ok.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
        let err = submission(Suite::Y2025, "a,y\nb,x\nc,z\n", &gt, text).unwrap_err();
        assert!(err.official.starts_with("Number of image IDs"), "{err}");
        assert!(
            err.official
                .ends_with("Number in submission: 2 Error occurred at record line 1.")
        );
        assert!(err.note.unwrap().contains("add the header"));
        let err = submission(Suite::Y2025, "ID,Caption\na,y\na,x\n", &gt, text).unwrap_err();
        assert_eq!(
            err.official,
            "Image ID 'a' was specified more than once in submission file. Error occurred at \
             record line 1."
        );
        assert_eq!(err.line, Some(3));
        let err = submission(Suite::Y2025, "ID,Caption\na,y\n\nb,x\n", &gt, text).unwrap_err();
        assert!(err.official.starts_with("Wrong format"));
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn the_2026_check_in_its_words() {
        let (gt, text) = truth();
        let good = "ID,Caption\na,y\nb,\"x, y\"\nc,\n";
        assert!(submission(Suite::Y2026, good, &gt, text).is_ok());
        let cases = [
            ("ID,Caption\na,y\n\nb,x\nc,\n", "Empty line detected"),
            (
                "\u{feff}ID,Caption\na,y\nb,x\nc,\n",
                "Found: ['\\ufeffID', 'Caption']",
            ),
            (
                "ID,Caption\nb,y\na,x\nc,\n",
                "Row 2: ID order mismatch. Expected 'a' at position 1, found 'b'.",
            ),
            (
                "ID,Caption\na,y\nb,x, y\nc,\n",
                "Row 3: Expected exactly 2 columns. Found: ['b', 'x', ' y']",
            ),
            (
                "ID,Caption\na,y\nb,x\n",
                "Submission incomplete: 1 official IDs are missing. Example: ['c']",
            ),
            (
                "ID,Caption\n a,y\n",
                "Row 2: ID has leading/trailing whitespace. Found: ' a'.",
            ),
        ];
        for (sub, expected) in cases {
            let err = submission(Suite::Y2026, sub, &gt, text).unwrap_err();
            assert!(err.official.contains(expected), "{sub:?}: {err}");
        }
    }

    #[test]
    fn python_decode_errors() {
        assert_eq!(
            decode_utf8(b"\xffab").unwrap_err(),
            "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
        );
        assert_eq!(
            decode_utf8(b"a\xc3(").unwrap_err(),
            "'utf-8' codec can't decode byte 0xc3 in position 1: invalid continuation byte"
        );
        assert_eq!(
            decode_utf8(b"a\xe2\x82(").unwrap_err(),
            "'utf-8' codec can't decode bytes in position 1-2: invalid continuation byte"
        );
        assert_eq!(
            decode_utf8(b"\xed\xa0\x80").unwrap_err(),
            "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte"
        );
        assert_eq!(
            decode_utf8(b"\xc0\x80").unwrap_err(),
            "'utf-8' codec can't decode byte 0xc0 in position 0: invalid start byte"
        );
        assert_eq!(
            decode_utf8(b"ab\xe2\x82").unwrap_err(),
            "'utf-8' codec can't decode bytes in position 2-3: unexpected end of data"
        );
    }
}
