//! Story clustering: which new items are copies of a story already seen
//! within the story window, across all feeds. Pure: no I/O and no clock
//! (every call takes the time); the pipeline asks, `state` persists.
//!
//! # Method
//!
//! An item's text for clustering is its title followed by its lead (the
//! first [`LEAD_WORDS`] words of the summary, else of the content). It is
//! split with [`crate::text::tokenize`] (UAX #29 words, case- and
//! accent-folded in every script, `ё` = `е`), stemmed by script
//! ([`crate::text::stem`]: Snowball English / Russian), and English and
//! Russian function words are dropped. Its *shingles* are the hashes of
//! consecutive word pairs (bigrams). Bigrams rather than single words keep
//! two different stories about the same subject apart: they share names
//! and places ("central bank", "Kursk") but rarely word pairs.
//!
//! Each item gets a MinHash signature of [`K`] 32-bit minima (one
//! independent hash function per slot) and the number of distinct shingles.
//! Two signatures agree in a slot with probability equal to the Jaccard
//! similarity of the two shingle sets, so the share of equal slots
//! estimates it (standard error ≤ 0.0625 at K = 64).
//!
//! *Candidates* come from LSH banding: [`BANDS`] bands of [`ROWS`] slots;
//! items that agree on every slot of at least one band share a bucket. With
//! 32 bands of 2 rows, an item with Jaccard 0.3 to a stored one is a
//! candidate with probability 1 − (1 − 0.3²)³² ≈ 0.95, at 0.2 ≈ 0.73.
//! Lookups cost one hash probe per band, and a chain walk bounded by
//! [`MAX_CHAIN`]: no pairwise comparison with the window.
//!
//! *Verification* of a candidate uses the estimated Jaccard `j` and the
//! two set sizes `a`, `b`: the estimated intersection is
//! `j (a + b) / (1 + j)`, and the containment is that over `min(a, b)`.
//! An item joins a story when `j ≥` [`MIN_JACCARD`] or the containment is
//! `≥` [`MIN_CONTAINMENT`] (with the smaller set at least
//! [`MIN_CONTAINED`] shingles): Jaccard catches syndicated copies and new
//! headlines over the same lead; containment catches trimmed copies (a
//! subset) and copies wrapped in agency boilerplate (a superset). The best
//! scoring candidate's story wins; stories never merge afterwards, so a
//! story id, once given, stays.
//!
//! Why MinHash + LSH and not SimHash: SimHash estimates cosine similarity
//! of weighted features and cannot tell containment from similarity, and
//! its multi-table lookup for a Hamming radius of 3–4 over 64 bits needs
//! 10–20 tables for the same recall; MinHash gives Jaccard and, with the
//! set sizes, containment, with one table.
//!
//! Items with fewer than [`MIN_SHINGLES`] shingles (a one- or two-word
//! headline without a lead) get no signature: they are stories of their
//! own and never match.
//!
//! # The index and its bounds
//!
//! [`StoryIndex`] holds the items of the last `window`, in arrival order,
//! numbered by a sequence number. Their signatures (256 bytes), chain
//! links (32 × 4 bytes) and entries (48 bytes) live in blocks of 1,024
//! items allocated whole; a block goes (kept as a spare for the next one)
//! when all its items have expired, so storage follows the window in
//! steps of ~440 KB and is never copied into a larger allocation.
//!
//! The bucket table is an array of slots (a power of two, at least one per
//! band key of the live items: 32 per item), each holding the newest entry
//! whose band key lands there; chains run newest first through the links,
//! so a walk stops at the first expired entry. A slot is shared by the
//! band keys that land on it: a walk takes only the entries whose band
//! minima equal the item's (at most [`MAX_CHAIN`] of them, after at most
//! [`MAX_WALK`] links). When the live items outgrow it, or shrink to a
//! quarter of it, the table is rebuilt at the new size: the old one is
//! freed first, then every live entry is linked into the new one (and
//! sequence numbers restart from the first block), so the two never coexist.
//! [`StoryIndex::with_capacity`] sizes it up front (the daemon passes the
//! number of rows it restores).
//!
//! Per item that is about 432 bytes of block, 128–256 bytes of table
//! (at a load of 1 to 0.5), a slot in the item-key map (~16–32 bytes) and,
//! per story, a record in the story map (~75–150 bytes). `benches/story.rs`
//! measures it with 100,000 items in the window, including the highest
//! point while it fills and runs: see docs/stories.md.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::text;

