//! systemd integration of `wirewatch run`, against a real notification
//! socket: READY=1 only once state is open, WATCHDOG=1 pings that stop when
//! the process is frozen, STOPPING=1 on SIGTERM, RELOADING=1/READY=1 around
//! a SIGHUP reload, the
//! shutdown deadline with a stalled delivery, and the journal log format.
//!
//! `WATCHDOG_PID` is left unset: the test cannot know the pid of the child
//! before spawning it, and wirewatch accepts a missing `WATCHDOG_PID` (it
//! ignores the watchdog only when `WATCHDOG_PID` names another process).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

/// The socket systemd would listen on, bound by the test.
struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(ws: &Workspace) -> NotifySocket {
        let path = ws.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        NotifySocket { sock, path }
    }

    fn env(&self) -> String {
        self.path.to_str().expect("utf-8 path").to_string()
    }

    /// The next notification within `timeout`.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set timeout");
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Every notification until one starts with `prefix` (included), or
    /// `None` when none did within `timeout`.
    fn until(&self, prefix: &str, timeout: Duration) -> Result<Vec<String>, Vec<String>> {
        let end = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(m) => {
                    let done = m.starts_with(prefix);
                    seen.push(m);
                    if done {
                        return Ok(seen);
                    }
                }
                None => break,
            }
        }
        Err(seen)
    }

    /// Every notification within `period`.
    fn collect(&self, period: Duration) -> Vec<String> {
        let end = Instant::now() + period;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(m) => seen.push(m),
                None => break,
            }
        }
        seen
    }
}

fn kursk_feed(srv: &TestServer) -> Config {
    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[entry("s1", "Kursk service story", "Seen under systemd.")],
            ),
        ),
    );
    Config::new(KURSK_RULES).feed_with("wire", &srv.url("/wire.xml"), "interval = \"1s\"")
}

#[test]
fn ready_after_state_watchdog_pings_stop_when_frozen_stopping_on_sigterm() {
    let srv = TestServer::start();
    let ws = Workspace::new(&kursk_feed(&srv));
    let ns = NotifySocket::bind(&ws);
    // WatchdogSec=0.8s: pinged every 200 ms while healthy.
    let mut d = ws.spawn_daemon_env(&[("NOTIFY_SOCKET", &ns.env()), ("WATCHDOG_USEC", "800000")]);

    let first = ns
        .until("READY=1", Duration::from_secs(10))
        .unwrap_or_else(|seen| panic!("no READY=1 within 10 s: {seen:?}\n{}", d.logs()));
    assert_eq!(first.len(), 1, "READY=1 must come first: {first:?}");
    assert!(first[0].contains("STATUS=polling 1 feed(s)"), "{first:?}");
    assert!(
        ws.state_dir().join("wirewatch.db").exists(),
        "READY=1 before the state database exists"
    );

    let pings = ns.collect(Duration::from_millis(1500));
    let n = pings.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(n >= 4, "expected ~7 watchdog pings in 1.5 s, got {pings:?}");

    // Frozen: no pings at all (a bare timer thread would keep pinging).
    d.signal("STOP");
    let _in_flight = ns.collect(Duration::from_millis(100));
    let frozen = ns.collect(Duration::from_millis(1200));
    d.signal("CONT");
    assert!(frozen.is_empty(), "pinged while frozen: {frozen:?}");
    ns.until("WATCHDOG=1", Duration::from_secs(3))
        .unwrap_or_else(|seen| panic!("pings did not resume after SIGCONT: {seen:?}"));

    // SIGHUP (systemctl reload) reloads: RELOADING=1, then READY=1 once
    // the new configuration runs; the daemon keeps running and pinging.
    d.signal("HUP");
    ns.until("RELOADING=1", Duration::from_secs(5))
        .unwrap_or_else(|seen| panic!("no RELOADING=1 after SIGHUP: {seen:?}\n{}", d.logs()));
    ns.until("READY=1", Duration::from_secs(10))
        .unwrap_or_else(|seen| panic!("no READY=1 after the reload: {seen:?}\n{}", d.logs()));
    ns.until("WATCHDOG=1", Duration::from_secs(3))
        .unwrap_or_else(|seen| panic!("no ping after SIGHUP: {seen:?}\n{}", d.logs()));
    assert!(d.running(), "SIGHUP killed the daemon:\n{}", d.logs());
    assert!(
        wait_until(Duration::from_secs(3), || d
            .stderr()
            .contains("configuration reloaded")),
        "reload not logged:\n{}",
        d.logs()
    );
    assert!(
        wait_until(Duration::from_secs(10), || ws.alerts().len() == 1),
        "no alert while supervised:\n{}",
        d.logs()
    );

    d.signal("TERM");
    let rest = ns
        .until("STOPPING=1", Duration::from_secs(5))
        .unwrap_or_else(|seen| panic!("no STOPPING=1 after SIGTERM: {seen:?}\n{}", d.logs()));
    assert!(!rest.iter().any(|m| m.starts_with("READY=1")), "{rest:?}");
    let st = d
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no exit within 5 s of SIGTERM:\n{}", d.logs()));
    assert_eq!(st.code(), Some(0), "{}", d.logs());
}

