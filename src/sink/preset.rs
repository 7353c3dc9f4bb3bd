//! What a webhook sends for each `format`: the request a service expects,
//! built by serializers from the alert. Pure: no I/O.
//!
//! Feed text (titles, snippets, feed names) is untrusted. Every preset
//! drops control characters and bidi overrides, then escapes what is left
//! for the markup of its service, so the only markup in a message is ours:
//! the link on the title and the marks around highlighted words. Texts are
//! cut to the service's limits on whole escapes (never inside `&amp;` or
//! `\*`), and a cut inside a highlight closes it first. See
//! `docs/webhook-formats.md`.

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{runs_of, shown};
use crate::config::{WebhookConfig, WebhookFormat};
use crate::model::{Alert, Snippet};

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
        WebhookFormat::Alert => Ok(post(
            &cfg.url,
            serde_json::to_value(alert).map_err(|e| e.to_string())?,
        )),
        WebhookFormat::Slack => Ok(post(&cfg.url, slack(alert))),
        WebhookFormat::Discord => Ok(post(&cfg.url, discord(alert))),
        WebhookFormat::Ntfy { topic } => {
            let mut out = ntfy(&cfg.url, topic, alert)?;
            // A protected topic: ntfy takes an access token as a bearer.
            if let Some(t) = &cfg.token {
                out.headers
                    .push(("Authorization".into(), format!("Bearer {}", t.as_str())));
            }
            Ok(out)
        }
        WebhookFormat::Matrix { room_id } => matrix(cfg, room_id, alert),
        WebhookFormat::Telegram { chat_id } => telegram(cfg, chat_id, alert),
    }
}

fn post(url: &str, body: Value) -> Outgoing {
    Outgoing {
        method: Method::POST,
        url: url.to_string(),
        headers: Vec::new(),
        body,
    }
}

// ---------------------------------------------------------------------------
// Limits (see docs/webhook-formats.md for where each comes from)

/// Our own cap on an item title, in every format.
const TITLE_MAX: usize = 256;
/// Our own cap on the feed name.
const FEED_MAX: usize = 256;
/// Slack: a section's text is at most 3000 characters; the snippet keeps
/// to that inside the rich text block too.
const SLACK_SNIPPET_MAX: usize = 3000;
/// Discord embed limits.
const DISCORD_TITLE_MAX: usize = 256;
const DISCORD_DESCRIPTION_MAX: usize = 4096;
const DISCORD_FIELD_VALUE_MAX: usize = 1024;
/// ntfy: a message longer than 4096 bytes (the server's default
/// `message-size-limit`) becomes an attachment or is refused.
const NTFY_MESSAGE_MAX_BYTES: usize = 4096;
/// Telegram: `text` is 1-4096 characters after entity parsing; we keep the
/// text *before* parsing (tags included) within 4096 UTF-16 code units,
/// which is never less strict.
const TELEGRAM_TEXT_MAX: usize = 4096;
/// Matrix has no per-field limit below the 64 KiB event; this keeps a
/// message readable and far below it.
const MATRIX_SNIPPET_MAX: usize = 4000;
/// Cap on the "rules ... feed ..." line of the one-text formats.
const META_MAX: usize = 600;
/// Longer item links are left out (browsers and services balk at them).
const LINK_MAX: usize = 2048;

const ELLIPSIS: &str = "…";
const UNTITLED: &str = "Untitled";

// ---------------------------------------------------------------------------
// Cleaning, highlight runs, fitting

fn clean(s: &str) -> String {
    s.chars().filter_map(shown).collect()
}

/// A piece of snippet text and whether it is highlighted.
type Run = (String, bool);

/// The snippet as cleaned runs. Highlights are char offsets into the raw
/// text, so characters are dropped while walking (offsets stay right). A
/// highlighted run never starts or ends with a space: markdown would not
/// render `** word**` as bold.
fn runs(snippet: &Snippet) -> Vec<Run> {
    // A char is a hit when any span covers it, in whatever order they come.
    let mut spans: Vec<(usize, usize)> = snippet.highlights.clone();
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans.into_iter().filter(|(s, e)| s < e) {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut raw: Vec<Run> = Vec::new();
    for (hit, text) in runs_of(&snippet.text, &merged) {
        match raw.last_mut() {
            Some((t, h)) if *h == hit => t.push_str(&text),
            _ => raw.push((text, hit)),
        }
    }
    let mut out: Vec<Run> = Vec::new();
    let mut push = |t: &str, hl: bool| {
        if t.is_empty() {
            return;
        }
        match out.last_mut() {
            Some((prev, h)) if *h == hl => prev.push_str(t),
            _ => out.push((t.to_string(), hl)),
        }
    };
    for (t, hl) in &raw {
        if *hl {
            let core = t.trim_matches(' ');
            let lead = t.len() - t.trim_start_matches(' ').len();
            if core.is_empty() {
                push(t, false);
                continue;
            }
            push(&t[..lead], false);
            push(core, true);
            push(&t[lead + core.len()..], false);
        } else {
            push(t, false);
        }
    }
    out
}

/// How a service counts the length of a text.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Chars,
    Utf16,
    Bytes,
}

impl Unit {
    fn len(self, s: &str) -> usize {
        match self {
            Unit::Chars => s.chars().count(),
            Unit::Utf16 => s.encode_utf16().count(),
            Unit::Bytes => s.len(),
        }
    }
}

/// Escapes one character for a markup.
type Esc = fn(char, &mut String);

/// The highlight marks of a markup (`open`, `close`).
type Marks = (&'static str, &'static str);

/// `runs` escaped with `esc`, cut so that, joined with `marks` around each
/// highlighted run, they take at most `budget` units. A cut falls between
/// two escaped characters, a highlight cut short is still closed, and an
/// ellipsis run ends a cut text.
fn fit(runs: &[Run], esc: Esc, marks: Marks, unit: Unit, budget: usize) -> Vec<Run> {
    let (open, close) = (unit.len(marks.0), unit.len(marks.1));
    let escaped: Vec<Run> = runs
        .iter()
        .map(|(t, hl)| {
            let mut e = String::with_capacity(t.len());
            t.chars().for_each(|c| esc(c, &mut e));
            (e, *hl)
        })
        .collect();
    let whole: usize = escaped
        .iter()
        .map(|(t, hl)| unit.len(t) + if *hl { open + close } else { 0 })
        .sum();
    if whole <= budget {
        return escaped.into_iter().filter(|(t, _)| !t.is_empty()).collect();
    }
    let reserve = unit.len(ELLIPSIS);
    if budget < reserve {
        return Vec::new();
    }
    let mut out: Vec<Run> = Vec::new();
    let mut used = 0;
    let mut piece = String::new();
    'runs: for (text, hl) in runs {
        let marks_cost = if *hl { open + close } else { 0 };
        let mut run = String::new();
        for c in text.chars() {
            piece.clear();
            esc(c, &mut piece);
            let opening = if run.is_empty() { marks_cost } else { 0 };
            let cost = unit.len(&piece);
            // After this character there must still be room for the close
            // mark (counted with the open one) and the ellipsis.
            if used + opening + cost + reserve > budget {
                if !run.is_empty() {
                    out.push((run, *hl));
                }
                break 'runs;
            }
            used += opening + cost;
            run.push_str(&piece);
        }
        if !run.is_empty() {
            out.push((run, *hl));
        }
    }
    out.push((ELLIPSIS.to_string(), false));
    out
}

