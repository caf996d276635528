//! Tokenizers of the reference implementations, reproduced exactly.
//!
//! - [`tokenize_13a`]: sacrebleu's default `13a` tokenizer (mteval-v13a),
//!   also used by Hugging Face evaluate's `bleu`.
//! - [`tokenize_whitespace`]: Python's `str.split()`, what nltk users and the
//!   CLI's nltk option use.
//! - [`tokenize_rouge`]: Google `rouge-score`'s tokenizer: lowercase, only
//!   `a-z` and `0-9` survive, everything else separates tokens.
//! - [`tokenize_rouge_unicode`]: the same rule with Unicode letters and digits
//!   kept, for text where rouge-score's rule would delete words.

use std::sync::LazyLock;

use regex::Regex;

fn regex(pattern: &str) -> Regex {
    // Constant patterns of this file; any typo fails every test.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("tokenizer pattern compiles")
}

static RULES_13A: LazyLock<[(Regex, &'static str); 4]> = LazyLock::new(|| {
    [
        // Every ASCII punctuation mark except ' , - . becomes its own token.
        (regex(r"([\{-~\[-` -&\(-\+:-@/])"), " $1 "),
        // Periods and commas split off unless between digits.
        (regex(r"([^0-9])([\.,])"), "$1 $2 "),
        (regex(r"([\.,])([^0-9])"), " $1 $2"),
        // A dash after a digit splits: "3.5-cm" -> "3.5 - cm".
        (regex(r"([0-9])(-)"), "$1 $2 "),
    ]
});

/// sacrebleu's `13a` tokenization of one line, as tokens.
///
/// ```
/// use medcap_metrics::tokenize::tokenize_13a;
/// assert_eq!(
///     tokenize_13a("Chest X-ray (PA view) shows a 3.5-cm nodule, right lung.").join(" "),
///     "Chest X-ray ( PA view ) shows a 3.5 - cm nodule , right lung ."
/// );
/// ```
pub fn tokenize_13a(line: &str) -> Vec<String> {
    let mut text = line
        .trim_end()
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if text.contains('&') {
        text = text
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut text = format!(" {text} ");
    for (pattern, replacement) in RULES_13A.iter() {
        text = pattern.replace_all(&text, *replacement).into_owned();
    }
    text.split_whitespace().map(str::to_owned).collect()
}

/// Python's `str.split()`: runs of white space separate tokens.
pub fn tokenize_whitespace(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// rouge-score's default tokenizer, without stemming: lowercase, then every
/// run of characters outside `a-z0-9` separates tokens, so non-ASCII letters
/// vanish (`café` → `caf`).
pub fn tokenize_rouge(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Like [`tokenize_rouge`], but Unicode letters and digits are kept, so
/// accented and non-Latin text is scored instead of deleted. Not
/// rouge-score compatible on such text; identical to it on ASCII.
pub fn tokenize_rouge_unicode(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_a_keeps_decimals_and_thousands_but_splits_dashes_after_digits() {
        assert_eq!(
            tokenize_13a("T2-weighted, 1,000 cells.").join(" "),
            "T2 - weighted , 1,000 cells ."
        );
        assert_eq!(tokenize_13a("a&amp;b <skipped>end").join(" "), "a & b end");
        assert!(tokenize_13a("   ").is_empty());
    }

    #[test]
    fn rouge_tokenizer_drops_non_ascii() {
        assert_eq!(
            tokenize_rouge("Café X-ray 3.5µm"),
            ["caf", "x", "ray", "3", "5", "m"]
        );
        assert_eq!(
            tokenize_rouge_unicode("Café X-ray 3.5µm"),
            ["café", "x", "ray", "3", "5µm"]
        );
    }
}
