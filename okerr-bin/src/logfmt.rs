//! The server's log lines: every field value is escaped, so that a value sent by a client
//! (an indicator's name, a refused reason, an SMTP reply) cannot start a line of its own
//! or carry terminal escapes. One formatter for every event, so a new log call is covered
//! without thinking of it.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

/// The field formatter of the server's log: `message` as it is, then `name=value`
/// separated by spaces, like tracing's default, with each value passed through [`escape`].
pub(crate) fn fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(|w: &mut Writer<'_>, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            w.write_str(&escape(&text))
        } else {
            write!(w, "{field}={}", escape(&text))
        }
    })
    .delimited(" ")
}

/// `s` with every control character (line breaks, ESC, DEL, C1), the Unicode line and
/// paragraph separators and the bidirectional overrides written as `\n`, `\r`, `\t` or
/// `\u{…}`: what a client sent stays on its line and shows as text.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain name"), "plain name");
        assert_eq!(
            escape("x\n2026-01-01T00:00:00Z ERROR okerr::serve: FORGED"),
            "x\\n2026-01-01T00:00:00Z ERROR okerr::serve: FORGED"
        );
        assert_eq!(escape("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(escape("cr\rtab\tdel\u{7f}"), "cr\\rtab\\tdel\\u{7f}");
        assert_eq!(escape("ls\u{2028}rlo\u{202e}"), "ls\\u{2028}rlo\\u{202e}");
        assert_eq!(escape("é ✓"), "é ✓");
    }
}
