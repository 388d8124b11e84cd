//! What the fuzz targets share: one runtime, and a world as new for every input (a
//! memory store with one project, an engine on a manual clock, the server's router), so
//! that every crash replays from its input alone.
//!
//! Building the world and its router costs more than most inputs, so [`run`] keeps it
//! while an input leaves the store as it found it, and builds a new one after any input
//! that changed it: each input starts from the same store either way.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{ApiKey, Engine, MemorySnapshot, MemoryStorage, NewProject, Storage, TextId};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// The project's TextID; `mytextid` (the captured client requests') is an alias.
pub const TEXTID: &str = "p1";

/// The peer every request and session comes from.
pub const PEER: &str = "1.2.3.4:40000";

/// One single-threaded runtime for every input: building one per input would cost more
/// than most inputs.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime")
    })
}

/// A memory store with project `p1` (alias `mytextid`, an API key), an engine on it and
/// the server's router around the engine.
pub struct World {
    /// The store, to compare snapshots.
    pub storage: Arc<MemoryStorage>,
    /// The engine the front ends call.
    pub engine: Engine,
    router: Router,
    initial: MemorySnapshot,
}

/// What [`run`] gives back.
#[derive(Debug)]
pub struct Run<T> {
    /// The closure's value.
    pub value: T,
    /// The store afterwards.
    pub after: MemorySnapshot,
    /// Whether the store is not what it was before.
    pub changed: bool,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Runs `f` on a world in its initial state, in [`runtime`].
pub fn run<T>(f: impl AsyncFnOnce(&World) -> T) -> Run<T> {
    let kept = WORLD.with(|w| w.borrow_mut().take());
    runtime().block_on(async {
        let world = match kept {
            Some(world) => world,
            None => World::new().await,
        };
        let value = f(&world).await;
        let after = world.snapshot();
        let changed = after != world.initial;
        if !changed {
            WORLD.with(|w| *w.borrow_mut() = Some(world));
        }
        Run {
            value,
            after,
            changed,
        }
    })
}

impl World {
    /// A new world; call it inside [`runtime`] (the engine spawns its batcher there).
    async fn new() -> World {
        let storage = Arc::new(MemoryStorage::new());
        let clock = ManualClock::at_epoch();
        let mut new = NewProject::new("fuzz", TextId::parse(TEXTID).expect("textid"));
        new.aliases.push(TextId::parse("mytextid").expect("textid"));
        new.api_keys.push(ApiKey::new(
            "k1",
            "SECRETKEY",
            "fuzz",
            okerr::Clock::now(&clock),
        ));
        storage.create_project(new).await.expect("project");
        let engine = Engine::new(
            storage.clone(),
            Arc::new(RecordingNotifier::new()),
            Arc::new(clock),
        );
        let state = okerr_http::AppState::new(
            engine.clone(),
            okerr_http::HttpConfig::new("http://127.0.0.1:8080".parse().expect("url")),
        );
        let peer: SocketAddr = PEER.parse().expect("peer");
        let router = okerr_http::router(state).layer(MockConnectInfo(peer));
        let initial = storage.snapshot();
        World {
            storage,
            engine,
            router,
            initial,
        }
    }

    /// What the store holds.
    pub fn snapshot(&self) -> MemorySnapshot {
        self.storage.snapshot()
    }

    /// `POST path` with this body and `Content-Type` through the server's router.
    pub async fn post(&self, path: &str, content_type: Option<&[u8]>, body: Vec<u8>) -> Answer {
        let mut req = Request::builder().method(Method::POST).uri(path);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .expect("a request");
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes()
            .to_vec();
        Answer { status, body }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The checks every answer of `/update` passes: no server error (the store is in
    /// memory and cannot fail), plain text, `OK` exactly when the status is 200.
    pub fn check(&self) {
        let text = String::from_utf8_lossy(&self.body);
        assert!(
            !self.status.is_server_error(),
            "a server error for a client's input: {} {text:?}",
            self.status
        );
        assert!(std::str::from_utf8(&self.body).is_ok(), "a body not UTF-8");
        if self.status == StatusCode::OK {
            assert_eq!(text, "OK", "200 without OK");
        } else {
            assert!(!text.trim().is_empty(), "a refusal without a reason");
        }
    }
}
