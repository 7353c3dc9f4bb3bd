//! The polite scheduler: per-host concurrency and spacing, permanent
//! redirects that move a feed, and the feed's own schedule hints (RSS
//! `ttl`, `skipHours`/`skipDays`, `Cache-Control: max-age`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};

use crate::server::{Reply, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

fn kursk_feed(guid: &str) -> String {
    rss(
        "Polite",
        &[entry(
            guid,
            &format!("Kursk story {guid}"),
            "A story from the Kursk region.",
        )],
    )
}

/// Arrival times of the requests to `paths`, sorted.
fn arrivals(srv: &TestServer, paths: &[&str]) -> Vec<Instant> {
    let mut at: Vec<Instant> = srv
        .requests()
        .into_iter()
        .filter(|r| paths.contains(&r.path.as_str()))
        .map(|r| r.at)
        .collect();
    at.sort();
    at
}

/// One fetch at a time to a host that stalls: its feeds queue behind each
/// other (each waits for the previous one's deadline), while a feed on
/// another server is fetched at once.
#[test]
fn a_stalled_host_holds_back_only_its_own_feeds() {
    let slow = TestServer::start();
    let fine = TestServer::start();
    for p in ["/s1.xml", "/s2.xml", "/s3.xml"] {
        slow.route(p, Route::Stall);
    }
    fine.route("/good.xml", Route::ok(RSS, kursk_feed("g1")));
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .set("fetch_timeout", "\"1s\"")
            .set("max_fetches_per_host", "1")
            .feed("s1", &slow.url("/s1.xml"))
            .feed("s2", &slow.url("/s2.xml"))
            .feed("s3", &slow.url("/s3.xml"))
            .feed("good", &fine.url("/good.xml")),
    );
    let out = ws.cli_within(Duration::from_secs(30), "once", &[]);
    out.expect_code(0);
    let stalls = arrivals(&slow, &["/s1.xml", "/s2.xml", "/s3.xml"]);
    assert_eq!(stalls.len(), 3, "each stalled feed fetched once");
    for w in stalls.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(900),
            "with max_fetches_per_host = 1 the next fetch waits for the stalled one (1s deadline); gap {gap:?}"
        );
    }
    let good = arrivals(&fine, &["/good.xml"]);
    assert_eq!(good.len(), 1);
    assert!(
        good[0] < stalls[1],
        "the other server's feed must not wait behind the stalled host"
    );
    assert_eq!(titles(&ws.alerts()), vec!["Kursk story g1".to_string()]);
    for f in ["s1", "s2", "s3"] {
        assert_eq!(ws.status()[f]["consecutive_failures"], 1, "{f}");
    }
}

/// `min_host_spacing` spaces the starts of fetches to one host even when
/// slots are free.
#[test]
fn fetches_to_one_host_are_spaced() {
    let srv = TestServer::start();
    let mut cfg = Config::new(KURSK_RULES)
        .set("max_fetches_per_host", "4")
        .set("min_host_spacing", "\"400ms\"");
    let paths = ["/a.xml", "/b.xml", "/c.xml", "/d.xml"];
    for (i, p) in paths.iter().enumerate() {
        srv.route(p, Route::ok(RSS, kursk_feed(&format!("x{i}"))));
        cfg = cfg.feed(&format!("f{i}"), &srv.url(p));
    }
    let ws = Workspace::new(&cfg);
    ws.once_ok();
    let at = arrivals(&srv, &paths);
    assert_eq!(at.len(), 4);
    for w in at.windows(2) {
        let gap = w[1] - w[0];
        // Spacing is enforced at the client; allow for delivery jitter.
        assert!(
            gap >= Duration::from_millis(300),
            "fetch starts to one host must be ~400ms apart; gap {gap:?}"
        );
    }
    assert_eq!(ws.alerts().len(), 4);
}

