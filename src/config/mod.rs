//! Configuration: the main file (`wirewatch.toml`) and its rule files.
//!
//! Raw TOML is read with positions kept ([`reader`]), validated in full, and
//! turned into an immutable [`Config`] with compiled rules. Every problem is
//! reported as `FILE:LINE:COL: message`, all of them at once; a config with any
//! error is rejected whole — a bad rule is never skipped silently.
//!
//! This module reads the files it is pointed at and nothing else.

pub mod edit;
pub mod email;
pub mod reader;
pub mod sinks;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use email::{EmailConfig, EmailTls};
use reader::{Diagnostic, Fields, Pos, Reporter, Source, Spanned};
pub use sinks::{RetryPolicy, Secret, WebhookConfig, WebhookFormat};

use crate::rules::{RuleSet, RuleSpec};

/// How bad a rule's story is; carried in the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Normal,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Normal => "normal",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "low" => Severity::Low,
            "normal" => Severity::Normal,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// `[daemon]`: global knobs. Every bound on memory and time lives here.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Default time between two polls of a feed.
    pub poll_interval: Duration,
    /// At most this many HTTP fetches run at once.
    pub max_concurrent_fetches: usize,
    /// At most this many fetches to one host (host and port) at once.
    pub max_fetches_per_host: usize,
    /// At least this long between the starts of two fetches to one host.
    pub min_host_spacing: Duration,
    /// Where `wirewatch.db` lives.
    pub state_dir: PathBuf,
    /// Total deadline of one fetch: connect, headers and body.
    pub fetch_timeout: Duration,
    pub connect_timeout: Duration,
    /// Cap on a feed body after decompression.
    pub max_feed_bytes: u64,
    /// Items beyond this many in one document are dropped (with a warning).
    pub max_items_per_feed: usize,
    pub max_redirects: usize,
    /// Cap on an alert snippet, in characters.
    pub snippet_max_chars: usize,
    /// Keys of items gone from a feed are forgotten after this long; unseen
    /// items older than this are treated as stale, not alerted.
    pub seen_retention: Duration,
    pub user_agent: String,
    /// New items are kept this many days for `backtest`, `search` and
    /// `check`; 0 turns the archive off.
    pub archive_days: u32,
    /// The archive keeps at most this many items (the oldest go first).
    pub archive_max_items: usize,
    /// New items are clustered with the items of this window across all
    /// feeds (`crate::story`); zero switches clustering off.
    pub story_window: Duration,
    /// Dead letters are deleted this long after they died (`wirewatch
    /// alerts retry` can revive them until then).
    pub dead_letter_retention: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            poll_interval: Duration::from_secs(600),
            max_concurrent_fetches: 8,
            max_fetches_per_host: 2,
            min_host_spacing: Duration::from_secs(1),
            state_dir: default_state_dir(),
            fetch_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_feed_bytes: 10 << 20,
            max_items_per_feed: 500,
            max_redirects: 5,
            snippet_max_chars: 300,
            seen_retention: Duration::from_secs(90 * 86_400),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            archive_days: 7,
            archive_max_items: 100_000,
            story_window: Duration::from_secs(48 * 3600),
            dead_letter_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// `[http]`: the optional endpoint serving `/healthz` and `/metrics`.
/// Absent: no listener at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// An IP address and a port (no host names: what is bound must be
    /// exactly what was written).
    pub listen: std::net::SocketAddr,
}

/// How far back the first poll of a feed alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backfill {
    All,
    Window(Duration),
}

/// One `[[feed]]`.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub id: String,
    pub url: String,
    pub title: Option<String>,
    pub interval: Duration,
    pub backfill: Backfill,
    /// Whether the feed's own schedule hints (RSS `ttl`, `skipHours`,
    /// `skipDays`, HTTP `Cache-Control: max-age`) may lengthen `interval`.
    pub schedule_hints: bool,
    /// `full_text = true`: new items' article pages are fetched and their
    /// main text matched (`crate::fulltext`).
    pub full_text: Option<FullTextConfig>,
}

/// The bounds of a `full_text = true` feed's article fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullTextConfig {
    /// Cap on one article page after decompression
    /// (`full_text_max_bytes`, default `max_feed_bytes`).
    pub max_bytes: u64,
    /// Article fetches per poll at most (`full_text_max_articles`,
    /// default 20); further new items keep their feed text.
    pub max_articles: usize,
    /// Wall-clock budget of one poll's article fetches, queueing and
    /// extraction included (`full_text_budget`, default 60 s); what is not
    /// done by then keeps its feed text.
    pub budget: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    Auto,
    Always,
    Never,
}

/// How long a desktop notification stays on screen (`expire`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// The notification server decides (the key is absent).
    ServerDefault,
    /// Until the person closes it (`expire = "never"`).
    Never,
    After(Duration),
}

/// `type = "desktop"`: freedesktop notifications on the session bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopConfig {
    /// The application name the notification server shows and filters by.
    pub app_name: String,
    /// An icon name from the icon theme, or an absolute file path.
    pub icon: Option<String>,
    /// Bound on one delivery attempt's D-Bus calls (capabilities + Notify).
    pub timeout: Duration,
    pub expire: Expire,
    /// Offer a default action (click) that opens the item's link.
    pub actions: bool,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        DesktopConfig {
            app_name: "wirewatch".into(),
            icon: None,
            timeout: Duration::from_secs(5),
            expire: Expire::ServerDefault,
            actions: true,
        }
    }
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    Stdout {
        color: ColorMode,
    },
    Jsonl {
        path: PathBuf,
    },
    Webhook(WebhookConfig),
    /// A program run per alert (argv, no shell) with the alert on stdin.
    Exec {
        command: Vec<String>,
        timeout: Duration,
    },
    Desktop(DesktopConfig),
    Email(EmailConfig),
}

/// Snippet length of a desktop popup unless the sink says otherwise: a
/// notification shows a few lines.
pub const DESKTOP_SNIPPET: usize = 200;
/// Snippet length of messages read in full (webhooks, chat, e-mail) unless
/// the sink says otherwise.
pub const MESSAGE_SNIPPET: usize = 600;

impl SinkKind {
    /// The snippet length this kind of sink wants by default; `None`: the
    /// `[daemon]` default (terminal, files, programs).
    pub fn snippet_default(&self) -> Option<usize> {
        match self {
            SinkKind::Desktop(_) => Some(DESKTOP_SNIPPET),
            SinkKind::Webhook(_) | SinkKind::Email(_) => Some(MESSAGE_SNIPPET),
            SinkKind::Stdout { .. } | SinkKind::Jsonl { .. } | SinkKind::Exec { .. } => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Stdout { .. } => "stdout",
            SinkKind::Jsonl { .. } => "jsonl",
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Exec { .. } => "exec",
            SinkKind::Desktop(_) => "desktop",
            SinkKind::Email(_) => "email",
        }
    }
}

/// One `[[sink]]`.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub id: String,
    pub kind: SinkKind,
    /// Snippet length for this sink; default `[daemon] snippet_max_chars`.
    pub snippet_max_chars: Option<usize>,
    pub retry: RetryPolicy,
    /// Digest period and quiet hours.
    pub flow: crate::flow::SinkFlow,
}

