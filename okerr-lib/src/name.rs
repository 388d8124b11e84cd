//! Validated names: textids, indicator and policy names, tags, e-mail addresses and secrets.
//!
//! Each type can only be built through its `parse` (or `TryFrom<String>`), so a value that
//! exists is valid. All of them serialize as plain strings.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The longest indicator name, policy name or textid okerr stores.
pub const MAX_NAME_LEN: usize = 200;
/// The longest tag accepted.
pub const MAX_TAG_LEN: usize = 100;
/// The longest secret accepted.
pub const MAX_SECRET_LEN: usize = 200;

/// Why a name could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} '{value}': {reason}")]
pub struct NameError {
    kind: &'static str,
    value: String,
    reason: &'static str,
}

impl NameError {
    fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        NameError {
            kind,
            value: value.to_owned(),
            reason,
        }
    }

    /// The rejected input.
    pub fn value(&self) -> &str {
        &self.value
    }
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", $kind, self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

string_newtype!(
    /// A project's public address: 1 to 200 characters of `[a-z0-9.-]`.
    ///
    /// ```
    /// use okerr::TextId;
    /// assert!(TextId::parse("myproj-1.example").is_ok());
    /// assert!(TextId::parse("My_Proj").is_err());
    /// ```
    TextId,
    "TextId"
);

impl TextId {
    /// Validates a textid.
    ///
    /// # Errors
    /// When `s` is empty, longer than 200 characters, or has a character outside `[a-z0-9.-]`.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return Err(NameError::new("textid", s, "must have 1 to 200 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(NameError::new(
                "textid",
                s,
                "may only contain a-z, 0-9, '-' and '.'",
            ));
        }
        Ok(TextId(s.to_owned()))
    }
}

string_newtype!(
    /// An indicator name, valid by okerr's rules (spec §11).
    ///
    /// Names are 1 to 200 characters, must not parse as an integer, must not contain any of
    /// `< > % \ @`, must not start with `/` and must not contain `//`. `:` and `/` are
    /// allowed; `:` separates levels by convention.
    ///
    /// ```
    /// use okerr::IndicatorName;
    /// assert!(IndicatorName::parse("test:apache2").is_ok());
    /// assert!(IndicatorName::parse("123").is_err());
    /// assert!(IndicatorName::parse("a@b").is_err());
    /// ```
    IndicatorName,
    "IndicatorName"
);

impl IndicatorName {
    /// Validates an indicator name.
    ///
    /// # Errors
    /// When the name breaks one of okerr's rules (see the type docs).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let reason = if s.is_empty() {
            Some("must not be empty")
        } else if s.chars().count() > MAX_NAME_LEN {
            Some("must have at most 200 characters")
        } else if parses_as_python_int(s) {
            Some("must not be a number")
        } else if s.contains(['<', '>', '%', '\\', '@']) {
            Some("must not contain < > % \\ @")
        } else if s.starts_with('/') || s.contains("//") {
            Some("must not start with / or contain //")
        } else if s.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(NameError::new("indicator name", s, reason)),
            None => Ok(IndicatorName(s.to_owned())),
        }
    }
}

/// Whether Python's `int(s)` would accept `s`: optional surrounding whitespace, an optional
/// sign, and decimal digits with single underscores between them.
fn parses_as_python_int(s: &str) -> bool {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b' || c == '\x0c');
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    !t.is_empty()
        && !t.starts_with('_')
        && !t.ends_with('_')
        && !t.contains("__")
        && t.chars().all(|c| c.is_ascii_digit() || c == '_')
}

string_newtype!(
    /// A policy name: 1 to 200 characters, no control characters, no surrounding spaces.
    PolicyName,
    "PolicyName"
);

impl PolicyName {
    /// Validates a policy name.
    ///
    /// # Errors
    /// When the name is empty, too long, padded with spaces or has control characters.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.chars().count() > MAX_NAME_LEN {
            return Err(NameError::new(
                "policy name",
                s,
                "must have 1 to 200 characters",
            ));
        }
        if s.trim() != s || s.chars().any(char::is_control) {
            return Err(NameError::new(
                "policy name",
                s,
                "must not have surrounding spaces or control characters",
            ));
        }
        Ok(PolicyName(s.to_owned()))
    }

    /// The policy every project has, `Default`.
    pub fn default_name() -> Self {
        PolicyName("Default".to_owned())
    }
}

string_newtype!(
    /// A user tag on an indicator. Like okerr, a tag must start with `[a-zA-Z0-9_]`; it has
    /// at most 100 characters and no commas, spaces or control characters.
    Tag,
    "Tag"
);

impl Tag {
    /// Validates a tag.
    ///
    /// # Errors
    /// When the tag does not start with `[a-zA-Z0-9_]`, is too long, or has a comma,
    /// whitespace or a control character.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok {
            return Err(NameError::new(
                "tag",
                s,
                "must start with a-z, A-Z, 0-9 or _",
            ));
        }
        if s.chars().count() > MAX_TAG_LEN {
            return Err(NameError::new("tag", s, "must have at most 100 characters"));
        }
        if s.chars()
            .any(|c| c == ',' || c.is_whitespace() || c.is_control())
        {
            return Err(NameError::new(
                "tag",
                s,
                "must not contain commas, spaces or control characters",
            ));
        }
        Ok(Tag(s.to_owned()))
    }
}

