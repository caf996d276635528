//! Caption cleanup: figure labels, panel markers and stray punctuation out,
//! clinical text untouched.
//!
//! MedICaT captions begin with the paper's label (`Figure 4.`, `Fig 3.`),
//! carry panel markers (`(A)`, `B,`, `A)`), pointers to the image (`(arrow)`)
//! and cross-references (`(see Fig. 2)`). None of that describes the image.
//! The rules are written to leave alone what a naive pattern would damage:
//! decimals (`3.5 cm`), hyphenated terms (`T2-weighted`, `COVID-19`,
//! `C-reactive`, `Figure-of-eight`), the article "A", laterality markers
//! `(R)`/`(L)`, plurals such as `lesion(s)`, and abbreviations in brackets.
//! Case is kept; lowercasing belongs to the model's own text preprocessing.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// One compiled pass: a pattern and what it becomes.
struct Rule {
    pattern: Regex,
    replacement: &'static str,
}

fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this file; a typo fails every test.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("caption cleanup pattern compiles")
}

fn rule(pattern: &str, replacement: &'static str) -> Rule {
    Rule {
        pattern: regex(pattern),
        replacement,
    }
}

/// A figure label, its number list, and an optional dash right after the
/// word (`Figure-of-eight` is not a label; the closure keeps it).
const LABEL: &str = r"(?i)\b(?:supplementary\s+|suppl\.\s*)?fig(?:ure)?s?\b(?P<dash>-)?\.?\s*(?:S?\d+[A-Za-z]?(?:\s*(?:,|&|and|to|-|–)\s*S?\d+[A-Za-z]?)*)?";

/// A panel letter in brackets. `L` and `R` are excluded from the first
/// letter because `(L)` and `(R)` usually mark laterality.
const PANEL_IN_BRACKETS: &str =
    r"(?P<pre>^|[^\w(])\(\s*[A-KM-QS-Za-km-qs-z](?:\s*(?:,|&|and|to|-|–)\s*[A-Za-z])*\s*\)";

struct Cleaner {
    figure_reference: Rule,
    figure_label: Regex,
    pointer: Rule,
    panel_in_brackets: Rule,
    panel_word: Rule,
    panel_at_sentence_start: Rule,
    bare_panel: Rule,
    separator_run: Regex,
    tidy: Vec<Rule>,
}

static CLEANER: LazyLock<Cleaner> = LazyLock::new(|| Cleaner {
    // "(Fig. 2)", "(see Figure 1B)", "(Figures 2 and 3, arrow)": the whole bracket.
    figure_reference: rule(
        r"(?i)\(\s*(?:see\s+(?:also\s+)?|cf\.?\s*)?(?:supplementary\s+)?fig(?:ure)?s?\b[^()]*\)",
        "",
    ),
    figure_label: regex(LABEL),
    pointer: rule(
        r"(?i)\(\s*(?:(?:white|black|red|yellow|blue|green|thin|thick|open|solid|closed|curved|straight|small|large|long|short|dashed|dotted)\s+)*(?:arrows?|arrowheads?|asterisks?|stars?|\*+|circles?)\s*\)",
        "",
    ),
    panel_in_brackets: rule(PANEL_IN_BRACKETS, "$pre"),
    // "Panel A:", "panels B and C,".
    panel_word: rule(
        r"(?i)\bpanels?\s+[A-H](?:\s*(?:,|&|and|to|-|–)\s*[A-H])*\b\s*[:.,]?",
        "",
    ),
    // "A. Axial CT", "B, Coronal", "C) Lateral" at the start of the caption or
    // of a sentence, only before a capitalised word or a digit, so that the
    // article in "A 45-year-old" and "vitamin B. Then" survive.
    panel_at_sentence_start: rule(
        r"(?P<pre>^|[.;]\s)\s*[A-H][.,:)]\s+(?P<next>[A-Z0-9])",
        "$pre$next",
    ),
    // "chest X-ray a) before and b) after": a lone letter with a closing bracket.
    bare_panel: rule(r"(?P<pre>^|\s)[A-Ha-h]\)(?P<post>\s|$)", "$pre$post"),
    // Repeated separators: ",," "; ;" ", ;" (the strongest one stays).
    separator_run: regex(r"[,;:](?:\s*[,;:])+"),
    tidy: vec![
        // Brackets emptied by the passes above.
        rule(r"\(\s*[,;:.]*\s*\)|\[\s*[,;:.]*\s*\]", " "),
        rule(r"\(\s+", "("),
        rule(r"\s+\)", ")"),
        rule(r"[,;:]\s*\.", "."),
        rule(r"\.\s*[,;:]", "."),
        // Space before punctuation, but not before a decimal such as ".5".
        rule(r"\s+([,;:.!?])(\s|$)", "$1$2"),
        // ". ." and ".." become one period; a literal "..." is kept.
        rule(r"\.(?:\s*\.)+", "."),
        // Leading and trailing separators left by a removed label.
        rule(r"^[\s,;:.|/\-–—)\]]+", ""),
        rule(r"[\s,;:|/\-–—(]+$", ""),
        rule(r"\s{2,}", " "),
    ],
});

