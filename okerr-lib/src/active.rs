//! okerr's table of check methods (spec §2.4, `CheckMethod.cmconf`) and the arguments of
//! the active ones (§6.5), which the server runs itself (crate `okerr-checks`).
//!
//! [`METHODS`] is what `GET /api/checkmethods` shows: every method with its display name,
//! whether okerr runs it on a sensor (`remote`), and each argument's `textname`, `desc` and
//! `default`, as okerr has them. [`ActiveArgs`] holds an active method's arguments the way
//! okerr stores them (all strings, every argument present, unset ones at their default),
//! and refuses, when one is set, a value the check could not use.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::method::MethodError;

/// One argument of a method, as okerr describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgInfo {
    /// The argument's name (`url`, `port`).
    pub name: &'static str,
    /// okerr's label for it.
    pub textname: &'static str,
    /// okerr's longer description (often empty or "no desc yet...").
    pub desc: &'static str,
    /// The value a new indicator starts with.
    pub default: &'static str,
}

/// One method of okerr's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// The codename (`httpstatus`).
    pub codename: &'static str,
    /// okerr's display name (`HTTP status code`).
    pub name: &'static str,
    /// Whether okerr runs it on a sensor (every active method but `logic`).
    pub remote: bool,
    /// The arguments, in okerr's order.
    pub args: &'static [ArgInfo],
}

impl MethodInfo {
    /// The argument of this name.
    pub fn arg(&self, name: &str) -> Option<&'static ArgInfo> {
        self.args.iter().find(|a| a.name == name)
    }
}

const fn arg(
    name: &'static str,
    textname: &'static str,
    desc: &'static str,
    default: &'static str,
) -> ArgInfo {
    ArgInfo {
        name,
        textname,
        desc,
        default,
    }
}

const PATIENCE: ArgInfo = arg("patience", "patience", "override policy 'patience'", "");
const SECRET: ArgInfo = arg("secret", "secret", "override policy 'secret'", "");
const HTTP_OPTIONS: ArgInfo = arg(
    "options",
    "Options: ssl_noverify addr=1.2.3.4",
    "Options: ssl_noverify addr=1.2.3.4",
    "",
);
const URL: ArgInfo = arg("url", "URL", "URL", "https://okerr.com/");
const HASH: ArgInfo = arg("hash", "hash", "SHA1 hash", "");
const HOST: ArgInfo = arg("host", "host", "Remote host", "127.0.0.1");
const DNS_HOST: ArgInfo = arg("host", "hostname or IP address", "", "okerr.com");

