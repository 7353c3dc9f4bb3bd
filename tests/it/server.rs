//! A tiny loopback HTTP/1.1 server for the integration tests.
//!
//! * Binds `127.0.0.1:0`, one thread per connection, `Connection: close` on
//!   every reply (no keep-alive), stops when dropped.
//! * Routes are keyed by path (the query string is ignored) and can be added
//!   or replaced at any time with [`TestServer::route`]; unknown paths get 404.
//! * Every request is recorded (method, target, lower-cased headers, the status
//!   the server chose) and can be inspected with [`TestServer::requests`].
//!
//! Route kinds ([`Route`]): a fixed [`Reply`] (any status, headers, body; see
//! the constructors for status-only, redirect and gzip replies), a conditional
//! feed that answers `If-None-Match` / `If-Modified-Since` with 304, a
//! sequence of replies (one per request, the last one repeats), a stall
//! (read the request, never answer) and a trickle (headers, then one body byte
//! per interval).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest a stall / trickle connection is held open even if nobody drops
/// the server (a safety net; tests kill their child long before this).
const MAX_HOLD: Duration = Duration::from_secs(120);

/// One HTTP response.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send no `Content-Length`: the body ends when the connection closes.
    pub close_delimited: bool,
}

impl Reply {
    /// `200` with the given content type (e.g. `application/rss+xml;
    /// charset=utf-8`) and body.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// A reply with only a status and an empty body (500, 404, 410, ...).
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close_delimited: false,
        }
    }

    /// A redirect (`301`, `302`, ...) to `location` (absolute URL or path).
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status).header("Location", location)
    }

    /// `200` whose body is `compressed` (already gzip-ed) sent with
    /// `Content-Encoding: gzip`. See [`gzip`] and [`gzip_bomb`].
    pub fn gzip(content_type: &str, compressed: Vec<u8>) -> Reply {
        Reply::ok(content_type, compressed).header("Content-Encoding", "gzip")
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Omits `Content-Length`, so the client learns the size only by reading
    /// until the connection closes (builder style).
    pub fn close_delimited(mut self) -> Reply {
        self.close_delimited = true;
        self
    }

    /// Replaces the body (builder style).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// What a path answers.
#[derive(Clone, Debug)]
pub enum Route {
    /// The same reply every time.
    Fixed(Reply),
    /// A feed with validators: `200` + `ETag`/`Last-Modified` normally, `304`
    /// (no body) when the request's `If-None-Match` equals `etag` or its
    /// `If-Modified-Since` equals `last_modified` byte for byte.
    Conditional {
        content_type: String,
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// One reply per request in order; once exhausted the last one repeats.
    Sequence(Vec<Reply>),
    /// Reads the request, then holds the connection open and never answers.
    Stall,
    /// Sends the status line and headers of `reply` (with its full
    /// `Content-Length`) at once, then its body one byte per `every`.
    Trickle { reply: Reply, every: Duration },
}

impl Route {
    /// Shorthand for `Route::Fixed(Reply::ok(content_type, body))`.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Route {
        Route::Fixed(Reply::ok(content_type, body))
    }

    /// Shorthand for a status-only route.
    pub fn status(status: u16) -> Route {
        Route::Fixed(Reply::status(status))
    }

    /// A conditional feed with both an `ETag` and a `Last-Modified`.
    pub fn conditional(content_type: &str, body: impl Into<Vec<u8>>) -> Route {
        Route::Conditional {
            content_type: content_type.to_string(),
            body: body.into(),
            etag: Some("\"wirewatch-test-v1\"".to_string()),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".to_string()),
        }
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path plus query, if any).
    pub target: String,
    /// The path part of `target` (what routes are matched on).
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The status the server chose (0 for a stall).
    pub status: u16,
    /// The request body (read when a `Content-Length` is given; up to 4 MiB).
    pub body: Vec<u8>,
    /// When the request head had been read.
    pub at: Instant,
}

impl Request {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    routes: Mutex<HashMap<String, (Route, usize)>>,
    requests: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

/// The server; see the module docs. Dropping it stops accepting and makes
/// held (stall/trickle) connections close within ~50 ms.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_on("127.0.0.1:0")
    }

    /// A server on a given address, e.g. the port of a server that was
    /// dropped (to test a receiver that goes away and comes back).
    pub fn start_on(addr: &str) -> TestServer {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let sh = Arc::clone(&sh);
                thread::spawn(move || serve(stream, &sh));
            }
        });
        TestServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Adds or replaces the route for `path` (resets a sequence's position).
    pub fn route(&self, path: &str, route: Route) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), (route, 0));
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests whose path is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// How many requests `path` has received.
    pub fn hits(&self, path: &str) -> usize {
        self.requests_to(path).len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the acceptor sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// Gzip of `data` at level 9.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("gzip write");
    enc.finish().expect("gzip finish")
}

