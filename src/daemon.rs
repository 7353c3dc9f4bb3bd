//! Running the pipeline: the long-lived daemon (`run`) and a single pass
//! (`once`).
//!
//! Each feed has its own task that polls, sleeps until its next due time and
//! polls again; each sink has its own delivery worker. Fetches share one
//! semaphore. Shutdown is one CancellationToken: feed tasks abandon their
//! in-flight poll (nothing is committed until a poll's single transaction,
//! so state stays consistent), delivery workers finish the alert in hand.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, FeedConfig};
use crate::deliver;
use crate::fetch::Fetcher;
use crate::pipeline::{poll_feed, Ctx, PollError, Stats};
use crate::state::State;

/// Longest wait between polls of a failing feed.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Opens state and builds the shared context.
pub fn context(config: Arc<Config>) -> anyhow::Result<Arc<Ctx>> {
    let state = State::open_dir(&config.daemon.state_dir)?;
    let fetcher = Fetcher::new(&config.daemon)?;
    let fetches = config.daemon.max_concurrent_fetches;
    Ok(Arc::new(Ctx {
        state,
        fetcher,
        fetch_slots: Semaphore::new(fetches),
        // Parsing is CPU- and memory-heavy; a few at once is plenty.
        parse_slots: Semaphore::new(fetches.clamp(1, 4)),
        stats: Stats::default(),
        config,
    }))
}

/// When to poll again after a poll: the interval with ±10 % jitter on
/// success; on failure, the interval doubled per consecutive failure (capped
/// at 6 h, never below the interval) or the server's Retry-After if longer.
pub fn next_delay(interval: Duration, failures: u32, retry_after: Option<Duration>) -> Duration {
    let base = if failures == 0 {
        interval
    } else {
        let doubled = interval.saturating_mul(1u32 << failures.min(16));
        doubled.min(MAX_BACKOFF.max(interval))
    };
    let base = retry_after.map_or(base, |ra| base.max(ra.min(Duration::from_secs(86_400))));
    base.mul_f64(0.9 + fastrand::f64() * 0.2)
}

async fn feed_loop(
    ctx: Arc<Ctx>,
    feed: FeedConfig,
    wake: Arc<Vec<Arc<Notify>>>,
    cancel: CancellationToken,
) {
    // Spread the first polls so a restart does not hit every server at once.
    let spread = feed
        .interval
        .min(Duration::from_secs(2))
        .mul_f64(fastrand::f64());
    let mut delay = spread;
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let result = tokio::select! {
            _ = cancel.cancelled() => {
                tracing::info!(feed = %feed.id, "shutdown: in-flight poll abandoned");
                return;
            }
            r = poll_feed(&ctx, &feed) => r,
        };
        let retry_after = match &result {
            Ok(report) => {
                failures = 0;
                tracing::info!(feed = %feed.id, status = report.status, items = report.items,
                    new = report.new_items, alerts = report.alerts, "polled");
                if report.alerts > 0 {
                    wake.iter().for_each(|n| n.notify_one());
                }
                None
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(feed = %feed.id, failures, error = %e, "poll failed");
                e.retry_after()
            }
        };
        delay = next_delay(feed.interval, failures, retry_after);
        let (id, at) = (
            feed.id.clone(),
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
        );
        if let Err(e) = ctx.state.call(move |s| s.record_next_poll(&id, at)).await {
            tracing::warn!(feed = %feed.id, error = %e, "cannot record the next poll time");
        }
    }
}

