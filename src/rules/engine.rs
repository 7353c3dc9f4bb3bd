//! The compiled rule set: term index, per-item lookup and evaluation.

use std::cell::RefCell;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::ast::Field;
use super::compile::{
    parse_aliases, parse_element, value_without_hits, warnings, Aliases, Expr, Leaf, LeafKind, Loc,
    Lowerer, RuleError, RuleSpec, RuleWarning, Tri,
};
use super::document::{char_range, class_of, Document, Stream, Tok, CLASSES};
use super::fx::{FxHasher, FxMap};
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
    /// The leaf that occurred; [`RuleSet::term`] gives it as written in
    /// the query (`demin*`, `"North Korea"`, the alias element a leaf of
    /// `@kursk` came from).
    pub leaf: u32,
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

/// Word, surface and prefix -> terms, for one field class.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Stem -> the word term and stemmed phrases starting with it.
    stems: FxMap<String, Vec<u32>>,
    /// Surface -> the exact term and exact phrases starting with it.
    exact: FxMap<String, Vec<u32>>,
    /// Folded prefix -> the prefix term.
    prefix: FxMap<String, Vec<u32>>,
    /// Distinct prefix lengths in chars, ascending.
    prefix_lens: Vec<usize>,
    /// One bit per hash of every key of the three maps (a Bloom filter
    /// with one hash function, 16 bits per key, 512 bytes to 512 KiB).
    filter: Vec<u64>,
    /// Shift that takes a key hash to a bit index of `filter`.
    filter_shift: u32,
}

impl Index {
    fn is_empty(&self) -> bool {
        self.stems.is_empty() && self.exact.is_empty() && self.prefix.is_empty()
    }

    /// Builds [`Index::filter`] once the maps are complete.
    fn build_filter(&mut self) {
        let keys = self.stems.len() + self.exact.len() + self.prefix.len();
        let bits = (keys * 16).next_power_of_two().clamp(1 << 12, 1 << 22);
        self.filter_shift = 64 - bits.trailing_zeros();
        self.filter = vec![0; bits / 64];
        let maps = [(0, &self.stems), (1, &self.exact), (2, &self.prefix)];
        for (kind, map) in maps {
            for key in map.keys() {
                let b = (key_hash(kind, key) >> self.filter_shift) as usize;
                if let Some(w) = self.filter.get_mut(b / 64) {
                    *w |= 1 << (b % 64);
                }
            }
        }
    }

    /// The terms under `key` in map `kind` (0 stems, 1 exact, 2 prefix).
    /// Most words of an item are in no rule: the filter answers those
    /// from a few kilobytes that stay in cache, without probing the maps.
    fn get(&self, kind: u8, key: &str) -> Option<&Vec<u32>> {
        let b = (key_hash(kind, key) >> self.filter_shift) as usize;
        let maybe = self
            .filter
            .get(b / 64)
            .is_some_and(|w| w >> (b % 64) & 1 == 1);
        if !maybe {
            return None;
        }
        match kind {
            0 => self.stems.get(key),
            1 => self.exact.get(key),
            _ => self.prefix.get(key),
        }
    }
}

fn key_hash(kind: u8, key: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = FxHasher::default();
    h.write_u8(kind);
    h.write(key.as_bytes());
    h.finish()
}

#[derive(Debug, Clone)]
struct Rule {
    expr: Expr,
    feeds: Option<GlobSet>,
}

/// Compiled rules: see the module docs of [`super`].
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Unique per compiled set (clones share it): what the per-thread
    /// term cache of [`LexTerms`] is valid for.
    id: u64,
    specs: Vec<RuleSpec>,
    rules: Vec<Rule>,
    leaves: Vec<Leaf>,
    /// `terms[leaf]`: the leaf's field and the leaf as written, for hits.
    terms: Vec<(Field, Box<str>)>,
    /// Compact per-rule facts for the hot loop.
    info: Vec<RuleInfo>,
    /// Quick-check programs too long for [`RuleInfo::ops`].
    ops: Vec<u16>,
    /// See [`HitLeaves`] and [`RuleInfo::spill`].
    hit_leaves: Vec<HitLeaves>,
    /// Every rule's expression, flattened (see [`Node`]).
    nodes: Vec<Node>,
    /// `phrases[t]`: term `t` when it is a phrase (terms are numbered
    /// across the classes' indexes).
    phrases: Vec<Option<Phrase>>,
    /// `term_leaf[term_leaves_at[t]..term_leaves_at[t + 1]]`: the leaves
    /// looking for term `t`.
    term_leaves_at: Vec<u32>,
    term_leaf: Vec<TermLeaf>,
    index: [Index; CLASSES],
    /// Rules that can match without any indexed leaf (ascending).
    always: Vec<u32>,
}

/// Per-leaf facts gathered while compiling, copied into [`TermLeaf`] and
/// [`Node`] for the hot loops.
#[derive(Debug, Clone, Copy)]
struct Meta {
    rule: u32,
    field: Field,
    /// An occurrence makes the rule a candidate (see [`triggers`]).
    trigger: bool,
    /// The leaf's bit in its rule's leaf mask (`leaf - first leaf of the
    /// rule`); [`NO_BIT`] past the mask's [`MASK_BITS`] bits.
    bit: u8,
    /// The term the leaf looks for; [`NO_TERM`] for regex leaves.
    term: u32,
}

const NO_BIT: u8 = u8::MAX;

/// The term of a leaf that has none (regex leaves).
const NO_TERM: u32 = u32::MAX;

/// The index stores term ids with how an occurrence is taken in the top
/// two bits, so the lookup loop reads [`Phrase`]s only for phrases: a word
/// or prefix ends where a stemmed hit stops, an exact term with its token.
const TAG_MASK: u32 = 0b11 << 30;
const TAG_WORD: u32 = 0;
const TAG_EXACT: u32 = 1 << 30;
const TAG_PHRASE: u32 = 2 << 30;

/// Terms a rule set may hold (ids must leave the tag bits free).
const MAX_TERMS: usize = 1 << 30;

/// A phrase term, verified from its first word on (word, prefix and exact
/// terms need no verification: their index entries say where an
/// occurrence ends).
#[derive(Debug, Clone)]
struct Phrase {
    words: Box<[String]>,
    slop: u32,
    exact: bool,
}

