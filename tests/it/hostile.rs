//! The hostile-feed acceptance suite: every fetch row of the acceptance
//! table in the reliability design (entity attacks, deep nesting, size
//! bombs, tiny items, stalls, trickles, a full listen backlog, redirect
//! attacks, mis-declared encodings, injection in titles), each played by a
//! loopback server of our own against the real daemon (`wirewatch run`),
//! next to healthy feeds that must keep alerting on schedule.
//!
//! Figures are measured outside the daemon: a poll's duration from the
//! request's arrival at our server (wall clock, compared with the daemon's
//! log timestamps, or the moment the daemon closed the connection), peak
//! memory from the daemon's `VmHWM` in `/proc/PID/status`. `docs/hostile-feeds.md`
//! maps each table row to its test here.

use std::collections::{BTreeSet, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crate::server::{gzip_bomb, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

/// Fetch deadline of every daemon here (`fetch_timeout`).
const DEADLINE: Duration = Duration::from_secs(2);
/// The table's allowance over a deadline: +10 %.
const DEADLINE_MAX: Duration = Duration::from_millis(2200);
/// Poll interval of the healthy feeds.
const HEALTHY_EVERY: Duration = Duration::from_secs(1);
/// Longest gap allowed between two polls of a healthy feed: the interval
/// with its +10 % jitter, plus room for a poll itself (fetch, parse, one
/// SQLite transaction) on a busy 2-core machine. Well under the deadline, so
/// a healthy poll held up by a hanging one fails the test.
const HEALTHY_GAP_MAX: Duration = Duration::from_millis(1700);
/// Longest any held connection is kept open (a safety net).
const MAX_HOLD: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

// ------------------------------------------------------------- the server ---

/// What one path does.
#[derive(Clone)]
enum Act {
    /// A complete response.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Arc<Vec<u8>>,
    },
    /// `prefix`, then `total` bytes of `fill`, written in 64 KiB pieces as
    /// long as the client reads (never held in memory); with or without a
    /// `Content-Length` for the whole.
    Stream {
        prefix: Vec<u8>,
        fill: u8,
        total: u64,
        declare_length: bool,
    },
    /// Reads the request and never answers.
    Stall,
    /// Headers at once (with the full `Content-Length`), then one body byte
    /// per `every`.
    Trickle { body: Vec<u8>, every: Duration },
    /// A healthy RSS feed that gains one "Kursk" item per second since the
    /// server started (the last 20 are listed).
    Healthy { feed: String },
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Hit {
    arrived: Instant,
    /// The same moment on the wall clock (to compare with the daemon's log).
    arrived_wall: SystemTime,
    /// When the client closed the connection while we were holding it open
    /// or still sending (stall, trickle, stream).
    closed: Option<Instant>,
    /// Body bytes written.
    sent: u64,
    /// For a healthy feed, the newest item number served.
    newest: Option<u64>,
}

struct Shared {
    routes: Mutex<HashMap<String, Act>>,
    hits: Mutex<HashMap<String, Vec<Hit>>>,
    stop: AtomicBool,
    started: (Instant, SystemTime),
}

/// A loopback HTTP/1.1 server playing [`Act`]s, one thread per connection,
/// `Connection: close` on every reply; stops when dropped.
struct Hostile {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Hostile {
    fn start() -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            hits: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            started: (Instant::now(), SystemTime::now()),
        });
        let sh = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let sh = Arc::clone(&sh);
                thread::spawn(move || handle(stream, &sh));
            }
        });
        Hostile {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn route(&self, path: &str, act: Act) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), act);
    }

    /// A 200 with `content_type` and `body`.
    fn ok(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.reply(path, 200, &[("Content-Type", content_type)], body);
    }

    fn reply(&self, path: &str, status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) {
        self.route(
            path,
            Act::Reply {
                status,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                body: Arc::new(body.into()),
            },
        );
    }

    fn redirect(&self, path: &str, location: &str) {
        self.reply(path, 302, &[("Location", location)], "");
    }

    /// A healthy feed `id` at `/healthy/ID.xml`; returns its URL.
    fn healthy(&self, id: &str) -> String {
        let path = format!("/healthy/{id}.xml");
        self.route(&path, Act::Healthy { feed: id.into() });
        self.url(&path)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// The request path, once the head has been read (16 KiB at most).
fn read_path(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let target = head.split_whitespace().nth(1)?;
    Some(target.split('?').next()?.to_string())
}

fn head(status: u16, headers: &[(String, String)], length: Option<u64>) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} Whatever\r\n");
    for (n, v) in headers {
        h.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(n) = length {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    h.push_str("Connection: close\r\n\r\n");
    h.into_bytes()
}

/// Waits up to `d` for the client to close the connection; the moment it
/// did, or `None` if it did not (or the server stopped).
fn closed_within(s: &mut TcpStream, sh: &Shared, d: Duration) -> Option<Instant> {
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let end = Instant::now() + d;
    let mut buf = [0u8; 512];
    while Instant::now() < end && !sh.stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(Instant::now()),
        }
    }
    None
}

/// Sends a complete response and closes; returns the body size.
fn reply(s: &mut TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) -> u64 {
    let _ = s.write_all(&head(status, headers, Some(body.len() as u64)));
    let _ = s.write_all(body);
    let _ = s.flush();
    let _ = s.shutdown(Shutdown::Write);
    // Let the client read it all before the socket goes.
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.read(&mut [0u8; 1]);
    body.len() as u64
}

fn handle(mut s: TcpStream, sh: &Shared) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_nodelay(true);
    let Some(path) = read_path(&mut s) else {
        return;
    };
    let hit = Hit {
        arrived: Instant::now(),
        arrived_wall: SystemTime::now(),
        closed: None,
        sent: 0,
        newest: None,
    };
    let act = sh.routes.lock().unwrap().get(&path).cloned();
    let index = {
        let mut hits = sh.hits.lock().unwrap();
        let v = hits.entry(path.clone()).or_default();
        v.push(hit);
        v.len() - 1
    };
    let (mut closed, mut sent, mut newest) = (None, 0u64, None);
    match act {
        None => sent = reply(&mut s, 404, &[], b""),
        Some(Act::Reply {
            status,
            headers,
            body,
        }) => sent = reply(&mut s, status, &headers, &body),
        Some(Act::Healthy { feed }) => {
            let (n, body) = healthy_doc(&feed, sh.started);
            newest = Some(n);
            let ct = [("Content-Type".to_string(), RSS.to_string())];
            sent = reply(&mut s, 200, &ct, body.as_bytes());
        }
        Some(Act::Stream {
            prefix,
            fill,
            total,
            declare_length,
        }) => {
            let ct = [("Content-Type".to_string(), RSS.to_string())];
            let length = declare_length.then_some(prefix.len() as u64 + total);
            let chunk = vec![fill; 64 * 1024];
            let started = Instant::now();
            if s.write_all(&head(200, &ct, length)).is_ok() && s.write_all(&prefix).is_ok() {
                sent = prefix.len() as u64;
                while sent < total && started.elapsed() < MAX_HOLD {
                    if sh.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let n = chunk.len().min((total - sent) as usize);
                    if s.write_all(&chunk[..n]).is_err() {
                        closed = Some(Instant::now());
                        break;
                    }
                    sent += n as u64;
                }
            }
        }
        Some(Act::Stall) => closed = closed_within(&mut s, sh, MAX_HOLD),
        Some(Act::Trickle { body, every }) => {
            let ct = [("Content-Type".to_string(), RSS.to_string())];
            if s.write_all(&head(200, &ct, Some(body.len() as u64)))
                .is_ok()
            {
                for b in &body {
                    if s.write_all(&[*b]).is_err() {
                        closed = Some(Instant::now());
                        break;
                    }
                    sent += 1;
                    closed = closed_within(&mut s, sh, every);
                    if closed.is_some() {
                        break;
                    }
                }
            }
        }
    }
    let mut hits = sh.hits.lock().unwrap();
    if let Some(h) = hits.get_mut(&path).and_then(|v| v.get_mut(index)) {
        h.closed = closed;
        h.sent = sent;
        h.newest = newest;
    }
}