/// Runs joined with the marks around highlighted ones.
fn join(runs: &[Run], marks: Marks) -> String {
    let mut s = String::new();
    for (t, hl) in runs {
        if *hl {
            s.push_str(marks.0);
            s.push_str(t);
            s.push_str(marks.1);
        } else {
            s.push_str(t);
        }
    }
    s
}

/// One plain text, cleaned, escaped and cut to `budget` units.
fn fit_text(s: &str, esc: Esc, unit: Unit, budget: usize) -> String {
    join(
        &fit(&[(clean(s), false)], esc, ("", ""), unit, budget),
        ("", ""),
    )
}

// ---------------------------------------------------------------------------
// Escapes

fn esc_none(c: char, out: &mut String) {
    out.push(c);
}

/// Slack mrkdwn: `&`, `<`, `>` are the control characters.
fn esc_slack(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

/// HTML text and attribute values (Matrix `formatted_body`, Telegram).
fn esc_html(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        c => out.push(c),
    }
}

/// Discord markdown: a backslash before a symbol shows it as itself; that
/// covers emphasis, spoilers, code, quotes, headings, lists, masked links
/// and mentions (`@everyone`, `<@id>`).
fn esc_discord(c: char, out: &mut String) {
    if matches!(
        c,
        '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '[' | ']' | '(' | ')' | '#' | '-' | '@'
    ) {
        out.push('\\');
    }
    out.push(c);
}

/// CommonMark (ntfy with `markdown: true`): any ASCII punctuation may be
/// backslash-escaped; these are the ones that can start markup.
fn esc_markdown(c: char, out: &mut String) {
    if matches!(
        c,
        '\\' | '`'
            | '*'
            | '_'
            | '{'
            | '}'
            | '['
            | ']'
            | '('
            | ')'
            | '#'
            | '+'
            | '-'
            | '.'
            | '!'
            | '|'
            | '~'
            | '<'
            | '>'
            | '&'
    ) {
        out.push('\\');
    }
    out.push(c);
}

/// A path segment with everything but RFC 3986 unreserved characters
/// percent-encoded (`!room:example.org` -> `%21room%3Aexample.org`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// What every preset shows

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Low,
    Normal,
    High,
    Critical,
}

impl Severity {
    fn of(alert: &Alert) -> Severity {
        match alert.rule.severity.as_str() {
            "low" => Severity::Low,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => Severity::Normal,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Normal => "NORMAL",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Normal => "normal",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// ntfy priority: 1 min, 3 default, 5 max.
    fn ntfy_priority(self) -> u8 {
        match self {
            Severity::Low => 2,
            Severity::Normal => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// ntfy tag that shows as an emoji.
    fn ntfy_emoji(self) -> &'static str {
        match self {
            Severity::Low => "information_source",
            Severity::Normal => "newspaper",
            Severity::High => "warning",
            Severity::Critical => "rotating_light",
        }
    }

    /// Discord embed colour (RGB as an integer).
    fn colour(self) -> u32 {
        match self {
            Severity::Low => 0x95A5A6,
            Severity::Normal => 0x3498DB,
            Severity::High => 0xE67E22,
            Severity::Critical => 0xE74C3C,
        }
    }
}

/// The item title, or a placeholder when nothing printable is left.
fn title_of(alert: &Alert) -> String {
    let t = clean(&alert.item.title);
    if t.trim().is_empty() {
        UNTITLED.to_string()
    } else {
        t.trim().to_string()
    }
}

/// The feed's title, else its id.
fn feed_of(alert: &Alert) -> String {
    let t = clean(&alert.feed.title);
    if t.trim().is_empty() {
        clean(&alert.feed.id)
    } else {
        t.trim().to_string()
    }
}

/// Every rule behind the alert, most severe first.
fn rule_ids(alert: &Alert) -> Vec<&str> {
    if alert.rules.is_empty() {
        vec![alert.rule.id.as_str()]
    } else {
        alert.rules.iter().map(|r| r.id.as_str()).collect()
    }
}

fn rules_label(alert: &Alert) -> &'static str {
    if rule_ids(alert).len() > 1 {
        "Rules"
    } else {
        "Rule"
    }
}

/// "Rules: a, b · Feed: X" (plain text).
fn meta_line(alert: &Alert) -> String {
    format!(
        "{}: {} · Feed: {}",
        rules_label(alert),
        rule_ids(alert).join(", "),
        feed_of(alert)
    )
}

/// The item link, if it is an http(s) URL without spaces or controls (the
/// parser keeps only those; this is a second fence) and not absurdly long.
fn link_of(alert: &Alert) -> Option<&str> {
    let l = alert.item.link.as_deref()?;
    if l.len() > LINK_MAX {
        return None;
    }
    let lower = l.get(..8).unwrap_or(l).to_ascii_lowercase();
    let scheme_ok = lower.starts_with("http://") || lower.starts_with("https://");
    let chars_ok = !l.chars().any(|c| c.is_whitespace() || c.is_control());
    (scheme_ok && chars_ok).then_some(l)
}

/// The configured token, refused when missing or when it could break out
/// of a header value or a URL path.
fn token<'a>(cfg: &'a WebhookConfig, format: &str) -> Result<&'a str, String> {
    let t = cfg
        .token
        .as_ref()
        .map(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("format \"{format}\" needs a token"))?;
    if t.chars().all(|c| c.is_ascii_graphic()) {
        Ok(t)
    } else {
        Err(format!(
            "the {format} token holds characters that cannot be sent"
        ))
    }
}

// ---------------------------------------------------------------------------
// Slack

