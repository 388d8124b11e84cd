//! The HTTP checks: `httpstatus`, `httpgrep`, `sha1static`, `sha1dynamic`.

use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};
use okerr::ActiveArgs;
use sha1::{Digest, Sha1};
use url::{Host, Url};

use crate::options::Options;
use crate::resolve::{Guarded, Lookup};
use crate::{CheckResult, Inner};

/// The most of a page the checks read (a larger page is ERR).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// A request's failure, as text.
struct Failed(String);

/// An error with its sources, as one line (`error sending request: …: Connection refused`).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

struct Page {
    status: reqwest::StatusCode,
    location: Option<String>,
    body: Vec<u8>,
}

impl Page {
    fn reason(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("")
    }
}

/// okerr's `rget`: a GET with the sensor's User-Agent, okerr's timeout, `ssl_noverify`
/// and `addr=IP` (connect there, keeping the Host header and SNI), to allowed addresses
/// only (redirects included).
async fn rget(
    i: &Inner,
    url: &str,
    options: &str,
    follow: bool,
    now: DateTime<Utc>,
) -> Result<Page, Failed> {
    let parsed = Url::parse(url).map_err(|e| Failed(format!("Invalid URL '{url}': {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Failed(format!(
            "No connection adapters were found for '{url}'"
        )));
    }
    let o = Options::parse(options);
    let lookup: Lookup = i.resolver.clone();
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let mut builder = reqwest::Client::builder()
        .timeout(i.config.http_timeout)
        .user_agent(i.config.user_agent.clone())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .dns_resolver(Guarded(lookup.clone()))
        .tls_backend_preconfigured(i.tls.client_config(now, !o.noverify(false)));
    match o.addr().map_err(Failed)? {
        Some(ip) => {
            lookup.check(&host, ip).map_err(|e| Failed(e.to_string()))?;
            let port = parsed.port_or_known_default().unwrap_or(80);
            builder = builder.resolve(&host, SocketAddr::new(ip, port));
        }
        None => check_literal(&lookup, &parsed)?,
    }
    let redirects = {
        let lookup = lookup.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if !follow {
                return attempt.stop();
            }
            if attempt.previous().len() >= 30 {
                return attempt.error("Exceeded 30 redirects.");
            }
            match check_literal(&lookup, attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(Failed(e)) => attempt.error(e),
            }
        })
    };
    let client = builder
        .redirect(redirects)
        .build()
        .map_err(|e| Failed(chain(&e)))?;
    let mut response = client
        .get(parsed.clone())
        .send()
        .await
        .map_err(|e| Failed(chain(&e)))?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failed(chain(&e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failed(format!(
                "page larger than {} MiB",
                MAX_BODY / 1024 / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Page {
        status,
        location,
        body,
    })
}

/// A literal IP in the URL is checked here (names are checked by the resolver).
fn check_literal(lookup: &Lookup, url: &Url) -> Result<(), Failed> {
    let ip: IpAddr = match url.host() {
        Some(Host::Ipv4(ip)) => ip.into(),
        Some(Host::Ipv6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    lookup
        .check(url.host_str().unwrap_or_default(), ip)
        .map_err(|e| Failed(e.to_string()))
}

/// `httpstatus`: a GET without following redirects; OK when the code is `status`.
pub(crate) async fn httpstatus(i: &Inner, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
    let url = args.get("url");
    let Ok(required) = args.get("status").parse::<u16>() else {
        return CheckResult::problem(format!("Bad status '{}'", args.get("status")));
    };
    match rget(i, url, args.get("options"), false, now).await {
        Ok(page) if page.status.as_u16() == required => CheckResult::ok(format!(
            "Got status code {required} {} as expected",
            page.reason()
        )),
        Ok(page) => {
            let sub = page
                .location
                .as_ref()
                .map(|l| format!("Location: {l}"))
                .unwrap_or_default();
            CheckResult::err(format!(
                "Bad status code {} {} (not {required}) {sub}",
                page.status.as_u16(),
                page.reason()
            ))
        }
        Err(Failed(e)) => CheckResult::err(format!("Cannot perform request URL {url}: {e}")),
    }
}

/// `httpgrep`: a GET (redirects followed) that must give 200, a body holding `musthave`
/// (when set) and not `mustnothave` (when set). OK details are empty, as okerr's.
pub(crate) async fn httpgrep(i: &Inner, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
    let musthave = args.get("musthave");
    let mustnothave = args.get("mustnothave");
    let page = match rget(i, args.get("url"), args.get("options"), true, now).await {
        Ok(page) => page,
        Err(Failed(e)) => return CheckResult::err(format!("HTTP requests error: {e}")),
    };
    if page.status != reqwest::StatusCode::OK {
        return CheckResult::err(format!("Status code: {} (not 200)", page.status.as_u16()));
    }
    let text = String::from_utf8_lossy(&page.body);
    if !musthave.is_empty() && !text.contains(musthave) {
        return CheckResult::err(format!("Content has no substring '{musthave}'"));
    }
    if !mustnothave.is_empty() && text.contains(mustnothave) {
        return CheckResult::err(format!("Content has substring '{mustnothave}'"));
    }
    CheckResult::ok("")
}

/// `sha1static` / `sha1dynamic`: a GET (redirects followed) that must give 200; the body's
/// SHA-1 is compared with `hash` (learned when empty). A dynamic page's new hash is OK,
/// learned and alerted.
pub(crate) async fn sha1(
    i: &Inner,
    args: &ActiveArgs,
    now: DateTime<Utc>,
    dynamic: bool,
) -> CheckResult {
    let url = args.get("url");
    let old = args.get("hash");
    let page = match rget(i, url, args.get("options"), true, now).await {
        Ok(page) => page,
        Err(Failed(e)) => return CheckResult::err(format!("exception: {e}")),
    };
    if page.status != reqwest::StatusCode::OK {
        return CheckResult::err(format!("Status code: {} (not 200)", page.status.as_u16()));
    }
    let hash: String = Sha1::digest(&page.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if old.is_empty() {
        return CheckResult::ok("hash initialized").learn("hash", hash);
    }
    if hash == old {
        return CheckResult::ok("hash match");
    }
    if !dynamic {
        return CheckResult::err("hash mismatch");
    }
    let alert = format!("Page {url} changed hash from {old} to {hash}");
    CheckResult::ok("new hash").learn("hash", hash).alert(alert)
}
