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
        Split::Words => common_words(text).unwrap_or_else(|| {
            text.unicode_word_indices()
                .filter(|(_, w)| w.chars().any(char::is_alphanumeric))
                .collect()
        }),
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
    /// Index into [`Document::words`].
    pub word: u32,
    /// Index into [`Document::surfaces`]: the token exactly as written (a
    /// joined token: its parts concatenated).
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
    /// Distinct surface forms of the document.
    surfaces: Vec<String>,
    /// Distinct folded words of the document.
    words: Vec<String>,
    /// `word_key[w]`: index into `keys` of the stem of `words[w]`.
    word_key: Vec<u32>,
    /// Distinct stems.
    keys: Vec<String>,
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
            surfaces: Vec::new(),
            words: Vec::new(),
            word_key: Vec::new(),
            keys: Vec::new(),
        };
        let mut lex = Lexicon::with_capacity(doc.text.len() / 8 + 16);
        let text_stream = lex.stream(&doc.text, 0, 0, 0);
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
        let mut streams = vec![text_stream];
        for (k, values) in doc.values.iter().enumerate() {
            let mut base = 0;
            for (v, value) in values.iter().enumerate() {
                streams.push(lex.stream(value, k + 1, v, base));
                base += value.chars().count() + 1;
            }
        }
        doc.streams = streams;
        doc.surfaces = lex.take_surfaces();
        doc.words = lex.words;
        doc.word_key = lex.word_key;
        doc.keys = lex.keys;
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
        self.surfaces
            .get(t.surface as usize)
            .map_or("", |s| s.as_str())
    }

    /// The folded form of token `t`.
    pub(super) fn word(&self, t: &Tok) -> &str {
        self.words.get(t.word as usize).map_or("", |s| s.as_str())
    }

    /// Number of distinct surfaces: surface ids are below this.
    pub(super) fn surface_count(&self) -> usize {
        self.surfaces.len()
    }

    /// The stem of token `t`.
    pub(super) fn key(&self, t: &Tok) -> &str {
        self.word_key
            .get(t.word as usize)
            .and_then(|&k| self.keys.get(k as usize))
            .map_or("", |s| s.as_str())
    }
}

/// Distinct surfaces, words and stems of one document: each distinct
/// surface is folded once and each distinct folded word stemmed once (via a
/// per-thread cache shared by the documents a thread handles).
struct Lexicon {
    surface_ids: FxMap<String, u32>,
    surface_word: Vec<u32>,
    word_ids: FxMap<String, u32>,
    words: Vec<String>,
    word_key: Vec<u32>,
    key_ids: FxMap<String, u32>,
    keys: Vec<String>,
}

/// Entries kept in the per-thread stem cache before it starts over.
const STEM_CACHE_MAX: usize = 100_000;

thread_local! {
    static STEMS: RefCell<FxMap<String, String>> = RefCell::new(FxMap::default());
}

impl Lexicon {
    fn with_capacity(n: usize) -> Self {
        Lexicon {
            surface_ids: FxMap::with_capacity_and_hasher(n, Default::default()),
            surface_word: Vec::with_capacity(n),
            word_ids: FxMap::with_capacity_and_hasher(n, Default::default()),
            words: Vec::with_capacity(n),
            word_key: Vec::with_capacity(n),
            key_ids: FxMap::with_capacity_and_hasher(n, Default::default()),
            keys: Vec::with_capacity(n),
        }
    }

    /// The word id of a folded word.
    fn word(&mut self, folded: String) -> u32 {
        if let Some(&id) = self.word_ids.get(&folded) {
            return id;
        }
        let (key_ids, keys) = (&mut self.key_ids, &mut self.keys);
        let k = STEMS.with(|cache| {
            let mut cache = cache.borrow_mut();
            let mut intern = |key: &str| match key_ids.get(key) {
                Some(&k) => k,
                None => {
                    let next = keys.len() as u32;
                    key_ids.insert(key.to_string(), next);
                    keys.push(key.to_string());
                    next
                }
            };
            if let Some(key) = cache.get(&folded) {
                return intern(key);
            }
            if cache.len() >= STEM_CACHE_MAX {
                cache.clear();
            }
            let key = stem(&folded);
            let k = intern(&key);
            cache.insert(folded.clone(), key);
            k
        });
        let id = self.words.len() as u32;
        self.word_ids.insert(folded.clone(), id);
        self.words.push(folded);
        self.word_key.push(k);
        id
    }

    /// The surface id of a word as written; `None` when it folds to
    /// nothing.
    fn surface(&mut self, word: &str) -> Option<u32> {
        if let Some(&id) = self.surface_ids.get(word) {
            return (id != u32::MAX).then_some(id);
        }
        let folded = fold(word);
        if folded.is_empty() {
            self.surface_ids.insert(word.to_string(), u32::MAX);
            return None;
        }
        let w = self.word(folded);
        let id = self.surface_word.len() as u32;
        self.surface_ids.insert(word.to_string(), id);
        self.surface_word.push(w);
        Some(id)
    }

    /// Surfaces by id.
    fn take_surfaces(&mut self) -> Vec<String> {
        let mut out = vec![String::new(); self.surface_word.len()];
        for (s, id) in self.surface_ids.drain() {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = s;
            }
        }
        out
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
        let mut cursor = CharCursor::new(text);
        let mut raw: Vec<Raw> = Vec::new();
        let mut para = 0;
        let mut prev_end = 0;
        for (byte, word) in split_words(text, split_of(class)) {
            let Some(surface) = self.surface(word) else {
                continue;
            };
            let gap = &text[prev_end..byte];
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
            let start = cursor.char_at(byte);
            let end = start + word.chars().count();
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
        let possessive = |folded: &str, start: usize, end: usize| {
            if folded.ends_with("'s") && end - start > 2 {
                end - 2
            } else {
                end
            }
        };
        // One token for raw words first..=last read as the surface `sid`:
        // a single word, or a hyphen-joined chain at the first word's place.
        let tok = |this: &Self, first: usize, last: usize, sid: u32| {
            let (r, l) = (&raw[first], &raw[last]);
            let word = this.surface_word[sid as usize];
            Tok {
                pos: first as u32,
                pos_end: last as u32,
                start: b + r.start as u32,
                end: b + l.end as u32,
                hl_end: b + possessive(&this.words[word as usize], l.start, l.end) as u32,
                para: r.para,
                clean_before: r.clean_before,
                word,
                surface: sid,
            }
        };
        for i in 0..raw.len() {
            let r = &raw[i];
            first_at.push(toks.len() as u32);
            toks.push(tok(self, i, i, r.surface));
            let chain_start = !r.hyphen_before;
            let mut j = i + 1;
            while chain_start && j < raw.len() && raw[j].hyphen_before && j - i < 6 {
                j += 1;
            }
            if chain_start && j - i >= 2 {
                let surface: String = raw[i..j].iter().map(|p| p.word).collect();
                if let Some(sid) = self.surface(&surface) {
                    toks.push(tok(self, i, j - 1, sid));
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
        fn split_words_agree(chars in prop::collection::vec(
            prop_oneof![20 => tricky(), 1 => any::<char>()], 0..40)
        ) {
            let text: String = chars.into_iter().collect();
            prop_assert_eq!(split_words(&text, Split::Words), uax(&text));
        }
    }
}