/// Slack incoming webhook: `text` (the notification fallback) and one
/// `rich_text` block. Rich text carries styles as data (`"style":
/// {"bold": true}`), so feed text is never parsed as mrkdwn.
fn slack(alert: &Alert) -> Value {
    let sev = Severity::of(alert);
    let title = fit_text(&title_of(alert), esc_none, Unit::Chars, TITLE_MAX);
    let bold = json!({ "bold": true });
    let mut els = vec![match link_of(alert) {
        Some(url) => json!({ "type": "link", "url": url, "text": title, "style": bold }),
        None => json!({ "type": "text", "text": title, "style": bold }),
    }];
    let snippet = fit(
        &runs(&alert.snippet),
        esc_none,
        ("", ""),
        Unit::Chars,
        SLACK_SNIPPET_MAX,
    );
    if !snippet.is_empty() {
        els.push(json!({ "type": "text", "text": "\n" }));
        for (t, hl) in snippet {
            els.push(if hl {
                json!({ "type": "text", "text": t, "style": bold })
            } else {
                json!({ "type": "text", "text": t })
            });
        }
    }
    let meta = format!("{} · {}", sev.label(), meta_line(alert));
    els.push(json!({ "type": "text", "text": "\n" }));
    els.push(json!({
        "type": "text",
        "text": fit_text(&meta, esc_none, Unit::Chars, META_MAX),
        "style": { "italic": true },
    }));
    let fallback = format!("[{}] {} ({})", sev.label(), title, feed_of(alert));
    json!({
        "text": fit_text(&fallback, esc_slack, Unit::Chars, SLACK_SNIPPET_MAX),
        "blocks": [{
            "type": "rich_text",
            "elements": [{ "type": "rich_text_section", "elements": els }],
        }],
    })
}

// ---------------------------------------------------------------------------
// Discord

/// Discord execute-webhook: one embed, no mentions parsed.
fn discord(alert: &Alert) -> Value {
    let sev = Severity::of(alert);
    let mut embed = Map::new();
    embed.insert(
        "title".into(),
        fit_text(
            &title_of(alert),
            esc_discord,
            Unit::Utf16,
            DISCORD_TITLE_MAX,
        )
        .into(),
    );
    if let Some(url) = link_of(alert) {
        embed.insert("url".into(), url.into());
    }
    let description = join(
        &fit(
            &runs(&alert.snippet),
            esc_discord,
            ("**", "**"),
            Unit::Utf16,
            DISCORD_DESCRIPTION_MAX,
        ),
        ("**", "**"),
    );
    if !description.is_empty() {
        embed.insert("description".into(), description.into());
    }
    embed.insert("color".into(), sev.colour().into());
    let field = |name: &str, value: String| json!({ "name": name, "value": value, "inline": true });
    embed.insert(
        "fields".into(),
        json!([
            field(
                rules_label(alert),
                fit_text(
                    &rule_ids(alert).join(", "),
                    esc_discord,
                    Unit::Utf16,
                    DISCORD_FIELD_VALUE_MAX
                )
            ),
            field(
                "Feed",
                fit_text(&feed_of(alert), esc_discord, Unit::Utf16, FEED_MAX)
            ),
            field("Severity", sev.name().to_string()),
        ]),
    );
    embed.insert("timestamp".into(), alert.detected_at.to_rfc3339().into());
    json!({
        "embeds": [Value::Object(embed)],
        "allowed_mentions": { "parse": [] },
    })
}

// ---------------------------------------------------------------------------
// ntfy

/// ntfy publish-as-JSON to the server's root URL, markdown message.
fn ntfy(url: &str, topic: &str, alert: &Alert) -> Result<Outgoing, String> {
    // JSON is read as a publish request only at the root; posted to the
    // topic URL it would arrive as the message text.
    let last_segment = reqwest::Url::parse(url).ok().and_then(|u| {
        u.path_segments()
            .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(str::to_string))
    });
    if last_segment.is_some_and(|s| s == topic) {
        return Err(format!(
            "for format \"ntfy\", `url` is the server's root URL (like https://ntfy.sh), not the topic's: {url}"
        ));
    }
    let sev = Severity::of(alert);
    let meta = fit_text(&meta_line(alert), esc_markdown, Unit::Bytes, META_MAX);
    let sep = "\n\n";
    let room = NTFY_MESSAGE_MAX_BYTES.saturating_sub(meta.len() + sep.len());
    let snippet = join(
        &fit(
            &runs(&alert.snippet),
            esc_markdown,
            ("**", "**"),
            Unit::Bytes,
            room,
        ),
        ("**", "**"),
    );
    let message = if snippet.is_empty() {
        meta
    } else {
        format!("{snippet}{sep}{meta}")
    };
    let mut body = Map::new();
    body.insert("topic".into(), topic.into());
    body.insert(
        "title".into(),
        fit_text(&title_of(alert), esc_none, Unit::Chars, TITLE_MAX).into(),
    );
    body.insert("message".into(), message.into());
    body.insert("markdown".into(), true.into());
    body.insert("priority".into(), sev.ntfy_priority().into());
    body.insert("tags".into(), json!([sev.ntfy_emoji(), sev.name()]));
    if let Some(link) = link_of(alert) {
        body.insert("click".into(), link.into());
    }
    Ok(post(url, Value::Object(body)))
}

// ---------------------------------------------------------------------------
// Matrix

/// Matrix client-server API: `PUT
/// /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}` with the
/// alert id as transaction id, so a retry is the same event to the server.
fn matrix(cfg: &WebhookConfig, room_id: &str, alert: &Alert) -> Result<Outgoing, String> {
    let token = token(cfg, "matrix")?;
    if alert.id.is_empty() {
        return Err("an alert without id cannot be a Matrix transaction".into());
    }
    let url = format!(
        "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        cfg.url.trim_end_matches('/'),
        encode_segment(room_id),
        encode_segment(&alert.id)
    );
    let sev = Severity::of(alert);
    let title = fit_text(&title_of(alert), esc_none, Unit::Chars, TITLE_MAX);
    let feed_runs = runs(&alert.snippet);
    let meta = meta_line(alert);
    let meta = fit_text(&meta, esc_none, Unit::Chars, META_MAX);

    // Plain `body`: highlights in [brackets], as on a terminal.
    let mut body = format!("[{}] {title}", sev.label());
    let plain = join(
        &fit(
            &feed_runs,
            esc_none,
            ("[", "]"),
            Unit::Chars,
            MATRIX_SNIPPET_MAX,
        ),
        ("[", "]"),
    );
    for part in [plain.as_str(), meta.as_str()] {
        if !part.is_empty() {
            body.push('\n');
            body.push_str(part);
        }
    }
    if let Some(link) = link_of(alert) {
        body.push('\n');
        body.push_str(link);
    }

    // `formatted_body`: HTML from the tags the spec recommends.
    let title_html = fit_text(&title, esc_html, Unit::Chars, usize::MAX);
    let heading = match link_of(alert) {
        Some(link) => format!(
            "<a href=\"{}\"><strong>{title_html}</strong></a>",
            fit_text(link, esc_html, Unit::Chars, usize::MAX)
        ),
        None => format!("<strong>{title_html}</strong>"),
    };
    let mut html = format!("<strong>[{}]</strong> {heading}", sev.label());
    let snippet_html = join(
        &fit(
            &feed_runs,
            esc_html,
            ("<strong>", "</strong>"),
            Unit::Chars,
            MATRIX_SNIPPET_MAX,
        ),
        ("<strong>", "</strong>"),
    );
    if !snippet_html.is_empty() {
        html.push_str("<br>");
        html.push_str(&snippet_html);
    }
    html.push_str("<br><em>");
    html.push_str(&fit_text(&meta, esc_html, Unit::Chars, usize::MAX));
    html.push_str("</em>");

    Ok(Outgoing {
        method: Method::PUT,
        url,
        headers: vec![("Authorization".into(), format!("Bearer {token}"))],
        body: json!({
            "msgtype": "m.text",
            "body": body,
            "format": "org.matrix.custom.html",
            "formatted_body": html,
        }),
    })
}

