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
///
/// A number's letter is a panel (`2A`, `5b`), A to H only: `3T` after a
/// label is a field strength, not a figure.
const LABEL: &str = r"(?i)\b(?:supplementary\s+|suppl\.\s*)?fig(?:ure)?s?\b(?P<dash>-)?\.?\s*(?:S?\d+[A-Ha-h]?(?:\s*(?:,|&|and|to|-|–)\s*S?\d+[A-Ha-h]?)*)?";

/// Separators of a label's number list (`Figures 2, 3 and 5`).
const LIST_SEPARATOR: &str = r"(?i)\s*(?:,|&|\band\b|\bto\b|-|–)\s*";

/// A panel letter in brackets. `L` and `R` are excluded from the first
/// letter because `(L)` and `(R)` usually mark laterality.
const PANEL_IN_BRACKETS: &str =
    r"(?P<pre>^|[^\w(])\(\s*[A-KM-QS-Za-km-qs-z](?:\s*(?:,|&|and|to|-|–)\s*[A-Za-z])*\s*\)";

struct Cleaner {
    figure_reference: Rule,
    figure_label: Regex,
    list_separator: Regex,
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
    list_separator: regex(LIST_SEPARATOR),
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

/// Removes lone panel letters ("a) before and b) after"), except a letter
/// that closes a bracket opened before it ("(patient B)"), until the text
/// stops changing.
fn remove_bare_panels(pattern: &Regex, text: String) -> String {
    let mut text = text;
    for _ in 0..4 {
        let next = pattern
            .replace_all(&text, |caps: &Captures<'_>| {
                let start = caps.get(0).map_or(0, |m| m.start());
                let before = &text[..start];
                if before.matches('(').count() > before.matches(')').count() {
                    return caps[0].to_owned();
                }
                format!("{}{}", &caps["pre"], &caps["post"])
            })
            .into_owned();
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
    // Every pass again until nothing changes, so that cleaning a cleaned
    // caption changes nothing: a later pass can expose what an earlier one
    // removes ("Figure 6. ( ) C. Chest CT": the emptied brackets go in the
    // tidy pass, which leaves the panel letter "C." at the start). Each
    // round only removes text, so this ends; two rounds are the most the
    // fuzzing and the test cases have needed.
    let mut text = clean_once(raw);
    for _ in 0..8 {
        let again = clean_once(&text);
        if again == text {
            break;
        }
        text = again;
    }
    text
}

/// One round of every cleanup pass.
fn clean_once(raw: &str) -> String {
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
                let whole = &caps[0];
                if caps.name("dash").is_some() {
                    return whole.to_owned();
                }
                // A list that runs into a measurement ("figure 5, 1.5T
                // image", "Fig. 4, 3 mm"... ends with a number that goes on):
                // its last item is the measurement's, and stays.
                let end = caps.get(0).map_or(0, |m| m.end());
                let rest = &t[end..];
                let mut chars = rest.chars();
                let continues = match (chars.next(), chars.next()) {
                    (Some(ch), _) if ch.is_alphanumeric() => true,
                    (Some('.' | ','), Some(d)) if d.is_ascii_digit() => true,
                    _ => false,
                };
                if continues && whole.ends_with(|ch: char| ch.is_ascii_digit()) {
                    return match c.list_separator.find_iter(whole).last() {
                        Some(sep) => whole[sep.start()..].to_owned(),
                        None => whole.to_owned(),
                    };
                }
                String::new()
            })
            .into_owned();
        let t = c.pointer.apply(&t);
        let t = apply_to_fixpoint(&c.panel_in_brackets, t);
        let t = c.panel_word.apply(&t);
        let t = apply_to_fixpoint(&c.panel_at_sentence_start, t);
        let t = remove_bare_panels(&c.bare_panel.pattern, t);
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
        // To a fixpoint, so that cleaning a cleaned caption changes nothing:
        // a rule's match may consume the white space the next match needs
        // ("a ! ? b").
        for _ in 0..4 {
            let before = t.clone();
            for rule in &c.tidy {
                t = rule.apply(&t);
            }
            if t == before {
                break;
            }
        }
        t
    });
    text.trim().to_owned()
}

