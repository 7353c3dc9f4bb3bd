//! The daemon's side of story clustering: the shared [`StoryIndex`], its
//! rebuilding from state, and what a repeat of a story does per sink
//! (`on_repeat`). The method itself is in [`crate::story`] (pure).
//!
//! The index is built lazily by the first poll of a context (start-up and
//! each reload) from the `story_items` rows of the window, so it always
//! reflects what was committed; every poll adds its new items, and the
//! rows of the poll are written in the poll's one transaction
//! (`PollCommit::stories`). Rows older than the window are pruned at
//! most once an hour. `status` and `status --json` read the rows, not the
//! daemon's index.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::config::{Config, OnRepeat};
use crate::model::{AlertStory, Item};
use crate::state::{State, StateError, StoryRow};
use crate::story::{self, Assignment, Restored, Signature, StoryIndex};

/// How long a repeat waits for a digest on a sink without `digest`, unless
/// the sink sets `repeat_digest`.
pub const REPEAT_DIGEST: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often story rows outside the window are pruned.
const PRUNE_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// The index shared by the feed tasks of one context.
#[derive(Debug, Default)]
pub struct Clusters {
    inner: Mutex<Option<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    index: StoryIndex,
    pruned_at: DateTime<Utc>,
}

/// One new item as the index saw it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub assignment: Assignment,
    pub signature: Option<Signature>,
    pub story: AlertStory,
}

/// What an alert for a sink does, given the item's story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Send,
    Hold,
    Drop,
}

fn window(config: &Config) -> chrono::Duration {
    chrono::Duration::from_std(config.daemon.story_window).unwrap_or(chrono::Duration::days(30))
}

impl Clusters {
    /// Makes sure the index is loaded (from state, the rows of the window)
    /// and prunes old rows when due. Does nothing when clustering is off.
    pub async fn prepare(
        self: &Arc<Self>,
        config: &Arc<Config>,
        state: &State,
    ) -> Result<(), StateError> {
        if config.daemon.story_window.is_zero() {
            return Ok(());
        }
        let now = Utc::now();
        let cutoff = now - window(config);
        let (loaded, prune) = {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(l) => (true, now - l.pruned_at >= PRUNE_EVERY),
                None => (false, true),
            }
        };
        if prune {
            let pruned = state.call(move |s| s.prune_stories(cutoff)).await?;
            if pruned > 0 {
                tracing::debug!(rows = pruned, "story items outside the window pruned");
            }
        }
        if loaded {
            if prune {
                let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(l) = guard.as_mut() {
                    l.pruned_at = now;
                }
            }
            return Ok(());
        }
        let rows = state.call(move |s| s.story_items(cutoff)).await?;
        // Sized for the rows of the window: the index needs no rebuild
        // while they are restored.
        let mut index = StoryIndex::with_capacity(config.daemon.story_window, rows.len());
        let mut restored = 0usize;
        for r in &rows {
            let Some(id) = story::parse_story_id(&r.story_id) else {
                continue;
            };
            if r.version != story::SIGNATURE_VERSION {
                continue;
            }
            let Some(sig) = Signature::from_bytes(&r.signature, r.shingles) else {
                continue;
            };
            index.restore(
                &Restored {
                    feed: &r.feed_id,
                    key: &r.item_key,
                    story: id,
                    first_seen: r.story_first_seen,
                    at: r.seen_at,
                    sig: &sig,
                    rules: &r.rules,
                },
                now,
            );
            restored += 1;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            tracing::info!(
                items = restored,
                stories = index.stories(),
                "story index rebuilt from state"
            );
            *guard = Some(Loaded {
                index,
                pruned_at: now,
            });
        }
        Ok(())
    }

    /// Assigns a new item to a story (and records it in the index); `None`
    /// when clustering is off or the index is not loaded.
    pub fn observe(&self, feed: &str, item: &Item, now: DateTime<Utc>) -> Option<Observed> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let loaded = guard.as_mut()?;
        let sig = story::signature(&item.title, story::lead(&item.summary, &item.content));
        let assignment = loaded.index.assign(feed, &item.key, sig.as_ref(), now);
        let view = loaded.index.view(assignment.story, feed, now);
        Some(Observed {
            story: AlertStory {
                id: story::story_id_text(view.id),
                first_seen: view.first_seen,
                sources: view.sources,
                repeat: !assignment.first,
            },
            assignment,
            signature: sig,
        })
    }

    /// Records the rules an item of `story` matched.
    pub fn record_rules(&self, story: story::StoryId, rules: &[&str]) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = guard.as_mut() {
            l.index.record_rules(story, rules);
        }
    }
}

