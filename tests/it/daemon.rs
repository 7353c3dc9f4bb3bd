//! Test 13: `wirewatch run` polls, alerts, and stops cleanly on signals.

use std::time::Duration;

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

fn daemon_setup() -> (TestServer, Workspace, Vec<Entry>) {
    let srv = TestServer::start();
    let items = vec![entry(
        "d1",
        "Kursk daemon first story",
        "Seen by the running daemon.",
    )];
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &items)));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed_with(
        "wire",
        &srv.url("/wire.xml"),
        "interval = \"1s\"",
    ));
    (srv, ws, items)
}

#[test]
fn run_alerts_new_items_and_stops_on_sigterm() {
    let (srv, ws, mut items) = daemon_setup();
    let mut d = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || ws.alerts().len() == 1),
        "no first alert within 10 s: {:#?}\n{}",
        ws.alerts(),
        d.logs()
    );
    items.push(entry(
        "d2",
        "Kursk daemon second story",
        "Added while the daemon runs.",
    ));
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &items)));
    assert!(
        wait_until(Duration::from_secs(10), || ws.alerts().len() >= 2),
        "no second alert within 10 s:\n{}",
        d.logs()
    );
    // A few more polls must not duplicate anything.
    let hits = srv.hits("/wire.xml");
    assert!(
        wait_until(Duration::from_secs(8), || srv.hits("/wire.xml") >= hits + 2),
        "daemon stopped polling (interval 1s):\n{}",
        d.logs()
    );
    assert_eq!(
        titles(&ws.alerts()),
        vec!["Kursk daemon first story", "Kursk daemon second story"]
    );
    assert!(d.running(), "daemon died:\n{}", d.logs());

    d.signal("TERM");
    let st = d.wait_exit(Duration::from_secs(5));
    let st = st.unwrap_or_else(|| panic!("no exit within 5 s of SIGTERM:\n{}", d.logs()));
    assert_eq!(st.code(), Some(0), "exit after SIGTERM:\n{}", d.logs());

    ws.once_ok();
    assert_eq!(ws.alerts().len(), 2, "once after run duplicated alerts");
}

#[test]
fn run_stops_on_sigint() {
    let (_srv, ws, _) = daemon_setup();
    let mut d = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || ws.alerts().len() == 1),
        "no alert within 10 s:\n{}",
        d.logs()
    );
    d.signal("INT");
    let st = d.wait_exit(Duration::from_secs(5));
    let st = st.unwrap_or_else(|| panic!("no exit within 5 s of SIGINT:\n{}", d.logs()));
    assert_eq!(st.code(), Some(0), "exit after SIGINT:\n{}", d.logs());
}