impl Rule {
    fn apply(&self, text: &str) -> String {
        self.pattern
            .replace_all(text, self.replacement)
            .into_owned()
    }
}

/// Applies a rule until the text stops changing: adjacent matches such as
/// "(A)(B)" share the character between them.
fn apply_to_fixpoint(rule: &Rule, text: String) -> String {
    let mut text = text;
    for _ in 0..4 {
        let next = rule.apply(&text);
        if next == text {
            break;
        }
        text = next;
    }
    text
}

/// Cleans one caption for training: see the module documentation for what
/// goes and what stays.
///
/// ```
/// use medcap_dataset::clean::clean_caption;
///
/// assert_eq!(
///     clean_caption("Fig. 2. (A) Chest X-ray showing a 3.5 cm mass (arrow) in the right upper lobe ."),
///     "Chest X-ray showing a 3.5 cm mass in the right upper lobe."
/// );
/// ```
pub fn clean_caption(raw: &str) -> String {
    let c = &*CLEANER;
    let mut text: String = raw
        .chars()
        .map(|ch| if ch.is_whitespace() { ' ' } else { ch })
        .collect();
    text = ellipsis_safe(&text, |t| {
        let t = c.figure_reference.apply(t);
        let t = c
            .figure_label
            .replace_all(&t, |caps: &Captures<'_>| {
                if caps.name("dash").is_some() {
                    caps[0].to_owned()
                } else {
                    String::new()
                }
            })
            .into_owned();
        let t = c.pointer.apply(&t);
        let t = apply_to_fixpoint(&c.panel_in_brackets, t);
        let t = c.panel_word.apply(&t);
        let t = apply_to_fixpoint(&c.panel_at_sentence_start, t);
        let t = apply_to_fixpoint(&c.bare_panel, t);
        let mut t = c
            .separator_run
            .replace_all(&t, |caps: &Captures<'_>| {
                let run = &caps[0];
                [";", ":", ","]
                    .into_iter()
                    .find(|s| run.contains(s))
                    .unwrap_or(",")
                    .to_owned()
            })
            .into_owned();
        for rule in &c.tidy {
            t = rule.apply(&t);
        }
        t
    });
    text.trim().to_owned()
}

/// Runs `f` with literal ellipses hidden from the period rules, behind a
/// private-use character that captions do not contain.
fn ellipsis_safe(text: &str, f: impl Fn(&str) -> String) -> String {
    const HIDDEN: &str = "\u{E000}";
    f(&text.replace("...", HIDDEN)).replace(HIDDEN, "...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis_survives() {
        assert_eq!(
            clean_caption("Chest CT ... then MRI"),
            "Chest CT ... then MRI"
        );
    }

    #[test]
    fn empty_and_label_only_captions_become_empty() {
        assert_eq!(clean_caption(""), "");
        assert_eq!(clean_caption("Figure 3."), "");
        assert_eq!(clean_caption("  (A)  "), "");
    }
}
