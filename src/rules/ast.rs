//! The watch-rule query AST: what the parser ([`super::query`]) produces and
//! the engine compiles. Plain data; no I/O.
//!
//! Field scopes are pushed down to the leaves while parsing: `title:(a OR
//! b)` becomes `Or[Term(title, a), Term(title, b)]`; an inner scope wins
//! over an outer one. `None` means the default field, `text` (title +
//! summary + content).
//!
//! Spans are byte ranges into the query string, for error messages and
//! warnings; [`Node::without_spans`] clears them so two trees can be compared
//! structurally (the parser's round-trip property).

use std::fmt::{self, Write as _};
use std::ops::Range;

pub type Span = Range<usize>;

/// Where a leaf looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// title + summary + content (the default).
    Text,
    Title,
    Summary,
    Content,
    Link,
    Author,
    Category,
    /// The feed id.
    Feed,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::Text,
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Link,
        Field::Author,
        Field::Category,
        Field::Feed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Text => "text",
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
            Field::Link => "link",
            Field::Author => "author",
            Field::Category => "category",
            Field::Feed => "feed",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A single-word leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermKind {
    /// Folded and stemmed by script when matched: `Kursk`.
    Word(String),
    /// Trailing wildcard, at least 3 letters before `*`: `demin*` holds
    /// `"demin"`. Folded, not stemmed.
    Prefix(String),
    /// `=Word`: the exact surface form, case-sensitive, unstemmed.
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Term {
        field: Option<Field>,
        kind: TermKind,
        span: Span,
    },
    /// `"a b c"` (slop 0), `"a b"~N` (up to N other words in between, order
    /// kept), `="Exact Phrase"` (exact: case-sensitive, unstemmed).
    Phrase {
        field: Option<Field>,
        words: Vec<String>,
        slop: u32,
        exact: bool,
        span: Span,
    },
    /// `/pattern/` or `/pattern/i` (Rust `regex` syntax), on the field's
    /// raw (unfolded) text.
    Regex {
        field: Option<Field>,
        pattern: String,
        case_insensitive: bool,
        span: Span,
    },
    /// `@name`: resolved by the engine from the rule file's `[aliases]`;
    /// the field applies to every leaf of the alias.
    Alias {
        field: Option<Field>,
        name: String,
        span: Span,
    },
    /// `NOT x`, `-x`.
    Not(Box<Node>),
    /// Two or more children; adjacency is AND.
    And(Vec<Node>),
    /// Two or more children.
    Or(Vec<Node>),
    /// `a NEAR/N b` (either order) or `a ONEAR/N b` (a before b): some
    /// match of `left` within N words of some match of `right`. N <= 50.
    Near {
        left: Box<Node>,
        right: Box<Node>,
        distance: u32,
        ordered: bool,
    },
}

impl Node {
    /// The same tree with every span set to `0..0`.
    pub fn without_spans(&self) -> Node {
        match self {
            Node::Term { field, kind, .. } => Node::Term {
                field: *field,
                kind: kind.clone(),
                span: 0..0,
            },
            Node::Phrase {
                field,
                words,
                slop,
                exact,
                ..
            } => Node::Phrase {
                field: *field,
                words: words.clone(),
                slop: *slop,
                exact: *exact,
                span: 0..0,
            },
            Node::Regex {
                field,
                pattern,
                case_insensitive,
                ..
            } => Node::Regex {
                field: *field,
                pattern: pattern.clone(),
                case_insensitive: *case_insensitive,
                span: 0..0,
            },
            Node::Alias { field, name, .. } => Node::Alias {
                field: *field,
                name: name.clone(),
                span: 0..0,
            },
            Node::Not(n) => Node::Not(Box::new(n.without_spans())),
            Node::And(v) => Node::And(v.iter().map(Node::without_spans).collect()),
            Node::Or(v) => Node::Or(v.iter().map(Node::without_spans).collect()),
            Node::Near {
                left,
                right,
                distance,
                ordered,
            } => Node::Near {
                left: Box::new(left.without_spans()),
                right: Box::new(right.without_spans()),
                distance: *distance,
                ordered: *ordered,
            },
        }
    }
}

/// Operators: a bare word spelled like one is printed in quotes.
pub(crate) const KEYWORDS: [&str; 5] = ["AND", "OR", "NOT", "NEAR", "ONEAR"];

/// Whether `c` may appear in a bare (unquoted) word: letters, digits,
/// combining marks, and `'` `’` `-` `.` `_` (a leading `-` is NOT, though).
pub(crate) fn is_word_char(c: char) -> bool {
    is_core_char(c) || matches!(c, '\'' | '\u{2019}' | '-' | '.' | '_')
}

