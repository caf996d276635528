//! Which figures to keep: keyword rules over the caption.
//!
//! Two rules ship: [`KeywordRule`] (the default: case-insensitive whole-word
//! keywords with an optional exclusion list) and [`StudyRule`] (the study's own
//! selection, reproduced exactly). Both implement [`FigureSelector`], which is
//! what the prepare pipeline takes.

use regex::Regex;

use crate::error::DatasetError;

/// The outcome of a selector on one caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The figure is kept.
    Keep,
    /// An exclusion term matched (reported with the term).
    Excluded(String),
    /// No keyword matched.
    NoKeyword,
}

/// Decides from a caption whether a figure belongs to the data set.
pub trait FigureSelector: Send + Sync {
    /// Judges one caption.
    fn select(&self, caption: &str) -> Selection;
    /// A one-line description for summaries and logs.
    fn describe(&self) -> String;
}

/// Case-insensitive whole-word keywords, with optional exclusions that win.
///
/// ```
/// use medcap_dataset::filter::{FigureSelector, KeywordRule, Selection};
///
/// let rule = KeywordRule::new(&["chest"], &["brain"])?;
/// assert_eq!(rule.select("Chest X-ray, PA view"), Selection::Keep);
/// assert_eq!(rule.select("CT of the chestwall"), Selection::NoKeyword);
/// assert_eq!(rule.select("Brain and chest CT"), Selection::Excluded("brain".into()));
/// # Ok::<(), medcap_dataset::DatasetError>(())
/// ```
#[derive(Debug, Clone)]
pub struct KeywordRule {
    include: Vec<(String, Regex)>,
    exclude: Vec<(String, Regex)>,
}

fn word_pattern(term: &str) -> Result<Regex, DatasetError> {
    let term = term.trim();
    if term.is_empty() {
        return Err(DatasetError::InvalidKeyword {
            keyword: term.to_owned(),
            reason: "empty".into(),
        });
    }
    // Words separated by any run of white space, bounded by non-word characters.
    let body = term
        .split_whitespace()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s+");
    Regex::new(&format!(r"(?i)\b{body}\b")).map_err(|e| DatasetError::InvalidKeyword {
        keyword: term.to_owned(),
        reason: e.to_string(),
    })
}

fn compile(terms: &[&str]) -> Result<Vec<(String, Regex)>, DatasetError> {
    terms
        .iter()
        .map(|t| Ok((t.trim().to_owned(), word_pattern(t)?)))
        .collect()
}

impl KeywordRule {
    /// A rule keeping captions with any of `include` and none of `exclude`.
    pub fn new(include: &[&str], exclude: &[&str]) -> Result<Self, DatasetError> {
        if include.is_empty() {
            return Err(DatasetError::InvalidKeyword {
                keyword: String::new(),
                reason: "the keyword list is empty".into(),
            });
        }
        Ok(Self {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    /// The default: whole-word `chest`, nothing excluded.
    pub fn chest() -> Self {
        Self {
            include: compile(&["chest"]).unwrap_or_default(),
            exclude: Vec::new(),
        }
    }
}

impl FigureSelector for KeywordRule {
    fn select(&self, caption: &str) -> Selection {
        if let Some((term, _)) = self.exclude.iter().find(|(_, re)| re.is_match(caption)) {
            return Selection::Excluded(term.clone());
        }
        if self.include.iter().any(|(_, re)| re.is_match(caption)) {
            Selection::Keep
        } else {
            Selection::NoKeyword
        }
    }

    fn describe(&self) -> String {
        let names = |v: &[(String, Regex)]| {
            v.iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = format!(
            "keywords (case-insensitive, whole word): {}",
            names(&self.include)
        );
        if !self.exclude.is_empty() {
            text.push_str(&format!("; excluded: {}", names(&self.exclude)));
        }
        text
    }
}

/// The study's selection, as its data-preparation script did it: captions
/// containing `Brain` (case-sensitive substring) are set aside first, then a
/// caption is kept when it contains `Chest` (case-sensitive substring).
///
/// It misses lowercase "chest" and matches inside longer words; it exists to
/// reproduce the study, not as a recommendation.
///
/// ```
/// use medcap_dataset::filter::{FigureSelector, Selection, StudyRule};
///
/// assert_eq!(StudyRule.select("Chest radiograph"), Selection::Keep);
/// assert_eq!(StudyRule.select("chest radiograph"), Selection::NoKeyword);
/// assert_eq!(StudyRule.select("Brain and Chest CT"), Selection::Excluded("Brain".into()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StudyRule;

impl FigureSelector for StudyRule {
    fn select(&self, caption: &str) -> Selection {
        if caption.contains("Brain") {
            Selection::Excluded("Brain".into())
        } else if caption.contains("Chest") {
            Selection::Keep
        } else {
            Selection::NoKeyword
        }
    }

    fn describe(&self) -> String {
        "study rule: case-sensitive substring `Chest`, after captions with `Brain` are set aside"
            .into()
    }
}

/// Keeps every figure: for data that is already selected, and for
/// measuring cleanup on a whole data set.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepAll;

impl FigureSelector for KeepAll {
    fn select(&self, _caption: &str) -> Selection {
        Selection::Keep
    }

    fn describe(&self) -> String {
        "every figure (no selection)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only_and_case_insensitive() {
        let rule = KeywordRule::chest();
        assert_eq!(rule.select("CHEST radiograph"), Selection::Keep);
        assert_eq!(rule.select("the chest."), Selection::Keep);
        assert_eq!(rule.select("(chest)"), Selection::Keep);
        assert_eq!(rule.select("chest-wall mass"), Selection::Keep);
        assert_eq!(rule.select("Chests"), Selection::NoKeyword);
        assert_eq!(rule.select("Manchester"), Selection::NoKeyword);
        assert_eq!(rule.select("Abdominal CT"), Selection::NoKeyword);
    }

    #[test]
    fn multi_word_keywords_match_across_white_space() {
        let rule = KeywordRule::new(&["chest x-ray", "thorax"], &[]).unwrap();
        assert_eq!(rule.select("Portable chest\u{a0}X-ray"), Selection::Keep);
        assert_eq!(rule.select("Chest  x-ray"), Selection::Keep);
        assert_eq!(rule.select("CT of the thorax"), Selection::Keep);
        assert_eq!(rule.select("chest CT"), Selection::NoKeyword);
    }

    #[test]
    fn exclusions_win_and_are_named() {
        let rule = KeywordRule::new(&["chest"], &["brain", "knee"]).unwrap();
        assert_eq!(
            rule.select("Knee and chest"),
            Selection::Excluded("knee".into())
        );
    }

    #[test]
    fn rejects_empty_keywords() {
        assert!(KeywordRule::new(&[], &[]).is_err());
        assert!(KeywordRule::new(&["  "], &[]).is_err());
    }

    #[test]
    fn study_rule_matches_substrings_case_sensitively() {
        assert_eq!(StudyRule.select("Chestnut"), Selection::Keep);
        assert_eq!(StudyRule.select("CHEST"), Selection::NoKeyword);
        assert_eq!(
            StudyRule.select("Brainstem; Chest"),
            Selection::Excluded("Brain".into())
        );
    }
}
