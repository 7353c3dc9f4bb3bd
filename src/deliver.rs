//! Drains the outbox: one worker per sink, in queue order.
//!
//! An alert leaves the outbox only after its sink returned `Ok`. What a
//! failure does depends on its kind ([`SinkError`]):
//!
//! - transient (connection refused, timeout, 5xx, 408, 429): the alert stays
//!   at the head of its queue and the whole sink waits — the backoff
//!   (`retry_initial` doubling up to `retry_max`, ±20 % jitter) or the
//!   receiver's `Retry-After`, whichever is longer — so a dead receiver
//!   gets one request per wait, not one per queued alert, and order is kept;
//! - rejected (other 4xx, 3xx, an unreadable payload): that alert is retried
//!   with backoff while later alerts go ahead, and becomes a dead letter
//!   after [`REJECTED_TRIES`] attempts;
//! - gone (410): the sink is switched off (state `sinks` table) and reported;
//!   its alerts stay queued until `wirewatch alerts retry --sink ID` or a
//!   changed endpoint switches it on again.
//!
//! An alert still undelivered `retry_horizon` after it was queued becomes a
//! dead letter: kept in the database, listed by `wirewatch alerts`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::config::{Config, RetryPolicy, Severity, SinkConfig};
use crate::flow::{self, AlertRuleFlow, Bucket, Decision, SinkFlow};
use crate::metrics::FailKind;
use crate::model::{Alert, AlertFeed, AlertItem, AlertRule, Digest, Snippet};
use crate::pipeline::{Ctx, Stats};
use crate::sink::{self, Sink, SinkError};
use crate::state::{OutboxEntry, State, StateError};

/// Alerts fetched from the outbox per round trip.
const BATCH: usize = 64;
/// A safety net over the sinks' own timeouts: one delivery never takes
/// longer than this.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts before a rejected alert becomes a dead letter.
pub const REJECTED_TRIES: u32 = 3;
/// How often an idle or switched-off worker looks at the outbox again (to
/// notice `wirewatch alerts retry` run from another process).
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// Delay before attempt `attempts + 1`: `initial` doubling per failure,
/// capped at `max`, with ±20 % jitter so a recovering receiver is not hit by
/// a thundering herd.
pub fn backoff(policy: &RetryPolicy, attempts: u32) -> Duration {
    let base = policy
        .initial
        .saturating_mul(1u32 << attempts.min(24))
        .min(policy.max);
    base.mul_f64(0.8 + fastrand::f64() * 0.4)
}

/// A sink with what its worker needs: the retry policy and flow control.
#[derive(Clone)]
pub struct Lane {
    pub sink: Arc<dyn Sink>,
    pub retry: RetryPolicy,
    pub flow: SinkFlow,
    /// Rules with a `throttle`: rule id -> window.
    pub throttles: Arc<HashMap<String, Duration>>,
}

impl Lane {
    /// The lane for one configured sink.
    pub fn new(cfg: &SinkConfig, config: &Config) -> anyhow::Result<Lane> {
        Ok(Lane {
            sink: sink::build(cfg)?,
            retry: cfg.retry,
            flow: cfg.flow.clone(),
            throttles: Arc::new(
                config
                    .rule_meta
                    .iter()
                    .filter_map(|m| Some((m.id.clone(), m.throttle?)))
                    .collect(),
            ),
        })
    }

    fn id(&self) -> &str {
        self.sink.id()
    }
}

/// Outcome of one pass over a sink's due alerts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Messages delivered (an alert, or a digest of several).
    pub delivered: usize,
    pub failed: usize,
    /// Alerts that became dead letters in this pass.
    pub buried: usize,
    /// Alerts held back for a digest in this pass.
    pub held: usize,
    /// The sink is failing: wait this long before the next attempt.
    pub hold: Option<Duration>,
    /// The sink is switched off (its endpoint answered "gone").
    pub disabled: bool,
}

enum Outcome {
    Delivered,
    /// Held back for a digest.
    Held,
    /// Transient failure: stop the pass, hold the sink; `buried` alerts
    /// went past the retry horizon.
    Hold {
        wait: Duration,
        buried: usize,
    },
    /// This message failed but later ones may go ahead.
    Next {
        buried: usize,
    },
    Disabled,
}

fn at(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1))
}

/// One message on its way: an alert or a digest, with its outbox rows.
struct Attempt {
    /// For logs: the alert or digest id.
    label: String,
    seqs: Vec<i64>,
    /// Attempts so far (the most of its rows).
    attempts: u32,
    /// When its oldest row was queued (the horizon counts from there).
    created_at: DateTime<Utc>,
}