#[test]
fn no_ready_when_the_state_directory_cannot_be_created() {
    let srv = TestServer::start();
    let ws = Workspace::new(&kursk_feed(&srv).set("state_dir", "\"blocker/state\""));
    // A file where a directory must go.
    ws.write("blocker", "not a directory");
    let ns = NotifySocket::bind(&ws);
    let mut d = ws.spawn_daemon_env(&[("NOTIFY_SOCKET", &ns.env()), ("WATCHDOG_USEC", "800000")]);
    let st = d
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running without state:\n{}", d.logs()));
    assert_eq!(st.code(), Some(1), "{}", d.logs());
    let got = ns.collect(Duration::from_millis(300));
    assert!(
        !got.iter()
            .any(|m| m.contains("READY=1") || m.contains("WATCHDOG=1")),
        "READY/WATCHDOG without state: {got:?}"
    );
    assert!(
        got.iter().any(|m| m.starts_with("STATUS=cannot start")),
        "no failure status: {got:?}"
    );
    assert_eq!(srv.hits("/wire.xml"), 0, "polled without state");
}

#[test]
fn sigterm_exits_within_the_grace_period_despite_a_stalled_delivery() {
    let srv = TestServer::start();
    srv.route("/hook", Route::Stall);
    let cfg = kursk_feed(&srv).sink(&format!(
        "id = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"60s\"\n",
        srv.url("/hook")
    ));
    let ws = Workspace::new(&cfg);
    let ns = NotifySocket::bind(&ws);
    let mut d = ws.spawn_daemon_env(&[("NOTIFY_SOCKET", &ns.env())]);
    assert!(
        wait_until(Duration::from_secs(10), || srv.hits("/hook") >= 1),
        "webhook never called:\n{}",
        d.logs()
    );
    let asked = Instant::now();
    d.signal("TERM");
    let st = d.wait_exit(Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "stalled delivery kept the daemon 20 s past SIGTERM:\n{}",
            d.logs()
        )
    });
    let took = asked.elapsed();
    assert_eq!(st.code(), Some(0), "{}", d.logs());
    // SHUTDOWN_GRACE is 10 s; the delivery's own deadline is 60 s.
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(14),
        "exit {took:?} after SIGTERM (grace 10 s)\n{}",
        d.logs()
    );
    assert!(
        d.stderr().contains("deliveries still in flight abandoned"),
        "{}",
        d.logs()
    );
    let got = ns.collect(Duration::from_millis(100));
    assert!(got.iter().any(|m| m.starts_with("STOPPING=1")), "{got:?}");
    // The cut-off alert was not acknowledged: still queued for the hook,
    // not a dead letter; the jsonl sink got its copy.
    let out = ws.cli("alerts", &["--json", "--sink", "hook"]);
    out.expect_code(0);
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    assert!(rows[0]["dead_at"].is_null(), "{}", out.stdout);
    assert_eq!(ws.alerts().len(), 1);
}

#[test]
fn logs_for_the_journal_have_priorities_and_no_timestamps() {
    use std::os::unix::fs::MetadataExt;
    let srv = TestServer::start();
    let ws = Workspace::new(&kursk_feed(&srv));

    // Outside systemd: timestamps, fields as key=value; RUST_LOG filters
    // when WIREWATCH_LOG is unset.
    let mut d = ws.spawn_daemon_env(&[("RUST_LOG", "debug")]);
    assert!(
        wait_until(Duration::from_secs(10), || d.stderr().contains("polled")),
        "{}",
        d.logs()
    );
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(5)).expect("exit");
    let plain = d.stderr();
    let line = plain
        .lines()
        .find(|l| l.contains("polled"))
        .expect("polled line");
    assert!(line.starts_with("20"), "no timestamp: {line}");
    assert!(line.contains("feed=wire"), "{line}");
    assert!(plain.contains("DEBUG"), "RUST_LOG=debug ignored:\n{plain}");
    assert!(!plain.contains('\x1b'), "colours in a file:\n{plain}");

    // JOURNAL_STREAM naming the file stderr goes to: what systemd sets when
    // stderr is the journal stream. WIREWATCH_LOG wins over RUST_LOG.
    // spawn_daemon_env truncates daemon.stderr in place: same inode.
    let meta = std::fs::metadata(ws.path().join("daemon.stderr")).expect("stat");
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let mut d = ws.spawn_daemon_env(&[
        ("JOURNAL_STREAM", &stream),
        ("WIREWATCH_LOG", "info"),
        ("RUST_LOG", "debug"),
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || d.stderr().contains("polled")),
        "{}",
        d.logs()
    );
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(5)).expect("exit");
    let journal = d.stderr();
    for l in journal.lines().filter(|l| !l.is_empty()) {
        assert!(
            l.starts_with("<6>") || l.starts_with("<4>") || l.starts_with("<3>"),
            "no priority prefix / not filtered to info: {l}\n{journal}"
        );
        assert!(!l[3..].trim_start().starts_with("20"), "timestamp: {l}");
    }
    let polled = journal
        .lines()
        .find(|l| l.contains("polled"))
        .expect("polled line");
    assert!(polled.starts_with("<6>"), "{polled}");
    assert!(polled.contains("feed=wire"), "{polled}");
}
