//! Sentence splitting as nltk's `sent_tokenize` does it (the Punkt
//! sentence tokenizer of Kiss & Strunk 2006, nltk 3.9's
//! `PunktSentenceTokenizer`), with a language's parameters as nltk's
//! `punkt_tab` data holds them (`abbrev_types.txt`, `collocations.tab`,
//! `sent_starters.txt`, `ortho_context.tab`): what AlignScore splits
//! captions with. Only the tokenizer runs here, not Punkt's training.
//!
//! The steps, as nltk runs them: candidate breaks are the `.`, `?` and `!`
//! followed by other punctuation or by whitespace and a token; each
//! candidate's context (the word before it, the mark, what follows) is
//! split into Punkt's word tokens and annotated (first pass: sentence-end
//! marks, ellipses, abbreviations by `abbrev_types`; second pass: known
//! collocations, the orthographic heuristic over `ortho_context`, frequent
//! sentence starters, initials and numbers); a break is kept when a token
//! follows an annotated sentence break; closing quotes and brackets after a
//! break are moved back into the sentence before it. Offsets are byte
//! offsets into the text, so sentences are slices of it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use fancy_regex::Regex;

use crate::tokenize::is_python_space;

/// `ortho_context` flags: the type seen lower-case at a sentence's start,
/// in its middle, or where unknown; upper-case likewise.
const ORTHO_BEG_UC: u32 = 1 << 1;
const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UNK_UC: u32 = 1 << 3;
const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_LC: u32 = 1 << 5;
const ORTHO_UNK_LC: u32 = 1 << 6;
const ORTHO_UC: u32 = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC;
const ORTHO_LC: u32 = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC;

/// A language's Punkt parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PunktParameters {
    /// Abbreviations, lower-case, without their final period.
    pub abbrev_types: HashSet<String>,
    /// Word pairs whose first word's period is not a sentence break.
    pub collocations: HashSet<(String, String)>,
    /// Words that often start a sentence.
    pub sent_starters: HashSet<String>,
    /// Per word type, where it was seen in which case (the `ORTHO_*` flags).
    pub ortho_context: HashMap<String, u32>,
}

/// Why Punkt's parameters could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PunktError {
    /// A parameter file cannot be read.
    #[error("{}: cannot read Punkt's parameters", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of a parameter file is not what nltk writes.
    #[error("{}, line {line}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// nltk's `rm_nl`: one final `\n` removed.
fn without_newline(line: &str) -> &str {
    line.strip_suffix('\n').unwrap_or(line)
}

/// The lines of a file as Python iterates over a text file opened with
/// universal newlines: `\r\n` and `\r` read as `\n`, each line keeping it.
fn python_lines(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split_inclusive('\n').map(str::to_owned).collect()
}

impl PunktParameters {
    /// The parameters in nltk's `punkt_tab` files from their texts (as
    /// `load_punkt_params` reads them): one type per line for abbreviations
    /// and sentence starters, `first<TAB>second` for collocations,
    /// `type<TAB>flags` for the orthographic context. `path` names the
    /// directory in errors.
    ///
    /// # Errors
    /// [`PunktError::Format`] for a collocation without two fields or an
    /// orthographic context that is not `type<TAB>integer`.
    pub fn from_texts(
        path: &Path,
        abbrev_types: &str,
        collocations: &str,
        sent_starters: &str,
        ortho_context: &str,
    ) -> Result<Self, PunktError> {
        let set = |text: &str| -> HashSet<String> {
            python_lines(text)
                .iter()
                .map(|l| without_newline(l).to_owned())
                .collect()
        };
        let bad = |file: &str, line: usize, reason: String| PunktError::Format {
            path: path.join(file),
            line,
            reason,
        };
        let mut pairs = HashSet::new();
        for (i, line) in python_lines(collocations).iter().enumerate() {
            // nltk keeps the tuple as split; a pair needs exactly two parts
            // to ever match.
            let fields: Vec<&str> = without_newline(line).split('\t').collect();
            match fields.as_slice() {
                [a, b] => {
                    pairs.insert(((*a).to_owned(), (*b).to_owned()));
                }
                _ => {
                    return Err(bad(
                        "collocations.tab",
                        i + 1,
                        format!("{} tab-separated fields, not 2", fields.len()),
                    ));
                }
            }
        }
        let mut ortho = HashMap::new();
        for (i, line) in python_lines(ortho_context).iter().enumerate() {
            let fields: Vec<&str> = without_newline(line).split('\t').collect();
            let [word, flags] = fields.as_slice() else {
                return Err(bad(
                    "ortho_context.tab",
                    i + 1,
                    format!("{} tab-separated fields, not 2", fields.len()),
                ));
            };
            let flags: u32 = flags.trim().parse().map_err(|_| {
                bad(
                    "ortho_context.tab",
                    i + 1,
                    format!("`{flags}` is not an integer"),
                )
            })?;
            ortho.insert((*word).to_owned(), flags);
        }
        Ok(Self {
            abbrev_types: set(abbrev_types),
            collocations: pairs,
            sent_starters: set(sent_starters),
            ortho_context: ortho,
        })
    }

