//! `wirewatch man --out DIR`: the hidden command `scripts/package-deb.sh`
//! runs to put the manual pages into the Debian package.

use crate::util::*;

#[test]
fn man_writes_a_page_per_command_and_stays_hidden() {
    let ws = Workspace::empty();
    let out_dir = ws.path().join("pages/man1");
    let out_arg = out_dir.to_str().expect("utf-8 temp path");
    let out = run_cli_in(ws.path(), &["man", "--out", out_arg]);
    out.expect_code(0);

    let listed: Vec<&str> = out.stdout.lines().collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("the pages directory was created")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    assert_eq!(
        listed.len(),
        on_disk.len(),
        "stdout lists every page written"
    );
    for name in [
        "wirewatch.1",
        "wirewatch-run.1",
        "wirewatch-once.1",
        "wirewatch-alerts-retry.1",
        "wirewatch-feeds-import.1",
    ] {
        assert!(
            on_disk.iter().any(|n| n == name),
            "{name} not in {on_disk:?}"
        );
    }
    assert!(
        !on_disk
            .iter()
            .any(|n| n.contains("-man.") || n.contains("-help.")),
        "hidden or help commands got a page: {on_disk:?}"
    );
    let top = std::fs::read_to_string(out_dir.join("wirewatch.1")).expect("top page");
    assert!(top.contains(".TH WIREWATCH 1"), "{top}");
    assert!(top.contains("wirewatch\\-run(1)"), "{top}");

    // Hidden from --help: it is for packaging, not for users.
    let help = run_cli_in(ws.path(), &["--help"]);
    help.expect_code(0);
    assert!(
        !help
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("man ")),
        "{}",
        help.stdout
    );
}
