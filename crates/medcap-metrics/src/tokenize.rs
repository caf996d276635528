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
const fn always_split(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// White space as Python's `str.split()` sees it: Rust's, plus the ASCII
/// separators U+001C to U+001F.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The token boundaries that mteval-v13a's four regexes produce, found in one
/// pass over `units` (bytes of ASCII text, chars otherwise): `emit(start,
/// end)` gets each token's unit range. The regexes, applied in order, are
///
/// 1. `([{-~[-&grave; -&(-+:-@/])` → ` \1 `: these always stand alone;
/// 2. `([^0-9])([.,])` → `\1 \2 `;
/// 3. `([.,])([^0-9])` → ` \1 \2`;
/// 4. `([0-9])(-)` → `\1 \2 `.
///
/// Passes 2 and 3 only ever isolate a point or comma (spaces on both sides),
/// and by regex scanning rules (leftmost, non-overlapping) pass 2 matches
/// alternate points of a run of them: the 1st, 3rd, ... after a non-digit,
/// the 2nd, 4th, ... after a digit. Pass 3 then isolates every other point
/// except the last of its run when a digit follows. So a point stays glued
/// to its neighbours only when pass 2 skipped it, it ends its run and a
/// digit comes next (`3.5`, `1,000`). Pass 4 isolates a dash right after a
/// digit. The test module checks this against a literal transcription of
/// the four regexes on random strings.
fn split_13a<T: Copy + Into<char>>(units: &[T], mut emit: impl FnMut(usize, usize)) {
    let class = |i: usize| -> Class { class_13a(units[i].into()) };
    let digit_at = |i: usize| i < units.len() && class(i) == Class::Digit;
    let mut start: Option<usize> = None;
    let flush = |start: &mut Option<usize>, end: usize, emit: &mut dyn FnMut(usize, usize)| {
        if let Some(s) = start.take() {
            emit(s, end);
        }
    };
    let mut i = 0;
    while i < units.len() {
        match class(i) {
            Class::Space => flush(&mut start, i, &mut emit),
            Class::Dash if i == 0 || !digit_at(i - 1) => {
                start.get_or_insert(i);
            }
            Class::Alone | Class::Dash => {
                flush(&mut start, i, &mut emit);
                emit(i, i + 1);
            }
            Class::Point => {
                let mut end = i;
                while end < units.len() && class(end) == Class::Point {
                    end += 1;
                }
                let after_digit = i > 0 && digit_at(i - 1);
                for p in i..end {
                    // 1-based place in the run; pass 2's alternation.
                    let place = p - i + 1;
                    let pass2 = (place % 2 == 0) == after_digit;
                    let glued = !pass2 && p + 1 == end && digit_at(end);
                    if glued {
                        start.get_or_insert(p);
                    } else {
                        flush(&mut start, p, &mut emit);
                        emit(p, p + 1);
                    }
                }
                i = end;
                continue;
            }
            Class::Digit | Class::Other => {
                start.get_or_insert(i);
                // Most characters are letters: skip the rest of the word in
                // a tight loop (a dash after a digit ends it).
                while i + 1 < units.len() && matches!(class(i + 1), Class::Digit | Class::Other) {
                    i += 1;
                }
            }
        }
        i += 1;
    }
    flush(&mut start, units.len(), &mut emit);
}

/// What a character is to the 13a rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Separates tokens (Python's `str.split()`).
    Space,
    /// Rule 1: always its own token.
    Alone,
    /// `.` or `,`.
    Point,
    Dash,
    /// ASCII `0-9` (the regexes' `[0-9]`).
    Digit,
    Other,
}

/// [`Class`] of each ASCII character, looked up instead of tested.
const ASCII_CLASSES: [Class; 128] = {
    let mut table = [Class::Other; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8 as char;
        table[b] = if matches!(b, 0x09..=0x0d | 0x1c..=0x20) {
            Class::Space
        } else if always_split(c) {
            Class::Alone
        } else if matches!(c, '.' | ',') {
            Class::Point
        } else if c == '-' {
            Class::Dash
        } else if c.is_ascii_digit() {
            Class::Digit
        } else {
            Class::Other
        };
        b += 1;
    }
    table
};

fn class_13a(c: char) -> Class {
    match ASCII_CLASSES.get(c as usize) {
        Some(class) => *class,
        None if is_python_space(c) => Class::Space,
        None => Class::Other,
    }
}

/// Calls `visit` with each `13a` token of `line`, in order.
pub(crate) fn each_13a(line: &str, mut visit: impl FnMut(&str)) {
    let trimmed = line.trim_end_matches(is_python_space);
    let cleaned;
    // A SIMD scan: most captions need none of the clean-up below.
    let text = if memchr::memchr3(b'<', b'\n', b'&', trimmed.as_bytes()).is_some() {
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
        split_13a(text.as_bytes(), |s, e| {
            if let Some(token) = text.get(s..e) {
                visit(token);
            }
        });
    } else {
        let (offsets, chars): (Vec<usize>, Vec<char>) = text.char_indices().unzip();
        let byte = |i: usize| offsets.get(i).copied().unwrap_or(text.len());
        split_13a(&chars, |s, e| {
            if let Some(token) = text.get(byte(s)..byte(e)) {
                visit(token);
            }
        });
    }
}

