//! `type = "desktop"`: freedesktop notifications on the session bus, through
//! notify-rust over zbus (pure Rust, on our tokio runtime).
//!
//! - summary: the item title; body: the snippet, hits in `<b>` when the
//!   server advertises `body-markup` (all feed text XML-escaped), plain text
//!   otherwise; a last line names the feed and every rule behind the alert.
//! - urgency from severity (low, normal, high/critical -> critical).
//! - a default action (a click) that runs `xdg-open LINK` where the server
//!   advertises `actions`.
//!
//! Neither notify-rust nor zbus puts a timeout on a D-Bus call: a frozen
//! notification server would block it forever. Every attempt (capabilities
//! and `Notify`) runs as one future under `tokio::time::timeout`; on timeout
//! the future is dropped, which drops its bus connection and the pending
//! reply, so nothing is left blocked and no thread is spent on it. Each sink
//! also allows one attempt in flight at a time: a second one fails at once.
//! Delivery runs on the sink's own worker, never on the polling path.
//!
//! Capabilities are asked once (`GetCapabilities`) and kept for
//! [`CAPS_TTL`]; any failed attempt forgets them, so a restarted or
//! replaced server is asked again.
//!
//! Waiting for a click is off the delivery path: a spawned task per
//! notification with an action, at most [`MAX_WAITERS`] at once (beyond that
//! the notification is sent without the action), each ending when the
//! notification closes or after [`ACTION_WAIT_MAX`].

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use notify_rust::{Notification, NotificationResponse, Timeout, Urgency};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{is_hidden, push_html_escaped, shown, snippet_runs, Sink, SinkError};
use crate::config::{DesktopConfig, Expire};
use crate::model::{Alert, Snippet};

/// How long the server's capabilities are trusted without asking again.
pub const CAPS_TTL: Duration = Duration::from_secs(600);
/// Notifications with a click action being waited on, per sink.
pub const MAX_WAITERS: usize = 16;
/// The longest wait for a click on one notification.
pub const ACTION_WAIT_MAX: Duration = Duration::from_secs(3600);
/// Titles longer than this (chars) are cut with an ellipsis.
const SUMMARY_MAX_CHARS: usize = 200;
/// Rules named in the body's last line; more are counted.
const RULES_SHOWN: usize = 5;
/// The deadline on one `xdg-open` run (it normally hands over and exits).
const OPENER_TIMEOUT: Duration = Duration::from_secs(60);

const BUS_NAME: &str = "org.freedesktop.Notifications";
const OBJECT_PATH: &str = "/org/freedesktop/Notifications";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caps {
    markup: bool,
    actions: bool,
}

pub struct DesktopSink {
    id: String,
    cfg: DesktopConfig,
    caps: Mutex<Option<(Caps, Instant)>>,
    /// One D-Bus attempt in flight at a time.
    in_flight: Semaphore,
    waiters: Arc<Semaphore>,
}

impl DesktopSink {
    pub fn new(id: &str, cfg: DesktopConfig) -> Self {
        DesktopSink {
            id: id.to_string(),
            cfg,
            caps: Mutex::new(None),
            in_flight: Semaphore::new(1),
            waiters: Arc::new(Semaphore::new(MAX_WAITERS)),
        }
    }

    fn cached_caps(&self) -> Option<Caps> {
        let guard = self.caps.lock().unwrap_or_else(|e| e.into_inner());
        guard.and_then(|(c, at)| (at.elapsed() < CAPS_TTL).then_some(c))
    }