/// What a rule carries besides its terms (the terms live in [`RuleSet`]).
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub id: String,
    pub severity: Severity,
    /// `None`: every sink.
    pub sinks: Option<Vec<String>>,
    /// At most one alert per window per sink; the rest go out as a digest.
    pub throttle: Option<Duration>,
    /// What a later copy of a story this rule already alerted does.
    pub on_repeat: OnRepeat,
    pub file: PathBuf,
}

/// Per rule `on_repeat`: what happens to a later item of a story
/// (`crate::story`) that an earlier item already matched this rule with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum OnRepeat {
    /// Recorded on the story, not sent.
    #[default]
    Drop,
    /// Held for the sink's next digest.
    Digest,
    /// Sent like a first item.
    Alert,
}

impl OnRepeat {
    pub fn as_str(self) -> &'static str {
        match self {
            OnRepeat::Drop => "drop",
            OnRepeat::Digest => "digest",
            OnRepeat::Alert => "alert",
        }
    }
}

/// A validated, immutable configuration. Shared as `Arc<Config>`.
#[derive(Debug)]
pub struct Config {
    /// The main file.
    pub path: PathBuf,
    pub daemon: DaemonConfig,
    /// `[http]`, if present.
    pub http: Option<HttpConfig>,
    pub feeds: Vec<FeedConfig>,
    pub sinks: Vec<SinkConfig>,
    /// Enabled rules, compiled; index `i` of the set is `rule_meta[i]`.
    pub rules: Arc<RuleSet>,
    pub rule_meta: Vec<RuleMeta>,
    /// How long compiling the rule set took (the `wirewatch_ruleset_build_seconds` gauge).
    pub rules_build_time: Duration,
    /// Rules that are written but `enabled = false` (validated all the same).
    pub disabled_rules: usize,
    pub rule_files: Vec<PathBuf>,
    /// Rules that load but look wrong (can never match, match almost
    /// everything); `check` prints them, the daemon logs them.
    pub warnings: Vec<Diagnostic>,
    /// `[aliases]` of the rule files, for ad-hoc queries (`search`).
    pub aliases: crate::rules::Aliases,
}

impl Config {
    /// Sink ids a rule's alerts go to.
    pub fn sinks_for_rule(&self, rule: usize) -> Vec<&str> {
        match self.rule_meta.get(rule).and_then(|m| m.sinks.as_ref()) {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => self.sinks.iter().map(|s| s.id.as_str()).collect(),
        }
    }

    /// Snippet length (chars) for alerts to `sink_id`: the sink's own
    /// `snippet_max_chars`, else its kind's default ([`SinkKind::snippet_default`]),
    /// else `[daemon] snippet_max_chars`.
    pub fn snippet_cap(&self, sink_id: &str) -> usize {
        let sink = self.sinks.iter().find(|s| s.id == sink_id);
        sink.and_then(|s| s.snippet_max_chars)
            .or_else(|| sink.and_then(|s| s.kind.snippet_default()))
            .unwrap_or(self.daemon.snippet_max_chars)
    }

    pub fn state_file(&self) -> PathBuf {
        self.daemon.state_dir.join("wirewatch.db")
    }
}

/// Everything wrong with a configuration, in file order.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub const DEFAULT_USER_AGENT: &str = concat!(
    "wirewatch/",
    env!("CARGO_PKG_VERSION"),
    " (news feed monitor; polite polling with conditional GET)"
);

/// Where `--config` is looked for when not given, in order.
pub fn default_config_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("WIREWATCH_CONFIG").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(dir).join("wirewatch/wirewatch.toml"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(home).join(".config/wirewatch/wirewatch.toml"));
    }
    out.push(PathBuf::from("/etc/wirewatch/wirewatch.toml"));
    out
}

/// Resolves the config path: the flag, else the first candidate that exists
/// (`$WIREWATCH_CONFIG` is taken even if missing, so its error is clear).
pub fn locate(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    let candidates = default_config_candidates();
    if std::env::var_os("WIREWATCH_CONFIG").is_some_and(|p| !p.is_empty()) {
        return Ok(candidates[0].clone());
    }
    candidates.iter().find(|p| p.exists()).cloned().ok_or_else(|| {
        let list: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        format!(
            "no config file given and none found; pass --config PATH or set WIREWATCH_CONFIG (looked in: {})",
            list.join(", ")
        )
    })
}

fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|p| !p.is_empty()) {
        // systemd may pass several, colon-separated; the first is ours.
        let s = d.to_string_lossy().to_string();
        return PathBuf::from(s.split(':').next().unwrap_or(&s));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(d).join("wirewatch");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(h).join(".local/state/wirewatch");
    }
    PathBuf::from("/var/lib/wirewatch")
}

fn read_source(path: &Path, from: Option<(&Source, Pos)>) -> Result<Source, Diagnostic> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(Source {
                path: path.to_path_buf(),
                text,
            }),
            Err(e) => {
                let off = e.utf8_error().valid_up_to();
                let src = Source {
                    path: path.to_path_buf(),
                    text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                let (line, col) = src.line_col(off);
                Err(Diagnostic {
                    file: path.to_path_buf(),
                    line,
                    col,
                    message: "file is not valid UTF-8".into(),
                })
            }
        },
        Err(e) => {
            let message = format!("cannot read {}: {e}", path.display());
            Err(match from {
                Some((src, at)) => {
                    let (line, col) = src.line_col(at.0);
                    Diagnostic {
                        file: src.path.clone(),
                        line,
                        col,
                        message,
                    }
                }
                None => Diagnostic {
                    file: path.to_path_buf(),
                    line: 1,
                    col: 1,
                    message,
                },
            })
        }
    }
}

/// Loads and validates the main file and every rule file it names.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let source = read_source(path, None).map_err(|d| ConfigErrors(vec![d]))?;
    load_from(source, |p, from| read_source(p, Some(from)))
}

