//! The compiled rule set: term index, per-item lookup and evaluation.

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::ast::Field;
use super::compile::{
    parse_aliases, parse_element, value_without_hits, warnings, Aliases, Expr, Leaf, LeafKind, Loc,
    Lowerer, RuleError, RuleSpec, RuleWarning, Tri,
};
use super::document::{char_range, class_of, Document, Stream, Tok, CLASSES};
use super::fx::FxMap;
use crate::text::{fold, CharCursor};

/// One highlightable occurrence of a leaf.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub field: Field,
    /// Char offsets: into `Document::text` for the text fields (text,
    /// title, summary, content); into [`Document::field_value`] otherwise
    /// (link, author, category, feed; several values joined by `\n`).
    pub start: usize,
    pub end: usize,
    /// The leaf as written in the query (`demin*`, `"North Korea"`, the
    /// alias element a leaf of `@kursk` came from).
    pub term: String,
}

impl Hit {
    /// Whether the offsets index `Document::text`.
    pub fn in_text(&self) -> bool {
        class_of(self.field) == 0
    }
}

/// A rule that matched a document.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMatch {
    pub rule: usize,
    /// Every leaf occurrence that made the rule true: all matching OR
    /// branches, both NEAR partners (only the occurrences within distance),
    /// never NOT leaves. Text hits first by position, then the other
    /// fields.
    pub hits: Vec<Hit>,
}

