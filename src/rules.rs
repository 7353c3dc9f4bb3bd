//! Watch rules: compiling `any`/`all`/`none` term lists and feed globs, and
//! matching them against item text.
//!
//! A term is one word or a phrase (consecutive words, optionally written in
//! double quotes). Words are compared after [`crate::text::fold`], so matching
//! is whole-word and case-insensitive in every script. Two conveniences:
//!
//! - a token ending in `'s` also matches a term whose last word is the stem
//!   ("Kursk’s" matches `Kursk`); the hit then covers only the stem;
//! - phrase words may be separated by whitespace (at most one line break) and
//!   hyphens, but not by other punctuation or a paragraph break: `North Korea`
//!   matches "North\nKorea" and "Kim Jong Un" matches "Kim Jong-un", not
//!   "the north. Korea's".
//!
//! Pure: this module does no I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::text::{tokenize, Token};

/// One watch rule as written in config. List elements are raw strings; an
/// element is a phrase when it has several words, with or without surrounding
/// double quotes. `feeds` are globs over feed ids (`*`, `?`; case-sensitive),
/// empty meaning every feed.
#[derive(Debug, Clone, Default)]
pub struct RuleSpec {
    pub id: String,
    pub any: Vec<String>,
    pub all: Vec<String>,
    pub none: Vec<String>,
    pub feeds: Vec<String>,
}

/// Where a compile error sits: `rule` indexes the specs, `list` is one of
/// `"any"`, `"all"`, `"none"`, `"feeds"` and `index` the element in it.
/// `index: None` is the rule as a whole (reported with `list: "any"`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub rule: usize,
    pub list: &'static str,
    pub index: Option<usize>,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(
                f,
                "rule #{} {}[{}]: {}",
                self.rule, self.list, i, self.message
            ),
            None => write!(f, "rule #{}: {}", self.rule, self.message),
        }
    }
}

impl std::error::Error for RuleError {}

/// The text a rule sees, tokenized once.
#[derive(Debug, Clone)]
pub struct Document {
    /// `title`, `summary` and `content` joined by blank lines (see [`Document::new`]).
    pub text: String,
    body_start: usize,
    tokens: Vec<Token>,
    /// `joins[i]`: tokens `i` and `i + 1` may be consecutive words of a phrase.
    joins: Vec<bool>,
}

impl Document {
    /// Joins the non-empty parts as `title\n\nsummary\n\ncontent`. `content`
    /// is skipped when it equals `summary`, and `summary` when `content`
    /// starts with it (whitespace-normalised, a trailing `…`/`...` of a
    /// truncated summary ignored).
    pub fn new(title: &str, summary: &str, content: &str) -> Document {
        let (title, mut summary, mut content) = (title.trim(), summary.trim(), content.trim());
        let (s, c) = (normalise_ws(summary), normalise_ws(content));
        if s == c {
            content = "";
        } else if c.starts_with(strip_ellipsis(&s)) {
            summary = "";
        }
        let text = [title, summary, content]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        let body_start = if title.is_empty() {
            0
        } else if summary.is_empty() && content.is_empty() {
            text.chars().count()
        } else {
            title.chars().count() + 2
        };
        let tokens = tokenize(&text);
        let joins = phrase_joins(&text, &tokens);
        Document {
            text,
            body_start,
            tokens,
            joins,
        }
    }

    /// Char offset in `text` where the body (summary/content) starts; equal
    /// to the text's length when there is no body.
    pub fn body_start(&self) -> usize {
        self.body_start
    }

    /// The folded words of `text`.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }
}

/// One occurrence of a positive term. Char offsets into `Document::text`;
/// a phrase hit spans all its words.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    /// The term as written in the rule, trimmed and unquoted.
    pub term: String,
}

/// A rule that matched a document.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMatch {
    pub rule: usize,
    /// Every occurrence of every `any`/`all` term, sorted by start.
    pub hits: Vec<Hit>,
}

