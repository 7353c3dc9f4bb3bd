//! The bundled demo feed server behind `wirewatch demo`.
//!
//! [`DemoServer::start`] binds an ephemeral port on 127.0.0.1 and serves a
//! handful of sample news feeds built from `stories.json` (embedded at
//! compile time). Each story carries an `at` offset: it shows up in its feed
//! only once that many seconds have passed since `start` was called, so a
//! poller watching the server sees a backlog at first and then fresh items
//! trickling in. Every feed is rendered in a different format (RSS 2.0, Atom,
//! JSON Feed 1.1, and RSS encoded in windows-1251) to exercise the whole
//! fetch, decode and parse path.
//!
//! The HTTP side is a deliberately tiny HTTP/1.1 implementation: one request
//! per connection (`Connection: close`), `GET` and `HEAD` only, a cap on the
//! request head, and conditional requests through `If-None-Match` (strong
//! `ETag` over the body) and `If-Modified-Since`. Malformed input gets a 4xx
//! answer or a closed socket, never a panic.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The sample data: feeds and stories.
const STORIES_JSON: &str = include_str!("stories.json");

/// Largest request head (request line plus headers) accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing a response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, and how much, to read from a client after answering so that
/// closing the socket doesn't reset a response it hasn't read yet.
const LINGER_TIMEOUT: Duration = Duration::from_millis(500);
const LINGER_MAX_BYTES: usize = 64 * 1024;
/// Connections served at once; further ones are closed straight away.
const MAX_CONNECTIONS: usize = 64;
/// Value of the `Server` header.
const SERVER_NAME: &str = "wirewatch-demo";

/// One feed served by the demo server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoFeed {
    /// Feed id, usable as a wirewatch `[[feed]] id`.
    pub id: String,
    pub title: String,
    /// Full URL on the running server, e.g. `http://127.0.0.1:40123/world.xml`.
    pub url: String,
}

/// A running demo server. It keeps serving until the cancellation token
/// given to [`DemoServer::start`] is cancelled; dropping this value does not
/// stop it.
#[derive(Debug)]
pub struct DemoServer {
    addr: SocketAddr,
    feeds: Vec<DemoFeed>,
    last_story_at: Duration,
    story_count: usize,
}

impl DemoServer {
    /// Binds 127.0.0.1:0 and serves until `cancel` is cancelled. Time zero
    /// (story `at` offsets) = this call.
    pub async fn start(cancel: CancellationToken) -> io::Result<DemoServer> {
        let catalog = Catalog::from_json(STORIES_JSON)?;
        Self::start_with(cancel, catalog, Origin::now()).await
    }

