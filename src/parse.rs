//! Feed document bytes -> [`ParsedFeed`].
//!
//! Owns everything between an HTTP body and plain-text items: choosing the
//! character encoding (and distrusting wrong declarations), running feed-rs
//! (RSS 0.9x/1.0/2.0, Atom, JSON Feed), stable item keys, link filtering and
//! resolution, and HTML clean-up of every text field via [`crate::html`].
//!
//! Pure: no I/O, no clock, no randomness. Problems that do not lose the feed
//! (lossy decoding, encoding mismatches, dropped items) come back as
//! [`ParsedFeed::warnings`]; only a document that yields no feed is an error.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8};
use feed_rs::model::{Entry, Link, Text};
use feed_rs::parser::{Builder, ParseErrorKind, ParseFeedError};
use sha2::{Digest, Sha256};

use crate::html::{html_to_text, invisible};
use crate::model::{FeedHints, Item, ParsedFeed};

/// How to parse one feed document.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Keep at most this many items: the first ones in document order.
    pub max_items: usize,
    /// The document's own URL: relative links are resolved against it.
    pub base_url: Option<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_items: 500,
            base_url: None,
        }
    }
}

/// Why a document yielded no feed at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("empty body: expected RSS, Atom or JSON Feed")]
    Empty,
    /// Readable, but not a feed; the text says what was found instead.
    #[error("not a feed: expected RSS, Atom or JSON Feed ({0})")]
    NotAFeed(String),
    /// A feed document that is broken: truncated, malformed XML or JSON, …
    #[error("malformed feed: {0}")]
    Malformed(String),
}

/// Parses one feed document. Pure (no I/O). `http_charset` is the charset
/// parameter of the HTTP Content-Type, if any.
///
/// Item fields: `key` is the guid/id as given, else the entry link, else any
/// other http(s) link, else [`content_key`]. `published` falls back to
/// `updated` when the feed gives no publication date; `updated` is the
/// entry's own (feed-rs copies an RSS 2.0 `pubDate` there when absent).
pub fn parse_feed(
    body: &[u8],
    http_charset: Option<&str>,
    opts: &ParseOptions,
) -> Result<ParsedFeed, ParseError> {
    let mut warnings = Vec::new();
    let base = opts.base_url.as_deref().filter(|url| usable_base(url));
    if let (Some(url), None) = (&opts.base_url, base) {
        warnings.push(format!(
            "The base URL {url:?} is not a valid http(s) URL; relative links were dropped."
        ));
    }
    let decoded = decode(body, http_charset, base, &mut warnings);
    let text = decoded.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
    if text.trim_end().is_empty() {
        return Err(ParseError::Empty);
    }
    let text = declare_utf8(text);
    let text = coerce_json_ids(&text).map_or(text, Cow::Owned);

    // Entries without an id get "" instead of feed-rs's hash or random UUID;
    // `item` then picks the key.
    let parser = Builder::new()
        .base_uri(base)
        .id_generator(|_, _, _| String::new())
        .build();
    // feed-rs 3 panics on some hostile input (e.g. an <itunes:duration> that
    // overflows u64): contain it to this document.
    let mut feed = catch_unwind(AssertUnwindSafe(|| parser.parse(text.as_bytes())))
        .map_err(|_| ParseError::Malformed("the feed parser crashed on this document".into()))?
        .map_err(|e| error(e, &decoded))?;

    let total = feed.entries.len();
    if total > opts.max_items {
        feed.entries.truncate(opts.max_items);
        warnings.push(format!(
            "The feed has {total} items; kept the first {}, dropped {}.",
            opts.max_items,
            total - opts.max_items
        ));
    }
    let mut hints = FeedHints {
        ttl: feed
            .ttl
            .filter(|m| *m > 0)
            .map(|m| std::time::Duration::from_secs(u64::from(m) * 60)),
        ..FeedHints::default()
    };
    skip_hints(&text, &mut hints, &mut warnings);
    Ok(ParsedFeed {
        hints,
        title: feed
            .title
            .map(|t| one_line(&t.content))
            .filter(|t| !t.is_empty()),
        items: feed.entries.into_iter().map(|e| item(e, base)).collect(),
        warnings,
    })
}