impl RuleMatch {
    /// Distinct surface forms of the hits in `doc.text` (whitespace collapsed),
    /// in order of first occurrence, deduplicated by folded form.
    pub fn matched_terms(&self, doc: &Document) -> Vec<String> {
        let bytes: Vec<usize> = doc
            .text
            .char_indices()
            .map(|(b, _)| b)
            .chain([doc.text.len()])
            .collect();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for hit in &self.hits {
            let (Some(&a), Some(&b)) = (bytes.get(hit.start), bytes.get(hit.end)) else {
                continue;
            };
            let surface = normalise_ws(doc.text.get(a..b).unwrap_or_default());
            let key: Vec<String> = tokenize(&surface).into_iter().map(|t| t.folded).collect();
            if !seen.contains(&key) {
                seen.push(key);
                out.push(surface);
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Any,
    All,
    None,
}

#[derive(Debug, Clone)]
struct Term {
    /// As written, trimmed and unquoted.
    text: String,
    /// Folded words; never empty.
    words: Vec<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    spec: RuleSpec,
    any: Vec<Term>,
    all: Vec<Term>,
    none: Vec<Term>,
    /// `None`: every feed.
    feeds: Option<GlobSet>,
}

impl Rule {
    fn terms(&self, list: List) -> &[Term] {
        match list {
            List::Any => &self.any,
            List::All => &self.all,
            List::None => &self.none,
        }
    }
}

/// Which term of which rule an index entry points at.
#[derive(Debug, Clone, Copy)]
struct TermRef {
    rule: usize,
    list: List,
    term: usize,
}

/// One occurrence of a term in a document.
struct Occurrence {
    list: List,
    term: usize,
    start: usize,
    end: usize,
}

/// Compiled rules plus an index from each term's first folded word to the
/// terms starting with it, so a document only evaluates candidate rules.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_first_word: HashMap<String, Vec<TermRef>>,
}

impl RuleSet {
    /// Compiles all rules, returning every error found (not just the first).
    pub fn compile(specs: Vec<RuleSpec>) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut rules = Vec::with_capacity(specs.len());
        for (idx, spec) in specs.into_iter().enumerate() {
            let mut err = |list, index, message| {
                errors.push(RuleError {
                    rule: idx,
                    list,
                    index,
                    message,
                })
            };
            if spec.any.is_empty() && spec.all.is_empty() {
                err(
                    "any",
                    None,
                    "rule needs at least one term in `any` or `all`".to_string(),
                );
            }
            let mut compile_list = |name, raw: &[String]| -> Vec<Term> {
                raw.iter()
                    .enumerate()
                    .filter_map(|(i, s)| parse_term(s).map_err(|m| err(name, Some(i), m)).ok())
                    .collect()
            };
            let any = compile_list("any", &spec.any);
            let all = compile_list("all", &spec.all);
            let none = compile_list("none", &spec.none);
            let feeds = compile_feeds(&spec.feeds, |i, m| err("feeds", Some(i), m));
            rules.push(Rule {
                any,
                all,
                none,
                feeds,
                spec,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut by_first_word: HashMap<String, Vec<TermRef>> = HashMap::new();
        for (rule, r) in rules.iter().enumerate() {
            for list in [List::Any, List::All, List::None] {
                for (term, t) in r.terms(list).iter().enumerate() {
                    by_first_word
                        .entry(t.words[0].clone())
                        .or_default()
                        .push(TermRef { rule, list, term });
                }
            }
        }
        Ok(RuleSet {
            rules,
            by_first_word,
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The spec rule `idx` was compiled from. Panics if `idx >= self.len()`.
    pub fn spec(&self, idx: usize) -> &RuleSpec {
        &self.rules[idx].spec
    }

    /// Rules (ascending indices) that match `doc` coming from `feed_id`.
    pub fn matches(&self, feed_id: &str, doc: &Document) -> Vec<RuleMatch> {
        let mut found: BTreeMap<usize, Vec<Occurrence>> = BTreeMap::new();
        for (i, token) in doc.tokens.iter().enumerate() {
            let stem = token.folded.strip_suffix("'s").filter(|s| !s.is_empty());
            for key in std::iter::once(token.folded.as_str()).chain(stem) {
                for r in self.by_first_word.get(key).into_iter().flatten() {
                    let term = &self.rules[r.rule].terms(r.list)[r.term];
                    if let Some((start, end)) = phrase_at(doc, i, &term.words) {
                        found.entry(r.rule).or_default().push(Occurrence {
                            list: r.list,
                            term: r.term,
                            start,
                            end,
                        });
                    }
                }
            }
        }
        found
            .into_iter()
            .filter_map(|(idx, occs)| self.evaluate(idx, feed_id, &occs))
            .collect()
    }

    fn evaluate(&self, idx: usize, feed_id: &str, occs: &[Occurrence]) -> Option<RuleMatch> {
        let rule = &self.rules[idx];
        let has = |list, term| occs.iter().any(|o| o.list == list && o.term == term);
        let any_ok = rule.any.is_empty() || (0..rule.any.len()).any(|t| has(List::Any, t));
        let all_ok = (0..rule.all.len()).all(|t| has(List::All, t));
        let none_ok = !occs.iter().any(|o| o.list == List::None);
        let feed_ok = rule.feeds.as_ref().is_none_or(|g| g.is_match(feed_id));
        if !(any_ok && all_ok && none_ok && feed_ok) {
            return None;
        }
        let mut hits: Vec<Hit> = occs
            .iter()
            .filter(|o| o.list != List::None)
            .map(|o| Hit {
                start: o.start,
                end: o.end,
                term: rule.terms(o.list)[o.term].text.clone(),
            })
            .collect();
        hits.sort_by(|a, b| (a.start, a.end, &a.term).cmp(&(b.start, b.end, &b.term)));
        hits.dedup();
        Some(RuleMatch { rule: idx, hits })
    }
}

/// Char span of `words` as a phrase starting at token `i`, if it occurs there.
/// The last word may match a possessive (`kursk's` for `kursk`); the span
/// then stops before the `'s`.
fn phrase_at(doc: &Document, i: usize, words: &[String]) -> Option<(usize, usize)> {
    let tokens = doc.tokens.get(i..i + words.len())?;
    if !doc.joins.get(i..i + words.len() - 1)?.iter().all(|&j| j) {
        return None;
    }
    let last = words.len() - 1;
    let mut end = 0;
    for (k, (token, word)) in tokens.iter().zip(words).enumerate() {
        end = token.end;
        if token.folded != *word {
            let possessive = token.folded.strip_suffix("'s") == Some(word.as_str());
            if k != last || !possessive {
                return None;
            }
            end = token.end.saturating_sub(2).max(token.start + 1);
        }
    }
    Some((tokens[0].start, end))
}

/// For each pair of neighbouring tokens, whether only whitespace (at most one
/// line break) and hyphens separate them.
fn phrase_joins(text: &str, tokens: &[Token]) -> Vec<bool> {
    let mut chars = text.chars();
    let mut pos = 0;
    let mut joins = Vec::with_capacity(tokens.len().saturating_sub(1));
    for pair in tokens.windows(2) {
        // Skip to the end of the first token, then inspect the gap.
        chars.by_ref().take(pair[0].end - pos).for_each(drop);
        let gap = chars.by_ref().take(pair[1].start - pair[0].end);
        let (mut ok, mut breaks) = (true, 0);
        for c in gap {
            match c {
                '\n' | '\u{2028}' | '\u{2029}' | '\u{85}' => breaks += 1,
                '-' | '‐' | '‑' => {}
                c if c.is_whitespace() => {}
                _ => ok = false,
            }
        }
        joins.push(ok && breaks <= 1);
        pos = pair[1].start;
    }
    joins
}

/// Parses one list element into a term, or returns the error message.
fn parse_term(raw: &str) -> Result<Term, String> {
    let trimmed = raw.trim();
    let text = trimmed
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(trimmed)
        .trim();
    if text.contains('"') {
        return Err(if trimmed.matches('"').count() % 2 == 1 {
            format!("unbalanced quote in term {trimmed}")
        } else {
            format!("quotes may only surround a whole term: {trimmed}")
        });
    }
    if text.is_empty() {
        return Err("empty term".to_string());
    }
    let words: Vec<String> = tokenize(text).into_iter().map(|t| t.folded).collect();
    if words.is_empty() {
        return Err(format!("term '{text}' has no words"));
    }
    Ok(Term {
        text: text.to_string(),
        words,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(any: &[&str], all: &[&str], none: &[&str], feeds: &[&str]) -> RuleSpec {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        RuleSpec {
            id: "r".into(),
            any: v(any),
            all: v(all),
            none: v(none),
            feeds: v(feeds),
        }
    }

    fn set(specs: Vec<RuleSpec>) -> RuleSet {
        RuleSet::compile(specs).unwrap()
    }

    fn doc(text: &str) -> Document {
        Document::new(text, "", "")
    }

    /// Indices of the rules matching `text` on feed "reuters-world".
    fn matching(rules: &RuleSet, text: &str) -> Vec<usize> {
        rules
            .matches("reuters-world", &doc(text))
            .iter()
            .map(|m| m.rule)
            .collect()
    }

    fn one(any: &[&str]) -> RuleSet {
        set(vec![spec(any, &[], &[], &[])])
    }

    fn hit_texts(d: &Document, m: &RuleMatch) -> Vec<String> {
        m.hits
            .iter()
            .map(|h| d.text.chars().skip(h.start).take(h.end - h.start).collect())
            .collect()
    }

    #[test]
    fn cyrillic_case_insensitive_both_ways() {
        let lower = one(&["курск"]);
        assert_eq!(matching(&lower, "ВСУ ВОШЛИ В КУРСК"), [0]);
        let upper = one(&["КУРСК"]);
        assert_eq!(matching(&upper, "Бои под Курск продолжаются"), [0]);
        assert_eq!(matching(&one(&["Kursk"]), "KURSK REGION"), [0]);
        assert_eq!(matching(&one(&["Королёв"]), "город королев"), [0]);
    }

    #[test]
    fn whole_words_only() {
        assert!(matching(&one(&["Kursk"]), "Kurskaya oblast").is_empty());
        assert!(matching(&one(&["mine"]), "a deminer was hurt").is_empty());
        assert!(matching(&one(&["mine"]), "deminers cleared the field").is_empty());
        assert_eq!(matching(&one(&["mine"]), "an anti-tank mine exploded"), [0]);
        assert_eq!(matching(&one(&["deminers"]), "Deminers, said"), [0]);
    }

    #[test]
    fn possessive_matches_stem_and_hit_covers_stem() {
        let rules = one(&["Kursk"]);
        let d = doc("Kursk’s governor said");
        let m = rules.matches("f", &d);
        assert_eq!(hit_texts(&d, &m[0]), ["Kursk"]);
        // A possessive term only matches the possessive.
        assert!(matching(&one(&["Kursk's"]), "Kursk governor").is_empty());
        assert_eq!(matching(&one(&["Kursk's"]), "KURSK’S governor"), [0]);
    }

    #[test]
    fn phrases() {
        let rules = one(&["\"North Korea\""]);
        assert_eq!(matching(&rules, "troops from north korea"), [0]);
        assert_eq!(matching(&rules, "troops from North\nKorea"), [0]);
        assert_eq!(matching(&rules, "North Korea’s troops"), [0]);
        assert!(matching(&rules, "North Korean troops").is_empty());
        assert!(matching(&rules, "Korea North").is_empty());
        // Sentence punctuation and paragraph breaks split a phrase.
        assert!(matching(&rules, "in the north. Korea said").is_empty());
        assert!(matching(&rules, "north, Korea").is_empty());
        assert!(matching(&rules, "Toward the North\n\nKorea said").is_empty());
        // Unquoted multi-word elements are phrases too; hyphens join.
        assert_eq!(matching(&one(&["Kim Jong Un"]), "Kim Jong-un visited"), [0]);
        let d = doc("Troops from North\n  Korea’s army");
        let m = rules.matches("f", &d);
        assert_eq!(m[0].hits[0].term, "North Korea");
        assert_eq!(hit_texts(&d, &m[0]), ["North\n  Korea"]);
    }

    #[test]
    fn any_all_none() {
        let rules = set(vec![
            spec(&["Kursk", "Belgorod"], &[], &[], &[]),
            spec(&[], &["Shoigu", "Gerasimov"], &[], &[]),
            spec(&["Kursk"], &["drone"], &["exercise"], &[]),
        ]);
        assert_eq!(matching(&rules, "Shelling in Belgorod"), [0]);
        assert_eq!(matching(&rules, "Shoigu met Gerasimov"), [1]);
        assert!(matching(&rules, "Shoigu met generals").is_empty());
        assert_eq!(matching(&rules, "A drone hit Kursk"), [0, 2]);
        assert_eq!(matching(&rules, "Kursk drone exercise"), [0]);
        assert_eq!(
            matching(&rules, "Kursk: Shoigu and Gerasimov discuss drone"),
            [0, 1, 2]
        );
    }

    #[test]
    fn feed_globs() {
        let rules = set(vec![
            spec(&["Kursk"], &[], &[], &["reuters-*", "ap-?"]),
            spec(&["Kursk"], &[], &[], &[]),
        ]);
        let d = doc("Kursk");
        let ids = |feed| -> Vec<usize> { rules.matches(feed, &d).iter().map(|m| m.rule).collect() };
        assert_eq!(ids("reuters-world"), [0, 1]);
        assert_eq!(ids("ap-1"), [0, 1]);
        assert_eq!(ids("ap-12"), [1]);
        assert_eq!(ids("tass"), [1]);
    }

    #[test]
    fn compile_errors_all_reported_with_location() {
        let errs = RuleSet::compile(vec![
            spec(&["Kursk"], &[], &[], &[]),
            spec(&[], &[], &["exercise"], &[]),
            spec(
                &["ok", "  ", "—"],
                &["\"North Korea"],
                &["a\"b\"c", "\"\""],
                &["ok", "[x"],
            ),
        ])
        .unwrap_err();
        let at: Vec<_> = errs.iter().map(|e| (e.rule, e.list, e.index)).collect();
        assert_eq!(
            at,
            [
                (1, "any", None),
                (2, "any", Some(1)),
                (2, "any", Some(2)),
                (2, "all", Some(0)),
                (2, "none", Some(0)),
                (2, "none", Some(1)),
                (2, "feeds", Some(1)),
            ]
        );
        assert_eq!(
            errs[0].message,
            "rule needs at least one term in `any` or `all`"
        );
        assert_eq!(errs[1].message, "empty term");
        assert_eq!(errs[2].message, "term '—' has no words");
        assert!(
            errs[3].message.starts_with("unbalanced quote"),
            "{}",
            errs[3].message
        );
        assert!(
            errs[4].message.starts_with("quotes may only"),
            "{}",
            errs[4].message
        );
        assert_eq!(errs[5].message, "empty term");
        assert!(errs[6].message.contains("[x"), "{}", errs[6].message);
        assert_eq!(errs[2].to_string(), "rule #2 any[2]: term '—' has no words");
        let e = RuleSet::compile(vec![spec(&["x"], &[], &[], &[" "])]).unwrap_err();
        assert_eq!((e[0].list, e[0].index), ("feeds", Some(0)));
    }

    #[test]
    fn hits_cover_every_occurrence_of_positive_terms() {
        let rules = set(vec![spec(
            &["Kursk", "North Korea"],
            &["troops"],
            &["exercise"],
            &[],
        )]);
        let d = doc("North Korean troops? No: North Korea sent troops to Kursk, and Kursk…");
        let m = rules.matches("f", &d);
        assert_eq!(m.len(), 1);
        assert_eq!(
            hit_texts(&d, &m[0]),
            ["troops", "North Korea", "troops", "Kursk", "Kursk"]
        );
        let terms: Vec<_> = m[0].hits.iter().map(|h| h.term.as_str()).collect();
        assert_eq!(terms, ["troops", "North Korea", "troops", "Kursk", "Kursk"]);
        assert!(m[0].hits.windows(2).all(|w| w[0].start <= w[1].start));
    }

    #[test]
    fn matched_terms_are_surface_forms_deduplicated_by_fold() {
        let rules = set(vec![spec(&["kursk", "north korea"], &["шойгу"], &[], &[])]);
        let d = doc("KURSK: Шойгу said North\nKorea sent troops to Kursk’s border; ШОЙГУ");
        let m = rules.matches("f", &d);
        assert_eq!(m[0].matched_terms(&d), ["KURSK", "Шойгу", "North Korea"]);
    }

    #[test]
    fn document_joins_parts() {
        assert_eq!(Document::new("Title", "", "Body").text, "Title\n\nBody");
        assert_eq!(Document::new(" ", "Sum", " ").text, "Sum");
        assert_eq!(
            Document::new("T", "Same  text", "Same text").text,
            "T\n\nSame  text"
        );
        assert_eq!(
            Document::new(
                "T",
                "Troops entered Kursk on…",
                "Troops entered Kursk on Tuesday."
            )
            .text,
            "T\n\nTroops entered Kursk on Tuesday."
        );
        assert_eq!(
            Document::new("T", "Lead.", "Other.").text,
            "T\n\nLead.\n\nOther."
        );
        // Matching sees every part.
        let rules = one(&["Kursk"]);
        assert_eq!(
            rules.matches("f", &Document::new("", "", "in Kursk")).len(),
            1
        );
    }

    #[test]
    fn candidate_index_only_uses_first_words() {
        let rules = set(vec![
            spec(&["North Korea"], &[], &[], &[]),
            spec(&["Korea"], &[], &[], &[]),
        ]);
        assert_eq!(rules.len(), 2);
        assert!(!rules.is_empty());
        assert_eq!(rules.spec(1).any, ["Korea"]);
        assert!(rules.by_first_word.contains_key("north"));
        assert_eq!(rules.by_first_word["korea"].len(), 1);
        assert_eq!(matching(&rules, "South Korea"), [1]);
        assert_eq!(matching(&rules, "North Korea"), [0, 1]);
    }

    proptest! {
        #[test]
        fn matching_never_panics(
            title in any::<String>(),
            summary in any::<String>(),
            content in "(Kursk|North|Korea|'s|’|\\s|[.,—-]|\\PC){0,40}",
        ) {
            let rules = set(vec![
                spec(&["Kursk", "North Korea"], &[], &["Korea's"], &[]),
                spec(&[], &["\"North\""], &[], &["*"]),
            ]);
            let d = Document::new(&title, &summary, &content);
            let n = d.text.chars().count();
            for m in rules.matches("feed", &d) {
                prop_assert!(m.hits.windows(2).all(|w| w[0].start <= w[1].start));
                for h in &m.hits {
                    prop_assert!(h.start < h.end && h.end <= n);
                }
                let _ = m.matched_terms(&d);
            }
        }
    }
}
