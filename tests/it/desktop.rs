//! `type = "desktop"` against real parts: a private `dbus-daemon` (no
//! service activation), `Xvfb` on a display it picks itself, `dunst` as the
//! notification server and `dbus-monitor` recording every message. Each test
//! starts its own set and kills each process by PID when it ends, panics
//! included ([`Proc`]'s `Drop`). `scripts/test.sh` installs the packages.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{Route, TestServer};
use crate::util::*;

const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A helper process, killed (SIGKILL works on a stopped one too) and reaped
/// on drop.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {name} ({e}); ./scripts/test.sh installs the desktop test tools")
        });
        Proc { name, child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    #[track_caller]
    fn assert_running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("{} exited early: {st}", self.name);
        }
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} {} failed", self.name);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line `child` prints on stdout, within `timeout`.
fn first_line(p: &mut Proc, timeout: Duration) -> String {
    let out = p.child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(timeout)
        .unwrap_or_else(|_| panic!("{} printed nothing within {timeout:?}", p.name));
    assert!(
        !line.trim().is_empty(),
        "{} exited before it was ready",
        p.name
    );
    line.trim().to_string()
}

/// One private session: a bus, and optionally an X server with dunst on
/// it. Fields drop in order: watchers first, the bus last, the dir after
/// everything.
struct Session {
    address: String,
    monitor: Option<Proc>,
    dunst: Option<Proc>,
    xvfb: Option<Proc>,
    /// Held to be killed last.
    _bus: Proc,
    dir: tempfile::TempDir,
}

const BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

impl Session {
    /// A session bus with no notification server and no service
    /// activation (so nothing can start one behind the test's back).
    fn bus_only() -> Session {
        let dir = tempfile::Builder::new()
            .prefix("ww-desk-")
            .tempdir()
            .expect("tempdir");
        let conf = dir.path().join("bus.conf");
        let socket = dir.path().join("bus");
        std::fs::write(
            &conf,
            BUS_CONFIG.replace("SOCKET", socket.to_str().expect("utf-8 path")),
        )
        .expect("bus config");
        let mut bus = Proc::spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", conf.display()))
                .args(["--nofork", "--print-address=1"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log_file(dir.path(), "bus.log")),
        );
        let address = first_line(&mut bus, READY_TIMEOUT);
        assert!(socket.exists(), "bus socket missing after {address}");
        Session {
            address,
            monitor: None,
            dunst: None,
            xvfb: None,
            _bus: bus,
            dir,
        }
    }

    /// A bus with dunst (under Xvfb) owning `org.freedesktop.Notifications`
    /// and dbus-monitor writing every message to `monitor.log`.
    fn with_dunst() -> Session {
        let mut s = Session::bus_only();
        s.start_monitor();
        // -displayfd: Xvfb picks a free display itself and prints it when
        // it accepts connections.
        let mut xvfb = Proc::spawn(
            "Xvfb",
            Command::new("Xvfb")
                .args([
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "800x600x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log_file(s.dir.path(), "xvfb.log")),
        );
        let display = first_line(&mut xvfb, READY_TIMEOUT);
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
        assert!(
            wait_until(READY_TIMEOUT, || socket.exists()),
            "X socket {} missing",
            socket.display()
        );
        s.xvfb = Some(xvfb);
        let rc = s.dir.path().join("dunstrc");
        std::fs::write(&rc, "[global]\n    markup = full\n    idle_threshold = 0\n")
            .expect("dunstrc");
        let dunst = Proc::spawn(
            "dunst",
            Command::new("dunst")
                .arg("-conf")
                .arg(&rc)
                .env("DISPLAY", format!(":{display}"))
                .env("DBUS_SESSION_BUS_ADDRESS", &s.address)
                .env("HOME", s.dir.path())
                .env("XDG_CONFIG_HOME", s.dir.path())
                .env_remove("WAYLAND_DISPLAY")
                .stdin(Stdio::null())
                .stdout(log_file(s.dir.path(), "dunst.log"))
                .stderr(log_file(s.dir.path(), "dunst.err")),
        );
        s.dunst = Some(dunst);
        let ready = wait_until(READY_TIMEOUT, || {
            s.dbus_send(&[
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.Notifications",
            ])
            .contains("true")
        });
        if let Some(d) = s.dunst.as_mut() {
            d.assert_running();
        }
        assert!(
            ready,
            "dunst did not take org.freedesktop.Notifications\n{}",
            s.file("dunst.err")
        );
        s
    }

    fn start_monitor(&mut self) {
        let out = log_file(self.dir.path(), "monitor.log");
        self.monitor = Some(Proc::spawn(
            "dbus-monitor",
            Command::new("dbus-monitor")
                .args(["--address", &self.address])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(log_file(self.dir.path(), "monitor.err")),
        ));
        // It prints its own NameLost once it has become a monitor.
        assert!(
            wait_until(READY_TIMEOUT, || self.monitor_log().contains("NameLost")),
            "dbus-monitor not ready:\n{}",
            self.file("monitor.err")
        );
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn monitor_log(&self) -> String {
        self.file("monitor.log")
    }

    /// `dbus-send --print-reply=literal` on this bus; its stdout (empty on
    /// failure).
    fn dbus_send(&self, args: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args(["--print-reply=literal", "--reply-timeout=2000"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dbus-send");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dunst(&self) -> &Proc {
        self.dunst.as_ref().expect("a session with dunst")
    }

    /// How many notifications dunst shows right now (its own counter).
    fn dunst_displayed(&self) -> u32 {
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.Notifications",
            "/org/freedesktop/Notifications",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.dunstproject.cmd0",
            "string:displayedLength",
        ]);
        out.split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("displayedLength: {out:?}"))
    }

    /// Environment for a wirewatch daemon on this session; `bin` (if any)
    /// goes first on PATH.
    fn env(&self, bin: Option<&Path>) -> Vec<(&'static str, String)> {
        let mut env = vec![("DBUS_SESSION_BUS_ADDRESS", self.address.clone())];
        if let Some(bin) = bin {
            let path = std::env::var("PATH").unwrap_or_default();
            env.push(("PATH", format!("{}:{path}", bin.display())));
        }
        env
    }
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).expect("log file")
}

/// One message as dbus-monitor prints it: the header line and the
/// argument lines.
#[derive(Debug)]
struct Msg {
    header: String,
    args: String,
}

impl Msg {
    fn field(&self, key: &str) -> Option<&str> {
        self.header
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_end_matches(';'))
    }
}

