//! okerr time strings such as `10s`, `5m`, `2hr` or `1h30m`.
//!
//! The grammar accepted by okerr itself is
//! `^(\d+)(h|m|s|hour|hours|hr|min|minute|minutes|sec|seconds)?$` (ASCII digits,
//! case-sensitive, no whitespace, no unit meaning seconds); every such string
//! parses to exactly okerr's value. On top of that we accept the units
//! `d`/`day`/`days` and `w`/`week`/`weeks`, and compound forms made of two or
//! more `<digits><unit>` groups with strictly decreasing units (`1h30m`,
//! `1w2d3h4m5s`). The total must fit in a `u32` number of seconds.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// Unit names and their size in seconds.
const UNITS: &[(&str, u64)] = &[
    ("w", 604_800),
    ("week", 604_800),
    ("weeks", 604_800),
    ("d", 86_400),
    ("day", 86_400),
    ("days", 86_400),
    ("h", 3_600),
    ("hour", 3_600),
    ("hours", 3_600),
    ("hr", 3_600),
    ("m", 60),
    ("min", 60),
    ("minute", 60),
    ("minutes", 60),
    ("s", 1),
    ("sec", 1),
    ("seconds", 1),
];

/// A duration written in okerr's time syntax, keeping the text as written.
///
/// Two intervals are equal only if both the number of seconds and the text
/// are equal (`60s` and `1m` differ).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Interval {
    secs: u64,
    text: String,
}

/// Error for a string that is not a valid okerr time string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Cannot parse '{text}'. Valid examples are: 10s, 5m, 2h")]
pub struct DurationError {
    text: String,
}

impl DurationError {
    /// The rejected input.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Interval {
    /// Parses an okerr time string (`3600`, `30min`, `2hr`, `1d12h`, ...).
    pub fn parse(s: &str) -> Result<Interval, DurationError> {
        match total_secs(s) {
            Some(secs) => Ok(Interval {
                secs,
                text: s.to_owned(),
            }),
            None => Err(DurationError { text: s.to_owned() }),
        }
    }

    /// An interval of `secs` seconds, written as `{secs}s`.
    ///
    /// The text parses back to the same interval when `secs` fits in a `u32`.
    pub fn from_secs(secs: u64) -> Interval {
        Interval {
            secs,
            text: format!("{secs}s"),
        }
    }

    /// The length in seconds.
    pub fn as_secs(&self) -> u64 {
        self.secs
    }

    /// The length as a chrono duration (saturating at [`TimeDelta::MAX`]).
    pub fn to_chrono(&self) -> TimeDelta {
        i64::try_from(self.secs)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .unwrap_or(TimeDelta::MAX)
    }

    /// The text as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Number of seconds denoted by `s`, or `None` if `s` is not valid.
fn total_secs(s: &str) -> Option<u64> {
    let mut rest = s.as_bytes();
    let mut total: u64 = 0;
    let mut groups = 0usize;
    let mut previous_unit = u64::MAX;
    let mut unitless = false;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let letters = rest[digits..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if digits == 0 {
            return None;
        }
        let value = rest[..digits].iter().try_fold(0u64, |acc, b| {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })?;
        let unit = if letters == 0 {
            unitless = true;
            1
        } else {
            let name = &rest[digits..digits + letters];
            UNITS
                .iter()
                .find(|(unit_name, _)| unit_name.as_bytes() == name)?
                .1
        };
        if unit >= previous_unit {
            return None;
        }
        previous_unit = unit;
        total = total.checked_add(value.checked_mul(unit)?)?;
        if total > u64::from(u32::MAX) {
            return None;
        }
        groups += 1;
        rest = &rest[digits + letters..];
    }
    // A unitless group is only allowed as the sole group (okerr's `3600`).
    (groups == 1 || (groups > 1 && !unitless)).then_some(total)
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Interval {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::parse(s)
    }
}

impl TryFrom<String> for Interval {
    type Error = DurationError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match total_secs(&text) {
            Some(secs) => Ok(Interval { secs, text }),
            None => Err(DurationError { text }),
        }
    }
}

impl From<Interval> for String {
    fn from(interval: Interval) -> String {
        interval.text
    }
}

