//! Running the pipeline: the long-lived daemon (`run`) and a single pass
//! (`once`).
//!
//! Each feed has its own task that polls, sleeps until its next due time and
//! polls again; each sink has its own delivery worker. Fetches share one
//! semaphore. Shutdown is one CancellationToken: feed tasks abandon their
//! in-flight poll (nothing is committed until a poll's single transaction,
//! so state stays consistent), delivery workers finish the alert in hand,
//! for at most [`SHUTDOWN_GRACE`] (what they have not settled stays queued).
//!
//! Under systemd ([`run_supervised`]): READY=1 once state is open and every
//! task started, WATCHDOG=1 only while [`health`] passes, STOPPING=1 when
//! shutdown begins; SIGHUP reloads ([`reload_requested`]): the new
//! configuration is validated in full while the old one runs, then the old
//! generation of tasks is stopped and awaited and the new one started, with
//! RELOADING=1 / READY=1 around it.

use std::collections::HashMap;
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
use crate::schedule;
use crate::service::{self, Liveness, Systemd};
use crate::state::State;

/// Consecutive failures after which a feed counts as broken (logged once,
/// flagged by `status`).
pub const BROKEN_AFTER: u32 = 5;

/// On shutdown, how long delivery workers may take to settle the alert in
/// hand before the daemon exits anyway (the unit's `TimeoutStopSec=` is
/// longer). An alert cut off here was not acknowledged, so it stays queued
/// and goes out on the next start (same alert id).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Opens state and builds the shared context.
pub fn context(config: Arc<Config>) -> anyhow::Result<Arc<Ctx>> {
    let state = State::open_dir(&config.daemon.state_dir)?;
    context_with(config, state, Arc::default())
}