/// The title of item `n` of healthy feed `feed`.
fn healthy_title(feed: &str, n: u64) -> String {
    format!("Kursk {feed} bulletin {n}")
}

/// A healthy feed's document now: items 0..=n where n is the whole seconds
/// since the server started (the newest 20), each dated when it appeared.
fn healthy_doc(feed: &str, started: (Instant, SystemTime)) -> (u64, String) {
    let n = started.0.elapsed().as_secs();
    let entries: Vec<Entry> = (n.saturating_sub(19)..=n)
        .rev()
        .map(|i| {
            let at = started.1 + Duration::from_secs(i);
            let age = SystemTime::now()
                .duration_since(at)
                .unwrap_or_default()
                .as_secs() as i64;
            entry(
                &format!("{feed}-{i}"),
                &healthy_title(feed, i),
                "A routine bulletin from a well-behaved server.",
            )
            .age(age)
        })
        .collect();
    (n, rss(&format!("Healthy {feed}"), &entries))
}

/// A listener that records every connection made to it and closes it at
/// once: the place XXE entities and downgrade redirects point at.
struct Recorder {
    addr: SocketAddr,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let addr = listener.local_addr().expect("addr");
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st) = (Arc::clone(&count), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if conn.is_ok() {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Recorder {
            addr,
            count,
            stop,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A listener whose accept queue is full and which never accepts: a
/// connection attempt to it hangs in the handshake. Kept full by the
/// connections it holds.
struct FullBacklog {
    addr: SocketAddr,
    _listener: std::net::TcpListener,
    _held: Vec<TcpStream>,
}

impl FullBacklog {
    fn start() -> FullBacklog {
        // std binds with a large backlog; tokio's TcpSocket takes one (0:
        // room for one pending connection on Linux).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let listener = rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
            sock.listen(0)
                .expect("listen")
                .into_std()
                .expect("into_std")
        });
        let addr = listener.local_addr().expect("addr");
        let mut held = Vec::new();
        let full = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => held.push(s),
                Err(_) => break true,
            }
            if held.len() > 64 {
                break false;
            }
        };
        assert!(full, "could not fill the listen backlog of {addr}");
        FullBacklog {
            addr,
            _listener: listener,
            _held: held,
        }
    }
}

// ------------------------------------------------------------- the daemon ---

/// A running `wirewatch run` over a workspace.
struct Run {
    ws: Workspace,
    daemon: Daemon,
}

impl Run {
    /// Starts the daemon on `cfg` (every feed's interval is
    /// [`HEALTHY_EVERY`] unless it says otherwise). Logs at info, plus
    /// hyper-util's "connecting to ADDR" debug line, which marks the start of
    /// a connection attempt (the full-backlog case has no request to time).
    fn start(cfg: &Config) -> Run {
        Run::start_in(Workspace::new(cfg))
    }

    fn start_in(ws: Workspace) -> Run {
        let daemon = ws.spawn_daemon_env(&[(
            "WIREWATCH_LOG",
            "info,hyper_util::client::legacy::connect::http=debug",
        )]);
        Run { ws, daemon }
    }

    fn log(&self) -> String {
        self.daemon.stderr()
    }

    fn pid(&self) -> u32 {
        self.daemon.child.id()
    }

    /// Peak resident memory of the daemon so far (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("daemon /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("VmHWM")
    }

    /// The feed's `status --json` entry.
    fn status(&self, feed: &str) -> serde_json::Value {
        self.ws
            .status()
            .remove(feed)
            .unwrap_or_else(|| panic!("no status for {feed}"))
    }

    fn failures(&self, feed: &str) -> u64 {
        self.status(feed)["consecutive_failures"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until `cond` holds (checked every 100 ms), failing with the
    /// daemon's log after `timeout`.
    #[track_caller]
    fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        assert!(
            wait_until(timeout, cond),
            "{what}: not within {timeout:?}\n{}",
            self.daemon.logs()
        );
    }

    /// The daemon must still run; SIGTERM must stop it with exit 0.
    #[track_caller]
    fn stop(mut self) -> (Workspace, String, String) {
        assert!(
            self.daemon.running(),
            "daemon died:\n{}",
            self.daemon.logs()
        );
        self.daemon.signal("TERM");
        let st = self.daemon.wait_exit(Duration::from_secs(15));
        let st = st.unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", self.daemon.logs()));
        assert_eq!(st.code(), Some(0), "{}", self.daemon.logs());
        let read = |n: &str| std::fs::read(self.ws.path().join(n)).unwrap_or_default();
        let out = String::from_utf8_lossy(&read("daemon.stdout")).into_owned();
        let err = String::from_utf8_lossy(&read("daemon.stderr")).into_owned();
        (self.ws, out, err)
    }
}

/// The base config of this suite: short deadlines, interval 1 s.
fn base_config(rules: &str) -> Config {
    Config::new(rules)
        .set("poll_interval", "\"1s\"")
        .set("fetch_timeout", "\"2s\"")
        .set("connect_timeout", "\"2s\"")
        .set("max_concurrent_fetches", "8")
}

/// A timestamped log line of the daemon: (wall time, text).
fn log_lines(log: &str) -> Vec<(SystemTime, &str)> {
    log.lines()
        .filter_map(|l| {
            let ts = l.split_whitespace().next()?;
            let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
            Some((SystemTime::from(t), l))
        })
        .collect()
}

/// Whether a log line is about feed `feed` (the field, not a prefix of
/// another id).
fn names_feed(line: &str, feed: &str) -> bool {
    line.split_whitespace().any(|w| w == format!("feed={feed}"))
}

