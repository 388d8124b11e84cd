//! The client address: the TCP peer, or what a trusted proxy says in `X-Forwarded-For`.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{Form, World, addr, default_policy, post_form};

const PROXY: &str = "127.0.0.1:51000";

/// A world whose `Default` policy takes updates from 10.0.0.0/8 only.
async fn tenth_only() -> World {
    World::with(|p| default_policy(p).subnets = vec!["10.0.0.0/8".parse().unwrap()]).await
}

fn behind_proxy(mut w: World) -> World {
    w.config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    w
}

/// okerrupdate's update of `test:hb`, with the given `X-Forwarded-For` header lines.
fn update_forwarded(forwarded: &[&str]) -> Request<Body> {
    let mut req = post_form(
        "/update",
        &Form::okerrupdate("p1", "test:hb", "OK").encode(),
    );
    for f in forwarded {
        req.headers_mut()
            .append("x-forwarded-for", f.parse().unwrap());
    }
    req
}

fn get_ip(forwarded: &[&str]) -> Request<Body> {
    let mut b = Request::builder().method(Method::GET).uri("/api/ip");
    for f in forwarded {
        b = b.header("x-forwarded-for", *f);
    }
    b.body(Body::empty()).unwrap()
}

async fn ip_seen(w: &World, peer: SocketAddr, forwarded: &[&str]) -> String {
    let answer = w.send_from(peer, get_ip(forwarded)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    answer.body
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let w = tenth_only().await;
    let before = w.snapshot();
    let answer = w
        .send_from(addr("1.2.3.4:40000"), update_forwarded(&["10.1.1.1"]))
        .await;
    assert_eq!(answer.pair(), (400, "updates from 1.2.3.4 not allowed"));
    assert_eq!(w.snapshot(), before);
    // The loopback is not trusted by default either.
    let answer = w
        .send_from(addr(PROXY), update_forwarded(&["10.1.1.1"]))
        .await;
    assert_eq!(answer.pair(), (400, "updates from 127.0.0.1 not allowed"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_for_is_believed() {
    let w = behind_proxy(tenth_only().await);
    let answer = w
        .send_from(addr(PROXY), update_forwarded(&["10.1.1.1"]))
        .await;
    assert_eq!(answer.pair(), (200, "OK"));
    assert_eq!(w.alerts().await, ["autocreated from 10.1.1.1"]);
}

#[tokio::test]
async fn the_address_the_proxy_appended_counts_not_the_first() {
    let w = behind_proxy(tenth_only().await);
    let before = w.snapshot();
    // The client sent `X-Forwarded-For: 10.1.1.1`; the proxy appended the real 1.2.3.4.
    let answer = w
        .send_from(addr(PROXY), update_forwarded(&["10.1.1.1, 1.2.3.4"]))
        .await;
    assert_eq!(answer.pair(), (400, "updates from 1.2.3.4 not allowed"));
    assert_eq!(w.snapshot(), before);
    // The same chain in two header lines.
    let answer = w
        .send_from(addr(PROXY), update_forwarded(&["10.1.1.1", "1.2.3.4"]))
        .await;
    assert_eq!(answer.pair(), (400, "updates from 1.2.3.4 not allowed"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn garbage_in_forwarded_for_falls_back_to_the_peer() {
    let w = behind_proxy(tenth_only().await);
    let before = w.snapshot();
    let answer = w
        .send_from(addr(PROXY), update_forwarded(&["not-an-address"]))
        .await;
    assert_eq!(answer.pair(), (400, "updates from 127.0.0.1 not allowed"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn x_remoteip_does_not_choose_the_address() {
    let w = behind_proxy(tenth_only().await);
    let before = w.snapshot();
    let form = Form::okerrupdate("p1", "test:hb", "OK").set("x_remoteip", "10.0.0.1");
    let answer = w
        .send_from(addr("1.2.3.4:40000"), post_form("/update", &form.encode()))
        .await;
    assert_eq!(answer.pair(), (400, "updates from 1.2.3.4 not allowed"));
    // Not even from a trusted proxy.
    let answer = w
        .send_from(addr(PROXY), post_form("/update", &form.encode()))
        .await;
    assert_eq!(answer.pair(), (400, "updates from 127.0.0.1 not allowed"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn api_ip_answers_the_address_and_a_newline() {
    let w = World::new().await;
    assert_eq!(ip_seen(&w, addr("1.2.3.4:40000"), &[]).await, "1.2.3.4\n");
    assert_eq!(
        ip_seen(&w, addr("1.2.3.4:40000"), &["10.1.1.1"]).await,
        "1.2.3.4\n"
    );
    assert_eq!(
        ip_seen(&w, addr("[2001:db8::7]:443"), &[]).await,
        "2001:db8::7\n"
    );
    // An IPv4-mapped IPv6 peer (a dual-stack listener) is shown as IPv4.
    assert_eq!(
        ip_seen(&w, addr("[::ffff:1.2.3.4]:40000"), &[]).await,
        "1.2.3.4\n"
    );
    let w = behind_proxy(w);
    assert_eq!(ip_seen(&w, addr(PROXY), &["10.1.1.1"]).await, "10.1.1.1\n");
    assert_eq!(
        ip_seen(&w, addr(PROXY), &["10.1.1.1, 1.2.3.4"]).await,
        "1.2.3.4\n"
    );
    // Proxies in the chain are skipped from the right.
    assert_eq!(
        ip_seen(&w, addr(PROXY), &["5.6.7.8, 127.0.0.9"]).await,
        "5.6.7.8\n"
    );
    assert_eq!(
        ip_seen(&w, addr(PROXY), &["2001:db8::1"]).await,
        "2001:db8::1\n"
    );
    assert_eq!(ip_seen(&w, addr(PROXY), &[]).await, "127.0.0.1\n");
    // A proxy-looking peer outside the trusted networks is not believed.
    assert_eq!(
        ip_seen(&w, addr("128.0.0.1:1"), &["10.1.1.1"]).await,
        "128.0.0.1\n"
    );
}
