//! The Porter stemmer exactly as nltk's `PorterStemmer()` runs it in its
//! default `NLTK_EXTENSIONS` mode, which is what rouge-score uses.
//!
//! This is not Snowball's English stemmer (Porter2), which the common Rust
//! stemmer crates implement: the two disagree on many words (`generalization`,
//! `dying`, `skies`, ...). The NLTK mode adds an irregular-form pool, leaves
//! words of up to two letters alone, and changes steps 1a, 1b, 1c, 2 and the
//! cvc test. Parity is tested on a word list stemmed by nltk 3.10.4.
//!
//! ```
//! use medcap_metrics::porter::stem;
//! assert_eq!(stem("effusions"), "effus");
//! assert_eq!(stem("opacities"), "opac");
//! assert_eq!(stem("dying"), "die");
//! ```

const IRREGULAR: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// nltk's `_is_consonant`: a `y` is a consonant after a vowel or at the
/// start, a vowel after a consonant, alternating through runs of `y`.
fn is_consonant(w: &[char], i: usize) -> bool {
    if is_vowel(w[i]) {
        return false;
    }
    if w[i] != 'y' {
        return true;
    }
    let (mut i, mut negate) = (i, false);
    while i > 0 && w[i] == 'y' {
        negate = !negate;
        i -= 1;
    }
    is_vowel(w[i]) == negate
}

/// nltk's `_consonant_flags`, used by the measure and the vowel test.
fn consonant_flags(w: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(w.len());
    for (i, &c) in w.iter().enumerate() {
        let flag = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !flags[i - 1]
        } else {
            true
        };
        flags.push(flag);
    }
    flags
}

/// m in [C](VC)^m[V]: the number of vowel-to-consonant transitions.
fn measure(w: &[char]) -> usize {
    consonant_flags(w)
        .windows(2)
        .filter(|p| !p[0] && p[1])
        .count()
}

fn contains_vowel(w: &[char]) -> bool {
    consonant_flags(w).iter().any(|c| !c)
}

fn ends_double_consonant(w: &[char]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1)
}

fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3
        && is_consonant(w, n - 3)
        && !is_consonant(w, n - 2)
        && is_consonant(w, n - 1)
        && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1))
}

fn ends_with(w: &[char], suffix: &str) -> bool {
    let s: Vec<char> = suffix.chars().collect();
    w.len() >= s.len() && w[w.len() - s.len()..] == s[..]
}

fn strip(w: &[char], suffix: &str) -> Vec<char> {
    w[..w.len() - suffix.chars().count()].to_vec()
}

fn with(mut stem: Vec<char>, replacement: &str) -> Vec<char> {
    stem.extend(replacement.chars());
    stem
}

type Condition<'a> = &'a dyn Fn(&[char]) -> bool;

