//! Webhook delivery against receivers on loopback: Standard Webhooks
//! signatures checked by an independent verifier (the `standardwebhooks`
//! crate), an outage (500, refused connections, 429 + Retry-After) that
//! loses nothing, 410 switching the sink off, dead letters and
//! `wirewatch alerts`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::server::{Reply, Request, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

/// A valid Standard Webhooks secret (24 random bytes, written for this test).
const SECRET: &str = "whsec_q4ZbT1u9mX0cVh3kLr8sYw2dPf6gNj5e";

fn items(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            entry(
                &format!("w{i}"),
                &format!("Kursk bulletin {i}"),
                &format!("Officials in Kursk gave update number {i} on Monday."),
            )
        })
        .collect()
}

fn header_map(r: &Request) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in &r.headers {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    h
}

fn body_json(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "webhook body is not JSON ({e}): {}",
            String::from_utf8_lossy(&r.body)
        )
    })
}

fn hook_sink(url: &str, extra: &str) -> String {
    format!("id = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\n{extra}")
}

/// Fast retries so outage tests take seconds, not minutes.
const FAST_RETRY: &str = "retry_initial = \"300ms\"\nretry_max = \"1s\"\n";

#[test]
fn signed_deliveries_verify_and_tampering_fails() {
    let feed = TestServer::start();
    feed.route("/wire.xml", Route::ok(RSS, rss("Wire", &items(3))));
    let rx = TestServer::start();
    rx.route("/hook", Route::status(204));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&hook_sink(
            &rx.url("/hook"),
            "secret_file = \"hook.secret\"\nheaders = { X-Desk = \"night shift\" }\n",
        ));
    let ws = Workspace::new(&cfg);
    ws.write("hook.secret", format!("{SECRET}\n"));
    ws.once_ok();

    let reqs = rx.requests_to("/hook");
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    let verifier = standardwebhooks::Webhook::new(SECRET).expect("verifier");
    let jsonl_ids: BTreeSet<String> = ws
        .alerts()
        .iter()
        .map(|a| s(a, &["id"]).to_string())
        .collect();
    let mut ids = BTreeSet::new();
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-desk"), Some("night shift"));
        let headers = header_map(r);
        verifier
            .verify(&r.body, &headers)
            .unwrap_or_else(|e| panic!("signature does not verify: {e:?}\n{r:#?}"));
        let body = body_json(r);
        assert_eq!(
            r.header("webhook-id"),
            body["id"].as_str(),
            "id header = alert id"
        );
        assert!(s(&body, &["rule", "id"]) == "kursk");
        assert_highlights(&body);
        ids.insert(body["id"].as_str().unwrap_or_default().to_string());

        // A changed body, id or timestamp must fail verification.
        let mut tampered = r.body.clone();
        let at = tampered
            .iter()
            .position(|b| *b == b'K')
            .expect("a K to change");
        tampered[at] = b'X';
        assert!(
            verifier.verify(&tampered, &headers).is_err(),
            "tampered body verified"
        );
        let mut other_id = headers.clone();
        other_id.insert("webhook-id", HeaderValue::from_static("someone-else"));
        assert!(
            verifier.verify(&r.body, &other_id).is_err(),
            "changed id verified"
        );
        let wrong = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("other verifier");
        assert!(
            wrong.verify(&r.body, &headers).is_err(),
            "wrong secret verified"
        );
    }
    assert_eq!(ids, jsonl_ids, "the same alerts went to both sinks");
    ws.once_ok();
    assert_eq!(rx.hits("/hook"), 3, "delivered alerts are not sent again");
}

