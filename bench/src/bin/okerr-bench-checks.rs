//! How many active checks one node runs per second, against local peers: `httpstatus` of
//! an HTTP server on 127.0.0.1 (axum) and `tcpport` of a TCP listener on 127.0.0.1, each
//! at 1, 16, 64 and 256 checks at once (`okerr_checks::Checker::check`, every check a new
//! connection as okerr's sensor makes). The peers listen on 32 loopback addresses
//! (127.0.0.1 … 127.0.0.32) and the checks take them in turn, as a node checks many
//! hosts: on one address the client ports in TIME_WAIT run out after ~28,000 checks.
//!
//! ```sh
//! cargo run --release -p okerr-bench --bin okerr-bench-checks [-- CHECKS ROUNDS]
//! ```
//!
//! Each row runs CHECKS checks (default 5,000) ROUNDS times (default 5) and reports the
//! median and the spread of the rounds. The report (Markdown) goes to stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use okerr::{ActiveArgs, ActiveMethod, OutboundNetworks, Status};
use okerr_checks::{CheckConfig, Checker};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The loopback addresses the peers listen on.
const PEERS: u8 = 32;

async fn http_peer(ip: u8) -> Result<std::net::SocketAddr> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Welcome" }));
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.".to_owned() + &ip.to_string(), 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn tcp_peer(ip: u8) -> Result<std::net::SocketAddr> {
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.".to_owned() + &ip.to_string(), 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"220 bench ESMTP\r\n").await;
            });
        }
    });
    Ok(addr)
}

/// Runs `n` checks, of each of `targets` in turn, `concurrency` at once; the time taken
/// and the failures.
async fn round(
    checker: &Checker,
    targets: &[ActiveArgs],
    n: usize,
    concurrency: usize,
) -> (Duration, usize) {
    let gate = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let args = targets[i % targets.len()].clone();
        let (checker, gate) = (checker.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            checker
                .check(&args, okerr::Clock::now(&okerr::SystemClock))
                .await
                .status
                == Status::Ok
        });
    }
    let mut failed = 0;
    while let Some(ok) = tasks.join_next().await {
        if !matches!(ok, Ok(true)) {
            failed += 1;
        }
    }
    (start.elapsed(), failed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let checks: usize = argv.next().map(|s| s.parse()).transpose()?.unwrap_or(5_000);
    let rounds: usize = argv.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let checker = Checker::new(CheckConfig {
        outbound: OutboundNetworks::everything(),
        ..CheckConfig::default()
    })?;
    let mut http = Vec::new();
    let mut tcp = Vec::new();
    for ip in 1..=PEERS {
        http.push(http_peer(ip).await?);
        tcp.push(tcp_peer(ip).await?);
    }
    let each = |method: ActiveMethod,
                args: &dyn Fn(std::net::SocketAddr) -> Vec<(&'static str, String)>,
                peers: &[std::net::SocketAddr]|
     -> Result<Vec<ActiveArgs>> {
        peers
            .iter()
            .map(|p| {
                let a = args(*p);
                Ok(ActiveArgs::with(
                    method,
                    a.iter().map(|(k, v)| (*k, v.as_str())),
                )?)
            })
            .collect()
    };
    let cases = [
        (
            "httpstatus",
            each(
                ActiveMethod::HttpStatus,
                &|p| vec![("url", format!("http://{p}/"))],
                &http,
            )?,
        ),
        (
            "tcpport",
            each(
                ActiveMethod::TcpPort,
                &|p| vec![("host", p.ip().to_string()), ("port", p.port().to_string())],
                &tcp,
            )?,
        ),
        (
            "tcpport with substr",
            each(
                ActiveMethod::TcpPort,
                &|p| {
                    vec![
                        ("host", p.ip().to_string()),
                        ("port", p.port().to_string()),
                        ("substr", "ESMTP".to_owned()),
                    ]
                },
                &tcp,
            )?,
        ),
    ];
    println!("# okerr-bench-checks: {checks} checks a round, median of {rounds} rounds\n");
    println!("| check | at once | checks/s (median) | min … max | failed |");
    println!("|---|---:|---:|---:|---:|");
    for (name, args) in &cases {
        for concurrency in [1, 16, 64, 256] {
            let _ = round(&checker, args, 200.min(checks), concurrency).await; // warm-up
            let mut rates = Vec::new();
            let mut failed = 0;
            for _ in 0..rounds {
                let (took, f) = round(&checker, args, checks, concurrency).await;
                rates.push(checks as f64 / took.as_secs_f64());
                failed += f;
            }
            let (lo, hi) = (
                rates.iter().copied().fold(f64::MAX, f64::min),
                rates.iter().copied().fold(0.0, f64::max),
            );
            println!(
                "| {name} | {concurrency} | {:.0} | {lo:.0} … {hi:.0} | {failed} |",
                median(rates)
            );
        }
    }
    Ok(())
}