/// The shared context for `config` on an open state database; `metrics`
/// goes from context to context, so counters survive reloads.
fn context_with(
    config: Arc<Config>,
    state: State,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<Arc<Ctx>> {
    let fetcher = Fetcher::new(&config.daemon)?;
    let fetches = config.daemon.max_concurrent_fetches;
    Ok(Arc::new(Ctx {
        poll_bound: poll_bound(&config),
        state,
        fetcher,
        // Parsing is CPU- and memory-heavy; a few at once is plenty.
        parse_slots: Semaphore::new(fetches.clamp(1, 4)),
        stats: Stats {
            metrics,
            ..Stats::default()
        },
        config,
        clusters: Arc::default(),
    }))
}

async fn feed_loop(
    ctx: Arc<Ctx>,
    feed: FeedConfig,
    wake: Arc<Vec<Arc<Notify>>>,
    cancel: CancellationToken,
    live: (Arc<Liveness>, usize),
    first: Option<Duration>,
) {
    // Spread the first polls so a restart does not hit every server at once;
    // after a reload, an unchanged feed keeps its schedule.
    let spread = feed
        .interval
        .min(Duration::from_secs(2))
        .mul_f64(fastrand::f64());
    let mut delay = first.map_or(spread, |d| d.min(feed.interval));
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let busy = live.0.busy(live.1);
        let result = tokio::select! {
            _ = cancel.cancelled() => {
                tracing::info!(feed = %feed.id, "shutdown: in-flight poll abandoned");
                return;
            }
            r = poll_feed(&ctx, &feed) => r,
        };
        drop(busy);
        let (retry_after, hints) = match &result {
            Ok(report) => {
                failures = 0;
                tracing::info!(feed = %feed.id, status = report.status, items = report.items,
                    new = report.new_items, alerts = report.alerts, "polled");
                if report.alerts > 0 {
                    wake.iter().for_each(|n| n.notify_one());
                }
                (None, Some(report.hints))
            }
            Err(e) if e.http_status() == Some(410) => {
                tracing::error!(feed = %feed.id, url = %feed.url,
                    "feed is gone (HTTP 410): no longer polled until the next start or reload; remove it from the config");
                let id = feed.id.clone();
                if let Err(se) = ctx
                    .state
                    .call(move |s| s.record_gone(&id, Utc::now()))
                    .await
                {
                    tracing::warn!(feed = %feed.id, error = %se, "cannot record the feed as gone");
                }
                return;
            }
            Err(e) => {
                failures += 1;
                if failures == BROKEN_AFTER {
                    tracing::error!(feed = %feed.id, failures, error = %e,
                        "feed keeps failing; polled with growing pauses (up to 6 h) and flagged in `wirewatch status`");
                } else {
                    tracing::warn!(feed = %feed.id, failures, error = %e, "poll failed");
                }
                (e.retry_after(), None)
            }
        };
        let hints = hints.filter(|_| feed.schedule_hints);
        delay = schedule::next_delay(
            feed.interval,
            failures,
            retry_after,
            hints.as_ref(),
            Utc::now(),
            fastrand::f64(),
        );
        if delay > feed.interval.mul_f64(1.1) && failures == 0 {
            tracing::debug!(feed = %feed.id, delay = ?delay, "the feed's ttl, max-age or skip hours lengthen the wait");
        }
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
    run_supervised(ctx, cancel, Systemd::none()).await
}

/// How long a poll can take at most when every fetch ahead of it runs to
/// its deadline: the queue for global slots (article pages of `full_text`
/// feeds included), and for its host's slots and spacing when many feeds
/// share a host; plus the longest `full_text_budget`. At least 30 min.
pub fn poll_bound(config: &Config) -> Duration {
    let d = &config.daemon;
    let fetches: usize = config
        .feeds
        .iter()
        .map(|f| 1 + f.full_text.as_ref().map_or(0, |t| t.max_articles))
        .sum();
    let articles = config
        .feeds
        .iter()
        .filter_map(|f| f.full_text.as_ref().map(|t| t.budget))
        .max()
        .unwrap_or_default();
    let queued = fetches / d.max_concurrent_fetches.max(1) + 2;
    let global = d.fetch_timeout.saturating_mul(queued as u32);
    let mut per_host: HashMap<String, u32> = HashMap::new();
    for f in &config.feeds {
        if let Ok(u) = reqwest::Url::parse(&f.url) {
            *per_host.entry(crate::fetch::host_key(&u)).or_default() += 1;
        }
    }
    let busiest = per_host.values().copied().max().unwrap_or(0);
    let each = d
        .min_host_spacing
        .max(d.fetch_timeout / d.max_fetches_per_host.max(1) as u32);
    let host = each
        .saturating_mul(busiest)
        .saturating_add(d.fetch_timeout * 2);
    global
        .max(host)
        .saturating_add(articles)
        .max(Duration::from_secs(30 * 60))
}

/// The daemon's health, for the watchdog: no feed poll stuck beyond
/// [`poll_bound`], and the database answers a trivial read. Runs on the
/// runtime it checks, so a frozen or starved runtime fails it too (by not
/// running).
pub async fn health(ctx: &Ctx, live: &Liveness) -> Result<(), String> {
    if let Some((feed, busy)) = live.stuck(ctx.poll_bound) {
        return Err(format!("feed {feed}: poll running for {busy:?}"));
    }
    ctx.state
        .call(|s| s.health_check())
        .await
        .map_err(|e| format!("database: {e}"))
}

/// Reload (SIGHUP, `systemctl reload wirewatch`): reads and validates the
/// configuration again, in full, while the running one goes on. On any
/// error every problem is logged as `FILE:LINE:COL` and `None` is returned:
/// the running configuration stays. On success, the context for the new one
/// (the same state database).
pub async fn reload_requested(current: &Arc<Ctx>) -> Option<Arc<Ctx>> {
    let path = current.config.path.clone();
    let shown = path.display().to_string();
    tracing::info!(config = %shown, "reloading the configuration");
    let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path)).await;
    let config = match loaded {
        Ok(Ok(c)) => c,
        Ok(Err(errs)) => {
            for d in &errs.0 {
                tracing::error!(problem = %d, "configuration error");
            }
            tracing::error!(errors = errs.0.len(), config = %shown,
                "reload refused; keeping the running configuration");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
            return None;
        }
    };
    for w in &config.warnings {
        tracing::warn!(warning = %w, "rule warning");
    }
    if config.daemon.state_dir != current.config.daemon.state_dir {
        tracing::warn!(
            "state_dir changed; it takes effect at the next start (the running state database stays)"
        );
    }
    if config.http != current.config.http {
        tracing::warn!(
            "[http] changed; it takes effect at the next start (the running endpoint stays)"
        );
    }
    let metrics = current.stats.metrics.clone();
    match context_with(Arc::new(config), current.state.clone(), metrics) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
            None
        }
    }
}