fn messages(log: &str) -> Vec<Msg> {
    let starts = ["method call ", "method return ", "signal ", "error "];
    let mut out: Vec<Msg> = Vec::new();
    for line in log.split_inclusive('\n') {
        if starts.iter().any(|s| line.starts_with(s)) && line.contains(" time=") {
            out.push(Msg {
                header: line.trim_end().to_string(),
                args: String::new(),
            });
        } else if let Some(m) = out.last_mut() {
            m.args.push_str(line);
        }
    }
    out
}

/// The `Notify` calls in the log whose summary is `summary`.
fn notify_calls<'a>(msgs: &'a [Msg], summary: &str) -> Vec<&'a Msg> {
    let needle = format!("   string \"{summary}\"\n   string \"");
    msgs.iter()
        .filter(|m| m.header.contains("member=Notify") && m.args.contains(&needle))
        .collect()
}

/// Whether the notification server answered `call` with an id.
fn answered(msgs: &[Msg], call: &Msg) -> bool {
    let (Some(sender), Some(serial)) = (call.field("sender"), call.field("serial")) else {
        return false;
    };
    msgs.iter().any(|m| {
        m.header.starts_with("method return ")
            && m.field("destination") == Some(sender)
            && m.field("reply_serial") == Some(serial)
            && m.args.trim_start().starts_with("uint32 ")
    })
}

fn json_feed(items: &[(&str, &str, &str)]) -> String {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|(id, title, html)| {
            serde_json::json!({
                "id": id,
                "url": format!("https://wire.example.test/story/{id}"),
                "title": title,
                "content_html": html,
                "date_published": rfc3339_ago(600),
            })
        })
        .collect();
    serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Desk Wire",
        "items": items,
    })
    .to_string()
}

const JSON_FEED: &str = "application/feed+json";

const DESK_RULES: &str = r#"
[[rule]]
id = "kursk"
any = ["Kursk"]
severity = "high"
"#;

fn desk_config(srv: &TestServer, desk: &str) -> Config {
    Config::new(DESK_RULES)
        .feed("wire", &srv.url("/wire.json"))
        .sink(&format!("id = \"desk\"\ntype = \"desktop\"\n{desk}"))
}

/// Lines of the daemon's log about failed deliveries to the desktop sink.
fn desk_failures(d: &Daemon) -> Vec<String> {
    d.stderr()
        .lines()
        .filter(|l| l.contains("delivery failed") && l.contains("sink=desk"))
        .map(str::to_string)
        .collect()
}

