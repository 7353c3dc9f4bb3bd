//! Sentence segmentation and snippet cutting for alerts.
//!
//! [`sentences`] splits text with UAX #29 sentence bounds, then rejoins splits
//! made after abbreviations and initials; [`make_snippet`] picks the sentence
//! with the most distinct hits and cuts it to size with highlights. All
//! offsets are chars (Unicode scalar values). Pure: this module does no I/O.

use std::cmp::Reverse;

use unicode_segmentation::UnicodeSegmentation;

use crate::model::Snippet;
use crate::text::CharCursor;

/// The smallest `max_chars` honoured; smaller limits are raised to it.
const MIN_CHARS: usize = 20;
const ELLIPSIS: char = '…';

/// Words ending in "." that do not end a sentence, space-separated and
/// case-sensitive. Initials and dotted acronyms ("J.", "U.S.", "В.") are
/// recognised separately.
const ABBREVIATIONS: &str = "Gen. Lt. Col. Maj. Capt. Sgt. Adm. Brig. Gov. Sen. Rep. \
    Dr. Mr. Mrs. Ms. Prof. St. Jr. Sr. No. vs. etc. a.m. p.m. \
    Jan. Feb. Mar. Apr. Jun. Jul. Aug. Sep. Sept. Oct. Nov. Dec. \
    г. гг. т.е. т.д. т.п. им. ул. ст. тыс. млн. млрд. руб.";

/// A hit in `text` (char offsets) with a key identifying the term (for
/// counting distinct terms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnippetHit {
    pub start: usize,
    pub end: usize,
    pub key: usize,
}

/// Sentences of `text` as trimmed, non-empty char ranges, in order.
///
/// UAX #29 sentence bounds, except that a split after an abbreviation
/// ("Gen.", "p.m.", "г.", ...), an initial ("J. Smith", "В. Путин") or a dotted
/// acronym ("U.S.") is undone. A line break always ends a sentence.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut merged: Vec<(usize, usize)> = Vec::new();
    let mut open = false; // the last range continues into the next segment
    for (start, seg) in text.split_sentence_bound_indices() {
        let end = start + seg.len();
        match merged.last_mut() {
            Some(last) if open => last.1 = end,
            _ => merged.push((start, end)),
        }
        let line_break = seg.ends_with(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']);
        open = !line_break && ends_with_abbreviation(seg.trim_end());
    }
    let mut cursor = CharCursor::new(text);
    merged
        .into_iter()
        .filter_map(|(a, b)| {
            let seg = &text[a..b];
            let start = a + (seg.len() - seg.trim_start().len());
            let end = a + seg.trim_end().len();
            (start < end).then(|| (cursor.char_at(start), cursor.char_at(end)))
        })
        .collect()
}

fn ends_with_abbreviation(seg: &str) -> bool {
    let word = seg
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or_default()
        .trim_start_matches(|c: char| !c.is_alphanumeric());
    ABBREVIATIONS.split_whitespace().any(|a| a == word) || is_initials(word)
}

/// "J.", "U.S.", "В.": one or more uppercase letters, each followed by ".".
fn is_initials(word: &str) -> bool {
    !word.is_empty()
        && word.split_inclusive('.').all(|part| {
            let mut c = part.chars();
            matches!((c.next(), c.next(), c.next()), (Some(u), Some('.'), None) if u.is_uppercase())
        })
}

