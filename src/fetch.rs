//! HTTP fetching of feeds: one shared reqwest client, conditional GET,
//! timeouts on every phase, and a size cap enforced on the decoded stream.
//!
//! Facts this module is built on (see ARCHITECTURE.md): reqwest's
//! `read_timeout` never fires on a 1 byte/s trickle, so every fetch also runs
//! under a total deadline; with gzip/brotli/zstd enabled reqwest drops
//! `Content-Length`, so the cap is counted on decoded chunks as they arrive —
//! memory for one fetch never exceeds the cap plus one chunk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{redirect, Url};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::DaemonConfig;
use crate::state::Validators;

/// What a fetch produced.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: the stored validators still hold; nothing to parse.
    NotModified {
        status: u16,
        hints: ServerHints,
    },
    Fetched(Fetched),
}

impl FetchOutcome {
    pub fn hints(&self) -> &ServerHints {
        match self {
            FetchOutcome::NotModified { hints, .. } => hints,
            FetchOutcome::Fetched(f) => &f.hints,
        }
    }
}

/// What the server said about the feed besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHints {
    /// The URL the feed has moved to: where the chain of permanent
    /// redirects (301, 308) from the requested URL ends, if there was one.
    pub moved_to: Option<String>,
    /// `Cache-Control: max-age` of the final response.
    pub max_age: Option<Duration>,
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
    pub hints: ServerHints,
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
    /// A redirect we do not follow: a loop, too many, a downgrade to http,
    /// a non-http(s) target, a missing or unusable Location.
    #[error("{0}")]
    Redirect(String),
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

/// Per-host politeness: a bound on fetches in flight to one host (host and
/// port) and a minimum spacing between their starts. The map holds one
/// small entry per host fetched (feeds, and article pages of `full_text`
/// feeds; redirect targets are not keyed); past [`MAX_IDLE_HOSTS`] entries
/// the idle ones are forgotten.
struct HostGates {
    per_host: usize,
    spacing: Duration,
    hosts: std::sync::Mutex<HashMap<String, Arc<HostGate>>>,
}

struct HostGate {
    slots: Arc<Semaphore>,
    /// The earliest moment the next fetch to this host may start.
    next_start: std::sync::Mutex<Instant>,
}

/// Host entries kept before idle ones (no fetch in flight or queued, spacing
/// over) are dropped: article links can name any number of hosts.
const MAX_IDLE_HOSTS: usize = 1024;

impl HostGates {
    fn gate(&self, host: &str) -> Arc<HostGate> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.len() >= MAX_IDLE_HOSTS && !hosts.contains_key(host) {
            let now = Instant::now();
            hosts.retain(|_, g| {
                Arc::strong_count(g) > 1
                    || Arc::strong_count(&g.slots) > 1
                    || *g.next_start.lock().unwrap_or_else(|p| p.into_inner()) > now
            });
        }
        hosts
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(HostGate {
                    slots: Arc::new(Semaphore::new(self.per_host)),
                    next_start: std::sync::Mutex::new(Instant::now()),
                })
            })
            .clone()
    }

    /// Waits for a slot of `host` and for its spacing; the permit is held
    /// for the whole fetch.
    async fn enter(&self, host: &str) -> Result<OwnedSemaphorePermit, FetchError> {
        let gate = self.gate(host);
        let permit = gate
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let start = {
            let mut next = gate.next_start.lock().unwrap_or_else(|p| p.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + self.spacing;
            start
        };
        tokio::time::sleep_until(start).await;
        Ok(permit)
    }
}

/// Permission to fetch one URL: its host's slot and a global slot.
pub struct Admission {
    url: Url,
    _host: OwnedSemaphorePermit,
    global: OwnedSemaphorePermit,
}

/// A global fetch slot kept after the fetch (see [`Admission::keep_slot`]).
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    /// Frees the host's slot and keeps the global one: a poll holds it
    /// until its document is parsed and committed, so fetched bodies never
    /// pile up in memory faster than they are processed (the global bound
    /// then bounds documents in flight, not only downloads).
    pub fn keep_slot(self) -> Slot {
        Slot(self.global)
    }
}

/// The key politeness limits are counted by: host and port.
pub fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// One client for every feed (connection pool, TLS sessions shared), the
/// global fetch bound and the per-host gates.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: u64,
    total: Duration,
    max_redirects: usize,
    /// Bounds concurrent fetches (`max_concurrent_fetches`).
    slots: Arc<Semaphore>,
    max_slots: usize,
    hosts: Arc<HostGates>,
}