/// One node of a rule's expression, flattened: each rule's nodes are
/// contiguous in prefix order, a node's children follow it, and leaves
/// carry what evaluation needs so it does not look the leaf up.
#[derive(Debug, Clone, Copy)]
struct Node {
    kind: NodeKind,
    /// Leaves: where the leaf looks.
    field: Field,
    /// Leaves: the mask bit ([`NO_BIT`] past the mask).
    bit: u8,
    /// Leaf: the leaf id; And/Or: the number of children; Near: the
    /// distance.
    arg: u32,
    /// Leaf: the term ([`NO_TERM`] for a regex); others: the index one past
    /// the node's subtree.
    end: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Leaf,
    Regex,
    Not,
    And,
    Or,
    Near,
    ONear,
}

/// Appends `e` in prefix order (see [`Node`]).
fn flatten(e: &Expr, meta: &[Meta], out: &mut Vec<Node>) {
    let at = out.len();
    let node = |kind, arg| Node {
        kind,
        field: Field::Text,
        bit: NO_BIT,
        arg,
        end: 0,
    };
    match e {
        Expr::Leaf(id) => {
            let Some(m) = meta.get(*id as usize) else {
                out.push(node(NodeKind::Or, 0));
                if let Some(n) = out.get_mut(at) {
                    n.end = (at + 1) as u32;
                }
                return;
            };
            out.push(Node {
                kind: if m.term == NO_TERM {
                    NodeKind::Regex
                } else {
                    NodeKind::Leaf
                },
                field: m.field,
                bit: m.bit,
                arg: *id,
                end: m.term,
            });
            return;
        }
        Expr::Not(n) => {
            out.push(node(NodeKind::Not, 0));
            flatten(n, meta, out);
        }
        Expr::And(v) | Expr::Or(v) => {
            let kind = if matches!(e, Expr::And(_)) {
                NodeKind::And
            } else {
                NodeKind::Or
            };
            out.push(node(kind, v.len() as u32));
            for c in v {
                flatten(c, meta, out);
            }
        }
        Expr::Near {
            left,
            right,
            distance,
            ordered,
        } => {
            let kind = if *ordered {
                NodeKind::ONear
            } else {
                NodeKind::Near
            };
            out.push(node(kind, *distance));
            flatten(left, meta, out);
            flatten(right, meta, out);
        }
    }
    let end = out.len() as u32;
    if let Some(n) = out.get_mut(at) {
        n.end = end;
    }
}

/// What marking a rule needs of one of its leaves, stored with the term so
/// that marking does not look the leaf up.
#[derive(Debug, Clone, Copy)]
struct TermLeaf {
    rule: u32,
    bit: u8,
    trigger: bool,
    field: Field,
}

/// Per-rule facts for the hot loop, one cache line half each: the quick
/// check as a truth table when the rule has at most [`TABLE_BITS`] leaves,
/// else its program, inline when it has at most [`INLINE_OPS`] steps.
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct RuleInfo {
    /// The rule has a feed filter.
    feeds: bool,
    /// [`TABLE`]: `ops` holds the truth table; else the program length:
    /// the program is `ops[..len]`, or `RuleSet::ops[spill..spill + len]`
    /// when longer than `ops`.
    len: u16,
    ops: [u16; INLINE_OPS],
    /// With a truth table: the rule's entry in `RuleSet::hit_leaves`, or
    /// [`NO_HIT_LEAVES`].
    spill: u32,
    /// The rule's first node in `RuleSet::nodes`.
    root: u32,
}

const INLINE_OPS: usize = 10;

/// [`RuleInfo::len`] of a rule whose quick check is a truth table: the
/// value for leaf mask `m` in bits `2m..2m + 2` of `ops` (little-endian
/// words; 0 false, 1 unknown, 2 true).
const TABLE: u16 = u16::MAX;

/// Rules with at most this many leaves get a truth table (2^6 entries of
/// two bits fill 8 of the [`INLINE_OPS`] words).
const TABLE_BITS: usize = 6;

/// See [`RuleInfo::spill`].
const NO_HIT_LEAVES: u32 = u32::MAX;

/// Which leaves of a rule (mask bits) give its hits, for each leaf mask
/// that makes it true; for rules whose value and hits the mask alone
/// decides (at most [`TABLE_BITS`] leaves, no NEAR, no regex).
type HitLeaves = [u8; 1 << TABLE_BITS];

/// The leaves [`Eval::eval_into`] would take occurrences from when the
/// leaves of `mask` occurred: `None` when node `i` is false. Only for
/// nodes of leaves, NOT, AND and OR.
fn hit_leaves(nodes: &[Node], i: usize, mask: u64) -> Option<u8> {
    let n = nodes.get(i)?;
    let next = |c: usize| match nodes.get(c) {
        Some(x) if !matches!(x.kind, NodeKind::Leaf | NodeKind::Regex) => x.end as usize,
        _ => c + 1,
    };
    match n.kind {
        NodeKind::Leaf if usize::from(n.bit) < TABLE_BITS => {
            (mask >> n.bit & 1 == 1).then_some(1 << n.bit)
        }
        NodeKind::Not => hit_leaves(nodes, i + 1, mask).is_none().then_some(0),
        NodeKind::And | NodeKind::Or => {
            let and = n.kind == NodeKind::And;
            let (mut c, mut bits, mut any) = (i + 1, 0u8, false);
            for _ in 0..n.arg {
                match hit_leaves(nodes, c, mask) {
                    Some(b) => {
                        bits |= b;
                        any = true;
                    }
                    None if and => return None,
                    None => {}
                }
                c = next(c);
            }
            (any && (n.arg > 0)).then_some(bits)
        }
        _ => None,
    }
}

impl RuleInfo {
    /// The rule's value given only which of its leaves occurred (see
    /// [`quick`]).
    fn check(&self, spilled: &[u16], mask: u64) -> Tri {
        let len = self.len as usize;
        if self.len == TABLE {
            let m = mask as usize & ((1 << TABLE_BITS) - 1);
            let word = self.ops.get(m / 8).copied().unwrap_or(1);
            return match word >> (2 * (m % 8)) & 3 {
                0 => Tri::False,
                2 => Tri::True,
                _ => Tri::Unknown,
            };
        }
        let program = if len <= INLINE_OPS {
            self.ops.get(..len).unwrap_or(&[])
        } else {
            let a = self.spill as usize;
            spilled.get(a..a + len).unwrap_or(&[])
        };
        quick(program, mask)
    }
}

