//! Test 11: `wirewatch match` (dry run: no state, no sinks).

use crate::util::*;
use crate::KURSK_RULES;

const MATCH_RULES: &str = r#"
[[rule]]
id = "kursk"
any = ["Kursk", "\"North Korea\""]
none = ["hockey"]
severity = "critical"

[[rule]]
id = "ru"
any = ["Курск"]
"#;

/// A document that stresses offsets: emoji (4 bytes in UTF-8, 2 UTF-16
/// units), Cyrillic (2 bytes), repeated and differently-cased hits, a phrase
/// that is split, and a longer word that must not count as a whole word.
fn tricky_doc() -> String {
    rss(
        "Tricky",
        &[
            entry(
                "t1",
                "Kursk: talks on North Korea",
                "🚀 Delegates from Kursk met — 🚀 — to discuss north korea and KURSK trade.",
            ),
            entry(
                "t2",
                "Жители 🚀 Курска и Курск",
                "Ёлки — в Курск привезли ёлки; КУРСК ждёт праздника.",
            ),
            entry(
                "t3",
                "South Korea exports rise",
                "Shipments to the north rose. Korea said so.",
            ),
            entry(
                "t4",
                "Kurskaya station closes",
                "Repairs at the Kurskaya line.",
            ),
        ],
    )
}

#[test]
fn match_human_output_and_no_state() {
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("wire", "http://127.0.0.1:9/unused"));
    let src = ws.write("wire.xml", fixture("wire_rss.xml"));
    let out = ws.cli("match", &[src.to_str().unwrap()]);
    out.expect_code(0);
    for want in [
        "kursk",
        "Kursk region reports new border incident",
        "North Korea tests new missile, agency says",
    ] {
        assert!(
            out.stdout.contains(want),
            "stdout lacks {want:?}:\n{}",
            out.stdout
        );
    }
    for not in [
        "Hockey: Kursk side wins regional cup",
        "Central bank holds rates steady",
    ] {
        assert!(
            !out.stdout.contains(not),
            "{not:?} must not match:\n{}",
            out.stdout
        );
    }
    assert!(!ws.state_dir().exists(), "match must not create state");
    assert!(!ws.alerts_path().exists(), "match must not write sinks");
}

#[test]
fn match_json_highlights_index_the_matched_words() {
    let ws = Workspace::new(&Config::new(MATCH_RULES).feed("wire", "http://127.0.0.1:9/unused"));
    let tricky = ws.write("tricky.xml", tricky_doc());
    let atom = ws.write("desk.atom", fixture("wire_atom.xml"));
    let out = ws.cli(
        "match",
        &["--json", tricky.to_str().unwrap(), atom.to_str().unwrap()],
    );
    out.expect_code(0);
    let alerts = json_lines(&out.stdout);
    let mut got: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                s(a, &["rule", "id"]).to_string(),
                s(a, &["item", "title"]).to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "kursk".to_string(),
                "Kursk: talks on North Korea".to_string()
            ),
            (
                "kursk".to_string(),
                "Power restored in Kursk after storm".to_string()
            ),
            ("ru".to_string(), "Жители 🚀 Курска и Курск".to_string()),
        ],
        "«South Korea … north … Korea» must not match the phrase; «Kurskaya» is another word"
    );
    for a in &alerts {
        // Every contract key is there (extra keys would be extensions).
        let obj = a.as_object().expect("alert object");
        for k in [
            "id",
            "rule",
            "feed",
            "item",
            "matched",
            "snippet",
            "detected_at",
        ] {
            assert!(obj.contains_key(k), "alert lacks {k:?}: {a}");
        }
        assert_highlights(a);
    }
    let t1 = alerts
        .iter()
        .find(|a| s(a, &["item", "title"]) == "Kursk: talks on North Korea")
        .unwrap();
    assert_eq!(s(t1, &["rule", "severity"]), "critical");
    let m: Vec<&str> = t1["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(m[0], "Kursk", "first hit first: {m:?}");
    assert!(m.contains(&"North Korea"), "{m:?}");
    let t2 = alerts
        .iter()
        .find(|a| s(a, &["rule", "id"]) == "ru")
        .unwrap();
    let m2: Vec<String> = t2["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_lowercase())
        .collect();
    // Russian stemming: «Курска» and «Курск» are one word, both shown.
    assert_eq!(m2, ["курска", "курск"], "{m2:?}");
    assert!(!ws.state_dir().exists(), "match must not create state");
    assert!(!ws.alerts_path().exists(), "match must not write sinks");
}
