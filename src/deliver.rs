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

use crate::config::RetryPolicy;
use crate::model::{Alert, AlertFeed, AlertItem, AlertRule, Snippet};
use crate::pipeline::{Ctx, Stats};
use crate::sink::{Sink, SinkError};
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

/// Outcome of one pass over a sink's due alerts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: usize,
    pub failed: usize,
    /// Alerts that became dead letters in this pass.
    pub buried: usize,
    /// The sink is failing: wait this long before the next attempt.
    pub hold: Option<Duration>,
    /// The sink is switched off (its endpoint answered "gone").
    pub disabled: bool,
}

enum Outcome {
    Delivered,
    /// Transient failure: stop the pass, hold the sink.
    Hold(Duration),
    /// This alert failed but later ones may go ahead.
    Next {
        buried: bool,
    },
    Disabled,
}

fn at(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1))
}

async fn deliver_one(
    state: &State,
    sink: &dyn Sink,
    policy: &RetryPolicy,
    entry: OutboxEntry,
    stats: &Stats,
) -> Result<Outcome, StateError> {
    let result = match serde_json::from_str::<Alert>(&entry.payload) {
        Ok(alert) => match tokio::time::timeout(DELIVERY_TIMEOUT, sink.deliver(&alert)).await {
            Ok(r) => r,
            Err(_) => Err(SinkError::transient(format!(
                "delivery took longer than {DELIVERY_TIMEOUT:?}"
            ))),
        },
        // Written by this program; unreadable means a newer/older format.
        Err(e) => Err(SinkError::rejected(format!(
            "stored alert is unreadable: {e}"
        ))),
    };
    let (seq, attempt, now) = (entry.seq, entry.attempts + 1, Utc::now());
    let sink_id = sink.id().to_string();
    let expired = now.signed_duration_since(entry.created_at)
        >= chrono::Duration::from_std(policy.horizon).unwrap_or(chrono::Duration::MAX);
    match result {
        Ok(()) => {
            state.call(move |s| s.ack(seq, now)).await?;
            stats.alerts_delivered.fetch_add(1, Ordering::Relaxed);
            Ok(Outcome::Delivered)
        }
        Err(SinkError::Transient {
            message,
            retry_after,
        }) => {
            let wait = backoff(policy, entry.attempts).max(retry_after.unwrap_or_default());
            if expired {
                tracing::error!(sink = %sink_id, alert = %entry.alert_id, attempt, error = %message,
                    horizon_s = policy.horizon.as_secs(), "delivery given up: dead letter");
            } else {
                tracing::warn!(sink = %sink_id, alert = %entry.alert_id, attempt,
                    retry_in_ms = wait.as_millis() as u64, retry_after_s = retry_after.map(|d| d.as_secs()),
                    error = %message, "delivery failed; will retry");
            }
            let horizon = policy.horizon;
            let buried = state
                .call(move |s| {
                    if expired {
                        s.bury(seq, &message, now)?;
                    } else {
                        s.retry_later(seq, &message, now, at(now, wait))?;
                    }
                    // Alerts queued behind it that are past the horizon too.
                    let cutoff = now - chrono::Duration::from_std(horizon).unwrap_or_default();
                    let n =
                        s.expire(&sink_id, cutoff, "not delivered within retry_horizon", now)?;
                    Ok(n + usize::from(expired))
                })
                .await?;
            stats
                .alerts_dead
                .fetch_add(buried as u64, Ordering::Relaxed);
            Ok(Outcome::Hold(wait))
        }
        Err(SinkError::Rejected { message }) => {
            let bury = expired || attempt >= REJECTED_TRIES;
            let wait = backoff(policy, entry.attempts);
            if bury {
                tracing::error!(sink = %sink_id, alert = %entry.alert_id, attempt, error = %message,
                    "alert rejected; kept as a dead letter");
            } else {
                tracing::warn!(sink = %sink_id, alert = %entry.alert_id, attempt,
                    retry_in_ms = wait.as_millis() as u64, error = %message, "alert rejected; will retry");
            }
            state
                .call(move |s| {
                    if bury {
                        s.bury(seq, &message, now)
                    } else {
                        s.retry_later(seq, &message, now, at(now, wait))
                    }
                })
                .await?;
            if bury {
                stats.alerts_dead.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Outcome::Next { buried: bury })
        }
        Err(SinkError::Gone { message }) => {
            let endpoint = sink.endpoint().to_string();
            tracing::error!(sink = %sink_id, endpoint = %endpoint, alert = %entry.alert_id, error = %message,
                "sink endpoint is gone; sink switched off (alerts stay queued; `wirewatch alerts retry --sink {sink_id}` switches it on)");
            state
                .call(move |s| {
                    s.retry_later(seq, &message, now, now)?;
                    s.disable_sink(&sink_id, &endpoint, &message, now)
                })
                .await?;
            Ok(Outcome::Disabled)
        }
    }
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

/// Delivers every alert due now for one sink, once, in queue order. A
/// transient failure ends the pass (later alerts wait behind it).
pub async fn drain(
    state: &State,
    sink: &dyn Sink,
    policy: &RetryPolicy,
    stats: &Stats,
) -> Result<DrainReport, StateError> {
    let mut report = DrainReport::default();
    if !usable(state, sink).await? {
        report.disabled = true;
        return Ok(report);
    }
    loop {
        let id = sink.id().to_string();
        let batch = state.call(move |s| s.due(&id, Utc::now(), BATCH)).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        for entry in batch {
            match deliver_one(state, sink, policy, entry, stats).await? {
                Outcome::Delivered => report.delivered += 1,
                Outcome::Next { buried } => {
                    report.failed += 1;
                    report.buried += usize::from(buried);
                }
                Outcome::Hold(wait) => {
                    report.failed += 1;
                    report.hold = Some(wait);
                    return Ok(report);
                }
                Outcome::Disabled => {
                    report.failed += 1;
                    report.disabled = true;
                    return Ok(report);
                }
            }
        }
    }
}

/// The long-running worker for one sink: drains when woken by a poll or
/// when the next retry is due, until cancelled (a delivery in flight is
/// finished first). While the sink is held after a failure, wake-ups do
/// not cut the wait short.
pub async fn run_worker(
    ctx: Arc<Ctx>,
    sink: Arc<dyn Sink>,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let state = &ctx.state;
    loop {
        let report = match drain(state, sink.as_ref(), &policy, &ctx.stats).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(sink = %sink.id(), error = %e, "outbox unavailable");
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
            let id = sink.id().to_string();
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