/// One step of a quick-check program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Push whether the leaf with this mask bit occurred.
    Leaf(u8),
    /// Push unknown: a regex leaf, or a leaf past the mask.
    Unknown,
    Not,
    And(u32),
    Or(u32),
    /// NEAR of the top two: false if either is, else unknown (positions
    /// decide).
    Near,
}

impl Op {
    /// Packed into 16 bits: the kind in the top 4, the argument below.
    fn encode(self) -> Option<u16> {
        let arg = |n: u32| u16::try_from(n).ok().filter(|&n| n < 0x1000);
        Some(match self {
            Op::Leaf(b) => u16::from(b.min(63)),
            Op::Unknown => 0x1000,
            Op::Not => 0x2000,
            Op::And(n) => 0x3000 | arg(n)?,
            Op::Or(n) => 0x4000 | arg(n)?,
            Op::Near => 0x5000,
        })
    }

    fn decode(x: u16) -> Op {
        let arg = u32::from(x & 0x0fff);
        match x >> 12 {
            0 => Op::Leaf((x & 0x3f) as u8),
            2 => Op::Not,
            3 => Op::And(arg),
            4 => Op::Or(arg),
            5 => Op::Near,
            _ => Op::Unknown,
        }
    }
}

/// Values a quick-check program may hold on its stack; deeper programs
/// compile to [`Op::Unknown`].
const QUICK_STACK: usize = 64;

/// A rule's value given only which of its leaves occurred: `False` rules
/// are dropped without touching their expression; the rest are evaluated
/// in full (`True` ones only for their hits).
fn quick(ops: &[u16], mask: u64) -> Tri {
    let mut stack = [Tri::False; QUICK_STACK];
    let mut n = 0usize;
    for &op in ops {
        let op = Op::decode(op);
        let v = match op {
            Op::Leaf(b) => {
                if b < MASK_BITS && mask >> b & 1 == 1 {
                    Tri::True
                } else {
                    Tri::False
                }
            }
            Op::Unknown => Tri::Unknown,
            Op::Not => {
                let Some(top) = n.checked_sub(1).and_then(|i| stack.get_mut(i)) else {
                    return Tri::Unknown;
                };
                *top = match *top {
                    Tri::True => Tri::False,
                    Tri::False => Tri::True,
                    Tri::Unknown => Tri::Unknown,
                };
                continue;
            }
            Op::And(k) | Op::Or(k) => {
                let Some(from) = n.checked_sub(k as usize) else {
                    return Tri::Unknown;
                };
                let args = stack.get(from..n).unwrap_or(&[]);
                let and = matches!(op, Op::And(_));
                let (stop, rest) = if and {
                    (Tri::False, Tri::True)
                } else {
                    (Tri::True, Tri::False)
                };
                n = from;
                if args.is_empty() {
                    Tri::False
                } else if args.contains(&stop) {
                    stop
                } else if args.contains(&Tri::Unknown) {
                    Tri::Unknown
                } else {
                    rest
                }
            }
            Op::Near => {
                let Some(from) = n.checked_sub(2) else {
                    return Tri::Unknown;
                };
                let args = stack.get(from..n).unwrap_or(&[]);
                n = from;
                if args.contains(&Tri::False) {
                    Tri::False
                } else {
                    Tri::Unknown
                }
            }
        };
        match stack.get_mut(n) {
            Some(slot) => *slot = v,
            None => return Tri::Unknown,
        }
        n += 1;
    }
    if n == 1 {
        stack[0]
    } else {
        Tri::Unknown
    }
}

/// Appends the postfix program of `e` (leaf bits relative to `base`) and
/// returns the stack depth it needs.
fn emit(e: &Expr, leaves: &[Leaf], base: u32, out: &mut Vec<Op>) -> usize {
    match e {
        Expr::Leaf(id) => {
            let op = match leaves.get(*id as usize).map(|l| &l.kind) {
                Some(LeafKind::Regex(_)) | None => Op::Unknown,
                Some(_) => match id.checked_sub(base) {
                    Some(b) if b < u32::from(MASK_BITS) => Op::Leaf(b as u8),
                    _ => Op::Unknown,
                },
            };
            out.push(op);
            1
        }
        Expr::Not(n) => {
            let d = emit(n, leaves, base, out);
            out.push(Op::Not);
            d
        }
        Expr::And(v) | Expr::Or(v) => {
            let mut depth = 0;
            for (i, n) in v.iter().enumerate() {
                depth = depth.max(i + emit(n, leaves, base, out));
            }
            out.push(if matches!(e, Expr::And(_)) {
                Op::And(v.len() as u32)
            } else {
                Op::Or(v.len() as u32)
            });
            depth.max(1)
        }
        Expr::Near { left, right, .. } => {
            let a = emit(left, leaves, base, out);
            let b = 1 + emit(right, leaves, base, out);
            out.push(Op::Near);
            a.max(b)
        }
    }
}

/// Leaf bits of a rule's state word; the top two bits are flags.
const MASK_BITS: u8 = 62;
/// State flag: the rule is in the touched list.
const TOUCHED: u64 = 1 << 63;
/// State flag: a trigger leaf occurred (or the rule is on the always
/// list).
const TRIGGERED: u64 = 1 << 62;
const LEAF_BITS: u64 = TRIGGERED - 1;

/// Buffers for [`RuleSet::matches`], kept per thread so matching an item
/// allocates little. `state` has one word per rule of the largest set this
/// thread matched with: the bits of the rule's leaves that occurred (leaf
/// `bit`, see [`Meta::bit`]) and the [`TOUCHED`] and [`TRIGGERED`] flags;
/// words are reset after use.
#[derive(Default)]
struct MatchScratch {
    state: Vec<u64>,
    /// Set while a match is in progress: if it is still set at the start
    /// (a panic unwound through a match), every entry is reset.
    dirty: bool,
    touched: Vec<u32>,
    /// Rules to evaluate, one bit per rule (`candidates[r / 64] >> r % 64`),
    /// so they are visited in rule order without sorting; `known` has the
    /// bits of those the quick check found true. Zero between matches.
    candidates: Vec<u64>,
    known: Vec<u64>,
    /// Term occurrences of the item (`Occ::leaf` holds the term), grouped
    /// by term.
    occs: Vec<Occ>,
    /// `spans[t]`: term `t`'s occurrences in `occs` (empty when it has
    /// none); one entry per term of the largest set.
    spans: Vec<(u32, u32)>,
    /// Terms that occurred.
    found: Vec<u32>,
    /// Where `occs` is regrouped.
    grouped: Vec<Occ>,
    /// Occurrences of one rule's hits while it is evaluated.
    hits: Vec<Occ>,
    lookup: Scratch,
}

