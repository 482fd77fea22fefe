//! When a policy applies: `@effective`, `@expires` and `@extended`.
//!
//! A special measure is a determination with dates. A policy annotated
//! `@effective("2027-03-01")` applies from that instant, and one annotated
//! `@expires("2028-02-29")` up to (not including) that one; a date means 00:00
//! UTC and an RFC 3339 instant (`2027-03-01T12:00:00+01:00`) is taken as
//! written. A policy with neither applies always. The window is part of the
//! snapshot, so a measure starts or ends at its instant without a reload: each
//! decision reads the clock once and skips the policies out of their window.
//!
//! Under the proposed rule a measure lasts at most 365 days unless extended:
//! a window longer than that (or one that starts and never ends) without
//! `@extended("…reference…")` is a warning for the author.

use std::fmt;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};
use serde::{Serialize, Serializer};

/// How long a special measure may last without `@extended`.
pub const MAX_MEASURE_DAYS: i64 = 365;

/// An instant, as a decision, a window and `/v1/status` give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub Timestamp);

impl Instant {
    /// The current time.
    pub fn now() -> Self {
        Self::from_system(std::time::SystemTime::now())
    }

    /// The instant a `SystemTime` is (the ends of the representable range
    /// for times beyond it).
    pub fn from_system(t: std::time::SystemTime) -> Self {
        Self(Timestamp::try_from(t).unwrap_or_else(|_| {
            if t < std::time::UNIX_EPOCH {
                Timestamp::MIN
            } else {
                Timestamp::MAX
            }
        }))
    }

    /// Parses `YYYY-MM-DD` (00:00 UTC that day) or an RFC 3339 instant with
    /// its offset (`Z` or `±hh:mm`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() == 10 {
            let date: Date = text.parse().map_err(|e| {
                format!("`{text}` is not a date (YYYY-MM-DD) or RFC 3339 instant: {e}")
            })?;
            return TimeZone::UTC
                .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
                .map(Self)
                .map_err(|_| {
                    format!(
                        "`{text}` is beyond the instants supported (up to 9999-12-30); leave \
                         `@expires` out for a measure without an end"
                    )
                });
        }
        text.parse::<Timestamp>().map(Self).map_err(|e| {
            format!(
                "`{text}` is not a date (YYYY-MM-DD) or RFC 3339 instant with an offset \
                 (2027-03-01T00:00:00Z): {e}"
            )
        })
    }

    /// Seconds since the Unix epoch.
    pub fn as_second(self) -> i64 {
        self.0.as_second()
    }

    /// This instant moved by `by` (saturating at the ends of the representable range).
    pub fn plus(self, by: std::time::Duration) -> Self {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        Self(self.0.checked_add(by).unwrap_or(Timestamp::MAX))
    }
}

impl fmt::Display for Instant {
    /// RFC 3339 in UTC, to the millisecond: `2027-03-01T00:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.0)
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a policy stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureState {
    /// `scheduled`: its `@effective` instant is still ahead.
    Scheduled,
    /// `in_force`: it applies.
    InForce,
    /// `expired`: its `@expires` instant has passed.
    Expired,
}

impl MeasureState {
    /// Every state, in the order above.
    pub const ALL: [MeasureState; 3] = [Self::Scheduled, Self::InForce, Self::Expired];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::InForce => "in_force",
            Self::Expired => "expired",
        }
    }
}

/// When a policy applies: `effective ≤ now < expires`, either end open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Window {
    /// `@effective`: the first instant it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective: Option<Instant>,
    /// `@expires`: the first instant it no longer applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<Instant>,
    /// `@extended`: the reference of the determination that extended the measure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended: Option<Arc<str>>,
}

impl Window {
    /// Whether either end is set.
    pub fn is_dated(&self) -> bool {
        self.effective.is_some() || self.expires.is_some()
    }

    /// Whether the policy applies at `now`.
    #[inline]
    pub fn applies(&self, now: Instant) -> bool {
        self.effective.is_none_or(|e| e <= now) && self.expires.is_none_or(|x| now < x)
    }

    /// Where the policy stands at `now`.
    pub fn state(&self, now: Instant) -> MeasureState {
        if self.effective.is_some_and(|e| now < e) {
            MeasureState::Scheduled
        } else if self.expires.is_some_and(|x| x <= now) {
            MeasureState::Expired
        } else {
            MeasureState::InForce
        }
    }

    /// The first instant after `now` at which the policy starts or stops applying.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        [self.effective, self.expires]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// What is wrong with the window: an end not after its start. `None` when it is sound.
    pub fn error(&self) -> Option<String> {
        match (self.effective, self.expires) {
            (Some(e), Some(x)) if x <= e => Some(format!(
                "`@expires(\"{x}\")` is not after `@effective(\"{e}\")`: the policy would never apply"
            )),
            _ => None,
        }
    }