/// Watches the main config file and the rule files; `None` (logged) when
/// the system offers no watch: SIGHUP still reloads.
fn watch_config(config: &Config) -> Option<crate::watch::FileWatch> {
    let mut files = vec![config.path.clone()];
    files.extend(config.rule_files.iter().cloned());
    match crate::watch::watch(&files) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config files; reload with SIGHUP");
            None
        }
    }
}

/// What runs for one configuration: a delivery worker per sink and a task
/// per feed, under one cancellation token.
struct Generation {
    tracker: TaskTracker,
    cancel: CancellationToken,
    live: Arc<Liveness>,
}

/// Starts the workers and feed tasks of `ctx`'s configuration. `first`
/// gives feeds whose first poll should wait (a reload keeps each unchanged
/// feed's schedule).
fn start_generation(
    ctx: &Arc<Ctx>,
    parent: &CancellationToken,
    first: &HashMap<String, Duration>,
) -> Generation {
    let config = ctx.config.clone();
    // No task of an older configuration runs now (see `run_supervised`).
    ctx.stats.metrics.configure(&config);
    let cancel = parent.child_token();
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
    let live = Arc::new(Liveness::new(
        config.feeds.iter().map(|f| f.id.clone()).collect(),
    ));
    for (slot, feed) in config.feeds.iter().enumerate() {
        tracker.spawn(feed_loop(
            ctx.clone(),
            feed.clone(),
            wakes.clone(),
            cancel.clone(),
            (live.clone(), slot),
            first.get(&feed.id).copied(),
        ));
    }
    tracker.close();
    Generation {
        tracker,
        cancel,
        live,
    }
}

/// For a reload: how long each feed that keeps its URL and interval should
/// wait before its next poll (its schedule as the state records it).
async fn carried_schedule(old: &Config, new: &Config, state: &State) -> HashMap<String, Duration> {
    let kept: Vec<String> = new
        .feeds
        .iter()
        .filter(|f| {
            old.feeds
                .iter()
                .any(|o| o.id == f.id && o.url == f.url && o.interval == f.interval)
        })
        .map(|f| f.id.clone())
        .collect();
    let statuses = match state.call(move |s| s.feed_statuses(&kept)).await {
        Ok(s) => s,
        Err(_) => return HashMap::new(),
    };
    let now = Utc::now();
    statuses
        .into_iter()
        .filter_map(|st| {
            let at = st.next_poll_at?;
            Some((st.feed, (at - now).to_std().unwrap_or(Duration::ZERO)))
        })
        .collect()
}

/// The running generation's context and liveness (swapped by a reload).
type Current = Arc<std::sync::Mutex<(Arc<Ctx>, Arc<Liveness>)>>;

/// Runs `job` every `period` with the context of whatever generation runs
/// then, until `stop`.
fn every<F, Fut>(
    outer: &TaskTracker,
    stop: CancellationToken,
    current: Current,
    period: Duration,
    job: F,
) where
    F: Fn(Arc<Ctx>, CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    outer.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(period) => {}
            }
            let ctx = current
                .lock()
                .map(|g| g.0.clone())
                .unwrap_or_else(|p| p.into_inner().0.clone());
            job(ctx, stop.clone()).await;
        }
    });
}

