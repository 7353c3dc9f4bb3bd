//! The `type = "email"` keys of a `[[sink]]` (docs/sinks-email.md).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use lettre::message::Mailbox;

use super::reader::{item_pos, Fields, Pos, Reporter, Spanned};
use super::sinks::{read_secret, Secret};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS; refused if the server does
    /// not offer it (default port 587).
    StartTls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption at all (default port 25): for a relay on loopback.
    None,
}

impl EmailTls {
    pub fn name(self) -> &'static str {
        match self {
            EmailTls::StartTls => "starttls",
            EmailTls::Tls => "tls",
            EmailTls::None => "none",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            EmailTls::StartTls => 587,
            EmailTls::Tls => 465,
            EmailTls::None => 25,
        }
    }
}

/// `type = "email"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// The SMTP server's host name or IP address.
    pub host: String,
    pub port: u16,
    pub tls: EmailTls,
    /// Login and password, when the server wants authentication.
    pub auth: Option<(String, Secret)>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// The subject template (placeholders [`SUBJECT_PLACEHOLDERS`]).
    pub subject: String,
    /// Extra trusted CA certificates (PEM), besides the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Deadline of one delivery, connection and TLS handshake included.
    pub timeout: Duration,
}

impl EmailConfig {
    /// Where alerts go, for reports (never holds the password).
    pub fn endpoint(&self) -> String {
        let scheme = match self.tls {
            EmailTls::Tls => "smtps",
            EmailTls::StartTls | EmailTls::None => "smtp",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

pub const EMAIL_KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "username",
    "password",
    "password_env",
    "password_file",
    "from",
    "to",
    "subject",
    "ca_file",
    "timeout",
];

/// Placeholders a `subject` may use.
pub const SUBJECT_PLACEHOLDERS: &[&str] = &["title", "rule", "rules", "severity", "feed"];

pub const DEFAULT_SUBJECT: &str = "[wirewatch] {rule} ({severity}): {title}";

/// Whether `host` names this machine's loopback interface.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A host name (letters, digits, `-`, `.`) or an IP address.
fn valid_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')))
}

/// Checks a subject template: every `{...}` must be a known placeholder.
pub fn check_subject(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("`subject` has a `}` without `{`".into());
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("`subject` has a `{` without `}`".into());
        };
        let name = &after[..close];
        if !SUBJECT_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} in `subject`; use {}",
                SUBJECT_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn mailbox(r: &mut Reporter, s: &Spanned<String>, key: &str) -> Option<Mailbox> {
    match s.value.parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            r.error(
                s.pos,
                format!(
                    "`{key}`: \"{}\" is not an email address ({e}); write \"alerts@example.org\" or \"Desk <alerts@example.org>\"",
                    s.value
                ),
            );
            None
        }
    }
}

