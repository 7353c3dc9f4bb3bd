//! `wirewatch feeds import|export`: OPML in and out, the config file kept
//! as written.

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

#[test]
fn import_appends_checked_feeds_and_export_lists_them() {
    let srv = TestServer::start();
    srv.route("/old.xml", Route::ok(RSS, rss("Old", &[])));
    srv.route("/good.xml", Route::ok(RSS, rss("Good wire", &[])));
    srv.route("/gone.xml", Route::status(404));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("old", &srv.url("/old.xml")));
    let original = format!(
        "# My desk's config: keep this comment\n{}",
        std::fs::read_to_string(ws.path().join("config.toml")).expect("config")
    );
    ws.write("config.toml", &original);
    let opml = format!(
        r#"<?xml version="1.0"?>
<opml version="2.0"><head><title>subs</title></head><body>
  <outline text="Wires">
    <outline type="rss" text="Old wire" xmlUrl="{old}"/>
    <outline type="rss" text="Good &amp; Co wire" xmlUrl="{good}"/>
    <outline type="rss" text="Good again" xmlUrl="{good}"/>
    <outline type="rss" text="Gone wire" xmlUrl="{gone}"/>
    <outline type="rss" text="Evil" xmlUrl="javascript:alert(1)"/>
  </outline>
</body></opml>
"#,
        old = srv.url("/old.xml"),
        good = srv.url("/good.xml"),
        gone = srv.url("/gone.xml"),
    );
    ws.write("subs.opml", &opml);

    let dry = ws.cli("feeds", &["import", "subs.opml", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout.contains("2 feed(s) would be added, 3 skipped"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("config.toml")).expect("config"),
        original,
        "a dry run changes nothing"
    );

    let out = ws.cli("feeds", &["import", "subs.opml", "--check"]);
    out.expect_code(0);
    assert!(
        out.stderr.contains("already configured as feed \"old\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not an http(s) URL"), "{}", out.stderr);
    assert!(
        out.stderr.contains("subs.opml:6: skipped") && out.stderr.contains("listed before, line 5"),
        "skips name their line:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("gone-wire") && out.stderr.contains("left out"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("checking feeds: 2/2"), "{}", out.stderr);
    assert!(out.stdout.contains("added 1 feed(s)"), "{}", out.stdout);
    let text = std::fs::read_to_string(ws.path().join("config.toml")).expect("config");
    assert!(
        text.starts_with("# My desk's config: keep this comment\n"),
        "{text}"
    );
    assert!(text.contains("# Imported from subs.opml on"), "{text}");
    assert!(text.contains("id = \"good-co-wire\""), "{text}");
    assert!(text.contains("title = \"Good & Co wire\""), "{text}");
    ws.cli("check", &[]).expect_code(0);

    // Without --check the failing feed goes in too; nothing is added twice.
    let again = ws.cli("feeds", &["import", "subs.opml"]);
    again.expect_code(0);
    assert!(again.stdout.contains("added 1 feed(s)"), "{}", again.stdout);
    let third = ws.cli("feeds", &["import", "subs.opml"]);
    assert!(
        third.stdout.contains("nothing to import"),
        "{}",
        third.stdout
    );

    let export = ws.cli("feeds", &["export"]);
    export.expect_code(0);
    assert!(export.stdout.starts_with("<?xml"), "{}", export.stdout);
    for path in ["/old.xml", "/good.xml", "/gone.xml"] {
        assert!(
            export.stdout.contains(&srv.url(path)),
            "{path}:\n{}",
            export.stdout
        );
    }
    assert!(
        export.stdout.contains("title=\"Good &amp; Co wire\""),
        "{}",
        export.stdout
    );
    // The export imports cleanly into a fresh config.
    let fresh = Workspace::new(&Config::new(KURSK_RULES).feed("x", &srv.url("/old.xml")));
    fresh.write("export.opml", &export.stdout);
    let re = fresh.cli("feeds", &["import", "export.opml"]);
    re.expect_code(0);
    assert!(
        re.stdout.contains("added 2 feed(s)"),
        "{}\n{}",
        re.stdout,
        re.stderr
    );

    ws.write("bad.opml", "<opml><body><outline text=\"a\"></body></opml>");
    let bad = ws.cli("feeds", &["import", "bad.opml"]);
    bad.expect_code(1);
    assert!(
        bad.stderr.contains("bad.opml: line 1: not valid XML"),
        "{}",
        bad.stderr
    );
}
