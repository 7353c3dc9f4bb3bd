//! What a webhook sends for each `format`: the request a service expects,
//! built by serializers from the alert. Pure: no I/O.

use reqwest::Method;

use crate::config::{WebhookConfig, WebhookFormat};
use crate::model::Alert;

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub method: Method,
    pub url: String,
    /// Headers the format needs (e.g. `Authorization` for Matrix), besides
    /// the ones every webhook request carries.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

/// The request for `alert` in the sink's format.
pub fn render(cfg: &WebhookConfig, alert: &Alert) -> Result<Outgoing, String> {
    match &cfg.format {
        WebhookFormat::Alert => Ok(Outgoing {
            method: Method::POST,
            url: cfg.url.clone(),
            headers: Vec::new(),
            body: serde_json::to_value(alert).map_err(|e| e.to_string())?,
        }),
        other => Err(format!("format \"{}\" is not built yet", other.name())),
    }
}