/// RSS 2.0 `<skipHours><hour>N</hour>…</skipHours>` and
/// `<skipDays><day>Monday</day>…</skipDays>` of the channel (feed-rs does not
/// read them). Values it cannot read are reported and left out.
fn skip_hints(text: &str, hints: &mut FeedHints, warnings: &mut Vec<String>) {
    use quick_xml::events::Event;
    if !text.contains("<skipHours") && !text.contains("<skipDays") {
        return;
    }
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let mut reader = quick_xml::Reader::from_str(text);
    // The open elements, by local name; only channel-level lists count.
    let mut path: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if path.len() > 8 {
                    // Deeper than any skip list: not worth walking.
                    return;
                }
                path.push(e.local_name().into_inner().to_string());
            }
            Ok(Event::End(_)) => {
                if path.pop().as_deref() == Some("channel") {
                    break;
                }
            }
            Ok(Event::Text(t)) => {
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                let value = t.trim().to_string();
                match names.as_slice() {
                    [.., "channel", "skipHours", "hour"] => match value.parse::<u32>() {
                        // 24 is a common way of writing midnight.
                        Ok(h @ 0..=24) => hints.skip_hours |= 1 << (h % 24),
                        _ => bad.push(format!("hour {value:?}")),
                    },
                    [.., "channel", "skipDays", "day"] => {
                        match DAYS.iter().position(|d| d.eq_ignore_ascii_case(&value)) {
                            Some(d) => hints.skip_days |= 1 << d,
                            None => bad.push(format!("day {value:?}")),
                        }
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if !bad.is_empty() {
        warnings.push(format!(
            "The feed's skipHours/skipDays hold values that are not hours (0-23) or day names, ignored: {}.",
            bad.join(", ")
        ));
    }
}

/// The fallback key for an item with neither guid nor link: `"h:"` + the
/// first 32 hex digits of sha256(title + U+001F + summary), both plain text.
pub fn content_key(title: &str, summary: &str) -> String {
    let digest = Sha256::new()
        .chain_update(title)
        .chain_update("\u{1f}")
        .chain_update(summary)
        .finalize();
    digest[..16].iter().fold(String::from("h:"), |mut key, b| {
        let _ = write!(key, "{b:02x}");
        key
    })
}

fn item(entry: Entry, base: Option<&str>) -> Item {
    let title = entry
        .title
        .as_ref()
        .map(|t| one_line(&t.content))
        .unwrap_or_default();
    let summary = entry.summary.as_ref().map(plain).unwrap_or_default();
    let content = entry
        .content
        .and_then(|c| {
            let kind: &str = c.content_type.as_ref();
            let textual =
                kind.starts_with("text/") || kind.contains("html") || kind.contains("xml");
            c.body.filter(|_| textual).map(|body| to_text(kind, &body))
        })
        .unwrap_or_default();
    let alternate = |l: &&Link| {
        l.target.is_none()
            && l.rel
                .as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case("alternate"))
    };
    let link = entry
        .links
        .iter()
        .filter(alternate)
        .find_map(|l| http_url(&l.href, base));
    // Feed text is data: no control or bidi characters, not even in keys.
    let id: String = entry.id.chars().filter(|&c| !invisible(c)).collect();
    let id = id.trim();
    let key = if id.is_empty() {
        link.clone()
            .or_else(|| entry.links.iter().find_map(|l| http_url(&l.href, base)))
            .unwrap_or_else(|| content_key(&title, &summary))
    } else {
        id.to_owned()
    };
    let authors = entry.authors.iter().map(|p| {
        let name = p.name.as_deref().map(one_line).unwrap_or_default();
        // feed-rs leaves RSS's "desk@example.com (Name)" as "(Name)".
        let name = name
            .strip_prefix('(')
            .and_then(|n| n.strip_suffix(')'))
            .unwrap_or(&name)
            .trim();
        match (name.is_empty(), &p.email) {
            (true, Some(email)) => one_line(email),
            _ => name.to_owned(),
        }
    });
    let categories = entry.categories.iter().map(|c| {
        let term = one_line(&c.term);
        match (term.is_empty(), &c.label) {
            (true, Some(label)) => one_line(label),
            _ => term,
        }
    });
    Item {
        key,
        title,
        link,
        published: entry.published.or(entry.updated),
        updated: entry.updated,
        summary,
        content,
        authors: distinct(authors),
        categories: distinct(categories),
        full_text: None,
    }
}

/// A feed-rs text construct as plain text.
fn plain(t: &Text) -> String {
    to_text(t.content_type.as_ref(), &t.content)
}

/// Markup (or `text/plain`, whose newlines are kept) -> plain text.
fn to_text(media_type: &str, s: &str) -> String {
    if media_type.starts_with("text/plain") {
        html_to_text(&s.replace('\n', "<br>"))
    } else {
        html_to_text(s)
    }
}

/// Plain text on a single line (titles, names, categories).
fn one_line(s: &str) -> String {
    html_to_text(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Non-empty values, first occurrence kept, in order.
fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// An absolute http(s) URL with a non-empty rest (any case of scheme).
fn is_http(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, rest)| {
        (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
            && !rest.is_empty()
    })
}

/// feed-rs resolves relative links in XML feeds itself (with the `url`
/// crate, xml:base included), but fails the whole document when the base URL
/// does not parse: only a base it accepts on an empty feed is handed over.
fn usable_base(url: &str) -> bool {
    is_http(url)
        && Builder::new()
            .base_uri(Some(url))
            .build()
            .parse(&b"<feed/>"[..])
            .is_ok()
}

/// `href` as an absolute http(s) URL, or `None` (other schemes, relative
/// without a base, or containing whitespace or control characters, which
/// feed-rs leaves in URLs it cannot parse). feed-rs leaves JSON Feed links
/// unresolved: those are resolved here when protocol-relative (`//host/x`)
/// or absolute-path (`/x`).
fn http_url(href: &str, base: Option<&str>) -> Option<String> {
    let href = href.trim();
    if href.chars().any(|c| c.is_whitespace() || invisible(c)) {
        return None;
    }
    if is_http(href) {
        return Some(href.to_owned());
    }
    let base = base?;
    let authority = base.find("://")? + 3;
    if href.starts_with("//") && href.len() > 2 {
        Some(format!("{}{}", &base[..authority - 2], href))
    } else if href.starts_with('/') && !href.starts_with("//") {
        let end = base[authority..]
            .find(['/', '?', '#'])
            .map_or(base.len(), |i| authority + i);
        Some(format!("{}{}", &base[..end], href))
    } else {
        None
    }
}

/// Decides the encoding and decodes `body` to UTF-8.
///
/// Order of trust: BOM > HTTP charset > XML declaration > UTF-8, checked
/// against the bytes: a legacy declaration over bytes that are (mostly) UTF-8
/// is overruled; UTF-8 that is mostly malformed is re-guessed with chardetng;
/// a few malformed bytes become U+FFFD. Every such decision is a warning.
fn decode(
    body: &[u8],
    http_charset: Option<&str>,
    base: Option<&str>,
    warnings: &mut Vec<String>,
) -> String {
    let declared = xml_encoding(body).map(|label| (label, "XML declaration"));
    decode_declared(body, http_charset, declared, base, warnings)
}

/// [`decode`] with the document's own declaration given by the caller: a
/// label and what declared it (`"XML declaration"`, `"meta charset"`), so
/// HTML pages (`crate::extract`) are decoded by the same rules as feeds.
pub(crate) fn decode_declared(
    body: &[u8],
    http_charset: Option<&str>,
    declared: Option<(&str, &str)>,
    base: Option<&str>,
    warnings: &mut Vec<String>,
) -> String {
    if let Some((bom_encoding, bom_len)) = Encoding::for_bom(body) {
        return decode_lossy(bom_encoding, &body[bom_len..], warnings);
    }
    let http = http_charset.and_then(|l| known_encoding(l, "The HTTP charset", warnings));
    let source = declared.map_or("XML declaration", |(_, source)| source);
    let declared = declared
        .and_then(|(label, source)| known_encoding(label, &format!("The {source}"), warnings));
    let (multibyte, malformed) = utf8_stats(body);
    let looks_utf8 = multibyte > malformed;
    // Whether the bytes plausibly are in `e`: UTF-8 without malformed bytes,
    // or bytes that decode cleanly in a legacy `e` and do not look like UTF-8.
    let fits = |e| {
        if e == UTF_8 {
            malformed == 0
        } else {
            !looks_utf8 && decodes_cleanly(e, body)
        }
    };
    let encoding = match (http, declared) {
        (Some(h), Some(d)) if h != d => {
            // HTTP wins unless the bytes say otherwise: they fit only the
            // declaration, or both and chardetng prefers the declaration.
            let chosen = if fits(d) && (!fits(h) || guess(body, base) == d) {
                d
            } else {
                h
            };
            warnings.push(format!(
                "The HTTP charset says {} but the {source} says {}; decoded as {}.",
                h.name(),
                d.name(),
                chosen.name()
            ));
            chosen
        }
        (h, d) => h.or(d).unwrap_or(UTF_8),
    };
    if encoding != UTF_8 && looks_utf8 {
        warnings.push(format!(
            "Declared {} but the bytes are UTF-8; decoded as UTF-8.",
            encoding.name()
        ));
        return decode_lossy(UTF_8, body, warnings);
    }
    if encoding == UTF_8 && malformed > multibyte {
        let guessed = guess(body, base);
        if guessed != UTF_8 && decodes_cleanly(guessed, body) {
            let declared_as = if http.or(declared).is_some() {
                "Declared UTF-8"
            } else {
                "No charset declared"
            };
            warnings.push(format!(
                "{declared_as} but the bytes look like {0}; decoded as {0}.",
                guessed.name()
            ));
            return decode_lossy(guessed, body, warnings);
        }
    }
    decode_lossy(encoding, body, warnings)
}

/// The encoding a charset label names, as used for ASCII-compatible bytes
/// (a UTF-16 label without a BOM is UTF-8, as in browsers); unknown labels
/// are warned about and ignored.
fn known_encoding(
    label: &str,
    source: &str,
    warnings: &mut Vec<String>,
) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches(['"', '\'']);
    if label.is_empty() {
        return None;
    }
    match Encoding::for_label(label.as_bytes()) {
        Some(e) if e != encoding_rs::REPLACEMENT => Some(e.output_encoding()),
        _ => {
            warnings.push(format!(
                "{source} names an unknown charset {label:?}; ignored."
            ));
            None
        }
    }
}

fn decode_lossy(encoding: &'static Encoding, bytes: &[u8], warnings: &mut Vec<String>) -> String {
    let (text, malformed) = encoding.decode_without_bom_handling(bytes);
    if malformed {
        warnings.push(format!(
            "The document is not valid {}: {} malformed byte sequence(s) replaced with U+FFFD.",
            encoding.name(),
            text.matches('\u{FFFD}').count()
        ));
    }
    text.into_owned()
}

fn decodes_cleanly(encoding: &'static Encoding, bytes: &[u8]) -> bool {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .is_some()
}

/// Bytes in well-formed multi-byte UTF-8 sequences, and malformed bytes.
fn utf8_stats(bytes: &[u8]) -> (usize, usize) {
    bytes
        .utf8_chunks()
        .fold((0, 0), |(multibyte, malformed), chunk| {
            (
                multibyte + chunk.valid().bytes().filter(|b| !b.is_ascii()).count(),
                malformed + chunk.invalid().len(),
            )
        })
}

/// chardetng's guess for non-UTF-8 bytes, hinted by the base URL's TLD.
fn guess(bytes: &[u8], base: Option<&str>) -> &'static Encoding {
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let tld = base.and_then(tld);
    detector.guess(tld.as_deref().map(str::as_bytes), Utf8Detection::Deny)
}

