//! Article page (HTML bytes) -> its main text: a readability-style
//! extractor for `full_text = true` feeds.
//!
//! Owns: choosing the page's character encoding (the same rules as feeds,
//! [`crate::parse::decode_declared`], with `<meta charset>` /
//! `http-equiv` as the document's own declaration), building a small tree
//! of the page, dropping what is not the article (scripts, styles,
//! navigation, asides, footers, forms, iframes, and elements whose class or
//! id says advert, promo, related, comments, share, cookie, paywall …),
//! scoring the block containers that remain, and rendering the winner (and
//! the siblings that belong to it) as plain text with paragraph breaks.
//! When the page yields too little text, a JSON-LD `articleBody` is tried;
//! when that fails too the result is [`NoArticle`]: a paywall stub, a
//! teaser or a section front gives no text rather than the teaser again.
//!
//! Scoring, after Mozilla's Readability: each paragraph (`p`, `pre`, `td`,
//! a `div` holding only inline content) of at least 25 characters scores
//! 1 + its commas + one per 100 characters (at most 3), added in full to its
//! parent, half to its grandparent and a third of its level to the three
//! levels above. A container starts from its tag (`div` +5, `article` +10,
//! `main` +3, lists and forms −3, headings −5) and its class/id hints (±25:
//! article, content, story, body, text … vs comment, sidebar, promo, share,
//! related …). The final score is multiplied by 1 − link density, the best
//! container wins, and its siblings join when they score at least a fifth
//! of it or are plain paragraphs. Inside the winner, link lists and
//! link-heavy blocks are dropped when rendering.
//!
//! Parser: the project's own tokenizer ([`crate::html::token`], already
//! hardened on feed text: never panics, linear) feeding a flat arena tree
//! (indices, no `Rc`, no recursion anywhere), with the implied end tags
//! that matter for text (`p`, `li`, `dt`/`dd`, table cells, an unclosed
//! `<head>`). A spec HTML5 tree builder (html5ever, under `scraper` or
//! `readability`) was not taken: its scope checks walk the whole stack of
//! open elements for every block tag, which is quadratic on a page of
//! 100,000 nested `<div>`s, and it would bring an `Rc` DOM and a selector
//! engine for what is a scoring pass over block elements. What this parser
//! gets wrong on tag soup (mis-nested formatting elements, foster
//! parenting) moves text between neighbouring blocks, which scoring
//! tolerates. Bounds: the input is capped by the fetcher; at most
//! [`MAX_NODES`] elements are built (the rest of the page is read as text
//! of the last open element); end tags and implied ends look at most
//! [`SCOPE_LIMIT`] open elements down; output at most
//! [`MAX_ARTICLE_CHARS`] characters.
//!
//! Pure: no I/O, no clock.

use std::ops::Range;

use crate::html::{self, Token, Writer};

/// Below this many characters an extraction is no article: a paywall stub,
/// a teaser, a section front or an error page.
pub const MIN_ARTICLE_CHARS: usize = 200;
/// The extracted text is cut (at a paragraph break) beyond this many
/// characters: enough for any news article, and a bound on matching cost.
pub const MAX_ARTICLE_CHARS: usize = 100_000;
/// Elements built at most; the rest of a page is text of the last one.
pub const MAX_NODES: usize = 200_000;
/// How many open elements an end tag or an implied end looks down.
pub const SCOPE_LIMIT: usize = 256;
/// JSON-LD read at most (all `application/ld+json` scripts together).
const MAX_JSON_LD: usize = 1 << 20;
/// Where a `<meta charset>` is looked for (browsers look at 1024 bytes;
/// pages with long inline scripts before it are common enough).
const META_PRESCAN: usize = 4096;

/// The main text of an article page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// Plain text: paragraphs separated by blank lines.
    pub text: String,
    pub source: Source,
    /// Non-fatal problems (encoding decisions, truncation), one sentence
    /// each, for a log line.
    pub warnings: Vec<String>,
}

/// Where the text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The page's own markup, scored.
    Page,
    /// A JSON-LD `articleBody` (the page's markup gave too little).
    JsonLd,
}

/// Why a page gave no article text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no article text found: {0}")]
pub struct NoArticle(pub String);

