//! From rule specs to the engine's expressions: parsing, alias expansion,
//! validation, term normalisation and warnings.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use regex::{Regex, RegexBuilder};

use super::ast::{Field, Node, Span, TermKind};
use super::document::{class_of, split_of, split_words};
use crate::text::{fold, stem};

/// The largest NEAR distance and phrase slop.
pub const MAX_DISTANCE: u32 = 50;
/// Compiled size limit of one regex (bytes).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One watch rule as written in config: either `query`, or the shorthands
/// `any` (OR), `all` (AND) and `none` (NOT (a OR b ...)). Each shorthand
/// element is a query snippet; an element made only of words and spaces is
/// a phrase (`North Korea` = `"North Korea"`). `feeds` are globs over feed
/// ids (`*`, `?`; case-sensitive), empty meaning every feed.
#[derive(Debug, Clone, Default)]
pub struct RuleSpec {
    pub id: String,
    pub query: Option<String>,
    pub any: Vec<String>,
    pub all: Vec<String>,
    pub none: Vec<String>,
    pub feeds: Vec<String>,
}

/// `[aliases]` of the rule files: name -> elements, each element a query
/// snippet ('Kursk', '"Kursk oblast"', 'demin*', 'Курск').
pub type Aliases = BTreeMap<String, Vec<String>>;

/// Where a problem sits: rule index (`None` for an alias), the list
/// (`"query" | "any" | "all" | "none" | "feeds" | "aliases"`), the alias name
/// if `list == "aliases"`, the element index within a list (`None` = the
/// whole rule/alias/query string), and a byte offset inside that string if
/// known.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleLocation {
    pub rule: Option<usize>,
    pub list: &'static str,
    pub alias: Option<String>,
    pub index: Option<usize>,
    pub offset: Option<usize>,
}

impl fmt::Display for RuleLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.rule, &self.alias) {
            (Some(r), _) => write!(f, "rule #{r} {}", self.list)?,
            (None, Some(a)) => write!(f, "alias @{a}")?,
            (None, None) => write!(f, "{}", self.list)?,
        }
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        if let Some(o) = self.offset {
            write!(f, " at byte {o}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub at: RuleLocation,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for RuleError {}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleWarning {
    pub at: RuleLocation,
    pub message: String,
}

impl fmt::Display for RuleWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// A compiled rule body over leaf ids.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    Leaf(u32),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Near {
        left: Box<Expr>,
        right: Box<Expr>,
        distance: u32,
        ordered: bool,
    },
}

/// One leaf of one rule, normalised for matching.
#[derive(Debug, Clone)]
pub(super) struct Leaf {
    pub rule: u32,
    pub field: Field,
    /// As written in the query.
    pub term: String,
    pub kind: LeafKind,
}

#[derive(Debug, Clone)]
pub(super) enum LeafKind {
    /// Folded and stemmed.
    Word(String),
    /// Surface form.
    Exact(String),
    /// Folded, hyphens removed.
    Prefix(String),
    /// Two or more stems (or surfaces when `exact`).
    Phrase {
        words: Vec<String>,
        slop: u32,
        exact: bool,
    },
    Regex(Regex),
}

impl LeafKind {
    /// What the leaf looks for, whatever its field: equal for leaves that
    /// find the same occurrences in one token stream; `None` for regexes.
    pub(super) fn identity(&self) -> Option<(u8, String, u32)> {
        Some(match self {
            LeafKind::Word(w) => (0, w.clone(), 0),
            LeafKind::Exact(w) => (1, w.clone(), 0),
            LeafKind::Prefix(p) => (2, p.clone(), 0),
            LeafKind::Phrase { words, slop, exact } => {
                (3 + u8::from(*exact), words.join(" "), *slop)
            }
            LeafKind::Regex(_) => return None,
        })
    }

    /// Identity for contradiction checks.
    fn signature(&self, field: Field) -> Option<(Field, u8, String, u32)> {
        self.identity().map(|(k, s, n)| (field, k, s, n))
    }
}

/// Where lowering is: a rule list element or an alias element.
#[derive(Debug, Clone)]
pub(super) struct Loc {
    pub rule: Option<usize>,
    pub list: &'static str,
    pub alias: Option<String>,
    pub index: Option<usize>,
}

impl Loc {
    pub fn rule(rule: usize, list: &'static str, index: Option<usize>) -> Loc {
        Loc {
            rule: Some(rule),
            list,
            alias: None,
            index,
        }
    }

    pub fn at(&self, offset: Option<usize>) -> RuleLocation {
        RuleLocation {
            rule: self.rule,
            list: self.list,
            alias: self.alias.clone(),
            index: self.index,
            offset,
        }
    }
}