impl RuleMatch {
    /// Distinct surface forms of the hits as written in the item
    /// (whitespace collapsed), in order of first occurrence, deduplicated by
    /// folded form; for the non-text fields the whole matched value.
    pub fn matched_terms(&self, doc: &Document) -> Vec<String> {
        let mut seen: Vec<Vec<String>> = Vec::new();
        let mut out = Vec::new();
        for hit in &self.hits {
            let value = doc.field_value(hit.field);
            let bytes = super::document::byte_range(value, &(hit.start..hit.end));
            let surface = if hit.in_text() {
                value.get(bytes).unwrap_or_default().to_string()
            } else {
                // The whole value (line) holding the hit.
                let a = value[..bytes.start.min(value.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let b = value[bytes.end.min(value.len())..]
                    .find('\n')
                    .map_or(value.len(), |i| i + bytes.end.min(value.len()));
                value.get(a..b).unwrap_or_default().to_string()
            };
            let surface = surface.split_whitespace().collect::<Vec<_>>().join(" ");
            let key: Vec<String> = surface.split_whitespace().map(fold).collect();
            if !surface.is_empty() && !seen.contains(&key) {
                seen.push(key);
                out.push(surface);
            }
        }
        out
    }
}

/// Term -> leaves, for one field class.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Stem -> word leaves and stemmed phrases starting with it.
    stems: FxMap<String, Vec<u32>>,
    /// Surface -> exact leaves and exact phrases starting with it.
    exact: FxMap<String, Vec<u32>>,
    /// Folded prefix -> prefix leaves.
    prefix: FxMap<String, Vec<u32>>,
    /// Distinct prefix lengths in chars, ascending.
    prefix_lens: Vec<usize>,
}

impl Index {
    fn is_empty(&self) -> bool {
        self.stems.is_empty() && self.exact.is_empty() && self.prefix.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Rule {
    expr: Expr,
    feeds: Option<GlobSet>,
}

/// Compiled rules: see the module docs of [`super`].
#[derive(Debug, Clone)]
pub struct RuleSet {
    specs: Vec<RuleSpec>,
    rules: Vec<Rule>,
    leaves: Vec<Leaf>,
    /// Compact per-leaf facts for the hot loop.
    meta: Vec<Meta>,
    index: [Index; CLASSES],
    /// Rules that can match without any indexed leaf (ascending).
    always: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Word,
    Exact,
    Prefix,
    Phrase,
    Regex,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    rule: u32,
    field: Field,
    tag: Tag,
    /// An occurrence makes the rule a candidate (see [`triggers`]).
    trigger: bool,
}

/// Buffers reused across the streams of one document.
#[derive(Default)]
struct Scratch {
    cache: Vec<(u32, u32)>,
    flat: Vec<u32>,
    frontier: Vec<(u32, u32)>,
    next: Vec<(u32, u32)>,
}

/// One occurrence of a leaf in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Occ {
    leaf: u32,
    /// Index into `Document::streams` (NEAR compares within one stream;
    /// the text fields share stream 0).
    stream: u32,
    pos: u32,
    pos_end: u32,
    start: u32,
    end: u32,
}

impl RuleSet {
    /// Parses, resolves aliases, validates and compiles. Returns every
    /// error, or the set with warnings (rules that can never match, very
    /// broad rules, purely negative rules).
    pub fn compile(
        specs: Vec<RuleSpec>,
        aliases: &Aliases,
    ) -> Result<(RuleSet, Vec<RuleWarning>), Vec<RuleError>> {
        let mut errors = Vec::new();
        let parsed = parse_aliases(aliases, &mut errors);
        let mut low = Lowerer::new(&parsed);
        low.errors = errors;
        low.check_aliases();
        let mut rules = Vec::with_capacity(specs.len());
        let mut warns = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            low.rule = i as u32;
            let errors_before = low.errors.len();
            let (expr, list) = lower_spec(&mut low, i, spec);
            let feeds = compile_feeds(&spec.feeds, |k, m| {
                low.errors.push(RuleError {
                    at: Loc::rule(i, "feeds", Some(k)).at(None),
                    message: m,
                })
            });
            match expr {
                Some(expr) if low.errors.len() == errors_before => {
                    warns.extend(warnings(&expr, &low.leaves, &Loc::rule(i, list, None)));
                    rules.push(Rule { expr, feeds });
                }
                _ => {
                    // Keep going to report every error.
                    rules.push(Rule {
                        expr: Expr::Or(Vec::new()),
                        feeds,
                    });
                }
            }
        }
        if !low.errors.is_empty() {
            return Err(low.errors);
        }
        let leaves = low.leaves;
        let mut index: [Index; CLASSES] = Default::default();
        for (id, leaf) in leaves.iter().enumerate() {
            let ix = &mut index[class_of(leaf.field)];
            let id = id as u32;
            match &leaf.kind {
                LeafKind::Word(w) => ix.stems.entry(w.clone()).or_default().push(id),
                LeafKind::Exact(w) => ix.exact.entry(w.clone()).or_default().push(id),
                LeafKind::Prefix(p) => {
                    ix.prefix.entry(p.clone()).or_default().push(id);
                    let n = p.chars().count();
                    if let Err(k) = ix.prefix_lens.binary_search(&n) {
                        ix.prefix_lens.insert(k, n);
                    }
                }
                LeafKind::Phrase { words, exact, .. } => {
                    let map = if *exact { &mut ix.exact } else { &mut ix.stems };
                    if let Some(w) = words.first() {
                        map.entry(w.clone()).or_default().push(id);
                    }
                }
                LeafKind::Regex(_) => {}
            }
        }
        let always = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| value_without_hits(&r.expr, &leaves, Tri::Unknown) != Tri::False)
            .map(|(i, _)| i as u32)
            .collect();
        let mut trigger = vec![false; leaves.len()];
        for r in &rules {
            let set = match triggers(&r.expr, &leaves) {
                Some((set, _)) => set,
                // No trigger set: every leaf triggers.
                None => {
                    let mut all = Vec::new();
                    leaf_ids(&r.expr, &mut all);
                    all
                }
            };
            for id in set {
                if let Some(t) = trigger.get_mut(id as usize) {
                    *t = true;
                }
            }
        }
        let meta = leaves
            .iter()
            .zip(trigger)
            .map(|(l, trigger)| Meta {
                trigger,
                rule: l.rule,
                field: l.field,
                tag: match l.kind {
                    LeafKind::Word(_) => Tag::Word,
                    LeafKind::Exact(_) => Tag::Exact,
                    LeafKind::Prefix(_) => Tag::Prefix,
                    LeafKind::Phrase { .. } => Tag::Phrase,
                    LeafKind::Regex(_) => Tag::Regex,
                },
            })
            .collect();
        Ok((
            RuleSet {
                specs,
                rules,
                leaves,
                meta,
                index,
                always,
            },
            warns,
        ))
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The spec rule `i` was compiled from. Panics if `i >= self.len()`.
    pub fn spec(&self, i: usize) -> &RuleSpec {
        &self.specs[i]
    }

