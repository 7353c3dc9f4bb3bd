//! `type = "email"`: one message per alert over SMTP (lettre), STARTTLS,
//! implicit TLS or none, with optional authentication.
//!
//! Each message is `multipart/alternative`: a `text/plain` part with the
//! hits in the snippet marked `*like this*`, and a `text/html` part with
//! the hits in `<mark>`. Feed text is data: everything that goes into the
//! HTML is escaped, control characters are dropped, only http(s) links
//! become `<a href>`, and the subject is built by lettre from the title
//! with control characters and line breaks removed, so a title cannot add
//! headers. `Message-ID: <ALERT_ID@wirewatch>` and `X-Wirewatch-Alert-Id`
//! carry the alert id, the same on every retry, so duplicates are
//! recognisable.
//!
//! Failures: a 5xx reply (mailbox unavailable, authentication failed) or a
//! server that lacks what the config asks for (STARTTLS, an AUTH mechanism)
//! is `Rejected`; connection errors, TLS errors, timeouts and 4xx replies
//! are `Transient`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use async_trait::async_trait;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailboxes, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Sink, SinkError};
use crate::config::{EmailConfig, EmailTls};
use crate::model::{Alert, Snippet};

/// The longest subject sent, in chars (a longer one is cut with "…").
const MAX_SUBJECT_CHARS: usize = 200;
/// How much of a server's error message goes into the error.
const MAX_ERROR_CHARS: usize = 300;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

pub struct EmailSink {
    id: String,
    cfg: EmailConfig,
    endpoint: String,
    tls: Tls,
    /// Built on first use (lettre's pool starts a task on the runtime), then
    /// kept: connections are pooled and reused across alerts.
    transport: OnceLock<Transport>,
}

impl EmailSink {
    pub fn new(id: &str, cfg: EmailConfig) -> anyhow::Result<EmailSink> {
        let tls = match cfg.tls {
            EmailTls::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(cfg.host.clone());
                if let Some(pem) = &cfg.ca_pem {
                    params = params.add_root_certificate(Certificate::from_pem(pem)?);
                }
                let params = params.build()?;
                if mode == EmailTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        Ok(EmailSink {
            id: id.to_string(),
            endpoint: cfg.endpoint(),
            cfg,
            tls,
            transport: OnceLock::new(),
        })
    }

    fn transport(&self) -> &Transport {
        self.transport.get_or_init(|| {
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.cfg.host)
                .port(self.cfg.port)
                .tls(self.tls.clone())
                .timeout(Some(self.cfg.timeout));
            if let Some((user, password)) = &self.cfg.auth {
                b = b.credentials(Credentials::new(
                    user.clone(),
                    password.as_str().to_string(),
                ));
            }
            b.build()
        })
    }
}

#[async_trait]
impl Sink for EmailSink {
    fn id(&self) -> &str {
        &self.id
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), SinkError> {
        let message = build_message(&self.cfg, alert).map_err(SinkError::rejected)?;
        let sent = tokio::time::timeout(self.cfg.timeout, self.transport().send(message)).await;
        match sent {
            Ok(Ok(response)) => {
                tracing::debug!(sink = %self.id, alert = %alert.id, server = %self.endpoint,
                    code = %response.code(), recipients = self.cfg.to.len(), "email accepted");
                Ok(())
            }
            Ok(Err(e)) => {
                let err = classify(&e);
                tracing::debug!(sink = %self.id, alert = %alert.id, server = %self.endpoint,
                    error = %err, "email not accepted");
                Err(err)
            }
            Err(_) => Err(SinkError::transient(format!(
                "{}: no answer within {:?}",
                self.endpoint, self.cfg.timeout
            ))),
        }
    }
}

/// `X-Wirewatch-Alert-Id`.
#[derive(Clone)]
struct AlertIdHeader(String);

