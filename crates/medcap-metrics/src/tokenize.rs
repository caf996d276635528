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

/// Rule 1 of 13a: ASCII punctuation that always becomes its own token
/// (everything in `{-~`, `[-\``, ` -&`, `(-+`, `:-@` and `/`; not `' , - .`).
fn always_split(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// One pass of a two-character regex `(X)(Y)` → replacement, with regex
/// semantics: leftmost matches, non-overlapping, scanning on after a match.
fn two_char_pass<T: Copy>(
    text: &[T],
    x: impl Fn(T) -> bool,
    y: impl Fn(T) -> bool,
    emit: impl Fn(&mut Vec<T>, T, T),
) -> Vec<T> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 2 + 8);
    let mut i = 0;
    while i < text.len() {
        if i + 1 < text.len() && x(text[i]) && y(text[i + 1]) {
            emit(&mut out, text[i], text[i + 1]);
            i += 2;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// White space as Python's `str.split()` sees it: Rust's, plus the ASCII
/// separators U+001C to U+001F.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()`.
fn python_split(text: &str) -> Vec<String> {
    text.split(is_python_space)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The four mteval-v13a regexes as scans over units (bytes for ASCII text,
/// chars otherwise); the patterns are one or two characters long, so the
/// scans are exact.
fn rules_13a<T: Copy + Into<char>>(units: impl ExactSizeIterator<Item = T>, space: T) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(2 * units.len() + 2);
    out.push(space);
    for u in units {
        if always_split(u.into()) {
            out.extend([space, u, space]);
        } else {
            out.push(u);
        }
    }
    out.push(space);
    let is_digit = |c: T| c.into().is_ascii_digit();
    let is_point = |c: T| matches!(c.into(), '.' | ',');
    let is_dash = |c: T| c.into() == '-';
    // ([^0-9])([\.,]) -> "\1 \2 "
    let out = two_char_pass(
        &out,
        |c| !is_digit(c),
        is_point,
        |o, a, b| o.extend([a, space, b, space]),
    );
    // ([\.,])([^0-9]) -> " \1 \2"
    let out = two_char_pass(
        &out,
        is_point,
        |c| !is_digit(c),
        |o, a, b| o.extend([space, a, space, b]),
    );
    // ([0-9])(-) -> "\1 \2 "
    two_char_pass(&out, is_digit, is_dash, |o, a, b| {
        o.extend([a, space, b, space])
    })
}

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
    let trimmed = line.trim_end_matches(is_python_space);
    let cleaned;
    let text = if trimmed.contains(['<', '\n', '&']) {
        let mut t = trimmed
            .replace("<skipped>", "")
            .replace("-\n", "")
            .replace('\n', " ");
        if t.contains('&') {
            t = t
                .replace("&quot;", "\"")
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">");
        }
        cleaned = t;
        cleaned.as_str()
    } else {
        trimmed
    };
    if text.is_ascii() {
        let bytes = rules_13a(text.bytes(), b' ');
        return bytes
            .split(|b| b.is_ascii_whitespace() || (0x1c..=0x1f).contains(b) || *b == 0x0b)
            .filter(|t| !t.is_empty())
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect();
    }
    let chars: String = rules_13a(text.chars().collect::<Vec<_>>().into_iter(), ' ')
        .into_iter()
        .collect();
    python_split(&chars)
}

/// Python's `str.split()`: runs of white space separate tokens.
pub fn tokenize_whitespace(line: &str) -> Vec<String> {
    python_split(line)
}

/// rouge-score's default tokenizer, without stemming: lowercase, then every
/// run of characters outside `a-z0-9` separates tokens, so non-ASCII letters
/// vanish (`café` → `caf`).
pub fn tokenize_rouge(text: &str) -> Vec<String> {
    // Lowercasing can only create ASCII letters from non-ASCII characters in
    // a few cases (the Kelvin sign); take the slow path only when needed.
    let lowered;
    let text = if text.is_ascii() {
        text
    } else {
        lowered = text.to_lowercase();
        &lowered
    };
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
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
