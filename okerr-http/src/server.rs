//! Serving the [`Router`](axum::Router) over HTTP/1.1 with real limits ([`serve`]): a
//! header timeout, a body timeout and an idle keep-alive timeout per connection, a cap
//! on open connections, and a shutdown that is graceful first and forced after a grace
//! period. `axum::serve` has none of these: a client that sends half a header keeps its
//! connection (and a file descriptor) for ever.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::{Error, ErrorKind, Text};

/// The limits of [`serve`]. The defaults suit a server on the Internet; every one is an
/// operator setting of `okerr serve` (`docs/operations.md`, "Limits and timeouts").
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a client has to send a complete request head (request line and headers),
    /// counted from the connection's accept, or from the first byte of a later request on
    /// a kept-alive connection. Past it the connection is closed. Default 10 s.
    pub header_timeout: Duration,
    /// How long a client has to send a whole request body, counted from the end of its
    /// head. Past it the request is answered `408` and the connection closed. Default 30 s.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait, after an answer, for the first byte of
    /// its next request. Past it the connection is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// The most connections open at once. At the cap the server stops accepting until one
    /// closes: new clients wait in the kernel's listen queue. Default 10,000.
    pub max_connections: usize,
    /// After the shutdown signal: how long requests in flight may take to finish before
    /// every connection is closed anyway. Default 10 s.
    pub grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            grace: Duration::from_secs(10),
        }
    }
}

/// How often a failing `accept` is logged at most (e.g. `Too many open files`).
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long the accept loop pauses after a failed `accept`, so that it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown` completes, with the limits of `config`.
/// The handlers see the peer address as `ConnectInfo<SocketAddr>` (as with
/// `into_make_service_with_connect_info`).
///
/// On `shutdown` the listener is closed, connections waiting between requests or in the
/// middle of a request head are closed at once, requests in flight are finished (their
/// connections then close), and after [`ServerConfig::grace`] whatever is left is closed.
///
/// # Errors
/// None today: a failing `accept` (out of file descriptors, …) is logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut last_error_log: Option<Instant> = None;
    let mut failed_accepts: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                connections.spawn(connection(
                    stream,
                    peer,
                    app.clone(),
                    config.clone(),
                    stopped.clone(),
                    permit,
                ));
            }
            Err(error) => {
                drop(permit);
                failed_accepts += 1;
                if last_error_log.is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_EVERY) {
                    tracing::error!(%error, failed_accepts, "accept failed");
                    last_error_log = Some(Instant::now());
                    failed_accepts = 0;
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let open = connections.len();
    tracing::info!(open, "stopped accepting; finishing the requests in flight");
    let drained = tokio::time::timeout(config.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace = ?config.grace,
            "grace period over: closing the connections left"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// One connection: hyper's HTTP/1.1 with a watchdog that enforces the header and idle
/// timeouts, the body deadline in each request, and the shutdown.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    config: Arc<ServerConfig>,
    mut stopped: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let phase = Arc::new(Phase::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        phase: phase.clone(),
    });
    let body_timeout = config.body_timeout;
    let in_service = phase.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        in_service.set(State::Busy);
        let app = app.clone();
        let phase = in_service.clone();
        async move {
            let tripped = Arc::new(AtomicBool::new(false));
            let mut req = req.map(|body| {
                Body::new(DeadlineBody {
                    inner: body,
                    deadline: Box::pin(tokio::time::sleep(body_timeout)),
                    tripped: tripped.clone(),
                })
            });
            req.extensions_mut().insert(ConnectInfo(peer));
            let response = match app.oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = if tripped.load(Ordering::Relaxed) {
                tracing::debug!(%peer, "request body not sent in time: closing");
                Error::<Text>::new(ErrorKind::BodyTimeout).into_response()
            } else {
                response
            };
            phase.set(State::Idle);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog below times heads out; hyper's own timer would also close idle
    // keep-alive connections after the header timeout.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = phase.deadline(&config);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if let Some(what) = phase.expired(&config) {
                    tracing::debug!(%peer, what, "closing a stalled connection");
                    return;
                }
            }
            _ = stopped.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
                if !matches!(phase.get().0, State::Busy) {
                    return;
                }
            }
        }
    }
}

/// Where a connection is: waiting for (or reading) a request head, handling a request,
/// or idle between requests; and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Busy,
    Idle,
}

#[derive(Debug)]
struct Phase(Mutex<(State, Instant)>);

impl Phase {
    /// A new connection waits for its first head.
    fn new() -> Self {
        Phase(Mutex::new((State::Head, Instant::now())))
    }

    fn get(&self) -> (State, Instant) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, state: State) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = (state, Instant::now());
    }

    /// Bytes arrived: on an idle connection they start a head.
    fn read_some(&self) {
        let mut phase = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if phase.0 == State::Idle {
            *phase = (State::Head, Instant::now());
        }
    }

    /// When the watchdog should look again.
    fn deadline(&self, config: &ServerConfig) -> Instant {
        let (state, since) = self.get();
        match state {
            State::Head => since + config.header_timeout,
            State::Idle => since + config.idle_timeout,
            // The body deadline and the handlers' own bounds cover a request; look again
            // later, when it may have become idle.
            State::Busy => Instant::now() + config.header_timeout.min(config.idle_timeout),
        }
    }

    /// The timeout that ran out, if one did.
    fn expired(&self, config: &ServerConfig) -> Option<&'static str> {
        let (state, since) = self.get();
        match state {
            State::Head if since.elapsed() >= config.header_timeout => Some("header timeout"),
            State::Idle if since.elapsed() >= config.idle_timeout => Some("idle timeout"),
            _ => None,
        }
    }
}

/// The socket, telling the connection's [`Phase`] when bytes arrive.
#[derive(Debug)]
struct Watched {
    inner: TcpStream,
    phase: Arc<Phase>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.phase.read_some();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must arrive whole before its deadline (unlike tower-http's
/// `TimeoutBody`, whose timer restarts at each frame, so a body sent a byte at a time
/// never times out). Past the deadline it fails and sets `tripped`.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    tripped: Arc<AtomicBool>,
}

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not sent in time")]
struct BodyTimedOut;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.tripped.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
