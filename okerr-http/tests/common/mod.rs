//! Shared set-up for okerr-http's tests: a router over a memory store, driven with
//! `Router::oneshot` (no socket), the peer address chosen with `MockConnectInfo`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    ApiKey, Engine, Indicator, IndicatorName, LogLine, MemorySnapshot, MemoryStorage, NewProject,
    OutboxEntry, Payload, Project, Storage, TextId,
};
use okerr_http::{AppState, HttpConfig, router};
use tower::ServiceExt;

/// The peer every request comes from unless a test says otherwise.
pub const PEER: &str = "1.2.3.4:40000";
/// The API key of project `p1`.
pub const API_KEY: &str = "SECRETKEY";
/// The server's admin token.
pub const ADMIN_TOKEN: &str = "ADMINTOKEN";
/// The public URL the director answers (given without a trailing slash on purpose).
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// A project `p1` (aliases `p1-alias` and `mytextid`, the textid of the captured client
/// requests) with an API key, on a memory store, with an engine on a manual clock, and
/// the HTTP configuration the router is built from.
pub struct World {
    pub storage: Arc<MemoryStorage>,
    pub clock: ManualClock,
    pub notifier: RecordingNotifier,
    pub engine: Engine,
    pub project: Project,
    pub config: HttpConfig,
    pub peer: SocketAddr,
}

impl World {
    pub async fn new() -> World {
        World::with(|_| {}).await
    }

    /// A world whose project is changed by `edit` before it is stored.
    pub async fn with(edit: impl FnOnce(&mut NewProject)) -> World {
        let storage = Arc::new(MemoryStorage::new());
        let clock = ManualClock::at_epoch();
        let notifier = RecordingNotifier::new();
        let mut new = NewProject::new("test project", TextId::parse("p1").unwrap())
            .with_member(okerr::Email::parse("ops@example.com").unwrap());
        new.aliases.push(TextId::parse("p1-alias").unwrap());
        new.aliases.push(TextId::parse("mytextid").unwrap());
        new.api_keys.push(ApiKey::new(
            "k1",
            API_KEY,
            "test",
            okerr::Clock::now(&clock),
        ));
        edit(&mut new);
        let project = storage.create_project(new).await.unwrap();
        storage
            .put_setting(
                okerr_http::ADMIN_TOKEN_SETTING,
                &okerr::project::sha256_hex(ADMIN_TOKEN),
            )
            .await
            .unwrap();
        let engine = Engine::new(
            storage.clone(),
            Arc::new(notifier.clone()),
            Arc::new(clock.clone()),
        );
        World {
            storage,
            clock,
            notifier,
            engine,
            project,
            config: HttpConfig::new(PUBLIC_URL.parse().unwrap()),
            peer: PEER.parse().unwrap(),
        }
    }

    /// The router as the server builds it, with `peer` as the TCP peer.
    pub fn router_from(&self, peer: SocketAddr) -> Router {
        router(AppState::new(self.engine.clone(), self.config.clone())).layer(MockConnectInfo(peer))
    }

    /// Sends one request from the world's peer.
    pub async fn send(&self, req: Request<Body>) -> Answer {
        self.send_from(self.peer, req).await
    }

    /// Sends one request from `peer`.
    pub async fn send_from(&self, peer: SocketAddr, req: Request<Body>) -> Answer {
        let response = self.router_from(peer).oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// `POST path` with an urlencoded body, as python-requests sends it.
    pub async fn post_form(&self, path: &str, body: &str) -> Answer {
        self.send(post_form(path, body)).await
    }

    /// `GET path` without an API key.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(request(Method::GET, path, None, "")).await
    }

    /// `GET path` with `X-API-KEY: key`.
    pub async fn api_get(&self, path: &str, key: &str) -> Answer {
        self.send(request(Method::GET, path, Some(key), "")).await
    }

    /// `POST path` with `X-API-KEY: key` and an urlencoded body.
    pub async fn api_post(&self, path: &str, key: &str, body: &str) -> Answer {
        self.send(request(Method::POST, path, Some(key), body))
            .await
    }

    /// Pushes an update the way okerrupdate does and insists that it is accepted.
    pub async fn push(&self, name: &str, status: &str) {
        self.push_form(Form::okerrupdate("p1", name, status)).await;
    }