    async fn start_with(
        cancel: CancellationToken,
        catalog: Catalog,
        origin: Origin,
    ) -> io::Result<DemoServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let story_count = catalog.stories.len();
        let last_story_at =
            Duration::from_secs(catalog.stories.iter().map(|s| s.at).max().unwrap_or(0));
        let shared = Arc::new(Shared::new(catalog, origin, addr));
        let feeds = shared
            .feeds
            .iter()
            .map(|f| DemoFeed {
                id: f.spec.id.clone(),
                title: f.spec.title.clone(),
                url: f.url.clone(),
            })
            .collect();
        tokio::spawn(accept_loop(listener, shared, cancel));
        Ok(DemoServer {
            addr,
            feeds,
            last_story_at,
            story_count,
        })
    }

    /// The feeds served, in the order of `stories.json`.
    pub fn feeds(&self) -> &[DemoFeed] {
        &self.feeds
    }

    /// Offset after start at which the last story appears.
    pub fn last_story_at(&self) -> Duration {
        self.last_story_at
    }

    /// Number of stories across all feeds (including those not yet out).
    pub fn story_count(&self) -> usize {
        self.story_count
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

// ---------------------------------------------------------------------------
// Sample data
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Format {
    /// RSS 2.0 in UTF-8, `content:encoded` as CDATA.
    Rss,
    /// Atom 1.0 in UTF-8, `content type="html"` escaped.
    Atom,
    /// JSON Feed 1.1.
    Json,
    /// RSS 2.0 encoded in windows-1251 (no CDATA: text must be escapable).
    RssCp1251,
}

impl Format {
    /// The name used in `stories.json`.
    fn name(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
            Format::Json => "json",
            Format::RssCp1251 => "rss-cp1251",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedSpec {
    id: String,
    title: String,
    format: Format,
    /// Route on the server, starting with `/`.
    path: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default)]
    description: String,
}

fn default_language() -> String {
    "en".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Story {
    /// Id of the feed the story belongs to.
    feed: String,
    /// Seconds after server start at which the story appears.
    at: u64,
    /// Publication time, in seconds relative to server start.
    published_offset: i64,
    #[serde(default)]
    guid: Option<String>,
    title: String,
    #[serde(default)]
    link: Option<String>,
    summary: String,
    #[serde(default)]
    content_html: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    feeds: Vec<FeedSpec>,
    stories: Vec<Story>,
}

impl Catalog {
    fn from_json(text: &str) -> io::Result<Catalog> {
        let catalog: Catalog = serde_json::from_str(text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("demo stories.json is invalid: {e}"),
            )
        })?;
        catalog.validate().map_err(|msg| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("demo stories.json is invalid: {msg}"),
            )
        })?;
        Ok(catalog)
    }

    /// Structural checks: anything that would make the server misbehave or
    /// render an invalid feed.
    fn validate(&self) -> Result<(), String> {
        let mut ids = HashSet::new();
        let mut paths = HashSet::new();
        for feed in &self.feeds {
            let id_ok = !feed.id.is_empty()
                && feed.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !id_ok {
                return Err(format!("feed id {:?} is not [a-z0-9_-]+", feed.id));
            }
            if !ids.insert(feed.id.as_str()) {
                return Err(format!("feed id {:?} is used twice", feed.id));
            }
            let path_ok = feed.path.starts_with('/')
                && feed.path.len() > 1
                && feed
                    .path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
            if !path_ok {
                return Err(format!(
                    "feed path {:?} is not a plain absolute path",
                    feed.path
                ));
            }
            if !paths.insert(feed.path.as_str()) {
                return Err(format!("feed path {:?} is used twice", feed.path));
            }
        }
        let mut guids = HashSet::new();
        for (n, story) in self.stories.iter().enumerate() {
            let Some(feed) = self.feeds.iter().find(|f| f.id == story.feed) else {
                return Err(format!("story #{n} names unknown feed {:?}", story.feed));
            };
            if let Some(guid) = &story.guid {
                if !guids.insert(guid.as_str()) {
                    return Err(format!("story guid {guid:?} is used twice"));
                }
            }
            // Atom entries and JSON Feed items must carry an id.
            if matches!(feed.format, Format::Atom | Format::Json) && story.guid.is_none() {
                return Err(format!(
                    "story #{n} ({:?}) needs a guid: feed {:?} is {:?}",
                    story.title, feed.id, feed.format
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Server state and rendering
// ---------------------------------------------------------------------------

/// Time zero of the story timeline, as a monotonic instant (for "has this
/// story appeared yet") and as wall-clock time (for dates in the feeds).
#[derive(Debug, Clone, Copy)]
struct Origin {
    instant: Instant,
    wall: DateTime<Utc>,
}

impl Origin {
    fn now() -> Origin {
        Origin {
            instant: Instant::now(),
            wall: Utc::now(),
        }
    }

    /// An origin `ago` in the past (tests use it to fast-forward).
    #[cfg(test)]
    fn ago(ago: Duration) -> Origin {
        let now = Origin::now();
        Origin {
            instant: now.instant.checked_sub(ago).unwrap_or(now.instant),
            wall: now.wall - TimeDelta::from_std(ago).unwrap_or(TimeDelta::zero()),
        }
    }

    fn elapsed(&self) -> Duration {
        self.instant.elapsed()
    }

    fn plus_secs(&self, secs: i64) -> DateTime<Utc> {
        self.wall + TimeDelta::seconds(secs)
    }
}

struct FeedState {
    spec: FeedSpec,
    url: String,
    /// Newest first.
    stories: Vec<Story>,
}

struct Shared {
    origin: Origin,
    feeds: Vec<FeedState>,
}

impl Shared {
    fn new(catalog: Catalog, origin: Origin, addr: SocketAddr) -> Shared {
        let Catalog { feeds, stories } = catalog;
        let feeds = feeds
            .into_iter()
            .map(|spec| {
                let mut own: Vec<Story> = stories
                    .iter()
                    .filter(|s| s.feed == spec.id)
                    .cloned()
                    .collect();
                own.sort_by(|a, b| {
                    b.published_offset
                        .cmp(&a.published_offset)
                        .then(b.at.cmp(&a.at))
                });
                FeedState {
                    url: format!("http://{addr}{}", spec.path),
                    spec,
                    stories: own,
                }
            })
            .collect();
        Shared { origin, feeds }
    }
}

/// A feed document as served.
struct Rendered {
    body: Vec<u8>,
    content_type: &'static str,
    /// Quoted strong entity tag.
    etag: String,
    last_modified: DateTime<Utc>,
}

/// Renders `feed` as it stands `elapsed` after the origin. The output
/// depends only on which stories are out, so the ETag is stable between
/// polls until a new story appears.
fn render_feed(feed: &FeedState, origin: &Origin, elapsed: Duration) -> Rendered {
    let visible: Vec<&Story> = feed
        .stories
        .iter()
        .filter(|s| Duration::from_secs(s.at) <= elapsed)
        .collect();
    let newest_at = visible.iter().map(|s| s.at).max().unwrap_or(0);
    let last_modified = origin.plus_secs(i64::try_from(newest_at).unwrap_or(i64::MAX / 2));
    let (body, content_type) = match feed.spec.format {
        Format::Rss => (
            render_rss(feed, &visible, origin, last_modified, "UTF-8", true, None).into_bytes(),
            "application/rss+xml; charset=utf-8",
        ),
        Format::RssCp1251 => {
            // Moscow time in the dates, for a little variety.
            let msk = FixedOffset::east_opt(3 * 3600);
            let xml = render_rss(
                feed,
                &visible,
                origin,
                last_modified,
                "windows-1251",
                false,
                msk,
            );
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&xml);
            if unmappable {
                // encoding_rs wrote numeric character references, which are
                // fine in escaped XML text (the only kind this feed has).
                tracing::debug!(feed = %feed.spec.id, "demo feed has characters outside windows-1251");
            }
            (
                bytes.into_owned(),
                "application/rss+xml; charset=windows-1251",
            )
        }
        Format::Atom => (
            render_atom(feed, &visible, origin, last_modified).into_bytes(),
            "application/atom+xml; charset=utf-8",
        ),
        Format::Json => (
            render_json(feed, &visible, origin).into_bytes(),
            "application/feed+json; charset=utf-8",
        ),
    };
    let etag = etag_for(&body);
    Rendered {
        body,
        content_type,
        etag,
        last_modified,
    }
}

fn etag_for(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

/// Escapes text for XML character data and attribute values. Characters
/// XML 1.0 forbids (most C0 controls) are dropped.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// Wraps text in a CDATA section, splitting any `]]>` inside it.
fn cdata(text: &str) -> String {
    let clean: String = text.chars().filter(|&c| is_xml_char(c)).collect();
    format!("<![CDATA[{}]]>", clean.replace("]]>", "]]]]><![CDATA[>"))
}

fn is_xml_char(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => true,
        '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => false,
        _ => true,
    }
}

/// A plain http(s) URL for the feed's (fictional) home page.
fn home_page(feed: &FeedSpec) -> String {
    format!("https://example.invalid/{}/", feed.id)
}

fn render_rss(
    feed: &FeedState,
    stories: &[&Story],
    origin: &Origin,
    last_modified: DateTime<Utc>,
    encoding: &str,
    use_cdata: bool,
    tz: Option<FixedOffset>,
) -> String {
    let date = |t: DateTime<Utc>| match tz {
        Some(tz) => t.with_timezone(&tz).to_rfc2822(),
        None => t.to_rfc2822(),
    };
    let spec = &feed.spec;
    let mut x = String::with_capacity(2048 + stories.len() * 2048);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n\
         <rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n\
         <channel>\n\
         <title>{}</title>\n\
         <link>{}</link>\n\
         <description>{}</description>\n\
         <language>{}</language>\n\
         <atom:link href=\"{}\" rel=\"self\" type=\"application/rss+xml\"/>\n\
         <lastBuildDate>{}</lastBuildDate>\n",
        escape_xml(&spec.title),
        escape_xml(&home_page(spec)),
        escape_xml(&spec.description),
        escape_xml(&spec.language),
        escape_xml(&feed.url),
        date(last_modified),
    );
    for story in stories {
        x.push_str("<item>\n");
        let _ = writeln!(x, "<title>{}</title>", escape_xml(&story.title));
        if let Some(link) = &story.link {
            let _ = writeln!(x, "<link>{}</link>", escape_xml(link));
        }
        if let Some(guid) = &story.guid {
            let _ = writeln!(x, "<guid isPermaLink=\"false\">{}</guid>", escape_xml(guid));
        }
        let _ = writeln!(
            x,
            "<pubDate>{}</pubDate>",
            date(origin.plus_secs(story.published_offset))
        );
        if let Some(author) = &story.author {
            let _ = writeln!(x, "<dc:creator>{}</dc:creator>", escape_xml(author));
        }
        for category in &story.categories {
            let _ = writeln!(x, "<category>{}</category>", escape_xml(category));
        }
        let _ = writeln!(
            x,
            "<description>{}</description>",
            escape_xml(&story.summary)
        );
        if let Some(html) = &story.content_html {
            let body = if use_cdata {
                cdata(html)
            } else {
                escape_xml(html)
            };
            let _ = writeln!(x, "<content:encoded>{body}</content:encoded>");
        }
        x.push_str("</item>\n");
    }
    x.push_str("</channel>\n</rss>\n");
    x
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn render_atom(
    feed: &FeedState,
    stories: &[&Story],
    origin: &Origin,
    last_modified: DateTime<Utc>,
) -> String {
    let spec = &feed.spec;
    let mut x = String::with_capacity(2048 + stories.len() * 2048);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n\
         <id>urn:example:wirewatch-demo:{}</id>\n\
         <title>{}</title>\n\
         <subtitle>{}</subtitle>\n\
         <updated>{}</updated>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n\
         <author><name>Demo Wire</name></author>\n",
        escape_xml(&spec.language),
        escape_xml(&spec.id),
        escape_xml(&spec.title),
        escape_xml(&spec.description),
        rfc3339(last_modified),
        escape_xml(&feed.url),
        escape_xml(&home_page(spec)),
    );
    for story in stories {
        let published = rfc3339(origin.plus_secs(story.published_offset));
        x.push_str("<entry>\n");
        if let Some(guid) = &story.guid {
            let _ = writeln!(x, "<id>{}</id>", escape_xml(guid));
        }
        let _ = writeln!(
            x,
            "<title type=\"text\">{}</title>",
            escape_xml(&story.title)
        );
        if let Some(link) = &story.link {
            let _ = writeln!(
                x,
                "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
                escape_xml(link)
            );
        }
        let _ = writeln!(x, "<published>{published}</published>");
        let _ = writeln!(x, "<updated>{published}</updated>");
        if let Some(author) = &story.author {
            let _ = writeln!(x, "<author><name>{}</name></author>", escape_xml(author));
        }
        for category in &story.categories {
            let _ = writeln!(x, "<category term=\"{}\"/>", escape_xml(category));
        }
        let _ = writeln!(
            x,
            "<summary type=\"text\">{}</summary>",
            escape_xml(&story.summary)
        );
        if let Some(html) = &story.content_html {
            let _ = writeln!(x, "<content type=\"html\">{}</content>", escape_xml(html));
        }
        x.push_str("</entry>\n");
    }
    x.push_str("</feed>\n");
    x
}

fn render_json(feed: &FeedState, stories: &[&Story], origin: &Origin) -> String {
    let spec = &feed.spec;
    let items: Vec<serde_json::Value> = stories
        .iter()
        .map(|story| {
            let mut item = serde_json::json!({
                "id": story.guid.clone().or_else(|| story.link.clone()).unwrap_or_default(),
                "title": story.title,
                "summary": story.summary,
                "date_published": rfc3339(origin.plus_secs(story.published_offset)),
                "tags": story.categories,
            });
            if let Some(obj) = item.as_object_mut() {
                if let Some(link) = &story.link {
                    obj.insert("url".into(), serde_json::json!(link));
                }
                match &story.content_html {
                    Some(html) => obj.insert("content_html".into(), serde_json::json!(html)),
                    None => obj.insert("content_text".into(), serde_json::json!(story.summary)),
                };
                if let Some(author) = &story.author {
                    obj.insert("authors".into(), serde_json::json!([{ "name": author }]));
                }
            }
            item
        })
        .collect();
    let doc = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": spec.title,
        "home_page_url": home_page(spec),
        "feed_url": feed.url,
        "description": spec.description,
        "language": spec.language,
        "authors": [{ "name": "Demo Wire" }],
        "items": items,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| String::from("{}"));
    text.push('\n');
    text
}

fn render_index(shared: &Shared) -> String {
    let mut text = String::from("wirewatch demo feed server\n\n");
    for feed in &shared.feeds {
        let _ = writeln!(
            text,
            "{:<12} {:<11} {}",
            feed.spec.id,
            feed.spec.format.name(),
            feed.url
        );
    }
    text
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    // Too busy: dropping the stream closes it.
                    continue;
                };
                let shared = Arc::clone(&shared);
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = serve_connection(stream, &shared) => {}
                    }
                });
            }
            Err(e) => {
                // Usually EMFILE or a connection reset before accept: back
                // off briefly instead of spinning.
                tracing::debug!(error = %e, "demo server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!("demo server stopped");
}

enum HeadRead {
    /// The head, without the blank line that ends it.
    Complete(Vec<u8>),
    TooLarge,
    /// The peer closed the connection mid-head.
    Truncated,
    /// The peer closed the connection without sending anything.
    Empty,
}

async fn read_head(stream: &mut TcpStream) -> io::Result<HeadRead> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                HeadRead::Empty
            } else {
                HeadRead::Truncated
            });
        }
        let mut fresh = &chunk[..n];
        if buf.is_empty() {
            // Empty lines before the request line are to be ignored
            // (RFC 9112 section 2.2).
            let skip = fresh
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            fresh = &fresh[skip..];
            if fresh.is_empty() {
                continue;
            }
        }
        let searched = buf.len().saturating_sub(3);
        buf.extend_from_slice(fresh);
        if let Some(end) = find_head_end(&buf[searched..]) {
            buf.truncate(searched + end);
            return Ok(HeadRead::Complete(buf));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Ok(HeadRead::TooLarge);
        }
    }
}