/// MinHash slots per signature.
pub const K: usize = 64;
/// LSH bands …
pub const BANDS: usize = 32;
/// … of this many slots each (`BANDS * ROWS == K`).
pub const ROWS: usize = 2;
/// Words of the summary (else the content) that count as the lead, after
/// function words are dropped.
pub const LEAD_WORDS: usize = 45;
/// Title words used (after function words are dropped).
pub const TITLE_WORDS: usize = 30;
/// Fewer shingles than this: no signature, a story of its own.
pub const MIN_SHINGLES: u32 = 3;
/// Estimated Jaccard at or above which two items are one story.
pub const MIN_JACCARD: f64 = 0.38;
/// Estimated containment at or above which two items are one story …
pub const MIN_CONTAINMENT: f64 = 0.7;
/// … when the smaller one has at least this many shingles.
pub const MIN_CONTAINED: u32 = 8;
/// Longest bucket chain walked per band (most recent entries first).
pub const MAX_CHAIN: usize = 64;
/// Candidates verified per item at most: those sharing the most bands
/// (then the most recent). Text whose word pairs recur across many items
/// (a corpus built from small word lists did) fills buckets; without this
/// bound every item was compared with thousands (a 5,000-feed first cycle
/// spent 60 % of its CPU here).
pub const MAX_VERIFIED: usize = 256;
/// Bumped whenever the signature scheme changes: stored signatures of
/// another version are not restored.
pub const SIGNATURE_VERSION: i64 = 1;

const NONE: u32 = u32::MAX;

/// A MinHash signature and the size of the shingle set it summarises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub mins: [u32; K],
    pub shingles: u32,
}

impl Signature {
    /// Little-endian bytes of the minima (for storage).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.mins.iter().flat_map(|m| m.to_le_bytes()).collect()
    }

    /// The inverse of [`Signature::to_bytes`]; `None` for a blob of the
    /// wrong length.
    pub fn from_bytes(bytes: &[u8], shingles: u32) -> Option<Signature> {
        if bytes.len() != K * 4 {
            return None;
        }
        let mut mins = [0u32; K];
        for (m, c) in mins.iter_mut().zip(bytes.chunks_exact(4)) {
            *m = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Some(Signature { mins, shingles })
    }

    /// Estimated Jaccard similarity: the share of equal slots.
    pub fn jaccard(&self, other: &Signature) -> f64 {
        let same = self
            .mins
            .iter()
            .zip(other.mins.iter())
            .filter(|(a, b)| a == b)
            .count();
        same as f64 / K as f64
    }

    /// The estimated Jaccard and containment (estimated intersection over
    /// the smaller set) of two signatures.
    pub fn similarity(&self, other: &Signature) -> (f64, f64) {
        let j = self.jaccard(other);
        let (a, b) = (self.shingles as f64, other.shingles as f64);
        let inter = j * (a + b) / (1.0 + j);
        let small = a.min(b).max(1.0);
        (j, (inter / small).min(1.0))
    }

    /// Whether two signatures are one story, and how strongly (higher is
    /// closer); `None` below the thresholds.
    pub fn same_story(&self, other: &Signature) -> Option<f64> {
        let (j, c) = self.similarity(other);
        let small = self.shingles.min(other.shingles);
        if j >= MIN_JACCARD {
            Some(1.0 + j)
        } else if small >= MIN_CONTAINED && c >= MIN_CONTAINMENT {
            Some(c)
        } else {
            None
        }
    }
}

/// splitmix64's finaliser: a fast, well-mixed 64-bit permutation. Fixed
/// (not randomly seeded): signatures are stored and compared across runs.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a over the bytes, then [`mix`].
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// English and Russian function words (folded): dropped before shingling,
/// so "said on Tuesday" and "said Tuesday" give the same pairs.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "after",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "his",
    "in",
    "into",
    "is",
    "it",
    "its",
    "of",
    "on",
    "or",
    "over",
    "said",
    "says",
    "she",
    "than",
    "that",
    "the",
    "their",
    "there",
    "they",
    "this",
    "to",
    "was",
    "were",
    "which",
    "who",
    "will",
    "with",
    "would",
    "в",
    "во",
    "на",
    "и",
    "с",
    "со",
    "по",
    "к",
    "ко",
    "у",
    "о",
    "об",
    "от",
    "до",
    "за",
    "из",
    "для",
    "не",
    "что",
    "как",
    "это",
    "он",
    "она",
    "они",
    "его",
    "ее",
    "их",
    "а",
    "но",
    "же",
    "бы",
    "был",
    "была",
    "были",
    "было",
    "будет",
    "также",
    "при",
    "после",
    "сообщил",
    "сообщила",
    "сообщили",
    "заявил",
    "заявила",
    "заявили",
];

fn is_stopword(w: &str) -> bool {
    STOPWORDS.contains(&w)
}

/// The normalised words of a text: folded, function words dropped,
/// stemmed; at most `max`.
pub fn words(text_in: &str, max: usize) -> Vec<String> {
    text::tokenize(text_in)
        .into_iter()
        .filter(|t| !is_stopword(&t.folded))
        .take(max)
        .map(|t| text::stem(&t.folded))
        .collect()
}

