//! Fetching: conditional GET, size caps, timeouts, HTTP errors, redirects.

use std::time::Duration;

use crate::server::{gzip_bomb, Reply, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

fn good_feed(srv: &TestServer) {
    srv.route(
        "/good.xml",
        Route::ok(
            RSS,
            rss(
                "Good",
                &[entry(
                    "good1",
                    "Kursk good feed story",
                    "This one must always alert.",
                )],
            ),
        ),
    );
}

/// The alerts must be exactly the one from feed "good".
#[track_caller]
fn assert_only_good_alerted(ws: &Workspace) {
    assert_eq!(
        triples(&ws.alerts()),
        vec![(
            "kursk".to_string(),
            "good".to_string(),
            "Kursk good feed story".to_string()
        )]
    );
}

/// The feed failed once and its status says so.
#[track_caller]
fn assert_failed_once(ws: &Workspace, out: &Out, feed: &str) -> String {
    assert!(
        !out.stderr_lines_with(feed).is_empty(),
        "stderr should name failing feed {feed:?}:\n{}",
        out.stderr
    );
    let st = ws.status();
    let f = st
        .get(feed)
        .unwrap_or_else(|| panic!("no status for {feed}: {st:?}"));
    assert_eq!(f["consecutive_failures"], 1, "status of {feed}: {f}");
    let err = f["last_error"]
        .as_str()
        .unwrap_or_else(|| panic!("last_error of {feed} should be set: {f}"));
    assert!(!err.trim().is_empty(), "empty last_error for {feed}");
    assert_eq!(
        st["good"]["consecutive_failures"], 0,
        "good: {}",
        st["good"]
    );
    err.to_string()
}

/// Test 2: validators are sent back, a 304 gives no alerts and is not a failure.
#[test]
fn conditional_get_304_not_modified() {
    let srv = TestServer::start();
    let doc = rss(
        "Wire",
        &[entry(
            "c1",
            "Kursk conditional story",
            "Served with an ETag.",
        )],
    );
    srv.route("/wire.xml", Route::conditional(RSS, doc));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("wire", &srv.url("/wire.xml")));

    ws.once_ok();
    assert_eq!(ws.alerts().len(), 1);
    ws.once_ok();
    ws.once_ok();

    let reqs = srv.requests_to("/wire.xml");
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    assert_eq!(reqs[0].status, 200);
    assert!(
        reqs[0].header("if-none-match").is_none(),
        "first request cannot have a validator: {:?}",
        reqs[0]
    );
    for (i, r) in reqs.iter().enumerate().skip(1) {
        let etag = r.header("if-none-match") == Some("\"wirewatch-test-v1\"");
        let lm = r.header("if-modified-since") == Some(LAST_MODIFIED);
        assert!(
            etag || lm,
            "request {i} carries neither If-None-Match nor If-Modified-Since: {r:?}"
        );
        assert_eq!(r.status, 304, "request {i}");
    }
    assert_eq!(ws.alerts().len(), 1, "a 304 must not alert");

    let st = ws.status();
    let w = &st["wire"];
    let last = w["last_status"].as_i64();
    assert!(last == Some(304) || last == Some(200), "last_status: {w}");
    assert_eq!(w["consecutive_failures"], 0, "{w}");
    assert!(w["last_error"].is_null(), "{w}");
    assert_rfc3339(&w["last_ok_at"], "last_ok_at");
}

/// Test 3: a plain body over `max_feed_bytes` (with and without
/// Content-Length) and a gzip bomb each fail their feed with a size error;
/// the good feed still alerts; quickly.
#[test]
fn size_cap_and_gzip_bomb_fail_only_their_feed() {
    let srv = TestServer::start();
    good_feed(&srv);
    // ~360 KB of valid RSS, over the 256 KiB cap; alerts if the cap is ignored.
    let big = rss(
        "Big",
        &[entry(
            "big1",
            "Kursk oversize story",
            &"padding words ".repeat(26_000),
        )],
    );
    assert!(big.len() > 300 * 1024);
    srv.route("/big.xml", Route::ok(RSS, big.clone()));
    // The same without Content-Length: only counting the stream catches it.
    srv.route(
        "/nolen.xml",
        Route::Fixed(Reply::ok(RSS, big).close_delimited()),
    );
    // Valid RSS once inflated: 1 GiB of spaces inside a matching item.
    let head = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\
                <title>Bomb</title><item><title>Kursk bomb story</title>\
                <guid>urn:wirewatch-test:bomb1</guid><description>Kursk";
    let tail = "</description></item></channel></rss>\n";
    let bomb = gzip_bomb(head.as_bytes(), b' ', 1024, tail.as_bytes());
    assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
    srv.route("/bomb.xml", Route::Fixed(Reply::gzip(RSS, bomb)));

    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("oversize", &srv.url("/big.xml"))
            .feed("nolength", &srv.url("/nolen.xml"))
            .feed("gzbomb", &srv.url("/bomb.xml"))
            .feed("good", &srv.url("/good.xml")),
    );
    let cfg = ws.config_path();
    let child = command(ws.path(), &["once", "--config", &cfg])
        .env("WIREWATCH_LOG", "info")
        .spawn()
        .expect("spawn wirewatch");
    let out = wait_with_timeout(child, Duration::from_secs(30), "wirewatch once");
    out.expect_code(0);
    assert!(
        out.elapsed < Duration::from_secs(15),
        "took {:?}",
        out.elapsed
    );
    // The process's peak RSS (VmHWM, logged by `once`) stays under the cap
    // plus 64 MiB although the bomb inflates to 1 GiB.
    let peak_kib: u64 = out
        .stderr
        .split("peak_rss_kib=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak_rss_kib in the log:\n{}", out.stderr));
    assert!(
        peak_kib < 256 + 64 * 1024,
        "peak RSS {peak_kib} KiB with a 256 KiB cap"
    );
    assert_only_good_alerted(&ws);
    for feed in ["oversize", "nolength", "gzbomb"] {
        let err = assert_failed_once(&ws, &out, feed).to_lowercase();
        assert!(
            [
                "size",
                "large",
                "max_feed_bytes",
                "limit",
                "exceed",
                "bytes",
                "cap"
            ]
            .iter()
            .any(|w| err.contains(w)),
            "last_error of {feed} should mention the size: {err:?}"
        );
    }
}

