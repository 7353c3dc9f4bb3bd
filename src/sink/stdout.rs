//! `type = "stdout"`: a human-readable alert, hits highlighted in colour
//! when stdout is a terminal (or `color = "always"`).

use std::io::{IsTerminal, Write};

use async_trait::async_trait;

use super::{Sink, SinkError};
use crate::config::ColorMode;
use crate::model::{Alert, Snippet};

pub struct StdoutSink {
    id: String,
    color: bool,
}

impl StdoutSink {
    pub fn new(id: &str, mode: ColorMode) -> Self {
        let color = match mode {
            ColorMode::Always => true,
            ColorMode::Never => false,
            ColorMode::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        StdoutSink {
            id: id.to_string(),
            color,
        }
    }
}

#[async_trait]
impl Sink for StdoutSink {
    fn id(&self) -> &str {
        &self.id
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError> {
        let text = render_alert(alert, self.color);
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| SinkError::transient(format!("cannot write to stdout: {e}")))
    }
}

const BOLD: &str = "\x1b[1m";
const HIT: &str = "\x1b[1;33m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[1;31m";
const RESET: &str = "\x1b[0m";

/// Feed text must not steer the terminal: drop control characters.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// The snippet with highlights as ANSI colour, or as `[brackets]` without.
/// Control characters from the feed are dropped (newlines become spaces)
/// while walking, so offsets stay right and feed text never steers the
/// terminal.
pub fn highlight(snippet: &Snippet, color: bool) -> String {
    let (open, close) = if color { (HIT, RESET) } else { ("[", "]") };
    let mut out = String::with_capacity(snippet.text.len() + 16);
    for (hit, text) in super::snippet_runs(snippet) {
        if hit {
            out.push_str(open);
            out.push_str(&text);
            out.push_str(close);
        } else {
            out.push_str(&text);
        }
    }
    out
}

/// When the item was published, as the text sinks show it.
pub(super) fn published(alert: &Alert) -> String {
    alert
        .item
        .published
        .map(|p| p.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "undated".into())
}

/// The multi-line terminal rendering of one alert.
pub fn render_alert(alert: &Alert, color: bool) -> String {
    let sev = alert.rule.severity.to_uppercase();
    let (b, d, r, sevc) = if color {
        let sevc = if matches!(alert.rule.severity.as_str(), "high" | "critical") {
            RED
        } else {
            BOLD
        };
        (BOLD, DIM, RESET, sevc)
    } else {
        ("", "", "", "")
    };
    let when = published(alert);
    let rules = if alert.rules.len() > 1 {
        let ids: Vec<&str> = alert.rules.iter().map(|r| r.id.as_str()).collect();
        format!("rules {}", ids.join(", "))
    } else {
        format!("rule {}", alert.rule.id)
    };
    let mut s = format!(
        "{sevc}[{sev}]{r} {b}{}{r}  {d}{rules} · {} · {when}{r}\n",
        clean(&alert.item.title),
        clean(&alert.feed.title),
    );
    s.push_str(&format!("    {}\n", highlight(&alert.snippet, color)));
    if !alert.matched.is_empty() {
        s.push_str(&format!(
            "    {d}matched: {}{r}\n",
            clean(&alert.matched.join(", "))
        ));
    }
    if let Some(link) = &alert.item.link {
        s.push_str(&format!("    {d}{}{r}\n", clean(link)));
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_by_char_offsets_and_strips_controls() {
        let sn = Snippet {
            text: "Сапёры в Курске\u{1b}[2J работают".into(),
            highlights: vec![(0, 6), (9, 15)],
        };
        assert_eq!(highlight(&sn, false), "[Сапёры] в [Курске][2J работают");
        let colored = highlight(&sn, true);
        assert!(
            colored.starts_with("\x1b[1;33mСапёры\x1b[0m"),
            "{colored:?}"
        );
        assert!(
            !colored.contains("\x1b[2J"),
            "feed escape sequences never reach the terminal"
        );
    }

    #[test]
    fn out_of_range_highlights_do_not_panic() {
        let sn = Snippet {
            text: "abc".into(),
            highlights: vec![(2, 10), (1, 2), (50, 60)],
        };
        assert_eq!(highlight(&sn, false), "ab[c]");
    }
}