/// The receiver answers 500, then refuses connections, then 429 with
/// Retry-After, then recovers. Every alert arrives, the jsonl sink is never
/// held up, requests during the outage are for the head of the queue only,
/// duplicates carry the same id, and Retry-After is honoured.
#[test]
fn outage_loses_nothing_and_honours_retry_after() {
    let feed = TestServer::start();
    feed.route("/wire.xml", Route::ok(RSS, rss("Wire", &items(3))));
    let rx = TestServer::start();
    let addr = rx.addr();
    rx.route("/hook", Route::status(500));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&hook_sink(
            &rx.url("/hook"),
            &format!("secret = \"{SECRET}\"\n{FAST_RETRY}"),
        ));
    let ws = Workspace::new(&cfg);
    let daemon = ws.spawn_daemon();

    assert!(
        wait_until(Duration::from_secs(20), || rx.hits("/hook") >= 3),
        "no retries against the failing receiver\n{}",
        daemon.logs()
    );
    assert_eq!(
        ws.alerts().len(),
        3,
        "a failing webhook must not hold up the jsonl sink"
    );
    let failing = rx.requests_to("/hook");
    let head: BTreeSet<&str> = failing
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(
        head.len(),
        1,
        "while the receiver fails only the head of the queue is tried: {head:?}"
    );

    // Connections refused for a while.
    drop(rx);
    let polls_before = feed.hits("/wire.xml");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        feed.hits("/wire.xml") > polls_before,
        "polling goes on during the outage"
    );

    // Back, but rate limited once; then healthy.
    let rx = TestServer::start_on(&addr);
    rx.route(
        "/hook",
        Route::Sequence(vec![
            Reply::status(429).header("Retry-After", "3"),
            Reply::status(200),
        ]),
    );
    let expected: BTreeSet<String> = ws
        .alerts()
        .iter()
        .map(|a| s(a, &["id"]).to_string())
        .collect();
    let delivered = |rx: &TestServer| -> BTreeSet<String> {
        rx.requests_to("/hook")
            .iter()
            .filter(|r| r.status == 200)
            .filter_map(|r| r.header("webhook-id").map(str::to_string))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || delivered(&rx) == expected),
        "not every alert arrived: {:?} of {:?}\n{}",
        delivered(&rx),
        expected,
        daemon.logs()
    );
    let reqs = rx.requests_to("/hook");
    assert_eq!(reqs[0].status, 429);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        gap >= Duration::from_millis(2900),
        "Retry-After: 3 not honoured: next request after {gap:?}"
    );
    // Every copy of an alert carries the same id and the same body, and
    // verifies.
    let verifier = standardwebhooks::Webhook::new(SECRET).expect("verifier");
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for r in failing.iter().chain(reqs.iter()) {
        verifier.verify(&r.body, &header_map(r)).expect("verifies");
        let id = r.header("webhook-id").expect("id").to_string();
        assert_eq!(body_json(r)["id"].as_str(), Some(id.as_str()));
        let prev = bodies.entry(id).or_insert_with(|| r.body.clone());
        assert_eq!(prev, &r.body, "a retry sends the same alert");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        rx.requests_to("/hook").len(),
        reqs.len().max(expected.len() + 1),
        "nothing is sent after delivery"
    );
    drop(daemon);
}

/// 410 Gone switches the sink off after one request (no retry loop), the
/// other sink carries on, `alerts` and `status` say so, and `alerts retry`
/// switches it back on.
#[test]
fn gone_switches_the_sink_off_until_retry() {
    let feed = TestServer::start();
    feed.route("/wire.xml", Route::ok(RSS, rss("Wire", &items(2))));
    let rx = TestServer::start();
    rx.route("/hook", Route::status(410));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&hook_sink(&rx.url("/hook"), FAST_RETRY));
    let ws = Workspace::new(&cfg);
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(15), || rx.hits("/hook") >= 1
            && ws.alerts().len() == 2),
        "{}",
        daemon.logs()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        rx.hits("/hook"),
        1,
        "a gone endpoint is not retried\n{}",
        daemon.logs()
    );
    assert!(daemon.logs().contains("switched off"), "{}", daemon.logs());

    let listing = ws.cli("alerts", &[]);
    listing.expect_code(0);
    assert!(
        listing.stdout.contains("SWITCHED OFF"),
        "{}",
        listing.stdout
    );
    assert!(listing.stdout.contains("sink hook"), "{}", listing.stdout);
    assert!(listing.stdout.contains("2 waiting"), "{}", listing.stdout);
    let status = ws.cli("status", &[]);
    assert!(status.stdout.contains("SWITCHED OFF"), "{}", status.stdout);

    rx.route("/hook", Route::status(200));
    let retry = ws.cli("alerts", &["retry", "--sink", "hook"]);
    retry.expect_code(0);
    assert!(
        retry.stdout.contains("sink hook switched on again"),
        "{}",
        retry.stdout
    );
    assert!(
        wait_until(Duration::from_secs(20), || rx
            .requests_to("/hook")
            .iter()
            .filter(|r| r.status == 200)
            .count()
            == 2),
        "the running daemon picks the sink up again\n{}",
        daemon.logs()
    );
    drop(daemon);
}

