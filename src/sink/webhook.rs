//! `type = "webhook"`: one HTTP request per alert, signed the Standard
//! Webhooks way when a secret is configured.
//!
//! Every request carries `webhook-id` (the alert id, the same on every
//! retry, so receivers can drop duplicates) and `webhook-timestamp`; with a
//! secret also `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`. Redirects are not followed (a 3xx is a failure):
//! a signed alert goes only where it was configured to go.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use sha2::Sha256;

use super::preset;
use super::{Sink, SinkError};
use crate::config::{WebhookConfig, WebhookFormat};
use crate::fetch::retry_after;
use crate::model::{Alert, Digest};

/// How much of an error response's body goes into the error message.
const ERROR_BODY_CHARS: usize = 200;
/// Bytes of an error response read at most (for the excerpt and a retry
/// hint); the rest is never downloaded.
const ERROR_BODY_BYTES: usize = 64 * 1024;

pub struct WebhookSink {
    id: String,
    cfg: WebhookConfig,
    client: reqwest::Client,
}

impl WebhookSink {
    pub fn new(id: &str, cfg: WebhookConfig) -> anyhow::Result<WebhookSink> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("wirewatch/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .build()?;
        Ok(WebhookSink {
            id: id.to_string(),
            cfg,
            client,
        })
    }
}

/// The Standard Webhooks signature header value for one request.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{sig}")
}

/// What a response status means for the alert.
pub fn classify(
    status: StatusCode,
    retry: Option<Duration>,
    detail: &str,
) -> Result<(), SinkError> {
    let message = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    };
    match status.as_u16() {
        200..=299 => Ok(()),
        410 => Err(SinkError::Gone { message }),
        408 | 429 | 500..=599 => Err(SinkError::Transient {
            message,
            retry_after: retry,
        }),
        300..=399 => Err(SinkError::rejected(format!(
            "{message} (redirects are not followed; point `url` at the final address)"
        ))),
        _ => Err(SinkError::rejected(message)),
    }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), SinkError> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| SinkError::rejected(format!("bad header name {name}: {e}")))?;
    let v = HeaderValue::from_str(value)
        .map_err(|e| SinkError::rejected(format!("bad value for header {name}: {e}")))?;
    Ok((n, v))
}

/// A wait asked for in a rate-limit response's JSON body, for services
/// that say it there rather than in `Retry-After`: Telegram's Bot API
/// (`parameters.retry_after`, seconds) and the Matrix client-server API
/// (`retry_after_ms`). Capped like the header.
pub fn body_retry_after(body: &[u8]) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let wait = if let Some(secs) = v
        .pointer("/parameters/retry_after")
        .and_then(|x| x.as_f64())
    {
        secs
    } else {
        v.get("retry_after_ms").and_then(|x| x.as_f64())? / 1000.0
    };
    (wait.is_finite() && wait >= 0.0)
        .then(|| Duration::from_secs_f64(wait.min(crate::schedule::MAX_RETRY_AFTER.as_secs_f64())))
}

/// Reads at most [`ERROR_BODY_BYTES`] of `resp` within two seconds: a
/// receiver that stalls or floods here must not hold the alert hostage.
async fn error_body(mut resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            let room = ERROR_BODY_BYTES - out.len();
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if out.len() >= ERROR_BODY_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
    out
}

/// The first characters of an error body, on one line, control chars out.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_BODY_CHARS)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl Sink for WebhookSink {
    fn id(&self) -> &str {
        &self.id
    }

    fn endpoint(&self) -> &str {
        &self.cfg.url
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError> {
        let out = preset::render(&self.cfg, alert).map_err(SinkError::rejected)?;
        self.send(out, &alert.id).await
    }

    async fn deliver_digest(&self, digest: &Digest) -> Result<(), SinkError> {
        match self.cfg.format {
            // Plain JSON receivers get the digest object itself.
            WebhookFormat::Alert => {
                let body =
                    serde_json::to_value(digest).map_err(|e| SinkError::rejected(e.to_string()))?;
                let out = preset::Outgoing {
                    method: reqwest::Method::POST,
                    url: self.cfg.url.clone(),
                    headers: Vec::new(),
                    body,
                };
                self.send(out, &digest.id).await
            }
            _ => self.deliver(&digest.summary_alert()).await,
        }
    }
}

impl WebhookSink {
    /// Sends one request; `msg_id` is the `webhook-id`.
    async fn send(&self, out: preset::Outgoing, msg_id: &str) -> Result<(), SinkError> {
        let body = serde_json::to_vec(&out.body).map_err(|e| SinkError::rejected(e.to_string()))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (n, v) in self.cfg.headers.iter().chain(out.headers.iter()) {
            let (n, v) = header(n, v)?;
            headers.insert(n, v);
        }
        let (n, v) = header("webhook-id", msg_id)?;
        headers.insert(n, v);
        let (n, v) = header("webhook-timestamp", &timestamp.to_string())?;
        headers.insert(n, v);
        if let Some(key) = &self.cfg.secret {
            let (n, v) = header("webhook-signature", &sign(&key.0, msg_id, timestamp, &body))?;
            headers.insert(n, v);
        }
        let resp = self
            .client
            .request(out.method, &out.url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| SinkError::transient(describe(&e)))?;
        let status = resp.status();
        let mut retry = retry_after(resp.headers(), SystemTime::now());
        let detail = if status.is_success() {
            String::new()
        } else {
            // A short read of the error body helps the person fixing it,
            // and may hold the service's own retry hint.
            let body = error_body(resp).await;
            if retry.is_none() && matches!(status.as_u16(), 429 | 503) {
                retry = body_retry_after(&body);
            }
            excerpt(&body)
        };
        classify(status, retry, &detail)
    }
}

/// reqwest's error with its cause chain, one line.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::RETRY_AFTER;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn statuses_are_classified() {
        let t = |code: u16| classify(StatusCode::from_u16(code).unwrap(), None, "");
        assert_eq!(t(200), Ok(()));
        assert_eq!(t(204), Ok(()));
        assert!(matches!(t(410), Err(SinkError::Gone { .. })));
        for c in [408, 429, 500, 502, 503] {
            assert!(matches!(t(c), Err(SinkError::Transient { .. })), "{c}");
        }
        for c in [301, 302, 400, 401, 403, 404, 422] {
            assert!(matches!(t(c), Err(SinkError::Rejected { .. })), "{c}");
        }
    }

    #[test]
    fn rate_limit_bodies_of_telegram_and_matrix_give_the_wait() {
        let telegram = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        assert_eq!(body_retry_after(telegram), Some(Duration::from_secs(7)));
        let matrix =
            br#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":2500}"#;
        assert_eq!(body_retry_after(matrix), Some(Duration::from_millis(2500)));
        let huge = br#"{"parameters":{"retry_after":1e12}}"#;
        assert_eq!(
            body_retry_after(huge),
            Some(crate::schedule::MAX_RETRY_AFTER)
        );
        for none in [
            &br#"{"retry_after_ms":-5}"#[..],
            br#"{"parameters":{"retry_after":"soon"}}"#,
            br#"{"error":"slow down"}"#,
            b"<html>429</html>",
            b"",
        ] {
            assert_eq!(
                body_retry_after(none),
                None,
                "{}",
                String::from_utf8_lossy(none)
            );
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::now();
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h, now).unwrap().as_secs();
        assert!((118..=120).contains(&d), "{d}");
        h.insert(RETRY_AFTER, HeaderValue::from_static("99999999"));
        assert_eq!(retry_after(&h, now), Some(crate::schedule::MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }
}
