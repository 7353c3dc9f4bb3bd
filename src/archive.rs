//! The archive of recent items: what `backtest`, `search` and `check`'s
//! per-rule counts run over.
//!
//! Every new item is stored by the poll's own transaction (see the
//! "Archive" section of [`crate::state`]) with the rule engine's terms of
//! its text ([`entry`]). Everything here reads: nothing is sent, no outbox
//! row is written. Matching goes through the same functions as the daemon
//! ([`pipeline::document`], [`RuleSet::matches`],
//! [`pipeline::alert_for_matches`]), so a backtest shows the snippets and
//! highlights a live alert would have had.
//!
//! `search` narrows with FTS5 only when the query allows it
//! ([`fts_prefilter`]: a necessary condition built from positive words,
//! prefixes and exact terms of the text fields, over the engine's own stems
//! and folded words) and verifies every candidate with the engine; a query
//! FTS cannot narrow is a scan of the archive (bounded by its size).

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::{AlertFeed, Item, Snippet};
use crate::pipeline;
use crate::rules::ast::{Field, Node, TermKind};
use crate::rules::{Aliases, Document, RuleSet, RuleSpec};
use crate::state::{ArchiveEntry, ArchiveQuery, ArchiveStats, ArchivedItem, State, StateError};
use crate::text::{fold, stem};

/// `check` counts matches over at most this many of the newest archived
/// items, so it stays quick on a full archive.
pub const CHECK_MAX_ITEMS: usize = 50_000;
/// `check` calls a rule broad when it matches more than this share of the
/// archived items ...
pub const BROAD_SHARE: f64 = 0.20;
/// ... and the archive holds at least this many (a share of a handful of
/// items says little).
pub const BROAD_MIN_ITEMS: usize = 20;

/// The archive row for a new item: the item, its feed as alerts name it,
/// and the engine's terms of its text for the FTS index: the distinct
/// folded words and the distinct stems, each in order of first use (the
/// index keeps no positions or counts, `detail = column`, so repeats
/// would only cost indexing time).
pub fn entry(feed: &AlertFeed, item: &Item, doc: &Document) -> ArchiveEntry {
    let (mut words, mut stems) = (String::new(), String::new());
    let (mut seen_words, mut seen_stems) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for (w, s) in doc.text_terms() {
        for (out, seen, t) in [
            (&mut words, &mut seen_words, w),
            (&mut stems, &mut seen_stems, s),
        ] {
            if seen.insert(t) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(t);
            }
        }
    }
    ArchiveEntry {
        feed_title: feed.title.clone(),
        feed_url: feed.url.clone(),
        item: item.clone(),
        words,
        stems,
    }
}

/// Rows one pruning transaction deletes at most: the write lock is held
/// for milliseconds, and polls commit between batches.
pub const PRUNE_BATCH: usize = 2_000;
/// How often the daemon prunes the archive (also at start).
pub const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Drops archived items first seen more than `archive_days` before `now`
/// and the oldest beyond `archive_max_items` (everything when the archive
/// is off), [`PRUNE_BATCH`] rows per transaction. Returns how many went.
pub fn prune(
    state: &State,
    d: &crate::config::DaemonConfig,
    now: DateTime<Utc>,
) -> Result<usize, StateError> {
    let cutoff = now - chrono::Duration::days(i64::from(d.archive_days));
    let max_items = if d.archive_days == 0 {
        0
    } else {
        d.archive_max_items
    };
    let mut total = 0;
    loop {
        let n = state.prune_archive(cutoff, max_items, PRUNE_BATCH)?;
        total += n;
        if n < PRUNE_BATCH {
            return Ok(total);
        }
    }
}

/// [`prune`] from async code, logged.
pub async fn prune_logged(state: &State, d: &crate::config::DaemonConfig) {
    let d = d.clone();
    match state.call(move |s| prune(s, &d, Utc::now())).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(pruned = n, "archive pruned"),
        Err(e) => tracing::warn!(error = %e, "archive pruning failed; tried again later"),
    }
}