/// nltk's `_apply_rule_list`: the first rule whose suffix matches decides,
/// whether or not its condition holds.
fn apply_rules(w: &[char], rules: &[(&str, &str, Option<Condition<'_>>)]) -> Vec<char> {
    for (suffix, replacement, condition) in rules {
        if ends_with(w, suffix) {
            let stem = strip(w, suffix);
            return if condition.is_none_or(|c| c(&stem)) {
                with(stem, replacement)
            } else {
                w.to_vec()
            };
        }
    }
    w.to_vec()
}

fn positive(w: &[char]) -> bool {
    measure(w) > 0
}

fn step1a(w: &[char]) -> Vec<char> {
    if w.len() == 4 && ends_with(w, "ies") {
        return with(strip(w, "ies"), "ie");
    }
    apply_rules(
        w,
        &[
            ("sses", "ss", None),
            ("ies", "i", None),
            ("ss", "ss", None),
            ("s", "", None),
        ],
    )
}

fn step1b(w: &[char]) -> Vec<char> {
    if ends_with(w, "ied") {
        return with(strip(w, "ied"), if w.len() == 4 { "ie" } else { "i" });
    }
    if ends_with(w, "eed") {
        let stem = strip(w, "eed");
        return if measure(&stem) > 0 {
            with(stem, "ee")
        } else {
            w.to_vec()
        };
    }
    let Some(stem) = ["ed", "ing"]
        .iter()
        .filter(|s| ends_with(w, s))
        .map(|s| strip(w, s))
        .find(|stem| contains_vowel(stem))
    else {
        return w.to_vec();
    };
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if ends_with(&stem, suffix) {
            return with(strip(&stem, suffix), replacement);
        }
    }
    if ends_double_consonant(&stem) {
        let last = stem[stem.len() - 1];
        return if matches!(last, 'l' | 's' | 'z') {
            stem
        } else {
            stem[..stem.len() - 1].to_vec()
        };
    }
    if measure(&stem) == 1 && ends_cvc(&stem) {
        with(stem, "e")
    } else {
        stem
    }
}

fn step1c(w: &[char]) -> Vec<char> {
    let condition = |s: &[char]| s.len() > 1 && is_consonant(s, s.len() - 1);
    apply_rules(w, &[("y", "i", Some(&condition))])
}

fn step2(w: &[char]) -> Vec<char> {
    if ends_with(w, "alli") && positive(&strip(w, "alli")) {
        return step2(&with(strip(w, "alli"), "al"));
    }
    let p: Condition<'_> = &positive;
    // "logi" looks at the word minus "ogi", that is, the stem plus its "l".
    let logi = |_: &[char]| positive(&w[..w.len() - 3]);
    apply_rules(
        w,
        &[
            ("ational", "ate", Some(p)),
            ("tional", "tion", Some(p)),
            ("enci", "ence", Some(p)),
            ("anci", "ance", Some(p)),
            ("izer", "ize", Some(p)),
            ("bli", "ble", Some(p)),
            ("alli", "al", Some(p)),
            ("entli", "ent", Some(p)),
            ("eli", "e", Some(p)),
            ("ousli", "ous", Some(p)),
            ("ization", "ize", Some(p)),
            ("ation", "ate", Some(p)),
            ("ator", "ate", Some(p)),
            ("alism", "al", Some(p)),
            ("iveness", "ive", Some(p)),
            ("fulness", "ful", Some(p)),
            ("ousness", "ous", Some(p)),
            ("aliti", "al", Some(p)),
            ("iviti", "ive", Some(p)),
            ("biliti", "ble", Some(p)),
            ("fulli", "ful", Some(p)),
            ("logi", "log", Some(&logi)),
        ],
    )
}

fn step3(w: &[char]) -> Vec<char> {
    let p: Condition<'_> = &positive;
    apply_rules(
        w,
        &[
            ("icate", "ic", Some(p)),
            ("ative", "", Some(p)),
            ("alize", "al", Some(p)),
            ("iciti", "ic", Some(p)),
            ("ical", "ic", Some(p)),
            ("ful", "", Some(p)),
            ("ness", "", Some(p)),
        ],
    )
}

fn step4(w: &[char]) -> Vec<char> {
    let m1 = |s: &[char]| measure(s) > 1;
    let ion = |s: &[char]| measure(s) > 1 && matches!(s.last(), Some('s' | 't'));
    let rules: Vec<(&str, &str, Option<Condition<'_>>)> = [
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion",
        "ou", "ism", "ate", "iti", "ous", "ive", "ize",
    ]
    .into_iter()
    .map(|s| {
        (
            s,
            "",
            Some(if s == "ion" {
                &ion as Condition<'_>
            } else {
                &m1 as Condition<'_>
            }),
        )
    })
    .collect();
    apply_rules(w, &rules)
}

fn step5a(w: &[char]) -> Vec<char> {
    if ends_with(w, "e") {
        let stem = strip(w, "e");
        let m = measure(&stem);
        if m > 1 || (m == 1 && !ends_cvc(&stem)) {
            return stem;
        }
    }
    w.to_vec()
}

fn step5b(w: &[char]) -> Vec<char> {
    let condition = |_: &[char]| measure(&w[..w.len() - 1]) > 1;
    apply_rules(w, &[("ll", "l", Some(&condition))])
}

/// Stems one word (lowercased first), as nltk's `PorterStemmer().stem`.
pub fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    if let Some((_, s)) = IRREGULAR.iter().find(|(w, _)| *w == lower) {
        return (*s).to_owned();
    }
    if word.chars().count() <= 2 {
        return lower;
    }
    let mut w: Vec<char> = lower.chars().collect();
    for step in [step1a, step1b, step1c, step2, step3, step4, step5a, step5b] {
        w = step(&w);
    }
    w.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radiology_words_from_the_spec() {
        for (word, want) in [
            ("effusions", "effus"),
            ("noted", "note"),
            ("opacities", "opac"),
            ("consolidation", "consolid"),
            ("atelectasis", "atelectasi"),
            ("calcified", "calcifi"),
            ("degenerative", "degen"),
            ("hypodense", "hypodens"),
            ("weighted", "weight"),
            ("image", "imag"),
        ] {
            assert_eq!(stem(word), want, "{word}");
        }
    }
}