/// The keys of a `type = "email"` sink (the caller reads `id`, `type`,
/// `snippet_max_chars` and the retry keys, and calls `finish`).
pub fn read_email(r: &mut Reporter, f: &mut Fields<'_>, dir: &Path) -> Option<EmailConfig> {
    let header = f.header();
    let mut ok = true;

    let host_s = f.required_string(r, "host");
    let host = match &host_s {
        Some(s) => {
            let h = s.value.trim_start_matches('[').trim_end_matches(']');
            if valid_host(h) {
                Some(h.to_string())
            } else {
                r.error(
                    s.pos,
                    format!(
                        "`host` must be a host name or an IP address (no scheme or port), found \"{}\"",
                        s.value
                    ),
                );
                None
            }
        }
        None => None,
    };
    let tls_s = f.string(r, "tls");
    let tls = match tls_s.as_ref().map(|s| s.value.as_str()) {
        None | Some("starttls") => Some(EmailTls::StartTls),
        Some("tls") => Some(EmailTls::Tls),
        Some("none") => Some(EmailTls::None),
        Some(other) => {
            if let Some(s) = &tls_s {
                r.error(
                    s.pos,
                    format!("`tls` must be \"starttls\", \"tls\" or \"none\", found \"{other}\""),
                );
            }
            None
        }
    };
    let port = f.integer(r, "port", 1..=65_535).map(|p| p as u16);

    let username = f.string(r, "username");
    let password = read_secret(r, f, dir, ["password", "password_env", "password_file"]);
    let auth = match (&username, password) {
        (Some(u), Some(p)) => Some((u.value.clone(), Secret(p.value.into_bytes()))),
        (None, None) => None,
        (Some(u), None) => {
            r.error(
                u.pos,
                "`username` needs a password: `password_file` (or `password`, `password_env`)",
            );
            ok = false;
            None
        }
        (None, Some(p)) => {
            r.error(p.pos, "a password needs `username`");
            ok = false;
            None
        }
    };
    if let (Some(EmailTls::None), Some(_), Some(h), Some(s)) = (tls, &auth, &host, &tls_s) {
        if !is_loopback(h) {
            r.error(
                s.pos,
                format!(
                    "`tls = \"none\"` would send the password in clear text to {h}; use \"starttls\" or \"tls\" (\"none\" is for a relay on loopback)"
                ),
            );
            ok = false;
        }
    }

    let from = f
        .required_string(r, "from")
        .and_then(|s| mailbox(r, &s, "from"));
    let to = read_to(r, f, header);

    let subject = match f.string(r, "subject") {
        Some(s) => match check_subject(&s.value) {
            Ok(()) => Some(s.value),
            Err(e) => {
                r.error(s.pos, e);
                None
            }
        },
        None => Some(DEFAULT_SUBJECT.to_string()),
    };

    let ca_pem = match f.string(r, "ca_file") {
        None => Some(None),
        Some(s) => {
            let path = super::reader::resolve(dir, &s.value);
            match std::fs::read(&path) {
                Ok(pem)
                    if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") =>
                {
                    match lettre::transport::smtp::client::Certificate::from_pem(&pem) {
                        Ok(_) => Some(Some(pem)),
                        Err(e) => {
                            r.error(s.pos, format!("`ca_file` {}: {e}", path.display()));
                            None
                        }
                    }
                }
                Ok(_) => {
                    r.error(
                        s.pos,
                        format!(
                            "`ca_file` {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                            path.display()
                        ),
                    );
                    None
                }
                Err(e) => {
                    r.error(
                        s.pos,
                        format!("cannot read `ca_file` {}: {e}", path.display()),
                    );
                    None
                }
            }
        }
    };
    if let (Some(EmailTls::None), Some(Some(_)), Some(s)) = (tls, &ca_pem, &tls_s) {
        r.error(
            s.pos,
            "`ca_file` is used only with `tls = \"starttls\"` or \"tls\"",
        );
        ok = false;
    }

    let timeout = match f.duration(r, "timeout") {
        Some(d) if d.value.is_zero() => {
            r.error(d.pos, "`timeout` must be longer than 0s");
            None
        }
        Some(d) => Some(d.value),
        None => Some(Duration::from_secs(30)),
    };

    if !ok {
        return None;
    }
    let tls = tls?;
    Some(EmailConfig {
        host: host?,
        port: port.unwrap_or_else(|| tls.default_port()),
        tls,
        auth,
        from: from?,
        to: to?,
        subject: subject?,
        ca_pem: ca_pem?,
        timeout: timeout?,
    })
}

/// `to`: a non-empty list of addresses (a single string is accepted too).
fn read_to(r: &mut Reporter, f: &mut Fields<'_>, header: Pos) -> Option<Vec<Mailbox>> {
    let Some(item) = f.take_item("to") else {
        r.error(header, "an email sink needs `to`, a list of addresses");
        return None;
    };
    let list = if let Some(s) = item.as_str() {
        vec![Spanned {
            value: s.to_string(),
            pos: item_pos(item),
        }]
    } else {
        f.string_list(r, "to")?
    };
    if list.is_empty() {
        r.error(item_pos(item), "`to` must name at least one address");
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for s in &list {
        match mailbox(r, s, "to") {
            Some(m) => out.push(m),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_placeholders_are_checked() {
        assert!(check_subject(DEFAULT_SUBJECT).is_ok());
        assert!(check_subject("plain").is_ok());
        assert!(check_subject("{feed}/{rules}").is_ok());
        assert!(check_subject("{titel}").unwrap_err().contains("{titel}"));
        assert!(check_subject("{title").unwrap_err().contains("without"));
        assert!(check_subject("title}").unwrap_err().contains("without"));
    }

    #[test]
    fn loopback_and_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("LocalHost"));
        assert!(!is_loopback("smtp.example.org"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(valid_host("smtp.example.org"));
        assert!(valid_host("::1"));
        assert!(!valid_host("smtp://example.org"));
        assert!(!valid_host("example.org:587"));
        assert!(!valid_host(""));
    }
}
