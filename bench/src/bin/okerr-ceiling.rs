//! The ceiling for `bench/http.sh`: an HTTP server that does everything okerr's
//! `/update` does on the way in and on the way out, and nothing in between.
//!
//! It listens on `127.0.0.1:PORT`, reads the form body of every request to `/update`
//! (`POST`, or `GET` with no body) into a map of fields exactly as `okerr-http` does
//! (`Bytes`, then `url::form_urlencoded`), and answers `200 OK` with the body `OK`. Same
//! axum, same hyper, same accept loop (`okerr_http::serve`), same allocator (mimalloc),
//! same runtime settings as `okerr serve` (a multi-threaded tokio runtime with the
//! defaults of `#[tokio::main]`: one worker per core), the client address taken
//! the same way; no storage, no engine, no log. What okerr reaches against it, under the
//! same load, is the best okerr can do on this machine.
//!
//! ```sh
//! target/release/okerr-ceiling 8099
//! ```
//!
//! When ready it prints `okerr-ceiling listening on http://ADDR/` on stderr; it runs until
//! killed.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::routing::any;

/// The same allocator as `okerr serve`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `/update`: the fields of the form, parsed and dropped; `400` without the three that
/// okerr requires, as okerr would.
async fn update(
    ConnectInfo(_ip): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let fields: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if ["textid", "name", "status"]
        .iter()
        .all(|f| fields.contains_key(*f))
        || body.is_empty()
    {
        (StatusCode::OK, "OK")
    } else {
        (StatusCode::BAD_REQUEST, "Missing field")
    }
}

fn main() -> std::process::ExitCode {
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: okerr-ceiling PORT");
        return std::process::ExitCode::FAILURE;
    };
    // As okerr-bin's main: `#[tokio::main]`'s defaults, written out.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("okerr-ceiling: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: std::io::Result<()> = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!(
            "okerr-ceiling listening on http://{}/",
            listener.local_addr()?
        );
        let app = Router::new()
            .route("/update", any(update))
            .route("/update/", any(update));
        // The same accept loop, timeouts and connection cap as `okerr serve`.
        okerr_http::serve(
            listener,
            app,
            okerr_http::ServerConfig::default(),
            std::future::pending(),
        )
        .await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("okerr-ceiling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
