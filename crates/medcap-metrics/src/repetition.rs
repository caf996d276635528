//! Degenerate repetition in generated captions, the failure of a captioner
//! whose decoder has stopped looking at the image. It takes three forms, and
//! [`longest_run`] finds all of them:
//!
//! - a word said again and again: "chest chest chest", "0. 0. 0.";
//! - a phrase said again and again: "a left a left a left";
//! - a piece of a word said again and again inside one word, which is how a
//!   word-piece decoder loops: "pneumothoothoothoo", "cardiomiomiomiom".
//!
//! Words are maximal runs of alphanumeric characters, compared
//! case-insensitively, so punctuation between the repeats does not hide them.
//! A repeated piece is [`MIN_PIECE_CHARS`] to [`MAX_PIECE_CHARS`] characters
//! long and not made of digits only, so that "iii", "1000" or "1000000" are
//! not loops (a number said again, "5. 5. 5.", is a word said again).

/// The shortest piece of a word that counts as a repeated unit inside a word.
pub const MIN_PIECE_CHARS: usize = 2;

/// The longest piece of a word looked for (a word piece of the BERT
/// vocabulary is rarely longer), which also bounds the work on a long word.
pub const MAX_PIECE_CHARS: usize = 10;

/// The longest phrase, in words, whose back-to-back repeats are looked for.
pub const MAX_PHRASE_WORDS: usize = 8;

/// What repeats in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunUnit {
    /// One word.
    Word,
    /// Two to [`MAX_PHRASE_WORDS`] words.
    Phrase,
    /// Part of a word, inside that word.
    WordPiece,
}

/// A unit said back to back: "chest" 4 times, "thoo" 3 times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// What kind of unit repeats.
    pub unit: RunUnit,
    /// The unit, lower case (words of a phrase joined by one space).
    pub text: String,
    /// How many times it comes in a row (at least 2).
    pub times: usize,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// How many times `items[start..start + len]` comes back to back from `start`.
fn repeats_from<T: PartialEq>(items: &[T], start: usize, len: usize) -> usize {
    let unit = &items[start..start + len];
    items[start..]
        .chunks_exact(len)
        .take_while(|chunk| *chunk == unit)
        .count()
}

/// The longest back-to-back repeat of a unit of `min_len..=max_len` items.
/// Ties go to the shorter unit, then to the earlier one.
fn longest_repeat<T: PartialEq>(
    items: &[T],
    min_len: usize,
    max_len: usize,
) -> Option<(usize, usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None; // (times, start, len)
    for len in min_len..=max_len.min(items.len() / 2) {
        for start in 0..=items.len() - 2 * len {
            let times = repeats_from(items, start, len);
            if times >= 2 && best.is_none_or(|(t, _, _)| times > t) {
                best = Some((times, start, len));
            }
        }
    }
    best
}

/// The longest run of a word, a phrase of up to [`MAX_PHRASE_WORDS`] words, or
/// a piece of a word (inside that word) repeated back to back in `text`;
/// `None` when nothing comes twice in a row. On equal counts a word beats a
/// phrase and a phrase beats a piece.
///
/// ```
/// use medcap_metrics::repetition::{longest_run, RunUnit};
/// // "pneumo" + "thoo" x 3: the first rotation of the loop, "otho", is named.
/// let run = longest_run("a right pneumothoothoothoo").unwrap();
/// assert_eq!((run.unit, run.text.as_str(), run.times), (RunUnit::WordPiece, "otho", 3));
/// let run = longest_run("a left a left a left").unwrap();
/// assert_eq!((run.unit, run.text.as_str(), run.times), (RunUnit::Phrase, "a left", 3));
/// assert_eq!(longest_run("a left pleural effusion"), None);
/// ```
pub fn longest_run(text: &str) -> Option<Run> {
    let words = words(text);
    let mut best: Option<Run> = None;
    let mut consider = |run: Run| {
        if best.as_ref().is_none_or(|b| run.times > b.times) {
            best = Some(run);
        }
    };
    if let Some((times, start, len)) = longest_repeat(&words, 1, MAX_PHRASE_WORDS) {
        consider(Run {
            unit: if len == 1 {
                RunUnit::Word
            } else {
                RunUnit::Phrase
            },
            text: words[start..start + len].join(" "),
            times,
        });
    }
    for word in words
        .iter()
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
    {
        let chars: Vec<char> = word.chars().collect();
        if let Some((times, start, len)) = longest_repeat(&chars, MIN_PIECE_CHARS, MAX_PIECE_CHARS)
        {
            consider(Run {
                unit: RunUnit::WordPiece,
                text: chars[start..start + len].iter().collect(),
                times,
            });
        }
    }
    best
}

