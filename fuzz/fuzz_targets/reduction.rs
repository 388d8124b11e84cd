//! Alert reduction schedules (`Reduction::parse`: `0s 00:30-02:00 5m 14:00-14:30 10s`).
//!
//! Input: the schedule.
//!
//! Properties: a schedule that parses keeps its text; written again in the canonical form
//! (`DEFAULT HH:MM-HH:MM VALUE …`) and through JSON it parses to the same default and
//! windows; at the first and last minute of each window, at midnight and at 23:59,
//! `delay_at` gives the first window containing that minute, else the default.
#![no_main]

use chrono::{NaiveDate, NaiveTime, Timelike};
use libfuzzer_sys::fuzz_target;
use okerr::Reduction;

fn minute(t: NaiveTime) -> u32 {
    t.hour() * 60 + t.minute()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reduction) = Reduction::parse(text) else {
        return;
    };
    assert_eq!(reduction.as_str(), text);
    let mut written = reduction.default_delay().as_str().to_owned();
    for w in reduction.windows() {
        written.push_str(&format!(
            " {}-{} {}",
            w.start.format("%H:%M"),
            w.end.format("%H:%M"),
            w.delay.as_str()
        ));
    }
    let again = Reduction::parse(&written)
        .unwrap_or_else(|e| panic!("{written:?} (from {text:?}) does not parse: {e}"));
    assert_eq!(again.default_delay(), reduction.default_delay());
    assert_eq!(again.windows(), reduction.windows(), "{written:?}");
    let json = serde_json::to_string(&reduction).expect("serializes");
    let back: Reduction = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, reduction);
    let day = NaiveDate::from_ymd_opt(2024, 3, 15).expect("a date");
    let mut moments: Vec<NaiveTime> = vec![
        NaiveTime::MIN,
        NaiveTime::from_hms_opt(23, 59, 59).expect("a time"),
    ];
    for w in reduction.windows() {
        moments.extend([w.start, w.end]);
    }
    for t in moments {
        let expected = reduction
            .windows()
            .iter()
            .find(|w| minute(w.start) <= minute(t) && minute(t) <= minute(w.end))
            .map_or(reduction.default_delay(), |w| &w.delay);
        let at = day.and_time(t).and_utc();
        assert_eq!(reduction.delay_at(at), expected, "at {t} in {text:?}");
    }
});