/// Rows one indexing transaction moves into the FTS index at most: large
/// enough that FTS5 writes few, large segments (per-poll transactions of
/// a few dozen items cost several times as much), small enough that the
/// connection is held for a fraction of a second.
pub const INDEX_BATCH: usize = 1_000;
/// How often the daemon looks for archived items to index.
pub const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// The daemon indexes only while no feed fetch is in flight (polls go
/// first), unless the oldest waiting item has waited this long.
pub const INDEX_MAX_LAG: chrono::Duration = chrono::Duration::minutes(5);

/// Indexes waiting archived items, [`INDEX_BATCH`] per transaction, while
/// `go()` allows another batch. Returns how many were indexed.
pub async fn index(state: &State, mut go: impl FnMut() -> bool) -> Result<usize, StateError> {
    let mut total = 0;
    while go() {
        let n = state.call(|s| s.index_archive(INDEX_BATCH)).await?;
        total += n;
        if n < INDEX_BATCH {
            break;
        }
    }
    Ok(total)
}

/// [`index`] from the daemon and `once`, logged.
pub async fn index_logged(state: &State, go: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    match index(state, go).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            indexed = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "archive search index updated"
        ),
        Err(e) => tracing::warn!(error = %e, "archive indexing failed; tried again later"),
    }
}

/// A word FTS5 (`unicode61`) keeps as one token exactly as we fold it:
/// Latin and Cyrillic letters and digits only.
fn plain(w: &str) -> bool {
    !w.is_empty()
        && w.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || (c.is_alphabetic() && matches!(c as u32, 0xC0..=0x24F | 0x400..=0x52F))
        })
}

/// A necessary condition for `node` as an FTS5 expression over the
/// archive index, or `None` when FTS cannot narrow it (negations, regexes,
/// aliases, link/author/category/feed fields, words with hyphens,
/// apostrophes or other scripts: FTS would tokenize them differently).
///
/// Sound by construction: a word term becomes its stem in the `stems`
/// column, a prefix or an exact term a folded word in `words`, both
/// written from the engine's own tokens; AND keeps the conjuncts it can
/// express, OR needs all of its branches, NEAR and phrases need each part.
/// Every item a rule matches therefore passes the prefilter; the engine
/// then decides.
pub fn fts_prefilter(node: &Node) -> Option<String> {
    fn text_field(f: &Option<Field>) -> bool {
        matches!(
            f,
            None | Some(Field::Text | Field::Title | Field::Summary | Field::Content)
        )
    }
    fn word(col: &str, w: &str, prefix: bool) -> Option<String> {
        plain(w).then(|| format!("{col}:\"{w}\"{}", if prefix { " *" } else { "" }))
    }
    fn term(exact: bool, w: &str) -> Option<String> {
        if !plain(w) {
            return None;
        }
        let folded = fold(w);
        if exact {
            word("words", &folded, false)
        } else {
            word("stems", &stem(&folded), false)
        }
    }
    fn all(parts: Vec<String>) -> Option<String> {
        match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => Some(format!("({})", parts.join(" AND "))),
        }
    }
    match node {
        Node::Term { field, kind, .. } if text_field(field) => match kind {
            TermKind::Word(w) => term(false, w),
            TermKind::Exact(w) => term(true, w),
            TermKind::Prefix(p) => {
                let folded: String = fold(p).chars().filter(|c| c.is_alphanumeric()).collect();
                word("words", &folded, true)
            }
        },
        Node::Phrase {
            field,
            words,
            exact,
            ..
        } if text_field(field) => all(words.iter().filter_map(|w| term(*exact, w)).collect()),
        Node::And(children) => all(children.iter().filter_map(fts_prefilter).collect()),
        Node::Near { left, right, .. } => all([left, right]
            .iter()
            .filter_map(|n| fts_prefilter(n))
            .collect()),
        Node::Or(children) => {
            let parts: Option<Vec<String>> = children.iter().map(fts_prefilter).collect();
            Some(format!("({})", parts?.join(" OR ")))
        }
        _ => None,
    }
}

/// A query that does not compile: the message and where (1-based column
/// in chars, when known).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryProblem {
    pub column: Option<usize>,
    pub message: String,
}