/// The lower-case last DNS label of an http(s) URL's host (chardetng panics
/// on anything but lower-case ASCII without dots, so nothing else passes).
fn tld(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?.split(':').next()?;
    let label = host.trim_end_matches('.').rsplit('.').next()?;
    let ok = !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| label.to_ascii_lowercase())
}

/// The `encoding` of the XML declaration that opens `body`, if any.
fn xml_encoding(body: &[u8]) -> Option<&str> {
    let head = body.trim_ascii_start();
    let head = &head[..head.len().min(512)];
    let decl = &head[..find(head, b"?>")?];
    if !decl.starts_with(b"<?xml") {
        return None;
    }
    std::str::from_utf8(&decl[encoding_value(decl)?]).ok()
}

/// feed-rs (quick-xml) switches its decoder at every `<?xml … encoding=…?>`
/// it meets, and panics when one comes after its 64-byte look-ahead. The
/// text is UTF-8 by now, so every declaration is made to say so.
fn declare_utf8(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    for (at, _) in text.match_indices("<?xml") {
        let window = &text.as_bytes()[at..text.len().min(at + 512)];
        let Some(value) = find(window, b"?>").and_then(|end| encoding_value(&window[..end])) else {
            continue;
        };
        if at >= done {
            out.push_str(&text[done..at + value.start]);
            out.push_str("UTF-8");
            done = at + value.end;
        }
    }
    if done == 0 {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[done..]);
        Cow::Owned(out)
    }
}

