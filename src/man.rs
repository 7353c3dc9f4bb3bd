//! Manual pages generated from the clap command line (`wirewatch man --out
//! DIR`, a hidden subcommand used by `scripts/package-deb.sh`): one page per
//! command, `wirewatch.1` for the top level and `wirewatch-SUB.1` (and
//! `wirewatch-SUB-SUBSUB.1`) for each visible subcommand, so the pages say
//! exactly what `--help` says. The top page adds the sections `--help` has
//! no room for: exit status, environment, files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap_mangen::roff::{bold, italic, roman, Roff};

/// The section every page is filed in (user commands).
const SECTION: &str = "1";

/// Writes every page into `dir` (created if missing) and returns their
/// paths, the top-level page first.
pub fn write_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in pages(cmd)? {
        let path = dir.join(format!("{name}.{SECTION}"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Every page as (name without section, roff text), the top-level page
/// first, then depth first in declaration order.
pub fn pages(cmd: clap::Command) -> anyhow::Result<Vec<(String, String)>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Sets display names ("wirewatch-alerts-list") and propagates global
    // arguments to subcommands.
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, None, &mut out)?;
    Ok(out)
}

fn collect(
    cmd: &clap::Command,
    parent: Option<&str>,
    out: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    let name = display_name(cmd).to_owned();
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section(SECTION)
        // Subcommands have no version of their own: every page names the
        // program's.
        .source(concat!("wirewatch ", env!("CARGO_PKG_VERSION")))
        .manual("wirewatch manual");
    let mut text = Vec::new();
    man.render(&mut text)
        .with_context(|| format!("rendering the page {name}"))?;
    let mut text = String::from_utf8(text).context("a generated page is not UTF-8")?;
    let children: Vec<&clap::Command> = visible_subcommands(cmd).collect();
    let extra = match parent {
        None => top_sections(&children),
        Some(parent) => see_also(parent, &children),
    };
    text.push_str(&without_preamble(&extra));
    out.push((name.clone(), text));
    for child in children {
        collect(child, Some(&name), out)?;
    }
    Ok(())
}

/// The subcommands that get a page and a line in their parent's page.
pub fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

fn display_name(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// Roff text of `extra` without the preamble that every rendering starts
/// with: the page it is appended to already has it.
fn without_preamble(extra: &Roff) -> String {
    let preamble = Roff::default().render();
    let text = extra.render();
    match text.strip_prefix(&preamble) {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

fn page_ref(name: &str) -> String {
    format!("{name}({SECTION})")
}

/// A `.TP` list item: a tag line, then its description.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

fn see_also(parent: &str, children: &[&clap::Command]) -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["SEE ALSO"]);
    let mut refs = vec![page_ref(parent)];
    if parent != "wirewatch" {
        refs.push(page_ref("wirewatch"));
    }
    refs.extend(children.iter().map(|c| page_ref(display_name(c))));
    roff.text([roman(refs.join(", "))]);
    roff
}

/// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO of `wirewatch(1)`.
fn top_sections(children: &[&clap::Command]) -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["EXIT STATUS"]);
    item(&mut roff, "0", "Success.");
    item(
        &mut roff,
        "1",
        "A runtime failure (for once --strict: a feed failed).",
    );
    item(
        &mut roff,
        "2",
        "The configuration has errors; each is printed as FILE:LINE:COL: message.",
    );

    roff.control("SH", ["ENVIRONMENT"]);
    item(
        &mut roff,
        "WIREWATCH_CONFIG",
        "The main config file when --config is not given.",
    );
    item(
        &mut roff,
        "XDG_CONFIG_HOME",
        "Without --config and WIREWATCH_CONFIG, the config is looked for in \
         $XDG_CONFIG_HOME/wirewatch/wirewatch.toml (default ~/.config), then in \
         /etc/wirewatch/wirewatch.toml.",
    );
    item(
        &mut roff,
        "STATE_DIRECTORY, XDG_STATE_HOME",
        "Where the state database goes unless [daemon] state_dir says otherwise: \
         $STATE_DIRECTORY (set by systemd), else $XDG_STATE_HOME/wirewatch, else \
         ~/.local/state/wirewatch.",
    );
    item(
        &mut roff,
        "WIREWATCH_LOG, RUST_LOG",
        "Log filter (info, debug, wirewatch=debug,reqwest=warn). Logs go to standard error; \
         under systemd in the journal format (a priority prefix, no timestamp).",
    );
    item(
        &mut roff,
        "NO_COLOR",
        "When set, the stdout sink prints no colours.",
    );

    roff.control("SH", ["FILES"]);
    item(
        &mut roff,
        "/etc/wirewatch/wirewatch.toml",
        "The system-wide config; every key is explained in its comments.",
    );
    item(
        &mut roff,
        "/etc/wirewatch/rules.toml",
        "The watch rules it names.",
    );
    item(
        &mut roff,
        "/etc/wirewatch/credentials/",
        "Secrets passed to the system service with LoadCredential= (mode 0600).",
    );
    item(
        &mut roff,
        "~/.config/wirewatch/wirewatch.toml",
        "The per-user config (the user unit reads it).",
    );
    item(
        &mut roff,
        "/var/lib/wirewatch/wirewatch.db",
        "The state database of the system service (seen items, the outbox, feed health).",
    );
    item(
        &mut roff,
        "~/.local/state/wirewatch/wirewatch.db",
        "The state database of a per-user run.",
    );
    item(
        &mut roff,
        "/usr/lib/systemd/system/wirewatch.service",
        "The hardened system unit (DynamicUser, config in /etc/wirewatch).",
    );
    item(
        &mut roff,
        "/usr/lib/systemd/user/wirewatch.service",
        "The user unit (systemctl --user), needed for desktop notifications.",
    );
    item(
        &mut roff,
        "/usr/share/doc/wirewatch/",
        "The README, the rule language (rules.md) and the sink references.",
    );

    roff.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = children.iter().map(|c| page_ref(display_name(c))).collect();
    refs.extend(["systemctl(1)", "journalctl(1)"].map(String::from));
    roff.text([roman(refs.join(", "))]);
    roff.control("PP", []);
    roff.text([
        roman("The rule language: "),
        italic("/usr/share/doc/wirewatch/rules.md"),
        roman("."),
    ]);
    roff
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// Every visible command as (display name, about), depth first.
    fn commands(cmd: &clap::Command, out: &mut Vec<(String, Option<String>)>) {
        out.push((
            display_name(cmd).to_owned(),
            cmd.get_about().map(|a| a.to_string()),
        ));
        for child in visible_subcommands(cmd) {
            commands(child, out);
        }
    }

    /// How `text` reads once roff-escaped, as it appears in a page.
    fn escaped(text: &str) -> String {
        let mut roff = Roff::default();
        roff.text([roman(text)]);
        without_preamble(&roff).trim_end().to_owned()
    }

    #[test]
    fn a_page_for_every_command_each_documented() {
        let dir = tempfile::tempdir().expect("temp dir");
        let written = write_pages(crate::Cli::command(), dir.path()).expect("pages written");

        let mut cmd = crate::Cli::command();
        cmd.build();
        let mut all = Vec::new();
        commands(&cmd, &mut all);
        // The commands the README documents: one that loses its page fails
        // here (a new one is covered by the loop below).
        for expected in [
            "run",
            "once",
            "check",
            "parse",
            "match",
            "status",
            "alerts",
            "alerts-list",
            "alerts-retry",
            "alerts-test",
            "feeds",
            "feeds-import",
            "feeds-export",
            "demo",
        ] {
            let name = format!("wirewatch-{expected}");
            assert!(
                all.iter().any(|(n, _)| *n == name),
                "{name} missing: {all:?}"
            );
        }
        assert_eq!(
            written.len(),
            all.len(),
            "one page per command: {written:?} vs {all:?}"
        );
        assert!(written[0].ends_with("wirewatch.1"), "{written:?}");

        let top = std::fs::read_to_string(dir.path().join("wirewatch.1")).expect("top page");
        for (name, about) in &all {
            let about = about
                .as_deref()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| panic!("`{name}` has no doc comment (about) for its page"));
            let path = dir.path().join(format!("{name}.1"));
            let page = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("no page {}: {e}", path.display()));
            assert!(
                page.starts_with(&Roff::default().render()),
                "{name}: not a roff page"
            );
            assert!(
                page.contains(&format!(".TH {} 1", name.to_uppercase())),
                "{name}: no title line"
            );
            let first_line = about.lines().next().unwrap_or_default();
            assert!(
                page.contains(&escaped(first_line)),
                "{name}: the page lacks its description {first_line:?}"
            );
            if name != "wirewatch" {
                // The top page lists it (direct children) or names its parent's page.
                let parent = &name[..name.rfind('-').unwrap_or(0)];
                assert!(
                    top.contains(&escaped(&page_ref(name)))
                        || top.contains(&escaped(&page_ref(parent))),
                    "wirewatch.1 does not lead to {name}"
                );
                assert!(
                    page.contains(".SH \"SEE ALSO\""),
                    "{name}: no SEE ALSO section"
                );
            }
        }
        for section in ["SUBCOMMANDS", "\"EXIT STATUS\"", "ENVIRONMENT", "FILES"] {
            assert!(
                top.contains(&format!(".SH {section}")),
                "wirewatch.1 lacks {section}"
            );
        }
    }

    #[test]
    fn every_option_is_on_its_page() {
        let mut cmd = crate::Cli::command();
        cmd.build();
        let pages: std::collections::HashMap<String, String> = pages(crate::Cli::command())
            .expect("pages")
            .into_iter()
            .collect();
        let mut stack = vec![&cmd];
        while let Some(c) = stack.pop() {
            let page = &pages[display_name(c)];
            for arg in c.get_arguments().filter(|a| !a.is_hide_set()) {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    !help.trim().is_empty(),
                    "{}: argument {} has no doc comment",
                    display_name(c),
                    arg.get_id()
                );
                if let Some(long) = arg.get_long() {
                    assert!(
                        page.contains(&escaped(&format!("--{long}"))),
                        "{}: --{long} missing",
                        display_name(c)
                    );
                }
            }
            stack.extend(visible_subcommands(c));
        }
    }

    #[test]
    fn the_hidden_man_command_has_no_page() {
        let names: Vec<String> = pages(crate::Cli::command())
            .expect("pages")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(names.iter().all(|n| n != "wirewatch-man"), "{names:?}");
        assert!(names.iter().all(|n| !n.ends_with("-help")), "{names:?}");
    }
}