impl QueryProblem {
    /// `query:COL: message`, then the query with a caret under the column.
    pub fn render(&self, query: &str) -> String {
        match self.column {
            Some(col) => format!(
                "query:{col}: {}\n  {}\n  {}^",
                self.message,
                query
                    .chars()
                    .filter_map(crate::sink::shown)
                    .collect::<String>(),
                " ".repeat(col.saturating_sub(1))
            ),
            None => format!("query: {}", self.message),
        }
    }
}

/// Compiles an ad-hoc query (the config's aliases apply) as a one-rule
/// set; every problem with its column.
pub fn compile_query(query: &str, aliases: &Aliases) -> Result<RuleSet, Vec<QueryProblem>> {
    let spec = RuleSpec {
        id: "query".into(),
        query: Some(query.to_string()),
        ..RuleSpec::default()
    };
    match RuleSet::compile(vec![spec], aliases) {
        Ok((set, _)) => Ok(set),
        Err(errs) => Err(errs
            .into_iter()
            .map(|e| QueryProblem {
                column: match (&e.at.alias, e.at.offset) {
                    // An error inside an alias is placed at the alias.
                    (None, Some(o)) => Some(query.get(..o).map_or(0, |p| p.chars().count()) + 1),
                    _ => None,
                },
                message: match &e.at.alias {
                    Some(a) => format!("alias @{a}: {}", e.message),
                    None => e.message,
                },
            })
            .collect()),
    }
}

/// The feed of an archived item as its alerts name it: the configured
/// title if the feed is still configured, else what was stored.
fn feed_of(config: &Config, a: &ArchivedItem) -> AlertFeed {
    match config.feeds.iter().find(|f| f.id == a.feed_id) {
        Some(f) => AlertFeed {
            id: f.id.clone(),
            title: f.title.clone().unwrap_or_else(|| a.feed_title.clone()),
            url: f.url.clone(),
        },
        None => AlertFeed {
            id: a.feed_id.clone(),
            title: a.feed_title.clone(),
            url: a.feed_url.clone(),
        },
    }
}

// ------------------------------------------------------------- backtest ---

/// One rule's result in a backtest.
#[derive(Debug, Clone)]
pub struct RuleResult {
    pub rule: String,
    pub severity: String,
    /// Archived items it matched.
    pub matched: usize,
    /// The newest of them as alerts (at most the shown limit).
    pub shown: Vec<crate::model::Alert>,
}

/// What a backtest found.
#[derive(Debug, Clone)]
pub struct Backtest {
    /// The archive over the period.
    pub stats: ArchiveStats,
    pub since: Option<DateTime<Utc>>,
    /// In config order (only the chosen rule with `--rule`).
    pub rules: Vec<RuleResult>,
}

/// Runs the config's rules over the archived items first seen since
/// `since` (newest first). `rule`: report only that rule id; `show`: keep
/// at most this many alerts per rule (all are counted). Sends nothing,
/// writes nothing.
pub fn backtest(
    config: &Config,
    state: &State,
    since: Option<DateTime<Utc>>,
    rule: Option<usize>,
    show: usize,
) -> Result<Backtest, StateError> {
    let stats = state.archive_stats(since)?;
    let mut rules: Vec<RuleResult> = config
        .rule_meta
        .iter()
        .map(|m| RuleResult {
            rule: m.id.clone(),
            severity: m.severity.as_str().to_string(),
            matched: 0,
            shown: Vec::new(),
        })
        .collect();
    let cap = config.daemon.snippet_max_chars;
    let q = ArchiveQuery {
        since,
        ..ArchiveQuery::default()
    };
    state.archived(&q, |a| {
        let feed = feed_of(config, &a);
        let doc = pipeline::document(&a.item, &a.feed_id);
        for m in config.rules.matches(&doc) {
            if rule.is_some_and(|r| r != m.rule) {
                continue;
            }
            let Some(res) = rules.get_mut(m.rule) else {
                continue;
            };
            res.matched += 1;
            if res.shown.len() < show {
                let alert = pipeline::alert_for_matches(
                    config,
                    &feed,
                    &a.item,
                    &doc,
                    &[&m],
                    cap,
                    a.first_seen,
                );
                res.shown.extend(alert);
            }
        }
        true
    })?;
    if let Some(r) = rule {
        rules = rules.into_iter().skip(r).take(1).collect();
    }
    Ok(Backtest {
        stats,
        since,
        rules,
    })
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    })
}

