//! Durable state: the only room that touches SQLite.
//!
//! Holds, per feed, the HTTP validators and health; the keys of items already
//! seen; and the outbox of alerts not yet confirmed by their sink. The
//! interface is small and speaks in domain terms so another backend
//! (PostgreSQL, for several instances sharing work) can stand behind it.
//!
//! Invariants:
//! - an item is marked seen in the same transaction that queues its alerts
//!   ([`State::commit_poll`]): a crash loses neither;
//! - an alert leaves the outbox only when its sink confirmed it
//!   ([`State::ack`]); `(sink, alert id)` is unique, so a replay never queues
//!   a duplicate.
//!
//! Calls are synchronous and short; async callers run them on the blocking
//! pool through [`State::call`].
//!
//! # Archive
//!
//! Every new item (alerting or not) is written to `archive` by the same
//! [`State::commit_poll`] that marks it seen, with what the rules look at
//! (title, summary, content, link, authors, categories, feed), so a
//! backtest sees what the live matcher saw. [`State::prune_archive`] drops
//! rows older than `archive_days` or beyond `archive_max_items`, a bounded
//! batch per call.
//!
//! `archive_fts` is a *contentless* FTS5 table (`content = ''`,
//! `contentless_delete = 1`) whose two columns hold the rule engine's own
//! terms of the item text, not the raw text: `words` the folded words,
//! `stems` their stems (see `archive::index_terms`). Why not an
//! external-content table over title/summary/content: FTS5's tokenizer
//! disagrees with the rule language (no Russian stemming, "de-mining" not
//! joined, `ё`/`й` folded differently), so a MATCH over the raw text could
//! drop items a rule matches; over our own terms a prefilter built from a
//! query is a sound superset, and every candidate is still verified by the
//! engine. Contentless keeps only the inverted index (the text lives once,
//! in `archive`); the delete trigger removes a row's index entries with
//! the row, so pruning cannot leave orphans.
//!
//! The index is built behind the polls: a poll's commit writes its items'
//! terms to `archive_unindexed`, and [`State::index_archive`] moves them
//! into `archive_fts` a large batch per transaction (the daemon when its
//! fetches are idle, `once` after its cycle; see `archive::index`). A
//! query reads the rows still waiting as candidates, so a search is as
//! complete before indexing as after; a trigger deletes waiting terms
//! with their row.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::model::FeedHints;

/// Schema versions this build knows; `user_version` holds the file's.
const MIGRATIONS: &[&str] = &[
    // 1: feeds, seen items, outbox
    "CREATE TABLE feeds (
        feed_id TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_status INTEGER,
        last_error TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        last_ok_at INTEGER,
        last_attempt_at INTEGER,
        first_poll_at INTEGER
    );
    CREATE TABLE seen (
        feed_id TEXT NOT NULL,
        item_key TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        PRIMARY KEY (feed_id, item_key)
    ) WITHOUT ROWID;
    CREATE INDEX seen_last_seen ON seen (last_seen_at);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sink_id TEXT NOT NULL,
        alert_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        UNIQUE (sink_id, alert_id)
    );
    CREATE INDEX outbox_due ON outbox (sink_id, next_attempt_at, seq);",
    // 2: dead letters, per-sink health (disabled endpoints, last delivery)
    "ALTER TABLE outbox ADD COLUMN dead_at INTEGER;
    ALTER TABLE outbox ADD COLUMN last_attempt_at INTEGER;
    DROP INDEX outbox_due;
    CREATE INDEX outbox_due ON outbox (sink_id, dead_at, next_attempt_at, seq);
    CREATE TABLE sinks (
        sink_id TEXT PRIMARY KEY,
        disabled_at INTEGER,
        disabled_endpoint TEXT,
        disabled_reason TEXT,
        last_delivery_at INTEGER,
        delivered INTEGER NOT NULL DEFAULT 0
    );",
    // 3: flow control: alerts held for a digest, throttle windows
    "ALTER TABLE outbox ADD COLUMN bucket TEXT;
    CREATE INDEX outbox_held ON outbox (sink_id, bucket) WHERE bucket IS NOT NULL;
    CREATE TABLE throttle (
        sink_id TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        window_end INTEGER NOT NULL,
        PRIMARY KEY (sink_id, rule_id)
    ) WITHOUT ROWID;",
    // 4: what `status` shows: items in the last document, the next poll,
    // alerts per (local) day
    "ALTER TABLE feeds ADD COLUMN last_items INTEGER;
    ALTER TABLE feeds ADD COLUMN next_poll_at INTEGER;
    CREATE TABLE daily (
        day TEXT PRIMARY KEY,
        items_alerted INTEGER NOT NULL DEFAULT 0,
        alerts_queued INTEGER NOT NULL DEFAULT 0
    );",
    // 5: feeds that answered 410 Gone
    "ALTER TABLE feeds ADD COLUMN gone_at INTEGER;",
    // 6: permanent redirects (the configured URL they apply to, the new
    // one) and the feed's own schedule hints from its last document
    "ALTER TABLE feeds ADD COLUMN moved_from TEXT;
    ALTER TABLE feeds ADD COLUMN moved_to TEXT;
    ALTER TABLE feeds ADD COLUMN moved_at INTEGER;
    ALTER TABLE feeds ADD COLUMN ttl_secs INTEGER;
    ALTER TABLE feeds ADD COLUMN skip_hours INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feeds ADD COLUMN skip_days INTEGER NOT NULL DEFAULT 0;",
    // 7: archive: every new item for `archive_days`, for backtest, search and
    // check (see the "Archive" section of the module docs)
    "CREATE TABLE archive (
        id INTEGER PRIMARY KEY,
        feed_id TEXT NOT NULL,
        item_key TEXT NOT NULL,
        feed_title TEXT NOT NULL,
        feed_url TEXT NOT NULL,
        title TEXT NOT NULL,
        summary TEXT NOT NULL,
        content TEXT NOT NULL,
        -- Item.full_text: the extracted article of a `full_text` feed.
        full_text TEXT,
        link TEXT,
        authors TEXT NOT NULL,
        categories TEXT NOT NULL,
        published INTEGER,
        updated INTEGER,
        first_seen INTEGER NOT NULL,
        UNIQUE (feed_id, item_key)
    );
    CREATE INDEX archive_first_seen ON archive (first_seen);
    CREATE VIRTUAL TABLE archive_fts USING fts5(
        words, stems, content = '', contentless_delete = 1, detail = column,
        tokenize = 'unicode61 remove_diacritics 0'
    );
    CREATE TRIGGER archive_fts_delete AFTER DELETE ON archive BEGIN
        DELETE FROM archive_fts WHERE rowid = old.id;
    END;",
    // 8: story clustering (`crate::story`): the items of the story window
    // with their MinHash signatures, so a restart keeps the clusters.
    // Pruned to `story_window`.
    "CREATE TABLE story_items (
        seq INTEGER PRIMARY KEY,
        feed_id TEXT NOT NULL,
        item_key TEXT NOT NULL,
        story_id TEXT NOT NULL,
        story_first_seen INTEGER NOT NULL,
        seen_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        shingles INTEGER NOT NULL,
        signature BLOB NOT NULL,
        rules TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        UNIQUE (feed_id, item_key)
    );
    CREATE INDEX story_items_seen ON story_items (seen_at);
    CREATE INDEX story_items_story ON story_items (story_id);",
    // 9: the archive's search index is built behind the polls: a poll
    // writes its items' terms here, `State::index_archive` moves them into
    // `archive_fts` in large batches (see the "Archive" module docs).
    "CREATE TABLE archive_unindexed (
        id INTEGER PRIMARY KEY,
        words TEXT NOT NULL,
        stems TEXT NOT NULL
    );
    CREATE TRIGGER archive_unindexed_delete AFTER DELETE ON archive BEGIN
        DELETE FROM archive_unindexed WHERE id = old.id;
    END;",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open state {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state {path} is not a wirewatch database ({source})")]
    NotADatabase {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state {path} has schema version {found}, newer than this wirewatch understands ({known}); upgrade wirewatch or point state_dir elsewhere")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("state database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state task failed: {0}")]
    Task(String),
}

fn moved(from: Option<String>, to: Option<String>, at: Option<i64>) -> Option<Moved> {
    Some(Moved {
        from: from?,
        to: to?,
        at: from_ms(at),
    })
}

/// HTTP validators remembered for a feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a poll needs to know about a feed before fetching.
#[derive(Debug, Clone, Default)]
pub struct FeedMemory {
    pub validators: Validators,
    /// False until a poll of this feed has been committed.
    pub polled_before: bool,
    /// A permanent redirect recorded for this feed.
    pub moved: Option<Moved>,
    /// The schedule hints of the last document fetched.
    pub hints: FeedHints,
}

