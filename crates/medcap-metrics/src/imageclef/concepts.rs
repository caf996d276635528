//! The concept-detection task: files of `ID,CUI;CUI;...` (2023: `|` or a
//! tab) as each year's evaluator reads them, and its scores. Per image,
//! the F1 of the predicted against the true concept sets (scikit-learn's
//! binary F1 over their union, case-folded), averaged over the images
//! whose ground truth has concepts; the secondary score the same over the
//! manually checked ground truth with both sets cut to the year's list of
//! curated concepts.
//!
//! The official reading has quirks this module keeps, because they change
//! scores: a field split on `;` keeps its empty parts, so an empty
//! concept field is one concept `""` (a ground-truth row `ID,` is scored,
//! and only a submission row `ID,` scores 1 there); any row whose first
//! cell contains `ID` is taken for a header wherever it stands.

use std::collections::{HashMap, HashSet};

use super::Suite;
use super::pycsv::{self, Dialect, Record};
use super::submission::{self, Rejection, check_2026, dialect_2023, python_strip};

/// The curated concepts of the secondary score, 2025 and 2026 (the 2025
/// evaluator's list, `C0920367` added for OCT).
pub const CURATED_2025: [&str; 15] = [
    "C0002978", "C0040405", "C0024485", "C0032743", "C0041618", "C1306645", "C1140618", "C0037949",
    "C0030797", "C0023216", "C0037303", "C0817096", "C0006141", "C0000726", "C0920367",
];

/// Concepts per image, in the order the official evaluator iterates them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Concepts {
    entries: Vec<(String, Vec<String>)>,
    index: HashMap<String, usize>,
}

impl Concepts {
    fn insert(&mut self, id: &str, concepts: Vec<String>) {
        match self.index.get(id) {
            Some(&i) => self.entries[i].1 = concepts,
            None => {
                self.index.insert(id.to_owned(), self.entries.len());
                self.entries.push((id.to_owned(), concepts));
            }
        }
    }

    /// The concepts of `id`.
    pub fn get(&self, id: &str) -> Option<&[String]> {
        self.index.get(id).map(|&i| self.entries[i].1.as_slice())
    }

    /// (id, concepts) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// How many images.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn read(suite: Suite, text: &str) -> Result<Vec<Record>, Rejection> {
    let dialect = match suite {
        Suite::Y2023 => dialect_2023(text),
        Suite::Y2025 | Suite::Y2026 => Dialect::EXCEL,
    };
    submission::read(text, dialect)
}

fn split(field: &str) -> Vec<String> {
    field
        .split(';')
        .map(|c| python_strip(c).to_owned())
        .collect()
}

fn blank(line: usize) -> Rejection {
    Rejection {
        official: "a blank line".into(),
        line: Some(line),
        note: Some(
            "the official evaluator stops there with a Python error (IndexError); remove it".into(),
        ),
    }
}

/// A concept ground truth (`concepts.csv` or `concepts_manual.csv`) as
/// the official `load_gt` reads it: rows whose first cell contains `ID`
/// skipped, a later id replacing an earlier one.
///
/// # Errors
/// A blank line, or a row without a concept field ("Answer file format is
/// wrong. Organizer should check the answer file").
pub fn ground_truth(suite: Suite, text: &str) -> Result<Concepts, Rejection> {
    let mut out = Concepts::default();
    for record in read(suite, text)? {
        let Some(id) = record.fields.first() else {
            return Err(blank(record.line));
        };
        if id.contains("ID") {
            continue;
        }
        let Some(field) = record.fields.get(1) else {
            return Err(Rejection {
                official: "Answer file format is wrong. Organizer should check the answer file"
                    .into(),
                line: Some(record.line),
                note: None,
            });
        };
        out.insert(id, split(field));
    }
    Ok(out)
}