/// When each poll of `feed` ended, from the daemon's log ("polled",
/// "poll failed" or "feed keeps failing").
fn poll_ends(log: &str, feed: &str) -> Vec<SystemTime> {
    log_lines(log)
        .into_iter()
        .filter(|(_, l)| {
            names_feed(l, feed)
                && (l.contains(" polled ")
                    || l.contains("poll failed")
                    || l.contains("feed keeps failing"))
        })
        .map(|(t, _)| t)
        .collect()
}

/// Pairs each request to `path` with the first poll end of `feed` logged
/// after it; returns the durations (arrival -> poll end) of the polls that
/// have ended.
fn poll_durations(srv: &Hostile, path: &str, log: &str, feed: &str) -> Vec<Duration> {
    let ends = poll_ends(log, feed);
    srv.hits(path)
        .iter()
        .filter_map(|h| {
            let end = ends.iter().find(|e| **e >= h.arrived_wall)?;
            end.duration_since(h.arrived_wall).ok()
        })
        .collect()
}

/// Healthy feeds kept their schedule and every item they served was
/// alerted.
#[track_caller]
fn assert_healthy(srv: &Hostile, run: &Run, feeds: &[&str]) {
    for feed in feeds {
        let path = format!("/healthy/{feed}.xml");
        let hits = srv.hits(&path);
        assert!(
            hits.len() >= 3,
            "healthy {feed} polled {} times",
            hits.len()
        );
        let worst = hits
            .windows(2)
            .map(|w| w[1].arrived - w[0].arrived)
            .max()
            .unwrap_or_default();
        assert!(
            worst <= HEALTHY_GAP_MAX,
            "healthy {feed} missed its schedule: a {worst:?} gap between polls (interval {HEALTHY_EVERY:?})\n{}",
            run.daemon.logs()
        );
        let newest = hits.iter().filter_map(|h| h.newest).max().unwrap_or(0);
        let want: BTreeSet<String> = (newest.saturating_sub(19)..=newest)
            .map(|n| healthy_title(feed, n))
            .collect();
        run.wait(
            Duration::from_secs(5),
            &format!("every item of healthy {feed} alerted"),
            || {
                let got: BTreeSet<String> = titles(&run.ws.alerts()).into_iter().collect();
                want.is_subset(&got)
            },
        );
        assert_eq!(run.failures(feed), 0, "healthy {feed}");
    }
}

/// The feed failed at least once and its `status` error says `words` (any
/// of them, case-insensitive); the log names the feed in a failure line.
#[track_caller]
fn assert_failed_with(run: &Run, feed: &str, words: &[&str]) -> String {
    let st = run.status(feed);
    assert!(
        st["consecutive_failures"].as_u64().unwrap_or(0) >= 1,
        "{feed} should have failed: {st}\n{}",
        run.daemon.logs()
    );
    let err = st["last_error"].as_str().unwrap_or("").to_string();
    let low = err.to_lowercase();
    assert!(
        words.iter().any(|w| low.contains(&w.to_lowercase())),
        "last_error of {feed} should say one of {words:?}: {err:?}"
    );
    assert!(
        run.log()
            .lines()
            .any(|l| names_feed(l, feed)
                && (l.contains("poll failed") || l.contains("keeps failing"))),
        "no failure of {feed} in the log:\n{}",
        run.log()
    );
    err
}

/// Creates a FIFO at `path` (with `mkfifo`).
fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

/// Whether some process holds the FIFO open for reading. Opening a FIFO
/// for reading blocks until a writer comes, so a daemon that tried to read
/// it would still be waiting there: a non-blocking open for writing then
/// succeeds (it fails with ENXIO when no reader exists).
fn fifo_has_reader(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    const O_NONBLOCK: i32 = 0o4000;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .is_ok()
}

/// The marker text of the local secret files: must never appear anywhere.
const MARKER: &str = "WW-SECRET-MARKER-5e0c1d";

/// A local file holding [`MARKER`] and a FIFO, in the workspace.
fn local_secrets(ws: &Workspace) -> (PathBuf, PathBuf) {
    let secret = ws.write("secret.txt", format!("{MARKER}\n"));
    let fifo = ws.path().join("secret.fifo");
    mkfifo(&fifo);
    (secret, fifo)
}

/// Every output of a run as one text: alerts, stdout, stderr, `status`
/// (JSON and text).
fn all_output(ws: &Workspace, out: &str, err: &str) -> String {
    let alerts = std::fs::read_to_string(ws.alerts_path()).unwrap_or_default();
    let status = ws.cli("status", &[]).stdout;
    let status_json = ws.cli("status", &["--json"]).stdout;
    format!("{alerts}\n{out}\n{err}\n{status}\n{status_json}")
}

// ---------------------------------------------------------- entity attacks ---

/// An RSS document with an internal DTD `dtd` and one item whose title and
/// description hold `text` (raw: entity references stay references).
fn rss_with_dtd(dtd: &str, guid: &str, text: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE rss [\n{dtd}\n]>\n\
         <rss version=\"2.0\"><channel><title>Entities</title>\
         <link>https://wire.example.test/</link><description>d</description>\
         <item><title>Kursk {text}</title><guid>urn:ww-hostile:{guid}</guid>\
         <description>{text}</description><pubDate>{}</pubDate></item>\
         </channel></rss>\n",
        rfc2822_ago(60)
    )
}

