//! Alert sinks behind one small trait.
//!
//! A sink receives one alert at a time and answers only when it has taken
//! it (written, flushed, accepted by the receiver). The deliverer removes an
//! alert from the outbox only after `Ok`, so a sink must not report success
//! early. Adding a sink kind (webhook, desktop) means one file here and one
//! arm in [`build`].

mod jsonl;
mod stdout;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{SinkConfig, SinkKind};
use crate::model::Alert;

pub use jsonl::JsonlSink;
pub use stdout::{render_alert, StdoutSink};

/// Why a delivery failed; every failure is retried by the deliverer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

#[async_trait]
pub trait Sink: Send + Sync {
    fn id(&self) -> &str;
    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError>;
}

/// Builds the sink a config entry describes.
pub fn build(cfg: &SinkConfig) -> Arc<dyn Sink> {
    match &cfg.kind {
        SinkKind::Stdout { color } => Arc::new(StdoutSink::new(&cfg.id, *color)),
        SinkKind::Jsonl { path } => Arc::new(JsonlSink::new(&cfg.id, path.clone())),
    }
}