/// Extracts the main text of an article page. `http_charset` is the
/// charset parameter of the HTTP Content-Type, `url` the page's URL (its
/// top-level domain hints the encoding guess).
pub fn extract(
    body: &[u8],
    http_charset: Option<&str>,
    url: Option<&str>,
) -> Result<Article, NoArticle> {
    let mut warnings = Vec::new();
    let declared = meta_charset(body);
    let declared = declared.as_deref().map(|l| (l, "meta charset"));
    let text = crate::parse::decode_declared(body, http_charset, declared, url, &mut warnings);
    let tree = Tree::build(&text);
    if tree.capped {
        warnings.push(format!(
            "The page has more than {MAX_NODES} elements; the rest was read as text."
        ));
    }
    let from_page = tree.article();
    let page_chars = from_page.chars().count();
    let (mut text, source) = if page_chars >= MIN_ARTICLE_CHARS {
        (from_page, Source::Page)
    } else {
        match tree.json_ld_body() {
            Some(t) if t.chars().count() >= MIN_ARTICLE_CHARS => (t, Source::JsonLd),
            _ => {
                return Err(NoArticle(if page_chars == 0 {
                    "no paragraphs of text outside navigation and boilerplate".into()
                } else {
                    format!(
                        "only {page_chars} characters of text outside navigation and boilerplate \
                         (a paywall, a teaser or a section front?)"
                    )
                }))
            }
        }
    };
    if let Some((cut, _)) = text.char_indices().nth(MAX_ARTICLE_CHARS) {
        let at = text[..cut].rfind("\n\n").unwrap_or(cut);
        text.truncate(at);
        warnings.push(format!(
            "The article text is longer than {MAX_ARTICLE_CHARS} characters; the rest was cut."
        ));
    }
    Ok(Article {
        text,
        source,
        warnings,
    })
}

// ------------------------------------------------------------ encoding ---

/// The charset a `<meta charset=…>` or `<meta http-equiv="content-type"
/// content="…; charset=…">` in the first [`META_PRESCAN`] bytes names.
/// Read as ASCII: every encoding a page can declare this way keeps ASCII
/// bytes as they are.
fn meta_charset(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(META_PRESCAN)]);
    let lower = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("<meta") {
        let start = from + i + "<meta".len();
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let attrs = &lower[start..end];
        if let Some(cs) = attr(attrs, "charset") {
            return Some(cs.to_string());
        }
        let equiv = attr(attrs, "http-equiv").is_some_and(|v| v.trim() == "content-type");
        if let (true, Some(content)) = (equiv, attr(attrs, "content")) {
            if let Some(cs) = crate::fetch::charset_of(content) {
                return Some(cs);
            }
        }
        from = end;
    }
    None
}

/// The value of attribute `name` in a tag's attribute source (between the
/// tag name and `>`), without entity decoding. Names compare ASCII
/// case-insensitively; a name without `=` has the value "".
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let b = attrs.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let n0 = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'/' | b'>') {
            i += 1;
        }
        let key = &attrs[n0..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let v0 = i + 1;
                    let len = b[v0..].iter().position(|&c| c == q).unwrap_or(b.len() - v0);
                    value = &attrs[v0..v0 + len];
                    i = v0 + len + 1;
                }
                _ => {
                    let v0 = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = &attrs[v0..i];
                }
            }
        }
        if key.is_empty() {
            i += 1;
        } else if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
    None
}

// ---------------------------------------------------------------- tree ---

const NONE: u32 = u32::MAX;

/// One element or text run of the page.
#[derive(Debug, Clone)]
struct Node {
    parent: u32,
    first: u32,
    last: u32,
    next: u32,
    /// A known tag name (lower case), "#text" for text, "x" for others.
    name: &'static str,
    /// Text runs: bytes of `Tree::buf`.
    text: Range<u32>,
    /// Class/id hints: +25 per positive, −25 per negative attribute.
    weight: i32,
    /// Dropped with its subtree: by tag, by an unlikely class/id, hidden.
    drop: bool,
    /// Has a block-level child element.
    has_block: bool,
    /// Child elements, and whether it holds non-whitespace text directly.
    elements: u32,
    direct_text: bool,
}

