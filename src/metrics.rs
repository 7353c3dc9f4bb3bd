//! The Prometheus registry: what the daemon counts (polls by result, fetch
//! latency, bytes, items, matches per rule, deliveries per sink, article
//! pages of `full_text` feeds by result, their latency and bytes), the
//! figures of the running configuration, and their text exposition
//! (format 0.0.4). `docs/metrics.md` lists every metric.
//!
//! Pure: no I/O. What is only known at scrape time (the outbox depth, read
//! from the state database; the process's memory and CPU, read from
//! `/proc`) is gathered by `http` and handed to [`Metrics::render`] as a
//! [`Scrape`].
//!
//! One registry lives for the whole process: each reload's context gets
//! the previous one's (`daemon::context_with`), so counters never reset on
//! SIGHUP. [`Metrics::configure`] runs when a configuration's tasks start:
//! series of feeds, rules and sinks that configuration no longer has are
//! dropped (a feed added back later starts again from zero, which
//! Prometheus' `rate()` reads as a counter reset), and each configured
//! feed, rule and sink gets its zero series at once, so `rate()` and
//! `increase()` work from its first event. Label values are config ids,
//! so the number of series is bounded by the configuration.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::fetch::{FetchError, FetchOutcome};
use crate::pipeline::{PollError, PollReport};
use crate::state::OutboxDepth;

/// Upper bounds (seconds) of the fetch latency histogram's buckets. Fixed:
/// from a fast loopback answer to past the largest sensible
/// `fetch_timeout`; `+Inf` takes the rest.
pub const FETCH_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a delivery attempt failed, as the `kind` label of
/// `wirewatch_alerts_failed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// Will be retried after a pause (the sink waits).
    Transient,
    /// Refused by the receiver; retried a few times, then a dead letter.
    Rejected,
    /// The endpoint is gone: the sink is switched off.
    Gone,
    /// Became a dead letter (rejected too often, or past `retry_horizon`).
    Dead,
}

impl FailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailKind::Transient => "transient",
            FailKind::Rejected => "rejected",
            FailKind::Gone => "gone",
            FailKind::Dead => "dead",
        }
    }
}

/// Facts read at scrape time, outside this module.
#[derive(Debug, Default, Clone)]
pub struct Scrape {
    /// Per configured sink; `None` when the state database did not answer
    /// (the outbox series are then left out, and `/healthz` says why).
    pub outbox: Option<Vec<OutboxDepth>>,
    pub process: ProcessFacts,
}

/// What `/proc/self` tells about the process; `None` where unavailable.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessFacts {
    pub resident_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
}

/// A histogram with fixed bucket bounds: counts per bucket (not
/// cumulative; the exposition sums them), the total count and the sum.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

/// The figures of the configuration whose tasks run.
#[derive(Debug, Clone, Default)]
struct Running {
    feeds: usize,
    rules: usize,
    sinks: usize,
    ruleset_build: Duration,
    /// Unix seconds when it started.
    since: f64,
}

#[derive(Debug)]
struct Inner {
    /// feed -> result -> polls.
    polls: BTreeMap<String, BTreeMap<&'static str, u64>>,
    fetch_seconds: Histogram,
    fetch_bytes: u64,
    /// full_text feed -> result -> article pages.
    articles: BTreeMap<String, BTreeMap<&'static str, u64>>,
    article_seconds: Histogram,
    article_bytes: u64,
    items_parsed: u64,
    /// rule id -> matches.
    matches: BTreeMap<String, u64>,
    /// sink id -> alerts delivered.
    delivered: BTreeMap<String, u64>,
    /// sink id -> kind -> alerts.
    failed: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// "ok" / "refused" -> reloads.
    reloads: BTreeMap<&'static str, u64>,
    running: Option<Running>,
}

/// The registry. Cheap to update (one short lock per poll or delivery);
/// shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    /// Unix seconds when the registry (the daemon) started.
    started: f64,
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The `result` label of a poll: `ok`, `not_modified`, or why it failed
/// (`http_4xx`, `http_5xx`, `http_other`, `timeout`, `too_large`,
/// `redirect`, `network`, `parse`, `state`).
pub fn poll_result(result: &Result<PollReport, PollError>) -> &'static str {
    match result {
        Ok(report) if report.status == 304 => "not_modified",
        Ok(_) => "ok",
        Err(PollError::Fetch(e)) => fetch_failure(e),
        Err(PollError::Parse(_)) => "parse",
        Err(PollError::State(_)) => "state",
    }
}

