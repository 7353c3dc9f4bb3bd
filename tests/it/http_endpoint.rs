//! The `[http]` endpoint: the daemon serves `/healthz` and Prometheus
//! `/metrics` on loopback; the counters tell what it did (polls by result,
//! items, matches per rule, deliveries per sink, outbox depth, rules), they
//! survive a reload while removed feeds' series go, clients that misbehave
//! are cut off, and an address that cannot be bound stops the start.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An HTTP answer: status, lower-cased headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` as the whole request and reads the answer to the end (the
/// endpoint closes every connection). `None` if the connection fails.
fn exchange(port: u16, raw: &[u8]) -> Option<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(raw).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

fn request(port: u16, method: &str, path: &str) -> Option<Answer> {
    exchange(
        port,
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )
}

fn get(port: u16, path: &str) -> Option<Answer> {
    request(port, "GET", path)
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let v = l.strip_prefix(series)?.strip_prefix(' ')?;
        Some(if v == "+Inf" {
            f64::INFINITY
        } else {
            v.parse().ok()?
        })
    })
}

/// `sample`, or 0 when the series is absent.
fn value(metrics: &str, series: &str) -> f64 {
    sample(metrics, series).unwrap_or(0.0)
}

fn with_http(cfg: &Config, port: u16) -> String {
    format!(
        "{}\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
        cfg.config_text()
    )
}

fn scrape(port: u16) -> String {
    get(port, "/metrics").map(|a| a.body).unwrap_or_default()
}