/// Alias elements parsed once: `(source, tree)`; `None` when the element
/// does not parse (reported once, at the alias).
pub(super) type Parsed = BTreeMap<String, Vec<(String, Option<Node>)>>;

/// Parses a shorthand or alias element: several plain words are a phrase,
/// anything else is a query.
/// Every error in the element is returned, in order.
pub(super) fn parse_element(s: &str) -> Result<Node, Vec<super::query::QueryError>> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let plain = parts.len() > 1
        && parts.iter().all(|p| {
            !matches!(*p, "AND" | "OR" | "NOT")
                && !p.starts_with("NEAR/")
                && !p.starts_with("ONEAR/")
                && !p.starts_with(['-', '='])
                && !p.contains(['(', ')', '"', '/', ':', '*', '~', '@', '\\'])
        });
    if plain {
        let start = s.len() - s.trim_start().len();
        return Ok(Node::Phrase {
            field: None,
            words: parts.iter().map(|p| p.to_string()).collect(),
            slop: 0,
            exact: false,
            span: start..s.trim_end().len(),
        });
    }
    super::query::parse_query_all_errors(s)
}

/// Parses every alias element and reports bad names and parse errors.
pub(super) fn parse_aliases(aliases: &Aliases, errors: &mut Vec<RuleError>) -> Parsed {
    let mut out = Parsed::new();
    for (name, elements) in aliases {
        let loc = |index, offset| RuleLocation {
            rule: None,
            list: "aliases",
            alias: Some(name.clone()),
            index,
            offset,
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            errors.push(RuleError {
                at: loc(None, None),
                message: format!("alias name '{name}' may only hold a-z, 0-9, '_' and '-'"),
            });
        }
        if elements.is_empty() {
            errors.push(RuleError {
                at: loc(None, None),
                message: "alias has no elements".into(),
            });
        }
        let parsed = elements
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if e.trim().is_empty() {
                    errors.push(RuleError {
                        at: loc(Some(i), None),
                        message: "empty alias element".into(),
                    });
                    return (e.clone(), None);
                }
                match parse_element(e) {
                    Ok(n) => (e.clone(), Some(n)),
                    Err(errs) => {
                        errors.extend(errs.into_iter().map(|err| RuleError {
                            at: loc(Some(i), Some(err.offset)),
                            message: err.message,
                        }));
                        (e.clone(), None)
                    }
                }
            })
            .collect();
        out.insert(name.clone(), parsed);
    }
    out
}

/// Turns parse trees into [`Expr`]s, appending leaves.
pub(super) struct Lowerer<'a> {
    aliases: &'a Parsed,
    pub errors: Vec<RuleError>,
    pub leaves: Vec<Leaf>,
    pub rule: u32,
    stack: Vec<String>,
    cycles: HashSet<Vec<String>>,
}

impl<'a> Lowerer<'a> {
    pub fn new(aliases: &'a Parsed) -> Self {
        Lowerer {
            aliases,
            errors: Vec::new(),
            leaves: Vec::new(),
            rule: 0,
            stack: Vec::new(),
            cycles: HashSet::new(),
        }
    }

