//! Seeds a running okerr with indicators for `bench/http.sh`: posts one update for each of
//! the names `bench:0` … `bench:{N-1}` to `POST /update`, with okerrupdate's form and
//! status `OK`, so that okerr autocreates them (policy `Default`). Many keep-alive
//! connections at once, over plain HTTP/1.1 on a TCP socket (no HTTP client library).
//!
//! ```sh
//! target/release/okerr-bench-seed 127.0.0.1:8080 TEXTID 100000 64
//! ```
//!
//! Arguments: the server's address, the project's TextID, the number of indicators and
//! the number of connections (default 32). An update that is not answered `200 OK` is
//! retried (up to 20 times, waiting 0.1 s longer each time); the exit status is 1 when a name could not be created. One line
//! of report on stdout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How often one name is tried before the seeding gives up on it.
const ATTEMPTS: u32 = 20;

/// The form okerrupdate posts (see `/work/shared/spec/captured-requests.txt`).
fn body(textid: &str, i: u64) -> String {
    format!(
        "textid={textid}&name=bench%3A{i}&status=OK&details=seed&secret=&method=heartbeat\
         &policy=Default&tags=&keypath=&origkeypath=&desc="
    )
}

/// One keep-alive connection.
struct Conn {
    stream: BufReader<TcpStream>,
    addr: String,
}

impl Conn {
    async fn open(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            addr: addr.to_owned(),
        })
    }

    /// Posts one form; the status code and the body of the answer.
    async fn post(&mut self, form: &str) -> Result<(u16, String)> {
        let request = format!(
            "POST /update HTTP/1.1\r\nHost: {}\r\nUser-Agent: okerr-bench-seed\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            self.addr,
            form.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err("connection closed in the headers".into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Takes names from `next` until there are none left; the number of retries.
async fn worker(addr: String, textid: String, n: u64, next: Arc<AtomicU64>) -> Result<u64> {
    let mut conn = Conn::open(&addr).await?;
    let mut retries = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(retries);
        }
        let form = body(&textid, i);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = match conn.post(&form).await {
                Ok(answer) => answer,
                Err(e) => {
                    // A broken connection: a fresh one, and the same name again.
                    conn = Conn::open(&addr).await?;
                    (0, e.to_string())
                }
            };
            match answer {
                (200, body) if body == "OK" => break,
                (status, body) if attempt >= ATTEMPTS => {
                    return Err(format!("bench:{i}: {status} {body:?}").into());
                }
                _ => {
                    // A 503 (the database busy past the server's bound) or a broken
                    // connection: wait a little longer each time, as a client would.
                    retries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                        .await;
                }
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(textid), Some(n)) = (
        args.first(),
        args.get(1),
        args.get(2).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: okerr-bench-seed ADDR TEXTID N [CONNECTIONS]");
        return std::process::ExitCode::FAILURE;
    };
    let connections = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(32u64);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("okerr-bench-seed: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let result: Result<u64> = runtime.block_on(async {
        let next = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..connections.min(n.max(1)))
            .map(|_| tokio::spawn(worker(addr.clone(), textid.clone(), n, next.clone())))
            .collect();
        let mut retries = 0;
        for w in workers {
            retries += w.await??;
        }
        Ok(retries)
    });
    match result {
        Ok(retries) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "seeded {n} indicators in {secs:.1} s ({:.0}/s, {connections} connections, {retries} retries)",
                n as f64 / secs
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("okerr-bench-seed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
