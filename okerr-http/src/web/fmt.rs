//! Times and ages in words, as okerr writes them (`shorttd`: `1h1m`, `2days 3h`).

use chrono::{DateTime, Utc};
use okerr::pyfmt::shorttd;

/// A length of time in okerr's short words; under two seconds is `0s`/`1s`.
pub(crate) fn span(secs: i64) -> String {
    let words = shorttd(secs);
    if words.is_empty() {
        format!("{}s", secs.max(0))
    } else {
        words
    }
}

/// How long ago `t` was: `5m ago` (or `in 5m` for a time still ahead).
pub(crate) fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    if secs > 0 {
        format!("in {}", span(secs))
    } else {
        format!("{} ago", span(-secs))
    }
}

/// The exact time, in UTC.
pub(crate) fn exact(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn words() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(-3), "0s");
        assert_eq!(span(90), "1m30s");
        let now = DateTime::<Utc>::default();
        assert_eq!(relative(now + TimeDelta::seconds(3700), now), "in 1h1m");
        assert_eq!(relative(now - TimeDelta::seconds(61), now), "1m ago");
        assert_eq!(exact(now), "1970-01-01 00:00:00 UTC");
    }
}