/// Letters, digits and combining marks: a bare word needs at least one.
pub(crate) fn is_core_char(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

/// Combining marks and joiners that `char::is_alphanumeric` misses (the
/// common blocks; most Indic vowel signs are already alphabetic).
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0483}'..='\u{0489}'
        | '\u{0591}'..='\u{05BD}'
        | '\u{05BF}'
        | '\u{05C1}'..='\u{05C2}'
        | '\u{05C4}'..='\u{05C5}'
        | '\u{05C7}'
        | '\u{0610}'..='\u{061A}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0670}'
        | '\u{06D6}'..='\u{06DC}'
        | '\u{06DF}'..='\u{06E4}'
        | '\u{06E7}'..='\u{06E8}'
        | '\u{06EA}'..='\u{06ED}'
        | '\u{0900}'..='\u{0903}'
        | '\u{093A}'..='\u{094F}'
        | '\u{0951}'..='\u{0957}'
        | '\u{0962}'..='\u{0963}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200C}'..='\u{200D}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{3099}'..='\u{309A}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// Whether `w` reads back as the same word after `=` (no quotes needed).
pub(crate) fn is_bare_exact(w: &str) -> bool {
    w.chars().all(is_word_char) && w.chars().any(is_core_char)
}

/// Whether `w` reads back as the same plain word without quotes: not an
/// operator and not starting with `-` (which would read as NOT).
pub(crate) fn is_bare_word(w: &str) -> bool {
    is_bare_exact(w) && !w.starts_with('-') && !KEYWORDS.contains(&w)
}

fn scope(f: &mut fmt::Formatter<'_>, field: &Option<Field>) -> fmt::Result {
    match field {
        Some(field) => write!(f, "{}:", field.name()),
        None => Ok(()),
    }
}

/// Writes `words` as a double-quoted phrase body, escaping `"` and `\`.
fn quoted(f: &mut fmt::Formatter<'_>, words: &[String]) -> fmt::Result {
    f.write_char('"')?;
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        for c in w.chars() {
            if c == '"' || c == '\\' {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
    }
    f.write_char('"')
}

/// Prints the query syntax back; parsing the output gives the same tree
/// (spans aside) for every tree the parser produces. Every compound is
/// parenthesised, so precedence never matters when reading it back. A word
/// that would not read back bare (an operator such as `AND`, a leading `-`,
/// characters outside `is_word_char`, all from a quoted one-word phrase)
/// is printed quoted, which the parser reads as the same single word.
///
/// Trees the parser never produces may not read back: a phrase of fewer
/// than two words, `And`/`Or` with fewer than two children or with a child
/// of the same kind (the parser flattens those), an empty regex.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Term { field, kind, .. } => {
                scope(f, field)?;
                match kind {
                    TermKind::Word(w) if is_bare_word(w) => f.write_str(w),
                    TermKind::Word(w) => quoted(f, std::slice::from_ref(w)),
                    TermKind::Prefix(p) => write!(f, "{p}*"),
                    TermKind::Exact(w) if is_bare_exact(w) => write!(f, "={w}"),
                    TermKind::Exact(w) => {
                        f.write_char('=')?;
                        quoted(f, std::slice::from_ref(w))
                    }
                }
            }
            Node::Phrase {
                field,
                words,
                slop,
                exact,
                ..
            } => {
                scope(f, field)?;
                if *exact {
                    f.write_char('=')?;
                }
                quoted(f, words)?;
                if *slop > 0 {
                    write!(f, "~{slop}")?;
                }
                Ok(())
            }
            Node::Regex {
                field,
                pattern,
                case_insensitive,
                ..
            } => {
                scope(f, field)?;
                f.write_char('/')?;
                for c in pattern.chars() {
                    if c == '/' {
                        f.write_char('\\')?;
                    }
                    f.write_char(c)?;
                }
                f.write_char('/')?;
                if *case_insensitive {
                    f.write_char('i')?;
                }
                Ok(())
            }
            Node::Alias { field, name, .. } => {
                scope(f, field)?;
                write!(f, "@{name}")
            }
            Node::Not(n) => write!(f, "NOT {n}"),
            Node::And(v) | Node::Or(v) => {
                let op = if matches!(self, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                f.write_char('(')?;
                for (i, n) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{n}")?;
                }
                f.write_char(')')
            }
            Node::Near {
                left,
                right,
                distance,
                ordered,
            } => {
                let op = if *ordered { "ONEAR" } else { "NEAR" };
                write!(f, "({left} {op}/{distance} {right})")
            }
        }
    }
}
