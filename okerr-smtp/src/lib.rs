//! okerr's SMTP daemon (spec §9): updates by e-mail.
//!
//! A message to `TEXTID@any.domain` carrying lines like
//!
//! ```text
//! %%% backup.status = OK
//! %%% backup.details = 12 GB in 4 min
//! %%% backup.secret = s3cret
//! ```
//!
//! updates the indicators it names in that project, through [`okerr::Engine::update_all`]:
//! the updates of one message apply all or none. Unlike okerr's daemon, they have the
//! source `smtp`, so the policy's `smtpupdate` switch and its subnets (checked against
//! the SMTP peer's address) apply, and a refusal is answered with a 5xx reply carrying
//! okerr's reason.
//!
//! - [`parse_updates`] and [`message_text`]: the pure part (which text, which lines);
//! - [`serve`]: the SMTP server on a bound listener, until a shutdown future resolves;
//! - [`serve_connection`]: one session on a stream accepted elsewhere (a TLS stream, an
//!   in-memory pipe for tests and fuzzing).
//!
//! The SMTP commands are parsed by Stalwart's `smtp-proto`, the MIME structure by its
//! `mail-parser`; this crate holds the session's state machine and the accept loop.

#![forbid(unsafe_code)]

mod parse;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use okerr::Engine;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use parse::{ParseError, message_text, parse_updates};

/// The limits and names of the SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// The largest message accepted, in bytes (advertised as `SIZE`; larger: 552).
    pub max_message_size: usize,
    /// The longest line of a message, in bytes with its line end (RFC 5321 asks for at
    /// least 1000). Command lines are bounded by `smtp-proto` (4096).
    pub max_line_length: usize,
    /// The most recipients of one message.
    pub max_recipients: usize,
    /// The most indicators one message may update.
    pub max_updates: usize,
    /// The longest wait for the client's next bytes.
    pub idle_timeout: Duration,
    /// The longest a connection may last.
    pub session_timeout: Duration,
    /// Connections served at once; more are answered 421 and closed.
    pub max_connections: usize,
    /// Bad commands tolerated in one connection before it is closed.
    pub max_errors: usize,
}

impl Default for SmtpConfig {
    /// `okerr`, 1 MiB messages, 10 000-byte lines, 10 recipients, 100 updates, 60 s idle,
    /// 10 min per connection, 256 connections, 20 errors.
    fn default() -> Self {
        SmtpConfig {
            hostname: "okerr".to_owned(),
            max_message_size: 1024 * 1024,
            max_line_length: 10_000,
            max_recipients: 10,
            max_updates: 100,
            idle_timeout: Duration::from_secs(60),
            session_timeout: Duration::from_secs(600),
            max_connections: 256,
            max_errors: 20,
        }
    }
}

/// Serves SMTP on `listener` until `shutdown` resolves; then stops accepting, tells the
/// idle clients `421` and waits for the connections to end (a message being applied is
/// finished first).
///
/// # Errors
/// None so far: failed accepts are logged and retried.
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    config: SmtpConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut sessions = JoinSet::new();
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Replies are small writes: send each at once (no Nagle delay).
                    let _ = stream.set_nodelay(true);
                    let slot = slots.clone().try_acquire_owned().ok();
                    let (engine, config, stopped) =
                        (engine.clone(), config.clone(), stopped.clone());
                    sessions.spawn(async move {
                        match slot {
                            Some(_slot) => {
                                session::run(stream, peer, &engine, &config, stopped).await;
                            }
                            None => session::refuse_busy(stream, peer, &config).await,
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: let connections end first.
                    tracing::warn!(error = %e, "smtp: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "smtp: a session task failed");
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    while let Some(done) = sessions.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "smtp: a session task failed");
        }
    }
    tracing::info!("smtp: stopped");
    Ok(())
}

/// Serves one SMTP session on `stream`, a connection from `peer` accepted elsewhere,
/// until QUIT, EOF, an error or a timeout of `config`: what [`serve`] runs for each
/// connection it accepts, without the connection limit and the shutdown signal.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    engine: &Engine,
    config: &SmtpConfig,
) {
    // Never sent: the session ends by itself.
    let (_running, stopped) = watch::channel(false);
    session::run(stream, peer, engine, config, stopped).await;
}
