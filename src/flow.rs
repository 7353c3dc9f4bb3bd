//! Flow control: which alerts go out now and which wait for a digest.
//! Pure: the deliverer asks, the state module stores the answer.
//!
//! Three knobs, applied by a sink's delivery worker just before it would
//! deliver an alert (so decisions for one sink are never raced):
//!
//! - per sink `digest = "1h"`: every alert is held; the digest goes out one
//!   period after the first alert it holds;
//! - per sink `quiet_hours = "22:00-07:00"` (local time): alerts are held
//!   until the quiet period ends, except those at or above
//!   `quiet_hours_allow` (e.g. "high"); a digest due inside quiet hours
//!   waits for their end too;
//! - per rule `throttle = "10m"`: after an alert for a rule goes to a sink,
//!   further alerts of that rule to that sink within the window are held
//!   and go out as one digest when the window closes. An alert naming
//!   several rules is held only when every one of them is throttled.
//!
//! Held alerts stay in the outbox (durable, at least once), tagged with a
//! bucket; a bucket released with one alert sends that alert as it was.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone, Utc};

use crate::config::Severity;

/// A daily quiet period in local time; `start > end` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl QuietHours {
    /// `"22:00-07:00"`.
    pub fn parse(s: &str) -> Result<QuietHours, String> {
        let bad = || format!("expected a range like \"22:00-07:00\" (local time), found \"{s}\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
        let q = QuietHours {
            start: t(a)?,
            end: t(b)?,
        };
        if q.start == q.end {
            return Err(format!(
                "\"{s}\" is an empty range; to hold everything use `digest` instead"
            ));
        }
        Ok(q)
    }

    /// If `now` falls in a quiet period, when that period ends.
    pub fn ends_after<Tz: TimeZone>(&self, now: DateTime<Tz>) -> Option<DateTime<Utc>> {
        let local = now.naive_local();
        let t = local.time();
        let inside = if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        };
        if !inside {
            return None;
        }
        let mut day = local.date();
        if t >= self.end {
            day = day.succ_opt()?;
        }
        let end = day.and_time(self.end);
        // A gap (DST) or fold: take the earliest valid instant after it.
        let tz = now.timezone();
        let resolved = tz.from_local_datetime(&end).earliest().or_else(|| {
            tz.from_local_datetime(&(end + chrono::Duration::hours(1)))
                .earliest()
        })?;
        Some(resolved.with_timezone(&Utc))
    }
}

/// A sink's flow settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkFlow {
    pub digest: Option<Duration>,
    pub quiet_hours: Option<QuietHours>,
    /// Alerts at or above this severity pass quiet hours.
    pub quiet_allow: Option<Severity>,
    /// How long a repeat of a story (`on_repeat = "digest"`) waits for a
    /// digest when the sink has no `digest` period
    /// (default `cluster::REPEAT_DIGEST`).
    pub repeat_digest: Option<Duration>,
}

impl SinkFlow {
    pub fn is_plain(&self) -> bool {
        self.digest.is_none() && self.quiet_hours.is_none()
    }
}

/// Why alerts are held together; stored as the bucket name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bucket {
    Digest,
    Quiet,
    Throttle { rule: String },
}

impl Bucket {
    pub fn key(&self) -> String {
        match self {
            Bucket::Digest => "digest".into(),
            Bucket::Quiet => "quiet".into(),
            Bucket::Throttle { rule } => format!("throttle:{rule}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Bucket> {
        match key {
            "digest" => Some(Bucket::Digest),
            "quiet" => Some(Bucket::Quiet),
            k => k.strip_prefix("throttle:").map(|r| Bucket::Throttle {
                rule: r.to_string(),
            }),
        }
    }
}

/// What to do with one alert now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliver it; then open throttle windows for these rules (rule id,
    /// window) to this sink.
    Send { open: Vec<(String, Duration)> },
    /// Hold it in `bucket`, released at `release_at` (if the bucket is
    /// already open, its own release time wins).
    Hold {
        bucket: Bucket,
        release_at: DateTime<Utc>,
    },
}

/// One rule behind an alert, as flow control sees it.
#[derive(Debug, Clone)]
pub struct AlertRuleFlow<'a> {
    pub id: &'a str,
    pub throttle: Option<Duration>,
    /// When this rule's current window to this sink ends, if one is open.
    pub window_end: Option<DateTime<Utc>>,
}

fn add(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365))
}

