//! Test 9: `wirewatch check` and its `FILE:LINE:COL: message` errors.

use crate::util::*;

/// Copies `tests/fixtures/it/check/<set>/{config,rules}.toml` into a fresh
/// workspace.
fn copy_set(set: &str) -> Workspace {
    let ws = Workspace::empty();
    for name in ["config.toml", "rules.toml"] {
        let text = std::fs::read_to_string(fixture_path(&format!("check/{set}/{name}")))
            .expect("check fixture");
        ws.write(name, text);
    }
    ws
}

/// One `FILE:LINE:COL: message` line.
#[derive(Debug)]
struct Diag {
    file: String,
    line: u32,
    col: u32,
    msg: String,
}

/// Every stderr line shaped `FILE:LINE:COL: message`.
fn diags(stderr: &str) -> Vec<Diag> {
    stderr
        .lines()
        .filter_map(|l| {
            let (loc, msg) = l.split_once(": ")?;
            let mut parts = loc.rsplitn(3, ':');
            let col = parts.next()?.trim().parse().ok()?;
            let line = parts.next()?.trim().parse().ok()?;
            let file = parts.next()?.to_string();
            Some(Diag {
                file,
                line,
                col,
                msg: msg.to_string(),
            })
        })
        .collect()
}

#[test]
fn check_valid_config_exits_0() {
    let ws = copy_set("valid");
    let out = ws.cli("check", &[]);
    out.expect_code(0);
    assert!(
        !out.stdout.trim().is_empty(),
        "expected a summary on stdout"
    );
    assert!(
        diags(&out.stderr).is_empty(),
        "no FILE:LINE:COL errors expected:\n{}",
        out.stderr
    );
    assert!(
        !ws.state_dir().exists(),
        "check must not create the state dir"
    );
}

/// Every error is listed with the right position. Positions come from
/// `tests/fixtures/it/check/bad/*.toml`; see the table below.
#[test]
fn check_lists_every_error_with_position() {
    let ws = copy_set("bad");
    let config = ws.config_path();
    let rules = format!("{}/rules.toml", ws.path().to_str().unwrap());
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    let found = diags(&out.stderr);

    // (file, line, accepted columns, words the message must contain, what)
    type Expected<'a> = (&'a str, u32, Vec<u32>, Vec<&'a str>, &'a str);
    let expected: Vec<Expected> = vec![
        // fetch_timeout = "3 parsecs": the value starts at column 17.
        (&config, 6, vec![17], vec![], "bad duration"),
        // colour = "blue": unknown key at column 1.
        (
            &config,
            9,
            vec![1],
            vec!["colour"],
            "unknown key in [daemon]",
        ),
        // `  refresh = "5m"` in [[feed]]: unknown key, indented to column 3.
        (
            &config,
            17,
            vec![3],
            vec!["refresh"],
            "unknown key in [[feed]]",
        ),
        // severty = "high" in a rule: unknown key.
        (
            &rules,
            9,
            vec![1],
            vec!["severty"],
            "unknown key in [[rule]]",
        ),
        // [[rule]] "empty" has neither any nor all: the header line.
        (&rules, 11, vec![1], vec![], "rule without any/all"),
        // sinks = ["out", "nowhere"]: the array starts at 9, the bad
        // element at 17; either is "the start of the value".
        (&rules, 18, vec![9, 17], vec!["nowhere"], "unknown sink"),
        // Second id = "ok_rule": the value at 6 (or the key at 1).
        (&rules, 21, vec![6, 1], vec!["ok_rule"], "duplicate rule id"),
    ];
    let mut missing = Vec::new();
    for (file, line, cols, words, what) in &expected {
        let hit = found.iter().any(|d| {
            d.file == *file
                && d.line == *line
                && cols.contains(&d.col)
                && words.iter().all(|w| d.msg.contains(w))
        });
        if !hit {
            missing.push(format!("{what}: {file}:{line}:{cols:?} {words:?}"));
        }
    }
    assert!(
        missing.is_empty(),
        "errors not reported (or at the wrong place):\n  {}\n--- stderr ---\n{}",
        missing.join("\n  "),
        out.stderr
    );
    assert_eq!(
        found.len(),
        expected.len(),
        "exactly one line per error expected; got {found:#?}"
    );
}

/// A missing required key points at its table header, column 1.
#[test]
fn check_missing_required_keys_point_at_header() {
    let ws = Workspace::empty();
    let text = "\
[daemon]
poll_interval = \"1s\"
max_concurrent_fetches = 4
state_dir = \"state\"
rules = [\"rules.toml\"]
fetch_timeout = \"3s\"
connect_timeout = \"2s\"
max_feed_bytes = \"256KiB\"
max_items_per_feed = 500
max_redirects = 5
snippet_max_chars = 300

[[feed]]
id = \"nourl\"

[[sink]]
id = \"out\"
path = \"alerts.jsonl\"
";
    ws.write("config.toml", text);
    ws.write("rules.toml", "[[rule]]\nid = \"r\"\nany = [\"Kursk\"]\n");
    let out = ws.cli("check", &[]);
    out.expect_code(2);
    let found = diags(&out.stderr);
    let config = ws.config_path();
    for (line, what) in [(13, "[[feed]] without url"), (16, "[[sink]] without type")] {
        assert!(
            found
                .iter()
                .any(|d| d.file == config && d.line == line && d.col == 1),
            "{what}: expected {config}:{line}:1\n--- stderr ---\n{}",
            out.stderr
        );
    }
}

/// The shipped `config/wirewatch.toml` loads, and so does every sink
/// example (and the `[http]` one) it shows once uncommented (with a secret,
/// a password and a program that exist here): the reference cannot rot.
#[test]
fn shipped_config_and_its_sink_examples_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let ws = Workspace::empty();
    let main = std::fs::read_to_string(root.join("wirewatch.toml")).expect("shipped config");
    let rules = std::fs::read_to_string(root.join("rules.toml")).expect("shipped rules");
    ws.write("rules.toml", &rules);
    ws.write("smtp.password", "secret\n");
    // The system service's paths do not exist here.
    let main = main.replace("/var/lib/wirewatch/alerts.jsonl", "alerts.jsonl");
    ws.write("wirewatch.toml", &main);
    let cfg = ws.path().join("wirewatch.toml");
    let cfg = cfg.to_str().expect("path");
    let out = run_cli_in(ws.path(), &["check", "--config", cfg]);
    out.expect_code(0);

    let mut examples = String::new();
    for line in main.lines() {
        let uncommented = line.strip_prefix("# ").filter(|l| {
            l.starts_with("[[sink]]") || *l == "[http]" || {
                let key = l.split(" = ").next().unwrap_or("");
                !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    && l.contains(" = ")
                    && !l.contains("\": ")
            }
        });
        examples.push_str(uncommented.unwrap_or(line));
        examples.push('\n');
    }
    let examples = examples
        .replace(
            "/run/credentials/wirewatch.service/webhook-secret",
            "webhook.secret",
        )
        .replace("/usr/local/bin/on-alert", "/bin/sh");
    ws.write("webhook.secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
    ws.write("examples.toml", &examples);
    let ex = ws.path().join("examples.toml");
    let out = run_cli_in(
        ws.path(),
        &["check", "--config", ex.to_str().expect("path")],
    );
    out.expect_code(0);
    for kind in ["stdout", "jsonl", "webhook", "exec", "desktop", "email"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with("sink ") && l.trim_end().ends_with(kind)),
            "no {kind} sink example in config/wirewatch.toml:\n{}",
            out.stdout
        );
    }
}