impl Header for AlertIdHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Wirewatch-Alert-Id")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AlertIdHeader(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The alert id as the local part of a Message-ID (hex in practice; anything
/// else is dropped).
fn id_token(id: &str) -> String {
    let t: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    // A dot-atom: no leading, trailing or doubled dots.
    let t = t
        .split('.')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    if t.is_empty() {
        "alert".to_string()
    } else {
        t
    }
}

/// The message for one alert: headers, a plain-text and an HTML part.
pub fn build_message(cfg: &EmailConfig, alert: &Alert) -> Result<Message, String> {
    let token = id_token(&alert.id);
    let to: Mailboxes = cfg.to.to_vec().into();
    Message::builder()
        .from(cfg.from.clone())
        .mailbox(lettre::message::header::To::from(to))
        .subject(subject(&cfg.subject, alert))
        .message_id(Some(format!("<{token}@wirewatch>")))
        .header(AlertIdHeader(token))
        .user_agent(concat!("wirewatch/", env!("CARGO_PKG_VERSION")).to_string())
        .multipart(MultiPart::alternative_plain_html(
            render_text(alert),
            render_html(alert),
        ))
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// One line of feed text: control characters out, runs of whitespace (line
/// breaks included) become one space.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The subject from its template; no control characters or line breaks,
/// at most [`MAX_SUBJECT_CHARS`].
pub fn subject(template: &str, alert: &Alert) -> String {
    let rules = alert
        .rules
        .iter()
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        match &after[..close] {
            "title" => out.push_str(&alert.item.title),
            "rule" => out.push_str(&alert.rule.id),
            "rules" if !rules.is_empty() => out.push_str(&rules),
            "rules" => out.push_str(&alert.rule.id),
            "severity" => out.push_str(&alert.rule.severity),
            "feed" => out.push_str(&alert.feed.title),
            other => {
                // Checked at config load; kept literally if ever unknown.
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    let line = one_line(&out);
    if line.chars().count() > MAX_SUBJECT_CHARS {
        let mut cut: String = line.chars().take(MAX_SUBJECT_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        line
    }
}

/// The snippet cut into runs of (is a hit, text): [`super::snippet_runs`]
/// with touching hits joined.
pub fn segments(snippet: &Snippet) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for (hit, text) in super::snippet_runs(snippet) {
        match out.last_mut() {
            Some((h, t)) if *h == hit => t.push_str(&text),
            _ => out.push((hit, text)),
        }
    }
    out
}

/// The link, if it is an http(s) URL (serialized, so it is well formed).
fn web_link(alert: &Alert) -> Option<String> {
    let link = alert.item.link.as_deref()?;
    let url = reqwest::Url::parse(link.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

fn rules_line(alert: &Alert) -> String {
    let rules = if alert.rules.is_empty() {
        std::slice::from_ref(&alert.rule)
    } else {
        &alert.rules[..]
    };
    rules
        .iter()
        .map(|r| format!("{} ({})", r.id, r.severity))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text/plain part.
pub fn render_text(alert: &Alert) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "[{}] {}",
        alert.rule.severity.to_uppercase(),
        one_line(&alert.item.title)
    );
    let _ = writeln!(
        s,
        "rule {} · {} · {}",
        one_line(&alert.rule.id),
        one_line(&alert.feed.title),
        super::stdout::published(alert)
    );
    s.push('\n');
    let snippet: String = segments(&alert.snippet)
        .into_iter()
        .map(|(hit, t)| if hit { format!("*{t}*") } else { t })
        .collect();
    let _ = writeln!(s, "    {}", snippet.trim());
    s.push('\n');
    if !alert.matched.is_empty() {
        let _ = writeln!(s, "matched: {}", one_line(&alert.matched.join(", ")));
    }
    let _ = writeln!(s, "rules:   {}", one_line(&rules_line(alert)));
    if let Some(link) = web_link(alert) {
        let _ = writeln!(s, "link:    {link}");
    }
    let _ = write!(s, "\n-- \nwirewatch alert {}\n", one_line(&alert.id));
    s
}

/// `s` safe as HTML text or a quoted attribute value.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        super::push_html_escaped(&mut out, c);
    }
    out
}

/// Feed text for HTML: one line, escaped.
fn h(s: &str) -> String {
    escape_html(&one_line(s))
}

/// The text/html part.
pub fn render_html(alert: &Alert) -> String {
    let title = h(&alert.item.title);
    let mut s = String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">");
    let _ = writeln!(s, "<title>{title}</title></head>");
    s.push_str("<body style=\"font-family:sans-serif;line-height:1.45\">\n");
    let _ = writeln!(
        s,
        "<p style=\"color:#555;font-size:90%\"><b>{}</b> · rule {} · {} · {}</p>",
        h(&alert.rule.severity.to_uppercase()),
        h(&alert.rule.id),
        h(&alert.feed.title),
        h(&super::stdout::published(alert))
    );
    match web_link(alert) {
        Some(link) => {
            let _ = writeln!(
                s,
                "<h2 style=\"margin:0.2em 0\"><a href=\"{}\">{title}</a></h2>",
                escape_html(&link)
            );
        }
        None => {
            let _ = writeln!(s, "<h2 style=\"margin:0.2em 0\">{title}</h2>");
        }
    }
    s.push_str("<p>");
    for (hit, t) in segments(&alert.snippet) {
        if hit {
            let _ = write!(
                s,
                "<mark style=\"background:#ffe066\"><b>{}</b></mark>",
                escape_html(&t)
            );
        } else {
            s.push_str(&escape_html(&t));
        }
    }
    s.push_str("</p>\n<p style=\"color:#555;font-size:90%\">");
    if !alert.matched.is_empty() {
        let _ = write!(s, "matched: {}<br>", h(&alert.matched.join(", ")));
    }
    let _ = writeln!(s, "rules: {}</p>", h(&rules_line(alert)));
    let _ = writeln!(
        s,
        "<p style=\"color:#888;font-size:80%\">wirewatch alert {}</p>",
        h(&alert.id)
    );
    s.push_str("</body></html>\n");
    s
}

/// lettre's error with its causes, on one line, control chars out, capped.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e).and_then(|s| s.source());
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    let line = one_line(&msg);
    if line.chars().count() > MAX_ERROR_CHARS {
        line.chars().take(MAX_ERROR_CHARS).collect()
    } else {
        line
    }
}