    /// What the author should look at: a measure that lasts more than
    /// [`MAX_MEASURE_DAYS`] (or starts and never ends) without `@extended`.
    pub fn warning(&self) -> Option<String> {
        if self.extended.is_some() {
            return None;
        }
        match (self.effective, self.expires) {
            (Some(e), Some(x)) => {
                let seconds = x.0.duration_since(e.0).as_secs();
                // Any part of a day beyond the limit counts as a day more.
                let days = seconds.div_euclid(86_400) + i64::from(seconds.rem_euclid(86_400) > 0);
                (seconds > MAX_MEASURE_DAYS * 86_400).then(|| {
                    format!(
                        "the window lasts {days} days, more than the {MAX_MEASURE_DAYS} a special \
                         measure may last unless extended"
                    )
                })
            }
            (Some(_), None) => Some(format!(
                "`@effective` without `@expires`: a special measure lasts at most \
                 {MAX_MEASURE_DAYS} days unless extended"
            )),
            _ => None,
        }
    }
}

/// The help shown with a window warning.
pub const EXTEND_HELP: &str = "end the window within 365 days, or name the determination that extends the measure: `@extended(\"…\")`";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    #[test]
    fn a_date_is_midnight_utc_and_an_instant_keeps_its_offset() {
        assert_eq!(at("2027-03-01"), at("2027-03-01T00:00:00Z"));
        assert_eq!(at("2027-03-01T01:00:00+01:00"), at("2027-03-01"));
        assert_eq!(at("2027-03-01").to_string(), "2027-03-01T00:00:00.000Z");
        assert!(Instant::parse("9999-12-31").unwrap_err().contains("beyond"));
        for bad in [
            "2027-02-30",
            "2027-3-1",
            "tomorrow",
            "2027-03-01T00:00:00",
            "",
        ] {
            assert!(Instant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_window_includes_its_start_and_excludes_its_end() {
        let w = Window {
            effective: Some(at("2027-03-01")),
            expires: Some(at("2027-06-01")),
            extended: None,
        };
        let second = std::time::Duration::from_secs(1);
        assert!(!w.applies(at("2027-02-28T23:59:59Z")));
        assert!(w.applies(at("2027-03-01")));
        assert!(w.applies(at("2027-05-31T23:59:59Z")));
        assert!(!w.applies(at("2027-06-01")));
        assert_eq!(w.state(at("2027-01-01")), MeasureState::Scheduled);
        assert_eq!(w.state(at("2027-03-01")), MeasureState::InForce);
        assert_eq!(w.state(at("2027-06-01")), MeasureState::Expired);
        assert_eq!(w.next_change(at("2027-01-01")), Some(at("2027-03-01")));
        assert_eq!(
            w.next_change(at("2027-03-01")),
            Some(at("2027-06-01")),
            "the start itself is no longer ahead"
        );
        assert_eq!(w.next_change(at("2027-06-01").plus(second)), None);
        assert!(Window::default().applies(at("1970-01-01")));
        assert!(!Window::default().is_dated());
    }

    #[test]
    fn an_end_not_after_the_start_is_an_error_and_a_long_window_a_warning() {
        let window = |e: Option<&str>, x: Option<&str>, extended: Option<&str>| Window {
            effective: e.map(at),
            expires: x.map(at),
            extended: extended.map(Arc::from),
        };
        assert!(
            window(Some("2027-03-01"), Some("2027-03-01"), None)
                .error()
                .is_some()
        );
        assert!(
            window(Some("2027-03-01"), Some("2027-02-01"), None)
                .error()
                .is_some()
        );
        assert!(
            window(Some("2027-03-01"), Some("2028-02-29"), None)
                .error()
                .is_none()
        );
        // 2027-03-01 to 2028-02-29 is 365 days (2028 is a leap year).
        assert!(
            window(Some("2027-03-01"), Some("2028-02-29"), None)
                .warning()
                .is_none()
        );
        let long = window(Some("2027-03-01"), Some("2028-03-02"), None);
        assert!(long.warning().unwrap().contains("367 days"));
        assert!(
            window(Some("2027-03-01"), Some("2028-03-02"), Some("FR 2028-1"))
                .warning()
                .is_none()
        );
        assert!(window(Some("2027-03-01"), None, None).warning().is_some());
        // A second over 365 days is over.
        let just_over = window(Some("2027-03-01"), Some("2028-02-29T00:00:01Z"), None);
        assert!(just_over.warning().unwrap().contains("366 days"));
        assert!(window(None, Some("2027-03-01"), None).warning().is_none());
    }
}
