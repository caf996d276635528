//! Clinical findings in captions and reports: a rule-based labeller for the
//! 14 observations of the CheXpert labeller, and clinical-efficacy scores of
//! generated captions against references ([`scores`]).
//!
//! The labeller follows the CheXpert labeller's design (Irvin et al., 2019,
//! `stanfordmlgroup/chexpert-labeler`) with medcap's own vocabulary and rules
//! (`data/findings/`, see its README):
//! 1. the text is split into sentences, and sentences into clauses at scope
//!    terminators ("but", "however", ";");
//! 2. mentions are found from phrase lists per observation, minus
//!    "unmentions" (a pericardial effusion is not a pleural effusion);
//! 3. each mention is negative or uncertain when a trigger phrase lies before
//!    it ("no", "without", "possible", "cannot exclude") or after it ("has
//!    resolved", "is not seen", "cannot be excluded") within its clause and a
//!    few words; the nearest trigger decides, and "or" between findings makes
//!    them uncertain unless another trigger applies;
//! 4. per observation, positive beats uncertain beats negative; No Finding is
//!    positive when no observation other than Support Devices is positive or
//!    uncertain.
//!
//! Each mention also carries the side (left, right, bilateral) and lung zone
//! (upper, middle, lower) named around it, when there are any.
//!
//! ```
//! use medcap_metrics::findings::{Label, Labeller, Observation};
//!
//! let labeller = Labeller::default();
//! let labels = labeller.label("Small left pleural effusion. No pneumothorax; possible pneumonia.");
//! assert_eq!(labels.get(Observation::PleuralEffusion), Some(Label::Positive));
//! assert_eq!(labels.get(Observation::Pneumothorax), Some(Label::Negative));
//! assert_eq!(labels.get(Observation::Pneumonia), Some(Label::Uncertain));
//! assert_eq!(labels.get(Observation::NoFinding), None);
//! ```

mod rules;
pub mod scores;
mod text;

use std::path::Path;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use rules::Rules;
use text::{Token, WordIndex, tokenize};

/// The 14 observations of the CheXpert labeller, in its column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// No Finding (set by rule, never by a phrase).
    NoFinding,
    /// Enlarged Cardiomediastinum.
    EnlargedCardiomediastinum,
    /// Cardiomegaly.
    Cardiomegaly,
    /// Lung Lesion.
    LungLesion,
    /// Lung Opacity.
    LungOpacity,
    /// Edema.
    Edema,
    /// Consolidation.
    Consolidation,
    /// Pneumonia.
    Pneumonia,
    /// Atelectasis.
    Atelectasis,
    /// Pneumothorax.
    Pneumothorax,
    /// Pleural Effusion.
    PleuralEffusion,
    /// Pleural Other.
    PleuralOther,
    /// Fracture.
    Fracture,
    /// Support Devices.
    SupportDevices,
}

impl Observation {
    /// All 14, in the CheXpert labeller's column order.
    pub const ALL: [Observation; 14] = [
        Observation::NoFinding,
        Observation::EnlargedCardiomediastinum,
        Observation::Cardiomegaly,
        Observation::LungLesion,
        Observation::LungOpacity,
        Observation::Edema,
        Observation::Consolidation,
        Observation::Pneumonia,
        Observation::Atelectasis,
        Observation::Pneumothorax,
        Observation::PleuralEffusion,
        Observation::PleuralOther,
        Observation::Fracture,
        Observation::SupportDevices,
    ];

    /// The five most used in clinical-efficacy scores (CheXpert's competition
    /// tasks).
    pub const TOP5: [Observation; 5] = [
        Observation::Atelectasis,
        Observation::Cardiomegaly,
        Observation::Consolidation,
        Observation::Edema,
        Observation::PleuralEffusion,
    ];

