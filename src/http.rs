//! The optional HTTP endpoint (`[http] listen`): `GET /healthz` for load
//! balancers and probes, `GET /metrics` for Prometheus. Off unless
//! configured; it has no authentication, so it belongs on loopback
//! (`docs/metrics.md`).
//!
//! Built on hyper's HTTP/1 server: hyper is in the binary already (it is
//! reqwest's client), its request parser is mature, and two fixed routes
//! need no framework. Hyper parses; the bounds are ours, so no client, slow
//! or hostile, can hold the endpoint or reach the daemon:
//! - at most [`MAX_CONNECTIONS`] connections are served at once; more wait
//!   in the kernel's listen backlog;
//! - one request per connection (no keep-alive); a request head larger than
//!   [`MAX_HEAD`] bytes is refused by hyper; request bodies are never read;
//! - the head must arrive within [`HEAD_TIMEOUT`] and the whole exchange,
//!   answer written, end within [`CONNECTION_TIMEOUT`], or the connection
//!   is dropped;
//! - the health check and a scrape's database read each get
//!   [`CHECK_TIMEOUT`]; past it the answer says so.
//!
//! The listener is bound ([`bind`]) before the daemon starts its tasks and
//! reports ready: a bind failure stops the start with an error naming the
//! address, so the daemon never runs without the endpoint its configuration
//! asks for (monitoring that silently has nothing to scrape is worse than a
//! service that fails to start). [`serve`] runs for the daemon's whole life
//! and always answers about the configuration running at that moment; a
//! changed `listen` takes effect at the next start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpConfig;
use crate::metrics::{ProcessFacts, Scrape};
use crate::pipeline::Ctx;
use crate::service::Liveness;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Largest request head (request line and headers) accepted; hyper's
/// minimum is 8 KiB.
pub const MAX_HEAD: usize = 16 * 1024;
/// Time for a client to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole exchange, from accept to the last byte of the answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// Time for the health check, and for a scrape's outbox read.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The running generation: its context and its feed-poll liveness (what
/// the systemd watchdog checks too). Called once per request.
pub type Current = Arc<dyn Fn() -> (Arc<Ctx>, Arc<Liveness>) + Send + Sync>;

/// Binds `[http] listen`. The error names the address and the reason.
pub async fn bind(cfg: &HttpConfig) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(cfg.listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {} (the [http] endpoint): {e}", cfg.listen)
    })?;
    if !cfg.listen.ip().is_loopback() {
        tracing::warn!(listen = %cfg.listen,
            "the HTTP endpoint listens beyond loopback and has no authentication; anyone who can reach it sees feed, rule and sink ids");
    }
    tracing::info!(listen = %cfg.listen, "serving /healthz and /metrics");
    Ok(listener)
}

/// Serves `listener` until `cancel` fires; then exchanges in flight get a
/// second to finish.
pub async fn serve(listener: TcpListener, current: Current, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause, never spin.
                tracing::warn!(error = %e, "http endpoint: accept failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                }
            }
        };
        let current = current.clone();
        tracker.spawn(async move {
            exchange(stream, peer, current).await;
            drop(permit);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
}

/// One connection: one request, one answer, within the bounds above.
async fn exchange(stream: TcpStream, peer: SocketAddr, current: Current) {
    let service = service_fn(move |req: Request<Incoming>| {
        let current = current.clone();
        async move { Ok::<_, Infallible>(respond(&req, &current).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_HEAD);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "http endpoint: connection failed")
        }
        Err(_) => {
            tracing::debug!(peer = %peer, timeout = ?CONNECTION_TIMEOUT,
                "http endpoint: connection dropped at its deadline")
        }
    }
}

#[derive(Clone, Copy)]
enum Route {
    Health,
    Metrics,
}

async fn respond(req: &Request<Incoming>, current: &Current) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    let route = match req.uri().path() {
        "/healthz" => Route::Health,
        "/metrics" => Route::Metrics,
        _ => {
            return answer(
                StatusCode::NOT_FOUND,
                PLAIN,
                "not found; this endpoint serves /healthz and /metrics\n",
            )
        }
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = answer(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "method not allowed; use GET\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let (ctx, live) = current();
    match route {
        Route::Health => {
            match tokio::time::timeout(CHECK_TIMEOUT, crate::daemon::health(&ctx, &live)).await {
                Ok(Ok(())) => answer(StatusCode::OK, PLAIN, "ok\n"),
                Ok(Err(why)) => {
                    tracing::debug!(reason = %why, "health check failed (/healthz)");
                    answer(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{why}\n"))
                }
                Err(_) => answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    format!("health check took longer than {CHECK_TIMEOUT:?}\n"),
                ),
            }
        }
        Route::Metrics => answer(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            scrape(&ctx).await,
        ),
    }
}

fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The exposition, with the facts read at scrape time: the outbox of each
/// configured sink (from the state database, under [`CHECK_TIMEOUT`]) and
/// the process's own figures.
async fn scrape(ctx: &Ctx) -> String {
    let sinks: Vec<String> = ctx.config.sinks.iter().map(|s| s.id.clone()).collect();
    let read = ctx.state.call(move |s| s.outbox_depths(&sinks));
    let outbox = match tokio::time::timeout(CHECK_TIMEOUT, read).await {
        Ok(Ok(depths)) => Some(depths),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the outbox; its series are left out");
            None
        }
        Err(_) => {
            tracing::warn!(timeout = ?CHECK_TIMEOUT,
                "metrics: the outbox read took too long; its series are left out");
            None
        }
    };
    ctx.stats.metrics.render(&Scrape {
        outbox,
        process: process_facts(),
    })
}

/// Clock ticks per second of `/proc/self/stat`'s CPU times: Linux's
/// USER_HZ, 100 on every architecture wirewatch is built for.
const USER_HZ: f64 = 100.0;

/// Resident memory, CPU time and open descriptors from `/proc/self`
/// (Linux); whatever cannot be read is `None` and left out.
fn process_facts() -> ProcessFacts {
    let resident_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| resident_kib(&s))
        .map(|kib| kib * 1024);
    let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| cpu_ticks(&s))
        .map(|t| t as f64 / USER_HZ);
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    ProcessFacts {
        resident_bytes,
        cpu_seconds,
        open_fds,
    }
}

/// `VmRSS:    1234 kB` of `/proc/self/status`.
fn resident_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15) of `/proc/self/stat`. The command name
/// (field 2, in parentheses) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_self_fields() {
        let status = "Name:\twirewatch\nVmPeak:\t  9000 kB\nVmRSS:\t   4321 kB\nThreads:\t3\n";
        assert_eq!(resident_kib(status), Some(4321));
        assert_eq!(resident_kib("Name: x\n"), None);
        // Field 2 with a space and a parenthesis; utime 250, stime 50.
        let stat =
            "1234 (ww (x) y) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 100 1000 200";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
        let here = process_facts();
        if cfg!(target_os = "linux") {
            assert!(here.resident_bytes.is_some_and(|b| b > 0));
            assert!(here.open_fds.is_some_and(|n| n >= 3));
            assert!(here.cpu_seconds.is_some());
        }
    }
}
