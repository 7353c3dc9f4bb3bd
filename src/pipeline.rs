//! One poll of one feed: fetch -> parse -> unseen -> match -> snippet ->
//! one state transaction.
//!
//! The decision of which unseen items alert ([`Freshness`]) and the building
//! of alerts ([`alerts_for_item`]) are pure and shared with `wirewatch match`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::{Backfill, Config, FeedConfig};
use crate::fetch::{FetchError, FetchOutcome, Fetcher};
use crate::model::{Alert, AlertFeed, AlertItem, AlertRule, Item, ParsedFeed, Snippet};
use crate::parse::{parse_feed, ParseOptions};
use crate::rules::{DocFields, Document, RuleMatch, RuleSet};
use crate::schedule::Hints;
use crate::snippet::{make_snippet, SnippetHit};
use crate::state::{PollCommit, State, StateError};

/// Counters for the demo summary and logs.
#[derive(Debug, Default)]
pub struct Stats {
    pub polls: AtomicU64,
    pub failures: AtomicU64,
    pub not_modified: AtomicU64,
    pub new_items: AtomicU64,
    pub alerts_queued: AtomicU64,
    pub alerts_delivered: AtomicU64,
    /// The Prometheus registry: unlike the counters above it outlives the
    /// context, handed on to the next one on reload.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Everything a poll needs; shared by all feed tasks.
pub struct Ctx {
    pub config: Arc<Config>,
    pub state: State,
    /// Also holds the global and per-host fetch bounds.
    pub fetcher: Fetcher,
    /// Bounds concurrent parses: feed-rs needs ~25x the body in memory.
    pub parse_slots: Semaphore,
    pub stats: Stats,
    /// The longest a poll can take, queueing included (the watchdog's
    /// limit; see `daemon::poll_bound`).
    pub poll_bound: std::time::Duration,
    /// The story index (`crate::cluster`), loaded by the first poll.
    pub clusters: Arc<crate::cluster::Clusters>,
}

/// What a successful poll did.
#[derive(Debug, Default, Clone)]
pub struct PollReport {
    pub status: u16,
    pub items: usize,
    pub new_items: usize,
    pub alerts: usize,
    pub warnings: Vec<String>,
    /// What the feed and its server said about the schedule.
    pub hints: Hints,
    /// Set when this poll found the feed moved by a permanent redirect.
    pub moved_to: Option<String>,
    /// Rule indices, one per (new item, rule) match.
    pub matched: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("fetch failed: {0}")]
    Fetch(#[from] FetchError),
    #[error("parse failed: {0}")]
    Parse(String),
    #[error(transparent)]
    State(#[from] StateError),
}

impl PollError {
    /// The HTTP status that failed the poll, if it was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            PollError::Fetch(f) => f.status(),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            PollError::Fetch(FetchError::Status { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
}

/// Whether an unseen item alerts or is only marked seen.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub first_poll: bool,
    pub backfill: Backfill,
    pub retention: std::time::Duration,
    pub now: DateTime<Utc>,
}

impl Freshness {
    /// On a feed's first poll only items published within `backfill` alert
    /// (undated items count as old). Later, every unseen item alerts unless
    /// it is dated before the seen-retention window: such an item may be one
    /// whose key was already forgotten, and a stale alert is worse than none.
    pub fn alerts(&self, item: &Item) -> bool {
        let age = |p: DateTime<Utc>| (self.now - p).to_std().unwrap_or_default();
        if self.first_poll {
            return match (self.backfill, item.published) {
                (Backfill::All, _) => true,
                (Backfill::Window(_), None) => false,
                (Backfill::Window(w), _) if w.is_zero() => false,
                (Backfill::Window(w), Some(p)) => age(p) <= w,
            };
        }
        item.published.is_none_or(|p| age(p) <= self.retention)
    }
}

/// The alert id: stable for (feed id, item key). One item gives at most one
/// alert per sink, naming every rule it matched, so the item identifies it.
pub fn alert_id(feed_id: &str, item_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(feed_id.as_bytes());
    h.update([0]);
    h.update(item_key.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The alert for one item and the rules it matched that send to one sink
/// (`matches` non-empty): named by the most severe rule (config order breaks
/// ties), listing all; highlights and `matched` from all their hits. Pure.
pub fn alert_for_matches(
    config: &Config,
    feed: &AlertFeed,
    item: &Item,
    doc: &Document,
    matches: &[&RuleMatch],
    max_chars: usize,
    now: DateTime<Utc>,
) -> Option<Alert> {
    let mut ordered: Vec<(&RuleMatch, &crate::config::RuleMeta)> = matches
        .iter()
        .filter_map(|m| Some((*m, config.rule_meta.get(m.rule)?)))
        .collect();
    ordered.sort_by(|a, b| {
        b.1.severity
            .cmp(&a.1.severity)
            .then(a.0.rule.cmp(&b.0.rule))
    });
    let rules: Vec<AlertRule> = ordered
        .iter()
        .map(|(_, meta)| AlertRule {
            id: meta.id.clone(),
            severity: meta.severity.as_str().to_string(),
        })
        .collect();
    let first = ordered.first()?.0;
    let merged;
    let m = if ordered.len() == 1 {
        first
    } else {
        // Every rule's hits, in text order, each span once.
        let mut hits: Vec<crate::rules::Hit> = ordered
            .iter()
            .flat_map(|(m, _)| m.hits.iter().cloned())
            .collect();
        hits.sort_by_key(|h| (!h.in_text(), h.start, h.end));
        hits.dedup_by(|a, b| a.field == b.field && a.start == b.start && a.end == b.end);
        merged = RuleMatch {
            rule: first.rule,
            hits,
        };
        &merged
    };
    Some(Alert {
        id: alert_id(&feed.id, &item.key),
        rule: rules[0].clone(),
        rules,
        feed: feed.clone(),
        item: AlertItem {
            key: item.key.clone(),
            title: item.title.clone(),
            link: item.link.clone(),
            published: item.published,
            authors: item.authors.clone(),
        },
        matched: m.matched_terms(doc),
        snippet: snippet_of(&config.rules, doc, m, max_chars),
        detected_at: now,
        story: None,
    })
}

/// The snippet of one match, as alerts show it (also for ad-hoc queries:
/// `wirewatch search`). Pure.
pub fn snippet_of(rules: &RuleSet, doc: &Document, m: &RuleMatch, max_chars: usize) -> Snippet {
    snippet_for(doc, &snippet_hits(rules, m), max_chars)
}

/// Matches one item against the rules and builds an alert per matching
/// rule. Pure.
pub fn alerts_for_item(
    config: &Config,
    feed: &AlertFeed,
    item: &Item,
    now: DateTime<Utc>,
) -> Vec<(RuleMatch, Alert)> {
    alerts_for_doc(config, feed, item, &document(item, &feed.id), now)
}

/// [`alerts_for_item`] for an item already turned into a [`Document`].
fn alerts_for_doc(
    config: &Config,
    feed: &AlertFeed,
    item: &Item,
    doc: &Document,
    now: DateTime<Utc>,
) -> Vec<(RuleMatch, Alert)> {
    let cap = config.daemon.snippet_max_chars;
    config
        .rules
        .matches(doc)
        .into_iter()
        .filter_map(|m| {
            let alert = alert_for_matches(config, feed, item, doc, &[&m], cap, now)?;
            Some((m, alert))
        })
        .collect()
}

/// The hits a snippet can show: those in the item text (link, author,
/// category and feed hits count toward the match but have no place in it),
/// keyed by term so the snippet can count distinct terms.
fn snippet_hits(rules: &RuleSet, m: &RuleMatch) -> Vec<SnippetHit> {
    let mut keys: HashMap<&str, usize> = HashMap::new();
    m.hits
        .iter()
        .filter(|h| h.in_text())
        .map(|h| {
            let n = keys.len();
            SnippetHit {
                start: h.start,
                end: h.end,
                key: *keys.entry(rules.term(h)).or_insert(n),
            }
        })
        .collect()
}

/// Why a rule matched, for people debugging rules: each contributing hit
/// as `term -> "surface" (field chars start..end)`.
pub fn explain(rules: &RuleSet, doc: &Document, m: &RuleMatch) -> Vec<String> {
    m.hits
        .iter()
        .map(|h| {
            let surface: String = doc
                .field_value(h.field)
                .chars()
                .skip(h.start)
                .take(h.end.saturating_sub(h.start))
                .collect();
            let place = if h.in_text() { "text" } else { h.field.name() };
            format!(
                "{} -> \"{}\" ({}, {} chars {}..{})",
                rules.term(h),
                surface,
                h.field.name(),
                place,
                h.start,
                h.end
            )
        })
        .collect()
}

/// What the rules see of an item. An extracted article text stands for the
/// feed's content (for headline-only feeds empty or the summary again).
pub fn document(item: &Item, feed_id: &str) -> Document {
    Document::new(DocFields {
        title: &item.title,
        summary: &item.summary,
        content: item.full_text.as_deref().unwrap_or(&item.content),
        link: item.link.as_deref(),
        authors: &item.authors,
        categories: &item.categories,
        feed: feed_id,
    })
}

/// The snippet comes from the body when the body has a hit: the title is
/// shown with the alert anyway, and the body sentence says more. A hit only
/// in the title gives a title snippet.
fn snippet_for(doc: &Document, hits: &[SnippetHit], max_chars: usize) -> Snippet {
    let body = doc.body_start();
    let body_hits: Vec<SnippetHit> = hits
        .iter()
        .filter(|h| h.start >= body)
        .map(|h| SnippetHit {
            start: h.start - body,
            end: h.end - body,
            key: h.key,
        })
        .collect();
    if body_hits.is_empty() {
        return make_snippet(&doc.text, hits, max_chars);
    }
    let text: String = doc.text.chars().skip(body).collect();
    make_snippet(&text, &body_hits, max_chars)
}

pub fn alert_feed(feed: &FeedConfig, parsed: &ParsedFeed) -> AlertFeed {
    AlertFeed {
        id: feed.id.clone(),
        title: feed
            .title
            .clone()
            .or_else(|| parsed.title.clone().filter(|t| !t.trim().is_empty()))
            .unwrap_or_else(|| feed.id.clone()),
        url: feed.url.clone(),
    }
}

/// Parses on the blocking pool under the parse bound.
pub async fn parse_bounded(
    slots: &Semaphore,
    body: Vec<u8>,
    charset: Option<String>,
    opts: ParseOptions,
) -> Result<ParsedFeed, String> {
    let _permit = slots.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || parse_feed(&body, charset.as_deref(), &opts))
        .await
        .map_err(|e| format!("parser crashed: {e}"))?
        .map_err(|e| e.to_string())
}

/// Polls one feed and commits the result. Failures are recorded in state
/// (health) and returned; they never touch other feeds.
pub async fn poll_feed(ctx: &Ctx, feed: &FeedConfig) -> Result<PollReport, PollError> {
    ctx.stats.polls.fetch_add(1, Ordering::Relaxed);
    let result = poll_inner(ctx, feed).await;
    ctx.stats.metrics.polled(&ctx.config, &feed.id, &result);
    if let Err(e) = &result {
        ctx.stats.failures.fetch_add(1, Ordering::Relaxed);
        let status = match e {
            PollError::Fetch(f) => f.status(),
            _ => None,
        };
        let msg = e.to_string();
        let id = feed.id.clone();
        let failures = ctx
            .state
            .call(move |s| s.record_failure(&id, status, &msg, Utc::now()))
            .await;
        if let Err(se) = failures {
            tracing::error!(feed = %feed.id, error = %se, "cannot record feed failure");
        }
    }
    result
}

async fn poll_inner(ctx: &Ctx, feed: &FeedConfig) -> Result<PollReport, PollError> {
    let id = feed.id.clone();
    let memory = ctx.state.call(move |s| s.feed_memory(&id)).await?;
    // A permanent redirect recorded earlier applies while the config still
    // names the URL it was seen from.
    let url = match &memory.moved {
        Some(m) if m.applies_to(&feed.url) => m.to.clone(),
        Some(_) => {
            let id = feed.id.clone();
            ctx.state.call(move |s| s.clear_moved(&id)).await?;
            feed.url.clone()
        }
        None => feed.url.clone(),
    };
    // Timed from admission: the histogram shows the fetch, not the queue.
    let admitted = ctx.fetcher.admit(&url).await?;
    let fetch = ctx.fetcher.fetch_admitted(&admitted, &memory.validators);
    let fetched = ctx.stats.metrics.time_fetch(fetch).await?;
    // The global slot stays held until the poll is committed (or fails):
    // bodies and parsed items in memory are bounded by
    // `max_concurrent_fetches`, however fast servers answer.
    let mut slot = Some(admitted.keep_slot());
    if let Some(to) = &fetched.hints().moved_to {
        tracing::warn!(feed = %feed.id, configured = %feed.url, from = %url, to = %to,
            "feed moved permanently (HTTP 301/308): polling the new URL from now on; update the config");
        let (id, from, to) = (feed.id.clone(), feed.url.clone(), to.clone());
        ctx.state
            .call(move |s| s.record_moved(&id, &from, &to, Utc::now()))
            .await?;
    }
    let max_age = fetched.hints().max_age;
    let moved_to = fetched.hints().moved_to.clone();
    let fetched = match fetched {
        FetchOutcome::NotModified { status, .. } => {
            ctx.stats.not_modified.fetch_add(1, Ordering::Relaxed);
            let id = feed.id.clone();
            ctx.state
                .call(move |s| s.record_not_modified(&id, status, Utc::now()))
                .await?;
            return Ok(PollReport {
                status,
                hints: Hints {
                    feed: memory.hints,
                    max_age,
                },
                moved_to,
                ..PollReport::default()
            });
        }
        FetchOutcome::Fetched(f) => f,
    };
    let opts = ParseOptions {
        max_items: ctx.config.daemon.max_items_per_feed,
        base_url: Some(fetched.final_url.clone()),
    };
    let mut parsed = parse_bounded(&ctx.parse_slots, fetched.body, fetched.charset, opts)
        .await
        .map_err(PollError::Parse)?;
    for w in &parsed.warnings {
        tracing::warn!(feed = %feed.id, warning = %w, "feed problem");
    }

    let now = Utc::now();
    let keys: Vec<String> = parsed.items.iter().map(|i| i.key.clone()).collect();
    let (id, lookup) = (feed.id.clone(), keys.clone());
    let unseen = ctx.state.call(move |s| s.unseen(&id, &lookup)).await?;
    let fresh = Freshness {
        first_poll: !memory.polled_before,
        backfill: feed.backfill,
        retention: ctx.config.daemon.seen_retention,
        now,
    };
    let afeed = alert_feed(feed, &parsed);
    ctx.clusters.prepare(&ctx.config, &ctx.state).await?;
    let mut story_rows = Vec::new();
    let mut held = Vec::new();
    let mut queued = Vec::new();
    let mut alerts = 0;
    let mut items_alerted = 0;
    let mut matched = Vec::new();
    let unseen_set: std::collections::HashSet<&str> = unseen.iter().map(String::as_str).collect();
    if let Some(ft) = &feed.full_text {
        // Article fetches take slots of their own: give this one back first
        // (holding it while waiting for others could deadlock).
        slot.take();
        // The items matched below: first of their key, unseen, alerting.
        let mut firsts = std::collections::HashSet::new();
        let wanted: Vec<usize> = (0..parsed.items.len())
            .filter(|&i| {
                let item = &parsed.items[i];
                unseen_set.contains(item.key.as_str())
                    && firsts.insert(item.key.clone())
                    && fresh.alerts(item)
            })
            .collect();
        crate::fulltext::enrich(
            &ctx.fetcher,
            &ctx.parse_slots,
            &ctx.stats.metrics,
            &feed.id,
            ft,
            &mut parsed.items,
            &wanted,
        )
        .await;
    }
    let mut done = std::collections::HashSet::new();
    // Every new item that could alert is archived, matching or not
    // (`archive_days = 0`: none). A feed's backlog on its first poll (older
    // than `backfill`) and stale items are history, not news: marked seen
    // only, never matched, clustered or archived (on a 5,000-feed first
    // cycle, archiving the backlog too cost 3x the CPU).
    let archiving = ctx.config.daemon.archive_days > 0;
    let mut archive = Vec::new();
    for item in &parsed.items {
        if !unseen_set.contains(item.key.as_str()) || !done.insert(item.key.as_str()) {
            continue;
        }
        if !fresh.alerts(item) {
            tracing::debug!(feed = %feed.id, item = %item.key, "old item marked seen without alert");
            continue;
        }
        let doc = document(item, &feed.id);
        if archiving {
            archive.push(crate::archive::entry(&afeed, item, &doc));
        }
        let matches = ctx.config.rules.matches(&doc);
        if matches.is_empty() {
            continue;
        }
        // Only items that matched a rule enter the story index: an alert or
        // a repeat can only concern those, so its memory and time follow
        // the matches, not the whole traffic.
        let observed = ctx.clusters.observe(&feed.id, item, now);
        if let Some(o) = &observed {
            let rules: Vec<&str> = matches
                .iter()
                .filter_map(|m| ctx.config.rule_meta.get(m.rule).map(|r| r.id.as_str()))
                .collect();
            if !rules.is_empty() {
                ctx.clusters.record_rules(o.assignment.story, &rules);
            }
            tracing::debug!(feed = %feed.id, item = %item.key, story = %o.story.id,
                repeat = o.story.repeat, "story");
            let rules = rules.into_iter().map(str::to_string).collect();
            story_rows.extend(o.row(&feed.id, item, rules, now));
        }
        alerts += matches.len();
        matched.extend(matches.iter().map(|m| m.rule));
        items_alerted += 1;
        let aid = alert_id(&feed.id, &item.key);
        for m in &matches {
            let rule = ctx
                .config
                .rule_meta
                .get(m.rule)
                .map_or("?", |r| r.id.as_str());
            tracing::info!(feed = %feed.id, rule = %rule, item = %item.key, alert = %aid, "match");
        }
        // One alert per sink naming every rule that sends there; one
        // payload per distinct (rules, snippet length).
        let mut routed: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, m) in matches.iter().enumerate() {
            for sink in ctx.config.sinks_for_rule(m.rule) {
                match routed.iter_mut().find(|(s, _)| *s == sink) {
                    Some((_, idx)) => idx.push(i),
                    None => routed.push((sink, vec![i])),
                }
            }
        }
        let mut payloads: HashMap<(Vec<usize>, usize), String> = HashMap::new();
        for (sink, idx) in routed {
            let route = observed
                .as_ref()
                .map_or(crate::cluster::Route::Send, |o| o.route(&ctx.config, &idx));
            if route == crate::cluster::Route::Drop {
                tracing::info!(feed = %feed.id, sink = %sink, item = %item.key, alert = %aid,
                    story = ?observed.as_ref().map(|o| &o.story.id), "repeat of a story dropped");
                continue;
            }
            let cap = ctx.config.snippet_cap(sink);
            let key = (idx, cap);
            let payload = match payloads.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let ms: Vec<&RuleMatch> = key.0.iter().map(|&i| &matches[i]).collect();
                    let Some(mut alert) =
                        alert_for_matches(&ctx.config, &afeed, item, &doc, &ms, cap, now)
                    else {
                        continue;
                    };
                    alert.story = observed.as_ref().map(|o| o.story.clone());
                    let p = serde_json::to_string(&alert)
                        .map_err(|e| PollError::Parse(e.to_string()))?;
                    payloads.insert(key, p.clone());
                    p
                }
            };
            if route == crate::cluster::Route::Hold {
                let release = crate::cluster::hold_until(&ctx.config, sink, now);
                tracing::info!(feed = %feed.id, sink = %sink, item = %item.key, alert = %aid,
                    release_at = %release, "repeat of a story held for a digest");
                held.push((sink.to_string(), aid.clone(), payload, release));
            } else {
                queued.push((sink.to_string(), aid.clone(), payload));
            }
        }
    }
    let commit = PollCommit {
        status: fetched.status,
        validators: fetched.validators,
        items: keys.len(),
        present: keys,
        new: unseen.clone(),
        alerts: queued,
        items_alerted,
        hints: parsed.hints,
        archive,
        stories: story_rows,
        held,
    };
    let queued_n = (commit.alerts.len() + commit.held.len()) as u64;
    let id = feed.id.clone();
    ctx.state
        .call(move |s| s.commit_poll(&id, &commit, now))
        .await?;
    drop(slot);
    ctx.stats
        .new_items
        .fetch_add(unseen.len() as u64, Ordering::Relaxed);
    ctx.stats
        .alerts_queued
        .fetch_add(queued_n, Ordering::Relaxed);
    Ok(PollReport {
        status: fetched.status,
        items: parsed.items.len(),
        new_items: unseen.len(),
        alerts,
        warnings: parsed.warnings,
        hints: Hints {
            feed: parsed.hints,
            max_age,
        },
        moved_to,
        matched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn item(published: Option<DateTime<Utc>>) -> Item {
        Item {
            key: "k".into(),
            title: "t".into(),
            link: None,
            published,
            updated: None,
            summary: String::new(),
            content: String::new(),
            authors: vec![],
            categories: vec![],
            full_text: None,
        }
    }

    #[test]
    fn backfill_and_staleness() {
        let now = Utc::now();
        let hours = |h: i64| Some(now - chrono::Duration::hours(h));
        let f = |first_poll, backfill| Freshness {
            first_poll,
            backfill,
            retention: Duration::from_secs(90 * 86_400),
            now,
        };
        let day = Backfill::Window(Duration::from_secs(86_400));
        assert!(f(true, day).alerts(&item(hours(2))));
        assert!(!f(true, day).alerts(&item(hours(30))));
        assert!(
            !f(true, day).alerts(&item(None)),
            "undated is old on the first poll"
        );
        assert!(f(true, Backfill::All).alerts(&item(None)));
        assert!(f(true, Backfill::All).alerts(&item(hours(24 * 400))));
        assert!(!f(true, Backfill::Window(Duration::ZERO)).alerts(&item(hours(1))));
        assert!(
            f(false, day).alerts(&item(None)),
            "undated is new on later polls"
        );
        assert!(f(false, day).alerts(&item(hours(30))));
        assert!(
            !f(false, day).alerts(&item(hours(24 * 100))),
            "older than retention is stale"
        );
    }

    #[test]
    fn snippet_prefers_a_body_sentence_over_the_title() {
        let doc = Document::new(DocFields {
            title: "Deminers reach Kursk villages",
            summary:
                "Officials met on Monday. Sappers said deminers cleared roads near Kursk overnight.",
            content: "",
            link: None,
            authors: &[],
            categories: &[],
            feed: "wire",
        });
        let hit = |word: &str, key| {
            let start = doc
                .text
                .find(word)
                .map(|b| doc.text[..b].chars().count())
                .unwrap_or(0);
            SnippetHit {
                start,
                end: start + word.chars().count(),
                key,
            }
        };
        let hits = [hit("Kursk", 0), hit("deminers", 1)];
        let body_kursk = doc
            .text
            .rfind("Kursk")
            .map(|b| doc.text[..b].chars().count())
            .unwrap_or(0);
        let all = [
            hits[0],
            hits[1],
            SnippetHit {
                start: body_kursk,
                end: body_kursk + 5,
                key: 0,
            },
        ];
        let s = snippet_for(&doc, &all, 300);
        assert_eq!(
            s.text,
            "Sappers said deminers cleared roads near Kursk overnight."
        );
        assert_eq!(
            s.highlights,
            vec![(13, 21), (41, 46)],
            "deminers and the body's Kursk"
        );
        let title_only = snippet_for(&doc, &hits[..1], 300);
        assert_eq!(title_only.text, "Deminers reach Kursk villages");
    }

    #[test]
    fn explain_names_term_surface_field_and_offsets() {
        use crate::rules::{RuleSet, RuleSpec};
        let spec = RuleSpec {
            id: "r".into(),
            query: Some("author:Petrova AND title:Kursk".into()),
            ..RuleSpec::default()
        };
        let (set, _) = RuleSet::compile(vec![spec], &Default::default()).unwrap();
        let authors = vec!["Ivan Orlov".to_string(), "Anna Petrova".to_string()];
        let doc = Document::new(DocFields {
            title: "KURSK update",
            summary: "Quiet night.",
            content: "",
            link: None,
            authors: &authors,
            categories: &[],
            feed: "wire",
        });
        let m = set.matches(&doc);
        assert_eq!(m.len(), 1);
        let why = explain(&set, &doc, &m[0]);
        assert!(
            why.contains(&"Kursk -> \"KURSK\" (title, text chars 0..5)".to_string()),
            "{why:?}"
        );
        assert!(
            why.contains(&"Petrova -> \"Petrova\" (author, author chars 16..23)".to_string()),
            "{why:?}"
        );
    }

    #[test]
    fn alert_ids_are_stable_and_distinct() {
        assert_eq!(alert_id("f", "k"), alert_id("f", "k"));
        assert_ne!(alert_id("f", "k"), alert_id("f2", "k"));
        assert_ne!(alert_id("ab", "c"), alert_id("a", "bc"));
        assert_eq!(alert_id("r", "k").len(), 32);
    }
}