/// A 4xx other than 410 is retried a few times, then kept as a dead letter;
/// `alerts` lists it with the receiver's reason and `alerts retry`
/// re-queues it. An alert older than `retry_horizon` is given up too.
#[test]
fn rejected_and_expired_alerts_become_dead_letters() {
    let feed = TestServer::start();
    feed.route("/wire.xml", Route::ok(RSS, rss("Wire", &items(1))));
    let rx = TestServer::start();
    rx.route(
        "/hook",
        Route::Fixed(
            Reply::status(422)
                .header("Content-Type", "text/plain")
                .body("field \"snippet\" \x1b[31mtoo long"),
        ),
    );
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&hook_sink(&rx.url("/hook"), "retry_initial = \"100ms\"\n"));
    let ws = Workspace::new(&cfg);
    for attempt in 1..=3 {
        let out = ws.once_ok();
        assert_eq!(
            out.stderr.contains("dead letter"),
            attempt == 3,
            "attempt {attempt}:\n{}",
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(rx.hits("/hook"), 3, "tried three times, then given up");
    ws.once_ok();
    assert_eq!(rx.hits("/hook"), 3, "a dead letter is not retried");

    let listing = ws.cli("alerts", &["--sink", "hook"]);
    listing.expect_code(0);
    assert!(listing.stdout.contains("DEAD since"), "{}", listing.stdout);
    assert!(listing.stdout.contains("HTTP 422"), "{}", listing.stdout);
    assert!(listing.stdout.contains("too long"), "{}", listing.stdout);
    assert!(
        !listing.stdout.contains('\x1b'),
        "control chars from the receiver are dropped"
    );
    let json = ws.cli("alerts", &["--json"]);
    let rows = json_lines(&json.stdout);
    let dead: Vec<&Value> = rows.iter().filter(|r| r["dead_at"].is_string()).collect();
    assert_eq!(dead.len(), 1, "{}", json.stdout);
    assert_eq!(s(dead[0], &["sink"]), "hook");
    assert_eq!(s(dead[0], &["alert", "rule", "id"]), "kursk");

    rx.route("/hook", Route::status(200));
    let retry = ws.cli("alerts", &["retry"]);
    retry.expect_code(0);
    assert!(
        retry.stdout.contains("1 dead alert(s) re-queued"),
        "{}",
        retry.stdout
    );
    ws.once_ok();
    assert_eq!(rx.hits("/hook"), 4);
    let after = ws.cli("alerts", &["--sink", "hook"]);
    assert!(
        after.stdout.contains("0 waiting, 0 dead, 1 delivered"),
        "{}",
        after.stdout
    );

    // Horizon: a receiver that keeps failing past `retry_horizon`.
    let feed2 = TestServer::start();
    feed2.route("/wire.xml", Route::ok(RSS, rss("Wire", &items(1))));
    let rx2 = TestServer::start();
    rx2.route("/hook", Route::status(503));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed2.url("/wire.xml"))
        .sink(&hook_sink(
            &rx2.url("/hook"),
            "retry_initial = \"100ms\"\nretry_horizon = \"1s\"\n",
        ));
    let ws = Workspace::new(&cfg);
    ws.once_ok();
    std::thread::sleep(Duration::from_millis(1200));
    let out = ws.once_ok();
    assert!(out.stderr.contains("dead letter"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1 alert(s) gave up and were kept as dead letters"),
        "{}",
        out.stderr
    );
    let listing = ws.cli("alerts", &[]);
    assert!(
        listing.stdout.contains("0 waiting, 1 dead"),
        "{}",
        listing.stdout
    );
    assert!(listing.stdout.contains("HTTP 503"), "{}", listing.stdout);
}

#[test]
fn alerts_test_sends_a_sample_to_one_sink() {
    let rx = TestServer::start();
    rx.route("/hook", Route::status(200));
    rx.route("/broken", Route::status(500));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &rx.url("/wire.xml"))
        .sink(&hook_sink(
            &rx.url("/hook"),
            &format!("secret = \"{SECRET}\"\n"),
        ))
        .sink(&format!(
            "id = \"broken\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            rx.url("/broken")
        ));
    let ws = Workspace::new(&cfg);
    let ok = ws.cli("alerts", &["test", "hook"]);
    ok.expect_code(0);
    assert!(ok.stdout.contains("delivered"), "{}", ok.stdout);
    let reqs = rx.requests_to("/hook");
    assert_eq!(reqs.len(), 1);
    standardwebhooks::Webhook::new(SECRET)
        .expect("verifier")
        .verify(&reqs[0].body, &header_map(&reqs[0]))
        .expect("the test alert is signed");
    assert_eq!(
        s(&body_json(&reqs[0]), &["item", "title"]),
        "wirewatch test alert"
    );

    let bad = ws.cli("alerts", &["test", "broken"]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("HTTP 500"), "{}", bad.stderr);
    assert!(bad.stderr.contains("would be retried"), "{}", bad.stderr);
    let unknown = ws.cli("alerts", &["test", "nosuch"]);
    unknown.expect_code(1);
    assert!(
        unknown.stderr.contains("unknown sink \"nosuch\""),
        "{}",
        unknown.stderr
    );
    // A test alert never goes through the queue.
    let listing = ws.cli("alerts", &[]);
    assert!(!listing.stdout.contains("1 waiting"), "{}", listing.stdout);
}

