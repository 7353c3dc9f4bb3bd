//! The item as rules see it: every field tokenized once into position
//! streams (see the module docs of [`super`] for the token rules).

use std::cell::RefCell;
use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use super::ast::Field;
use super::fx::FxMap;
use crate::text::{fold, stem, CharCursor};

/// The fields of one item, borrowed; [`Document::new`] copies what it needs.
#[derive(Debug, Clone, Copy)]
pub struct DocFields<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub content: &'a str,
    pub link: Option<&'a str>,
    pub authors: &'a [String],
    pub categories: &'a [String],
    /// The feed id.
    pub feed: &'a str,
}

/// Field classes with their own token streams and term index: the text
/// fields share one stream.
pub(super) const CLASSES: usize = 5;

pub(super) fn class_of(field: Field) -> usize {
    match field {
        Field::Text | Field::Title | Field::Summary | Field::Content => 0,
        Field::Link => 1,
        Field::Author => 2,
        Field::Category => 3,
        Field::Feed => 4,
    }
}

/// How a string is cut into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// UAX #29 words holding a letter or digit (text, authors, categories).
    Words,
    /// Runs of letters and digits (links, feed ids): `www.tass.ru` is
    /// `www`, `tass`, `ru`.
    Alnum,
}

pub(super) fn split_of(class: usize) -> Split {
    if class == 1 || class == 4 {
        Split::Alnum
    } else {
        Split::Words
    }
}

/// Words of `text` as `(byte offset, word)`.
pub(super) fn split_words(text: &str, split: Split) -> Vec<(usize, &str)> {
    match split {
        Split::Words if text.is_ascii() => ascii_words(text),
        Split::Words => common_words(text).unwrap_or_else(|| pieced_words(text)),
        Split::Alnum => {
            let mut out = Vec::new();
            let mut start = None;
            for (i, c) in text.char_indices() {
                match (c.is_alphanumeric(), start) {
                    (true, None) => start = Some(i),
                    (false, Some(s)) => {
                        out.push((s, &text[s..i]));
                        start = None;
                    }
                    _ => {}
                }
            }
            if let Some(s) = start {
                out.push((s, &text[s..]));
            }
            out
        }
    }
}

/// UAX #29 words of a `text` holding chars [`wb_class`] does not know,
/// without sending all of it down the slow path: the text is cut before
/// every ASCII letter or digit that follows an ASCII space, tab or line
/// break. Such a place is always a word boundary and no rule looks across
/// it (WB4, WB3c and WB5-WB13b need a char other than a space on its left;
/// rules that look two chars back or one ahead need a Mid char next to it;
/// regional-indicator parity stops at the letter). Each piece is split by
/// [`common_words`] when it can be, by `unicode_word_indices` otherwise.
/// Proptests in `common_tests` compare the result with the whole text's.
fn pieced_words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::with_capacity(text.len() / 6 + 1);
    let mut piece = |from: usize, to: usize| {
        let Some(p) = text.get(from..to) else {
            return;
        };
        match common_words(p) {
            Some(words) => out.extend(words.into_iter().map(|(i, w)| (from + i, w))),
            None => out.extend(
                p.unicode_word_indices()
                    .filter(|(_, w)| w.chars().any(char::is_alphanumeric))
                    .map(|(i, w)| (from + i, w)),
            ),
        }
    };
    let b = text.as_bytes();
    let mut start = 0;
    for i in 1..b.len() {
        if matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'\r') && b[i].is_ascii_alphanumeric() {
            piece(start, i);
            start = i;
        }
    }
    piece(start, b.len());
    out
}

/// UAX #29 words of an ASCII `text` holding a letter or digit: the same
/// as `unicode_word_indices` (rules WB5-WB13b restricted to ASCII: letters,
/// digits and `_` join; `:` `.` `'` between letters, `,` `;` `.` `'`
/// between digits).
fn ascii_words(text: &str) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::with_capacity(b.len() / 5 + 1);
    let mut i = 0;
    while i < b.len() {
        if !word(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut alnum = b[i] != b'_';
        i += 1;
        while i < b.len() {
            let c = b[i];
            if word(c) {
                alnum |= c != b'_';
                i += 1;
                continue;
            }
            let (prev, next) = (b[i - 1], b.get(i + 1).copied().unwrap_or(0));
            let letters = prev.is_ascii_alphabetic()
                && next.is_ascii_alphabetic()
                && matches!(c, b':' | b'.' | b'\'');
            let digits = prev.is_ascii_digit()
                && next.is_ascii_digit()
                && matches!(c, b',' | b';' | b'.' | b'\'');
            if letters || digits {
                i += 2;
            } else {
                break;
            }
        }
        if alnum {
            out.push((start, &text[start..i]));
        }
    }
    out
}

/// Word_Break classes (UAX #29) that matter between the characters
/// [`wb_class`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wb {
    /// ALetter.
    Letter,
    /// Numeric.
    Digit,
    /// ExtendNumLet (`_`).
    Under,
    /// MidLetter: joins two letters.
    MidLetter,
    /// MidNum: joins two digits.
    MidNum,
    /// MidNumLet or Single_Quote: joins two letters or two digits.
    MidNumLet,
    /// Anything that neither joins nor is part of a word (Other, spaces,
    /// line breaks, `"`).
    Break,
}