/// The lead: the summary, else the content.
pub fn lead<'a>(summary: &'a str, content: &'a str) -> &'a str {
    if summary.trim().is_empty() {
        content
    } else {
        summary
    }
}

/// The sorted, distinct shingle hashes of a title and lead.
pub fn shingles(title: &str, lead: &str) -> Vec<u64> {
    let mut w = words(title, TITLE_WORDS);
    w.extend(words(lead, LEAD_WORDS));
    let mut out: Vec<u64> = w
        .windows(2)
        .map(|p| {
            let a = hash_bytes(p[0].as_bytes());
            let b = hash_bytes(p[1].as_bytes());
            mix(a ^ b.rotate_left(17))
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The signature of a title and lead; `None` when it has fewer than
/// [`MIN_SHINGLES`] shingles.
pub fn signature(title: &str, lead: &str) -> Option<Signature> {
    signature_of(&shingles(title, lead))
}

/// The MinHash signature of a set of shingle hashes.
pub fn signature_of(shingles: &[u64]) -> Option<Signature> {
    if (shingles.len() as u32) < MIN_SHINGLES {
        return None;
    }
    let mut mins = [u32::MAX; K];
    for &s in shingles {
        for (i, m) in mins.iter_mut().enumerate() {
            let seed = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let v = (mix(s ^ seed) >> 32) as u32;
            if v < *m {
                *m = v;
            }
        }
    }
    Some(Signature {
        mins,
        shingles: shingles.len() as u32,
    })
}

fn band_key(band: usize, mins: &[u32]) -> u64 {
    let mut h = mix(band as u64 + 1);
    for &m in mins {
        h = mix(h ^ u64::from(m));
    }
    h
}

/// A story id: stable (the hash of the first item's feed and key).
pub type StoryId = u64;

/// The text form of a story id: 16 hex digits.
pub fn story_id_text(id: StoryId) -> String {
    format!("{id:016x}")
}

/// Parses [`story_id_text`].
pub fn parse_story_id(s: &str) -> Option<StoryId> {
    u64::from_str_radix(s, 16).ok()
}

/// The identity of an item: (feed id, item key).
pub fn item_hash(feed: &str, key: &str) -> u64 {
    let mut b = Vec::with_capacity(feed.len() + key.len() + 1);
    b.extend_from_slice(feed.as_bytes());
    b.push(0);
    b.extend_from_slice(key.as_bytes());
    hash_bytes(&b)
}

/// What the index decided for an item.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub story: StoryId,
    /// The item started the story.
    pub first: bool,
    /// The rules that earlier items of the story matched: for these rules
    /// this item is a repeat.
    pub prior_rules: Vec<String>,
    /// Estimated Jaccard with the item it was matched to (0 for a first).
    pub jaccard: f64,
}

/// What an alert says about its story.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryView {
    pub id: StoryId,
    pub first_seen: DateTime<Utc>,
    /// Feed ids in order of first appearance.
    pub sources: Vec<String>,
    /// Items of the story in the window.
    pub items: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    at: i64,
    item: u64,
    story: StoryId,
    shingles: u32,
    /// The story's rules (interned) when this item arrived.
    prior: Box<[u32]>,
}

#[derive(Debug, Clone)]
struct StoryRec {
    first_seen: i64,
    sources: Vec<u32>,
    rules: Vec<u32>,
    live: u32,
}

/// Entries per storage block (a power of two).
const BLOCK: usize = 1 << BLOCK_SHIFT;
const BLOCK_SHIFT: u32 = 10;
/// The smallest bucket table (slots).
const MIN_SLOTS: usize = 1 << 12;
/// Chain links walked per band at most, sharing the band or not (a
/// bucket slot is shared by every band key that lands on it; at most
/// [`MAX_CHAIN`] of the walked entries that do share it are taken).
const MAX_WALK: usize = 4 * MAX_CHAIN;

/// `BLOCK` consecutive entries with their minima and chain links,
/// allocated whole: the index grows and shrinks by blocks, never by
/// copying its storage into a larger allocation.
#[derive(Debug)]
struct Block {
    entries: Vec<Entry>,
    /// `K` minima per entry.
    sigs: Box<[u32]>,
    /// `BANDS` links per entry: the previous entry (sequence number) in
    /// the same bucket slot, or `NONE`.
    next: Box<[u32]>,
}

impl Block {
    fn new() -> Block {
        Block {
            entries: Vec::with_capacity(BLOCK),
            sigs: vec![0; BLOCK * K].into_boxed_slice(),
            next: vec![NONE; BLOCK * BANDS].into_boxed_slice(),
        }
    }
}

/// A store of the items seen in the last window, by signature. See the
/// module docs for the method and the memory per item.
///
/// Entries have sequence numbers in arrival order; those before `start`
/// have expired. Storage is a queue of fixed-size blocks: the block
/// holding sequence number `base` is the first, whole expired blocks are
/// released from the front (one kept for reuse).
#[derive(Debug)]
pub struct StoryIndex {
    window_ms: i64,
    blocks: std::collections::VecDeque<Block>,
    /// A released block kept for the next one needed.
    spare: Option<Block>,
    /// Sequence number of the first slot of `blocks[0]`.
    base: u32,
    /// Oldest live entry.
    start: u32,
    /// The next entry's sequence number.
    end: u32,
    /// Renumbering point (below `NONE`; lowered by unit tests).
    seq_limit: u32,
    /// Bucket table: slot (band key & `mask`) -> newest entry in it, or
    /// `NONE`. Slots are shared by the band keys landing on them; a walk
    /// takes only the entries whose band minima equal the item's.
    heads: Vec<u32>,
    mask: usize,
    /// The table never shrinks below this (the capacity asked for).
    min_slots: usize,
    last_at: i64,
    members: HashMap<u64, u32, BuildMixed>,
    stories: HashMap<StoryId, StoryRec, BuildMixed>,
    names: Vec<String>,
    name_ids: HashMap<String, u32>,
}

/// Bucket table slots for `items` live items: one per band key, a power
/// of two.
fn slots_for(items: usize) -> usize {
    items
        .saturating_mul(BANDS)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX / 2 + 1)
        .max(MIN_SLOTS)
}

