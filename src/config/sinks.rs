//! The parts of a `[[sink]]` that several sink kinds share (the retry
//! policy, secrets) and the `type = "webhook"` keys.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use base64::Engine;

use super::reader::{item_pos, Fields, Pos, Reporter, Spanned};

/// How long and how often the deliverer keeps trying one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubles per failure (with jitter).
    pub initial: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// An alert not delivered this long after it was queued becomes a dead
    /// letter.
    pub horizon: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(3600),
            horizon: Duration::from_secs(3 * 86_400),
        }
    }
}

/// Keys every sink accepts besides `id`, `type`, `snippet_max_chars`.
pub const RETRY_KEYS: &[&str] = &["retry_initial", "retry_max", "retry_horizon"];

pub fn read_retry(r: &mut Reporter, f: &mut Fields<'_>) -> RetryPolicy {
    let mut p = RetryPolicy::default();
    let initial = f.duration(r, "retry_initial");
    let max = f.duration(r, "retry_max");
    let horizon = f.duration(r, "retry_horizon");
    if let Some(d) = initial {
        if d.value < Duration::from_millis(10) {
            r.error(d.pos, "`retry_initial` must be at least 10ms");
        } else {
            p.initial = d.value;
        }
    }
    if let Some(d) = max {
        if d.value < p.initial {
            r.error(
                d.pos,
                format!(
                    "`retry_max` ({:?}) must not be shorter than `retry_initial` ({:?})",
                    d.value, p.initial
                ),
            );
        } else {
            p.max = d.value;
        }
    }
    if let Some(d) = horizon {
        if d.value.is_zero() {
            r.error(d.pos, "`retry_horizon` must be longer than 0s");
        } else {
            p.horizon = d.value;
        }
    }
    p
}

/// Keys of flow control every sink accepts.
pub const FLOW_KEYS: &[&str] = &[
    "digest",
    "quiet_hours",
    "quiet_hours_allow",
    "repeat_digest",
];

pub fn read_flow(r: &mut Reporter, f: &mut Fields<'_>) -> crate::flow::SinkFlow {
    let mut flow = crate::flow::SinkFlow::default();
    if let Some(d) = f.duration(r, "digest") {
        if d.value < Duration::from_secs(1) {
            r.error(d.pos, "`digest` must be at least 1s");
        } else {
            flow.digest = Some(d.value);
        }
    }
    if let Some(d) = f.duration(r, "repeat_digest") {
        if d.value < Duration::from_secs(1) {
            r.error(d.pos, "`repeat_digest` must be at least 1s");
        } else {
            flow.repeat_digest = Some(d.value);
        }
    }
    if let Some(q) = f.string(r, "quiet_hours") {
        match crate::flow::QuietHours::parse(&q.value) {
            Ok(v) => flow.quiet_hours = Some(v),
            Err(e) => r.error(q.pos, format!("`quiet_hours`: {e}")),
        }
    }
    if let Some(a) = f.string(r, "quiet_hours_allow") {
        match super::Severity::parse(&a.value) {
            Some(s) => flow.quiet_allow = Some(s),
            None => r.error(
                a.pos,
                format!(
                    "`quiet_hours_allow`: unknown severity \"{}\"; expected low, normal, high or critical",
                    a.value
                ),
            ),
        }
        if flow.quiet_hours.is_none() {
            r.error(a.pos, "`quiet_hours_allow` needs `quiet_hours`");
        }
    }
    flow
}

/// Secret bytes; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

impl Secret {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// What a webhook posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The alert object as JSON (the default).
    Alert,
    /// A Slack incoming webhook message (mrkdwn).
    Slack,
    /// A Discord webhook message with an embed.
    Discord,
    /// An ntfy publish request (JSON body to the server's root URL).
    Ntfy { topic: String },
    /// A Matrix `m.room.message` sent through the client-server API.
    Matrix { room_id: String },
    /// A Telegram Bot API `sendMessage`.
    Telegram { chat_id: String },
}

impl WebhookFormat {
    pub fn name(&self) -> &'static str {
        match self {
            WebhookFormat::Alert => "alert",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Discord => "discord",
            WebhookFormat::Ntfy { .. } => "ntfy",
            WebhookFormat::Matrix { .. } => "matrix",
            WebhookFormat::Telegram { .. } => "telegram",
        }
    }
}

