//! Values formatted exactly as Python formats them (`repr`, `str`), for the texts
//! users see: `dump` details and error messages.

/// Python 3 `repr(x)` / `str(x)` of a float: the shortest digits that round
/// trip, in fixed notation when the decimal exponent is in `-4..16` (always
/// with a fractional part, as in `22.0`), else as `1.5e-05` / `1e+16`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    let (digits, exp) = shortest_digits(x.abs());
    if (-4..16).contains(&exp) {
        // Number of digits before the decimal point.
        let point = exp + 1;
        match usize::try_from(point) {
            Ok(p) if p >= digits.len() => {
                format!("{sign}{digits}{}.0", "0".repeat(p - digits.len()))
            }
            Ok(p) if p > 0 => format!("{sign}{}.{}", &digits[..p], &digits[p..]),
            _ => format!(
                "{sign}0.{}{digits}",
                "0".repeat(point.unsigned_abs() as usize)
            ),
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{dot}{rest}e{exp_sign}{:02}",
            exp.unsigned_abs()
        )
    }
}

/// Shortest round-trip decimal digits of a finite non-negative `x` and the
/// decimal exponent of the first digit (`1234.5` gives `("12345", 3)`).
fn shortest_digits(x: f64) -> (String, i32) {
    // Rust's `{:e}` prints the shortest round-trip digits as `d.ddde<exp>`,
    // but when two candidates of that length are equally close to `x` it
    // takes the upper one where Python takes the even one. The correctly
    // rounded (ties to even) value of the same length is Python's choice
    // whenever it round-trips.
    let shortest = format!("{x:e}");
    let (mantissa, _) = shortest.split_once('e').unwrap_or((&shortest, ""));
    let precision = mantissa.len().saturating_sub(2);
    let rounded = format!("{x:.precision$e}");
    let chosen = if rounded.parse() == Ok(x) {
        rounded
    } else {
        shortest
    };
    let (mantissa, exp) = chosen.split_once('e').unwrap_or((&chosen, "0"));
    let digits = mantissa.replace('.', "");
    let significant = digits.trim_end_matches('0');
    let digits = if significant.is_empty() {
        "0".to_owned()
    } else {
        significant.to_owned()
    };
    (digits, exp.parse().unwrap_or(0))
}

/// Python `repr(s)` of a `str`, e.g. `'abc'` or `"it's"`: quotes chosen as Python does,
/// backslash, the quote, `\t`, `\n`, `\r` escaped, other control characters as `\xNN`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && u32::from(c) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}