/// Every webhook config mistake is reported at its place.
#[test]
fn webhook_config_errors_name_the_place() {
    let sinks = [
        "id = \"a\"\ntype = \"webhook\"\nurl = \"ftp://example.test/x\"\n",
        "id = \"b\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"not-a-whsec\"\n",
        "id = \"c\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret_env = \"WIREWATCH_TEST_UNSET_SECRET\"\n",
        "id = \"d\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret_file = \"missing.secret\"\n",
        "id = \"e\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nheaders = { webhook-id = \"x\" }\n",
        "id = \"f\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nformat = \"ntfy\"\n",
        "id = \"g\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nformat = \"pigeon\"\n",
        "id = \"h\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nretry_initial = \"1h\"\nretry_max = \"1m\"\n",
        "id = \"i\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nsecret_file = \"x\"\n",
        "id = \"j\"\ntype = \"webhook\"\nformat = \"ntfy\"\nurl = \"https://ntfy.example.test/wire-alerts\"\ntopic = \"wire-alerts\"\n",
        "id = \"k\"\ntype = \"webhook\"\nformat = \"matrix\"\nurl = \"https://matrix.example.test\"\nroom_id = \"#desk:example.test\"\ntoken = \"syt_x\"\n",
    ];
    let mut cfg = Config::new(KURSK_RULES);
    for s in sinks {
        cfg = cfg.sink(s);
    }
    let ws = Workspace::new(&cfg);
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    let text = cfg.config_text();
    let place = |needle: &str| config_place(&text, needle);
    let expect = [
        (place("\"ftp://"), "http:// or https://"),
        (place("\"not-a-whsec\""), "whsec_"),
        (place("\"WIREWATCH_TEST_UNSET_SECRET\""), "is not set"),
        (place("\"missing.secret\""), "cannot read secret file"),
        (place("\"x\" }"), "set by wirewatch"),
        (place("\"pigeon\""), "unknown webhook format"),
        (place("\"1m\""), "must not be shorter"),
        (place("\"x\"\n\n"), "give the secret once"),
        (
            place("\"https://ntfy.example.test/wire-alerts\""),
            "server's root",
        ),
        (place("\"#desk:example.test\""), "not an alias"),
    ];
    assert_placed(&out.stderr, &expect);
    assert!(
        out.stderr.contains("format \"ntfy\" needs `topic`"),
        "{}",
        out.stderr
    );
}