    fn forget_caps(&self) {
        *self.caps.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn capabilities(&self) -> Result<Caps, SinkError> {
        if let Some(c) = self.cached_caps() {
            return Ok(c);
        }
        let list = query_capabilities().await?;
        let caps = Caps {
            markup: list.iter().any(|c| c == "body-markup"),
            actions: list.iter().any(|c| c == "actions"),
        };
        tracing::debug!(sink = %self.id, capabilities = ?list, "notification server capabilities");
        *self.caps.lock().unwrap_or_else(|e| e.into_inner()) = Some((caps, Instant::now()));
        Ok(caps)
    }

    /// One attempt: capabilities (cached), then `Notify`; the click waiter
    /// is spawned, not awaited.
    async fn attempt(&self, alert: &Alert) -> Result<(), SinkError> {
        let caps = self.capabilities().await?;
        let mut n = Notification::new();
        n.appname(&self.cfg.app_name)
            .summary(&summary(alert))
            .body(&body(alert, caps.markup))
            .urgency(urgency(&alert.rule.severity));
        if let Some(icon) = &self.cfg.icon {
            n.icon(icon);
        }
        match self.cfg.expire {
            Expire::ServerDefault => {}
            Expire::Never => {
                n.timeout(Timeout::Never);
            }
            Expire::After(d) => {
                n.timeout(Timeout::Milliseconds(
                    u32::try_from(d.as_millis()).unwrap_or(u32::MAX),
                ));
            }
        }
        let link = alert.item.link.as_deref().filter(|l| openable(l));
        let waiter = match link {
            Some(link) if self.cfg.actions && caps.actions => {
                match self.waiters.clone().try_acquire_owned() {
                    Ok(permit) => Some((link.to_string(), permit)),
                    Err(_) => {
                        tracing::warn!(sink = %self.id, alert = %alert.id, max = MAX_WAITERS,
                            "too many notifications waiting for a click; this one has no action");
                        None
                    }
                }
            }
            _ => None,
        };
        if waiter.is_some() {
            n.action("default", "Open");
        }
        let handle = n.show_async().await.map_err(|e| {
            SinkError::transient(format!("notification server refused or is absent: {e}"))
        })?;
        tracing::debug!(sink = %self.id, alert = %alert.id, markup = caps.markup,
            action = waiter.is_some(), "notification shown");
        if let Some((link, permit)) = waiter {
            let sink = self.id.clone();
            let alert_id = alert.id.clone();
            tokio::spawn(wait_for_click(handle, link, permit, sink, alert_id));
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for DesktopSink {
    fn id(&self) -> &str {
        &self.id
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError> {
        let Ok(_slot) = self.in_flight.try_acquire() else {
            return Err(SinkError::transient(
                "a previous call to the notification server is still in flight",
            ));
        };
        let timeout = self.cfg.timeout;
        let result = match tokio::time::timeout(timeout, self.attempt(alert)).await {
            Ok(r) => r,
            Err(_) => Err(SinkError::transient(format!(
                "the notification server did not answer within {timeout:?}"
            ))),
        };
        if result.is_err() {
            self.forget_caps();
        }
        result
    }
}

/// `GetCapabilities` on the session bus (a new connection, dropped after).
async fn query_capabilities() -> Result<Vec<String>, SinkError> {
    let conn = zbus::Connection::session()
        .await
        .map_err(|e| SinkError::transient(format!("no D-Bus session bus: {e}")))?;
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(BUS_NAME),
            "GetCapabilities",
            &(),
        )
        .await
        .map_err(|e| SinkError::transient(format!("no notification server on the bus: {e}")))?;
    reply
        .body()
        .deserialize::<Vec<String>>()
        .map_err(|e| SinkError::transient(format!("unreadable GetCapabilities reply: {e}")))
}

/// Waits (bounded) for the notification's default action and opens the
/// link; ends when the notification closes. Holds a waiter slot throughout.
async fn wait_for_click(
    handle: notify_rust::NotificationHandle,
    link: String,
    _permit: OwnedSemaphorePermit,
    sink: String,
    alert: String,
) {
    let mut clicked = false;
    let waited = tokio::time::timeout(
        ACTION_WAIT_MAX,
        handle.wait_for_action_async(|r| {
            clicked = matches!(r, NotificationResponse::Default)
                || matches!(r, NotificationResponse::Action(a) if a == "default");
        }),
    )
    .await;
    if waited.is_err() {
        tracing::debug!(sink = %sink, alert = %alert, "stopped waiting for a click");
        return;
    }
    if !clicked {
        return;
    }
    tracing::info!(sink = %sink, alert = %alert, "notification clicked; opening the link");
    // argv, no shell; `link` is http(s) and has no control characters.
    let child = tokio::process::Command::new("xdg-open")
        .arg(&link)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(mut child) => match tokio::time::timeout(OPENER_TIMEOUT, child.wait()).await {
            Ok(Ok(st)) if st.success() => {}
            Ok(Ok(st)) => {
                tracing::warn!(sink = %sink, alert = %alert, status = %st, "xdg-open failed")
            }
            Ok(Err(e)) => {
                tracing::warn!(sink = %sink, alert = %alert, error = %e, "xdg-open failed")
            }
            Err(_) => {
                tracing::warn!(sink = %sink, alert = %alert, "xdg-open still running; left alone")
            }
        },
        Err(e) => {
            tracing::warn!(sink = %sink, alert = %alert, error = %e, "cannot run xdg-open")
        }
    }
}

/// Only http(s) links without whitespace or control characters are opened
/// (all the alert object carries; checked again here since it runs a program).
fn openable(link: &str) -> bool {
    let lower = link.get(..8).unwrap_or(link).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !link
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_hidden(c))
}

fn urgency(severity: &str) -> Urgency {
    match severity {
        "low" => Urgency::Low,
        "high" | "critical" => Urgency::Critical,
        _ => Urgency::Normal,
    }
}

fn push_text(out: &mut String, c: char, markup: bool) {
    if markup {
        push_html_escaped(out, c);
    } else {
        out.push(c);
    }
}

/// `s` cleaned for display (see [`shown`]), escaped when `markup`, cut to
/// `max` chars with an ellipsis.
fn clean(s: &str, max: usize, markup: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (n, c) in s.chars().filter_map(shown).enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        push_text(&mut out, c, markup);
    }
    out
}

/// The notification summary: the item title as plain text (the spec gives
/// the summary no markup), or the feed title when the item has none.
fn summary(alert: &Alert) -> String {
    let title = clean(&alert.item.title, SUMMARY_MAX_CHARS, false);
    if title.trim().is_empty() {
        clean(&alert.feed.title, SUMMARY_MAX_CHARS, false)
    } else {
        title
    }
}

/// The snippet with hits in `<b>` (markup) or as is (plain), cleaned while
/// walking so the char offsets of `highlights` stay right.
pub fn snippet_text(snippet: &Snippet, markup: bool) -> String {
    let mut out = String::with_capacity(snippet.text.len() + 16);
    for (hit, text) in snippet_runs(snippet) {
        let bold = hit && markup;
        if bold {
            out.push_str("<b>");
        }
        for c in text.chars() {
            push_text(&mut out, c, markup);
        }
        if bold {
            out.push_str("</b>");
        }
    }
    out
}

/// The notification body: the snippet, then a line naming the feed and the
/// rules behind the alert ("rule: a" or "rules: a, b").
pub fn body(alert: &Alert, markup: bool) -> String {
    let mut out = snippet_text(&alert.snippet, markup);
    let mut ids: Vec<&str> = alert.rules.iter().map(|r| r.id.as_str()).collect();
    if ids.is_empty() {
        ids.push(alert.rule.id.as_str());
    }
    let mut tail = String::new();
    let feed = alert.feed.title.trim();
    if !feed.is_empty() {
        tail.push_str(feed);
        tail.push_str(" · ");
    }
    tail.push_str(if ids.len() == 1 { "rule: " } else { "rules: " });
    tail.push_str(&ids[..ids.len().min(RULES_SHOWN)].join(", "));
    if ids.len() > RULES_SHOWN {
        tail.push_str(&format!(" (+{} more)", ids.len() - RULES_SHOWN));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&clean(&tail, SUMMARY_MAX_CHARS, markup));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertFeed, AlertItem, AlertRule};