    /// The CheXpert column name ("Pleural Effusion").
    pub fn name(self) -> &'static str {
        match self {
            Observation::NoFinding => "No Finding",
            Observation::EnlargedCardiomediastinum => "Enlarged Cardiomediastinum",
            Observation::Cardiomegaly => "Cardiomegaly",
            Observation::LungLesion => "Lung Lesion",
            Observation::LungOpacity => "Lung Opacity",
            Observation::Edema => "Edema",
            Observation::Consolidation => "Consolidation",
            Observation::Pneumonia => "Pneumonia",
            Observation::Atelectasis => "Atelectasis",
            Observation::Pneumothorax => "Pneumothorax",
            Observation::PleuralEffusion => "Pleural Effusion",
            Observation::PleuralOther => "Pleural Other",
            Observation::Fracture => "Fracture",
            Observation::SupportDevices => "Support Devices",
        }
    }

    /// The snake-case key, also the phrase file's name ("pleural_effusion").
    pub fn key(self) -> &'static str {
        match self {
            Observation::NoFinding => "no_finding",
            Observation::EnlargedCardiomediastinum => "enlarged_cardiomediastinum",
            Observation::Cardiomegaly => "cardiomegaly",
            Observation::LungLesion => "lung_lesion",
            Observation::LungOpacity => "lung_opacity",
            Observation::Edema => "edema",
            Observation::Consolidation => "consolidation",
            Observation::Pneumonia => "pneumonia",
            Observation::Atelectasis => "atelectasis",
            Observation::Pneumothorax => "pneumothorax",
            Observation::PleuralEffusion => "pleural_effusion",
            Observation::PleuralOther => "pleural_other",
            Observation::Fracture => "fracture",
            Observation::SupportDevices => "support_devices",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a text says of an observation it mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Present (CheXpert 1).
    Positive,
    /// Absent (CheXpert 0).
    Negative,
    /// Possibly present (CheXpert -1).
    Uncertain,
}

impl Label {
    /// The CheXpert labeller's value: 1, 0 or -1.
    pub fn value(self) -> i8 {
        match self {
            Label::Positive => 1,
            Label::Negative => 0,
            Label::Uncertain => -1,
        }
    }

    /// Aggregation order within a text: positive beats uncertain beats negative.
    fn rank(self) -> u8 {
        match self {
            Label::Positive => 2,
            Label::Uncertain => 1,
            Label::Negative => 0,
        }
    }
}

/// The side a finding is on (the patient's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Left.
    Left,
    /// Right.
    Right,
    /// Both sides.
    Bilateral,
}

/// A vertical lung zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// Upper zone or lobe, apex.
    Upper,
    /// Middle zone or lobe.
    Middle,
    /// Lower zone or lobe, base.
    Lower,
}

/// One mention of an observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mention {
    /// The observation.
    pub observation: Observation,
    /// What the text says of it.
    pub label: Label,
    /// The side named around it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// The zone named around it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zone>,
    /// The matched words, lower case.
    pub text: String,
}

/// The labels of one text: one per observation (`None`: not mentioned), and
/// the mentions they come from. Serialises as `{observation key: 1|0|-1}`
/// for the mentioned observations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Labels {
    labels: [Option<Label>; 14],
    /// Every mention, in text order.
    pub mentions: Vec<Mention>,
}

impl Labels {
    /// The label of `observation`, `None` when the text does not mention it.
    pub fn get(&self, observation: Observation) -> Option<Label> {
        self.labels[observation.index()]
    }

    /// The sides named with the mentions that carry `observation`'s label.
    pub fn sides(&self, observation: Observation) -> Vec<Side> {
        let label = self.get(observation);
        let mut sides: Vec<Side> = self
            .mentions
            .iter()
            .filter(|m| m.observation == observation && Some(m.label) == label)
            .filter_map(|m| m.side)
            .collect();
        sides.sort();
        sides.dedup();
        sides
    }

    /// `(observation, label)` for each mentioned observation, in column order.
    pub fn iter(&self) -> impl Iterator<Item = (Observation, Label)> + '_ {
        Observation::ALL
            .iter()
            .filter_map(|&o| self.get(o).map(|l| (o, l)))
    }

    /// The row of the CheXpert labeller's output CSV: `1`, `0`, `-1` or empty
    /// per observation, in column order.
    pub fn chexpert_row(&self) -> [&'static str; 14] {
        Observation::ALL.map(|o| match self.get(o) {
            Some(Label::Positive) => "1.0",
            Some(Label::Negative) => "0.0",
            Some(Label::Uncertain) => "-1.0",
            None => "",
        })
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mentioned: Vec<(Observation, Label)> = self.iter().collect();
        let mut map = serializer.serialize_map(Some(mentioned.len()))?;
        for (o, l) in mentioned {
            map.serialize_entry(o.key(), &l.value())?;
        }
        map.end()
    }
}