string_newtype!(
    /// An e-mail address of a project member, checked by the `email_address` crate.
    Email,
    "Email"
);

impl Email {
    /// Validates an e-mail address.
    ///
    /// # Errors
    /// When `s` is not a valid address (`local@domain`).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.len() > 254 || !email_address::EmailAddress::is_valid(s) || !s.contains('@') {
            return Err(NameError::new("e-mail address", s, "is not valid"));
        }
        Ok(Email(s.to_owned()))
    }
}

/// A shared secret for updates: 1 to 200 characters. Its `Debug` hides the value and
/// [`Secret::matches`] compares in constant time.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Secret(String);

impl Secret {
    /// Validates a secret.
    ///
    /// # Errors
    /// When `s` is empty or longer than 200 characters.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.chars().count() > MAX_SECRET_LEN {
            return Err(NameError::new(
                "secret",
                "***",
                "must have 1 to 200 characters",
            ));
        }
        Ok(Secret(s.to_owned()))
    }

    /// Whether `given` equals this secret. The SHA-256 digests of both are compared in
    /// constant time: the time taken depends neither on where they differ nor on their
    /// lengths (a byte-wise compare returns at once on a length mismatch).
    pub fn matches(&self, given: &str) -> bool {
        use sha2::Digest;
        let expected: [u8; 32] = sha2::Sha256::digest(self.0.as_bytes()).into();
        let given: [u8; 32] = sha2::Sha256::digest(given.as_bytes()).into();
        expected.ct_eq(&given).into()
    }

    /// The secret in clear, for storing it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl TryFrom<String> for Secret {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Secret::parse(&s)
    }
}

impl From<Secret> for String {
    fn from(s: Secret) -> String {
        s.0
    }
}

/// Characters a path segment keeps as they are: RFC 3986's unreserved ones and `:`; all
/// else (`/` too) is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':');

/// One path segment: percent-encoded, and never `.` or `..` (which browsers would resolve).
fn path_segment(s: &str) -> String {
    match s {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        s => percent_encoding::utf8_percent_encode(s, SEGMENT).to_string(),
    }
}

/// The path of an indicator's page, `/i/{textid}/{name}`: the link of the web pages and
/// the alert e-mails. Each part is one percent-encoded segment, so a name with `/`, `.`
/// or `..` in it opens its own page.
///
/// ```
/// assert_eq!(okerr::name::indicator_page_path("p1", "test:apache2"), "/i/p1/test:apache2");
/// assert_eq!(okerr::name::indicator_page_path("p1", "a/../b c"), "/i/p1/a%2F..%2Fb%20c");
/// ```
pub fn indicator_page_path(textid: &str, name: &str) -> String {
    format!("/i/{}/{}", path_segment(textid), path_segment(name))
}

/// The path of a project's page, `/p/{textid}`, the textid percent-encoded.
pub fn project_page_path(textid: &str) -> String {
    format!("/p/{}", path_segment(textid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicator_names_follow_okerr_rules() {
        let ok = [
            "a",
            "test:apache2",
            "srv/disk",
            "x.y-z",
            "12a",
            "a b",
            "1.5",
            "é",
        ];
        for n in ok {
            assert!(IndicatorName::parse(n).is_ok(), "{n} should be valid");
        }
        let long = "x".repeat(201);
        let bad = [
            "", "12", " 12", "1_0", "+5", "-3", "a<b", "a>b", "a%b", "a\\b", "a@b", "/a", "a//b",
            &long, "a\nb",
        ];
        for n in bad {
            assert!(IndicatorName::parse(n).is_err(), "{n:?} should be invalid");
        }
        assert!(IndicatorName::parse(&"x".repeat(200)).is_ok());
    }

    #[test]
    fn textids() {
        assert!(TextId::parse("abc-1.x").is_ok());
        for bad in ["", "ABC", "a_b", "a@b", "a b", "a:b"] {
            assert!(TextId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_policy_names_emails_secrets() {
        assert!(Tag::parse("a-b").is_ok());
        assert!(Tag::parse("_x").is_ok());
        assert!(Tag::parse("-x").is_err());
        assert!(Tag::parse("").is_err());
        assert!(Tag::parse("a b").is_err());
        assert!(PolicyName::parse("Daily").is_ok());
        assert!(PolicyName::parse(" Daily").is_err());
        assert!(PolicyName::parse("").is_err());
        assert!(Email::parse("ops@example.com").is_ok());
        assert!(Email::parse("nobody").is_err());
        let s = Secret::parse("s3cret").expect("valid");
        assert!(s.matches("s3cret"));
        assert!(!s.matches("s3cre"));
        assert!(!s.matches(""));
        assert!(
            !s.matches("s3cret\0"),
            "a longer text with the secret as prefix"
        );
        assert!(!s.matches(&"s3cret".repeat(100)));
        assert!(Secret::parse("é").expect("valid").matches("é"));
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(Secret::parse("").is_err());
    }

    #[test]
    fn serde_validates() {
        let n: Result<IndicatorName, _> = serde_json::from_str("\"12\"");
        assert!(n.is_err());
        let n: IndicatorName = serde_json::from_str("\"a:b\"").expect("valid");
        assert_eq!(serde_json::to_string(&n).expect("json"), "\"a:b\"");
    }
}