/// Decides for one alert of severity `severity` whose rules are `rules`.
pub fn decide(
    sink: &SinkFlow,
    severity: Severity,
    rules: &[AlertRuleFlow<'_>],
    now: DateTime<Utc>,
) -> Decision {
    if let Some(period) = sink.digest {
        return Decision::Hold {
            bucket: Bucket::Digest,
            release_at: add(now, period),
        };
    }
    if let Some(q) = sink.quiet_hours {
        let allowed = sink.quiet_allow.is_some_and(|min| severity >= min);
        if !allowed {
            if let Some(end) = q.ends_after(now.with_timezone(&Local)) {
                return Decision::Hold {
                    bucket: Bucket::Quiet,
                    release_at: end,
                };
            }
        }
    }
    let active =
        |r: &AlertRuleFlow<'_>| r.throttle.is_some() && r.window_end.is_some_and(|e| e > now);
    if !rules.is_empty() && rules.iter().all(active) {
        // Held in the window that closes first.
        if let Some(r) = rules.iter().min_by_key(|r| r.window_end) {
            return Decision::Hold {
                bucket: Bucket::Throttle {
                    rule: r.id.to_string(),
                },
                release_at: r.window_end.unwrap_or(now),
            };
        }
    }
    Decision::Send {
        open: rules
            .iter()
            .filter(|r| !active(r))
            .filter_map(|r| Some((r.id.to_string(), r.throttle?)))
            .collect(),
    }
}

/// When a due bucket may go out: a digest is not released into quiet
/// hours (unless it holds an alert allowed through them).
pub fn release_time(sink: &SinkFlow, due: DateTime<Utc>, max_severity: Severity) -> DateTime<Utc> {
    match sink.quiet_hours {
        Some(q) if sink.quiet_allow.is_none_or(|min| max_severity < min) => q
            .ends_after(due.with_timezone(&Local))
            .map_or(due, |end| end.max(due)),
        _ => due,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Timelike};

    fn at(h: u32, m: u32) -> DateTime<FixedOffset> {
        FixedOffset::east_opt(3 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 27, h, m, 0)
            .unwrap()
    }

    #[test]
    fn quiet_hours_parse_and_span_midnight() {
        let q = QuietHours::parse("22:00-07:00").unwrap();
        assert_eq!(q.to_string(), "22:00-07:00");
        assert_eq!(q.ends_after(at(21, 59)), None);
        assert_eq!(q.ends_after(at(7, 0)), None);
        let end = at(22, 0)
            .date_naive()
            .succ_opt()
            .unwrap()
            .and_hms_opt(7, 0, 0)
            .unwrap();
        let want = FixedOffset::east_opt(3 * 3600)
            .unwrap()
            .from_local_datetime(&end)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(q.ends_after(at(22, 0)), Some(want));
        assert_eq!(q.ends_after(at(23, 30)), Some(want));
        assert_eq!(
            q.ends_after(at(3, 0)),
            Some(at(7, 0).with_timezone(&Utc)),
            "after midnight the period ends the same day"
        );
        let day = QuietHours::parse("12:30-13:00").unwrap();
        assert_eq!(
            day.ends_after(at(12, 45)),
            Some(at(13, 0).with_timezone(&Utc))
        );
        assert_eq!(day.ends_after(at(13, 0)), None);
        for bad in ["22-07", "22:00", "25:00-01:00", "10:00-10:00", "ten-eleven"] {
            assert!(QuietHours::parse(bad).is_err(), "{bad}");
        }
    }

    fn rule(
        id: &str,
        throttle: Option<u64>,
        window_end: Option<DateTime<Utc>>,
    ) -> AlertRuleFlow<'_> {
        AlertRuleFlow {
            id,
            throttle: throttle.map(Duration::from_secs),
            window_end,
        }
    }

    #[test]
    fn throttle_holds_only_when_every_rule_is_in_a_window() {
        let now = Utc::now();
        let plain = SinkFlow::default();
        let open = now + chrono::Duration::seconds(300);
        // First alert: sent, opens the window.
        assert_eq!(
            decide(&plain, Severity::Normal, &[rule("k", Some(600), None)], now),
            Decision::Send {
                open: vec![("k".into(), Duration::from_secs(600))]
            }
        );
        // Inside the window: held until it closes.
        assert_eq!(
            decide(
                &plain,
                Severity::Normal,
                &[rule("k", Some(600), Some(open))],
                now
            ),
            Decision::Hold {
                bucket: Bucket::Throttle { rule: "k".into() },
                release_at: open
            }
        );
        // A closed window does not hold.
        let past = now - chrono::Duration::seconds(1);
        assert!(matches!(
            decide(
                &plain,
                Severity::Normal,
                &[rule("k", Some(600), Some(past))],
                now
            ),
            Decision::Send { .. }
        ));
        // Another, unthrottled rule on the same alert lets it through, and
        // windows already open stay as they are.
        assert_eq!(
            decide(
                &plain,
                Severity::Normal,
                &[rule("k", Some(600), Some(open)), rule("x", None, None)],
                now
            ),
            Decision::Send { open: vec![] }
        );
    }

    #[test]
    fn digest_and_quiet_hours_hold_everything_but_allowed_severities() {
        let now = Utc::now();
        let digest = SinkFlow {
            digest: Some(Duration::from_secs(3600)),
            ..SinkFlow::default()
        };
        assert_eq!(
            decide(&digest, Severity::Critical, &[], now),
            Decision::Hold {
                bucket: Bucket::Digest,
                release_at: now + chrono::Duration::seconds(3600)
            }
        );
        // Quiet all day long except one minute: now is inside.
        let local = now.with_timezone(&Local);
        let start = (local - chrono::Duration::minutes(5)).time();
        let end = (local + chrono::Duration::minutes(30)).time();
        let quiet = SinkFlow {
            quiet_hours: Some(QuietHours {
                start: NaiveTime::from_hms_opt(start.hour(), start.minute(), 0).unwrap(),
                end: NaiveTime::from_hms_opt(end.hour(), end.minute(), 0).unwrap(),
            }),
            quiet_allow: Some(Severity::High),
            ..SinkFlow::default()
        };
        assert!(matches!(
            decide(&quiet, Severity::Normal, &[], now),
            Decision::Hold {
                bucket: Bucket::Quiet,
                ..
            }
        ));
        assert!(matches!(
            decide(&quiet, Severity::High, &[], now),
            Decision::Send { .. }
        ));
        let due = now;
        assert!(release_time(&quiet, due, Severity::Low) > due);
        assert_eq!(release_time(&quiet, due, Severity::Critical), due);
        assert_eq!(release_time(&digest, due, Severity::Low), due);
    }

    #[test]
    fn bucket_keys_round_trip() {
        for b in [
            Bucket::Digest,
            Bucket::Quiet,
            Bucket::Throttle {
                rule: "kursk".into(),
            },
        ] {
            assert_eq!(Bucket::from_key(&b.key()), Some(b));
        }
    }
}
