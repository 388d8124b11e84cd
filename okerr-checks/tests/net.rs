//! `tcpport`, `ping`, `whois` against peers on 127.0.0.1; the hard timeout; the outbound
//! networks.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use okerr::{OutboundNet, OutboundNetworks, Status};
use support::{Reply, Web, checker, checker_with, closed_port, run};

#[tokio::test]
async fn tcpport_banner_substr_closed() {
    let ssh = support::banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
    let silent = support::banner(b"").await;
    let c = checker_with(None, None, None, |cfg| {
        cfg.tcp_timeout = Duration::from_millis(300)
    })
    .await;
    let port = ssh.port().to_string();

    let r = run(&c, "tcpport", &[("host", "127.0.0.1"), ("port", &port)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (
            Status::Ok,
            format!("Connected to 127.0.0.1:{port}").as_str()
        )
    );
    let r = run(
        &c,
        "tcpport",
        &[
            ("host", "127.0.0.1"),
            ("port", &port),
            ("substr", "OpenSSH"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    );
    let r = run(
        &c,
        "tcpport",
        &[
            ("host", "127.0.0.1"),
            ("port", &port),
            ("substr", "Postfix"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (
            Status::Err,
            "Connected, but no 'Postfix' in 'SSH-2.0-OpenSSH_9.2p1 Debian-2\\r\\n'"
        )
    );
    // a server that says nothing: the banner's wait times out
    let p = silent.port().to_string();
    let r = run(
        &c,
        "tcpport",
        &[("host", "127.0.0.1"), ("port", &p), ("substr", "220")],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (
            Status::Err,
            format!("Timeout on 127.0.0.1:{p}: timed out").as_str()
        )
    );

    let closed = closed_port().await.port().to_string();
    let r = run(&c, "tcpport", &[("host", "127.0.0.1"), ("port", &closed)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (
            Status::Err,
            format!("Connection refused to 127.0.0.1:{closed}: [Errno 111] Connection refused")
                .as_str()
        )
    );
    let r = run(
        &c,
        "tcpport",
        &[("host", "no-such-host.invalid"), ("port", "80")],
    )
    .await;
    assert_eq!(r.status, Status::Err);
    assert!(
        r.details
            .starts_with("Can not resolve no-such-host.invalid: "),
        "{}",
        r.details
    );
}

#[tokio::test]
async fn ping_localhost() {
    if let Err(e) = okerr_checks::icmp_available().await {
        // CI runs as root, where raw ICMP sockets always open: there this must not skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "ICMP sockets are forbidden on CI: {e}"
        );
        eprintln!("SKIPPED ping_localhost: this process may not open ICMP sockets ({e})");
        return;
    }
    let c = checker_with(None, None, None, |cfg| {
        cfg.ping_interval = Duration::from_millis(10)
    })
    .await;
    let r = run(&c, "ping", &[("host", "127.0.0.1")]).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.details.starts_with("127.0.0.1: "), "{}", r.details);
    assert!(r.details.ends_with("ms (3/3)"), "{}", r.details);
    // "{avg:.2f}ms": two decimals
    let avg = r
        .details
        .trim_start_matches("127.0.0.1: ")
        .trim_end_matches("ms (3/3)");
    assert_eq!(avg.split('.').nth(1).map(str::len), Some(2), "{avg}");
    let r = run(&c, "ping", &[("host", "no-such-host.invalid")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (
            Status::Err,
            "The name 'no-such-host.invalid' cannot be resolved"
        )
    );
}

#[tokio::test]
async fn whois_days_left_expired_error() {
    let mut answers = BTreeMap::new();
    answers.insert(
        "long.test",
        "Domain Name: LONG.TEST\r\nRegistry Expiry Date: 2031-06-01T12:00:00Z\r\n".to_owned(),
    );
    answers.insert(
        "soon.test",
        "domain: SOON.TEST\npaid-till: 2030-06-11T00:00:00Z\n".to_owned(),
    );
    answers.insert("gone.test", "Expiration Date: 2030-05-20\n".to_owned());
    let server = support::whois(answers).await;
    let c = checker(None, None, Some(server)).await;
    let r = run(&c, "whois", &[("domain", "long.test")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "365 days left")
    );
    let r = run(&c, "whois", &[("domain", "soon.test")]).await;
    assert_eq!((r.status, r.details.as_str()), (Status::Err, "9 days left"));
    let r = run(&c, "whois", &[("domain", "soon.test"), ("days", "9")]).await;
    assert_eq!((r.status, r.details.as_str()), (Status::Ok, "9 days left"));
    let r = run(&c, "whois", &[("domain", "gone.test")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "expired 13 days ago")
    );
    let r = run(&c, "whois", &[("domain", "unknown.test")]).await;
    assert_eq!((r.status, r.details.as_str()), (Status::Err, "whois error"));
    let r = run(&c, "whois", &[("domain", "example.jp")]).await;
    assert_eq!(
        r.details,
        "Sorry, python-whois currently not working well with .jp TLDs"
    );
}

/// A check that hangs past the hard bound is ERR within it.
#[tokio::test]
async fn a_hanging_check_is_cut_at_its_timeout() {
    let web = Web::start(None, |_: &str| Reply::hang()).await;
    let c = checker_with(None, None, None, |cfg| {
        cfg.timeout = Duration::from_millis(200)
    })
    .await;
    let url = web.url("http", "127.0.0.1", "/");
    let r = run(&c, "httpstatus", &[("url", &url)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Check did not finish in 0.2 s")
    );
    // the same server within okerr's own HTTP timeout, shorter than the bound
    let c = checker_with(None, None, None, |cfg| {
        cfg.http_timeout = Duration::from_millis(100)
    })
    .await;
    let r = run(&c, "httpstatus", &[("url", &url)]).await;
    assert_eq!(r.status, Status::Err);
    assert!(
        r.details
            .starts_with(&format!("Cannot perform request URL {url}: ")),
        "{}",
        r.details
    );
}

/// With the multi-tenant setting (`public`), no check reaches loopback: literal
/// addresses, names resolving there, `addr=`, redirects.
#[tokio::test]
async fn public_only_refuses_loopback_targets() {
    let target = Web::start(None, |_: &str| Reply::new(200, "secret")).await;
    let dns = support::Dns::start(vec![("inside.test", support::a("127.0.0.1"))]).await;
    let c = checker_with(Some(&dns), None, None, |cfg| {
        cfg.outbound = OutboundNetworks(vec![OutboundNet::Public])
    })
    .await;
    let port = target.addr.port().to_string();
    let refused =
        "(127.0.0.1) is outside the networks this server may reach (outbound_networks: public)";

    for (method, args) in [
        (
            "httpstatus",
            vec![("url", target.url("http", "127.0.0.1", "/"))],
        ),
        (
            "httpgrep",
            vec![("url", target.url("http", "inside.test", "/"))],
        ),
        (
            "sha1static",
            vec![
                ("url", target.url("http", "example.com", "/")),
                ("options", "addr=127.0.0.1".to_owned()),
            ],
        ),
        (
            "tcpport",
            vec![("host", "127.0.0.1".to_owned()), ("port", port.clone())],
        ),
        (
            "tcpport",
            vec![("host", "inside.test".to_owned()), ("port", port.clone())],
        ),
        (
            "sslcert",
            vec![("host", "inside.test".to_owned()), ("port", port.clone())],
        ),
        ("ping", vec![("host", "127.0.0.1".to_owned())]),
    ] {
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = run(&c, method, &args).await;
        assert_eq!(r.status, Status::Err, "{method} {args:?}");
        assert!(
            r.details.contains(refused),
            "{method} {args:?}: {}",
            r.details
        );
    }
    assert!(
        target.requests.lock().unwrap().is_empty(),
        "no request reached the target"
    );

    // the same targets with everything allowed
    let everything = checker(Some(&dns), None, None).await;
    let r = run(
        &everything,
        "httpstatus",
        &[("url", &target.url("http", "inside.test", "/"))],
    )
    .await;
    assert_eq!(r.details, "Got status code 200 OK as expected");
}

/// A redirect to an address outside the networks is not followed.
#[tokio::test]
async fn a_redirect_outside_the_networks_is_not_followed() {
    let port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let p = port.clone();
    let web = Web::start(None, move |path: &str| match path {
        "/go" => Reply::new(302, "").header(
            "location",
            &format!("http://127.0.0.3:{}/", p.get().unwrap()),
        ),
        _ => Reply::new(200, "fine"),
    })
    .await;
    port.set(web.addr.port()).unwrap();
    let only_one: OutboundNetworks = serde_json_networks("127.0.0.1/32");
    let c = checker_with(None, None, None, |cfg| cfg.outbound = only_one).await;
    let r = run(
        &c,
        "httpgrep",
        &[("url", &web.url("http", "127.0.0.1", "/go"))],
    )
    .await;
    assert_eq!(r.status, Status::Err);
    assert!(
        r.details.contains("127.0.0.3 (127.0.0.3) is outside the networks this server may reach (outbound_networks: 127.0.0.1/32)"),
        "{}",
        r.details
    );
    let r = run(
        &c,
        "httpgrep",
        &[("url", &web.url("http", "127.0.0.1", "/"))],
    )
    .await;
    assert_eq!((r.status, r.details.as_str()), (Status::Ok, ""));
}

fn serde_json_networks(net: &str) -> OutboundNetworks {
    OutboundNetworks(vec![net.parse().unwrap()])
}