impl Observed {
    /// The row that stores this item, if it has a signature.
    pub fn row(
        &self,
        feed: &str,
        item: &Item,
        rules: Vec<String>,
        now: DateTime<Utc>,
    ) -> Option<StoryRow> {
        let sig = self.signature.as_ref()?;
        Some(StoryRow {
            feed_id: feed.to_string(),
            item_key: item.key.clone(),
            story_id: self.story.id.clone(),
            story_first_seen: self.story.first_seen,
            seen_at: now,
            version: story::SIGNATURE_VERSION,
            shingles: sig.shingles,
            signature: sig.to_bytes(),
            rules,
            title: item.title.chars().take(200).collect(),
        })
    }

    /// What the alert naming `rules` (rule indices) does: sent when any of
    /// them has not matched an earlier item of the story; otherwise the
    /// loudest `on_repeat` among them.
    pub fn route(&self, config: &Config, rules: &[usize]) -> Route {
        let mut loudest: Option<OnRepeat> = None;
        for &r in rules {
            let Some(meta) = config.rule_meta.get(r) else {
                continue;
            };
            if !self.assignment.prior_rules.contains(&meta.id) {
                return Route::Send;
            }
            loudest = loudest.max(Some(meta.on_repeat));
        }
        match loudest {
            Some(OnRepeat::Alert) | None => Route::Send,
            Some(OnRepeat::Digest) => Route::Hold,
            Some(OnRepeat::Drop) => Route::Drop,
        }
    }
}

/// When a repeat held for `sink` is released: the sink's digest period,
/// else its `repeat_digest`, else [`REPEAT_DIGEST`].
pub fn hold_until(config: &Config, sink: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let period = config
        .sinks
        .iter()
        .find(|s| s.id == sink)
        .and_then(|s| s.flow.digest.or(s.flow.repeat_digest))
        .unwrap_or(REPEAT_DIGEST);
    now + chrono::Duration::from_std(period).unwrap_or(chrono::Duration::hours(1))
}

/// One line about an alert's story, for terminal output.
pub fn story_line(s: &AlertStory) -> String {
    format!(
        "story: {} ({}; first seen {}; sources: {})",
        s.id,
        if s.repeat { "a repeat" } else { "first item" },
        s.first_seen
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M"),
        s.sources.join(", ")
    )
}

/// Story clusters over the items of one `wirewatch match` run (nothing
/// stored; the configured `story_window` is ignored: every item counts).
pub struct RunStories {
    index: Option<StoryIndex>,
    /// (story id, feed, title) per item, in order.
    items: Vec<(story::StoryId, String, String)>,
}

impl RunStories {
    pub fn new(config: &Config) -> RunStories {
        RunStories {
            index: (!config.daemon.story_window.is_zero())
                .then(|| StoryIndex::new(std::time::Duration::from_secs(30 * 86_400))),
            items: Vec::new(),
        }
    }

    pub fn observe(&mut self, feed: &str, item: &Item, now: DateTime<Utc>) -> Option<AlertStory> {
        let index = self.index.as_mut()?;
        let sig = story::signature(&item.title, story::lead(&item.summary, &item.content));
        let a = index.assign(feed, &item.key, sig.as_ref(), now);
        let view = index.view(a.story, feed, now);
        self.items
            .push((a.story, feed.to_string(), item.title.clone()));
        Some(AlertStory {
            id: story::story_id_text(view.id),
            first_seen: view.first_seen,
            sources: view.sources,
            repeat: !a.first,
        })
    }