/// A feed's URL moved by a permanent redirect (301, 308).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    /// The configured URL the redirect was seen from: the move applies
    /// while the config still names it.
    pub from: String,
    pub to: String,
    pub at: Option<DateTime<Utc>>,
}

impl Moved {
    /// Whether the move still holds for a feed configured with `url`.
    pub fn applies_to(&self, url: &str) -> bool {
        self.from == url
    }
}

/// Feed health as shown by `wirewatch status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeedStatus {
    pub feed: String,
    pub last_status: Option<u16>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub seen_items: u64,
    /// Items in the last document fetched (not counting a 304).
    pub last_items: Option<u64>,
    /// When the running daemon means to poll it next.
    pub next_poll_at: Option<DateTime<Utc>>,
    /// Set when the feed answered 410 Gone: the daemon stopped polling it.
    pub gone_at: Option<DateTime<Utc>>,
    /// Set when a permanent redirect moved the feed.
    pub moved: Option<Moved>,
}

impl FeedStatus {
    pub fn never_polled(feed: &str) -> FeedStatus {
        FeedStatus {
            feed: feed.to_string(),
            last_status: None,
            consecutive_failures: 0,
            last_error: None,
            last_ok_at: None,
            last_attempt_at: None,
            seen_items: 0,
            last_items: None,
            next_poll_at: None,
            gone_at: None,
            moved: None,
        }
    }
}

/// One alert waiting in the outbox for one sink.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub seq: i64,
    pub alert_id: String,
    /// The alert object as JSON.
    pub payload: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// An outbox row as `wirewatch alerts` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxRow {
    pub sink: String,
    pub alert_id: String,
    /// The alert object as JSON.
    #[serde(skip)]
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Set for a dead letter: when delivery was given up.
    pub dead_at: Option<DateTime<Utc>>,
    /// Set for an alert held for a digest ("digest", "quiet",
    /// "throttle:RULE"); it goes out at `next_attempt_at`.
    pub held_for: Option<String>,
}

/// A sink endpoint switched off after it answered "gone" (HTTP 410).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    /// The endpoint that was gone (a changed endpoint is tried again).
    pub endpoint: String,
    pub reason: String,
}

/// Delivery health of one sink, for `status` and `alerts`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SinkStatus {
    pub sink: String,
    /// Live alerts, held ones included.
    pub pending: u64,
    /// Of `pending`, those held for a digest.
    pub held: u64,
    pub dead: u64,
    pub delivered: u64,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub disabled: Option<Disabled>,
}

/// The outbox of one sink in numbers, for the metrics endpoint (read at
/// every scrape, so three index-only counts and nothing else).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    pub sink: String,
    /// Live alerts, held ones included.
    pub queued: u64,
    /// Of `queued`, those held for a digest.
    pub held: u64,
    pub dead: u64,
}

/// The result of one successful fetch + parse, written in one transaction.
#[derive(Debug, Default)]
pub struct PollCommit {
    pub status: u16,
    pub validators: Validators,
    /// Every key in the document (refreshes `last_seen_at`).
    pub present: Vec<String>,
    /// Keys not seen before: marked seen now.
    pub new: Vec<String>,
    /// `(sink id, alert id, alert JSON)` to queue.
    pub alerts: Vec<(String, String, String)>,
    /// Items in the document.
    pub items: usize,
    /// Items that alerted (to at least one sink).
    pub items_alerted: usize,
    /// The document's schedule hints (replacing the stored ones).
    pub hints: FeedHints,
    /// New items to archive (empty when the archive is off).
    pub archive: Vec<ArchiveEntry>,
    /// New items' story records (`crate::story`).
    pub stories: Vec<StoryRow>,
    /// `(sink id, alert id, alert JSON, release time)`: repeats of a story
    /// queued straight into the sink's digest bucket.
    pub held: Vec<(String, String, String, DateTime<Utc>)>,
}

/// A new item as the archive stores it: the item, the feed as its alerts
/// name it, and the rule engine's terms of its text for the FTS index.
#[derive(Debug, Clone)]
pub struct ArchiveEntry {
    pub feed_title: String,
    pub feed_url: String,
    pub item: crate::model::Item,
    /// Folded words of the item text, space-separated.
    pub words: String,
    /// Their stems, space-separated.
    pub stems: String,
}

/// An item read back from the archive.
#[derive(Debug, Clone)]
pub struct ArchivedItem {
    pub feed_id: String,
    pub feed_title: String,
    pub feed_url: String,
    pub item: crate::model::Item,
    pub first_seen: DateTime<Utc>,
}

/// Which archived items to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct ArchiveQuery {
    /// First seen at or after this.
    pub since: Option<DateTime<Utc>>,
    pub feed: Option<String>,
    /// An FTS5 MATCH expression over `words`/`stems`: only rows it
    /// matches are read (a prefilter; the caller verifies each row).
    pub fts: Option<String>,
}

/// How much the archive holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    pub items: u64,
    pub oldest: Option<DateTime<Utc>>,
    pub newest: Option<DateTime<Utc>>,
}

/// One item of the story window as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryRow {
    pub feed_id: String,
    pub item_key: String,
    /// 16 hex digits (`story::story_id_text`).
    pub story_id: String,
    pub story_first_seen: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    /// `story::SIGNATURE_VERSION` when it was computed.
    pub version: i64,
    pub shingles: u32,
    pub signature: Vec<u8>,
    /// The rules the item matched.
    pub rules: Vec<String>,
    pub title: String,
}

/// A story of the window, for `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorySummary {
    pub story_id: String,
    pub first_seen: DateTime<Utc>,
    pub items: usize,
    /// Distinct feeds, in order of first item.
    pub sources: Vec<String>,
    /// The first item's title.
    pub title: String,
}

/// Handle to the state database; cheap to clone.
#[derive(Clone)]
pub struct State {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Bounds `call`s on the blocking pool: there is one connection, so
    /// more threads would only wait on its mutex (5,000 feed tasks starting
    /// together once grew tokio's blocking pool to its 512-thread cap).
    calls: Arc<tokio::sync::Semaphore>,
}

/// Concurrent [`State::call`]s; the rest wait in order (FIFO).
const MAX_BLOCKING_CALLS: usize = 2;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Switches the file to WAL (a setting kept in the file). Changing the
/// journal mode takes a lock SQLite's busy handler does not wait for, so
/// when another process is opening the same new file at that moment this
/// retries for up to 5 s; a file already in WAL is left alone.
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mode: rusqlite::Result<String> =
            conn.query_row("PRAGMA journal_mode", [], |r| r.get(0));
        let result = match mode {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) => conn.pragma_update(None, "journal_mode", "WAL"),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The local calendar day of a millisecond timestamp, "YYYY-MM-DD".
fn local_day(ms: i64) -> String {
    from_ms(Some(ms))
        .unwrap_or_default()
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d")
        .to_string()
}

fn from_ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(|v| Utc.timestamp_millis_opt(v).single())
}

/// Writes new items to the archive, their terms to `archive_unindexed`
/// for [`State::index_archive`] (inside the caller's transaction). An item
/// already archived (its seen key was forgotten and it came back) keeps its
/// row.
fn archive_items(
    tx: &rusqlite::Transaction<'_>,
    feed_id: &str,
    entries: &[ArchiveEntry],
    now: i64,
) -> Result<(), StateError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut row = tx.prepare_cached(
        "INSERT INTO archive (feed_id, item_key, feed_title, feed_url, title, summary, content,
             full_text, link, authors, categories, published, updated, first_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?14, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (feed_id, item_key) DO NOTHING
         RETURNING id",
    )?;
    let mut index = tx.prepare_cached(
        "INSERT OR REPLACE INTO archive_unindexed (id, words, stems) VALUES (?1, ?2, ?3)",
    )?;
    for e in entries {
        let it = &e.item;
        let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let id: Option<i64> = row
            .query_row(
                params![
                    feed_id,
                    it.key,
                    e.feed_title,
                    e.feed_url,
                    it.title,
                    it.summary,
                    it.content,
                    it.link,
                    list(&it.authors),
                    list(&it.categories),
                    it.published.map(ms),
                    it.updated.map(ms),
                    now,
                    it.full_text
                ],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            index.execute(params![id, e.words, e.stems])?;
        }
    }
    Ok(())
}

