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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// A parsed feed document.
#[derive(Debug, Clone, Default)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub items: Vec<Item>,
    /// Non-fatal problems (lossy decoding, encoding mismatch, items dropped
    /// by the item cap). Each is a full sentence meant for a log line.
    pub warnings: Vec<String>,
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
