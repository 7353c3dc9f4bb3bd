//! Flow control: per-rule throttle with a digest when the window closes,
//! per-sink digest periods, quiet hours with severities allowed through.

use std::time::Duration;

use chrono::Timelike;
use serde_json::Value;

use crate::server::{Route, TestServer};
use crate::util::*;

fn lines(ws: &Workspace) -> Vec<Value> {
    ws.alerts()
}

fn digests(all: &[Value]) -> Vec<&Value> {
    all.iter().filter(|v| v["type"] == "digest").collect()
}

fn plain(all: &[Value]) -> Vec<&Value> {
    all.iter().filter(|v| v["type"].is_null()).collect()
}

fn kursk(i: usize) -> Entry {
    entry(
        &format!("k{i}"),
        &format!("Kursk update {i}"),
        &format!("Officials in Kursk issued statement {i}."),
    )
}

/// The first alert of a throttled rule goes out at once; the ones in its
/// window are held and go out as one digest when the window closes.
#[test]
fn throttle_sends_one_alert_then_a_digest() {
    let srv = TestServer::start();
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &[kursk(0)])));
    let rules = "[[rule]]\nid = \"kursk\"\nquery = 'Kursk'\nthrottle = \"4s\"\n\n[[rule]]\nid = \"other\"\nquery = 'weather'\n";
    let ws = Workspace::new(&Config::new(rules).feed("wire", &srv.url("/wire.xml")));
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || lines(&ws).len() == 1),
        "{}",
        daemon.logs()
    );
    // Two more Kursk stories and one for the other rule, inside the window.
    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[
                    kursk(0),
                    kursk(1),
                    kursk(2),
                    entry("w1", "Weather turns cold", "Frost expected."),
                ],
            ),
        ),
    );
    assert!(
        wait_until(Duration::from_secs(5), || plain(&lines(&ws)).len() == 2),
        "an unthrottled rule is not held\n{}",
        daemon.logs()
    );
    let now = lines(&ws);
    assert!(
        digests(&now).is_empty(),
        "digest before the window closed: {now:#?}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || digests(&lines(&ws)).len() == 1),
        "no digest when the window closed\n{}",
        daemon.logs()
    );
    let all = lines(&ws);
    let d = digests(&all)[0];
    assert_eq!(d["reason"], "throttle");
    assert_eq!(d["rule"], "kursk");
    assert_eq!(d["count"], 2);
    let titles: Vec<&str> = d["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| s(a, &["item", "title"]))
        .collect();
    assert_eq!(titles, vec!["Kursk update 1", "Kursk update 2"]);
    assert!(s(d, &["id"]).starts_with("digest-"));
    assert_eq!(plain(&all).len(), 2, "{all:#?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lines(&ws).len(), 3, "the digest is sent once");
    drop(daemon);
}

/// `digest = "2s"` on a sink: everything goes out as one message per
/// period, signed like any webhook delivery; the terminal-style sinks get a
/// headline and one line per alert.
#[test]
fn digest_period_batches_everything() {
    let srv = TestServer::start();
    srv.route(
        "/wire.xml",
        Route::ok(RSS, rss("Wire", &[kursk(0), kursk(1), kursk(2)])),
    );
    let rx = TestServer::start();
    rx.route("/hook", Route::status(200));
    let rules = "[[rule]]\nid = \"kursk\"\nquery = 'Kursk'\n";
    let cfg = Config::new(rules)
        .feed("wire", &srv.url("/wire.xml"))
        .sink(&format!(
            "id = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\ndigest = \"2s\"\nsecret = \"whsec_q4ZbT1u9mX0cVh3kLr8sYw2dPf6gNj5e\"",
            rx.url("/hook")
        ))
        .sink("id = \"term\"\ntype = \"stdout\"\ndigest = \"2s\"");
    let ws = Workspace::new(&cfg);
    let first = ws.once_ok();
    assert!(
        first.stderr.contains("6 alert(s) held for a digest")
            && !first.stderr.contains("could not be delivered"),
        "{}",
        first.stderr
    );
    assert_eq!(lines(&ws).len(), 3, "the jsonl sink has no digest");
    assert_eq!(rx.hits("/hook"), 0, "held for the digest");
    let listing = ws.cli("alerts", &["--sink", "hook"]);
    assert!(
        listing.stdout.contains("3 waiting (3 held)"),
        "{}",
        listing.stdout
    );
    assert!(
        listing.stdout.contains("held for digest"),
        "{}",
        listing.stdout
    );
    std::thread::sleep(Duration::from_millis(2300));
    let out = ws.once_ok();
    let reqs = rx.requests_to("/hook");
    assert_eq!(reqs.len(), 1, "one message for the period");
    let body: Value = serde_json::from_slice(&reqs[0].body).expect("json");
    assert_eq!(body["type"], "digest");
    assert_eq!(body["reason"], "digest");
    assert_eq!(body["count"], 3);
    assert_eq!(reqs[0].header("webhook-id"), body["id"].as_str());
    assert!(
        out.stdout.contains("Digest: 3 alerts since"),
        "{}",
        out.stdout
    );
    for i in 0..3 {
        assert!(
            out.stdout.contains(&format!("Kursk update {i}")),
            "{}",
            out.stdout
        );
    }
    ws.once_ok();
    assert_eq!(rx.hits("/hook"), 1, "sent once");
}

/// Quiet hours (local time) hold alerts below `quiet_hours_allow`; the
/// ones at or above it go out at once.
#[test]
fn quiet_hours_hold_all_but_allowed_severities() {
    let srv = TestServer::start();
    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[
                    kursk(0),
                    entry(
                        "e1",
                        "Explosion reported near depot",
                        "Emergency crews went.",
                    ),
                ],
            ),
        ),
    );
    let now = chrono::Local::now();
    let start = now - chrono::Duration::minutes(2);
    let end = now + chrono::Duration::minutes(40);
    let quiet = format!(
        "{:02}:{:02}-{:02}:{:02}",
        start.hour(),
        start.minute(),
        end.hour(),
        end.minute()
    );
    let rules = "[[rule]]\nid = \"kursk\"\nquery = 'Kursk'\n\n[[rule]]\nid = \"blast\"\nquery = 'explosion'\nseverity = \"high\"\n";
    let cfg = Config::new(rules)
        .feed("wire", &srv.url("/wire.xml"))
        .sink(&format!(
            "id = \"night\"\ntype = \"jsonl\"\npath = \"night.jsonl\"\nquiet_hours = \"{quiet}\"\nquiet_hours_allow = \"high\""
        ));
    let ws = Workspace::new(&cfg);
    ws.once_ok();
    let night = read_alerts(&ws.path().join("night.jsonl"));
    assert_eq!(night.len(), 1, "{night:#?}");
    assert_eq!(s(&night[0], &["rule", "id"]), "blast");
    let listing = ws.cli("alerts", &["--sink", "night"]);
    assert!(
        listing.stdout.contains("held for quiet hours"),
        "{}",
        listing.stdout
    );
    assert!(
        listing.stdout.contains("Kursk update 0"),
        "{}",
        listing.stdout
    );

    let bad = Workspace::new(&Config::new(rules).feed("wire", &srv.url("/wire.xml")).sink(
        "id = \"x\"\ntype = \"stdout\"\nquiet_hours = \"22:00\"\nquiet_hours_allow = \"urgent\"\ndigest = \"0s\"",
    ));
    let out = bad.cli("check", &[]);
    out.expect_code(2);
    for want in [
        "`quiet_hours`: expected a range like",
        "`quiet_hours_allow`: unknown severity \"urgent\"",
        "`digest` must be at least 1s",
    ] {
        assert!(out.stderr.contains(want), "{want}:\n{}", out.stderr);
    }
}