/// What cleanup removed from one caption, word by word.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupAudit {
    /// Words and numbers (runs of letters and digits) of the raw caption
    /// that the cleaned one lacks, one entry per lost occurrence.
    pub removed: Vec<String>,
    /// Those of them that no removal rule matched in the raw caption: not a
    /// figure label or its number, a panel marker, a pointer such as
    /// "(arrow)" or a figure cross-reference. Each is damage to look at.
    pub unexpected: Vec<String>,
}

/// Runs of letters and digits, with their byte spans.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, ch) in text.char_indices() {
        match (ch.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// Cleans `raw` ([`clean_caption`]) and says which words went, and which of
/// them went outside every removal rule's match.
///
/// ```
/// use medcap_dataset::clean::audit_caption;
///
/// let (cleaned, audit) = audit_caption("Figure 2. (A) Chest CT (arrow): 5 mm nodule.");
/// assert_eq!(cleaned, "Chest CT: 5 mm nodule.");
/// assert_eq!(audit.removed, ["Figure", "2", "A", "arrow"]);
/// assert!(audit.unexpected.is_empty());
/// ```
pub fn audit_caption(raw: &str) -> (String, CleanupAudit) {
    let cleaned = clean_caption(raw);
    let c = &*CLEANER;
    let text: String = raw
        .chars()
        .map(|ch| if ch.is_whitespace() { ' ' } else { ch })
        .collect();
    // Where a removal rule matches the raw caption.
    let mut intended: Vec<(usize, usize)> = Vec::new();
    for pattern in [
        &c.figure_reference.pattern,
        &c.figure_label,
        &c.pointer.pattern,
        &c.panel_in_brackets.pattern,
        &c.panel_word.pattern,
        &c.panel_at_sentence_start.pattern,
        &c.bare_panel.pattern,
    ] {
        intended.extend(pattern.find_iter(&text).map(|m| (m.start(), m.end())));
    }
    let mut kept: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (s, e) in words(&cleaned) {
        *kept.entry(&cleaned[s..e]).or_default() += 1;
    }
    let mut audit = CleanupAudit::default();
    // Raw occurrences, those inside a rule's match first: a kept copy of a
    // word is matched with an occurrence outside the rules when there is one.
    let mut occurrences: Vec<(&str, bool)> = words(&text)
        .into_iter()
        .map(|(s, e)| {
            let inside = intended.iter().any(|&(a, b)| a <= s && e <= b);
            (&text[s..e], inside)
        })
        .collect();
    occurrences.sort_by_key(|(_, inside)| !inside);
    let mut removed_flags: Vec<(&str, bool)> = Vec::new();
    // Keep counts against the outside occurrences first.
    for (word, inside) in occurrences.iter().rev() {
        match kept.get_mut(word) {
            Some(n) if *n > 0 => *n -= 1,
            _ => removed_flags.push((word, *inside)),
        }
    }
    // Report in the caption's order.
    for (s, e) in words(&text) {
        let word = &text[s..e];
        if let Some(i) = removed_flags.iter().position(|(w, _)| *w == word) {
            let (_, inside) = removed_flags.remove(i);
            audit.removed.push(word.to_owned());
            if !inside {
                audit.unexpected.push(word.to_owned());
            }
        }
    }
    (cleaned, audit)
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
    fn the_audit_tells_rule_removals_from_damage() {
        let (_, audit) = audit_caption("Fig. 3B: panels A and B show the lesion (arrowheads).");
        assert_eq!(audit.unexpected, Vec::<String>::new(), "{audit:?}");
        assert!(audit.removed.contains(&"3B".to_owned()), "{audit:?}");
        let (cleaned, audit) = audit_caption("Chest CT, no change");
        assert_eq!(cleaned, "Chest CT, no change");
        assert!(audit.removed.is_empty());
    }

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