/// Keys are already well-mixed hashes: the hasher passes them through.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildMixed;

#[derive(Debug, Default)]
pub struct PassHasher(u64);

impl std::hash::Hasher for PassHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u32(&mut self, n: u32) {
        // Spread over 64 bits: the table takes its control bits from the top.
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::BuildHasher for BuildMixed {
    type Hasher = PassHasher;
    fn build_hasher(&self) -> PassHasher {
        PassHasher(0)
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

impl StoryIndex {
    pub fn new(window: std::time::Duration) -> StoryIndex {
        StoryIndex::with_capacity(window, 0)
    }

    /// An index with its tables sized for `items` items in the window
    /// (the rows to restore, say): they grow without rebuilding up to
    /// there. Beyond it the index still grows, in steps whose old and new
    /// tables are never both held.
    pub fn with_capacity(window: std::time::Duration, items: usize) -> StoryIndex {
        let slots = slots_for(items);
        StoryIndex {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 4),
            blocks: std::collections::VecDeque::new(),
            spare: None,
            base: 0,
            start: 0,
            end: 0,
            seq_limit: NONE - 1,
            heads: vec![NONE; slots],
            mask: slots - 1,
            min_slots: slots,
            last_at: i64::MIN,
            members: HashMap::with_capacity_and_hasher(items, BuildMixed),
            stories: HashMap::with_capacity_and_hasher(items, BuildMixed),
            names: Vec::new(),
            name_ids: HashMap::new(),
        }
    }

    /// A new window length; entries outside it go at the next call.
    pub fn set_window(&mut self, window: std::time::Duration) {
        self.window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 4);
    }

    /// Items in the window.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stories with at least one item in the window.
    pub fn stories(&self) -> usize {
        self.stories.len()
    }

    /// Slots of the bucket table.
    pub fn bucket_slots(&self) -> usize {
        self.heads.len()
    }

    /// Bytes held by the index's blocks and tables (capacities, not
    /// lengths; hash tables estimated from their capacity and slot size).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let table = |cap: usize, slot: usize| cap * (slot + 1);
        let block = BLOCK * (size_of::<Entry>() + (K + BANDS) * 4);
        let held = self.blocks.len() + usize::from(self.spare.is_some());
        let prior: usize = self
            .blocks
            .iter()
            .flat_map(|b| b.entries.iter())
            .map(|e| e.prior.len() * 4)
            .sum();
        let stories: usize = self
            .stories
            .values()
            .map(|s| (s.sources.capacity() + s.rules.capacity()) * 4)
            .sum();
        held * block
            + self.blocks.capacity() * size_of::<Block>()
            + prior
            + self.heads.capacity() * 4
            + table(self.members.capacity(), 12)
            + table(self.stories.capacity(), 8 + size_of::<StoryRec>())
            + stories
            + self.names.iter().map(|n| n.capacity() + 24).sum::<usize>()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.name_ids.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.name_ids.insert(name.to_string(), i);
        i
    }

    /// The block and offset of a stored entry.
    fn locate(&self, seq: u32) -> (&Block, usize) {
        let i = (seq - self.base) as usize;
        (&self.blocks[i >> BLOCK_SHIFT], i & (BLOCK - 1))
    }

