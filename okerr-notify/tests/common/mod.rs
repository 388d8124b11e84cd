//! Real peers for the notifier tests: Python's `aiosmtpd` as the receiving SMTP server
//! (writing a maildir), and an axum listener as the webhook endpoint.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Python with `aiosmtpd` installed, from `OKERR_TEST_AIOSMTPD`; `None` (the test
/// skips) when unset, a panic when `OKERR_REQUIRE_SMTP=1` demands it.
pub fn aiosmtpd_python() -> Option<PathBuf> {
    match std::env::var_os("OKERR_TEST_AIOSMTPD") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("OKERR_REQUIRE_SMTP").as_deref() == Ok("1") => {
            panic!("OKERR_REQUIRE_SMTP=1 but OKERR_TEST_AIOSMTPD is unset (run .ci/test)")
        }
        None => {
            eprintln!("skipping: OKERR_TEST_AIOSMTPD is unset (a Python with aiosmtpd)");
            None
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `aiosmtpd` server on 127.0.0.1 that stores every message it accepts in a maildir.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server on `port` and waits until it accepts connections.
    pub fn start(python: &PathBuf, port: u16) -> SmtpSink {
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python -m aiosmtpd");
        let sink = SmtpSink {
            child,
            port,
            maildir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    /// `smtp://127.0.0.1:{port}`, the relay URL for lettre.
    pub fn relay(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, raw, in the order of their file names.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(dir) = std::fs::read_dir(self.maildir.path().join("mail").join(sub)) {
                files.extend(dir.map(|e| e.unwrap().path()));
            }
        }
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    /// Waits (boundedly) until at least `n` messages arrived, and returns them all.
    pub fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "expected {n} messages, got {}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A received e-mail, decoded.
#[derive(Debug)]
pub struct Mail {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn parse(raw: &[u8]) -> Mail {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable message");
    let addr = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned()
    };
    Mail {
        to: addr(m.to()),
        from: addr(m.from()),
        subject: m.subject().unwrap_or_default().to_owned(),
        text: m.body_text(0).unwrap_or_default().into_owned(),
        html: m.body_html(0).unwrap_or_default().into_owned(),
    }
}

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
