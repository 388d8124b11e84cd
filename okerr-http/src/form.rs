//! okerr's form fields from an `application/x-www-form-urlencoded` or `multipart/form-data`
//! body: every field a string, the last of repeated names wins (as Django's `POST.get`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;

use crate::Error;

/// The fields of a form, in the order sent; a body-less request (a GET) has none.
///
/// A list, not a map: a form has a dozen fields, each taken once, and comparing a dozen
/// short names costs less than hashing them into a map and out again (the map was a
/// visible share of an update's instructions).
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The value of `name` (the last one sent, as Django's `POST.get`), taken out: a
    /// second `take` of the same name is `None`.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        let last = self.0.iter().rposition(|(n, _)| n == name)?;
        let (_, value) = self.0.remove(last);
        // Repeated names are rare; the earlier values are dropped with the last one.
        if self.0.iter().any(|(n, _)| n == name) {
            self.0.retain(|(n, _)| n != name);
        }
        Some(value)
    }

    /// The fields not taken, one per name (the last value sent), sorted by name.
    pub(crate) fn into_rest(mut self) -> Vec<(String, String)> {
        // A stable sort keeps the order sent among equal names: the last one wins.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rest: Vec<(String, String)> = Vec::with_capacity(self.0.len());
        for (name, value) in self.0 {
            match rest.last_mut() {
                Some(last) if last.0 == name => last.1 = value,
                _ => rest.push((name, value)),
            }
        }
        rest
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    /// A body that cannot be read, with axum's status and text
    /// ([`crate::ErrorKind::Body`], `Multipart` or `FormField`).
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if multipart {
            let mut fields = Vec::new();
            let mut form = Multipart::from_request(req, state).await?;
            while let Some(field) = form.next_field().await? {
                let name = field.name().unwrap_or_default().to_owned();
                let value = utf8(&name, field.bytes().await?.to_vec())?;
                fields.push((name, value));
            }
            Ok(Fields(fields))
        } else {
            let body = Bytes::from_request(req, state).await?;
            Ok(Fields(parse_urlencoded(&body)?))
        }
    }
}

/// An `application/x-www-form-urlencoded` body as pairs, refusing what is not UTF-8 once
/// decoded: a lossy decoding would make different byte names one name (U+FFFD).
fn parse_urlencoded(body: &[u8]) -> Result<Vec<(String, String)>, Error> {
    // Most parts have nothing to decode: they are copied once, not decoded byte by byte.
    let decode = |part: &[u8]| -> Vec<u8> {
        if !part.iter().any(|b| matches!(b, b'+' | b'%')) {
            return part.to_vec();
        }
        let plus: Vec<u8> = part
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_encoding::percent_decode(&plus).collect()
    };
    let mut pairs = Vec::with_capacity(16);
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = utf8("", decode(name))?;
        let value = utf8(&name, decode(value))?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// `bytes` as text, or a 400 naming the field.
fn utf8(field: &str, bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|_| {
        let field = if field.is_empty() {
            "a field name"
        } else {
            field
        };
        let field: String = field.chars().take(100).collect();
        Error::bad_request(format!("Field '{field}' is not valid UTF-8"))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_urlencoded;

    #[test]
    fn urlencoded_as_okerr_reads_it() {
        let pairs =
            parse_urlencoded(b"textid=p1&name=a+b%2Bc&status=OK&empty=&flag&&x=%C3%A9").unwrap();
        let expected = [
            ("textid", "p1"),
            ("name", "a b+c"),
            ("status", "OK"),
            ("empty", ""),
            ("flag", ""),
            ("x", "é"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(pairs, expected);
        assert_eq!(
            parse_urlencoded(b"a=%3D%26").unwrap(),
            vec![("a".to_owned(), "=&".to_owned())]
        );
    }

    #[test]
    fn the_last_of_repeated_names_wins_and_is_taken_once() {
        let mut fields = super::Fields(parse_urlencoded(b"a=1&b=2&a=3&c=4&a=5&b=6").unwrap());
        assert_eq!(fields.take("a").as_deref(), Some("5"));
        assert_eq!(fields.take("a"), None);
        assert_eq!(fields.take("missing"), None);
        let rest = fields.into_rest();
        let rest: Vec<(&str, &str)> = rest.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(rest, [("b", "6"), ("c", "4")]);
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let bad: [Vec<u8>; 4] = [
            b"name=%FF".to_vec(),
            b"name=%C3".to_vec(),
            vec![b'n', b'=', 0xff],
            b"%FE=1".to_vec(),
        ];
        for bad in bad {
            assert!(parse_urlencoded(&bad).is_err(), "{bad:?}");
        }
    }
}
