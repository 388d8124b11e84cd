//! A message's text and its `%%%` lines (spec §9), without any I/O.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use okerr::{Source, UpdateRequest};
use regex::Regex;

/// `%%% NAME.FIELD = VALUE`: okerr's pattern, with the blanks around the name and the `=`
/// kept on one line (okerr's `\s*` also crosses line ends, so an empty value took the next
/// line as its value). NAME is greedy, so FIELD is what follows the last dot. The value
/// runs to the end of the line; a `\r` before the `\n` is cut off afterwards.
static UPDATE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"%%%[\s&&[^\n]]*([0-9a-zA-Z_\-.:]+)\.([0-9a-zA-Z_\-]+)[\s&&[^\n]]*=[\s&&[^\n]]*([^\n]*)",
    )
    .expect("a valid constant pattern")
});

/// Why a message carries no usable updates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No `%%% name.status = value` line at all.
    #[error("No update in the message: it needs a line like '%%% name.status = OK'")]
    NoUpdates,
    /// An indicator has `%%%` lines but no `status` line.
    #[error("No status line for indicator '{0}' (a line like '%%% {0}.status = OK')")]
    NoStatus(String),
}

/// The fields of one indicator's `%%%` lines.
#[derive(Debug, Default)]
struct Fields {
    status: Option<String>,
    details: Option<String>,
    secret: Option<String>,
}

/// The updates of a message's text, one per indicator in the order of their first `%%%`
/// line, for the project `textid`, with source [`Source::Smtp`] and no address yet.
///
/// The fields used are `status` (required for every indicator named), `details` and
/// `secret`; other fields are ignored. For a repeated (name, field) pair the last value
/// wins. Values keep their trailing blanks (okerr ignores `"OK "` for a heartbeat).
///
/// ```
/// let text = "Hello\n%%% db.status = OK\n%%% db.details = backup done\n";
/// let updates = okerr_smtp::parse_updates("myproject", text)?;
/// assert_eq!(updates.len(), 1);
/// assert_eq!((updates[0].name.as_str(), updates[0].status.as_str()), ("db", "OK"));
/// assert_eq!(updates[0].details.as_deref(), Some("backup done"));
/// # Ok::<(), okerr_smtp::ParseError>(())
/// ```
///
/// # Errors
/// [`ParseError::NoUpdates`] without any `%%%` line; [`ParseError::NoStatus`] for the
/// first indicator named without a `status`.
pub fn parse_updates(textid: &str, text: &str) -> Result<Vec<UpdateRequest>, ParseError> {
    let mut found: Vec<(String, Fields)> = Vec::new();
    // Where each name is in `found`: a message of many names costs linear time.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for caps in UPDATE_LINE.captures_iter(text) {
        let (Some(name), Some(field), Some(value)) = (caps.get(1), caps.get(2), caps.get(3)) else {
            continue;
        };
        let value = value.as_str();
        let value = value.strip_suffix('\r').unwrap_or(value).to_owned();
        let name = name.as_str();
        let index = *index_of.entry(name).or_insert_with(|| {
            found.push((name.to_owned(), Fields::default()));
            found.len() - 1
        });
        let Some((_, fields)) = found.get_mut(index) else {
            continue;
        };
        match field.as_str() {
            "status" => fields.status = Some(value),
            "details" => fields.details = Some(value),
            "secret" => fields.secret = Some(value),
            _ => {}
        }
    }
    if found.is_empty() {
        return Err(ParseError::NoUpdates);
    }
    found
        .into_iter()
        .map(|(name, fields)| {
            let Some(status) = fields.status else {
                return Err(ParseError::NoStatus(name));
            };
            let mut req = UpdateRequest::new(textid, name, status);
            req.details = fields.details;
            req.secret = fields.secret;
            req.source = Source::Smtp;
            Ok(req)
        })
        .collect()
}