/// Loads from an in-memory main file; `read_rules` supplies rule files.
pub fn load_from(
    source: Source,
    mut read_rules: impl FnMut(&Path, (&Source, Pos)) -> Result<Source, Diagnostic>,
) -> Result<Config, ConfigErrors> {
    let dir = source
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let doc = reader::parse(&source).map_err(|d| ConfigErrors(vec![d]))?;
    let mut r = Reporter::new(&source);
    let mut top = Fields::new(&source, doc.as_table(), "the main config file");

    let daemon_table = top.table(&mut r, "daemon");
    let http_table = top.table(&mut r, "http");
    let feed_tables = top.tables(&mut r, "feed");
    let sink_tables = top.tables(&mut r, "sink");
    let rules_item = top.take_item("rules");
    top.finish(&mut r, &["daemon", "http", "feed", "sink"]);
    if let Some(item) = rules_item {
        r.error(
            reader::item_pos(item),
            "`rules` belongs in [daemon] (rules = [\"rules.toml\"]); write watch rules in their own file",
        );
    }

    let (daemon, rule_paths) = read_daemon(&mut r, &source, daemon_table, &dir);
    let http = http_table.and_then(|t| read_http(&mut r, &source, t));
    let feeds = read_feeds(&mut r, &source, &feed_tables, &daemon);
    let sinks = read_sinks(&mut r, &source, &sink_tables, &dir);
    if feeds.is_empty() && feed_tables.is_empty() {
        r.error(
            Pos(0),
            "no feeds configured: add at least one [[feed]] with id and url",
        );
    }

    let mut diags = r.diags;
    let sink_ids: HashSet<&str> = sinks.iter().map(|s| s.id.as_str()).collect();
    let mut book = RuleBook::default();
    let mut rule_files = Vec::new();
    for p in &rule_paths {
        let path = reader::resolve(&dir, &p.value);
        rule_files.push(path.clone());
        match read_rules(&path, (&source, p.pos)) {
            Ok(rsrc) => book.read_file(rsrc, &sink_ids),
            Err(d) => diags.push(d),
        }
    }
    // A `rules` key of the wrong type has its own error already.
    let rules_mistyped = daemon_table
        .and_then(|t| t.get("rules"))
        .is_some_and(|i| !i.as_array().is_some_and(|a| a.is_empty()));
    if rule_paths.is_empty() && !rules_mistyped {
        let at = daemon_table.map_or(Pos(0), |t| reader::table_pos(&source, t));
        diags.push(diag_at(
            &source,
            at,
            "no rule files: set rules = [\"rules.toml\"] in [daemon]",
        ));
    }
    diags.append(&mut book.diags);
    if diags.is_empty() && book.rules.is_empty() {
        if let Some(src) = book.sources.first() {
            diags.push(diag_at(
                src,
                Pos(0),
                "no rules: add at least one [[rule]] with an id and a query (or any/all terms)",
            ));
        }
    }
    // The rules that were read are compiled even when other parts of the
    // config are wrong, so one `check` shows every problem.
    let order: Vec<PathBuf> = std::iter::once(source.path.clone())
        .chain(book.sources.iter().map(|s| s.path.clone()))
        .collect();
    let compile_started = std::time::Instant::now();
    let aliases = book.aliases.clone();
    let compiled = book.compile();
    let rules_build_time = compile_started.elapsed();
    let compiled = match compiled {
        Ok(c) if diags.is_empty() => c,
        Ok(_) => return Err(sorted(diags, &order)),
        Err(mut errs) => {
            diags.append(&mut errs.0);
            return Err(sorted(diags, &order));
        }
    };
    let (rules, metas, warnings, disabled) = compiled;
    Ok(Config {
        path: source.path.clone(),
        daemon,
        http,
        feeds,
        sinks,
        rules: Arc::new(rules),
        rule_meta: metas,
        rules_build_time,
        disabled_rules: disabled,
        rule_files,
        warnings,
        aliases,
    })
}

/// Diagnostics in file order (main file, then rule files as listed), then
/// by position.
fn sorted(mut diags: Vec<Diagnostic>, order: &[PathBuf]) -> ConfigErrors {
    let rank = |d: &Diagnostic| {
        order
            .iter()
            .position(|p| p == &d.file)
            .unwrap_or(order.len())
    };
    diags.sort_by_key(|d| (rank(d), d.line, d.col));
    ConfigErrors(diags)
}

fn diag_at(source: &Source, at: Pos, message: &str) -> Diagnostic {
    let (line, col) = source.line_col(at.0);
    Diagnostic {
        file: source.path.clone(),
        line,
        col,
        message: message.to_string(),
    }
}

const DAEMON_KEYS: &[&str] = &[
    "poll_interval",
    "max_concurrent_fetches",
    "max_fetches_per_host",
    "min_host_spacing",
    "state_dir",
    "rules",
    "fetch_timeout",
    "connect_timeout",
    "max_feed_bytes",
    "max_items_per_feed",
    "max_redirects",
    "snippet_max_chars",
    "seen_retention",
    "user_agent",
    "archive_days",
    "archive_max_items",
    "story_window",
    "dead_letter_retention",
];

fn read_daemon(
    r: &mut Reporter,
    source: &Source,
    table: Option<&toml_edit::Table>,
    dir: &Path,
) -> (DaemonConfig, Vec<Spanned<String>>) {
    let mut d = DaemonConfig::default();
    let Some(table) = table else {
        return (
            d,
            vec![Spanned {
                value: "rules.toml".into(),
                pos: Pos(0),
            }],
        );
    };
    let mut f = Fields::new(source, table, "[daemon]");
    if let Some(v) = positive_duration(r, &mut f, "poll_interval") {
        d.poll_interval = v;
    }
    if let Some(v) = f.integer(r, "max_concurrent_fetches", 1..=1024) {
        d.max_concurrent_fetches = v as usize;
    }
    if let Some(v) = f.integer(r, "max_fetches_per_host", 1..=1024) {
        d.max_fetches_per_host = v as usize;
    }
    if let Some(v) = f.duration(r, "min_host_spacing") {
        if v.value > Duration::from_secs(600) {
            r.error(v.pos, "`min_host_spacing` must be at most 10m");
        } else {
            d.min_host_spacing = v.value;
        }
    }
    if let Some(v) = f.string(r, "state_dir") {
        d.state_dir = reader::resolve(dir, &v.value);
    }
    let rules = f.string_list(r, "rules").unwrap_or_default();
    if let Some(v) = positive_duration(r, &mut f, "fetch_timeout") {
        d.fetch_timeout = v;
    }
    if let Some(v) = positive_duration(r, &mut f, "connect_timeout") {
        d.connect_timeout = v;
    }
    if let Some(v) = f.size(r, "max_feed_bytes") {
        d.max_feed_bytes = v;
    }
    if let Some(v) = f.integer(r, "max_items_per_feed", 1..=100_000) {
        d.max_items_per_feed = v as usize;
    }
    if let Some(v) = f.integer(r, "max_redirects", 0..=20) {
        d.max_redirects = v as usize;
    }
    if let Some(v) = f.integer(r, "snippet_max_chars", 40..=10_000) {
        d.snippet_max_chars = v as usize;
    }
    if let Some(v) = positive_duration(r, &mut f, "dead_letter_retention") {
        d.dead_letter_retention = v;
    }
    if let Some(v) = positive_duration(r, &mut f, "seen_retention") {
        d.seen_retention = v;
    }
    if let Some(v) = f.string(r, "user_agent") {
        if v.value.trim().is_empty() || v.value.chars().any(char::is_control) {
            r.error(v.pos, "`user_agent` must be non-empty printable text");
        } else {
            d.user_agent = v.value;
        }
    }
    if let Some(v) = f.integer(r, "archive_days", 0..=3650) {
        d.archive_days = v as u32;
    }
    if let Some(v) = f.integer(r, "archive_max_items", 1..=10_000_000) {
        d.archive_max_items = v as usize;
    }
    if let Some(v) = f.duration(r, "story_window") {
        if v.value > Duration::from_secs(30 * 86_400) {
            r.error(
                v.pos,
                "`story_window` must be at most 30d (0s switches clustering off)",
            );
        } else {
            d.story_window = v.value;
        }
    }
    f.finish(r, DAEMON_KEYS);
    (d, rules)
}

const HTTP_KEYS: &[&str] = &["listen"];

/// `[http]`: `listen` is required (the table is how the endpoint is
/// switched on) and must be an IP address with a non-zero port.
fn read_http(r: &mut Reporter, source: &Source, table: &toml_edit::Table) -> Option<HttpConfig> {
    let mut f = Fields::new(source, table, "[http]");
    let listen = f.required_string(r, "listen");
    f.finish(r, HTTP_KEYS);
    let listen = listen?;
    match listen.value.trim().parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.port() == 0 => {
            r.error(
                listen.pos,
                "`listen` needs a fixed port, not 0 (Prometheus must know where to scrape)",
            );
            None
        }
        Ok(addr) => Some(HttpConfig { listen: addr }),
        Err(_) => {
            r.error(
                listen.pos,
                format!(
                    "`listen` must be an IP address and port like \"127.0.0.1:9797\" or \"[::1]:9797\" (host names are not resolved), found \"{}\"",
                    listen.value
                ),
            );
            None
        }
    }
}