/// The daemon: polls every feed on its schedule and delivers alerts until
/// `cancel` fires.
pub async fn run(ctx: Arc<Ctx>, cancel: CancellationToken) -> anyhow::Result<()> {
    let config = ctx.config.clone();
    let retention = config.daemon.seen_retention;
    let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
    let pruned = ctx.state.call(move |s| s.prune_seen(cutoff)).await?;
    tracing::info!(feeds = config.feeds.len(), rules = config.rules.len(), sinks = config.sinks.len(),
        state = %ctx.state.path().display(), pruned, "wirewatch started");

    let tracker = TaskTracker::new();
    let wakes: Arc<Vec<Arc<Notify>>> = Arc::new(
        config
            .sinks
            .iter()
            .map(|_| Arc::new(Notify::new()))
            .collect(),
    );
    for (cfg, wake) in config.sinks.iter().zip(wakes.iter()) {
        // A sink that cannot start keeps its alerts queued; the rest go on.
        match deliver::Lane::new(cfg, &config) {
            Ok(lane) => {
                tracker.spawn(deliver::run_worker(
                    ctx.clone(),
                    lane,
                    wake.clone(),
                    cancel.clone(),
                ));
            }
            Err(e) => {
                tracing::error!(sink = %cfg.id, error = %e, "sink cannot start; its alerts stay queued")
            }
        }
    }
    for feed in &config.feeds {
        tracker.spawn(feed_loop(
            ctx.clone(),
            feed.clone(),
            wakes.clone(),
            cancel.clone(),
        ));
    }
    tracker.close();
    cancel.cancelled().await;
    tracing::info!("shutting down");
    tracker.wait().await;
    tracing::info!(
        polls = ctx.stats.polls.load(Ordering::Relaxed),
        alerts_delivered = ctx.stats.alerts_delivered.load(Ordering::Relaxed),
        "stopped"
    );
    Ok(())
}

/// Result of `once`.
#[derive(Debug, Default)]
pub struct OnceReport {
    /// `(feed id, error)` for each feed that failed.
    pub failed: Vec<(String, String)>,
    pub delivered: usize,
    /// Alerts that stay queued because their sink failed.
    pub undelivered: usize,
    /// Alerts held for a digest (throttle, quiet hours, digest period).
    pub held: usize,
    /// Alerts that became dead letters in this pass.
    pub dead: usize,
    /// Sinks switched off because their endpoint is gone.
    pub disabled_sinks: Vec<String>,
}

/// Polls every feed once (concurrently, within the fetch bound), then
/// drains every sink's due alerts once.
pub async fn once(ctx: Arc<Ctx>) -> anyhow::Result<OnceReport> {
    let mut report = OnceReport::default();
    let mut polls = tokio::task::JoinSet::new();
    for feed in ctx.config.feeds.clone() {
        let ctx = ctx.clone();
        polls.spawn(async move {
            let r = poll_feed(&ctx, &feed).await;
            (feed.id, r)
        });
    }
    while let Some(joined) = polls.join_next().await {
        let (feed, r) = joined?;
        match r {
            Ok(p) => {
                tracing::info!(feed = %feed, status = p.status, new = p.new_items, alerts = p.alerts, "polled")
            }
            Err(PollError::State(e)) => return Err(e.into()),
            Err(e) => report.failed.push((feed, e.to_string())),
        }
    }
    report.failed.sort();
    for cfg in &ctx.config.sinks {
        let lane = match deliver::Lane::new(cfg, &ctx.config) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(sink = %cfg.id, error = %e, "sink cannot start; its alerts stay queued");
                continue;
            }
        };
        let r = deliver::drain(&ctx.state, &lane, &ctx.stats).await?;
        report.delivered += r.delivered;
        report.dead += r.buried;
        if r.disabled {
            report.disabled_sinks.push(cfg.id.clone());
        }
    }
    let ids: Vec<String> = ctx.config.sinks.iter().map(|s| s.id.clone()).collect();
    let sinks = ctx.state.call(move |s| s.sink_statuses(&ids)).await?;
    for st in sinks
        .iter()
        .filter(|st| ctx.config.sinks.iter().any(|s| s.id == st.sink))
    {
        report.undelivered += (st.pending - st.held) as usize;
        report.held += st.held as usize;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays() {
        let i = Duration::from_secs(600);
        for _ in 0..20 {
            let ok = next_delay(i, 0, None).as_secs_f64();
            assert!((540.0..=660.0).contains(&ok));
            let f2 = next_delay(i, 2, None).as_secs_f64();
            assert!((2160.0..=2640.0).contains(&f2));
            let capped = next_delay(i, 30, None).as_secs_f64();
            assert!(capped <= 6.0 * 3600.0 * 1.1);
            let ra = next_delay(i, 1, Some(Duration::from_secs(7200))).as_secs_f64();
            assert!(ra >= 7200.0 * 0.9);
        }
    }
}
