//! The `wirewatch` command line: argument parsing, logging set-up and exit
//! codes. Everything else lives in the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use clap::{CommandFactory as _, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use wirewatch::config::{self, Config, DaemonConfig};
use wirewatch::fetch::{FetchOutcome, Fetcher};
use wirewatch::model::{AlertFeed, ParsedFeed};
use wirewatch::parse::{parse_feed, ParseOptions};
use wirewatch::state::{FeedStatus, SinkStatus, State, Validators};
use wirewatch::{daemon, deliver, demo, pipeline, service, sink};

mod man;

/// Exit code for configuration errors (`check`, and any command given a bad
/// config).
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "wirewatch",
    version,
    about = "Watches news wire feeds and alerts the moment a story you care about appears"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Main config file. Default: $WIREWATCH_CONFIG, then
    /// $XDG_CONFIG_HOME/wirewatch/wirewatch.toml (~/.config/...), then
    /// /etc/wirewatch/wirewatch.toml.
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll every feed on its schedule until SIGTERM/SIGINT.
    Run(ConfigArg),
    /// Poll every feed once, deliver the alerts, exit.
    Once {
        #[command(flatten)]
        config: ConfigArg,
        /// Exit 1 if any feed failed.
        #[arg(long)]
        strict: bool,
    },
    /// Validate the config and rule files.
    Check(ConfigArg),
    /// Print the items of a feed (file path or http(s) URL) as JSON lines.
    Parse {
        /// A file path or an http(s) URL.
        source: String,
    },
    /// Show which rules match which items of the given feeds; touches no
    /// state and no sink. A configured `full_text` feed (given by its URL)
    /// is matched on its article pages, as the daemon does.
    Match {
        #[command(flatten)]
        config: ConfigArg,
        /// Print one alert object per line.
        #[arg(long)]
        json: bool,
        /// Feed id to match as (for rules scoped with `feeds`). Default: the
        /// configured feed with this URL, else "source".
        #[arg(long, value_name = "ID")]
        feed: Option<String>,
        /// Feed files or http(s) URLs.
        #[arg(required = true)]
        sources: Vec<String>,
    },
    /// Run the rules of a config (the live one or an edited copy) over the
    /// archived items: what each rule would have matched, with snippets.
    /// Sends nothing, queues nothing.
    Backtest {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        archive: ArchiveArgs,
        /// Only this rule.
        #[arg(long, value_name = "ID")]
        rule: Option<String>,
        /// Matches shown per rule (all are counted).
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
    },
    /// Search the archived items with a query in the rule language.
    Search {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        archive: ArchiveArgs,
        /// The query, e.g. 'Курск NEAR/5 (сапер* OR deminers)'.
        query: String,
        /// Only items of this feed.
        #[arg(long, value_name = "ID")]
        feed: Option<String>,
        /// Results shown, newest first.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
    },
    /// Show each feed's health and the alerts waiting per sink.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON object per line: one per feed, then one per recent
        /// story (a `story` key instead of `feed`).
        #[arg(long)]
        json: bool,
    },
    /// List the alerts waiting or given up (dead letters) per sink; re-queue
    /// dead ones; send a test alert.
    Alerts(AlertsArgs),
    /// Import feeds from an OPML file into the config, or export the
    /// configured feeds as OPML.
    Feeds(FeedsArgs),
    /// Run the real pipeline against a bundled local feed server (~30 s).
    Demo,
    /// Write the manual pages (wirewatch.1, wirewatch-run.1, ...) generated
    /// from this command line into a directory (for packaging).
    #[command(hide = true)]
    Man {
        /// Directory to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Options shared by `backtest` and `search`.
#[derive(clap::Args)]
struct ArchiveArgs {
    /// Only items first seen within this long, e.g. 7d, 12h (default: the
    /// whole archive).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// The state directory (or its wirewatch.db) to read; default: the
    /// config's `state_dir` (useful with an edited copy of the config).
    #[arg(long, value_name = "PATH")]
    state: Option<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct FeedsArgs {
    /// Main config file (see `run --help`).
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: FeedsAction,
}

#[derive(Subcommand)]
enum FeedsAction {
    /// Append the OPML file's feeds to the config file as [[feed]] tables
    /// (comments and everything else kept), after validating the result.
    /// Feeds already configured (same URL) are skipped.
    Import {
        /// The OPML file.
        file: PathBuf,
        /// Fetch and parse each new feed first; feeds that fail are listed
        /// and left out.
        #[arg(long)]
        check: bool,
        /// Print what would be appended; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the configured feeds as OPML 2.0.
    Export,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
struct AlertsArgs {
    /// Main config file (see `run --help`).
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Only this sink.
    #[arg(long, value_name = "ID", global = true)]
    sink: Option<String>,
    /// One JSON object per alert (list).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: Option<AlertsAction>,
}

#[derive(Subcommand)]
enum AlertsAction {
    /// List pending and dead alerts per sink (the default).
    List,
    /// Re-queue dead letters (of one sink with --sink) and switch sinks
    /// that were switched off after a 410 back on; a running daemon picks
    /// them up within seconds.
    Retry,
    /// Send a sample alert straight to one sink (not through the queue) to
    /// check its set-up.
    Test {
        /// The sink id.
        sink: String,
    },
}

/// Logs go to stderr. Filter: `$WIREWATCH_LOG`, else `$RUST_LOG`, else
/// `default` (same syntax: `info`, `wirewatch=debug,reqwest=warn`, ...).
/// When stderr is the journal (started by systemd), lines carry a syslog
/// priority and no timestamp or colours ([`service::JournalFormat`]);
/// otherwise timestamps, and colours only on a terminal.
fn init_logging(default: &str) {
    use std::io::IsTerminal as _;
    let directives = ["WIREWATCH_LOG", "RUST_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    let filter = directives
        .and_then(|d| tracing_subscriber::EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if service::stderr_is_journal() {
        builder
            .with_ansi(false)
            .event_format(service::JournalFormat::default())
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

/// Async worker threads at most (one per core below that).
const MAX_WORKERS: usize = 4;

/// After the daemon returned, how long blocking calls still running (a
/// database call cut off by the shutdown deadline) may delay the exit.
const EXIT_TAIL: std::time::Duration = std::time::Duration::from_secs(2);

fn main() -> ExitCode {
    // Before any thread exists: it edits the environment.
    let sd = service::Systemd::take_from_env();
    let cli = Cli::parse();
    let level = match cli.command {
        Command::Run(_) => "info",
        Command::Demo => "warn",
        _ => "error",
    };
    init_logging(level);
    // Polling is I/O-bound; few workers are plenty, and each worker that
    // matches items keeps bounded per-thread caches (ARCHITECTURE.md).
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, MAX_WORKERS);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wirewatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(dispatch(cli.command, sd));
    rt.shutdown_timeout(EXIT_TAIL);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wirewatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config, printing every error; `None` means exit 2.
fn load_config(arg: &ConfigArg) -> Result<Option<Config>, anyhow::Error> {
    let path = config::locate(arg.config.as_deref()).map_err(anyhow::Error::msg)?;
    match config::load(&path) {
        Ok(c) => {
            // Rules that load but look wrong: said on every start, never fatal.
            for w in &c.warnings {
                eprintln!("{w}");
            }
            Ok(Some(c))
        }
        Err(errs) => {
            for d in &errs.0 {
                eprintln!("{d}");
            }
            eprintln!("wirewatch: {} error(s) in the configuration", errs.0.len());
            Ok(None)
        }
    }
}

fn shutdown_signal(cancel: CancellationToken) {
    tokio::spawn(async move {
        let term = async {
            #[cfg(unix)]
            {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            }
            #[cfg(not(unix))]
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        cancel.cancel();
    });
}

async fn dispatch(cmd: Command, sd: service::Systemd) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Run(arg) => {
            let Some(config) = load_config(&arg)? else {
                sd.status("configuration error");
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            // READY=1 comes from the daemon once state is open and its
            // tasks run; a failure here exits 1 without it.
            let ctx = daemon::context(Arc::new(config)).inspect_err(|e| {
                sd.status(&format!("cannot start: {e:#}"));
            })?;
            let cancel = CancellationToken::new();
            shutdown_signal(cancel.clone());
            daemon::run_supervised(ctx, cancel, sd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Once { config, strict } => {
            let Some(config) = load_config(&config)? else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            let ctx = daemon::context(Arc::new(config))?;
            let report = daemon::once(ctx).await?;
            for (feed, err) in &report.failed {
                eprintln!("wirewatch: feed {feed}: {err}");
            }
            for (feed, to) in &report.moved {
                eprintln!(
                    "wirewatch: feed {feed} moved permanently (HTTP 301/308) to {to}; polled there from now on; update `url` in the config"
                );
            }
            if let Some(kib) = peak_rss_kib() {
                tracing::info!(peak_rss_kib = kib, "memory high-water mark");
            }
            if report.undelivered > 0 {
                eprintln!(
                    "wirewatch: {} alert(s) could not be delivered yet; they stay queued",
                    report.undelivered
                );
            }
            if report.held > 0 {
                eprintln!(
                    "wirewatch: {} alert(s) held for a digest (see `wirewatch alerts`)",
                    report.held
                );
            }
            if report.dead > 0 {
                eprintln!(
                    "wirewatch: {} alert(s) gave up and were kept as dead letters (see `wirewatch alerts`)",
                    report.dead
                );
            }
            for s in &report.disabled_sinks {
                eprintln!(
                    "wirewatch: sink {s} is switched off: its endpoint answered 410 Gone (see `wirewatch alerts`; `wirewatch alerts retry --sink {s}` switches it on)"
                );
            }
            Ok(if strict && !report.failed.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Alerts(args) => alerts_command(args).await,
        Command::Feeds(args) => feeds_command(args).await,
        Command::Check(arg) => {
            let Some(c) = load_config(&arg)? else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            print_summary(&c);
            check_archive(&c);
            Ok(ExitCode::SUCCESS)
        }
        Command::Backtest {
            config,
            archive,
            rule,
            limit,
        } => {
            let Some(config) = load_config(&config)? else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            let rule = match rule {
                None => None,
                Some(id) => match config.rule_meta.iter().position(|m| m.id == id) {
                    Some(i) => Some(i),
                    None => {
                        let ids: Vec<&str> =
                            config.rule_meta.iter().map(|m| m.id.as_str()).collect();
                        anyhow::bail!("unknown rule \"{id}\"; enabled rules: {}", ids.join(", "))
                    }
                },
            };
            let since = since_arg(archive.since.as_deref())?;
            let state = open_archive(&config, archive.state.as_deref())?;
            let b = wirewatch::archive::backtest(&config, &state, since, rule, limit)?;
            wirewatch::archive::print_backtest(&mut std::io::stdout().lock(), &b, archive.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Search {
            config,
            archive,
            query,
            feed,
            limit,
        } => {
            let Some(config) = load_config(&config)? else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            let set = match wirewatch::archive::compile_query(&query, &config.aliases) {
                Ok(set) => set,
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{}", p.render(&query));
                    }
                    eprintln!("wirewatch: the query does not parse (see docs/rules.md)");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let node = wirewatch::rules::query::parse_query(&query).ok();
            let since = since_arg(archive.since.as_deref())?;
            let state = open_archive(&config, archive.state.as_deref())?;
            let r = wirewatch::archive::search(
                &state,
                &set,
                node.as_ref(),
                since,
                feed.as_deref(),
                limit,
                config.daemon.snippet_max_chars,
            )?;
            tracing::info!(prefilter = ?r.prefilter, examined = r.examined, found = r.found.len(), "search");
            wirewatch::archive::print_search(&mut std::io::stdout().lock(), &r, archive.json)?;
            if !archive.json {
                eprintln!(
                    "{} result(s); {} archived item(s) examined{}",
                    r.found.len(),
                    r.examined,
                    if r.prefilter.is_some() {
                        " (narrowed by the full-text index)"
                    } else {
                        ""
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Parse { source } => {
            let parsed = load_source(&source).await?;
            let mut out = std::io::stdout().lock();
            for w in &parsed.warnings {
                eprintln!("wirewatch: {source}: {w}");
            }
            for item in &parsed.items {
                serde_json::to_writer(&mut out, item)?;
                out.write_all(b"\n")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Match {
            config,
            json,
            feed,
            sources,
        } => {
            let Some(config) = load_config(&config)? else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            run_match(&config, json, feed.as_deref(), &sources).await
        }
        Command::Status { config, json } => {
            let Some(config) = load_config(&config)? else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            print_status(&config, json)
        }
        Command::Demo => {
            let cancel = CancellationToken::new();
            shutdown_signal(cancel.clone());
            demo::run(cancel).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            for page in man::write_pages(Cli::command(), &out)? {
                println!("{}", page.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_summary(c: &Config) {
    match c.warnings.len() {
        0 => println!("{}: OK", c.path.display()),
        n => println!("{}: OK, with {n} warning(s) above", c.path.display()),
    }
    println!(
        "  {} feed(s), {} sink(s), {} rule(s) in {} file(s){}",
        c.feeds.len(),
        c.sinks.len(),
        c.rules.len(),
        c.rule_files.len(),
        if c.disabled_rules > 0 {
            format!(" (+{} disabled)", c.disabled_rules)
        } else {
            String::new()
        }
    );
    // Keep it to one screen: list feeds one per line only when few.
    if c.feeds.len() <= 10 {
        for f in &c.feeds {
            println!(
                "  feed {:<24} every {:>6}s  {}",
                f.id,
                f.interval.as_secs(),
                f.url
            );
        }
    } else {
        let (lo, hi) = c.feeds.iter().fold((u64::MAX, 0), |(lo, hi), f| {
            (lo.min(f.interval.as_secs()), hi.max(f.interval.as_secs()))
        });
        println!("  feeds, polled every {lo}s to {hi}s:");
        let mut line = String::from("   ");
        for f in &c.feeds {
            if line.len() + f.id.len() > 76 {
                println!("{line}");
                line = String::from("   ");
            }
            line.push(' ');
            line.push_str(&f.id);
        }
        println!("{line}");
    }
    for s in &c.sinks {
        println!("  sink {:<24} {}", s.id, s.kind.type_name());
    }
    for (i, r) in c.rule_meta.iter().enumerate() {
        println!(
            "  rule {:<24} {:<8} -> {}",
            r.id,
            r.severity.as_str(),
            c.sinks_for_rule(i).join(", ")
        );
    }
    println!("  state: {}", c.state_file().display());
}

/// `check`'s archive section: per-rule match counts when the state file
/// exists and holds archived items. Never changes the exit code.
fn check_archive(c: &Config) {
    let file = c.state_file();
    if !file.exists() {
        return;
    }
    let counted = State::open(&file)
        .map_err(anyhow::Error::from)
        .and_then(|st| {
            Ok(wirewatch::archive::rule_counts(
                c,
                &st,
                wirewatch::archive::CHECK_MAX_ITEMS,
            )?)
        });
    match counted {
        Ok(Some(counts)) => {
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            if let Err(e) = wirewatch::archive::print_counts(&mut out, &mut err, c, &counts) {
                eprintln!("wirewatch: {e}");
            }
        }
        Ok(None) => println!("  archive: empty (no per-rule counts yet)"),
        Err(e) => eprintln!(
            "wirewatch: cannot read the archive in {}: {e:#}",
            file.display()
        ),
    }
}

/// `--since 7d` as the earliest first-seen time.
fn since_arg(since: Option<&str>) -> anyhow::Result<Option<chrono::DateTime<Utc>>> {
    let Some(s) = since else { return Ok(None) };
    let d = config::reader::parse_duration(s).map_err(|e| anyhow::anyhow!("--since {s:?}: {e}"))?;
    let d = chrono::Duration::from_std(d).map_err(|e| anyhow::anyhow!("--since {s:?}: {e}"))?;
    Ok(Some(Utc::now() - d))
}

/// The state file `backtest` and `search` read: `--state` (a directory
/// or the file itself), else the config's. Never created.
fn open_archive(c: &Config, over: Option<&Path>) -> anyhow::Result<State> {
    let file = match over {
        Some(p) if p.is_dir() => p.join("wirewatch.db"),
        Some(p) => p.to_path_buf(),
        None => c.state_file(),
    };
    if !file.exists() {
        anyhow::bail!(
            "no state at {} (wirewatch has not polled yet; --state points at another state directory)",
            file.display()
        );
    }
    Ok(State::open(&file)?)
}

/// Reads a feed from a file or URL and parses it.
async fn load_source(source: &str) -> anyhow::Result<ParsedFeed> {
    let lower = source.to_ascii_lowercase();
    let (body, charset, base) = if lower.starts_with("http://") || lower.starts_with("https://") {
        let fetcher = Fetcher::new(&DaemonConfig::default())?;
        match fetcher.fetch(source, &Validators::default()).await? {
            FetchOutcome::Fetched(f) => (f.body, f.charset, Some(f.final_url)),
            FetchOutcome::NotModified { status, .. } => {
                anyhow::bail!("{source}: unexpected HTTP {status}")
            }
        }
    } else {
        let body =
            std::fs::read(Path::new(source)).with_context(|| format!("cannot read {source}"))?;
        (body, None, None)
    };
    let opts = ParseOptions {
        base_url: base,
        ..ParseOptions::default()
    };
    parse_feed(&body, charset.as_deref(), &opts).map_err(|e| anyhow::anyhow!("{source}: {e}"))
}

async fn run_match(
    config: &Config,
    json: bool,
    feed_id: Option<&str>,
    sources: &[String],
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    // Story clusters across every item of this run (nothing stored).
    let mut stories = wirewatch::cluster::RunStories::new(config);
    for source in sources {
        let mut parsed = match load_source(source).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("wirewatch: {e:#}");
                failed = true;
                continue;
            }
        };
        let configured = config.feeds.iter().find(|f| &f.url == source);
        // A `full_text` feed is matched on its article pages, as the daemon
        // would (within the same caps and budget), so `match` explains the
        // daemon's alerts.
        if let Some((f, ft)) = configured.and_then(|f| f.full_text.as_ref().map(|ft| (f, ft))) {
            let fetcher = Fetcher::new(&config.daemon)?;
            let wanted: Vec<usize> = (0..parsed.items.len()).collect();
            let r = wirewatch::fulltext::enrich(
                &fetcher,
                &tokio::sync::Semaphore::new(1),
                &wirewatch::metrics::Metrics::new(),
                &f.id,
                ft,
                &mut parsed.items,
                &wanted,
            )
            .await;
            eprintln!(
                "wirewatch: {source}: full_text feed \"{}\": {} article page(s) extracted, {} failed (feed text used), {} skipped, {} over the time budget",
                f.id, r.extracted, r.failed, r.skipped, r.out_of_budget
            );
        }
        let id = feed_id
            .map(str::to_string)
            .or_else(|| configured.map(|f| f.id.clone()))
            .unwrap_or_else(|| "source".into());
        let feed = match configured {
            Some(f) if feed_id.is_none() => pipeline::alert_feed(f, &parsed),
            _ => AlertFeed {
                id,
                title: parsed.title.clone().unwrap_or_else(|| source.clone()),
                url: source.clone(),
            },
        };
        let mut matched_items = 0;
        for item in &parsed.items {
            let story = stories.observe(&feed.id, item, now);
            let alerts = pipeline::alerts_for_item(config, &feed, item, now);
            if alerts.is_empty() {
                continue;
            }
            matched_items += 1;
            let doc = pipeline::document(item, &feed.id);
            for (m, mut alert) in alerts {
                alert.story = story.clone();
                if json {
                    serde_json::to_writer(&mut out, &alert)?;
                    out.write_all(b"\n")?;
                } else {
                    let text = sink::render_alert(&alert, false);
                    writeln!(out, "{}", text.trim_end())?;
                    writeln!(out, "    why:")?;
                    for line in pipeline::explain(&config.rules, &doc, &m) {
                        writeln!(out, "      {line}")?;
                    }
                    if let Some(s) = &alert.story {
                        writeln!(out, "    {}", wirewatch::cluster::story_line(s))?;
                    }
                    writeln!(out)?;
                }
            }
        }
        if !json {
            writeln!(
                out,
                "{source}: {} item(s), {matched_items} matched (as feed \"{}\")",
                parsed.items.len(),
                feed.id
            )?;
        }
    }
    if !json {
        for line in stories.summary() {
            writeln!(out, "{line}")?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let file = config.state_file();
    let ids: Vec<String> = config.feeds.iter().map(|f| f.id.clone()).collect();
    // Status never creates state: without a file every feed is unpolled.
    let state = if file.exists() {
        Some(State::open(&file)?)
    } else {
        None
    };
    let statuses = match &state {
        Some(st) => st.feed_statuses(&ids)?,
        None => ids.iter().map(|id| FeedStatus::never_polled(id)).collect(),
    };
    let mut out = std::io::stdout().lock();
    if state.is_none() && !json {
        writeln!(
            out,
            "no state yet at {} (wirewatch has not polled)",
            file.display()
        )?;
    }
    for mut s in statuses {
        // A move applies only while the config names the URL it came from.
        let configured = config.feeds.iter().find(|f| f.id == s.feed);
        if let (Some(m), Some(f)) = (&s.moved, configured) {
            if !m.applies_to(&f.url) {
                s.moved = None;
            }
        }
        if json {
            serde_json::to_writer(&mut out, &s)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<24} {:<7} ok {}  tried {}  failures {}  seen {}  items {}  next {}{}{}{}",
                s.feed,
                s.last_status.map_or("-".into(), |c| c.to_string()),
                when(s.last_ok_at),
                when(s.last_attempt_at),
                s.consecutive_failures,
                s.seen_items,
                s.last_items.map_or("-".into(), |n| n.to_string()),
                when(s.next_poll_at),
                match (s.gone_at, s.consecutive_failures >= daemon::BROKEN_AFTER) {
                    (Some(t), _) => format!(
                        "\n    GONE: answered 410 Gone at {}; not polled until the next start or reload (remove it from the config)",
                        when(Some(t))
                    ),
                    (None, true) => format!(
                        "\n    BROKEN: {} failures in a row; polled with growing pauses (up to 6 h)",
                        s.consecutive_failures
                    ),
                    _ => String::new(),
                },
                s.moved
                    .as_ref()
                    .map(|m| format!(
                        "\n    MOVED: permanently redirected to {} (seen {}); polled there. Update `url` in the config",
                        m.to,
                        when(m.at)
                    ))
                    .unwrap_or_default(),
                // Error texts may quote a feed: no control or bidi
                // characters reach the terminal.
                s.last_error
                    .map(|e| format!(
                        "\n    last error: {}",
                        e.chars().filter_map(sink::shown).collect::<String>()
                    ))
                    .unwrap_or_default()
            )?;
        }
    }
    if let (Some(st), true) = (&state, json) {
        for story in wirewatch::cluster::status_stories(st, config, Utc::now())? {
            serde_json::to_writer(&mut out, &story)?;
            writeln!(out)?;
        }
    }
    if let (Some(st), false) = (&state, json) {
        let sink_ids: Vec<String> = config.sinks.iter().map(|s| s.id.clone()).collect();
        for s in st.sink_statuses(&sink_ids)? {
            write_sink_status(&mut out, config, &s)?;
        }
        let (items, queued) = st.alerts_on_day(Utc::now())?;
        writeln!(
            out,
            "today: {items} item(s) alerted, {queued} alert(s) queued; rules: {} loaded{}",
            config.rule_meta.len(),
            if config.disabled_rules > 0 {
                format!(", {} disabled", config.disabled_rules)
            } else {
                String::new()
            }
        )?;
        writeln!(out, "{}", archive_line(st, config)?)?;
        for line in wirewatch::cluster::status_lines(st, config, Utc::now())? {
            writeln!(out, "{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `status`'s archive line: how much it holds, over which days, and how
/// many items wait for the search index.
fn archive_line(st: &State, config: &Config) -> anyhow::Result<String> {
    let a = st.archive_stats(None)?;
    let (waiting, _) = st.archive_unindexed()?;
    let d = &config.daemon;
    let mut line = if d.archive_days == 0 {
        format!(
            "archive: off (archive_days = 0); {} item(s) left to prune",
            a.items
        )
    } else {
        format!(
            "archive: {} item(s) (keeps {} day(s), at most {}), first seen {} to {}",
            a.items,
            d.archive_days,
            d.archive_max_items,
            when(a.oldest),
            when(a.newest)
        )
    };
    if waiting > 0 {
        line.push_str(&format!(
            "; {waiting} waiting for the search index (searched all the same)"
        ));
    }
    Ok(line)
}

fn when(t: Option<chrono::DateTime<Utc>>) -> String {
    t.map_or("never".into(), |t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
}

fn write_sink_status(out: &mut impl Write, config: &Config, s: &SinkStatus) -> std::io::Result<()> {
    let configured = config.sinks.iter().any(|c| c.id == s.sink);
    writeln!(
        out,
        "sink {:<19} {} waiting{}, {} dead, {} delivered (last {}){}",
        s.sink,
        s.pending,
        if s.held > 0 {
            format!(" ({} held)", s.held)
        } else {
            String::new()
        },
        s.dead,
        s.delivered,
        when(s.last_delivery_at),
        if configured {
            ""
        } else {
            "  [no longer in the config]"
        }
    )?;
    if let Some(d) = &s.disabled {
        writeln!(
            out,
            "    SWITCHED OFF since {}: {} answered {} (`wirewatch alerts retry --sink {}` switches it on)",
            when(Some(d.at)),
            d.endpoint,
            d.reason,
            s.sink
        )?;
    }
    if s.pending > 0 {
        if let Some(e) = &s.last_error {
            writeln!(out, "    last error: {e}")?;
        }
    }
    Ok(())
}

/// `wirewatch feeds import|export`.
async fn feeds_command(args: FeedsArgs) -> anyhow::Result<ExitCode> {
    let config = ConfigArg {
        config: args.config,
    };
    match args.action {
        FeedsAction::Export => {
            let Some(c) = load_config(&config)? else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            let feeds: Vec<wirewatch::opml::ExportFeed<'_>> = c
                .feeds
                .iter()
                .map(|f| wirewatch::opml::ExportFeed {
                    id: &f.id,
                    title: f.title.as_deref(),
                    url: &f.url,
                })
                .collect();
            print!(
                "{}",
                wirewatch::opml::write("wirewatch feeds", Utc::now(), &feeds)
            );
            Ok(ExitCode::SUCCESS)
        }
        FeedsAction::Import {
            file,
            check,
            dry_run,
        } => import_opml(&config, &file, check, dry_run).await,
    }
}

async fn import_opml(
    arg: &ConfigArg,
    file: &Path,
    check: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    use wirewatch::config::edit::{append_feeds, NewFeed};
    let path = config::locate(arg.config.as_deref()).map_err(anyhow::Error::msg)?;
    let Some(current) = load_config(arg)? else {
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let listed =
        wirewatch::opml::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut ids: std::collections::HashSet<String> =
        current.feeds.iter().map(|f| f.id.clone()).collect();
    let urls: std::collections::HashMap<String, String> = current
        .feeds
        .iter()
        .map(|f| (f.url.clone(), f.id.clone()))
        .collect();
    let mut new = Vec::new();
    let mut skipped = 0;
    let mut listed_at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for f in &listed {
        let at = format!("{}:{}", file.display(), f.line);
        let ok_url = reqwest::Url::parse(&f.url)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .unwrap_or(false);
        if !ok_url {
            eprintln!("{at}: skipped {:?}: not an http(s) URL", f.url);
            skipped += 1;
            continue;
        }
        if let Some(line) = listed_at.get(&f.url) {
            eprintln!("{at}: skipped {}: listed before, line {line}", f.url);
            skipped += 1;
            continue;
        }
        if let Some(id) = urls.get(&f.url) {
            eprintln!(
                "{at}: skipped {}: already configured as feed \"{id}\"",
                f.url
            );
            skipped += 1;
            continue;
        }
        listed_at.insert(f.url.clone(), f.line);
        let base = wirewatch::opml::slug(&f.title, &f.url);
        let mut id = base.clone();
        let mut n = 2;
        while ids.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        ids.insert(id.clone());
        new.push(NewFeed {
            id,
            url: f.url.clone(),
            title: Some(f.title.clone()).filter(|t| !t.is_empty()),
        });
    }
    if check && !new.is_empty() {
        new = check_feeds(&current, new).await?;
    }
    if new.is_empty() {
        println!("nothing to import ({skipped} skipped)");
        return Ok(ExitCode::SUCCESS);
    }
    let original = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let note = format!(
        "Imported from {} on {} by `wirewatch feeds import`.",
        file.display(),
        Utc::now().format("%Y-%m-%d")
    );
    let updated = append_feeds(&original, &new, &note)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // The new file must load like the old one before it replaces it; it is
    // written next to it so relative paths resolve the same.
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".wirewatch-import-")
        .suffix(".toml")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::fs::write(tmp.path(), &updated)?;
    if let Err(errs) = config::load(tmp.path()) {
        for d in &errs.0 {
            eprintln!("{d}");
        }
        anyhow::bail!(
            "the config with the imported feeds does not load; {} is unchanged",
            path.display()
        );
    }
    if dry_run {
        print!(
            "{}",
            &updated[updated.find(&format!("# {note}")).unwrap_or(0)..]
        );
        println!(
            "(dry run: {} feed(s) would be added, {skipped} skipped)",
            new.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Ok(meta) = std::fs::metadata(&path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(&path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
    println!(
        "added {} feed(s) to {} ({skipped} skipped); `wirewatch check` shows them",
        new.len(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Fetches and parses each feed (8 at a time), showing progress; returns
/// the ones that work.
async fn check_feeds(
    current: &Config,
    feeds: Vec<wirewatch::config::edit::NewFeed>,
) -> anyhow::Result<Vec<wirewatch::config::edit::NewFeed>> {
    use std::io::IsTerminal;
    let fetcher = Arc::new(Fetcher::new(&current.daemon)?);
    let total = feeds.len();
    let tty = std::io::stderr().is_terminal();
    let slots = Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in feeds.into_iter().enumerate() {
        let (fetcher, slots) = (fetcher.clone(), slots.clone());
        set.spawn(async move {
            let _permit = slots.acquire_owned().await;
            let result = match fetcher.fetch(&f.url, &Validators::default()).await {
                Ok(FetchOutcome::Fetched(b)) => {
                    parse_feed(&b.body, b.charset.as_deref(), &ParseOptions::default())
                        .map(|p| p.items.len())
                        .map_err(|e| e.to_string())
                }
                Ok(FetchOutcome::NotModified { status, .. }) => {
                    Err(format!("unexpected HTTP {status}"))
                }
                Err(e) => Err(e.to_string()),
            };
            (i, f, result)
        });
    }
    let mut ok = Vec::new();
    let mut done = 0;
    while let Some(joined) = set.join_next().await {
        let (i, f, result) = joined?;
        done += 1;
        match result {
            Ok(_) => ok.push((i, f)),
            Err(e) => {
                if tty {
                    eprint!("\r\x1b[K");
                }
                eprintln!("feed {} ({}): left out: {e}", f.id, f.url);
            }
        }
        if tty {
            eprint!("\rchecking feeds: {done}/{total}");
        } else if done % (total / 10).max(1) == 0 || done == total {
            eprintln!("checking feeds: {done}/{total}");
        }
    }
    if tty {
        eprintln!();
    }
    ok.sort_by_key(|(i, _)| *i);
    Ok(ok.into_iter().map(|(_, f)| f).collect())
}

/// `wirewatch alerts [list|retry|test SINK]`.
async fn alerts_command(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(&ConfigArg {
        config: args.config.clone(),
    })?
    else {
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let known = |id: &str| -> anyhow::Result<()> {
        if config.sinks.iter().any(|s| s.id == id) {
            Ok(())
        } else {
            let ids: Vec<&str> = config.sinks.iter().map(|s| s.id.as_str()).collect();
            anyhow::bail!(
                "unknown sink \"{id}\"; configured sinks: {}",
                ids.join(", ")
            )
        }
    };
    match args.action.unwrap_or(AlertsAction::List) {
        AlertsAction::Test { sink: id } => {
            known(&id)?;
            let cfg = config
                .sinks
                .iter()
                .find(|s| s.id == id)
                .context("sink vanished")?;
            let s = sink::build(cfg)?;
            let alert = deliver::sample_alert(Utc::now());
            let started = std::time::Instant::now();
            match tokio::time::timeout(deliver::DELIVERY_TIMEOUT, s.deliver(&alert)).await {
                Ok(Ok(())) => {
                    println!(
                        "sink {id}: test alert {} delivered in {} ms",
                        alert.id,
                        started.elapsed().as_millis()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Ok(Err(e)) => {
                    let kind = match e {
                        sink::SinkError::Transient { .. } => "failed (would be retried)",
                        sink::SinkError::Rejected { .. } => "rejected (would become a dead letter)",
                        sink::SinkError::Gone { .. } => {
                            "endpoint gone (the sink would be switched off)"
                        }
                    };
                    eprintln!("wirewatch: sink {id}: test alert {kind}: {e}");
                    Ok(ExitCode::FAILURE)
                }
                Err(_) => {
                    eprintln!(
                        "wirewatch: sink {id}: test alert timed out after {:?}",
                        deliver::DELIVERY_TIMEOUT
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AlertsAction::Retry => {
            if let Some(id) = &args.sink {
                known(id)?;
            }
            let state = State::open_dir(&config.daemon.state_dir)?;
            let n = state.requeue_dead(args.sink.as_deref(), Utc::now())?;
            let mut enabled = Vec::new();
            for s in &config.sinks {
                if args.sink.as_ref().is_none_or(|id| *id == s.id) && state.enable_sink(&s.id)? {
                    enabled.push(s.id.clone());
                }
            }
            println!("{n} dead alert(s) re-queued");
            for s in enabled {
                println!("sink {s} switched on again");
            }
            Ok(ExitCode::SUCCESS)
        }
        AlertsAction::List => {
            if let Some(id) = &args.sink {
                known(id)?;
            }
            let file = config.state_file();
            let mut out = std::io::stdout().lock();
            if !file.exists() {
                writeln!(out, "no state yet at {} (nothing queued)", file.display())?;
                return Ok(ExitCode::SUCCESS);
            }
            let state = State::open(&file)?;
            let rows = state.outbox_rows(args.sink.as_deref(), 10_000)?;
            if args.json {
                for r in &rows {
                    let mut v = serde_json::to_value(r)?;
                    if let (Some(obj), Ok(alert)) = (
                        v.as_object_mut(),
                        serde_json::from_str::<serde_json::Value>(&r.payload),
                    ) {
                        obj.insert("alert".into(), alert);
                    }
                    serde_json::to_writer(&mut out, &v)?;
                    writeln!(out)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let ids: Vec<String> = match &args.sink {
                Some(id) => vec![id.clone()],
                None => config.sinks.iter().map(|s| s.id.clone()).collect(),
            };
            for st in state.sink_statuses(&ids)? {
                if args.sink.as_ref().is_some_and(|id| *id != st.sink) {
                    continue;
                }
                write_sink_status(&mut out, &config, &st)?;
                for r in rows.iter().filter(|r| r.sink == st.sink) {
                    let title = serde_json::from_str::<wirewatch::model::Alert>(&r.payload)
                        .map(|a| a.item.title)
                        .unwrap_or_else(|_| "(unreadable alert)".into());
                    let title: String =
                        title.chars().filter(|c| !c.is_control()).take(70).collect();
                    let what = match (r.dead_at, r.held_for.as_deref()) {
                        (Some(t), _) => format!("DEAD since {}", when(Some(t))),
                        (None, Some(b)) => {
                            let why = match b.strip_prefix("throttle:") {
                                Some(rule) => format!("throttle of rule {rule}"),
                                None if b == "quiet" => "quiet hours".to_string(),
                                None => b.to_string(),
                            };
                            format!("held for {why} until {}", when(Some(r.next_attempt_at)))
                        }
                        (None, None) => format!("next try {}", when(Some(r.next_attempt_at))),
                    };
                    writeln!(
                        out,
                        "  {}  queued {}  attempts {}  {}  {}",
                        r.alert_id,
                        when(Some(r.created_at)),
                        r.attempts,
                        what,
                        title
                    )?;
                    if let Some(e) = &r.last_error {
                        writeln!(out, "      {e}")?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), for the logs and
/// the memory-bound tests.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