/// okerr's table of methods, in its order: the passive ones, logic, and the active ones.
pub const METHODS: [MethodInfo; 14] = [
    MethodInfo {
        codename: "heartbeat",
        name: "Heartbeat",
        remote: false,
        args: &[PATIENCE, SECRET],
    },
    MethodInfo {
        codename: "numerical",
        name: "Numerical",
        remote: false,
        args: &[
            arg("current", "value", "Current value", ""),
            PATIENCE,
            SECRET,
            arg("minlim", "minlim", "minimal limit", ""),
            arg("maxlim", "maxlim", "maximal limit", ""),
            arg("diffmin", "diffmin", "minimal difference", ""),
            arg("diffmax", "diffmax", "maximal difference", ""),
        ],
    },
    MethodInfo {
        codename: "string",
        name: "String",
        remote: false,
        args: &[
            arg("str", "str", "string/text data", ""),
            PATIENCE,
            SECRET,
            arg(
                "options",
                "Options",
                "text, dynamic, empty_ok, empty_err, reinit",
                "",
            ),
        ],
    },
    MethodInfo {
        codename: "logic",
        name: "Logical expression",
        remote: false,
        args: &[
            arg(
                "expr",
                "Logical expression",
                "Python-style logical expression",
                "True",
            ),
            arg(
                "dump",
                "Dump values of these variables",
                "comma-separate list, e.g. age['ERR:errage'], s['myindicator']",
                "",
            ),
            arg(
                "init",
                "These variables (comma-separated) will be set to 0 initially. ",
                "comma-separate list, e.g. age['ERR:errage'], s['myindicator']",
                "",
            ),
        ],
    },
    MethodInfo {
        codename: "sslcert",
        name: "SSL Certificate check",
        remote: true,
        args: &[
            arg(
                "host",
                "Hostname to check, e.g. www.okerr.com",
                "no desc yet...",
                "www.okerr.com",
            ),
            arg("port", "port", "no desc yet...", "443"),
            arg(
                "days",
                "min days to expire",
                "ERR will be set if cert expires sooner",
                "20",
            ),
            HTTP_OPTIONS,
        ],
    },
    MethodInfo {
        codename: "ping",
        name: "Ping",
        remote: true,
        args: &[HOST],
    },
    MethodInfo {
        codename: "tcpport",
        name: "TCP Port",
        remote: true,
        args: &[
            HOST,
            arg("port", "port", "TCP Port", "80"),
            arg(
                "substr",
                "Substring",
                "Look for this substring in server banner",
                "",
            ),
        ],
    },
    MethodInfo {
        codename: "sha1static",
        name: "HTTP SHA1 hash static",
        remote: true,
        args: &[URL, HASH, HTTP_OPTIONS],
    },
    MethodInfo {
        codename: "sha1dynamic",
        name: "HTTP SHA1 hash dynamic",
        remote: true,
        args: &[URL, HASH, HTTP_OPTIONS],
    },
    MethodInfo {
        codename: "httpstatus",
        name: "HTTP status code",
        remote: true,
        args: &[
            URL,
            HTTP_OPTIONS,
            arg("status", "status", "HTTP status code", "200"),
        ],
    },
    MethodInfo {
        codename: "httpgrep",
        name: "HTTP grep",
        remote: true,
        args: &[
            URL,
            arg(
                "musthave",
                "must have",
                "this text must present on page",
                "",
            ),
            arg(
                "mustnothave",
                "must not have",
                "this text must NOT present on page",
                "Error",
            ),
            HTTP_OPTIONS,
        ],
    },
    MethodInfo {
        codename: "whois",
        name: "WHOIS (domain expiration)",
        remote: true,
        args: &[
            arg("domain", "domain", "domain name", "okerr.com"),
            arg("days", "days", "ERR if will expire in less then DAYS", "30"),
        ],
    },
    MethodInfo {
        codename: "dns",
        name: "DNS resolving",
        remote: true,
        args: &[
            DNS_HOST,
            arg(
                "type",
                "DNS query type ('A', 'MX', ...) or 'reverse' or 'DNSBL dnsbl.example.com'",
                "",
                "A",
            ),
            arg("options", "options", "", "init dynamic"),
            arg(
                "value",
                "Current value. Set empty and 'init' in options to reinitialize",
                "",
                "",
            ),
        ],
    },
    MethodInfo {
        codename: "dnsbl",
        name: "Antispam DNS Block List",
        remote: true,
        args: &[
            DNS_HOST,
            arg(
                "skip",
                "skip these DNSBL zones (separated by comma and/or spaces). e.g.\nrbl.example.com rbl2.example.com",
                "",
                "",
            ),
            arg(
                "extra",
                "add these DNSBL zones (separated by command and/or spaces) e.g.\nrbl.example.com rbl2.example.com",
                "",
                "",
            ),
        ],
    },
];

/// The entry of [`METHODS`] with this codename.
pub fn method_info(codename: &str) -> Option<&'static MethodInfo> {
    METHODS.iter().find(|m| m.codename == codename)
}

/// The methods the server probes itself (spec §6.5): okerr's sensor methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveMethod {
    /// HTTP GET without redirects, the status code compared.
    HttpStatus,
    /// HTTP GET, the body searched for texts.
    HttpGrep,
    /// HTTP GET, the body's SHA-1 compared with a fixed one.
    Sha1Static,
    /// HTTP GET, the body's SHA-1 followed (a change is OK and alerted).
    Sha1Dynamic,
    /// A TLS handshake, the certificate's days left.
    SslCert,
    /// A TCP connection, optionally a banner.
    TcpPort,
    /// Three ICMP echoes.
    Ping,
    /// A DNS query, the answers compared (learned with `init`, followed with `dynamic`).
    Dns,
    /// The host looked up in a list of DNS block lists.
    Dnsbl,
    /// A domain's expiry date from whois.
    Whois,
}

