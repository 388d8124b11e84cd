//! A message's text and its `%%%` lines (`okerr_smtp::message_text`, `parse_updates`).
//!
//! Input: the first byte chooses the mode, the rest is the data.
//! - even: the data is a raw message. Its updates have names of okerr's characters,
//!   values without line ends, no name twice, at most one update per `%%%`; written
//!   again as `%%%` lines they parse to the same updates.
//! - odd: the data (as UTF-8, lossy) is a text; put in a MIME message as the base64 or
//!   quoted-printable body of a `text/plain; charset=utf-8` part (after a `text/html`
//!   part for one mode in two), `message_text` gives it back exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okerr::UpdateRequest;

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * j)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Quoted-printable with every byte but letters and digits encoded, soft breaks at 60.
fn quoted_printable(data: &[u8]) -> String {
    let mut out = String::new();
    let mut line = 0;
    for b in data {
        if line >= 60 {
            out.push_str("=\r\n");
            line = 0;
        }
        if b.is_ascii_alphanumeric() {
            out.push(char::from(*b));
            line += 1;
        } else {
            out.push_str(&format!("={b:02X}"));
            line += 3;
        }
    }
    out
}

fn lines(updates: &[UpdateRequest]) -> String {
    let mut out = String::new();
    for u in updates {
        out.push_str(&format!("%%% {}.status = {}\r\n", u.name, u.status));
        if let Some(d) = &u.details {
            out.push_str(&format!("%%% {}.details = {d}\r\n", u.name));
        }
        if let Some(s) = &u.secret {
            out.push_str(&format!("%%% {}.secret = {s}\r\n", u.name));
        }
    }
    out
}

fn fields(updates: &[UpdateRequest]) -> Vec<(&str, &str, Option<&str>, Option<&str>)> {
    updates
        .iter()
        .map(|u| {
            (
                u.name.as_str(),
                u.status.as_str(),
                u.details.as_deref(),
                u.secret.as_deref(),
            )
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = okerr_smtp::message_text(data);
        let Ok(updates) = okerr_smtp::parse_updates("p1", &text) else {
            return;
        };
        assert!(updates.len() <= text.matches("%%%").count());
        let mut names: Vec<&str> = updates.iter().map(|u| u.name.as_str()).collect();
        for u in &updates {
            assert!(!u.name.is_empty());
            assert!(
                u.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)),
                "name {:?}",
                u.name
            );
            for value in [Some(&u.status), u.details.as_ref(), u.secret.as_ref()]
                .into_iter()
                .flatten()
            {
                assert!(!value.contains('\n'), "a line end in {value:?}");
            }
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), updates.len(), "a name twice");
        let written = lines(&updates);
        let again = okerr_smtp::parse_updates("p1", &written)
            .unwrap_or_else(|e| panic!("{written:?} does not parse: {e}"));
        assert_eq!(fields(&again), fields(&updates), "{written:?}");
    } else {
        let text = String::from_utf8_lossy(data);
        let body = if mode % 4 == 1 {
            ("base64", base64(text.as_bytes()))
        } else {
            ("quoted-printable", quoted_printable(text.as_bytes()))
        };
        let plain = format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n\r\n{}",
            body.0, body.1
        );
        let message = if mode % 8 < 4 {
            format!("From: a@b\r\nTo: p1@x\r\nSubject: t\r\nMIME-Version: 1.0\r\n{plain}")
        } else {
            format!(
                "From: a@b\r\nTo: p1@x\r\nSubject: t\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/alternative; boundary=\"=_b0undary\"\r\n\r\n\
                 --=_b0undary\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n\
                 --=_b0undary\r\n{plain}\r\n--=_b0undary--\r\n"
            )
        };
        assert_eq!(
            okerr_smtp::message_text(message.as_bytes()),
            text,
            "{message:?}"
        );
    }
});