thread_local! {
    static MATCH_SCRATCH: RefCell<MatchScratch> = RefCell::new(MatchScratch::default());
}

/// Buffers reused across the streams of one document.
#[derive(Default)]
struct Scratch {
    cache: Vec<(u32, u32)>,
    flat: Vec<u32>,
    frontier: Vec<(u32, u32)>,
    next: Vec<(u32, u32)>,
    lex: LexTerms,
}

/// The terms each cached surface (see [`Document::lexeme`]) leads to, per
/// field class, kept across documents: most words of an item occurred in
/// earlier items, so their index lookups are done once per thread. Valid
/// for one rule set and one epoch of the document cache; starts over when
/// either changes or it holds [`LEX_TERMS_MAX`] terms. At most about 4 MiB
/// of slots (100,000 cached surfaces x 5 classes) plus 4 MiB of terms.
#[derive(Default)]
struct LexTerms {
    set: u64,
    epoch: u64,
    /// `slot[entry * CLASSES + class]`: `(start, end)` in `terms`;
    /// `(UNSET, 0)` when not looked up yet.
    slot: Vec<(u32, u32)>,
    terms: Vec<u32>,
}

const LEX_TERMS_MAX: usize = 1 << 20;
const UNSET: u32 = u32::MAX;
/// Marks a per-document cache range as one into `LexTerms::terms`.
const PERSISTENT: u32 = 1 << 31;

impl LexTerms {
    fn ready(&mut self, set: u64, epoch: u64) {
        if self.set != set || self.epoch != epoch || self.terms.len() > LEX_TERMS_MAX {
            self.set = set;
            self.epoch = epoch;
            self.slot.clear();
            self.terms.clear();
        }
    }
}

/// One occurrence of a leaf (or, while looking terms up, of a term) in a
/// document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Occ {
    leaf: u32,
    /// Index into `Document::streams` (NEAR compares within one stream;
    /// the text fields share stream 0).
    stream: u32,
    pos: u32,
    pos_end: u32,
    start: u32,
    end: u32,
    /// The leaf's field (a term occurrence: [`Field::Text`]).
    field: Field,
}