impl ActiveMethod {
    /// Every active method.
    pub const ALL: [ActiveMethod; 10] = [
        ActiveMethod::HttpStatus,
        ActiveMethod::HttpGrep,
        ActiveMethod::Sha1Static,
        ActiveMethod::Sha1Dynamic,
        ActiveMethod::SslCert,
        ActiveMethod::TcpPort,
        ActiveMethod::Ping,
        ActiveMethod::Dns,
        ActiveMethod::Dnsbl,
        ActiveMethod::Whois,
    ];

    /// okerr's codename.
    pub fn codename(self) -> &'static str {
        match self {
            ActiveMethod::HttpStatus => "httpstatus",
            ActiveMethod::HttpGrep => "httpgrep",
            ActiveMethod::Sha1Static => "sha1static",
            ActiveMethod::Sha1Dynamic => "sha1dynamic",
            ActiveMethod::SslCert => "sslcert",
            ActiveMethod::TcpPort => "tcpport",
            ActiveMethod::Ping => "ping",
            ActiveMethod::Dns => "dns",
            ActiveMethod::Dnsbl => "dnsbl",
            ActiveMethod::Whois => "whois",
        }
    }

    /// The method of this codename.
    pub fn from_codename(codename: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.codename() == codename)
    }

    /// Its entry in [`METHODS`].
    pub fn info(self) -> &'static MethodInfo {
        match method_info(self.codename()) {
            Some(info) => info,
            // Every active method has an entry: the test `every_active_method_has_an_entry`.
            None => &METHODS[0],
        }
    }
}

impl fmt::Display for ActiveMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}

/// The arguments of an active method: okerr's strings, every argument of the method
/// present. A value is checked when it is set, so a check never meets a port it cannot
/// read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveArgs {
    method: ActiveMethod,
    args: BTreeMap<String, String>,
}

impl ActiveArgs {
    /// The method with every argument at its default.
    pub fn defaults(method: ActiveMethod) -> Self {
        let args = method
            .info()
            .args
            .iter()
            .map(|a| (a.name.to_owned(), a.default.to_owned()))
            .collect();
        ActiveArgs { method, args }
    }

    /// The method with its defaults, then these arguments set (names the method does not
    /// have are ignored, as in okerr).
    ///
    /// # Errors
    /// `BadArgument` for a value that cannot be used.
    pub fn with<'a>(
        method: ActiveMethod,
        args: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, MethodError> {
        let mut a = Self::defaults(method);
        for (k, v) in args {
            a.set(k, v)?;
        }
        Ok(a)
    }

    /// The method.
    pub fn method(&self) -> ActiveMethod {
        self.method
    }

    /// An argument's value (empty when the method has no such argument).
    pub fn get(&self, name: &str) -> &str {
        self.args.get(name).map(String::as_str).unwrap_or_default()
    }

