//! Test 8: backfill on a feed's first successful poll.

use crate::server::{Reply, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

const RECENT: &str = "Kursk recent: bridge inspection completed";
const OLD: &str = "Kursk old: museum reopens after renovation";
const UNDATED: &str = "Kursk undated: archive note on city history";

fn setup(feed_extra: &str) -> (TestServer, Workspace) {
    let srv = TestServer::start();
    srv.route("/bf.xml", Route::ok(RSS, fixture("backfill.xml")));
    let ws =
        Workspace::new(&Config::new(KURSK_RULES).feed_with("bf", &srv.url("/bf.xml"), feed_extra));
    (srv, ws)
}

/// Adds `extra` items to the fixture document being served.
fn add_items(srv: &TestServer, extra: &[Entry]) {
    srv.route(
        "/bf.xml",
        Route::ok(RSS, with_items(&fixture("backfill.xml"), extra)),
    );
}

/// Default 24h: only the recent item alerts; old and undated are marked
/// seen. A new undated item on a later poll alerts; nothing repeats.
#[test]
fn backfill_default_alerts_recent_only_then_new_undated() {
    let (srv, ws) = setup("");
    ws.once_ok();
    assert_eq!(titles(&ws.alerts()), vec![RECENT]);

    let later = "Kursk later: undated bulletin from the city hall";
    add_items(
        &srv,
        &[entry("bf-later", later, "Posted without a date.").undated()],
    );
    ws.once_ok();
    assert_eq!(titles(&ws.alerts()), vec![later, RECENT], "sorted titles");
    ws.once_ok();
    assert_eq!(ws.alerts().len(), 2, "no repeats");
}

/// `backfill = "all"`: everything alerts on the first poll.
#[test]
fn backfill_all_alerts_everything() {
    let (_srv, ws) = setup("backfill = \"all\"");
    ws.once_ok();
    assert_eq!(titles(&ws.alerts()), vec![OLD, RECENT, UNDATED]);
}

/// `backfill = "0s"`: nothing on the first poll, but later items do alert.
#[test]
fn backfill_zero_alerts_nothing_first_then_new_items() {
    let (srv, ws) = setup("backfill = \"0s\"");
    ws.once_ok();
    assert_eq!(ws.alerts().len(), 0, "{:#?}", ws.alerts());
    let fresh = "Kursk fresh: new item after the first poll";
    add_items(&srv, &[entry("bf-fresh", fresh, "Just in.").age(60)]);
    ws.once_ok();
    assert_eq!(titles(&ws.alerts()), vec![fresh]);
}

/// A custom window: 6h takes the 2h-old item, not a 12h-old one.
#[test]
fn backfill_custom_window() {
    let srv = TestServer::start();
    let doc = rss(
        "Window",
        &[
            entry("w2h", "Kursk two hours ago", "Inside the window.").age(2 * 3600),
            entry("w12h", "Kursk twelve hours ago", "Outside the window.").age(12 * 3600),
        ],
    );
    srv.route("/w.xml", Route::ok(RSS, doc));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed_with(
        "win",
        &srv.url("/w.xml"),
        "backfill = \"6h\"",
    ));
    ws.once_ok();
    assert_eq!(titles(&ws.alerts()), vec!["Kursk two hours ago"]);
}

/// A failed first attempt does not use up the backfill: the first
/// *successful* poll still applies it (old/undated marked seen, not alerted).
#[test]
fn backfill_counts_from_first_successful_poll() {
    let srv = TestServer::start();
    srv.route(
        "/bf.xml",
        Route::Sequence(vec![
            Reply::status(500),
            Reply::ok(RSS, fixture("backfill.xml")),
        ]),
    );
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("flaky", &srv.url("/bf.xml")));
    let out = ws.once_ok();
    assert!(
        !out.stderr_lines_with("flaky").is_empty(),
        "a 500 must be reported:\n{}",
        out.stderr
    );
    assert_eq!(ws.alerts().len(), 0);
    ws.once_ok();
    assert_eq!(titles(&ws.alerts()), vec![RECENT]);
}