/// From the alert's `detected_at` (the poll that queued it for every sink)
/// to the timestamp of the log line `line`.
#[track_caller]
fn logged_after_detection(ws: &Workspace, title: &str, line: &str) -> Duration {
    let alert = ws
        .alerts()
        .into_iter()
        .find(|a| s(a, &["item", "title"]) == title)
        .unwrap_or_else(|| panic!("no jsonl alert titled {title:?}"));
    let detected = assert_rfc3339(&alert["detected_at"], "detected_at");
    let stamp = line
        .split_whitespace()
        .next()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("log line without a timestamp: {line:?}"));
    (stamp - detected)
        .to_std()
        .unwrap_or_else(|_| panic!("logged before detection? {line:?}"))
}

/// Waits until the jsonl sink holds `n` alerts; panics with the logs.
#[track_caller]
fn wait_alerts(ws: &Workspace, d: &Daemon, n: usize, within: Duration) {
    assert!(
        wait_until(within, || ws.alerts().len() >= n),
        "jsonl sink has {} alert(s), expected {n}\n{}",
        ws.alerts().len(),
        d.logs()
    );
}

/// A hostile item reaches dunst: summary = title (plain, clean), body =
/// the snippet XML-escaped with the hit in `<b>`, the rule named,
/// urgency critical (severity high), a default action; dunst answers and
/// shows it. A click (dunst's own action call) runs `xdg-open LINK`.
#[test]
fn notification_reaches_dunst_escaped_with_highlights_and_click_opens_link() {
    let session = Session::with_dunst();
    let srv = TestServer::start();
    srv.route(
        "/wire.json",
        Route::ok(
            JSON_FEED,
            json_feed(&[(
                "evil",
                "Kursk crews &lt;script&gt;alert(1)&lt;/script&gt; &amp; \"co\" \u{1b}[31m \u{202e}gnp.exe",
                "<p>Crews in Kursk fixed it &lt;b&gt;now&lt;/b&gt; &amp; 'fast' \u{1b}[2J \u{202e}txt.exe today.</p>",
            )]),
        ),
    );
    let ws = Workspace::new(&desk_config(&srv, "app_name = \"wirewatch-test\"\n"));
    let bin = ws.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let opened = ws.path().join("opened.txt");
    let opener = ws.write(
        "bin/xdg-open",
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$#:$1\" >> '{}'\n",
            opened.display()
        ),
    );
    Command::new("chmod")
        .arg("+x")
        .arg(&opener)
        .status()
        .expect("chmod");
    let env = session.env(Some(&bin));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let d = ws.spawn_daemon_env(&env);
    wait_alerts(&ws, &d, 1, Duration::from_secs(20));

    let title = "Kursk crews <script>alert(1)</script> & \"co\" [31m gnp.exe";
    assert_eq!(s(&ws.alerts()[0], &["item", "title"]), title);
    let arrived = wait_until(Duration::from_secs(10), || {
        let msgs = messages(&session.monitor_log());
        notify_calls(&msgs, title)
            .iter()
            .any(|m| answered(&msgs, m))
    });
    let log = session.monitor_log();
    assert!(
        arrived,
        "no answered Notify with summary {title:?}\n--- monitor ---\n{log}\n{}",
        d.logs()
    );
    let msgs = messages(&log);
    let calls = notify_calls(&msgs, title);
    assert_eq!(calls.len(), 1, "one notification: {calls:#?}");
    let args = &calls[0].args;
    let body = "Crews in <b>Kursk</b> fixed it &lt;b&gt;now&lt;/b&gt; &amp; &#39;fast&#39; [2J txt.exe today.\
                \nDesk Wire · rule: kursk";
    assert!(
        args.starts_with("   string \"wirewatch-test\"\n"),
        "app name: {args}"
    );
    assert!(
        args.contains(&format!(
            "   string \"{title}\"\n   string \"{body}\"\n   array [\n      string \"default\"\n      string \"Open\"\n   ]"
        )),
        "summary/body/actions not as expected:\n{args}"
    );
    let urgency = args
        .split("string \"urgency\"")
        .nth(1)
        .and_then(|r| r.lines().nth(1))
        .unwrap_or("");
    assert!(urgency.trim().ends_with("byte 2"), "urgency: {args}");
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{202e}'),
        "control or bidi chars reached the bus"
    );
    assert!(session.dunst_displayed() >= 1, "dunst shows nothing");

    // Click: dunst runs the notification's default action.
    session.dbus_send(&[
        "--dest=org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        "org.dunstproject.cmd0.NotificationAction",
        "uint32:0",
    ]);
    assert!(
        // The fake xdg-open writes its line; wait for the whole line.
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&opened)
            .is_ok_and(|t| t.ends_with('\n'))),
        "xdg-open was not run after the click\n{}",
        d.logs()
    );
    assert_eq!(
        std::fs::read_to_string(&opened).expect("opened.txt"),
        "1:https://wire.example.test/story/evil\n"
    );
}