    fn err(&mut self, loc: &Loc, offset: Option<usize>, message: String) {
        let e = RuleError {
            at: loc.at(offset),
            message,
        };
        // Problems inside an alias are reported once, not per use.
        if loc.alias.is_none() || !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn leaf(&mut self, field: Field, term: &str, kind: LeafKind) -> Expr {
        self.leaves.push(Leaf {
            rule: self.rule,
            field,
            term: term.to_string(),
            kind,
        });
        Expr::Leaf((self.leaves.len() - 1) as u32)
    }

    /// Lowers every alias once so that its problems are reported even when
    /// no rule uses it; the leaves are thrown away.
    pub fn check_aliases(&mut self) {
        let names: Vec<String> = self.aliases.keys().cloned().collect();
        for name in names {
            let mark = self.leaves.len();
            let loc = Loc {
                rule: None,
                list: "aliases",
                alias: Some(name.clone()),
                index: None,
            };
            let _ = self.expand(&name, None, &loc, None);
            self.leaves.truncate(mark);
        }
    }

    /// `@name` as the OR of its elements, `field` applied to leaves without
    /// their own.
    fn expand(
        &mut self,
        name: &str,
        span: Option<&Span>,
        loc: &Loc,
        field: Option<Field>,
    ) -> Option<Expr> {
        let aliases = self.aliases;
        let Some(elements) = aliases.get(name) else {
            self.err(loc, span.map(|s| s.start), format!("unknown alias @{name}"));
            return None;
        };
        if let Some(k) = self.stack.iter().position(|n| n == name) {
            let mut cycle: Vec<String> = self.stack[k..].to_vec();
            // Report each cycle once, whichever alias it was entered from.
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, n)| n.as_str())
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(min);
            if self.cycles.insert(cycle.clone()) {
                let path: Vec<String> = cycle
                    .iter()
                    .chain(cycle.first())
                    .map(|n| format!("@{n}"))
                    .collect();
                self.errors.push(RuleError {
                    at: loc.at(span.map(|s| s.start)),
                    message: format!("alias cycle: {}", path.join(" -> ")),
                });
            }
            return None;
        }
        self.stack.push(name.to_string());
        let mut out = Vec::new();
        for (i, (src, node)) in elements.iter().enumerate() {
            let Some(node) = node else { continue };
            let inner = Loc {
                rule: None,
                list: "aliases",
                alias: Some(name.to_string()),
                index: Some(i),
            };
            if let Some(e) = self.lower(node, src, &inner, field) {
                out.push(e);
            }
        }
        self.stack.pop();
        match out.len() {
            0 => None,
            1 => out.pop(),
            _ => Some(Expr::Or(out)),
        }
    }

    /// Lowers `node` (spans into `src`); `over` is the field of an enclosing
    /// alias reference, applied where the leaf has none.
    pub fn lower(
        &mut self,
        node: &Node,
        src: &str,
        loc: &Loc,
        over: Option<Field>,
    ) -> Option<Expr> {
        let term_of = |span: &Span, fallback: &Node| -> String {
            src.get(span.clone())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map_or_else(|| fallback.to_string(), str::to_string)
        };
        match node {
            Node::Term { field, kind, span } => {
                let field = field.or(over).unwrap_or(Field::Text);
                let term = term_of(span, node);
                let off = Some(span.start);
                let split = split_of(class_of(field));
                match kind {
                    TermKind::Word(w) => {
                        let words: Vec<String> = split_words(w, split)
                            .into_iter()
                            .map(|(_, t)| fold(t))
                            .filter(|f| !f.is_empty())
                            .collect();
                        match words.len() {
                            0 => {
                                self.err(loc, off, format!("term '{w}' has no words"));
                                None
                            }
                            1 => Some(self.leaf(field, &term, LeafKind::Word(stem(&words[0])))),
                            _ => {
                                // `Jong-un`: the words as a phrase, or joined.
                                let joined: String = words.concat();
                                let stems = words.iter().map(|w| stem(w)).collect();
                                let a = self.leaf(
                                    field,
                                    &term,
                                    LeafKind::Phrase {
                                        words: stems,
                                        slop: 0,
                                        exact: false,
                                    },
                                );
                                let b = self.leaf(field, &term, LeafKind::Word(stem(&joined)));
                                Some(Expr::Or(vec![a, b]))
                            }
                        }
                    }
                    TermKind::Prefix(p) => {
                        let folded: String =
                            fold(p).chars().filter(|c| c.is_alphanumeric()).collect();
                        if folded.chars().count() < 3 {
                            self.err(
                                loc,
                                off,
                                format!("prefix '{p}*' needs at least 3 letters before *"),
                            );
                            return None;
                        }
                        Some(self.leaf(field, &term, LeafKind::Prefix(folded)))
                    }
                    TermKind::Exact(w) => {
                        let words: Vec<String> = split_words(w, split)
                            .into_iter()
                            .map(|(_, t)| t.to_string())
                            .collect();
                        match words.len() {
                            0 => {
                                self.err(loc, off, format!("term '={w}' has no words"));
                                None
                            }
                            1 => Some(self.leaf(field, &term, LeafKind::Exact(words[0].clone()))),
                            _ => Some(self.leaf(
                                field,
                                &term,
                                LeafKind::Phrase {
                                    words,
                                    slop: 0,
                                    exact: true,
                                },
                            )),
                        }
                    }
                }
            }
            Node::Phrase {
                field,
                words,
                slop,
                exact,
                span,
            } => {
                let field = field.or(over).unwrap_or(Field::Text);
                let term = term_of(span, node);
                let off = Some(span.start);
                if *slop > MAX_DISTANCE {
                    self.err(
                        loc,
                        off,
                        format!("phrase slop ~{slop} is over the maximum of {MAX_DISTANCE}"),
                    );
                    return None;
                }
                let text = words.join(" ");
                let toks: Vec<String> = split_words(&text, split_of(class_of(field)))
                    .into_iter()
                    .map(|(_, t)| if *exact { t.to_string() } else { fold(t) })
                    .filter(|t| !t.is_empty())
                    .collect();
                let kind = match (toks.len(), exact) {
                    (0, _) => {
                        self.err(loc, off, format!("phrase {term} has no words"));
                        return None;
                    }
                    (1, true) => LeafKind::Exact(toks[0].clone()),
                    (1, false) => LeafKind::Word(stem(&toks[0])),
                    (_, true) => LeafKind::Phrase {
                        words: toks,
                        slop: *slop,
                        exact: true,
                    },
                    (_, false) => LeafKind::Phrase {
                        words: toks.iter().map(|t| stem(t)).collect(),
                        slop: *slop,
                        exact: false,
                    },
                };
                Some(self.leaf(field, &term, kind))
            }
            Node::Regex {
                field,
                pattern,
                case_insensitive,
                span,
            } => {
                let field = field.or(over).unwrap_or(Field::Text);
                let term = term_of(span, node);
                match RegexBuilder::new(pattern)
                    .case_insensitive(*case_insensitive)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                {
                    Ok(re) => Some(self.leaf(field, &term, LeafKind::Regex(re))),
                    Err(e) => {
                        let msg = match e {
                            regex::Error::CompiledTooBig(n) => {
                                format!("regex {term} is too big (compiled size over {n} bytes)")
                            }
                            e => format!("invalid regex {term}: {}", one_line(&e.to_string())),
                        };
                        self.err(loc, Some(span.start), msg);
                        None
                    }
                }
            }
            Node::Alias { field, name, span } => {
                let f = field.or(over);
                self.expand(name, Some(span), loc, f)
            }
            Node::Not(n) => Some(Expr::Not(Box::new(self.lower(n, src, loc, over)?))),
            Node::And(v) | Node::Or(v) => {
                let mut out = Vec::with_capacity(v.len());
                let mut failed = false;
                for n in v {
                    match self.lower(n, src, loc, over) {
                        Some(e) => out.push(e),
                        None => failed = true,
                    }
                }
                if failed {
                    return None;
                }
                Some(if matches!(node, Node::And(_)) {
                    Expr::And(out)
                } else {
                    Expr::Or(out)
                })
            }
            Node::Near {
                left,
                right,
                distance,
                ordered,
            } => {
                if *distance > MAX_DISTANCE {
                    let off = first_span(right).map(|s| s.start);
                    self.err(
                        loc,
                        off,
                        format!("NEAR/{distance} is over the maximum distance of {MAX_DISTANCE}"),
                    );
                    return None;
                }
                let l = self.lower(left, src, loc, over);
                let r = self.lower(right, src, loc, over);
                Some(Expr::Near {
                    left: Box::new(l?),
                    right: Box::new(r?),
                    distance: *distance,
                    ordered: *ordered,
                })
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn first_span(n: &Node) -> Option<&Span> {
    match n {
        Node::Term { span, .. }
        | Node::Phrase { span, .. }
        | Node::Regex { span, .. }
        | Node::Alias { span, .. } => Some(span),
        Node::Not(n) => first_span(n),
        Node::And(v) | Node::Or(v) => v.iter().find_map(first_span),
        Node::Near { left, .. } => first_span(left),
    }
}

/// Kleene truth value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tri {
    False,
    Unknown,
    True,
}

/// The rule's value on an item where no indexed leaf occurs; regex leaves
/// are `regex` (unknown: the index cannot tell).
pub(super) fn value_without_hits(e: &Expr, leaves: &[Leaf], regex: Tri) -> Tri {
    match e {
        Expr::Leaf(i) => match leaves.get(*i as usize).map(|l| &l.kind) {
            Some(LeafKind::Regex(_)) => regex,
            _ => Tri::False,
        },
        Expr::Not(n) => match value_without_hits(n, leaves, regex) {
            Tri::False => Tri::True,
            Tri::True => Tri::False,
            Tri::Unknown => Tri::Unknown,
        },
        Expr::And(v) => {
            v.iter()
                .map(|n| value_without_hits(n, leaves, regex))
                .fold(Tri::True, |a, b| match (a, b) {
                    (Tri::False, _) | (_, Tri::False) => Tri::False,
                    (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
                    _ => Tri::True,
                })
        }
        Expr::Or(v) => {
            v.iter()
                .map(|n| value_without_hits(n, leaves, regex))
                .fold(Tri::False, |a, b| match (a, b) {
                    (Tri::True, _) | (_, Tri::True) => Tri::True,
                    (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
                    _ => Tri::False,
                })
        }
        // NEAR needs positions from both sides.
        Expr::Near { left, right, .. } => {
            let (l, r) = (
                value_without_hits(left, leaves, regex),
                value_without_hits(right, leaves, regex),
            );
            if l == Tri::False || r == Tri::False {
                Tri::False
            } else {
                Tri::Unknown
            }
        }
    }
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "he",
    "her", "his", "i", "in", "is", "it", "its", "new", "not", "of", "on", "or", "said", "says",
    "she", "that", "the", "their", "they", "this", "to", "was", "we", "were", "will", "with",
    "you", "а", "в", "во", "вы", "да", "для", "его", "ее", "же", "за", "и", "из", "к", "как", "мы",
    "на", "не", "но", "о", "он", "она", "они", "от", "по", "с", "со", "так", "то", "ты", "у",
    "что", "это", "я",
];

/// Warnings for one rule; `loc` names the rule.
pub(super) fn warnings(e: &Expr, leaves: &[Leaf], loc: &Loc) -> Vec<RuleWarning> {
    let mut out = Vec::new();
    let warn = |out: &mut Vec<RuleWarning>, message: String| {
        out.push(RuleWarning {
            at: loc.at(None),
            message,
        })
    };
    let mut contradictions = Vec::new();
    find_contradictions(e, leaves, &mut contradictions);
    for term in contradictions {
        warn(
            &mut out,
            format!("rule can never match: {term} is both required and excluded"),
        );
    }
    if value_without_hits(e, leaves, Tri::False) == Tri::True {
        warn(
            &mut out,
            "purely negative rule: it matches every item that lacks the excluded terms".into(),
        );
    }
    let mut alone = Vec::new();
    sufficient(e, &mut alone);
    for i in alone {
        let Some(leaf) = leaves.get(i as usize) else {
            continue;
        };
        let broad = match &leaf.kind {
            LeafKind::Word(w) => STOP_WORDS.iter().any(|s| stem(s) == *w),
            LeafKind::Prefix(p) => p.chars().count() <= 3,
            _ => false,
        };
        if broad {
            warn(
                &mut out,
                format!(
                    "very broad rule: {} alone makes it match (a stop word or a very short prefix)",
                    leaf.term
                ),
            );
        }
    }
    out
}

/// Leaves that make the rule match on their own (through ORs only).
fn sufficient(e: &Expr, out: &mut Vec<u32>) {
    match e {
        Expr::Leaf(i) => out.push(*i),
        Expr::Or(v) => v.iter().for_each(|n| sufficient(n, out)),
        Expr::And(v) if v.len() == 1 => sufficient(&v[0], out),
        _ => {}
    }
}

/// Leaves reachable from `e` through ORs.
fn disjuncts(e: &Expr, out: &mut Vec<u32>) {
    match e {
        Expr::Leaf(i) => out.push(*i),
        Expr::Or(v) => v.iter().for_each(|n| disjuncts(n, out)),
        _ => {}
    }
}

/// In every AND: a required leaf whose term is also excluded.
fn find_contradictions(e: &Expr, leaves: &[Leaf], out: &mut Vec<String>) {
    match e {
        Expr::And(v) => {
            let mut flat = Vec::new();
            flatten_and(v, &mut flat);
            let sig = |i: u32| {
                leaves
                    .get(i as usize)
                    .and_then(|l| l.kind.signature(l.field).map(|s| (s, l.term.clone())))
            };
            let required: Vec<_> = flat
                .iter()
                .filter_map(|n| match n {
                    Expr::Leaf(i) => sig(*i),
                    _ => None,
                })
                .collect();
            for n in &flat {
                if let Expr::Not(inner) = n {
                    let mut excluded = Vec::new();
                    disjuncts(inner, &mut excluded);
                    for (s, term) in excluded.into_iter().filter_map(sig) {
                        if required.iter().any(|(r, _)| *r == s) && !out.contains(&term) {
                            out.push(term);
                        }
                    }
                }
                find_contradictions(n, leaves, out);
            }
        }
        Expr::Or(v) => v.iter().for_each(|n| find_contradictions(n, leaves, out)),
        Expr::Not(n) => find_contradictions(n, leaves, out),
        Expr::Near { left, right, .. } => {
            find_contradictions(left, leaves, out);
            find_contradictions(right, leaves, out);
        }
        Expr::Leaf(_) => {}
    }
}

fn flatten_and<'e>(v: &'e [Expr], out: &mut Vec<&'e Expr>) {
    for n in v {
        match n {
            Expr::And(w) => flatten_and(w, out),
            n => out.push(n),
        }
    }
}
