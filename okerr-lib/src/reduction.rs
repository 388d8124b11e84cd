//! Alert reduction schedules (okerr's `TimeStr`).
//!
//! A schedule is `DEFAULT (HH:MM-HH:MM VALUE)*`, split shell-style, where
//! `DEFAULT` and every `VALUE` are [`Interval`]s. At a given moment the first
//! window containing the current UTC minute of the day gives the delay,
//! otherwise the default applies. Both window ends are inclusive and windows do
//! not wrap past midnight.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::Interval;

/// A parsed alert reduction schedule, keeping the text as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reduction {
    default: Interval,
    windows: Vec<ReductionWindow>,
    text: String,
}

/// A daily UTC time window with its own delay (minute precision).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReductionWindow {
    /// First minute of the window (inclusive).
    pub start: NaiveTime,
    /// Last minute of the window (inclusive).
    pub end: NaiveTime,
    /// Delay applied while the window is active.
    pub delay: Interval,
}

/// Error for a string that is not a valid alert reduction schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Incorrect alert reduction. Example:\n0s or\n0s 00:30-02:00 5m 14:00-14:30 10s")]
pub struct ReductionError;

impl Reduction {
    /// Parses a schedule such as `0s 00:30-02:00 5m 14:00-14:30 10s`.
    ///
    /// Empty or blank input is an error: "no reduction" is the caller's `None`.
    pub fn parse(s: &str) -> Result<Reduction, ReductionError> {
        let (default, windows) = parse_parts(s)?;
        Ok(Reduction {
            default,
            windows,
            text: s.to_owned(),
        })
    }

    /// The delay in force at `now`: the first window containing the UTC time
    /// of day (`HH:MM`, seconds ignored), else the default.
    pub fn delay_at(&self, now: DateTime<Utc>) -> &Interval {
        let minute = minute_of_day(&now);
        self.windows
            .iter()
            .find(|w| minute_of_day(&w.start) <= minute && minute <= minute_of_day(&w.end))
            .map_or(&self.default, |w| &w.delay)
    }

    /// The delay outside every window.
    pub fn default_delay(&self) -> &Interval {
        &self.default
    }

    /// The windows, in the order written.
    pub fn windows(&self) -> &[ReductionWindow] {
        &self.windows
    }

    /// The text as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn minute_of_day(t: &impl Timelike) -> u32 {
    t.hour() * 60 + t.minute()
}

fn parse_parts(s: &str) -> Result<(Interval, Vec<ReductionWindow>), ReductionError> {
    let tokens = shlex::split(s).ok_or(ReductionError)?;
    let (default, rest) = tokens.split_first().ok_or(ReductionError)?;
    let default = Interval::parse(default).map_err(|_| ReductionError)?;
    let windows = rest
        .chunks(2)
        .map(|pair| match pair {
            [range, delay] => {
                let (start, end) = parse_range(range)?;
                let delay = Interval::parse(delay).map_err(|_| ReductionError)?;
                Ok(ReductionWindow { start, end, delay })
            }
            _ => Err(ReductionError),
        })
        .collect::<Result<_, _>>()?;
    Ok((default, windows))
}

/// Parses `HH:MM-HH:MM`.
fn parse_range(token: &str) -> Result<(NaiveTime, NaiveTime), ReductionError> {
    let (start, end) = token.split_once('-').ok_or(ReductionError)?;
    Ok((parse_hhmm(start)?, parse_hhmm(end)?))
}

/// Parses `HH:MM` with exactly two digits each (00-23, 00-59).
fn parse_hhmm(text: &str) -> Result<NaiveTime, ReductionError> {
    let (h, m) = text.split_once(':').ok_or(ReductionError)?;
    two_digits(h)
        .zip(two_digits(m))
        .and_then(|(h, m)| NaiveTime::from_hms_opt(h, m, 0))
        .ok_or(ReductionError)
}

