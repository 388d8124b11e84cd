//! okerr's form fields from an `application/x-www-form-urlencoded` or `multipart/form-data`
//! body: every field a string, the last of repeated names wins (as Django's `POST.get`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;

use crate::Error;

/// The fields of a form; a body-less request (a GET) has none. Hashed with foldhash
/// (randomly seeded per map): a form's dozen fields are hashed on every update, and
/// SipHash was a tenth of the front end's instructions.
#[derive(Debug, Default)]
pub(crate) struct Fields(pub(crate) HashMap<String, String, foldhash::fast::RandomState>);

impl Fields {
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
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
        let mut fields =
            HashMap::with_capacity_and_hasher(16, foldhash::fast::RandomState::default());
        if multipart {
            let mut form = Multipart::from_request(req, state).await?;
            while let Some(field) = form.next_field().await? {
                let name = field.name().unwrap_or_default().to_owned();
                let value = utf8(&name, field.bytes().await?.to_vec())?;
                fields.insert(name, value);
            }
        } else {
            let body = Bytes::from_request(req, state).await?;
            fields.extend(parse_urlencoded(&body)?);
        }
        Ok(Fields(fields))
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
    let mut pairs = Vec::new();
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