/// The Word_Break class of `c` for the characters whose class is known
/// here (ASCII, Latin-1 and Latin Extended-A/B letters, Cyrillic letters
/// and common punctuation, spaces and symbols of news text: none of them
/// alphanumeric unless a letter or digit, none Extend, Format, ZWJ,
/// Extended_Pictographic or a regional indicator); `None` for any other.
/// Checked against the Unicode tables by `common_tests`.
fn wb_class(c: char) -> Option<Wb> {
    Some(match c {
        'a'..='z' | 'A'..='Z' => Wb::Letter,
        '0'..='9' => Wb::Digit,
        '_' => Wb::Under,
        ':' | '\u{B7}' | '\u{2027}' => Wb::MidLetter,
        ',' | ';' => Wb::MidNum,
        '.' | '\'' | '\u{2018}' | '\u{2019}' | '\u{2024}' => Wb::MidNumLet,
        '\0'..='\x7f' => Wb::Break,
        '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{24F}' => Wb::Letter,
        '\u{400}'..='\u{481}' | '\u{48A}'..='\u{52F}' => Wb::Letter,
        // Latin-1 punctuation and symbols: not ª º µ ¸ (letters), the
        // soft hyphen (Format), © ® (pictographic), ² ³ ¹ ¼ ½ ¾ (numbers).
        '\u{85}'
        | '\u{A0}'..='\u{A8}'
        | '\u{AB}'
        | '\u{AC}'
        | '\u{AF}'..='\u{B1}'
        | '\u{B4}'
        | '\u{B6}'
        | '\u{BB}'
        | '\u{BF}'
        | '\u{D7}'
        | '\u{F7}' => Wb::Break,
        // Spaces (not the zero-width ones U+200B-U+200F), dashes, quotes,
        // bullets, `…`, line and paragraph separators (not the bidi
        // controls U+202A-U+202E or U+202F, which is ExtendNumLet),
        // `‰ ′ ″ ‹ ›`, currency signs, `№`.
        '\u{2000}'..='\u{200A}'
        | '\u{2010}'..='\u{2017}'
        | '\u{201A}'..='\u{2023}'
        | '\u{2025}'
        | '\u{2026}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{2030}'
        | '\u{2032}'
        | '\u{2033}'
        | '\u{2039}'
        | '\u{203A}'
        | '\u{20A0}'..='\u{20C0}'
        | '\u{2116}' => Wb::Break,
        _ => return None,
    })
}

/// UAX #29 words of `text` holding a letter or digit when every char of
/// `text` has a [`wb_class`] (`None` otherwise): the same as
/// `unicode_word_indices`, by rules WB5-WB13b restricted to those chars
/// (letters, digits and `_` join; MidLetter and MidNumLet between letters,
/// MidNum and MidNumLet between digits). Proptests in `common_tests`
/// compare the two.
fn common_words(text: &str) -> Option<Vec<(usize, &str)>> {
    let mut out = Vec::with_capacity(text.len() / 6 + 1);
    // The word being read: start, whether it has a letter or digit, the
    // class of its last char, its end, and a Mid char right after it.
    let mut word: Option<(usize, bool)> = None;
    let (mut last, mut end, mut mid) = (Wb::Break, 0, None);
    for (i, c) in text.char_indices() {
        let k = wb_class(c)?;
        match k {
            Wb::Letter | Wb::Digit | Wb::Under => {
                if let Some(m) = mid.take() {
                    let joins = match (last, k) {
                        (Wb::Letter, Wb::Letter) => matches!(m, Wb::MidLetter | Wb::MidNumLet),
                        (Wb::Digit, Wb::Digit) => matches!(m, Wb::MidNum | Wb::MidNumLet),
                        _ => false,
                    };
                    if !joins {
                        if let Some((s, true)) = word {
                            out.push((s, text.get(s..end)?));
                        }
                        word = None;
                    }
                }
                let (s, alnum) = word.unwrap_or((i, false));
                word = Some((s, alnum || k != Wb::Under));
                last = k;
                end = i + c.len_utf8();
            }
            Wb::MidLetter | Wb::MidNum | Wb::MidNumLet if word.is_some() && mid.is_none() => {
                mid = Some(k);
            }
            _ => {
                if let Some((s, true)) = word {
                    out.push((s, text.get(s..end)?));
                }
                word = None;
                mid = None;
            }
        }
    }
    if let Some((s, true)) = word {
        out.push((s, text.get(s..end)?));
    }
    Some(out)
}

/// One token of a stream. Regular tokens have `pos == pos_end`; a
/// hyphen-joined token ("de-mining" -> `demining`) spans the positions of
/// its parts. Char offsets are into the field string (see
/// [`Document::field_value`]).
#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub pos: u32,
    pub pos_end: u32,
    pub start: u32,
    pub end: u32,
    /// `end`, less a trailing possessive `'s`: where a stemmed hit stops.
    pub hl_end: u32,
    /// Paragraph number (blank lines separate paragraphs).
    pub para: u32,
    /// Only whitespace (at most one line break) and hyphens separate this
    /// token from the previous position.
    pub clean_before: bool,
    /// Surface id: the token exactly as written (a joined token: its parts
    /// concatenated) is [`Document::surface`]; equal surfaces of a document
    /// share one id, below [`Document::surface_count`].
    pub surface: u32,
}

/// The tokens of one field value.
#[derive(Debug, Clone)]
pub(super) struct Stream {
    pub class: usize,
    /// Value index within the class (authors and categories have several).
    pub value: usize,
    /// Char offset of the value in the field string.
    pub base: usize,
    /// Sorted by `pos`, a joined token right after the regular token at its
    /// start.
    pub toks: Vec<Tok>,
    /// `first_at[q]`: index of the first token at position `q`; one more
    /// entry than positions.
    pub first_at: Vec<u32>,
}

