//! `wirewatch demo`: the README's first command, run for real.

use std::time::Duration;

use crate::util::*;

/// The demo runs the pipeline against its bundled server, prints alerts with
/// highlighted hits (English and Russian), never fails a poll, and exits 0
/// with a summary within its ~30 s.
#[test]
fn demo_shows_highlighted_alerts_and_exits() {
    let out = run_cli_within(&std::env::temp_dir(), Duration::from_secs(120), &["demo"]);
    out.expect_code(0);
    let text = &out.stdout;
    assert!(
        out.elapsed < Duration::from_secs(60),
        "demo took {:?}",
        out.elapsed
    );
    let summary = text
        .lines()
        .find(|l| l.starts_with("demo finished"))
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    assert!(summary.contains(" 0 failed"), "{summary}");
    // One alert per item, naming its rule(s).
    let is_alert = |l: &&str| l.contains("  rule ") || l.contains("  rules ");
    let alerts = text.lines().filter(is_alert).count();
    assert!(alerts >= 8, "only {alerts} alerts:\n{text}");
    assert!(
        text.lines().any(|l| l.contains("  rules ")),
        "an item matching several rules names them all in one alert:\n{text}"
    );
    // Not a terminal: highlights are [bracketed].
    assert!(
        text.contains("[Kursk]") || text.contains("[KURSK]"),
        "{text}"
    );
    assert!(text.contains("[Шойгу]"), "a Russian highlight:\n{text}");
    // Hard negatives never fire.
    for quiet in ["hockey", "Magnetic Anomaly", "seafood"] {
        assert!(
            !text.lines().any(|l| is_alert(&l) && l.contains(quiet)),
            "{quiet} story alerted:\n{text}"
        );
    }
}
