//! `whois`: days until a domain expires, from the registry's whois (RFC 3912: a line to
//! port 43, the answer until the server closes).

use std::net::SocketAddr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use okerr::ActiveArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resolve::TargetError;
use crate::{CheckResult, Inner, WhoisServer, days_between};

/// The most of an answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// OK when at least `days` whole days are left: `"{n} days left"` or
/// `"expired {n} days ago"`; ERR `"whois error"` when the answer has no expiry date.
pub(crate) async fn whois(i: &Inner, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
    let domain = args
        .get("domain")
        .trim()
        .trim_end_matches('.')
        .to_lowercase();
    let Ok(days) = args.get("days").parse::<i64>() else {
        return CheckResult::problem(format!("Bad days '{}'", args.get("days")));
    };
    if domain.ends_with(".jp") {
        return CheckResult::err("Sorry, python-whois currently not working well with .jp TLDs");
    }
    let answer = match &i.config.whois {
        WhoisServer::At(server) => ask(i, server, &domain).await,
        WhoisServer::Iana => match ask(i, "whois.iana.org:43", &domain).await {
            Ok(iana) => match field(&iana, &["refer", "whois"]) {
                Some(registry) => ask(i, &format!("{registry}:43"), &domain).await,
                None => Ok(iana),
            },
            Err(e) => Err(e),
        },
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return CheckResult::err(e),
    };
    let Some(expiry) = expiry(&answer) else {
        return CheckResult::err("whois error");
    };
    let left = days_between(now, expiry);
    let details = if left > 0 {
        format!("{left} days left")
    } else {
        format!("expired {} days ago", left.abs())
    };
    if left < days {
        CheckResult::err(details)
    } else {
        CheckResult::ok(details)
    }
}

/// Sends `query` to `server` (`host:port`) and reads the answer.
async fn ask(i: &Inner, server: &str, query: &str) -> Result<String, String> {
    let (host, port) = server
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("bad whois server '{server}'"))?;
    let ip = match i.resolver.allowed(host).await {
        Ok(ips) => ips[0],
        Err(TargetError::Resolve(e)) => return Err(format!("Can not resolve {host}: {e}")),
        Err(TargetError::Refused(e)) => return Err(e.to_string()),
    };
    let io = async {
        let mut s = TcpStream::connect(SocketAddr::new(ip, port)).await?;
        s.write_all(format!("{query}\r\n").as_bytes()).await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 || answer.len() + n > MAX_ANSWER {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(i.config.timeout, io).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(crate::tcp::py_oserror(&e)),
        Err(_) => Err("timed out".to_owned()),
    }
}

/// The value of the first `key: value` line with one of these keys (case-insensitive).
fn field<'a>(answer: &'a str, keys: &[&str]) -> Option<&'a str> {
    answer.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(':')?;
        let v = v.trim();
        (keys.iter().any(|key| k.trim().eq_ignore_ascii_case(key)) && !v.is_empty()).then_some(v)
    })
}

/// The expiry keys of the common whois formats (gTLD registries, registrars, ccTLDs).
const EXPIRY_KEYS: [&str; 12] = [
    "Registry Expiry Date",
    "Registrar Registration Expiration Date",
    "Expiration Date",
    "Expiry Date",
    "Expiration Time",
    "Expires On",
    "Expires",
    "expire",
    "paid-till",
    "free-date",
    "renewal date",
    "Valid Until",
];

/// The expiry date of a whois answer.
fn expiry(answer: &str) -> Option<DateTime<Utc>> {
    EXPIRY_KEYS
        .iter()
        .find_map(|key| field(answer, &[key]).and_then(parse_date))
}

/// The date forms whois servers write.
fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    let first = s.split_whitespace().next().unwrap_or(s);
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y.%m.%d %H:%M:%S",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f) {
            return Some(d.and_utc());
        }
    }
    for f in [
        "%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d", "%d-%b-%Y", "%d.%m.%Y", "%d/%m/%Y", "%Y%m%d",
    ] {
        if let Ok(d) = NaiveDate::parse_from_str(first, f) {
            return d.and_hms_opt(0, 0, 0).map(|d| d.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_formats() {
        let day = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap();
        let cases = [
            (
                "Registry Expiry Date: 2031-08-13T04:00:00Z",
                Utc.with_ymd_and_hms(2031, 8, 13, 4, 0, 0).unwrap(),
            ),
            (
                "   Registrar Registration Expiration Date: 2031-08-12T00:00:00.000+00:00",
                day(2031, 8, 12),
            ),
            (
                "paid-till:     2031-03-01T21:00:00Z",
                Utc.with_ymd_and_hms(2031, 3, 1, 21, 0, 0).unwrap(),
            ),
            ("Expiry Date: 13-Aug-2031", day(2031, 8, 13)),
            ("expire: 2031.08.13", day(2031, 8, 13)),
            (
                "Expiration Time: 2031-08-13 12:00:00",
                Utc.with_ymd_and_hms(2031, 8, 13, 12, 0, 0).unwrap(),
            ),
        ];
        for (line, want) in cases {
            let answer = format!("Domain Name: X\n{line}\n");
            assert_eq!(expiry(&answer), Some(want), "{line}");
        }
        assert_eq!(expiry("No match for domain\n"), None);
        assert_eq!(
            field("refer:        whois.verisign-grs.com\n", &["refer"]),
            Some("whois.verisign-grs.com")
        );
    }
}