/// Where the value of the `encoding="…"` pseudo-attribute is in `decl`.
fn encoding_value(decl: &[u8]) -> Option<Range<usize>> {
    let skip_space = |i: usize| {
        i + decl[i..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count()
    };
    let i = skip_space(find(decl, b"encoding")? + "encoding".len());
    if decl.get(i) != Some(&b'=') {
        return None;
    }
    let i = skip_space(i + 1);
    let quote = *decl.get(i).filter(|q| matches!(q, b'"' | b'\''))?;
    let len = decl[i + 1..].iter().position(|&b| b == quote)?;
    Some(i + 1..i + 1 + len)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// JSON Feed says a numeric item `id` is to be read as a string; feed-rs
/// rejects the whole feed instead. Returns the fixed document if one changed.
fn coerce_json_ids(text: &str) -> Option<String> {
    if !text.starts_with('{') {
        return None;
    }
    let mut doc: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut changed = false;
    let items = doc.get_mut("items")?.as_array_mut()?;
    for id in items.iter_mut().filter_map(|i| i.get_mut("id")) {
        if id.is_number() {
            *id = id.to_string().into();
            changed = true;
        }
    }
    changed.then(|| doc.to_string())
}

/// Our error for a feed-rs failure. Error texts quote the document (element
/// names, values), and they end up in logs, `status` and terminals: every
/// control or bidi character in them is written as an escape.
fn error(e: ParseFeedError, text: &str) -> ParseError {
    match error_text(e, text) {
        ParseError::NotAFeed(m) => ParseError::NotAFeed(escape_invisible(&m)),
        ParseError::Malformed(m) => ParseError::Malformed(escape_invisible(&m)),
        ParseError::Empty => ParseError::Empty,
    }
}

/// `s` with each control, bidi or invisible formatting character written as
/// `\u{..}`.
fn escape_invisible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if invisible(c) {
            let _ = write!(out, "{}", c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The XML reader's own error on the document's first element, if it has
/// one: feed-rs reports any failure there as "no feed root" (so a root
/// with too many namespace declarations read as an `<rss>` without a
/// version), which would hide the reason.
fn root_element_error(text: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::NsReader::from_str(text);
    loop {
        match reader.read_resolved_event() {
            Ok((_, Event::Start(_) | Event::Empty(_) | Event::Eof)) => return None,
            Ok(_) => {}
            Err(e) => return Some(e.to_string()),
        }
    }
}

fn error_text(e: ParseFeedError, text: &str) -> ParseError {
    match e {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => match root_element_error(text) {
            Some(e) => ParseError::Malformed(format!("unable to parse XML: {e}")),
            None => ParseError::NotAFeed(describe_root(text)),
        },
        ParseFeedError::JsonSerde(e) if e.is_data() => {
            ParseError::NotAFeed(format!("JSON that is not a JSON Feed: {e}"))
        }
        ParseFeedError::JsonUnsupportedVersion(v) => {
            ParseError::NotAFeed(format!("unsupported JSON Feed version {v:?}"))
        }
        e => ParseError::Malformed(e.to_string()),
    }
}

/// What the document starts with, past the XML prolog, and on which line.
fn describe_root(text: &str) -> String {
    let mut rest = text.trim_start();
    while rest.starts_with("<?") || rest.starts_with("<!") {
        let end = if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else {
            rest.find('>').map(|i| i + 1)
        };
        rest = rest[end.unwrap_or(rest.len())..].trim_start();
    }
    let line = 1 + text[..text.len() - rest.len()].matches('\n').count();
    let Some(tag) = rest.strip_prefix('<') else {
        let start: String = rest.chars().take(40).collect();
        return format!("line {line}: found text {start:?}");
    };
    let name: String = tag
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '>' | '/'))
        .take(40)
        .collect();
    if name.eq_ignore_ascii_case("html") {
        format!("line {line}: found an HTML page")
    } else if name == "rss" {
        format!("line {line}: found <rss> without a supported version (2.0, 0.91 or 0.92)")
    } else {
        format!("line {line}: found root element <{name}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    const RSS2: &[u8] = include_bytes!("../tests/fixtures/parse/rss2.xml");
    const ATOM: &[u8] = include_bytes!("../tests/fixtures/parse/atom.xml");
    const JSON: &[u8] = include_bytes!("../tests/fixtures/parse/feed.json");
    const RSS091: &[u8] = include_bytes!("../tests/fixtures/parse/rss091.xml");
    const RSS1: &[u8] = include_bytes!("../tests/fixtures/parse/rss1.rdf");
    const CP1251_DECLARED: &[u8] = include_bytes!("../tests/fixtures/parse/cp1251_declared.xml");
    const CP1251_BARE: &[u8] = include_bytes!("../tests/fixtures/parse/cp1251_bare.xml");
    const UTF8_DECLARED_1251: &[u8] =
        include_bytes!("../tests/fixtures/parse/utf8_declared_1251.xml");
    const UTF8_BAD_BYTE: &[u8] = include_bytes!("../tests/fixtures/parse/utf8_bad_byte.xml");

    /// The item titles of every Russian encoding fixture, in order.
    const RU_TITLES: [&str; 2] = [
        "Курск: движение по мосту через Сейм восстановлено",
        "Воронеж: синоптики обещают грозы и град",
    ];

    fn parse(body: &[u8]) -> ParsedFeed {
        parse_with(body, None, None)
    }

    fn parse_with(body: &[u8], charset: Option<&str>, base: Option<&str>) -> ParsedFeed {
        let opts = ParseOptions {
            base_url: base.map(str::to_owned),
            ..ParseOptions::default()
        };
        match parse_feed(body, charset, &opts) {
            Ok(feed) => feed,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn titles(feed: &ParsedFeed) -> Vec<&str> {
        feed.items.iter().map(|i| i.title.as_str()).collect()
    }

    fn time(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    fn err(body: &[u8]) -> ParseError {
        match parse_feed(body, None, &ParseOptions::default()) {
            Ok(feed) => panic!("expected an error, got {feed:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rss2_fields() {
        let feed = parse_with(RSS2, None, Some("https://wire.example/feeds/top.xml"));
        assert_eq!(
            feed.title.as_deref(),
            Some("Wire Desk & Partners — Top Stories")
        );
        assert!(feed.warnings.is_empty(), "{:?}", feed.warnings);
        let first = &feed.items[0];
        assert_eq!(first.title, "Port of Halden reopens after storm damage");
        assert_eq!(
            first.summary,
            "The port reopened on Wednesday morning.\n\nCrews worked & cleared debris overnight."
        );
        assert_eq!(
            first.content,
            "The port reopened on Wednesday morning, officials said.\n\nFerries resume at noon."
        );
        assert_eq!(first.authors, ["Mara Lind"]);
        assert_eq!(first.categories, ["Transport", "Weather"]);
        assert_eq!(first.published, time("2025-06-11T06:30:00Z"));

        let second = &feed.items[1];
        assert_eq!(second.title, "Курск: в городе открыли новый мост");
        assert_eq!(second.published, time("2025-06-11T02:00:00Z"));
        assert_eq!(second.updated, time("2025-06-11T04:15:00Z"));
        // The <comments> link is not the story link.
        assert_eq!(
            second.link.as_deref(),
            Some("https://wire.example/ru/kursk-most")
        );
        assert_eq!(feed.items[2].title, "Markets open flat — no headline link");
    }

    #[test]
    fn key_is_guid_then_link_then_content_hash() {
        let feed = parse_with(RSS2, None, Some("https://wire.example/feeds/top.xml"));
        // guid wins over link
        assert_eq!(feed.items[0].key, "wire-2025-0611-001");
        assert_eq!(
            feed.items[0].link.as_deref(),
            Some("https://wire.example/news/halden-port")
        );
        // no guid: the link itself (feed-rs would hash link + title)
        assert_eq!(feed.items[1].key, "https://wire.example/ru/kursk-most");
        // neither: hash of plain title and summary
        let third = &feed.items[2];
        assert_eq!(third.link, None);
        assert_eq!(third.key, content_key(&third.title, &third.summary));
        // a blank guid counts as none; the relative link resolved against the base
        assert_eq!(
            feed.items[3].key,
            "https://wire.example/news/relative-story"
        );
        // javascript: links are dropped, so the key is the content hash
        assert_eq!(feed.items[4].link, None);
        assert!(feed.items[4].key.starts_with("h:"));
    }

    #[test]
    fn keys_are_stable_across_parses() {
        let keys = |feed: ParsedFeed| feed.items.into_iter().map(|i| i.key).collect::<Vec<_>>();
        let doc = br#"<rss version="2.0"><channel><title>t</title>
            <item><title>No guid, no link</title><description>Same text.</description></item>
            <item><title>Another</title></item></channel></rss>"#;
        let first = keys(parse(doc));
        assert_eq!(first, keys(parse(doc)));
        assert_eq!(first[0], content_key("No guid, no link", "Same text."));
        assert_eq!(first[1], content_key("Another", ""));
        assert_eq!(keys(parse(RSS2)), keys(parse(RSS2)));
        assert_eq!(keys(parse(RSS1)), keys(parse(RSS1)));
    }

    #[test]
    fn content_key_format() {
        // python3 -c "import hashlib; print(hashlib.sha256(b'a\x1fb').hexdigest()[:32])"
        assert_eq!(content_key("a", "b"), "h:f04cdced9736a69da6103f08a4daaf8c");
        assert_ne!(content_key("a", "b"), content_key("a", "c"));
        assert_ne!(content_key("ab", ""), content_key("a", "b"));
    }

    #[test]
    fn links_only_http_and_resolved_against_base() {
        let without_base = parse(RSS2);
        assert_eq!(without_base.items[3].link, None);
        assert_eq!(without_base.items[4].link, None);
        let doc = br#"<rss version="2.0"><channel><title>t</title>
            <item><title>a</title><link>data:text/html,hi</link></item>
            <item><title>b</title><link>file:///etc/passwd</link></item>
            <item><title>c</title><link>HTTPS://Wire.Example/A</link></item>
            <item><title>d</title><link>story/5?x=1</link></item>
            </channel></rss>"#;
        let feed = parse_with(doc, None, Some("https://wire.example/feeds/top.xml"));
        let links: Vec<_> = feed.items.iter().map(|i| i.link.as_deref()).collect();
        assert_eq!(
            links,
            [
                None,
                None,
                Some("https://wire.example/A"),
                Some("https://wire.example/feeds/story/5?x=1")
            ]
        );
    }

    #[test]
    fn control_characters_never_reach_keys_or_links() {
        let doc = r#"{"version": "https://jsonfeed.org/version/1", "title": "t", "items": [
            {"id": " a\u001b[2Jb\u202e ", "url": "/x\u001b[31m", "title": "x"},
            {"url": "https://exa mple.com/\u0007", "title": "y"}]}"#;
        let feed = parse_with(doc.as_bytes(), None, Some("https://wire.example/"));
        assert_eq!(feed.items[0].key, "a[2Jb");
        assert_eq!(feed.items[0].link, None);
        assert_eq!(feed.items[1].link, None);
        assert!(feed.items[1].key.starts_with("h:"));
    }

    #[test]
    fn invalid_base_is_ignored_with_a_warning() {
        let feed = parse_with(RSS2, None, Some("https://exa mple.com/"));
        assert_eq!(feed.items.len(), 5);
        assert_eq!(feed.items[3].link, None);
        assert!(
            feed.warnings[0].contains("not a valid http(s) URL"),
            "{:?}",
            feed.warnings
        );
        let feed = parse_with(JSON, None, Some("ftp://harbour.example/"));
        assert_eq!(feed.items[0].link, None);
        assert_eq!(feed.warnings.len(), 1);
    }

    #[test]
    fn atom_fields() {
        let feed = parse_with(ATOM, None, Some("https://northwire.example/atom.xml"));
        assert_eq!(feed.title.as_deref(), Some("Northern Wire Service"));
        let first = &feed.items[0];
        assert_eq!(first.key, "tag:northwire.example,2025:story-17");
        assert_eq!(
            first.link.as_deref(),
            Some("https://northwire.example/story/17")
        );
        assert_eq!(first.published, time("2025-06-11T07:45:00Z"));
        assert_eq!(first.updated, time("2025-06-11T08:10:00Z"));
        assert_eq!(
            first.authors,
            ["Ilse Brandt", "night-desk@northwire.example"]
        );
        assert_eq!(first.categories, ["energy", "Power grid"]);
        assert_eq!(first.summary, "Demand is expected to peak at 19:00.");
        assert_eq!(
            first.content,
            "Demand is expected to peak at 19:00.\n\nReserves are thin."
        );

        let second = &feed.items[1];
        assert_eq!(second.title, "Снегопад в Мурманске & задержки рейсов");
        // blank id: the (resolved) link is the key
        assert_eq!(second.key, "https://northwire.example/story/18");
        // no <published>: falls back to <updated>
        assert_eq!(second.published, time("2025-06-11T06:00:00Z"));
        assert_eq!(second.updated, second.published);
        assert_eq!(
            second.summary,
            "Аэропорт сообщил о задержке трёх рейсов.\n\nВылеты переносятся на утро."
        );
    }

    #[test]
    fn json_feed_fields() {
        let feed = parse_with(JSON, None, Some("https://harbour.example/feed.json"));
        assert_eq!(feed.title.as_deref(), Some("Harbour Radio Newsroom"));
        let first = &feed.items[0];
        assert_eq!(first.key, "4021", "numeric ids are read as strings");
        assert_eq!(
            first.link.as_deref(),
            Some("https://harbour.example/news/4021")
        );
        assert_eq!(
            first.content,
            "New times apply from Monday.\n\nNight sailings are cut."
        );
        assert_eq!(first.authors, ["Harbour Desk"]);
        assert_eq!(first.categories, ["ferries", "transport"]);
        assert_eq!(first.published, time("2025-06-10T16:00:00Z"));
        assert_eq!(first.updated, time("2025-06-10T17:30:00Z"));
        let second = &feed.items[1];
        assert_eq!(
            second.link.as_deref(),
            Some("https://cdn.harbour.example/live/4022")
        );
        assert_eq!(second.key, "https://cdn.harbour.example/live/4022");
        assert_eq!(
            second.content,
            "Voting has started.\n\nResults expected tonight."
        );
        let third = &feed.items[2];
        assert_eq!(third.key, content_key("No id, no url", "Just text."));
    }

    #[test]
    fn rss_091_and_rss_1() {
        let old = parse(RSS091);
        assert_eq!(old.title.as_deref(), Some("Old Wire Bulletin"));
        assert_eq!(
            titles(&old),
            ["Pipeline talks resume", "Шторм в Балтийском море"]
        );
        assert_eq!(old.items[0].key, "http://bulletin.example/1001");
        let rdf = parse(RSS1);
        assert_eq!(rdf.title.as_deref(), Some("Regional Digest"));
        assert_eq!(
            titles(&rdf),
            [
                "Bridge closed for repairs",
                "Выборы мэра назначены на осень"
            ]
        );
        assert_eq!(rdf.items[1].key, "https://digest.example/2");
        assert_eq!(rdf.items[1].summary, "Голосование пройдёт в сентябре.");
    }

    #[test]
    fn windows_1251_declared_in_xml() {
        let feed = parse(CP1251_DECLARED);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(feed.title.as_deref(), Some("Лента новостей"));
        assert!(feed.warnings.is_empty(), "{:?}", feed.warnings);
    }

    #[test]
    fn windows_1251_from_http_charset_only() {
        let feed = parse_with(CP1251_BARE, Some("windows-1251"), None);
        assert_eq!(titles(&feed), RU_TITLES);
        assert!(feed.warnings.is_empty(), "{:?}", feed.warnings);
        let feed = parse_with(CP1251_BARE, Some("\"CP1251\""), None);
        assert_eq!(titles(&feed), RU_TITLES);
    }

    #[test]
    fn windows_1251_undeclared_is_detected() {
        let feed = parse(CP1251_BARE);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(
            feed.warnings,
            ["No charset declared but the bytes look like windows-1251; decoded as windows-1251."]
        );
        // Declared UTF-8 over the same bytes
        let feed = parse_with(
            CP1251_BARE,
            Some("utf-8"),
            Some("https://news.example.ru/rss"),
        );
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(
            feed.warnings,
            ["Declared UTF-8 but the bytes look like windows-1251; decoded as windows-1251."]
        );
    }

    #[test]
    fn utf8_misdeclared_as_windows_1251() {
        let feed = parse(UTF8_DECLARED_1251);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(
            feed.warnings,
            ["Declared windows-1251 but the bytes are UTF-8; decoded as UTF-8."]
        );
        // Same via the HTTP charset
        let body = String::from_utf8_lossy(UTF8_DECLARED_1251).replace("windows-1251", "UTF-8");
        let feed = parse_with(body.as_bytes(), Some("koi8-r"), None);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(
            feed.warnings,
            ["The HTTP charset says KOI8-R but the XML declaration says UTF-8; decoded as UTF-8."]
        );
        // Only the HTTP charset, and wrong
        let undeclared = &body[body.find("<rss").unwrap_or(0)..];
        let feed = parse_with(undeclared.as_bytes(), Some("windows-1251"), None);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(
            feed.warnings,
            ["Declared windows-1251 but the bytes are UTF-8; decoded as UTF-8."]
        );
    }

    #[test]
    fn utf8_with_one_bad_byte_keeps_the_feed() {
        // With a .ru base chardetng would guess windows-1251, which decodes
        // these bytes "cleanly" into mojibake: the well-formed UTF-8 must win.
        for base in [None, Some("https://news.example.ru/rss")] {
            let feed = parse_with(UTF8_BAD_BYTE, None, base);
            assert_eq!(titles(&feed), RU_TITLES);
            assert_eq!(
                feed.items[1].summary,
                "Гроза ожидается после обеда\u{FFFD} ветер до 20 м/с."
            );
            assert_eq!(
                feed.warnings,
                ["The document is not valid UTF-8: 1 malformed byte sequence(s) replaced with U+FFFD."]
            );
        }
    }

    #[test]
    fn http_charset_and_declaration_disagree() {
        // HTTP says UTF-8, the bytes are windows-1251 as declared: the declaration wins.
        let feed = parse_with(CP1251_DECLARED, Some("utf-8"), None);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(
            feed.warnings,
            ["The HTTP charset says UTF-8 but the XML declaration says windows-1251; decoded as windows-1251."]
        );
        // Both fit the bytes (single-byte): chardetng breaks the tie.
        let feed = parse_with(CP1251_DECLARED, Some("iso-8859-1"), None);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(feed.warnings.len(), 1, "{:?}", feed.warnings);
        // HTTP fits the bytes, the declaration (UTF-8) does not: HTTP wins.
        let mut body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".to_vec();
        body.extend_from_slice(CP1251_BARE);
        let feed = parse_with(&body, Some("windows-1251"), None);
        assert_eq!(titles(&feed), RU_TITLES);
        assert_eq!(
            feed.warnings,
            ["The HTTP charset says windows-1251 but the XML declaration says UTF-8; decoded as windows-1251."]
        );
    }

    #[test]
    fn bom_wins_over_everything() {
        let text = String::from_utf8_lossy(UTF8_DECLARED_1251).replace("windows-1251", "UTF-16");
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let feed = parse_with(&utf16, Some("windows-1251"), None);
        assert_eq!(titles(&feed), RU_TITLES);
        assert!(feed.warnings.is_empty(), "{:?}", feed.warnings);
        let mut utf8 = b"\xEF\xBB\xBF".to_vec();
        utf8.extend_from_slice(UTF8_DECLARED_1251);
        assert_eq!(titles(&parse_with(&utf8, Some("koi8-r"), None)), RU_TITLES);
    }

    #[test]
    fn unknown_charset_labels_are_ignored() {
        let feed = parse_with(RSS2, Some("x-klingon"), None);
        assert_eq!(feed.items.len(), 5);
        assert_eq!(
            feed.warnings,
            ["The HTTP charset names an unknown charset \"x-klingon\"; ignored."]
        );
        assert!(parse_with(RSS2, Some(" "), None).warnings.is_empty());
    }

    #[test]
    fn item_cap_keeps_the_first_in_document_order() {
        let opts = ParseOptions {
            max_items: 2,
            base_url: None,
        };
        let feed = parse_feed(RSS2, None, &opts).map_err(|e| e.to_string());
        let Ok(feed) = feed else { panic!("{feed:?}") };
        assert_eq!(
            titles(&feed),
            [
                "Port of Halden reopens after storm damage",
                "Курск: в городе открыли новый мост"
            ]
        );
        assert_eq!(
            feed.warnings,
            ["The feed has 5 items; kept the first 2, dropped 3."]
        );
    }

    #[test]
    fn empty_and_non_feed_documents_are_errors() {
        assert!(matches!(err(b""), ParseError::Empty));
        assert!(matches!(err(b" \r\n\t"), ParseError::Empty));
        assert!(matches!(err(b"\xEF\xBB\xBF"), ParseError::Empty));
        assert_eq!(
            err(b"\n<!DOCTYPE html>\n<html><body>Moved</body></html>").to_string(),
            "not a feed: expected RSS, Atom or JSON Feed (line 3: found an HTML page)"
        );
        assert_eq!(
            err(b"<?xml version=\"1.0\"?>\n<!-- c -->\n<sitemap/>").to_string(),
            "not a feed: expected RSS, Atom or JSON Feed (line 3: found root element <sitemap>)"
        );
        assert!(err(b"<rss><channel/></rss>")
            .to_string()
            .contains("<rss> without a supported version"));
        assert!(err(b"Service Unavailable")
            .to_string()
            .contains("found text \"Service Unavailable\""));
        assert!(matches!(
            err(br#"{"hello": "world"}"#),
            ParseError::NotAFeed(_)
        ));
        assert!(err(
            br#"{"version": "https://jsonfeed.org/version/9", "title": "x", "items": []}"#
        )
        .to_string()
        .contains("unsupported JSON Feed version"));
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        assert!(matches!(
            err(b"<rss version=\"2.0\"><channel><title>T</title><item><title>cut</ti"),
            ParseError::Malformed(_)
        ));
        assert!(matches!(
            err(b"{\"version\": \"https://jsonfeed.org/version/1.1\", \"ti"),
            ParseError::Malformed(_)
        ));
        // Every truncation of a real fixture parses or fails cleanly.
        for fixture in [RSS2, ATOM, JSON, CP1251_DECLARED] {
            for end in (0..fixture.len()).step_by(7) {
                let _ = parse_feed(&fixture[..end], None, &ParseOptions::default());
            }
        }
    }

    #[test]
    fn feed_rs_panics_and_late_declarations_are_contained() {
        let overflow = br#"<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>T</title>
            <item><title>a</title><itunes:duration>99999999999999999999999</itunes:duration></item></channel></rss>"#;
        assert!(matches!(err(overflow), ParseError::Malformed(_)));
        // A second declaration, or one longer than quick-xml's look-ahead,
        // naming another encoding panicked inside feed-rs before the rewrite.
        let late = br#"<rss version="2.0"><channel><title>T</title><item><title>a</title></item>
            <?xml version="1.0" encoding="koi8-r"?><item><title>b</title></item></channel></rss>"#;
        assert_eq!(titles(&parse(late)), ["a", "b"]);
        let long = format!(
            "<?xml version=\"1.0\"{} encoding=\"windows-1251\"?><rss version=\"2.0\"><channel><title>T</title></channel></rss>",
            " ".repeat(80)
        );
        assert_eq!(parse(long.as_bytes()).title.as_deref(), Some("T"));
    }

    #[test]
    fn declaration_rewrite() {
        assert_eq!(
            declare_utf8("<?xml version='1.0' encoding = 'koi8-r' ?><a/><?xml encoding=\"x\"?>"),
            "<?xml version='1.0' encoding = 'UTF-8' ?><a/><?xml encoding=\"UTF-8\"?>"
        );
        // A declaration nested in another's window is rewritten once.
        assert_eq!(
            declare_utf8("<?xml v=\"<?xml encoding='x'?>\"?><a/>"),
            "<?xml v=\"<?xml encoding='UTF-8'?>\"?><a/>"
        );
        assert!(matches!(
            declare_utf8("<?xml version=\"1.0\"?><a/>"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            xml_encoding(b"\n <?xml version=\"1.0\" encoding=\"KOI8-R\"?>"),
            Some("KOI8-R")
        );
        assert_eq!(xml_encoding(b"<rss encoding=\"koi8-r\">"), None);
    }

    #[test]
    fn tld_hint() {
        assert_eq!(tld("https://news.example.RU/rss").as_deref(), Some("ru"));
        assert_eq!(
            tld("http://user@host.example.ua:8080/x").as_deref(),
            Some("ua")
        );
        assert_eq!(tld("https://[::1]/x"), None);
        assert_eq!(tld("https://пример.рф/"), None);
    }

    #[test]
    fn schedule_hints() {
        let doc = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
            <ttl>45</ttl>
            <skipHours><hour>0</hour><hour>23</hour><hour>24</hour><hour>noon</hour></skipHours>
            <skipDays><day>Saturday</day><day>sunday</day><day>Caturday</day></skipDays>
            <item><title>One</title><guid>1</guid></item></channel></rss>"#;
        let p = parse(doc);
        assert_eq!(p.hints.ttl, Some(std::time::Duration::from_secs(45 * 60)));
        assert_eq!(p.hints.skip_hours, (1 << 0) | (1 << 23));
        assert_eq!(p.hints.skip_days, (1 << 5) | (1 << 6));
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("\"noon\"") && w.contains("\"Caturday\"")),
            "{:?}",
            p.warnings
        );
        // Item-level look-alikes are not the channel's.
        let nested = br#"<rss version="2.0"><channel><title>T</title>
            <item><title>One</title><guid>1</guid><skipHours><hour>3</hour></skipHours></item>
            </channel></rss>"#;
        assert_eq!(parse(nested).hints, FeedHints::default());
        let plain = br#"<rss version="2.0"><channel><title>T</title><ttl>0</ttl></channel></rss>"#;
        assert_eq!(parse(plain).hints, FeedHints::default());
    }

    #[test]
    fn a_namespace_flood_says_so() {
        let decls: String = (0..5000)
            .map(|i| format!(" xmlns:n{i}=\"urn:n:{i}\""))
            .collect();
        let doc = format!("<rss version=\"2.0\"{decls}><channel><title>t</title></channel></rss>");
        match err(doc.as_bytes()) {
            ParseError::Malformed(m) => assert!(m.contains("namespace"), "{m}"),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn error_texts_escape_controls_from_the_document() {
        let e =
            err("<a\u{1b}[2J\u{0}\u{202e}b><c/></a\u{1b}[2J\u{0}\u{202e}b>".as_bytes()).to_string();
        assert!(!e.chars().any(invisible), "{e:?}");
        assert!(e.contains("\\u{1b}[2J\\u{0}\\u{202e}b"), "{e}");
        let e = err(b"<rss version=\"2.0\"><channel></chan\x1bnel></rss>").to_string();
        assert!(!e.chars().any(invisible), "{e:?}");
    }
}