/// dunst frozen with SIGSTOP: the desktop attempt fails by its 5 s timeout
/// while the jsonl sink keeps delivering and the feed keeps being polled;
/// after SIGCONT the retry delivers.
#[test]
fn frozen_server_times_out_while_other_sink_and_polling_go_on() {
    let session = Session::with_dunst();
    let srv = TestServer::start();
    let a = ("a", "Kursk market opens", "<p>Stalls in Kursk opened.</p>");
    let b = ("b", "Kursk mayor speaks", "<p>The Kursk mayor spoke.</p>");
    let c = (
        "c",
        "Kursk rail resumes",
        "<p>Trains to Kursk run again.</p>",
    );
    srv.route("/wire.json", Route::ok(JSON_FEED, json_feed(&[a])));
    // A webhook receiver too: its deliveries must go on while the desktop
    // is frozen.
    let rx = TestServer::start();
    rx.route("/hook", Route::status(200));
    let ws = Workspace::new(&desk_config(&srv, "").sink(&format!(
        "id = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"",
        rx.url("/hook")
    )));
    let env = session.env(None);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let d = ws.spawn_daemon_env(&env);
    wait_alerts(&ws, &d, 1, Duration::from_secs(20));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let msgs = messages(&session.monitor_log());
            notify_calls(&msgs, a.1).iter().any(|m| answered(&msgs, m))
        }),
        "first alert not shown\n{}",
        d.logs()
    );

    let caps_queries = || {
        messages(&session.monitor_log())
            .iter()
            .filter(|m| m.header.contains("member=GetCapabilities"))
            .count()
    };
    assert_eq!(caps_queries(), 1, "capabilities asked once, then cached");

    session.dunst().signal("STOP");
    srv.route("/wire.json", Route::ok(JSON_FEED, json_feed(&[a, b])));
    wait_alerts(&ws, &d, 2, Duration::from_secs(10));
    // Both workers were woken by the same poll: the desktop attempt started
    // about when the jsonl line was written.
    let started = Instant::now();
    let polls_before = srv.hits("/wire.json");
    srv.route("/wire.json", Route::ok(JSON_FEED, json_feed(&[a, b, c])));
    wait_alerts(&ws, &d, 3, Duration::from_secs(4));
    let delivered_while_frozen = started.elapsed();
    assert!(
        wait_until(Duration::from_secs(3), || rx.hits("/hook") >= 3),
        "webhook deliveries stopped while the desktop was frozen\n{}",
        d.logs()
    );
    let webhook_while_frozen = started.elapsed();
    assert!(
        wait_until(Duration::from_secs(12), || !desk_failures(&d).is_empty()),
        "the desktop attempt never failed\n{}",
        d.logs()
    );
    let failed_after = started.elapsed();
    let polls_during = srv.hits("/wire.json") - polls_before;
    let failures = desk_failures(&d);
    let logged = logged_after_detection(&ws, b.1, &failures[0]);
    eprintln!(
        "frozen server: attempt failed after {failed_after:?} (log: {logged:?} after the poll); jsonl delivered the next alert after {delivered_while_frozen:?}; {polls_during} polls meanwhile"
    );
    assert!(
        logged >= Duration::from_millis(4900) && logged <= Duration::from_millis(6500),
        "the log puts the failure {logged:?} after the poll, expected about 5 s"
    );
    assert!(
        failures[0].contains("did not answer within 5s"),
        "{failures:?}"
    );
    assert!(
        failed_after >= Duration::from_millis(4500) && failed_after <= Duration::from_millis(6500),
        "the attempt failed after {failed_after:?}, expected about 5 s\n{}",
        d.logs()
    );
    assert!(
        delivered_while_frozen < failed_after,
        "jsonl waited for the frozen desktop sink"
    );
    assert!(
        webhook_while_frozen < failed_after,
        "the webhook waited for the frozen desktop sink"
    );
    assert!(
        polls_during >= 3,
        "only {polls_during} polls while the notification server was frozen"
    );

    session.dunst().signal("CONT");
    // b's retry is due 4-6 s after its failure.
    assert!(
        wait_until(Duration::from_secs(20), || {
            ws.cli("status", &[])
                .stdout
                .lines()
                .any(|l| l.starts_with("sink desk") && l.contains(" 0 waiting"))
        }),
        "alerts still waiting for the desktop sink: {}\n{}\n{}",
        ws.cli("status", &[]).stdout,
        session.monitor_log(),
        d.logs()
    );
    let msgs = messages(&session.monitor_log());
    let b_calls = notify_calls(&msgs, b.1);
    // The timed-out call (dunst may still show it once thawed: at least
    // once) and the retry, which dunst answered.
    assert!(
        b_calls.len() >= 2 && b_calls.last().is_some_and(|m| answered(&msgs, m)),
        "b was not retried and answered: {b_calls:#?}"
    );
    assert!(
        notify_calls(&msgs, c.1).iter().any(|m| answered(&msgs, m)),
        "c was not shown"
    );
    assert!(
        caps_queries() >= 2,
        "capabilities were not asked again after the failed attempt"
    );
}