    /// Every argument, by name.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.args
    }

    /// Sets one argument from its okerr text form. Returns `false` (and changes nothing)
    /// when the method has no such argument. Like okerr, `\r\n` becomes `\n` and the value
    /// is stripped of surrounding `\r\n\t ` characters.
    ///
    /// # Errors
    /// `BadArgument` when the value cannot be used (a port, a number of days or a status
    /// code that is not a number, options that do not split like a shell line); nothing
    /// is changed then.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, MethodError> {
        let value = value.replace("\r\n", "\n");
        let value = value.trim_matches(['\r', '\n', '\t', ' ']);
        if self.method.info().arg(name).is_none() {
            return Ok(false);
        }
        let bad = |what: &str| MethodError::BadArgument {
            text: format!("Bad {name} value '{value}', {what}"),
        };
        match (self.method, name) {
            (_, "port") => {
                value
                    .parse::<u16>()
                    .map_err(|_| bad("must be a TCP port (1-65535)"))
                    .and_then(|p| {
                        if p == 0 {
                            Err(bad("must be a TCP port (1-65535)"))
                        } else {
                            Ok(p)
                        }
                    })?;
            }
            (_, "days") => {
                value
                    .parse::<i64>()
                    .map_err(|_| bad("must be a whole number of days"))?;
            }
            (ActiveMethod::HttpStatus, "status") => {
                value
                    .parse::<u16>()
                    .map_err(|_| bad("must be an HTTP status code"))?;
            }
            (ActiveMethod::Dns, "options") => {}
            (_, "options") => {
                shlex::split(value).ok_or_else(|| bad("cannot be split into words"))?;
            }
            _ => {}
        }
        self.args.insert(name.to_owned(), value.to_owned());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_active_method_has_an_entry() {
        for m in ActiveMethod::ALL {
            let info = method_info(m.codename()).unwrap();
            assert!(info.remote, "{m}");
            assert_eq!(ActiveMethod::from_codename(m.codename()), Some(m));
            assert!(crate::method::ACTIVE_METHODS.contains(&m.codename()));
        }
        for c in crate::method::ACTIVE_METHODS {
            assert!(method_info(c).is_some(), "{c}");
        }
        assert_eq!(ActiveMethod::from_codename("logic"), None);
    }

    #[test]
    fn defaults_and_setting() {
        let mut a = ActiveArgs::defaults(ActiveMethod::HttpGrep);
        assert_eq!(a.get("url"), "https://okerr.com/");
        assert_eq!(a.get("mustnothave"), "Error");
        assert_eq!(a.get("musthave"), "");
        assert!(a.set("musthave", " Welcome\r\n").unwrap());
        assert_eq!(a.get("musthave"), "Welcome");
        assert!(!a.set("port", "80").unwrap(), "httpgrep has no port");
        let mut t = ActiveArgs::defaults(ActiveMethod::TcpPort);
        assert_eq!(
            t.set("port", "http").unwrap_err().to_string(),
            "Bad port value 'http', must be a TCP port (1-65535)"
        );
        assert!(t.set("port", "0").is_err());
        assert_eq!(t.get("port"), "80", "nothing changed");
        let d = ActiveArgs::defaults(ActiveMethod::Dns);
        assert_eq!(d.get("options"), "init dynamic");
        assert_eq!(d.get("type"), "A");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<ActiveArgs>(&json).unwrap(), d);
        assert!(
            ActiveArgs::with(ActiveMethod::SslCert, [("days", "x")]).is_err(),
            "days must be a number"
        );
        assert!(ActiveArgs::with(ActiveMethod::HttpStatus, [("options", "a 'b")]).is_err());
    }

    #[test]
    fn an_active_method_in_a_check_method() {
        use crate::method::{CheckMethod, MethodKind};
        let mut m = CheckMethod::active(ActiveMethod::SslCert);
        assert_eq!(m.codename(), "sslcert");
        let args = m.args();
        let names: Vec<&str> = args.keys().copied().collect();
        assert_eq!(
            names,
            ["days", "host", "options", "port"],
            "no patience, no secret"
        );
        assert_eq!(args["host"], "www.okerr.com");
        assert!(m.set_arg("host", "www.example.com").unwrap());
        assert!(
            !m.set_arg("patience", "5m").unwrap(),
            "not an argument of sslcert"
        );
        assert!(m.set_arg("port", "https").is_err());
        assert_eq!(m.args()["host"], "www.example.com");
        assert_eq!(m.patience, None);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<CheckMethod>(&json).unwrap(), m);
        let MethodKind::Active(a) = &m.kind else {
            unreachable!()
        };
        assert_eq!(a.method(), ActiveMethod::SslCert);
        // a pushed value is not a result
        let e = m.evaluate(crate::Status::Ok, "OK", "");
        assert_eq!(e.result, None);
        // a method line never makes one; a user does, where the server runs them
        assert!(CheckMethod::with_defaults("sslcert").is_err());
        assert!(CheckMethod::parse_line("httpstatus|url=https://example.com/").is_err());
        assert_eq!(
            CheckMethod::with_defaults_allowing("sslcert", false)
                .unwrap_err()
                .to_string(),
            "Method 'sslcert' is disabled: this server runs no active checks"
        );
        let made = CheckMethod::with_defaults_allowing("sslcert", true).unwrap();
        assert!(made.is_active() && !made.is_passive() && !made.is_logic());
        assert_eq!(made, CheckMethod::active(ActiveMethod::SslCert));
    }
}
