//! `wirewatch demo`: the real pipeline against a bundled feed server.
//!
//! Starts [`server::DemoServer`] on 127.0.0.1, writes a config pointing at
//! it (with the shipped `config/rules.toml`) into a temporary directory,
//! runs the daemon with a stdout sink until the last story has appeared and
//! been polled, then prints a summary. Nothing outside the temp dir is
//! touched.

pub mod server;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config;
use crate::daemon;

/// The rules the demo runs with: the shipped example rules, verbatim.
pub const DEFAULT_RULES: &str = include_str!("../../config/rules.toml");

const POLL: Duration = Duration::from_secs(2);

/// Runs the demo to completion; returns the number of alerts delivered.
pub async fn run(cancel: CancellationToken) -> anyhow::Result<u64> {
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("wirewatch-demo-")
        .tempdir()?;
    let server = server::DemoServer::start(cancel.child_token()).await?;

    let mut main = String::new();
    writeln!(
        main,
        "[daemon]\npoll_interval = \"{}s\"\nmax_concurrent_fetches = 4\nstate_dir = \"state\"\nrules = [\"rules.toml\"]\nfetch_timeout = \"5s\"\nsnippet_max_chars = 240\n",
        POLL.as_secs()
    )?;
    for f in server.feeds() {
        writeln!(
            main,
            "[[feed]]\nid = {:?}\nurl = {:?}\ntitle = {:?}\nbackfill = \"24h\"\n",
            f.id, f.url, f.title
        )?;
    }
    // The shipped rules may name the sinks of the shipped config; the demo
    // offers the same ids so those rules load unchanged.
    main.push_str("[[sink]]\nid = \"terminal\"\ntype = \"stdout\"\n\n[[sink]]\nid = \"log\"\ntype = \"jsonl\"\npath = \"alerts.jsonl\"\n");
    std::fs::write(dir.path().join("wirewatch.toml"), &main)?;
    std::fs::write(dir.path().join("rules.toml"), DEFAULT_RULES)?;
    let config =
        config::load(&dir.path().join("wirewatch.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut rule_ids: Vec<&str> = config.rule_meta.iter().map(|r| r.id.as_str()).collect();
    rule_ids.sort_unstable();
    println!(
        "wirewatch demo: {} feeds on a local server ({}), {} stories appearing over {}s; rules: {}\n",
        server.feeds().len(),
        server.feeds().first().map(|f| f.url.as_str()).unwrap_or(""),
        server.story_count(),
        server.last_story_at().as_secs(),
        rule_ids.join(", ")
    );
    let ctx = daemon::context(Arc::new(config))?;
    let stop = cancel.child_token();
    let runner = tokio::spawn(daemon::run(ctx.clone(), stop.clone()));
    // Two poll intervals after the last story, plus delivery time.
    let until = server.last_story_at() + POLL * 2 + Duration::from_secs(2);
    tokio::select! {
        _ = tokio::time::sleep(until) => {}
        _ = cancel.cancelled() => {}
    }
    stop.cancel();
    runner.await??;

    let s = &ctx.stats;
    let delivered = s.alerts_delivered.load(Ordering::Relaxed);
    let alerts_file = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap_or_default();
    println!(
        "demo finished in {}s: {} polls ({} unchanged via 304, {} failed), {} new items, {} deliveries ({} alerts in the jsonl sink); state was kept in {} and is now removed",
        started.elapsed().as_secs(),
        s.polls.load(Ordering::Relaxed),
        s.not_modified.load(Ordering::Relaxed),
        s.failures.load(Ordering::Relaxed),
        s.new_items.load(Ordering::Relaxed),
        delivered,
        alerts_file.lines().count(),
        dir.path().display(),
    );
    cancel.cancel();
    Ok(delivered)
}
