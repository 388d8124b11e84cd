//! Times serialized as chrono's serde does (RFC 3339, `Z`, 0, 3, 6 or 9 digits of
//! fraction as needed), byte for byte, without chrono's `Display` machinery: every commit
//! serializes five times of its indicator, and chrono's formatting through `fmt` was a
//! twentieth of an update's instructions. Years outside 0–9999 and leap seconds, which
//! chrono writes in its own way, go through chrono.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// `t` as chrono's `Serialize` writes it.
pub(crate) fn rfc3339(t: &DateTime<Utc>) -> String {
    let nanos = t.nanosecond();
    let Ok(year) = u32::try_from(t.year()) else {
        return t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    };
    if year > 9999 || nanos >= 1_000_000_000 {
        return t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    }
    let mut out = String::with_capacity(30);
    let mut digits = |value: u32, n: u32, after: Option<char>| {
        for i in (0..n).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(i) % 10) as u8));
        }
        if let Some(c) = after {
            out.push(c);
        }
    };
    digits(year, 4, Some('-'));
    digits(t.month(), 2, Some('-'));
    digits(t.day(), 2, Some('T'));
    digits(t.hour(), 2, Some(':'));
    digits(t.minute(), 2, Some(':'));
    if nanos == 0 {
        digits(t.second(), 2, Some('Z'));
    } else {
        digits(t.second(), 2, Some('.'));
        if nanos.is_multiple_of(1_000_000) {
            digits(nanos / 1_000_000, 3, Some('Z'));
        } else if nanos.is_multiple_of(1_000) {
            digits(nanos / 1_000, 6, Some('Z'));
        } else {
            digits(nanos, 9, Some('Z'));
        }
    }
    out
}

/// `serialize_with` for a time.
pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

/// `serialize_with` for an optional time.
#[allow(clippy::ref_option)]
pub(crate) fn serialize_opt<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&rfc3339(t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::rfc3339;

    fn chrono_serde(t: &chrono::DateTime<Utc>) -> String {
        let json = serde_json::to_string(t).unwrap_or_default();
        json.trim_matches('"').to_owned()
    }

    #[test]
    fn the_four_fraction_lengths_and_the_edges() {
        let base = Utc.with_ymd_and_hms(2026, 12, 1, 16, 5, 9).single();
        let Some(base) = base else {
            panic!("a valid time");
        };
        for (nanos, expected) in [
            (0, "2026-12-01T16:05:09Z"),
            (120_000_000, "2026-12-01T16:05:09.120Z"),
            (120_500_000, "2026-12-01T16:05:09.120500Z"),
            (312_198_853, "2026-12-01T16:05:09.312198853Z"),
            (1_000, "2026-12-01T16:05:09.000001Z"),
        ] {
            let t = base + chrono::TimeDelta::nanoseconds(nanos);
            assert_eq!(rfc3339(&t), expected);
            assert_eq!(rfc3339(&t), chrono_serde(&t));
        }
        for t in [
            chrono::DateTime::<Utc>::MIN_UTC,
            chrono::DateTime::<Utc>::MAX_UTC,
            chrono::DateTime::<Utc>::UNIX_EPOCH,
        ] {
            assert_eq!(rfc3339(&t), chrono_serde(&t));
        }
    }

    proptest! {
        #[test]
        fn as_chrono_writes_it(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..2_000_000_000, round in 0u8..4) {
            let nanos = match round {
                0 => 0,
                1 => nanos / 1_000_000 * 1_000_000,
                2 => nanos / 1_000 * 1_000,
                _ => nanos,
            };
            if let Some(t) = chrono::DateTime::<Utc>::from_timestamp(secs, nanos) {
                prop_assert_eq!(rfc3339(&t), chrono_serde(&t));
            }
        }
    }
}