/// Cuts a snippet of at most `max_chars` chars (at least 20) around the hits.
///
/// Picks the sentence with the most distinct hit keys (ties: more hits, then
/// earliest) and adds the next or previous sentence when it also has a hit
/// and the result fits. A sentence longer than `max_chars` is cut at word
/// boundaries to the window holding the most hits that fit, centred on them,
/// with "…" at each cut end. Without hits, the first sentence(s) that fit.
/// Whitespace runs become one space; highlights are merged, sorted char
/// ranges into the snippet text, for hits fully inside it.
pub fn make_snippet(text: &str, hits: &[SnippetHit], max_chars: usize) -> Snippet {
    let max = max_chars.max(MIN_CHARS);
    let chars: Vec<char> = text.chars().collect();
    let sents = sentences(text);
    let mut hits: Vec<SnippetHit> = hits
        .iter()
        .filter(|h| h.start < h.end && h.end <= chars.len())
        .copied()
        .collect();
    hits.sort_by_key(|h| (h.start, h.end));

    // Hits per sentence, by the sentence their start falls in.
    let mut per_sent: Vec<Vec<SnippetHit>> = vec![Vec::new(); sents.len()];
    for h in &hits {
        let i = sents.partition_point(|s| s.1 <= h.start);
        if sents.get(i).is_some_and(|s| s.0 <= h.start) {
            per_sent[i].push(*h);
        }
    }
    let score = |i: usize| (distinct_keys(&per_sent[i]), per_sent[i].len());
    let best = (0..sents.len())
        .filter(|&i| !per_sent[i].is_empty())
        .max_by_key(|&i| (score(i), Reverse(i)));

    let fits = |(a, b): (usize, usize)| collapse(&chars[a..b]).0.len() <= max;
    let range = match best {
        Some(i) => {
            let (a, b) = sents[i];
            let join = |j: usize| (a.min(sents[j].0), b.max(sents[j].1));
            // Next before previous on equal scores (the sort is stable).
            let mut neighbours: Vec<usize> = [i + 1, i.wrapping_sub(1)]
                .into_iter()
                .filter(|&j| per_sent.get(j).is_some_and(|h| !h.is_empty()))
                .collect();
            neighbours.sort_by_key(|&j| Reverse(score(j)));
            if fits((a, b)) {
                neighbours
                    .into_iter()
                    .map(join)
                    .find(|&r| fits(r))
                    .unwrap_or((a, b))
            } else {
                (a, b)
            }
        }
        None => match sents.first() {
            None => return Snippet::default(),
            Some(&(a, mut b)) => {
                for s in &sents[1..] {
                    if !fits((a, s.1)) {
                        break;
                    }
                    b = s.1;
                }
                (a, b)
            }
        },
    };
    render(&chars, range, &hits, max)
}

fn distinct_keys(hits: &[SnippetHit]) -> usize {
    let mut keys: Vec<usize> = hits.iter().map(|h| h.key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

/// Collapses whitespace runs in `src` to one space (trimmed). Returns the
/// chars and, for each position `0..=src.len()`, its offset in the output.
fn collapse(src: &[char]) -> (Vec<char>, Vec<usize>) {
    let mut out = Vec::with_capacity(src.len());
    let mut pos = Vec::with_capacity(src.len() + 1);
    let mut pending_space = false;
    for &c in src {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            pos.push(out.len());
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            pos.push(out.len());
            out.push(c);
        }
    }
    pos.push(out.len());
    (out, pos)
}

/// Renders `chars[range]` as a snippet, cutting it to `max` chars if needed.
fn render(chars: &[char], (a, b): (usize, usize), hits: &[SnippetHit], max: usize) -> Snippet {
    let (out, pos) = collapse(&chars[a..b]);
    let mapped: Vec<SnippetHit> = hits
        .iter()
        .filter(|h| a <= h.start && h.end <= b)
        .map(|h| SnippetHit {
            start: pos[h.start - a],
            end: pos[h.end - a],
            key: h.key,
        })
        .filter(|h| h.start < h.end)
        .collect();
    let (ws, we) = if out.len() <= max {
        (0, out.len())
    } else {
        window(&out, &mapped, max - 2)
    };
    let lead = usize::from(ws > 0);
    let mut text = String::with_capacity(we - ws + 2);
    if ws > 0 {
        text.push(ELLIPSIS);
    }
    text.extend(&out[ws..we]);
    if we < out.len() {
        text.push(ELLIPSIS);
    }
    let mut highlights: Vec<(usize, usize)> = Vec::new();
    for h in mapped.iter().filter(|h| ws <= h.start && h.end <= we) {
        let (s, e) = (h.start - ws + lead, h.end - ws + lead);
        match highlights.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => highlights.push((s, e)),
        }
    }
    Snippet { text, highlights }
}

