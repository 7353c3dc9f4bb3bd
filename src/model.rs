//! Plain data that crosses module boundaries: feed items and alerts.
//!
//! Nothing here does I/O. Types that leave the process (the `parse` output,
//! the alert object that sinks and webhooks receive) derive `Serialize`, and
//! their field names are a public contract: extend them, never rename.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One feed entry after parsing and HTML clean-up.
///
/// `key` is stable across polls of the same feed: the entry's guid/id, else
/// its link, else a hash of title and summary (never random).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub title: String,
    /// Only `http`/`https` links are ever kept.
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// Plain text (HTML removed, entities decoded).
    pub summary: String,
    /// Plain text (HTML removed, entities decoded).
    pub content: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    /// The main text of the item's article page, for `full_text = true`
    /// feeds when one was extracted (`crate::fulltext`); plain text,
    /// paragraphs separated by blank lines. Rules see it as `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_text: Option<String>,
}

/// A parsed feed document.
#[derive(Debug, Clone, Default)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub items: Vec<Item>,
    /// Non-fatal problems (lossy decoding, encoding mismatch, items dropped
    /// by the item cap). Each is a full sentence meant for a log line.
    pub warnings: Vec<String>,
    /// What the document says about how often to poll it.
    pub hints: FeedHints,
}

/// A feed's own schedule hints (RSS 2.0 `<ttl>`, `<skipHours>`,
/// `<skipDays>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedHints {
    /// How long the document may be cached (`<ttl>`, given in minutes).
    pub ttl: Option<std::time::Duration>,
    /// Bit `h` set: do not poll during UTC hour `h` (0–23).
    pub skip_hours: u32,
    /// Bit `d` set: do not poll on that UTC weekday (0 = Monday … 6 = Sunday).
    pub skip_days: u8,
}

/// The alert object: what sinks receive and webhooks will post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable for (rule id, item key): receivers may drop duplicates by it.
    pub id: String,
    /// The rule that names the alert: the most severe of `rules`.
    pub rule: AlertRule,
    /// Every rule that matched the item and sends to this sink, most severe
    /// first (`rules[0] == rule`). One item gives one alert per sink however
    /// many rules it matched.
    #[serde(default)]
    pub rules: Vec<AlertRule>,
    pub feed: AlertFeed,
    pub item: AlertItem,
    /// The matched terms as written in the text, in order of first hit.
    pub matched: Vec<String>,
    pub snippet: Snippet,
    pub detected_at: DateTime<Utc>,
    /// The story the item belongs to (`crate::story`): absent when story
    /// clustering is off, and in alerts queued before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<AlertStory>,
}

/// A story cluster as an alert shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStory {
    /// Stable for the story: 16 hex digits.
    pub id: String,
    /// When the story's first item was seen.
    pub first_seen: DateTime<Utc>,
    /// The feeds that carried it so far, first one first.
    pub sources: Vec<String>,
    /// This item is a later copy of the story.
    #[serde(default)]
    pub repeat: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: String,
    pub severity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertFeed {
    pub id: String,
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertItem {
    pub key: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub authors: Vec<String>,
}

/// A cut of the item text around the hits.
///
/// `highlights` are merged, sorted, half-open `[start, end)` offsets in
/// Unicode scalar values (chars) into `text`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<(usize, usize)>,
}

/// Alerts held back by flow control (throttle, quiet hours, a digest
/// period) and sent as one message. Serialized with `"type": "digest"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// Stable for the sink, the bucket and the alerts it holds.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// "throttle", "quiet_hours" or "digest".
    pub reason: String,
    /// For a throttle digest: the rule.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<String>,
    /// Detection time of the first and the last alert it holds.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub count: usize,
    /// The alerts, in the order they were detected.
    pub alerts: Vec<Alert>,
}

/// How many entries a digest lists in its text before "and N more".
pub const DIGEST_LIST: usize = 20;

impl Digest {
    /// The one-line headline: what was held and why.
    pub fn headline(&self) -> String {
        let n = self.count;
        let s = if n == 1 { "" } else { "s" };
        match (self.reason.as_str(), &self.rule) {
            ("throttle", Some(rule)) => format!("{n} more alert{s} for rule {rule} (throttled)"),
            ("quiet_hours", _) => format!("{n} alert{s} held during quiet hours"),
            _ => format!(
                "Digest: {n} alert{s} since {}",
                self.from
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
            ),
        }
    }

    /// The digest as one alert, for sinks that show alerts as messages
    /// (terminal, desktop, chat presets, e-mail): the headline as title, a
    /// line per held alert (title, feed, link) as the text, every rule.
    pub fn summary_alert(&self) -> Alert {
        let mut rules: Vec<AlertRule> = Vec::new();
        let mut matched: Vec<String> = Vec::new();
        for a in &self.alerts {
            for r in a.rules.iter().chain(std::iter::once(&a.rule)) {
                if !rules.iter().any(|x| x.id == r.id) {
                    rules.push(r.clone());
                }
            }
            for m in &a.matched {
                if !matched.contains(m) {
                    matched.push(m.clone());
                }
            }
        }
        let rank = |s: &str| match s {
            "critical" => 0,
            "high" => 1,
            "normal" => 2,
            _ => 3,
        };
        rules.sort_by_key(|r| rank(&r.severity));
        let first_feed = self.alerts.first().map(|a| a.feed.clone());
        let feed = match first_feed {
            Some(f) if self.alerts.iter().all(|a| a.feed.id == f.id) => f,
            _ => AlertFeed {
                id: "wirewatch".into(),
                title: "several feeds".into(),
                url: String::new(),
            },
        };
        let mut lines: Vec<String> = self
            .alerts
            .iter()
            .take(DIGEST_LIST)
            .map(|a| {
                let link = a
                    .item
                    .link
                    .as_deref()
                    .map(|l| format!(" {l}"))
                    .unwrap_or_default();
                format!("\u{2022} {} ({}){link}", a.item.title, a.feed.title)
            })
            .collect();
        if self.alerts.len() > DIGEST_LIST {
            lines.push(format!(
                "\u{2026} and {} more",
                self.alerts.len() - DIGEST_LIST
            ));
        }
        let rule = rules.first().cloned().unwrap_or(AlertRule {
            id: "digest".into(),
            severity: "normal".into(),
        });
        Alert {
            id: self.id.clone(),
            rule,
            rules,
            feed,
            item: AlertItem {
                key: self.id.clone(),
                title: self.headline(),
                link: None,
                published: Some(self.to),
                authors: Vec::new(),
            },
            matched,
            snippet: Snippet {
                text: lines.join("\n"),
                highlights: Vec::new(),
            },
            detected_at: self.to,
            story: None,
        }
    }
}
