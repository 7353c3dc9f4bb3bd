//! Running under systemd: the `sd_notify` protocol (READY, STOPPING,
//! STATUS, WATCHDOG), the watchdog loop that pings only while the daemon is
//! healthy, per-feed liveness for that health check, and journald detection
//! for the log format.
//!
//! No libsystemd: a notification is one datagram to `$NOTIFY_SOCKET` (a
//! path, or an abstract socket when it starts with `@`), as `sd_notify(3)`
//! describes. Outside systemd (no `$NOTIFY_SOCKET`) every call is a no-op.
//!
//! The watchdog (`WatchdogSec=` in the unit, `$WATCHDOG_USEC` here) is
//! pinged from a task on the daemon's runtime, and only after a health
//! check passed: no feed poll has been stuck for far longer than any poll
//! can take, and the database answered a trivial read within a deadline. A
//! frozen or starved runtime, a stuck feed loop, or a database that does
//! not answer stops the pings, and systemd restarts the service.

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    /// Abstract namespace socket name (without the leading NUL).
    Abstract(Vec<u8>),
}

/// What systemd told this process through its environment.
#[derive(Clone, Debug, Default)]
pub struct Systemd {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// Not under systemd: every notification is a no-op.
    pub fn none() -> Systemd {
        Systemd::default()
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, then
    /// removes them from the environment so that programs we start (exec
    /// sinks) neither inherit nor misuse them.
    ///
    /// Call it before any thread is started (first thing in `main`):
    /// changing the environment is only sound while single-threaded.
    pub fn take_from_env() -> Systemd {
        let notify = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(k);
        }
        Systemd::from_vars(notify, usec.as_deref(), pid.as_deref(), std::process::id())
    }

    /// The parsing half of [`Systemd::take_from_env`].
    ///
    /// The watchdog is on when `WATCHDOG_USEC` is a positive number and
    /// `WATCHDOG_PID` is either unset or our own pid (like
    /// `sd_watchdog_enabled`, except that a missing `WATCHDOG_PID` is
    /// accepted: systemd always sets it for the main process, and a test
    /// harness cannot know the pid of the child it is about to spawn).
    pub fn from_vars(
        notify: Option<OsString>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        my_pid: u32,
    ) -> Systemd {
        use std::os::unix::ffi::OsStrExt;
        let target = notify.filter(|s| !s.is_empty()).and_then(|s| {
            let bytes = s.as_bytes();
            match bytes.first() {
                Some(b'@') => Some(Target::Abstract(bytes[1..].to_vec())),
                Some(b'/') => Some(Target::Path(PathBuf::from(s))),
                // vsock and relative paths: not supported, ignored.
                _ => None,
            }
        });
        let pid_ok = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(my_pid));
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && pid_ok)
            .map(Duration::from_micros);
        Systemd { target, watchdog }
    }

    /// Whether notifications go anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `WatchdogSec=`, if the watchdog is on for this process.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends `state` (newline-separated `KEY=value` assignments). Returns
    /// whether it was sent; `Ok(false)` when not under systemd.
    pub fn notify(&self, state: &str) -> io::Result<bool> {
        let Some(target) = &self.target else {
            return Ok(false);
        };
        let sock = UnixDatagram::unbound()?;
        match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p)?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)?
            }
        };
        Ok(true)
    }

    /// [`Systemd::notify`], logging a failure instead of returning it: a
    /// lost notification must never take the daemon down.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            tracing::warn!(error = %e, notification = %state.lines().next().unwrap_or(""),
                "cannot notify systemd");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// A status line (`systemctl status` shows it).
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// Whether stderr is connected to the journal: systemd sets
/// `JOURNAL_STREAM=<device>:<inode>` to the stream it gave us as stdout or
/// stderr; it counts only if stderr is still that stream (a child whose
/// stderr was redirected inherits the variable but not the stream).
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = var.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        Err(_) => false,
    }
}