    fn entry(&self, seq: u32) -> &Entry {
        let (b, o) = self.locate(seq);
        &b.entries[o]
    }

    /// Drops the entries older than the window before `now`.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        let cutoff = ms(now).saturating_sub(self.window_ms);
        while self.start < self.end {
            let e = self.entry(self.start);
            if e.at >= cutoff {
                break;
            }
            let (item, story) = (e.item, e.story);
            if self.members.get(&item) == Some(&self.start) {
                self.members.remove(&item);
            }
            if let Some(s) = self.stories.get_mut(&story) {
                s.live = s.live.saturating_sub(1);
                if s.live == 0 {
                    self.stories.remove(&story);
                }
            }
            self.start += 1;
        }
        // Whole expired blocks go (chain walks stop at `start`, so no link
        // into them is ever followed).
        while !self.blocks.is_empty() && self.start - self.base >= BLOCK as u32 {
            if let Some(mut b) = self.blocks.pop_front() {
                b.entries.clear();
                self.spare = Some(b);
            }
            self.base += BLOCK as u32;
        }
        // A table four times larger than the window needs is halved or
        // more (the window shrank, or a burst left).
        let slots = slots_for(self.len()).max(self.min_slots);
        if slots * 4 <= self.heads.len() {
            self.rebuild(slots);
        }
    }

    /// A new bucket table of `slots` slots with every live entry linked
    /// into it, in arrival order; sequence numbers are renumbered from the
    /// first block. The old table is freed before the new one is
    /// allocated.
    fn rebuild(&mut self, slots: usize) {
        let shift = self.base;
        self.base = 0;
        self.start -= shift;
        self.end -= shift;
        for v in self.members.values_mut() {
            *v -= shift;
        }
        self.heads = Vec::new();
        self.heads = vec![NONE; slots];
        self.mask = slots - 1;
        for seq in self.start..self.end {
            self.link(seq);
        }
    }

    /// Puts entry `seq` at the head of its band slots.
    fn link(&mut self, seq: u32) {
        let i = (seq - self.base) as usize;
        let (block, o) = (&mut self.blocks[i >> BLOCK_SHIFT], i & (BLOCK - 1));
        for b in 0..BANDS {
            let at = o * K + b * ROWS;
            let slot = band_key(b, &block.sigs[at..at + ROWS]) as usize & self.mask;
            block.next[o * BANDS + b] = std::mem::replace(&mut self.heads[slot], seq);
        }
    }

    fn sig_at(&self, seq: u32) -> &[u32] {
        let (b, o) = self.locate(seq);
        &b.sigs[o * K..(o + 1) * K]
    }

    /// The best-matching live entry for a signature: (entry, score,
    /// Jaccard).
    fn best(&self, sig: &Signature) -> Option<(u32, f64, f64)> {
        let mut cands: Vec<u32> = Vec::new();
        for b in 0..BANDS {
            let band = &sig.mins[b * ROWS..(b + 1) * ROWS];
            let mut at = self.heads[band_key(b, band) as usize & self.mask];
            let (mut walked, mut found) = (0, 0);
            while at != NONE && at >= self.start && found < MAX_CHAIN && walked < MAX_WALK {
                walked += 1;
                let (block, o) = self.locate(at);
                if block.sigs[o * K + b * ROWS..o * K + (b + 1) * ROWS] == *band {
                    found += 1;
                    cands.push(at);
                }
                at = block.next[o * BANDS + b];
            }
        }
        cands.sort_unstable();
        // (bands shared, entry), most bands first, then the most recent.
        let mut counted: Vec<(u32, u32)> = cands
            .chunk_by(|a, b| a == b)
            .map(|g| (g.len() as u32, g[0]))
            .collect();
        if counted.len() > MAX_VERIFIED {
            counted.select_nth_unstable_by(MAX_VERIFIED, |a, b| b.cmp(a));
            counted.truncate(MAX_VERIFIED);
            // Oldest first again, so ties below go to the most recent.
            counted.sort_unstable_by_key(|&(_, c)| c);
        }
        let mut best: Option<(u32, f64, f64)> = None;
        let mut other = Signature {
            mins: [0; K],
            shingles: 0,
        };
        for &(_, c) in &counted {
            other.mins.copy_from_slice(self.sig_at(c));
            other.shingles = self.entry(c).shingles;
            if let Some(score) = sig.same_story(&other) {
                // Ties go to the most recent entry.
                if best.is_none_or(|(_, s, _)| score >= s) {
                    best = Some((c, score, sig.jaccard(&other)));
                }
            }
        }
        best
    }

    fn push(&mut self, at: i64, item: u64, story: StoryId, sig: &Signature, prior: Box<[u32]>) {
        if self.end >= self.seq_limit {
            self.rebuild(self.heads.len());
        }
        let seq = self.end;
        let i = (seq - self.base) as usize;
        if i >> BLOCK_SHIFT == self.blocks.len() {
            let block = self.spare.take().unwrap_or_else(Block::new);
            self.blocks.push_back(block);
        }
        let (block, o) = (&mut self.blocks[i >> BLOCK_SHIFT], i & (BLOCK - 1));
        block.entries.push(Entry {
            at,
            item,
            story,
            shingles: sig.shingles,
            prior,
        });
        block.sigs[o * K..(o + 1) * K].copy_from_slice(&sig.mins);
        self.end += 1;
        self.members.insert(item, seq);
        let slots = slots_for(self.len());
        if slots > self.heads.len() {
            self.rebuild(slots);
        } else {
            self.link(seq);
        }
    }

    /// Assigns a new item to a story and records it (feed `feed`, key
    /// `key`, seen at `now`). An item already in the index (a poll that
    /// was abandoned after its assignment) gets its first answer again.
    /// Without a signature the item is a story of its own and is not
    /// stored.
    pub fn assign(
        &mut self,
        feed: &str,
        key: &str,
        sig: Option<&Signature>,
        now: DateTime<Utc>,
    ) -> Assignment {
        self.expire(now);
        let item = item_hash(feed, key);
        if let Some(&seq) = self.members.get(&item) {
            let e = self.entry(seq);
            // A story's id is its first item's identity.
            let first = e.story == e.item;
            return Assignment {
                story: e.story,
                first,
                prior_rules: e
                    .prior
                    .iter()
                    .map(|&r| self.names[r as usize].clone())
                    .collect(),
                jaccard: if first { 0.0 } else { 1.0 },
            };
        }
        let Some(sig) = sig else {
            return Assignment {
                story: item,
                first: true,
                prior_rules: Vec::new(),
                jaccard: 0.0,
            };
        };
        let at = ms(now).max(self.last_at);
        self.last_at = at;
        let feed_i = self.intern(feed);
        match self.best(sig) {
            Some((seq, _, j)) => {
                let story = self.entry(seq).story;
                let rec = self.stories.entry(story).or_insert(StoryRec {
                    first_seen: at,
                    sources: Vec::new(),
                    rules: Vec::new(),
                    live: 0,
                });
                rec.live += 1;
                if !rec.sources.contains(&feed_i) {
                    rec.sources.push(feed_i);
                }
                let prior: Box<[u32]> = rec.rules.clone().into_boxed_slice();
                let prior_rules = prior
                    .iter()
                    .map(|&r| self.names[r as usize].clone())
                    .collect();
                self.push(at, item, story, sig, prior);
                Assignment {
                    story,
                    first: false,
                    prior_rules,
                    jaccard: j,
                }
            }
            None => {
                let story = item;
                self.stories.insert(
                    story,
                    StoryRec {
                        first_seen: at,
                        sources: vec![feed_i],
                        rules: Vec::new(),
                        live: 1,
                    },
                );
                self.push(at, item, story, sig, Box::new([]));
                Assignment {
                    story,
                    first: true,
                    prior_rules: Vec::new(),
                    jaccard: 0.0,
                }
            }
        }
    }

    /// Records that an item of `story` matched `rules`: later items of the
    /// story are repeats for them.
    pub fn record_rules(&mut self, story: StoryId, rules: &[&str]) {
        let ids: Vec<u32> = rules.iter().map(|r| self.intern(r)).collect();
        if let Some(s) = self.stories.get_mut(&story) {
            for id in ids {
                if !s.rules.contains(&id) {
                    s.rules.push(id);
                }
            }
        }
    }

    /// Puts back an item from storage with the story it was given (no
    /// matching: ids stay as they were). Items must come in arrival order;
    /// ones already outside the window at `now` are skipped.
    pub fn restore(&mut self, row: &Restored<'_>, now: DateTime<Utc>) {
        let at = ms(row.at).max(self.last_at);
        if at < ms(now).saturating_sub(self.window_ms) {
            return;
        }
        let item = item_hash(row.feed, row.key);
        if self.members.contains_key(&item) {
            return;
        }
        self.last_at = at;
        let feed_i = self.intern(row.feed);
        let rule_ids: Vec<u32> = row.rules.iter().map(|r| self.intern(r)).collect();
        let rec = self.stories.entry(row.story).or_insert(StoryRec {
            first_seen: ms(row.first_seen),
            sources: Vec::new(),
            rules: Vec::new(),
            live: 0,
        });
        rec.live += 1;
        if !rec.sources.contains(&feed_i) {
            rec.sources.push(feed_i);
        }
        let prior: Box<[u32]> = rec.rules.clone().into_boxed_slice();
        for id in rule_ids {
            if !rec.rules.contains(&id) {
                rec.rules.push(id);
            }
        }
        self.push(at, item, row.story, row.sig, prior);
    }

    /// What an alert says about a story; for a story not in the index (an
    /// item without a signature), the item alone.
    pub fn view(&self, story: StoryId, feed: &str, now: DateTime<Utc>) -> StoryView {
        match self.stories.get(&story) {
            Some(s) => StoryView {
                id: story,
                first_seen: from_ms(s.first_seen),
                sources: s
                    .sources
                    .iter()
                    .map(|&f| self.names[f as usize].clone())
                    .collect(),
                items: s.live as usize,
            },
            None => StoryView {
                id: story,
                first_seen: now,
                sources: vec![feed.to_string()],
                items: 1,
            },
        }
    }
}