/// `type = "webhook"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Where to send: the receiver's URL; for `matrix` the homeserver's base
    /// URL, for `telegram` the Bot API's base URL.
    pub url: String,
    pub format: WebhookFormat,
    /// Standard Webhooks signing key (the decoded bytes of `whsec_...`).
    pub secret: Option<Secret>,
    /// Bearer token (`matrix`) or bot token (`telegram`).
    pub token: Option<Secret>,
    /// Extra request headers, in the order written.
    pub headers: Vec<(String, String)>,
    /// Deadline of one request, connection included.
    pub timeout: Duration,
}

pub const WEBHOOK_KEYS: &[&str] = &[
    "url",
    "format",
    "secret",
    "secret_env",
    "secret_file",
    "token",
    "token_env",
    "token_file",
    "headers",
    "timeout",
    "topic",
    "room_id",
    "chat_id",
];

/// Headers wirewatch sets itself; configuring them is an error.
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

const TELEGRAM_API: &str = "https://api.telegram.org";

/// Reads one secret written inline (`NAME`), named by an environment
/// variable (`NAME_env`) or stored in a file (`NAME_file`, relative to the
/// config file; trailing whitespace trimmed). At most one of the three.
pub(super) fn read_secret(
    r: &mut Reporter,
    f: &mut Fields<'_>,
    dir: &Path,
    keys: [&'static str; 3],
) -> Option<Spanned<String>> {
    let inline = f.string(r, keys[0]);
    let env = f.string(r, keys[1]);
    let file = f.string(r, keys[2]);
    let given: Vec<&Spanned<String>> = [&inline, &env, &file].into_iter().flatten().collect();
    if given.len() > 1 {
        r.error(
            given[1].pos,
            format!(
                "give the secret once: `{}`, `{}` or `{}` (the file is recommended)",
                keys[0], keys[1], keys[2]
            ),
        );
        return None;
    }
    if let Some(s) = inline {
        return Some(s);
    }
    if let Some(var) = env {
        return match std::env::var(&var.value) {
            Ok(v) if !v.trim().is_empty() => Some(Spanned {
                value: v.trim().to_string(),
                pos: var.pos,
            }),
            Ok(_) => {
                r.error(
                    var.pos,
                    format!("environment variable {} is empty", var.value),
                );
                None
            }
            Err(_) => {
                r.error(
                    var.pos,
                    format!("environment variable {} is not set", var.value),
                );
                None
            }
        };
    }
    let file = file?;
    let path = super::reader::resolve(dir, &file.value);
    match std::fs::read_to_string(&path) {
        Ok(v) if !v.trim().is_empty() => Some(Spanned {
            value: v.trim().to_string(),
            pos: file.pos,
        }),
        Ok(_) => {
            r.error(file.pos, format!("secret file {} is empty", path.display()));
            None
        }
        Err(e) => {
            r.error(
                file.pos,
                format!("cannot read secret file {}: {e}", path.display()),
            );
            None
        }
    }
}

/// `whsec_<base64>` -> key bytes.
pub fn decode_whsec(s: &str) -> Result<Vec<u8>, String> {
    let b64 = s.strip_prefix("whsec_").ok_or_else(|| {
        "a webhook secret must look like \"whsec_<base64>\" (Standard Webhooks)".to_string()
    })?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the part after \"whsec_\" is not valid base64: {e}"))?;
    if key.len() < 16 {
        return Err(format!(
            "a webhook secret should hold at least 16 bytes, this one has {}",
            key.len()
        ));
    }
    Ok(key)
}

