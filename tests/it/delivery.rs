//! Durability of delivery and fetch bounds: an alert whose sink fails stays
//! queued and arrives exactly once later; fetches respect
//! `max_concurrent_fetches`; broken state is a clear error.

use std::time::Duration;

use crate::server::{Reply, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

/// The jsonl sink cannot write (its path is a directory): `once` keeps the
/// alert queued and says so; once the path is writable and the retry is
/// due, the alert arrives exactly once, and never again.
#[test]
fn failed_delivery_is_kept_and_delivered_once_later() {
    let srv = TestServer::start();
    let items = [entry(
        "d1",
        "Kursk border road reopens",
        "Traffic resumed on Monday.",
    )];
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &items)));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("wire", &srv.url("/wire.xml")));
    std::fs::create_dir_all(ws.alerts_path()).expect("block the sink path");

    let out = ws.once();
    out.expect_code(0);
    assert!(
        !out.stderr_lines_with("could not be delivered").is_empty(),
        "once should report the queued alert:\n{}",
        out.stderr
    );
    std::fs::remove_dir(ws.alerts_path()).expect("unblock the sink path");
    // The item is seen now, so only the outbox can still produce the alert;
    // its first retry is due 4-6 s after the failure.
    std::thread::sleep(Duration::from_millis(6500));
    ws.once_ok();
    let alerts = ws.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(s(&alerts[0], &["item", "key"]), "urn:wirewatch-test:d1");
    ws.once_ok();
    assert_eq!(ws.alerts().len(), 1, "delivered exactly once");
}

/// With `max_concurrent_fetches = 1`, three slow feeds are fetched one after
/// another; every one still alerts. Requests carry a descriptive User-Agent.
#[test]
fn fetches_respect_the_concurrency_bound() {
    let srv = TestServer::start();
    let mut shortest = usize::MAX;
    let mut cfg = Config::new(KURSK_RULES)
        .set("max_concurrent_fetches", "1")
        .set("fetch_timeout", "\"10s\"");
    for i in 0..3 {
        let body = rss(
            "Slow wire",
            &[entry(
                &format!("slow{i}"),
                &format!("Kursk update {i}"),
                "Brief text.",
            )],
        );
        // ~500 bytes at 2 ms a byte: each fetch takes about a second.
        shortest = shortest.min(body.len());
        srv.route(
            &format!("/slow{i}.xml"),
            Route::Trickle {
                reply: Reply::ok(RSS, body),
                every: Duration::from_millis(2),
            },
        );
        cfg = cfg.feed(&format!("slow{i}"), &srv.url(&format!("/slow{i}.xml")));
    }
    let ws = Workspace::new(&cfg);
    let out = ws.cli_within(Duration::from_secs(60), "once", &[]);
    out.expect_code(0);
    assert_eq!(ws.alerts().len(), 3, "{}", out.stderr);
    // Serial: about three fetch times; overlapping: about one.
    let one_fetch = Duration::from_millis(2 * shortest as u64);
    assert!(
        out.elapsed >= one_fetch * 2,
        "three slow fetches ran in {:?}: they overlapped despite max_concurrent_fetches = 1",
        out.elapsed
    );
    for r in srv.requests() {
        let ua = r.header("user-agent").unwrap_or("");
        assert!(ua.starts_with("wirewatch/"), "User-Agent {ua:?}");
    }
}

/// A state file that is not a database, or is from a newer wirewatch, stops
/// the run with a message naming the file; nothing is overwritten.
#[test]
fn unusable_state_is_a_clear_error() {
    let srv = TestServer::start();
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &[])));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("wire", &srv.url("/wire.xml")));
    let db = ws.state_dir().join("wirewatch.db");
    std::fs::create_dir_all(ws.state_dir()).expect("state dir");

    std::fs::write(&db, vec![b'#'; 8192]).expect("garbage state");
    let out = ws.once();
    out.expect_code(1);
    assert!(
        out.stderr.contains("wirewatch.db") && out.stderr.contains("not a wirewatch database"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&db).expect("state kept"), vec![b'#'; 8192]);

    std::fs::remove_file(&db).expect("remove garbage");
    let conn = rusqlite::Connection::open(&db).expect("sqlite");
    conn.pragma_update(None, "user_version", 99)
        .expect("version");
    drop(conn);
    let out = ws.once();
    out.expect_code(1);
    assert!(
        out.stderr.contains("schema version 99") && out.stderr.contains("newer"),
        "{}",
        out.stderr
    );
}

/// A sink's `snippet_max_chars` overrides the daemon's: the same alert goes
/// to a short sink with a short snippet (still holding the hit) and to the
/// default sink in full.
#[test]
fn per_sink_snippet_length() {
    let srv = TestServer::start();
    let long = "Officials in the border district said on Tuesday that convoys of \
                trucks carrying building materials had been moving through the \
                region for a week before the Kursk authorities confirmed the \
                reconstruction plan for damaged villages.";
    srv.route(
        "/wire.xml",
        Route::ok(RSS, rss("Wire", &[entry("p1", "Rebuilding plan", long)])),
    );
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("wire", &srv.url("/wire.xml"))
            .sink(
                "id = \"short\"\ntype = \"jsonl\"\npath = \"short.jsonl\"\nsnippet_max_chars = 60",
            ),
    );
    ws.once_ok();
    let full = ws.alerts();
    let short = read_alerts(&ws.path().join("short.jsonl"));
    assert_eq!((full.len(), short.len()), (1, 1));
    assert_eq!(
        s(&full[0], &["id"]),
        s(&short[0], &["id"]),
        "one alert, two renderings"
    );
    let full_text = s(&full[0], &["snippet", "text"]);
    let short_text = s(&short[0], &["snippet", "text"]);
    assert_eq!(full_text, long);
    assert!(short_text.chars().count() <= 60, "{short_text:?}");
    assert!(short_text.contains("Kursk"), "{short_text:?}");
    assert!(short_text.contains('…'), "{short_text:?}");
    assert_highlights(&short[0]);
}