/// okerr's retry schedule (`retry_schedule`, `recovery_retry_schedule`): space-separated
/// delays (`30s 5m`, `30 600`). A status change of an active indicator (logic here) waits
/// each delay in turn and is committed only once the list is spent (spec §7.2).
///
/// okerr validates the tokens lowercased but parses them as stored, so `30S` passes its
/// check and then fails; here the lowercased token is what is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RetrySchedule {
    delays: Vec<Interval>,
}

impl RetrySchedule {
    /// Parses a schedule; an empty or blank text is the empty schedule.
    ///
    /// # Errors
    /// okerr's text for the first token that is no time string:
    /// `Cannot parse '{tok}'. Valid examples are: 10s, 5m, 2h`.
    pub fn parse(s: &str) -> Result<RetrySchedule, DurationError> {
        let delays = s
            .split_whitespace()
            .map(|tok| {
                Interval::parse(&tok.to_lowercase()).map_err(|_| DurationError {
                    text: tok.to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(RetrySchedule { delays })
    }

    /// The delays in order.
    pub fn delays(&self) -> &[Interval] {
        &self.delays
    }

    /// Whether there is no delay (changes are committed at once).
    pub fn is_empty(&self) -> bool {
        self.delays.is_empty()
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<&str> = self.delays.iter().map(Interval::as_str).collect();
        f.write_str(&texts.join(" "))
    }
}

impl TryFrom<String> for RetrySchedule {
    type Error = DurationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RetrySchedule::parse(&s)
    }
}

impl From<RetrySchedule> for String {
    fn from(r: RetrySchedule) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as ValueError, StringDeserializer};

    /// okerr's unit suffixes, as in its regex.
    const OKERR_UNITS: &[&str] = &[
        "h", "m", "s", "hour", "hours", "hr", "min", "minute", "minutes", "sec", "seconds",
    ];

    /// Independent model of okerr's `timesuffix2sec`: the regex check, then
    /// the first letter of the suffix picks the multiplier. Returns the
    /// unbounded value (okerr has no upper limit).
    fn okerr_reference(s: &str) -> Option<u128> {
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, suffix) = s.split_at(split);
        if digits.is_empty() || (!suffix.is_empty() && !OKERR_UNITS.contains(&suffix)) {
            return None;
        }
        let n: u128 = digits.parse().ok()?;
        let multiplier = match suffix.chars().next() {
            None | Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some(_) => return None,
        };
        Some(n * multiplier)
    }

    fn secs(s: &str) -> Result<u64, DurationError> {
        Interval::parse(s).map(|i| i.as_secs())
    }

    #[test]
    fn accepts_okerr_forms() {
        let table: &[(&str, u64)] = &[
            ("3600", 3600),
            ("3600s", 3600),
            ("30min", 1800),
            ("2hr", 7200),
            ("0", 0),
            ("0s", 0),
            ("10s", 10),
            ("5m", 300),
            ("2h", 7200),
            ("1hour", 3600),
            ("3hours", 10800),
            ("1minute", 60),
            ("2minutes", 120),
            ("7sec", 7),
            ("9seconds", 9),
            ("0005m", 300),
            ("000000000000000000000000000005m", 300),
            ("4294967295", 4_294_967_295),
            ("1193046h", 4_294_965_600),
        ];
        for &(text, expected) in table {
            assert_eq!(secs(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn accepts_extensions() {
        let table: &[(&str, u64)] = &[
            ("1d", 86_400),
            ("2day", 172_800),
            ("3days", 259_200),
            ("1w", 604_800),
            ("1week", 604_800),
            ("2weeks", 1_209_600),
            ("1h30m", 5400),
            ("1d12h", 129_600),
            ("1w2d3h4m5s", 788_645),
            ("1hour30minutes", 5400),
            ("1h0m", 3600),
            ("2m30s", 150),
        ];
        for &(text, expected) in table {
            assert_eq!(secs(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            " 1h",
            "1h ",
            "1H",
            "1h 30m",
            "-5",
            "+5",
            "1.5h",
            "h",
            "30m1h",
            "1h1h",
            "1h1hr",
            "1h30",
            "30 ",
            "1hh",
            "1x",
            "10\n",
            "٣",
            "4294967296",
            "1193047h",
            "99999999999999999999999999999h",
            "99999999999999999999",
            "7102w",
        ] {
            let err = Interval::parse(text).expect_err(text);
            assert_eq!(err.text(), text);
        }
    }

    #[test]
    fn error_message() {
        let err = Interval::parse("1.5h").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "Cannot parse '1.5h'. Valid examples are: 10s, 5m, 2h"
        );
    }

    #[test]
    fn keeps_text_and_converts() {
        let interval: Interval = "30min".parse().expect("valid");
        assert_eq!(interval.as_str(), "30min");
        assert_eq!(interval.to_string(), "30min");
        assert_eq!(interval.to_chrono(), TimeDelta::minutes(30));
        assert_eq!(String::from(interval.clone()), "30min");
        assert_ne!(interval, Interval::from_secs(1800));
        assert_eq!(Interval::from_secs(1800).as_str(), "1800s");
        assert_eq!(Interval::from_secs(u64::MAX).to_chrono(), TimeDelta::MAX);
        assert_eq!(Interval::try_from("2h".to_owned()), Interval::parse("2h"));
    }

    #[test]
    fn serde_uses_text() {
        let de: StringDeserializer<ValueError> = "1h30m".to_owned().into_deserializer();
        let interval = Interval::deserialize(de).expect("valid");
        assert_eq!((interval.as_secs(), interval.as_str()), (5400, "1h30m"));
        let de: StringDeserializer<ValueError> = "1x".to_owned().into_deserializer();
        let err = Interval::deserialize(de).expect_err("invalid");
        assert!(err.to_string().contains("Cannot parse '1x'"), "{err}");
    }

    /// Unit groups for compound forms, largest first: every name of a unit.
    fn unit_names() -> Vec<(Vec<&'static str>, u64)> {
        vec![
            (vec!["w", "week", "weeks"], 604_800),
            (vec!["d", "day", "days"], 86_400),
            (vec!["h", "hour", "hours", "hr"], 3_600),
            (vec!["m", "min", "minute", "minutes"], 60),
            (vec!["s", "sec", "seconds"], 1),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn okerr_regex_strings_match_reference(
            digits in "[0-9]{1,9}",
            unit in prop::sample::select(
                [&[""][..], OKERR_UNITS].concat()
            ),
        ) {
            let text = format!("{digits}{unit}");
            let expected = okerr_reference(&text).expect("generated from okerr's regex");
            match u64::try_from(expected) {
                Ok(v) if v <= u64::from(u32::MAX) => prop_assert_eq!(secs(&text), Ok(v)),
                _ => prop_assert!(Interval::parse(&text).is_err()),
            }
        }

        #[test]
        fn arbitrary_strings_agree_with_okerr(
            text in prop_oneof!["\\PC{0,12}", "[0-9 ]{0,4}[a-zA-Z]{0,8}", any::<String>()],
        ) {
            let parsed = Interval::parse(&text);
            if let Some(expected) = okerr_reference(&text)
                && expected <= u128::from(u32::MAX)
            {
                prop_assert_eq!(parsed.map(|i| u128::from(i.as_secs())), Ok(expected));
            }
        }

        #[test]
        fn from_secs_round_trips(n in 0..=u64::from(u32::MAX)) {
            let interval = Interval::from_secs(n);
            prop_assert_eq!(Interval::parse(&interval.to_string()), Ok(interval));
        }

        #[test]
        fn compound_forms_sum(
            picks in prop::collection::vec(
                (any::<bool>(), 0u64..=1000, any::<prop::sample::Index>()),
                5,
            ),
        ) {
            let mut text = String::new();
            let mut expected = 0;
            let mut groups = 0;
            for ((names, size), (used, value, name)) in unit_names().into_iter().zip(picks) {
                if used {
                    text.push_str(&format!("{value}{}", name.get(&names)));
                    expected += value * size;
                    groups += 1;
                }
            }
            prop_assume!(groups >= 2);
            prop_assert_eq!(secs(&text), Ok(expected), "{}", text);
        }
    }

    #[test]
    fn retry_schedules() {
        let r = RetrySchedule::parse(" 30s  5m 600 ").expect("valid");
        let secs: Vec<u64> = r.delays().iter().map(Interval::as_secs).collect();
        assert_eq!(secs, [30, 300, 600]);
        assert_eq!(r.to_string(), "30s 5m 600");
        assert_eq!(
            RetrySchedule::parse("30S").expect("lowercased").to_string(),
            "30s"
        );
        assert!(RetrySchedule::parse("").expect("empty").is_empty());
        assert_eq!(
            RetrySchedule::parse("30s 5x").expect_err("bad").to_string(),
            "Cannot parse '5x'. Valid examples are: 10s, 5m, 2h"
        );
    }
}