async fn with_timeout(
    f: impl std::future::Future<Output = Result<(), SinkError>>,
) -> Result<(), SinkError> {
    match tokio::time::timeout(DELIVERY_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(SinkError::transient(format!(
            "delivery took longer than {DELIVERY_TIMEOUT:?}"
        ))),
    }
}

/// Records the result of one attempt (see the module docs).
async fn settle(
    state: &State,
    lane: &Lane,
    a: Attempt,
    result: Result<(), SinkError>,
    stats: &Stats,
) -> Result<Outcome, StateError> {
    let policy = &lane.retry;
    let (attempt, now) = (a.attempts + 1, Utc::now());
    let sink_id = lane.id().to_string();
    let expired = now.signed_duration_since(a.created_at)
        >= chrono::Duration::from_std(policy.horizon).unwrap_or(chrono::Duration::MAX);
    let seqs = a.seqs;
    let n = seqs.len();
    match result {
        Ok(()) => {
            state.call(move |s| s.ack_all(&seqs, now)).await?;
            stats
                .alerts_delivered
                .fetch_add(n as u64, Ordering::Relaxed);
            stats.metrics.delivered(&sink_id, n);
            Ok(Outcome::Delivered)
        }
        Err(SinkError::Transient {
            message,
            retry_after,
        }) => {
            let wait = backoff(policy, a.attempts).max(retry_after.unwrap_or_default());
            if expired {
                tracing::error!(sink = %sink_id, alert = %a.label, attempt, error = %message,
                    horizon_s = policy.horizon.as_secs(), "delivery given up: dead letter");
            } else {
                tracing::warn!(sink = %sink_id, alert = %a.label, attempt,
                    retry_in_ms = wait.as_millis() as u64, retry_after_s = retry_after.map(|d| d.as_secs()),
                    error = %message, "delivery failed; will retry");
            }
            let horizon = policy.horizon;
            let buried = state
                .call(move |s| {
                    for seq in &seqs {
                        if expired {
                            s.bury(*seq, &message, now)?;
                        } else {
                            s.retry_later(*seq, &message, now, at(now, wait))?;
                        }
                    }
                    // Alerts queued behind it that are past the horizon too.
                    let cutoff = now - chrono::Duration::from_std(horizon).unwrap_or_default();
                    let n =
                        s.expire(&sink_id, cutoff, "not delivered within retry_horizon", now)?;
                    Ok(n + if expired { seqs.len() } else { 0 })
                })
                .await?;
            stats.metrics.failed(lane.id(), FailKind::Transient, n);
            stats.metrics.failed(lane.id(), FailKind::Dead, buried);
            Ok(Outcome::Hold { wait, buried })
        }
        Err(SinkError::Rejected { message }) => {
            let bury = expired || attempt >= REJECTED_TRIES;
            let wait = backoff(policy, a.attempts);
            if bury {
                tracing::error!(sink = %sink_id, alert = %a.label, attempt, error = %message,
                    "alert rejected; kept as a dead letter");
            } else {
                tracing::warn!(sink = %sink_id, alert = %a.label, attempt,
                    retry_in_ms = wait.as_millis() as u64, error = %message, "alert rejected; will retry");
            }
            state
                .call(move |s| {
                    for seq in &seqs {
                        if bury {
                            s.bury(*seq, &message, now)?;
                        } else {
                            s.retry_later(*seq, &message, now, at(now, wait))?;
                        }
                    }
                    Ok(())
                })
                .await?;
            stats.metrics.failed(&sink_id, FailKind::Rejected, n);
            if bury {
                stats.metrics.failed(&sink_id, FailKind::Dead, n);
            }
            Ok(Outcome::Next {
                buried: if bury { n } else { 0 },
            })
        }
        Err(SinkError::Gone { message }) => {
            let endpoint = lane.sink.endpoint().to_string();
            stats.metrics.failed(&sink_id, FailKind::Gone, n);
            tracing::error!(sink = %sink_id, endpoint = %endpoint, alert = %a.label, error = %message,
                "sink endpoint is gone; sink switched off (alerts stay queued; `wirewatch alerts retry --sink {sink_id}` switches it on)");
            state
                .call(move |s| {
                    for seq in &seqs {
                        s.retry_later(*seq, &message, now, now)?;
                    }
                    s.disable_sink(&sink_id, &endpoint, &message, now)
                })
                .await?;
            Ok(Outcome::Disabled)
        }
    }
}