/// Billion laughs, XXE to a file, to a FIFO and to an http URL on a
/// listener that records connections: no connection, no file opened, the
/// file's text nowhere, memory under 50 MB, each poll handled within 1 s.
#[test]
fn entity_attacks_open_nothing_and_stay_small() {
    let srv = Hostile::start();
    let rec = Recorder::start();
    let ws = Workspace::empty();
    let (secret, fifo) = local_secrets(&ws);

    let mut laughs = String::from("<!ENTITY lol \"lol\">");
    for i in 1..=9 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        laughs.push_str(&format!(
            "\n<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    srv.ok(
        "/laughs.xml",
        RSS,
        rss_with_dtd(&laughs, "laughs", "&lol9;"),
    );
    let file_entity = format!("<!ENTITY xxe SYSTEM \"file://{}\">", secret.display());
    srv.ok(
        "/xxe-file.xml",
        RSS,
        rss_with_dtd(&file_entity, "xxe-file", "&xxe;"),
    );
    let fifo_entity = format!("<!ENTITY xxe SYSTEM \"file://{}\">", fifo.display());
    srv.ok(
        "/xxe-fifo.xml",
        RSS,
        rss_with_dtd(&fifo_entity, "xxe-fifo", "&xxe;"),
    );
    let remote = format!(
        "<!ENTITY xxe SYSTEM \"http://{0}/entity\">\n\
         <!ENTITY % dtd SYSTEM \"http://{0}/evil.dtd\">\n%dtd;",
        rec.addr
    );
    srv.ok(
        "/xxe-http.xml",
        RSS,
        rss_with_dtd(&remote, "xxe-http", "&xxe;"),
    );
    // An external DTD subset as well.
    srv.ok(
        "/xxe-dtd.xml",
        RSS,
        rss_with_dtd("", "xxe-dtd", "plain").replace(
            "<!DOCTYPE rss [",
            &format!(
                "<!DOCTYPE rss SYSTEM \"http://{}/external.dtd\" [",
                rec.addr
            ),
        ),
    );

    let cases = ["laughs", "xxe-file", "xxe-fifo", "xxe-http", "xxe-dtd"];
    let mut cfg = base_config(KURSK_RULES);
    for c in cases {
        cfg = cfg.feed(c, &srv.url(&format!("/{c}.xml")));
    }
    let cfg = cfg
        .feed_with("healthy-a", &srv.healthy("healthy-a"), "interval = \"1s\"")
        .feed_with("healthy-b", &srv.healthy("healthy-b"), "interval = \"1s\"");
    ws.write_config(&cfg);
    let run = Run::start_in(ws);
    run.wait(Duration::from_secs(20), "three polls of each case", || {
        cases
            .iter()
            .all(|c| srv.hits(&format!("/{c}.xml")).len() >= 3)
    });
    thread::sleep(Duration::from_millis(500));
    let log = run.log();
    for c in cases {
        let durations = poll_durations(&srv, &format!("/{c}.xml"), &log, c);
        assert!(durations.len() >= 3, "{c}: {durations:?}\n{log}");
        let worst = durations.iter().max().unwrap();
        eprintln!("hostile: {c}: slowest poll {worst:?} from the request's arrival");
        assert!(
            *worst < Duration::from_secs(1),
            "{c}: a poll took {worst:?}"
        );
    }
    let peak = run.peak_rss_kib();
    eprintln!("hostile: entity attacks: daemon peak RSS {} KiB", peak);
    assert!(peak < 50 * 1024, "peak RSS {peak} KiB (limit 50 MB)");
    assert_eq!(
        rec.connections(),
        0,
        "the daemon connected to an entity URL"
    );
    assert!(!fifo_has_reader(&fifo), "the daemon opened the FIFO");
    assert_healthy(&srv, &run, &["healthy-a", "healthy-b"]);
    // Entities stay unexpanded: no alert grows.
    for a in run.ws.alerts() {
        let t = s(&a, &["item", "title"]);
        assert!(t.len() < 200 && !t.contains("lollol"), "expanded: {t:?}");
    }
    let (ws, out, err) = run.stop();
    assert_eq!(rec.connections(), 0);
    assert!(!fifo_has_reader(&fifo), "the daemon opened the FIFO");
    assert!(
        !all_output(&ws, &out, &err).contains(MARKER),
        "the local file's text leaked into the output"
    );
}

// ---------------------------------------------------- nesting, namespaces ---

/// 100,000 nested elements and 200,000 namespace declarations: each feed
/// fails with an error that says what is wrong; the others go on.
#[test]
fn deep_nesting_and_namespace_floods_fail_clearly() {
    let srv = Hostile::start();
    let levels = 100_000;
    let nested = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Deep</title>{}{}\
         <item><title>Kursk deep story</title><guid>urn:ww-hostile:deep</guid></item>\
         </channel></rss>",
        "<x>".repeat(levels),
        "</x>".repeat(levels)
    );
    srv.ok("/nested.xml", RSS, nested);
    let decls: String = (0..200_000)
        .map(|i| format!(" xmlns:n{i}=\"urn:n:{i}\""))
        .collect();
    let namespaced = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"{decls}><channel><title>Wide</title>\
         <item><title>Kursk wide story</title><guid>urn:ww-hostile:wide</guid></item>\
         </channel></rss>"
    );
    assert!(namespaced.len() < 6 << 20);
    srv.ok("/xmlns.xml", RSS, namespaced);
    let cfg = base_config(KURSK_RULES)
        .set("max_feed_bytes", "\"8MiB\"")
        .feed("nested", &srv.url("/nested.xml"))
        .feed("xmlns", &srv.url("/xmlns.xml"))
        .feed("healthy-a", &srv.healthy("healthy-a"))
        .feed("healthy-b", &srv.healthy("healthy-b"));
    let run = Run::start(&cfg);
    run.wait(Duration::from_secs(20), "both floods failed twice", || {
        run.failures("nested") >= 2 && run.failures("xmlns") >= 2
    });
    thread::sleep(Duration::from_secs(2));
    let nest_err = assert_failed_with(&run, "nested", &["nest", "depth", "deep"]);
    let ns_err = assert_failed_with(&run, "xmlns", &["namespace"]);
    eprintln!("hostile: nested: {nest_err}\nhostile: xmlns: {ns_err}");
    eprintln!(
        "hostile: nesting/xmlns: daemon peak RSS {} KiB",
        run.peak_rss_kib()
    );
    assert_healthy(&srv, &run, &["healthy-a", "healthy-b"]);
    let titles = titles(&run.ws.alerts());
    assert!(
        !titles
            .iter()
            .any(|t| t.contains("deep") || t.contains("wide")),
        "{titles:?}"
    );
    run.stop();
}

// ------------------------------------------------------------------ bombs ---

/// An RSS document around a huge description: what precedes and follows it.
fn bomb_parts(name: &str) -> (String, String) {
    (
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\
             <title>Bomb</title><item><title>Kursk {name} bomb</title>\
             <guid>urn:ww-hostile:{name}</guid><description>Kursk "
        ),
        "</description></item></channel></rss>\n".to_string(),
    )
}

const GIB_IN_MIB: usize = 1024;

/// A compressed stream of `head`, `mib` MiB of spaces and `tail`, built
/// without compressing it all (the compressors run unoptimised in tests): the
/// encoder is flushed after every MiB, and once two MiB in a row encode to
/// the same bytes it is in a steady state, so those bytes repeat for the
/// rest and the tail is encoded from that state. `inner` reads the output
/// so far, `finish` ends the stream and returns all of it.
fn steady_bomb<E: Write>(
    mut enc: E,
    inner: fn(&E) -> &Vec<u8>,
    finish: fn(E) -> Vec<u8>,
    head: &[u8],
    mib: usize,
    tail: &[u8],
) -> Vec<u8> {
    let block = vec![b' '; MIB as usize];
    enc.write_all(head).unwrap();
    enc.flush().unwrap();
    let mut last: Vec<u8> = Vec::new();
    let mut done = 0;
    while done < mib {
        let before = inner(&enc).len();
        enc.write_all(&block).unwrap();
        enc.flush().unwrap();
        let now = inner(&enc)[before..].to_vec();
        done += 1;
        let steady = now == last;
        last = now;
        if steady {
            break;
        }
    }
    let mut out = inner(&enc).clone();
    let mark = out.len();
    for _ in done..mib {
        out.extend_from_slice(&last);
    }
    enc.write_all(tail).unwrap();
    out.extend_from_slice(&finish(enc)[mark..]);
    out
}

fn brotli_bomb_of(head: &[u8], mib: usize, tail: &[u8]) -> Vec<u8> {
    steady_bomb(
        brotli::CompressorWriter::new(Vec::new(), 1 << 16, 5, 22),
        |e| e.get_ref(),
        |e| e.into_inner(),
        head,
        mib,
        tail,
    )
}

