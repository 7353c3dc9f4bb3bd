//! Alert delivery, de-duplication across runs, feed and sink scoping.

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

/// Test 1: one alert for a new matching item; nothing on re-poll; exactly one
/// more for a newly added item; nothing after a restart on the same state.
#[test]
fn new_item_alerts_once_and_state_survives_restart() {
    let srv = TestServer::start();
    let base = vec![
        entry(
            "a1",
            "Kursk governor visits border villages",
            "The governor met residents on Monday.",
        ),
        entry(
            "a2",
            "Kursk hockey club signs new coach",
            "The club confirmed the deal.",
        ),
        entry("a3", "Weather stays mild", "No change expected this week."),
    ];
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &base)));
    let url = srv.url("/wire.xml");
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("wire", &url));

    ws.once_ok();
    let a = ws.alerts();
    assert_eq!(a.len(), 1, "first poll: {a:#?}");
    let al = &a[0];
    assert_eq!(s(al, &["rule", "id"]), "kursk");
    assert_eq!(s(al, &["rule", "severity"]), "high");
    assert_eq!(s(al, &["feed", "id"]), "wire");
    assert_eq!(s(al, &["feed", "url"]), url);
    assert!(al["feed"]["title"].is_string(), "feed.title: {al}");
    assert_eq!(s(al, &["item", "key"]), "urn:wirewatch-test:a1");
    assert_eq!(
        s(al, &["item", "title"]),
        "Kursk governor visits border villages"
    );
    assert_eq!(
        s(al, &["item", "link"]),
        "https://wire.example.test/story/a1"
    );
    assert_rfc3339(&al["item"]["published"], "item.published");
    assert!(al["item"]["authors"].is_array(), "item.authors: {al}");
    assert_eq!(al["matched"], serde_json::json!(["Kursk"]));
    assert!(s(al, &["snippet", "text"]).contains("Kursk"), "{al}");
    assert_highlights(al);
    assert_rfc3339(&al["detected_at"], "detected_at");
    let first_id = s(al, &["id"]).to_string();
    assert!(!first_id.is_empty(), "alert id: {al}");

    ws.once_ok();
    assert_eq!(ws.alerts().len(), 1, "second poll must not re-alert");

    let mut more = base.clone();
    more.insert(
        0,
        entry(
            "a4",
            "Talks on North Korea sanctions resume",
            "Envoys met in Geneva.",
        ),
    );
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &more)));
    ws.once_ok();
    let a = ws.alerts();
    assert_eq!(a.len(), 2, "after adding one item: {a:#?}");
    assert_eq!(s(&a[0], &["id"]), first_id, "earlier alert line changed");
    assert_eq!(s(&a[1], &["item", "key"]), "urn:wirewatch-test:a4");
    assert_eq!(a[1]["matched"], serde_json::json!(["North Korea"]));
    assert_ne!(s(&a[1], &["id"]), first_id, "alert ids must differ");

    // A restart: yet another process on the same state dir.
    ws.once_ok();
    assert_eq!(ws.alerts().len(), 2, "restart must not re-alert");
    assert_eq!(srv.hits("/wire.xml"), 4, "one fetch per `once`");
}

/// Test 12: `feeds` globs limit where a rule fires.
#[test]
fn feed_globs_scope_rules() {
    let srv = TestServer::start();
    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[entry("w1", "Kursk wire story", "Reported on the wire.")],
            ),
        ),
    );
    srv.route(
        "/other.xml",
        Route::ok(
            RSS,
            rss(
                "Other",
                &[entry(
                    "o1",
                    "Kursk other desk story",
                    "From the other desk.",
                )],
            ),
        ),
    );
    let rules = r#"
[[rule]]
id = "r_other"
any = ["Kursk"]
feeds = ["other*"]

[[rule]]
id = "r_wire"
any = ["Kursk"]
feeds = ["wi*"]

[[rule]]
id = "r_all"
any = ["Kursk"]
"#;
    let ws = Workspace::new(
        &Config::new(rules)
            .feed("wire", &srv.url("/wire.xml"))
            .feed("otherdesk", &srv.url("/other.xml")),
    );
    ws.once_ok();
    // One alert per item, naming every rule it matched (config order among
    // equal severities).
    let mut got: Vec<(String, Vec<String>)> = ws
        .alerts()
        .iter()
        .map(|a| (s(a, &["feed", "id"]).to_string(), rule_ids(a)))
        .collect();
    got.sort();
    let want = vec![
        (
            "otherdesk".to_string(),
            vec!["r_other".to_string(), "r_all".to_string()],
        ),
        (
            "wire".to_string(),
            vec!["r_wire".to_string(), "r_all".to_string()],
        ),
    ];
    assert_eq!(got, want, "(feed, rules) per alert");
}