/// Why a fetch (of a feed or an article page) failed, as a `result` label:
/// `http_4xx`, `http_5xx`, `http_other`, `timeout`, `too_large`,
/// `redirect` or `network`.
pub fn fetch_failure(e: &FetchError) -> &'static str {
    match e {
        FetchError::Timeout(_) => "timeout",
        FetchError::TooLarge { .. } => "too_large",
        FetchError::Status { status, .. } => match status {
            400..=499 => "http_4xx",
            500..=599 => "http_5xx",
            _ => "http_other",
        },
        // reqwest's own deadlines; `fetch` marks them with this prefix.
        FetchError::Http(msg) if msg.starts_with("timed out") => "timeout",
        // A loop, too many hops, a refused target or Location.
        FetchError::Redirect(_) => "redirect",
        // Connection, DNS, TLS, a broken body stream.
        FetchError::Http(_) => "network",
    }
}

/// What became of one new item's article page (`full_text = true`), as
/// the `result` label of `wirewatch_article_fetches_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArticleResult {
    /// Its main text was extracted; the rules see it.
    Ok,
    /// Fetched, but no article in it (paywall stub, teaser, section front)
    /// or only the feed's own text.
    NoArticle,
    /// The fetch failed; the `fetch_failure` word.
    Fetch(&'static str),
    /// Not done when `full_text_budget` ran out.
    OverBudget,
    /// Not fetched: over `full_text_max_articles`, or the item has no link.
    Skipped,
    /// A fetch or extraction task failed (a bug; logged).
    Internal,
}