fn positive_duration(r: &mut Reporter, f: &mut Fields, key: &'static str) -> Option<Duration> {
    let v = f.duration(r, key)?;
    if v.value.is_zero() {
        r.error(v.pos, format!("`{key}` must be longer than 0s"));
        return None;
    }
    Some(v.value)
}

/// Why `id` is not a valid id, if it is not.
fn id_error(what: &str, id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    (!ok).then(|| format!("{what} id \"{id}\" must be 1-64 characters of a-z, 0-9, '-' or '_'"))
}

fn check_id(
    r: &mut Reporter,
    id: &Spanned<String>,
    what: &str,
    seen: &mut HashSet<String>,
) -> bool {
    if let Some(e) = id_error(what, &id.value) {
        r.error(id.pos, e);
        return false;
    }
    if !seen.insert(id.value.clone()) {
        r.error(id.pos, format!("duplicate {what} id \"{}\"", id.value));
        return false;
    }
    true
}

/// Starts reading a `[[what]]` table: its required `id`, and messages that
/// name the table by that id from then on.
fn identified<'a>(
    r: &mut Reporter,
    source: &Source,
    table: &'a toml_edit::Table,
    what: &str,
) -> (Fields<'a>, Option<Spanned<String>>) {
    let mut f = Fields::new(source, table, format!("[[{what}]]"));
    let id = f.required_string(r, "id");
    if let Some(id) = &id {
        f.set_what(format!("{what} \"{}\"", id.value));
    }
    (f, id)
}

const FEED_KEYS: &[&str] = &[
    "id",
    "url",
    "title",
    "interval",
    "backfill",
    "schedule_hints",
    "full_text",
    "full_text_max_bytes",
    "full_text_max_articles",
    "full_text_budget",
];

fn read_feeds(
    r: &mut Reporter,
    source: &Source,
    tables: &[&toml_edit::Table],
    daemon: &DaemonConfig,
) -> Vec<FeedConfig> {
    let default_interval = daemon.poll_interval;
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    for t in tables {
        let (mut f, id) = identified(r, source, t, "feed");
        let url = f.required_string(r, "url");
        let title = f.string(r, "title").map(|s| s.value);
        let interval = positive_duration(r, &mut f, "interval");
        let backfill = match f.string(r, "backfill") {
            None => Some(Backfill::Window(Duration::from_secs(86_400))),
            Some(s) if s.value == "all" => Some(Backfill::All),
            Some(s) => match reader::parse_duration(&s.value) {
                Ok(d) => Some(Backfill::Window(d)),
                Err(e) => {
                    r.error(s.pos, format!("`backfill`: {e}, or \"all\""));
                    None
                }
            },
        };
        let schedule_hints = f.bool(r, "schedule_hints").unwrap_or(true);
        let full_text = read_full_text(r, &mut f, daemon);
        f.finish(r, FEED_KEYS);
        let id_ok = id
            .as_ref()
            .is_some_and(|id| check_id(r, id, "feed", &mut ids));
        let url_ok = url.as_ref().is_some_and(|u| {
            let lower = u.value.to_ascii_lowercase();
            let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
                && u.value.len() > "http://".len()
                && !u.value.chars().any(char::is_whitespace);
            if !ok {
                r.error(
                    u.pos,
                    format!(
                        "feed url \"{}\" must be an http:// or https:// URL",
                        u.value
                    ),
                );
            }
            ok
        });
        if let (Some(id), Some(url), Some(backfill), true, true) =
            (id, url, backfill, id_ok, url_ok)
        {
            out.push(FeedConfig {
                id: id.value,
                url: url.value,
                title,
                interval: interval.unwrap_or(default_interval),
                backfill,
                schedule_hints,
                full_text,
            });
        }
    }
    out
}

/// A feed's `full_text` keys: `None` unless `full_text = true`; the bounds
/// are read (and checked) either way.
fn read_full_text(
    r: &mut Reporter,
    f: &mut Fields,
    daemon: &DaemonConfig,
) -> Option<FullTextConfig> {
    let on = f.bool(r, "full_text").unwrap_or(false);
    let max_bytes = f.size(r, "full_text_max_bytes");
    let max_articles = f.integer(r, "full_text_max_articles", 1..=200);
    let budget = match f.duration(r, "full_text_budget") {
        Some(v) if v.value.is_zero() || v.value > Duration::from_secs(600) => {
            r.error(
                v.pos,
                "`full_text_budget` must be longer than 0s and at most 10m",
            );
            None
        }
        v => v.map(|v| v.value),
    };
    on.then(|| FullTextConfig {
        max_bytes: max_bytes.unwrap_or(daemon.max_feed_bytes),
        max_articles: max_articles.map_or(20, |n| n as usize),
        budget: budget.unwrap_or(Duration::from_secs(60)),
    })
}

fn read_sinks(
    r: &mut Reporter,
    source: &Source,
    tables: &[&toml_edit::Table],
    dir: &Path,
) -> Vec<SinkConfig> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    for t in tables {
        let (mut f, id) = identified(r, source, t, "sink");
        let ty = f.required_string(r, "type");
        let cap = f
            .integer(r, "snippet_max_chars", 40..=10_000)
            .map(|n| n as usize);
        let retry = sinks::read_retry(r, &mut f);
        let flow = sinks::read_flow(r, &mut f);
        let keys = |own: &[&'static str]| -> Vec<&'static str> {
            let mut k = vec!["id", "type", "snippet_max_chars"];
            k.extend_from_slice(sinks::RETRY_KEYS);
            k.extend_from_slice(sinks::FLOW_KEYS);
            k.extend_from_slice(own);
            k
        };
        let kind = match ty.as_ref().map(|t| t.value.as_str()) {
            Some("stdout") => {
                let color = match f.string(r, "color") {
                    None => Some(ColorMode::Auto),
                    Some(s) => match s.value.as_str() {
                        "auto" => Some(ColorMode::Auto),
                        "always" => Some(ColorMode::Always),
                        "never" => Some(ColorMode::Never),
                        other => {
                            r.error(
                                s.pos,
                                format!("`color` must be \"auto\", \"always\" or \"never\", found \"{other}\""),
                            );
                            None
                        }
                    },
                };
                f.finish(r, &keys(&["color"]));
                color.map(|color| SinkKind::Stdout { color })
            }
            Some("jsonl") => {
                let path = f.required_string(r, "path");
                f.finish(r, &keys(&["path"]));
                path.map(|p| SinkKind::Jsonl {
                    path: reader::resolve(dir, &p.value),
                })
            }
            Some("webhook") => {
                let w = sinks::read_webhook(r, &mut f, dir);
                f.finish(r, &keys(sinks::WEBHOOK_KEYS));
                w.map(SinkKind::Webhook)
            }
            Some("exec") => {
                let e = sinks::read_exec(r, &mut f, dir);
                f.finish(r, &keys(&["command", "timeout"]));
                e.map(|(command, timeout)| SinkKind::Exec { command, timeout })
            }
            Some("desktop") => {
                let desktop = read_desktop(r, &mut f);
                f.finish(r, &keys(DESKTOP_KEYS));
                desktop.map(SinkKind::Desktop)
            }
            Some("email") => {
                let e = email::read_email(r, &mut f, dir);
                f.finish(r, &keys(email::EMAIL_KEYS));
                e.map(SinkKind::Email)
            }
            Some(other) => {
                if let Some(t) = &ty {
                    r.error(
                        t.pos,
                        format!("unknown sink type \"{other}\"; expected one of: stdout, jsonl, webhook, exec, desktop, email"),
                    );
                }
                None
            }
            None => None,
        };
        let id_ok = id
            .as_ref()
            .is_some_and(|id| check_id(r, id, "sink", &mut ids));
        if let (Some(id), Some(kind), true) = (id, kind, id_ok) {
            out.push(SinkConfig {
                id: id.value,
                kind,
                snippet_max_chars: cap,
                retry,
                flow,
            });
        }
    }
    out
}

