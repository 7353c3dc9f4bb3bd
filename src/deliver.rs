//! Drains the outbox: one worker per sink, in queue order.
//!
//! An alert is removed only after its sink returned `Ok`; a failure keeps it
//! and schedules the next attempt with exponential backoff and jitter
//! (5 s, 10 s, 20 s … capped at one hour). A slow or failing sink holds up
//! only its own queue. Dead letters and a retry horizon come with the
//! webhook sinks.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::model::Alert;
use crate::pipeline::{Ctx, Stats};
use crate::sink::Sink;
use crate::state::{OutboxEntry, State, StateError};

/// Alerts fetched from the outbox per round trip.
const BATCH: usize = 64;
/// How long one delivery may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Delay before attempt `attempts + 1`: 5 s doubling, capped at 1 h, with
/// ±20 % jitter so a recovering receiver is not hit by a thundering herd.
pub fn backoff(attempts: u32) -> Duration {
    let base = 5u64.saturating_mul(1u64 << attempts.min(20)).min(3600);
    let jitter = 0.8 + fastrand::f64() * 0.4;
    Duration::from_secs_f64(base as f64 * jitter)
}

/// Outcome of one pass over a sink's due alerts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: usize,
    pub failed: usize,
}

async fn deliver_one(
    state: &State,
    sink: &dyn Sink,
    entry: OutboxEntry,
    stats: &Stats,
) -> Result<bool, StateError> {
    let result = match serde_json::from_str::<Alert>(&entry.payload) {
        Ok(alert) => match tokio::time::timeout(DELIVERY_TIMEOUT, sink.deliver(&alert)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("delivery timed out after {DELIVERY_TIMEOUT:?}")),
        },
        // Written by this program; unreadable means a newer/older format.
        Err(e) => Err(format!("stored alert is unreadable: {e}")),
    };
    let seq = entry.seq;
    match result {
        Ok(()) => {
            state.call(move |s| s.ack(seq)).await?;
            stats.alerts_delivered.fetch_add(1, Ordering::Relaxed);
            Ok(true)
        }
        Err(error) => {
            let wait = backoff(entry.attempts);
            tracing::warn!(sink = %sink.id(), alert = %entry.alert_id, attempt = entry.attempts + 1,
                retry_in_s = wait.as_secs(), error = %error, "delivery failed");
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            state
                .call(move |s| s.retry_later(seq, &error, next))
                .await?;
            Ok(false)
        }
    }
}

/// Delivers every alert due now for one sink, once. A sink that fails stops
/// its own pass (order is kept: later alerts wait behind the failed one).
pub async fn drain(
    state: &State,
    sink: &dyn Sink,
    stats: &Stats,
) -> Result<DrainReport, StateError> {
    let mut report = DrainReport::default();
    loop {
        let id = sink.id().to_string();
        let batch = state.call(move |s| s.due(&id, Utc::now(), BATCH)).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        for entry in batch {
            if deliver_one(state, sink, entry, stats).await? {
                report.delivered += 1;
            } else {
                report.failed += 1;
                return Ok(report);
            }
        }
    }
}

/// The long-running worker for one sink: drains when woken by a poll or
/// when the next retry is due, until cancelled (a delivery in flight is
/// finished first).
pub async fn run_worker(
    ctx: Arc<Ctx>,
    sink: Arc<dyn Sink>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let state = &ctx.state;
    loop {
        if let Err(e) = drain(state, sink.as_ref(), &ctx.stats).await {
            tracing::error!(sink = %sink.id(), error = %e, "outbox unavailable");
        }
        let id = sink.id().to_string();
        let wait = match state.call(move |s| s.next_due(&id)).await {
            Ok(Some(t)) => (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(50)),
            Ok(None) => Duration::from_secs(3600),
            Err(_) => Duration::from_secs(5),
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        for _ in 0..50 {
            let first = backoff(0).as_secs_f64();
            assert!((4.0..=6.0).contains(&first), "{first}");
            let third = backoff(2).as_secs_f64();
            assert!((16.0..=24.0).contains(&third), "{third}");
            let late = backoff(40).as_secs_f64();
            assert!((2880.0..=4320.0).contains(&late), "{late}");
        }
    }
}