fn read_url(r: &mut Reporter, s: &Spanned<String>) -> Option<String> {
    match reqwest::Url::parse(&s.value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Some(s.value.clone())
        }
        Ok(u) => {
            r.error(
                s.pos,
                format!(
                    "`url` must be an http:// or https:// URL, found scheme \"{}\"",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            r.error(s.pos, format!("`url` is not a valid URL: {e}"));
            None
        }
    }
}

fn read_headers(r: &mut Reporter, f: &mut Fields<'_>) -> Option<Vec<(String, String)>> {
    let Some(item) = f.take_item("headers") else {
        return Some(Vec::new());
    };
    let Some(table) = item.as_table_like() else {
        r.error(
            item_pos(item),
            "`headers` must be a table of strings, like headers = { Authorization = \"Bearer ...\" }",
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (name, value) in table.iter() {
        let at = value
            .as_value()
            .and_then(|v| v.span())
            .map_or_else(|| item_pos(value), |s| Pos(s.start));
        let Some(v) = value.as_str() else {
            r.error(at, format!("header `{name}` must be a string"));
            ok = false;
            continue;
        };
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            r.error(at, format!("`{name}` is not a valid HTTP header name"));
            ok = false;
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            r.error(
                at,
                format!("header `{name}` is set by wirewatch and cannot be configured"),
            );
            ok = false;
        } else if reqwest::header::HeaderValue::from_str(v).is_err() {
            r.error(
                at,
                format!("the value of header `{name}` holds characters HTTP does not allow"),
            );
            ok = false;
        } else {
            out.push((name.to_string(), v.to_string()));
        }
    }
    ok.then_some(out)
}

/// The keys of a `type = "webhook"` sink (the caller reads `id`, `type`,
/// `snippet_max_chars` and the retry keys, and calls `finish`).
pub fn read_webhook(r: &mut Reporter, f: &mut Fields<'_>, dir: &Path) -> Option<WebhookConfig> {
    let header = f.header();
    let format_s = f.string(r, "format");
    let url_s = f.string(r, "url");
    let topic = f.string(r, "topic");
    let room_id = f.string(r, "room_id");
    let chat_id = f.string(r, "chat_id");
    let secret_s = read_secret(r, f, dir, ["secret", "secret_env", "secret_file"]);
    let token_s = read_secret(r, f, dir, ["token", "token_env", "token_file"]);
    let headers = read_headers(r, f);
    let timeout = match f.duration(r, "timeout") {
        Some(d) if d.value.is_zero() => {
            r.error(d.pos, "`timeout` must be longer than 0s");
            None
        }
        Some(d) => Some(d.value),
        None => Some(Duration::from_secs(10)),
    };

    let mut ok = true;
    let mut need = |r: &mut Reporter, v: &Option<Spanned<String>>, key: &str, fmt: &str| match v {
        Some(s) => Some(s.value.clone()),
        None => {
            r.error(header, format!("format \"{fmt}\" needs `{key}`"));
            ok = false;
            None
        }
    };
    let format_name = format_s.as_ref().map_or("alert", |s| s.value.as_str());
    let format = match format_name {
        "alert" => Some(WebhookFormat::Alert),
        "slack" => Some(WebhookFormat::Slack),
        "discord" => Some(WebhookFormat::Discord),
        "ntfy" => need(r, &topic, "topic", "ntfy").map(|topic| WebhookFormat::Ntfy { topic }),
        "matrix" => need(r, &room_id, "room_id", "matrix").and_then(|id| {
            if id.starts_with('!') && id.contains(':') {
                return Some(WebhookFormat::Matrix { room_id: id });
            }
            if let Some(s) = &room_id {
                r.error(
                    s.pos,
                    "`room_id` is a room's internal id like \"!abc123:example.org\" (room settings, advanced), not an alias like \"#room:example.org\"",
                );
            }
            None
        }),
        "telegram" => need(r, &chat_id, "chat_id", "telegram")
            .map(|chat_id| WebhookFormat::Telegram { chat_id }),
        other => {
            if let Some(s) = &format_s {
                r.error(
                    s.pos,
                    format!("unknown webhook format \"{other}\"; expected one of: alert, slack, discord, ntfy, matrix, telegram"),
                );
            }
            None
        }
    };
    // Keys that belong to another format are mistakes, not silent no-ops.
    for (v, key, fmt) in [
        (&topic, "topic", "ntfy"),
        (&room_id, "room_id", "matrix"),
        (&chat_id, "chat_id", "telegram"),
    ] {
        if let (Some(s), true) = (v, format.is_some() && format_name != fmt) {
            r.error(
                s.pos,
                format!("`{key}` is used only by format \"{fmt}\", not \"{format_name}\""),
            );
            ok = false;
        }
    }
    let token_needed = matches!(format_name, "matrix" | "telegram");
    let token_allowed = token_needed || format_name == "ntfy";
    let token = match (&token_s, token_needed) {
        (Some(t), _) if token_allowed => Some(Secret(t.value.clone().into_bytes())),
        (None, true) => {
            r.error(
                header,
                format!("format \"{format_name}\" needs `token_file` (or `token`, `token_env`)"),
            );
            ok = false;
            None
        }
        (Some(t), _) => {
            r.error(
                t.pos,
                format!("a token is used only by formats \"matrix\", \"telegram\" and \"ntfy\", not \"{format_name}\""),
            );
            ok = false;
            None
        }
        (None, false) => None,
    };
    if let (Some(t), "telegram") = (&token, format_name) {
        // The bot token goes into the URL path; keep it a plain token.
        if !t
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
        {
            if let Some(ts) = &token_s {
                r.error(ts.pos, "a Telegram bot token looks like 123456:ABC-DEF...");
            }
            ok = false;
        }
    }
    let secret = match &secret_s {
        Some(s) => match decode_whsec(&s.value) {
            Ok(k) => Some(Secret(k)),
            Err(e) => {
                r.error(s.pos, e);
                ok = false;
                None
            }
        },
        None => None,
    };
    let url = match (&url_s, format_name) {
        (Some(s), "ntfy") => read_url(r, s).filter(|u| {
            // JSON is a publish request only at the server's root.
            let topic = topic.as_ref().map(|t| t.value.as_str());
            let last = reqwest::Url::parse(u).ok().and_then(|p| {
                p.path_segments()
                    .and_then(|mut seg| seg.rfind(|x| !x.is_empty()).map(str::to_string))
            });
            let bad = last.is_some() && last.as_deref() == topic;
            if bad {
                r.error(
                    s.pos,
                    "for format \"ntfy\", `url` is the server's root (like \"https://ntfy.sh\"); the topic goes in `topic`",
                );
            }
            !bad
        }),
        (Some(s), _) => read_url(r, s),
        (None, "telegram") => Some(TELEGRAM_API.to_string()),
        (None, _) => {
            r.error(header, "a webhook sink needs `url`");
            None
        }
    };
    if !ok {
        return None;
    }
    Some(WebhookConfig {
        url: url?,
        format: format?,
        secret,
        token,
        headers: headers?,
        timeout: timeout?,
    })
}

/// The keys of a `type = "exec"` sink: `command` (argv; the program is an
/// absolute path, a path relative to the config file, or a name found in
/// `PATH` now) and `timeout` (default 30 s).
pub fn read_exec(
    r: &mut Reporter,
    f: &mut Fields<'_>,
    dir: &Path,
) -> Option<(Vec<String>, Duration)> {
    let header = f.header();
    let timeout = match f.duration(r, "timeout") {
        Some(d) if d.value.is_zero() => {
            r.error(d.pos, "`timeout` must be longer than 0s");
            None
        }
        Some(d) => Some(d.value),
        None => Some(Duration::from_secs(30)),
    };
    let Some(list) = f.string_list(r, "command") else {
        if f.take_item("command").is_none() {
            r.error(
                header,
                "an exec sink needs `command`, a list like [\"/usr/local/bin/on-alert\", \"--quiet\"]",
            );
        }
        return None;
    };
    let Some(first) = list.first() else {
        r.error(header, "`command` must name a program");
        return None;
    };
    let program = &first.value;
    let resolved = if program.contains('/') {
        let p = super::reader::resolve(dir, program);
        if !p.is_file() {
            r.error(first.pos, format!("no program at {}", p.display()));
            return None;
        }
        p.to_string_lossy().into_owned()
    } else {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        });
        if found.is_none() {
            r.error(
                first.pos,
                format!("program \"{program}\" is not in PATH; give its full path"),
            );
            return None;
        }
        program.clone()
    };
    let mut argv = vec![resolved];
    argv.extend(list.iter().skip(1).map(|s| s.value.clone()));
    Some((argv, timeout?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_decoding() {
        let key = decode_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(key.len(), 24);
        assert!(decode_whsec("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_err()
            .contains("whsec_"));
        assert!(decode_whsec("whsec_!!!").unwrap_err().contains("base64"));
        assert!(decode_whsec("whsec_c2hvcnQ=")
            .unwrap_err()
            .contains("16 bytes"));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret(b"hunter2hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
