//! Server-wide settings that okerr took from plans.

use chrono::{DateTime, Utc};

use crate::duration::Interval;
use crate::project::Project;

/// Server-wide limits. okerr took them from the owner's plan (`minperiod` 3600 s, patience
/// at least 300 s, `maxindicators`); here they are server settings. Periods are not bounded
/// by default, so short periods work; indicators are (see `docs/operations.md`, "Abuse
/// limits").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Periods shorter than this count as this long.
    pub min_period: Interval,
    /// Patience shorter than this counts as this long.
    pub min_patience: Interval,
    /// The most indicators of a project that sets no limit of its own
    /// ([`Project::max_indicators`]); `None`: no limit.
    pub max_indicators: Option<u32>,
    /// How fast updates may create indicators in one project; `None`: as fast as they come.
    pub autocreate_rate: Option<AutocreateRate>,
    /// Whether users may give indicators an active method (`httpstatus`, `sslcert`, …):
    /// the engine sets it when it has a [`Sensor`](crate::Sensor) to run them; set it
    /// for an engine that only writes for a server that runs them (an admin command). A
    /// method line of `/update` never creates one (see `CheckMethod::parse_line`).
    pub active_checks: bool,
}

/// The default of [`Settings::max_indicators`].
pub const DEFAULT_MAX_INDICATORS: u32 = 1000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_period: Interval::from_secs(0),
            min_patience: Interval::from_secs(0),
            max_indicators: Some(DEFAULT_MAX_INDICATORS),
            autocreate_rate: Some(AutocreateRate::default()),
            active_checks: false,
        }
    }
}

impl Settings {
    /// okerr's own limits: period at least 3600 s, patience at least 300 s.
    pub fn okerr_plan() -> Self {
        Settings {
            min_period: Interval::from_secs(3600),
            min_patience: Interval::from_secs(300),
            ..Settings::default()
        }
    }

    /// No limit on indicators or on how fast they are created (benchmarks, embedders that
    /// trust every sender).
    pub fn unlimited(self) -> Self {
        Settings {
            max_indicators: None,
            autocreate_rate: None,
            ..self
        }
    }

    /// The most indicators `project` may have: its own limit, else the server's.
    pub fn indicator_limit(&self, project: &Project) -> Option<u32> {
        project.max_indicators.or(self.max_indicators)
    }
}

/// A token bucket per project: up to `burst` indicators at once, then `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutocreateRate {
    /// How many indicators a project may create at once.
    pub burst: u32,
    /// How many more it may create each minute once the burst is spent.
    pub per_minute: u32,
}

impl Default for AutocreateRate {
    /// 100 at once, then 20 a minute.
    fn default() -> Self {
        AutocreateRate {
            burst: 100,
            per_minute: 20,
        }
    }
}

/// One token of a [`Bucket`]: a minute in unitseconds, so that a refill of `per_minute`
/// tokens a minute is exactly `per_minute` units a unitsecond (no rounding is lost).
const TOKEN: u64 = 60_000;

/// The state of one project's bucket: tokens left (in `TOKEN` units) when last looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    units: u64,
    at: DateTime<Utc>,
}

impl Bucket {
    /// A full bucket.
    pub fn full(rate: AutocreateRate, now: DateTime<Utc>) -> Self {
        Bucket {
            units: u64::from(rate.burst) * TOKEN,
            at: now,
        }
    }

    /// Takes one token at `now`, after the refill since the last look; `false` when the
    /// bucket is empty (nothing is taken then). A clock that went back refills nothing.
    pub fn take(&mut self, rate: AutocreateRate, now: DateTime<Utc>) -> bool {
        self.refill(rate, now);
        if self.units >= TOKEN {
            self.units -= TOKEN;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full at `now` (then forgetting it changes nothing).
    pub fn is_full(&self, rate: AutocreateRate, now: DateTime<Utc>) -> bool {
        let mut b = *self;
        b.refill(rate, now);
        b.units >= u64::from(rate.burst) * TOKEN
    }

    fn refill(&mut self, rate: AutocreateRate, now: DateTime<Utc>) {
        if now > self.at {
            let elapsed_ms = u64::try_from((now - self.at).num_milliseconds()).unwrap_or(0);
            let refill = elapsed_ms.saturating_mul(u64::from(rate.per_minute));
            let cap = u64::from(rate.burst) * TOKEN;
            self.units = self.units.saturating_add(refill).min(cap);
            self.at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn a_bucket_gives_the_burst_then_the_rate() {
        let rate = AutocreateRate {
            burst: 3,
            per_minute: 2,
        };
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut b = Bucket::full(rate, t0);
        assert!((0..3).all(|_| b.take(rate, t0)));
        assert!(!b.take(rate, t0), "the burst is spent");
        assert!(!b.take(rate, t0 + TimeDelta::seconds(29)));
        assert!(
            b.take(rate, t0 + TimeDelta::seconds(30)),
            "one token in 30 s"
        );
        assert!(!b.take(rate, t0 + TimeDelta::seconds(30)));
        let later = t0 + TimeDelta::hours(1);
        assert!(
            (0..3).all(|_| b.take(rate, later)),
            "refilled up to the burst"
        );
        assert!(!b.take(rate, later), "never above the burst");
        assert!(!b.take(rate, t0), "a clock that went back refills nothing");
    }
}
