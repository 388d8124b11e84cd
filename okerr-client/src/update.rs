//! One status update and the form the real clients send for it.

/// One status update for one indicator: what `POST /update` carries besides the textid.
///
/// [`Update::form`] gives the fields in the order and with the presence rules of the
/// real clients (spec okerr-clients.md §3.1): `None` fields are left out, empty strings
/// are sent as `key=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The indicator name; cleaned like okerrupdate does (see [`clean_name`]).
    pub name: String,
    /// The status: `OK`/`ERR` for heartbeat, a number for numerical, any text for string.
    pub status: String,
    /// Free text; left out when `None`.
    pub details: Option<String>,
    /// The secret for this update; `None` takes the client's (project) secret.
    pub secret: Option<String>,
    /// The check method (`heartbeat`, `numerical|maxlim=37`, …), used when the server
    /// creates the indicator; left out when `None`.
    pub method: Option<String>,
    /// The policy name, used when the server creates the indicator; left out when `None`.
    pub policy: Option<String>,
    /// Tags, sent comma-joined (always sent, `tags=` when empty).
    pub tags: Vec<String>,
    /// A problem to flag on the indicator; left out when `None`.
    pub error: Option<String>,
    /// Always sent, usually empty.
    pub keypath: String,
    /// Always sent, usually empty.
    pub origkeypath: String,
    /// The description used when the server creates the indicator (always sent).
    pub desc: String,
}

impl Update {
    /// An update of `name` to `status`, with nothing else set (okerrclient's fields).
    pub fn new(name: impl Into<String>, status: impl Into<String>) -> Update {
        Update {
            name: name.into(),
            status: status.into(),
            ..Update::default()
        }
    }

    /// The form fields in the real clients' order: `textid, name, status, details,
    /// secret, method, policy, tags, error, keypath, origkeypath, desc`. `secret` is
    /// used when the update has none of its own.
    pub fn form<'a>(&'a self, textid: &'a str, secret: &'a str) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("textid", textid.to_owned()),
            ("name", clean_name(&self.name)),
            ("status", self.status.clone()),
        ];
        if let Some(details) = &self.details {
            fields.push(("details", details.clone()));
        }
        fields.push((
            "secret",
            self.secret.as_deref().unwrap_or(secret).to_owned(),
        ));
        if let Some(method) = &self.method {
            fields.push(("method", method.clone()));
        }
        if let Some(policy) = &self.policy {
            fields.push(("policy", policy.clone()));
        }
        fields.push(("tags", self.tags.join(",")));
        if let Some(error) = &self.error {
            fields.push(("error", error.clone()));
        }
        fields.push(("keypath", self.keypath.clone()));
        fields.push(("origkeypath", self.origkeypath.clone()));
        fields.push(("desc", self.desc.clone()));
        fields
    }

    /// The urlencoded body, byte for byte as the Python clients encode it.
    pub fn body(&self, textid: &str, secret: &str) -> String {
        encode_form(&self.form(textid, secret))
    }
}

/// okerrupdate's name cleaning: each of `< > % \ @` becomes `_`, `//` becomes `__`, and
/// a leading `/` becomes `_`.
pub fn clean_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            '<' | '>' | '%' | '\\' | '@' => '_',
            c => c,
        })
        .collect();
    out = out.replace("//", "__");
    if let Some(rest) = out.strip_prefix('/') {
        out = format!("_{rest}");
    }
    out
}

/// `application/x-www-form-urlencoded` as Python's `urllib.parse.urlencode` writes it
/// (`quote_plus`): letters, digits and `_.-~` as they are, space as `+`, every other
/// byte of the UTF-8 as `%XX`.
pub fn encode_form(fields: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus(key, &mut out);
        out.push('=');
        quote_plus(value, &mut out);
    }
    out
}

fn quote_plus(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_captured_okerrupdate_bodies() {
        // spec okerr-clients.md §8, byte for byte
        let mut u = Update::new("test:hb", "ERR");
        u.details = Some("disk is full: 99%".into());
        u.method = Some("heartbeat".into());
        u.policy = Some("Default".into());
        assert_eq!(
            u.body("mytextid", "s3cr3t"),
            "textid=mytextid&name=test%3Ahb&status=ERR&details=disk+is+full%3A+99%25\
             &secret=s3cr3t&method=heartbeat&policy=Default&tags=&keypath=&origkeypath=&desc="
        );
        let mut u = Update::new("test:str", "version 1.2");
        u.details = Some("Привет & co".into());
        u.method = Some("string|options=reinit dynamic".into());
        u.policy = Some("Default".into());
        assert_eq!(
            u.body("mytextid", "s3cr3t"),
            "textid=mytextid&name=test%3Astr&status=version+1.2\
             &details=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82+%26+co&secret=s3cr3t\
             &method=string%7Coptions%3Dreinit+dynamic&policy=Default&tags=&keypath=\
             &origkeypath=&desc="
        );
        let mut u = Update::new("py:direct", "ERR");
        u.details = Some("d".into());
        u.policy = Some("Default".into());
        u.tags = vec!["a".into(), "b".into()];
        u.error = Some("some problem".into());
        assert_eq!(
            u.body("mytextid", "s3cr3t"),
            "textid=mytextid&name=py%3Adirect&status=ERR&details=d&secret=s3cr3t\
             &policy=Default&tags=a%2Cb&error=some+problem&keypath=&origkeypath=&desc="
        );
    }

    #[test]
    fn own_secret_wins() {
        let mut u = Update::new("a", "OK");
        u.secret = Some("mine".into());
        assert_eq!(
            u.body("t", "project"),
            "textid=t&name=a&status=OK&secret=mine&tags=&keypath=&origkeypath=&desc="
        );
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("py/num@x"), "py/num_x");
        assert_eq!(clean_name("/a//b<%>\\"), "_a__b___\\".replace('\\', "_"));
        assert_eq!(encode_form(&[("k", "*~ /".into())]), "k=%2A~+%2F");
    }
}