/// The ids of `alert.rules`, checking that `alert.rule` is the first.
fn rule_ids(a: &serde_json::Value) -> Vec<String> {
    let ids: Vec<String> = a["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("alert without `rules`: {a}"))
        .iter()
        .map(|r| s(r, &["id"]).to_string())
        .collect();
    assert_eq!(
        ids.first().map(String::as_str),
        Some(s(a, &["rule", "id"])),
        "{a}"
    );
    ids
}

/// A rule's `sinks` list limits where its alerts go; no list = every sink.
/// An item matching several rules gives each sink one alert naming the
/// rules that send there, most severe first, with every rule's hits.
#[test]
fn rule_sinks_route_alerts_one_per_item_and_sink() {
    let srv = TestServer::start();
    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[entry(
                    "s1",
                    "Kursk market reopens",
                    "Stalls at the Kursk market reopened after repairs.",
                )],
            ),
        ),
    );
    let rules = r#"
[[rule]]
id = "audit_only"
any = ["Kursk"]
sinks = ["audit"]

[[rule]]
id = "everywhere"
any = ["market"]

[[rule]]
id = "urgent_audit"
query = "repairs"
severity = "critical"
sinks = ["audit"]
"#;
    let ws = Workspace::new(
        &Config::new(rules)
            .feed("wire", &srv.url("/wire.xml"))
            .sink("id = \"audit\"\ntype = \"jsonl\"\npath = \"audit.jsonl\""),
    );
    ws.once_ok();
    let out = ws.alerts();
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(rule_ids(&out[0]), vec!["everywhere"]);
    let audit = read_alerts(&ws.path().join("audit.jsonl"));
    assert_eq!(audit.len(), 1, "one alert per item and sink: {audit:#?}");
    let a = &audit[0];
    assert_eq!(
        rule_ids(a),
        vec!["urgent_audit", "audit_only", "everywhere"]
    );
    assert_eq!(s(a, &["rule", "severity"]), "critical");
    assert_eq!(s(a, &["id"]), s(&out[0], &["id"]), "the id names the item");
    assert_highlights(a);
    let text = s(a, &["snippet", "text"]);
    let lit: Vec<String> = a["snippet"]["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .map(|h| {
            let (b, e) = (
                h[0].as_u64().unwrap() as usize,
                h[1].as_u64().unwrap() as usize,
            );
            text.chars().skip(b).take(e - b).collect()
        })
        .collect();
    for term in ["Kursk", "market", "repairs"] {
        assert!(
            lit.iter().any(|l| l == term),
            "{term} not highlighted: {lit:?} in {text:?}"
        );
    }
    let matched: Vec<&str> = a["matched"]
        .as_array()
        .expect("matched")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(matched, vec!["Kursk", "market", "repairs"]);
}

/// A sink removed from the config leaves its queued alerts behind: they
/// wait the retry horizon (re-adding the sink would deliver them), then
/// `alerts` lists them as dead letters saying why, and dead letters go
/// after `dead_letter_retention`.
#[test]
fn alerts_of_a_removed_sink_become_dead_letters_then_expire() {
    let srv = TestServer::start();
    srv.route(
        "/a.xml",
        Route::ok(
            RSS,
            rss(
                "A",
                &[entry(
                    "k1",
                    "Kursk bridge reopens",
                    "Traffic resumed in Kursk.",
                )],
            ),
        ),
    );
    // A webhook nobody listens on: the alert stays queued.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let base = Config::new(KURSK_RULES).feed("a", &srv.url("/a.xml"));
    let with_hook = base.clone().sink(&format!(
        "id = \"hook\"\ntype = \"webhook\"\nurl = \"http://{closed}/hook\"\n"
    ));
    let ws = Workspace::new(&with_hook);
    ws.once_ok();
    assert_eq!(ws.alerts().len(), 1, "the jsonl sink delivered");

    // The hook is removed; its alert is four days old.
    ws.write_config(&base);
    let db = ws.state_dir().join("wirewatch.db");
    let age = |days: i64| {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute(
            "UPDATE outbox SET created_at = created_at - ?1, dead_at = dead_at - ?1",
            [days * 86_400_000],
        )
        .unwrap();
    };
    let listing = ws.cli("alerts", &[]);
    listing.expect_code(0);
    assert!(!listing.stdout.contains("DEAD"), "{}", listing.stdout);
    age(4);
    let out = ws.once_ok();
    assert!(
        out.stderr
            .contains("1 alert(s) gave up and were kept as dead letters"),
        "reported: {}",
        out.stderr
    );
    let listing = ws.cli("alerts", &[]);
    listing.expect_code(0);
    assert!(listing.stdout.contains("DEAD since"), "{}", listing.stdout);
    assert!(
        listing
            .stdout
            .contains("its sink is no longer in the config"),
        "{}",
        listing.stdout
    );

    // Thirty-one days later the dead letter is gone.
    age(31);
    ws.once_ok();
    let listing = ws.cli("alerts", &["--json"]);
    listing.expect_code(0);
    assert!(
        !listing.stdout.contains("hook"),
        "deleted after dead_letter_retention: {}",
        listing.stdout
    );
}