/// Flow control for one alert: send it (and which throttle windows to open
/// then) or hold it for a digest.
async fn decide(state: &State, lane: &Lane, alert: &Alert) -> Result<Decision, StateError> {
    let ids: Vec<String> = if alert.rules.is_empty() {
        vec![alert.rule.id.clone()]
    } else {
        alert.rules.iter().map(|r| r.id.clone()).collect()
    };
    let throttled = ids.iter().any(|r| lane.throttles.contains_key(r));
    if lane.flow.is_plain() && !throttled {
        return Ok(Decision::Send { open: Vec::new() });
    }
    let windows = if throttled {
        let (sink, ids) = (lane.id().to_string(), ids.clone());
        state.call(move |s| s.throttle_windows(&sink, &ids)).await?
    } else {
        vec![None; ids.len()]
    };
    let rules: Vec<AlertRuleFlow<'_>> = ids
        .iter()
        .zip(windows)
        .map(|(id, window_end)| AlertRuleFlow {
            id,
            throttle: lane.throttles.get(id).copied(),
            window_end,
        })
        .collect();
    let severity = Severity::parse(&alert.rule.severity).unwrap_or(Severity::Normal);
    Ok(flow::decide(&lane.flow, severity, &rules, Utc::now()))
}

async fn deliver_one(
    state: &State,
    lane: &Lane,
    entry: OutboxEntry,
    stats: &Stats,
) -> Result<Outcome, StateError> {
    let attempt = Attempt {
        label: entry.alert_id.clone(),
        seqs: vec![entry.seq],
        attempts: entry.attempts,
        created_at: entry.created_at,
    };
    let alert = match serde_json::from_str::<Alert>(&entry.payload) {
        Ok(a) => a,
        // Written by this program; unreadable means a newer/older format.
        Err(e) => {
            let err = SinkError::rejected(format!("stored alert is unreadable: {e}"));
            return settle(state, lane, attempt, Err(err), stats).await;
        }
    };
    let open = match decide(state, lane, &alert).await? {
        Decision::Hold { bucket, release_at } => {
            let (seq, key) = (entry.seq, bucket.key());
            let at = state.call(move |s| s.hold(seq, &key, release_at)).await?;
            tracing::info!(sink = %lane.id(), alert = %entry.alert_id, held_for = %bucket.key(),
                release_at = %at, "alert held for a digest");
            return Ok(Outcome::Held);
        }
        Decision::Send { open } => open,
    };
    let result = with_timeout(lane.sink.deliver(&alert)).await;
    let ok = result.is_ok();
    let outcome = settle(state, lane, attempt, result, stats).await?;
    if ok && !open.is_empty() {
        let now = Utc::now();
        let sink = lane.id().to_string();
        let windows: Vec<(String, DateTime<Utc>)> =
            open.into_iter().map(|(r, d)| (r, at(now, d))).collect();
        state.call(move |s| s.open_windows(&sink, &windows)).await?;
    }
    Ok(outcome)
}

