//! HTTP fetching of feeds: one shared reqwest client, conditional GET,
//! timeouts on every phase, and a size cap enforced on the decoded stream.
//!
//! Facts this module is built on (see ARCHITECTURE.md): reqwest's
//! `read_timeout` never fires on a 1 byte/s trickle, so every fetch also runs
//! under a total deadline; with gzip/brotli/zstd enabled reqwest drops
//! `Content-Length`, so the cap is counted on decoded chunks as they arrive —
//! memory for one fetch never exceeds the cap plus one chunk.

use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::redirect;

use crate::config::DaemonConfig;
use crate::state::Validators;

/// What a fetch produced.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: the stored validators still hold; nothing to parse.
    NotModified {
        status: u16,
    },
    Fetched(Fetched),
}

#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `charset` parameter of Content-Type, if any.
    pub charset: Option<String>,
    pub validators: Validators,
    /// After redirects.
    pub final_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?} (total fetch deadline)")]
    Timeout(Duration),
    #[error("body larger than the {limit}-byte cap (max_feed_bytes)")]
    TooLarge { limit: u64 },
    #[error("HTTP {status}{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Http(String),
}

impl FetchError {
    /// The HTTP status to record, if the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn from_reqwest(e: reqwest::Error) -> FetchError {
        // The chain holds the useful part ("connection refused", "too many
        // redirects"); reqwest's top-level text alone is vague.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let s_text = s.to_string();
            if !msg.contains(&s_text) {
                msg.push_str(": ");
                msg.push_str(&s_text);
            }
            src = s.source();
        }
        if e.is_timeout() {
            msg = format!("timed out: {msg}");
        }
        FetchError::Http(msg)
    }
}

/// One client for every feed (connection pool, TLS sessions shared).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: u64,
    total: Duration,
}

const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                      application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";

impl Fetcher {
    pub fn new(cfg: &DaemonConfig) -> Result<Fetcher, FetchError> {
        let max_redirects = cfg.max_redirects;
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            let downgrade = attempt
                .previous()
                .last()
                .is_some_and(|p| p.scheme() == "https")
                && attempt.url().scheme() == "http";
            let scheme = attempt.url().scheme().to_string();
            match scheme.as_str() {
                "http" | "https" if !downgrade => attempt.follow(),
                "http" => attempt.error("refusing a redirect from https to http"),
                other => attempt.error(format!("refusing a redirect to a {other}: URL")),
            }
        });
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.fetch_timeout)
            .timeout(cfg.fetch_timeout)
            .redirect(policy)
            .pool_max_idle_per_host(2)
            .build()
            .map_err(FetchError::from_reqwest)?;
        Ok(Fetcher {
            client,
            max_bytes: cfg.max_feed_bytes,
            total: cfg.fetch_timeout,
        })
    }

    /// GETs `url`, conditionally when validators are given. The whole call,
    /// body included, ends within the configured total deadline.
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        // The client timeout covers the same ground; this outer deadline is
        // the guarantee (it also bounds our own chunk loop).
        match tokio::time::timeout(self.total, self.fetch_inner(url, validators)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.total)),
        }
    }

    async fn fetch_inner(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let mut req = self.client.get(url);
        if let Some(etag) = &validators.etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            req = req.header(header::IF_MODIFIED_SINCE, lm);
        }
        let mut resp = req.send().await.map_err(FetchError::from_reqwest)?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after: retry_after(resp.headers()),
            });
        }
        let headers = resp.headers();
        let text = |h| {
            headers
                .get(h)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let new_validators = Validators {
            etag: text(header::ETAG),
            last_modified: text(header::LAST_MODIFIED),
        };
        let charset = text(header::CONTENT_TYPE).and_then(|ct| charset_of(&ct));
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(FetchError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let final_url = resp.url().to_string();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(FetchError::from_reqwest)? {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fetched(Fetched {
            status: status.as_u16(),
            body,
            charset,
            validators: new_validators,
            final_url,
        }))
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// The charset parameter of a Content-Type value.
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_param() {
        assert_eq!(
            charset_of("application/rss+xml; charset=windows-1251"),
            Some("windows-1251".into())
        );
        assert_eq!(
            charset_of("text/xml;Charset=\"UTF-8\""),
            Some("utf-8".into())
        );
        assert_eq!(charset_of("text/xml"), None);
        assert_eq!(charset_of("text/xml; charset="), None);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