/// Why a vocabulary directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VocabularyError {
    /// A file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not a phrase or rule.
    #[error("{file}: line {line}: {reason}")]
    Syntax {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A phrase of an observation's list, as words.
#[derive(Debug, Clone)]
struct Phrase {
    words: Vec<String>,
    observation: Observation,
    unmention: bool,
}

/// The findings labeller: compiled phrase lists and trigger rules.
#[derive(Debug, Clone)]
pub struct Labeller {
    phrases: Vec<Phrase>,
    /// Phrases by their first word, so a token is compared with a handful of
    /// phrases instead of all of them.
    index: WordIndex,
    rules: Rules,
}

/// The compiled-in vocabulary, one file per observation plus the triggers.
const BUILT_IN: [(&str, &str); 14] = [
    (
        "enlarged_cardiomediastinum.txt",
        include_str!("../../data/findings/enlarged_cardiomediastinum.txt"),
    ),
    (
        "cardiomegaly.txt",
        include_str!("../../data/findings/cardiomegaly.txt"),
    ),
    (
        "lung_lesion.txt",
        include_str!("../../data/findings/lung_lesion.txt"),
    ),
    (
        "lung_opacity.txt",
        include_str!("../../data/findings/lung_opacity.txt"),
    ),
    ("edema.txt", include_str!("../../data/findings/edema.txt")),
    (
        "consolidation.txt",
        include_str!("../../data/findings/consolidation.txt"),
    ),
    (
        "pneumonia.txt",
        include_str!("../../data/findings/pneumonia.txt"),
    ),
    (
        "atelectasis.txt",
        include_str!("../../data/findings/atelectasis.txt"),
    ),
    (
        "pneumothorax.txt",
        include_str!("../../data/findings/pneumothorax.txt"),
    ),
    (
        "pleural_effusion.txt",
        include_str!("../../data/findings/pleural_effusion.txt"),
    ),
    (
        "pleural_other.txt",
        include_str!("../../data/findings/pleural_other.txt"),
    ),
    (
        "fracture.txt",
        include_str!("../../data/findings/fracture.txt"),
    ),
    (
        "support_devices.txt",
        include_str!("../../data/findings/support_devices.txt"),
    ),
    (
        "triggers.txt",
        include_str!("../../data/findings/triggers.txt"),
    ),
];

/// A built-in vocabulary file by name.
fn built_in_text(name: &str) -> Result<String, VocabularyError> {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| (*text).to_owned())
        .ok_or_else(|| VocabularyError::Syntax {
            file: name.to_owned(),
            line: 0,
            reason: "not built in".into(),
        })
}

// The built-in vocabulary is compiled in and parsed by a test of this module:
// a failure here is a bug in medcap, never in user input, and an empty
// labeller would hide it behind plausible scores.
#[allow(clippy::expect_used)]
static DEFAULT: LazyLock<Labeller> = LazyLock::new(|| {
    Labeller::from_texts(built_in_text).expect("the built-in findings vocabulary parses")
});

impl Default for Labeller {
    /// The built-in vocabulary (`data/findings/`).
    fn default() -> Self {
        DEFAULT.clone()
    }
}

