//! Full article text for `full_text = true` feeds: during a poll, after the
//! new items are known and before they are matched, each new item's
//! article page is fetched and its main text extracted ([`crate::extract`])
//! into [`Item::full_text`], which the rules see as `content`
//! (`pipeline::document`) and snippets are cut from.
//!
//! Bounds (see `docs/full-text.md`): pages go through the shared
//! [`Fetcher`] (`Fetcher::fetch_page`), so they take the same host slots,
//! host spacing and global slots as feed fetches, the same total deadline
//! (`fetch_timeout`) and redirect rules, with the feed's
//! `full_text_max_bytes` cap; at most `full_text_max_articles` pages per
//! poll, fetched concurrently within those bounds; extraction runs on the
//! blocking pool under the parse bound; and everything (queueing included)
//! within `full_text_budget` of wall-clock time, after which the poll goes
//! on with what is done.
//!
//! Failures never fail the poll: a page that errs, times out, is too
//! large, holds no article (paywall stub, teaser, section front) or only
//! the feed's own text leaves the item with its feed text, logged with the
//! feed id and the link. Only unseen items are fetched, once: the item is
//! marked seen in the poll's commit whatever its page did.
//!
//! Metrics: every wanted item ends with one `result` of
//! `wirewatch_article_fetches_total` ([`ArticleResult`]); each fetch that
//! ends (not those cut off by the budget) is timed from its admission and
//! its body bytes counted.

use std::collections::HashMap;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::FullTextConfig;
use crate::extract::{extract, Article};
use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::metrics::{fetch_failure, ArticleResult, Metrics};
use crate::model::Item;

/// What the article phase of one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FullTextReport {
    /// Items whose article text was extracted.
    pub extracted: usize,
    /// Pages fetched or extracted without usable text (logged each).
    pub failed: usize,
    /// New items beyond `full_text_max_articles`, or without a link.
    pub skipped: usize,
    /// Pages not done when the budget ran out.
    pub out_of_budget: usize,
}

