//! Test 10: `wirewatch parse SOURCE` prints one JSON object per item.

use serde_json::{json, Value};

use crate::server::{Route, TestServer};
use crate::util::*;

const KEYS: [&str; 9] = [
    "key",
    "title",
    "link",
    "published",
    "updated",
    "summary",
    "content",
    "authors",
    "categories",
];

/// Runs `parse SOURCE`, expects exit 0, checks the key set and value types of
/// every line, and returns the lines.
#[track_caller]
fn parse_ok(source: &str) -> Vec<Value> {
    let out = run_cli(&["parse", source]);
    out.expect_code(0);
    let items = json_lines(&out.stdout);
    for it in &items {
        let obj = it.as_object().expect("each line is an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        let mut want = KEYS.to_vec();
        want.sort();
        assert_eq!(keys, want, "keys of {it}");
        for k in ["key", "title", "summary", "content"] {
            assert!(it[k].is_string(), "{k} must be a string: {it}");
        }
        assert!(it["link"].is_string() || it["link"].is_null(), "{it}");
        for k in ["published", "updated"] {
            if !it[k].is_null() {
                assert_rfc3339(&it[k], k);
            }
        }
        for k in ["authors", "categories"] {
            let arr = it[k].as_array().unwrap_or_else(|| panic!("{k}: {it}"));
            assert!(arr.iter().all(Value::is_string), "{k}: {it}");
        }
        for k in ["title", "summary", "content"] {
            let v = it[k].as_str().unwrap();
            assert!(
                !v.contains('<') && !v.contains('>'),
                "{k} still has markup: {v:?}"
            );
            for ent in ["&nbsp;", "&amp;", "&lt;", "&gt;", "&quot;"] {
                assert!(!v.contains(ent), "{k} has an undecoded entity: {v:?}");
            }
        }
    }
    items
}

/// Age in seconds of an RFC 3339 timestamp.
fn age_secs(v: &Value) -> i64 {
    let t = assert_rfc3339(v, "timestamp");
    chrono::Utc::now().signed_duration_since(t).num_seconds()
}

#[test]
fn parse_rss_file() {
    let ws = Workspace::empty();
    let path = ws.write("wire.xml", fixture("wire_rss.xml"));
    let items = parse_ok(path.to_str().unwrap());
    assert_eq!(items.len(), 4, "{items:#?}");

    let k = &items[0];
    assert_eq!(k["key"], "urn:wirewatch-test:rss-kursk-1");
    assert_eq!(k["title"], "Kursk region reports new border incident");
    assert_eq!(
        k["link"],
        "https://wire.example.test/world/kursk-border-incident"
    );
    let age = age_secs(&k["published"]);
    assert!(
        (7100..7300).contains(&age),
        "published {age}s ago, want ~2h"
    );
    let summary = k["summary"].as_str().unwrap();
    assert!(
        summary.contains("Kursk region said on Tuesday")
            && summary.contains("a border post came under fire overnight."),
        "summary: {summary:?}"
    );
    let content = k["content"].as_str().unwrap();
    assert!(
        content.contains("Kursk region said on Tuesday")
            && content.contains("No casualties were reported, a spokesman told reporters."),
        "content: {content:?}"
    );
    assert_eq!(k["authors"], json!(["Anna Petrova"]));
    assert_eq!(k["categories"], json!(["Europe", "Security"]));

    // Escaped HTML with a double-escaped ampersand.
    let nk = &items[1];
    assert_eq!(nk["key"], "urn:wirewatch-test:rss-nk-2");
    let summary = nk["summary"].as_str().unwrap();
    assert!(
        summary.contains("the agency said in a statement. Markets & shipping were not affected."),
        "summary: {summary:?}"
    );
    assert_eq!(nk["authors"], json!(["Lee Min-jun"]));

    // No pubDate: published is null.
    let rates = &items[3];
    assert_eq!(rates["title"], "Central bank holds rates steady");
    assert!(rates["published"].is_null(), "{rates}");
    assert_eq!(rates["authors"], json!([]));
    assert_eq!(rates["categories"], json!([]));
}

#[test]
fn parse_atom_and_json_feed_files() {
    let ws = Workspace::empty();
    let atom = ws.write("desk.atom", fixture("wire_atom.xml"));
    let items = parse_ok(atom.to_str().unwrap());
    assert_eq!(items.len(), 2, "{items:#?}");
    let p = &items[0];
    assert_eq!(p["key"], "urn:wirewatch-test:atom-kursk-power");
    assert_eq!(p["title"], "Power restored in Kursk after storm");
    assert_eq!(p["link"], "https://wire.example.test/atom/kursk-power");
    assert_eq!(
        p["summary"].as_str().unwrap().trim(),
        "Crews worked through the night to restore power."
    );
    assert!(
        p["content"]
            .as_str()
            .unwrap()
            .contains("restore power to Kursk districts."),
        "{p}"
    );
    assert!((10_700..10_900).contains(&age_secs(&p["published"])), "{p}");
    assert!((3500..3700).contains(&age_secs(&p["updated"])), "{p}");
    assert_eq!(p["authors"], json!(["Ivan Sokolov"]));
    assert_eq!(p["categories"], json!(["Weather"]));
    assert_eq!(items[1]["authors"], json!(["Maria Gomez", "John Smith"]));

    let jf = ws.write("desk.json", fixture("wire_feed.json"));
    let items = parse_ok(jf.to_str().unwrap());
    assert_eq!(items.len(), 2, "{items:#?}");
    let b = &items[0];
    assert_eq!(b["key"], "urn:wirewatch-test:json-kursk");
    assert_eq!(b["title"], "Bridge near Kursk reopens to traffic");
    assert_eq!(b["link"], "https://wire.example.test/json/kursk-bridge");
    assert!(
        b["content"]
            .as_str()
            .unwrap()
            .contains("The bridge reopened on Friday after repairs."),
        "{b}"
    );
    assert_eq!(b["authors"], json!(["Olga Ivanova"]));
    assert_eq!(b["categories"], json!(["Transport"]));
    assert!((7100..7300).contains(&age_secs(&b["published"])), "{b}");
}

/// The same document over HTTP parses exactly as from a file.
#[test]
fn parse_http_url_matches_file() {
    let srv = TestServer::start();
    let doc = fixture("wire_rss.xml");
    srv.route("/wire.xml", Route::ok(RSS, doc.clone()));
    let ws = Workspace::empty();
    let path = ws.write("wire.xml", &doc);
    let from_url = parse_ok(&srv.url("/wire.xml"));
    let from_file = parse_ok(path.to_str().unwrap());
    assert_eq!(from_url.len(), 4);
    assert_eq!(from_url, from_file);
    let reqs = srv.requests_to("/wire.xml");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
}

#[test]
fn parse_missing_file_fails() {
    let ws = Workspace::empty();
    let missing = ws.path().join("nope.xml");
    let out = run_cli(&["parse", missing.to_str().unwrap()]);
    assert_ne!(out.code(), Some(0), "parse of a missing file must fail");
    assert!(!out.stderr.trim().is_empty());
}
