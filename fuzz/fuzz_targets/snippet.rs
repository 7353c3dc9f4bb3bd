//! `make_snippet` on arbitrary text and hits: it never panics, the snippet
//! fits the limit, and highlights are sorted, disjoint, non-empty ranges
//! inside the snippet text.
//!
//! Input layout: 2 bytes max_chars, 1 byte hit count N, N * 4 bytes of hits
//! (start: u16, length: u8, key: u8), then the text (lossy UTF-8).
//!
//! `cargo +nightly fuzz run snippet`
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirewatch::snippet::{make_snippet, SnippetHit};

/// The smallest limit `make_snippet` honours.
const MIN_CHARS: usize = 20;

fuzz_target!(|data: &[u8]| {
    let [m0, m1, n, rest @ ..] = data else {
        return;
    };
    let max_chars = usize::from(u16::from_le_bytes([*m0, *m1]) % 512);
    let n = usize::from(*n % 32).min(rest.len() / 4);
    let (hit_bytes, text_bytes) = rest.split_at(n * 4);
    let text = String::from_utf8_lossy(text_bytes);
    // Starts may fall past the end on purpose: make_snippet must drop them.
    let len = text.chars().count();
    let hits: Vec<SnippetHit> = hit_bytes
        .chunks_exact(4)
        .map(|h| {
            let start = usize::from(u16::from_le_bytes([h[0], h[1]])) % (len + 2);
            SnippetHit {
                start,
                end: start + usize::from(h[2] % 40),
                key: usize::from(h[3] % 4),
            }
        })
        .collect();

    let snippet = make_snippet(&text, &hits, max_chars);

    let chars = snippet.text.chars().count();
    assert!(
        chars <= max_chars.max(MIN_CHARS),
        "{chars} chars > {max_chars}: {:?}",
        snippet.text
    );
    let mut last_end = None;
    for &(start, end) in &snippet.highlights {
        assert!(start < end, "empty highlight {start}..{end}");
        assert!(end <= chars, "highlight {start}..{end} past {chars} chars");
        if let Some(last) = last_end {
            assert!(
                last < start,
                "highlights unsorted or overlapping: {:?}",
                snippet.highlights
            );
        }
        last_end = Some(end);
    }
    if text.trim().is_empty() {
        assert!(snippet.text.is_empty() && snippet.highlights.is_empty());
    }
});