    /// Rules (ascending indices) that match `doc`.
    pub fn matches(&self, doc: &Document) -> Vec<RuleMatch> {
        let mut occs = Vec::new();
        let mut scratch = Scratch::default();
        for (s, stream) in doc.streams.iter().enumerate() {
            let ix = &self.index[stream.class];
            if !ix.is_empty() {
                self.lookup(doc, s as u32, stream, ix, &mut occs, &mut scratch);
            }
        }
        // Each leaf's occurrences end up in stream and position order (the
        // order they were recorded in: `Occ`'s ordering is leaf, stream,
        // pos, pos_end, ...). A leaf sits under one key of one map, so there
        // are no duplicates.
        occs.sort_unstable();
        // Candidate rules with their occurrence ranges (leaves of a rule
        // are contiguous), merged with the always-check list.
        let mut groups: Vec<(u32, usize, usize)> = Vec::new();
        let mut triggered = false;
        for (i, o) in occs.iter().enumerate() {
            let Some(m) = self.meta.get(o.leaf as usize) else {
                continue;
            };
            match groups.last_mut() {
                Some(g) if g.0 == m.rule => g.2 = i + 1,
                _ => {
                    if !triggered {
                        groups.pop();
                    }
                    triggered = false;
                    groups.push((m.rule, i, i + 1));
                }
            }
            triggered |= m.trigger;
        }
        if !triggered {
            groups.pop();
        }
        let mut candidates = Vec::with_capacity(groups.len() + self.always.len());
        let (mut gi, mut ai) = (0, 0);
        loop {
            let g = groups.get(gi).copied();
            let a = self.always.get(ai).copied();
            match (g, a) {
                (Some(g), Some(a)) if a < g.0 => {
                    candidates.push((a, 0, 0));
                    ai += 1;
                }
                (Some(g), Some(a)) => {
                    candidates.push(g);
                    gi += 1;
                    if a == g.0 {
                        ai += 1;
                    }
                }
                (Some(g), None) => {
                    candidates.push(g);
                    gi += 1;
                }
                (None, Some(a)) => {
                    candidates.push((a, 0, 0));
                    ai += 1;
                }
                (None, None) => break,
            }
        }
        let mut out = Vec::new();
        for (r, a, b) in candidates {
            let occs = &occs[a..b];
            let Some(rule) = self.rules.get(r as usize) else {
                continue;
            };
            if let Some(g) = &rule.feeds {
                let feed = doc.values(4).first().map_or("", |s| s.as_str());
                if !g.is_match(feed) {
                    continue;
                }
            }
            let ev = Eval {
                set: self,
                doc,
                occs,
            };
            // Cheap yes/no first (most candidates fail), hits only then.
            if !ev.truth(&rule.expr) {
                continue;
            }
            let Some(found) = ev.eval(&rule.expr) else {
                continue;
            };
            let mut hits: Vec<Hit> = found
                .iter()
                .filter_map(|o| {
                    let leaf = self.leaves.get(o.leaf as usize)?;
                    Some(Hit {
                        field: leaf.field,
                        start: o.start as usize,
                        end: o.end as usize,
                        term: leaf.term.clone(),
                    })
                })
                .collect();
            // The key covers every field, so ties are equal hits.
            hits.sort_unstable_by(|a, b| {
                let key = |h: &Hit| {
                    (
                        !h.in_text(),
                        if h.in_text() { Field::Text } else { h.field },
                        h.start,
                        h.end,
                    )
                };
                key(a)
                    .cmp(&key(b))
                    .then_with(|| (a.field, &a.term).cmp(&(b.field, &b.term)))
            });
            hits.dedup();
            out.push(RuleMatch {
                rule: r as usize,
                hits,
            });
        }
        out
    }

