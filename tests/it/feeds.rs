//! Feed formats: malformed documents, keyless items, Cyrillic and cp1251.

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

const ATOM: &str = "application/atom+xml; charset=utf-8";
const JSON_FEED: &str = "application/feed+json";

fn serve_formats(srv: &TestServer) {
    srv.route("/wire.xml", Route::ok(RSS, fixture("wire_rss.xml")));
    srv.route("/atom.xml", Route::ok(ATOM, fixture("wire_atom.xml")));
    srv.route(
        "/feed.json",
        Route::ok(JSON_FEED, fixture("wire_feed.json")),
    );
    srv.route(
        "/broken.xml",
        Route::ok(RSS, fixture("malformed_truncated.xml")),
    );
}

fn formats_config(srv: &TestServer, with_broken: bool) -> Config {
    let mut cfg = Config::new(KURSK_RULES)
        .feed("wire", &srv.url("/wire.xml"))
        .feed("atom", &srv.url("/atom.xml"))
        .feed("json", &srv.url("/feed.json"));
    if with_broken {
        cfg = cfg.feed("broken", &srv.url("/broken.xml"));
    }
    cfg
}

fn t(rule: &str, feed: &str, title: &str) -> (String, String, String) {
    (rule.to_string(), feed.to_string(), title.to_string())
}

/// Test 5: a truncated document fails only its feed; RSS, Atom and JSON Feed
/// still alert; `--strict` turns the failure into exit 1.
#[test]
fn malformed_feed_fails_alone_and_strict_exits_1() {
    let srv = TestServer::start();
    serve_formats(&srv);
    let want = vec![
        t("kursk", "atom", "Power restored in Kursk after storm"),
        t("kursk", "json", "Bridge near Kursk reopens to traffic"),
        t("kursk", "wire", "Kursk region reports new border incident"),
        t(
            "kursk",
            "wire",
            "North Korea tests new missile, agency says",
        ),
    ];

    let ws = Workspace::new(&formats_config(&srv, true));
    let out = ws.once_ok();
    assert!(
        !out.stderr_lines_with("broken").is_empty(),
        "stderr must name the malformed feed:\n{}",
        out.stderr
    );
    assert_eq!(triples(&ws.alerts()), want);
    let st = ws.status();
    assert_eq!(st["broken"]["consecutive_failures"], 1, "{}", st["broken"]);
    for ok in ["wire", "atom", "json"] {
        assert_eq!(st[ok]["consecutive_failures"], 0, "{}", st[ok]);
    }

    let strict = Workspace::new(&formats_config(&srv, true));
    let out = strict.cli("once", &["--strict"]);
    out.expect_code(1);
    assert!(
        !out.stderr_lines_with("broken").is_empty(),
        "stderr must name the malformed feed:\n{}",
        out.stderr
    );

    // --strict with nothing failing is still exit 0.
    let clean = Workspace::new(&formats_config(&srv, false));
    clean.cli("once", &["--strict"]).expect_code(0);
    assert_eq!(triples(&clean.alerts()), want);
}

/// Test 6: items with neither guid nor link keep a stable key: ten polls of
/// the same (re-served, validator-free) document alert once per item, also
/// when the item order changes.
#[test]
fn keyless_items_alert_once_over_ten_polls() {
    let srv = TestServer::start();
    let doc = fixture("keyless.xml");
    let first = doc.find("<item>").expect("items");
    let last = doc.rfind("</item>").expect("items") + "</item>".len();
    let items: Vec<String> = doc[first..last]
        .split_inclusive("</item>")
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(items.len(), 5);
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("keyless", &srv.url("/k.xml")));
    for run in 0..10 {
        // Runs 0-4 serve the document as is, runs 5-9 rotate the items.
        let mut order = items.clone();
        if run >= 5 {
            order.rotate_left(run - 4);
        }
        let body = format!("{}{}{}", &doc[..first], order.join("\n"), &doc[last..]);
        srv.route("/k.xml", Route::ok(RSS, body));
        ws.once_ok();
        let n = ws.alerts().len();
        assert_eq!(n, 4, "after run {run}: {:#?}", ws.alerts());
    }
    let alerts = ws.alerts();
    let mut keys: Vec<&str> = alerts.iter().map(|a| s(a, &["item", "key"])).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "item keys must differ: {keys:?}");
    assert!(keys.iter().all(|k| !k.is_empty()));
    assert_eq!(
        titles(&alerts),
        vec![
            "Flights resume at Kursk airport",
            "Kursk",
            "Kursk",
            "Kursk council approves new budget"
        ]
    );
    for a in &alerts {
        assert!(a["item"]["link"].is_null(), "no link to report: {a}");
    }
    let reqs = srv.requests_to("/k.xml");
    assert_eq!(reqs.len(), 10);
    assert!(reqs.iter().all(|r| r.header("if-none-match").is_none()));
}