fn share(n: usize, of: u64) -> String {
    if of == 0 {
        return String::new();
    }
    format!(" ({:.1}%)", n as f64 * 100.0 / of as f64)
}

/// Prints a backtest: per rule its matches (as `wirewatch match` shows
/// alerts), then a summary line per rule. `json`: one object per line,
/// `{"type":"match","rule":..,"alert":..}` then `{"type":"rule",..}`.
pub fn print_backtest(out: &mut impl Write, b: &Backtest, json: bool) -> std::io::Result<()> {
    let items = b.stats.items;
    if json {
        for r in &b.rules {
            for a in &r.shown {
                let v = serde_json::json!({"type": "match", "rule": r.rule, "alert": a});
                writeln!(out, "{v}")?;
            }
        }
        for r in &b.rules {
            let v = serde_json::json!({
                "type": "rule", "rule": r.rule, "severity": r.severity,
                "matched": r.matched, "items": items,
            });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    for r in &b.rules {
        writeln!(
            out,
            "== rule {} ({}): {} of {items} item(s){}",
            r.rule,
            r.severity,
            r.matched,
            share(r.matched, items)
        )?;
        for a in &r.shown {
            for line in crate::sink::render_alert(a, false).trim_end().lines() {
                writeln!(out, "  {line}")?;
            }
            writeln!(out)?;
        }
        if r.matched > r.shown.len() {
            writeln!(
                out,
                "  ... and {} more (--limit shows more)\n",
                r.matched - r.shown.len()
            )?;
        }
    }
    writeln!(
        out,
        "backtest over {items} archived item(s) first seen {} .. {}{}; nothing was sent",
        when(b.stats.oldest),
        when(b.stats.newest),
        b.since
            .map(|s| format!(" (since {})", when(Some(s))))
            .unwrap_or_default()
    )?;
    let width = b.rules.iter().map(|r| r.rule.len()).max().unwrap_or(0);
    for r in &b.rules {
        writeln!(
            out,
            "  {:<width$}  {:>6}{}{}",
            r.rule,
            r.matched,
            share(r.matched, items),
            if r.matched == 0 { "  NO MATCH" } else { "" }
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- check ---

/// Per-rule match counts over the newest archived items, for `check`.
#[derive(Debug, Clone)]
pub struct RuleCounts {
    /// Items counted (at most [`CHECK_MAX_ITEMS`]).
    pub items: usize,
    /// First-seen times of the oldest and newest item counted.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Per rule, in config order.
    pub matched: Vec<usize>,
}

impl RuleCounts {
    /// Whether rule `i` matches more than [`BROAD_SHARE`] of a large
    /// enough sample.
    pub fn broad(&self, i: usize) -> bool {
        let n = self.matched.get(i).copied().unwrap_or(0);
        self.items >= BROAD_MIN_ITEMS && n as f64 > self.items as f64 * BROAD_SHARE
    }
}

/// Counts, per rule, the archived items it matches (the newest
/// `max_items`); `None` when the archive is empty.
pub fn rule_counts(
    config: &Config,
    state: &State,
    max_items: usize,
) -> Result<Option<RuleCounts>, StateError> {
    let mut c = RuleCounts {
        items: 0,
        from: None,
        to: None,
        matched: vec![0; config.rule_meta.len()],
    };
    state.archived(&ArchiveQuery::default(), |a| {
        if c.items >= max_items {
            return false;
        }
        c.items += 1;
        c.to.get_or_insert(a.first_seen);
        c.from = Some(a.first_seen);
        let doc = pipeline::document(&a.item, &a.feed_id);
        for m in config.rules.matches(&doc) {
            if let Some(n) = c.matched.get_mut(m.rule) {
                *n += 1;
            }
        }
        true
    })?;
    Ok((c.items > 0).then_some(c))
}

/// `check`'s archive section: counts on `out`, warnings for dead and
/// broad rules on `err` (`FILE: warning: ...`, like the config's own).
pub fn print_counts(
    out: &mut impl Write,
    err: &mut impl Write,
    config: &Config,
    c: &RuleCounts,
) -> std::io::Result<()> {
    writeln!(
        out,
        "  archive: {} item(s) first seen {} .. {}; matches per rule:",
        c.items,
        when(c.from),
        when(c.to)
    )?;
    let period = format!("first seen {} .. {}", when(c.from), when(c.to));
    for (i, meta) in config.rule_meta.iter().enumerate() {
        let n = c.matched.get(i).copied().unwrap_or(0);
        let flag = if n == 0 {
            "  NO MATCH"
        } else if c.broad(i) {
            "  BROAD"
        } else {
            ""
        };
        writeln!(
            out,
            "  rule {:<24} {:>6}{}{flag}",
            meta.id,
            n,
            share(n, c.items as u64)
        )?;
        if n == 0 {
            writeln!(
                err,
                "{}: warning: rule \"{}\" matches none of the {} archived item(s) ({period}); check its terms before relying on it",
                meta.file.display(),
                meta.id,
                c.items
            )?;
        } else if c.broad(i) {
            writeln!(
                err,
                "{}: warning: rule \"{}\" matches {n} of the {} archived item(s){} ({period}), more than {:.0}%: it may alert on much more than intended",
                meta.file.display(),
                meta.id,
                c.items,
                share(n, c.items as u64),
                BROAD_SHARE * 100.0
            )?;
        }
    }
    Ok(())
}

// --------------------------------------------------------------- search ---

/// One search result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    pub feed: String,
    pub feed_title: String,
    pub key: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
    pub matched: Vec<String>,
    pub snippet: Snippet,
}

/// What a search did.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub found: Vec<Found>,
    /// The FTS5 prefilter used, if the query allowed one.
    pub prefilter: Option<String>,
    /// Archived items the engine looked at.
    pub examined: usize,
}

/// Searches the archive with a compiled query (`set`, from
/// [`compile_query`]; `node`: its parsed tree, for the prefilter). Newest
/// first, at most `limit`.
pub fn search(
    state: &State,
    set: &RuleSet,
    node: Option<&Node>,
    since: Option<DateTime<Utc>>,
    feed: Option<&str>,
    limit: usize,
    max_chars: usize,
) -> Result<SearchResult, StateError> {
    let prefilter = node.and_then(fts_prefilter);
    let q = ArchiveQuery {
        since,
        feed: feed.map(str::to_string),
        fts: prefilter.clone(),
    };
    let mut found = Vec::new();
    let examined = state.archived(&q, |a| {
        let doc = pipeline::document(&a.item, &a.feed_id);
        if let Some(m) = set.matches(&doc).into_iter().next() {
            found.push(Found {
                matched: m.matched_terms(&doc),
                snippet: pipeline::snippet_of(set, &doc, &m, max_chars),
                feed: a.feed_id,
                feed_title: a.feed_title,
                key: a.item.key,
                title: a.item.title,
                link: a.item.link,
                published: a.item.published,
                first_seen: a.first_seen,
            });
        }
        found.len() < limit
    })?;
    Ok(SearchResult {
        found,
        prefilter,
        examined,
    })
}

/// Prints search results: per item its date, feed and title, the
/// highlighted snippet and the link; `json`: one [`Found`] per line.
pub fn print_search(out: &mut impl Write, r: &SearchResult, json: bool) -> std::io::Result<()> {
    let clean = |s: &str| s.chars().filter_map(crate::sink::shown).collect::<String>();
    for f in &r.found {
        if json {
            writeln!(out, "{}", serde_json::to_string(f).unwrap_or_default())?;
            continue;
        }
        writeln!(
            out,
            "{}  {}  {}",
            when(f.published.or(Some(f.first_seen))),
            clean(&f.feed),
            clean(&f.title)
        )?;
        let runs = crate::sink::snippet_runs(&f.snippet);
        let text: String = runs
            .iter()
            .map(|(hl, t)| if *hl { format!("[{t}]") } else { t.clone() })
            .collect();
        writeln!(out, "    {text}")?;
        if let Some(l) = &f.link {
            writeln!(out, "    {}", clean(l))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::query::parse_query;

    fn pre(q: &str) -> Option<String> {
        fts_prefilter(&parse_query(q).unwrap())
    }

    #[test]
    fn prefilter_keeps_only_what_fts_can_decide() {
        assert_eq!(pre("Курской").as_deref(), Some("stems:\"курск\""));
        assert_eq!(pre("demin*").as_deref(), Some("words:\"demin\" *"));
        assert_eq!(pre("=Mining").as_deref(), Some("words:\"mining\""));
        assert_eq!(
            pre("Kursk -hockey").as_deref(),
            Some("stems:\"kursk\""),
            "a negation is dropped from an AND"
        );
        assert_eq!(
            pre("Kursk OR Курск").as_deref(),
            Some("(stems:\"kursk\" OR stems:\"курск\")")
        );
        assert_eq!(
            pre("\"North Korea\" NEAR/5 Shoigu").as_deref(),
            Some("((stems:\"north\" AND stems:\"korea\") AND stems:\"shoigu\")")
        );
        assert_eq!(
            pre("title:Kursk author:Petrova").as_deref(),
            Some("stems:\"kursk\"")
        );
        // Nothing FTS can narrow: a scan.
        for q in [
            "-hockey",
            "Kursk OR /KN-2[34]/",
            "Jong-un",
            "author:Petrova",
            "Kursk OR link:tass",
            "東京",
        ] {
            assert_eq!(pre(q), None, "{q}");
        }
    }

    fn item(key: &str, title: &str, summary: &str) -> Item {
        Item {
            key: key.into(),
            title: title.into(),
            link: None,
            published: None,
            updated: None,
            summary: summary.into(),
            content: String::new(),
            authors: vec![],
            categories: vec![],
            full_text: None,
        }
    }

    /// Archives `items` for feed "wire" in one poll commit at `at`.
    fn archive_items(st: &State, items: &[Item], at: DateTime<Utc>) {
        let feed = AlertFeed {
            id: "wire".into(),
            title: "Wire".into(),
            url: "http://wire.invalid/feed".into(),
        };
        let c = crate::state::PollCommit {
            status: 200,
            new: items.iter().map(|i| i.key.clone()).collect(),
            archive: items
                .iter()
                .map(|i| entry(&feed, i, &pipeline::document(i, "wire")))
                .collect(),
            ..Default::default()
        };
        st.commit_poll("wire", &c, at).unwrap();
    }

    fn keys(st: &State, q: &str, narrowed: bool) -> Vec<String> {
        let set = compile_query(q, &Aliases::new()).unwrap();
        let node = parse_query(q).unwrap();
        let r = search(st, &set, narrowed.then_some(&node), None, None, 100, 300).unwrap();
        assert_eq!(
            r.prefilter.is_some(),
            narrowed && fts_prefilter(&node).is_some()
        );
        let mut k: Vec<String> = r.found.into_iter().map(|f| f.key).collect();
        k.sort();
        k
    }

    /// The FTS prefilter never drops an item the engine matches: every
    /// query gives the same results narrowed and as a full scan, including
    /// Russian word forms, hyphen joins, possessives, prefixes and exact
    /// terms, where FTS5's own tokenizer would disagree with the rules.
    #[test]
    fn search_with_the_prefilter_equals_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open_dir(dir.path()).unwrap();
        let items = [
            item(
                "ru",
                "Сапёры работают в Курской области",
                "Разминирование идёт.",
            ),
            item(
                "hy",
                "De-mining near KURSK’s border",
                "Crews started at dawn.",
            ),
            item(
                "en",
                "Deminers cleared Kursk roads",
                "Mining the fields stopped.",
            ),
            item("ho", "Hockey in Kursk", "The home team won."),
            item("nk", "North Korea sends troops", "Pyongyang confirmed it."),
            item("us", "U.S. envoy visits", "Talks on 1,000 prisoners."),
        ];
        archive_items(&st, &items, Utc::now());
        let cases: &[(&str, &[&str])] = &[
            ("Курск", &["ru"]),
            ("курская", &["ru"]),
            ("сапер*", &["ru"]),
            ("разминирование", &["ru"]),
            ("demining", &["en", "hy"]),
            ("deminer", &["en", "hy"]),
            ("demin*", &["en", "hy"]),
            ("Kursk", &["en", "ho", "hy"]),
            ("Kursk -hockey", &["en", "hy"]),
            ("=KURSK", &[]),
            ("=Kursk", &["en", "ho"]),
            ("\"North Korea\"", &["nk"]),
            ("troops NEAR/3 Korea", &["nk"]),
            ("Курской NEAR/2 области", &["ru"]),
            ("mine", &["en", "hy"]),
            ("\"de mining\"", &["hy"]),
        ];
        let mut wrong = Vec::new();
        for (q, want) in cases {
            let scan = keys(&st, q, false);
            let narrowed = keys(&st, q, true);
            if narrowed != scan || &narrowed != want {
                wrong.push(format!(
                    "{q}: narrowed {narrowed:?}, scan {scan:?}, expected {want:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn backtest_counts_every_rule_and_builds_live_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open_dir(dir.path()).unwrap();
        let now = Utc::now();
        archive_items(
            &st,
            &[
                item(
                    "a",
                    "Deminers reach Kursk",
                    "Sappers cleared roads near Kursk.",
                ),
                item("b", "Weather", "Rain."),
            ],
            now,
        );
        let main = "[daemon]\nstate_dir = \"s\"\nrules = [\"r.toml\"]\n[[feed]]\nid = \"wire\"\nurl = \"http://wire.invalid/feed\"\n[[sink]]\nid = \"out\"\ntype = \"stdout\"\n";
        let rules =
            "[[rule]]\nid = \"kursk\"\nquery = 'Kursk'\n[[rule]]\nid = \"dead\"\nquery = 'Orel'\n";
        std::fs::write(dir.path().join("c.toml"), main).unwrap();
        std::fs::write(dir.path().join("r.toml"), rules).unwrap();
        let cfg = crate::config::load(&dir.path().join("c.toml")).unwrap();
        let b = backtest(&cfg, &st, None, None, 10).unwrap();
        assert_eq!(b.stats.items, 2);
        let counts: Vec<(&str, usize)> = b
            .rules
            .iter()
            .map(|r| (r.rule.as_str(), r.matched))
            .collect();
        assert_eq!(counts, vec![("kursk", 1), ("dead", 0)]);
        let alert = &b.rules[0].shown[0];
        assert_eq!(alert.snippet.text, "Sappers cleared roads near Kursk.");
        assert_eq!(alert.snippet.highlights, vec![(27, 32)]);
        assert_eq!(alert.id, pipeline::alert_id("wire", "a"));
        let c = rule_counts(&cfg, &st, 10).unwrap().unwrap();
        assert_eq!((c.items, c.matched.clone()), (2, vec![1, 0]));
        let only = backtest(&cfg, &st, None, Some(1), 10).unwrap();
        assert_eq!(only.rules.len(), 1);
        assert_eq!(only.rules[0].rule, "dead");
    }

    #[test]
    fn query_problems_carry_the_column() {
        let errs = compile_query("Kursk AND (deminers", &Aliases::new()).unwrap_err();
        assert_eq!(errs[0].column, Some(20), "{errs:?}");
        let errs = compile_query("Kursk NEAR/x Orel", &Aliases::new()).unwrap_err();
        assert_eq!(errs[0].column, Some(7), "{errs:?}");
        let shown = errs[0].render("Kursk AND (deminers");
        assert!(shown.starts_with("query:"), "{shown}");
        assert!(shown.lines().count() == 3, "{shown}");
    }
}
