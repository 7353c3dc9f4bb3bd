//! `full_text = true`: article pages of new items fetched from loopback,
//! their main text matched and quoted, failures falling back to the feed
//! text, per-host limits shared with feed fetches. The pages are
//! `tests/fixtures/articles/` (written for the project).

use std::time::{Duration, Instant};

use crate::server::{Route, TestServer};
use crate::util::*;

const HTML: &str = "text/html; charset=utf-8";

/// An article page from `tests/fixtures/articles/` (shared with the
/// extractor's unit tests).
fn article(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/articles")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An item linking to `link`, with a one-line teaser.
fn linked(guid: &str, title: &str, desc: &str, link: &str) -> Entry {
    let mut e = entry(guid, title, desc);
    e.link = Some(link.to_string());
    e
}

/// `wirewatch once` with warnings logged (the tests read the log).
fn once_logged(ws: &Workspace) -> Out {
    let cfg = ws.config_path();
    let mut cmd = command(ws.path(), &["once", "--config", &cfg]);
    cmd.env("WIREWATCH_LOG", "wirewatch=warn");
    let child = cmd.spawn().expect("spawn wirewatch once");
    let out = wait_with_timeout(child, Duration::from_secs(60), "wirewatch once");
    out.expect_code(0);
    out
}

fn alert_for<'a>(alerts: &'a [serde_json::Value], title: &str) -> &'a serde_json::Value {
    alerts
        .iter()
        .find(|a| s(a, &["item", "title"]) == title)
        .unwrap_or_else(|| panic!("no alert for {title:?} in {alerts:#?}"))
}

/// A server with the article page `/a/varna` (minesweepers in its body
/// only) and a feed whose one item links to it with a teaser.
fn port_story() -> (TestServer, String) {
    let srv = TestServer::start();
    srv.route("/a/varna", Route::ok(HTML, article("wire-story.html")));
    let feed = rss(
        "Headlines",
        &[linked(
            "v1",
            "Black Sea port update",
            "Officials gave an update on Thursday.",
            &srv.url("/a/varna"),
        )],
    );
    (srv, feed)
}

const BODY_RULES: &str = r#"
[[rule]]
id = "mines"
any = ["minesweepers"]

[[rule]]
id = "kursk"
any = ["Kursk"]
"#;

/// A word only in the article body alerts, with the body sentence as the
/// snippet; words only in the page's related links and comments do not; a
/// feed without `full_text` does not see the body; seen items are never
/// fetched again.
#[test]
fn a_rule_matching_only_the_article_body_alerts_with_a_body_snippet() {
    let (srv, feed) = port_story();
    srv.route("/full.xml", Route::ok(RSS, feed.clone()));
    srv.route("/plain.xml", Route::ok(RSS, feed));
    let ws = Workspace::new(
        &Config::new(BODY_RULES)
            .feed_with("full", &srv.url("/full.xml"), "full_text = true")
            .feed("plain", &srv.url("/plain.xml")),
    );
    ws.once_ok();
    let alerts = ws.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(s(a, &["feed", "id"]), "full");
    assert_eq!(s(a, &["rule", "id"]), "mines");
    assert!(
        s(a, &["snippet", "text"]).starts_with("Two minesweepers of the Bulgarian navy finished"),
        "snippet from the article body: {a:#}"
    );
    assert_highlights(a);
    assert_eq!(
        srv.hits("/a/varna"),
        1,
        "fetched once, by the full_text feed"
    );
    let req = &srv.requests_to("/a/varna")[0];
    assert!(
        req.header("accept")
            .is_some_and(|v| v.starts_with("text/html")),
        "{req:?}"
    );
    // Seen items are not fetched again.
    ws.once_ok();
    assert_eq!(srv.hits("/a/varna"), 1);
    assert_eq!(ws.alerts().len(), 1);
}