/// A gzip stream that inflates to `prefix`, then `mib` MiB of `fill`, then
/// `suffix`, built without compressing the whole thing: a raw deflate
/// stream is flushed (sync) after every MiB, and once the compressor is in
/// its steady state the bytes for one more MiB of `fill` are the same every
/// time, so that block is repeated. The CRC is combined per MiB. A 1 GiB
/// bomb is built in well under a second and is about 1 MiB on the wire.
pub fn gzip_bomb(prefix: &[u8], fill: u8, mib: usize, suffix: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    fn push(c: &mut Compress, input: &[u8], flush: FlushCompress) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() / 64 + 1024);
        let mut consumed = 0;
        loop {
            out.reserve(64 * 1024);
            let before_in = c.total_in();
            c.compress_vec(&input[consumed..], &mut out, flush)
                .expect("deflate");
            consumed += (c.total_in() - before_in) as usize;
            // Done when all input is taken and the flush left spare room.
            if consumed == input.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }
    let block = vec![fill; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut body = push(&mut c, prefix, FlushCompress::Sync);
    let mut crc = Crc::new();
    crc.update(prefix);
    let mut block_crc = Crc::new();
    block_crc.update(&block);
    // Compress MiBs until two consecutive ones encode identically.
    let mut last: Vec<u8> = Vec::new();
    let mut done = 0;
    while done < mib {
        let enc = push(&mut c, &block, FlushCompress::Sync);
        let steady = enc == last;
        body.extend_from_slice(&enc);
        crc.combine(&block_crc);
        done += 1;
        if steady {
            for _ in done..mib {
                body.extend_from_slice(&enc);
                crc.combine(&block_crc);
            }
            done = mib;
        }
        last = enc;
    }
    body.extend_from_slice(&push(&mut c, suffix, FlushCompress::Finish));
    crc.update(suffix);
    let total = prefix.len() as u64 + (mib as u64) * (1 << 20) + suffix.len() as u64;
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend_from_slice(&body);
    gz.extend_from_slice(&crc.sum().to_le_bytes());
    gz.extend_from_slice(&(total as u32).to_le_bytes());
    gz
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// Lower-cased header names and their values, in arrival order.
type Headers = Vec<(String, String)>;

/// Reads one request head (up to the blank line) and, when a
/// `Content-Length` is given, its body (up to 4 MiB; the rest is dropped).
fn read_head(stream: &mut TcpStream) -> Option<(String, String, Headers, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    if len > 0 {
        let _ = stream.take(len.min(4 << 20)).read_to_end(&mut body);
        if len > 4 << 20 {
            let _ = std::io::copy(&mut stream.take(len - (4 << 20)), &mut std::io::sink());
        }
    }
    Some((method, target, headers, body))
}

fn head_bytes(reply: &Reply) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (n, v) in &reply.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if reply.status != 304 && !reply.close_delimited && !reply.has_header("Content-Length") {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// Sleeps up to `d`, in small steps, returning `false` if the server stopped.
fn nap(shared: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
    !shared.stop.load(Ordering::SeqCst)
}

/// What to do with one connection, decided under the routes lock.
enum Action {
    Send(Reply),
    Stall,
    Trickle(Reply, Duration),
}

fn decide(shared: &Shared, path: &str, headers: &[(String, String)]) -> Action {
    let hdr = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut routes = shared.routes.lock().unwrap();
    let Some((route, pos)) = routes.get_mut(path) else {
        return Action::Send(Reply::status(404).header("Content-Type", "text/plain"));
    };
    match route {
        Route::Fixed(r) => Action::Send(r.clone()),
        Route::Sequence(rs) => {
            let r = rs
                .get(*pos)
                .or(rs.last())
                .cloned()
                .unwrap_or_else(|| Reply::status(500));
            *pos += 1;
            Action::Send(r)
        }
        Route::Conditional {
            content_type,
            body,
            etag,
            last_modified,
        } => {
            let mut validators = Reply::status(200);
            if let Some(e) = etag {
                validators = validators.header("ETag", e);
            }
            if let Some(lm) = last_modified {
                validators = validators.header("Last-Modified", lm);
            }
            let etag_hit = matches!((etag.as_deref(), hdr("if-none-match")), (Some(e), Some(h))
                if h.split(',').any(|t| t.trim() == e || t.trim() == "*"));
            let lm_hit = matches!((last_modified.as_deref(), hdr("if-modified-since")),
                (Some(lm), Some(h)) if h.trim() == lm);
            if etag_hit || lm_hit {
                validators.status = 304;
                Action::Send(validators)
            } else {
                Action::Send(
                    validators
                        .header("Content-Type", content_type)
                        .body(body.clone()),
                )
            }
        }
        Route::Stall => Action::Stall,
        Route::Trickle { reply, every } => Action::Trickle(reply.clone(), *every),
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    let Some((method, target, headers, body)) = read_head(&mut stream) else {
        return;
    };
    let at = Instant::now();
    let path = target.split('?').next().unwrap_or("").to_string();
    let action = decide(shared, &path, &headers);
    let status = match &action {
        Action::Send(r) | Action::Trickle(r, _) => r.status,
        Action::Stall => 0,
    };
    shared.requests.lock().unwrap().push(Request {
        method: method.clone(),
        target,
        path,
        headers,
        status,
        body,
        at,
    });
    match action {
        Action::Send(reply) => {
            let _ = stream.write_all(&head_bytes(&reply));
            if method != "HEAD" && reply.status != 304 {
                let _ = stream.write_all(&reply.body);
            }
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Write);
            // Let the client read everything before the socket is closed.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut [0u8; 1]);
        }
        Action::Stall => {
            nap(shared, MAX_HOLD);
        }
        Action::Trickle(reply, every) => {
            if stream.write_all(&head_bytes(&reply)).is_err() {
                return;
            }
            let start = Instant::now();
            for b in &reply.body {
                if stream.write_all(&[*b]).is_err() || stream.flush().is_err() {
                    return;
                }
                if start.elapsed() > MAX_HOLD || !nap(shared, every) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Self-checks of the test server with a raw `TcpStream` client.
    use super::*;

    /// Sends a raw GET and returns (status, lower-cased headers, body).
    fn get(srv: &TestServer, path: &str, extra: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
        for (n, v) in extra {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), raw[split + 4..].to_vec())
    }

    #[test]
    fn fixed_unknown_and_recording() {
        let srv = TestServer::start();
        srv.route(
            "/a.xml",
            Route::ok("application/rss+xml; charset=utf-8", "hello"),
        );
        let (st, head, body) = get(&srv, "/a.xml?x=1", &[("X-Test", "yes")]);
        assert_eq!(st, 200);
        assert!(head.contains("content-type: application/rss+xml; charset=utf-8"));
        assert!(head.contains("content-length: 5"));
        assert_eq!(body, b"hello");
        assert_eq!(get(&srv, "/nope", &[]).0, 404);
        let reqs = srv.requests();
        assert!(reqs.len() >= 2);
        assert_eq!(reqs[0].method, "GET");
        assert_eq!(reqs[0].path, "/a.xml");
        assert_eq!(reqs[0].target, "/a.xml?x=1");
        assert_eq!(reqs[0].header("x-test"), Some("yes"));
        assert_eq!(reqs[1].status, 404);
        assert_eq!(srv.hits("/a.xml"), 1);
        // No Content-Length: the body runs to the close.
        srv.route(
            "/nolen",
            Route::Fixed(Reply::ok("text/plain", "abc").close_delimited()),
        );
        let (st, head, body) = get(&srv, "/nolen", &[]);
        assert_eq!((st, body.as_slice()), (200, b"abc".as_slice()));
        assert!(!head.contains("content-length"), "{head}");
        // Replace at runtime.
        srv.route("/a.xml", Route::status(410));
        assert_eq!(get(&srv, "/a.xml", &[]).0, 410);
    }

    #[test]
    fn conditional_answers_304() {
        let srv = TestServer::start();
        srv.route("/c", Route::conditional("application/atom+xml", "<feed/>"));
        let (st, head, body) = get(&srv, "/c", &[]);
        assert_eq!((st, body.as_slice()), (200, b"<feed/>".as_slice()));
        assert!(head.contains("etag: \"wirewatch-test-v1\""));
        assert!(head.contains("last-modified: wed, 21 oct 2015 07:28:00 gmt"));
        let (st, _, body) = get(&srv, "/c", &[("If-None-Match", "\"wirewatch-test-v1\"")]);
        assert_eq!((st, body.len()), (304, 0));
        let (st, _, _) = get(
            &srv,
            "/c",
            &[("If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT")],
        );
        assert_eq!(st, 304);
        assert_eq!(get(&srv, "/c", &[("If-None-Match", "\"other\"")]).0, 200);
    }

    #[test]
    fn sequence_redirect_and_status_headers() {
        let srv = TestServer::start();
        srv.route(
            "/s",
            Route::Sequence(vec![
                Reply::ok("text/plain", "one"),
                Reply::ok("text/plain", "two"),
            ]),
        );
        let bodies: Vec<Vec<u8>> = (0..3).map(|_| get(&srv, "/s", &[]).2).collect();
        assert_eq!(
            bodies,
            vec![b"one".to_vec(), b"two".to_vec(), b"two".to_vec()]
        );
        srv.route("/r", Route::Fixed(Reply::redirect(301, "/s")));
        let (st, head, _) = get(&srv, "/r", &[]);
        assert_eq!(st, 301);
        assert!(head.contains("location: /s"));
        srv.route(
            "/busy",
            Route::Fixed(Reply::status(429).header("Retry-After", "120")),
        );
        let (st, head, _) = get(&srv, "/busy", &[]);
        assert_eq!(st, 429);
        assert!(head.contains("retry-after: 120"));
    }

    #[test]
    fn gzip_round_trip() {
        let gz = gzip_bomb(b"<a>", b' ', 8, b"</a>");
        assert!(gz.len() < 16 * 1024, "compressed to {} bytes", gz.len());
        let mut out = Vec::new();
        // GzDecoder checks the CRC and length in the trailer.
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 3 + (8 << 20) + 4);
        assert!(out.starts_with(b"<a> ") && out.ends_with(b" </a>"));
        assert!(out[3..out.len() - 4].iter().all(|&b| b == b' '));
        let srv = TestServer::start();
        srv.route("/g", Route::Fixed(Reply::gzip("text/xml", gzip(b"hi"))));
        let (st, head, body) = get(&srv, "/g", &[]);
        assert_eq!(st, 200);
        assert!(head.contains("content-encoding: gzip"));
        assert_eq!(body, gzip(b"hi"));
    }

    #[test]
    fn stall_and_trickle_hold_the_connection() {
        let srv = TestServer::start();
        srv.route("/stall", Route::Stall);
        srv.route(
            "/slow",
            Route::Trickle {
                reply: Reply::ok("text/plain", "abcdef"),
                every: Duration::from_millis(300),
            },
        );
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s.write_all(b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let err = s.read(&mut [0u8; 16]).unwrap_err();
        assert!(matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ));

        let mut t = TcpStream::connect(srv.addr).unwrap();
        t.set_read_timeout(Some(Duration::from_millis(900)))
            .unwrap();
        t.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while started.elapsed() < Duration::from_millis(800) {
            match t.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("Content-Length: 6"));
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        assert!(
            !body.is_empty() && body.len() < 6,
            "trickled body so far: {body:?}"
        );
        assert_eq!(srv.requests_to("/stall")[0].status, 0);

        // Dropping the server releases the held connections promptly.
        let dropped = Instant::now();
        drop(srv);
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        match s.read(&mut [0u8; 16]) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("stalled connection not closed after drop: {other:?}"),
        }
        assert!(dropped.elapsed() < Duration::from_secs(2));
    }
}