/// Per-node figures over the kept part of its subtree.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    /// Characters with whitespace runs counted once.
    chars: u32,
    /// Of those, inside `<a>`.
    link_chars: u32,
    commas: u32,
    /// Removed: itself or an ancestor dropped.
    removed: bool,
}

struct Tree {
    nodes: Vec<Node>,
    buf: String,
    /// Contents of `<script type="application/ld+json">`.
    json_ld: Vec<String>,
    capped: bool,
}

/// Elements whose start closes an open `<p>` (and that count as block
/// content of their parent).
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "dialog",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
    "li",
    "dd",
    "dt",
    "tr",
    "td",
    "th",
    "tbody",
    "thead",
    "tfoot",
    "center",
];

/// Elements dropped with everything in them.
const DROPPED: &[&str] = &[
    "head", "noscript", "template", "svg", "math", "iframe", "nav", "aside", "footer", "header",
    "form", "button", "select", "textarea", "object", "embed", "canvas", "video", "audio",
    "dialog", "menu", "input", "label", "option",
];

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param",
];

/// Elements allowed in `<head>`; anything else starts the body.
const HEAD_CONTENT: &[&str] = &[
    "title", "meta", "link", "style", "script", "base", "noscript", "template",
];

/// Known tag names, so nodes hold `&'static str` (unknown ones are "x",
/// inline for layout).
const KNOWN: &[&str] = &[
    "a", "abbr", "b", "body", "caption", "cite", "code", "em", "font", "html", "i", "img", "li",
    "mark", "q", "s", "small", "span", "strong", "sub", "sup", "tbody", "time", "title", "u", "br",
    "picture", "source", "main", "article", "section",
];

fn known(name: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        [BLOCKS, DROPPED, VOID, HEAD_CONTENT, KNOWN]
            .iter()
            .flat_map(|l| l.iter().copied())
            .collect()
    });
    let mut buf = [0u8; 12];
    let Some(lower) = buf.get_mut(..name.len()) else {
        return "x";
    };
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    std::str::from_utf8(lower)
        .ok()
        .and_then(|l| names.get(l).copied())
        .unwrap_or("x")
}

/// Class/id words that drop an element and its subtree wherever it is:
/// boilerplate around (or inside) articles.
const UNLIKELY: &[&str] = &[
    "advert",
    "banner",
    "breadcrumb",
    "combx",
    "comment",
    "community",
    "consent",
    "cookie",
    "disqus",
    "footer",
    "gdpr",
    "masthead",
    "menu",
    "navbar",
    "newsletter",
    "outbrain",
    "pagination",
    "pager",
    "paywall",
    "popular",
    "popup",
    "promo",
    "recirc",
    "recommend",
    "related",
    "remark",
    "replies",
    "share",
    "sharing",
    "shoutbox",
    "sidebar",
    "signup",
    "skyscraper",
    "social",
    "sponsor",
    "subscri",
    "taboola",
    "trending",
    "most-read",
    "mostread",
    "read-more",
    "readmore",
    "widget",
];

/// Whole class/id tokens (split at non-alphanumerics) that drop an element:
/// short words that would hit inside longer ones ("ad" in "header").
const UNLIKELY_TOKENS: &[&str] = &[
    "ad", "ads", "nav", "dfp", "adslot", "login", "modal", "tags",
];

const POSITIVE: &[&str] = &[
    "article", "body", "content", "entry", "hentry", "main", "page", "post", "text", "blog",
    "story",
];

const NEGATIVE: &[&str] = &[
    "hidden", "caption", "contact", "byline", "meta", "media", "scroll", "shopping", "tool",
];

/// (weight, unlikely) of a class or id value.
fn hints(value: &str) -> (i32, bool) {
    let v = value.to_ascii_lowercase();
    if v.trim().is_empty() {
        return (0, false);
    }
    let unlikely = UNLIKELY.iter().any(|w| v.contains(w))
        || v.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| UNLIKELY_TOKENS.contains(&t));
    let mut weight = 0;
    if POSITIVE.iter().any(|w| v.contains(w)) {
        weight += 25;
    }
    if unlikely || NEGATIVE.iter().any(|w| v.contains(w)) {
        weight -= 25;
    }
    (weight, unlikely)
}