/// The text a message's `%%%` lines are read from: its first `text/plain` part that is
/// not an attachment, decoded (quoted-printable, base64, charset). A message without a
/// `Content-Type` is one `text/plain` part. When the message cannot be parsed at all, its
/// raw bytes (lossy UTF-8). A MIME message without a `text/plain` part gives `""`.
///
/// ```
/// let raw = b"Subject: t\r\nContent-Type: text/plain\r\n\
///             Content-Transfer-Encoding: quoted-printable\r\n\r\n\
///             %%% db.details =3D a long line that was =\r\nwrapped\r\n";
/// assert_eq!(
///     okerr_smtp::message_text(raw),
///     "%%% db.details = a long line that was wrapped\r\n"
/// );
/// ```
pub fn message_text(raw: &[u8]) -> Cow<'_, str> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return String::from_utf8_lossy(raw);
    };
    for part in &message.parts {
        let PartType::Text(text) = &part.body else {
            continue;
        };
        let plain = part.content_type().is_none_or(|ct| {
            ct.c_type.eq_ignore_ascii_case("text")
                && ct
                    .c_subtype
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case("plain"))
        });
        let inline = part
            .content_disposition()
            .is_none_or(|d| d.c_type.eq_ignore_ascii_case("inline"));
        if plain && inline {
            return Cow::Owned(text.to_string());
        }
    }
    Cow::Borrowed("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> UpdateRequest {
        let mut all = parse_updates("p", text).expect("updates");
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn the_spec_example() {
        let text = "%%% MyIndicator.status = OK\n\
                    %%% MyIndicator.details = %HOST% SMTP test\n\
                    %%% MyIndicator.secret = mySECRET\n";
        let req = one(text);
        assert_eq!(req.textid, "p");
        assert_eq!(req.name, "MyIndicator");
        assert_eq!(req.status, "OK");
        assert_eq!(req.details.as_deref(), Some("%HOST% SMTP test"));
        assert_eq!(req.secret.as_deref(), Some("mySECRET"));
        assert_eq!(req.source, Source::Smtp);
        assert_eq!(req.ip, None);
        assert_eq!(req.method, None);
    }

    #[test]
    fn the_field_follows_the_last_dot() {
        let req = one("%%% host.example.com:disk.status = ERR\n");
        assert_eq!(req.name, "host.example.com:disk");
        assert_eq!(req.status, "ERR");
    }

    #[test]
    fn name_and_field_characters() {
        let req = one("%%% a-b_c:9.Z.status=OK\n");
        assert_eq!(req.name, "a-b_c:9.Z");
        // The name follows `%%%` and blanks; a character outside NAME breaks the line.
        assert_eq!(
            parse_updates("p", "%%% x y.status = OK"),
            Err(ParseError::NoUpdates)
        );
        assert_eq!(
            parse_updates("p", "%%% !x.status = OK"),
            Err(ParseError::NoUpdates)
        );
        assert_eq!(
            parse_updates("p", "%%% x/y.status = OK"),
            Err(ParseError::NoUpdates)
        );
        // FIELD stops at the first character outside it; then only blanks and `=`.
        assert_eq!(
            parse_updates("p", "%%% x.sta.tus! = OK"),
            Err(ParseError::NoUpdates)
        );
    }

    #[test]
    fn values_keep_trailing_blanks_but_not_the_line_end() {
        let req = one("%%% a.status = OK  \r\n%%% a.details =  two  words \r\n");
        assert_eq!(req.status, "OK  ");
        assert_eq!(req.details.as_deref(), Some("two  words "));
    }

    #[test]
    fn blanks_around_the_equals_sign_are_optional() {
        let req = one("%%%a.status=OK");
        assert_eq!((req.name.as_str(), req.status.as_str()), ("a", "OK"));
        let req = one("  %%%\t a.status \t=\t 42.5\n");
        assert_eq!(req.status, "42.5");
    }

    #[test]
    fn an_empty_value_does_not_take_the_next_line() {
        let all = parse_updates("p", "%%% a.details =\n%%% a.status = OK\n").expect("ok");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].details.as_deref(), Some(""));
        assert_eq!(all[0].status, "OK");
    }

    #[test]
    fn the_last_value_wins_per_name_and_field() {
        let req = one("%%% a.status = ERR\n%%% a.details = x\n%%% a.status = OK\n");
        assert_eq!(req.status, "OK");
        assert_eq!(req.details.as_deref(), Some("x"));
    }

    #[test]
    fn several_indicators_in_order_of_first_mention() {
        let all = parse_updates(
            "p",
            "%%% b.status = OK\n%%% a.status = ERR\n%%% b.details = d\n%%% c.status = 1\n",
        )
        .expect("ok");
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(all[0].details.as_deref(), Some("d"));
        assert_eq!(all[1].details, None);
    }

    #[test]
    fn other_fields_are_ignored() {
        let req = one("%%% a.status = OK\n%%% a.method = numerical\n%%% a.policy = X\n");
        assert_eq!(req.method, None);
        assert_eq!(req.policy, None);
    }

    #[test]
    fn a_status_is_required() {
        assert_eq!(parse_updates("p", "hello\n"), Err(ParseError::NoUpdates));
        assert_eq!(parse_updates("p", ""), Err(ParseError::NoUpdates));
        assert_eq!(
            parse_updates("p", "%%% a.status = OK\n%%% b.details = x\n"),
            Err(ParseError::NoStatus("b".to_owned()))
        );
        assert_eq!(
            parse_updates("p", "%%% a.secret = s\n"),
            Err(ParseError::NoStatus("a".to_owned()))
        );
    }

    #[test]
    fn lines_anywhere_in_the_text() {
        let req = one("Dear okerr,\n  the job says: %%% job.status = OK (really)\nbye\n");
        assert_eq!(req.status, "OK (really)");
    }

    #[test]
    fn plain_message_text() {
        let raw = b"From: a@b\r\nSubject: s\r\n\r\n%%% a.status = OK\r\n";
        assert_eq!(message_text(raw), "%%% a.status = OK\r\n");
    }

    #[test]
    fn multipart_takes_the_first_plain_part_decoded() {
        let raw = "From: a@b\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n\
            --XX\r\n\
            Content-Type: text/html; charset=utf-8\r\n\r\n\
            <p>%%% a.status = ERR</p>\r\n\
            --XX\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            %%% a.status =3D OK\r\n\
            %%% a.details =3D caf=C3=A9 is =\r\nopen\r\n\
            --XX\r\n\
            Content-Type: text/plain\r\n\r\n\
            %%% a.status = second\r\n\
            --XX--\r\n";
        let text = message_text(raw.as_bytes());
        let req = one(&text);
        assert_eq!(req.status, "OK");
        assert_eq!(req.details.as_deref(), Some("café is open"));
    }

    #[test]
    fn base64_and_attachments() {
        // "%%% a.status = OK\n" in base64
        let raw = "Content-Type: multipart/mixed; boundary=B\r\n\r\n\
            --B\r\n\
            Content-Type: text/plain\r\nContent-Disposition: attachment; filename=x.txt\r\n\r\n\
            %%% a.status = ERR\r\n\
            --B\r\n\
            Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            JSUlIGEuc3RhdHVzID0gT0sK\r\n\
            --B--\r\n";
        let req = one(&message_text(raw.as_bytes()));
        assert_eq!(req.status, "OK");
    }

    #[test]
    fn html_only_gives_no_text() {
        let raw = "Content-Type: text/html\r\n\r\n%%% a.status = OK<br>\r\n";
        assert_eq!(message_text(raw.as_bytes()), "");
    }

    /// Pieces of mail and of `%%%` lines, for garbage that comes near real messages.
    const FRAGMENTS: &[&[u8]] = &[
        b"%%%",
        b"%%",
        b" ",
        b"\t",
        b".",
        b"status",
        b"details",
        b"secret",
        b"=",
        b"OK",
        b"ERR",
        b"\r\n",
        b"\n",
        b"\r",
        b"a",
        b"db:x",
        b"-",
        b"_",
        b"\xff\xfe",
        b"\xc3\xa9",
        b"Content-Type: text/plain\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"--b\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"=3D",
        b"\0",
    ];

    fn garbage() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..60)
                .prop_map(|parts| parts.concat()),
        ]
    }

    fn is_name(name: &str) -> bool {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
    }

    proptest::proptest! {
        /// Whatever the bytes, the parse is one of okerr's answers: updates that the text
        /// really holds (one per name, in order, each with a `name.status` line, a value
        /// without line end, for this project by e-mail), or a refusal naming what is
        /// missing; without any `%%%` there is never an update.
        #[test]
        fn garbage_gives_updates_the_text_holds_or_a_refusal(raw in garbage()) {
            let text = message_text(&raw);
            match parse_updates("p", &text) {
                Ok(updates) => {
                    proptest::prop_assert!(!updates.is_empty());
                    proptest::prop_assert!(text.contains("%%%"));
                    let mut seen = std::collections::HashSet::new();
                    for u in &updates {
                        proptest::prop_assert!(is_name(&u.name), "name {:?}", u.name);
                        proptest::prop_assert!(seen.insert(u.name.clone()), "twice: {}", u.name);
                        let status_line = format!("{}.status", u.name);
                        proptest::prop_assert!(text.contains(&status_line));
                        proptest::prop_assert!(!u.status.contains('\n') && !u.status.ends_with('\r'));
                        proptest::prop_assert_eq!(u.textid.as_str(), "p");
                        proptest::prop_assert_eq!(u.source, Source::Smtp);
                    }
                    let first = updates.first().map(|u| text.find(&format!("{}.", u.name)));
                    proptest::prop_assert!(matches!(first, Some(Some(_))));
                }
                Err(ParseError::NoStatus(name)) => {
                    proptest::prop_assert!(is_name(&name), "name {:?}", name);
                    proptest::prop_assert!(text.contains("%%%") && text.contains(&name));
                }
                Err(ParseError::NoUpdates) => {}
            }
        }
    }

    #[test]
    fn a_message_of_many_names_keeps_each_once_in_order() {
        // 1 MiB of distinct names (the server's size limit): the names are indexed, so
        // this is linear; the search it replaced took 10 s here.
        let text: String = (0..52_000)
            .map(|i| format!("%%%a{i:06}.status=1\n"))
            .collect();
        let updates = parse_updates("p", &text).expect("updates");
        assert_eq!(updates.len(), 52_000);
        assert_eq!(updates[51_999].name, "a051999");
    }
}
