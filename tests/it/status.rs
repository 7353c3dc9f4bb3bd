//! Test 14: `wirewatch status --json`.

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

const STATUS_KEYS: [&str; 6] = [
    "consecutive_failures",
    "feed",
    "last_attempt_at",
    "last_error",
    "last_ok_at",
    "last_status",
];

#[test]
fn status_lists_every_feed_before_any_poll() {
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("alpha", "http://127.0.0.1:9/a.xml")
            .feed("beta", "http://127.0.0.1:9/b.xml"),
    );
    let st = ws.status();
    assert_eq!(st.keys().collect::<Vec<_>>(), vec!["alpha", "beta"]);
    for (id, v) in &st {
        // The contract's keys must all be there; extra keys are extensions.
        let obj = v.as_object().unwrap();
        for k in STATUS_KEYS {
            assert!(obj.contains_key(k), "status of {id} lacks {k:?}: {v}");
        }
        assert_eq!(v["consecutive_failures"], 0, "{v}");
        for k in ["last_status", "last_error", "last_ok_at", "last_attempt_at"] {
            assert!(v[k].is_null(), "{k} before any poll: {v}");
        }
    }
}

#[test]
fn failures_count_up_and_reset_after_success() {
    let srv = TestServer::start();
    srv.route("/wire.xml", Route::status(500));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("failing", &srv.url("/wire.xml")));
    for run in 1..=2 {
        let out = ws.once_ok();
        assert!(
            !out.stderr_lines_with("failing").is_empty(),
            "run {run}: stderr must name the feed:\n{}",
            out.stderr
        );
    }
    let st = ws.status();
    let f = &st["failing"];
    assert_eq!(f["consecutive_failures"], 2, "{f}");
    assert_eq!(f["last_status"], 500, "{f}");
    assert!(
        f["last_error"]
            .as_str()
            .is_some_and(|e| !e.trim().is_empty()),
        "last_error must be set: {f}"
    );
    assert!(f["last_ok_at"].is_null(), "never succeeded: {f}");
    assert_rfc3339(&f["last_attempt_at"], "last_attempt_at");
    assert_eq!(ws.alerts().len(), 0);

    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss("Wire", &[entry("f1", "Kursk feed is back", "Recovered.")]),
        ),
    );
    ws.once_ok();
    let st = ws.status();
    let f = &st["failing"];
    assert_eq!(f["consecutive_failures"], 0, "{f}");
    assert_eq!(f["last_status"], 200, "{f}");
    let ok_at = assert_rfc3339(&f["last_ok_at"], "last_ok_at");
    let attempt_at = assert_rfc3339(&f["last_attempt_at"], "last_attempt_at");
    assert!(
        (attempt_at - ok_at).num_seconds().abs() <= 5,
        "last_ok_at {ok_at} vs last_attempt_at {attempt_at}"
    );
    assert_eq!(titles(&ws.alerts()), vec!["Kursk feed is back"]);
}

/// The human status shows items per document, the next poll of a running
/// daemon, and today's totals.
#[test]
fn status_shows_items_next_poll_and_today() {
    let srv = TestServer::start();
    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[
                    entry("t1", "Kursk rail resumes", "Trains run."),
                    entry("t2", "Weather mild", "No change."),
                ],
            ),
        ),
    );
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .set("poll_interval", "\"1h\"")
            .feed("wire", &srv.url("/wire.xml")),
    );
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(std::time::Duration::from_secs(15), || {
            ws.status()["wire"]["next_poll_at"].is_string()
        }),
        "{}",
        daemon.logs()
    );
    let st = ws.status();
    let next = assert_rfc3339(&st["wire"]["next_poll_at"], "next_poll_at");
    let ahead = next.signed_duration_since(chrono::Utc::now()).num_minutes();
    assert!((50..=70).contains(&ahead), "next poll in {ahead} min");
    assert_eq!(st["wire"]["last_items"], 2);
    let human = ws.cli("status", &[]);
    human.expect_code(0);
    assert!(
        human.stdout.contains("items 2  next 20"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("today: 1 item(s) alerted, 1 alert(s) queued; rules: 1 loaded"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("archive: 2 item(s) (keeps 7 day(s), at most 100000), first seen 20"),
        "{}",
        human.stdout
    );
    drop(daemon);
}

/// A feed answering 410 Gone is polled once, then left alone and reported;
/// a feed that keeps failing is flagged as broken; the others go on.
#[test]
fn gone_feeds_stop_and_broken_feeds_are_flagged() {
    let srv = TestServer::start();
    srv.route("/gone.xml", Route::status(410));
    srv.route("/broken.xml", Route::status(500));
    srv.route(
        "/ok.xml",
        Route::ok(
            RSS,
            rss("Ok", &[entry("o1", "Kursk road open", "Traffic flows.")]),
        ),
    );
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("gone", &srv.url("/gone.xml"))
            .feed("broken", &srv.url("/broken.xml"))
            .feed("ok", &srv.url("/ok.xml")),
    );
    for _ in 0..5 {
        ws.once_ok();
    }
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(std::time::Duration::from_secs(10), || srv.hits("/ok.xml")
            >= 8),
        "{}",
        daemon.logs()
    );
    assert_eq!(
        srv.hits("/gone.xml"),
        6,
        "five `once` runs and one daemon poll"
    );
    assert!(
        daemon.logs().contains("feed is gone (HTTP 410)"),
        "{}",
        daemon.logs()
    );
    let human = ws.cli("status", &[]);
    assert!(
        human.stdout.contains("GONE: answered 410 Gone"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("BROKEN: "), "{}", human.stdout);
    let st = ws.status();
    assert_rfc3339(&st["gone"]["gone_at"], "gone_at");
    assert!(st["ok"]["gone_at"].is_null());
    assert!(st["broken"]["consecutive_failures"].as_u64().unwrap_or(0) >= 5);
    assert_eq!(ws.alerts().len(), 1, "the healthy feed alerts");
    drop(daemon);
}
