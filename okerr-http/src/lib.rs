//! okerr over HTTP: an axum [`Router`] that speaks the protocol of the real okerr clients
//! (`okerrupdate`, `okerrclient`): `POST /update`, the director, and the API.
//!
//! Every refusal and failure is an [`Error`], whose `IntoResponse` alone chooses the
//! status and the body (okerr's texts, byte for byte). A 500 carries its cause in the
//! response's extensions ([`InternalError`]); a layer of the router logs it, once, in the
//! request's span with its `x-request-id`.
//!
//! ```
//! use std::sync::Arc;
//! use okerr::{Engine, MemoryStorage, SystemClock, testing::RecordingNotifier};
//! use okerr_http::{AppState, HttpConfig, router};
//!
//! let engine = Engine::new(
//!     Arc::new(MemoryStorage::new()),
//!     Arc::new(RecordingNotifier::new()),
//!     Arc::new(SystemClock),
//! );
//! let config = HttpConfig::new("http://127.0.0.1:8080/".parse().unwrap());
//! let app = router(AppState::new(engine, config));
//! // okerr_http::serve(listener, app, ServerConfig::default(), shutdown).await
//! ```

#![forbid(unsafe_code)]

mod api;
mod client_ip;
mod error;
mod form;
mod server;
mod update;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use ipnet::IpNet;
use okerr::Engine;
use tower::ServiceExt;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use url::Url;

pub use client_ip::ClientIp;
pub use error::{Error, ErrorKind, InternalError, Page, RETRY_AFTER_SECS, Text, UNAVAILABLE};
pub use server::{ServerConfig, serve};
pub use web::{COOKIE_KEY_SETTING, SESSION_COOKIE};

/// The largest request body accepted by default: 64 KiB, far more than any update.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// How long `/update` waits for the engine by default before it answers `503`.
pub const DEFAULT_STORAGE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long `/healthz` waits for its database probe by default before it says not ready.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_millis(500);

/// The server setting that holds the SHA-256 of the admin token.
pub const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// How the HTTP front end is set up.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The base URL clients reach this server at; the director answers it.
    pub public_url: Url,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies). Anyone else's is
    /// ignored, so a client cannot pick the address its updates are checked against.
    pub trusted_proxies: Vec<IpNet>,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// The longest `/update` waits for the engine (the database) before it answers `503`
    /// with `Retry-After`; the update may still be committed later (the client retries).
    pub storage_timeout: Duration,
    /// The longest `/healthz` waits for its read and write probe of the database before
    /// it answers `503` (not ready).
    pub health_timeout: Duration,
    /// Where policy webhooks may point; the policies page refuses the others (the
    /// notifier checks again when it connects).
    pub outbound: okerr::OutboundNetworks,
}

impl HttpConfig {
    /// A configuration with no trusted proxy and the default body limit. A URL without a
    /// trailing `/` gets one, as the director must answer a base URL.
    pub fn new(mut public_url: Url) -> Self {
        if !public_url.path().ends_with('/') {
            let path = format!("{}/", public_url.path());
            public_url.set_path(&path);
        }
        HttpConfig {
            public_url,
            trusted_proxies: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            storage_timeout: DEFAULT_STORAGE_TIMEOUT,
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
            outbound: okerr::OutboundNetworks::default(),
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    engine: Engine,
    config: Arc<HttpConfig>,
    web: web::WebKeys,
    writes: Arc<WriteHealth>,
}

/// How long a failed `/update` (the database failed or did not answer) keeps `/healthz`
/// not ready when no later update succeeded.
pub(crate) const FAILED_WRITE_REMEMBERED: Duration = Duration::from_secs(10);

/// The outcome of the last `/update` that reached the database: `/healthz`'s own probe is
/// small and may still fit where a batch no longer does (a nearly full disk).
#[derive(Debug, Default)]
pub(crate) struct WriteHealth(std::sync::Mutex<Option<(std::time::Instant, bool)>>);

impl WriteHealth {
    pub(crate) fn record(&self, ok: bool) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((std::time::Instant::now(), ok));
    }

    /// Whether the last update failed, within [`FAILED_WRITE_REMEMBERED`].
    pub(crate) fn failing(&self) -> bool {
        matches!(
            *self.0.lock().unwrap_or_else(|e| e.into_inner()),
            Some((at, false)) if at.elapsed() < FAILED_WRITE_REMEMBERED
        )
    }
}

impl AppState {
    /// State around an engine.
    pub fn new(engine: Engine, config: HttpConfig) -> Self {
        AppState {
            engine,
            config: Arc::new(config),
            web: web::WebKeys::default(),
            writes: Arc::default(),
        }
    }