#[test]
fn http_endpoint_serves_metrics_health_and_keeps_counters_across_reload() {
    let srv = TestServer::start();
    let feed = rss(
        "Wire",
        &[
            entry("m1", "Kursk plant reopens", "Workers return."),
            entry("m2", "Weather turns cold", "Frost in the north."),
        ],
    );
    srv.route("/wire.xml", Route::conditional(RSS, feed.clone()));
    srv.route("/broken.xml", Route::status(500));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &srv.url("/wire.xml"))
        .feed("broken", &srv.url("/broken.xml"));
    let port = free_port();
    let ws = Workspace::empty();
    ws.write("config.toml", with_http(&cfg, port));
    ws.write("rules.toml", KURSK_RULES);
    let mut d = ws.spawn_daemon();

    // The alert is delivered, the feed answered 304 since, the broken one
    // failed at least once.
    let settled = |m: &str| {
        value(m, "wirewatch_alerts_delivered_total{sink=\"out\"}") >= 1.0
            && value(
                m,
                "wirewatch_polls_total{feed=\"wire\",result=\"not_modified\"}",
            ) >= 1.0
            && value(
                m,
                "wirewatch_polls_total{feed=\"broken\",result=\"http_5xx\"}",
            ) >= 1.0
    };
    assert!(
        wait_until(Duration::from_secs(20), || settled(&scrape(port))),
        "metrics never showed the delivered alert:\n{}\n{}",
        scrape(port),
        d.logs()
    );
    assert_eq!(ws.alerts().len(), 1, "{}", d.logs());

    let answer = get(port, "/metrics").expect("GET /metrics");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = answer.body;
    let v = |s: &str| sample(&m, s).unwrap_or_else(|| panic!("no {s} in:\n{m}"));
    assert_eq!(
        v("wirewatch_polls_total{feed=\"wire\",result=\"ok\"}"),
        1.0,
        "one full poll, then 304s"
    );
    assert_eq!(
        v("wirewatch_items_parsed_total"),
        2.0,
        "two items in the only parsed document"
    );
    assert_eq!(v("wirewatch_matches_total{rule=\"kursk\"}"), 1.0);
    assert_eq!(v("wirewatch_alerts_delivered_total{sink=\"out\"}"), 1.0);
    assert_eq!(v("wirewatch_outbox_depth{sink=\"out\"}"), 0.0);
    assert_eq!(v("wirewatch_dead_letters{sink=\"out\"}"), 0.0);
    assert_eq!(v("wirewatch_rules"), 1.0);
    assert_eq!(v("wirewatch_feeds"), 2.0);
    assert_eq!(v("wirewatch_sinks"), 1.0);
    assert!(v("wirewatch_ruleset_build_seconds") > 0.0);
    assert_eq!(v("wirewatch_fetch_bytes_total"), feed.len() as f64);
    let fetches = v("wirewatch_fetch_duration_seconds_count");
    let polls: f64 = m
        .lines()
        .filter(|l| l.starts_with("wirewatch_polls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(fetches >= 3.0, "{m}");
    assert_eq!(
        v("wirewatch_fetch_duration_seconds_bucket{le=\"+Inf\"}"),
        fetches
    );
    // Scrapes and polls race: each poll's fetch is timed before the poll
    // is counted, so there are never fewer fetches than polls.
    assert!(fetches >= polls && fetches <= polls + 2.0, "{m}");
    assert!(v("process_resident_memory_bytes") > 1e6);
    assert!(m.contains("# TYPE wirewatch_fetch_duration_seconds histogram"));
    assert!(m.contains("# TYPE wirewatch_polls_total counter"));
    assert!(m.contains("# TYPE wirewatch_outbox_depth gauge"));

    let health = get(port, "/healthz").expect("GET /healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    // A reload: a second rule, feed `broken` removed. Counters go on.
    let rules2 = format!("{KURSK_RULES}\n[[rule]]\nid = \"weather\"\nquery = 'weather'\n");
    ws.write("rules.toml", &rules2);
    let cfg2 = Config::new(&rules2).feed("wire", &srv.url("/wire.xml"));
    ws.write("config.toml", with_http(&cfg2, port));
    d.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(15), || value(
            &scrape(port),
            "wirewatch_config_reloads_total{result=\"ok\"}"
        ) >= 1.0),
        "no reload seen:\n{}",
        d.logs()
    );
    let polls_before = value(
        &m,
        "wirewatch_polls_total{feed=\"wire\",result=\"not_modified\"}",
    );
    assert!(
        wait_until(Duration::from_secs(10), || value(
            &scrape(port),
            "wirewatch_polls_total{feed=\"wire\",result=\"not_modified\"}"
        ) > polls_before),
        "the wire feed is not polled after the reload:\n{}",
        d.logs()
    );
    let m2 = scrape(port);
    let v2 = |s: &str| sample(&m2, s);
    assert_eq!(v2("wirewatch_rules"), Some(2.0), "{m2}");
    assert_eq!(v2("wirewatch_feeds"), Some(1.0));
    assert_eq!(
        v2("wirewatch_alerts_delivered_total{sink=\"out\"}"),
        Some(1.0),
        "a reload must not reset counters:\n{m2}"
    );
    assert_eq!(v2("wirewatch_matches_total{rule=\"kursk\"}"), Some(1.0));
    assert_eq!(
        v2("wirewatch_matches_total{rule=\"weather\"}"),
        Some(0.0),
        "the new rule's series starts at 0 (its item was seen already)"
    );
    assert_eq!(
        v2("wirewatch_polls_total{feed=\"wire\",result=\"ok\"}"),
        Some(1.0)
    );
    assert!(v2("wirewatch_items_parsed_total") == Some(2.0));
    assert_eq!(
        v2("wirewatch_polls_total{feed=\"broken\",result=\"http_5xx\"}"),
        None,
        "a removed feed's series go:\n{m2}"
    );
    assert!(d.running(), "{}", d.logs());
}

