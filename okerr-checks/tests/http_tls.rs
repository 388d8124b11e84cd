//! The HTTP checks and `sslcert` against servers of the test (HTTP and HTTPS on
//! 127.0.0.1, certificates made by rcgen around a fixed `now`), with okerr's texts.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use okerr::Status;
use support::{Dns, Pki, Reply, Web, a, checker, checker_with, run};

/// A site: `/` says Welcome, `/error` shows an error text, `/missing` is 404, `/moved`
/// redirects to `/`, `/changing` changes at each request.
fn site() -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    let n = Arc::new(AtomicUsize::new(0));
    move |path: &str| match path {
        "/" => Reply::new(200, "<h1>Welcome</h1>"),
        "/error" => Reply::new(200, "Internal Error: database down"),
        "/moved" => Reply::new(301, "").header("location", "/"),
        "/changing" => Reply::new(200, &format!("visit {}", n.fetch_add(1, Ordering::SeqCst))),
        "/hang" => Reply::hang(),
        _ => Reply::new(404, "not here"),
    }
}

fn sha1_hex(s: &str) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn httpstatus_as_okerr() {
    let web = Web::start(None, site()).await;
    let c = checker(None, None, None).await;
    let url = web.url("http", "127.0.0.1", "/");
    let r = run(&c, "httpstatus", &[("url", &url)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "Got status code 200 OK as expected")
    );
    let head = web.last_request();
    assert!(
        head.contains(&format!(
            "user-agent: OkerrSensor/{}\r\n",
            okerr_checks::SENSOR_VERSION
        )),
        "{head}"
    );

    let r = run(
        &c,
        "httpstatus",
        &[("url", &web.url("http", "127.0.0.1", "/missing"))],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Bad status code 404 Not Found (not 200) ")
    );

    // redirects are not followed: the 301 is what is compared, and its Location is shown
    let moved = web.url("http", "127.0.0.1", "/moved");
    let r = run(&c, "httpstatus", &[("url", &moved)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (
            Status::Err,
            "Bad status code 301 Moved Permanently (not 200) Location: /"
        )
    );
    let r = run(&c, "httpstatus", &[("url", &moved), ("status", "301")]).await;
    assert_eq!(
        r.details,
        "Got status code 301 Moved Permanently as expected"
    );
    assert!(r.set_args.is_empty() && r.alerts.is_empty() && !r.problem);

    let closed = support::closed_port().await;
    let url = format!("http://{closed}/");
    let r = run(&c, "httpstatus", &[("url", &url)]).await;
    assert_eq!(r.status, Status::Err);
    assert!(
        r.details
            .starts_with(&format!("Cannot perform request URL {url}: ")),
        "{}",
        r.details
    );
    assert!(r.details.contains("Connection refused"), "{}", r.details);
}

#[tokio::test]
async fn httpgrep_as_okerr() {
    let web = Web::start(None, site()).await;
    let c = checker(None, None, None).await;
    let root = web.url("http", "127.0.0.1", "/");
    let r = run(&c, "httpgrep", &[("url", &root), ("musthave", "Welcome")]).await;
    assert_eq!((r.status, r.details.as_str()), (Status::Ok, ""));
    let r = run(&c, "httpgrep", &[("url", &root), ("musthave", "Goodbye")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Content has no substring 'Goodbye'")
    );
    // the default mustnothave is "Error"
    let r = run(
        &c,
        "httpgrep",
        &[("url", &web.url("http", "127.0.0.1", "/error"))],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Content has substring 'Error'")
    );
    let r = run(
        &c,
        "httpgrep",
        &[("url", &web.url("http", "127.0.0.1", "/missing"))],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Status code: 404 (not 200)")
    );
    // redirects are followed
    let r = run(
        &c,
        "httpgrep",
        &[
            ("url", &web.url("http", "127.0.0.1", "/moved")),
            ("musthave", "Welcome"),
        ],
    )
    .await;
    assert_eq!((r.status, r.details.as_str()), (Status::Ok, ""));
}

#[tokio::test]
async fn sha1static_and_dynamic() {
    let web = Web::start(None, site()).await;
    let c = checker(None, None, None).await;
    let root = web.url("http", "127.0.0.1", "/");
    let hash = sha1_hex("<h1>Welcome</h1>");

    let r = run(&c, "sha1static", &[("url", &root)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "hash initialized")
    );
    assert_eq!(r.set_args.get("hash"), Some(&hash));
    let r = run(&c, "sha1static", &[("url", &root), ("hash", &hash)]).await;
    assert_eq!((r.status, r.details.as_str()), (Status::Ok, "hash match"));
    assert!(r.set_args.is_empty());
    let r = run(&c, "sha1static", &[("url", &root), ("hash", "0000")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "hash mismatch")
    );
    assert!(r.set_args.is_empty() && r.alerts.is_empty());
    let r = run(
        &c,
        "sha1static",
        &[("url", &web.url("http", "127.0.0.1", "/missing"))],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Status code: 404 (not 200)")
    );

    // a page that changes at each visit: learned, then each change OK, learned, alerted
    let changing = web.url("http", "127.0.0.1", "/changing");
    let first = run(&c, "sha1dynamic", &[("url", &changing)]).await;
    assert_eq!(
        (first.status, first.details.as_str()),
        (Status::Ok, "hash initialized")
    );
    let h0 = first.set_args["hash"].clone();
    assert_eq!(h0, sha1_hex("visit 0"));
    let second = run(&c, "sha1dynamic", &[("url", &changing), ("hash", &h0)]).await;
    let h1 = sha1_hex("visit 1");
    assert_eq!(
        (second.status, second.details.as_str()),
        (Status::Ok, "new hash")
    );
    assert_eq!(second.set_args.get("hash"), Some(&h1));
    assert_eq!(
        second.alerts,
        vec![format!("Page {changing} changed hash from {h0} to {h1}")]
    );
    let same = run(&c, "sha1dynamic", &[("url", &root), ("hash", &hash)]).await;
    assert_eq!(
        (same.status, same.details.as_str()),
        (Status::Ok, "hash match")
    );
    assert!(same.alerts.is_empty());
    let r = run(&c, "sha1static", &[("url", "http://127.0.0.1:1/")]).await;
    assert!(r.details.starts_with("exception: "), "{}", r.details);
}

/// The HTTPS site of `www.test` (resolved by the test's DNS) with a valid certificate.
#[tokio::test]
async fn https_verification_noverify_and_addr() {
    let pki = Pki::new();
    let good = Web::start(
        Some(pki.leaf(&["www.test"], (2030, 1, 1), (2030, 12, 31))),
        site(),
    )
    .await;
    let wrong = Web::start(
        Some(pki.leaf(&["other.test"], (2030, 1, 1), (2030, 12, 31))),
        site(),
    )
    .await;
    let dns = Dns::start(vec![("www.test", a("127.0.0.1"))]).await;
    let c = checker(Some(&dns), Some(&pki), None).await;

    let url = good.url("https", "www.test", "/");
    let r = run(&c, "httpstatus", &[("url", &url)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "Got status code 200 OK as expected"),
        "{r:?}"
    );

    // a certificate for another name: refused, unless ssl_noverify
    let url = wrong.url("https", "www.test", "/");
    let r = run(&c, "httpgrep", &[("url", &url)]).await;
    assert_eq!(r.status, Status::Err);
    assert!(
        r.details.starts_with("HTTP requests error: "),
        "{}",
        r.details
    );
    assert!(r.details.contains("certificate"), "{}", r.details);
    let r = run(
        &c,
        "httpgrep",
        &[("url", &url), ("options", "ssl_noverify")],
    )
    .await;
    assert_eq!((r.status, r.details.as_str()), (Status::Ok, ""), "{r:?}");

    // addr=IP: connect there, keep the Host header and SNI of the URL's host (the empty
    // DNS of `checker(None, …)` does not know www.test: only addr makes it reachable)
    let no_dns = checker(None, Some(&pki), None).await;
    let url = good.url("https", "www.test", "/");
    let r = run(&no_dns, "httpstatus", &[("url", &url)]).await;
    assert_eq!(r.status, Status::Err, "{r:?}");
    let r = run(
        &no_dns,
        "httpstatus",
        &[("url", &url), ("options", "addr=127.0.0.1")],
    )
    .await;
    assert_eq!(r.details, "Got status code 200 OK as expected");
    let plain = Web::start(None, site()).await;
    let url = plain.url("http", "nowhere.test", "/");
    let r = run(
        &c,
        "httpstatus",
        &[("url", &url), ("options", "addr=127.0.0.1")],
    )
    .await;
    assert_eq!(r.details, "Got status code 200 OK as expected", "{r:?}");
    let head = plain.last_request();
    assert!(
        head.contains(&format!("host: nowhere.test:{}\r\n", plain.addr.port())),
        "{head}"
    );
    let r = run(&c, "httpstatus", &[("url", &url)]).await;
    assert_eq!(
        r.status,
        Status::Err,
        "without addr the name does not resolve: {r:?}"
    );
}

#[tokio::test]
async fn sslcert_days_expired_mismatch_noverify() {
    let pki = Pki::new();
    let valid = Web::start(
        Some(pki.leaf(&["www.test"], (2030, 1, 1), (2030, 12, 31))),
        site(),
    )
    .await;
    let near = Web::start(
        Some(pki.leaf(&["www.test"], (2030, 1, 1), (2030, 6, 11))),
        site(),
    )
    .await;
    let expired = Web::start(
        Some(pki.leaf(&["www.test"], (2029, 1, 1), (2030, 5, 1))),
        site(),
    )
    .await;
    let other = Web::start(
        Some(pki.leaf(&["other.test"], (2030, 1, 1), (2030, 12, 31))),
        site(),
    )
    .await;
    let dns = Dns::start(vec![("www.test", a("127.0.0.1"))]).await;
    let c = checker(Some(&dns), Some(&pki), None).await;
    let port = |w: &Web| w.addr.port().to_string();

    // now is 2030-06-01 12:00; valid until 2030-12-31 00:00: 212 whole days
    let r = run(
        &c,
        "sslcert",
        &[("host", "www.test"), ("port", &port(&valid))],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "212 days left"),
        "{r:?}"
    );
    let r = run(
        &c,
        "sslcert",
        &[
            ("host", "www.test"),
            ("port", &port(&valid)),
            ("days", "212"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Certificate will expire soon (in 212 days)")
    );
    // near expiry: 9 days left, fewer than the default 20
    let r = run(
        &c,
        "sslcert",
        &[("host", "www.test"), ("port", &port(&near))],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Certificate will expire soon (in 9 days)")
    );

    // expired: the handshake is refused; with noverify the days are counted
    let r = run(
        &c,
        "sslcert",
        &[("host", "www.test"), ("port", &port(&expired))],
    )
    .await;
    assert_eq!(r.status, Status::Err);
    assert!(r.details.starts_with("SSL error: "), "{}", r.details);
    assert!(r.details.contains("expired"), "{}", r.details);
    let r = run(
        &c,
        "sslcert",
        &[
            ("host", "www.test"),
            ("port", &port(&expired)),
            ("options", "noverify"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Certificate expired 32 days ago")
    );

    // hostname mismatch, then ssl_noverify
    let r = run(
        &c,
        "sslcert",
        &[("host", "www.test"), ("port", &port(&other))],
    )
    .await;
    assert_eq!(r.status, Status::Err);
    assert!(r.details.starts_with("SSL error: "), "{}", r.details);
    assert!(r.details.contains("not valid for name"), "{}", r.details);
    let r = run(
        &c,
        "sslcert",
        &[
            ("host", "www.test"),
            ("port", &port(&other)),
            ("options", "ssl_noverify"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "212 days left")
    );

    // an authority the checker does not trust
    let stranger = checker_with(Some(&dns), None, None, |_| {}).await;
    let r = run(
        &stranger,
        "sslcert",
        &[("host", "www.test"), ("port", &port(&valid))],
    )
    .await;
    assert!(r.details.starts_with("SSL error: "), "{}", r.details);
    assert!(r.details.contains("UnknownIssuer"), "{}", r.details);

    // addr=IP with a name the DNS does not know: SNI and verification keep the name
    let no_dns = checker(None, Some(&pki), None).await;
    let r = run(
        &no_dns,
        "sslcert",
        &[("host", "www.test"), ("port", &port(&valid))],
    )
    .await;
    assert!(r.details.starts_with("socket error: "), "{}", r.details);
    let r = run(
        &no_dns,
        "sslcert",
        &[
            ("host", "www.test"),
            ("port", &port(&valid)),
            ("options", "addr=127.0.0.1"),
        ],
    )
    .await;
    assert_eq!(r.details, "212 days left");

    // nothing listens: a socket error, with the name's addresses
    let closed = support::closed_port().await;
    let r = run(
        &c,
        "sslcert",
        &[("host", "www.test"), ("port", &closed.port().to_string())],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (
            Status::Err,
            "socket error: [Errno 111] Connection refused (DNS: 127.0.0.1)"
        )
    );
}