/// A concept submission as the year's `load_predictions` reads it
/// against the primary ground truth (2026 after its strict check, which
/// also takes the ids of `secondary_text`).
///
/// # Errors
/// The first [`Rejection`] of the official checks.
pub fn submission(
    suite: Suite,
    text: &str,
    truth: &Concepts,
    truth_texts: (&str, &str),
) -> Result<Concepts, Rejection> {
    if suite == Suite::Y2026 {
        check_2026(text, "ID,CUIs", || merged_ids(truth_texts))?;
    }
    let (separator, example) = match suite {
        Suite::Y2023 => (
            "an image ID, optionally followedby a vertical line (|)",
            "<image_id><vertical line><concept_1>;<concept_2>;<concept_3>;<concept_n>",
        ),
        Suite::Y2025 | Suite::Y2026 => (
            "an image ID (no file ending), optionally followedby a comma (,)",
            "<image_id>,<concept_1>;<concept_2>;<concept_3>;<concept_n>",
        ),
    };
    let suffix = |n: usize| format!(" Error occured at line nbr {n}.");
    let mut out = Concepts::default();
    let mut count = 0;
    for record in read(suite, text)? {
        let Some(id) = record.fields.first() else {
            return Err(blank(record.line));
        };
        if id.contains("ID") {
            continue;
        }
        count += 1;
        let at = |official: String| Rejection {
            official,
            line: Some(record.line),
            note: None,
        };
        if record.fields.len() > 2 {
            return Err(at(format!(
                "Wrong format. Each line must at least consist of {separator} and 1 or more \
                 concepts separated my a semicolon ({example}).{}",
                suffix(count)
            )));
        }
        if truth.get(id).is_none() {
            return Err(at(format!(
                "Image ID '{id}' in submission file does not exist in testset.{}",
                suffix(count)
            )));
        }
        if out.get(id).is_some() {
            return Err(at(format!(
                "Image ID '{id}' was specified more than once in submission file.{}",
                suffix(count)
            )));
        }
        let concepts = record.fields.get(1).map(|f| split(f)).unwrap_or_default();
        if concepts.len() > 100 {
            return Err(at(format!(
                "Too Many concepts specified. There must be between 0 and 100 concepts per \
                 image.{}",
                suffix(count)
            )));
        }
        let distinct: HashSet<&String> = concepts.iter().collect();
        if distinct.len() != concepts.len() {
            let mut rejection = at(format!(
                "Same concept was specified more than once for image ID '{id}'.{}",
                suffix(count)
            ));
            if concepts.iter().filter(|c| c.is_empty()).count() > 1 {
                rejection.note = Some("empty parts between `;` count as concepts".into());
            }
            return Err(rejection);
        }
        out.insert(id, concepts);
    }
    if out.len() != truth.len() {
        let missing: Vec<&str> = truth
            .iter()
            .map(|(id, _)| id)
            .filter(|id| out.get(id).is_none())
            .take(5)
            .collect();
        return Err(Rejection {
            official: format!(
                "Number of image IDs in submission file not equal to number of image IDs in \
                 testset.{}",
                suffix(count)
            ),
            line: None,
            note: Some(format!("missing, first of them: {}", missing.join(", "))),
        });
    }
    Ok(out)
}

/// 2026's check reads the ids of both ground truths, the primary's first,
/// each once: a header row always skipped, blank rows skipped, ids
/// stripped.
fn merged_ids((primary, secondary): (&str, &str)) -> Result<Vec<String>, Rejection> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for text in [primary, secondary] {
        let records = pycsv::records(text, Dialect::EXCEL_RAW_NEWLINES).map_err(|e| Rejection {
            official: format!("CSV parsing error: {e}"),
            line: Some(e.line),
            note: None,
        })?;
        if records.first().is_none_or(|r| r.fields.is_empty()) {
            return Err(Rejection {
                official: "Ground truth file header missing or invalid".into(),
                line: None,
                note: None,
            });
        }
        for record in &records[1..] {
            if let Some(id) = record.fields.first() {
                let id = python_strip(id).to_owned();
                if seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
        }
    }
    Ok(ids)
}

/// One image's F1, as `sklearn.metrics.f1_score(average="binary")` over
/// the union of the upper-cased sets: 2·|T∩P| / (|T| + |P|), 0 without a
/// common concept.
pub fn f1(truth: &[String], predicted: &[String]) -> f64 {
    let t: HashSet<String> = truth.iter().map(|c| c.to_uppercase()).collect();
    let p: HashSet<String> = predicted.iter().map(|c| c.to_uppercase()).collect();
    let common = t.intersection(&p).count();
    if common == 0 {
        return 0.0;
    }
    2.0 * common as f64 / (t.len() + p.len()) as f64
}

/// A concept score: per image, and the official mean.
#[derive(Debug, Clone, PartialEq)]
pub struct ConceptScore {
    /// (id, F1) of each image scored, in submission order.
    pub per_image: Vec<(String, f64)>,
    /// The official score: the sum of `per_image` over the official
    /// denominator.
    pub score: f64,
    /// The denominator: the ground truth's images less the skipped ones
    /// (the secondary's counts images of the manual ground truth the
    /// submission does not have, as the official code does).
    pub denominator: usize,
}

