//! Texts formatted exactly as okerr's Python code formats them.
//!
//! okerr's messages are produced by Python and shown to clients, so numbers,
//! byte strings and shortened texts must look the same as Python's.

pub use okerr_logic::pyfmt::{float_repr, str_repr};

/// Python `"{:.2f}".format(x)`: correctly rounded (ties to even on the exact
/// binary value), `inf`, `-inf` and `nan` for non-finite values.
pub fn fixed2(x: f64) -> String {
    // Rust's fixed-precision formatting is exact with ties to even, like
    // Python's; only the NaN spelling differs.
    if x.is_nan() {
        "nan".to_owned()
    } else {
        format!("{x:.2}")
    }
}

/// Python `float(s)` on a string: surrounding whitespace is ignored, single
/// underscores are allowed between digits, and `inf`, `infinity` and `nan`
/// are accepted in any case with an optional sign. `None` where Python raises
/// `ValueError`. Non-ASCII decimal digits (which Python also accepts) are
/// rejected.
pub fn parse_float(s: &str) -> Option<f64> {
    // Python strips exactly Unicode White_Space, as `str::trim` does.
    let s = s.trim();
    let bytes = s.as_bytes();
    let digit_at = |i: Option<usize>| {
        i.and_then(|i| bytes.get(i))
            .is_some_and(|b| b.is_ascii_digit())
    };
    let underscores_ok = s
        .match_indices('_')
        .all(|(i, _)| digit_at(i.checked_sub(1)) && digit_at(Some(i + 1)));
    if !underscores_ok {
        return None;
    }
    // Without underscores, Rust's float grammar is Python's.
    s.replace('_', "").parse().ok()
}

/// Python `repr(s.encode("utf-8"))`, e.g. `b'abc'` or `b"it's"`.
pub fn bytes_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 3);
    out.push('b');
    out.push(quote);
    for b in s.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(b) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..0x7f => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// okerr's `shortstr`: `s` itself if it has at most `n` chars, else a prefix
/// followed by `.. (LEN)` (LEN = char count of `s`) so that the whole is `n`
/// chars long. As in okerr, the prefix is never shorter than 10 chars, so for
/// small `n` the result is longer than `n`.
pub fn shortstr(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len <= n {
        return s.to_owned();
    }
    let suffix = format!(".. ({len})");
    let prefix_len = n.saturating_sub(suffix.len()).max(10);
    let mut out: String = s.chars().take(prefix_len).collect();
    out.push_str(&suffix);
    out
}