/// A stored item, for [`StoryIndex::restore`].
#[derive(Debug, Clone)]
pub struct Restored<'a> {
    pub feed: &'a str,
    pub key: &'a str,
    pub story: StoryId,
    pub first_seen: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub sig: &'a Signature,
    /// The rules this item matched.
    pub rules: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + h * 3600, 0).unwrap_or_default()
    }

    const TITLE: &str = "Flooding forces evacuation of 3,000 people in northern Kazakhstan";
    const LEAD: &str = "Rescue teams evacuated more than 3,000 residents from villages along the \
        Ishim river after spring meltwater breached two dams overnight, the emergencies ministry \
        reported. Officials expect the water level to peak on Thursday near Petropavlovsk.";

    #[test]
    fn normalisation_folds_case_accents_and_stems_in_both_scripts() {
        assert_eq!(words("The CAFÉ owners said", 10), words("cafe owner", 10));
        assert_eq!(words("Ёлки В Курске", 10), words("елки курск", 10));
    }

    #[test]
    fn copies_match_and_different_stories_do_not() {
        let a = signature(TITLE, LEAD).unwrap();
        let copy = signature(&TITLE.to_uppercase(), LEAD).unwrap();
        assert!(a.same_story(&copy).is_some());
        let trimmed = signature(
            TITLE,
            "Rescue teams evacuated more than 3,000 residents from villages along the Ishim river.",
        )
        .unwrap();
        let (_, c) = a.similarity(&trimmed);
        assert!(c > 0.8, "containment {c}");
        assert!(a.same_story(&trimmed).is_some());
        let wrapped = signature(
            TITLE,
            &format!("ASTANA, April 9 (Steppe Wire) — {LEAD} Steppe Wire is a member of the regional press pool."),
        )
        .unwrap();
        assert!(a.same_story(&wrapped).is_some());
        let other = signature(
            "Kazakhstan's emergencies ministry asks for army help as river rises",
            "The ministry asked the defence ministry for engineering units to reinforce dams \
             on the Tobol river, where the water rose by a metre in a day, officials said.",
        )
        .unwrap();
        assert!(a.same_story(&other).is_none(), "{:?}", a.similarity(&other));
    }

    #[test]
    fn signatures_round_trip_through_bytes() {
        let a = signature(TITLE, LEAD).unwrap();
        assert_eq!(Signature::from_bytes(&a.to_bytes(), a.shingles), Some(a));
        assert_eq!(Signature::from_bytes(&[1, 2, 3], 5), None);
    }

    #[test]
    fn short_texts_get_no_signature() {
        assert!(signature("Breaking", "").is_none());
        assert!(signature("Breaking news", "").is_none());
    }

    #[test]
    fn index_clusters_expires_and_answers_again_for_a_known_item() {
        let mut ix = StoryIndex::new(Duration::from_secs(48 * 3600));
        let sig = signature(TITLE, LEAD).unwrap();
        let first = ix.assign("wire", "a", Some(&sig), t(0));
        assert!(first.first);
        ix.record_rules(first.story, &["floods"]);
        let copy = ix.assign("regional", "b", Some(&sig), t(1));
        assert!(!copy.first);
        assert_eq!(copy.story, first.story);
        assert_eq!(copy.prior_rules, vec!["floods".to_string()]);
        let again = ix.assign("wire", "a", Some(&sig), t(2));
        assert_eq!(again, first, "a known item gets its first answer");
        let view = ix.view(first.story, "wire", t(2));
        assert_eq!(
            view.sources,
            vec!["wire".to_string(), "regional".to_string()]
        );
        assert_eq!(view.first_seen, t(0));
        assert_eq!(view.items, 2);
        // Fifty hours later the story has left the window.
        let late = ix.assign("other", "c", Some(&sig), t(50));
        assert!(late.first);
        assert_ne!(late.story, first.story);
        assert_eq!(ix.len(), 1);
        assert_eq!(ix.stories(), 1);
    }

    #[test]
    fn restore_keeps_story_ids_and_rules() {
        let sig = signature(TITLE, LEAD).unwrap();
        let mut ix = StoryIndex::new(Duration::from_secs(48 * 3600));
        let story = 0xfeed_u64;
        let rules = vec!["floods".to_string()];
        ix.restore(
            &Restored {
                feed: "wire",
                key: "a",
                story,
                first_seen: t(0),
                at: t(0),
                sig: &sig,
                rules: &rules,
            },
            t(3),
        );
        let next = ix.assign("regional", "b", Some(&sig), t(3));
        assert_eq!(next.story, story);
        assert!(!next.first);
        assert_eq!(next.prior_rules, rules);
        // A row already outside the window is not restored.
        let mut ix = StoryIndex::new(Duration::from_secs(3600));
        ix.restore(
            &Restored {
                feed: "wire",
                key: "a",
                story,
                first_seen: t(0),
                at: t(0),
                sig: &sig,
                rules: &rules,
            },
            t(3),
        );
        assert!(ix.is_empty());
    }

    fn numbered(n: i64) -> Signature {
        signature(
            &format!("Report number {n} on item {n} of series {}", n * 7),
            "",
        )
        .unwrap()
    }

    fn at(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + n * 10, 0).unwrap_or_default()
    }

    #[test]
    fn expiry_keeps_live_entries_findable_and_releases_blocks() {
        let mut ix = StoryIndex::new(Duration::from_secs(3600));
        for n in 0..3000i64 {
            let a = ix.assign("f", &n.to_string(), Some(&numbered(n)), at(n));
            assert!(a.first, "item {n} is a story of its own");
        }
        assert!(ix.len() <= 361, "{}", ix.len());
        // 361 live entries span at most two blocks (plus one spare).
        assert!(ix.blocks.len() <= 2, "{} blocks", ix.blocks.len());
        assert!(!ix.assign("g", "x", Some(&numbered(2999)), at(3000)).first);
        assert!(ix.assign("g", "y", Some(&numbered(2000)), at(3000)).first);
    }

    #[test]
    fn bucket_table_grows_and_shrinks_with_the_window() {
        let mut ix = StoryIndex::new(Duration::from_secs(3600));
        assert_eq!(ix.bucket_slots(), MIN_SLOTS);
        // 360 items in the window: 360 × 32 band keys need 16,384 slots.
        for n in 0..360i64 {
            assert!(
                ix.assign("f", &n.to_string(), Some(&numbered(n)), at(n))
                    .first
            );
        }
        assert_eq!(ix.bucket_slots(), 16_384);
        for n in [0, 100, 359] {
            let a = ix.assign("g", &format!("copy{n}"), Some(&numbered(n)), at(360));
            assert!(!a.first, "a copy of item {n} found after the table grew");
            assert_eq!(a.story, item_hash("f", &n.to_string()));
        }
        // Most of the window expires: the table shrinks, the rest stays
        // findable.
        let a = ix.assign("f", "late", Some(&numbered(5000)), at(360 + 350));
        assert!(a.first);
        assert!(ix.len() < 20, "{}", ix.len());
        assert_eq!(ix.bucket_slots(), MIN_SLOTS);
        let a = ix.assign("g", "copy-late", Some(&numbered(5000)), at(711));
        assert!(!a.first);
    }

    #[test]
    fn a_capacity_hint_sizes_the_table_up_front_and_is_its_floor() {
        let mut ix = StoryIndex::with_capacity(Duration::from_secs(3600), 1000);
        assert_eq!(ix.bucket_slots(), 32_768);
        for n in 0..1000i64 {
            ix.assign("f", &n.to_string(), Some(&numbered(n)), at(n / 100));
        }
        assert_eq!(ix.bucket_slots(), 32_768, "no rebuild up to the hint");
        ix.expire(at(10_000));
        assert!(ix.is_empty());
        assert_eq!(ix.bucket_slots(), 32_768);
    }

    #[test]
    fn sequence_numbers_are_renumbered_before_they_run_out() {
        let mut ix = StoryIndex::new(Duration::from_secs(3600));
        ix.seq_limit = 2500;
        for n in 0..10_000i64 {
            let a = ix.assign("f", &n.to_string(), Some(&numbered(n)), at(n));
            assert!(a.first, "item {n} is a story of its own");
            assert!(ix.end <= 2500);
        }
        let first = ix.assign("f", "9990", Some(&numbered(9990)), at(10_000));
        assert!(first.first, "a known item gets its first answer again");
        assert_eq!(first.story, item_hash("f", "9990"));
        let copy = ix.assign("g", "copy", Some(&numbered(9700)), at(10_000));
        assert_eq!(copy.story, item_hash("f", "9700"));
        assert!(!copy.first);
    }
}