impl ArticleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleResult::Ok => "ok",
            ArticleResult::NoArticle => "no_article",
            ArticleResult::Fetch(word) => word,
            ArticleResult::OverBudget => "over_budget",
            ArticleResult::Skipped => "skipped",
            ArticleResult::Internal => "internal",
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            started: unix_now(),
            inner: Mutex::new(Inner {
                polls: BTreeMap::new(),
                fetch_seconds: Histogram::new(&FETCH_BUCKETS),
                fetch_bytes: 0,
                articles: BTreeMap::new(),
                article_seconds: Histogram::new(&FETCH_BUCKETS),
                article_bytes: 0,
                items_parsed: 0,
                matches: BTreeMap::new(),
                delivered: BTreeMap::new(),
                failed: BTreeMap::new(),
                reloads: BTreeMap::new(),
                running: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent, so a poisoned lock (a
        // panic elsewhere while holding it) is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A configuration's tasks start: its figures become the gauges, series
    /// of feeds, rules and sinks it does not have are dropped, and its own
    /// get their zero series. Call it when no task of an older
    /// configuration runs any more, or a removed feed could come back.
    pub fn configure(&self, config: &Config) {
        let mut m = self.lock();
        let feeds: Vec<&str> = config.feeds.iter().map(|f| f.id.as_str()).collect();
        let rules: Vec<&str> = config.rule_meta.iter().map(|r| r.id.as_str()).collect();
        let sinks: Vec<&str> = config.sinks.iter().map(|s| s.id.as_str()).collect();
        m.polls.retain(|k, _| feeds.contains(&k.as_str()));
        let full_text: Vec<&str> = config
            .feeds
            .iter()
            .filter(|f| f.full_text.is_some())
            .map(|f| f.id.as_str())
            .collect();
        m.articles.retain(|k, _| full_text.contains(&k.as_str()));
        for f in &full_text {
            m.articles
                .entry(f.to_string())
                .or_default()
                .entry("ok")
                .or_insert(0);
        }
        m.matches.retain(|k, _| rules.contains(&k.as_str()));
        m.delivered.retain(|k, _| sinks.contains(&k.as_str()));
        m.failed.retain(|k, _| sinks.contains(&k.as_str()));
        for f in &feeds {
            m.polls
                .entry(f.to_string())
                .or_default()
                .entry("ok")
                .or_insert(0);
        }
        for r in &rules {
            m.matches.entry(r.to_string()).or_insert(0);
        }
        for s in &sinks {
            m.delivered.entry(s.to_string()).or_insert(0);
        }
        m.running = Some(Running {
            feeds: feeds.len(),
            rules: rules.len(),
            sinks: sinks.len(),
            ruleset_build: config.rules_build_time,
            since: unix_now(),
        });
    }

    /// Runs a fetch, recording its duration (whatever the outcome) and the
    /// bytes of a body it brought.
    pub async fn time_fetch<F>(&self, fetch: F) -> Result<FetchOutcome, FetchError>
    where
        F: Future<Output = Result<FetchOutcome, FetchError>>,
    {
        let started = Instant::now();
        let result = fetch.await;
        let bytes = match &result {
            Ok(FetchOutcome::Fetched(f)) => f.body.len() as u64,
            _ => 0,
        };
        self.fetched(started.elapsed(), bytes);
        result
    }

    /// One fetch took `took` and brought `bytes` of body.
    pub fn fetched(&self, took: Duration, bytes: u64) {
        let mut m = self.lock();
        m.fetch_seconds.observe(took.as_secs_f64());
        m.fetch_bytes += bytes;
    }

    /// An article page fetch of a `full_text` feed took `took` (from the
    /// request, slot waits included, to the whole body or the failure)
    /// and brought `bytes` of body.
    pub fn article_fetched(&self, took: Duration, bytes: u64) {
        let mut m = self.lock();
        m.article_seconds.observe(took.as_secs_f64());
        m.article_bytes += bytes;
    }

    /// `n` new items of `feed` ended their article phase with `result`.
    pub fn articles(&self, feed: &str, result: ArticleResult, n: usize) {
        if n == 0 {
            return;
        }
        *self
            .lock()
            .articles
            .entry(feed.to_string())
            .or_default()
            .entry(result.as_str())
            .or_insert(0) += n as u64;
    }

    /// One poll of `feed` ended with `result`: counted by result; a
    /// successful one adds its items and its rules' matches.
    pub fn polled(&self, config: &Config, feed: &str, result: &Result<PollReport, PollError>) {
        let kind = poll_result(result);
        let mut m = self.lock();
        *m.polls
            .entry(feed.to_string())
            .or_default()
            .entry(kind)
            .or_insert(0) += 1;
        if let Ok(report) = result {
            m.items_parsed += report.items as u64;
            for &rule in &report.matched {
                let id = config.rule_meta.get(rule).map_or("?", |r| r.id.as_str());
                match m.matches.get_mut(id) {
                    Some(n) => *n += 1,
                    None => {
                        m.matches.insert(id.to_string(), 1);
                    }
                }
            }
        }
    }

    /// `n` alerts went out through `sink` (a digest counts its alerts).
    pub fn delivered(&self, sink: &str, n: usize) {
        *self.lock().delivered.entry(sink.to_string()).or_insert(0) += n as u64;
    }

    /// A delivery attempt of `n` alerts through `sink` failed (`kind`), or
    /// `n` alerts became dead letters ([`FailKind::Dead`]).
    pub fn failed(&self, sink: &str, kind: FailKind, n: usize) {
        if n == 0 {
            return;
        }
        *self
            .lock()
            .failed
            .entry(sink.to_string())
            .or_default()
            .entry(kind.as_str())
            .or_insert(0) += n as u64;
    }

    /// A reload was applied (`true`) or refused.
    pub fn reloaded(&self, applied: bool) {
        let key = if applied { "ok" } else { "refused" };
        *self.lock().reloads.entry(key).or_insert(0) += 1;
    }

    /// The exposition: every metric with `# HELP` and `# TYPE`, series in
    /// a stable order.
    pub fn render(&self, scrape: &Scrape) -> String {
        let m = self.lock();
        let mut out = String::with_capacity(4096);
        let w = &mut out;

        family(
            w,
            "wirewatch_polls_total",
            "counter",
            "Polls of a feed, by result (ok, not_modified, http_4xx, http_5xx, http_other, timeout, too_large, redirect, network, parse, state).",
        );
        for (feed, results) in &m.polls {
            for (result, n) in results {
                sample(
                    w,
                    "wirewatch_polls_total",
                    &[("feed", feed), ("result", result)],
                    *n,
                );
            }
        }

        family(
            w,
            "wirewatch_fetch_duration_seconds",
            "histogram",
            "Time from the request to the whole body (or the failure) of one feed fetch.",
        );
        histogram(w, "wirewatch_fetch_duration_seconds", &m.fetch_seconds);

        family(
            w,
            "wirewatch_fetch_bytes_total",
            "counter",
            "Bytes of feed bodies fetched (after decompression).",
        );
        sample(w, "wirewatch_fetch_bytes_total", &[], m.fetch_bytes);

        family(
            w,
            "wirewatch_article_fetches_total",
            "counter",
            "Article pages of new items of full_text feeds, by result (ok, no_article, the fetch failures of wirewatch_polls_total, over_budget, skipped, internal).",
        );
        for (feed, results) in &m.articles {
            for (result, n) in results {
                sample(
                    w,
                    "wirewatch_article_fetches_total",
                    &[("feed", feed), ("result", result)],
                    *n,
                );
            }
        }

        family(
            w,
            "wirewatch_article_fetch_duration_seconds",
            "histogram",
            "Time from the request (slot waits included) to the whole body (or the failure) of one article page fetch.",
        );
        histogram(
            w,
            "wirewatch_article_fetch_duration_seconds",
            &m.article_seconds,
        );

        family(
            w,
            "wirewatch_article_fetch_bytes_total",
            "counter",
            "Bytes of article pages fetched (after decompression).",
        );
        sample(
            w,
            "wirewatch_article_fetch_bytes_total",
            &[],
            m.article_bytes,
        );

        family(
            w,
            "wirewatch_items_parsed_total",
            "counter",
            "Items in the feed documents parsed (every item, seen before or not).",
        );
        sample(w, "wirewatch_items_parsed_total", &[], m.items_parsed);

        family(
            w,
            "wirewatch_matches_total",
            "counter",
            "New items a rule matched.",
        );
        for (rule, n) in &m.matches {
            sample(w, "wirewatch_matches_total", &[("rule", rule)], *n);
        }

        family(
            w,
            "wirewatch_alerts_delivered_total",
            "counter",
            "Alerts a sink accepted (each alert of a digest counts).",
        );
        for (sink, n) in &m.delivered {
            sample(w, "wirewatch_alerts_delivered_total", &[("sink", sink)], *n);
        }

        family(
            w,
            "wirewatch_alerts_failed_total",
            "counter",
            "Alerts in failed delivery attempts, by kind (transient, rejected, gone), and alerts that became dead letters (dead).",
        );
        for (sink, kinds) in &m.failed {
            for (kind, n) in kinds {
                sample(
                    w,
                    "wirewatch_alerts_failed_total",
                    &[("sink", sink), ("kind", kind)],
                    *n,
                );
            }
        }

        if let Some(depths) = &scrape.outbox {
            family(
                w,
                "wirewatch_outbox_depth",
                "gauge",
                "Alerts queued for a sink and not yet delivered (held for a digest included, dead letters not).",
            );
            for d in depths {
                sample(w, "wirewatch_outbox_depth", &[("sink", &d.sink)], d.queued);
            }
            family(
                w,
                "wirewatch_outbox_held",
                "gauge",
                "Alerts of the outbox held for a digest (throttle, quiet hours, digest period).",
            );
            for d in depths {
                sample(w, "wirewatch_outbox_held", &[("sink", &d.sink)], d.held);
            }
            family(
                w,
                "wirewatch_dead_letters",
                "gauge",
                "Alerts kept as dead letters (see `wirewatch alerts`).",
            );
            for d in depths {
                sample(w, "wirewatch_dead_letters", &[("sink", &d.sink)], d.dead);
            }
        }

        if let Some(r) = &m.running {
            let gauges: [(&str, &str, f64); 5] = [
                ("wirewatch_feeds", "Feeds configured.", r.feeds as f64),
                ("wirewatch_rules", "Rules enabled.", r.rules as f64),
                ("wirewatch_sinks", "Sinks configured.", r.sinks as f64),
                (
                    "wirewatch_ruleset_build_seconds",
                    "Time the running rule set took to compile.",
                    r.ruleset_build.as_secs_f64(),
                ),
                (
                    "wirewatch_config_loaded_timestamp_seconds",
                    "When the running configuration started (Unix time).",
                    r.since,
                ),
            ];
            for (name, help, v) in gauges {
                family(w, name, "gauge", help);
                sample_f(w, name, &[], v);
            }
        }

        family(
            w,
            "wirewatch_config_reloads_total",
            "counter",
            "Reloads (SIGHUP or a file change), by result: ok, refused (the running configuration stayed).",
        );
        for result in ["ok", "refused"] {
            let n = m.reloads.get(result).copied().unwrap_or(0);
            sample(
                w,
                "wirewatch_config_reloads_total",
                &[("result", result)],
                n,
            );
        }

        family(
            w,
            "wirewatch_build_info",
            "gauge",
            "Always 1; the version of the running binary.",
        );
        sample(
            w,
            "wirewatch_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );

        family(
            w,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process (Unix time).",
        );
        sample_f(w, "process_start_time_seconds", &[], self.started);
        let p = &scrape.process;
        if let Some(v) = p.resident_bytes {
            family(
                w,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            sample(w, "process_resident_memory_bytes", &[], v);
        }
        if let Some(v) = p.cpu_seconds {
            family(
                w,
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time spent, in seconds.",
            );
            sample_f(w, "process_cpu_seconds_total", &[], v);
        }
        if let Some(v) = p.open_fds {
            family(w, "process_open_fds", "gauge", "Open file descriptors.");
            sample(w, "process_open_fds", &[], v);
        }
        out
    }
}

/// `# HELP` and `# TYPE` lines.
fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    w.push_str("# HELP ");
    w.push_str(name);
    w.push(' ');
    // In HELP text only backslash and newline are escaped.
    for c in help.chars() {
        match c {
            '\\' => w.push_str("\\\\"),
            '\n' => w.push_str("\\n"),
            c => w.push(c),
        }
    }
    w.push('\n');
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

/// `{a="x",b="y"}` with values escaped (backslash, double quote, newline);
/// nothing for no labels.
fn push_labels(w: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    w.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            w.push(',');
        }
        w.push_str(k);
        w.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => w.push_str("\\\\"),
                '"' => w.push_str("\\\""),
                '\n' => w.push_str("\\n"),
                c => w.push(c),
            }
        }
        w.push('"');
    }
    w.push('}');
}

