//! Words and sentences of a caption or report, for the findings labeller:
//! lower-case words of letters and digits (a decimal number stays one word),
//! `?` as a word (it is an uncertainty cue), commas and semicolons as their
//! own tokens, and sentence stops.

use std::collections::HashMap;
use std::ops::Range;

use super::{Side, Zone};

/// A word or a punctuation mark that matters to the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A lower-case word, or `?`.
    Word(String),
    /// `,` (inside a clause).
    Comma,
    /// `;` (ends a clause).
    Semicolon,
    /// `.`, `!` (ends a sentence).
    Stop,
}

impl Token {
    /// The text a phrase word is compared with.
    pub(super) fn text(&self) -> &str {
        match self {
            Token::Word(w) => w,
            Token::Comma => ",",
            Token::Semicolon => ";",
            Token::Stop => ".",
        }
    }
}

/// Splits `text` into tokens.
pub(super) fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = text.chars().collect();
    let flush = |word: &mut String, tokens: &mut Vec<Token>| {
        if !word.is_empty() {
            tokens.push(Token::Word(std::mem::take(word)));
        }
    };
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
            continue;
        }
        let digit_before = i > 0 && chars[i - 1].is_ascii_digit();
        let digit_after = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        match c {
            // "2.1 cm" is one word, not a sentence end.
            '.' | ',' if digit_before && digit_after => word.push(c),
            // "patient's": the apostrophe joins.
            '\'' | '’'
                if !word.is_empty() && chars.get(i + 1).is_some_and(|n| n.is_alphabetic()) => {}
            '.' | '!' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Stop);
            }
            ',' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Comma);
            }
            ';' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Semicolon);
            }
            '?' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Word("?".into()));
            }
            _ => flush(&mut word, &mut tokens),
        }
    }
    flush(&mut word, &mut tokens);
    tokens
}

/// The token ranges of the sentences (stops excluded, empty ones dropped).
pub(super) fn sentences(tokens: &[Token]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if *t == Token::Stop {
            if i > start {
                out.push(start..i);
            }
            start = i + 1;
        }
    }
    if tokens.len() > start {
        out.push(start..tokens.len());
    }
    out
}

/// The words of a vocabulary phrase: tokenised as text is, except that a
/// word ending in `*` stays a prefix pattern.
pub(super) fn phrase_words(phrase: &str) -> Vec<String> {
    let mut words = Vec::new();
    for piece in phrase.split_whitespace() {
        if let Some(prefix) = piece.strip_suffix('*') {
            words.push(format!("{}*", prefix.to_lowercase()));
        } else {
            words.extend(tokenize(piece).iter().map(|t| t.text().to_owned()));
        }
    }
    words
}

/// Whether token text `token` matches phrase word `word` (a prefix pattern,
/// or the word itself, or, for a phrase's last word, its plural).
fn word_matches(word: &str, token: &str, last: bool) -> bool {
    if let Some(prefix) = word.strip_suffix('*') {
        return token.starts_with(prefix);
    }
    if token == word {
        return true;
    }
    last && token
        .strip_prefix(word)
        .is_some_and(|rest| rest == "s" || rest == "es")
}

/// Phrases (by position in a list) indexed by their first word: a token is
/// only compared with the phrases that can start with it.
#[derive(Debug, Clone, Default)]
pub(super) struct WordIndex {
    exact: HashMap<String, Vec<usize>>,
    /// Phrases whose first word is a prefix pattern: always candidates.
    prefixed: Vec<usize>,
}

impl WordIndex {
    pub(super) fn new<'a>(phrases: impl Iterator<Item = &'a [String]>) -> Self {
        let mut index = Self::default();
        for (i, words) in phrases.enumerate() {
            match words.first() {
                Some(w) if w.ends_with('*') => index.prefixed.push(i),
                Some(w) => index.exact.entry(w.clone()).or_default().push(i),
                None => {}
            }
        }
        index
    }

    /// The phrases that may start at `token` (a superset: the caller checks).
    pub(super) fn candidates<'a>(&'a self, token: &'a Token) -> impl Iterator<Item = usize> + 'a {
        let word = token.text();
        // A one-word phrase also matches its plural.
        let singular = [word.strip_suffix("es"), word.strip_suffix('s')];
        std::iter::once(Some(word))
            .chain(singular)
            .flatten()
            .filter_map(|w| self.exact.get(w))
            .flatten()
            .copied()
            .chain(self.prefixed.iter().copied())
    }
}