impl Occ {
    const NONE: Occ = Occ {
        leaf: 0,
        stream: 0,
        pos: 0,
        pos_end: 0,
        start: 0,
        end: 0,
        field: Field::Text,
    };
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
        if leaves.len() >= MAX_TERMS {
            return Err(vec![RuleError {
                at: Loc::rule(specs.len().saturating_sub(1), "query", None).at(None),
                message: format!("the rule set holds more than {MAX_TERMS} terms"),
            }]);
        }
        // Distinct terms per field class: leaves that look for the same
        // thing share one term, found once per item.
        let mut index: [Index; CLASSES] = Default::default();
        let mut term_ids: FxMap<(usize, (u8, String, u32)), u32> = FxMap::default();
        let mut phrases: Vec<Option<Phrase>> = Vec::new();
        let mut leaf_term = vec![NO_TERM; leaves.len()];
        for (id, leaf) in leaves.iter().enumerate() {
            let class = class_of(leaf.field);
            let Some(key) = leaf.kind.identity() else {
                continue;
            };
            let next = phrases.len() as u32;
            let t = *term_ids.entry((class, key)).or_insert(next);
            if let Some(slot) = leaf_term.get_mut(id) {
                *slot = t;
            }
            if t != next {
                continue;
            }
            let ix = &mut index[class];
            let mut phrase = None;
            match &leaf.kind {
                LeafKind::Word(w) => ix.stems.entry(w.clone()).or_default().push(t | TAG_WORD),
                LeafKind::Exact(w) => ix.exact.entry(w.clone()).or_default().push(t | TAG_EXACT),
                LeafKind::Prefix(p) => {
                    let n = p.chars().count();
                    if let Err(k) = ix.prefix_lens.binary_search(&n) {
                        ix.prefix_lens.insert(k, n);
                    }
                    ix.prefix.entry(p.clone()).or_default().push(t | TAG_WORD);
                }
                LeafKind::Phrase { words, slop, exact } => {
                    let map = if *exact { &mut ix.exact } else { &mut ix.stems };
                    if let Some(w) = words.first() {
                        map.entry(w.clone()).or_default().push(t | TAG_PHRASE);
                    }
                    phrase = Some(Phrase {
                        words: words.clone().into_boxed_slice(),
                        slop: *slop,
                        exact: *exact,
                    });
                }
                LeafKind::Regex(_) => {}
            }
            phrases.push(phrase);
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
        // Leaves are numbered rule by rule: a rule's leaves are the ids from
        // its first one up to the next rule's first.
        let first_leaf = |r: u32| leaves.partition_point(|l| l.rule < r) as u32;
        let meta: Vec<Meta> = leaves
            .iter()
            .enumerate()
            .zip(trigger)
            .map(|((id, l), trigger)| Meta {
                trigger,
                rule: l.rule,
                field: l.field,
                bit: match (id as u32).checked_sub(first_leaf(l.rule)) {
                    Some(b) if b < u32::from(MASK_BITS) => b as u8,
                    _ => NO_BIT,
                },
                term: leaf_term.get(id).copied().unwrap_or(NO_TERM),
            })
            .collect();
        let mut spilled = Vec::new();
        let mut hit_table: Vec<HitLeaves> = Vec::new();
        let mut nodes = Vec::new();
        let mut info = Vec::with_capacity(rules.len());
        let mut prog = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            prog.clear();
            let depth = emit(&rule.expr, &leaves, first_leaf(r as u32), &mut prog);
            let mut code: Vec<u16> = prog.iter().map_while(|op| op.encode()).collect();
            if depth > QUICK_STACK || code.len() != prog.len() || code.len() >= usize::from(TABLE) {
                code = vec![0x1000];
            }
            let mut ri = RuleInfo {
                feeds: rule.feeds.is_some(),
                len: code.len() as u16,
                ops: [0; INLINE_OPS],
                spill: 0,
                root: nodes.len() as u32,
            };
            flatten(&rule.expr, &meta, &mut nodes);
            let bits = first_leaf(r as u32 + 1) - first_leaf(r as u32);
            if bits as usize <= TABLE_BITS {
                // Every mask the rule's leaves can make, evaluated once.
                ri.len = TABLE;
                ri.spill = NO_HIT_LEAVES;
                let root = ri.root as usize;
                let own = nodes.get(root..).unwrap_or(&[]);
                let decided = own.iter().all(|n| match n.kind {
                    NodeKind::Leaf => usize::from(n.bit) < TABLE_BITS,
                    NodeKind::Not | NodeKind::And | NodeKind::Or => true,
                    _ => false,
                });
                if decided {
                    let mut t: HitLeaves = [0; 1 << TABLE_BITS];
                    for (m, slot) in t.iter_mut().enumerate().take(1 << bits) {
                        *slot = hit_leaves(&nodes, root, m as u64).unwrap_or(0);
                    }
                    ri.spill = hit_table.len() as u32;
                    hit_table.push(t);
                }
                for m in 0..1u64 << bits {
                    let v: u16 = match quick(&code, m) {
                        Tri::False => 0,
                        Tri::Unknown => 1,
                        Tri::True => 2,
                    };
                    if let Some(w) = ri.ops.get_mut(m as usize / 8) {
                        *w |= v << (2 * (m % 8));
                    }
                }
            } else if let Some(slot) = ri.ops.get_mut(..code.len()) {
                slot.copy_from_slice(&code);
            } else {
                ri.spill = spilled.len() as u32;
                spilled.extend_from_slice(&code);
            }
            info.push(ri);
        }
        for ix in &mut index {
            ix.build_filter();
        }
        let mut term_leaves: Vec<Vec<TermLeaf>> = vec![Vec::new(); phrases.len()];
        for (&t, m) in leaf_term.iter().zip(&meta) {
            if let Some(v) = term_leaves.get_mut(t as usize) {
                v.push(TermLeaf {
                    rule: m.rule,
                    bit: m.bit,
                    trigger: m.trigger,
                    field: m.field,
                });
            }
        }
        let mut term_leaves_at = Vec::with_capacity(phrases.len() + 1);
        let mut term_leaf = Vec::with_capacity(leaves.len());
        for v in term_leaves {
            term_leaves_at.push(term_leaf.len() as u32);
            term_leaf.extend(v);
        }
        term_leaves_at.push(term_leaf.len() as u32);
        let hit_terms = leaves
            .iter()
            .map(|l| (l.field, l.term.clone().into_boxed_str()))
            .collect();
        static SET_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok((
            RuleSet {
                id: SET_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                specs,
                rules,
                leaves,
                terms: hit_terms,
                info,
                ops: spilled,
                hit_leaves: hit_table,
                nodes,
                phrases,
                term_leaves_at,
                term_leaf,
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

    /// The leaf of `hit` as written in the query.
    pub fn term(&self, hit: &Hit) -> &str {
        self.terms.get(hit.leaf as usize).map_or("", |(_, t)| t)
    }

    /// The spec rule `i` was compiled from. Panics if `i >= self.len()`.
    pub fn spec(&self, i: usize) -> &RuleSpec {
        &self.specs[i]
    }

    /// Rules (ascending indices) that match `doc`.
    pub fn matches(&self, doc: &Document) -> Vec<RuleMatch> {
        MATCH_SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.matches_with(doc, &mut scratch, false),
            Err(_) => self.matches_with(doc, &mut MatchScratch::default(), false),
        })
    }

    /// [`RuleSet::matches`] without the shortcuts: every rule evaluated in
    /// full, triggers and quick checks ignored. The reference the shortcuts
    /// are tested against.
    #[cfg(test)]
    pub(super) fn matches_exhaustive(&self, doc: &Document) -> Vec<RuleMatch> {
        self.matches_with(doc, &mut MatchScratch::default(), true)
    }

    /// Looks the document's tokens up in the term index (leaf
    /// occurrences), marks each touched rule's leaf mask, drops the
    /// candidates whose quick check is false, and evaluates the rest in
    /// full on their occurrences.
    fn matches_with(
        &self,
        doc: &Document,
        s: &mut MatchScratch,
        exhaustive: bool,
    ) -> Vec<RuleMatch> {
        let (n, nt) = (self.rules.len(), self.phrases.len());
        if s.dirty {
            s.state.iter_mut().for_each(|st| *st = 0);
            s.spans.iter_mut().for_each(|sp| *sp = (0, 0));
            s.candidates.iter_mut().for_each(|w| *w = 0);
            s.known.iter_mut().for_each(|w| *w = 0);
        }
        if s.state.len() < n {
            s.state.resize(n, 0);
        }
        if s.candidates.len() < n.div_ceil(64) {
            s.candidates.resize(n.div_ceil(64), 0);
            s.known.resize(n.div_ceil(64), 0);
        }
        if s.spans.len() < nt {
            s.spans.resize(nt, (0, 0));
        }
        s.dirty = true;
        s.occs.clear();
        s.touched.clear();
        s.found.clear();
        s.lookup.lex.ready(self.id, doc.epoch());
        for (i, stream) in doc.streams.iter().enumerate() {
            let ix = &self.index[stream.class];
            if !ix.is_empty() {
                self.lookup(doc, i as u32, stream, ix, &mut s.occs, &mut s.lookup);
            }
        }
        let MatchScratch {
            state,
            touched,
            candidates,
            known,
            occs,
            spans,
            found,
            hits,
            grouped,
            ..
        } = s;
        // Group by term, keeping each term's occurrences in stream and
        // position order: count, lay the groups out, scatter.
        for o in occs.iter() {
            if let Some(sp) = spans.get_mut(o.leaf as usize) {
                if sp.1 == 0 {
                    found.push(o.leaf);
                }
                sp.1 += 1;
            }
        }
        let mut at = 0;
        for &t in found.iter() {
            if let Some(sp) = spans.get_mut(t as usize) {
                let n = sp.1;
                *sp = (at, at);
                at += n;
            }
        }
        grouped.clear();
        grouped.resize(occs.len(), Occ::NONE);
        for o in occs.iter() {
            if let Some(sp) = spans.get_mut(o.leaf as usize) {
                if let Some(slot) = grouped.get_mut(sp.1 as usize) {
                    *slot = *o;
                }
                sp.1 += 1;
            }
        }
        std::mem::swap(occs, grouped);
        // Leaves of the terms found: mark their rules.
        for &t in found.iter() {
            let (a, b) = spans.get(t as usize).copied().unwrap_or((0, 0));
            let term_occs = occs.get(a as usize..b as usize).unwrap_or(&[]);
            let (la, lb) = (
                self.term_leaves_at.get(t as usize).copied().unwrap_or(0),
                self.term_leaves_at
                    .get(t as usize + 1)
                    .copied()
                    .unwrap_or(0),
            );
            for m in self.term_leaf.get(la as usize..lb as usize).unwrap_or(&[]) {
                // Found terms occur somewhere: only a leaf scoped to part
                // of the text may miss them.
                if scoped(m.field) && !in_region(doc, m.field, term_occs).any(|_| true) {
                    continue;
                }
                let Some(st) = state.get_mut(m.rule as usize) else {
                    continue;
                };
                if *st & TOUCHED == 0 {
                    touched.push(m.rule);
                }
                let bit = if m.bit < MASK_BITS { 1 << m.bit } else { 0 };
                *st |= TOUCHED | bit | if m.trigger { TRIGGERED } else { 0 };
            }
        }
        let all: Vec<u32>;
        let always = if exhaustive {
            all = (0..n as u32).collect();
            &all
        } else {
            &self.always
        };
        for &r in always {
            if let Some(st) = state.get_mut(r as usize) {
                if *st & TOUCHED == 0 {
                    touched.push(r);
                }
                *st |= TOUCHED | TRIGGERED;
            }
        }
        let feed = doc.values(4).first().map_or("", |s| s.as_str());
        // Words of `candidates` that may be non-zero.
        let (mut lo, mut hi) = (usize::MAX, 0);
        let mut count = 0usize;
        for &r in touched.iter() {
            let (Some(&st), Some(info)) = (state.get(r as usize), self.info.get(r as usize)) else {
                continue;
            };
            if st & TRIGGERED == 0 {
                continue;
            }
            let mask = st & LEAF_BITS;
            if info.feeds {
                let ok = self
                    .rules
                    .get(r as usize)
                    .and_then(|rule| rule.feeds.as_ref())
                    .is_none_or(|g| g.is_match(feed));
                if !ok {
                    continue;
                }
            }
            let known_true = match info.check(&self.ops, mask) {
                _ if exhaustive => false,
                Tri::False => continue,
                Tri::True => true,
                Tri::Unknown => false,
            };
            let (w, bit) = (r as usize / 64, 1u64 << (r % 64));
            if let (Some(c), Some(k)) = (candidates.get_mut(w), known.get_mut(w)) {
                *c |= bit;
                if known_true {
                    *k |= bit;
                }
                (lo, hi) = (lo.min(w), hi.max(w));
                count += 1;
            }
        }
        // Evaluated in rule order, so the matches come out sorted.
        let mut out = Vec::with_capacity(count);
        for w in lo..=hi {
            let (Some(c), Some(k)) = (candidates.get_mut(w), known.get_mut(w)) else {
                break;
            };
            let (mut bits, known_bits) = (std::mem::take(c), std::mem::take(k));
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                let r = (w * 64) as u32 + b;
                let mask = state.get(r as usize).map_or(0, |st| st & LEAF_BITS);
                let ev = Eval {
                    set: self,
                    doc,
                    occs,
                    spans,
                    mask,
                };
                if let Some(m) = self.evaluate(&ev, r, known_bits >> b & 1 == 1, hits) {
                    out.push(m);
                }
            }
        }
        for &r in touched.iter() {
            if let Some(st) = state.get_mut(r as usize) {
                *st = 0;
            }
        }
        for &t in found.iter() {
            if let Some(sp) = spans.get_mut(t as usize) {
                *sp = (0, 0);
            }
        }
        s.dirty = false;
        out
    }