/// Log lines for journald on stderr: `<N>` priority prefix (journald reads
/// it as the syslog level), no timestamp (journald adds its own), no
/// colours; fields stay `key=value` so `journalctl -u wirewatch -g
/// 'feed=bbc'` finds them.
pub struct JournalFormat {
    inner: tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, ()>,
}

impl Default for JournalFormat {
    fn default() -> Self {
        JournalFormat {
            inner: tracing_subscriber::fmt::format()
                .without_time()
                .with_target(false)
                .with_ansi(false),
        }
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// syslog priority of a tracing level.
pub fn priority(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// Which feed polls are in progress and since when, for the health check.
/// Each feed loop holds a [`Busy`] guard while it polls.
pub struct Liveness {
    epoch: Instant,
    /// Per feed: milliseconds since `epoch` + 1 when its poll started, 0
    /// when idle.
    since: Vec<AtomicU64>,
    names: Vec<String>,
}

impl Liveness {
    pub fn new(names: Vec<String>) -> Liveness {
        Liveness {
            epoch: Instant::now(),
            since: names.iter().map(|_| AtomicU64::new(0)).collect(),
            names,
        }
    }

    /// Marks feed `slot` as polling until the guard is dropped.
    pub fn busy(self: &Arc<Self>, slot: usize) -> Busy {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        if let Some(s) = self.since.get(slot) {
            s.store(now, Ordering::Relaxed);
        }
        Busy {
            live: self.clone(),
            slot,
        }
    }

    /// The feed whose poll has run longest, if longer than `limit`.
    pub fn stuck(&self, limit: Duration) -> Option<(&str, Duration)> {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.since
            .iter()
            .zip(&self.names)
            .filter_map(|(s, n)| match s.load(Ordering::Relaxed) {
                0 => None,
                t => Some((n.as_str(), Duration::from_millis(now.saturating_sub(t)))),
            })
            .max_by_key(|(_, d)| *d)
            .filter(|(_, d)| *d > limit)
    }
}

/// See [`Liveness::busy`].
pub struct Busy {
    live: Arc<Liveness>,
    slot: usize,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(s) = self.live.since.get(self.slot) {
            s.store(0, Ordering::Relaxed);
        }
    }
}

/// How often the watchdog is pinged: a quarter of `WatchdogSec=`, so one
/// failed or slow check is tolerated and a second one in a row is not
/// (systemd acts after a whole `WatchdogSec=` without a ping).
pub fn ping_period(watchdog: Duration) -> Duration {
    (watchdog / 4).max(Duration::from_millis(50))
}

/// Deadline of one health check (the database's answer included).
pub fn check_deadline(watchdog: Duration) -> Duration {
    (watchdog / 4).min(Duration::from_secs(5))
}

/// Pings the watchdog every [`ping_period`] while `check` passes within
/// [`check_deadline`], until `cancel` fires. Returns at once when the
/// watchdog is off.
pub async fn watchdog<F, Fut>(sd: Systemd, cancel: CancellationToken, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let Some(wd) = sd.watchdog() else {
        return;
    };
    let (period, deadline) = (ping_period(wd), check_deadline(wd));
    tracing::debug!(watchdog = ?wd, period = ?period, "watchdog on");
    let mut failing = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let verdict = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(deadline, check()) => match r {
                Ok(r) => r,
                Err(_) => Err(format!("health check took longer than {deadline:?}")),
            },
        };
        match verdict {
            Ok(()) => {
                if failing {
                    tracing::info!("healthy again; watchdog pings resume");
                    failing = false;
                }
                sd.send("WATCHDOG=1");
            }
            Err(e) => {
                failing = true;
                tracing::error!(error = %e, "unhealthy: watchdog not pinged (systemd restarts the service after WatchdogSec)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (dir, path, sock)
    }

    fn recv(sock: &UnixDatagram) -> Option<String> {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    #[test]
    fn parses_the_environment() {
        let sd = Systemd::from_vars(None, Some("1000000"), None, 7);
        assert!(!sd.enabled());
        assert_eq!(sd.watchdog(), Some(Duration::from_secs(1)));
        let sd = Systemd::from_vars(Some("@abs".into()), Some("30000000"), Some("7"), 7);
        assert_eq!(sd.target, Some(Target::Abstract(b"abs".to_vec())));
        assert_eq!(sd.watchdog(), Some(Duration::from_secs(30)));
        // The watchdog is for another process (we were forked or exec'd by
        // the main process).
        let sd = Systemd::from_vars(Some("/run/n".into()), Some("30000000"), Some("8"), 7);
        assert!(sd.enabled());
        assert_eq!(sd.watchdog(), None);
        for bad in ["0", "", "x", "-5"] {
            assert_eq!(
                Systemd::from_vars(None, Some(bad), None, 7).watchdog(),
                None
            );
        }
        assert!(!Systemd::from_vars(Some("".into()), None, None, 7).enabled());
        assert!(!Systemd::from_vars(Some("relative".into()), None, None, 7).enabled());
    }

    #[test]
    fn sends_datagrams_to_path_and_abstract_sockets() {
        assert!(!Systemd::none().notify("READY=1").expect("noop"));
        let (_dir, path, sock) = listener();
        let sd = Systemd::from_vars(Some(path.into_os_string()), None, None, 1);
        sd.ready("polling 3 feeds\nsecond line");
        assert_eq!(
            recv(&sock).as_deref(),
            Some("READY=1\nSTATUS=polling 3 feeds second line")
        );

        use std::os::linux::net::SocketAddrExt;
        let name = format!("wirewatch-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract addr");
        let abs = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        abs.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let sd = Systemd::from_vars(Some(format!("@{name}").into()), None, None, 1);
        sd.stopping("bye");
        assert_eq!(recv(&abs).as_deref(), Some("STOPPING=1\nSTATUS=bye"));
    }

    #[test]
    fn liveness_reports_the_longest_stuck_poll() {
        let live = Arc::new(Liveness::new(vec!["a".into(), "b".into()]));
        assert!(live.stuck(Duration::ZERO).is_none());
        let _a = live.busy(0);
        std::thread::sleep(Duration::from_millis(30));
        {
            let _b = live.busy(1);
            let (name, d) = live.stuck(Duration::from_millis(10)).expect("stuck");
            assert_eq!(name, "a");
            assert!(d >= Duration::from_millis(25));
        }
        assert!(live.stuck(Duration::from_secs(60)).is_none());
        drop(_a);
        assert!(live.stuck(Duration::ZERO).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watchdog_pings_only_while_healthy() {
        let (_dir, path, sock) = listener();
        sock.set_read_timeout(Some(Duration::from_millis(400)))
            .expect("timeout");
        let sd = Systemd::from_vars(Some(path.into_os_string()), Some("200000"), None, 1);
        let healthy = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let cancel = CancellationToken::new();
        let h = healthy.clone();
        let task = tokio::spawn(watchdog(sd, cancel.clone(), move || {
            let mode = h.load(Ordering::Relaxed);
            async move {
                match mode {
                    0 => Ok(()),
                    1 => Err("database down".to_string()),
                    // A check that never answers: the deadline fails it.
                    _ => std::future::pending().await,
                }
            }
        }));
        let sock = Arc::new(sock);
        let rx = |s: Arc<UnixDatagram>| async move {
            tokio::task::spawn_blocking(move || recv(&s))
                .await
                .expect("join")
        };
        for _ in 0..3 {
            assert_eq!(rx(sock.clone()).await.as_deref(), Some("WATCHDOG=1"));
        }
        for mode in [1, 2] {
            healthy.store(mode, Ordering::Relaxed);
            // Drain a ping that may have been sent before the switch.
            let _ = rx(sock.clone()).await;
            assert_eq!(
                rx(sock.clone()).await,
                None,
                "pinged while unhealthy ({mode})"
            );
        }
        healthy.store(0, Ordering::Relaxed);
        assert_eq!(rx(sock.clone()).await.as_deref(), Some("WATCHDOG=1"));
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("watchdog stops on cancel")
            .expect("join");
    }
}
