//! `GET /api/director/{textid}`: the base URL and `\n`, the caller's address in `Client-IP`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{World, addr};
use okerr_http::HttpConfig;

#[tokio::test]
async fn the_director_answers_the_public_url() {
    let w = World::new().await;
    let before = w.snapshot();
    let answer = w.get("/api/director/p1").await;
    // The public URL was given without a trailing slash; the director adds one.
    assert_eq!(answer.pair(), (200, "http://127.0.0.1:8080/\n"));
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    assert_eq!(answer.headers.get("client-ip").unwrap(), "1.2.3.4");
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn an_alias_textid_works() {
    let w = World::new().await;
    for textid in ["p1-alias", "mytextid"] {
        let answer = w.get(&format!("/api/director/{textid}")).await;
        assert_eq!(answer.pair(), (200, "http://127.0.0.1:8080/\n"), "{textid}");
    }
}

#[tokio::test]
async fn an_unknown_textid_is_an_empty_404() {
    let w = World::new().await;
    for textid in ["nope", "user%40example.com", "p:17", "P1"] {
        let answer = w.get(&format!("/api/director/{textid}")).await;
        assert_eq!(answer.pair(), (404, ""), "{textid}");
        assert!(answer.headers.get("client-ip").is_none(), "{textid}");
    }
}

#[tokio::test]
async fn the_client_ip_header_is_the_client_address() {
    let w = World::new().await;
    let answer = w
        .send_from(
            addr("[2001:db8::5]:5000"),
            common::request(axum::http::Method::GET, "/api/director/p1", None, ""),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers.get("client-ip").unwrap(), "2001:db8::5");
    let mut w = w;
    w.config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let mut req = common::request(axum::http::Method::GET, "/api/director/p1", None, "");
    req.headers_mut()
        .insert("x-forwarded-for", "10.1.1.1".parse().unwrap());
    let answer = w.send_from(addr("127.0.0.1:1"), req).await;
    assert_eq!(answer.headers.get("client-ip").unwrap(), "10.1.1.1");
}

#[tokio::test]
async fn a_public_url_with_a_path_keeps_it() {
    let mut w = World::new().await;
    w.config = HttpConfig::new("https://okerr.example.com/node1".parse().unwrap());
    let answer = w.get("/api/director/p1").await;
    assert_eq!(answer.pair(), (200, "https://okerr.example.com/node1/\n"));
    w.config = HttpConfig::new("https://okerr.example.com/node1/".parse().unwrap());
    let answer = w.get("/api/director/p1").await;
    assert_eq!(answer.pair(), (200, "https://okerr.example.com/node1/\n"));
}

#[tokio::test]
async fn the_director_needs_no_key_and_answers_get_only() {
    let w = World::new().await;
    let answer = w
        .send(common::request(
            axum::http::Method::POST,
            "/api/director/p1",
            None,
            "",
        ))
        .await;
    assert_eq!(answer.status, 405);
}