impl Labeller {
    /// The built-in labeller, shared (no copy).
    pub fn built_in() -> &'static Labeller {
        &DEFAULT
    }

    /// A labeller from a vocabulary directory laid out as `data/findings/`
    /// (one `<observation key>.txt` per observation but No Finding, and
    /// `triggers.txt`).
    ///
    /// # Errors
    /// [`VocabularyError`] naming the file and line that cannot be used.
    pub fn from_dir(dir: &Path) -> Result<Self, VocabularyError> {
        Self::from_texts(|name| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| VocabularyError::Io { path, source })
        })
    }

    fn from_texts(
        read: impl Fn(&str) -> Result<String, VocabularyError>,
    ) -> Result<Self, VocabularyError> {
        let mut phrases = Vec::new();
        for observation in &Observation::ALL[1..] {
            let file = format!("{}.txt", observation.key());
            let text = read(&file)?;
            for (i, raw) in text.lines().enumerate() {
                let line = raw.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (unmention, phrase) = match line.split_at(1) {
                    ("+", rest) => (false, rest),
                    ("-", rest) => (true, rest),
                    _ => {
                        return Err(VocabularyError::Syntax {
                            file,
                            line: i + 1,
                            reason: "a phrase line starts with `+` (mention) or `-` (unmention)"
                                .into(),
                        });
                    }
                };
                let words = text::phrase_words(phrase);
                if words.is_empty() {
                    return Err(VocabularyError::Syntax {
                        file,
                        line: i + 1,
                        reason: "empty phrase".into(),
                    });
                }
                phrases.push(Phrase {
                    words,
                    observation: *observation,
                    unmention,
                });
            }
        }
        let rules = Rules::parse(&read("triggers.txt")?)?;
        let index = WordIndex::new(phrases.iter().map(|p| p.words.as_slice()));
        Ok(Self {
            phrases,
            index,
            rules,
        })
    }

    /// Labels one text.
    pub fn label(&self, text: &str) -> Labels {
        let tokens = tokenize(text);
        let mut mentions = Vec::new();
        for sentence in text::sentences(&tokens) {
            self.label_sentence(&tokens[sentence], &mut mentions);
        }
        let mut labels: [Option<Label>; 14] = [None; 14];
        for m in &mentions {
            let slot = &mut labels[m.observation.index()];
            if slot.is_none_or(|l| m.label.rank() > l.rank()) {
                *slot = Some(m.label);
            }
        }
        let finding = Observation::ALL[1..]
            .iter()
            .filter(|&&o| o != Observation::SupportDevices)
            .any(|&o| matches!(labels[o.index()], Some(Label::Positive | Label::Uncertain)));
        if !finding {
            labels[Observation::NoFinding.index()] = Some(Label::Positive);
        }
        Labels { labels, mentions }
    }

    /// Labels each text of `texts` (in parallel; order kept).
    pub fn label_all<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Labels> {
        use rayon::prelude::*;
        texts.par_iter().map(|t| self.label(t.as_ref())).collect()
    }

    /// Mentions of one sentence, appended to `out`.
    fn label_sentence(&self, tokens: &[Token], out: &mut Vec<Mention>) {
        // Every phrase match, then per observation the longest at each
        // position, non-overlapping left to right; unmentions remove theirs.
        let mut matches: Vec<(usize, usize, Observation, bool)> = Vec::new();
        for at in 0..tokens.len() {
            for i in self.index.candidates(&tokens[at]) {
                let p = &self.phrases[i];
                if let Some(len) = text::match_at(tokens, at, &p.words) {
                    matches.push((at, at + len, p.observation, p.unmention));
                }
            }
        }
        let mut found: Vec<(usize, usize, Observation)> = Vec::new();
        for observation in &Observation::ALL[1..] {
            let mut next = 0;
            for at in 0..tokens.len() {
                if at < next {
                    continue;
                }
                let longest = matches
                    .iter()
                    .filter(|m| m.0 == at && m.2 == *observation && !m.3)
                    .map(|m| m.1)
                    .max();
                if let Some(end) = longest {
                    found.push((at, end, *observation));
                    next = end;
                }
            }
        }
        let unmentioned: Vec<(usize, usize, Observation)> = matches
            .iter()
            .filter(|m| m.3)
            .map(|m| (m.0, m.1, m.2))
            .collect();
        found.retain(|&(s, e, o)| {
            !unmentioned
                .iter()
                .any(|&(us, ue, uo)| uo == o && us <= s && e <= ue)
        });
        found.sort_by_key(|&(s, e, o)| (s, e, o));
        let triggers = self.rules.find(tokens);
        for (i, &(start, end, observation)) in found.iter().enumerate() {
            let (clause_start, clause_end) = self.rules.clause(tokens, &triggers, start, end);
            let label =
                self.rules
                    .decide(tokens, &triggers, (start, end), (clause_start, clause_end));
            // Side and zone: the words around the mention, not past a
            // neighbouring mention of something else.
            let left_limit = found[..i]
                .iter()
                .filter(|f| f.1 <= start)
                .map(|f| f.1)
                .max()
                .unwrap_or(clause_start)
                .max(clause_start);
            let right_limit = found[i + 1..]
                .iter()
                .filter(|f| f.0 >= end)
                .map(|f| f.0)
                .min()
                .unwrap_or(clause_end)
                .min(clause_end);
            let before = text::side_window_before(tokens, left_limit, start);
            let inside = &tokens[start..end];
            let after = text::side_window_after(tokens, end, right_limit);
            let (side, zone) = text::side_and_zone(before.iter().chain(inside).chain(after));
            out.push(Mention {
                observation,
                label,
                side,
                zone,
                text: inside.iter().map(Token::text).collect::<Vec<_>>().join(" "),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_built_in_vocabulary_parses_and_matches_from_a_directory_too() {
        let built = Labeller::from_texts(built_in_text).unwrap();
        assert!(built.phrases.len() > 200);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/findings");
        let from_dir = Labeller::from_dir(&dir).unwrap();
        assert_eq!(from_dir.phrases.len(), built.phrases.len());
    }

    #[test]
    fn a_bad_vocabulary_line_names_its_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/findings");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let e = entry.unwrap();
            std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
        }
        std::fs::write(tmp.path().join("edema.txt"), "+ edema\nedema again\n").unwrap();
        let err = Labeller::from_dir(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("edema.txt: line 2"), "{err}");
        std::fs::write(tmp.path().join("edema.txt"), "+ edema\n").unwrap();
        std::fs::write(tmp.path().join("triggers.txt"), "negation sideways: no\n").unwrap();
        let err = Labeller::from_dir(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("triggers.txt: line 1"), "{err}");
    }
}
