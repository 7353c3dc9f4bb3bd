//! The archive: `backtest`, `search` and `check`'s per-rule counts over
//! items polled by `once`, and pruning by `archive_max_items` and age.

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;
use std::time::Duration;

/// Six stories: one alerts for `KURSK_RULES` (the other Kursk one is
/// hockey), one mentions Orel.
fn stories() -> Vec<Entry> {
    vec![
        entry(
            "ru-demining",
            "Сапёры в Курской области",
            "Сапёры разминировали дороги под Курском. Работы продолжатся неделю.",
        ),
        entry(
            "kursk-bridge",
            "Kursk bridge reopens",
            "Engineers reopened the bridge in Kursk after repairs.",
        ),
        entry(
            "orel-train",
            "Orel station upgrade",
            "The station in Orel gets new platforms. Trains run as usual.",
        ),
        entry("weather", "Weather", "Rain over the plains tomorrow."),
        entry("markets", "Markets steady", "Stocks closed flat."),
        entry(
            "hockey",
            "Hockey in Kursk",
            "The home team won the Kursk derby.",
        ),
    ]
}

fn polled(cfg: Config) -> (TestServer, Workspace) {
    let srv = TestServer::start();
    srv.route("/wire.xml", Route::ok(RSS, rss("Test Wire", &stories())));
    let ws = Workspace::new(&cfg.feed("wire", &srv.url("/wire.xml")));
    ws.once_ok();
    (srv, ws)
}

const EDITED_RULES: &str = r#"
[[rule]]
id = "orel"
query = 'Orel OR Орёл'
severity = "high"

[[rule]]
id = "sappers"
query = 'сапёры NEAR/3 дороги'

[[rule]]
id = "dead"
query = 'Vladivostok'
"#;

/// An edited copy of the config (other rules file, same state directory)
/// is backtested over what `once` archived: every rule's matches with
/// highlighted snippets, the dead rule visible; nothing is sent.
#[test]
fn backtest_with_edited_rules_shows_matches_without_sending() {
    let (_srv, ws) = polled(Config::new(KURSK_RULES));
    let sent = std::fs::read(ws.alerts_path()).expect("alerts.jsonl");
    assert_eq!(ws.alerts().len(), 1, "the live rule alerted once");

    let edited = std::fs::read_to_string(ws.path().join("config.toml"))
        .unwrap()
        .replace("rules.toml", "rules-edit.toml");
    ws.write("config-edit.toml", edited);
    ws.write("rules-edit.toml", EDITED_RULES);
    let cfg = ws.path().join("config-edit.toml");
    let cfg = cfg.to_str().unwrap();

    let out = run_cli_in(ws.path(), &["backtest", "--config", cfg]);
    out.expect_code(0);
    let o = &out.stdout;
    assert!(o.contains("== rule orel (high): 1 of 6 item(s)"), "{o}");
    assert!(o.contains("Orel station upgrade"), "{o}");
    assert!(
        o.contains("The station in [Orel] gets new platforms."),
        "{o}"
    );
    assert!(
        o.contains("== rule sappers (normal): 1 of 6 item(s)"),
        "{o}"
    );
    assert!(
        o.contains("[Сапёры] разминировали [дороги] под Курском."),
        "{o}"
    );
    assert!(o.contains("== rule dead (normal): 0 of 6 item(s)"), "{o}");
    assert!(o.contains("nothing was sent"), "{o}");
    let summary: Vec<&str> = o.lines().filter(|l| l.contains("NO MATCH")).collect();
    assert_eq!(summary.len(), 1, "{o}");
    assert!(summary[0].trim_start().starts_with("dead"), "{o}");

    // --rule and --json: the alert as a sink would get it.
    let out = run_cli_in(
        ws.path(),
        &["backtest", "--config", cfg, "--rule", "orel", "--json"],
    );
    out.expect_code(0);
    let lines = json_lines(&out.stdout);
    let matches: Vec<_> = lines.iter().filter(|l| l["type"] == "match").collect();
    assert_eq!(matches.len(), 1, "{}", out.stdout);
    let alert = &matches[0]["alert"];
    assert_eq!(s(alert, &["rule", "id"]), "orel");
    assert_eq!(s(alert, &["feed", "id"]), "wire");
    assert_highlights(alert);
    let rules: Vec<_> = lines.iter().filter(|l| l["type"] == "rule").collect();
    assert_eq!(rules.len(), 1, "only the chosen rule");
    assert_eq!(rules[0]["matched"], 1);
    assert_eq!(rules[0]["items"], 6);

    // --since filters by first seen: every item came moments ago, so a
    // 1 h window holds them all and a 0 s window none.
    let out = run_cli_in(ws.path(), &["backtest", "--config", cfg, "--since", "1h"]);
    out.expect_code(0);
    assert!(out.stdout.contains("1 of 6 item(s)"), "{}", out.stdout);
    let out = run_cli_in(ws.path(), &["backtest", "--config", cfg, "--since", "0s"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("== rule orel (high): 0 of 0 item(s)"),
        "{}",
        out.stdout
    );

    let bad = run_cli_in(ws.path(), &["backtest", "--config", cfg, "--rule", "nope"]);
    assert_eq!(bad.code(), Some(1));
    assert!(
        bad.stderr.contains("unknown rule \"nope\""),
        "{}",
        bad.stderr
    );

    assert_eq!(
        std::fs::read(ws.alerts_path()).unwrap(),
        sent,
        "backtest sends nothing"
    );
    let queued = ws.cli("alerts", &["--json"]);
    queued.expect_code(0);
    assert!(
        queued.stdout.trim().is_empty(),
        "nothing queued: {}",
        queued.stdout
    );
}

/// `check` counts each rule's matches over the archive and warns about a
/// rule that matches nothing and one that matches most items; the exit
/// code stays 0.
#[test]
fn check_prints_per_rule_counts_and_flags_dead_and_broad_rules() {
    let rules = r#"
[[rule]]
id = "kursk"
any = ["Kursk"]

[[rule]]
id = "dead"
query = 'Vladivostok'

[[rule]]
id = "broad"
query = 'report'
"#;
    let srv = TestServer::start();
    let mut items = stories();
    for i in 0..20 {
        items.push(entry(
            &format!("r{i}"),
            &format!("Daily report {i}"),
            "A routine report.",
        ));
    }
    srv.route("/wire.xml", Route::ok(RSS, rss("Test Wire", &items)));
    let ws = Workspace::new(&Config::new(rules).feed("wire", &srv.url("/wire.xml")));

    // Before any poll: no state, no counts, no state dir created.
    let out = ws.cli("check", &[]);
    out.expect_code(0);
    assert!(!out.stdout.contains("archive:"), "{}", out.stdout);

    ws.once_ok();
    let out = ws.cli("check", &[]);
    out.expect_code(0);
    let o = &out.stdout;
    assert!(o.contains("archive: 26 item(s) first seen"), "{o}");
    let line = |id: &str| {
        o.lines()
            .find(|l| l.trim_start().starts_with(&format!("rule {id} ")) && l.contains('%'))
            .unwrap_or_else(|| panic!("no count line for {id}:\n{o}"))
            .to_string()
    };
    assert!(line("kursk").contains("     2 (7.7%)"), "{o}");
    assert!(line("dead").contains("NO MATCH"), "{o}");
    assert!(line("broad").contains("BROAD"), "{o}");
    assert!(!line("kursk").contains("BROAD"), "{o}");
    let warnings = out.stderr_lines_with("warning:");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("rule \"dead\" matches none of the 26 archived item(s)")),
        "{}",
        out.stderr
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("rule \"broad\" matches 20 of the 26")),
        "{}",
        out.stderr
    );
    assert!(
        warnings.iter().all(|w| w.contains("rules.toml: warning:")),
        "warnings name the rule file: {}",
        out.stderr
    );
}