/// The digest id: stable for the sink, the bucket and the alerts it holds.
fn digest_id(sink: &str, bucket: &str, alert_ids: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in [sink, bucket].iter().chain(alert_ids.iter()) {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("digest-{hex}")
}

/// Sends one due bucket: its only alert as it was, or a digest.
async fn release_bucket(
    state: &State,
    lane: &Lane,
    bucket_key: String,
    stats: &Stats,
) -> Result<Outcome, StateError> {
    let (sink, key) = (lane.id().to_string(), bucket_key.clone());
    let entries = state
        .call(move |s| s.bucket_entries(&sink, &key, Utc::now(), DIGEST_MAX_ALERTS))
        .await?;
    let mut alerts = Vec::new();
    let mut attempt = Attempt {
        label: String::new(),
        seqs: Vec::new(),
        attempts: 0,
        created_at: Utc::now(),
    };
    for e in entries {
        match serde_json::from_str::<Alert>(&e.payload) {
            Ok(a) => {
                attempt.seqs.push(e.seq);
                attempt.attempts = attempt.attempts.max(e.attempts);
                attempt.created_at = attempt.created_at.min(e.created_at);
                alerts.push(a);
            }
            Err(err) => {
                let one = Attempt {
                    label: e.alert_id.clone(),
                    seqs: vec![e.seq],
                    attempts: REJECTED_TRIES,
                    created_at: e.created_at,
                };
                let err = SinkError::rejected(format!("stored alert is unreadable: {err}"));
                settle(state, lane, one, Err(err), stats).await?;
            }
        }
    }
    if alerts.is_empty() {
        return Ok(Outcome::Next { buried: 0 });
    }
    let now = Utc::now();
    let most = alerts
        .iter()
        .filter_map(|a| Severity::parse(&a.rule.severity))
        .max()
        .unwrap_or(Severity::Normal);
    let release = flow::release_time(&lane.flow, now, most);
    if release > now {
        let (sink, key) = (lane.id().to_string(), bucket_key.clone());
        state
            .call(move |s| s.postpone_bucket(&sink, &key, release))
            .await?;
        tracing::info!(sink = %lane.id(), held_for = %bucket_key, release_at = %release,
            "digest waits for the end of quiet hours");
        return Ok(Outcome::Next { buried: 0 });
    }
    let result = if alerts.len() == 1 {
        attempt.label = alerts[0].id.clone();
        with_timeout(lane.sink.deliver(&alerts[0])).await
    } else {
        let ids: Vec<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
        let bucket = Bucket::from_key(&bucket_key);
        let digest = Digest {
            id: digest_id(lane.id(), &bucket_key, &ids),
            kind: "digest".into(),
            reason: match &bucket {
                Some(Bucket::Throttle { .. }) => "throttle",
                Some(Bucket::Quiet) => "quiet_hours",
                _ => "digest",
            }
            .into(),
            rule: match bucket {
                Some(Bucket::Throttle { rule }) => Some(rule),
                _ => None,
            },
            from: alerts.iter().map(|a| a.detected_at).min().unwrap_or(now),
            to: alerts.iter().map(|a| a.detected_at).max().unwrap_or(now),
            count: alerts.len(),
            alerts,
        };
        attempt.label = digest.id.clone();
        tracing::info!(sink = %lane.id(), digest = %digest.id, alerts = digest.count,
            reason = %digest.reason, "sending digest");
        with_timeout(lane.sink.deliver_digest(&digest)).await
    };
    settle(state, lane, attempt, result, stats).await
}

/// Whether the sink may be tried: a sink switched off for an endpoint it no
/// longer has is switched on again.
async fn usable(state: &State, sink: &dyn Sink) -> Result<bool, StateError> {
    let id = sink.id().to_string();
    let endpoint = sink.endpoint().to_string();
    state
        .call(move |s| match s.sink_disabled(&id)? {
            None => Ok(true),
            Some(d) if d.endpoint != endpoint => {
                tracing::info!(sink = %id, old = %d.endpoint, new = %endpoint,
                    "sink endpoint changed; switched on again");
                s.enable_sink(&id)?;
                Ok(true)
            }
            Some(_) => Ok(false),
        })
        .await
}

/// Adds one outcome to the report; `false` ends the pass.
fn tally(report: &mut DrainReport, outcome: Outcome) -> bool {
    match outcome {
        Outcome::Delivered => report.delivered += 1,
        Outcome::Held => report.held += 1,
        Outcome::Next { buried } => {
            report.failed += usize::from(buried > 0);
            report.buried += buried;
        }
        Outcome::Hold { wait, buried } => {
            report.failed += 1;
            report.buried += buried;
            report.hold = Some(wait);
            return false;
        }
        Outcome::Disabled => {
            report.failed += 1;
            report.disabled = true;
            return false;
        }
    }
    true
}

/// Alerts one digest message carries at most; a bucket holding more goes
/// out as several messages (bounds the memory and size of one message).
pub const DIGEST_MAX_ALERTS: usize = 100;

/// Dead letters one pruning transaction deletes at most.
const PRUNE_BATCH: usize = 2_000;

/// Outbox upkeep (at start, hourly, after `once`): the alerts of a sink
/// removed from the config become dead letters once they are older than
/// the default retry horizon (re-adding the sink before then delivers
/// them), and dead letters go `dead_letter_retention` after they died.
/// Returns how many alerts it buried.
pub async fn prune_outbox(state: &State, config: &Config) -> usize {
    let sinks: Vec<String> = config.sinks.iter().map(|s| s.id.clone()).collect();
    let now = Utc::now();
    let days = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let orphan_cutoff = now - days(RetryPolicy::default().horizon);
    let dead_cutoff = now - days(config.daemon.dead_letter_retention);
    let (mut buried, mut deleted) = (0, 0);
    loop {
        let sinks = sinks.clone();
        let r = state
            .call(move |s| s.prune_outbox(&sinks, orphan_cutoff, dead_cutoff, now, PRUNE_BATCH))
            .await;
        match r {
            Ok((b, d)) => {
                buried += b;
                deleted += d;
                if d < PRUNE_BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox upkeep failed; tried again later");
                break;
            }
        }
    }
    if buried > 0 {
        tracing::warn!(
            alerts = buried,
            "alerts of sinks no longer in the config became dead letters (see `wirewatch alerts`)"
        );
    }
    if deleted > 0 {
        tracing::info!(deleted, "dead letters past dead_letter_retention deleted");
    }
    buried
}

/// Delivers every digest and alert due now for one sink, once, in queue
/// order. A transient failure ends the pass (later alerts wait behind it).
/// Stops between messages once `stop` is cancelled (shutdown).
pub async fn drain(
    state: &State,
    lane: &Lane,
    stats: &Stats,
    stop: &CancellationToken,
) -> Result<DrainReport, StateError> {
    let mut report = DrainReport::default();
    if !usable(state, lane.sink.as_ref()).await? {
        report.disabled = true;
        return Ok(report);
    }
    // A bucket goes out at most DIGEST_MAX_ALERTS alerts per message:
    // release again while a message was settled and buckets are due.
    loop {
        let id = lane.id().to_string();
        let buckets = state.call(move |s| s.due_buckets(&id, Utc::now())).await?;
        let settled = report.delivered + report.failed;
        for b in buckets {
            if stop.is_cancelled() {
                return Ok(report);
            }
            let outcome = release_bucket(state, lane, b, stats).await?;
            if !tally(&mut report, outcome) {
                return Ok(report);
            }
        }
        if report.delivered + report.failed == settled {
            break;
        }
    }
    loop {
        let id = lane.id().to_string();
        let batch = state.call(move |s| s.due(&id, Utc::now(), BATCH)).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        for entry in batch {
            if stop.is_cancelled() {
                return Ok(report);
            }
            let outcome = deliver_one(state, lane, entry, stats).await?;
            if !tally(&mut report, outcome) {
                return Ok(report);
            }
        }
    }
}

/// The long-running worker for one sink: drains when woken by a poll or
/// when the next retry or digest is due, until cancelled (a delivery in
/// flight is finished first). While the sink is held after a failure,
/// wake-ups do not cut the wait short.
pub async fn run_worker(ctx: Arc<Ctx>, lane: Lane, wake: Arc<Notify>, cancel: CancellationToken) {
    let state = &ctx.state;
    loop {
        let report = match drain(state, &lane, &ctx.stats, &cancel).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(sink = %lane.id(), error = %e, "outbox unavailable");
                DrainReport {
                    hold: Some(Duration::from_secs(5)),
                    ..DrainReport::default()
                }
            }
        };
        if let Some(hold) = report.hold {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(Instant::now() + hold) => {}
            }
            continue;
        }
        let wait = if report.disabled {
            IDLE_RECHECK
        } else {
            let id = lane.id().to_string();
            match state.call(move |s| s.next_due(&id)).await {
                Ok(Some(t)) => (t - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(20), IDLE_RECHECK),
                Ok(None) => IDLE_RECHECK,
                Err(_) => Duration::from_secs(5),
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified(), if !report.disabled => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The alert `wirewatch alerts test SINK` sends: clearly a test, with a
/// highlight and a link so every part of a sink's rendering shows.
pub fn sample_alert(now: DateTime<Utc>) -> Alert {
    let rule = AlertRule {
        id: "wirewatch-test".into(),
        severity: "normal".into(),
    };
    let text = "This is a test alert from wirewatch: if you can read it, this sink works.";
    let hit = "test alert";
    let start = text.find(hit).map_or(0, |b| text[..b].chars().count());
    Alert {
        id: format!("test-{}", now.timestamp_millis()),
        rules: vec![rule.clone()],
        rule,
        feed: AlertFeed {
            id: "wirewatch".into(),
            title: "wirewatch".into(),
            url: "https://example.com/wirewatch/feed.xml".into(),
        },
        item: AlertItem {
            key: format!("wirewatch-test-{}", now.timestamp_millis()),
            title: "wirewatch test alert".into(),
            link: Some("https://example.com/wirewatch/test".into()),
            published: Some(now),
            authors: Vec::new(),
        },
        matched: vec![hit.into()],
        snippet: Snippet {
            text: text.into(),
            highlights: vec![(start, start + hit.chars().count())],
        },
        detected_at: now,
        story: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let first = backoff(&p, 0).as_secs_f64();
            assert!((4.0..=6.0).contains(&first), "{first}");
            let third = backoff(&p, 2).as_secs_f64();
            assert!((16.0..=24.0).contains(&third), "{third}");
            let late = backoff(&p, 40).as_secs_f64();
            assert!((2880.0..=4320.0).contains(&late), "{late}");
        }
        let fast = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..p
        };
        assert!(backoff(&fast, 0) <= Duration::from_millis(120));
        assert!(backoff(&fast, 10) <= Duration::from_millis(1200));
    }
}