    /// Pushes a form to `/update` and insists that it is accepted.
    pub async fn push_form(&self, form: Form) {
        let answer = self.post_form("/update", &form.encode()).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "OK"),
            "push {form:?}"
        );
    }

    pub async fn indicator(&self, name: &str) -> Option<Indicator> {
        let name = IndicatorName::parse(name).unwrap();
        self.storage
            .indicator(self.project.id, &name)
            .await
            .unwrap()
    }

    pub async fn names(&self) -> Vec<String> {
        self.storage
            .indicators(self.project.id)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name.to_string())
            .collect()
    }

    pub async fn log(&self, name: &str) -> Vec<String> {
        let name = IndicatorName::parse(name).unwrap();
        let lines: Vec<LogLine> = self
            .storage
            .log(self.project.id, &name, 1000)
            .await
            .unwrap();
        lines.into_iter().map(|l| l.message).collect()
    }

    pub async fn outbox(&self) -> Vec<OutboxEntry> {
        self.storage.outbox(self.project.id).await.unwrap()
    }

    /// The texts of the alerts in the outbox.
    pub async fn alerts(&self) -> Vec<String> {
        self.outbox()
            .await
            .into_iter()
            .filter_map(|e| match e.notification.payload {
                Payload::Alert { message, .. } => Some(message),
                Payload::Webhook { .. } => None,
            })
            .collect()
    }

    pub fn snapshot(&self) -> MemorySnapshot {
        self.storage.snapshot()
    }
}

/// What came back: status, headers and the body as text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Status and body, for one `assert_eq!`.
    pub fn pair(&self) -> (u16, &str) {
        (self.status.as_u16(), self.body.as_str())
    }
}

/// A request with an optional `X-API-KEY` and an urlencoded body (empty: no
/// Content-Type, as okerrclient's `--api-create`).
pub fn request(method: Method, path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        b = b.header("x-api-key", key);
    }
    if !body.is_empty() {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    b.header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// `POST path` with python-requests' headers and an urlencoded body.
pub fn post_form(path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::USER_AGENT, "python-requests/2.34.2")
        .header(header::ACCEPT, "*/*")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// Python's `urllib.parse.quote_plus`: letters, digits and `_.-~` stay, a space becomes
/// `+`, every other byte of the UTF-8 is `%XX`.
pub fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Form fields in order, encoded like `urllib.parse.urlencode`.
#[derive(Debug, Clone, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// What the `okerrupdate` CLI sends (spec okerr-clients §3.2, §8): textid, name,
    /// status, secret, method, policy, tags, keypath, origkeypath, desc.
    pub fn okerrupdate(textid: &str, name: &str, status: &str) -> Form {
        Form::default()
            .set("textid", textid)
            .set("name", name)
            .set("status", status)
            .set("secret", "")
            .set("method", "heartbeat")
            .set("policy", "Default")
            .set("tags", "")
            .set("keypath", "")
            .set("origkeypath", "")
            .set("desc", "")
    }

    /// Sets a field in place, or appends it (details go after status, as the clients
    /// order them).
    pub fn set(mut self, key: &str, value: &str) -> Form {
        if let Some(field) = self.0.iter_mut().find(|(k, _)| k == key) {
            field.1 = value.to_owned();
        } else if key == "details"
            && let Some(i) = self.0.iter().position(|(k, _)| k == "status")
        {
            self.0.insert(i + 1, (key.to_owned(), value.to_owned()));
        } else {
            self.0.push((key.to_owned(), value.to_owned()));
        }
        self
    }

    /// Appends a field even if it is already there (a repeated field).
    pub fn append(mut self, key: &str, value: &str) -> Form {
        self.0.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Leaves a field out.
    pub fn without(mut self, key: &str) -> Form {
        self.0.retain(|(k, _)| k != key);
        self
    }

    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The same fields as `multipart/form-data`: the body and its Content-Type.
    pub fn multipart(&self) -> (String, String) {
        let boundary = "----okerrtestboundary7MA4YWxkTrZu0gW";
        let mut body = String::new();
        for (k, v) in &self.0 {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        (body, format!("multipart/form-data; boundary={boundary}"))
    }
}

/// A `multipart/form-data` POST of `form` to `path`.
pub fn post_multipart(path: &str, form: &Form) -> Request<Body> {
    let (body, content_type) = form.multipart();
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap()
}

/// The `Default` policy of a project being made.
pub fn default_policy(p: &mut NewProject) -> &mut okerr::Policy {
    p.policies
        .iter_mut()
        .find(|p| p.name.as_str() == "Default")
        .unwrap()
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