const DESKTOP_KEYS: &[&str] = &["app_name", "icon", "timeout", "expire", "actions"];

/// The longest `timeout` a desktop sink may set: well inside the
/// deliverer's own bound on one delivery.
const DESKTOP_MAX_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest `expire`: a day (the spec's field is milliseconds in an i32).
const DESKTOP_MAX_EXPIRE: Duration = Duration::from_secs(86_400);

/// The keys of a `type = "desktop"` sink; `None` after any error (each one
/// reported at its value).
fn read_desktop(r: &mut Reporter, f: &mut Fields) -> Option<DesktopConfig> {
    let mut d = DesktopConfig::default();
    let mut ok = true;
    let printable = |s: &str| !s.trim().is_empty() && !s.chars().any(char::is_control);
    if let Some(v) = f.string(r, "app_name") {
        if printable(&v.value) && v.value.chars().count() <= 64 {
            d.app_name = v.value;
        } else {
            r.error(
                v.pos,
                "`app_name` must be 1-64 characters of printable text",
            );
            ok = false;
        }
    }
    if let Some(v) = f.string(r, "icon") {
        if printable(&v.value) {
            d.icon = Some(v.value);
        } else {
            r.error(
                v.pos,
                "`icon` must be an icon name (\"dialog-information\") or an absolute path",
            );
            ok = false;
        }
    }
    if let Some(v) = f.duration(r, "timeout") {
        if v.value.is_zero() || v.value > DESKTOP_MAX_TIMEOUT {
            r.error(
                v.pos,
                format!(
                    "`timeout` must be longer than 0s and at most {}s",
                    DESKTOP_MAX_TIMEOUT.as_secs()
                ),
            );
            ok = false;
        } else {
            d.timeout = v.value;
        }
    }
    if let Some(v) = f.string(r, "expire") {
        if v.value == "never" {
            d.expire = Expire::Never;
        } else {
            match reader::parse_duration(&v.value) {
                Ok(t) if !t.is_zero() && t <= DESKTOP_MAX_EXPIRE => d.expire = Expire::After(t),
                Ok(_) => {
                    r.error(
                        v.pos,
                        "`expire` must be longer than 0s and at most 1d, or \"never\"",
                    );
                    ok = false;
                }
                Err(e) => {
                    r.error(v.pos, format!("`expire`: {e}, or \"never\""));
                    ok = false;
                }
            }
        }
    }
    if let Some(b) = f.bool(r, "actions") {
        d.actions = b;
    }
    ok.then_some(d)
}

const RULE_KEYS: &[&str] = &[
    "id",
    "query",
    "any",
    "all",
    "none",
    "feeds",
    "severity",
    "sinks",
    "enabled",
    "throttle",
    "on_repeat",
];

/// Where each part of a rule was written, to place engine errors.
struct RuleSpans {
    source: usize,
    header: Pos,
    query: Option<Pos>,
    any: Vec<Pos>,
    all: Vec<Pos>,
    none: Vec<Pos>,
    feeds: Vec<Pos>,
}

struct AliasSpans {
    source: usize,
    key: Pos,
    elements: Vec<Pos>,
}

/// Every rule and alias of every rule file, read but not yet compiled.
#[derive(Default)]
struct RuleBook {
    sources: Vec<Source>,
    rules: Vec<(RuleSpec, RuleMeta, bool, RuleSpans)>,
    aliases: crate::rules::Aliases,
    alias_spans: HashMap<String, AliasSpans>,
    ids: HashMap<String, (PathBuf, usize)>,
    diags: Vec<Diagnostic>,
}

impl RuleBook {
    /// Reads one rule file: `[aliases]` and `[[rule]]` tables. Problems of
    /// shape (unknown keys, wrong types, unknown sinks, duplicate ids) are
    /// reported here; the language itself is checked by [`RuleBook::compile`].
    fn read_file(&mut self, source: Source, sink_ids: &HashSet<&str>) {
        let si = self.sources.len();
        let doc = match reader::parse(&source) {
            Ok(d) => d,
            Err(d) => {
                self.diags.push(d);
                self.sources.push(source);
                return;
            }
        };
        let mut r = Reporter::new(&source);
        let mut top = Fields::new(&source, doc.as_table(), "a rules file");
        let tables = top.tables(&mut r, "rule");
        let aliases = top.table(&mut r, "aliases");
        top.finish(&mut r, &["aliases", "rule"]);
        if let Some(t) = aliases {
            for (name, item) in t.iter() {
                let key = t
                    .key(name)
                    .and_then(|k| k.span())
                    .map_or_else(|| reader::item_pos(item), |s| Pos(s.start));
                let mut f = Fields::new(&source, t, "[aliases]");
                let Some(list) = f.string_list(&mut r, name) else {
                    continue;
                };
                if let Some(prev) = self.alias_spans.get(name) {
                    let (line, _) = self.sources[prev.source].line_col(prev.key.0);
                    r.error(
                        key,
                        format!(
                            "duplicate alias \"{name}\" (first defined at {}:{line})",
                            self.sources[prev.source].path.display()
                        ),
                    );
                    continue;
                }
                self.alias_spans.insert(
                    name.to_string(),
                    AliasSpans {
                        source: si,
                        key,
                        elements: list.iter().map(|e| e.pos).collect(),
                    },
                );
                self.aliases.insert(
                    name.to_string(),
                    list.into_iter().map(|e| e.value).collect(),
                );
            }
        }
        for t in tables {
            self.read_rule(&mut r, &source, si, t, sink_ids);
        }
        self.diags.append(&mut r.diags);
        self.sources.push(source);
    }

    fn read_rule(
        &mut self,
        r: &mut Reporter,
        source: &Source,
        si: usize,
        t: &toml_edit::Table,
        sink_ids: &HashSet<&str>,
    ) {
        let (mut f, id) = identified(r, source, t, "rule");
        let query = f.string(r, "query");
        let any = f.string_list(r, "any").unwrap_or_default();
        let all = f.string_list(r, "all").unwrap_or_default();
        let none = f.string_list(r, "none").unwrap_or_default();
        let feeds = f.string_list(r, "feeds").unwrap_or_default();
        let severity = match f.string(r, "severity") {
            None => Severity::Normal,
            Some(s) => Severity::parse(&s.value).unwrap_or_else(|| {
                r.error(
                    s.pos,
                    format!(
                        "unknown severity \"{}\"; expected low, normal, high or critical",
                        s.value
                    ),
                );
                Severity::Normal
            }),
        };
        let sinks = f.string_list(r, "sinks");
        if let Some(list) = &sinks {
            if list.is_empty() {
                r.error(
                    f.header(),
                    "`sinks = []` sends this rule nowhere; remove the key to use every sink, or set enabled = false",
                );
            }
            for s in list {
                if !sink_ids.contains(s.value.as_str()) {
                    let mut known: Vec<&str> = sink_ids.iter().copied().collect();
                    known.sort_unstable();
                    r.error(
                        s.pos,
                        format!(
                            "unknown sink \"{}\"; configured sinks: {}",
                            s.value,
                            if known.is_empty() {
                                "(none)".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
            }
        }
        let enabled = f.bool(r, "enabled").unwrap_or(true);
        let throttle = match f.duration(r, "throttle") {
            Some(d) if d.value < Duration::from_secs(1) => {
                r.error(d.pos, "`throttle` must be at least 1s");
                None
            }
            Some(d) => Some(d.value),
            None => None,
        };
        let on_repeat = match f.string(r, "on_repeat") {
            Some(v) => match v.value.as_str() {
                "drop" => OnRepeat::Drop,
                "digest" => OnRepeat::Digest,
                "alert" => OnRepeat::Alert,
                other => {
                    r.error(
                        v.pos,
                        format!("unknown on_repeat \"{other}\"; expected drop, digest or alert"),
                    );
                    OnRepeat::Drop
                }
            },
            None => OnRepeat::Drop,
        };
        let header = f.header();
        f.finish(r, RULE_KEYS);

        let Some(id) = id else { return };
        if let Some(e) = id_error("rule", &id.value) {
            r.error(id.pos, e);
            return;
        }
        let (line, _) = source.line_col(id.pos.0);
        if let Some((file, first_line)) = self.ids.get(&id.value) {
            r.error(
                id.pos,
                format!(
                    "duplicate rule id \"{}\" (first defined at {}:{})",
                    id.value,
                    file.display(),
                    first_line
                ),
            );
            return;
        }
        self.ids
            .insert(id.value.clone(), (source.path.clone(), line));
        let values = |l: &[Spanned<String>]| l.iter().map(|s| s.value.clone()).collect();
        let positions = |l: &[Spanned<String>]| l.iter().map(|s| s.pos).collect();
        let spec = RuleSpec {
            id: id.value.clone(),
            query: query.as_ref().map(|q| q.value.clone()),
            any: values(&any),
            all: values(&all),
            none: values(&none),
            feeds: values(&feeds),
        };
        let spans = RuleSpans {
            source: si,
            header,
            query: query.map(|q| q.pos),
            any: positions(&any),
            all: positions(&all),
            none: positions(&none),
            feeds: positions(&feeds),
        };
        let meta = RuleMeta {
            id: id.value,
            severity,
            sinks: sinks.map(|l| l.into_iter().map(|s| s.value).collect()),
            throttle,
            on_repeat,
            file: source.path.clone(),
        };
        self.rules.push((spec, meta, enabled, spans));
    }

    /// Places an engine error or warning in its file.
    fn locate(&self, at: &crate::rules::RuleLocation, message: &str, prefix: &str) -> Diagnostic {
        let (si, base, label) = match (at.rule, &at.alias) {
            (Some(i), _) if i < self.rules.len() => {
                let (spec, _, _, sp) = &self.rules[i];
                let list = match at.list {
                    "any" => Some(&sp.any),
                    "all" => Some(&sp.all),
                    "none" => Some(&sp.none),
                    "feeds" => Some(&sp.feeds),
                    _ => None,
                };
                let elem = at.index.and_then(|i| list.and_then(|l| l.get(i))).copied();
                let base = match (at.list, elem) {
                    ("query", _) => sp.query,
                    (_, Some(p)) => Some(p),
                    _ => None,
                };
                (
                    sp.source,
                    base.ok_or(sp.header),
                    format!("rule \"{}\"", spec.id),
                )
            }
            (_, Some(name)) => match self.alias_spans.get(name) {
                Some(a) => {
                    let elem = at.index.and_then(|i| a.elements.get(i)).copied();
                    (a.source, elem.ok_or(a.key), format!("alias \"{name}\""))
                }
                None => (0, Err(Pos(0)), format!("alias \"{name}\"")),
            },
            _ => (0, Err(Pos(0)), "rules".to_string()),
        };
        let Some(src) = self.sources.get(si) else {
            return Diagnostic {
                file: PathBuf::new(),
                line: 1,
                col: 1,
                message: format!("{prefix}{label}: {message}"),
            };
        };
        let at_byte = match base {
            // Inside a string value: follow the TOML quoting to the byte.
            Ok(p) => {
                let raw = src.text.get(p.0..).unwrap_or("");
                p.0 + at
                    .offset
                    .map_or(0, |o| reader::string_offset_in_source(raw, o))
            }
            Err(header) => header.0,
        };
        let (line, col) = src.line_col(at_byte);
        Diagnostic {
            file: src.path.clone(),
            line,
            col,
            message: format!("{prefix}{label}: {message}"),
        }
    }

    /// Compiles every rule (disabled ones too, so their errors show) and
    /// returns the enabled set.
    #[allow(clippy::type_complexity)]
    fn compile(self) -> Result<(RuleSet, Vec<RuleMeta>, Vec<Diagnostic>, usize), ConfigErrors> {
        let all: Vec<RuleSpec> = self.rules.iter().map(|(s, ..)| s.clone()).collect();
        let (full, warnings) = RuleSet::compile(all, &self.aliases).map_err(|errs| {
            ConfigErrors(
                errs.iter()
                    .map(|e| self.locate(&e.at, &e.message, ""))
                    .collect(),
            )
        })?;
        let warnings: Vec<Diagnostic> = warnings
            .iter()
            .map(|w| self.locate(&w.at, &w.message, "warning: "))
            .collect();
        let disabled = self.rules.iter().filter(|(_, _, on, _)| !on).count();
        let (set, metas) = if disabled == 0 {
            (full, self.rules.into_iter().map(|(_, m, ..)| m).collect())
        } else {
            let (specs, metas): (Vec<RuleSpec>, Vec<RuleMeta>) = self
                .rules
                .into_iter()
                .filter(|(_, _, on, _)| *on)
                .map(|(s, m, ..)| (s, m))
                .unzip();
            let (set, _) = RuleSet::compile(specs, &self.aliases).map_err(|errs| {
                ConfigErrors(
                    errs.into_iter()
                        .map(|e| Diagnostic {
                            file: PathBuf::new(),
                            line: 1,
                            col: 1,
                            message: e.message,
                        })
                        .collect(),
                )
            })?;
            (set, metas)
        };
        Ok((set, metas, warnings, disabled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of a config that must not load, as printed.
    fn load_errors(main: &str, rules: &str) -> Vec<String> {
        match load_str(main, rules) {
            Ok(_) => panic!("config loaded but should not"),
            Err(errs) => errs.0.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn load_str(main: &str, rules: &str) -> Result<Config, ConfigErrors> {
        let rules = rules.to_string();
        load_from(
            Source {
                path: "/cfg/wirewatch.toml".into(),
                text: main.into(),
            },
            move |p, _| {
                Ok(Source {
                    path: p.to_path_buf(),
                    text: rules.clone(),
                })
            },
        )
    }

    const MAIN: &str = r#"
[daemon]
poll_interval = "5m"
state_dir = "state"
rules = ["rules.toml"]

[[feed]]
id = "wire"
url = "http://127.0.0.1:1/feed.xml"
backfill = "all"

[[sink]]
id = "out"
type = "jsonl"
path = "alerts.jsonl"
"#;

    #[test]
    fn snippet_length_per_sink_kind() {
        let main = format!(
            "{MAIN}\n[[sink]]\nid = \"desk\"\ntype = \"desktop\"\n\n\
             [[sink]]\nid = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\n\
             [[sink]]\nid = \"short\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsnippet_max_chars = 120\n"
        );
        let c = load_str(&main, "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n").unwrap();
        assert_eq!(
            c.snippet_cap("out"),
            c.daemon.snippet_max_chars,
            "jsonl: the [daemon] default"
        );
        assert_eq!(c.snippet_cap("desk"), DESKTOP_SNIPPET);
        assert_eq!(c.snippet_cap("hook"), MESSAGE_SNIPPET);
        assert_eq!(c.snippet_cap("short"), 120, "the sink's own setting wins");
    }

    #[test]
    fn email_sink_defaults() {
        let main = format!(
            "{MAIN}\n[[sink]]\nid = \"mail\"\ntype = \"email\"\nhost = \"smtp.example.test\"\n\
             from = \"Desk <alerts@example.test>\"\nto = \"desk@example.test\"\n\
             username = \"u\"\npassword = \"p\"\n\n\
             [[sink]]\nid = \"relay\"\ntype = \"email\"\nhost = \"localhost\"\ntls = \"none\"\n\
             from = \"a@example.test\"\nto = [\"b@example.test\", \"c@example.test\"]\n\
             username = \"u\"\npassword = \"p\"\ntimeout = \"5s\"\n"
        );
        let c = load_str(&main, "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n").unwrap();
        let SinkKind::Email(e) = &c.sinks[1].kind else {
            panic!("{:?}", c.sinks[1].kind)
        };
        assert_eq!((e.tls, e.port), (EmailTls::StartTls, 587));
        assert_eq!(e.to.len(), 1);
        assert_eq!(e.from.email.to_string(), "alerts@example.test");
        assert_eq!(e.subject, email::DEFAULT_SUBJECT);
        assert_eq!(e.timeout, Duration::from_secs(30));
        assert_eq!(e.endpoint(), "smtp://smtp.example.test:587");
        assert!(
            !format!("{e:?}").contains("\"p\""),
            "the password never prints"
        );
        let SinkKind::Email(r) = &c.sinks[2].kind else {
            panic!("{:?}", c.sinks[2].kind)
        };
        assert_eq!((r.tls, r.port, r.to.len()), (EmailTls::None, 25, 2));
    }

    #[test]
    fn valid_config_loads_with_resolved_paths() {
        let c = load_str(
            MAIN,
            "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\nseverity = \"high\"\n",
        )
        .unwrap();
        assert_eq!(c.daemon.state_dir, PathBuf::from("/cfg/state"));
        assert_eq!(c.daemon.poll_interval, Duration::from_secs(300));
        assert_eq!(c.feeds[0].interval, Duration::from_secs(300));
        assert_eq!(c.feeds[0].backfill, Backfill::All);
        assert!(
            matches!(&c.sinks[0].kind, SinkKind::Jsonl { path } if path == Path::new("/cfg/alerts.jsonl"))
        );
        assert_eq!(c.rule_meta[0].severity, Severity::High);
        assert_eq!(c.sinks_for_rule(0), vec!["out"]);
        assert_eq!(c.rules.len(), 1);
    }

    #[test]
    fn desktop_sink_defaults_and_keys() {
        let rules = "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n";
        let c = load_str(
            &format!("{MAIN}\n[[sink]]\nid = \"desk\"\ntype = \"desktop\"\n"),
            rules,
        )
        .unwrap();
        assert!(matches!(&c.sinks[1].kind, SinkKind::Desktop(d) if *d == DesktopConfig::default()));
        assert_eq!(c.sinks[1].kind.type_name(), "desktop");
        let c = load_str(
            &format!(
                "{MAIN}\n[[sink]]\nid = \"desk\"\ntype = \"desktop\"\napp_name = \"Wire\"\nicon = \"dialog-warning\"\ntimeout = \"1500ms\"\nexpire = \"never\"\nactions = false\n"
            ),
            rules,
        )
        .unwrap();
        let SinkKind::Desktop(d) = &c.sinks[1].kind else {
            panic!("not a desktop sink: {:?}", c.sinks[1].kind)
        };
        assert_eq!(
            *d,
            DesktopConfig {
                app_name: "Wire".into(),
                icon: Some("dialog-warning".into()),
                timeout: Duration::from_millis(1500),
                expire: Expire::Never,
                actions: false,
            }
        );
    }

    #[test]
    fn desktop_sink_errors_have_positions() {
        let main = format!(
            "{MAIN}\n[[sink]]\nid = \"desk\"\ntype = \"desktop\"\napp_name = \"\"\ntimeout = \"0\"\nexpire = \"soon\"\nactions = \"yes\"\nicno = \"x\"\n\n[[sink]]\nid = \"d2\"\ntype = \"desktop\"\ntimeout = \"1m\"\nexpire = \"2d\"\n\n[[sink]]\nid = \"d3\"\ntype = \"dekstop\"\n"
        );
        let got = load_errors(&main, "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n");
        assert_eq!(
            got,
            vec![
                "/cfg/wirewatch.toml:20:12: `app_name` must be 1-64 characters of printable text",
                "/cfg/wirewatch.toml:21:11: `timeout` must be longer than 0s and at most 20s",
                "/cfg/wirewatch.toml:22:10: `expire`: invalid duration \"soon\": expected a number with a unit, as in \"90s\", \"5m\", \"2h\", \"1d\", or \"never\"",
                "/cfg/wirewatch.toml:23:11: `actions` must be true or false, found a string",
                "/cfg/wirewatch.toml:24:1: unknown key `icno` in sink \"desk\"; did you mean `icon`?",
                "/cfg/wirewatch.toml:29:11: `timeout` must be longer than 0s and at most 20s",
                "/cfg/wirewatch.toml:30:10: `expire` must be longer than 0s and at most 1d, or \"never\"",
                "/cfg/wirewatch.toml:34:8: unknown sink type \"dekstop\"; expected one of: stdout, jsonl, webhook, exec, desktop, email",
            ]
        );
    }

    #[test]
    fn every_error_is_reported_with_position() {
        let main = MAIN.replace(
            "poll_interval = \"5m\"",
            "poll_interval = \"5 minutes\"\nfrobnicate = 1",
        );
        let rules = "[[rule]]\nid = \"a\"\nany = [\"Kursk\"]\nsinkz = [\"out\"]\n\n[[rule]]\nid = \"b\"\n\n[[rule]]\nid = \"a\"\nany = [\"x\"]\nsinks = [\"nowhere\"]\n";
        let got = load_errors(&main, rules);
        assert_eq!(
            got,
            vec![
                "/cfg/wirewatch.toml:3:17: `poll_interval`: invalid duration \"5 minutes\": expected a number with a unit, as in \"90s\", \"5m\", \"2h\", \"1d\"",
                "/cfg/wirewatch.toml:4:1: unknown key `frobnicate` in [daemon]; expected one of: poll_interval, max_concurrent_fetches, max_fetches_per_host, min_host_spacing, state_dir, rules, fetch_timeout, connect_timeout, max_feed_bytes, max_items_per_feed, max_redirects, snippet_max_chars, seen_retention, user_agent, archive_days, archive_max_items, story_window, dead_letter_retention",
                "/cfg/rules.toml:4:1: unknown key `sinkz` in rule \"a\"; did you mean `sinks`?",
                "/cfg/rules.toml:6:1: rule \"b\": rule needs a `query` or at least one term in `any` or `all`",
                "/cfg/rules.toml:10:6: duplicate rule id \"a\" (first defined at /cfg/rules.toml:2)",
                "/cfg/rules.toml:12:10: unknown sink \"nowhere\"; configured sinks: out",
            ]
        );
    }

    #[test]
    fn story_window_and_on_repeat() {
        let rules = "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n\n\
                     [[rule]]\nid = \"d\"\nany = [\"Orsk\"]\non_repeat = \"digest\"\n";
        let c = load_str(MAIN, rules).unwrap();
        assert_eq!(c.daemon.story_window, Duration::from_secs(48 * 3600));
        assert_eq!(c.rule_meta[0].on_repeat, OnRepeat::Drop, "the default");
        assert_eq!(c.rule_meta[1].on_repeat, OnRepeat::Digest);
        let main = MAIN.replace("poll_interval = \"5m\"", "story_window = \"0s\"");
        assert!(load_str(&main, rules)
            .unwrap()
            .daemon
            .story_window
            .is_zero());
        let main = MAIN.replace("poll_interval = \"5m\"", "story_window = \"40d\"");
        let bad_rules = "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\non_repeat = \"twice\"\n";
        assert_eq!(
            load_errors(&main, bad_rules),
            vec![
                "/cfg/wirewatch.toml:3:16: `story_window` must be at most 30d (0s switches clustering off)",
                "/cfg/rules.toml:4:13: unknown on_repeat \"twice\"; expected drop, digest or alert",
            ]
        );
    }

    #[test]
    fn repeat_digest_sets_when_a_held_repeat_goes_out() {
        let rules = "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\non_repeat = \"digest\"\n";
        let main = format!(
            "{MAIN}repeat_digest = \"2s\"\n\n[[sink]]\nid = \"plain\"\ntype = \"stdout\"\n\n\
             [[sink]]\nid = \"batched\"\ntype = \"stdout\"\ndigest = \"10m\"\nrepeat_digest = \"5s\"\n"
        );
        let c = load_str(&main, rules).unwrap();
        let now = chrono::Utc::now();
        let at = |sink| crate::cluster::hold_until(&c, sink, now) - now;
        assert_eq!(at("out"), chrono::Duration::seconds(2));
        assert_eq!(at("plain"), chrono::Duration::hours(1), "the default");
        assert_eq!(
            at("batched"),
            chrono::Duration::minutes(10),
            "a sink's digest period wins"
        );
        let main = format!("{MAIN}repeat_digest = \"0s\"\n");
        assert_eq!(
            load_errors(&main, rules),
            vec!["/cfg/wirewatch.toml:16:17: `repeat_digest` must be at least 1s"]
        );
    }

    #[test]
    fn mistyped_rules_key_is_one_error_and_missing_files_another() {
        let rules = "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n";
        let main = MAIN.replace("rules = [\"rules.toml\"]", "rules = \"rules.toml\"");
        let got = load_errors(&main, rules);
        assert_eq!(
            got,
            vec!["/cfg/wirewatch.toml:5:9: `rules` must be a list of strings, found a string"]
        );
        let main = MAIN.replace("rules = [\"rules.toml\"]", "rules = []");
        let got = load_errors(&main, rules);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("no rule files"), "{got:?}");
    }

    #[test]
    fn feed_errors() {
        let main = MAIN
            .replace(
                "url = \"http://127.0.0.1:1/feed.xml\"",
                "url = \"ftp://x\"\ninterval = \"0s\"",
            )
            .replace("backfill = \"all\"", "backfill = \"yesterday\"");
        let got = load_errors(&main, "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n");
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("/cfg/wirewatch.toml:9:7: feed url \"ftp://x\""));
        assert!(got[1].starts_with("/cfg/wirewatch.toml:10:12: `interval` must be longer than 0s"));
        assert!(got[2].starts_with("/cfg/wirewatch.toml:11:12: `backfill`"));
    }

    #[test]
    fn http_endpoint_is_off_by_default_and_validated_with_places() {
        let rules = "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n";
        assert_eq!(load_str(MAIN, rules).unwrap().http, None);
        let on = load_str(
            &format!("{MAIN}\n[http]\nlisten = \"127.0.0.1:9797\"\n"),
            rules,
        );
        assert_eq!(
            on.unwrap().http.map(|h| h.listen.to_string()),
            Some("127.0.0.1:9797".to_string())
        );
        let v6 = load_str(&format!("{MAIN}\n[http]\nlisten = \"[::1]:9797\"\n"), rules);
        assert!(v6
            .unwrap()
            .http
            .is_some_and(|h| h.listen.ip().is_loopback()));

        // `[http]` starts two lines below MAIN's last line.
        let at = MAIN.lines().count() + 2;
        let got = load_errors(
            &format!("{MAIN}\n[http]\nlisten = \"localhost:9797\"\nlsiten = 1\n"),
            rules,
        );
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with(&format!(
                "/cfg/wirewatch.toml:{}:10: `listen` must be an IP address and port",
                at + 1
            )),
            "{got:#?}"
        );
        assert_eq!(
            got[1],
            format!(
                "/cfg/wirewatch.toml:{}:1: unknown key `lsiten` in [http]; did you mean `listen`?",
                at + 2
            )
        );
        let got = load_errors(
            &format!("{MAIN}\n[http]\nlisten = \"127.0.0.1:0\"\n"),
            rules,
        );
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].starts_with(&format!(
                "/cfg/wirewatch.toml:{}:10: `listen` needs a fixed port",
                at + 1
            )),
            "{got:#?}"
        );
        let got = load_errors(&format!("{MAIN}\n[http]\n"), rules);
        assert_eq!(
            got,
            vec![format!(
                "/cfg/wirewatch.toml:{at}:1: [http] is missing `listen`"
            )]
        );
        let got = load_errors(&format!("http = \"127.0.0.1:9797\"\n{MAIN}"), rules);
        assert!(
            got.len() == 1 && got[0].contains("`http` must be a table like [http]"),
            "{got:#?}"
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let errs = load_str("[daemon\n", "").unwrap_err();
        assert_eq!(errs.0.len(), 1);
        assert!(
            errs.0[0].to_string().starts_with("/cfg/wirewatch.toml:1:"),
            "{}",
            errs.0[0]
        );
    }

    #[test]
    fn disabled_rules_are_validated_but_not_loaded() {
        let c = load_str(MAIN, "[[rule]]\nid = \"k\"\nany = [\"Kursk\"]\n\n[[rule]]\nid = \"off\"\nany = [\"x\"]\nenabled = false\n").unwrap();
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.disabled_rules, 1);
        let errs = load_str(MAIN, "[[rule]]\nid = \"off\"\nenabled = false\n").unwrap_err();
        assert!(errs.0[0].message.contains("at least one term"), "{errs}");
    }
}