    /// The clusters of more than one item, as text lines.
    pub fn summary(&self) -> Vec<String> {
        let mut order: Vec<story::StoryId> = Vec::new();
        let mut members: std::collections::HashMap<story::StoryId, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, (id, _, _)) in self.items.iter().enumerate() {
            let m = members.entry(*id).or_default();
            if m.is_empty() {
                order.push(*id);
            }
            m.push(i);
        }
        let multi: Vec<&story::StoryId> = order.iter().filter(|id| members[id].len() > 1).collect();
        let mut out = vec![format!(
            "stories: {} item(s) in {} stor{}, {} with more than one item",
            self.items.len(),
            order.len(),
            if order.len() == 1 { "y" } else { "ies" },
            multi.len()
        )];
        for id in multi {
            out.push(format!("  story {}:", story::story_id_text(*id)));
            for &i in &members[id] {
                let (_, feed, title) = &self.items[i];
                out.push(format!("    [{feed}] {}", shown(title)));
            }
        }
        out
    }
}

fn shown(s: &str) -> String {
    s.chars().filter_map(crate::sink::shown).collect()
}

/// `wirewatch status`: the stories of the window with more than one item
/// (the ten largest).
pub fn status_lines(
    state: &State,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StateError> {
    if config.daemon.story_window.is_zero() {
        return Ok(vec![
            "stories: clustering off (story_window = \"0s\")".into()
        ]);
    }
    let (stories, items, multi) = state.story_summaries(now - window(config), 10)?;
    let mut out = vec![format!(
        "stories (last {}): {items} item(s) in {stories} stor{}; largest clusters:",
        humantime(config.daemon.story_window),
        if stories == 1 { "y" } else { "ies" }
    )];
    if multi.is_empty() {
        out.push("  none with more than one item".into());
    }
    for s in multi {
        out.push(format!(
            "  {} x{}  first {}  sources: {}  \"{}\"",
            s.story_id,
            s.items,
            s.first_seen
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M"),
            s.sources.join(", "),
            shown(&s.title)
        ));
    }
    Ok(out)
}

/// Stories in `wirewatch status --json`: the most recently active.
pub const STATUS_STORIES: usize = 20;
/// Titles listed per story in `status --json`.
const STATUS_TITLES: usize = 10;

/// One story of the window as `wirewatch status --json` prints it (one
/// JSON object per line after the feeds'; the `story` key tells them
/// apart). The shape is documented in docs/stories.md; keys are only ever
/// added.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoryStatus {
    /// The story id (16 hex digits, as in alerts' `story.id`).
    pub story: String,
    /// When its first item was seen.
    pub first_seen: DateTime<Utc>,
    /// When its latest item in the window was seen.
    pub last_seen: DateTime<Utc>,
    /// Its items in the window.
    pub items: usize,
    /// Feeds that carried it, in order of their first item.
    pub sources: Vec<String>,
    /// Distinct titles of its items, in order, at most ten.
    pub titles: Vec<String>,
    /// Rules its items matched, in order of first match.
    pub rules: Vec<String>,
}

/// `wirewatch status --json`: the [`STATUS_STORIES`] stories of the window
/// with the latest items, latest first (ties: by id). Empty when
/// clustering is off.
pub fn status_stories(
    state: &State,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<StoryStatus>, StateError> {
    if config.daemon.story_window.is_zero() {
        return Ok(Vec::new());
    }
    let rows = state.story_items(now - window(config))?;
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out: Vec<StoryStatus> = Vec::new();
    for r in &rows {
        let i = *at.entry(r.story_id.as_str()).or_insert_with(|| {
            out.push(StoryStatus {
                story: r.story_id.clone(),
                first_seen: r.story_first_seen,
                last_seen: r.seen_at,
                items: 0,
                sources: Vec::new(),
                titles: Vec::new(),
                rules: Vec::new(),
            });
            out.len() - 1
        });
        let s = &mut out[i];
        s.items += 1;
        s.first_seen = s.first_seen.min(r.story_first_seen);
        s.last_seen = s.last_seen.max(r.seen_at);
        if !s.sources.contains(&r.feed_id) {
            s.sources.push(r.feed_id.clone());
        }
        if s.titles.len() < STATUS_TITLES && !s.titles.contains(&r.title) {
            s.titles.push(r.title.clone());
        }
        for rule in &r.rules {
            if !s.rules.contains(rule) {
                s.rules.push(rule.clone());
            }
        }
    }
    out.sort_by(|a, b| {
        b.last_seen
            .cmp(&a.last_seen)
            .then_with(|| a.story.cmp(&b.story))
    });
    out.truncate(STATUS_STORIES);
    Ok(out)
}

fn humantime(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
