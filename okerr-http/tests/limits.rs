//! The body limit (413) and the bound of every field (400), with nothing stored.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use common::{Form, World, post_form, post_multipart};
use http_body_util::{BodyExt, Full};

async fn small_limit() -> World {
    let mut w = World::new().await;
    w.config.body_limit = 1024;
    w
}

/// okerrupdate's body for `test:hb`, padded with details to exactly `len` bytes.
fn body_of_len(len: usize) -> String {
    let base = Form::okerrupdate("p1", "test:hb", "OK")
        .set("details", "")
        .encode();
    assert!(base.len() < len);
    let body = base.replacen(
        "details=",
        &format!("details={}", "x".repeat(len - base.len())),
        1,
    );
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_nothing_is_stored() {
    let w = small_limit().await;
    let before = w.snapshot();
    let answer = w.post_form("/update", &body_of_len(2000)).await;
    assert_eq!(
        answer.pair(),
        (
            413,
            "Failed to buffer the request body: length limit exceeded"
        )
    );
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    assert_eq!(w.snapshot(), before);
    assert!(w.names().await.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_of_unknown_length_is_413() {
    // No Content-Length and no size hint (a chunked body): the limit holds while reading.
    let w = small_limit().await;
    let before = w.snapshot();
    let unsized_body = Full::new(Bytes::from(body_of_len(2000))).map_frame(|frame| frame);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/update")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::new(unsized_body))
        .unwrap();
    let answer = w.send(req).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn a_body_at_the_limit_is_read() {
    let w = small_limit().await;
    let answer = w.post_form("/update", &body_of_len(1024)).await;
    assert_eq!(answer.pair(), (200, "OK"));
    assert!(w.indicator("test:hb").await.is_some());
    let answer = w.post_form("/update", &body_of_len(1025)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_multipart_body_over_the_limit_is_413() {
    let w = small_limit().await;
    let before = w.snapshot();
    let form = Form::okerrupdate("p1", "test:hb", "OK").set("details", &"x".repeat(2000));
    let answer = w.send(post_multipart("/update", &form)).await;
    assert_eq!(
        answer.pair(),
        (413, "Bad form: Request payload is too large")
    );
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn the_default_limit_is_64_kib() {
    let w = World::new().await;
    assert_eq!(w.config.body_limit, okerr_http::DEFAULT_BODY_LIMIT);
    assert_eq!(okerr_http::DEFAULT_BODY_LIMIT, 64 * 1024);
    // details of 10000 characters are within every bound (then cut to 200).
    let form = Form::okerrupdate("p1", "test:hb", "OK").set("details", &"d".repeat(10_000));
    let answer = w.post_form("/update", &form.encode()).await;
    assert_eq!(answer.pair(), (200, "OK"));
    let stored = w.indicator("test:hb").await.unwrap();
    assert!(stored.details.chars().count() <= 200, "{}", stored.details);
    let before = w.snapshot();
    let body = body_of_len(64 * 1024 + 1);
    let answer = w.send(post_form("/update", &body)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(w.snapshot(), before);
}

/// Each field one character over its bound: okerr's form of the answer, 400.
#[tokio::test]
async fn a_field_over_its_bound_is_400() {
    let cases: [(&str, usize); 11] = [
        ("name", 1000),
        ("status", 2000),
        ("secret", 1000),
        ("details", 10_000),
        ("method", 2000),
        ("policy", 200),
        ("tags", 2000),
        ("desc", 2000),
        ("error", 1000),
        ("keypath", 255),
        ("origkeypath", 255),
    ];
    for (field, max) in cases {
        let w = World::new().await;
        w.push("test:hb", "OK").await;
        let before = w.snapshot();
        let form = Form::okerrupdate("p1", "test:hb", "OK").set(field, &"x".repeat(max + 1));
        let answer = w.post_form("/update", &form.encode()).await;
        assert_eq!(
            answer.pair(),
            (
                400,
                format!("Field '{field}' is too long (at most {max} characters)").as_str()
            ),
            "{field}"
        );
        assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
        assert_eq!(w.snapshot(), before, "{field}");
    }
}

#[tokio::test]
async fn the_status_bound_in_detail() {
    let w = World::new().await;
    w.push("test:hb", "OK").await;
    let before = w.snapshot();
    let form = Form::okerrupdate("p1", "test:hb", &"x".repeat(2001));
    let answer = w.post_form("/update", &form.encode()).await;
    assert_eq!(
        answer.pair(),
        (400, "Field 'status' is too long (at most 2000 characters)")
    );
    assert_eq!(w.snapshot(), before);
    // Characters are counted, not bytes: 2000 Cyrillic letters (4000 bytes) are fine.
    let form = Form::okerrupdate("p1", "test:str", &"Ж".repeat(2000)).set("method", "string");
    let answer = w.post_form("/update", &form.encode()).await;
    assert_eq!(answer.pair(), (200, "OK"));
    // The textid is bounded before it is looked up.
    let form = Form::okerrupdate(&"p".repeat(201), "test:hb", "OK");
    let answer = w.post_form("/update", &form.encode()).await;
    assert_eq!(
        answer.pair(),
        (400, "Field 'textid' is too long (at most 200 characters)")
    );
}

#[tokio::test]
async fn too_many_tags() {
    let w = World::new().await;
    let before = w.snapshot();
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let form = Form::okerrupdate("p1", "test:hb", "OK").set("tags", &tags.join(","));
    let answer = w.post_form("/update", &form.encode()).await;
    assert_eq!(answer.pair(), (400, "Too many tags (at most 50)"));
    assert_eq!(w.snapshot(), before);
    let form = Form::okerrupdate("p1", "test:hb", "OK").set("tags", &tags[..50].join(","));
    let answer = w.post_form("/update", &form.encode()).await;
    assert_eq!(answer.pair(), (200, "OK"));
    assert_eq!(w.indicator("test:hb").await.unwrap().tags.len(), 50);
}