fn zstd_bomb_of(head: &[u8], mib: usize, tail: &[u8]) -> Vec<u8> {
    steady_bomb(
        zstd::stream::Encoder::new(Vec::new(), 3).unwrap(),
        |e| e.get_ref(),
        |e| e.finish().unwrap(),
        head,
        mib,
        tail,
    )
}

/// The bomb builders are right: a 24 MiB bomb decodes to exactly its
/// parts (the 1 GiB ones repeat the same steady block further).
#[test]
fn bomb_builders_decode_to_their_input() {
    let check = |name: &str, packed: Vec<u8>, unpack: &dyn Fn(&[u8]) -> Vec<u8>| {
        let out = unpack(&packed);
        assert_eq!(out.len(), 3 + 24 * MIB as usize + 4, "{name}");
        assert!(
            out.starts_with(b"<a> ") && out.ends_with(b" </a>"),
            "{name}"
        );
        assert!(out[3..out.len() - 4].iter().all(|&b| b == b' '), "{name}");
        assert!(packed.len() < 64 * 1024, "{name}: {} bytes", packed.len());
    };
    check("brotli", brotli_bomb_of(b"<a>", 24, b"</a>"), &|p| {
        let mut out = Vec::new();
        brotli::Decompressor::new(p, 1 << 16)
            .read_to_end(&mut out)
            .unwrap();
        out
    });
    check("zstd", zstd_bomb_of(b"<a>", 24, b"</a>"), &|p| {
        zstd::decode_all(p).unwrap()
    });
}

/// 1 GiB of spaces inside an RSS item, brotli-compressed.
fn brotli_bomb() -> Vec<u8> {
    let (head, tail) = bomb_parts("br");
    brotli_bomb_of(head.as_bytes(), GIB_IN_MIB, tail.as_bytes())
}

/// The same with zstd.
fn zstd_bomb() -> Vec<u8> {
    let (head, tail) = bomb_parts("zstd");
    zstd_bomb_of(head.as_bytes(), GIB_IN_MIB, tail.as_bytes())
}

/// The cap of the bomb runs (`max_feed_bytes`).
const BOMB_CAP_MIB: u64 = 8;

/// Runs the daemon on the bomb feeds set up on `srv` (ids `bombs`) and two
/// healthy feeds; each bomb must fail on the size cap at least twice, peak
/// RSS stay under the cap + 64 MB, the healthy feeds alert on schedule.
/// Returns the daemon's peak RSS in KiB.
fn run_bombs(srv: &Hostile, bombs: &[&str]) -> u64 {
    let mut cfg = base_config(KURSK_RULES)
        .set("max_feed_bytes", &format!("\"{BOMB_CAP_MIB}MiB\""))
        .feed("healthy-a", &srv.healthy("healthy-a"))
        .feed("healthy-b", &srv.healthy("healthy-b"));
    for b in bombs {
        cfg = cfg.feed(b, &srv.url(&format!("/{b}.xml")));
    }
    let run = Run::start(&cfg);
    run.wait(Duration::from_secs(30), "each bomb failed twice", || {
        bombs.iter().all(|b| run.failures(b) >= 2)
    });
    thread::sleep(Duration::from_secs(1));
    for b in bombs {
        assert_failed_with(&run, b, &["max_feed_bytes"]);
        for h in srv.hits(&format!("/{b}.xml")) {
            if h.closed.is_some() {
                assert!(
                    h.sent < (BOMB_CAP_MIB + 32) * MIB,
                    "{b}: the server got to send {} bytes",
                    h.sent
                );
            }
        }
    }
    let peak = run.peak_rss_kib();
    let limit = (BOMB_CAP_MIB + 64) * 1024;
    eprintln!("hostile: {bombs:?}: daemon peak RSS {peak} KiB (limit {limit} KiB)");
    assert!(peak < limit, "{bombs:?}: peak RSS {peak} KiB > {limit} KiB");
    assert_healthy(srv, &run, &["healthy-a", "healthy-b"]);
    let alerted = titles(&run.ws.alerts());
    assert!(
        !alerted.iter().any(|t| t.contains("bomb")),
        "a bomb alerted: {alerted:?}"
    );
    run.stop();
    peak
}

/// 200 MB bodies streamed by the server (never allocated), without and with
/// a `Content-Length`.
#[test]
fn bomb_plain_200mb_body() {
    let srv = Hostile::start();
    let (head, _) = bomb_parts("plain");
    for (path, declare_length) in [("/plain.xml", false), ("/plain-declared.xml", true)] {
        srv.route(
            path,
            Act::Stream {
                prefix: head.clone().into_bytes(),
                fill: b' ',
                total: 200 * 1000 * 1000,
                declare_length,
            },
        );
    }
    run_bombs(&srv, &["plain", "plain-declared"]);
    let streamed = srv.hits("/plain.xml");
    assert!(streamed.iter().all(|h| h.sent < 200 * 1000 * 1000));
}

fn encoded_bomb(coding: &str, body: Vec<u8>) {
    let srv = Hostile::start();
    eprintln!("hostile: {coding} bomb: {} bytes on the wire", body.len());
    srv.reply(
        &format!("/{coding}.xml"),
        200,
        &[("Content-Type", RSS), ("Content-Encoding", coding)],
        body,
    );
    run_bombs(&srv, &[coding]);
}

#[test]
fn bomb_gzip_1gib() {
    let (head, tail) = bomb_parts("gzip");
    encoded_bomb(
        "gzip",
        gzip_bomb(head.as_bytes(), b' ', GIB_IN_MIB, tail.as_bytes()),
    );
}

#[test]
fn bomb_brotli_1gib() {
    let started = Instant::now();
    let bomb = brotli_bomb();
    eprintln!("hostile: brotli bomb built in {:?}", started.elapsed());
    encoded_bomb("br", bomb);
}

#[test]
fn bomb_zstd_1gib() {
    let started = Instant::now();
    let bomb = zstd_bomb();
    eprintln!("hostile: zstd bomb built in {:?}", started.elapsed());
    encoded_bomb("zstd", bomb);
}