/// A bus without a notification server, then no bus at all: each attempt
/// fails at once (well within the 5 s timeout) and the jsonl sink still
/// delivers every alert while polling goes on.
#[test]
fn absent_server_and_missing_bus_fail_fast_while_other_sink_delivers() {
    let mut session = Session::bus_only();
    session.start_monitor();
    let no_bus = tempfile::tempdir().expect("tempdir");
    let no_bus_addr = format!("unix:path={}", no_bus.path().join("bus").display());
    let cases = [
        (session.address.clone(), "no notification server on the bus"),
        (no_bus_addr, "no D-Bus session bus"),
    ];
    for (address, expect) in cases {
        let srv = TestServer::start();
        let a = ("a", "Kursk market opens", "<p>Stalls in Kursk opened.</p>");
        let b = ("b", "Kursk mayor speaks", "<p>The Kursk mayor spoke.</p>");
        srv.route("/wire.json", Route::ok(JSON_FEED, json_feed(&[a])));
        let ws = Workspace::new(&desk_config(&srv, ""));
        let d = ws.spawn_daemon_env(&[("DBUS_SESSION_BUS_ADDRESS", &address)]);
        wait_alerts(&ws, &d, 1, Duration::from_secs(20));
        let started = Instant::now();
        assert!(
            wait_until(Duration::from_secs(8), || !desk_failures(&d).is_empty()),
            "[{expect}] no failure logged\n{}",
            d.logs()
        );
        let seen_after = started.elapsed();
        let failures = desk_failures(&d);
        assert!(failures[0].contains(expect), "{failures:?}");
        let took = logged_after_detection(&ws, a.1, &failures[0]);
        eprintln!(
            "[{expect}] attempt failed {took:?} after the poll that queued the alert (seen {seen_after:?} after the jsonl delivery)"
        );
        assert!(took < Duration::from_secs(5), "[{expect}] took {took:?}");
        let polls = srv.hits("/wire.json");
        srv.route("/wire.json", Route::ok(JSON_FEED, json_feed(&[a, b])));
        wait_alerts(&ws, &d, 2, Duration::from_secs(10));
        assert!(srv.hits("/wire.json") > polls, "[{expect}] polling stopped");
        let status = ws.cli("status", &[]);
        assert!(
            status
                .stdout
                .lines()
                .any(|l| l.starts_with("sink desk") && l.contains(" 2 waiting")),
            "[{expect}] {}",
            status.stdout
        );
    }
    // The first case really asked the bus, and the bus said no one is there.
    let msgs = messages(&session.monitor_log());
    assert!(
        msgs.iter().any(|m| m.header.starts_with("error ")
            && m.field("error_name") == Some("org.freedesktop.DBus.Error.ServiceUnknown")),
        "no ServiceUnknown reply on the bus:\n{}",
        session.monitor_log()
    );
}

/// Bad desktop keys are reported by `check` with file:line:col.
#[test]
fn bad_desktop_keys_point_at_their_place() {
    let srv = TestServer::start();
    let ws = Workspace::new(&desk_config(
        &srv,
        "timeout = \"forever\"\nexpire = \"0\"\nactions = 1\napp = \"x\"\n",
    ));
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    let cfg = ws.config_path();
    let text = std::fs::read_to_string(&cfg).expect("config");
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.starts_with(key))
            .map(|i| i + 1)
            .expect("key in config")
    };
    for (key, col, msg) in [
        ("timeout", 11, "`timeout`: invalid duration \"forever\""),
        (
            "expire",
            10,
            "`expire` must be longer than 0s and at most 1d, or \"never\"",
        ),
        (
            "actions",
            11,
            "`actions` must be true or false, found an integer",
        ),
        ("app =", 1, "unknown key `app` in sink \"desk\""),
    ] {
        let want = format!("{cfg}:{}:{col}: {msg}", line_of(key));
        assert!(
            out.stderr.contains(&want) || out.stdout.contains(&want),
            "missing {want:?} in\n{}{}",
            out.stdout,
            out.stderr
        );
    }
}