/// `search` in the rule language: a Russian word form found by its stem,
/// NEAR, a prefix, `--feed`, `--json`; a bad query is an error with its
/// column and exit 2.
#[test]
fn search_finds_word_forms_and_near_and_rejects_bad_queries() {
    let (_srv, ws) = polled(Config::new(KURSK_RULES));

    let out = ws.cli("search", &["Курск"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("Сапёры в Курской области"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[Курской]") || out.stdout.contains("[Курском]"),
        "highlighted: {}",
        out.stdout
    );
    assert!(out.stderr.contains("1 result(s)"), "{}", out.stderr);

    let near = ws.cli("search", &["сапёры NEAR/3 дороги", "--json"]);
    near.expect_code(0);
    let found = json_lines(&near.stdout);
    assert_eq!(found.len(), 1, "{}", near.stdout);
    assert_eq!(s(&found[0], &["key"]), "urn:wirewatch-test:ru-demining");
    assert!(!found[0]["snippet"]["highlights"]
        .as_array()
        .unwrap()
        .is_empty());
    let far = ws.cli("search", &["сапёры NEAR/1 неделю", "--json"]);
    far.expect_code(0);
    assert!(
        far.stdout.trim().is_empty(),
        "too far apart: {}",
        far.stdout
    );

    // Newest first is by first seen then date; both Kursk stories.
    let kursk = ws.cli("search", &["Kursk -hockey", "--json"]);
    kursk.expect_code(0);
    let titles: Vec<String> = json_lines(&kursk.stdout)
        .iter()
        .map(|v| s(v, &["title"]).to_string())
        .collect();
    assert_eq!(titles, vec!["Kursk bridge reopens"], "{}", kursk.stdout);

    let prefix = ws.cli("search", &["engin*", "--feed", "wire", "--json"]);
    prefix.expect_code(0);
    assert_eq!(json_lines(&prefix.stdout).len(), 1, "{}", prefix.stdout);
    let other = ws.cli("search", &["engin*", "--feed", "other"]);
    other.expect_code(0);
    assert!(other.stdout.trim().is_empty(), "{}", other.stdout);

    let bad = ws.cli("search", &["Курск AND (сапёры"]);
    bad.expect_code(2);
    let first = bad.stderr.lines().next().unwrap_or("");
    assert!(first.starts_with("query:18: "), "{}", bad.stderr);
    assert!(
        bad.stderr.lines().nth(2).is_some_and(|l| l.ends_with('^')),
        "a caret under the column: {}",
        bad.stderr
    );
}

/// `archive_max_items` keeps the newest items; items first seen longer
/// than `archive_days` ago go at the next pass; `archive_days = 0` keeps
/// nothing.
#[test]
fn archive_is_pruned_by_count_and_age_and_can_be_off() {
    let (_srv, ws) = polled(Config::new(KURSK_RULES).set("archive_max_items", "4"));
    let count = |ws: &Workspace| -> u64 {
        let out = ws.cli("backtest", &["--json"]);
        out.expect_code(0);
        json_lines(&out.stdout)
            .iter()
            .find(|l| l["type"] == "rule")
            .and_then(|l| l["items"].as_u64())
            .unwrap_or_else(|| panic!("{}", out.stdout))
    };
    assert_eq!(count(&ws), 4);

    // Age the rows by eight days (the state file is ours to edit in a
    // test), then let the next pass prune them.
    let db = ws.state_dir().join("wirewatch.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let eight_days_ms = 8 * 86_400_000i64;
        c.execute(
            "UPDATE archive SET first_seen = first_seen - ?1",
            [eight_days_ms],
        )
        .unwrap();
    }
    ws.once_ok();
    assert_eq!(count(&ws), 0, "older than archive_days (7)");

    let (_srv2, off) = polled(Config::new(KURSK_RULES).set("archive_days", "0"));
    assert_eq!(off.alerts().len(), 1, "alerts still flow");
    assert_eq!(count(&off), 0, "archive_days = 0 archives nothing");
}

/// `(rows waiting for the search index, rows the index finds for `q`)`,
/// read from the state file.
fn index_state(ws: &Workspace, q: &str) -> (i64, i64) {
    let c = rusqlite::Connection::open(ws.state_dir().join("wirewatch.db")).unwrap();
    let waiting = c
        .query_row("SELECT COUNT(*) FROM archive_unindexed", [], |r| r.get(0))
        .unwrap();
    let found = c
        .query_row(
            "SELECT COUNT(*) FROM archive_fts WHERE archive_fts MATCH ?1",
            [q],
            |r| r.get(0),
        )
        .unwrap();
    (waiting, found)
}

/// The search index is built behind the polls: `once` leaves nothing
/// waiting, the daemon catches up while its fetches are idle, and a
/// search over items still waiting finds them all the same.
#[test]
fn search_index_catches_up_after_once_and_in_the_daemon() {
    let (_srv, ws) = polled(Config::new(KURSK_RULES));
    assert_eq!(
        index_state(&ws, "stems:\"kursk\""),
        (0, 2),
        "once indexed what it archived (both Kursk stories)"
    );

    // Items waiting for the index (as after a crash between the poll's
    // commit and the indexing) are still found.
    {
        let c = rusqlite::Connection::open(ws.state_dir().join("wirewatch.db")).unwrap();
        c.execute_batch(
            "INSERT INTO archive_unindexed (id, words, stems)
                 SELECT id, 'kursk', 'kursk' FROM archive WHERE item_key = 'urn:wirewatch-test:kursk-bridge';
             DELETE FROM archive_fts WHERE rowid IN
                 (SELECT id FROM archive WHERE item_key = 'urn:wirewatch-test:kursk-bridge');",
        )
        .unwrap();
    }
    assert_eq!(index_state(&ws, "stems:\"kursk\""), (1, 1));
    let status = ws.cli("status", &[]);
    status.expect_code(0);
    assert!(
        status
            .stdout
            .contains("; 1 waiting for the search index (searched all the same)"),
        "{}",
        status.stdout
    );
    let out = ws.cli("search", &["Kursk -hockey", "--json"]);
    out.expect_code(0);
    assert_eq!(json_lines(&out.stdout).len(), 1, "{}", out.stdout);

    // The daemon indexes it (its first poll finds nothing new).
    let daemon = ws.spawn_daemon();
    assert!(
        wait_until(Duration::from_secs(30), || index_state(
            &ws,
            "stems:\"kursk\""
        ) == (0, 2)),
        "{}",
        daemon.logs()
    );
    assert!(
        daemon.logs().contains("archive search index updated"),
        "{}",
        daemon.logs()
    );
}