    /// The parameters in a `punkt_tab/<language>` directory of nltk's data
    /// (`nltk.download("punkt_tab")` puts English's in
    /// `nltk_data/tokenizers/punkt_tab/english`).
    ///
    /// # Errors
    /// [`PunktError::Io`] when a file is missing or unreadable,
    /// [`PunktError::Format`] as [`Self::from_texts`].
    pub fn from_dir(dir: &Path) -> Result<Self, PunktError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PunktError::Io { path, source })
        };
        Self::from_texts(
            dir,
            &read("abbrev_types.txt")?,
            &read("collocations.tab")?,
            &read("sent_starters.txt")?,
            &read("ortho_context.tab")?,
        )
    }
}

/// A word token and its annotations.
#[derive(Debug)]
struct Token<'a> {
    tok: &'a str,
    /// Lower-case, a number as `##number##`.
    kind: String,
    period_final: bool,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

/// Punkt's regular expressions (nltk's `PunktLanguageVars` for English).
struct Patterns {
    word: Regex,
    period_context: Regex,
    boundary_realignment: Regex,
    numeric: Regex,
    initial: Regex,
    ellipsis: Regex,
}

/// `[)";}\]*:@'({[` and the sentence-end marks but the period.
const NON_WORD: &str = r#"(?:[)";}\]\*:@'\({\[\?!])"#;
/// Hyphens and ellipses.
const MULTI_CHAR: &str = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)";
/// What may not start a word.
const WORD_START: &str = r#"[^\("`{\[:;&\#\*@\)}\]\-,]"#;

impl Patterns {
    fn new() -> Self {
        let word = format!(
            r"({MULTI_CHAR}|(?={WORD_START})\S+?(?=\s|$|{NON_WORD}|{MULTI_CHAR}|,(?=$|\s|{NON_WORD}|{MULTI_CHAR}))|\S)"
        );
        let period_context = format!(r"[\.\?!](?=(?P<after_tok>{NON_WORD}|\s+(?P<next_tok>\S+)))");
        // The patterns are constants: a failure to compile is a bug here,
        // caught by every test that splits a sentence.
        let compile = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("Punkt pattern {p}: {e}"));
        Self {
            word: compile(&word),
            period_context: compile(&period_context),
            boundary_realignment: compile(r#"(?m)^["')\]}]+?(?:\s+|(?=--)|$)"#),
            numeric: compile(r"^-?[\.,]?\d[\d,\.-]*\.?$"),
            initial: compile(r"^[^\W\d]\.$"),
            ellipsis: compile(r"^\.\.+$"),
        }
    }
}

/// Whether a fancy-regex pattern matches (a pattern too costly to run
/// counts as no match; Punkt's never are on caption-length text).
fn matches(re: &Regex, text: &str) -> bool {
    re.is_match(text).unwrap_or(false)
}

/// A sentence splitter with one language's parameters.
pub struct Punkt {
    params: PunktParameters,
    patterns: Patterns,
}

impl std::fmt::Debug for Punkt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Punkt").finish_non_exhaustive()
    }
}

impl Punkt {
    /// A splitter with `params`.
    pub fn new(params: PunktParameters) -> Self {
        Self {
            params,
            patterns: Patterns::new(),
        }
    }