/// [`run`], reporting to systemd (`sd`): see the module docs.
pub async fn run_supervised(
    ctx: Arc<Ctx>,
    cancel: CancellationToken,
    sd: Systemd,
) -> anyhow::Result<()> {
    let mut ctx = ctx;
    let config = ctx.config.clone();
    let retention = config.daemon.seen_retention;
    let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
    let pruned = ctx.state.call(move |s| s.prune_seen(cutoff)).await?;
    crate::archive::prune_logged(&ctx.state, &config.daemon).await;
    deliver::prune_outbox(&ctx.state, &config).await;
    // Bound before anything starts: a configured endpoint that cannot
    // listen stops the start (see `http`).
    let listener = match &config.http {
        Some(h) => Some(crate::http::bind(h).await?),
        None => None,
    };
    tracing::info!(feeds = config.feeds.len(), rules = config.rules.len(), sinks = config.sinks.len(),
        state = %ctx.state.path().display(), pruned, "wirewatch started");

    let mut generation = start_generation(&ctx, &cancel, &HashMap::new());
    // The watchdog checks whatever generation is running.
    let current: Current = Arc::new(std::sync::Mutex::new((
        ctx.clone(),
        generation.live.clone(),
    )));
    let outer = TaskTracker::new();
    let watched = current.clone();
    outer.spawn(service::watchdog(sd.clone(), cancel.clone(), move || {
        let (ctx, live) = watched
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        async move { health(&ctx, &live).await }
    }));
    if let Some(listener) = listener {
        let served = current.clone();
        let current: crate::http::Current = Arc::new(move || {
            served
                .lock()
                .map(|g| g.clone())
                .unwrap_or_else(|p| p.into_inner().clone())
        });
        outer.spawn(crate::http::serve(listener, current, cancel.clone()));
    }
    // The archive and the outbox are pruned every hour, under whatever
    // config runs.
    every(
        &outer,
        cancel.clone(),
        current.clone(),
        crate::archive::PRUNE_EVERY,
        |ctx, _| async move {
            crate::archive::prune_logged(&ctx.state, &ctx.config.daemon).await;
            deliver::prune_outbox(&ctx.state, &ctx.config).await;
        },
    );
    // The archive's search index catches up behind the polls: while no
    // fetch is in flight, or at once when items have waited too long.
    every(
        &outer,
        cancel.clone(),
        current.clone(),
        crate::archive::INDEX_EVERY,
        |ctx, stop| async move {
            let (waiting, oldest) = match ctx.state.call(|s| s.archive_unindexed()).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "archive indexing failed; tried again later");
                    return;
                }
            };
            if waiting == 0 {
                return;
            }
            let overdue = oldest.is_some_and(|t| Utc::now() - t >= crate::archive::INDEX_MAX_LAG);
            crate::archive::index_logged(&ctx.state, || {
                !stop.is_cancelled() && (overdue || ctx.fetcher.idle())
            })
            .await;
        },
    );
    outer.close();
    let describe = |c: &Config| {
        format!(
            "polling {} feed(s) for {} rule(s), {} sink(s)",
            c.feeds.len(),
            c.rules.len(),
            c.sinks.len()
        )
    };
    sd.ready(&describe(&config));
    // SIGHUP's default action is to terminate: catch it for reloads.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // Edits of the config and rule files reload too.
    let mut files = watch_config(&ctx.config);
    loop {
        let reason = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(()) = async { hup.as_mut()?.recv().await } => "SIGHUP".to_string(),
            Some(path) = async { files.as_mut()?.settled_change().await } => {
                format!("{} changed", path.display())
            }
        };
        tracing::info!(reason = %reason, "reload requested");
        sd.send("RELOADING=1");
        let next = reload_requested(&ctx).await;
        ctx.stats.metrics.reloaded(next.is_some());
        let Some(next) = next else {
            sd.ready(&format!(
                "{} (last reload refused: see the log)",
                describe(&ctx.config)
            ));
            continue;
        };
        // The new configuration is valid: stop the old tasks (polls in
        // flight are abandoned, deliveries in hand finish: the outbox is
        // shared and no sink ever has two workers, so nothing is lost or
        // sent twice), then start the new ones.
        generation.cancel.cancel();
        generation.tracker.wait().await;
        let first = carried_schedule(&ctx.config, &next.config, &next.state).await;
        ctx = next;
        generation = start_generation(&ctx, &cancel, &first);
        if let Ok(mut g) = current.lock() {
            *g = (ctx.clone(), generation.live.clone());
        }
        // The rule files may have changed too.
        files = watch_config(&ctx.config);
        tracing::info!(
            feeds = ctx.config.feeds.len(),
            rules = ctx.config.rules.len(),
            sinks = ctx.config.sinks.len(),
            "configuration reloaded"
        );
        sd.ready(&describe(&ctx.config));
    }
    sd.stopping("shutting down");
    tracing::info!("shutting down");
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        generation.tracker.wait().await;
        outer.wait().await;
    })
    .await
    .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE,
            "shutdown: deliveries still in flight abandoned; they stay queued");
    }
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
    /// `(feed id, new URL)` for feeds found moved by a permanent redirect.
    pub moved: Vec<(String, String)>,
}

