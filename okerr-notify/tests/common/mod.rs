//! A webhook endpoint for the notifier tests: an axum listener on 127.0.0.1.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

/// What a webhook endpoint received: each request's form field `data`.
#[derive(Clone, Default)]
pub struct Hooks {
    pub received: Arc<Mutex<Vec<String>>>,
    /// Answer 500 to this many requests first.
    pub fail_first: Arc<Mutex<usize>>,
}

impl Hooks {
    pub fn data(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }
}

/// Starts a webhook endpoint on 127.0.0.1; returns its URL.
pub async fn webhook_endpoint(hooks: Hooks) -> url::Url {
    use axum::extract::{Form, State};
    use axum::http::StatusCode;
    #[derive(serde::Deserialize)]
    struct Data {
        data: String,
    }
    async fn hook(State(h): State<Hooks>, Form(form): Form<Data>) -> StatusCode {
        let mut fail = h.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        h.received.lock().unwrap().push(form.data);
        StatusCode::OK
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(hooks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url::Url::parse(&format!("http://{addr}/hook")).unwrap()
}

/// The outbound networks of these tests: the endpoints listen on 127.0.0.1.
pub fn loopback() -> okerr::OutboundNetworks {
    okerr::OutboundNetworks(vec!["127.0.0.0/8".parse().unwrap()])
}