const PAGE_ACCEPT: &str = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5";

const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                      application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";

impl Fetcher {
    pub fn new(cfg: &DaemonConfig) -> Result<Fetcher, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.fetch_timeout)
            .timeout(cfg.fetch_timeout)
            // Redirects are followed by `fetch_inner`, which needs to see
            // each hop (a 301 moves the feed; schemes are checked per hop).
            .redirect(redirect::Policy::none())
            .pool_max_idle_per_host(2)
            .build()
            .map_err(FetchError::from_reqwest)?;
        Ok(Fetcher {
            client,
            max_bytes: cfg.max_feed_bytes,
            total: cfg.fetch_timeout,
            max_redirects: cfg.max_redirects,
            slots: Arc::new(Semaphore::new(cfg.max_concurrent_fetches.max(1))),
            max_slots: cfg.max_concurrent_fetches.max(1),
            hosts: Arc::new(HostGates {
                per_host: cfg.max_fetches_per_host.max(1),
                spacing: cfg.min_host_spacing,
                hosts: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// No fetch holds a global slot: no feed or article fetch is in flight
    /// and no poll is between its fetch and its commit.
    pub fn idle(&self) -> bool {
        self.slots.available_permits() == self.max_slots
    }

    /// GETs `url`, conditionally when validators are given: [`Fetcher::admit`]
    /// then [`Fetcher::fetch_admitted`].
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let admitted = self.admit(url).await?;
        self.fetch_admitted(&admitted, validators).await
    }

    /// Waits until `url` may be fetched: a slot of its host (after the
    /// host's spacing), then a global slot — in that order, so feeds waiting
    /// for a busy host never hold global slots. The slots are held until the
    /// returned [`Admission`] is dropped.
    pub async fn admit(&self, url: &str) -> Result<Admission, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::Http(format!("bad URL: {e}")))?;
        let host = self.hosts.enter(&host_key(&parsed)).await?;
        let global = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        Ok(Admission {
            url: parsed,
            _host: host,
            global,
        })
    }

    /// The fetch itself, body included, within the configured total
    /// deadline.
    pub async fn fetch_admitted(
        &self,
        admitted: &Admission,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        // The client timeout covers each request; this outer deadline is
        // the guarantee (it also bounds redirects and our own chunk loop).
        let inner = self.fetch_inner(admitted.url.clone(), validators, None);
        match tokio::time::timeout(self.total, inner).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.total)),
        }
    }

    /// An article page of a `full_text` feed: the same client, host and
    /// global slots, redirect rules and total deadline as a feed fetch,
    /// with its own size cap (`max_bytes`) and an HTML `Accept`. Never
    /// conditional (a 304 is an error).
    pub async fn fetch_page(&self, url: &str, max_bytes: u64) -> Result<Fetched, FetchError> {
        let admitted = self.admit(url).await?;
        self.fetch_page_admitted(&admitted, max_bytes).await
    }

    /// [`Fetcher::fetch_page`] once [admitted](Fetcher::admit) (so the
    /// caller can time the fetch without the queue).
    pub async fn fetch_page_admitted(
        &self,
        admitted: &Admission,
        max_bytes: u64,
    ) -> Result<Fetched, FetchError> {
        let none = Validators::default();
        let inner = self.fetch_inner(admitted.url.clone(), &none, Some(max_bytes));
        match tokio::time::timeout(self.total, inner).await {
            Ok(Ok(FetchOutcome::Fetched(f))) => Ok(f),
            Ok(Ok(FetchOutcome::NotModified { status, .. })) => Err(FetchError::Status {
                status,
                retry_after: None,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(FetchError::Timeout(self.total)),
        }
    }

    /// `page_cap`: fetching an article page with this size cap.
    async fn fetch_inner(
        &self,
        url: Url,
        validators: &Validators,
        page_cap: Option<u64>,
    ) -> Result<FetchOutcome, FetchError> {
        let max_bytes = page_cap.unwrap_or(self.max_bytes);
        let mut current = url;
        let mut visited = vec![current.clone()];
        // The end of the leading run of permanent redirects.
        let mut moved_to: Option<Url> = None;
        let mut permanent_so_far = true;
        let mut resp = loop {
            let mut req = self.client.get(current.clone());
            if page_cap.is_some() {
                req = req.header(header::ACCEPT, PAGE_ACCEPT);
            }
            if let Some(etag) = &validators.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &validators.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
            let resp = req.send().await.map_err(FetchError::from_reqwest)?;
            let status = resp.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                break resp;
            }
            let next = redirect_target(&current, status, resp.headers())?;
            if visited.contains(&next) {
                return Err(FetchError::Redirect(format!(
                    "redirect loop: {next} was already visited"
                )));
            }
            if visited.len() > self.max_redirects {
                return Err(FetchError::Redirect(format!(
                    "more than {} redirects",
                    self.max_redirects
                )));
            }
            permanent_so_far &= matches!(status, 301 | 308);
            if permanent_so_far {
                moved_to = Some(next.clone());
            }
            visited.push(next.clone());
            current = next;
        };
        let status = resp.status();
        let hints = ServerHints {
            moved_to: moved_to.map(String::from),
            max_age: max_age(resp.headers()),
        };
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified {
                status: status.as_u16(),
                hints,
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after: retry_after(resp.headers(), std::time::SystemTime::now()),
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
        if resp.content_length().is_some_and(|n| n > max_bytes) {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        let final_url = current.to_string();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(FetchError::from_reqwest)? {
            if body.len() as u64 + chunk.len() as u64 > max_bytes {
                return Err(FetchError::TooLarge { limit: max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fetched(Fetched {
            status: status.as_u16(),
            body,
            charset,
            validators: new_validators,
            final_url,
            hints,
        }))
    }
}

/// Where a redirect from `from` leads, if we follow it: http(s) only, and
/// never from https down to http.
fn redirect_target(from: &Url, status: u16, headers: &HeaderMap) -> Result<Url, FetchError> {
    let location = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            FetchError::Redirect(format!("HTTP {status} redirect without a usable Location"))
        })?;
    let next = from.join(location).map_err(|e| {
        FetchError::Redirect(format!(
            "HTTP {status} redirect to a bad URL {location:?}: {e}"
        ))
    })?;
    match next.scheme() {
        "http" if from.scheme() == "https" => Err(FetchError::Redirect(
            "refusing a redirect from https to http".into(),
        )),
        "http" | "https" => Ok(next),
        other => Err(FetchError::Redirect(format!(
            "refusing a redirect to a {other}: URL"
        ))),
    }
}

/// `Cache-Control: max-age=N` (`no-cache`/`no-store` say nothing about how
/// often to poll, so they are not hints).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|d| {
            let (k, v) = d.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| v.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .map(Duration::from_secs)
}

/// `Retry-After` as seconds or an HTTP date (a date in the past is 0),
/// capped at [`crate::schedule::MAX_RETRY_AFTER`]. Feeds and webhooks
/// both read it here.
pub fn retry_after(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(d.min(crate::schedule::MAX_RETRY_AFTER))
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
        let now = std::time::SystemTime::now();
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, Max-Age=300, must-revalidate"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(300)));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        assert_eq!(max_age(&h), None);
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=soon"),
        );
        assert_eq!(max_age(&h), None);
    }

    #[test]
    fn redirect_targets() {
        let from = Url::parse("https://wire.example/feeds/a.xml").unwrap();
        let to = |loc: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::LOCATION, HeaderValue::from_str(loc).unwrap());
            redirect_target(&from, 301, &h).map(String::from)
        };
        assert_eq!(to("b.xml").unwrap(), "https://wire.example/feeds/b.xml");
        assert_eq!(to("/x").unwrap(), "https://wire.example/x");
        assert_eq!(
            to("https://other.example/y").unwrap(),
            "https://other.example/y"
        );
        let err = |loc: &str| to(loc).unwrap_err().to_string();
        assert!(err("http://wire.example/b.xml").contains("https to http"));
        assert!(err("file:///etc/passwd").contains("file:"));
        assert!(err("ftp://wire.example/").contains("ftp:"));
        let none = redirect_target(&from, 302, &HeaderMap::new()).unwrap_err();
        assert!(none.to_string().contains("without a usable Location"));
    }

    #[test]
    fn host_keys_include_the_port() {
        let k = |u: &str| host_key(&Url::parse(u).unwrap());
        assert_eq!(k("https://wire.example/a"), "wire.example:443");
        assert_eq!(k("http://wire.example/a"), "wire.example:80");
        assert_eq!(k("http://127.0.0.1:8080/a"), "127.0.0.1:8080");
        assert_ne!(k("http://127.0.0.1:8080/a"), k("http://127.0.0.1:8081/a"));
    }
}