/// Offset of the blank line ending a request head (`\r\n\r\n`, or a bare
/// `\n\n` from lax clients).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find(|&i| buf[i..].starts_with(b"\r\n\r\n") || buf[i..].starts_with(b"\n\n"))
}

#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    /// Path without query string or fragment.
    path: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RequestError {
    BadRequest(&'static str),
    VersionNotSupported,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_request(head: &[u8]) -> Result<Request, RequestError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // Tolerate stray empty lines before the request line (RFC 9112 §2.2).
    let request_line = lines
        .find(|l| !l.is_empty())
        .ok_or(RequestError::BadRequest("empty request"))?;
    let request_line = std::str::from_utf8(request_line)
        .map_err(|_| RequestError::BadRequest("request line is not text"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::BadRequest("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(RequestError::BadRequest("malformed method"));
    }
    let Some(numbers) = version.strip_prefix("HTTP/") else {
        return Err(RequestError::BadRequest("malformed HTTP version"));
    };
    match numbers.as_bytes() {
        b"1.0" | b"1.1" => {}
        [major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            return Err(RequestError::VersionNotSupported)
        }
        _ => return Err(RequestError::BadRequest("malformed HTTP version")),
    }
    let path = request_path(target).ok_or(RequestError::BadRequest("malformed request target"))?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(RequestError::BadRequest("obsolete header folding"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(RequestError::BadRequest("header line without a colon"));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(RequestError::BadRequest("malformed header name"));
        }
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_owned();
        headers.push((String::from_utf8_lossy(name).to_ascii_lowercase(), value));
    }
    Ok(Request {
        method: method.to_owned(),
        path,
        headers,
    })
}

/// The path of an origin-form (`/a?b`) or absolute-form (`http://h/a`)
/// request target.
fn request_path(target: &str) -> Option<String> {
    let rest = if target.starts_with('/') {
        target
    } else {
        let after_scheme =
            strip_prefix_ci(target, "http://").or_else(|| strip_prefix_ci(target, "https://"))?;
        match after_scheme.find('/') {
            Some(slash) => &after_scheme[slash..],
            None => "/",
        }
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..end];
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return None;
    }
    Some(path.to_owned())
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// Weak comparison of an `If-None-Match` list against our entity tag.
fn if_none_match_hits(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

struct Response {
    status: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Send headers (including the body's length) but not the body.
    omit_body: bool,
}

impl Response {
    fn text(status: u16, reason: &'static str) -> Response {
        Response {
            status,
            reason,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_owned())],
            body: format!("{status} {reason}\n").into_bytes(),
            omit_body: false,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        let _ = write!(
            head,
            "Date: {}\r\nServer: {SERVER_NAME}\r\nConnection: close\r\n",
            http_date(Utc::now())
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        // 304 has no body and no meaningful length of its own.
        if self.status != 304 {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !self.omit_body && self.status != 304 {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn respond(shared: &Shared, request: &Request) -> Response {
    let is_head = request.method == "HEAD";
    let feed = shared.feeds.iter().find(|f| f.spec.path == request.path);
    if feed.is_none() && request.path != "/" {
        let mut response = Response::text(404, "Not Found");
        response.omit_body = is_head;
        return response;
    }
    if request.method != "GET" && !is_head {
        let mut response = Response::text(405, "Method Not Allowed");
        response.headers.push(("Allow", "GET, HEAD".to_owned()));
        return response;
    }
    let Some(feed) = feed else {
        let mut response = Response::text(200, "OK");
        response.body = render_index(shared).into_bytes();
        response.omit_body = is_head;
        return response;
    };
    let rendered = render_feed(feed, &shared.origin, shared.origin.elapsed());
    let not_modified = match request.header("if-none-match") {
        Some(tags) => if_none_match_hits(tags, &rendered.etag),
        None => request
            .header("if-modified-since")
            .and_then(parse_http_date)
            .is_some_and(|since| rendered.last_modified.timestamp() <= since.timestamp()),
    };
    let headers = vec![
        ("Content-Type", rendered.content_type.to_owned()),
        ("ETag", rendered.etag),
        ("Last-Modified", http_date(rendered.last_modified)),
        ("Cache-Control", "no-cache".to_owned()),
    ];
    if not_modified {
        return Response {
            status: 304,
            reason: "Not Modified",
            headers,
            body: Vec::new(),
            omit_body: true,
        };
    }
    Response {
        status: 200,
        reason: "OK",
        headers,
        body: rendered.body,
        omit_body: is_head,
    }
}

async fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => Response::text(408, "Request Timeout"),
        Ok(Err(_)) | Ok(Ok(HeadRead::Empty)) => return,
        Ok(Ok(HeadRead::TooLarge)) => Response::text(431, "Request Header Fields Too Large"),
        Ok(Ok(HeadRead::Truncated)) => Response::text(400, "Bad Request"),
        Ok(Ok(HeadRead::Complete(head))) => match parse_request(&head) {
            Ok(request) => respond(shared, &request),
            Err(RequestError::BadRequest(why)) => {
                tracing::debug!(why, "demo server: bad request");
                Response::text(400, "Bad Request")
            }
            Err(RequestError::VersionNotSupported) => {
                Response::text(505, "HTTP Version Not Supported")
            }
        },
    };
    let bytes = response.to_bytes();
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    // Read (and discard) whatever the client still sends, so closing the
    // socket with unread data doesn't turn into a reset that could destroy
    // the response in flight.
    let _ = tokio::time::timeout(LINGER_TIMEOUT, async {
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < LINGER_MAX_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Links in the sample data must stay under this prefix.
    const LINK_PREFIX: &str = "https://example.invalid/";

    fn catalog() -> Catalog {
        match Catalog::from_json(STORIES_JSON) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends raw bytes, half-closes, and reads the whole answer.
    async fn exchange(addr: SocketAddr, raw: &[u8]) -> io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(raw).await?;
        stream.shutdown().await?;
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut out))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
        Ok(out)
    }

    fn parse_reply(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status = status_line[9..12].parse().unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n{extra}\r\n");
        match exchange(addr, raw.as_bytes()).await {
            Ok(bytes) => parse_reply(&bytes),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    async fn start_demo() -> (DemoServer, CancellationToken) {
        let cancel = CancellationToken::new();
        match DemoServer::start(cancel.clone()).await {
            Ok(server) => (server, cancel),
            Err(e) => panic!("start: {e}"),
        }
    }

    fn parse_feed(body: &[u8]) -> feed_rs::model::Feed {
        match feed_rs::parser::parse(body) {
            Ok(feed) => feed,
            Err(e) => panic!(
                "feed does not parse: {e}\n{}",
                String::from_utf8_lossy(body)
            ),
        }
    }

    fn spec_for<'a>(catalog: &'a Catalog, id: &str) -> &'a FeedSpec {
        catalog
            .feeds
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no feed {id}"))
    }

    /// Number of items in a rendered body, whatever its format.
    fn item_count(format: Format, body: &[u8]) -> usize {
        match format {
            Format::Json => {
                let doc: serde_json::Value = match serde_json::from_slice(body) {
                    Ok(v) => v,
                    Err(e) => panic!("bad JSON: {e}"),
                };
                assert_eq!(doc["version"], "https://jsonfeed.org/version/1.1");
                doc["items"].as_array().map_or(0, Vec::len)
            }
            _ => parse_feed(body).entries.len(),
        }
    }

    #[test]
    fn sample_data_fits_the_demo() {
        let c = catalog();
        assert_eq!(c.feeds.len(), 4);
        for format in [Format::Rss, Format::Atom, Format::Json, Format::RssCp1251] {
            assert!(
                c.feeds.iter().any(|f| f.format == format),
                "{format:?} missing"
            );
        }
        assert!((20..=26).contains(&c.stories.len()), "{}", c.stories.len());
        let russian = c
            .stories
            .iter()
            .filter(|s| spec_for(&c, &s.feed).format == Format::RssCp1251)
            .count();
        assert!(russian >= 3);
        let anonymous = c
            .stories
            .iter()
            .filter(|s| s.guid.is_none() && s.link.is_none())
            .count();
        assert_eq!(anonymous, 1, "exactly one item without guid and link");
        const DAY: i64 = 24 * 3600;
        let old_backlog = c
            .stories
            .iter()
            .filter(|s| s.at == 0 && s.published_offset < -DAY)
            .count();
        let fresh_backlog = c
            .stories
            .iter()
            .filter(|s| s.at == 0 && (-DAY..0).contains(&s.published_offset))
            .count();
        assert!(old_backlog >= 2 && fresh_backlog >= 2);
        let mut later: Vec<u64> = c
            .stories
            .iter()
            .filter(|s| s.at > 0)
            .map(|s| s.at)
            .collect();
        later.sort_unstable();
        assert!(later.len() >= 8);
        assert!(later.first().is_some_and(|&a| a >= 2));
        assert!(later.last().is_some_and(|&a| a <= 26));
        for pair in later.windows(2) {
            assert!(pair[1] - pair[0] <= 4, "gap in the timeline: {pair:?}");
        }
        for s in &c.stories {
            if s.at > 0 {
                // Published about when it appears, never in the future.
                let at = i64::try_from(s.at).unwrap_or(i64::MAX);
                assert!((at - 5..=at).contains(&s.published_offset), "{}", s.title);
            }
            if let Some(link) = &s.link {
                assert!(link.starts_with(LINK_PREFIX), "{link}");
            }
            for html in s.content_html.iter().chain([&s.summary]) {
                assert!(
                    !html.contains("http://") && !html.contains("www."),
                    "{}",
                    s.title
                );
            }
            assert!(!s.title.is_empty() && !s.summary.is_empty());
        }
    }

    #[test]
    fn russian_feed_fits_windows_1251() {
        let c = catalog();
        for s in c.stories.iter().filter(|s| s.feed == "wire-ru") {
            for text in [&s.title, &s.summary]
                .into_iter()
                .chain(s.content_html.as_ref())
                .chain(s.author.as_ref())
                .chain(s.categories.iter())
            {
                let (_, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
                assert!(!unmappable, "{text}");
            }
        }
    }

    #[test]
    fn every_feed_renders_with_all_stories_out() {
        let c = catalog();
        let origin = Origin::ago(Duration::from_secs(3600));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
        let shared = Shared::new(c.clone(), origin, addr);
        let mut total = 0;
        for feed in &shared.feeds {
            let rendered = render_feed(feed, &origin, origin.elapsed());
            let want = c.stories.iter().filter(|s| s.feed == feed.spec.id).count();
            assert_eq!(
                item_count(feed.spec.format, &rendered.body),
                want,
                "{}",
                feed.spec.id
            );
            total += want;
            // Deterministic: same input, same ETag.
            let again = render_feed(feed, &origin, origin.elapsed());
            assert_eq!(rendered.etag, again.etag);
            if feed.spec.format == Format::Json {
                let parsed = parse_feed(&rendered.body);
                assert_eq!(parsed.entries.len(), want);
                continue;
            }
            let parsed = parse_feed(&rendered.body);
            assert_eq!(
                parsed.title.as_ref().map(|t| t.content.as_str()),
                Some(feed.spec.title.as_str())
            );
            for (entry, story) in parsed.entries.iter().zip(&feed.stories) {
                assert_eq!(
                    entry.title.as_ref().map(|t| t.content.as_str()),
                    Some(story.title.as_str())
                );
                let published = origin.plus_secs(story.published_offset);
                assert_eq!(
                    entry.published.map(|p| p.timestamp()),
                    Some(published.timestamp())
                );
                if let Some(author) = &story.author {
                    assert!(
                        entry
                            .authors
                            .iter()
                            .any(|a| a.name.as_ref() == Some(author)),
                        "{author}"
                    );
                }
                assert_eq!(entry.categories.len(), story.categories.len());
                if let Some(html) = &story.content_html {
                    let body = entry.content.as_ref().and_then(|c| c.body.as_deref());
                    assert_eq!(body, Some(html.as_str()), "{}", story.title);
                }
                if let Some(link) = &story.link {
                    assert!(entry.links.iter().any(|l| &l.href == link));
                }
            }
        }
        assert_eq!(total, c.stories.len());
    }

    #[test]
    fn russian_feed_is_really_windows_1251() {
        let c = catalog();
        let origin = Origin::ago(Duration::from_secs(3600));
        let shared = Shared::new(c, origin, SocketAddr::from((Ipv4Addr::LOCALHOST, 1)));
        let Some(feed) = shared
            .feeds
            .iter()
            .find(|f| f.spec.format == Format::RssCp1251)
        else {
            panic!("no cp1251 feed");
        };
        let rendered = render_feed(feed, &origin, origin.elapsed());
        assert_eq!(
            rendered.content_type,
            "application/rss+xml; charset=windows-1251"
        );
        assert!(rendered
            .body
            .starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
        assert!(
            std::str::from_utf8(&rendered.body).is_err(),
            "body is UTF-8"
        );
        let (text, had_errors) =
            encoding_rs::WINDOWS_1251.decode_without_bom_handling(&rendered.body);
        assert!(!had_errors);
        assert!(text.contains("Демо-лента — Россия"));
        assert!(!text.contains("&#"), "unmappable characters in the feed");
        let parsed = parse_feed(&rendered.body);
        assert!(parsed.entries.iter().any(|e| e
            .title
            .as_ref()
            .is_some_and(|t| t.content.contains("Шойгу"))));
    }

    #[test]
    fn anonymous_item_has_neither_guid_nor_link() {
        let c = catalog();
        let Some(story) = c
            .stories
            .iter()
            .find(|s| s.guid.is_none() && s.link.is_none())
        else {
            panic!("no anonymous story");
        };
        let origin = Origin::ago(Duration::from_secs(3600));
        let shared = Shared::new(
            c.clone(),
            origin,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
        );
        let Some(feed) = shared.feeds.iter().find(|f| f.spec.id == story.feed) else {
            panic!("no feed");
        };
        let body = render_feed(feed, &origin, origin.elapsed()).body;
        let text = String::from_utf8_lossy(&body);
        let title = format!("<title>{}</title>", escape_xml(&story.title));
        let Some(start) = text.find(&title) else {
            panic!("item not rendered");
        };
        let item = &text[start..];
        let item = &item[..item.find("</item>").unwrap_or(item.len())];
        assert!(!item.contains("<guid") && !item.contains("<link"), "{item}");
    }

    #[tokio::test]
    async fn serves_every_feed_with_validators() {
        let (server, cancel) = start_demo().await;
        let c = catalog();
        assert_eq!(server.story_count(), c.stories.len());
        assert_eq!(server.last_story_at(), Duration::from_secs(26));
        assert_eq!(server.feeds().len(), 4);
        let addr = server.local_addr();
        for feed in server.feeds() {
            let spec = spec_for(&c, &feed.id);
            assert_eq!(feed.url, format!("http://{addr}{}", spec.path));
            assert_eq!(feed.title, spec.title);
            let reply = get(addr, &spec.path, "").await;
            assert_eq!(reply.status, 200, "{}", feed.id);
            let content_type = reply.header("Content-Type").unwrap_or_default();
            match spec.format {
                Format::Rss => assert_eq!(content_type, "application/rss+xml; charset=utf-8"),
                Format::RssCp1251 => {
                    assert_eq!(content_type, "application/rss+xml; charset=windows-1251")
                }
                Format::Atom => assert_eq!(content_type, "application/atom+xml; charset=utf-8"),
                Format::Json => assert_eq!(content_type, "application/feed+json; charset=utf-8"),
            }
            assert_eq!(
                reply.header("Content-Length"),
                Some(reply.body.len().to_string().as_str())
            );
            // Only the stories out at time zero.
            let at_start = c
                .stories
                .iter()
                .filter(|s| s.feed == feed.id && s.at == 0)
                .count();
            assert!(at_start > 0);
            assert_eq!(
                item_count(spec.format, &reply.body),
                at_start,
                "{}",
                feed.id
            );

            let Some(etag) = reply.header("ETag").map(str::to_owned) else {
                panic!("no ETag");
            };
            assert!(etag.starts_with('"') && etag.ends_with('"'));
            let Some(last_modified) = reply.header("Last-Modified").map(str::to_owned) else {
                panic!("no Last-Modified");
            };
            assert!(parse_http_date(&last_modified).is_some(), "{last_modified}");

            let cached = get(addr, &spec.path, &format!("If-None-Match: {etag}\r\n")).await;
            assert_eq!(cached.status, 304);
            assert!(cached.body.is_empty());
            assert_eq!(cached.header("ETag"), Some(etag.as_str()));

            let listed = format!("If-None-Match: \"nope\", W/{etag}\r\n");
            assert_eq!(get(addr, &spec.path, &listed).await.status, 304);

            let stale = get(addr, &spec.path, "If-None-Match: \"0123\"\r\n").await;
            assert_eq!(stale.status, 200);
            assert_eq!(stale.body, reply.body);

            let since = format!("If-Modified-Since: {last_modified}\r\n");
            assert_eq!(get(addr, &spec.path, &since).await.status, 304);
            let before = "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n";
            assert_eq!(get(addr, &spec.path, before).await.status, 200);

            let raw = format!("HEAD {} HTTP/1.1\r\nHost: x\r\n\r\n", spec.path);
            let head = match exchange(addr, raw.as_bytes()).await {
                Ok(bytes) => parse_reply(&bytes),
                Err(e) => panic!("HEAD: {e}"),
            };
            assert_eq!(head.status, 200);
            assert!(head.body.is_empty());
            assert_eq!(
                head.header("Content-Length"),
                Some(reply.body.len().to_string().as_str())
            );
        }
        cancel.cancel();
    }

    #[tokio::test]
    async fn reqwest_can_fetch_a_feed() {
        let (server, cancel) = start_demo().await;
        let Some(feed) = server.feeds().first() else {
            panic!("no feeds");
        };
        let response = match reqwest::get(&feed.url).await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        assert!(!parse_feed(&body).entries.is_empty());
        cancel.cancel();
    }

    #[tokio::test]
    async fn unknown_paths_and_methods() {
        let (server, cancel) = start_demo().await;
        let addr = server.local_addr();
        assert_eq!(get(addr, "/nope.xml", "").await.status, 404);
        assert_eq!(get(addr, "/world.xml/", "").await.status, 404);
        // Query strings are ignored, absolute-form targets understood.
        assert_eq!(get(addr, "/world.xml?x=1", "").await.status, 200);
        assert_eq!(
            get(addr, &format!("http://{addr}/world.xml"), "")
                .await
                .status,
            200
        );

        let index = get(addr, "/", "").await;
        assert_eq!(index.status, 200);
        let text = String::from_utf8_lossy(&index.body);
        for feed in server.feeds() {
            assert!(text.contains(&feed.url), "{text}");
        }

        let post = b"POST /world.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
        let reply = match exchange(addr, post).await {
            Ok(bytes) => parse_reply(&bytes),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("Allow"), Some("GET, HEAD"));

        let reply = match exchange(addr, b"HEAD /missing HTTP/1.0\r\n\r\n").await {
            Ok(bytes) => parse_reply(&bytes),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(reply.status, 404);
        assert!(reply.body.is_empty());
        cancel.cancel();
    }

    #[tokio::test]
    async fn garbage_does_not_kill_the_server() {
        let (server, cancel) = start_demo().await;
        let addr = server.local_addr();
        let mut huge = b"GET /world.xml HTTP/1.1\r\nX-Filler: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 20 * 1024));
        huge.extend_from_slice(b"\r\n\r\n");
        let cases: Vec<(Vec<u8>, Option<u16>)> = vec![
            (b"\x00\x01\x02\xff\xfe garbage\r\n\r\n".to_vec(), Some(400)),
            (b"GET\r\n\r\n".to_vec(), Some(400)),
            (b"GET /world.xml\r\n\r\n".to_vec(), Some(400)),
            (b"GET  /world.xml HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
            (b"GET world.xml HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
            (b"GET /world.xml HTTP/9.9\r\n\r\n".to_vec(), Some(505)),
            (b"GET /world.xml FTP/1.1\r\n\r\n".to_vec(), Some(400)),
            (b"G(T /world.xml HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
            (
                b"GET /world.xml HTTP/1.1\r\n folded\r\n\r\n".to_vec(),
                Some(400),
            ),
            (
                b"GET /world.xml HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
                Some(400),
            ),
            (
                b"GET /world.xml HTTP/1.1\r\n: empty name\r\n\r\n".to_vec(),
                Some(400),
            ),
            (b"GET /\xc3\x28 HTTP/1.1\r\n\r\n".to_vec(), Some(400)),
            (b"GET /world.xml HTTP/1.1\r\nHost: x".to_vec(), Some(400)),
            (
                b"GET /world.xml HTTP/1.1\r\nIf-None-Match: \xff\xfe\r\n\r\n".to_vec(),
                Some(200),
            ),
            (
                b"GET /world.xml HTTP/1.1\r\nIf-Modified-Since: yesterday\r\n\r\n".to_vec(),
                Some(200),
            ),
            (b"\r\n\r\nGET /world.xml HTTP/1.1\n\n".to_vec(), Some(200)),
            (huge, Some(431)),
            (Vec::new(), None),
        ];
        for (raw, want) in cases {
            let answer = match exchange(addr, &raw).await {
                Ok(bytes) => bytes,
                Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(&raw)),
            };
            match want {
                Some(status) => assert_eq!(
                    parse_reply(&answer).status,
                    status,
                    "{:?}",
                    String::from_utf8_lossy(&raw)
                ),
                None => assert!(answer.is_empty()),
            }
            // Still alive.
            assert_eq!(get(addr, "/asia.atom", "").await.status, 200);
        }
        // A client that connects and goes quiet doesn't block others.
        let idle = TcpStream::connect(addr).await;
        assert!(idle.is_ok());
        assert_eq!(get(addr, "/briefs.json", "").await.status, 200);
        cancel.cancel();
    }

    #[tokio::test]
    async fn stories_come_out_on_schedule() {
        let json = r#"{
          "feeds": [{"id": "t", "title": "T", "format": "atom", "path": "/t.atom"}],
          "stories": [
            {"feed": "t", "at": 0, "published_offset": -60, "guid": "a", "title": "First", "summary": "One."},
            {"feed": "t", "at": 1, "published_offset": 1, "guid": "b", "title": "Second", "summary": "Two."}
          ]}"#;
        let catalog = match Catalog::from_json(json) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let cancel = CancellationToken::new();
        let server = match DemoServer::start_with(cancel.clone(), catalog, Origin::now()).await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(server.last_story_at(), Duration::from_secs(1));
        let addr = server.local_addr();
        let first = get(addr, "/t.atom", "").await;
        assert_eq!(parse_feed(&first.body).entries.len(), 1);
        let etag = first.header("ETag").unwrap_or_default().to_owned();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let second = get(addr, "/t.atom", &format!("If-None-Match: {etag}\r\n")).await;
        assert_eq!(second.status, 200);
        let parsed = parse_feed(&second.body);
        let titles: Vec<_> = parsed
            .entries
            .iter()
            .filter_map(|e| e.title.as_ref().map(|t| t.content.clone()))
            .collect();
        assert_eq!(titles, ["Second", "First"], "newest first");
        assert_ne!(second.header("ETag"), Some(etag.as_str()));
        assert!(
            parse_http_date(second.header("Last-Modified").unwrap_or_default())
                > parse_http_date(first.header("Last-Modified").unwrap_or_default())
        );
        cancel.cancel();
    }

    #[tokio::test]
    async fn cancel_stops_accepting() {
        let (server, cancel) = start_demo().await;
        let addr = server.local_addr();
        assert_eq!(get(addr, "/world.xml", "").await.status, 200);
        cancel.cancel();
        let mut refused = false;
        for _ in 0..50 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "still accepting after cancel");
    }

    #[test]
    fn bad_catalogs_are_rejected() {
        let cases = [
            r#"{"feeds": [], "stories": [{"feed": "x", "at": 0, "published_offset": 0, "title": "t", "summary": "s"}]}"#,
            r#"{"feeds": [{"id": "a", "title": "A", "format": "rss", "path": "/a"}, {"id": "a", "title": "B", "format": "rss", "path": "/b"}], "stories": []}"#,
            r#"{"feeds": [{"id": "a", "title": "A", "format": "rss", "path": "a"}], "stories": []}"#,
            r#"{"feeds": [{"id": "A", "title": "A", "format": "rss", "path": "/a"}], "stories": []}"#,
            r#"{"feeds": [{"id": "a", "title": "A", "format": "json", "path": "/a"}], "stories": [{"feed": "a", "at": 0, "published_offset": 0, "title": "t", "summary": "s"}]}"#,
            r#"{"feeds": [{"id": "a", "title": "A", "format": "yaml", "path": "/a"}], "stories": []}"#,
            r#"{"feeds": [], "stories": [], "extra": 1}"#,
            "not json",
        ];
        for json in cases {
            assert!(Catalog::from_json(json).is_err(), "{json}");
        }
    }

    #[test]
    fn request_parsing() {
        let ok =
            parse_request(b"GET /a.xml?x=1#f HTTP/1.1\r\nHost: h\r\nIF-NONE-MATCH:  \"x\" \r\n");
        assert_eq!(
            ok,
            Ok(Request {
                method: "GET".into(),
                path: "/a.xml".into(),
                headers: vec![
                    ("host".into(), "h".into()),
                    ("if-none-match".into(), "\"x\"".into())
                ],
            })
        );
        assert_eq!(
            parse_request(b"GET HTTP://h:1 HTTP/1.0").map(|r| r.path),
            Ok("/".to_owned())
        );
        assert_eq!(
            parse_request(b"GET ftp://h/a HTTP/1.1"),
            Err(RequestError::BadRequest("malformed request target"))
        );
        assert_eq!(
            parse_request(b"GET / HTTP/2.0"),
            Err(RequestError::VersionNotSupported)
        );
        assert!(parse_request(b"").is_err());
        assert!(parse_request(b"GET / HTTP/1.1 extra").is_err());
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn validators() {
        assert!(if_none_match_hits("\"a\"", "\"a\""));
        assert!(if_none_match_hits("W/\"a\"", "\"a\""));
        assert!(if_none_match_hits("\"b\" , \"a\"", "\"a\""));
        assert!(if_none_match_hits("*", "\"a\""));
        assert!(!if_none_match_hits("\"b\"", "\"a\""));
        assert!(!if_none_match_hits("a", "\"a\""));
        let t = Origin::now().wall;
        let parsed = parse_http_date(&http_date(t)).map(|p| p.timestamp());
        assert_eq!(parsed, Some(t.timestamp()));
        assert_eq!(etag_for(b"x"), etag_for(b"x"));
        assert_ne!(etag_for(b"x"), etag_for(b"y"));
        assert_eq!(etag_for(b"x").len(), 34);
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(escape_xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape_xml("ok\u{1}\u{0}\ttab"), "ok\ttab");
        assert_eq!(escape_xml("Курск — «текст»"), "Курск — «текст»");
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
        let doc = format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title><item><title>x</title><description>{}</description></item></channel></rss>", cdata("<p>]]> &amp; </p>"));
        let parsed = parse_feed(doc.as_bytes());
        let summary = parsed
            .entries
            .first()
            .and_then(|e| e.summary.as_ref())
            .map(|s| s.content.clone());
        assert_eq!(summary.as_deref(), Some("<p>]]> &amp; </p>"));
    }
}