/// Polls every feed once (concurrently, within the fetch bound) and
/// delivers every sink's due alerts: each sink drains while the polls run
/// (woken when a poll queues alerts) and once more after the last poll. A
/// sink whose pass ends on a failure or a gone endpoint is not tried again
/// in this run; its alerts stay queued.
pub async fn once(ctx: Arc<Ctx>) -> anyhow::Result<OnceReport> {
    let mut report = OnceReport::default();
    let polled = CancellationToken::new();
    let mut wakes = Vec::new();
    let mut lanes = tokio::task::JoinSet::new();
    for cfg in &ctx.config.sinks {
        let lane = match deliver::Lane::new(cfg, &ctx.config) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(sink = %cfg.id, error = %e, "sink cannot start; its alerts stay queued");
                continue;
            }
        };
        let wake = Arc::new(Notify::new());
        wakes.push(wake.clone());
        let (ctx, polled, id) = (ctx.clone(), polled.clone(), cfg.id.clone());
        lanes.spawn(async move {
            let mut total = deliver::DrainReport::default();
            loop {
                // Read before the pass: a pass that starts after the last
                // poll is the final one.
                let last = polled.is_cancelled();
                let r = deliver::drain(&ctx.state, &lane, &ctx.stats, &CancellationToken::new())
                    .await?;
                total.delivered += r.delivered;
                total.buried += r.buried;
                total.disabled |= r.disabled;
                if last || r.disabled || r.hold.is_some() {
                    return Ok::<_, crate::state::StateError>((id, total));
                }
                tokio::select! {
                    _ = polled.cancelled() => {}
                    _ = wake.notified() => {}
                }
            }
        });
    }
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
                tracing::info!(feed = %feed, status = p.status, new = p.new_items, alerts = p.alerts, "polled");
                if p.alerts > 0 {
                    wakes.iter().for_each(|w| w.notify_one());
                }
                if let Some(to) = p.moved_to {
                    report.moved.push((feed, to));
                }
            }
            Err(PollError::State(e)) => return Err(e.into()),
            Err(e) => report.failed.push((feed, e.to_string())),
        }
    }
    report.failed.sort();
    report.moved.sort();
    crate::archive::prune_logged(&ctx.state, &ctx.config.daemon).await;
    report.dead += deliver::prune_outbox(&ctx.state, &ctx.config).await;
    polled.cancel();
    let mut disabled = Vec::new();
    while let Some(joined) = lanes.join_next().await {
        let (sink, r) = joined??;
        report.delivered += r.delivered;
        report.dead += r.buried;
        if r.disabled {
            disabled.push(sink);
        }
    }
    // In config order, as before.
    report.disabled_sinks = ctx
        .config
        .sinks
        .iter()
        .filter(|s| disabled.contains(&s.id))
        .map(|s| s.id.clone())
        .collect();
    // Alerts first; then the archive's search index catches up with what
    // this cycle archived (see `archive::index`).
    crate::archive::index_logged(&ctx.state, || true).await;
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