/// The number of tokens `words` covers at `tokens[at..]`, if it matches.
pub(super) fn match_at(tokens: &[Token], at: usize, words: &[String]) -> Option<usize> {
    if at + words.len() > tokens.len() {
        return None;
    }
    let last = words.len() - 1;
    words
        .iter()
        .zip(&tokens[at..])
        .enumerate()
        .all(|(i, (w, t))| word_matches(w, t.text(), i == last))
        .then_some(words.len())
}

/// Whether a token separates list items ("a left effusion, a right
/// pneumothorax"): a side word beyond it belongs to another finding.
fn separates(t: &Token) -> bool {
    matches!(t, Token::Comma) || matches!(t.text(), "and" | "or" | "with" | "plus")
}

fn is_side(t: &Token) -> bool {
    matches!(t.text(), "left" | "right")
}

/// The words before a mention that may name its side: at most 4, not before
/// `limit`, and not past a list separator, except in "right and left".
pub(super) fn side_window_before(tokens: &[Token], limit: usize, start: usize) -> &[Token] {
    let mut from = start;
    while from > limit && start - from < 4 {
        let t = &tokens[from - 1];
        if separates(t) {
            let side_pair = from >= 2
                && from - 1 > limit
                && is_side(&tokens[from - 2])
                && tokens.get(from).is_some_and(is_side);
            if !side_pair {
                break;
            }
        }
        from -= 1;
    }
    &tokens[from..start]
}

/// The words after a mention that may name its side ("on the left", "in the
/// right upper zone"): at most 6, not past `limit` or a list separator.
pub(super) fn side_window_after(tokens: &[Token], end: usize, limit: usize) -> &[Token] {
    let mut to = end;
    while to < limit && to - end < 6 && !separates(&tokens[to]) {
        to += 1;
    }
    &tokens[end..to]
}

/// The side and zone that a mention's surrounding words name.
pub(super) fn side_and_zone<'a>(
    tokens: impl Iterator<Item = &'a Token>,
) -> (Option<Side>, Option<Zone>) {
    let (mut left, mut right, mut both) = (false, false, false);
    let mut zone = None;
    for t in tokens {
        match t.text() {
            "left" | "lt" => left = true,
            "right" | "rt" => right = true,
            "bilateral" | "bilaterally" | "both" | "bibasilar" | "bibasal" => {
                both = true;
            }
            "upper" | "apical" | "apex" | "apices" => zone = zone.or(Some(Zone::Upper)),
            "middle" | "mid" => zone = zone.or(Some(Zone::Middle)),
            "lower" | "basal" | "base" | "bases" | "basilar" => zone = zone.or(Some(Zone::Lower)),
            _ => {}
        }
        if matches!(t.text(), "bibasilar" | "bibasal") {
            zone = zone.or(Some(Zone::Lower));
        }
    }
    let side = if both || (left && right) {
        Some(Side::Bilateral)
    } else if left {
        Some(Side::Left)
    } else if right {
        Some(Side::Right)
    } else {
        None
    };
    (side, zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).iter().map(|t| t.text().to_owned()).collect()
    }

    #[test]
    fn numbers_stay_whole_and_punctuation_splits() {
        assert_eq!(
            words("A 2.1 cm nodule (arrow). Left-sided effusion?"),
            [
                "a", "2.1", "cm", "nodule", "arrow", ".", "left", "sided", "effusion", "?"
            ]
        );
        assert_eq!(
            words("patient's ETT; r/o PTX"),
            ["patients", "ett", ";", "r", "o", "ptx"]
        );
        let t = tokenize("One. Two three.. Four");
        assert_eq!(sentences(&t), [0..1, 2..4, 6..7]);
    }

    #[test]
    fn phrases_match_plurals_and_prefixes() {
        let t = tokenize("bilateral pleural effusions and opacities");
        assert_eq!(match_at(&t, 1, &phrase_words("pleural effusion")), Some(2));
        assert_eq!(match_at(&t, 4, &phrase_words("opacit*")), Some(1));
        assert_eq!(match_at(&t, 0, &phrase_words("pleural effusion")), None);
        assert_eq!(side_and_zone(t.iter()), (Some(Side::Bilateral), None));
    }
}
