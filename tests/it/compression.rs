//! Compressed responses (gzip, brotli, zstd) are decoded; non-http redirect
//! targets are refused; the config is found through `$WIREWATCH_CONFIG` and
//! the XDG location when `--config` is not given.

use std::io::Write;
use std::time::Duration;

use crate::server::{gzip, Reply, Route, TestServer};
use crate::util::*;
use crate::KURSK_RULES;

type Encoder = fn(&[u8]) -> Vec<u8>;

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(data).expect("brotli write");
    }
    out
}

/// The same feed served with each content coding alerts once per feed,
/// with the text decoded.
#[test]
fn gzip_brotli_and_zstd_bodies_are_decoded() {
    let srv = TestServer::start();
    let mut cfg = Config::new(KURSK_RULES);
    let codings: [(&str, Encoder); 3] = [
        ("gzip", gzip),
        ("br", brotli),
        ("zstd", |d| zstd::encode_all(d, 3).expect("zstd")),
    ];
    for (coding, encode) in codings {
        let body = rss(
            "Packed wire",
            &[entry(
                &format!("packed-{coding}"),
                &format!("Kursk bulletin ({coding})"),
                "Officials in the Kursk region reported calm overnight.",
            )],
        );
        let packed = encode(body.as_bytes());
        assert_ne!(packed, body.as_bytes());
        srv.route(
            &format!("/{coding}.xml"),
            Route::Fixed(Reply::ok(RSS, packed).header("Content-Encoding", coding)),
        );
        cfg = cfg.feed(
            &format!("packed-{coding}"),
            &srv.url(&format!("/{coding}.xml")),
        );
    }
    let ws = Workspace::new(&cfg);
    ws.once_ok();
    let mut titles = titles(&ws.alerts());
    titles.sort();
    assert_eq!(
        titles,
        [
            "Kursk bulletin (br)",
            "Kursk bulletin (gzip)",
            "Kursk bulletin (zstd)"
        ]
    );
    for r in srv.requests() {
        let accept = r.header("accept-encoding").unwrap_or("");
        for coding in ["gzip", "br", "zstd"] {
            assert!(
                accept.contains(coding),
                "Accept-Encoding {accept:?} lacks {coding}"
            );
        }
    }
}

/// A redirect to a file: URL is refused: the feed fails, nothing local is
/// read, the other feed alerts.
#[test]
fn redirect_to_a_local_file_is_refused() {
    let srv = TestServer::start();
    let ws = Workspace::empty();
    let secret = ws.write(
        "secret.xml",
        rss("Local", &[entry("s1", "Kursk secret", "Local file.")]),
    );
    srv.route(
        "/moved.xml",
        Route::Fixed(Reply::redirect(
            302,
            &format!("file://{}", secret.display()),
        )),
    );
    srv.route(
        "/good.xml",
        Route::ok(
            RSS,
            rss("Good", &[entry("g1", "Kursk good story", "Fine.")]),
        ),
    );
    ws.write_config(
        &Config::new(KURSK_RULES)
            .feed("moved", &srv.url("/moved.xml"))
            .feed("good", &srv.url("/good.xml")),
    );
    let out = ws.cli_within(Duration::from_secs(30), "once", &[]);
    out.expect_code(0);
    assert_eq!(titles(&ws.alerts()), ["Kursk good story"]);
    assert!(
        !out.stderr_lines_with("feed moved").is_empty(),
        "{}",
        out.stderr
    );
}

/// Without `--config`: `$WIREWATCH_CONFIG` first, then
/// `$XDG_CONFIG_HOME/wirewatch/wirewatch.toml`.
#[test]
fn config_is_found_through_env_and_xdg() {
    let srv = TestServer::start();
    srv.route("/wire.xml", Route::ok(RSS, rss("Wire", &[])));
    let ws = Workspace::new(&Config::new(KURSK_RULES).feed("wire", &srv.url("/wire.xml")));

    let out = wait_with_timeout(
        command(ws.path(), &["check"])
            .env("WIREWATCH_CONFIG", ws.config_path())
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .spawn()
            .expect("spawn"),
        Duration::from_secs(30),
        "check via WIREWATCH_CONFIG",
    );
    out.expect_code(0);
    assert!(out.stdout.contains(&ws.config_path()), "{}", out.stdout);

    let xdg = tempfile::tempdir().expect("xdg dir");
    let dir = xdg.path().join("wirewatch");
    std::fs::create_dir_all(&dir).expect("xdg wirewatch dir");
    std::fs::copy(ws.config_path(), dir.join("wirewatch.toml")).expect("copy config");
    std::fs::copy(ws.path().join("rules.toml"), dir.join("rules.toml")).expect("copy rules");
    let out = wait_with_timeout(
        command(ws.path(), &["check"])
            .env("XDG_CONFIG_HOME", xdg.path())
            .spawn()
            .expect("spawn"),
        Duration::from_secs(30),
        "check via XDG_CONFIG_HOME",
    );
    out.expect_code(0);
    assert!(
        out.stdout.contains("wirewatch/wirewatch.toml: OK"),
        "{}",
        out.stdout
    );

    // $WIREWATCH_CONFIG naming a missing file is an error, not a fallback.
    let out = wait_with_timeout(
        command(ws.path(), &["check"])
            .env("WIREWATCH_CONFIG", "/nonexistent/wirewatch.toml")
            .env("XDG_CONFIG_HOME", xdg.path())
            .spawn()
            .expect("spawn"),
        Duration::from_secs(30),
        "check via a missing WIREWATCH_CONFIG",
    );
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains("/nonexistent/wirewatch.toml"),
        "{}",
        out.stderr
    );
}