    fn alert(title: &str, text: &str, highlights: Vec<(usize, usize)>, rules: &[&str]) -> Alert {
        let rules: Vec<AlertRule> = rules
            .iter()
            .map(|id| AlertRule {
                id: id.to_string(),
                severity: "high".into(),
            })
            .collect();
        Alert {
            id: "a1".into(),
            rule: rules[0].clone(),
            rules,
            feed: AlertFeed {
                id: "wire".into(),
                title: "Wire".into(),
                url: "http://127.0.0.1/wire.xml".into(),
            },
            item: AlertItem {
                key: "k".into(),
                title: title.into(),
                link: Some("https://wire.example.test/1".into()),
                published: None,
                authors: vec![],
            },
            matched: vec![],
            snippet: Snippet {
                text: text.into(),
                highlights,
            },
            detected_at: chrono::Utc::now(),
            story: None,
        }
    }

    #[test]
    fn markup_body_escapes_everything_and_bolds_hits() {
        let a = alert(
            "t",
            "<script>alert('x')</script> & \"Kursk\"\u{1b}[2J \u{202e}evil",
            vec![(31, 36)],
            &["kursk"],
        );
        assert_eq!(
            body(&a, true),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;<b>Kursk</b>&quot;[2J evil\nWire · rule: kursk"
        );
        assert_eq!(
            body(&a, false),
            "<script>alert('x')</script> & \"Kursk\"[2J evil\nWire · rule: kursk"
        );
    }

    #[test]
    fn several_rules_are_named() {
        let a = alert(
            "t",
            "Kursk",
            vec![(0, 5)],
            &["a", "b", "c", "d", "e", "f", "g"],
        );
        assert!(
            body(&a, true).ends_with("\nWire · rules: a, b, c, d, e (+2 more)"),
            "{}",
            body(&a, true)
        );
    }

    #[test]
    fn summary_is_clean_plain_and_bounded() {
        let a = alert("A\u{202e}B\u{1b}C <b>&\nD", "", vec![], &["r"]);
        assert_eq!(summary(&a), "ABC <b>& D");
        let long = "x".repeat(500);
        let a = alert(&long, "", vec![], &["r"]);
        assert_eq!(summary(&a).chars().count(), SUMMARY_MAX_CHARS + 1);
        let a = alert(" \u{200f} ", "", vec![], &["r"]);
        assert_eq!(summary(&a), "Wire");
    }

    #[test]
    fn odd_highlights_stay_balanced() {
        let sn = Snippet {
            text: "abc".into(),
            highlights: vec![(2, 10), (1, 2), (50, 60), (1, 1)],
        };
        assert_eq!(snippet_text(&sn, true), "ab<b>c</b>");
        let sn = Snippet {
            text: "a\u{202e}bc".into(),
            highlights: vec![(1, 3)],
        };
        // The hidden char inside the span is dropped, the tags stay paired.
        assert_eq!(snippet_text(&sn, true), "a<b>b</b>c");
    }

    #[test]
    fn urgency_from_severity() {
        assert_eq!(urgency("low"), Urgency::Low);
        assert_eq!(urgency("normal"), Urgency::Normal);
        assert_eq!(urgency("high"), Urgency::Critical);
        assert_eq!(urgency("critical"), Urgency::Critical);
        assert_eq!(urgency("?"), Urgency::Normal);
    }

    #[test]
    fn only_plain_http_links_open() {
        assert!(openable("https://wire.example.test/a?b=c&d"));
        assert!(openable("HTTP://x.test/"));
        assert!(!openable("javascript:alert(1)"));
        assert!(!openable("file:///etc/passwd"));
        assert!(!openable("https://x.test/a b"));
        assert!(!openable("https://x.test/\u{202e}"));
        assert!(!openable("-https://x"));
    }
}
