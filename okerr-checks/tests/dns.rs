//! `dns` (plain, `reverse`, `init`, `dynamic`, `DNSBL zone`) and `dnsbl` against a DNS
//! responder of the test on 127.0.0.1.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use okerr::Status;
use support::{Dns, a, checker, checker_with, mx, ptr, run, txt};

#[tokio::test]
async fn dns_match_init_dynamic() {
    let dns = Dns::start(vec![
        ("site.test", a("192.0.2.2")),
        ("site.test", a("192.0.2.1")),
        ("site.test", mx(10, "mx.site.test")),
        ("site.test", txt("v=spf1 -all")),
    ])
    .await;
    let c = checker(Some(&dns), None, None).await;

    // the default options are "init dynamic": an empty value is learned
    let r = run(&c, "dns", &[("host", "site.test")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "init: 192.0.2.1 192.0.2.2")
    );
    assert_eq!(
        r.set_args.get("value").map(String::as_str),
        Some("192.0.2.1 192.0.2.2")
    );
    let value = "192.0.2.1 192.0.2.2";
    let r = run(&c, "dns", &[("host", "site.test"), ("value", value)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "match: 192.0.2.1 192.0.2.2")
    );
    assert!(r.set_args.is_empty() && r.alerts.is_empty());

    // the record changes: dynamic follows it (OK, learned, alert), static is ERR
    dns.set(
        "site.test",
        vec![a("192.0.2.3"), mx(10, "mx.site.test"), txt("v=spf1 -all")],
    );
    let r = run(&c, "dns", &[("host", "site.test"), ("value", value)]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "new: 192.0.2.3")
    );
    assert_eq!(
        r.set_args.get("value").map(String::as_str),
        Some("192.0.2.3")
    );
    assert_eq!(r.alerts, vec!["192.0.2.1 192.0.2.2 > 192.0.2.3".to_owned()]);
    let r = run(
        &c,
        "dns",
        &[("host", "site.test"), ("value", value), ("options", "")],
    )
    .await;
    assert_eq!((r.status, r.details.as_str()), (Status::Err, "192.0.2.3"));
    assert!(r.set_args.is_empty() && r.alerts.is_empty());
    // without init an empty value is a mismatch too
    let r = run(&c, "dns", &[("host", "site.test"), ("options", "")]).await;
    assert_eq!((r.status, r.details.as_str()), (Status::Err, "192.0.2.3"));

    // other types, written as dnspython does
    let r = run(&c, "dns", &[("host", "site.test"), ("type", "MX")]).await;
    assert_eq!(r.details, "init: 10 mx.site.test.");
    let r = run(&c, "dns", &[("host", "site.test"), ("type", "txt")]).await;
    assert_eq!(r.details, "init: \"v=spf1 -all\"");

    // a name that does not exist, a type with no answer, a type that does not exist
    let r = run(&c, "dns", &[("host", "nothing.test")]).await;
    assert_eq!(
        (r.status, r.details.as_str(), r.problem),
        (
            Status::Err,
            "The DNS query name does not exist: nothing.test.",
            false
        )
    );
    let r = run(&c, "dns", &[("host", "site.test"), ("type", "AAAA")]).await;
    assert_eq!(
        r.details,
        "The DNS response does not contain an answer to the question: site.test. IN AAAA"
    );
    let r = run(&c, "dns", &[("host", "site.test"), ("type", "BOGUS")]).await;
    assert_eq!(
        (r.status, r.details.as_str(), r.problem),
        (Status::Err, "DNS resource record type is unknown.", true)
    );
    let asked = dns.queries.lock().unwrap().clone();
    assert!(asked.contains(&"site.test. MX".to_owned()), "{asked:?}");
}

#[tokio::test]
async fn dns_reverse() {
    let dns = Dns::start(vec![("1.2.0.192.in-addr.arpa", ptr("host.site.test"))]).await;
    let c = checker(Some(&dns), None, None).await;
    let r = run(&c, "dns", &[("host", "192.0.2.1"), ("type", "reverse")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "init: host.site.test.")
    );
    let r = run(
        &c,
        "dns",
        &[
            ("host", "192.0.2.1"),
            ("type", "reverse"),
            ("value", "host.site.test."),
        ],
    )
    .await;
    assert_eq!(r.details, "match: host.site.test.");
    let r = run(&c, "dns", &[("host", "site.test"), ("type", "reverse")]).await;
    assert_eq!(r.status, Status::Err);
    assert_eq!(
        r.details,
        "'site.test' does not appear to be an IPv4 or IPv6 address"
    );
}

#[tokio::test]
async fn dns_type_dnsbl_zone() {
    let dns = Dns::start(vec![
        ("clean.test", a("192.0.2.10")),
        ("spammer.test", a("192.0.2.66")),
        ("66.2.0.192.bl.test", a("127.0.0.2")),
        (
            "66.2.0.192.bl.test",
            txt("Listed: see https://bl.test/192.0.2.66"),
        ),
    ])
    .await;
    let c = checker(Some(&dns), None, None).await;
    let r = run(
        &c,
        "dns",
        &[("host", "clean.test"), ("type", "DNSBL bl.test")],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "clean.test (192.0.2.10) not in bl.test.")
    );
    let r = run(
        &c,
        "dns",
        &[("host", "spammer.test"), ("type", "dnsbl bl.test")],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "\"Listed: see https://bl.test/192.0.2.66\"")
    );
    assert_eq!(
        r.set_args.get("value").map(String::as_str),
        Some("127.0.0.2")
    );
}

#[tokio::test]
async fn dnsbl_zones_skip_extra() {
    let dns = Dns::start(vec![
        ("mail.test", a("192.0.2.66")),
        ("66.2.0.192.one.test", a("127.0.0.2")),
        ("66.2.0.192.two.test", a("127.0.0.2")),
        ("66.2.0.192.extra.test", a("127.0.0.4")),
    ])
    .await;
    let zones = ["one.test", "two.test", "three.test", "four.test"];
    let c = checker_with(Some(&dns), None, None, |cfg| {
        cfg.dnsbl_zones = zones.iter().map(|z| (*z).to_owned()).collect();
    })
    .await;
    let r = run(&c, "dnsbl", &[("host", "mail.test")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "one.test, two.test (total: 2/4)")
    );
    let r = run(
        &c,
        "dnsbl",
        &[("host", "192.0.2.66"), ("skip", "one.test, two.test")],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "Not found in 2 DNSBL checked (2 skipped)")
    );
    let r = run(
        &c,
        "dnsbl",
        &[
            ("host", "mail.test"),
            ("skip", "one.test two.test"),
            ("extra", "extra.test"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "extra.test (total: 1/3)")
    );
    let r = run(&c, "dnsbl", &[("host", "192.0.2.10")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Ok, "Not found in 4 DNSBL checked")
    );
    let r = run(&c, "dnsbl", &[("host", "mail.test"), ("skip", "typo.test")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Zone typo.test not available. Maybe mistype?")
    );
    let r = run(&c, "dnsbl", &[("host", "nothing.test")]).await;
    assert_eq!(
        (r.status, r.details.as_str()),
        (Status::Err, "Failed to resolve nothing.test")
    );
    // every zone of okerr's list is asked by default
    assert_eq!(okerr_checks::DNSBL_ZONES.len(), 53);
    assert_eq!(okerr_checks::CheckConfig::default().dnsbl_zones.len(), 53);
}