const RU_RULES: &str = r#"
[[rule]]
id = "ru"
any = ["Курск"]

[[rule]]
id = "ru-exact"
query = '=Курск'
"#;

/// Test 7: a Cyrillic rule matches any case and any inflection (Russian
/// stemming: «Курская» is «Курск»), an exact `=` term only its surface form;
/// windows-1251 feeds (declared in the prolog, or only in the HTTP charset)
/// decode right.
#[test]
fn cyrillic_rules_and_cp1251_feeds() {
    let srv = TestServer::start();
    srv.route("/ru.xml", Route::ok(RSS, fixture("ru_utf8.xml")));
    srv.route(
        "/cp-prolog.xml",
        Route::ok(
            "application/rss+xml",
            cp1251(&fixture("ru_cp1251_prolog.xml")),
        ),
    );
    srv.route(
        "/cp-http.xml",
        Route::ok(
            "application/rss+xml; charset=windows-1251",
            cp1251(&fixture("ru_cp1251_http.xml")),
        ),
    );
    let ws = Workspace::new(
        &Config::new(RU_RULES)
            .feed("ru", &srv.url("/ru.xml"))
            .feed("cpprolog", &srv.url("/cp-prolog.xml"))
            .feed("cphttp", &srv.url("/cp-http.xml")),
    );
    ws.once_ok();
    let alerts = ws.alerts();
    assert_eq!(
        triples(&alerts),
        vec![
            t(
                "ru",
                "cphttp",
                "Вокзал Курск ждёт новогодние поезда с ёлками"
            ),
            t("ru", "cpprolog", "Аэропорт Курск принял первый рейс"),
            t("ru", "ru", "КУРСК: ВЛАСТИ СООБЩИЛИ О ЗАКРЫТИИ ШКОЛ"),
            t("ru", "ru", "Курская АЭС увеличила выработку"),
            t("ru", "ru", "Новости региона за день"),
            t(
                "ru-exact",
                "cphttp",
                "Вокзал Курск ждёт новогодние поезда с ёлками"
            ),
            t("ru-exact", "cpprolog", "Аэропорт Курск принял первый рейс"),
        ],
        "stemmed «Курск» takes every case and inflection; «=Курск» only the exact form"
    );
    for (title, term, phrase) in [
        ("КУРСК: ВЛАСТИ СООБЩИЛИ О ЗАКРЫТИИ ШКОЛ", "КУРСК", "КУРСК"),
        (
            "Новости региона за день",
            "курск",
            "Жители написали слово курск строчными буквами",
        ),
        (
            "Аэропорт Курск принял первый рейс",
            "Курск",
            "Аэропорт Курск принял первый рейс",
        ),
        (
            "Вокзал Курск ждёт новогодние поезда с ёлками",
            "Курск",
            "Вокзал Курск ждёт новогодние поезда с ёлками",
        ),
    ] {
        let a = alerts
            .iter()
            .find(|a| s(a, &["item", "title"]) == title && s(a, &["rule", "id"]) == "ru")
            .unwrap();
        assert_eq!(a["matched"], serde_json::json!([term]), "{a}");
        let text = s(a, &["snippet", "text"]);
        assert!(text.contains(phrase), "snippet {text:?} lacks {phrase:?}");
        assert!(!a.to_string().contains('\u{fffd}'), "replacement char: {a}");
        assert_highlights(a);
    }
}