/// okerr's `shorttd`: an age in seconds as at most two units among
/// `days ` (86400), `h`, `m` and `s`, e.g. `1h1m`, `1days 1h`, `60s`.
///
/// A unit is used only while the remaining seconds are strictly greater than
/// its size, so `60` is `60s`, `61` is `1m`, `1` and negatives are empty.
pub fn shorttd(secs: i64) -> String {
    const PERIODS: [(&str, i64); 4] = [("days ", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut rest = secs;
    let mut out = String::new();
    let mut emitted = 0;
    for (name, size) in PERIODS {
        if rest > size {
            out.push_str(&format!("{}{name}", rest / size));
            rest %= size;
            emitted += 1;
            if emitted == 2 {
                break;
            }
        }
    }
    out
}

/// Details longer than 200 chars become their first 198 chars and `..`.
pub fn truncate_details(s: &str) -> String {
    if s.chars().count() > 200 {
        let mut out: String = s.chars().take(198).collect();
        out.push_str("..");
        out
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn float_repr_table() {
        let table: &[(f64, &str)] = &[
            (22.0, "22.0"),
            (99.0, "99.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (123456789012345.0, "123456789012345.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (-1e100, "-1e+100"),
            (1e-100, "1e-100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1234.5, "1234.5"),
            // Two shortest candidates equally close: Python takes the even one.
            (1059438285926254.0 + 0.25, "1059438285926254.2"),
            (26363981746409.0 + 0.3125, "26363981746409.312"),
            (-108868734838530.0 - 0.125, "-108868734838530.12"),
            (-2.5, "-2.5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (100.0, "100.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-f64::NAN, "nan"),
        ];
        for &(x, expected) in table {
            assert_eq!(float_repr(x), expected, "{x:e}");
        }
    }

    #[test]
    fn fixed2_table() {
        let table: &[(f64, &str)] = &[
            (0.125, "0.12"),
            (0.375, "0.38"),
            (2.675, "2.67"),
            (1.005, "1.00"),
            (-0.125, "-0.12"),
            (0.5, "0.50"),
            (0.005, "0.01"),
            (0.015, "0.01"),
            (0.025, "0.03"),
            (-0.001, "-0.00"),
            (-0.0, "-0.00"),
            (0.0, "0.00"),
            (12.0, "12.00"),
            (99.999, "100.00"),
            (1e22, "10000000000000000000000.00"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for &(x, expected) in table {
            assert_eq!(fixed2(x), expected, "{x:e}");
        }
    }

    #[test]
    fn parse_float_accepts() {
        let table: &[(&str, f64)] = &[
            ("1", 1.0),
            ("  -1.5\n", -1.5),
            ("\t\r\x0b\x0c+2\u{85}", 2.0),
            ("\u{a0}3\u{3000}", 3.0),
            ("1_000", 1000.0),
            ("1_000.000_1", 1000.0001),
            ("1e1_0", 1e10),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e5", 1e5),
            ("1E-3", 1e-3),
            ("-0", -0.0),
            ("1e400", f64::INFINITY),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("+iNF", f64::INFINITY),
        ];
        for &(text, expected) in table {
            let parsed = parse_float(text);
            assert_eq!(parsed, Some(expected), "{text:?}");
            assert_eq!(
                parsed.map(f64::is_sign_negative),
                Some(expected.is_sign_negative())
            );
        }
        for text in ["nan", "NaN", "-nan", "+NAN", " nan "] {
            assert!(parse_float(text).is_some_and(f64::is_nan), "{text:?}");
        }
    }

    #[test]
    fn parse_float_rejects() {
        for text in [
            "", " ", ".", "e5", "1.2.3", "0x10", "1k", "1,5", "1__0", "_1", "1_", "1_.5", "1._5",
            "1_e5", "1e_5", "\x1c1", "in", "infinit", "nan1", "1 2", "--1", "+-1", "1e", "i_nf",
            "\u{663}",
        ] {
            assert_eq!(parse_float(text), None, "{text:?}");
        }
    }

    #[test]
    fn str_repr_table() {
        // Each expected value is what CPython 3.11 prints for repr(text).
        let table = [
            ("abc", "'abc'"),
            ("", "''"),
            ("it's", "\"it's\""),
            ("a'b\"c", "'a\\'b\"c'"),
            ("é", "'é'"),
            ("a\\b", "'a\\\\b'"),
            ("t\tn\nr\r", "'t\\tn\\nr\\r'"),
            ("\0\x1b\x7f\u{85}~", "'\\x00\\x1b\\x7f\\x85~'"),
        ];
        for (text, expected) in table {
            assert_eq!(str_repr(text), expected, "repr({text:?})");
        }
    }

    #[test]
    fn bytes_repr_table() {
        let table = [
            ("abc", "b'abc'"),
            ("", "b''"),
            ("it's", "b\"it's\""),
            ("a'b\"c", "b'a\\'b\"c'"),
            ("say \"hi\"", "b'say \"hi\"'"),
            ("é", "b'\\xc3\\xa9'"),
            ("a\\b", "b'a\\\\b'"),
            ("t\tn\nr\r", "b't\\tn\\nr\\r'"),
            ("\0\x1b\x7f~", "b'\\x00\\x1b\\x7f~'"),
        ];
        for (text, expected) in table {
            assert_eq!(bytes_repr(text), expected, "{text:?}");
        }
    }

    #[test]
    fn shortstr_table() {
        let a50 = "a".repeat(50);
        assert_eq!(shortstr(&a50, 40), format!("{}.. (50)", "a".repeat(33)));
        assert_eq!(shortstr(&a50, 50), a50);
        assert_eq!(shortstr("short", 40), "short");
        assert_eq!(
            shortstr(&"é".repeat(41), 40),
            format!("{}.. (41)", "é".repeat(33))
        );
        // okerr keeps at least 10 chars of the text.
        assert_eq!(shortstr(&a50, 12), format!("{}.. (50)", "a".repeat(10)));
        assert_eq!(shortstr("abcdefghijkl", 3), "abcdefghij.. (12)");
        assert_eq!(shortstr("abcd", 3), "abcd.. (4)");
    }

    #[test]
    fn shorttd_table() {
        let table = [
            (-5, ""),
            (0, ""),
            (1, ""),
            (2, "2s"),
            (59, "59s"),
            (60, "60s"),
            (61, "1m"),
            (62, "1m2s"),
            (3600, "60m"),
            (3601, "1h"),
            (3661, "1h1m"),
            (3662, "1h1m"),
            (86400, "24h"),
            (86401, "1days "),
            (90061, "1days 1h"),
            (172_800, "2days "),
        ];
        for (secs, expected) in table {
            assert_eq!(shorttd(secs), expected, "{secs}");
        }
    }

    #[test]
    fn truncate_details_table() {
        let exact = "x".repeat(200);
        assert_eq!(truncate_details(&exact), exact);
        assert_eq!(
            truncate_details(&"x".repeat(201)),
            format!("{}..", "x".repeat(198))
        );
        assert_eq!(
            truncate_details(&"ж".repeat(300)),
            format!("{}..", "ж".repeat(198))
        );
        assert_eq!(truncate_details("ok"), "ok");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn float_repr_round_trips(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let text = float_repr(x);
            let back = parse_float(&text);
            prop_assert_eq!(back.map(f64::to_bits), Some(x.to_bits()), "{}", text);
        }

        #[test]
        fn float_repr_fixed_range(
            x in prop_oneof![1e-4..1e16f64, -1e16..=-1e-4f64],
        ) {
            let text = float_repr(x);
            prop_assert!(text.contains('.') && !text.contains('e'), "{}", text);
        }

        #[test]
        fn shortstr_has_length_n(s in "\\PC{0,80}", n in 20usize..60) {
            let out = shortstr(&s, n);
            prop_assert_eq!(out.chars().count(), s.chars().count().min(n));
        }
    }
}
