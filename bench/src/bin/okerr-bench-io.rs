//! How fast okerr's front ends and notifiers are, on a SQLite file on this machine:
//!
//! - **alert mails**: `EmailNotifier` delivering released alerts to a local relay (Python's
//!   `aiosmtpd`, from `OKERR_TEST_AIOSMTPD`; skipped without it), one mail per recipient;
//! - **updates by e-mail**: `okerr_smtp::serve` taking messages from small clients over
//!   loopback, 1 update per message and one connection per message (as an MTA without a
//!   connection cache), from 1 and 8 concurrent senders;
//! - **project page**: `GET /p/{textid}` rendered by `okerr_http::router` (no socket) for a
//!   project of 100, 1,000 and 5,000 indicators.
//!
//! ```sh
//! cargo run --release -p okerr-bench --bin okerr-bench-io
//! ```
//!
//! The report (Markdown) goes to stdout.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use chrono::TimeDelta;
use okerr::project::sha256_hex;
use okerr::testing::ManualClock;
use okerr::{
    Email, Engine, EngineConfig, Member, NewProject, Notifier, Storage, TextId, UpdateRequest,
};
use okerr_backend_sqlite::SqliteStorage;
use okerr_http::{ADMIN_TOKEN_SETTING, AppState, HttpConfig};
use okerr_notify::{EmailNotifier, MailConfig};
use tower::ServiceExt;
use url::Url;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const TEXTID: &str = "bench";

async fn storage(dir: &tempfile::TempDir) -> Result<Arc<dyn Storage>> {
    let url = format!("sqlite://{}", dir.path().join("okerr.db").display());
    let storage = SqliteStorage::connect(&url).await?;
    storage.migrate().await?;
    Ok(Arc::new(storage))
}

fn member(i: usize) -> Result<Member> {
    Ok(Member {
        email: Email::parse(&format!("ops{i}@example.com"))?,
        alerts: true,
        summary: false,
    })
}

fn per_second(n: usize, d: Duration) -> String {
    format!("{:.0}", n as f64 / d.as_secs_f64())
}