/// A feed of tiny items filling the size cap: the item cap keeps the first
/// `max_items_per_feed` (a warning names the feed) and memory stays bounded
/// by configuration.
#[test]
fn tiny_items_at_the_cap() {
    let srv = Hostile::start();
    let cap: u64 = 4 * MIB;
    let mut doc =
        String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Tiny</title>");
    let tail = "</channel></rss>";
    let mut n = 0;
    loop {
        let item = format!("<item><guid>t{n}</guid></item>");
        if (doc.len() + item.len() + tail.len()) as u64 > cap {
            break;
        }
        doc.push_str(&item);
        n += 1;
    }
    doc.push_str(tail);
    eprintln!("hostile: tiny items: {n} items in {} bytes", doc.len());
    srv.ok("/tiny.xml", RSS, doc);
    let cfg = base_config(KURSK_RULES)
        .set("max_feed_bytes", "\"4MiB\"")
        .set("max_items_per_feed", "500")
        .feed("tiny", &srv.url("/tiny.xml"))
        .feed("healthy-a", &srv.healthy("healthy-a"))
        .feed("healthy-b", &srv.healthy("healthy-b"));
    let run = Run::start(&cfg);
    run.wait(Duration::from_secs(30), "three polls of tiny", || {
        poll_ends(&run.log(), "tiny").len() >= 3
    });
    let st = run.status("tiny");
    assert_eq!(st["consecutive_failures"], 0, "{st}");
    assert_eq!(st["last_items"], 500, "the item cap: {st}");
    assert!(
        run.log().lines().any(|l| names_feed(l, "tiny")
            && l.contains(&format!("The feed has {n} items; kept the first 500"))),
        "no item-cap warning for tiny:\n{}",
        run.log()
    );
    let durations = poll_durations(&srv, "/tiny.xml", &run.log(), "tiny");
    eprintln!("hostile: tiny items: poll durations {durations:?}");
    let peak = run.peak_rss_kib();
    // feed-rs holds about 25 bytes per byte of a tiny-item document while it
    // parses (reliability.md): bounded by max_feed_bytes, not by the feed.
    let limit = 32 * cap / 1024 + 64 * 1024;
    eprintln!("hostile: tiny items: daemon peak RSS {peak} KiB (limit {limit} KiB)");
    assert!(peak < limit, "peak RSS {peak} KiB > {limit} KiB");
    assert_healthy(&srv, &run, &["healthy-a", "healthy-b"]);
    run.stop();
}

// ------------------------------------------------------ stalls and trickles ---

/// A stall before the headers, a 1 byte/s trickle and a listener with a
/// full backlog: every poll of them ends within the deadline + 10 %
/// (measured from the request's arrival, or from the connection attempt
/// for the backlog), and the healthy feeds keep their 1 s schedule.
#[test]
fn slow_servers_end_at_the_deadline_others_keep_schedule() {
    let srv = Hostile::start();
    let backlog = FullBacklog::start();
    srv.route("/stall.xml", Act::Stall);
    let doc = rss(
        "Slow",
        &[entry(
            "slow1",
            "Kursk slow story",
            "Arrives a byte a second.",
        )],
    );
    srv.route(
        "/trickle.xml",
        Act::Trickle {
            body: doc.into_bytes(),
            every: Duration::from_secs(1),
        },
    );
    let cfg = base_config(KURSK_RULES)
        .feed("stall", &srv.url("/stall.xml"))
        .feed("trickle", &srv.url("/trickle.xml"))
        .feed("backlog", &format!("http://{}/feed.xml", backlog.addr))
        .feed("healthy-a", &srv.healthy("healthy-a"))
        .feed("healthy-b", &srv.healthy("healthy-b"));
    let run = Run::start(&cfg);
    run.wait(
        Duration::from_secs(30),
        "two polls of each slow feed",
        || {
            let log = run.log();
            ["stall", "trickle", "backlog"]
                .iter()
                .all(|f| poll_ends(&log, f).len() >= 2)
        },
    );
    let log = run.log();
    for (feed, path) in [("stall", "/stall.xml"), ("trickle", "/trickle.xml")] {
        let durations = poll_durations(&srv, path, &log, feed);
        assert!(durations.len() >= 2, "{feed}: {durations:?}");
        let closes: Vec<Duration> = srv
            .hits(path)
            .iter()
            .filter_map(|h| Some(h.closed? - h.arrived))
            .collect();
        assert!(closes.len() >= 2, "{feed}: connections closed {closes:?}");
        eprintln!("hostile: {feed}: polls {durations:?}, connection closed after {closes:?}");
        for d in durations.iter().chain(&closes) {
            assert!(
                *d <= DEADLINE_MAX,
                "{feed}: a poll took {d:?} (deadline {DEADLINE:?} + 10 %)"
            );
        }
        assert_failed_with(&run, feed, &["timed out"]);
    }
    // The backlog never answers: time each attempt from hyper-util's
    // "connecting to ADDR" to the failure logged for the feed.
    let marker = format!("connecting to {}", backlog.addr);
    let lines = log_lines(&log);
    let ends = poll_ends(&log, "backlog");
    let durations: Vec<Duration> = lines
        .iter()
        .filter(|(_, l)| l.contains(&marker))
        .filter_map(|(t, _)| {
            let end = ends.iter().find(|e| *e >= t)?;
            end.duration_since(*t).ok()
        })
        .collect();
    eprintln!("hostile: backlog: polls {durations:?}");
    assert!(durations.len() >= 2, "backlog: {durations:?}\n{log}");
    for d in &durations {
        assert!(*d <= DEADLINE_MAX, "backlog: a poll took {d:?}");
    }
    assert_failed_with(&run, "backlog", &["timed out", "timeout"]);
    assert_healthy(&srv, &run, &["healthy-a", "healthy-b"]);
    let alerted = titles(&run.ws.alerts());
    assert!(!alerted.iter().any(|t| t.contains("slow")), "{alerted:?}");
    run.stop();
}

// -------------------------------------------------------------- redirects ---