    /// How the last updates fared in the database.
    pub(crate) fn writes(&self) -> &WriteHealth {
        &self.writes
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The key of the pages' session cookies, loaded once.
    pub(crate) fn web_keys(&self) -> &web::WebKeys {
        &self.web
    }
}

/// The router: `/update`, `/api/…`, `/healthz`, and the web pages (`/login`, `/p/{textid}`,
/// `/i/{textid}/{name}`, `/admin`, …); the cause of every 500 is logged once, with the
/// request id. Serve it with [`serve`] (timeouts, a connection cap, a bounded shutdown), or
/// with `into_make_service_with_connect_info::<SocketAddr>()`: the peer address is the
/// client IP (see [`HttpConfig::trusted_proxies`]).
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let body_limit = state.config.body_limit;
    let routes = Router::new()
        .route("/update", any(update::update))
        .route("/update/", any(update::update))
        .route("/update/{*rest}", any(update::update))
        .route("/api/director/{textid}", get(api::director))
        .route("/api/indicators/{textid}", get(api::indicators))
        .route("/api/indicators/{textid}/", get(api::indicators))
        .route(
            "/api/indicators/{textid}/{*prefix}",
            get(api::indicators_prefix),
        )
        .route("/api/indicator/{textid}/{*name}", get(api::indicator))
        .route("/api/filter/{textid}", get(api::indicators))
        .route("/api/filter/{textid}/", get(api::indicators))
        .route("/api/filter/{textid}/{*conditions}", get(api::filter))
        .route("/api/tagfilter/{textid}", get(api::indicators))
        .route("/api/tagfilter/{textid}/", get(api::indicators))
        .route("/api/tagfilter/{textid}/{*tags}", get(api::tagfilter))
        .route("/api/get/{textid}/{*rest}", get(api::get_arg))
        .route("/api/getarg/{textid}/{*rest}", get(api::get_arg))
        .route("/api/set/{textid}/{*name}", post(api::set))
        .route("/api/setarg/{textid}/{*name}", post(api::set))
        .route("/api/create/{textid}/{*name}", any(api::create))
        .route("/api/delete/{textid}/{*name}", any(api::delete))
        .route("/api/noflap/{textid}/{*name}", post(api::noflap))
        .route("/api/checkmethods", get(api::checkmethods))
        .route(
            "/api/policy/{textid}/{name}",
            get(api::policy).post(api::set_policy),
        )
        .route("/api/outbox/{textid}", get(api::outbox))
        .route("/api/ip", get(api::ip))
        .route("/healthz", get(api::health))
        .merge(web::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        // Inside the request's span (the trace layer wraps it): a logged line has the
        // request id.
        .layer(axum::middleware::map_response(finish_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(
            request_id,
            SequentialRequestId::new(),
        ))
        .with_state(state);
    // okerr collapses leading double slashes (`//update`) when the path does not resolve.
    let again = routes.clone();
    let routes = routes.fallback(move |mut req: Request| async move {
        let path = req.uri().path();
        if !path.starts_with("//") {
            return Error::<Text>::not_found("Not Found\n").into_response();
        }
        let collapsed = format!("/{}", path.trim_start_matches('/'));
        let rewritten = match req.uri().query() {
            Some(q) => format!("{collapsed}?{q}"),
            None => collapsed,
        };
        match rewritten.parse() {
            Ok(uri) => {
                *req.uri_mut() = uri;
                match again.oneshot(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            Err(_) => Error::<Text>::not_found("Not Found\n").into_response(),
        }
    });
    routes.layer(axum::middleware::map_response(safe_headers))
}

/// On every answer: browsers never guess a type (an echoed name stays text), and nothing
/// is cached unless a handler says so (the indicator JSON holds `args.secret`; pages set
/// no-store themselves, the style sheet is public). One layer for both headers: each
/// layer is a share of a request's cost on `/update`.
async fn safe_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(header::HeaderValue::from_static("no-store"));
    response
}

/// What every answer of a route goes through: the cause of a 500 is logged
/// ([`error::log_internal_error`]), and a refused body closes the connection.
async fn finish_response(response: Response) -> Response {
    close_after_refused_body(error::log_internal_error(response))
}

/// Request ids `PREFIX-N`: a random prefix per router and a counter. Unique like a UUID
/// for the life of a process, without a `getrandom` system call per request (a UUID v4
/// per request was a visible share of the update path).
#[derive(Debug, Clone)]
struct SequentialRequestId {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl SequentialRequestId {
    fn new() -> SequentialRequestId {
        let prefix = format!("{:016x}", rand::random::<u64>());
        SequentialRequestId {
            prefix: prefix.into(),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n}", self.prefix);
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

/// The span of a request: method, path and the request id (also sent back in
/// `x-request-id`), so every log line of a request can be found by its id.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// A body over the limit is not read to its end, so the connection cannot carry another
/// request: say so, or a keep-alive client fails on its next one.
fn close_after_refused_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

/// A plain-text answer. okerr's bodies are short texts that clients print; they are sent
/// as `text/plain` so that a name echoed in an error can never become markup.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}