/// A free port on 127.0.0.1.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Alert mails: 2,000 alerts of 200 indicators for 10 recipients, delivered by the engine
/// in batches of 100 (10 mails of 10 alerts per batch).
async fn alert_mails(report: &mut String) -> Result<()> {
    let Some(python) = std::env::var_os("OKERR_TEST_AIOSMTPD") else {
        report.push_str("| alert mails | skipped: OKERR_TEST_AIOSMTPD is unset | |\n");
        return Ok(());
    };
    let port = free_port()?;
    let maildir = tempfile::tempdir()?;
    let _relay = Relay(
        Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("aiosmtpd did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = tempfile::tempdir()?;
    let storage = storage(&dir).await?;
    let mut project = NewProject::new("bench", TextId::parse(TEXTID)?);
    project.members = (0..10).map(member).collect::<Result<_>>()?;
    storage.create_project(project).await?;
    let clock = ManualClock::at_epoch();
    let public = Url::parse("https://okerr.example.net/")?;
    let mail = MailConfig::new(
        &format!("smtp://127.0.0.1:{port}"),
        "okerr@example.net",
        public,
    )?;
    let notifier: Arc<dyn Notifier> = Arc::new(EmailNotifier::new(
        mail,
        storage.clone(),
        Arc::new(clock.clone()),
    ));
    let engine = Engine::with_config(storage, notifier, Arc::new(clock.clone()), unlimited());
    // 200 autocreate alerts × 10 recipients = 2,000 outbox entries.
    for i in 0..200 {
        engine
            .update(UpdateRequest::new(TEXTID, format!("srv{i:03}"), "OK"))
            .await?;
    }
    clock.advance(TimeDelta::seconds(1));
    let start = Instant::now();
    let mut delivered = 0;
    loop {
        let r = engine.deliver_released().await?;
        if r.failed > 0 {
            return Err(format!("{} deliveries failed", r.failed).into());
        }
        if r.delivered == 0 {
            break;
        }
        delivered += r.delivered;
    }
    let took = start.elapsed();
    let mails = std::fs::read_dir(maildir.path().join("mail").join("new"))?.count();
    report.push_str(&format!(
        "| alert mails to aiosmtpd | {delivered} alerts in {mails} mails in {:.2} s | {} alerts/s, {} mails/s |\n",
        took.as_secs_f64(),
        per_second(delivered, took),
        per_second(mails, took),
    ));
    Ok(())
}

/// One message over a new connection, as a minimal SMTP client: each command, then its
/// reply, which must be 2xx or 3xx.
async fn send_one(port: u16, body: &str) -> std::result::Result<(), String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    let mut expect = async |what: &str| -> std::result::Result<(), String> {
        loop {
            let line = replies
                .next_line()
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("closed after {what}"))?;
            if !line.starts_with('2') && !line.starts_with('3') {
                return Err(format!("{what}: {line}"));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    expect("greeting").await?;
    let data = format!("{body}.\r\n");
    let rcpt = format!("RCPT TO:<{TEXTID}@update.example>\r\n");
    for command in [
        "EHLO bench\r\n",
        "MAIL FROM:<cron@host.example>\r\n",
        &rcpt,
        "DATA\r\n",
        &data,
        "QUIT\r\n",
    ] {
        write
            .write_all(command.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        expect(command.lines().next().unwrap_or_default()).await?;
    }
    Ok(())
}

/// Updates by e-mail: `n` messages of one `%%%` update each, from `senders` concurrent
/// clients, a new connection per message.
async fn smtp_updates(report: &mut String, senders: usize, n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let storage = storage(&dir).await?;
    storage
        .create_project(NewProject::new("bench", TextId::parse(TEXTID)?))
        .await?;
    let engine = Engine::without_notifier(storage, Arc::new(okerr::SystemClock), unlimited());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(okerr_smtp::serve(
        listener,
        engine,
        okerr_smtp::SmtpConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..senders {
        tasks.spawn(async move {
            for i in (c..n).step_by(senders) {
                let status = if i % 2 == 0 { "OK" } else { "ERR" };
                let body = format!(
                    "Subject: update\r\n\r\n%%% host{:02}.status = {status}\r\n",
                    i % 100
                );
                send_one(port, &body).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let took = start.elapsed();
    let _ = stop.send(());
    server.await??;
    report.push_str(&format!(
        "| updates by e-mail, {senders} sender(s) | {n} messages in {:.2} s | {} messages/s |\n",
        took.as_secs_f64(),
        per_second(n, took)
    ));
    Ok(())
}

/// The project page of a project of `n` indicators: median and slowest of 20 renders.
async fn project_page(report: &mut String, n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let storage = storage(&dir).await?;
    storage
        .create_project(NewProject::new("bench", TextId::parse(TEXTID)?))
        .await?;
    storage
        .put_setting(ADMIN_TOKEN_SETTING, &sha256_hex("admin-token"))
        .await?;
    let engine = Engine::without_notifier(storage, Arc::new(okerr::SystemClock), unlimited());
    for i in 0..n {
        let status = if i % 10 == 0 { "ERR" } else { "OK" };
        let mut req = UpdateRequest::new(TEXTID, format!("host{i:05}:apache2"), status);
        req.details = Some("apache2 is running, 12 workers".to_owned());
        req.tags = Some("web,prod".to_owned());
        engine.update(req).await?;
    }
    let router = okerr_http::router(AppState::new(
        engine,
        HttpConfig::new(Url::parse("http://127.0.0.1/")?),
    ))
    .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..20 {
        let req = Request::get(format!("/p/{TEXTID}"))
            .header("x-api-key", "admin-token")
            .body(Body::empty())?;
        let start = Instant::now();
        let response = router.clone().oneshot(req).await?;
        if !response.status().is_success() {
            return Err(format!("GET /p/{TEXTID}: {}", response.status()).into());
        }
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        times.push(start.elapsed());
        size = body.len();
    }
    times.sort();
    report.push_str(&format!(
        "| project page, {n} indicators | {} KB | median {:.1} ms, slowest {:.1} ms |\n",
        size / 1000,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    ));
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut report = String::from("| what | work | rate |\n|---|---|---|\n");
    alert_mails(&mut report).await?;
    smtp_updates(&mut report, 1, 1_000).await?;
    smtp_updates(&mut report, 8, 2_000).await?;
    for n in [100, 1_000, 5_000] {
        project_page(&mut report, n).await?;
    }
    print!("{report}");
    Ok(())
}

/// The engine's configuration for a benchmark: no indicator limit and no autocreate rate
/// (the set-up creates its indicators as fast as it can).
fn unlimited() -> EngineConfig {
    EngineConfig {
        settings: okerr::Settings::default().unlimited(),
        ..EngineConfig::default()
    }
}