/// Calls `visit` with each white-space separated token (Python's `str.split()`).
pub(crate) fn each_whitespace(text: &str, mut visit: impl FnMut(&str)) {
    if !text.is_ascii() {
        text.split(is_python_space)
            .filter(|t| !t.is_empty())
            .for_each(visit);
        return;
    }
    // ASCII: scan bytes; every index is a char boundary.
    let bytes = text.as_bytes();
    let is_space = |i: usize| ASCII_CLASSES[usize::from(bytes[i] & 0x7f)] == Class::Space;
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && is_space(i) {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !is_space(i) {
            i += 1;
        }
        if let Some(token) = text.get(start..i).filter(|t| !t.is_empty()) {
            visit(token);
        }
    }
}

/// Calls `visit` with each rouge-score token of `text` (see [`tokenize_rouge`]).
pub(crate) fn each_rouge(text: &str, visit: impl FnMut(&str)) {
    // Lowercasing can only create ASCII letters from non-ASCII characters in
    // a few cases (the Kelvin sign); lowercase fully only when needed.
    let lowered = if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.to_lowercase()
    };
    lowered
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .for_each(visit);
}

/// Calls `visit` with each token of [`tokenize_rouge_unicode`].
pub(crate) fn each_rouge_unicode(text: &str, visit: impl FnMut(&str)) {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .for_each(visit);
}

/// Collects a visitor's tokens.
pub(crate) fn collect(each: impl FnOnce(&mut dyn FnMut(&str))) -> Vec<String> {
    let mut out = Vec::new();
    each(&mut |t| out.push(t.to_owned()));
    out
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
    collect(|v| each_13a(line, v))
}

/// Python's `str.split()`: runs of white space separate tokens.
pub fn tokenize_whitespace(line: &str) -> Vec<String> {
    collect(|v| each_whitespace(line, v))
}

/// rouge-score's default tokenizer, without stemming: lowercase, then every
/// run of characters outside `a-z0-9` separates tokens, so non-ASCII letters
/// vanish (`café` → `caf`).
pub fn tokenize_rouge(text: &str) -> Vec<String> {
    collect(|v| each_rouge(text, v))
}

/// Like [`tokenize_rouge`], but Unicode letters and digits are kept, so
/// accented and non-Latin text is scored instead of deleted. Not
/// rouge-score compatible on such text; identical to it on ASCII.
pub fn tokenize_rouge_unicode(text: &str) -> Vec<String> {
    collect(|v| each_rouge_unicode(text, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The regexes transcribed literally, pass by pass: the oracle for the
    // one-pass `split_13a`.

    /// One pass of a two-character regex `(X)(Y)` → replacement, with regex
    /// semantics: leftmost matches, non-overlapping, scanning on after a match.
    fn two_char_pass<T: Copy>(
        text: &[T],
        out: &mut Vec<T>,
        x: impl Fn(T) -> bool,
        y: impl Fn(T) -> bool,
        emit: impl Fn(&mut Vec<T>, T, T),
    ) {
        out.clear();
        let mut i = 0;
        while i < text.len() {
            if i + 1 < text.len() && x(text[i]) && y(text[i + 1]) {
                emit(out, text[i], text[i + 1]);
                i += 2;
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
    }

    /// The four mteval-v13a regexes as scans over units (bytes for ASCII text,
    /// chars otherwise); the patterns are one or two characters long, so the
    /// scans are exact. A pass whose trigger character is absent changes
    /// nothing and is skipped.
    fn rules_13a<T: Copy + Into<char>>(
        units: impl ExactSizeIterator<Item = T>,
        space: T,
    ) -> Vec<T> {
        let is_digit = |c: T| c.into().is_ascii_digit();
        let is_point = |c: T| matches!(c.into(), '.' | ',');
        let is_dash = |c: T| c.into() == '-';
        let mut text: Vec<T> = Vec::with_capacity(2 * units.len() + 2);
        let (mut points, mut dashes) = (false, false);
        text.push(space);
        for u in units {
            if always_split(u.into()) {
                text.extend([space, u, space]);
            } else {
                points |= is_point(u);
                dashes |= is_dash(u);
                text.push(u);
            }
        }
        text.push(space);
        let mut out = Vec::with_capacity(text.len() + text.len() / 2 + 8);
        if points {
            // ([^0-9])([\.,]) -> "\1 \2 "
            two_char_pass(
                &text,
                &mut out,
                |c| !is_digit(c),
                is_point,
                |o, a, b| o.extend([a, space, b, space]),
            );
            std::mem::swap(&mut text, &mut out);
            // ([\.,])([^0-9]) -> " \1 \2"
            two_char_pass(
                &text,
                &mut out,
                is_point,
                |c| !is_digit(c),
                |o, a, b| o.extend([space, a, space, b]),
            );
            std::mem::swap(&mut text, &mut out);
        }
        if dashes {
            // ([0-9])(-) -> "\1 \2 "
            two_char_pass(&text, &mut out, is_digit, is_dash, |o, a, b| {
                o.extend([a, space, b, space])
            });
            std::mem::swap(&mut text, &mut out);
        }
        text
    }

    fn oracle_13a(text: &str) -> Vec<String> {
        let spaced: String = rules_13a(text.chars().collect::<Vec<_>>().into_iter(), ' ')
            .into_iter()
            .collect();
        spaced
            .split(is_python_space)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn one_pass_13a_equals_the_four_regexes_on_random_strings() {
        let alphabet: Vec<char> = "a1.,.,-- (9x&'é\tZ0/\u{1c}\u{3000}".chars().collect();
        let mut rng = medcap_rng::SplitMix64::new(7);
        for _ in 0..200_000 {
            let len = rng.below(14);
            let text: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
            // Skip the entity/newline clean-up, which runs before either.
            let text = text.replace('&', "+");
            assert_eq!(tokenize_13a(&text), oracle_13a(&text), "{text:?}");
        }
    }

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
