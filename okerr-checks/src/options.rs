//! okerr's `options` argument of the HTTP and certificate checks: shell words, each a flag
//! (`ssl_noverify`) or `key=value` (`addr=1.2.3.4`).

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The parsed options.
#[derive(Debug, Default)]
pub(crate) struct Options(BTreeMap<String, Option<String>>);

impl Options {
    /// Parses as okerr's sensor does (`shlex.split`, then `k=v` or a flag). A line that does
    /// not split is refused when the argument is set; here it counts as no options.
    pub(crate) fn parse(s: &str) -> Self {
        let mut o = BTreeMap::new();
        for w in shlex::split(s).unwrap_or_default() {
            match w.split_once('=') {
                Some((k, v)) => o.insert(k.to_owned(), Some(v.to_owned())),
                None => o.insert(w, None),
            };
        }
        Options(o)
    }

    pub(crate) fn has(&self, flag: &str) -> bool {
        self.0.contains_key(flag)
    }

    /// Certificate verification is off (`ssl_noverify`, or `noverify` for sslcert).
    pub(crate) fn noverify(&self, also_short: bool) -> bool {
        self.has("ssl_noverify") || (also_short && self.has("noverify"))
    }

    /// `addr=IP`: connect there instead of the host's address.
    ///
    /// `Err` with okerr-like text when the value is not an IP address.
    pub(crate) fn addr(&self) -> Result<Option<IpAddr>, String> {
        match self.0.get("addr") {
            Some(Some(v)) => v
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map(Some)
                .map_err(|_| format!("Bad addr option '{v}': not an IP address")),
            Some(None) => Err("Bad addr option: no address".to_owned()),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_and_values() {
        let o = Options::parse("ssl_noverify addr=127.0.0.1");
        assert!(o.noverify(false));
        assert_eq!(o.addr().unwrap(), Some("127.0.0.1".parse().unwrap()));
        let o = Options::parse("noverify");
        assert!(!o.noverify(false) && o.noverify(true));
        assert_eq!(Options::parse("").addr().unwrap(), None);
        assert!(Options::parse("addr=nonsense").addr().is_err());
        assert_eq!(
            Options::parse("addr=[::1]").addr().unwrap(),
            Some("::1".parse().unwrap())
        );
    }
}