#[test]
fn http_endpoint_counts_failed_deliveries_and_the_outbox_they_leave() {
    let srv = TestServer::start();
    srv.route(
        "/wire.xml",
        Route::conditional(
            RSS,
            rss("Wire", &[entry("f1", "Kursk bridge closed", "Repairs.")]),
        ),
    );
    srv.route("/hook", Route::status(503));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &srv.url("/wire.xml"))
        .sink(&format!(
            "id = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"200ms\"\nretry_max = \"500ms\"\n",
            srv.url("/hook")
        ));
    let port = free_port();
    let ws = Workspace::empty();
    ws.write("config.toml", with_http(&cfg, port));
    ws.write("rules.toml", KURSK_RULES);
    let d = ws.spawn_daemon();

    let failing = |m: &str| {
        value(
            m,
            "wirewatch_alerts_failed_total{sink=\"hook\",kind=\"transient\"}",
        ) >= 2.0
            && value(m, "wirewatch_alerts_delivered_total{sink=\"out\"}") == 1.0
    };
    assert!(
        wait_until(Duration::from_secs(20), || failing(&scrape(port))),
        "no failed attempts counted:\n{}\n{}",
        scrape(port),
        d.logs()
    );
    let m = scrape(port);
    assert_eq!(
        sample(&m, "wirewatch_outbox_depth{sink=\"hook\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "wirewatch_outbox_depth{sink=\"out\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "wirewatch_alerts_delivered_total{sink=\"hook\"}"),
        Some(0.0)
    );

    // The receiver recovers: the queued alert goes out, the outbox empties.
    srv.route("/hook", Route::status(200));
    let delivered = |m: &str| {
        value(m, "wirewatch_alerts_delivered_total{sink=\"hook\"}") == 1.0
            && sample(m, "wirewatch_outbox_depth{sink=\"hook\"}") == Some(0.0)
    };
    assert!(
        wait_until(Duration::from_secs(20), || delivered(&scrape(port))),
        "the recovered sink's delivery is not counted:\n{}\n{}",
        scrape(port),
        d.logs()
    );
}

#[test]
fn http_endpoint_answers_only_its_routes_and_cuts_off_misbehaving_clients() {
    let srv = TestServer::start();
    srv.route("/wire.xml", Route::conditional(RSS, rss("Wire", &[])));
    let cfg = Config::new(KURSK_RULES).feed("wire", &srv.url("/wire.xml"));
    let port = free_port();
    let ws = Workspace::empty();
    ws.write("config.toml", with_http(&cfg, port));
    ws.write("rules.toml", KURSK_RULES);
    let d = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || get(port, "/healthz")
            .is_some_and(|a| a.status == 200)),
        "/healthz never answered 200:\n{}",
        d.logs()
    );

    let nope = get(port, "/").expect("GET /");
    assert_eq!(nope.status, 404);
    let post = request(port, "POST", "/metrics").expect("POST /metrics");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = request(port, "HEAD", "/metrics").expect("HEAD /metrics");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let query = get(port, "/metrics?x=1").expect("GET /metrics?x=1");
    assert_eq!(query.status, 200);

    // A request head past 16 KiB is refused, not buffered.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let refused = exchange(port, huge.as_bytes());
    assert!(
        refused.as_ref().is_none_or(|a| a.status == 431),
        "an oversized head got {:?}",
        refused.map(|a| a.status)
    );

    // Clients that connect and send nothing hold nothing: the endpoint
    // still answers while they wait, and drops them at the head deadline.
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    assert_eq!(get(port, "/healthz").map(|a| a.status), Some(200));
    let started = Instant::now();
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    let n = first.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(12),
        "an idle client was held {waited:?}"
    );
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "an idle client got {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    drop(idle);
    assert_eq!(get(port, "/healthz").map(|a| a.status), Some(200));
}

#[test]
fn http_endpoint_that_cannot_listen_stops_the_start() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let srv = TestServer::start();
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &[])));
    let cfg = Config::new(KURSK_RULES).feed("wire", &srv.url("/wire.xml"));
    let ws = Workspace::empty();
    ws.write("config.toml", with_http(&cfg, port));
    ws.write("rules.toml", KURSK_RULES);
    let out = ws.cli_within(Duration::from_secs(20), "run", &[]);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    assert_eq!(srv.hits("/wire.xml"), 0, "no feed is polled");
    drop(taken);
}

#[test]
fn http_endpoint_listen_errors_are_placed_by_check() {
    let cfg = Config::new(KURSK_RULES).feed("wire", "http://127.0.0.1:9/wire.xml");
    let text = format!(
        "{}\n[http]\nlisten = \"localhost:9797\"\n",
        cfg.config_text()
    );
    let ws = Workspace::empty();
    ws.write("config.toml", &text);
    ws.write("rules.toml", KURSK_RULES);
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    assert_placed(
        &out.stderr,
        &[(
            config_place(&text, "\"localhost:9797\""),
            "`listen` must be an IP address and port",
        )],
    );
}