/// Fetches the article pages of `items[i]` for each `i` in `wanted` (new
/// items, in feed order) and sets their `full_text`. Never fails; see the
/// module docs for the bounds. Results, latencies and bytes go to
/// `metrics`.
pub async fn enrich(
    fetcher: &Fetcher,
    parse_slots: &Semaphore,
    metrics: &Metrics,
    feed_id: &str,
    cfg: &FullTextConfig,
    items: &mut [Item],
    wanted: &[usize],
) -> FullTextReport {
    let mut report = FullTextReport::default();
    let deadline = Instant::now() + cfg.budget;
    let mut tasks = JoinSet::new();
    // Task id -> item index, so a task that panicked is still accounted for.
    let mut pending: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut started = 0;
    for &i in wanted {
        let Some(link) = items.get(i).and_then(|it| it.link.clone()) else {
            report.skipped += 1;
            continue;
        };
        if started == cfg.max_articles {
            report.skipped += 1;
            tracing::debug!(feed = %feed_id, link = %link,
                "article not fetched: full_text_max_articles reached for this poll");
            continue;
        }
        started += 1;
        let (fetcher, max_bytes) = (fetcher.clone(), cfg.max_bytes);
        let handle = tasks.spawn(async move {
            // Timed from admission, like feed fetches: the fetch, not the
            // queue for slots.
            let fetched = match fetcher.admit(&link).await {
                Ok(admitted) => {
                    let started = Instant::now();
                    let r = fetcher.fetch_page_admitted(&admitted, max_bytes).await;
                    (r, Some(started.elapsed()))
                }
                Err(e) => (Err(e), None),
            };
            (i, fetched, link)
        });
        pending.insert(handle.id(), i);
    }
    if report.skipped > 0 {
        tracing::info!(feed = %feed_id, skipped = report.skipped, max = cfg.max_articles,
            "new items kept their feed text: over full_text_max_articles or without a link");
    }
    loop {
        let next = match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                report.out_of_budget = tasks.len();
                break;
            }
        };
        let (i, (fetched, took), link) = match next {
            Ok((id, (i, fetched, link))) => {
                pending.remove(&id);
                (i, fetched, link)
            }
            Err(e) => {
                let i = pending.remove(&e.id());
                report.failed += 1;
                metrics.articles(feed_id, ArticleResult::Internal, 1);
                tracing::warn!(feed = %feed_id, item = ?i, error = %e, "article fetch task failed; feed text kept");
                continue;
            }
        };
        if let Some(took) = took {
            let bytes = fetched.as_ref().map_or(0, |p| p.body.len() as u64);
            metrics.article_fetched(took, bytes);
        }
        let outcome = match fetched {
            Ok(page) => {
                let feed_text = (items[i].summary.clone(), items[i].content.clone());
                let work = extract_bounded(parse_slots, page, feed_text);
                match tokio::time::timeout_at(deadline, work).await {
                    Ok(r) => r,
                    Err(_) => {
                        report.out_of_budget = tasks.len() + 1;
                        break;
                    }
                }
            }
            Err(e @ FetchError::TooLarge { limit }) => Err((
                ArticleResult::Fetch(fetch_failure(&e)),
                format!("page larger than the {limit}-byte cap (full_text_max_bytes)"),
            )),
            Err(e) => Err((
                ArticleResult::Fetch(fetch_failure(&e)),
                format!("fetch failed: {e}"),
            )),
        };
        match outcome {
            Ok(article) => {
                for w in &article.warnings {
                    tracing::warn!(feed = %feed_id, link = %link, warning = %w, "article page problem");
                }
                tracing::debug!(feed = %feed_id, link = %link, chars = article.text.chars().count(),
                    source = ?article.source, "article text extracted");
                report.extracted += 1;
                metrics.articles(feed_id, ArticleResult::Ok, 1);
                items[i].full_text = Some(article.text);
            }
            Err((result, why)) => {
                report.failed += 1;
                metrics.articles(feed_id, result, 1);
                tracing::warn!(feed = %feed_id, link = %link, error = %why,
                    "no article text; matching the feed text");
            }
        }
    }
    metrics.articles(feed_id, ArticleResult::Skipped, report.skipped);
    metrics.articles(feed_id, ArticleResult::OverBudget, report.out_of_budget);
    if report.out_of_budget > 0 {
        tracing::warn!(feed = %feed_id, pages = report.out_of_budget, budget = ?cfg.budget,
            "full_text_budget ran out; those items keep their feed text");
    }
    // Dropping the set aborts the fetches still queued or running, which
    // frees their host and global slots.
    tasks.abort_all();
    report
}

/// Extraction on the blocking pool under the parse bound. The page is
/// refused when it gives no more than the feed already said.
async fn extract_bounded(
    slots: &Semaphore,
    page: Fetched,
    feed_text: (String, String),
) -> Result<Article, (ArticleResult, String)> {
    let _permit = slots
        .acquire()
        .await
        .map_err(|e| (ArticleResult::Internal, e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let article = extract(&page.body, page.charset.as_deref(), Some(&page.final_url))
            .map_err(|e| (ArticleResult::NoArticle, e.to_string()))?;
        if repeats_feed(&article.text, &feed_text.0, &feed_text.1) {
            return Err((
                ArticleResult::NoArticle,
                "no article text found: the page holds only the feed's own text".into(),
            ));
        }
        Ok(article)
    })
    .await
    .map_err(|e| (ArticleResult::Internal, format!("extractor crashed: {e}")))?
}

/// Whether `article` (whitespace-normalised, case-folded) is contained in
/// the feed's summary or content: matching it would only match the
/// teaser twice.
fn repeats_feed(article: &str, summary: &str, content: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let a = norm(article);
    !a.is_empty() && [summary, content].iter().any(|t| norm(t).contains(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_text_again_is_no_article() {
        let body = "The port reopened on Monday.\n\nShips queued overnight.";
        assert!(repeats_feed(
            body,
            "Intro. The port  reopened on Monday. Ships queued OVERNIGHT. More.",
            ""
        ));
        assert!(repeats_feed(body, "", body));
        assert!(!repeats_feed(body, "The port reopened on Monday.", ""));
        assert!(!repeats_feed("", "", ""));
    }
}
