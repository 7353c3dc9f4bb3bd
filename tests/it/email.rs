//! Email delivery against a real SMTP server on loopback: Python's aiosmtpd
//! (`smtp_server.py` beside this file, installed by `scripts/test.sh`),
//! started by PID per test and killed on drop. The server parses each
//! message with Python's own `email` package, so both parts are checked by
//! an independent MIME reader. Covers: both parts with the snippet
//! highlighted and hostile feed text escaped, no header injection, AUTH
//! with a right and a wrong password, a refused mailbox, an SMTP server
//! that is down and comes back, STARTTLS and implicit TLS against a private
//! CA (`ca_file`), and config errors placed at file:line:col.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

const SERVER_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/smtp_server.py");

/// Fast retries so outage tests take seconds.
const FAST_RETRY: &str = "retry_initial = \"300ms\"\nretry_max = \"1s\"\n";

/// An aiosmtpd process on 127.0.0.1, recording messages into `dir`.
/// Killed (by PID) and reaped on drop; it also exits when its stdin closes,
/// so a test process that dies does not leave it behind.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpServer {
    /// Starts on a free port with extra `smtp_server.py` arguments.
    fn start(dir: &Path, args: &[&str]) -> SmtpServer {
        SmtpServer::start_on(free_port(), dir, args)
    }

    fn start_on(port: u16, dir: &Path, args: &[&str]) -> SmtpServer {
        let mut child = Command::new("python3")
            .arg(SERVER_PY)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run python3 ({e}); scripts/test.sh installs what the email tests need"
                )
            });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let ready = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        if !ready.starts_with("READY") {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait for smtp server");
            panic!(
                "the SMTP test server did not start (needs Python's aiosmtpd: \
                 `python3 -m pip install aiosmtpd`, which scripts/test.sh does)\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        SmtpServer {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Every message received so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|x| x == "json"));
        names.sort();
        names
            .iter()
            .map(|p| {
                let t = std::fs::read_to_string(p).expect("read message record");
                serde_json::from_str(&t).expect("message record is JSON")
            })
            .collect()
    }

    /// Messages whose envelope goes to `rcpt`.
    fn messages_to(&self, rcpt: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m["rcpt_tos"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|r| r.as_str() == Some(rcpt)))
            })
            .collect()
    }

    fn auth_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("auth.log")).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn mail_sink(id: &str, port: u16, to: &str, extra: &str) -> String {
    format!(
        "id = \"{id}\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         from = \"wirewatch <alerts@wirewatch.test>\"\nto = [\"{to}\"]\ntimeout = \"5s\"\n{extra}"
    )
}

/// One hostile item: markup and `&` in title and summary (double-escaped in
/// the feed, so they reach wirewatch as text), a CRLF and a header in the
/// title.
fn hostile_feed() -> String {
    let item = "<item><title>Kursk &amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; &amp;amp; \"Co\"&#13;&#10;Bcc: victim@example.test</title>\n\
        <link>https://wire.example.test/story/1?a=1&amp;b=2</link><guid isPermaLink=\"false\">urn:wirewatch-test:h1</guid>\n\
        <description>Officials in Kursk said &amp;lt;script&amp;gt;steal()&amp;lt;/script&amp;gt; &amp;amp; more today.</description>\n\
        <pubDate>{{rfc2822:-1h}}</pubDate></item>";
    render_dates(&format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>Wire &amp;amp; Co</title>\n\
         <link>https://wire.example.test/</link><description>d</description>\n{item}\n</channel></rss>\n"
    ))
}

fn text(m: &Value, key: &str) -> String {
    m[key].as_str().unwrap_or_default().replace("\r\n", "\n")
}