/// A bucket holding more alerts than one digest message carries
/// (`DIGEST_MAX_ALERTS`, 100) goes out as several messages in one pass,
/// every alert in exactly one of them.
#[test]
fn a_large_digest_goes_out_in_bounded_messages() {
    let srv = TestServer::start();
    let items: Vec<Entry> = (0..150).map(kursk).collect();
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &items)));
    let rx = TestServer::start();
    rx.route("/hook", Route::status(200));
    let rules = "[[rule]]\nid = \"kursk\"\nquery = 'Kursk'\n";
    let cfg = Config::new(rules)
        .feed("wire", &srv.url("/wire.xml"))
        .sink(&format!(
            "id = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\ndigest = \"1s\"",
            rx.url("/hook")
        ));
    let ws = Workspace::new(&cfg);
    let first = ws.once_ok();
    assert!(
        first.stderr.contains("150 alert(s) held for a digest"),
        "{}",
        first.stderr
    );
    std::thread::sleep(Duration::from_millis(1300));
    ws.once_ok();
    let bodies: Vec<Value> = rx
        .requests_to("/hook")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    let counts: Vec<u64> = bodies
        .iter()
        .map(|b| b["count"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(counts, vec![100, 50], "two messages, in queue order");
    let mut ids: Vec<String> = bodies
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| a["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 150);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 150, "every alert in exactly one message");
    assert_ne!(bodies[0]["id"], bodies[1]["id"], "each message its own id");
    let listing = ws.cli("alerts", &["--sink", "hook"]);
    assert!(listing.stdout.contains("0 waiting"), "{}", listing.stdout);
}