    /// Evaluates rule `r` in full and builds its hits; `known_true` skips
    /// the yes/no pass.
    fn evaluate(
        &self,
        ev: &Eval<'_>,
        r: u32,
        known_true: bool,
        found: &mut Vec<Occ>,
    ) -> Option<RuleMatch> {
        let info = self.info.get(r as usize)?;
        let root = info.root as usize;
        found.clear();
        // A true rule whose mask tells which leaves give hits: their
        // occurrences, in the order evaluation would take them.
        let direct = match self.hit_leaves.get(info.spill as usize) {
            Some(t) if known_true && info.len == TABLE => {
                t.get(ev.mask as usize & ((1 << TABLE_BITS) - 1)).copied()
            }
            _ => None,
        };
        match direct {
            Some(bits) if bits != 0 => {
                let end = ev.next(root);
                for n in self.nodes.get(root..end).unwrap_or(&[]) {
                    if n.kind == NodeKind::Leaf && n.bit < 8 && bits >> n.bit & 1 == 1 {
                        ev.leaf_into(n, found);
                    }
                }
            }
            _ => {
                // Cheap yes/no first (most candidates fail), hits only then.
                if !known_true && !ev.truth(root, found) {
                    return None;
                }
                found.clear();
                if !ev.eval_into(root, found) {
                    return None;
                }
            }
        }
        // Room for at least 4 hits (128 bytes): exactly sized 1- and
        // 2-hit vectors are glibc fastbin chunks, which the next item's
        // large allocations consolidate, so that each item's hits land on
        // memory out of cache (twice the cache misses per item in
        // callgrind's cache simulation).
        let mut hits: Vec<Hit> = Vec::with_capacity(found.len().max(4));
        hits.extend(found.iter().map(|o| Hit {
            field: o.field,
            start: o.start as usize,
            end: o.end as usize,
            leaf: o.leaf,
        }));
        let key = |h: &Hit| {
            (
                !h.in_text(),
                if h.in_text() { Field::Text } else { h.field },
                h.start,
                h.end,
            )
        };
        // Often one leaf's occurrences, already in order: then no two
        // hits share a place and there is nothing to sort or merge.
        if hits.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            return Some(RuleMatch {
                rule: r as usize,
                hits,
            });
        }
        // Hits of leaves written alike at one place are one hit.
        let same = |a: &Hit, b: &Hit| {
            (a.field, a.start, a.end) == (b.field, b.start, b.end)
                && (a.leaf == b.leaf || self.term(a) == self.term(b))
        };
        hits.sort_unstable_by(|a, b| {
            key(a)
                .cmp(&key(b))
                .then_with(|| (a.field, self.term(a)).cmp(&(b.field, self.term(b))))
        });
        hits.dedup_by(|a, b| same(a, b));
        Some(RuleMatch {
            rule: r as usize,
            hits,
        })
    }

    /// Looks every token of `stream` up and records term occurrences.
    fn lookup(
        &self,
        doc: &Document,
        s: u32,
        stream: &Stream,
        ix: &Index,
        occs: &mut Vec<Occ>,
        scratch: &mut Scratch,
    ) {
        // Terms per distinct surface, looked up once per document: (start,
        // end) into `flat`, or with PERSISTENT into `lex.terms` for
        // surfaces the thread cache names.
        let Scratch {
            cache,
            flat,
            frontier,
            next,
            lex,
        } = scratch;
        cache.clear();
        cache.resize(doc.surface_count(), (UNSET, 0));
        flat.clear();
        for tok in &stream.toks {
            let sid = tok.surface as usize;
            let Some(&(a, b)) = cache.get(sid) else {
                continue;
            };
            let (a, b) = if a == UNSET {
                let r = match doc.lexeme(tok) {
                    Some(entry) => {
                        let slot = entry as usize * CLASSES + stream.class;
                        if lex.slot.len() <= slot {
                            let n = (slot + 1).next_power_of_two().max(4096);
                            lex.slot.resize(n, (UNSET, 0));
                        }
                        match lex.slot.get(slot).copied() {
                            Some((UNSET, _)) | None => {
                                let a = lex.terms.len() as u32;
                                self.terms_of(ix, doc, tok, &mut lex.terms);
                                let r = (a, lex.terms.len() as u32);
                                if let Some(x) = lex.slot.get_mut(slot) {
                                    *x = r;
                                }
                                (r.0 | PERSISTENT, r.1)
                            }
                            Some((a, b)) => (a | PERSISTENT, b),
                        }
                    }
                    None => {
                        let a = flat.len() as u32;
                        self.terms_of(ix, doc, tok, flat);
                        (a, flat.len() as u32)
                    }
                };
                if let Some(x) = cache.get_mut(sid) {
                    *x = r;
                }
                r
            } else {
                (a, b)
            };
            let terms = if a & PERSISTENT != 0 {
                lex.terms.get((a & !PERSISTENT) as usize..b as usize)
            } else {
                flat.get(a as usize..b as usize)
            };
            for &term in terms.unwrap_or(&[]) {
                self.occur(doc, s, stream, tok, term, occs, frontier, next);
            }
        }
    }

    /// Appends the terms token `tok` may start: its stem, its surface,
    /// and its folded word's prefixes, looked up in `ix`.
    fn terms_of(&self, ix: &Index, doc: &Document, tok: &Tok, out: &mut Vec<u32>) {
        if let Some(v) = ix.get(0, doc.key(tok)) {
            out.extend_from_slice(v);
        }
        if !ix.exact.is_empty() {
            if let Some(v) = ix.get(1, doc.surface(tok)) {
                out.extend_from_slice(v);
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
                if let Some(v) = word.get(..e).and_then(|p| ix.get(2, p)) {
                    out.extend_from_slice(v);
                }
            }
        }
    }

    /// Records `term` at `tok` if it occurs there (phrases are verified).
    #[allow(clippy::too_many_arguments)]
    fn occur(
        &self,
        doc: &Document,
        s: u32,
        stream: &Stream,
        tok: &Tok,
        term: u32,
        occs: &mut Vec<Occ>,
        frontier: &mut Vec<(u32, u32)>,
        next: &mut Vec<(u32, u32)>,
    ) {
        let (tag, term) = (term & TAG_MASK, term & !TAG_MASK);
        let (pos_end, end) = match tag {
            TAG_WORD => (tok.pos_end, tok.hl_end),
            TAG_EXACT => (tok.pos_end, tok.end),
            _ => match self.phrases.get(term as usize) {
                Some(Some(Phrase { words, slop, exact })) => {
                    match phrase_end(doc, stream, tok, words, *slop, *exact, frontier, next) {
                        Some(x) => x,
                        None => return,
                    }
                }
                _ => return,
            },
        };
        occs.push(Occ {
            leaf: term,
            stream: s,
            pos: tok.pos,
            pos_end,
            start: tok.start,
            end,
            field: Field::Text,
        });
    }
}