/// A paywall stub, a 404, a section front and a stalled page: each item
/// keeps its feed text (alerting when that matches), each failure is
/// logged with the link, and the poll itself succeeds.
#[test]
fn failed_articles_fall_back_to_the_feed_text() {
    let srv = TestServer::start();
    srv.route("/a/paywall", Route::ok(HTML, article("paywall.html")));
    srv.route("/a/front", Route::ok(HTML, article("section-front.html")));
    srv.route("/a/stall", Route::Stall);
    let big = format!(
        "<article><p>{}</p></article>",
        "Kursk news, page after page. ".repeat(5_000)
    );
    srv.route("/a/big", Route::ok(HTML, big));
    let feed = rss(
        "Headlines",
        &[
            linked(
                "p1",
                "Refinery outage near Kursk",
                "A fire took a fifth of output offline.",
                &srv.url("/a/paywall"),
            ),
            linked(
                "m1",
                "Kursk ferry timetable",
                "Sailings resume.",
                &srv.url("/a/missing"),
            ),
            linked(
                "s1",
                "Kursk grain update",
                "Terminal news.",
                &srv.url("/a/stall"),
            ),
            linked(
                "f1",
                "World news round-up",
                "Five stories.",
                &srv.url("/a/front"),
            ),
            linked("b1", "Long read", "A long one.", &srv.url("/a/big")),
        ],
    );
    srv.route("/feed.xml", Route::ok(RSS, feed));
    let ws = Workspace::new(
        &Config::new(BODY_RULES)
            .set("fetch_timeout", "\"1s\"")
            .feed_with(
                "wire",
                &srv.url("/feed.xml"),
                "full_text = true\nfull_text_max_bytes = \"64KiB\"",
            ),
    );
    let started = Instant::now();
    let out = once_logged(&ws);
    assert!(started.elapsed() < Duration::from_secs(20));
    let alerts = ws.alerts();
    let mut titles = titles(&alerts);
    titles.sort();
    assert_eq!(
        titles,
        [
            "Kursk ferry timetable",
            "Kursk grain update",
            "Refinery outage near Kursk"
        ],
        "feed text still matches; the section front's Kursk links and the words of the page over the size cap do not count"
    );
    let paywalled = alert_for(&alerts, "Refinery outage near Kursk");
    assert_eq!(
        s(paywalled, &["snippet", "text"]),
        "Refinery outage near Kursk"
    );
    for (path, why) in [
        ("/a/paywall", "paywall"),
        ("/a/missing", "HTTP 404"),
        ("/a/stall", "timed out"),
        ("/a/front", "no article text found"),
        ("/a/big", "full_text_max_bytes"),
    ] {
        let link = srv.url(path);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains(&link) && l.contains("no article text"))
            .collect();
        assert_eq!(lines.len(), 1, "{path}: {}", out.stderr);
        assert!(
            lines[0].contains(why) && lines[0].contains("wire"),
            "{}",
            lines[0]
        );
    }
    assert_eq!(ws.status()["wire"]["consecutive_failures"], 0);
}

/// Pages in windows-1251 (undeclared) and KOI8-R (`<meta http-equiv>`)
/// match Cyrillic rules, with snippets from their text.
#[test]
fn non_utf8_article_pages_match_cyrillic_rules() {
    let srv = TestServer::start();
    let encoded = |name: &str, encoding: &'static encoding_rs::Encoding| {
        let text = String::from_utf8(article(name)).expect("utf-8 fixture");
        let (bytes, _, unmappable) = encoding.encode(&text);
        assert!(!unmappable, "{name}");
        bytes.into_owned()
    };
    srv.route(
        "/a/ru1",
        Route::ok(
            "text/html",
            encoded("ru-undeclared.html", encoding_rs::WINDOWS_1251),
        ),
    );
    srv.route(
        "/a/ru2",
        Route::ok("text/html", encoded("ru-koi8.html", encoding_rs::KOI8_R)),
    );
    srv.route(
        "/feed.xml",
        Route::ok(
            RSS,
            rss(
                "Лента",
                &[
                    linked(
                        "r1",
                        "Новости порта",
                        "Подробности в статье.",
                        &srv.url("/a/ru1"),
                    ),
                    linked(
                        "r2",
                        "Транспорт",
                        "Подробности в статье.",
                        &srv.url("/a/ru2"),
                    ),
                ],
            ),
        ),
    );
    let rules = r#"
[[rule]]
id = "demining"
any = ["разминирование"]

[[rule]]
id = "ferry"
any = ["\"паромная переправа\""]

[[rule]]
id = "hockey"
any = ["хоккейный"]
"#;
    let ws = Workspace::new(&Config::new(rules).feed_with(
        "ru",
        &srv.url("/feed.xml"),
        "full_text = true",
    ));
    ws.once_ok();
    let alerts = ws.alerts();
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let port = alert_for(&alerts, "Новости порта");
    assert_eq!(s(port, &["rule", "id"]), "demining");
    assert!(
        s(port, &["snippet", "text"]).contains("завершили разминирование подходов"),
        "{port:#}"
    );
    let ferry = alert_for(&alerts, "Транспорт");
    assert_eq!(s(ferry, &["rule", "id"]), "ferry");
    assert!(
        s(ferry, &["snippet", "text"]).starts_with("Паромная переправа через залив"),
        "{ferry:#}"
    );
}

