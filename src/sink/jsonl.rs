//! `type = "jsonl"`: one alert object per line, appended, flushed and synced
//! before the delivery counts as done.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use super::{Sink, SinkError};
use crate::model::{Alert, Digest};

pub struct JsonlSink {
    id: String,
    path: PathBuf,
}

impl JsonlSink {
    pub fn new(id: &str, path: PathBuf) -> Self {
        JsonlSink {
            id: id.to_string(),
            path,
        }
    }
}

#[async_trait]
impl Sink for JsonlSink {
    fn id(&self) -> &str {
        &self.id
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError> {
        let line = serde_json::to_vec(alert).map_err(|e| SinkError::rejected(e.to_string()))?;
        self.append(line).await
    }

    async fn deliver_digest(&self, digest: &Digest) -> Result<(), SinkError> {
        let line = serde_json::to_vec(digest).map_err(|e| SinkError::rejected(e.to_string()))?;
        self.append(line).await
    }
}

impl JsonlSink {
    async fn append(&self, mut line: Vec<u8>) -> Result<(), SinkError> {
        line.push(b'\n');
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            // One write call per line: concurrent appenders never interleave
            // within a line (O_APPEND).
            f.write_all(&line)?;
            f.flush()?;
            f.sync_data()
        })
        .await
        .map_err(|e| SinkError::transient(e.to_string()))?
        .map_err(|e| SinkError::transient(format!("cannot append to {}: {e}", self.path.display())))
    }
}