fn archived_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchivedItem> {
    let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
    Ok(ArchivedItem {
        feed_id: r.get(0)?,
        feed_title: r.get(1)?,
        feed_url: r.get(2)?,
        item: crate::model::Item {
            key: r.get(3)?,
            title: r.get(4)?,
            summary: r.get(5)?,
            content: r.get(6)?,
            full_text: r.get(7)?,
            link: r.get(8)?,
            authors: list(r.get(9)?),
            categories: list(r.get(10)?),
            published: from_ms(r.get(11)?),
            updated: from_ms(r.get(12)?),
        },
        first_seen: from_ms(r.get(13)?).unwrap_or_default(),
    })
}

impl State {
    /// Opens (creating if needed) `dir/wirewatch.db`, applying migrations.
    pub fn open_dir(dir: &Path) -> Result<State, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        State::open(&dir.join("wirewatch.db"))
    }

    /// Opens an existing state file read-write, or creates it.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let open_err = |source| StateError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| StateError::NotADatabase {
                path: path.to_path_buf(),
                source,
            })?;
        if version > SCHEMA_VERSION {
            return Err(StateError::TooNew {
                path: path.to_path_buf(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        // WAL: readers never block the writer; FULL: a committed poll
        // survives power loss, which is what "nothing is lost" means.
        set_wal(&conn).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
            // Another process (the daemon, while `status` opens the file)
            // may have applied it between our read and our lock.
            let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if now > i as i64 {
                continue;
            }
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(State {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            calls: Arc::new(tokio::sync::Semaphore::new(MAX_BLOCKING_CALLS)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Liveness check for the systemd watchdog: reads the schema version
    /// (the database header; no write, no table scan).
    pub fn health_check(&self) -> Result<(), StateError> {
        self.lock()
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    /// Queued, held and dead alerts of each of `sink_ids` (zeros for a
    /// sink with none).
    pub fn outbox_depths(&self, sink_ids: &[String]) -> Result<Vec<OutboxDepth>, StateError> {
        let conn = self.lock();
        let mut counts = conn.prepare_cached(
            "SELECT COUNT(*) FILTER (WHERE dead_at IS NULL),
                    COUNT(*) FILTER (WHERE dead_at IS NULL AND bucket IS NOT NULL),
                    COUNT(*) FILTER (WHERE dead_at IS NOT NULL)
             FROM outbox WHERE sink_id = ?1",
        )?;
        sink_ids
            .iter()
            .map(|id| {
                Ok(counts.query_row([id], |r| {
                    Ok(OutboxDepth {
                        sink: id.clone(),
                        queued: r.get(0)?,
                        held: r.get(1)?,
                        dead: r.get(2)?,
                    })
                })?)
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back on drop), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the blocking pool, at most [`MAX_BLOCKING_CALLS`] at a
    /// time.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> Result<T, StateError> + Send + 'static,
    {
        let permit = self
            .calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StateError::Task(e.to_string()))?;
        let s = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&s)
        })
        .await
        .map_err(|e| StateError::Task(e.to_string()))?
    }

    pub fn feed_memory(&self, feed_id: &str) -> Result<FeedMemory, StateError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT etag, last_modified, first_poll_at, moved_from, moved_to, moved_at,
                        ttl_secs, skip_hours, skip_days
                 FROM feeds WHERE feed_id = ?1",
                [feed_id],
                |r| {
                    Ok(FeedMemory {
                        validators: Validators {
                            etag: r.get(0)?,
                            last_modified: r.get(1)?,
                        },
                        polled_before: r.get::<_, Option<i64>>(2)?.is_some(),
                        moved: moved(r.get(3)?, r.get(4)?, r.get(5)?),
                        hints: FeedHints {
                            ttl: r
                                .get::<_, Option<i64>>(6)?
                                .map(|s| Duration::from_secs(s.max(0) as u64)),
                            skip_hours: r.get::<_, i64>(7)? as u32 & 0x00ff_ffff,
                            skip_days: r.get::<_, i64>(8)? as u8 & 0x7f,
                        },
                    })
                },
            )
            .optional()?;
        Ok(row.unwrap_or_default())
    }

    /// Which of `keys` this feed has not seen before (order kept).
    pub fn unseen(&self, feed_id: &str, keys: &[String]) -> Result<Vec<String>, StateError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached("SELECT 1 FROM seen WHERE feed_id = ?1 AND item_key = ?2")?;
        let mut out = Vec::new();
        let mut dup = HashSet::new();
        for k in keys {
            if dup.insert(k.as_str()) && !stmt.exists(params![feed_id, k])? {
                out.push(k.clone());
            }
        }
        Ok(out)
    }

    /// Records a successful poll: validators, health, seen keys and queued
    /// alerts, all in one transaction.
    pub fn commit_poll(
        &self,
        feed_id: &str,
        c: &PollCommit,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = ms(now);
        tx.execute(
            "INSERT INTO feeds (feed_id, etag, last_modified, last_status, last_error,
                 consecutive_failures, last_ok_at, last_attempt_at, first_poll_at)
             VALUES (?1, ?2, ?3, ?4, NULL, 0, ?5, ?5, ?5)
             ON CONFLICT (feed_id) DO UPDATE SET
                 etag = excluded.etag, last_modified = excluded.last_modified,
                 last_status = excluded.last_status, last_error = NULL,
                 consecutive_failures = 0, last_ok_at = excluded.last_ok_at,
                 last_attempt_at = excluded.last_attempt_at, gone_at = NULL,
                 first_poll_at = COALESCE(feeds.first_poll_at, excluded.first_poll_at)",
            params![
                feed_id,
                c.validators.etag,
                c.validators.last_modified,
                c.status,
                now
            ],
        )?;
        {
            let mut touch = tx.prepare_cached(
                "UPDATE seen SET last_seen_at = ?3 WHERE feed_id = ?1 AND item_key = ?2",
            )?;
            for k in &c.present {
                touch.execute(params![feed_id, k, now])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO seen (feed_id, item_key, first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?3)",
            )?;
            for k in &c.new {
                insert.execute(params![feed_id, k, now])?;
            }
            let mut queue = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox (sink_id, alert_id, payload, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?;
            for (sink, id, payload) in &c.alerts {
                queue.execute(params![sink, id, payload, now])?;
            }
            archive_items(&tx, feed_id, &c.archive, now)?;
            // A repeat held for a digest joins the sink's open digest
            // bucket (its release time wins) or opens one.
            let mut hold = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox (sink_id, alert_id, payload, created_at, next_attempt_at, bucket)
                 VALUES (?1, ?2, ?3, ?4,
                     COALESCE((SELECT MIN(next_attempt_at) FROM outbox
                               WHERE sink_id = ?1 AND bucket = 'digest' AND dead_at IS NULL), ?5),
                     'digest')",
            )?;
            for (sink, id, payload, release) in &c.held {
                hold.execute(params![sink, id, payload, now, ms(*release)])?;
            }
            let mut story = tx.prepare_cached(
                "INSERT OR REPLACE INTO story_items (feed_id, item_key, story_id, story_first_seen,
                     seen_at, version, shingles, signature, rules, title)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in &c.stories {
                story.execute(params![
                    r.feed_id,
                    r.item_key,
                    r.story_id,
                    ms(r.story_first_seen),
                    ms(r.seen_at),
                    r.version,
                    r.shingles,
                    r.signature,
                    r.rules.join("\n"),
                    r.title
                ])?;
            }
        }
        tx.execute(
            "UPDATE feeds SET last_items = ?2, ttl_secs = ?3, skip_hours = ?4, skip_days = ?5
             WHERE feed_id = ?1",
            params![
                feed_id,
                c.items as i64,
                c.hints.ttl.map(|t| t.as_secs() as i64),
                c.hints.skip_hours,
                c.hints.skip_days
            ],
        )?;
        if c.items_alerted > 0 || !c.alerts.is_empty() {
            tx.execute(
                "INSERT INTO daily (day, items_alerted, alerts_queued) VALUES (?1, ?2, ?3)
                 ON CONFLICT (day) DO UPDATE SET
                     items_alerted = daily.items_alerted + excluded.items_alerted,
                     alerts_queued = daily.alerts_queued + excluded.alerts_queued",
                params![
                    local_day(now),
                    c.items_alerted as i64,
                    c.alerts.len() as i64
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A 304: the feed is healthy and unchanged.
    pub fn record_not_modified(
        &self,
        feed_id: &str,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO feeds (feed_id, last_status, consecutive_failures, last_ok_at, last_attempt_at)
             VALUES (?1, ?2, 0, ?3, ?3)
             ON CONFLICT (feed_id) DO UPDATE SET last_status = excluded.last_status,
                 last_error = NULL, consecutive_failures = 0, gone_at = NULL,
                 last_ok_at = excluded.last_ok_at, last_attempt_at = excluded.last_attempt_at",
            params![feed_id, status, ms(now)],
        )?;
        Ok(())
    }

    /// A failed poll; returns the new count of consecutive failures.
    pub fn record_failure(
        &self,
        feed_id: &str,
        status: Option<u16>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StateError> {
        let conn = self.lock();
        let n: u32 = conn.query_row(
            "INSERT INTO feeds (feed_id, last_status, last_error, consecutive_failures, last_attempt_at)
             VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT (feed_id) DO UPDATE SET last_status = excluded.last_status,
                 last_error = excluded.last_error,
                 consecutive_failures = feeds.consecutive_failures + 1,
                 last_attempt_at = excluded.last_attempt_at
             RETURNING consecutive_failures",
            params![feed_id, status, error, ms(now)],
            |r| r.get(0),
        )?;
        Ok(n)
    }

    /// Health of the given feeds, in the given order (unknown feeds show as
    /// never polled).
    pub fn feed_statuses(&self, feed_ids: &[String]) -> Result<Vec<FeedStatus>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT last_status, consecutive_failures, last_error, last_ok_at, last_attempt_at,
                    (SELECT COUNT(*) FROM seen WHERE seen.feed_id = feeds.feed_id),
                    last_items, next_poll_at, gone_at, moved_from, moved_to, moved_at
             FROM feeds WHERE feed_id = ?1",
        )?;
        let mut out = Vec::new();
        for id in feed_ids {
            let row = stmt
                .query_row([id], |r| {
                    Ok(FeedStatus {
                        feed: id.clone(),
                        last_status: r.get(0)?,
                        consecutive_failures: r.get(1)?,
                        last_error: r.get(2)?,
                        last_ok_at: from_ms(r.get(3)?),
                        last_attempt_at: from_ms(r.get(4)?),
                        seen_items: r.get(5)?,
                        last_items: r.get(6)?,
                        next_poll_at: from_ms(r.get(7)?),
                        gone_at: from_ms(r.get(8)?),
                        moved: moved(r.get(9)?, r.get(10)?, r.get(11)?),
                    })
                })
                .optional()?;
            out.push(row.unwrap_or_else(|| FeedStatus::never_polled(id)));
        }
        Ok(out)
    }

    /// The feed answered 410 Gone: the daemon stops polling it (until the
    /// next start or reload, which try it once more).
    pub fn record_gone(&self, feed_id: &str, now: DateTime<Utc>) -> Result<(), StateError> {
        self.lock().execute(
            "UPDATE feeds SET gone_at = ?2, next_poll_at = NULL WHERE feed_id = ?1",
            params![feed_id, ms(now)],
        )?;
        Ok(())
    }

    /// A permanent redirect from the configured URL `from` to `to`: later
    /// polls fetch `to` while the config names `from`.
    pub fn record_moved(
        &self,
        feed_id: &str,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.lock().execute(
            "INSERT INTO feeds (feed_id, moved_from, moved_to, moved_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (feed_id) DO UPDATE SET moved_from = excluded.moved_from,
                 moved_to = excluded.moved_to, moved_at = excluded.moved_at",
            params![feed_id, from, to, ms(now)],
        )?;
        Ok(())
    }

    /// Forgets a recorded move (the config no longer names its URL).
    pub fn clear_moved(&self, feed_id: &str) -> Result<(), StateError> {
        self.lock().execute(
            "UPDATE feeds SET moved_from = NULL, moved_to = NULL, moved_at = NULL
             WHERE feed_id = ?1",
            [feed_id],
        )?;
        Ok(())
    }

    /// When the daemon will poll `feed_id` next (shown by `status`).
    pub fn record_next_poll(&self, feed_id: &str, at: DateTime<Utc>) -> Result<(), StateError> {
        self.lock().execute(
            "INSERT INTO feeds (feed_id, next_poll_at) VALUES (?1, ?2)
             ON CONFLICT (feed_id) DO UPDATE SET next_poll_at = excluded.next_poll_at",
            params![feed_id, ms(at)],
        )?;
        Ok(())
    }

    /// Items that alerted and alerts queued on the local day of `now`.
    pub fn alerts_on_day(&self, now: DateTime<Utc>) -> Result<(u64, u64), StateError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT items_alerted, alerts_queued FROM daily WHERE day = ?1",
                [local_day(ms(now))],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.unwrap_or((0, 0)))
    }

    /// Forgets seen keys not present in any poll since `cutoff`.
    pub fn prune_seen(&self, cutoff: DateTime<Utc>) -> Result<usize, StateError> {
        let conn = self.lock();
        Ok(conn.execute("DELETE FROM seen WHERE last_seen_at < ?1", [ms(cutoff)])?)
    }

    /// Deletes archived items first seen before `cutoff`, then the oldest
    /// beyond `max_items`: at most `batch` rows in one transaction (call
    /// again while it returns `batch`). Returns how many went.
    pub fn prune_archive(
        &self,
        cutoff: DateTime<Utc>,
        max_items: usize,
        batch: usize,
    ) -> Result<usize, StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut gone = tx.execute(
            "DELETE FROM archive WHERE id IN
                 (SELECT id FROM archive WHERE first_seen < ?1 ORDER BY first_seen LIMIT ?2)",
            params![ms(cutoff), batch as i64],
        )?;
        if gone < batch {
            // The newest `max_items` stay: the row at that offset (newest
            // first) is the newest one to go.
            let edge: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT first_seen, id FROM archive ORDER BY first_seen DESC, id DESC
                     LIMIT 1 OFFSET ?1",
                    [max_items as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((at, id)) = edge {
                gone += tx.execute(
                    "DELETE FROM archive WHERE id IN
                         (SELECT id FROM archive
                          WHERE first_seen < ?1 OR (first_seen = ?1 AND id <= ?2)
                          ORDER BY first_seen, id LIMIT ?3)",
                    params![at, id, (batch - gone) as i64],
                )?;
            }
        }
        tx.commit()?;
        Ok(gone)
    }

    /// Moves the terms of at most `batch` archived items (oldest first)
    /// from `archive_unindexed` into the FTS index, in one transaction.
    /// Returns how many moved; call again while it returns `batch`.
    ///
    /// FTS5 writes one index segment per transaction and merges segments
    /// as they pile up, so indexing a poll's handful of items in the poll's
    /// own commit cost several times what large batches do (on a 5,000-feed
    /// first cycle most of the archive's cost, through the one connection).
    pub fn index_archive(&self, batch: usize) -> Result<usize, StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<i64> = tx
            .query_row(
                "SELECT id FROM archive_unindexed ORDER BY id LIMIT 1 OFFSET ?1",
                [batch.saturating_sub(1) as i64],
                |r| r.get(0),
            )
            .optional()?;
        let upto = match last {
            Some(id) => id,
            None => tx.query_row(
                "SELECT COALESCE(MAX(id), 0) FROM archive_unindexed",
                [],
                |r| r.get(0),
            )?,
        };
        let moved = tx.execute(
            "INSERT INTO archive_fts (rowid, words, stems)
             SELECT id, words, stems FROM archive_unindexed WHERE id <= ?1 ORDER BY id",
            [upto],
        )?;
        tx.execute("DELETE FROM archive_unindexed WHERE id <= ?1", [upto])?;
        tx.commit()?;
        Ok(moved)
    }

    /// How many archived items wait for [`State::index_archive`], and when
    /// the oldest of them was first seen.
    pub fn archive_unindexed(&self) -> Result<(u64, Option<DateTime<Utc>>), StateError> {
        let conn = self.lock();
        Ok(conn.query_row(
            "SELECT COUNT(*), (SELECT first_seen FROM archive
                               WHERE id = (SELECT MIN(id) FROM archive_unindexed))
             FROM archive_unindexed",
            [],
            |r| Ok((r.get(0)?, from_ms(r.get(1)?))),
        )?)
    }

    /// Items in the archive and the first-seen times of the oldest and
    /// newest (`since`: only those first seen since then).
    pub fn archive_stats(&self, since: Option<DateTime<Utc>>) -> Result<ArchiveStats, StateError> {
        let conn = self.lock();
        Ok(conn.query_row(
            "SELECT COUNT(*), MIN(first_seen), MAX(first_seen) FROM archive
             WHERE first_seen >= ?1",
            [since.map_or(i64::MIN, ms)],
            |r| {
                Ok(ArchiveStats {
                    items: r.get(0)?,
                    oldest: from_ms(r.get(1)?),
                    newest: from_ms(r.get(2)?),
                })
            },
        )?)
    }

    /// Calls `each` with the archived items `q` selects, newest first
    /// (first seen, then published), until it returns `false`; returns how
    /// many it was given. Rows are read one at a time, so memory does not
    /// grow with the archive.
    pub fn archived(
        &self,
        q: &ArchiveQuery,
        mut each: impl FnMut(ArchivedItem) -> bool,
    ) -> Result<usize, StateError> {
        let conn = self.lock();
        // Rows not indexed yet are candidates too: the prefilter stays a
        // superset of what the query matches.
        let fts = match q.fts {
            Some(_) => {
                "AND (id IN (SELECT rowid FROM archive_fts WHERE archive_fts MATCH ?3)
                      OR id IN (SELECT id FROM archive_unindexed))"
            }
            None => "AND ?3 IS NULL",
        };
        let sql = format!(
            "SELECT feed_id, feed_title, feed_url, item_key, title, summary, content, full_text,
                    link, authors, categories, published, updated, first_seen
             FROM archive
             WHERE first_seen >= ?1 AND (?2 IS NULL OR feed_id = ?2) {fts}
             ORDER BY first_seen DESC, published DESC, id DESC"
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params![q.since.map_or(i64::MIN, ms), q.feed, q.fts])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            n += 1;
            if !each(archived_row(r)?) {
                break;
            }
        }
        Ok(n)
    }

    /// Forgets story items seen before `cutoff` (the story window).
    pub fn prune_stories(&self, cutoff: DateTime<Utc>) -> Result<usize, StateError> {
        let conn = self.lock();
        Ok(conn.execute("DELETE FROM story_items WHERE seen_at < ?1", [ms(cutoff)])?)
    }

    /// The story items seen since `since`, in arrival order (to rebuild the
    /// index at start).
    pub fn story_items(&self, since: DateTime<Utc>) -> Result<Vec<StoryRow>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT feed_id, item_key, story_id, story_first_seen, seen_at, version, shingles,
                    signature, rules, title
             FROM story_items WHERE seen_at >= ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([ms(since)], |r| {
            let rules: String = r.get(8)?;
            Ok(StoryRow {
                feed_id: r.get(0)?,
                item_key: r.get(1)?,
                story_id: r.get(2)?,
                story_first_seen: from_ms(r.get(3)?).unwrap_or_default(),
                seen_at: from_ms(r.get(4)?).unwrap_or_default(),
                version: r.get(5)?,
                shingles: r.get(6)?,
                signature: r.get(7)?,
                rules: rules
                    .split('\n')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                title: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stories of the window with more than one item, largest first
    /// (at most `limit`), and the number of stories and items in it.
    pub fn story_summaries(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<(usize, usize, Vec<StorySummary>), StateError> {
        let conn = self.lock();
        let (stories, items): (i64, i64) = conn.query_row(
            "SELECT COUNT(DISTINCT story_id), COUNT(*) FROM story_items WHERE seen_at >= ?1",
            [ms(since)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut stmt = conn.prepare(
            "SELECT story_id, MIN(story_first_seen), COUNT(*) AS n FROM story_items
             WHERE seen_at >= ?1 GROUP BY story_id HAVING n > 1
             ORDER BY n DESC, MIN(story_first_seen) LIMIT ?2",
        )?;
        let heads: Vec<(String, i64, i64)> = stmt
            .query_map(params![ms(since), limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut members = conn.prepare(
            "SELECT feed_id, title FROM story_items WHERE story_id = ?1 ORDER BY seen_at",
        )?;
        let mut out = Vec::new();
        for (id, first, n) in heads {
            let rows: Vec<(String, String)> = members
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut sources: Vec<String> = Vec::new();
            for (f, _) in &rows {
                if !sources.contains(f) {
                    sources.push(f.clone());
                }
            }
            out.push(StorySummary {
                story_id: id,
                first_seen: from_ms(Some(first)).unwrap_or_default(),
                items: n as usize,
                sources,
                title: rows.first().map(|r| r.1.clone()).unwrap_or_default(),
            });
        }
        Ok((stories as usize, items as usize, out))
    }

    /// Up to `limit` live alerts for `sink_id` that are due at `now`, in
    /// queue order.
    pub fn due(
        &self,
        sink_id: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, alert_id, payload, attempts, created_at FROM outbox
             WHERE sink_id = ?1 AND dead_at IS NULL AND bucket IS NULL AND next_attempt_at <= ?2
             ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![sink_id, ms(now), limit as i64], |r| {
            Ok(OutboxEntry {
                seq: r.get(0)?,
                alert_id: r.get(1)?,
                payload: r.get(2)?,
                attempts: r.get(3)?,
                created_at: from_ms(r.get(4)?).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next live alert or held bucket for `sink_id` becomes due.
    pub fn next_due(&self, sink_id: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let conn = self.lock();
        let v: Option<i64> = conn.query_row(
            // Held buckets included: their rows carry the release time.
            "SELECT MIN(next_attempt_at) FROM outbox WHERE sink_id = ?1 AND dead_at IS NULL",
            [sink_id],
            |r| r.get(0),
        )?;
        Ok(from_ms(v))
    }

    /// The sink confirmed these alerts (one alert, or a digest of several):
    /// remove them and count one delivery, in one transaction.
    pub fn ack_all(&self, seqs: &[i64], now: DateTime<Utc>) -> Result<(), StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut sink: Option<String> = None;
        {
            let mut del =
                tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1 RETURNING sink_id")?;
            for seq in seqs {
                if let Some(s) = del.query_row([seq], |r| r.get(0)).optional()? {
                    sink = Some(s);
                }
            }
        }
        if let Some(sink) = sink {
            tx.execute(
                "INSERT INTO sinks (sink_id, last_delivery_at, delivered) VALUES (?1, ?2, 1)
                 ON CONFLICT (sink_id) DO UPDATE SET last_delivery_at = excluded.last_delivery_at,
                     delivered = sinks.delivered + 1",
                params![sink, ms(now)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Holds an alert for a digest in `bucket`. The bucket goes out at its
    /// first member's release time, `release_at` for a new bucket; returns
    /// that time.
    pub fn hold(
        &self,
        seq: i64,
        bucket: &str,
        release_at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at: i64 = tx.query_row(
            "SELECT COALESCE(
                 (SELECT MIN(o.next_attempt_at) FROM outbox o, outbox me
                  WHERE me.seq = ?1 AND o.sink_id = me.sink_id AND o.bucket = ?2
                    AND o.dead_at IS NULL),
                 ?3)",
            params![seq, bucket, ms(release_at)],
            |r| r.get(0),
        )?;
        tx.execute(
            "UPDATE outbox SET bucket = ?2, next_attempt_at = ?3 WHERE seq = ?1",
            params![seq, bucket, at],
        )?;
        tx.commit()?;
        Ok(from_ms(Some(at)).unwrap_or(release_at))
    }

    /// Buckets of `sink_id` due at `now`, earliest first.
    pub fn due_buckets(
        &self,
        sink_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT bucket FROM outbox
             WHERE sink_id = ?1 AND bucket IS NOT NULL AND dead_at IS NULL
             GROUP BY bucket HAVING MIN(next_attempt_at) <= ?2 ORDER BY MIN(next_attempt_at)",
        )?;
        let rows = stmt.query_map(params![sink_id, ms(now)], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The first `limit` live alerts of one bucket due at `now`, in queue
    /// order.
    pub fn bucket_entries(
        &self,
        sink_id: &str,
        bucket: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, alert_id, payload, attempts, created_at FROM outbox
             WHERE sink_id = ?1 AND bucket = ?2 AND dead_at IS NULL AND next_attempt_at <= ?3
             ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![sink_id, bucket, ms(now), limit as i64], |r| {
            Ok(OutboxEntry {
                seq: r.get(0)?,
                alert_id: r.get(1)?,
                payload: r.get(2)?,
                attempts: r.get(3)?,
                created_at: from_ms(r.get(4)?).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves a bucket's release to `at` (no attempt is counted).
    pub fn postpone_bucket(
        &self,
        sink_id: &str,
        bucket: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.lock().execute(
            "UPDATE outbox SET next_attempt_at = ?3
             WHERE sink_id = ?1 AND bucket = ?2 AND dead_at IS NULL",
            params![sink_id, bucket, ms(at)],
        )?;
        Ok(())
    }

    /// When the throttle windows of `rules` to `sink_id` end (`None`: no
    /// window was ever opened).
    pub fn throttle_windows(
        &self,
        sink_id: &str,
        rules: &[String],
    ) -> Result<Vec<Option<DateTime<Utc>>>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT window_end FROM throttle WHERE sink_id = ?1 AND rule_id = ?2",
        )?;
        rules
            .iter()
            .map(|r| {
                Ok(from_ms(
                    stmt.query_row(params![sink_id, r], |row| row.get(0))
                        .optional()?,
                ))
            })
            .collect()
    }

    /// Opens throttle windows (rule id, window end) to `sink_id`.
    pub fn open_windows(
        &self,
        sink_id: &str,
        windows: &[(String, DateTime<Utc>)],
    ) -> Result<(), StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO throttle (sink_id, rule_id, window_end) VALUES (?1, ?2, ?3)
             ON CONFLICT (sink_id, rule_id) DO UPDATE SET window_end = excluded.window_end",
        )?;
        for (rule, end) in windows {
            stmt.execute(params![sink_id, rule, ms(*end)])?;
        }
        Ok(())
    }

    /// The sink failed: keep the alert and try again at `next`.
    pub fn retry_later(
        &self,
        seq: i64,
        error: &str,
        now: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.lock().execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, last_attempt_at = ?3,
                 next_attempt_at = ?4 WHERE seq = ?1",
            params![seq, error, ms(now), ms(next)],
        )?;
        Ok(())
    }

    /// Delivery is given up: the alert becomes a dead letter (kept, listed
    /// by `wirewatch alerts`, re-queued by `alerts retry`).
    pub fn bury(&self, seq: i64, error: &str, now: DateTime<Utc>) -> Result<(), StateError> {
        self.lock().execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, last_attempt_at = ?3,
                 dead_at = ?3 WHERE seq = ?1",
            params![seq, error, ms(now)],
        )?;
        Ok(())
    }

    /// Buries every live alert of `sink_id` queued before `cutoff` (past the
    /// retry horizon); returns how many.
    pub fn expire(
        &self,
        sink_id: &str,
        cutoff: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StateError> {
        Ok(self.lock().execute(
            "UPDATE outbox SET dead_at = ?3,
                 last_error = COALESCE(last_error || ' (then: ' || ?4 || ')', ?4)
             WHERE sink_id = ?1 AND dead_at IS NULL AND created_at < ?2",
            params![sink_id, ms(cutoff), ms(now), error],
        )?)
    }

    /// Outbox upkeep. Buries the live alerts of sinks not in `sinks` (their
    /// sink was removed from the config) queued before `orphan_cutoff`, and
    /// deletes at most `batch` dead letters that died before `dead_cutoff`.
    /// Returns `(buried, deleted)`; call again while `deleted == batch`.
    pub fn prune_outbox(
        &self,
        sinks: &[String],
        orphan_cutoff: DateTime<Utc>,
        dead_cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<(usize, usize), StateError> {
        let configured =
            serde_json::to_string(sinks).map_err(|e| StateError::Task(e.to_string()))?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let buried = tx.execute(
            "UPDATE outbox SET dead_at = ?3,
                 last_error = COALESCE(last_error || ' (then: ' || ?4 || ')', ?4)
             WHERE dead_at IS NULL AND created_at < ?2
                 AND sink_id NOT IN (SELECT value FROM json_each(?1))",
            params![
                configured,
                ms(orphan_cutoff),
                ms(now),
                "its sink is no longer in the config"
            ],
        )?;
        let deleted = tx.execute(
            "DELETE FROM outbox WHERE seq IN
                 (SELECT seq FROM outbox WHERE dead_at IS NOT NULL AND dead_at < ?1 LIMIT ?2)",
            params![ms(dead_cutoff), batch as i64],
        )?;
        tx.commit()?;
        Ok((buried, deleted))
    }

    /// Dead letters of one sink (or all) go back to the queue, due now;
    /// returns how many.
    pub fn requeue_dead(
        &self,
        sink_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<usize, StateError> {
        Ok(self.lock().execute(
            "UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = ?2,
                 created_at = ?2, bucket = NULL
             WHERE dead_at IS NOT NULL AND (?1 IS NULL OR sink_id = ?1)",
            params![sink_id, ms(now)],
        )?)
    }

    /// Switches a sink off after its endpoint answered "gone".
    pub fn disable_sink(
        &self,
        sink_id: &str,
        endpoint: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.lock().execute(
            "INSERT INTO sinks (sink_id, disabled_at, disabled_endpoint, disabled_reason)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sink_id) DO UPDATE SET disabled_at = excluded.disabled_at,
                 disabled_endpoint = excluded.disabled_endpoint,
                 disabled_reason = excluded.disabled_reason",
            params![sink_id, ms(now), endpoint, reason],
        )?;
        Ok(())
    }

    /// Switches a sink back on; returns whether it was off.
    pub fn enable_sink(&self, sink_id: &str) -> Result<bool, StateError> {
        Ok(self.lock().execute(
            "UPDATE sinks SET disabled_at = NULL, disabled_endpoint = NULL, disabled_reason = NULL
             WHERE sink_id = ?1 AND disabled_at IS NOT NULL",
            [sink_id],
        )? > 0)
    }

    /// Whether (and why) a sink is switched off.
    pub fn sink_disabled(&self, sink_id: &str) -> Result<Option<Disabled>, StateError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT disabled_at, disabled_endpoint, disabled_reason FROM sinks
                 WHERE sink_id = ?1 AND disabled_at IS NOT NULL",
                [sink_id],
                |r| {
                    Ok(Disabled {
                        at: from_ms(r.get(0)?).unwrap_or_default(),
                        endpoint: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        reason: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    /// Delivery health of the given sinks plus any other sink that still
    /// has rows (a sink removed from the config), in that order.
    pub fn sink_statuses(&self, sink_ids: &[String]) -> Result<Vec<SinkStatus>, StateError> {
        let conn = self.lock();
        let mut ids: Vec<String> = sink_ids.to_vec();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT sink_id FROM outbox UNION SELECT sink_id FROM sinks ORDER BY 1",
            )?;
            for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let id = id?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let mut counts = conn.prepare_cached(
            "SELECT COUNT(*) FILTER (WHERE dead_at IS NULL), COUNT(*) FILTER (WHERE dead_at IS NOT NULL),
                    MIN(created_at) FILTER (WHERE dead_at IS NULL),
                    COUNT(*) FILTER (WHERE dead_at IS NULL AND bucket IS NOT NULL)
             FROM outbox WHERE sink_id = ?1",
        )?;
        let mut last_err = conn.prepare_cached(
            "SELECT last_error FROM outbox WHERE sink_id = ?1 AND last_error IS NOT NULL
             ORDER BY last_attempt_at DESC LIMIT 1",
        )?;
        let mut health = conn.prepare_cached(
            "SELECT delivered, last_delivery_at, disabled_at, disabled_endpoint, disabled_reason
             FROM sinks WHERE sink_id = ?1",
        )?;
        let mut out = Vec::new();
        for id in ids {
            let mut st = SinkStatus {
                sink: id.clone(),
                ..SinkStatus::default()
            };
            counts.query_row([&id], |r| {
                st.pending = r.get(0)?;
                st.dead = r.get(1)?;
                st.oldest_pending_at = from_ms(r.get(2)?);
                st.held = r.get(3)?;
                Ok(())
            })?;
            st.last_error = last_err.query_row([&id], |r| r.get(0)).optional()?;
            health
                .query_row([&id], |r| {
                    st.delivered = r.get(0)?;
                    st.last_delivery_at = from_ms(r.get(1)?);
                    if let Some(at) = from_ms(r.get(2)?) {
                        st.disabled = Some(Disabled {
                            at,
                            endpoint: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                            reason: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        });
                    }
                    Ok(())
                })
                .optional()?;
            out.push(st);
        }
        Ok(out)
    }

    /// Outbox rows, live and dead, of one sink or all, in queue order
    /// (at most `limit`).
    pub fn outbox_rows(
        &self,
        sink_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT sink_id, alert_id, payload, created_at, attempts, next_attempt_at,
                    last_attempt_at, last_error, dead_at, bucket
             FROM outbox WHERE (?1 IS NULL OR sink_id = ?1) ORDER BY sink_id, seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![sink_id, limit as i64], |r| {
            Ok(OutboxRow {
                sink: r.get(0)?,
                alert_id: r.get(1)?,
                payload: r.get(2)?,
                created_at: from_ms(r.get(3)?).unwrap_or_default(),
                attempts: r.get(4)?,
                next_attempt_at: from_ms(r.get(5)?).unwrap_or_default(),
                last_attempt_at: from_ms(r.get(6)?),
                last_error: r.get(7)?,
                dead_at: from_ms(r.get(8)?),
                held_for: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(new: &[&str], alerts: &[(&str, &str)]) -> PollCommit {
        PollCommit {
            stories: Vec::new(),
            held: Vec::new(),
            status: 200,
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            present: new.iter().map(|s| s.to_string()).collect(),
            new: new.iter().map(|s| s.to_string()).collect(),
            alerts: alerts
                .iter()
                .map(|(sink, id)| {
                    (
                        sink.to_string(),
                        id.to_string(),
                        format!("{{\"id\":\"{id}\"}}"),
                    )
                })
                .collect(),
            items: new.len(),
            items_alerted: alerts.len(),
            hints: FeedHints::default(),
            archive: Vec::new(),
        }
    }

    #[test]
    fn processes_opening_a_new_file_at_once_migrate_it_once() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("wirewatch.db");
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (p, b) = (p.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        b.wait();
                        State::open(&p).map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn seen_and_outbox_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        {
            let s = State::open_dir(dir.path()).unwrap();
            assert!(!s.feed_memory("f").unwrap().polled_before);
            let keys = vec!["a".to_string(), "b".to_string(), "a".to_string()];
            assert_eq!(s.unseen("f", &keys).unwrap(), vec!["a", "b"]);
            s.commit_poll(
                "f",
                &commit(&["a", "b"], &[("out", "x1"), ("out", "x1"), ("log", "x1")]),
                now,
            )
            .unwrap();
        }
        let s = State::open_dir(dir.path()).unwrap();
        let mem = s.feed_memory("f").unwrap();
        assert!(mem.polled_before);
        assert_eq!(mem.validators.etag.as_deref(), Some("\"v1\""));
        assert!(s.unseen("f", &["a".into(), "c".into()]).unwrap() == vec!["c"]);
        assert!(s.unseen("other", &["a".into()]).unwrap() == vec!["a"]);
        let due = s.due("out", now, 10).unwrap();
        assert_eq!(due.len(), 1, "duplicate alert ids are queued once per sink");
        let pending: Vec<(String, u64)> = s
            .sink_statuses(&[])
            .unwrap()
            .into_iter()
            .map(|st| (st.sink, st.pending))
            .collect();
        assert_eq!(pending, vec![("log".into(), 1), ("out".into(), 1)]);
        s.retry_later(due[0].seq, "boom", now, now + chrono::Duration::seconds(60))
            .unwrap();
        assert!(s.due("out", now, 10).unwrap().is_empty());
        let later = s
            .due("out", now + chrono::Duration::seconds(61), 10)
            .unwrap();
        assert_eq!(later[0].attempts, 1);
        s.ack_all(&[later[0].seq], now).unwrap();
        assert_eq!(s.next_due("out").unwrap(), None);
    }

    #[test]
    fn outbox_depths_count_queued_held_and_dead_per_sink() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open_dir(dir.path()).unwrap();
        let now = Utc::now();
        let alerts = [("out", "a1"), ("out", "a2"), ("out", "a3"), ("log", "a1")];
        s.commit_poll("f", &commit(&["k"], &alerts), now).unwrap();
        let due = s.due("out", now, 10).unwrap();
        s.hold(due[0].seq, "digest", now).unwrap();
        s.bury(due[1].seq, "rejected", now).unwrap();
        let ids = ["out".to_string(), "log".to_string(), "idle".to_string()];
        let depth = |sink: &str, queued, held, dead| OutboxDepth {
            sink: sink.into(),
            queued,
            held,
            dead,
        };
        assert_eq!(
            s.outbox_depths(&ids).unwrap(),
            vec![
                depth("out", 2, 1, 1),
                depth("log", 1, 0, 0),
                depth("idle", 0, 0, 0)
            ]
        );
    }

    #[test]
    fn failures_count_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open_dir(dir.path()).unwrap();
        let now = Utc::now();
        assert_eq!(
            s.record_failure("f", Some(500), "HTTP 500", now).unwrap(),
            1
        );
        assert_eq!(s.record_failure("f", None, "timed out", now).unwrap(), 2);
        let st = &s.feed_statuses(&["f".into()]).unwrap()[0];
        assert_eq!(
            (st.consecutive_failures, st.last_error.as_deref()),
            (2, Some("timed out"))
        );
        assert!(
            !s.feed_memory("f").unwrap().polled_before,
            "a failure is not a first poll"
        );
        s.record_not_modified("f", 304, now).unwrap();
        let st = &s.feed_statuses(&["f".into()]).unwrap()[0];
        assert_eq!(
            (
                st.consecutive_failures,
                st.last_status,
                st.last_error.clone()
            ),
            (0, Some(304), None)
        );
    }

    #[test]
    fn story_items_survive_reopen_are_pruned_and_repeats_join_the_digest_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // Stored in milliseconds.
        let t0 = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let row = |key: &str, story: &str, at: DateTime<Utc>| StoryRow {
            feed_id: "wire".into(),
            item_key: key.into(),
            story_id: story.into(),
            story_first_seen: t0,
            seen_at: at,
            version: 1,
            shingles: 12,
            signature: vec![7; 256],
            rules: vec!["floods".into(), "rivers".into()],
            title: format!("title {key}"),
        };
        {
            let s = State::open(&path).unwrap();
            let mut c = commit(&["a", "b", "c"], &[]);
            c.stories = vec![
                row("a", "00000000000000aa", t0),
                row("b", "00000000000000aa", t0 + chrono::Duration::seconds(1)),
                row("c", "00000000000000cc", t0 + chrono::Duration::seconds(2)),
            ];
            let release = t0 + chrono::Duration::hours(1);
            c.held = vec![("out".into(), "r1".into(), "{}".into(), release)];
            s.commit_poll("wire", &c, t0).unwrap();
            let mut c = commit(&[], &[]);
            c.held = vec![(
                "out".into(),
                "r2".into(),
                "{}".into(),
                release + chrono::Duration::hours(5),
            )];
            s.commit_poll("wire", &c, t0).unwrap();
            assert_eq!(
                s.due_buckets("out", release).unwrap(),
                vec!["digest".to_string()],
                "the second repeat joined the open bucket and its release time"
            );
            assert_eq!(
                s.bucket_entries("out", "digest", Utc::now() + chrono::Duration::days(2), 100)
                    .unwrap()
                    .len(),
                2
            );
        }
        let s = State::open(&path).unwrap();
        let rows = s.story_items(t0 - chrono::Duration::hours(1)).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], row("a", "00000000000000aa", t0));
        let (stories, items, multi) = s
            .story_summaries(t0 - chrono::Duration::hours(1), 10)
            .unwrap();
        assert_eq!((stories, items), (2, 3));
        assert_eq!(multi.len(), 1);
        assert_eq!(multi[0].items, 2);
        assert_eq!(multi[0].sources, vec!["wire".to_string()]);
        assert_eq!(multi[0].title, "title a");
        assert_eq!(
            s.prune_stories(t0 + chrono::Duration::milliseconds(1500))
                .unwrap(),
            2
        );
        assert_eq!(s.story_items(t0).unwrap().len(), 1);
    }

    #[test]
    fn prune_forgets_only_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open_dir(dir.path()).unwrap();
        let t0 = Utc::now() - chrono::Duration::days(100);
        s.commit_poll("f", &commit(&["old"], &[]), t0).unwrap();
        s.commit_poll("f", &commit(&["new"], &[]), Utc::now())
            .unwrap();
        assert_eq!(
            s.prune_seen(Utc::now() - chrono::Duration::days(90))
                .unwrap(),
            1
        );
        assert_eq!(
            s.unseen("f", &["old".into(), "new".into()]).unwrap(),
            vec!["old"]
        );
    }

    fn archived(id: &str, title: &str) -> ArchiveEntry {
        ArchiveEntry {
            feed_title: "Feed".into(),
            feed_url: "http://f.invalid/".into(),
            item: crate::model::Item {
                key: id.into(),
                title: title.into(),
                link: Some(format!("http://f.invalid/{id}")),
                published: Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()),
                updated: None,
                summary: format!("summary of {id}"),
                content: String::new(),
                authors: vec!["Anna Petrova".into()],
                categories: vec!["world".into()],
                full_text: Some(format!("the article of {id}")),
            },
            words: title.to_lowercase(),
            stems: title.to_lowercase(),
        }
    }

    fn archive_keys(s: &State, q: ArchiveQuery) -> Vec<String> {
        let mut out = Vec::new();
        s.archived(&q, |a| {
            out.push(a.item.key);
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn new_items_are_archived_by_the_seen_commit() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open_dir(dir.path()).unwrap();
        let t0 = Utc::now() - chrono::Duration::hours(2);
        let mut c = commit(&["a", "b"], &[("out", "x")]);
        c.archive = vec![archived("a", "kursk deminers"), archived("b", "weather")];
        s.commit_poll("f", &c, t0).unwrap();
        // The same key again (its seen key forgotten): the row stays.
        let mut again = commit(&["a"], &[]);
        again.archive = vec![archived("a", "changed title")];
        s.commit_poll("f", &again, Utc::now()).unwrap();
        let mut rows = Vec::new();
        s.archived(&ArchiveQuery::default(), |a| {
            rows.push(a);
            true
        })
        .unwrap();
        assert_eq!(rows.len(), 2);
        let a = rows.iter().find(|r| r.item.key == "a").unwrap();
        assert_eq!(a.item.title, "kursk deminers");
        assert_eq!(a.item.authors, vec!["Anna Petrova"]);
        assert_eq!(a.item.categories, vec!["world"]);
        assert_eq!(a.item.link.as_deref(), Some("http://f.invalid/a"));
        assert_eq!(a.item.full_text.as_deref(), Some("the article of a"));
        assert_eq!(a.feed_id, "f");
        assert_eq!(a.first_seen.timestamp_millis(), t0.timestamp_millis());
        let fts = |q: &str| {
            archive_keys(
                &s,
                ArchiveQuery {
                    fts: Some(q.into()),
                    ..ArchiveQuery::default()
                },
            )
        };
        // Before indexing every waiting row is a candidate (a superset);
        // after it the index narrows, and nothing waits any more.
        assert_eq!(s.archive_unindexed().unwrap().0, 2);
        assert_eq!(
            s.archive_unindexed()
                .unwrap()
                .1
                .map(|t| t.timestamp_millis()),
            Some(t0.timestamp_millis())
        );
        assert_eq!(fts("stems:\"kursk\"").len(), 2);
        assert_eq!(s.index_archive(1).unwrap(), 1);
        // a is indexed and matches; b still waits, so it is a candidate.
        assert_eq!(fts("stems:\"kursk\""), vec!["b", "a"]);
        assert_eq!(fts("words:\"wea\" *"), vec!["b"], "a is indexed, no match");
        assert_eq!(s.index_archive(10).unwrap(), 1);
        assert_eq!(s.index_archive(10).unwrap(), 0);
        assert_eq!(s.archive_unindexed().unwrap(), (0, None));
        assert_eq!(fts("stems:\"kursk\""), vec!["a"]);
        assert_eq!(fts("words:\"wea\" *"), vec!["b"]);
        assert!(fts("stems:\"changed\"").is_empty());
        assert_eq!(
            s.archive_stats(None).unwrap().items,
            2,
            "stats count every row"
        );
        assert_eq!(
            archive_keys(
                &s,
                ArchiveQuery {
                    feed: Some("other".into()),
                    ..ArchiveQuery::default()
                }
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn outbox_upkeep_buries_orphans_and_forgets_old_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open_dir(dir.path()).unwrap();
        let now = Utc::now();
        let days = chrono::Duration::days;
        // Queued four days ago: one for a configured sink, one for a sink
        // since removed; a second for the removed sink queued just now.
        s.commit_poll(
            "f",
            &commit(&["a"], &[("kept", "k1"), ("gone", "g1")]),
            now - days(4),
        )
        .unwrap();
        s.commit_poll("f", &commit(&["b"], &[("gone", "g2")]), now)
            .unwrap();
        // Dead letters of the kept sink: one died 40 days ago, one 10.
        s.commit_poll("f", &commit(&["c"], &[("kept", "d1")]), now - days(50))
            .unwrap();
        s.expire("kept", now - days(45), "rejected", now - days(40))
            .unwrap();
        s.commit_poll("f", &commit(&["d"], &[("kept", "d2")]), now - days(12))
            .unwrap();
        s.expire("kept", now - days(11), "rejected", now - days(10))
            .unwrap();
        let kept = vec!["kept".to_string()];
        let (buried, deleted) = s
            .prune_outbox(&kept, now - days(3), now - days(30), now, 100)
            .unwrap();
        assert_eq!((buried, deleted), (1, 1));
        let rows = s.outbox_rows(None, 100).unwrap();
        let row = |id: &str| rows.iter().find(|r| r.alert_id == id);
        assert!(row("d1").is_none(), "dead for 40 days: deleted");
        assert!(
            row("d2").is_some_and(|r| r.dead_at.is_some()),
            "dead for 10 days: kept"
        );
        assert!(
            row("k1").is_some_and(|r| r.dead_at.is_none()),
            "its sink is configured"
        );
        let g1 = row("g1").unwrap();
        assert!(g1.dead_at.is_some());
        assert!(g1
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no longer in the config")));
        assert!(
            row("g2").is_some_and(|r| r.dead_at.is_none()),
            "queued just now: re-adding the sink would still deliver it"
        );
        // Batches: one dead letter per call.
        let (_, deleted) = s
            .prune_outbox(&kept, now - days(3), now + days(1), now, 1)
            .unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(
            s.prune_outbox(&kept, now - days(3), now + days(1), now, 1)
                .unwrap()
                .1,
            1
        );
        assert_eq!(
            s.prune_outbox(&kept, now - days(3), now + days(1), now, 1)
                .unwrap()
                .1,
            0
        );
    }

    #[test]
    fn archive_prunes_by_age_then_by_count_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open_dir(dir.path()).unwrap();
        let now = Utc::now();
        for (i, age) in [10i64, 9, 8, 3, 2, 1].iter().enumerate() {
            let key = format!("k{i}");
            let mut c = commit(&[key.as_str()], &[]);
            c.archive = vec![archived(&key, &format!("item {age} days old"))];
            s.commit_poll("f", &c, now - chrono::Duration::days(*age))
                .unwrap();
        }
        // Half indexed, half waiting: pruning removes both kinds of terms.
        assert_eq!(s.index_archive(3).unwrap(), 3);
        let week = now - chrono::Duration::days(7);
        // Three are older than a week; a batch of two takes the oldest two.
        assert_eq!(s.prune_archive(week, 100, 2).unwrap(), 2);
        assert_eq!(s.prune_archive(week, 100, 2).unwrap(), 1);
        assert_eq!(s.prune_archive(week, 100, 2).unwrap(), 0);
        let newest_first = archive_keys(&s, ArchiveQuery::default());
        assert_eq!(newest_first, vec!["k5", "k4", "k3"]);
        // The cap keeps the newest.
        assert_eq!(s.prune_archive(week, 1, 100).unwrap(), 2);
        assert_eq!(archive_keys(&s, ArchiveQuery::default()), vec!["k5"]);
        // The index goes with the rows.
        let indexed = || -> i64 {
            s.lock()
                .query_row(
                    "SELECT COUNT(*) FROM archive_fts WHERE archive_fts MATCH 'item'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(indexed(), 0, "the indexed rows were the oldest, all pruned");
        assert_eq!(s.archive_unindexed().unwrap().0, 1);
        assert_eq!(s.index_archive(10).unwrap(), 1);
        assert_eq!(indexed(), 1);
        // `since` filters by first seen.
        let since = archive_keys(
            &s,
            ArchiveQuery {
                since: Some(now),
                ..ArchiveQuery::default()
            },
        );
        assert!(since.is_empty());
        assert_eq!(s.prune_archive(now, 0, 100).unwrap(), 1);
    }

    #[test]
    fn newer_schema_and_garbage_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wirewatch.db");
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let e = State::open(&p).err().unwrap().to_string();
        assert!(
            e.contains("schema version 99") && e.contains("newer"),
            "{e}"
        );
        let g = dir.path().join("garbage.db");
        std::fs::write(&g, vec![b'x'; 4096]).unwrap();
        let e = State::open(&g).err().unwrap().to_string();
        assert!(
            e.contains("not a wirewatch database") || e.contains("not a database"),
            "{e}"
        );
    }

    #[test]
    fn moves_and_schedule_hints_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open_dir(dir.path()).unwrap();
        let now = Utc::now();
        assert!(st.feed_memory("f").unwrap().moved.is_none());
        st.record_moved("f", "http://a/old", "http://a/new", now)
            .unwrap();
        let mut c = commit(&["k1"], &[]);
        c.hints = FeedHints {
            ttl: Some(Duration::from_secs(1800)),
            skip_hours: 1 << 23,
            skip_days: 1 << 6,
        };
        st.commit_poll("f", &c, now).unwrap();
        drop(st);
        let st = State::open_dir(dir.path()).unwrap();
        let m = st.feed_memory("f").unwrap();
        let moved = m.moved.expect("the move survives a restart");
        assert_eq!(
            (moved.from.as_str(), moved.to.as_str()),
            ("http://a/old", "http://a/new")
        );
        assert_eq!(m.hints, c.hints);
        assert_eq!(
            st.feed_statuses(&["f".into()]).unwrap()[0]
                .moved
                .as_ref()
                .map(|m| m.to.as_str()),
            Some("http://a/new")
        );
        st.clear_moved("f").unwrap();
        assert!(st.feed_memory("f").unwrap().moved.is_none());
        // A document without hints clears them.
        st.commit_poll("f", &commit(&["k2"], &[]), now).unwrap();
        assert_eq!(st.feed_memory("f").unwrap().hints, FeedHints::default());
    }
}