/// The `[start, end)` window of at most `budget` chars of `out` centred on
/// the run of consecutive hits (sorted by start) with the most distinct keys,
/// then the most hits, that fits in it; cut ends fall on word boundaries
/// (raw char positions if the window holds no word boundary).
fn window(out: &[char], hits: &[SnippetHit], budget: usize) -> (usize, usize) {
    let mut best: Option<((usize, usize), (usize, usize))> = None; // (score, span)
    for i in 0..hits.len() {
        let mut end = hits[i].end;
        let mut j = i + 1;
        while j < hits.len() && hits[j].end.max(end) - hits[i].start <= budget {
            end = end.max(hits[j].end);
            j += 1;
        }
        let score = (distinct_keys(&hits[i..j]), j - i);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, (hits[i].start, end)));
        }
    }
    let (lo, hi) = best.map_or((0, 0), |(_, span)| span);
    let (ws, we) = if hi - lo >= budget {
        (lo, lo + budget)
    } else {
        let ws = lo.saturating_sub((budget - (hi - lo)) / 2);
        let we = (ws + budget).min(out.len());
        (we.saturating_sub(budget), we)
    };

    // Snap to words: start at the first word start in the window, then end
    // at the last word end that keeps the window within budget.
    let s: String = out.iter().collect();
    let mut cursor = CharCursor::new(&s);
    let words: Vec<(usize, usize)> = s
        .unicode_word_indices()
        .map(|(byte, w)| {
            let start = cursor.char_at(byte);
            (start, start + w.chars().count())
        })
        .collect();
    let snapped_start = if ws == 0 {
        Some(0)
    } else {
        words.iter().map(|w| w.0).find(|&p| p >= ws && p < we)
    };
    let Some(start) = snapped_start else {
        return (ws, we);
    };
    let limit = (start + budget).min(out.len());
    let snapped_end = if limit == out.len() {
        Some(limit)
    } else {
        words
            .iter()
            .rev()
            .map(|w| w.1)
            .find(|&p| p <= limit && p > start)
    };
    snapped_end.map_or((ws, we), |end| (start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sentence_texts(text: &str) -> Vec<String> {
        sentences(text)
            .into_iter()
            .map(|(a, b)| text.chars().skip(a).take(b - a).collect())
            .collect()
    }

    /// Hits for every occurrence of each needle, keyed by needle index.
    fn hits_for(text: &str, needles: &[&str]) -> Vec<SnippetHit> {
        let mut hits = Vec::new();
        for (key, needle) in needles.iter().enumerate() {
            for (byte, _) in text.match_indices(needle) {
                let start = text[..byte].chars().count();
                hits.push(SnippetHit {
                    start,
                    end: start + needle.chars().count(),
                    key,
                });
            }
        }
        hits
    }

    fn highlighted(s: &Snippet) -> Vec<String> {
        s.highlights
            .iter()
            .map(|&(a, b)| s.text.chars().skip(a).take(b - a).collect())
            .collect()
    }

    #[test]
    fn abbreviations_do_not_split() {
        let text = "Gen. Valery Gerasimov visited the front. U.S. officials said the strike \
                    came at 3 p.m. on Monday. Prices rose 3.5 percent. Lt. Gen. J. Smith \
                    agreed. The talks ended.";
        assert_eq!(
            sentence_texts(text),
            [
                "Gen. Valery Gerasimov visited the front.",
                "U.S. officials said the strike came at 3 p.m. on Monday.",
                "Prices rose 3.5 percent.",
                "Lt. Gen. J. Smith agreed.",
                "The talks ended.",
            ]
        );
        let ru = "В. Путин прибыл в г. Курск. Ущерб составил 5 млн. Рублей, т.е. много. \
                  Встреча прошла в 2024 г. В Москве.";
        assert_eq!(
            sentence_texts(ru),
            [
                "В. Путин прибыл в г. Курск.",
                "Ущерб составил 5 млн. Рублей, т.е. много.",
                "Встреча прошла в 2024 г. В Москве.",
            ]
        );
    }

    #[test]
    fn line_breaks_always_end_sentences() {
        let text = "Strike on Kursk\n\nGen. Valery Gerasimov said\nthe U.S.\nwas told. Done.";
        assert_eq!(
            sentence_texts(text),
            [
                "Strike on Kursk",
                "Gen. Valery Gerasimov said",
                "the U.S.",
                "was told.",
                "Done.",
            ]
        );
        assert!(sentences("  \n\n ").is_empty());
    }

    #[test]
    fn sentence_offsets_are_chars() {
        let text = "🔥 Удар по Курску. Café ouvert!";
        assert_eq!(sentences(text), [(0, 17), (18, 30)]);
        assert_eq!(sentence_texts(text), ["🔥 Удар по Курску.", "Café ouvert!"]);
    }

    #[test]
    fn best_sentence_has_most_distinct_keys() {
        let text =
            "Kursk was shelled. Kursk and Kursk again. Shoigu visited Kursk. Weather was fine.";
        let s = make_snippet(text, &hits_for(text, &["Kursk", "Shoigu"]), 30);
        assert_eq!(s.text, "Shoigu visited Kursk.");
        assert_eq!(highlighted(&s), ["Shoigu", "Kursk"]);
        // Ties on distinct keys go to more hits, then the earliest.
        let s = make_snippet(text, &hits_for(text, &["Kursk"]), 25);
        assert_eq!(s.text, "Kursk and Kursk again.");
    }

    #[test]
    fn neighbour_added_when_it_has_a_hit_and_fits() {
        let text = "Rain fell. Troops entered Kursk. Shoigu flew in. Markets closed.";
        let hits = hits_for(text, &["Kursk", "Shoigu"]);
        let s = make_snippet(text, &hits, 60);
        assert_eq!(s.text, "Troops entered Kursk. Shoigu flew in.");
        assert_eq!(highlighted(&s), ["Kursk", "Shoigu"]);
        // Too small for both: just the best (earliest on a tie).
        let s = make_snippet(text, &hits, 30);
        assert_eq!(s.text, "Troops entered Kursk.");
        // Neighbours without hits are not added.
        let s = make_snippet(text, &hits_for(text, &["Shoigu"]), 60);
        assert_eq!(s.text, "Shoigu flew in.");
    }

    #[test]
    fn long_sentence_cut_at_word_boundaries() {
        let text = "Officials in the region said on Tuesday that several waves of drones \
                    had struck fuel depots near Kursk overnight, while air defence units \
                    reported shooting down most of them before dawn.";
        let s = make_snippet(text, &hits_for(text, &["Kursk"]), 40);
        assert!(s.text.chars().count() <= 40, "{}", s.text);
        assert!(
            s.text.starts_with('…') && s.text.ends_with('…'),
            "{}",
            s.text
        );
        assert_eq!(highlighted(&s), ["Kursk"]);
        let inner = s.text.trim_matches('…');
        assert!(text.contains(inner), "{inner}");
        // Cut ends are whole words.
        let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
        let first = inner.split(' ').next().unwrap();
        let last = inner.rsplit(' ').next().unwrap().trim_end_matches(',');
        assert!(words.contains(&first) && words.contains(&last), "{inner}");
        // The window goes to the run of hits with the most distinct keys.
        let s = make_snippet(text, &hits_for(text, &["region", "drones", "Kursk"]), 50);
        assert_eq!(highlighted(&s), ["drones", "Kursk"]);
        // Two hits that fit together are both kept.
        let s = make_snippet(text, &hits_for(text, &["drones", "Kursk"]), 60);
        assert_eq!(highlighted(&s), ["drones", "Kursk"]);
        assert!(s.text.chars().count() <= 60);
    }

    #[test]
    fn highlights_map_exactly_in_any_script() {
        let text = "🔥🔥 Удар по   Курску 🇺🇦 нанесён ночью,\tCafe\u{301}   Kursk’s 北朝鲜 troops.";
        let needles = ["Курску", "Cafe\u{301}", "Kursk", "北朝鲜"];
        let s = make_snippet(text, &hits_for(text, &needles), 200);
        assert_eq!(
            s.text,
            "🔥🔥 Удар по Курску 🇺🇦 нанесён ночью, Cafe\u{301} Kursk’s 北朝鲜 troops."
        );
        assert_eq!(highlighted(&s), needles);
    }

    #[test]
    fn whitespace_collapse_remaps_offsets() {
        let text = "Shoigu   met \t Gerasimov in\u{a0}\u{a0}Kursk";
        let s = make_snippet(
            text,
            &hits_for(text, &["Shoigu", "Gerasimov", "Kursk"]),
            100,
        );
        assert_eq!(s.text, "Shoigu met Gerasimov in Kursk");
        assert_eq!(s.highlights, [(0, 6), (11, 20), (24, 29)]);
        // Line breaks between joined sentences collapse too.
        let text = "Drones hit Kursk\n\n  \r\nShoigu flew in.";
        let s = make_snippet(text, &hits_for(text, &["Kursk", "Shoigu"]), 100);
        assert_eq!(s.text, "Drones hit Kursk Shoigu flew in.");
        assert_eq!(s.highlights, [(11, 16), (17, 23)]);
    }

    #[test]
    fn highlights_merged() {
        let text = "North Korea sent troops.";
        let hits = [
            SnippetHit {
                start: 0,
                end: 11,
                key: 0,
            },
            SnippetHit {
                start: 6,
                end: 11,
                key: 1,
            },
            SnippetHit {
                start: 12,
                end: 16,
                key: 2,
            },
            SnippetHit {
                start: 11,
                end: 12,
                key: 3,
            },
        ];
        assert_eq!(make_snippet(text, &hits, 100).highlights, [(0, 16)]);
    }

    #[test]
    fn no_hits_gives_leading_sentences() {
        let text = "Troops entered Kursk. Shoigu flew in. Markets closed on Friday.";
        let s = make_snippet(text, &[], 40);
        assert_eq!(s.text, "Troops entered Kursk. Shoigu flew in.");
        assert!(s.highlights.is_empty());
        let s = make_snippet(
            "Officials said on Tuesday that drones struck depots",
            &[],
            20,
        );
        assert_eq!(s.text, "Officials said on…");
        assert_eq!(make_snippet(" \n ", &[], 50), Snippet::default());
        // Out-of-range hits are ignored; tiny limits are clamped.
        let bad = [SnippetHit {
            start: 5,
            end: 99,
            key: 0,
        }];
        assert_eq!(make_snippet("Kursk", &bad, 3).text, "Kursk");
    }

    proptest! {
        #[test]
        fn snippet_never_panics_and_respects_bounds(
            text in "(Kursk|Gen\\. |U\\.S\\. |г\\. |\\s|[.!?…—]|\\PC){0,80}",
            raw in prop::collection::vec((0usize..200, 0usize..40, 0usize..4), 0..8),
            max in 20usize..80,
        ) {
            let hits: Vec<SnippetHit> = raw
                .iter()
                .map(|&(start, len, key)| SnippetHit { start, end: start + len, key })
                .collect();
            let s = make_snippet(&text, &hits, max);
            let n = s.text.chars().count();
            prop_assert!(n <= max, "{} > {}", n, max);
            for w in s.highlights.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
            for &(a, b) in &s.highlights {
                prop_assert!(a < b && b <= n);
            }
        }

        #[test]
        fn sentences_are_trimmed_ordered_ranges(text in any::<String>()) {
            let chars: Vec<char> = text.chars().collect();
            let mut prev = 0;
            for (a, b) in sentences(&text) {
                prop_assert!(prev <= a && a < b && b <= chars.len());
                prop_assert!(!chars[a].is_whitespace() && !chars[b - 1].is_whitespace());
                prev = b;
            }
        }

        #[test]
        fn arbitrary_snippet_never_panics(text in any::<String>(), max in 0usize..50) {
            let len = text.chars().count();
            let hits = [SnippetHit { start: len / 3, end: len / 2 + 1, key: 0 }];
            let s = make_snippet(&text, &hits, max);
            prop_assert!(s.text.chars().count() <= max.max(MIN_CHARS));
        }
    }
}