/// The length of the longest run of one word repeated back to back in
/// `text` (0 for a text without words, 1 when no word follows itself).
/// Phrases and pieces of words are not counted: see [`longest_run`].
///
/// ```
/// use medcap_metrics::repetition::longest_word_run;
/// assert_eq!(longest_word_run("a left chest chest chest."), 3);
/// assert_eq!(longest_word_run("a right lower zone. 0. 0. 0 cm."), 3);
/// assert_eq!(longest_word_run("a left pleural effusion"), 1);
/// assert_eq!(longest_word_run("..."), 0);
/// ```
pub fn longest_word_run(text: &str) -> usize {
    let words = words(text);
    match longest_repeat(&words, 1, 1) {
        Some((times, _, _)) => times,
        None => usize::from(!words.is_empty()),
    }
}

/// Whether `text` says a word, a phrase or a piece of a word `times` times or
/// more in a row ([`longest_run`]).
pub fn repeats(text: &str, times: usize) -> bool {
    longest_run(text).is_some_and(|run| run.times >= times)
}

/// The share of `captions` (0 to 1; 0 for none) that say a word, a phrase or
/// a piece of a word `times` times or more in a row ([`repeats`]).
pub fn share_repeating(captions: &[&str], times: usize) -> f64 {
    if captions.is_empty() {
        return 0.0;
    }
    let n = captions.iter().filter(|c| repeats(c, times)).count();
    n as f64 / captions.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Option<(RunUnit, String, usize)> {
        longest_run(text).map(|r| (r.unit, r.text, r.times))
    }

    #[test]
    fn word_runs_are_found_across_punctuation_and_case() {
        assert_eq!(longest_word_run("Chest, chest; CHEST!"), 3);
        assert_eq!(longest_word_run("a b a b a b"), 1);
        assert_eq!(longest_word_run("x x y y y y z"), 4);
        assert_eq!(longest_word_run(""), 0);
        assert_eq!(longest_word_run("cardiomiomiomiom"), 1);
        // Non-ASCII words count as words.
        assert_eq!(longest_word_run("épanchement épanchement"), 2);
    }

    #[test]
    fn the_three_forms_of_loop_are_found() {
        // The degenerate captions the embedded study has produced.
        assert_eq!(
            run("a left chest chest chest chest. chest chest chest chest. a left chest"),
            Some((RunUnit::Word, "chest".into(), 8))
        );
        assert_eq!(
            run("a right lower zone. 0. 0. 0. 0. 0 cm."),
            Some((RunUnit::Word, "0".into(), 5))
        );
        assert_eq!(
            run("a right pneumothoothoothoothoo"),
            Some((RunUnit::WordPiece, "otho".into(), 4))
        );
        assert_eq!(
            run("a 1. card. cardiomiomiomiom"),
            Some((RunUnit::WordPiece, "iom".into(), 4))
        );
        assert_eq!(
            run("a right mass and a right mass and a right mass and"),
            Some((RunUnit::Phrase, "a right mass and".into(), 3))
        );
        assert_eq!(run("a b a b a b"), Some((RunUnit::Phrase, "a b".into(), 3)));
        assert!(repeats("Pneumothoothoothoo", 3));
        assert!(repeats("0. 0. 0. 0", 3));
        assert!(!repeats("0. 0. 1", 3));
        assert!(!repeats("a left pneumothothorax", 3));
    }

    #[test]
    fn ordinary_captions_do_not_loop() {
        for caption in [
            "a left apical pneumothorax on frontal radiograph of the chest.",
            "a 1000 ml effusion; 1000000 cells; grade iii; mississippi; 0.0001",
            "cardiomegaly with a cardiothoracic ratio of 0. 63",
            "a right pleural effusion and a left pleural effusion",
            "",
            "...",
        ] {
            assert!(
                !repeats(caption, 3),
                "{caption}: {:?}",
                longest_run(caption)
            );
        }
        // Twice is a run, but not a loop at three.
        assert_eq!(run("bye bye"), Some((RunUnit::Word, "bye".into(), 2)));
        assert_eq!(run("one two three"), None);
    }

    #[test]
    fn share_counts_captions_not_runs() {
        let caps = ["a a a a a a", "b", "c c c", "d d", "pneumothoothoothoo"];
        assert_eq!(share_repeating(&caps, 3), 0.6);
        assert_eq!(share_repeating(&[], 3), 0.0);
    }
}
