//! wirewatch: watches news wire feeds and alerts the moment a story you
//! care about appears.
//!
//! # Layout
//!
//! Modules in the order data flows through them:
//!
//! - [`config`]: TOML -> validated, immutable [`config::Config`] with
//!   compiled rules; every error as `FILE:LINE:COL`.
//! - [`daemon`]: the schedule (one task per feed, one worker per sink),
//!   shutdown, and the single-pass `once`.
//! - [`fetch`]: one HTTP client; conditional GET, timeouts, size cap.
//! - [`parse`] (+ [`html`]): feed bytes -> [`model::Item`]s with stable keys
//!   and plain text. Pure.
//! - [`fulltext`] (+ [`extract`]): for `full_text = true` feeds, the new
//!   items' article pages fetched (bounded per poll) and their main text
//!   extracted (pure) for the rules.
//! - [`text`], [`rules`]: tokenizing/folding and the watch-rule matcher. Pure.
//! - [`snippet`]: the sentence(s) that show why a rule fired. Pure.
//! - [`pipeline`]: one poll of one feed, ending in one state transaction.
//! - [`story`] (+ [`cluster`]): near-duplicate story clustering across
//!   feeds (MinHash + LSH over the story window; pure), and the daemon's
//!   shared index and `on_repeat` routing.
//! - [`state`]: the only module that touches SQLite.
//! - [`archive`]: new items kept for `archive_days`: `backtest`, `search`
//!   and `check`'s per-rule counts over them.
//! - [`deliver`], [`sink`]: the outbox drained per sink, at least once;
//!   [`flow`] decides what waits for a digest (throttle, quiet hours). Pure.
//! - [`opml`]: subscription lists in and out (`wirewatch feeds`). Pure.
//! - [`metrics`]: the Prometheus registry and its text exposition. Pure.
//! - [`http`]: the optional endpoint serving `/healthz` and `/metrics`.
//! - [`service`]: systemd integration: sd_notify (READY, STOPPING,
//!   WATCHDOG tied to a health check), journald log format.
//! - [`demo`]: the bundled feed server and the `wirewatch demo` run.

pub mod archive;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod demo;
pub mod extract;
pub mod fetch;
pub mod flow;
pub mod fulltext;
pub mod html;
pub mod http;
pub mod metrics;
pub mod model;
pub mod opml;
pub mod parse;
pub mod pipeline;
pub mod rules;
pub mod schedule;
pub mod service;
pub mod sink;
pub mod snippet;
pub mod state;
pub mod story;
pub mod text;
pub mod watch;
