//! Alert sinks behind one small trait.
//!
//! A sink receives one alert at a time and answers only when it has taken
//! it (written, flushed, accepted by the receiver). The deliverer removes an
//! alert from the outbox only after `Ok`, so a sink must not report success
//! early. A failure says how the deliverer should treat it (see
//! [`SinkError`]). Adding a sink kind means one file here and one arm in
//! [`build`].

mod desktop;
mod email;
mod exec;
mod jsonl;
pub mod preset;
mod stdout;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{SinkConfig, SinkKind};
use crate::model::{Alert, Digest, Snippet};

pub use desktop::DesktopSink;
pub use email::EmailSink;
pub use exec::ExecSink;
pub use jsonl::JsonlSink;
pub use stdout::{render_alert, StdoutSink};
pub use webhook::{sign, WebhookSink};

/// Bidi controls and other invisible format characters that could reorder
/// or hide what the person reads.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Appends `c` escaped for HTML text or a quoted attribute value.
pub fn push_html_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

/// A character of feed text as every sink shows it: line breaks and tabs
/// become spaces; other control characters and the hidden characters of
/// [`is_hidden`] are dropped.
pub fn shown(c: char) -> Option<char> {
    match c {
        '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => Some(' '),
        c if c.is_control() || is_hidden(c) => None,
        c => Some(c),
    }
}

/// The snippet cut into runs of (is a hit, text as [`shown`]), one run per
/// highlight span; see [`runs_of`].
pub fn snippet_runs(snippet: &Snippet) -> Vec<(bool, String)> {
    runs_of(&snippet.text, &snippet.highlights)
}

/// `text` cut into runs of (is a hit, text as [`shown`]), one run per span.
/// Spans are half-open char offsets into the raw text, taken in order as
/// snippets give them (sorted, merged); a span ending before the current
/// char is skipped, so empty, out-of-range or out-of-order spans never
/// unbalance anything. Characters are dropped while walking, so the offsets
/// stay right.
pub fn runs_of(text: &str, spans: &[(usize, usize)]) -> Vec<(bool, String)> {
    let mut spans = spans.iter().copied().filter(|(s, e)| s < e).peekable();
    let mut out: Vec<(bool, String)> = Vec::new();
    // The end of the span we are in, and whether the last run belongs to it.
    let mut inside: Option<usize> = None;
    let mut run_open = false;
    for (i, c) in text.chars().enumerate() {
        if inside.is_some_and(|end| i >= end) {
            inside = None;
            run_open = false;
        }
        while spans.peek().is_some_and(|&(_, e)| e <= i) {
            spans.next();
        }
        if inside.is_none() {
            if let Some(&(s, e)) = spans.peek() {
                if s <= i {
                    inside = Some(e);
                    spans.next();
                    run_open = false;
                }
            }
        }
        let Some(c) = shown(c) else { continue };
        match out.last_mut() {
            Some((_, t)) if run_open => t.push(c),
            _ => out.push((inside.is_some(), c.to_string())),
        }
        run_open = true;
    }
    out
}

/// Why a delivery failed, and what the deliverer does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again: connection refused or reset, timeouts, 5xx,
    /// 408, 429, a missing or frozen notification server, a full disk.
    /// `retry_after` is the receiver's own wish (`Retry-After`), honoured
    /// when longer than the backoff.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The receiver refused this alert (other 4xx, 3xx, a bad payload):
    /// retried a few times in case the receiver is being fixed, then kept
    /// as a dead letter.
    #[error("{message}")]
    Rejected { message: String },
    /// The endpoint is gone for good (HTTP 410): the sink is disabled and
    /// reported until `wirewatch alerts retry --sink ID` or a config change
    /// re-enables it.
    #[error("{message}")]
    Gone { message: String },
}

impl SinkError {
    pub fn transient(message: impl Into<String>) -> SinkError {
        SinkError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn rejected(message: impl Into<String>) -> SinkError {
        SinkError::Rejected {
            message: message.into(),
        }
    }
}

#[async_trait]
pub trait Sink: Send + Sync {
    fn id(&self) -> &str;
    /// Where alerts go (a URL), for reports; a sink switched off after a
    /// "gone" answer is tried again when its endpoint changes.
    fn endpoint(&self) -> &str {
        ""
    }
    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError>;
    /// Alerts held back by flow control, as one message. By default the
    /// digest's summary alert (headline, one line per alert); sinks that
    /// carry JSON send the digest object itself.
    async fn deliver_digest(&self, digest: &Digest) -> Result<(), SinkError> {
        self.deliver(&digest.summary_alert()).await
    }
}

/// Builds the sink a config entry describes.
pub fn build(cfg: &SinkConfig) -> anyhow::Result<Arc<dyn Sink>> {
    Ok(match &cfg.kind {
        SinkKind::Stdout { color } => Arc::new(StdoutSink::new(&cfg.id, *color)),
        SinkKind::Jsonl { path } => Arc::new(JsonlSink::new(&cfg.id, path.clone())),
        SinkKind::Webhook(w) => Arc::new(WebhookSink::new(&cfg.id, w.clone())?),
        SinkKind::Exec { command, timeout } => {
            Arc::new(ExecSink::new(&cfg.id, command.clone(), *timeout))
        }
        SinkKind::Desktop(d) => Arc::new(DesktopSink::new(&cfg.id, d.clone())),
        SinkKind::Email(e) => Arc::new(EmailSink::new(&cfg.id, e.clone())?),
    })
}