/// Why a score has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConceptScoreError {
    /// Every image was skipped: the official code divides by zero.
    #[error("no image has ground-truth concepts (the official evaluator divides by zero)")]
    NoneScored,
    /// A submitted id the manual ground truth lacks (the official code
    /// stops with `KeyError`).
    #[error(
        "image '{0}' is not in the manual ground truth (the official evaluator stops with \
         KeyError)"
    )]
    NotInSecondary(String),
}

/// The primary score of `predicted` against `truth`.
///
/// # Errors
/// [`ConceptScoreError::NoneScored`].
pub fn primary(truth: &Concepts, predicted: &Concepts) -> Result<ConceptScore, ConceptScoreError> {
    score(truth, predicted, None, |id| {
        truth
            .get(id)
            .ok_or_else(|| ConceptScoreError::NotInSecondary(id.to_owned()))
    })
}

/// The secondary score: against the manual ground truth, both sets cut to
/// the year's curated concepts (2023's evaluator has none: `None`).
///
/// # Errors
/// As [`primary`], and [`ConceptScoreError::NotInSecondary`].
pub fn secondary(
    suite: Suite,
    manual: &Concepts,
    predicted: &Concepts,
) -> Option<Result<ConceptScore, ConceptScoreError>> {
    let allowed: HashSet<&str> = match suite {
        Suite::Y2023 => return None,
        Suite::Y2025 | Suite::Y2026 => CURATED_2025.into_iter().collect(),
    };
    Some(score(manual, predicted, Some(&allowed), |id| {
        manual
            .get(id)
            .ok_or_else(|| ConceptScoreError::NotInSecondary(id.to_owned()))
    }))
}

fn score<'a>(
    truth: &Concepts,
    predicted: &Concepts,
    allowed: Option<&HashSet<&str>>,
    truth_of: impl Fn(&str) -> Result<&'a [String], ConceptScoreError>,
) -> Result<ConceptScore, ConceptScoreError> {
    let keep = |concepts: &[String]| -> Vec<String> {
        concepts
            .iter()
            .map(|c| c.to_uppercase())
            .filter(|c| allowed.is_none_or(|a| a.contains(c.as_str())))
            .collect()
    };
    let mut denominator = truth.len();
    let mut per_image = Vec::new();
    for (id, p) in predicted.iter() {
        let t = keep(truth_of(id)?);
        if t.is_empty() {
            denominator -= 1;
            continue;
        }
        per_image.push((id.to_owned(), f1(&t, &keep(p))));
    }
    if denominator == 0 {
        return Err(ConceptScoreError::NoneScored);
    }
    let sum: f64 = per_image.iter().map(|(_, f)| f).sum();
    Ok(ConceptScore {
        score: sum / denominator as f64,
        per_image,
        denominator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_one_empty_concept() {
        let gt = ground_truth(Suite::Y2025, "ID,CUIs\na,C1;C2\nb,\n").unwrap();
        assert_eq!(gt.get("b").unwrap(), [""]);
        let texts = ("ID,CUIs\na,C1;C2\nb,\n", "ID,CUIs\n");
        let sub = submission(Suite::Y2025, "ID,CUIs\na,c1\nb,\n", &gt, texts).unwrap();
        let s = primary(&gt, &sub).unwrap();
        assert_eq!(
            s.per_image,
            [("a".to_owned(), 2.0 / 3.0), ("b".to_owned(), 1.0)]
        );
        assert_eq!(s.denominator, 2);
        let sub = submission(Suite::Y2025, "ID,CUIs\na,C1;;;\nb\n", &gt, texts).unwrap_err();
        assert!(
            sub.official
                .starts_with("Same concept was specified more than once for image ID 'a'.")
        );
    }

    #[test]
    fn the_2026_check_keeps_an_empty_id() {
        let text = "ID,CUIs\n,C1\na,C2\n";
        let gt = ground_truth(Suite::Y2026, text).unwrap();
        assert!(submission(Suite::Y2026, text, &gt, (text, text)).is_ok());
    }

    #[test]
    fn secondary_cuts_to_the_curated_list() {
        let manual = ground_truth(Suite::Y2025, "a,C0002978;C9\nb,C9\n").unwrap();
        let sub = ground_truth(Suite::Y2025, "a,C0002978;C0040405\nb,C0002978\n").unwrap();
        let s = secondary(Suite::Y2025, &manual, &sub).unwrap().unwrap();
        assert_eq!(s.per_image, [("a".to_owned(), 2.0 / 3.0)]);
        assert_eq!(s.denominator, 1);
        assert!(secondary(Suite::Y2023, &manual, &sub).is_none());
    }
}
