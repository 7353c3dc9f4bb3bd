//! When to poll a feed next. Pure: the caller passes the clock and the
//! random draw.
//!
//! The configured interval is the floor. On success the feed's own hints
//! may lengthen it (RSS `ttl`, HTTP `Cache-Control: max-age`, capped at
//! [`MAX_HINTED_INTERVAL`]) and move the due time out of its `skipHours` /
//! `skipDays`; on failure the interval doubles per consecutive failure up to
//! [`MAX_BACKOFF`], or longer when the server sent `Retry-After`. Jitter of
//! ±10 % keeps feeds that share an interval from polling in lockstep.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::model::FeedHints;

/// Longest wait between polls of a failing feed.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// A feed's `ttl` or `max-age` never stretches its interval beyond this.
pub const MAX_HINTED_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// A server's `Retry-After` is honoured up to this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What the feed and its server asked for, as far as the schedule goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    pub feed: FeedHints,
    /// `Cache-Control: max-age` of the last response.
    pub max_age: Option<Duration>,
}

/// The wait before the next poll, from `now`.
///
/// `hints` is `None` when the feed's config turns them off. `jitter` is a
/// draw from [0, 1).
pub fn next_delay(
    interval: Duration,
    failures: u32,
    retry_after: Option<Duration>,
    hints: Option<&Hints>,
    now: DateTime<Utc>,
    jitter: f64,
) -> Duration {
    let base = if failures == 0 {
        let hinted = hints
            .and_then(|h| h.feed.ttl.max(h.max_age))
            .map_or(Duration::ZERO, |d| d.min(MAX_HINTED_INTERVAL));
        interval.max(hinted)
    } else {
        let doubled = interval.saturating_mul(1u32 << failures.min(16));
        doubled.min(MAX_BACKOFF.max(interval))
    };
    let base = retry_after.map_or(base, |ra| base.max(ra.min(MAX_RETRY_AFTER)));
    let delay = base.mul_f64(0.9 + jitter.clamp(0.0, 1.0) * 0.2);
    match hints {
        Some(h) if h.feed.skip_hours != 0 || h.feed.skip_days != 0 => {
            let due = now + chrono::Duration::from_std(delay).unwrap_or_default();
            let allowed = outside_skips(due, &h.feed);
            delay + (allowed - due).to_std().unwrap_or_default()
        }
        _ => delay,
    }
}

/// The first moment at or after `due` outside the feed's skipped hours and
/// days (UTC, as RSS defines them). A feed that skips every hour or every
/// day asks for the impossible: its skips are ignored.
pub fn outside_skips(due: DateTime<Utc>, hints: &FeedHints) -> DateTime<Utc> {
    const ALL_HOURS: u32 = (1 << 24) - 1;
    const ALL_DAYS: u8 = (1 << 7) - 1;
    let hours = if hints.skip_hours & ALL_HOURS == ALL_HOURS {
        0
    } else {
        hints.skip_hours
    };
    let days = if hints.skip_days & ALL_DAYS == ALL_DAYS {
        0
    } else {
        hints.skip_days
    };
    let skipped = |t: DateTime<Utc>| {
        hours & (1 << t.hour()) != 0 || days & (1 << t.weekday().num_days_from_monday()) != 0
    };
    let mut t = due;
    // A week of hours covers every combination.
    for _ in 0..(24 * 7 + 1) {
        if !skipped(t) {
            return t;
        }
        let hour_start = t
            .with_minute(0)
            .and_then(|x| x.with_second(0))
            .and_then(|x| x.with_nanosecond(0))
            .unwrap_or(t);
        t = hour_start + chrono::Duration::hours(1);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn success_failure_and_retry_after() {
        let i = Duration::from_secs(600);
        let now = at(2026, 11, 26, 12, 0);
        assert_eq!(next_delay(i, 0, None, None, now, 0.5), i);
        assert_eq!(next_delay(i, 0, None, None, now, 0.0), i.mul_f64(0.9));
        assert_eq!(next_delay(i, 0, None, None, now, 1.0), i.mul_f64(1.1));
        assert_eq!(next_delay(i, 2, None, None, now, 0.5), i * 4);
        assert_eq!(next_delay(i, 30, None, None, now, 0.5), MAX_BACKOFF);
        let ra = Duration::from_secs(7200);
        assert_eq!(next_delay(i, 1, Some(ra), None, now, 0.5), ra);
        // A Retry-After of a week is held to a day.
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(
            next_delay(i, 1, Some(week), None, now, 0.5),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn ttl_and_max_age_lengthen_never_shorten() {
        let i = 10 * MIN;
        let now = at(2026, 11, 26, 12, 0);
        let h = |ttl: Option<Duration>, max_age: Option<Duration>| Hints {
            feed: FeedHints {
                ttl,
                ..FeedHints::default()
            },
            max_age,
        };
        let d = |hints: &Hints| next_delay(i, 0, None, Some(hints), now, 0.5);
        assert_eq!(d(&h(Some(60 * MIN), None)), 60 * MIN);
        assert_eq!(
            d(&h(Some(MIN), None)),
            i,
            "a short ttl does not speed polls up"
        );
        assert_eq!(d(&h(None, Some(30 * MIN))), 30 * MIN);
        assert_eq!(d(&h(Some(20 * MIN), Some(40 * MIN))), 40 * MIN);
        assert_eq!(
            d(&h(Some(Duration::from_secs(30 * 86_400)), None)),
            MAX_HINTED_INTERVAL
        );
        // A failing feed backs off from the interval, not from its ttl.
        let hints = h(Some(60 * MIN), None);
        assert_eq!(next_delay(i, 1, None, Some(&hints), now, 0.5), 2 * i);
    }

    #[test]
    fn skip_hours_and_days_move_the_due_time() {
        // Thursday 2026-11-26, 21:55 UTC; skip 22:00-05:59.
        let now = at(2026, 11, 26, 21, 55);
        let mut feed = FeedHints::default();
        for h in [22, 23, 0, 1, 2, 3, 4, 5] {
            feed.skip_hours |= 1 << h;
        }
        let hints = Hints {
            feed,
            max_age: None,
        };
        let d = next_delay(10 * MIN, 0, None, Some(&hints), now, 0.5);
        assert_eq!(
            now + chrono::Duration::from_std(d).unwrap(),
            at(2026, 11, 27, 6, 0)
        );
        // Before the skipped hours nothing moves.
        let early = at(2026, 11, 26, 20, 0);
        assert_eq!(
            next_delay(10 * MIN, 0, None, Some(&hints), early, 0.5),
            10 * MIN
        );
        // Skip Saturday and Sunday: Friday 23:58 + 10m lands on Monday 06:00
        // (hours 0-5 are skipped too).
        feed.skip_days = (1 << 5) | (1 << 6);
        let hints = Hints {
            feed,
            max_age: None,
        };
        let fri = at(2026, 11, 27, 23, 58);
        let d = next_delay(10 * MIN, 0, None, Some(&hints), fri, 0.5);
        assert_eq!(
            fri + chrono::Duration::from_std(d).unwrap(),
            at(2026, 11, 30, 6, 0)
        );
    }

    #[test]
    fn impossible_skips_are_ignored() {
        let t = at(2026, 11, 26, 3, 30);
        let all_hours = FeedHints {
            skip_hours: (1 << 24) - 1,
            ..FeedHints::default()
        };
        assert_eq!(outside_skips(t, &all_hours), t);
        let all_days = FeedHints {
            skip_days: 0x7f,
            ..FeedHints::default()
        };
        assert_eq!(outside_skips(t, &all_days), t);
    }
}