    /// Looks every token of `stream` up and records leaf occurrences.
    fn lookup(
        &self,
        doc: &Document,
        s: u32,
        stream: &Stream,
        ix: &Index,
        occs: &mut Vec<Occ>,
        scratch: &mut Scratch,
    ) {
        // Leaves per distinct surface, looked up once: (start, end) into
        // `flat`. Word ids follow from surfaces, so this also stems and
        // prefix-tests each distinct word once.
        let Scratch {
            cache,
            flat,
            frontier,
            next,
        } = scratch;
        cache.clear();
        cache.resize(doc.surface_count(), (u32::MAX, 0));
        flat.clear();
        for tok in &stream.toks {
            let sid = tok.surface as usize;
            let Some(&(a, b)) = cache.get(sid) else {
                continue;
            };
            let (a, b) = if a == u32::MAX {
                let a = flat.len();
                if let Some(v) = ix.stems.get(doc.key(tok)) {
                    flat.extend_from_slice(v);
                }
                if !ix.exact.is_empty() {
                    if let Some(v) = ix.exact.get(doc.surface(tok)) {
                        flat.extend_from_slice(v);
                    }
                }
                if !ix.prefix.is_empty() {
                    let word = doc.word(tok);
                    let mut ends = word
                        .char_indices()
                        .map(|(i, _)| i)
                        .skip(1)
                        .chain([word.len()]);
                    let mut seen = 0;
                    for &n in &ix.prefix_lens {
                        // `n` chars: the end of char n-1.
                        let Some(e) = ends.nth(n - 1 - seen) else {
                            break;
                        };
                        seen = n;
                        if let Some(v) = ix.prefix.get(&word[..e]) {
                            flat.extend_from_slice(v);
                        }
                    }
                }
                cache[sid] = (a as u32, flat.len() as u32);
                (a as u32, flat.len() as u32)
            } else {
                (a, b)
            };
            for &leaf in &flat[a as usize..b as usize] {
                self.occur(doc, s, stream, tok, leaf, occs, frontier, next);
            }
        }
    }

    /// Records `leaf` at `tok` if it occurs there (phrases are verified).
    #[allow(clippy::too_many_arguments)]
    fn occur(
        &self,
        doc: &Document,
        s: u32,
        stream: &Stream,
        tok: &Tok,
        leaf: u32,
        occs: &mut Vec<Occ>,
        frontier: &mut Vec<(u32, u32)>,
        next: &mut Vec<(u32, u32)>,
    ) {
        let Some(m) = self.meta.get(leaf as usize) else {
            return;
        };
        let region = if stream.class == 0 {
            doc.region_pos(m.field)
        } else {
            0..u32::MAX
        };
        if !region.contains(&tok.pos) {
            return;
        }
        let (pos_end, end) = match m.tag {
            Tag::Word | Tag::Prefix => (tok.pos_end, tok.hl_end),
            Tag::Exact => (tok.pos_end, tok.end),
            Tag::Phrase => match self.leaves.get(leaf as usize).map(|l| &l.kind) {
                Some(LeafKind::Phrase { words, slop, exact }) => {
                    match phrase_end(doc, stream, tok, words, *slop, *exact, frontier, next) {
                        Some(x) => x,
                        None => return,
                    }
                }
                _ => return,
            },
            Tag::Regex => return,
        };
        if pos_end >= region.end {
            return;
        }
        occs.push(Occ {
            leaf,
            stream: s,
            pos: tok.pos,
            pos_end,
            start: tok.start,
            end,
        });
    }
}

/// A set of leaves one of which must occur for `e` to be true, with a
/// guessed cost (how often it would fire); `None` when there is none (NOT,
/// regexes). AND and NEAR take their cheapest child's set, OR the union.
/// Only occurrences of these leaves make a rule a candidate, so `rare AND
/// common` is not evaluated for every item holding `common`.
fn triggers(e: &Expr, leaves: &[Leaf]) -> Option<(Vec<u32>, u32)> {
    match e {
        Expr::Leaf(id) => {
            let cost = match &leaves.get(*id as usize)?.kind {
                LeafKind::Phrase { .. } => 1,
                LeafKind::Exact(_) => 2,
                LeafKind::Word(w) if w.chars().count() >= 6 => 3,
                LeafKind::Word(_) => 5,
                LeafKind::Prefix(p) => 10u32.saturating_sub(p.chars().count() as u32).max(4),
                LeafKind::Regex(_) => return None,
            };
            Some((vec![*id], cost))
        }
        Expr::Not(_) => None,
        Expr::Or(v) => {
            let mut set = Vec::new();
            let mut cost = 0u32;
            for n in v {
                let (s, c) = triggers(n, leaves)?;
                set.extend(s);
                cost = cost.saturating_add(c);
            }
            (!set.is_empty()).then_some((set, cost))
        }
        Expr::And(v) => v
            .iter()
            .filter_map(|n| triggers(n, leaves))
            .min_by_key(|(_, c)| *c),
        Expr::Near { left, right, .. } => [triggers(left, leaves), triggers(right, leaves)]
            .into_iter()
            .flatten()
            .min_by_key(|(_, c)| *c),
    }
}

fn leaf_ids(e: &Expr, out: &mut Vec<u32>) {
    match e {
        Expr::Leaf(id) => out.push(*id),
        Expr::Not(n) => leaf_ids(n, out),
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|n| leaf_ids(n, out)),
        Expr::Near { left, right, .. } => {
            leaf_ids(left, out);
            leaf_ids(right, out);
        }
    }
}