/// `full_text` feeds: each new item's article page is counted once by
/// result (text extracted, no article in the page, a 404, over
/// `full_text_max_articles`), with the bytes of the pages fetched and one
/// latency per fetch; a feed without `full_text` has no article series;
/// seen items are not counted again.
#[test]
fn http_endpoint_counts_article_fetches_by_result() {
    let page = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/articles")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let (story, paywall) = (page("wire-story.html"), page("paywall.html"));
    let srv = TestServer::start();
    const HTML: &str = "text/html; charset=utf-8";
    srv.route("/a/story", Route::ok(HTML, story.clone()));
    srv.route("/a/paywall", Route::ok(HTML, paywall.clone()));
    let linked = |guid: &str, title: &str, path: &str| {
        let mut e = entry(guid, title, "Officials gave an update.");
        e.link = Some(srv.url(path));
        e
    };
    let feed = rss(
        "Headlines",
        &[
            linked("s1", "Kursk port update", "/a/story"),
            linked("p1", "Kursk refinery outage", "/a/paywall"),
            linked("m1", "Kursk ferry timetable", "/a/missing"),
            linked("x1", "Kursk weather", "/a/later"),
        ],
    );
    srv.route("/full.xml", Route::ok(RSS, feed.clone()));
    srv.route("/plain.xml", Route::ok(RSS, feed));
    let cfg = Config::new(KURSK_RULES)
        .feed_with(
            "full",
            &srv.url("/full.xml"),
            "full_text = true\nfull_text_max_articles = 3",
        )
        .feed("plain", &srv.url("/plain.xml"));
    let port = free_port();
    let ws = Workspace::empty();
    ws.write("config.toml", with_http(&cfg, port));
    ws.write("rules.toml", KURSK_RULES);
    let d = ws.spawn_daemon();

    let article = |m: &str, result: &str| {
        value(
            m,
            &format!("wirewatch_article_fetches_total{{feed=\"full\",result=\"{result}\"}}"),
        )
    };
    let counted = |m: &str| {
        ["ok", "no_article", "http_4xx", "skipped"]
            .iter()
            .map(|r| article(m, r))
            .sum::<f64>()
            >= 4.0
    };
    assert!(
        wait_until(Duration::from_secs(20), || counted(&scrape(port))),
        "article results never counted:\n{}\n{}",
        scrape(port),
        d.logs()
    );
    // Polled again since (every second): seen items are not counted twice.
    assert!(
        wait_until(Duration::from_secs(10), || value(
            &scrape(port),
            "wirewatch_polls_total{feed=\"full\",result=\"ok\"}"
        ) >= 2.0),
        "{}",
        d.logs()
    );
    let m = scrape(port);
    assert_eq!(article(&m, "ok"), 1.0, "{m}");
    assert_eq!(article(&m, "no_article"), 1.0, "the paywall stub: {m}");
    assert_eq!(article(&m, "http_4xx"), 1.0, "{m}");
    assert_eq!(
        article(&m, "skipped"),
        1.0,
        "over full_text_max_articles: {m}"
    );
    let results = m
        .lines()
        .filter(|l| l.starts_with("wirewatch_article_fetches_total{"))
        .count();
    assert_eq!(results, 4, "no other results: {m}");
    assert!(
        !m.contains("wirewatch_article_fetches_total{feed=\"plain\""),
        "{m}"
    );
    assert_eq!(
        value(&m, "wirewatch_article_fetch_bytes_total"),
        (story.len() + paywall.len()) as f64,
        "{m}"
    );
    assert_eq!(
        value(&m, "wirewatch_article_fetch_duration_seconds_count"),
        3.0,
        "one latency per page fetched: {m}"
    );
    assert_eq!(
        value(
            &m,
            "wirewatch_article_fetch_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        3.0
    );
    assert_eq!(srv.hits("/a/later"), 0);
    drop(d);
}
