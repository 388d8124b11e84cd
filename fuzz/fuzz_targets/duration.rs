//! okerr's time strings (`Interval::parse`: `10s`, `5m`, `2hr`, `1h30m`, `3600`).
//!
//! Input: the string.
//!
//! Properties: every string of okerr's own grammar,
//! `^(\d+)(h|m|s|hour|hours|hr|min|minute|minutes|sec|seconds)?$` with ASCII digits,
//! parses to okerr's value (when it fits the documented `u32` of seconds); what parses
//! keeps its text, fits in a `u32`, and parses again from its text, from its JSON, from
//! `from_secs` and from a compound form (`1w2d3h4m5s`) of its seconds to the same length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okerr::Interval;

/// okerr's value for its own grammar, by okerr's regular expression written out.
fn okerr_value(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let unit = match &s[digits..] {
        "" | "s" | "sec" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" | "hr" => 3600,
        _ => return None,
    };
    let n: u64 = s[..digits].parse().ok()?;
    n.checked_mul(unit).filter(|v| *v <= u64::from(u32::MAX))
}

/// `secs` written with every unit, largest first (`0s` for zero).
fn compound(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected = okerr_value(text);
    let interval = match Interval::parse(text) {
        Ok(i) => i,
        Err(e) => {
            assert_eq!(expected, None, "okerr reads {text:?}");
            assert_eq!(e.text(), text);
            return;
        }
    };
    let secs = interval.as_secs();
    if let Some(v) = expected {
        assert_eq!(secs, v, "{text:?}");
    }
    assert_eq!(interval.as_str(), text);
    assert!(secs <= u64::from(u32::MAX));
    assert_eq!(
        Interval::parse(&interval.to_string()).as_ref(),
        Ok(&interval)
    );
    let json = serde_json::to_string(&interval).expect("serializes");
    let back: Interval = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, interval);
    let plain = Interval::from_secs(secs);
    assert_eq!(
        Interval::parse(plain.as_str()).map(|i| i.as_secs()),
        Ok(secs)
    );
    let written = compound(secs);
    assert_eq!(
        Interval::parse(&written).map(|i| i.as_secs()),
        Ok(secs),
        "{written:?}"
    );
    assert_eq!(
        interval.to_chrono().num_seconds(),
        i64::try_from(secs).expect("fits")
    );
});