fn sample(w: &mut String, name: &str, labels: &[(&str, &str)], v: u64) {
    w.push_str(name);
    push_labels(w, labels);
    let _ = writeln!(w, " {v}");
}

fn sample_f(w: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    w.push_str(name);
    push_labels(w, labels);
    w.push(' ');
    push_float(w, v);
    w.push('\n');
}

/// A float as the format wants it: `+Inf`, `-Inf`, `NaN` or a decimal.
fn push_float(w: &mut String, v: f64) {
    if v.is_nan() {
        w.push_str("NaN");
    } else if v.is_infinite() {
        w.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(w, "{v}");
    }
}

/// `_bucket` series (cumulative, ending with `le="+Inf"` = the count),
/// `_sum` and `_count`.
fn histogram(w: &mut String, name: &str, h: &Histogram) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0;
    for (bound, n) in h.bounds.iter().zip(&h.counts) {
        cumulative += n;
        let mut le = String::new();
        push_float(&mut le, *bound);
        sample(w, &bucket, &[("le", &le)], cumulative);
    }
    sample(w, &bucket, &[("le", "+Inf")], h.count);
    sample_f(w, &format!("{name}_sum"), &[], h.sum);
    sample(w, &format!("{name}_count"), &[], h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one line that starts with `series ` (name and
    /// labels exactly as rendered).
    fn value(text: &str, series: &str) -> Option<f64> {
        let mut found = text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '));
        let v = found.next()?;
        assert!(found.next().is_none(), "{series} appears twice");
        Some(if v == "+Inf" {
            f64::INFINITY
        } else {
            v.parse().expect("a number")
        })
    }

    /// A configuration with these feeds, rules (each matching its own
    /// id) and jsonl sinks.
    fn config_with(feeds: &[&str], rules: &[&str], sinks: &[&str]) -> Config {
        use crate::config::reader::Source;
        let mut main = String::from("[daemon]\nrules = [\"rules.toml\"]\n");
        for f in feeds {
            main.push_str(&format!(
                "[[feed]]\nid = \"{f}\"\nurl = \"http://127.0.0.1:9/{f}\"\n"
            ));
        }
        for s in sinks {
            main.push_str(&format!(
                "[[sink]]\nid = \"{s}\"\ntype = \"jsonl\"\npath = \"{s}.jsonl\"\n"
            ));
        }
        let rules_text: String = rules
            .iter()
            .map(|r| format!("[[rule]]\nid = \"{r}\"\nquery = \"{r}\"\n"))
            .collect();
        crate::config::load_from(
            Source {
                path: "/cfg/wirewatch.toml".into(),
                text: main,
            },
            move |p, _| {
                Ok(Source {
                    path: p.to_path_buf(),
                    text: rules_text.clone(),
                })
            },
        )
        .unwrap_or_else(|e| panic!("test config: {e}"))
    }

    fn report(status: u16, items: usize, matched: Vec<usize>) -> Result<PollReport, PollError> {
        Ok(PollReport {
            status,
            items,
            matched,
            ..PollReport::default()
        })
    }

    #[test]
    fn label_values_are_escaped() {
        let mut w = String::new();
        sample(&mut w, "m", &[("a", "x\\y\"z\nw"), ("b", "plain")], 3);
        assert_eq!(w, "m{a=\"x\\\\y\\\"z\\nw\",b=\"plain\"} 3\n");
        let mut w = String::new();
        family(&mut w, "m", "counter", "two\nlines \\ and \"quotes\"");
        assert_eq!(
            w,
            "# HELP m two\\nlines \\\\ and \"quotes\"\n# TYPE m counter\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_sum_and_count() {
        let m = Metrics::new();
        for ms in [5, 5, 30, 700, 45_000, 90_000] {
            m.fetched(Duration::from_millis(ms), 10);
        }
        let text = m.render(&Scrape::default());
        let b = |le: &str| {
            value(
                &text,
                &format!("wirewatch_fetch_duration_seconds_bucket{{le=\"{le}\"}}"),
            )
            .unwrap_or_else(|| panic!("no bucket {le}:\n{text}"))
        };
        assert_eq!(b("0.01"), 2.0);
        assert_eq!(b("0.025"), 2.0);
        assert_eq!(b("0.05"), 3.0);
        assert_eq!(b("0.5"), 3.0);
        assert_eq!(b("1"), 4.0);
        assert_eq!(b("30"), 4.0);
        assert_eq!(b("60"), 5.0, "45 s is within 60");
        assert_eq!(b("+Inf"), 6.0, "90 s only in +Inf");
        let count = value(&text, "wirewatch_fetch_duration_seconds_count");
        assert_eq!(count, Some(6.0));
        let sum = value(&text, "wirewatch_fetch_duration_seconds_sum").expect("sum");
        assert!((sum - 135.74).abs() < 1e-9, "{sum}");
        assert_eq!(value(&text, "wirewatch_fetch_bytes_total"), Some(60.0));
        // Buckets never decrease, and +Inf is last.
        let buckets: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("wirewatch_fetch_duration_seconds_bucket"))
            .collect();
        assert_eq!(buckets.len(), FETCH_BUCKETS.len() + 1);
        assert!(buckets[buckets.len() - 1].contains("le=\"+Inf\""));
        let counts: Vec<f64> = buckets
            .iter()
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("n")
            })
            .collect();
        assert!(counts.windows(2).all(|p| p[0] <= p[1]), "{counts:?}");
    }

    #[test]
    fn every_family_has_help_and_type_once_before_its_samples() {
        let m = Metrics::new();
        m.fetched(Duration::from_millis(3), 1);
        m.delivered("out", 2);
        m.failed("out", FailKind::Transient, 1);
        m.reloaded(false);
        let scrape = Scrape {
            outbox: Some(vec![OutboxDepth {
                sink: "out".into(),
                queued: 4,
                held: 1,
                dead: 2,
            }]),
            process: ProcessFacts {
                resident_bytes: Some(1 << 20),
                cpu_seconds: Some(0.25),
                open_fds: Some(9),
            },
        };
        let text = m.render(&scrape);
        let mut typed: Vec<String> = Vec::new();
        let mut helped: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().expect("name").to_string();
                assert!(!helped.contains(&name), "HELP twice for {name}");
                helped.push(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().expect("name").to_string();
                let kind = parts.next().expect("kind");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert_eq!(helped.last(), Some(&name), "TYPE right after HELP: {line}");
                assert!(!typed.contains(&name), "TYPE twice for {name}");
                typed.push(name);
            } else {
                let series = line.split([' ', '{']).next().expect("name");
                let family = typed.last().expect("a sample before any TYPE");
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| series.strip_prefix(family.as_str())?.strip_prefix(s))
                    .map_or(series, |_| family.as_str());
                assert_eq!(base, family, "sample outside its family: {line}");
                let v = line.rsplit(' ').next().expect("value");
                assert!(v.parse::<f64>().is_ok() || v == "+Inf", "{line}");
            }
        }
        assert!(text.ends_with('\n'));
        assert_eq!(
            value(&text, "wirewatch_outbox_depth{sink=\"out\"}"),
            Some(4.0)
        );
        assert_eq!(
            value(&text, "wirewatch_dead_letters{sink=\"out\"}"),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                "wirewatch_alerts_failed_total{sink=\"out\",kind=\"transient\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "wirewatch_config_reloads_total{result=\"refused\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "process_resident_memory_bytes"),
            Some(1048576.0)
        );
        assert_eq!(value(&text, "process_cpu_seconds_total"), Some(0.25));
    }

    #[test]
    fn outbox_series_are_left_out_when_the_database_did_not_answer() {
        let text = Metrics::new().render(&Scrape::default());
        assert!(!text.contains("wirewatch_outbox_depth"), "{text}");
        assert!(text.contains("process_start_time_seconds "), "{text}");
    }

    #[test]
    fn poll_results_are_classified() {
        let status = |s| {
            Err(PollError::Fetch(FetchError::Status {
                status: s,
                retry_after: None,
            }))
        };
        assert_eq!(poll_result(&report(200, 3, vec![])), "ok");
        assert_eq!(poll_result(&report(304, 0, vec![])), "not_modified");
        assert_eq!(poll_result(&status(404)), "http_4xx");
        assert_eq!(poll_result(&status(410)), "http_4xx");
        assert_eq!(poll_result(&status(503)), "http_5xx");
        assert_eq!(poll_result(&status(302)), "http_other");
        let fetch = |e| Err(PollError::Fetch(e));
        assert_eq!(
            poll_result(&fetch(FetchError::Timeout(Duration::from_secs(3)))),
            "timeout"
        );
        assert_eq!(
            poll_result(&fetch(FetchError::TooLarge { limit: 1 })),
            "too_large"
        );
        assert_eq!(
            poll_result(&fetch(FetchError::Http(
                "timed out: error sending request".into()
            ))),
            "timeout"
        );
        assert_eq!(
            poll_result(&fetch(FetchError::Http("connection refused".into()))),
            "network"
        );
        assert_eq!(
            poll_result(&fetch(FetchError::Redirect("redirect loop".into()))),
            "redirect"
        );
        assert_eq!(poll_result(&Err(PollError::Parse("bad".into()))), "parse");
    }

    #[test]
    fn article_fetches_count_by_result_for_full_text_feeds_only() {
        use crate::config::reader::Source;
        let main = |with_b: bool| {
            let mut t = String::from(
                "[daemon]\nrules = [\"rules.toml\"]\n\
                 [[feed]]\nid = \"site\"\nurl = \"http://127.0.0.1:9/s\"\nfull_text = true\n\
                 [[feed]]\nid = \"plain\"\nurl = \"http://127.0.0.1:9/p\"\n",
            );
            if with_b {
                t.push_str(
                    "[[feed]]\nid = \"b\"\nurl = \"http://127.0.0.1:9/b\"\nfull_text = true\n",
                );
            }
            t.push_str("[[sink]]\nid = \"out\"\ntype = \"jsonl\"\npath = \"o.jsonl\"\n");
            crate::config::load_from(
                Source {
                    path: "/cfg/wirewatch.toml".into(),
                    text: t,
                },
                |p, _| {
                    Ok(Source {
                        path: p.to_path_buf(),
                        text: "[[rule]]\nid = \"r\"\nquery = \"r\"\n".into(),
                    })
                },
            )
            .unwrap_or_else(|e| panic!("test config: {e}"))
        };
        let m = Metrics::new();
        m.configure(&main(true));
        let text = m.render(&Scrape::default());
        let v = |text: &str, s: &str| value(text, s);
        assert_eq!(
            v(
                &text,
                "wirewatch_article_fetches_total{feed=\"site\",result=\"ok\"}"
            ),
            Some(0.0),
            "zero series at once"
        );
        assert!(
            !text.contains("wirewatch_article_fetches_total{feed=\"plain\""),
            "no series for a feed without full_text:\n{text}"
        );
        m.articles("site", ArticleResult::Ok, 2);
        m.articles("site", ArticleResult::Fetch("http_4xx"), 1);
        m.articles("site", ArticleResult::NoArticle, 1);
        m.articles("site", ArticleResult::Skipped, 3);
        m.articles("site", ArticleResult::OverBudget, 0);
        m.articles("b", ArticleResult::Fetch("timeout"), 1);
        m.article_fetched(Duration::from_millis(20), 1000);
        m.article_fetched(Duration::from_millis(300), 500);
        m.article_fetched(Duration::from_secs(4), 0);
        m.fetched(Duration::from_millis(1), 7);
        let text = m.render(&Scrape::default());
        let get = |s: &str| v(&text, s).unwrap_or_else(|| panic!("no {s}:\n{text}"));
        let art = |feed: &str, r: &str| {
            get(&format!(
                "wirewatch_article_fetches_total{{feed=\"{feed}\",result=\"{r}\"}}"
            ))
        };
        assert_eq!(art("site", "ok"), 2.0);
        assert_eq!(art("site", "http_4xx"), 1.0);
        assert_eq!(art("site", "no_article"), 1.0);
        assert_eq!(art("site", "skipped"), 3.0);
        assert_eq!(art("b", "timeout"), 1.0);
        assert!(
            !text.contains("result=\"over_budget\""),
            "no series for nothing"
        );
        assert_eq!(get("wirewatch_article_fetch_bytes_total"), 1500.0);
        assert_eq!(get("wirewatch_fetch_bytes_total"), 7.0, "feeds apart");
        assert_eq!(get("wirewatch_article_fetch_duration_seconds_count"), 3.0);
        assert_eq!(
            get("wirewatch_article_fetch_duration_seconds_bucket{le=\"0.025\"}"),
            1.0
        );
        assert_eq!(
            get("wirewatch_article_fetch_duration_seconds_bucket{le=\"0.5\"}"),
            2.0
        );
        assert_eq!(get("wirewatch_fetch_duration_seconds_count"), 1.0);
        // A reload without feed b drops its series, keeps site's counts.
        m.configure(&main(false));
        let text = m.render(&Scrape::default());
        assert!(!text.contains("feed=\"b\""), "{text}");
        assert_eq!(
            v(
                &text,
                "wirewatch_article_fetches_total{feed=\"site\",result=\"ok\"}"
            ),
            Some(2.0)
        );
    }

    #[test]
    fn counters_add_up_per_label() {
        let config = config_with(&["a", "b"], &["r1", "r2"], &["out"]);
        let m = Metrics::new();
        m.configure(&config);
        m.polled(&config, "a", &report(200, 5, vec![0, 1, 0]));
        m.polled(&config, "a", &report(304, 0, vec![]));
        m.polled(&config, "a", &Err(PollError::Parse("x".into())));
        m.polled(&config, "b", &report(200, 2, vec![1]));
        m.delivered("out", 3);
        m.failed("out", FailKind::Dead, 1);
        m.failed("out", FailKind::Gone, 0);
        let text = m.render(&Scrape::default());
        let v = |s: &str| value(&text, s).unwrap_or_else(|| panic!("no {s}:\n{text}"));
        assert_eq!(v("wirewatch_polls_total{feed=\"a\",result=\"ok\"}"), 1.0);
        assert_eq!(
            v("wirewatch_polls_total{feed=\"a\",result=\"not_modified\"}"),
            1.0
        );
        assert_eq!(v("wirewatch_polls_total{feed=\"a\",result=\"parse\"}"), 1.0);
        assert_eq!(v("wirewatch_polls_total{feed=\"b\",result=\"ok\"}"), 1.0);
        assert_eq!(v("wirewatch_items_parsed_total"), 7.0);
        assert_eq!(v("wirewatch_matches_total{rule=\"r1\"}"), 2.0);
        assert_eq!(v("wirewatch_matches_total{rule=\"r2\"}"), 2.0);
        assert_eq!(v("wirewatch_alerts_delivered_total{sink=\"out\"}"), 3.0);
        assert_eq!(
            v("wirewatch_alerts_failed_total{sink=\"out\",kind=\"dead\"}"),
            1.0
        );
        assert!(!text.contains("kind=\"gone\""), "no series for nothing");
        assert_eq!(v("wirewatch_feeds"), 2.0);
        assert_eq!(v("wirewatch_rules"), 2.0);
        assert_eq!(v("wirewatch_sinks"), 1.0);
    }

    #[test]
    fn a_new_configuration_keeps_counters_and_drops_what_it_removed() {
        let first = config_with(&["a", "b"], &["r1", "r2"], &["out", "hook"]);
        let m = Metrics::new();
        m.configure(&first);
        m.polled(&first, "a", &report(200, 5, vec![0]));
        m.polled(&first, "b", &report(200, 1, vec![1]));
        m.delivered("out", 1);
        m.delivered("hook", 1);
        // Feed b, rule r2 and sink hook go; feed c comes.
        let second = config_with(&["a", "c"], &["r1"], &["out"]);
        m.configure(&second);
        m.polled(&second, "a", &report(200, 5, vec![0]));
        let text = m.render(&Scrape::default());
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v("wirewatch_polls_total{feed=\"a\",result=\"ok\"}"),
            Some(2.0)
        );
        assert_eq!(
            v("wirewatch_polls_total{feed=\"c\",result=\"ok\"}"),
            Some(0.0)
        );
        assert_eq!(v("wirewatch_polls_total{feed=\"b\",result=\"ok\"}"), None);
        assert_eq!(v("wirewatch_matches_total{rule=\"r1\"}"), Some(2.0));
        assert_eq!(v("wirewatch_matches_total{rule=\"r2\"}"), None);
        assert_eq!(
            v("wirewatch_alerts_delivered_total{sink=\"out\"}"),
            Some(1.0)
        );
        assert_eq!(v("wirewatch_alerts_delivered_total{sink=\"hook\"}"), None);
        assert_eq!(v("wirewatch_items_parsed_total"), Some(11.0));
        assert_eq!(v("wirewatch_sinks"), Some(1.0));
    }
}
