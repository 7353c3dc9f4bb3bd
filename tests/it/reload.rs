//! SIGHUP reloads the configuration: a valid edit takes effect (new rule,
//! new feed, removed feed), an invalid one is refused with FILE:LINE:COL
//! while the running configuration goes on, and no alert is lost or sent
//! twice across reloads.

use std::time::Duration;

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

#[test]
fn sighup_applies_valid_edits_and_refuses_broken_ones() {
    let srv = TestServer::start();
    srv.route(
        "/a.xml",
        Route::ok(
            RSS,
            rss("A", &[entry("a1", "Kursk rail resumes", "Trains run.")]),
        ),
    );
    srv.route(
        "/b.xml",
        Route::ok(
            RSS,
            rss(
                "B",
                &[entry("b1", "Weather turns cold", "Frost in the north.")],
            ),
        ),
    );
    let cfg = Config::new(KURSK_RULES).feed("a", &srv.url("/a.xml"));
    let ws = Workspace::new(&cfg);
    let mut daemon = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(15), || ws.alerts().len() == 1),
        "{}",
        daemon.logs()
    );

    // A broken edit: refused, placed, the daemon goes on with the old rules.
    ws.write(
        "rules.toml",
        format!("{KURSK_RULES}\n[[rule]]\nid = \"weather\"\nquery = '(weather'\n"),
    );
    daemon.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || daemon
            .logs()
            .contains("reload refused")),
        "{}",
        daemon.logs()
    );
    let logs = daemon.logs();
    assert!(
        logs.contains("rules.toml:") && logs.contains("configuration error"),
        "the problem is logged with its place:\n{logs}"
    );
    assert!(
        daemon.running(),
        "a refused reload must not stop the daemon"
    );
    let polls = srv.hits("/a.xml");
    assert!(
        wait_until(Duration::from_secs(5), || srv.hits("/a.xml") > polls),
        "polling goes on after a refused reload"
    );

    // A valid edit: a new rule and a new feed, and feed a removed.
    ws.write(
        "rules.toml",
        format!("{KURSK_RULES}\n[[rule]]\nid = \"weather\"\nquery = 'weather'\n"),
    );
    let cfg2 = Config::new(KURSK_RULES).feed("b", &srv.url("/b.xml"));
    ws.write("config.toml", cfg2.config_text());
    daemon.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(15), || ws.alerts().len() == 2),
        "the new rule and feed are not in effect:\n{}",
        daemon.logs()
    );
    assert!(
        daemon.logs().contains("configuration reloaded"),
        "{}",
        daemon.logs()
    );
    let a_after = srv.hits("/a.xml");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        srv.hits("/a.xml"),
        a_after,
        "a removed feed is no longer polled"
    );
    assert!(
        srv.hits("/b.xml") >= 2,
        "the new feed is polled on schedule"
    );

    // Reloads neither lose nor repeat alerts.
    for _ in 0..3 {
        daemon.signal("HUP");
        std::thread::sleep(Duration::from_millis(400));
    }
    std::thread::sleep(Duration::from_secs(2));
    let alerts = ws.alerts();
    let titles: Vec<String> = titles(&alerts);
    assert_eq!(
        titles,
        vec![
            "Kursk rail resumes".to_string(),
            "Weather turns cold".to_string()
        ],
        "{alerts:#?}"
    );
    assert!(daemon.running(), "{}", daemon.logs());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(15)).is_some());
}

/// Saving the rules file is enough: the daemon notices the edit (also when
/// the editor saves by renaming a new file over the old one) and reloads.
#[test]
fn editing_the_rules_file_reloads_without_a_signal() {
    let srv = TestServer::start();
    srv.route(
        "/b.xml",
        Route::ok(
            RSS,
            rss(
                "B",
                &[entry("b1", "Weather turns cold", "Frost in the north.")],
            ),
        ),
    );
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("b", &srv.url("/b.xml")));
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || srv.hits("/b.xml") >= 1),
        "{}",
        daemon.logs()
    );
    assert!(ws.alerts().is_empty());
    // Saved by rename, as many editors do.
    ws.write(
        ".rules.toml.tmp",
        format!("{KURSK_RULES}\n[[rule]]\nid = \"weather\"\nquery = 'weather'\n"),
    );
    std::fs::rename(
        ws.path().join(".rules.toml.tmp"),
        ws.path().join("rules.toml"),
    )
    .expect("rename");
    assert!(
        wait_until(Duration::from_secs(10), || daemon
            .logs()
            .contains("configuration reloaded")),
        "the edit was not picked up:\n{}",
        daemon.logs()
    );
    // New rules apply to new items (b1 was seen before the edit).
    srv.route(
        "/b.xml",
        Route::ok(
            RSS,
            rss(
                "B",
                &[
                    entry("b2", "Weather warning for the coast", "Storms expected."),
                    entry("b1", "Weather turns cold", "Frost in the north."),
                ],
            ),
        ),
    );
    assert!(
        wait_until(Duration::from_secs(10), || ws.alerts().len() == 1),
        "{}",
        daemon.logs()
    );
    assert_eq!(titles(&ws.alerts()), vec!["Weather warning for the coast"]);
    let logs = daemon.logs();
    assert!(logs.contains("rules.toml changed"), "{logs}");
    assert_eq!(
        logs.matches("configuration reloaded").count(),
        1,
        "one save, one reload:\n{logs}"
    );
}