#[test]
fn email_has_both_parts_highlighted_and_escaped() {
    let feed = TestServer::start();
    feed.route("/wire.xml", Route::ok(RSS, hostile_feed()));
    let ws = Workspace::empty();
    let smtp = SmtpServer::start(&ws.path().join("smtp"), &[]);
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&mail_sink(
            "mail",
            smtp.port,
            "desk@wirewatch.test",
            "subject = \"[ww] {severity} {rule}: {title}\"\n",
        ));
    ws.write_config(&cfg);
    ws.once_ok();

    let alerts = ws.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    let title = s(alert, &["item", "title"]);
    let snippet = s(alert, &["snippet", "text"]);
    assert!(
        title.contains("<script>") && snippet.contains("<script>") && snippet.contains('&'),
        "the hostile text reaches the sink as text: {title:?} / {snippet:?}"
    );

    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    let m = &msgs[0];
    assert_eq!(m["content_type"], "multipart/alternative", "{m:#}");
    let parts: Vec<&str> = m["part_types"]
        .as_array()
        .expect("part types")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        parts,
        ["multipart/alternative", "text/plain", "text/html"],
        "{m:#}"
    );
    assert_eq!(m["rcpt_tos"], serde_json::json!(["desk@wirewatch.test"]));
    assert_eq!(m["mail_from"], "alerts@wirewatch.test");

    // Headers: one line of subject, no injected header, ids from the alert.
    let subject = text(m, "subject");
    assert!(
        !subject.contains('\n') && !subject.contains('\r'),
        "{subject:?}"
    );
    assert!(
        subject.starts_with("[ww] high kursk: Kursk <script>"),
        "{subject:?}"
    );
    let names: Vec<String> = m["header_names"]
        .as_array()
        .expect("header names")
        .iter()
        .map(|n| n.as_str().unwrap_or_default().to_ascii_lowercase())
        .collect();
    assert!(!names.contains(&"bcc".to_string()), "{names:?}");
    let id = s(alert, &["id"]);
    assert_eq!(text(m, "message_id"), format!("<{id}@wirewatch>"));
    assert_eq!(text(m, "alert_id"), id);

    // Plain part: the snippet with the hit marked, the link, the rule.
    let plain = text(m, "text");
    assert!(
        plain.contains("Officials in *Kursk* said <script>steal()</script> & more today."),
        "{plain}"
    );
    assert!(
        plain.contains("link:    https://wire.example.test/story/1?a=1&b=2"),
        "{plain}"
    );
    assert!(plain.contains("rules:   kursk (high)"), "{plain}");

    // HTML part: everything escaped, the hit in <mark><b>, the link an <a>.
    let html = text(m, "html");
    assert!(
        !html.contains("<script"),
        "feed markup must be escaped:\n{html}"
    );
    assert!(
        html.contains("Officials in <mark style=\"background:#ffe066\"><b>Kursk</b></mark> said &lt;script&gt;steal()&lt;/script&gt; &amp; more today."),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://wire.example.test/story/1?a=1&amp;b=2\">"),
        "{html}"
    );
    assert!(html.contains("Wire &amp; Co"), "{html}");

    ws.once_ok();
    assert_eq!(
        smtp.messages().len(),
        1,
        "a delivered alert is not sent again"
    );
}