/// Where the phrase starting with `head` ends, if it occurs: the earliest
/// `(position, char end)`. Later words must follow within `slop` other
/// positions each, in the head's paragraph; with slop 0, only whitespace
/// (one line break at most) and hyphens may separate them.
#[allow(clippy::too_many_arguments)]
fn phrase_end(
    doc: &Document,
    stream: &Stream,
    head: &Tok,
    words: &[String],
    slop: u32,
    exact: bool,
    frontier: &mut Vec<(u32, u32)>,
    next: &mut Vec<(u32, u32)>,
) -> Option<(u32, u32)> {
    frontier.clear();
    frontier.push((head.pos_end, if exact { head.end } else { head.hl_end }));
    let n = stream.positions();
    for w in words.iter().skip(1) {
        next.clear();
        for &(pe, _) in frontier.iter() {
            let first = pe + 1;
            for q in first..=(first + slop).min(n.saturating_sub(1)) {
                for t in stream.at(q) {
                    let same = if exact {
                        doc.surface(t) == w
                    } else {
                        doc.key(t) == w
                    };
                    if same && t.para == head.para && (slop > 0 || t.clean_before) {
                        next.push((t.pos_end, if exact { t.end } else { t.hl_end }));
                    }
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup_by_key(|x| x.0);
        std::mem::swap(frontier, next);
    }
    frontier.first().copied()
}

struct Eval<'a> {
    set: &'a RuleSet,
    doc: &'a Document,
    occs: &'a [Occ],
}

impl Eval<'_> {
    /// Whether `e` holds, without collecting occurrences (NEAR excepted).
    fn truth(&self, e: &Expr) -> bool {
        match e {
            Expr::Leaf(id) => self.has(*id),
            Expr::Not(n) => !self.truth(n),
            Expr::And(v) => !v.is_empty() && v.iter().all(|n| self.truth(n)),
            Expr::Or(v) => v.iter().any(|n| self.truth(n)),
            Expr::Near { left, right, .. } => {
                self.truth(left) && self.truth(right) && self.eval(e).is_some()
            }
        }
    }

    fn has(&self, id: u32) -> bool {
        match self.set.meta.get(id as usize).map(|m| m.tag) {
            Some(Tag::Regex) => !self.leaf(id).is_empty(),
            _ => !self.range(id).is_empty(),
        }
    }

    /// The occurrences of an indexed leaf (`occs` is sorted by leaf).
    fn range(&self, id: u32) -> &[Occ] {
        let a = self.occs.partition_point(|o| o.leaf < id);
        let rest = &self.occs[a..];
        let n = rest.partition_point(|o| o.leaf == id);
        &rest[..n]
    }

    /// `None`: false. `Some(occurrences)`: true, with the occurrences that
    /// contributed (empty for a true NOT).
    fn eval(&self, e: &Expr) -> Option<Vec<Occ>> {
        match e {
            Expr::Leaf(id) => {
                let v = self.leaf(*id);
                (!v.is_empty()).then_some(v)
            }
            Expr::Not(n) => match self.eval(n) {
                Some(_) => None,
                None => Some(Vec::new()),
            },
            Expr::And(v) => {
                let mut out = Vec::new();
                for n in v {
                    out.extend(self.eval(n)?);
                }
                (!v.is_empty()).then_some(out)
            }
            Expr::Or(v) => {
                let mut out: Option<Vec<Occ>> = None;
                for n in v {
                    if let Some(o) = self.eval(n) {
                        out.get_or_insert_with(Vec::new).extend(o);
                    }
                }
                out
            }
            Expr::Near {
                left,
                right,
                distance,
                ordered,
            } => {
                let a = self.eval(left)?;
                let b = self.eval(right)?;
                let near = |x: &Occ, y: &Occ| {
                    if x.stream != y.stream {
                        return false;
                    }
                    if x.pos_end < y.pos {
                        y.pos - x.pos_end - 1 <= *distance
                    } else if !*ordered && y.pos_end < x.pos {
                        x.pos - y.pos_end - 1 <= *distance
                    } else {
                        false
                    }
                };
                let mut out: Vec<Occ> = a
                    .iter()
                    .filter(|x| b.iter().any(|y| near(x, y)))
                    .copied()
                    .collect();
                if out.is_empty() {
                    return None;
                }
                out.extend(b.iter().filter(|y| a.iter().any(|x| near(x, y))));
                Some(out)
            }
        }
    }

    fn leaf(&self, id: u32) -> Vec<Occ> {
        match self.set.leaves.get(id as usize) {
            Some(Leaf {
                kind: LeafKind::Regex(re),
                field,
                ..
            }) => regex_occs(self.doc, id, *field, re),
            _ => self.range(id).to_vec(),
        }
    }
}

/// Non-empty matches of a regex leaf on the raw text of its field.
fn regex_occs(doc: &Document, leaf: u32, field: Field, re: &regex::Regex) -> Vec<Occ> {
    let class = class_of(field);
    let mut out = Vec::new();
    let mut run = |s: usize, stream: &Stream, value: &str, base_chars: usize| {
        let mut cursor = CharCursor::new(value);
        for m in re.find_iter(value) {
            if m.start() == m.end() {
                continue;
            }
            let start = (base_chars + cursor.char_at(m.start())) as u32;
            let end = (base_chars + cursor.char_at(m.end())) as u32;
            let first = stream.toks.partition_point(|t| t.end <= start);
            let last = stream.toks.partition_point(|t| t.start < end);
            let pos = stream.toks.get(first).map_or(stream.positions(), |t| t.pos);
            let pos_end = last
                .checked_sub(1)
                .and_then(|k| stream.toks.get(k))
                .map_or(pos, |t| t.pos_end.max(pos));
            out.push(Occ {
                leaf,
                stream: s as u32,
                pos,
                pos_end,
                start,
                end,
            });
        }
    };
    if class == 0 {
        let Some(stream) = doc.streams.first() else {
            return out;
        };
        match doc.region(field) {
            None => run(0, stream, &doc.text, 0),
            Some(chars) => {
                let bytes = super::document::byte_range(&doc.text, chars);
                let sub = doc.text.get(bytes.clone()).unwrap_or_default();
                let base = char_range(&doc.text, 0..bytes.start).end;
                run(0, stream, sub, base);
            }
        }
    } else {
        let values = doc.values(class);
        for (s, stream) in doc
            .streams
            .iter()
            .enumerate()
            .filter(|(_, st)| st.class == class)
        {
            if let Some(v) = values.get(stream.value) {
                run(s, stream, v, stream.base);
            }
        }
    }
    out
}

/// Lowers one spec: `query`, or any/all/none. Returns the expression and
/// the list name warnings are reported under.
fn lower_spec(low: &mut Lowerer<'_>, i: usize, spec: &RuleSpec) -> (Option<Expr>, &'static str) {
    let shorthand = !(spec.any.is_empty() && spec.all.is_empty() && spec.none.is_empty());
    if let Some(q) = &spec.query {
        let loc = Loc::rule(i, "query", None);
        if shorthand {
            low.errors.push(RuleError {
                at: loc.at(None),
                message: "use either query or any/all/none".into(),
            });
            return (None, "query");
        }
        if q.trim().is_empty() {
            low.errors.push(RuleError {
                at: loc.at(None),
                message: "empty query".into(),
            });
            return (None, "query");
        }
        // Every error in the query, so one `check` shows them all.
        return match super::query::parse_query_all_errors(q) {
            Ok(node) => (low.lower(&node, q, &loc, None), "query"),
            Err(errs) => {
                for e in errs {
                    low.errors.push(RuleError {
                        at: loc.at(Some(e.offset)),
                        message: e.message,
                    });
                }
                (None, "query")
            }
        };
    }
    if spec.any.is_empty() && spec.all.is_empty() {
        low.errors.push(RuleError {
            at: Loc::rule(i, "query", None).at(None),
            message: "rule needs a `query` or at least one term in `any` or `all`".into(),
        });
        return (None, "query");
    }
    let mut failed = false;
    let mut list = |low: &mut Lowerer<'_>, name: &'static str, items: &[String]| -> Vec<Expr> {
        let mut out = Vec::new();
        for (k, s) in items.iter().enumerate() {
            let loc = Loc::rule(i, name, Some(k));
            if s.trim().is_empty() {
                low.errors.push(RuleError {
                    at: loc.at(None),
                    message: "empty term".into(),
                });
                failed = true;
                continue;
            }
            match parse_element(s) {
                Ok(node) => match low.lower(&node, s, &loc, None) {
                    Some(e) => out.push(e),
                    None => failed = true,
                },
                Err(e) => {
                    low.errors.push(RuleError {
                        at: loc.at(Some(e.offset)),
                        message: e.message,
                    });
                    failed = true;
                }
            }
        }
        out
    };
    let any = list(low, "any", &spec.any);
    let all = list(low, "all", &spec.all);
    let none = list(low, "none", &spec.none);
    if failed {
        return (None, "any");
    }
    let mut conj = Vec::new();
    match any.len() {
        0 => {}
        1 => conj.extend(any),
        _ => conj.push(Expr::Or(any)),
    }
    conj.extend(all);
    match none.len() {
        0 => {}
        1 => conj.extend(none.into_iter().map(|e| Expr::Not(Box::new(e)))),
        _ => conj.push(Expr::Not(Box::new(Expr::Or(none)))),
    }
    let expr = if conj.len() == 1 {
        conj.pop()
    } else {
        Some(Expr::And(conj))
    };
    (expr, "any")
}

/// Builds the feed filter, reporting each bad glob through `err`.
fn compile_feeds(globs: &[String], mut err: impl FnMut(usize, String)) -> Option<GlobSet> {
    if globs.is_empty() {
        return None;
    }
    let mut builder = GlobSetBuilder::new();
    for (i, pattern) in globs.iter().enumerate() {
        if pattern.trim().is_empty() {
            err(i, "empty feed pattern".to_string());
            continue;
        }
        match Glob::new(pattern.trim()) {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(e) => err(i, format!("invalid feed glob '{pattern}': {}", e.kind())),
        }
    }
    // Every glob built on its own, so the set builds too; an unexpected
    // failure matches nothing rather than everything.
    Some(builder.build().unwrap_or_else(|_| GlobSet::empty()))
}