impl Stream {
    pub fn positions(&self) -> u32 {
        self.first_at.len().saturating_sub(1) as u32
    }

    /// Tokens starting at positions `a..=b` (clamped to the stream).
    pub fn between(&self, a: u32, b: u32) -> &[Tok] {
        let b = (b as usize).min(self.first_at.len().saturating_sub(2));
        match (self.first_at.get(a as usize), self.first_at.get(b + 1)) {
            (Some(&x), Some(&y)) if x <= y => self.toks.get(x as usize..y as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Tokens starting at position `q`.
    pub fn at(&self, q: u32) -> &[Tok] {
        let q = q as usize;
        match (self.first_at.get(q), self.first_at.get(q + 1)) {
            (Some(&a), Some(&b)) => &self.toks[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// An item tokenized for matching.
#[derive(Debug, Clone)]
pub struct Document {
    /// `title`, `summary` and `content` joined by blank lines (see
    /// [`Document::new`]).
    pub text: String,
    body_start: usize,
    /// Char ranges in `text` of title, summary, content.
    regions: [Range<usize>; 3],
    /// Token position ranges of title, summary, content in stream 0.
    region_pos: [Range<u32>; 3],
    /// Values of link, author, category, feed.
    values: [Vec<String>; 4],
    /// The same values joined by `\n`: what non-text hit offsets index.
    joined: [String; 4],
    pub(super) streams: Vec<Stream>,
    /// Surfaces, folded words and stems of the lexemes.
    lex: String,
    /// Distinct surface forms of the document, by surface id.
    lexemes: Vec<Lexeme>,
    /// Epoch of the thread cache the lexemes' entries belong to.
    epoch: u64,
}

impl Document {
    /// Joins the non-empty parts as `title\n\nsummary\n\ncontent`. `content`
    /// is skipped when it equals `summary`, and `summary` when `content`
    /// starts with it (whitespace-normalised, a trailing `…`/`...` of a
    /// truncated summary ignored). A skipped part still answers its field
    /// scope: `content:` then looks at the summary, and `summary:` at as
    /// many leading words of the content as the summary had.
    pub fn new(f: DocFields<'_>) -> Document {
        let (title, mut summary, mut content) =
            (f.title.trim(), f.summary.trim(), f.content.trim());
        let s = normalise_ws(summary);
        // Only compared with a non-empty summary.
        let c = if s.is_empty() {
            String::new()
        } else {
            normalise_ws(content)
        };
        let (mut content_is_summary, mut summary_words_of_content) = (false, None);
        if !s.is_empty() && s == c {
            content = "";
            content_is_summary = true;
        } else if !s.is_empty() && c.starts_with(strip_ellipsis(&s)) {
            summary_words_of_content =
                Some(split_words(strip_ellipsis(&s), Split::Words).len() as u32);
            summary = "";
        }
        let mut text = String::new();
        let mut regions: [Range<usize>; 3] = [0..0, 0..0, 0..0];
        let mut chars = 0;
        for (i, part) in [title, summary, content].into_iter().enumerate() {
            if part.is_empty() {
                regions[i] = chars..chars;
                continue;
            }
            if !text.is_empty() {
                text.push_str("\n\n");
                chars += 2;
            }
            let n = part.chars().count();
            text.push_str(part);
            regions[i] = chars..chars + n;
            chars += n;
        }
        let body_start = if title.is_empty() {
            0
        } else if summary.is_empty() && content.is_empty() {
            chars
        } else {
            title.chars().count() + 2
        };
        let values = [
            f.link.map(|l| vec![l.to_string()]).unwrap_or_default(),
            f.authors.to_vec(),
            f.categories.to_vec(),
            vec![f.feed.to_string()],
        ];
        let joined = values.clone().map(|v| v.join("\n"));
        let mut doc = Document {
            text,
            body_start,
            regions,
            region_pos: [0..0, 0..0, 0..0],
            values,
            joined,
            streams: Vec::new(),
            lex: String::new(),
            lexemes: Vec::new(),
            epoch: 0,
        };
        let (streams, lex, lexemes, epoch) = with_lex_cache(|cache| {
            let mut lex = Lexicon::new(cache, doc.text.len() / 8 + 16);
            let mut streams = vec![lex.stream(&doc.text, 0, 0, 0)];
            for (k, values) in doc.values.iter().enumerate() {
                let mut base = 0;
                for (v, value) in values.iter().enumerate() {
                    streams.push(lex.stream(value, k + 1, v, base));
                    base += value.chars().count() + 1;
                }
            }
            let epoch = lex.cache.epoch;
            (streams, lex.lex, lex.lexemes, epoch)
        });
        let empty = Stream {
            class: 0,
            value: 0,
            base: 0,
            toks: Vec::new(),
            first_at: vec![0],
        };
        let text_stream = streams.first().unwrap_or(&empty);
        let pos_of = |chars: &Range<usize>| -> Range<u32> {
            let a = text_stream
                .toks
                .partition_point(|t| (t.start as usize) < chars.start);
            let b = text_stream
                .toks
                .partition_point(|t| (t.start as usize) < chars.end);
            let pa = text_stream
                .toks
                .get(a)
                .map_or(text_stream.positions(), |t| t.pos);
            let pb = text_stream
                .toks
                .get(b)
                .map_or(text_stream.positions(), |t| t.pos);
            pa..pb.max(pa)
        };
        let mut region_pos = doc.regions.clone().map(|r| pos_of(&r));
        if content_is_summary {
            region_pos[2] = region_pos[1].clone();
            doc.regions[2] = doc.regions[1].clone();
        }
        if let Some(n) = summary_words_of_content {
            let c = region_pos[2].clone();
            region_pos[1] = c.start..(c.start + n).min(c.end);
            let end = text_stream
                .at(region_pos[1].end.saturating_sub(1))
                .first()
                .filter(|_| n > 0)
                .map_or(doc.regions[2].start, |t| t.end as usize);
            doc.regions[1] = doc.regions[2].start..end;
        }
        doc.region_pos = region_pos;
        doc.streams = streams;
        doc.lex = lex;
        doc.lexemes = lexemes;
        doc.epoch = epoch;
        doc
    }

    /// Char offset in `text` where the body (summary/content) starts; equal
    /// to the text's length when there is no body.
    pub fn body_start(&self) -> usize {
        self.body_start
    }

    /// The string a hit in `field` indexes (char offsets): `text` for the
    /// text fields, the values joined by `\n` for link, author, category
    /// and feed (one value for link and feed).
    pub fn field_value(&self, field: Field) -> &str {
        match class_of(field) {
            0 => &self.text,
            k => &self.joined[k - 1],
        }
    }

    /// The folded word and the stem of every token of the text stream
    /// (title, summary and content; hyphen-joined tokens included), in
    /// text order: what word, prefix and exact terms are compared with, so
    /// an index of them (the archive's) never misses what a rule finds.
    pub fn text_terms(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.streams
            .iter()
            .filter(|s| s.class == 0)
            .flat_map(|s| s.toks.iter())
            .map(move |t| (self.word(t), self.key(t)))
    }

    /// Char range in `text` of title / summary / content (`None` for the
    /// whole text and for the other fields).
    pub(super) fn region(&self, field: Field) -> Option<&Range<usize>> {
        match field {
            Field::Title => Some(&self.regions[0]),
            Field::Summary => Some(&self.regions[1]),
            Field::Content => Some(&self.regions[2]),
            _ => None,
        }
    }

    /// Position range in the text stream that a leaf scoped to `field` may
    /// use (everything for other fields).
    pub(super) fn region_pos(&self, field: Field) -> Range<u32> {
        match field {
            Field::Title => self.region_pos[0].clone(),
            Field::Summary => self.region_pos[1].clone(),
            Field::Content => self.region_pos[2].clone(),
            _ => 0..u32::MAX,
        }
    }

    /// The raw values of a non-text class (1 = link, ... 4 = feed).
    pub(super) fn values(&self, class: usize) -> &[String] {
        class
            .checked_sub(1)
            .and_then(|k| self.values.get(k))
            .map_or(&[], |v| v.as_slice())
    }

    /// The surface of token `t`.
    pub(super) fn surface(&self, t: &Tok) -> &str {
        self.lexemes
            .get(t.surface as usize)
            .map_or("", |x| span_in(&self.lex, x.surface))
    }

    /// The folded form of token `t`.
    pub(super) fn word(&self, t: &Tok) -> &str {
        self.lexemes
            .get(t.surface as usize)
            .map_or("", |x| span_in(&self.lex, x.word))
    }

    /// A name for token `t`'s surface that outlives the document: its
    /// entry in the thread cache of epoch [`Document::epoch`], the same for
    /// equal surfaces of every document built with that cache; `None` for
    /// surfaces not cached.
    pub(super) fn lexeme(&self, t: &Tok) -> Option<u32> {
        self.lexemes
            .get(t.surface as usize)
            .map(|x| x.entry)
            .filter(|&e| e != NO_LEXEME)
    }

    /// The epoch of the thread cache [`Document::lexeme`] names entries of
    /// (unique per cache and clearing, never 0).
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of distinct surfaces: surface ids are below this.
    pub(super) fn surface_count(&self) -> usize {
        self.lexemes.len()
    }

    /// The bytes of [`Document::surface`] (`exact`) or [`Document::key`]
    /// of token `t`, for comparisons.
    pub(super) fn form_bytes(&self, t: &Tok, exact: bool) -> &[u8] {
        let Some(x) = self.lexemes.get(t.surface as usize) else {
            return &[];
        };
        let (a, b) = if exact { x.surface } else { x.key };
        self.lex
            .as_bytes()
            .get(a as usize..b as usize)
            .unwrap_or(&[])
    }

    /// The stem of token `t`.
    pub(super) fn key(&self, t: &Tok) -> &str {
        self.lexemes
            .get(t.surface as usize)
            .map_or("", |x| span_in(&self.lex, x.key))
    }
}

/// Byte range of a string in an arena.
type Span = (u32, u32);

fn span_in(arena: &str, (a, b): Span) -> &str {
    arena.get(a as usize..b as usize).unwrap_or("")
}

/// Appends `s` to `arena`; its span there.
fn push_span(arena: &mut String, s: &str) -> Span {
    let a = arena.len() as u32;
    arena.push_str(s);
    (a, arena.len() as u32)
}

/// One distinct surface of a document with its folded word and stem, as
/// spans of [`Document::lex`].
#[derive(Debug, Clone, Copy)]
struct Lexeme {
    surface: Span,
    word: Span,
    key: Span,
    /// The surface's entry in the thread's [`LexCache`]; [`NO_LEXEME`]
    /// when it is not cached.
    entry: u32,
}

/// See [`Lexeme::entry`].
pub(super) const NO_LEXEME: u32 = u32::MAX;

/// Epochs of [`LexCache`]s: a fresh number for each new or cleared cache,
/// so `(epoch, entry)` names one surface for as long as the process runs.
static LEX_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_epoch() -> u64 {
    LEX_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Entries kept in a thread's [`LexCache`] before it starts over.
const LEX_CACHE_MAX: usize = 100_000;
/// Bytes of surfaces, folded words and stems kept in a thread's
/// [`LexCache`] before it starts over.
const LEX_CACHE_BYTES: usize = 8 << 20;
/// Longer surfaces are folded and stemmed every time, not cached.
const LEX_CACHE_WORD: usize = 64;

/// Surface -> folded word and stem, shared by the documents a thread
/// builds, so each distinct surface is folded and stemmed once per thread
/// rather than once per document. Bounded: it is cleared before a document
/// when it holds [`LEX_CACHE_MAX`] entries or [`LEX_CACHE_BYTES`] bytes of
/// strings, and only surfaces of at most [`LEX_CACHE_WORD`] bytes go in (a
/// document's other surfaces live in its [`Lexicon`]); so about 8 MiB of
/// strings plus 100,000 entries of table (~10 MB) per thread at most.
struct LexCache {
    ids: FxMap<Box<str>, u32>,
    entries: Vec<CacheEntry>,
    /// Folded words and stems.
    data: String,
    /// Bytes of strings held: keys and `data`.
    bytes: usize,
    /// Number of the document being built (see [`CacheEntry::doc`]).
    doc: u64,
    /// See [`next_epoch`].
    epoch: u64,
}

struct CacheEntry {
    /// Empty when the surface folds to nothing.
    word: Span,
    key: Span,
    /// The last document that used this surface, and its surface id there.
    doc: u64,
    sid: u32,
}

/// Surface id of a surface that folds to nothing (not a token).
const NO_SURFACE: u32 = u32::MAX;

thread_local! {
    static LEX_CACHE: RefCell<LexCache> = RefCell::new(LexCache::new());
}

impl LexCache {
    fn new() -> Self {
        LexCache {
            ids: FxMap::default(),
            entries: Vec::new(),
            data: String::new(),
            bytes: 0,
            doc: 0,
            epoch: next_epoch(),
        }
    }

    /// Starts a document: surface ids of earlier documents no longer count.
    fn begin(&mut self) {
        if self.entries.len() >= LEX_CACHE_MAX || self.bytes >= LEX_CACHE_BYTES {
            *self = LexCache {
                doc: self.doc,
                ..LexCache::new()
            };
        }
        self.doc += 1;
    }
}

/// Runs `f` with this thread's [`LexCache`] (a fresh one if it is in use).
fn with_lex_cache<T>(f: impl FnOnce(&mut LexCache) -> T) -> T {
    LEX_CACHE.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => f(&mut cache),
        Err(_) => f(&mut LexCache::new()),
    })
}

/// Appends a distinct surface with its folded word and stem to `lex`;
/// its surface id.
fn add_lexeme(
    lex: &mut String,
    lexemes: &mut Vec<Lexeme>,
    surface: &str,
    word: &str,
    key: &str,
    entry: u32,
) -> u32 {
    let s = push_span(lex, surface);
    let w = if word == surface {
        s
    } else {
        push_span(lex, word)
    };
    let k = if key == word { w } else { push_span(lex, key) };
    lexemes.push(Lexeme {
        surface: s,
        word: w,
        key: k,
        entry,
    });
    (lexemes.len() - 1) as u32
}

/// The distinct surfaces of one document, with their folded words and
/// stems (see [`LexCache`]).
struct Lexicon<'c> {
    cache: &'c mut LexCache,
    /// Surfaces not in the cache -> surface id ([`NO_SURFACE`]: none).
    uncached: FxMap<String, u32>,
    /// Surfaces, folded words and stems, one after another.
    lex: String,
    lexemes: Vec<Lexeme>,
    /// Scratch for hyphen-joined surfaces.
    joined: String,
}

impl<'c> Lexicon<'c> {
    fn new(cache: &'c mut LexCache, n: usize) -> Self {
        cache.begin();
        Lexicon {
            cache,
            uncached: FxMap::default(),
            lex: String::with_capacity(n * 12),
            lexemes: Vec::with_capacity(n),
            joined: String::new(),
        }
    }

    /// The surface id of a word as written; `None` when it folds to
    /// nothing.
    fn surface(&mut self, surface: &str) -> Option<u32> {
        let sid = self.surface_id(surface);
        (sid != NO_SURFACE).then_some(sid)
    }

    fn surface_id(&mut self, surface: &str) -> u32 {
        let Lexicon {
            cache,
            uncached,
            lex,
            lexemes,
            ..
        } = self;
        let LexCache {
            ids,
            entries,
            data,
            doc,
            ..
        } = &mut **cache;
        if let Some((id, e)) = ids
            .get(surface)
            .and_then(|&id| Some((id, entries.get_mut(id as usize)?)))
        {
            if e.doc != *doc {
                e.doc = *doc;
                e.sid = if e.word.0 == e.word.1 {
                    NO_SURFACE
                } else {
                    let (word, key) = (span_in(data, e.word), span_in(data, e.key));
                    add_lexeme(lex, lexemes, surface, word, key, id)
                };
            }
            return e.sid;
        }
        if let Some(&sid) = uncached.get(surface) {
            return sid;
        }
        let word = fold(surface);
        let key = if word.is_empty() {
            String::new()
        } else {
            stem(&word)
        };
        let cacheable = surface.len() <= LEX_CACHE_WORD && cache.entries.len() < NO_LEXEME as usize;
        let entry = if cacheable {
            cache.entries.len() as u32
        } else {
            NO_LEXEME
        };
        let sid = if word.is_empty() {
            NO_SURFACE
        } else {
            add_lexeme(lex, lexemes, surface, &word, &key, entry)
        };
        let cache = &mut **cache;
        if cacheable {
            let w = push_span(&mut cache.data, &word);
            let k = if key == word {
                w
            } else {
                push_span(&mut cache.data, &key)
            };
            cache.bytes += surface.len() + word.len() + key.len();
            cache.ids.insert(surface.into(), cache.entries.len() as u32);
            cache.entries.push(CacheEntry {
                word: w,
                key: k,
                doc: cache.doc,
                sid,
            });
        } else {
            uncached.insert(surface.to_string(), sid);
        }
        sid
    }

    /// Tokenizes one value: regular tokens, plus a joined token for every
    /// chain of 2 to 6 tokens separated by single hyphens.
    fn stream(&mut self, text: &str, class: usize, value: usize, base: usize) -> Stream {
        struct Raw<'a> {
            start: usize,
            end: usize,
            word: &'a str,
            surface: u32,
            hyphen_before: bool,
            clean_before: bool,
            para: u32,
        }
        let ascii = text.is_ascii();
        // Char offset of `prev_end`.
        let mut chars = 0;
        let words = split_words(text, split_of(class));
        let mut raw: Vec<Raw> = Vec::with_capacity(words.len());
        let mut para = 0;
        let mut prev_end = 0;
        for (byte, word) in words {
            let Some(surface) = self.surface(word) else {
                continue;
            };
            let gap = text.get(prev_end..byte).unwrap_or("");
            let (clean, hyphen) = if gap == " " {
                (true, false)
            } else {
                let breaks = line_breaks(gap);
                if breaks >= 2 && !raw.is_empty() {
                    para += 1;
                }
                let clean = breaks <= 1
                    && gap
                        .chars()
                        .all(|c| c.is_whitespace() || matches!(c, '-' | '‐' | '‑'));
                (clean, !raw.is_empty() && matches!(gap, "-" | "‐" | "‑"))
            };
            let (start, end) = if ascii {
                (byte, byte + word.len())
            } else {
                let start = chars + char_len(gap);
                (start, start + char_len(word))
            };
            chars = end;
            raw.push(Raw {
                start,
                end,
                word,
                surface,
                hyphen_before: hyphen,
                clean_before: clean,
                para,
            });
            prev_end = byte + word.len();
        }
        let mut toks = Vec::with_capacity(raw.len() + 4);
        let mut first_at = Vec::with_capacity(raw.len() + 1);
        let b = base as u32;
        // One token for raw words first..=last read as the surface `sid`:
        // a single word, or a hyphen-joined chain at the first word's place.
        let tok = |this: &Self, r: &Raw, l: &Raw, pos: usize, pos_end: usize, sid: u32| {
            let word = this
                .lexemes
                .get(sid as usize)
                .map_or("", |x| span_in(&this.lex, x.word));
            // A trailing possessive `'s` is left out of highlights.
            let hl_end = if word.ends_with("'s") && l.end - l.start > 2 {
                l.end - 2
            } else {
                l.end
            };
            Tok {
                pos: pos as u32,
                pos_end: pos_end as u32,
                start: b + r.start as u32,
                end: b + l.end as u32,
                hl_end: b + hl_end as u32,
                para: r.para,
                clean_before: r.clean_before,
                surface: sid,
            }
        };
        for (i, r) in raw.iter().enumerate() {
            first_at.push(toks.len() as u32);
            toks.push(tok(self, r, r, i, i, r.surface));
            if r.hyphen_before {
                continue;
            }
            let chain = raw
                .get(i + 1..raw.len().min(i + 6))
                .unwrap_or(&[])
                .iter()
                .take_while(|p| p.hyphen_before)
                .count();
            if let Some(l) = raw.get(i + chain).filter(|_| chain >= 1) {
                let mut joined = std::mem::take(&mut self.joined);
                joined.clear();
                for p in raw.get(i..=i + chain).unwrap_or(&[]) {
                    joined.push_str(p.word);
                }
                let sid = self.surface(&joined);
                self.joined = joined;
                if let Some(sid) = sid {
                    toks.push(tok(self, r, l, i, i + chain, sid));
                }
            }
        }
        first_at.push(toks.len() as u32);
        Stream {
            class,
            value,
            base,
            toks,
            first_at,
        }
    }
}

/// Chars in `s` (for the short strings between and of words: cheaper
/// than `chars().count()`).
fn char_len(s: &str) -> usize {
    // Every byte but UTF-8 continuation bytes (0b10xx_xxxx) starts a char.
    s.bytes().filter(|&b| (b as i8) >= -0x40).count()
}

/// Line breaks in `s`; `\r\n` counts once.
fn line_breaks(s: &str) -> usize {
    let mut n = 0;
    let mut prev_cr = false;
    for c in s.chars() {
        match c {
            '\n' if prev_cr => {}
            '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => n += 1,
            _ => {}
        }
        prev_cr = c == '\r';
    }
    n
}

fn normalise_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strip_ellipsis(s: &str) -> &str {
    ["[…]", "[...]", "…", "..."]
        .iter()
        .find_map(|e| s.strip_suffix(e))
        .unwrap_or(s)
        .trim_end()
}

/// Converts a byte range of `s` to a char range.
pub(super) fn char_range(s: &str, bytes: Range<usize>) -> Range<usize> {
    let mut c = CharCursor::new(s);
    let a = c.char_at(bytes.start);
    a..c.char_at(bytes.end)
}

/// Converts a char range of `s` to a byte range (clamped).
pub(super) fn byte_range(s: &str, chars: &Range<usize>) -> Range<usize> {
    let mut it = s.char_indices().map(|(b, _)| b).chain([s.len()]);
    let a = it.nth(chars.start).unwrap_or(s.len());
    let b = if chars.end > chars.start {
        it.nth(chars.end - chars.start - 1).unwrap_or(s.len())
    } else {
        a
    };
    a..b
}

#[cfg(test)]
mod ascii_tests {
    use super::*;
    use proptest::prelude::*;

    fn uax(text: &str) -> Vec<(usize, &str)> {
        text.unicode_word_indices()
            .filter(|(_, w)| w.chars().any(char::is_alphanumeric))
            .collect()
    }

    #[test]
    fn ascii_words_examples() {
        for t in [
            "U.S. a.b.c 1,000.5 can't it's a:b _a a_ __ _ a_.b 1.a a.1 a1.2 x'' ''x",
            "de-mining 40th Gen. Valery\r\n\nx;y 3;4 3:4 a,b",
            "",
            "...",
        ] {
            assert_eq!(ascii_words(t), uax(t), "{t:?}");
        }
    }

    proptest! {
        #[test]
        fn ascii_words_agree(text in "[aZ09_.,;:' \n\r\t!\"-]{0,40}") {
            prop_assert_eq!(ascii_words(&text), uax(&text));
        }

        #[test]
        fn ascii_words_agree_any_ascii(text in "[\\x00-\\x7f]{0,40}") {
            prop_assert_eq!(ascii_words(&text), uax(&text));
        }
    }
}

#[cfg(test)]
mod common_tests {
    use super::*;
    use proptest::prelude::*;

    fn uax(text: &str) -> Vec<(usize, &str)> {
        text.unicode_word_indices()
            .filter(|(_, w)| w.chars().any(char::is_alphanumeric))
            .collect()
    }

    /// Every char `wb_class` knows.
    fn known() -> impl Iterator<Item = char> {
        ('\0'..='\u{2200}').filter(|&c| wb_class(c).is_some())
    }

    /// Each known char between probes of every class: any char classed
    /// wrongly changes the words of one of these strings.
    #[test]
    fn every_known_char_is_classed_right() {
        let probes = [
            'a', 'я', 'é', '1', '_', '.', ',', ':', '\'', '’', ' ', '\n', '"', '·',
        ];
        let mut t = String::new();
        for c in known() {
            assert_eq!(common_words(&c.to_string()), Some(uax(&c.to_string())));
            for x in probes {
                for y in probes {
                    for s in [[x, c, y], [c, x, c], [x, y, c], [c, x, y]] {
                        t.clear();
                        t.extend(s);
                        assert_eq!(common_words(&t), Some(uax(&t)), "{t:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_chars_fall_back() {
        for t in [
            "Курск\u{AD}ой",
            "10\u{202F}000 руб",
            "м² и м³",
            "©Reuters",
            "Ко\u{301}рвет",
            "🔥 Удар",
            "Айдар\u{200D}",
        ] {
            assert_eq!(common_words(t), None, "{t:?}");
            assert_eq!(split_words(t, Split::Words), uax(t), "{t:?}");
        }
    }

    #[test]
    fn common_words_examples() {
        for t in [
            "«Курск» — 1,5 млн ₽, №\u{A0}5… Kursk’s O’Brien’s 3’4 а·б а‧б 1․2 а․б",
            "Ёлка_2024 café-au-lait Zelenský «Ёж»\r\n\nx;y 3;4 ‘quoted’",
            "",
            "…",
        ] {
            assert_eq!(common_words(t), Some(uax(t)), "{t:?}");
        }
    }

    /// Chars of generated strings: common ones of every class, the whole
    /// Latin and Cyrillic blocks, punctuation blocks with unknown chars.
    fn tricky() -> impl Strategy<Value = char> {
        prop_oneof![
            6 => prop::sample::select(vec![
                'a', 'Z', 'é', 'я', 'Ё', '1', '0', '_', '.', ',', ';', ':', '\'', '’',
                '‘', '·', '․', '‧', ' ', '\n', '\r', '-', '‐', '–', '—', '«', '»', '"',
                '\u{A0}', '…', '¸', 'ª', '²',
            ]),
            2 => prop::char::range('\u{C0}', '\u{24F}'),
            2 => prop::char::range('\u{400}', '\u{52F}'),
            1 => prop::char::range('\u{80}', '\u{BF}'),
            1 => prop::char::range('\u{2000}', '\u{2040}'),
            1 => prop::char::range('\u{20A0}', '\u{20C0}'),
        ]
    }

    proptest! {
        #[test]
        fn common_words_agree(chars in prop::collection::vec(
            tricky().prop_filter("known", |&c| wb_class(c).is_some()), 0..40)
        ) {
            let text: String = chars.into_iter().collect();
            prop_assert_eq!(common_words(&text), Some(uax(&text)));
        }

        #[test]
        fn pieced_words_agree(chars in prop::collection::vec(
            prop_oneof![
                12 => tricky(),
                4 => prop::sample::select(vec![' ', '\t', '\n', 'a', 'Z', '7']),
                3 => prop::sample::select(vec![
                    '\u{AD}', '\u{200D}', '\u{301}', '\u{483}', '\u{202F}', '\u{200B}',
                    '\u{2139}', '\u{1F525}', '\u{1F1F7}', '\u{1F1FA}', '\u{FE0F}', '\u{5D0}',
                    '\u{30A2}', '\u{4E00}', '\u{E01}', '²', '©',
                ]),
                1 => any::<char>(),
            ], 0..48)
        ) {
            let text: String = chars.into_iter().collect();
            prop_assert_eq!(pieced_words(&text), uax(&text));
        }

        #[test]
        fn split_words_agree(chars in prop::collection::vec(
            prop_oneof![20 => tricky(), 1 => any::<char>()], 0..40)
        ) {
            let text: String = chars.into_iter().collect();
            prop_assert_eq!(split_words(&text, Split::Words), uax(&text));
        }
    }
}

#[cfg(test)]
mod lexicon_tests {
    use super::*;
    use crate::text::{fold, stem};
    use proptest::prelude::*;

    fn doc(text: &str, authors: &[String]) -> Document {
        Document::new(DocFields {
            title: "",
            summary: "",
            content: text,
            link: Some("https://example.invalid/a-b/c"),
            authors,
            categories: &[],
            feed: "feed-1",
        })
    }

    fn chars(s: &str, r: Range<usize>) -> String {
        s.chars().skip(r.start).take(r.len()).collect()
    }

    /// A token's fields and strings.
    type Seen = ((u32, u32, u32, u32, u32, u32, bool), [String; 3]);

    /// Every token against the text it came from.
    fn check(d: &Document) -> Vec<Seen> {
        let mut ids: FxMap<String, u32> = FxMap::default();
        let mut out = Vec::new();
        for s in &d.streams {
            let value = match s.class {
                0 => d.text.as_str(),
                k => d.joined.get(k - 1).map_or("", |v| v.as_str()),
            };
            for t in &s.toks {
                let (surface, word, key) = (d.surface(t), d.word(t), d.key(t));
                let parts: String = (t.pos..=t.pos_end)
                    .filter_map(|q| s.at(q).first())
                    .map(|p| chars(value, p.start as usize..p.end as usize))
                    .collect();
                assert_eq!(surface, parts);
                assert_eq!(word, fold(surface));
                assert!(!word.is_empty());
                assert_eq!(key, stem(word));
                assert!((t.surface as usize) < d.surface_count());
                assert_eq!(
                    *ids.entry(surface.to_string()).or_insert(t.surface),
                    t.surface
                );
                let last = s.at(t.pos_end).first().map_or(0, |p| p.end - p.start);
                let hl = if word.ends_with("'s") && last > 2 {
                    2
                } else {
                    0
                };
                assert_eq!(t.hl_end, t.end - hl);
                out.push((
                    (
                        t.pos,
                        t.pos_end,
                        t.start,
                        t.end,
                        t.hl_end,
                        t.para,
                        t.clean_before,
                    ),
                    [surface, word, key].map(String::from),
                ));
            }
        }
        // Surface ids are dense: every id is some token's.
        assert_eq!(ids.len(), d.surface_count());
        out
    }

    #[test]
    fn tokens_read_their_text() {
        let long = "x".repeat(LEX_CACHE_WORD + 1);
        let text = format!(
            "Kursk’s de-mining DE-MINING {long} {long}-{long}, a-b-c-d-e-f-g-h \
             Курск «Курской» Ёлка-ёлка Zelenský\u{AD} \u{1acc} café 🔥 1,000.5\n\nU.S."
        );
        let authors = vec!["Jane Doe".to_string(), "Курск".to_string()];
        let first = check(&doc(&text, &authors));
        check(&doc("Other words, Kursk", &[]));
        // The second time from the thread's cache.
        assert_eq!(check(&doc(&text, &authors)), first);
        // And without it.
        let fresh = LEX_CACHE.with(|c| {
            let _busy = c.borrow_mut();
            check(&doc(&text, &authors))
        });
        assert_eq!(fresh, first);
    }

    #[test]
    fn cache_starts_over_when_full() {
        let mut cache = LexCache::new();
        let mut lex = Lexicon::new(&mut cache, 4);
        assert!(lex.surface("Word").is_some());
        assert!(lex.surface("\u{1acc}").is_none());
        assert_eq!(lex.surface("Word"), Some(0));
        assert_eq!(cache.entries.len(), 2);
        let doc = cache.doc;
        cache.bytes = LEX_CACHE_BYTES;
        cache.begin();
        assert!(cache.entries.is_empty() && cache.ids.is_empty() && cache.bytes == 0);
        assert_eq!(cache.doc, doc + 1);
    }

    fn words() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "Kursk",
            "kursk’s",
            "KURSK",
            "Курск",
            "курской",
            "Ёлка",
            "de",
            "mining",
            "1,5",
            "U.S",
            "café",
            "Café",
            "x_y",
            "\u{1acc}",
            "🔥",
            "it's",
        ]);
        let sep = prop::sample::select(vec![" ", "-", "‐", " - ", "\n", "\n\n", ", ", "«", "» "]);
        prop::collection::vec((word, sep), 0..30)
            .prop_map(|v| v.into_iter().flat_map(|(w, s)| [w, s]).collect())
    }

    proptest! {
        #[test]
        fn tokens_agree_with_their_text(a in words(), b in words()) {
            let first = check(&doc(&a, std::slice::from_ref(&b)));
            check(&doc(&b, std::slice::from_ref(&a)));
            prop_assert_eq!(check(&doc(&a, &[b])), first);
        }
    }
}