/// A redirect loop, redirects to file:///etc/passwd, to a local file with a
/// marker and to a FIFO, and an https URL whose server answers in plain
/// HTTP with a redirect to http: each fails quickly with a clear error,
/// nothing local is read, the http target is never asked.
#[test]
fn redirect_attacks_fail_bounded_and_read_nothing_local() {
    let srv = Hostile::start();
    let ws = Workspace::empty();
    let (secret, fifo) = local_secrets(&ws);
    srv.redirect("/loop-a.xml", "/loop-b.xml");
    srv.redirect("/loop-b.xml", &srv.url("/loop-a.xml"));
    srv.redirect("/passwd.xml", "file:///etc/passwd");
    srv.redirect("/secret.xml", &format!("file://{}", secret.display()));
    srv.redirect("/fifo.xml", &format!("file://{}", fifo.display()));
    srv.ok(
        "/plain-target.xml",
        RSS,
        rss(
            "Plain",
            &[entry("down1", "Kursk downgraded story", "Over http.")],
        ),
    );
    // An "https" server that speaks plain HTTP and redirects to http: the
    // client must fail at the TLS handshake and never reach the target.
    // (The downgrade rule itself needs a certificate the client trusts;
    // webpki roots only, so it cannot be reached from here.)
    let https = TcpListener::bind("127.0.0.1:0").unwrap();
    let https_addr = https.local_addr().unwrap();
    let https_hits = Arc::new(AtomicUsize::new(0));
    let hh = Arc::clone(&https_hits);
    let target = srv.url("/plain-target.xml");
    https.set_nonblocking(true).unwrap();
    let https_stop = Arc::new(AtomicBool::new(false));
    let hs = Arc::clone(&https_stop);
    let https_thread = thread::spawn(move || {
        while !hs.load(Ordering::SeqCst) {
            match https.accept() {
                Ok((mut s, _)) => {
                    hh.fetch_add(1, Ordering::SeqCst);
                    let _ = s.set_nonblocking(false);
                    let _ = s.write_all(
                        format!(
                            "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let cases = ["loop", "passwd", "secret", "fifo"];
    let mut cfg = base_config(KURSK_RULES).set("max_redirects", "5");
    for c in cases {
        let path = if c == "loop" {
            "/loop-a.xml".to_string()
        } else {
            format!("/{c}.xml")
        };
        cfg = cfg.feed(c, &srv.url(&path));
    }
    let cfg = cfg
        .feed("downgrade", &format!("https://{https_addr}/feed.xml"))
        .feed("healthy-a", &srv.healthy("healthy-a"))
        .feed("healthy-b", &srv.healthy("healthy-b"));
    ws.write_config(&cfg);
    let run = Run::start_in(ws);
    run.wait(
        Duration::from_secs(30),
        "each redirect case failed twice",
        || {
            cases
                .iter()
                .chain(&["downgrade"])
                .all(|c| run.failures(c) >= 2)
        },
    );
    thread::sleep(Duration::from_millis(500));
    let log = run.log();
    assert_failed_with(&run, "loop", &["redirect"]);
    for c in ["passwd", "secret", "fifo"] {
        // Redirects are followed hop by hop by fetch.rs, which refuses
        // non-http(s) targets by name.
        assert_failed_with(&run, c, &["refusing a redirect to a file: URL"]);
        let durations = poll_durations(&srv, &format!("/{c}.xml"), &log, c);
        assert!(
            durations.iter().all(|d| *d < DEADLINE),
            "{c}: {durations:?}"
        );
    }
    let loop_polls = srv.hits("/loop-a.xml").len() + srv.hits("/loop-b.xml").len();
    let loop_fails = run.failures("loop") as usize;
    assert!(
        loop_polls <= (loop_fails + 1) * 7,
        "{loop_polls} requests in {loop_fails} polls with max_redirects 5"
    );
    for d in poll_durations(&srv, "/loop-a.xml", &log, "loop") {
        assert!(d < DEADLINE, "loop: a poll took {d:?}");
    }
    let down = assert_failed_with(
        &run,
        "downgrade",
        &["tls", "ssl", "certificate", "record", "https"],
    );
    eprintln!("hostile: downgrade: {down}");
    assert!(https_hits.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        srv.hits("/plain-target.xml").len(),
        0,
        "the http target was fetched"
    );
    assert!(!fifo_has_reader(&fifo), "the daemon opened the FIFO");
    assert_healthy(&srv, &run, &["healthy-a", "healthy-b"]);
    let (ws, out, err) = run.stop();
    https_stop.store(true, Ordering::SeqCst);
    let _ = https_thread.join();
    let everything = all_output(&ws, &out, &err);
    assert!(!everything.contains(MARKER), "the local file leaked");
    assert!(!everything.contains("root:x:0:0"), "/etc/passwd leaked");
    assert!(
        !everything.contains("downgraded"),
        "the http target alerted"
    );
}

// -------------------------------------------------------------- encodings ---

const RU_RULES: &str = r#"
[[rule]]
id = "ru"
any = ["Курск"]
"#;

/// A Russian RSS document: `decl` is the XML declaration (or ""); the item
/// title is `title`.
fn ru_doc(decl: &str, guid: &str, title: &str) -> String {
    format!(
        "{decl}<rss version=\"2.0\"><channel><title>Лента</title>\
         <link>https://wire.example.test/</link><description>Новости</description>\
         <item><title>{title}</title><guid>urn:ww-hostile:{guid}</guid>\
         <description>{title}. Подробности позже.</description><pubDate>{}</pubDate></item>\
         </channel></rss>\n",
        rfc2822_ago(60)
    )
}

/// windows-1251 declared in the prolog, only in the HTTP charset, not at
/// all, declared as UTF-8 while it is windows-1251, HTTP and prolog
/// disagreeing, and UTF-8 declared as windows-1251: each alerts with the
/// right text or fails with a clear error; no alert carries garbled text.
#[test]
fn encodings_give_right_text_or_a_clear_error() {
    let srv = Hostile::start();
    let title = |case: &str| format!("Курск: {} вокзал открыт", case_word(case));
    fn case_word(case: &str) -> &'static str {
        match case {
            "declared" => "северный",
            "http-only" => "южный",
            "undeclared" => "западный",
            "utf8-claimed" => "восточный",
            "conflict" => "центральный",
            _ => "новый",
        }
    }
    let w1251 = "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n";
    let utf8 = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
    let plain = "<?xml version=\"1.0\"?>\n";
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "declared",
            "application/rss+xml",
            cp1251(&ru_doc(w1251, "declared", &title("declared"))),
        ),
        (
            "http-only",
            "application/rss+xml; charset=windows-1251",
            cp1251(&ru_doc(plain, "http-only", &title("http-only"))),
        ),
        (
            "undeclared",
            "application/rss+xml",
            cp1251(&ru_doc("", "undeclared", &title("undeclared"))),
        ),
        (
            "utf8-claimed",
            "application/rss+xml",
            cp1251(&ru_doc(utf8, "utf8-claimed", &title("utf8-claimed"))),
        ),
        (
            "conflict",
            "application/rss+xml; charset=utf-8",
            cp1251(&ru_doc(w1251, "conflict", &title("conflict"))),
        ),
        (
            "utf8-as-1251",
            "application/rss+xml",
            ru_doc(w1251, "utf8-as-1251", &title("utf8-as-1251")).into_bytes(),
        ),
    ];
    let mut cfg = base_config(RU_RULES);
    for (case, ct, body) in &cases {
        srv.ok(&format!("/{case}.xml"), ct, body.clone());
        cfg = cfg.feed(case, &srv.url(&format!("/{case}.xml")));
    }
    let run = Run::start(&cfg);
    run.wait(Duration::from_secs(20), "two polls of every case", || {
        let log = run.log();
        cases.iter().all(|(c, _, _)| poll_ends(&log, c).len() >= 2)
    });
    thread::sleep(Duration::from_millis(500));
    let alerts = run.ws.alerts();
    for (case, _, _) in &cases {
        let want = title(case);
        let mine: Vec<&serde_json::Value> = alerts
            .iter()
            .filter(|a| s(a, &["feed", "id"]) == *case)
            .collect();
        let failed = run.failures(case) > 0;
        if mine.is_empty() {
            // Not alerted: only acceptable as a clear per-feed error.
            assert!(failed, "{case}: neither an alert nor an error");
            let err = run.status(case)["last_error"].to_string();
            assert!(
                err.contains("encoding") || err.contains("charset"),
                "{case}: {err}"
            );
        } else {
            assert_eq!(mine.len(), 1, "{case}: {mine:?}");
            let a = mine[0];
            assert_eq!(s(a, &["item", "title"]), want, "{case}: garbled title");
            assert_eq!(a["matched"], serde_json::json!(["Курск"]), "{case}");
            let text = s(a, &["snippet", "text"]);
            assert!(text.contains(&want), "{case}: snippet {text:?}");
            assert!(!a.to_string().contains('\u{fffd}'), "{case}: {a}");
        }
        eprintln!(
            "hostile: encoding {case}: {}",
            if mine.is_empty() {
                "failed"
            } else {
                "right text"
            }
        );
    }
    run.stop();
}

// -------------------------------------------------------------- injection ---

/// `<script>`, `javascript:` links, ESC, NUL and U+202E in titles, links,
/// guids, descriptions and a root element name: alerts are valid JSON (jsonl
/// and webhook), no `javascript:` link is emitted, and neither the logs nor
/// the terminal sink nor `status` carry a raw ESC, NUL or U+202E.
#[test]
fn injection_in_titles_stays_data() {
    let srv = Hostile::start();
    let hook = TestServer::start();
    hook.route("/hook", Route::ok("text/plain", "ok"));
    let esc = "\u{1b}[2J\u{1b}]0;pwned\u{7}";
    let items = [
        "<item><title>&lt;script&gt;alert(1)&lt;/script&gt;Kursk script story</title>\
         <link>javascript:alert(1)</link><guid isPermaLink=\"false\">inj-1</guid>\
         <description>Kursk &lt;script&gt;alert(2)&lt;/script&gt; text</description></item>"
            .to_string(),
        format!(
            "<item><title>Kursk escape {esc}story</title><link>JavaScript:alert(3)</link>\
             <guid isPermaLink=\"false\">inj-2{esc}</guid>\
             <description>Kursk {esc} in the body</description></item>"
        ),
        "<item><title>Kursk nul\u{0}story</title><link> javascript:alert(4)</link>\
         <guid isPermaLink=\"false\">inj-3\u{0}</guid>\
         <description>Kursk nul\u{0}body</description></item>"
            .to_string(),
        "<item><title>Kursk bidi \u{202e}txt.exe story</title>\
         <link>&#106;avascript:alert(5)</link><guid isPermaLink=\"false\">inj-4\u{202e}</guid>\
         <description>Kursk \u{202e}reversed</description></item>"
            .to_string(),
    ];
    let dated: Vec<String> = items
        .iter()
        .map(|i| {
            i.replace(
                "</item>",
                &format!("<pubDate>{}</pubDate></item>", rfc2822_ago(60)),
            )
        })
        .collect();
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel>\
         <title>Injected {esc}\u{202e}</title><link>https://wire.example.test/</link>\
         <description>d</description>{}</channel></rss>",
        dated.join("")
    );
    srv.ok("/inject.xml", RSS, doc);
    let atom = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>Atom</title><id>urn:ww-hostile:atom</id><updated>{0}</updated>\
         <entry><title type=\"html\">&lt;script&gt;x()&lt;/script&gt;Kursk atom {esc}story</title>\
         <id>urn:ww-hostile:atom-1</id><updated>{0}</updated>\
         <link href=\"javascript:alert(6)\"/><link rel=\"alternate\" href=\"jAvAsCrIpT:alert(7)\"/>\
         <summary>Kursk \u{0}\u{202e}</summary></entry></feed>",
        rfc3339_ago(60)
    );
    srv.ok("/inject.atom", "application/atom+xml", atom);
    let json = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON",
        "items": [{
            "id": "json-1\u{1b}[31m",
            "url": "javascript:alert(8)",
            "title": "Kursk json \u{1b}[31mred\u{0}\u{202e} story",
            "content_text": "Kursk \u{1b}[0m body",
            "date_published": rfc3339_ago(60),
        }]
    });
    srv.ok("/inject.json", "application/feed+json", json.to_string());
    // A document whose root element name carries the controls: a failure
    // whose error text quotes the document.
    srv.ok(
        "/badroot.xml",
        RSS,
        format!(
            "<?xml version=\"1.0\"?><evil{esc}\u{0}\u{202e}x><channel/></evil{esc}\u{0}\u{202e}x>"
        ),
    );
    let cfg = base_config(KURSK_RULES)
        .feed("inject", &srv.url("/inject.xml"))
        .feed("inject-atom", &srv.url("/inject.atom"))
        .feed("inject-json", &srv.url("/inject.json"))
        .feed("badroot", &srv.url("/badroot.xml"))
        .feed("healthy-a", &srv.healthy("healthy-a"))
        .sink("id = \"term\"\ntype = \"stdout\"\ncolor = \"never\"")
        .sink(&format!(
            "id = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"",
            hook.url("/hook")
        ));
    let run = Run::start(&cfg);
    let want = 6; // 4 RSS items, 1 Atom entry, 1 JSON item
    run.wait(
        Duration::from_secs(20),
        "every injected item alerted",
        || {
            run.ws
                .alerts()
                .iter()
                .filter(|a| s(a, &["feed", "id"]).starts_with("inject"))
                .count()
                >= want
        },
    );
    run.wait(Duration::from_secs(10), "webhook deliveries", || {
        hook.requests_to("/hook").len() >= want
    });
    run.wait(Duration::from_secs(10), "badroot failed", || {
        run.failures("badroot") >= 1
    });
    let err = assert_failed_with(&run, "badroot", &["not a feed"]);
    let (ws, out, log) = run.stop();
    let bad = |c: char| c == '\u{1b}' || c == '\u{0}' || c == '\u{202e}';
    let alerts_text = std::fs::read_to_string(ws.alerts_path()).unwrap();
    let alerts = json_lines(&alerts_text);
    let hooks: Vec<serde_json::Value> = hook
        .requests_to("/hook")
        .iter()
        .map(|r| {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {:?}", r.body))
        })
        .collect();
    for a in alerts.iter().chain(&hooks) {
        let text = a.to_string();
        assert!(
            !text.to_lowercase().contains("javascript:"),
            "a javascript: link was emitted: {text}"
        );
        let link = &a["item"]["link"];
        assert!(
            link.is_null()
                || link
                    .as_str()
                    .is_some_and(|l| l.starts_with("https://") || l.starts_with("http://")),
            "{link}"
        );
        let title = s(a, &["item", "title"]);
        assert!(
            !title.contains("<script"),
            "script tag in a title: {title:?}"
        );
    }
    assert!(
        !alerts_text.to_lowercase().contains("javascript:"),
        "javascript: in the jsonl file"
    );
    let status_text = ws.cli("status", &[]).stdout;
    for (what, text) in [
        ("daemon log", &log),
        ("terminal sink", &out),
        ("status", &status_text),
    ] {
        if let Some((i, c)) = text.char_indices().find(|(_, c)| bad(*c)) {
            let from = text[..i].rfind('\n').map_or(0, |n| n + 1);
            panic!(
                "raw {c:?} in the {what}: {:?}",
                &text[from..text.len().min(i + 40)]
            );
        }
    }
    eprintln!("hostile: badroot: {err:?}");
}