/// Snippet length follows the sink kind: a webhook message is read in full
/// and gets a longer cut than the terminal/file default.
#[test]
fn webhook_snippets_are_longer_than_the_file_default() {
    let long = "In Kursk, officials said on Monday that the repair of the regional \
                power grid, which had been damaged in several places during the week, \
                would take at least another fortnight because crews had to wait for \
                spare transformers shipped from plants far to the east, and that \
                schools in the districts closest to the border would stay on remote \
                lessons until the heating was fully restored in every building, while \
                the hospitals would keep running on their own generators.";
    let feed = TestServer::start();
    feed.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss("Wire", &[entry("long1", "Grid repairs drag on", long)]),
        ),
    );
    let rx = TestServer::start();
    rx.route("/hook", Route::status(200));
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &feed.url("/wire.xml"))
        .sink(&hook_sink(&rx.url("/hook"), ""));
    let ws = Workspace::new(&cfg);
    ws.once_ok();
    let file = ws.alerts();
    let file_len = s(&file[0], &["snippet", "text"]).chars().count();
    let reqs = rx.requests_to("/hook");
    let hook_len = s(&body_json(&reqs[0]), &["snippet", "text"])
        .chars()
        .count();
    assert!(file_len <= 300, "jsonl snippet {file_len} chars");
    assert!(
        hook_len > 300 && hook_len <= 600,
        "webhook snippet {hook_len} chars (jsonl {file_len})"
    );
}

/// A Telegram-format sink rate limited the way the Bot API does it (429
/// with `parameters.retry_after` in the JSON body, no `Retry-After`
/// header): the next attempt waits that long, then the message arrives
/// as a `sendMessage` call for the configured chat.
#[test]
fn telegram_rate_limit_in_the_body_is_honoured() {
    let feed = TestServer::start();
    feed.route("/wire.xml", Route::ok(RSS, rss("Wire", &items(1))));
    let api = TestServer::start();
    let path = "/bot4242-wirewatch-test/sendMessage";
    api.route(
        path,
        Route::Sequence(vec![
            Reply::status(429)
                .header("Content-Type", "application/json")
                .body(r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#),
            Reply::ok("application/json", r#"{"ok":true,"result":{"message_id":1}}"#),
        ]),
    );
    let sink = format!(
        "id = \"tg\"\ntype = \"webhook\"\nformat = \"telegram\"\nurl = \"{}\"\n\
         token = \"4242-wirewatch-test\"\nchat_id = \"-100200300\"\n{FAST_RETRY}",
        api.url("")
    );
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("wire", &feed.url("/wire.xml"))
            .sink(&sink),
    );
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(20), || api
            .requests_to(path)
            .iter()
            .any(|r| r.status == 200)),
        "never delivered\n{}",
        daemon.logs()
    );
    let reqs = api.requests_to(path);
    assert_eq!(reqs[0].status, 429);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        gap >= Duration::from_millis(2900),
        "retry_after 3 in the body not honoured (retry_max is 1s): next request after {gap:?}"
    );
    let body = body_json(&reqs[1]);
    assert_eq!(
        body["chat_id"], -100200300i64,
        "a numeric chat id is sent as a number"
    );
    assert!(
        body["text"].as_str().is_some_and(|t| t.contains("Kursk")),
        "{body}"
    );
}