/// Tag-based start score of a container.
fn tag_score(name: &str) -> f32 {
    match name {
        "div" => 5.0,
        "article" => 10.0,
        "main" => 3.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    }
}

fn is_comma(c: char) -> bool {
    matches!(
        c,
        ',' | '\u{060C}'
            | '\u{FE50}'
            | '\u{FE10}'
            | '\u{FE11}'
            | '\u{2E41}'
            | '\u{2E34}'
            | '\u{2E32}'
            | '\u{FF0C}'
            | '\u{3001}'
    )
}

struct Builder {
    nodes: Vec<Node>,
    buf: String,
    stack: Vec<u32>,
    json_ld: Vec<String>,
    json_ld_bytes: usize,
    capped: bool,
    /// Where an open `<head>` is on the stack.
    head_at: Option<usize>,
    /// Whether a `<html>` / `<body>` element was built (later ones are not).
    seen_html: bool,
    seen_body: bool,
}

impl Builder {
    fn top(&self) -> u32 {
        self.stack.last().copied().unwrap_or(0)
    }

    fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    /// Appends a node under the current element; `None` for an element
    /// past [`MAX_NODES`] nodes. Text still gets nodes then (at most one
    /// per element left open, as none opens any more: below 2 × MAX_NODES).
    fn append(&mut self, mut node: Node) -> Option<u32> {
        if self.nodes.len() >= MAX_NODES
            && (node.name != "#text" || self.nodes.len() >= 2 * MAX_NODES)
        {
            self.capped = true;
            return None;
        }
        let parent = self.top();
        let id = self.nodes.len() as u32;
        node.parent = parent;
        let is_block = BLOCKS.contains(&node.name);
        let p = &mut self.nodes[parent as usize];
        if node.name != "#text" {
            p.elements += 1;
            p.has_block |= is_block;
        }
        let prev = p.last;
        p.last = id;
        if p.first == NONE {
            p.first = id;
        }
        if prev != NONE {
            self.nodes[prev as usize].next = id;
        }
        self.nodes.push(node);
        Some(id)
    }