    /// The sentences of `text`, as `nltk.sent_tokenize(text)` returns them
    /// with these parameters: slices of the text, leading whitespace of a
    /// sentence dropped, none for a text of whitespace alone.
    ///
    /// ```
    /// use medcap_metrics::punkt::{Punkt, PunktParameters};
    ///
    /// let mut params = PunktParameters::default();
    /// params.abbrev_types.insert("fig".into());
    /// let punkt = Punkt::new(params);
    /// assert_eq!(
    ///     punkt.sentences("Mass in the lung (Fig. 2). No effusion."),
    ///     ["Mass in the lung (Fig. 2).", "No effusion."]
    /// );
    /// assert!(punkt.sentences("  ").is_empty());
    /// ```
    pub fn sentences<'a>(&self, text: &'a str) -> Vec<&'a str> {
        let slices = self.slices(text);
        self.realign(text, &slices)
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect()
    }

    /// nltk's `_slices_from_text`.
    fn slices(&self, text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut last_break = 0;
        for (end, next_tok, context) in self.end_contexts(text) {
            if self.contains_sentbreak(&context) {
                out.push((last_break, end));
                last_break = next_tok.unwrap_or(end);
            }
        }
        let trimmed = text.trim_end_matches(is_python_space).len();
        out.push((last_break, trimmed));
        out
    }

    /// nltk's `_match_potential_end_contexts`: each candidate break's end,
    /// the start of the token after it (when whitespace follows), and its
    /// context: the word before, the mark, and what follows it.
    fn end_contexts(&self, text: &str) -> Vec<(usize, Option<usize>, String)> {
        /// A candidate: the mark's span, the end of what follows, the next token's start.
        struct Candidate {
            start: usize,
            end: usize,
            after_end: usize,
            next: Option<usize>,
        }
        let context = |word: (usize, usize), c: &Candidate| {
            format!("{}{}", &text[word.0..word.1], &text[c.start..c.after_end])
        };
        let mut out = Vec::new();
        let mut previous: Option<Candidate> = None;
        let mut previous_slice = (0usize, 0usize);
        let mut at = 0;
        while at < text.len() {
            let Ok(Some(caps)) = self.patterns.period_context.captures_from_pos(text, at) else {
                break;
            };
            let Some(m) = caps.get(0) else { break };
            let candidate = Candidate {
                start: m.start(),
                end: m.end(),
                after_end: caps.name("after_tok").map_or(m.end(), |a| a.end()),
                next: caps.name("next_tok").map(|n| n.start()),
            };
            let before = &text[previous_slice.1..m.start()];
            // The last ASCII whitespace before the mark; one at index 0
            // counts as none, as in nltk.
            let last_space = before
                .char_indices()
                .rev()
                .find(|(_, c)| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
                .map_or(0, |(i, _)| i);
            let word_start = if last_space > 0 {
                last_space + previous_slice.1 + 1
            } else {
                previous_slice.0
            };
            if let Some(p) = &previous
                && previous_slice.1 <= word_start
            {
                out.push((p.end, p.next, context(previous_slice, p)));
            }
            at = m.end();
            previous = Some(candidate);
            previous_slice = (word_start, m.start());
        }
        if let Some(p) = &previous {
            out.push((p.end, p.next, context(previous_slice, p)));
        }
        out
    }

    /// nltk's `text_contains_sentbreak`: a token follows a sentence break.
    fn contains_sentbreak(&self, context: &str) -> bool {
        let tokens = self.annotated(context);
        let mut found = false;
        for token in &tokens {
            if found {
                return true;
            }
            if token.sentbreak {
                found = true;
            }
        }
        false
    }

    /// Punkt's word tokens of `text`, line by line, annotated by both passes.
    fn annotated<'a>(&self, text: &'a str) -> Vec<Token<'a>> {
        let mut tokens: Vec<Token<'a>> = Vec::new();
        for line in text.split('\n') {
            if line.trim_matches(is_python_space).is_empty() {
                continue;
            }
            let mut at = 0;
            while at < line.len() {
                let Ok(Some(caps)) = self.patterns.word.captures_from_pos(line, at) else {
                    break;
                };
                let Some(m) = caps.get(1) else { break };
                tokens.push(self.token(m.as_str()));
                at = if m.end() > m.start() {
                    m.end()
                } else {
                    m.end() + line[m.end()..].chars().next().map_or(1, char::len_utf8)
                };
            }
        }
        for token in &mut tokens {
            self.first_pass(token);
        }
        for i in 0..tokens.len().saturating_sub(1) {
            let (head, tail) = tokens.split_at_mut(i + 1);
            self.second_pass(&mut head[i], &tail[0]);
        }
        tokens
    }

    fn token<'a>(&self, tok: &'a str) -> Token<'a> {
        let lower = tok.to_lowercase();
        let kind = if matches(&self.patterns.numeric, &lower) {
            "##number##".to_owned()
        } else {
            lower
        };
        Token {
            tok,
            kind,
            period_final: tok.ends_with('.'),
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    fn first_pass(&self, t: &mut Token<'_>) {
        if matches!(t.tok, "." | "?" | "!") {
            t.sentbreak = true;
        } else if matches(&self.patterns.ellipsis, t.tok) {
            t.ellipsis = true;
        } else if t.period_final && !t.tok.ends_with("..") {
            let stem = t.tok[..t.tok.len() - 1].to_lowercase();
            let last = stem.rsplit('-').next().unwrap_or(&stem);
            if self.params.abbrev_types.contains(&stem) || self.params.abbrev_types.contains(last) {
                t.abbr = true;
            } else {
                t.sentbreak = true;
            }
        }
    }

    fn second_pass(&self, t: &mut Token<'_>, next: &Token<'_>) {
        if !t.period_final {
            return;
        }
        let kind = type_no_period(&t.kind);
        let next_kind = type_no_sentperiod(next);
        let initial = matches(&self.patterns.initial, t.tok);
        if self
            .params
            .collocations
            .contains(&(kind.to_owned(), next_kind.to_owned()))
        {
            t.sentbreak = false;
            t.abbr = true;
            return;
        }
        if (t.abbr || t.ellipsis) && !initial {
            if self.ortho_heuristic(next) == Some(true) {
                t.sentbreak = true;
                return;
            }
            if first_upper(next.tok) && self.params.sent_starters.contains(next_kind) {
                t.sentbreak = true;
                return;
            }
        }
        if initial || kind == "##number##" {
            let starter = self.ortho_heuristic(next);
            if starter == Some(false) {
                t.sentbreak = false;
                t.abbr = true;
                return;
            }
            if starter.is_none()
                && initial
                && first_upper(next.tok)
                && self.ortho(next_kind) & ORTHO_LC == 0
            {
                t.sentbreak = false;
                t.abbr = true;
            }
        }
    }

    fn ortho(&self, kind: &str) -> u32 {
        self.params.ortho_context.get(kind).copied().unwrap_or(0)
    }

    /// Whether `t` starts a sentence: `Some(true)`, `Some(false)`, or
    /// `None` for nltk's "unknown".
    fn ortho_heuristic(&self, t: &Token<'_>) -> Option<bool> {
        if matches!(t.tok, ";" | ":" | "," | "." | "!" | "?") {
            return Some(false);
        }
        let ortho = self.ortho(type_no_sentperiod(t));
        if first_upper(t.tok) && ortho & ORTHO_LC != 0 && ortho & ORTHO_MID_UC == 0 {
            return Some(true);
        }
        if first_lower(t.tok) && (ortho & ORTHO_UC != 0 || ortho & ORTHO_BEG_LC == 0) {
            return Some(false);
        }
        None
    }

    /// nltk's `_realign_boundaries`: closing punctuation after a break
    /// joins the sentence before it.
    fn realign(&self, text: &str, slices: &[(usize, usize)]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut realign = 0;
        for (i, &(start, stop)) in slices.iter().enumerate() {
            let first = (start + realign, stop);
            let Some(&(next_start, next_stop)) = slices.get(i + 1) else {
                if first.0 < first.1 {
                    out.push(first);
                }
                continue;
            };
            let second = &text[next_start..next_stop.max(next_start)];
            match self.patterns.boundary_realignment.find(second) {
                Ok(Some(m)) if m.start() == 0 => {
                    let kept = m.as_str().trim_end_matches(is_python_space).len();
                    out.push((first.0, next_start + kept));
                    realign = m.end();
                }
                _ => {
                    realign = 0;
                    if first.0 < first.1 {
                        out.push(first);
                    }
                }
            }
        }
        out
    }
}

fn type_no_period(kind: &str) -> &str {
    if kind.chars().count() > 1 {
        kind.strip_suffix('.').unwrap_or(kind)
    } else {
        kind
    }
}

fn type_no_sentperiod<'a>(t: &'a Token<'_>) -> &'a str {
    if t.sentbreak {
        type_no_period(&t.kind)
    } else {
        &t.kind
    }
}

fn first_upper(tok: &str) -> bool {
    tok.chars().next().is_some_and(char::is_uppercase)
}

fn first_lower(tok: &str) -> bool {
    tok.chars().next().is_some_and(char::is_lowercase)
}