/// The server wants AUTH: the right password delivers; a wrong one and a
/// refused mailbox (550) are rejected, retried a few times, then kept as
/// dead letters with the server's reason in `wirewatch alerts`.
#[test]
fn auth_and_refusals_become_dead_letters_with_the_reason() {
    let feed = TestServer::start();
    feed.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[entry(
                    "a1",
                    "Kursk update",
                    "Officials in Kursk spoke on Monday.",
                )],
            ),
        ),
    );
    let ws = Workspace::empty();
    let smtp = SmtpServer::start(
        &ws.path().join("smtp"),
        &[
            "--auth",
            "desk:s3cret pass",
            "--reject",
            "gone@wirewatch.test",
        ],
    );
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&mail_sink(
            "good",
            smtp.port,
            "good@wirewatch.test",
            "username = \"desk\"\npassword_file = \"smtp.password\"\nretry_initial = \"100ms\"\n",
        ))
        .sink(&mail_sink(
            "badpass",
            smtp.port,
            "badpass@wirewatch.test",
            "username = \"desk\"\npassword = \"wrong\"\nretry_initial = \"100ms\"\n",
        ))
        .sink(&mail_sink(
            "refused",
            smtp.port,
            "gone@wirewatch.test",
            "username = \"desk\"\npassword_file = \"smtp.password\"\nretry_initial = \"100ms\"\n",
        ));
    ws.write_config(&cfg);
    ws.write("smtp.password", "s3cret pass\n");

    for attempt in 1..=3 {
        let out = ws.once_ok();
        assert_eq!(
            out.stderr.matches("dead letter").count() >= 2,
            attempt == 3,
            "attempt {attempt}:\n{}",
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let good = smtp.messages_to("good@wirewatch.test");
    assert_eq!(good.len(), 1, "{:#?}", smtp.messages());
    assert_eq!(good[0]["authenticated"], true);
    assert!(smtp.messages_to("gone@wirewatch.test").is_empty());
    assert_eq!(smtp.messages().len(), 1);
    let fails = smtp.auth_log().matches("fail desk").count();
    assert_eq!(
        fails,
        3,
        "the wrong password is tried three times:\n{}",
        smtp.auth_log()
    );

    ws.once_ok();
    assert_eq!(
        smtp.auth_log().matches("fail desk").count(),
        3,
        "a dead letter is not retried"
    );
    let listing = ws.cli("alerts", &[]);
    listing.expect_code(0);
    let out = &listing.stdout;
    assert!(out.contains("DEAD since"), "{out}");
    assert!(out.contains("535"), "the auth failure is visible: {out}");
    assert!(out.contains("authentication failed"), "{out}");
    assert!(out.contains("550"), "the refused mailbox is visible: {out}");
    assert!(out.contains("mailbox unavailable"), "{out}");
    assert!(!out.contains("wrong"), "the password never shows: {out}");
}

/// No SMTP server: the alert stays queued with a transient error and the
/// other sink is not held up; once the server is up on that port, it
/// arrives, once.
#[test]
fn server_down_keeps_the_alert_until_it_is_up() {
    let feed = TestServer::start();
    feed.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[
                    entry("d1", "Kursk one", "Officials in Kursk spoke on Monday."),
                    entry("d2", "Kursk two", "Officials in Kursk spoke on Tuesday."),
                ],
            ),
        ),
    );
    let port = free_port();
    let ws = Workspace::empty();
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&mail_sink("mail", port, "desk@wirewatch.test", FAST_RETRY));
    ws.write_config(&cfg);
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(20), || ws.alerts().len() == 2),
        "a dead SMTP server must not hold up the jsonl sink\n{}",
        daemon.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    let listing = ws.cli("alerts", &["--sink", "mail"]);
    listing.expect_code(0);
    assert!(listing.stdout.contains("2 waiting"), "{}", listing.stdout);
    assert!(!listing.stdout.contains("DEAD"), "{}", listing.stdout);

    let smtp = SmtpServer::start_on(port, &ws.path().join("smtp"), &[]);
    let expected: BTreeSet<String> = ws
        .alerts()
        .iter()
        .map(|a| s(a, &["id"]).to_string())
        .collect();
    let arrived = || -> BTreeSet<String> {
        smtp.messages()
            .iter()
            .map(|m| text(m, "alert_id"))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || arrived() == expected),
        "not every alert arrived: {:?} of {expected:?}\n{}",
        arrived(),
        daemon.logs()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(smtp.messages().len(), 2, "each alert arrives once");
    drop(daemon);
}