/// What a failed send means for the alert.
pub fn classify(e: &lettre::transport::smtp::Error) -> SinkError {
    let msg = describe(e);
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        let hint = match code.as_deref() {
            Some("530" | "534" | "535" | "538") => {
                " (authentication failed: check `username` and the password)"
            }
            _ => "",
        };
        SinkError::rejected(format!("SMTP server refused: {msg}{hint}"))
    } else if e.is_client() {
        // The server lacks what the config asks for (STARTTLS, an AUTH
        // mechanism, SMTPUTF8): no point in hammering it.
        SinkError::rejected(format!("SMTP: {msg}"))
    } else {
        // 4xx replies, refused or reset connections, TLS handshake and
        // certificate errors, timeouts, garbled replies.
        SinkError::transient(format!("SMTP: {msg}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertFeed, AlertItem, AlertRule};
    use chrono::TimeZone;

    fn alert(title: &str, text: &str, highlights: Vec<(usize, usize)>) -> Alert {
        let rule = AlertRule {
            id: "kursk".into(),
            severity: "high".into(),
        };
        Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            rules: vec![
                rule.clone(),
                AlertRule {
                    id: "korea".into(),
                    severity: "normal".into(),
                },
            ],
            rule,
            feed: AlertFeed {
                id: "wire".into(),
                title: "Wire & Co".into(),
                url: "https://wire.example.test/feed".into(),
            },
            item: AlertItem {
                key: "k".into(),
                title: title.into(),
                link: Some("https://wire.example.test/story?a=1&b=\"2\"".into()),
                published: Some(chrono::Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()),
                authors: vec![],
            },
            matched: vec!["Kursk".into()],
            snippet: Snippet {
                text: text.into(),
                highlights,
            },
            detected_at: chrono::Utc::now(),
            story: None,
        }
    }

    fn cfg() -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: EmailTls::None,
            auth: None,
            from: "wirewatch <alerts@example.test>".parse().unwrap(),
            to: vec!["desk@example.test".parse().unwrap()],
            subject: crate::config::email::DEFAULT_SUBJECT.into(),
            ca_pem: None,
            timeout: std::time::Duration::from_secs(5),
        }
    }

    #[test]
    fn segments_follow_char_offsets() {
        let sn = Snippet {
            text: "Сапёры в Курске\u{1b}[2J\nработают".into(),
            highlights: vec![(0, 6), (9, 15), (40, 50)],
        };
        assert_eq!(
            segments(&sn),
            vec![
                (true, "Сапёры".to_string()),
                (false, " в ".to_string()),
                (true, "Курске".to_string()),
                (false, "[2J работают".to_string()),
            ]
        );
    }

    #[test]
    fn html_escapes_feed_text_and_marks_hits() {
        let a = alert(
            "<script>alert(1)</script> Kursk & more",
            "A <b>bold</b> claim & Kursk.",
            vec![(22, 27)],
        );
        let html = render_html(&a);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Kursk &amp; more"));
        assert!(html.contains("A &lt;b&gt;bold&lt;/b&gt; claim &amp; <mark"));
        assert!(html.contains("<b>Kursk</b></mark>."), "{html}");
        assert!(html.contains("Wire &amp; Co"));
        assert!(html.contains("href=\"https://wire.example.test/story?a=1&amp;b=%222%22\""));
        let text = render_text(&a);
        assert!(text.contains("A <b>bold</b> claim & *Kursk*."), "{text}");
        assert!(text.contains("rules:   kursk (high), korea (normal)"));
    }

    #[test]
    fn links_other_than_http_are_not_linked() {
        let mut a = alert("t", "Kursk", vec![(0, 5)]);
        a.item.link = Some("javascript:alert(1)".into());
        let html = render_html(&a);
        assert!(!html.contains("href"), "{html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(!render_text(&a).contains("javascript"));
    }

    #[test]
    fn subject_has_no_line_breaks_and_is_capped() {
        let a = alert("Kursk\r\nBcc: victim@example.test\u{0}", "x", vec![]);
        let s = subject(crate::config::email::DEFAULT_SUBJECT, &a);
        assert_eq!(
            s,
            "[wirewatch] kursk (high): Kursk Bcc: victim@example.test"
        );
        let long = alert(&"word ".repeat(100), "x", vec![]);
        let s = subject("{title}", &long);
        assert_eq!(s.chars().count(), MAX_SUBJECT_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(subject("{feed}: {rules}", &a), "Wire & Co: kursk, korea");
    }

    #[test]
    fn message_has_both_parts_and_stable_ids() {
        let a = alert(
            "Blast in Kursk\nX-Evil: 1",
            "Blast in Kursk.",
            vec![(9, 14)],
        );
        let m = build_message(&cfg(), &a).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        let head = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(
            head.contains("Message-ID: <0123456789abcdef0123456789abcdef@wirewatch>"),
            "{head}"
        );
        assert!(head.contains("X-Wirewatch-Alert-Id: 0123456789abcdef0123456789abcdef"));
        assert!(!head.contains("\r\nX-Evil"), "{head}");
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
        assert!(raw.is_ascii(), "bodies and headers are encoded");
        assert_eq!(id_token("ab/../c\r\n"), "ab.c");
        assert_eq!(id_token(".a...b."), "a.b");
        assert_eq!(id_token(""), "alert");
    }
}