/// Whether a leaf in `field` sees only part of its stream's occurrences
/// (title, summary, content: part of the text stream).
fn scoped(field: Field) -> bool {
    matches!(field, Field::Title | Field::Summary | Field::Content)
}

/// The occurrences of a term that a leaf scoped to `field` may use: for
/// title, summary and content, those inside that part of the text.
fn in_region<'a>(doc: &Document, field: Field, occs: &'a [Occ]) -> impl Iterator<Item = &'a Occ> {
    let region = if class_of(field) == 0 {
        doc.region_pos(field)
    } else {
        0..u32::MAX
    };
    occs.iter()
        .filter(move |o| region.contains(&o.pos) && o.pos_end < region.end)
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
    let end_of = |t: &Tok| if exact { t.end } else { t.hl_end };
    let same = |t: &Tok, w: &str| {
        t.para == head.para
            && (slop > 0 || t.clean_before)
            && doc.form_bytes(t, exact) == w.as_bytes()
    };
    // Tokens that may hold the word after one ending at position `pe`.
    let after = |pe: u32| stream.between(pe + 1, (pe + 1).saturating_add(slop));
    let Some((last, middle)) = words.get(1..).and_then(|w| w.split_last()) else {
        return Some((head.pos_end, end_of(head)));
    };
    let start = [(head.pos_end, end_of(head))];
    let mut from: &[(u32, u32)] = &start;
    for w in middle {
        next.clear();
        for &(pe, _) in from {
            for t in after(pe) {
                if same(t, w) {
                    next.push((t.pos_end, end_of(t)));
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup_by_key(|x| x.0);
        std::mem::swap(frontier, next);
        from = frontier;
    }
    // The last word: the earliest end is all that is needed.
    let mut best: Option<(u32, u32)> = None;
    for &(pe, _) in from {
        for t in after(pe) {
            if same(t, last) {
                let e = (t.pos_end, end_of(t));
                best = Some(best.map_or(e, |b| b.min(e)));
            }
        }
    }
    best
}

/// One rule's evaluation on an item's term occurrences.
struct Eval<'a> {
    set: &'a RuleSet,
    doc: &'a Document,
    /// Term occurrences grouped by term, and each term's span.
    occs: &'a [Occ],
    spans: &'a [(u32, u32)],
    /// The rule's leaf mask (see [`Meta::bit`]).
    mask: u64,
}

impl Eval<'_> {
    /// Index of the node after node `i`'s subtree.
    fn next(&self, i: usize) -> usize {
        match self.set.nodes.get(i) {
            Some(n) if !matches!(n.kind, NodeKind::Leaf | NodeKind::Regex) => n.end as usize,
            _ => i + 1,
        }
    }

    /// Whether node `i` holds, without collecting occurrences (NEAR and
    /// regexes excepted: they collect into `scratch`, which is left as it
    /// was).
    fn truth(&self, i: usize, scratch: &mut Vec<Occ>) -> bool {
        let Some(n) = self.set.nodes.get(i) else {
            return false;
        };
        match n.kind {
            NodeKind::Leaf | NodeKind::Regex => self.has(n, scratch),
            NodeKind::Not => !self.truth(i + 1, scratch),
            NodeKind::And => {
                let mut c = i + 1;
                for _ in 0..n.arg {
                    if !self.truth(c, scratch) {
                        return false;
                    }
                    c = self.next(c);
                }
                n.arg > 0
            }
            NodeKind::Or => {
                let mut c = i + 1;
                for _ in 0..n.arg {
                    if self.truth(c, scratch) {
                        return true;
                    }
                    c = self.next(c);
                }
                false
            }
            NodeKind::Near | NodeKind::ONear => {
                if !self.truth(i + 1, scratch) || !self.truth(self.next(i + 1), scratch) {
                    return false;
                }
                let mark = scratch.len();
                let ok = self.eval_into(i, scratch);
                scratch.truncate(mark);
                ok
            }
        }
    }

    fn has(&self, n: &Node, scratch: &mut Vec<Occ>) -> bool {
        match n.kind {
            NodeKind::Regex => {
                let mark = scratch.len();
                let ok = self.leaf_into(n, scratch);
                scratch.truncate(mark);
                ok
            }
            _ if n.bit != NO_BIT => self.mask >> n.bit & 1 == 1,
            _ => in_region(self.doc, n.field, self.term_occs(n.end))
                .next()
                .is_some(),
        }
    }

    /// The occurrences of term `t`.
    fn term_occs(&self, t: u32) -> &[Occ] {
        let (a, b) = self.spans.get(t as usize).copied().unwrap_or((0, 0));
        self.occs.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// Whether node `i` holds; if so, appends the occurrences that
    /// contributed (none for a true NOT), else leaves `out` as it was.
    fn eval_into(&self, i: usize, out: &mut Vec<Occ>) -> bool {
        let Some(n) = self.set.nodes.get(i) else {
            return false;
        };
        let mark = out.len();
        let ok = match n.kind {
            // A leaf within the mask that did not occur in its region.
            NodeKind::Leaf if n.bit != NO_BIT && self.mask >> n.bit & 1 == 0 => false,
            NodeKind::Leaf | NodeKind::Regex => self.leaf_into(n, out),
            NodeKind::Not => {
                let t = self.truth(i + 1, out);
                !t
            }
            NodeKind::And => {
                let mut c = i + 1;
                let mut all = n.arg > 0;
                for _ in 0..n.arg {
                    if !self.eval_into(c, out) {
                        all = false;
                        break;
                    }
                    c = self.next(c);
                }
                all
            }
            NodeKind::Or => {
                let mut c = i + 1;
                let mut any = false;
                for _ in 0..n.arg {
                    any |= self.eval_into(c, out);
                    c = self.next(c);
                }
                any
            }
            NodeKind::Near | NodeKind::ONear => self.near_into(i, n, out),
        };
        if !ok {
            out.truncate(mark);
        }
        ok
    }

    /// [`Eval::eval_into`] for NEAR node `i` (`n`): kept out of line, it
    /// is rarely the hot path.
    #[inline(never)]
    fn near_into(&self, i: usize, n: &Node, out: &mut Vec<Occ>) -> bool {
        let mark = out.len();
        let (ordered, distance) = (n.kind == NodeKind::ONear, n.arg);
        // Both sides' occurrences go to `out` (left, then right)
        // and are filtered there.
        if !self.eval_into(i + 1, out) {
            return false;
        }
        let split = out.len();
        if !self.eval_into(self.next(i + 1), out) {
            out.truncate(mark);
            return false;
        }
        let near = |x: &Occ, y: &Occ| {
            if x.stream != y.stream {
                return false;
            }
            if x.pos_end < y.pos {
                y.pos - x.pos_end - 1 <= distance
            } else if !ordered && y.pos_end < x.pos {
                x.pos - y.pos_end - 1 <= distance
            } else {
                false
            }
        };
        // Left occurrences near a right one, kept in place; then
        // right ones near a kept left one (a left occurrence near
        // a right one is kept, so this is "near any left one").
        let end = out.len();
        let mut kept = mark;
        for k in mark..split {
            let x = out[k];
            if out[split..end].iter().any(|y| near(&x, y)) {
                out[kept] = x;
                kept += 1;
            }
        }
        if kept == mark {
            out.truncate(mark);
            return false;
        }
        let left = kept;
        for k in split..end {
            let y = out[k];
            if out[mark..left].iter().any(|x| near(x, &y)) {
                out[kept] = y;
                kept += 1;
            }
        }
        out.truncate(kept);
        true
    }

    /// Appends the occurrences of leaf node `n`; whether there were any.
    fn leaf_into(&self, n: &Node, out: &mut Vec<Occ>) -> bool {
        let mark = out.len();
        let id = n.arg;
        if n.kind != NodeKind::Regex {
            let occs = self.term_occs(n.end);
            let tag = |o: &Occ| Occ {
                leaf: id,
                field: n.field,
                ..*o
            };
            if scoped(n.field) {
                out.extend(in_region(self.doc, n.field, occs).map(tag));
            } else {
                out.extend(occs.iter().map(tag));
            }
        } else if let Some(Leaf {
            kind: LeafKind::Regex(re),
            field,
            ..
        }) = self.set.leaves.get(id as usize)
        {
            regex_occs(self.doc, id, *field, re, out);
        }
        out.len() > mark
    }
}

/// Non-empty matches of a regex leaf on the raw text of its field.
fn regex_occs(doc: &Document, leaf: u32, field: Field, re: &regex::Regex, out: &mut Vec<Occ>) {
    let class = class_of(field);
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
                field,
            });
        }
    };
    if class == 0 {
        let Some(stream) = doc.streams.first() else {
            return;
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
                Err(errs) => {
                    low.errors.extend(errs.into_iter().map(|e| RuleError {
                        at: loc.at(Some(e.offset)),
                        message: e.message,
                    }));
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
