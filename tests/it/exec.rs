//! `type = "exec"`: a program per alert, the alert JSON on stdin, no shell.

use crate::server::{Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

#[test]
fn exec_sink_gets_the_alert_on_stdin_and_failures_are_retried() {
    let srv = TestServer::start();
    srv.route(
        "/wire.xml",
        Route::ok(
            RSS,
            rss(
                "Wire",
                &[entry(
                    "x1",
                    "Kursk $(touch pwned) `id`",
                    "Kursk; rm -rf / && echo hi",
                )],
            ),
        ),
    );
    let ws = Workspace::empty();
    // The hook fails while `fail` exists, then appends what it got.
    let hook = ws.write(
        "hook.sh",
        "#!/bin/sh\nif [ -e fail ]; then echo 'receiver busy' >&2; exit 75; fi\ncat >> got.jsonl\nprintf '%s\\n' \"$WIREWATCH_TITLE\" >> titles.txt\n",
    );
    std::process::Command::new("chmod")
        .args(["+x", hook.to_str().expect("path")])
        .status()
        .expect("chmod");
    ws.write("fail", "");
    let cfg = Config::new(KURSK_RULES)
        .feed("wire", &srv.url("/wire.xml"))
        .sink("id = \"hook\"\ntype = \"exec\"\ncommand = [\"./hook.sh\", \"--flag\"]\ntimeout = \"5s\"\nretry_initial = \"100ms\"");
    ws.write_config(&cfg);
    let out = ws.once_ok();
    assert!(
        out.stderr.contains("could not be delivered"),
        "{}",
        out.stderr
    );
    let listing = ws.cli("alerts", &["--sink", "hook"]);
    assert!(
        listing.stdout.contains("exited 75: receiver busy"),
        "{}",
        listing.stdout
    );

    std::fs::remove_file(ws.path().join("fail")).expect("rm fail");
    std::thread::sleep(std::time::Duration::from_millis(300));
    ws.once_ok();
    let got = read_alerts(&ws.path().join("got.jsonl"));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(s(&got[0], &["item", "title"]), "Kursk $(touch pwned) `id`");
    assert_eq!(s(&got[0], &["id"]), s(&ws.alerts()[0], &["id"]));
    let titles = std::fs::read_to_string(ws.path().join("titles.txt")).expect("titles");
    assert_eq!(titles, "Kursk $(touch pwned) `id`\n");
    assert!(
        !ws.path().join("pwned").exists(),
        "feed text reached a shell"
    );
    ws.once_ok();
    assert_eq!(
        read_alerts(&ws.path().join("got.jsonl")).len(),
        1,
        "delivered once"
    );
}

#[test]
fn exec_sink_config_errors() {
    let ws = Workspace::new(
        &Config::new(KURSK_RULES)
            .feed("wire", "http://127.0.0.1:9/x.xml")
            .sink("id = \"a\"\ntype = \"exec\"\ncommand = [\"wirewatch-no-such-program\"]")
            .sink("id = \"b\"\ntype = \"exec\"\ncommand = [\"./missing.sh\"]")
            .sink("id = \"c\"\ntype = \"exec\"\ncommand = []")
            .sink("id = \"d\"\ntype = \"exec\""),
    );
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    for want in [
        "program \"wirewatch-no-such-program\" is not in PATH",
        "no program at",
        "`command` must name a program",
        "an exec sink needs `command`",
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains("config.toml:") && l.contains(want)),
            "{want}:\n{}",
            out.stderr
        );
    }
}