/// Article fetches take the same per-host slots as feeds: with
/// `max_fetches_per_host = 1` stalled pages on the feed's host are fetched
/// one after another, and `full_text_budget` ends the wait: the poll goes
/// on with the feed text.
#[test]
fn article_fetches_share_per_host_limits_and_stop_at_the_budget() {
    let srv = TestServer::start();
    let paths = ["/a/1", "/a/2", "/a/3", "/a/4"];
    let mut entries = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        srv.route(p, Route::Stall);
        entries.push(linked(
            &format!("k{i}"),
            &format!("Kursk story {i}"),
            "Short.",
            &srv.url(p),
        ));
    }
    srv.route("/feed.xml", Route::ok(RSS, rss("Slow pages", &entries)));
    let ws = Workspace::new(
        &Config::new(BODY_RULES)
            .set("fetch_timeout", "\"1s\"")
            .set("max_fetches_per_host", "1")
            .feed_with(
                "wire",
                &srv.url("/feed.xml"),
                "full_text = true\nfull_text_budget = \"2500ms\"",
            ),
    );
    let started = Instant::now();
    let out = once_logged(&ws);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the budget bounds the poll: {took:?}"
    );
    let mut at: Vec<Instant> = srv
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/a/"))
        .map(|r| r.at)
        .collect();
    at.sort();
    assert!(
        (2..=3).contains(&at.len()),
        "one stalled page per second within a 2.5 s budget: {} pages fetched",
        at.len()
    );
    for w in at.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(900),
            "one page at a time on the host: gap {:?}",
            w[1] - w[0]
        );
    }
    assert_eq!(ws.alerts().len(), 4, "every item alerts on its feed text");
    assert!(
        out.stderr.contains("full_text_budget ran out"),
        "{}",
        out.stderr
    );
}

/// Config keys: checked with FILE:LINE:COL like every other key.
#[test]
fn full_text_keys_are_validated() {
    let srv = TestServer::start();
    let ws = Workspace::new(&Config::new(BODY_RULES).feed_with(
        "wire",
        &srv.url("/feed.xml"),
        "full_text = \"yes\"\nfull_text_budget = \"0ms\"\nfull_text_max_articles = 0\nfull_txt = true",
    ));
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    let text = std::fs::read_to_string(ws.path().join("config.toml")).expect("config");
    assert_placed(
        &out.stderr,
        &[
            (config_place(&text, "\"yes\""), "`full_text`"),
            (
                config_place(&text, "\"0ms\""),
                "`full_text_budget` must be longer than 0s",
            ),
            (config_place(&text, "0\nfull_txt"), "full_text_max_articles"),
            (config_place(&text, "full_txt"), "unknown key `full_txt`"),
        ],
    );
}

/// `wirewatch match` on a `full_text` feed's URL fetches the article pages
/// as the daemon would, so it explains an alert that came from the body;
/// the same feed given as a file (not the configured URL) is matched on
/// its own text only.
#[test]
fn match_reads_the_article_pages_of_a_full_text_feed() {
    let (srv, feed) = port_story();
    srv.route("/full.xml", Route::ok(RSS, feed.clone()));
    let ws = Workspace::new(&Config::new(BODY_RULES).feed_with(
        "full",
        &srv.url("/full.xml"),
        "full_text = true",
    ));
    let out = ws.cli("match", &[&srv.url("/full.xml")]);
    out.expect_code(0);
    assert!(out.stdout.contains("mines"), "{}", out.stdout);
    assert!(out.stdout.contains("1 matched"), "{}", out.stdout);
    assert!(
        out.stderr.contains("1 article page(s) extracted"),
        "{}",
        out.stderr
    );
    assert_eq!(srv.hits("/a/varna"), 1);

    ws.write("copy.xml", feed);
    let copy = ws.path().join("copy.xml");
    let plain = ws.cli("match", &[copy.to_str().unwrap()]);
    plain.expect_code(0);
    assert!(plain.stdout.contains("0 matched"), "{}", plain.stdout);
    assert_eq!(srv.hits("/a/varna"), 1, "no page fetched for a file");
}