/// A 301 moves the feed: later polls go to the new URL directly, the log
/// and `status` say so; a 302 does not move it; editing the config's URL
/// drops the recorded move.
#[test]
fn a_permanent_redirect_moves_the_feed() {
    let srv = TestServer::start();
    srv.route("/old.xml", Route::Fixed(Reply::redirect(301, "/new.xml")));
    srv.route("/new.xml", Route::conditional(RSS, kursk_feed("m1")));
    srv.route("/hop.xml", Route::Fixed(Reply::redirect(302, "/tmp.xml")));
    srv.route("/tmp.xml", Route::ok(RSS, kursk_feed("t1")));
    let cfg = Config::new(KURSK_RULES)
        .feed("moved", &srv.url("/old.xml"))
        .feed("temp", &srv.url("/hop.xml"));
    let ws = Workspace::new(&cfg);
    let first = ws.once_ok();
    let said = first.stderr_lines_with("moved permanently");
    assert!(
        said.iter()
            .any(|l| l.contains("moved") && l.contains("/new.xml")),
        "the log must say the feed moved and where:\n{}",
        first.stderr
    );
    let st = ws.status();
    assert_eq!(st["moved"]["moved"]["to"], srv.url("/new.xml"));
    assert_eq!(st["moved"]["moved"]["from"], srv.url("/old.xml"));
    assert!(st["temp"]["moved"].is_null(), "a 302 is not a move");
    let human = ws.cli("status", &[]);
    human.expect_code(0);
    assert!(
        human.stdout.contains("MOVED") && human.stdout.contains(&srv.url("/new.xml")),
        "status must flag the move:\n{}",
        human.stdout
    );

    ws.once_ok();
    assert_eq!(srv.hits("/old.xml"), 1, "the old URL is not asked again");
    assert_eq!(srv.hits("/new.xml"), 2);
    let second_new = srv.requests_to("/new.xml");
    assert!(
        second_new[1].header("if-none-match").is_some(),
        "the moved feed keeps its validators"
    );
    assert_eq!(
        srv.hits("/hop.xml"),
        2,
        "a temporary redirect is asked again"
    );
    assert_eq!(ws.alerts().len(), 2, "no duplicate alert after the move");

    // The person updates the config: the recorded move goes.
    ws.write_config(
        &Config::new(KURSK_RULES)
            .feed("moved", &srv.url("/new.xml"))
            .feed("temp", &srv.url("/hop.xml")),
    );
    ws.once_ok();
    assert!(ws.status()["moved"]["moved"].is_null());
    assert_eq!(srv.hits("/old.xml"), 1);
    assert_eq!(ws.alerts().len(), 2);
}

fn next_poll(ws: &Workspace, feed: &str) -> Option<DateTime<Utc>> {
    ws.status()[feed]["next_poll_at"]
        .as_str()
        .map(|t| t.parse().expect("next_poll_at is RFC 3339"))
}

/// RSS `ttl` and `Cache-Control: max-age` lengthen a feed's interval (so the
/// daemon polls it once where the interval alone would poll it every
/// second); `schedule_hints = false` ignores them.
#[test]
fn ttl_and_max_age_lengthen_the_interval() {
    let srv = TestServer::start();
    let with_ttl = kursk_feed("ttl1").replace("<channel>", "<channel><ttl>2</ttl>");
    assert!(with_ttl.contains("<ttl>2</ttl>"));
    srv.route("/ttl.xml", Route::ok(RSS, with_ttl.clone()));
    srv.route("/free.xml", Route::ok(RSS, with_ttl));
    srv.route(
        "/cache.xml",
        Route::Fixed(
            Reply::ok(RSS, kursk_feed("c1")).header("Cache-Control", "public, max-age=180"),
        ),
    );
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("ttl", &srv.url("/ttl.xml"))
            .feed("cache", &srv.url("/cache.xml"))
            .feed_with("free", &srv.url("/free.xml"), "schedule_hints = false"),
    );
    let started = Utc::now();
    let _d = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(20), || srv.hits("/free.xml") >= 4),
        "the feed without hints polls every second"
    );
    assert_eq!(
        srv.hits("/ttl.xml"),
        1,
        "ttl 2 (minutes) holds the next poll"
    );
    assert_eq!(srv.hits("/cache.xml"), 1, "max-age=180 holds the next poll");
    let ttl_next = next_poll(&ws, "ttl").expect("next poll of ttl");
    let wait = (ttl_next - started).num_seconds();
    assert!((100..=135).contains(&wait), "ttl 2m: next poll in {wait}s");
    let cache_next = next_poll(&ws, "cache").expect("next poll of cache");
    let wait = (cache_next - started).num_seconds();
    assert!(
        (160..=200).contains(&wait),
        "max-age 180: next poll in {wait}s"
    );
}

/// `skipHours` moves the next poll past the skipped hours (UTC).
#[test]
fn skip_hours_move_the_next_poll() {
    let srv = TestServer::start();
    let now = Utc::now();
    // Skip this hour and the next two: the next poll is at the top of the
    // hour after them (whatever the clock says when the poll happens, it is
    // in the hour of `now` or, at worst, the next one).
    let h = now.hour();
    let hours: String = (0..3)
        .map(|k| format!("<hour>{}</hour>", (h + k) % 24))
        .collect();
    let doc = kursk_feed("sk1").replace(
        "<channel>",
        &format!("<channel><skipHours>{hours}</skipHours>"),
    );
    srv.route("/skip.xml", Route::ok(RSS, doc));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("skip", &srv.url("/skip.xml")));
    let _d = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(15), || next_poll(&ws, "skip").is_some()),
        "the daemon records the next poll"
    );
    let next = next_poll(&ws, "skip").unwrap();
    assert_eq!(
        next.minute(),
        0,
        "the next poll is at the top of an hour: {next}"
    );
    let expected = (h + 3) % 24;
    assert!(
        next.hour() == expected || next.hour() == (expected + 1) % 24,
        "skip hours {h}..{}: next poll at {next}",
        h + 2
    );
    assert!(next > now + chrono::Duration::minutes(59));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(srv.hits("/skip.xml"), 1, "no poll during skipped hours");
}