/// Test 4a: a server that never answers is abandoned after `fetch_timeout`.
#[test]
fn stalled_server_times_out() {
    let srv = TestServer::start();
    good_feed(&srv);
    srv.route("/stall.xml", Route::Stall);
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .set("fetch_timeout", "\"2s\"")
            .set("connect_timeout", "\"1s\"")
            .feed("stalled", &srv.url("/stall.xml"))
            .feed("good", &srv.url("/good.xml")),
    );
    let out = ws.cli_within(Duration::from_secs(30), "once", &[]);
    out.expect_code(0);
    assert!(
        out.elapsed < Duration::from_secs(2 + 5),
        "once took {:?} with fetch_timeout 2s",
        out.elapsed
    );
    assert_eq!(srv.hits("/stall.xml"), 1, "the stalled feed was requested");
    assert_only_good_alerted(&ws);
    assert_failed_once(&ws, &out, "stalled");
}

/// Test 4b: headers at once, then 1 byte/s: the total deadline still applies.
#[test]
fn trickling_server_times_out() {
    let srv = TestServer::start();
    good_feed(&srv);
    let doc = rss(
        "Slow",
        &[entry("slow1", "Kursk slow story", "Arrives very slowly.")],
    );
    srv.route(
        "/slow.xml",
        Route::Trickle {
            reply: Reply::ok(RSS, doc),
            every: Duration::from_secs(1),
        },
    );
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .set("fetch_timeout", "\"2s\"")
            .set("connect_timeout", "\"1s\"")
            .feed("trickler", &srv.url("/slow.xml"))
            .feed("good", &srv.url("/good.xml")),
    );
    let out = ws.cli_within(Duration::from_secs(30), "once", &[]);
    out.expect_code(0);
    assert!(
        out.elapsed < Duration::from_secs(2 + 5),
        "once took {:?} with fetch_timeout 2s",
        out.elapsed
    );
    assert_only_good_alerted(&ws);
    assert_failed_once(&ws, &out, "trickler");
}

/// HTTP error statuses and a redirect loop fail their feed; a 301 to a good
/// feed is followed.
#[test]
fn http_errors_and_redirects() {
    let srv = TestServer::start();
    good_feed(&srv);
    srv.route("/nf.xml", Route::status(404));
    srv.route("/gone.xml", Route::status(410));
    srv.route(
        "/busy.xml",
        Route::Fixed(Reply::status(429).header("Retry-After", "120")),
    );
    srv.route("/err.xml", Route::status(500));
    srv.route("/loop-a", Route::Fixed(Reply::redirect(302, "/loop-b")));
    srv.route(
        "/loop-b",
        Route::Fixed(Reply::redirect(301, &srv.url("/loop-a"))),
    );
    srv.route(
        "/moved.xml",
        Route::Fixed(Reply::redirect(301, "/good.xml")),
    );
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("nf404", &srv.url("/nf.xml"))
            .feed("gone410", &srv.url("/gone.xml"))
            .feed("busy429", &srv.url("/busy.xml"))
            .feed("err500", &srv.url("/err.xml"))
            .feed("redirloop", &srv.url("/loop-a"))
            .feed("good", &srv.url("/moved.xml")),
    );
    let out = ws.cli_within(Duration::from_secs(30), "once", &[]);
    out.expect_code(0);
    assert_only_good_alerted(&ws);
    for (feed, code) in [
        ("nf404", Some(404)),
        ("gone410", Some(410)),
        ("busy429", Some(429)),
        ("err500", Some(500)),
        ("redirloop", None),
    ] {
        assert_failed_once(&ws, &out, feed);
        if let Some(code) = code {
            assert_eq!(
                ws.status()[feed]["last_status"],
                code,
                "last_status of {feed}"
            );
        }
    }
    let loops = srv.hits("/loop-a") + srv.hits("/loop-b");
    assert!(
        (2..=12).contains(&loops),
        "redirect loop followed {loops} times with max_redirects 5"
    );
    assert_eq!(ws.status()["good"]["last_status"], 200);
}