/// A CA and a server certificate for 127.0.0.1 made with the openssl CLI.
/// Returns (ca.pem, server cert, server key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("cert dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl ({e})"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=wirewatch test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend_from_slice(&ec);
    csr.extend_from_slice(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// STARTTLS (required, with AUTH) and implicit TLS, both trusting a private
/// CA through `ca_file`; without it the certificate is refused.
#[test]
fn starttls_and_implicit_tls_with_a_private_ca() {
    let feed = TestServer::start();
    feed.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[entry(
                    "t1",
                    "Kursk update",
                    "Officials in Kursk spoke on Monday.",
                )],
            ),
        ),
    );
    let ws = Workspace::empty();
    let (ca, cert, key) = make_certs(&ws.path().join("certs"));
    let (cert, key) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let starttls = SmtpServer::start(
        &ws.path().join("smtp-starttls"),
        &["--starttls", cert, key, "--auth", "desk:pw"],
    );
    let implicit = SmtpServer::start(&ws.path().join("smtp-tls"), &["--tls", cert, key]);
    let tls_sink = |id: &str, port: u16, mode: &str, extra: &str| {
        format!(
            "id = \"{id}\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{mode}\"\n\
             from = \"alerts@wirewatch.test\"\nto = [\"desk@wirewatch.test\"]\ntimeout = \"5s\"\n{extra}"
        )
    };
    let ca_line = format!("ca_file = \"{}\"\n", ca.display());
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&tls_sink(
            "starttls",
            starttls.port,
            "starttls",
            &format!("{ca_line}username = \"desk\"\npassword = \"pw\"\n"),
        ))
        .sink(&tls_sink("implicit", implicit.port, "tls", &ca_line))
        .sink(&tls_sink(
            "untrusted",
            starttls.port,
            "starttls",
            "retry_initial = \"1h\"\n",
        ));
    ws.write_config(&cfg);
    ws.once_ok();

    let a = starttls.messages();
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["encrypted"], true);
    assert_eq!(a[0]["authenticated"], true);
    let b = implicit.messages();
    assert_eq!(b.len(), 1, "{b:#?}");
    assert_eq!(b[0]["encrypted"], true);
    assert!(text(&b[0], "html").contains("<b>Kursk</b></mark>"));

    let listing = ws.cli("alerts", &["--sink", "untrusted"]);
    listing.expect_code(0);
    assert!(listing.stdout.contains("1 waiting"), "{}", listing.stdout);
    assert!(
        listing.stdout.to_lowercase().contains("certificate"),
        "an untrusted certificate is named: {}",
        listing.stdout
    );
    let test = ws.cli("alerts", &["test", "untrusted"]);
    test.expect_code(1);
    assert!(test.stderr.contains("would be retried"), "{}", test.stderr);
}

/// Every email config mistake is reported at its place.
#[test]
fn email_config_errors_name_the_place() {
    let base = "type = \"email\"\nhost = \"smtp.example.test\"\nfrom = \"alerts@example.test\"\nto = [\"desk@example.test\"]\n";
    let sinks = [
        format!("id = \"a\"\n{base}tls = \"ssl\"\n"),
        "id = \"b\"\ntype = \"email\"\nhost = \"smtp.example.test\"\nfrom = \"not an address\"\nto = [\"desk@example.test\"]\n".to_string(),
        "id = \"c\"\ntype = \"email\"\nhost = \"smtp.example.test\"\nfrom = \"alerts@example.test\"\nto = [\"desk@example.test\", \"@@\"]\n".to_string(),
        format!("id = \"d\"\n{base}tls = \"none\"\nusername = \"u\"\npassword = \"p\"\n"),
        format!("id = \"e\"\n{base}subject = \"{{headline}}\"\n"),
        format!("id = \"f\"\n{base}username = \"u\"\n"),
        format!("id = \"g\"\n{base}ca_file = \"missing-ca.pem\"\n"),
        "id = \"h\"\ntype = \"email\"\nhost = \"smtp://example.test:25\"\nfrom = \"alerts@example.test\"\nto = [\"desk@example.test\"]\n".to_string(),
        "id = \"i\"\ntype = \"email\"\nhost = \"smtp.example.test\"\nfrom = \"alerts@example.test\"\n".to_string(),
    ];
    let mut cfg = Config::new(KURSK_RULES);
    for s in &sinks {
        cfg = cfg.sink(s);
    }
    let ws = Workspace::new(&cfg);
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    let text = cfg.config_text();
    let place = |needle: &str| config_place(&text, needle);
    // The first `needle` after `anchor`.
    let place_after = |anchor: &str, needle: &str| -> String {
        let start = text.find(anchor).expect("anchor in config");
        config_place_at(
            &text,
            start + text[start..].find(needle).expect("needle after anchor"),
        )
    };
    let expect = [
        (place("\"ssl\""), "`tls` must be"),
        (place("\"not an address\""), "not an email address"),
        (place("\"@@\""), "not an email address"),
        (place("\"none\"\nusername"), "clear text"),
        (place("\"{headline}\""), "unknown placeholder"),
        (place_after("id = \"f\"", "\"u\""), "needs a password"),
        (place("\"missing-ca.pem\""), "cannot read `ca_file`"),
        (place("\"smtp://"), "host name or an IP address"),
    ];
    assert_placed(&out.stderr, &expect);
    assert!(
        out.stderr.contains("an email sink needs `to`"),
        "{}",
        out.stderr
    );
}
