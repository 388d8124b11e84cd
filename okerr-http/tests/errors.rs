//! A failure inside the server: answered `500 Internal error` as before, its cause kept in
//! the response and logged once, in the request's span (with its request id).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::World;
use http_body_util::BodyExt;
use okerr_http::{AppState, InternalError, router};
use tower::ServiceExt;

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn a_failure_is_answered_as_before_and_logged_once_with_the_request_id() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let w = World::new().await;
    // Served without `into_make_service_with_connect_info`: no peer address, a 500.
    let app = router(AppState::new(w.engine.clone(), w.config.clone()));
    let req = Request::get("/api/ip").body(Body::empty()).unwrap();
    let response = app.oneshot(req).await.unwrap();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/plain; charset=utf-8"
    );
    let cause = response.extensions().get::<InternalError>().unwrap();
    assert!(cause.to_string().contains("no peer address"), "{cause}");
    let id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Internal error");

    let failed: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|l| l.contains("request failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].contains(&format!("request_id={id}")),
        "{}",
        failed[0]
    );
    assert!(failed[0].contains("no peer address"), "{}", failed[0]);
}
