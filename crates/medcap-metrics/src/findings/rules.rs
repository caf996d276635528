//! Negation and uncertainty triggers (`data/findings/triggers.txt`) and the
//! decision for one mention: the nearest trigger within the mention's clause
//! and the trigger's window decides; weak triggers (`or`) only when no other
//! does.

use super::text::{Token, WordIndex, match_at, phrase_words};
use super::{Label, VocabularyError};

/// What a trigger does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TriggerKind {
    Negation,
    Uncertainty,
    /// Uncertainty that yields to any other trigger ("or").
    WeakUncertainty,
    /// Looks like a trigger, is none ("no change"): it only hides the words.
    Pseudo,
    /// Ends a clause ("but").
    Terminator,
}

/// Where a trigger stands relative to the mention it affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Position {
    Pre,
    Post,
    /// Terminators: either side.
    Any,
}

#[derive(Debug, Clone)]
struct Rule {
    kind: TriggerKind,
    position: Position,
    /// Most words between the trigger and the mention.
    window: usize,
    words: Vec<String>,
}

/// A trigger found in a sentence.
#[derive(Debug, Clone, Copy)]
pub(super) struct Trigger {
    kind: TriggerKind,
    position: Position,
    window: usize,
    start: usize,
    end: usize,
}

/// The compiled trigger rules.
#[derive(Debug, Clone, Default)]
pub(super) struct Rules {
    rules: Vec<Rule>,
    index: WordIndex,
}

const PRE_WINDOW: usize = 8;
const POST_WINDOW: usize = 6;

impl Rules {
    /// Parses `kind position[ weak][ window]: phrase` lines.
    pub(super) fn parse(text: &str) -> Result<Self, VocabularyError> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| VocabularyError::Syntax {
                file: "triggers.txt".into(),
                line: i + 1,
                reason: reason.into(),
            };
            let (head, phrase) = line
                .split_once(':')
                .ok_or_else(|| bad("expected `kind position: phrase`"))?;
            let mut head = head.split_whitespace();
            let kind = head.next().unwrap_or_default();
            let (mut kind, position) = match kind {
                "terminator" => (TriggerKind::Terminator, Position::Any),
                "negation" | "uncertainty" | "pseudo" => {
                    let position = match head.next() {
                        Some("pre") => Position::Pre,
                        Some("post") => Position::Post,
                        _ => return Err(bad("the position is `pre` or `post`")),
                    };
                    let kind = match kind {
                        "negation" => TriggerKind::Negation,
                        "uncertainty" => TriggerKind::Uncertainty,
                        _ => TriggerKind::Pseudo,
                    };
                    (kind, position)
                }
                _ => {
                    return Err(bad(
                        "the kind is `negation`, `uncertainty`, `pseudo` or `terminator`",
                    ));
                }
            };
            let mut window = match position {
                Position::Post => POST_WINDOW,
                _ => PRE_WINDOW,
            };
            for extra in head {
                match extra {
                    "weak" if kind == TriggerKind::Uncertainty => {
                        kind = TriggerKind::WeakUncertainty;
                    }
                    n => window = n.parse().map_err(|_| bad("expected `weak` or a window"))?,
                }
            }
            let words = phrase_words(phrase);
            if words.is_empty() {
                return Err(bad("empty phrase"));
            }
            rules.push(Rule {
                kind,
                position,
                window,
                words,
            });
        }
        let index = WordIndex::new(rules.iter().map(|r| r.words.as_slice()));
        Ok(Self { rules, index })
    }

    /// Every trigger of a sentence: left to right, the longest phrase at each
    /// position (all rules of that length: a phrase may be both a pre and a
    /// post trigger), then past it.
    pub(super) fn find(&self, tokens: &[Token]) -> Vec<Trigger> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < tokens.len() {
            let candidates: Vec<&Rule> = self
                .index
                .candidates(&tokens[at])
                .map(|i| &self.rules[i])
                .filter(|r| match_at(tokens, at, &r.words).is_some())
                .collect();
            let Some(len) = candidates.iter().map(|r| r.words.len()).max() else {
                at += 1;
                continue;
            };
            for r in candidates {
                if r.words.len() == len {
                    out.push(Trigger {
                        kind: r.kind,
                        position: r.position,
                        window: r.window,
                        start: at,
                        end: at + len,
                    });
                }
            }
            at += len;
        }
        // A semicolon ends a clause even where no rule names it.
        for (i, t) in tokens.iter().enumerate() {
            if *t == Token::Semicolon && !out.iter().any(|x| x.start == i) {
                out.push(Trigger {
                    kind: TriggerKind::Terminator,
                    position: Position::Any,
                    window: 0,
                    start: i,
                    end: i + 1,
                });
            }
        }
        out
    }

    /// The clause around the mention `start..end`: between the terminators
    /// before and after it.
    pub(super) fn clause(
        &self,
        tokens: &[Token],
        triggers: &[Trigger],
        start: usize,
        end: usize,
    ) -> (usize, usize) {
        let terminators = triggers
            .iter()
            .filter(|t| t.kind == TriggerKind::Terminator);
        let clause_start = terminators
            .clone()
            .filter(|t| t.end <= start)
            .map(|t| t.end)
            .max()
            .unwrap_or(0);
        let clause_end = terminators
            .filter(|t| t.start >= end)
            .map(|t| t.start)
            .min()
            .unwrap_or(tokens.len());
        (clause_start, clause_end)
    }

    /// The label of the mention `start..end` in the clause
    /// `clause_start..clause_end`.
    pub(super) fn decide(
        &self,
        tokens: &[Token],
        triggers: &[Trigger],
        (start, end): (usize, usize),
        (clause_start, clause_end): (usize, usize),
    ) -> Label {
        // Distance in words: commas do not count.
        let words_between = |a: usize, b: usize| {
            tokens[a..b]
                .iter()
                .filter(|t| !matches!(t, Token::Comma))
                .count()
        };
        // A trigger before the mention reaches past a comma only into a list
        // ("no effusion, pneumothorax or consolidation"): the clause must have
        // an "or"/"nor" after the trigger. Without one the comma starts
        // another finding ("no pneumothorax, small right effusion").
        let reaches = |t: &Trigger| {
            let crosses_comma = tokens[t.end..start]
                .iter()
                .any(|x| matches!(x, Token::Comma));
            !crosses_comma
                || tokens[t.end..clause_end]
                    .iter()
                    .any(|x| matches!(x.text(), "or" | "nor"))
        };
        let mut strong: Option<(usize, bool, TriggerKind)> = None;
        let mut weak = false;
        for t in triggers {
            let distance = match t.position {
                Position::Pre if t.end <= start && t.start >= clause_start && reaches(t) => {
                    words_between(t.end, start)
                }
                Position::Post if t.start >= end && t.end <= clause_end => {
                    words_between(end, t.start)
                }
                _ => continue,
            };
            if distance > t.window {
                continue;
            }
            match t.kind {
                TriggerKind::Negation | TriggerKind::Uncertainty => {
                    // Nearest wins; at equal distance the one before the mention.
                    let key = (distance, t.position == Position::Post, t.kind);
                    if strong.is_none_or(|s| (key.0, key.1) < (s.0, s.1)) {
                        strong = Some(key);
                    }
                }
                TriggerKind::WeakUncertainty => weak = true,
                TriggerKind::Pseudo | TriggerKind::Terminator => {}
            }
        }
        match strong {
            Some((_, _, TriggerKind::Negation)) => Label::Negative,
            Some(_) => Label::Uncertain,
            None if weak => Label::Uncertain,
            None => Label::Positive,
        }
    }
}