// ---------------------------------------------------------------------------
// Telegram

/// Telegram Bot API `sendMessage` with `parse_mode: "HTML"`.
fn telegram(cfg: &WebhookConfig, chat_id: &str, alert: &Alert) -> Result<Outgoing, String> {
    let token = token(cfg, "telegram")?;
    // The token goes into the path: keep it to what bot tokens are made of.
    if !token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
    {
        return Err("a Telegram bot token looks like 123456:ABC-DEF...".into());
    }
    let url = format!("{}/bot{token}/sendMessage", cfg.url.trim_end_matches('/'));
    let sev = Severity::of(alert);
    let title = fit_text(&title_of(alert), esc_html, Unit::Utf16, TITLE_MAX);
    // An href that escaping made long is left out rather than cut.
    let href = link_of(alert)
        .map(|l| fit_text(l, esc_html, Unit::Chars, usize::MAX))
        .filter(|h| Unit::Utf16.len(h) <= LINK_MAX);
    let heading = match href {
        Some(href) => format!("<a href=\"{href}\"><b>{title}</b></a>"),
        None => format!("<b>{title}</b>"),
    };
    let head = format!("<b>{}</b> · {heading}", sev.label());
    let meta = format!(
        "<i>{}</i>",
        fit_text(&meta_line(alert), esc_html, Unit::Utf16, META_MAX)
    );
    let room =
        TELEGRAM_TEXT_MAX.saturating_sub(Unit::Utf16.len(&head) + Unit::Utf16.len(&meta) + 2);
    let snippet = join(
        &fit(
            &runs(&alert.snippet),
            esc_html,
            ("<b>", "</b>"),
            Unit::Utf16,
            room,
        ),
        ("<b>", "</b>"),
    );
    let text = if snippet.is_empty() {
        format!("{head}\n{meta}")
    } else {
        format!("{head}\n{snippet}\n{meta}")
    };
    // `chat_id` is "Integer or String": a numeric id goes as a number.
    let chat = match chat_id.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(chat_id),
    };
    Ok(post(
        &url,
        json!({
            "chat_id": chat,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": { "is_disabled": true },
        }),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::config::Secret;
    use crate::model::{AlertFeed, AlertItem, AlertRule};

    const LINK: &str = "https://news.example.com/story?id=7&lang=ru";
    /// Everything feed text should not be able to do, in one line.
    const HOSTILE: &str =
        "<script>alert(1)</script> & @everyone <!channel> *bold* _it_ ~x~ `c` [l](https://evil.example) \u{1b}[2J \u{202E}evil\u{202C} \u{2066}x\u{2069}";

    fn rule(id: &str, severity: &str) -> AlertRule {
        AlertRule {
            id: id.into(),
            severity: severity.into(),
        }
    }

    /// "Сапёры в Курске работают" with both Russian words highlighted.
    fn alert() -> Alert {
        let r = rule("kursk-demining", "high");
        Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            rules: vec![r.clone()],
            rule: r,
            feed: AlertFeed {
                id: "ria".into(),
                title: "РИА Новости".into(),
                url: "https://ria.example/feed.xml".into(),
            },
            item: AlertItem {
                key: "k1".into(),
                title: "Сапёры работают в Курской области".into(),
                link: Some(LINK.into()),
                published: None,
                authors: Vec::new(),
            },
            matched: vec!["Сапёры".into(), "Курске".into()],
            snippet: Snippet {
                text: "Сапёры в Курске работают".into(),
                highlights: vec![(0, 6), (9, 15)],
            },
            detected_at: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
            story: None,
        }
    }

    /// An alert whose every text field is hostile; the snippet highlights
    /// "Курске" after the hostile part.
    fn hostile_alert() -> Alert {
        let mut a = alert();
        a.item.title = HOSTILE.into();
        a.feed.title = HOSTILE.into();
        let text = format!("{HOSTILE} Курске");
        let start = text.chars().count() - 6;
        a.snippet = Snippet {
            text,
            highlights: vec![(start, start + 6)],
        };
        a
    }

    /// An alert far over every limit: long title, feed and snippet (with
    /// escapes, astral chars and a highlight across every cut), many rules.
    fn huge_alert() -> Alert {
        let mut a = alert();
        let chunk = "Курск & <b> *x* 😀 ";
        a.item.title = chunk.repeat(200);
        a.feed.title = chunk.repeat(200);
        a.snippet = Snippet {
            text: chunk.repeat(2000),
            highlights: vec![(10, 30_000)],
        };
        a.rules = (0..400)
            .map(|i| rule(&format!("rule-{i}"), "low"))
            .collect();
        a.rule = a.rules[0].clone();
        a
    }

    fn cfg(format: WebhookFormat) -> WebhookConfig {
        let (url, token) = match format {
            WebhookFormat::Matrix { .. } => ("https://matrix.example.org/", Some("syt_secret_tok")),
            WebhookFormat::Telegram { .. } => {
                ("https://api.telegram.org", Some("123456:ABC-def_1"))
            }
            WebhookFormat::Ntfy { .. } => ("https://ntfy.example.org", None),
            _ => ("https://hooks.example.com/T000/B000/XXXX", None),
        };
        WebhookConfig {
            url: url.into(),
            format,
            secret: None,
            token: token.map(|t| Secret(t.as_bytes().to_vec())),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    fn slack_cfg() -> WebhookConfig {
        cfg(WebhookFormat::Slack)
    }
    fn discord_cfg() -> WebhookConfig {
        cfg(WebhookFormat::Discord)
    }
    fn ntfy_cfg() -> WebhookConfig {
        cfg(WebhookFormat::Ntfy {
            topic: "wire-alerts".into(),
        })
    }
    fn matrix_cfg() -> WebhookConfig {
        cfg(WebhookFormat::Matrix {
            room_id: "!room:example.org".into(),
        })
    }
    fn telegram_cfg() -> WebhookConfig {
        cfg(WebhookFormat::Telegram {
            chat_id: "-1001234567890".into(),
        })
    }

    fn all_cfgs() -> Vec<WebhookConfig> {
        vec![
            slack_cfg(),
            discord_cfg(),
            ntfy_cfg(),
            matrix_cfg(),
            telegram_cfg(),
        ]
    }

    fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
        v.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{ptr} is not a string in {v:#}"))
    }

    /// No control character or bidi control anywhere in the serialized
    /// request body (JSON would write ESC as \u001b, so check the values).
    fn assert_no_controls(v: &Value) {
        match v {
            Value::String(s) => {
                for c in s.chars() {
                    let bad = (c.is_control() && c != '\n')
                        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
                    assert!(!bad, "{:?} in {s:?}", c);
                }
            }
            Value::Array(a) => a.iter().for_each(assert_no_controls),
            Value::Object(o) => o.values().for_each(assert_no_controls),
            _ => {}
        }
    }

    /// Removes our own tags; what is left must hold no `<` or `>`.
    fn strip_own_tags(html: &str, tags: &[&str]) -> String {
        let href = regex::Regex::new(r#"<a href="[^"<>]*">"#).unwrap();
        let mut s = href.replace_all(html, "").into_owned();
        for t in tags {
            s = s
                .replace(&format!("<{t}>"), "")
                .replace(&format!("</{t}>"), "");
        }
        s = s.replace("</a>", "");
        s
    }

    fn utf16(s: &str) -> usize {
        s.encode_utf16().count()
    }

    // -- shared pieces ------------------------------------------------------

    #[test]
    fn runs_follow_char_offsets_and_drop_controls_and_bidi() {
        let sn = Snippet {
            // ESC at char 6 and U+202E at char 11 shift nothing: offsets
            // are into the raw text.
            text: "Сапёры\u{1b} в \u{202E}Курске\tработают".into(),
            highlights: vec![(0, 6), (11, 18)],
        };
        assert_eq!(
            runs(&sn),
            vec![
                ("Сапёры".to_string(), true),
                (" в ".to_string(), false),
                ("Курске".to_string(), true),
                (" работают".to_string(), false),
            ]
        );
    }

    #[test]
    fn runs_survive_out_of_range_and_unsorted_highlights() {
        let sn = Snippet {
            text: "abc".into(),
            highlights: vec![(2, 10), (1, 2), (50, 60), (3, 1)],
        };
        assert_eq!(
            runs(&sn),
            vec![("a".to_string(), false), ("bc".to_string(), true)]
        );
    }

    #[test]
    fn highlight_runs_keep_spaces_outside_the_marks() {
        let sn = Snippet {
            text: "a\nhit b".into(),
            highlights: vec![(1, 5)],
        };
        assert_eq!(join(&runs(&sn), ("**", "**")), "a **hit** b");
    }

    #[test]
    fn fit_cuts_between_escapes_and_closes_highlights() {
        let rs = vec![
            ("a&b".to_string(), false),
            ("<hit>".to_string(), true),
            ("&&".to_string(), false),
        ];
        let full = join(
            &fit(&rs, esc_html, ("<b>", "</b>"), Unit::Chars, usize::MAX),
            ("<b>", "</b>"),
        );
        assert_eq!(full, "a&amp;b<b>&lt;hit&gt;</b>&amp;&amp;");
        for budget in 0..=full.chars().count() + 2 {
            let out = join(
                &fit(&rs, esc_html, ("<b>", "</b>"), Unit::Chars, budget),
                ("<b>", "</b>"),
            );
            assert!(out.chars().count() <= budget, "{budget}: {out}");
            assert_eq!(
                out.matches("<b>").count(),
                out.matches("</b>").count(),
                "{out}"
            );
            assert!(!out.contains("<b></b>") && !out.contains("<b>…"), "{out}");
            // Every & starts a whole entity.
            for (i, _) in out.match_indices('&') {
                let rest = &out[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;"]
                        .iter()
                        .any(|e| rest.starts_with(e)),
                    "{budget}: broken escape in {out}"
                );
            }
            if budget < full.chars().count() && budget > 0 {
                assert!(out.ends_with('…'), "{budget}: {out}");
            }
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("!room:example.org"), "%21room%3Aexample.org");
        assert_eq!(encode_segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(encode_segment("Ж"), "%D0%96");
        assert_eq!(encode_segment("abc-_.~09"), "abc-_.~09");
    }

    #[test]
    fn alert_format_posts_the_alert_object() {
        let a = alert();
        let out = render(&cfg(WebhookFormat::Alert), &a).unwrap();
        assert_eq!(out.method, Method::POST);
        assert_eq!(out.body, serde_json::to_value(&a).unwrap());
    }

    #[test]
    fn every_rule_is_named_in_every_format() {
        let mut a = alert();
        a.rules = vec![
            rule("alpha", "critical"),
            rule("beta", "high"),
            rule("gamma", "low"),
        ];
        a.rule = a.rules[0].clone();
        for c in all_cfgs() {
            let body = render(&c, &a).unwrap().body.to_string();
            let want = match c.format {
                WebhookFormat::Discord => "\"name\":\"Rules\",\"value\":\"alpha, beta, gamma\"",
                _ => "Rules: alpha, beta, gamma",
            };
            assert!(body.contains(want), "{}: {body}", c.format.name());
        }
        // One rule: singular.
        let body = render(&telegram_cfg(), &alert()).unwrap().body.to_string();
        assert!(body.contains("Rule: kursk-demining"), "{body}");
    }

    #[test]
    fn no_format_lets_controls_or_bidi_through() {
        for c in all_cfgs() {
            for a in [hostile_alert(), huge_alert()] {
                assert_no_controls(&render(&c, &a).unwrap().body);
            }
        }
    }

    #[test]
    fn untitled_items_get_a_placeholder() {
        let mut a = alert();
        a.item.title = "\u{1b}\u{202E} ".into();
        a.item.link = None;
        let out = render(&discord_cfg(), &a).unwrap().body;
        assert_eq!(str_at(&out, "/embeds/0/title"), "Untitled");
        assert!(out.pointer("/embeds/0/url").is_none());
    }

    #[test]
    fn non_http_links_are_left_out() {
        let mut a = alert();
        a.item.link = Some("javascript:alert(1)".into());
        for c in all_cfgs() {
            let body = render(&c, &a).unwrap().body.to_string();
            assert!(!body.contains("javascript"), "{}: {body}", c.format.name());
        }
    }

    // -- Slack --------------------------------------------------------------

    #[test]
    fn slack_payload_is_fallback_text_and_one_rich_text_block() {
        let out = render(&slack_cfg(), &alert()).unwrap();
        assert_eq!(out.method, Method::POST);
        assert_eq!(out.url, slack_cfg().url);
        assert!(out.headers.is_empty());
        let b = &out.body;
        assert_eq!(
            str_at(b, "/text"),
            "[HIGH] Сапёры работают в Курской области (РИА Новости)"
        );
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(str_at(b, "/blocks/0/type"), "rich_text");
        assert_eq!(str_at(b, "/blocks/0/elements/0/type"), "rich_text_section");
        let els = b["blocks"][0]["elements"][0]["elements"]
            .as_array()
            .unwrap();
        for e in els {
            let t = e["type"].as_str().unwrap();
            assert!(t == "text" || t == "link", "{e}");
            assert!(e["text"].is_string(), "{e}");
            if let Some(style) = e.get("style") {
                for (k, v) in style.as_object().unwrap() {
                    assert!(["bold", "italic"].contains(&k.as_str()) && v == true, "{e}");
                }
            }
        }
        assert_eq!(els[0]["type"], "link");
        assert_eq!(els[0]["url"], LINK);
        assert_eq!(els[0]["text"], "Сапёры работают в Курской области");
        assert_eq!(els[0]["style"]["bold"], true);
        let last = els.last().unwrap();
        assert_eq!(
            last["text"],
            "HIGH · Rule: kursk-demining · Feed: РИА Новости"
        );
        assert_eq!(last["style"]["italic"], true);
    }

    #[test]
    fn slack_highlights_are_bold_text_elements() {
        let out = render(&slack_cfg(), &alert()).unwrap().body;
        let els = out["blocks"][0]["elements"][0]["elements"]
            .as_array()
            .unwrap();
        // After the title and the line break: the snippet, element by element.
        let snippet: Vec<(&str, bool)> = els[2..els.len() - 2]
            .iter()
            .map(|e| (e["text"].as_str().unwrap(), e["style"]["bold"] == true))
            .collect();
        assert_eq!(
            snippet,
            vec![
                ("Сапёры", true),
                (" в ", false),
                ("Курске", true),
                (" работают", false)
            ]
        );
    }

    #[test]
    fn slack_feed_text_stays_literal() {
        let out = render(&slack_cfg(), &hostile_alert()).unwrap().body;
        // mrkdwn fallback: & < > escaped, so no <!channel> and no <url|x>.
        let text = str_at(&out, "/text");
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains(" &amp; "),
            "{text}"
        );
        // Rich text is data: the feed's characters arrive as they are,
        // styled only where we say so.
        let els = out["blocks"][0]["elements"][0]["elements"]
            .as_array()
            .unwrap();
        assert!(els[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("<script>alert(1)</script> & @everyone <!channel> *bold*"));
        let bold: Vec<&str> = els[1..]
            .iter()
            .filter(|e| e["style"]["bold"] == true)
            .map(|e| e["text"].as_str().unwrap())
            .collect();
        assert_eq!(bold, vec!["Курске"]);
        assert!(els.iter().all(|e| e["type"] != "broadcast"));
    }

    #[test]
    fn slack_texts_are_capped() {
        let out = render(&slack_cfg(), &huge_alert()).unwrap().body;
        let els = out["blocks"][0]["elements"][0]["elements"]
            .as_array()
            .unwrap();
        assert!(els[0]["text"].as_str().unwrap().chars().count() <= TITLE_MAX);
        let snippet = &els[2..els.len() - 2];
        let len: usize = snippet
            .iter()
            .map(|e| e["text"].as_str().unwrap().chars().count())
            .sum();
        assert!(len <= SLACK_SNIPPET_MAX, "{len}");
        assert!(len > SLACK_SNIPPET_MAX - 10, "the cut wastes room: {len}");
        assert_eq!(snippet.last().unwrap()["text"], "…");
        assert!(snippet.iter().any(|e| e["style"]["bold"] == true));
        assert!(str_at(&out, "/text").chars().count() <= SLACK_SNIPPET_MAX);
        assert!(
            els.last().unwrap()["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= META_MAX
        );
    }

    // -- Discord ------------------------------------------------------------

    #[test]
    fn discord_payload_is_one_embed_without_mentions() {
        let out = render(&discord_cfg(), &alert()).unwrap();
        assert_eq!(out.method, Method::POST);
        assert_eq!(out.url, discord_cfg().url);
        let b = &out.body;
        assert_eq!(b["allowed_mentions"], json!({ "parse": [] }));
        assert!(b.get("content").is_none());
        assert_eq!(b["embeds"].as_array().unwrap().len(), 1);
        let e = &b["embeds"][0];
        assert_eq!(e["title"], "Сапёры работают в Курской области");
        assert_eq!(e["url"], LINK);
        assert_eq!(e["description"], "**Сапёры** в **Курске** работают");
        assert_eq!(e["color"], 0xE67E22);
        assert!(e["color"].is_u64());
        chrono::DateTime::parse_from_rfc3339(str_at(e, "/timestamp")).unwrap();
        let fields = e["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 3);
        for f in fields {
            assert!(f["name"].is_string() && f["value"].is_string() && f["inline"].is_boolean());
            assert!(!f["value"].as_str().unwrap().is_empty());
        }
        assert_eq!(fields[0]["name"], "Rule");
        assert_eq!(fields[0]["value"], "kursk\\-demining");
        assert_eq!(fields[1]["value"], "РИА Новости");
        assert_eq!(fields[2]["value"], "high");
    }

    #[test]
    fn discord_colour_follows_severity() {
        let mut a = alert();
        for (sev, colour) in [
            ("low", 0x95A5A6),
            ("normal", 0x3498DB),
            ("high", 0xE67E22),
            ("critical", 0xE74C3C),
        ] {
            a.rule.severity = sev.into();
            let out = render(&discord_cfg(), &a).unwrap().body;
            assert_eq!(out["embeds"][0]["color"], colour, "{sev}");
        }
    }

    #[test]
    fn discord_escapes_markdown_and_mentions() {
        let out = render(&discord_cfg(), &hostile_alert()).unwrap().body;
        let title = str_at(&out, "/embeds/0/title");
        assert!(
            title.starts_with(
                "\\<script\\>alert\\(1\\)\\</script\\> & \\@everyone \\<!channel\\> \\*bold\\* \\_it\\_ \\~x\\~ \\`c\\` \\[l\\]\\(https://evil.example\\)"
            ),
            "{title}"
        );
        let d = str_at(&out, "/embeds/0/description");
        assert!(d.ends_with(" **Курске**"), "{d}");
        // The only unescaped `*` are our two marks on each side.
        let bare_stars = d
            .char_indices()
            .filter(|&(i, c)| c == '*' && (i == 0 || d.as_bytes()[i - 1] != b'\\'))
            .count();
        assert_eq!(bare_stars, 4, "{d}");
        assert!(!d.contains(" @"), "{d}");
        assert_eq!(out["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn discord_respects_embed_limits() {
        let out = render(&discord_cfg(), &huge_alert()).unwrap().body;
        let e = &out["embeds"][0];
        let title = str_at(e, "/title");
        let desc = str_at(e, "/description");
        assert!(utf16(title) <= DISCORD_TITLE_MAX, "{}", utf16(title));
        assert!(utf16(desc) <= DISCORD_DESCRIPTION_MAX, "{}", utf16(desc));
        assert!(utf16(desc) > DISCORD_DESCRIPTION_MAX - 10);
        assert!(desc.ends_with("**…"), "the cut closes the highlight");
        let mut total = utf16(title) + utf16(desc);
        for f in e["fields"].as_array().unwrap() {
            let v = f["value"].as_str().unwrap();
            assert!(utf16(v) <= DISCORD_FIELD_VALUE_MAX, "{}", utf16(v));
            total += utf16(v) + utf16(f["name"].as_str().unwrap());
        }
        assert!(total <= 6000, "embed total {total}");
    }

    // -- ntfy ---------------------------------------------------------------

    #[test]
    fn ntfy_publishes_json_to_the_root_url() {
        let out = render(&ntfy_cfg(), &alert()).unwrap();
        assert_eq!(out.method, Method::POST);
        assert_eq!(out.url, "https://ntfy.example.org");
        let b = &out.body;
        assert_eq!(b["topic"], "wire-alerts");
        assert_eq!(b["title"], "Сапёры работают в Курской области");
        assert_eq!(
            b["message"],
            "**Сапёры** в **Курске** работают\n\nRule: kursk\\-demining · Feed: РИА Новости"
        );
        assert_eq!(b["markdown"], true);
        assert_eq!(b["priority"], 4);
        assert_eq!(b["tags"], json!(["warning", "high"]));
        assert_eq!(b["click"], LINK);
        for key in b.as_object().unwrap().keys() {
            assert!(
                ["topic", "title", "message", "markdown", "priority", "tags", "click"]
                    .contains(&key.as_str()),
                "{key} is not an ntfy publish field we mean to send"
            );
        }
    }

    #[test]
    fn ntfy_priority_follows_severity() {
        let mut a = alert();
        for (sev, p) in [
            ("low", 2),
            ("normal", 3),
            ("high", 4),
            ("critical", 5),
            ("odd", 3),
        ] {
            a.rule.severity = sev.into();
            assert_eq!(
                render(&ntfy_cfg(), &a).unwrap().body["priority"],
                p,
                "{sev}"
            );
        }
    }

    #[test]
    fn ntfy_escapes_markdown() {
        let out = render(&ntfy_cfg(), &hostile_alert()).unwrap().body;
        let m = str_at(&out, "/message");
        assert!(
            m.starts_with(
                "\\<script\\>alert\\(1\\)\\</script\\> \\& @everyone \\<\\!channel\\> \\*bold\\* \\_it\\_ \\~x\\~ \\`c\\` \\[l\\]\\(https://evil\\.example\\)"
            ),
            "{m}"
        );
        assert!(m.contains(" **Курске**\n\n"), "{m}");
    }

    #[test]
    fn ntfy_message_stays_within_4096_bytes() {
        let out = render(&ntfy_cfg(), &huge_alert()).unwrap().body;
        let m = str_at(&out, "/message");
        assert!(m.len() <= NTFY_MESSAGE_MAX_BYTES, "{}", m.len());
        assert!(m.len() > NTFY_MESSAGE_MAX_BYTES - 20, "{}", m.len());
        assert!(
            m.contains("**…\n\nRules: "),
            "highlight closed before the cut"
        );
        assert!(str_at(&out, "/title").chars().count() <= TITLE_MAX);
    }

    #[test]
    fn ntfy_sends_a_token_as_bearer() {
        let mut c = ntfy_cfg();
        c.token = Some(crate::config::Secret(b"tk_abc".to_vec()));
        let out = render(&c, &alert()).unwrap();
        assert_eq!(
            out.headers,
            vec![("Authorization".to_string(), "Bearer tk_abc".to_string())]
        );
    }

    #[test]
    fn ntfy_refuses_a_topic_url() {
        let mut c = ntfy_cfg();
        c.url = "https://ntfy.example.org/wire-alerts/".into();
        assert!(render(&c, &alert()).unwrap_err().contains("root URL"));
        // A host named like the topic is fine.
        c.url = "https://wire-alerts".into();
        assert!(render(&c, &alert()).is_ok());
    }

    // -- Matrix -------------------------------------------------------------

    #[test]
    fn matrix_puts_with_txn_id_and_encoded_room() {
        let mut a = alert();
        a.id = "abc/def".into();
        let out = render(&matrix_cfg(), &a).unwrap();
        assert_eq!(out.method, Method::PUT);
        assert_eq!(
            out.url,
            "https://matrix.example.org/_matrix/client/v3/rooms/%21room%3Aexample.org/send/m.room.message/abc%2Fdef"
        );
        assert_eq!(
            out.headers,
            vec![(
                "Authorization".to_string(),
                "Bearer syt_secret_tok".to_string()
            )]
        );
        // The same alert is the same transaction on every attempt.
        let again = render(&matrix_cfg(), &a).unwrap();
        assert_eq!(again.url, out.url);
        assert_eq!(again.body, out.body);
        // The real alert id is hex and passes unchanged.
        let out = render(&matrix_cfg(), &alert()).unwrap();
        assert!(out
            .url
            .ends_with("/m.room.message/0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn matrix_message_has_plain_and_html_bodies() {
        let b = render(&matrix_cfg(), &alert()).unwrap().body;
        assert_eq!(b["msgtype"], "m.text");
        assert_eq!(b["format"], "org.matrix.custom.html");
        assert_eq!(
            b["body"],
            "[HIGH] Сапёры работают в Курской области\n[Сапёры] в [Курске] работают\nRule: kursk-demining · Feed: РИА Новости\nhttps://news.example.com/story?id=7&lang=ru"
        );
        assert_eq!(
            b["formatted_body"],
            "<strong>[HIGH]</strong> <a href=\"https://news.example.com/story?id=7&amp;lang=ru\"><strong>Сапёры работают в Курской области</strong></a><br><strong>Сапёры</strong> в <strong>Курске</strong> работают<br><em>Rule: kursk-demining · Feed: РИА Новости</em>"
        );
    }

    #[test]
    fn matrix_escapes_html() {
        let b = render(&matrix_cfg(), &hostile_alert()).unwrap().body;
        let html = str_at(&b, "/formatted_body");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; @everyone &lt;!channel&gt;"),
            "{html}"
        );
        let left = strip_own_tags(html, &["strong", "em", "br"]);
        assert!(!left.contains('<') && !left.contains('>'), "{left}");
        assert!(html.contains(" <strong>Курске</strong><br>"), "{html}");
        // The plain body is plain text: nothing to escape, controls gone.
        assert!(str_at(&b, "/body").contains("<script>"));
    }

    #[test]
    fn matrix_stays_far_below_the_event_size_limit() {
        let b = render(&matrix_cfg(), &huge_alert()).unwrap().body;
        assert!(b.to_string().len() < 65_536 / 2, "{}", b.to_string().len());
        let html = str_at(&b, "/formatted_body");
        assert_eq!(
            html.matches("<strong>").count(),
            html.matches("</strong>").count()
        );
    }

    #[test]
    fn matrix_needs_a_token() {
        let mut c = matrix_cfg();
        c.token = None;
        assert!(render(&c, &alert()).unwrap_err().contains("token"));
        c.token = Some(Secret(b"tok\r\nX-Evil: 1".to_vec()));
        assert!(render(&c, &alert()).is_err());
    }

    // -- Telegram -----------------------------------------------------------

    #[test]
    fn telegram_posts_send_message_with_the_token_in_the_path() {
        let mut c = telegram_cfg();
        c.url = "https://api.telegram.org/".into();
        let out = render(&c, &alert()).unwrap();
        assert_eq!(out.method, Method::POST);
        assert_eq!(
            out.url,
            "https://api.telegram.org/bot123456:ABC-def_1/sendMessage"
        );
        assert!(out.headers.is_empty());
        let b = &out.body;
        assert_eq!(b["chat_id"], json!(-1001234567890_i64));
        assert_eq!(b["parse_mode"], "HTML");
        assert_eq!(b["link_preview_options"], json!({ "is_disabled": true }));
        assert_eq!(
            b["text"],
            "<b>HIGH</b> · <a href=\"https://news.example.com/story?id=7&amp;lang=ru\"><b>Сапёры работают в Курской области</b></a>\n<b>Сапёры</b> в <b>Курске</b> работают\n<i>Rule: kursk-demining · Feed: РИА Новости</i>"
        );
        assert_eq!(b.as_object().unwrap().len(), 4);
    }

    #[test]
    fn telegram_chat_id_is_a_number_or_a_channel_name() {
        let c = cfg(WebhookFormat::Telegram {
            chat_id: "@wire_channel".into(),
        });
        assert_eq!(
            render(&c, &alert()).unwrap().body["chat_id"],
            "@wire_channel"
        );
    }

    #[test]
    fn telegram_escapes_html() {
        let b = render(&telegram_cfg(), &hostile_alert()).unwrap().body;
        let text = str_at(&b, "/text");
        assert!(
            text.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; @everyone"),
            "{text}"
        );
        assert!(text.contains(" <b>Курске</b>\n"), "{text}");
        let left = strip_own_tags(text, &["b", "i"]);
        assert!(!left.contains('<') && !left.contains('>'), "{left}");
    }

    #[test]
    fn telegram_text_stays_within_4096() {
        let b = render(&telegram_cfg(), &huge_alert()).unwrap().body;
        let text = str_at(&b, "/text");
        assert!(utf16(text) <= TELEGRAM_TEXT_MAX, "{}", utf16(text));
        assert!(utf16(text) > TELEGRAM_TEXT_MAX - 20, "{}", utf16(text));
        assert_eq!(text.matches("<b>").count(), text.matches("</b>").count());
        assert!(
            text.contains("</b>…\n<i>Rules: rule-0, rule-1"),
            "highlight closed at the cut"
        );
    }

    #[test]
    fn telegram_refuses_odd_tokens() {
        let mut c = telegram_cfg();
        c.token = Some(Secret(b"123/../../x".to_vec()));
        assert!(render(&c, &alert()).is_err());
        c.token = None;
        assert!(render(&c, &alert()).is_err());
    }

    // -- properties ---------------------------------------------------------

    fn hostile_char() -> impl Strategy<Value = char> {
        prop_oneof![
            prop::sample::select(vec![
                '&', '<', '>', '"', '*', '_', '~', '`', '\\', '@', '[', ']', '\n', '\u{1b}',
                '\u{202E}', '\u{2066}', '😀', 'Ж', ' ', '.', '#', '-',
            ]),
            any::<char>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the text, highlights and limits: every format stays
        /// within its limits, keeps its highlight marks balanced, and lets
        /// no control or bidi character through.
        #[test]
        fn limits_and_balanced_marks_hold_for_any_text(
            chars in prop::collection::vec(hostile_char(), 0..6000),
            title in prop::collection::vec(hostile_char(), 0..400),
            hl in prop::collection::vec((0usize..6000, 0usize..40), 0..8),
        ) {
            let mut a = alert();
            a.item.title = title.into_iter().collect();
            a.snippet = Snippet {
                text: chars.into_iter().collect(),
                highlights: hl.into_iter().map(|(s, l)| (s, s + l)).collect(),
            };
            for c in all_cfgs() {
                let b = render(&c, &a).unwrap().body;
                assert_no_controls(&b);
                match c.format {
                    WebhookFormat::Discord => {
                        let d = b["embeds"][0]["description"].as_str().unwrap_or("");
                        prop_assert!(utf16(d) <= DISCORD_DESCRIPTION_MAX);
                        prop_assert!(utf16(str_at(&b, "/embeds/0/title")) <= DISCORD_TITLE_MAX);
                    }
                    WebhookFormat::Ntfy { .. } => {
                        prop_assert!(str_at(&b, "/message").len() <= NTFY_MESSAGE_MAX_BYTES);
                    }
                    WebhookFormat::Telegram { .. } => {
                        let t = str_at(&b, "/text");
                        prop_assert!(utf16(t) <= TELEGRAM_TEXT_MAX);
                        prop_assert_eq!(t.matches("<b>").count(), t.matches("</b>").count());
                        let left = strip_own_tags(t, &["b", "i"]);
                        prop_assert!(!left.contains('<') && !left.contains('>'));
                    }
                    WebhookFormat::Matrix { .. } => {
                        let h = str_at(&b, "/formatted_body");
                        let left = strip_own_tags(h, &["strong", "em", "br"]);
                        prop_assert!(!left.contains('<') && !left.contains('>'));
                    }
                    _ => {}
                }
            }
        }
    }
}