    fn text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.in_head() && !s.trim().is_empty() {
            self.close_head();
        }
        let top = self.top();
        if !s.trim().is_empty() {
            self.nodes[top as usize].direct_text = true;
        }
        let start = self.buf.len() as u32;
        self.buf.push_str(s);
        let end = self.buf.len() as u32;
        let last = self.node(top).last;
        if last != NONE {
            let l = &mut self.nodes[last as usize];
            if l.name == "#text" && l.text.end == start {
                l.text.end = end;
                return;
            }
        }
        let node = new_node("#text");
        if let Some(id) = self.append(node) {
            self.nodes[id as usize].text = start..end;
        }
    }

    fn in_head(&self) -> bool {
        self.head_at.is_some_and(|at| {
            self.stack
                .get(at)
                .is_some_and(|&i| self.node(i).name == "head")
        })
    }

    fn close_head(&mut self) {
        if let Some(at) = self.head_at.take() {
            self.stack.truncate(at.max(1));
        }
    }

    /// Closes the nearest open element named in `names`, looking down
    /// through open elements for which `through` holds (at most
    /// [`SCOPE_LIMIT`]).
    fn close_nearest(&mut self, names: &[&str], through: impl Fn(&str) -> bool) {
        let n = self.stack.len();
        for k in (1..n).rev().take(SCOPE_LIMIT) {
            let name = self.node(self.stack[k]).name;
            if names.contains(&name) {
                self.stack.truncate(k);
                return;
            }
            if !through(name) {
                return;
            }
        }
    }

    fn start(&mut self, name: &str, attrs: &str, self_closing: bool) {
        let name = known(name);
        if self.in_head() && !HEAD_CONTENT.contains(&name) {
            self.close_head();
        }
        let inline = |n: &str| !BLOCKS.contains(&n);
        match name {
            "li" => self.close_nearest(&["li"], |n| n != "ul" && n != "ol"),
            "dt" | "dd" => self.close_nearest(&["dt", "dd"], |n| n != "dl"),
            "td" | "th" => self.close_nearest(&["td", "th"], |n| n != "tr" && n != "table"),
            "tr" => self.close_nearest(&["tr", "td", "th"], |n| n != "table"),
            _ => {}
        }
        if BLOCKS.contains(&name) {
            self.close_nearest(&["p"], |n| inline(n) || n == "p");
        }
        // A second <html> or <body>: nothing to build.
        match name {
            "html" if self.seen_html => return,
            "body" if self.seen_body => return,
            "html" => self.seen_html = true,
            "body" => self.seen_body = true,
            _ => {}
        }
        let mut node = new_node(name);
        let (cw, cu) = attr(attrs, "class").map_or((0, false), hints);
        let (iw, iu) = attr(attrs, "id").map_or((0, false), hints);
        node.weight = cw + iw;
        let itemprop =
            attr(attrs, "itemprop").is_some_and(|v| v.eq_ignore_ascii_case("articleBody"));
        if itemprop {
            node.weight += 25;
        }
        let role = attr(attrs, "role").unwrap_or("").to_ascii_lowercase();
        let hidden = attr(attrs, "hidden").is_some()
            || attr(attrs, "aria-hidden").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || attr(attrs, "style").is_some_and(|v| {
                let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
                v.to_ascii_lowercase().contains("display:none")
            });
        let structural = matches!(name, "html" | "body" | "article" | "main");
        node.drop = DROPPED.contains(&name)
            || hidden
            || (!structural && !itemprop && (cu || iu))
            || matches!(
                role.as_str(),
                "navigation"
                    | "complementary"
                    | "banner"
                    | "contentinfo"
                    | "dialog"
                    | "alert"
                    | "menu"
                    | "menubar"
            );
        let id = self.append(node);
        if let (Some(id), false, false) = (id, self_closing, VOID.contains(&name)) {
            if name == "head" && self.head_at.is_none() {
                self.head_at = Some(self.stack.len());
            }
            self.stack.push(id);
        }
    }

    fn end(&mut self, name: &str) {
        let name = known(name);
        if name == "br" {
            self.start("br", "", true);
            return;
        }
        if name == "x" {
            // Unknown elements are not told apart: their end closes the
            // nearest unknown one, if it is on top.
            if self.stack.len() > 1 && self.node(self.top()).name == "x" {
                self.stack.pop();
            }
            return;
        }
        let n = self.stack.len();
        for k in (1..n).rev().take(SCOPE_LIMIT) {
            if self.node(self.stack[k]).name == name {
                self.stack.truncate(k);
                return;
            }
        }
    }
}

fn new_node(name: &'static str) -> Node {
    Node {
        parent: NONE,
        first: NONE,
        last: NONE,
        next: NONE,
        name,
        text: 0..0,
        weight: 0,
        drop: false,
        has_block: false,
        elements: 0,
        direct_text: false,
    }
}

impl Tree {
    fn build(input: &str) -> Tree {
        let mut b = Builder {
            nodes: vec![new_node("#root")],
            buf: String::new(),
            stack: vec![0],
            json_ld: Vec::new(),
            json_ld_bytes: 0,
            capped: false,
            head_at: None,
            seen_html: false,
            seen_body: false,
        };
        let mut rest = input;
        let mut pending = String::new();
        loop {
            let at = rest.find(['<', '&']).unwrap_or(rest.len());
            pending.push_str(&rest[..at]);
            rest = &rest[at..];
            if rest.is_empty() {
                break;
            }
            if rest.starts_with('&') {
                let (c, used) = html::reference(rest).unwrap_or(('&', 1));
                pending.push(c);
                rest = &rest[used..];
                continue;
            }
            let (token, used) = html::token(rest);
            let source = &rest[..used];
            rest = &rest[used..];
            match token {
                Token::Text(t) => pending.push_str(t),
                Token::Skip => {}
                Token::Start(name, closed) => {
                    b.text(&pending);
                    pending.clear();
                    let attrs = source
                        .get(1 + name.len()..source.len().saturating_sub(1))
                        .unwrap_or("");
                    if !closed
                        && (name.eq_ignore_ascii_case("script")
                            || name.eq_ignore_ascii_case("style"))
                    {
                        // Raw text: nothing but its end tag is markup.
                        let end = html::end_tag_at(rest, name).unwrap_or(rest.len());
                        let is_ld = name.eq_ignore_ascii_case("script")
                            && attr(attrs, "type").is_some_and(|t| {
                                t.trim().eq_ignore_ascii_case("application/ld+json")
                            });
                        if is_ld && b.json_ld_bytes + end <= MAX_JSON_LD {
                            b.json_ld_bytes += end;
                            b.json_ld.push(rest[..end].to_string());
                        }
                        rest = &rest[end..];
                        // The end tag itself is skipped as a stray end tag.
                        continue;
                    }
                    b.start(name, attrs, closed);
                }
                Token::End(name) => {
                    b.text(&pending);
                    pending.clear();
                    b.end(name);
                }
            }
        }
        b.text(&pending);
        Tree {
            nodes: b.nodes,
            buf: b.buf,
            json_ld: b.json_ld,
            capped: b.capped,
        }
    }

    fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    fn children(&self, i: u32) -> impl Iterator<Item = u32> + '_ {
        let mut c = self.node(i).first;
        std::iter::from_fn(move || {
            (c != NONE).then(|| {
                let this = c;
                c = self.node(c).next;
                this
            })
        })
    }

    fn text_of(&self, n: &Node) -> &str {
        self.buf
            .get(n.text.start as usize..n.text.end as usize)
            .unwrap_or("")
    }

    /// Stats for every node: parents come before children in the arena, so
    /// one forward pass marks removals and one backward pass sums.
    fn stats(&self) -> Vec<Stats> {
        let mut st = vec![Stats::default(); self.nodes.len()];
        let mut in_link = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let (removed, link) = match n.parent {
                NONE => (false, false),
                p => (st[p as usize].removed, in_link[p as usize]),
            };
            st[i].removed = removed || n.drop;
            in_link[i] = link || n.name == "a";
            if n.name == "#text" && !st[i].removed {
                let (chars, commas) = count(self.text_of(n));
                st[i].chars = chars;
                st[i].commas = commas;
                if in_link[i] {
                    st[i].link_chars = chars;
                }
            }
        }
        for i in (1..self.nodes.len()).rev() {
            let p = self.nodes[i].parent;
            if p == NONE || st[i].removed {
                continue;
            }
            let s = st[i];
            let ps = &mut st[p as usize];
            ps.chars += s.chars;
            ps.link_chars += s.link_chars;
            ps.commas += s.commas;
        }
        st
    }

    /// The scored main text, or "" when no paragraph scored.
    fn article(&self) -> String {
        let st = self.stats();
        let density = |i: u32| {
            let s = st[i as usize];
            if s.chars == 0 {
                0.0
            } else {
                s.link_chars as f32 / s.chars as f32
            }
        };
        let mut score: Vec<Option<f32>> = vec![None; self.nodes.len()];
        let mut para = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if st[i].removed {
                continue;
            }
            let p_like = matches!(n.name, "p" | "pre" | "td")
                || (matches!(n.name, "div" | "section" | "article" | "main" | "x")
                    && !n.has_block
                    && n.direct_text);
            if !p_like {
                continue;
            }
            // A wrapper holding one paragraph and nothing else is the
            // paragraph: its siblings are then paragraphs of one parent.
            let parent = n.parent;
            let wrapper = parent != NONE && parent != 0 && {
                let pn = self.node(parent);
                matches!(pn.name, "div" | "section")
                    && pn.elements == 1
                    && !pn.direct_text
                    && !st[parent as usize].removed
            };
            para[if wrapper { parent as usize } else { i }] = true;
        }
        for i in 0..self.nodes.len() {
            if !para[i] {
                continue;
            }
            let s = st[i];
            if s.chars < 25 {
                continue;
            }
            let points = 1.0 + s.commas as f32 + (s.chars as f32 / 100.0).floor().min(3.0);
            let mut anc = self.nodes[i].parent;
            let mut level = 0;
            while anc != NONE && level < 5 {
                let a = anc as usize;
                let base = score[a]
                    .unwrap_or_else(|| tag_score(self.nodes[a].name) + self.nodes[a].weight as f32);
                let divider = match level {
                    0 => 1.0,
                    1 => 2.0,
                    l => l as f32 * 3.0,
                };
                score[a] = Some(base + points / divider);
                anc = self.nodes[a].parent;
                level += 1;
            }
        }
        let top = (0..self.nodes.len() as u32)
            .filter_map(|i| Some((i, score[i as usize]? * (1.0 - density(i)))))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((top, top_score)) = top else {
            return String::new();
        };
        // The winner and the siblings that belong with it, in page order.
        let parent = self.node(top).parent;
        let threshold = (top_score * 0.2).max(10.0);
        let mut roots = Vec::new();
        if parent == NONE {
            roots.push(top);
        } else {
            for c in self.children(parent) {
                if c == top {
                    roots.push(c);
                    continue;
                }
                let n = self.node(c);
                if st[c as usize].removed || n.name == "#text" {
                    continue;
                }
                let bonus = if n.weight > 0 && n.weight == self.node(top).weight {
                    top_score * 0.2
                } else {
                    0.0
                };
                let scored =
                    score[c as usize].is_some_and(|s| s * (1.0 - density(c)) + bonus >= threshold);
                let chars = st[c as usize].chars;
                let plain_para = para[c as usize] && density(c) < 0.25 && chars > 80;
                if scored || plain_para {
                    roots.push(c);
                }
            }
        }
        let mut out = Writer::default();
        for r in roots {
            self.render(r, &st, &mut out);
            out.layout("p", false);
        }
        out.text
    }

    /// Renders the kept part of `root`'s subtree into `out`, without
    /// recursion; link-heavy blocks inside are left out.
    fn render(&self, root: u32, st: &[Stats], out: &mut Writer) {
        // (node, leaving)
        let mut stack = vec![(root, false)];
        let mut kids = Vec::new();
        while let Some((i, leaving)) = stack.pop() {
            let n = self.node(i);
            if leaving {
                out.layout(n.name, false);
                continue;
            }
            let s = st[i as usize];
            if s.removed {
                continue;
            }
            if n.name == "#text" {
                out.push_str(self.text_of(n));
                continue;
            }
            if i != root && self.boilerplate(n, s) {
                continue;
            }
            out.layout(n.name, true);
            stack.push((i, true));
            kids.clear();
            kids.extend(self.children(i));
            stack.extend(kids.iter().rev().map(|&c| (c, false)));
        }
    }

    /// A block inside the article that is no part of it: a link list,
    /// a link-heavy box, a negatively hinted element.
    fn boilerplate(&self, n: &Node, s: Stats) -> bool {
        if s.chars == 0 && n.name != "h1" {
            return false;
        }
        let density = s.link_chars as f32 / s.chars as f32;
        match n.name {
            // The headline: the item's title already, and without a full
            // stop it would run into the first sentence of a snippet.
            "h1" => true,
            "div" | "section" | "ul" | "ol" | "table" | "dl" | "figure" => {
                n.weight < 0
                    || (s.commas < 10 && ((n.weight < 25 && density > 0.2) || density > 0.5))
            }
            "p" | "li" | "h2" | "h3" | "h4" | "h5" | "h6" => n.weight < 0 || density > 0.5,
            _ => n.weight < 0 && density > 0.2,
        }
    }

    /// The first `articleBody` string of the page's JSON-LD, as plain text.
    fn json_ld_body(&self) -> Option<String> {
        for doc in &self.json_ld {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(doc.trim()) else {
                continue;
            };
            let mut stack = vec![&value];
            while let Some(v) = stack.pop() {
                match v {
                    serde_json::Value::Object(map) => {
                        if let Some(serde_json::Value::String(body)) = map.get("articleBody") {
                            let text = html::html_to_text(body);
                            if !text.is_empty() {
                                return Some(text);
                            }
                        }
                        stack.extend(map.values());
                    }
                    serde_json::Value::Array(items) => stack.extend(items.iter()),
                    _ => {}
                }
            }
        }
        None
    }
}

/// (chars with whitespace runs counted once, commas) of a text run.
fn count(s: &str) -> (u32, u32) {
    let (mut chars, mut commas, mut space) = (0u32, 0u32, true);
    for c in s.chars() {
        if c.is_whitespace() {
            if !space {
                chars += 1;
            }
            space = true;
        } else {
            chars += 1;
            commas += u32::from(is_comma(c));
            space = false;
        }
    }
    (chars, commas)
}

#[cfg(test)]
mod tests;