/// Parses exactly two ASCII digits.
fn two_digits(s: &str) -> Option<u32> {
    match s.as_bytes() {
        &[a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

impl fmt::Display for Reduction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Reduction {
    type Err = ReductionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reduction::parse(s)
    }
}

impl TryFrom<String> for Reduction {
    type Error = ReductionError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let (default, windows) = parse_parts(&text)?;
        Ok(Reduction {
            default,
            windows,
            text,
        })
    }
}

impl From<Reduction> for String {
    fn from(reduction: Reduction) -> String {
        reduction.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as ValueError, StringDeserializer};

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 15, h, m, s)
            .single()
            .expect("valid time")
    }

    fn delay(r: &Reduction, h: u32, m: u32, s: u32) -> &str {
        r.delay_at(at(h, m, s)).as_str()
    }

    #[test]
    fn single_window() {
        let r = Reduction::parse("0s 00:30-02:00 5m").expect("valid");
        let table = [
            ((0, 0, 0), "0s"),
            ((0, 29, 59), "0s"),
            ((0, 30, 0), "5m"),
            ((1, 0, 0), "5m"),
            ((2, 0, 0), "5m"),
            ((2, 0, 59), "5m"),
            ((2, 1, 0), "0s"),
            ((23, 59, 59), "0s"),
        ];
        for ((h, m, s), expected) in table {
            assert_eq!(delay(&r, h, m, s), expected, "{h:02}:{m:02}:{s:02}");
        }
    }

    #[test]
    fn documented_example() {
        let r = Reduction::parse("0s 00:30-02:00 5m 14:00-14:30 10s").expect("valid");
        assert_eq!(r.default_delay().as_secs(), 0);
        assert_eq!(r.windows().len(), 2);
        assert_eq!(
            r.windows()[1],
            ReductionWindow {
                start: NaiveTime::from_hms_opt(14, 0, 0).expect("valid"),
                end: NaiveTime::from_hms_opt(14, 30, 0).expect("valid"),
                delay: Interval::parse("10s").expect("valid"),
            }
        );
        assert_eq!(delay(&r, 1, 0, 0), "5m");
        assert_eq!(delay(&r, 14, 15, 0), "10s");
        assert_eq!(delay(&r, 14, 31, 0), "0s");
        assert_eq!(r.as_str(), "0s 00:30-02:00 5m 14:00-14:30 10s");
        assert_eq!(r.to_string(), r.as_str());
    }

    #[test]
    fn default_only_and_first_match_wins() {
        let r = Reduction::parse("  1h ").expect("valid");
        assert_eq!(delay(&r, 12, 0, 0), "1h");
        assert!(r.windows().is_empty());

        let r = Reduction::parse("0 10:00-12:00 1m 11:00-11:30 2m").expect("valid");
        assert_eq!(delay(&r, 11, 15, 0), "1m");
        assert_eq!(delay(&r, 9, 59, 0), "0");
    }

    #[test]
    fn windows_do_not_wrap() {
        let r = Reduction::parse("0s 23:00-01:00 5m").expect("start > end is accepted");
        for (h, m) in [(23, 0), (23, 30), (0, 0), (0, 30), (1, 0), (12, 0)] {
            assert_eq!(delay(&r, h, m, 0), "0s", "{h:02}:{m:02}");
        }
    }

    #[test]
    fn shell_style_tokens() {
        let r = Reduction::parse("0s '00:30-02:00' \"5m\"").expect("valid");
        assert_eq!(delay(&r, 1, 0, 0), "5m");
        assert_eq!(Reduction::parse("0s '00:30-02:00 5m"), Err(ReductionError));
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "   ",
            "abc",
            "0s 00:30-02:00",
            "0s 25:00-26:00 5m",
            "0s 00:30 5m",
            "0s 00:30-02:00 5x",
            "0s 0:30-02:00 5m",
            "0s 00:60-02:00 5m",
            "0s 00:30-24:00 5m",
            "0s 00:30-02:00-03:00 5m",
            "0s +0:30-02:00 5m",
            "0s 00:30-02:00 5m 14:00-14:30",
            "5m 0s",
        ] {
            assert_eq!(Reduction::parse(text), Err(ReductionError), "{text:?}");
        }
    }

    #[test]
    fn error_message() {
        assert_eq!(
            ReductionError.to_string(),
            "Incorrect alert reduction. Example:\n0s or\n0s 00:30-02:00 5m 14:00-14:30 10s"
        );
    }

    #[test]
    fn string_conversions() {
        let text = "0s 00:30-02:00 5m";
        let r: Reduction = text.parse().expect("valid");
        assert_eq!(Reduction::try_from(text.to_owned()), Ok(r.clone()));
        assert_eq!(String::from(r), text);
    }

    #[test]
    fn serde_uses_text() {
        let de: StringDeserializer<ValueError> = "0s 00:30-02:00 5m".to_owned().into_deserializer();
        let r = Reduction::deserialize(de).expect("valid");
        assert_eq!(delay(&r, 1, 0, 0), "5m");
        let de: StringDeserializer<ValueError> = "0s 00:30".to_owned().into_deserializer();
        let err = Reduction::deserialize(de).expect_err("invalid");
        assert!(
            err.to_string().starts_with("Incorrect alert reduction"),
            "{err}"
        );
    }

    fn hhmm(minute: u32) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn delay_is_default_or_first_containing_window(
            default in 0u64..100_000,
            windows in prop::collection::vec((0u32..1440, 0u32..1440, 0u64..100_000), 0..5),
            secs_of_day in 0u32..86_400,
        ) {
            let mut text = format!("{default}s");
            for (start, end, d) in &windows {
                text.push_str(&format!(" {}-{} {d}", hhmm(*start), hhmm(*end)));
            }
            let r = Reduction::parse(&text).expect("generated schedule is valid");
            let now = at(secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
            let got = r.delay_at(now);

            let minute = secs_of_day / 60;
            let containing = windows.iter().position(|(s, e, _)| *s <= minute && minute <= *e);
            match containing {
                Some(i) => prop_assert!(std::ptr::eq(got, &r.windows()[i].delay)),
                None => prop_assert!(std::ptr::eq(got, r.default_delay())),
            }
        }
    }
}
