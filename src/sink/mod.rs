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
use crate::model::{Alert, Digest};

pub use desktop::DesktopSink;
pub use email::EmailSink;
pub use exec::ExecSink;
pub use jsonl::JsonlSink;
pub use stdout::{render_alert, StdoutSink};
pub use webhook::{sign, WebhookSink};

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
