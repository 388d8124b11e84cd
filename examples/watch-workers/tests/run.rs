//! Runs the example against a real webhook receiver on 127.0.0.1: worker 0 hangs, the
//! engine's scheduler (system clock) turns it ERR and the webhook notifier posts the
//! status change.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A webhook receiver: answers every POST with 200 and keeps each `data` field.
fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            for (k, v) in url::form_urlencoded::parse(&body) {
                if k == "data" {
                    keep.lock().unwrap().push(v.into_owned());
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    (url, received)
}

#[test]
fn a_hung_worker_is_posted_to_the_webhook() {
    let (url, received) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("workers.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_okerr-watch-workers"))
        .args(["--database", &database, "--webhook", &url])
        .args(["--workers", "2", "--period-secs", "1", "--hang-after", "2"])
        .args(["--run-for-secs", "60"])
        // The receiver is on loopback, which webhooks may not reach by default.
        .args(["--allow-network", "127.0.0.0/8"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let found = okerr_test_support::poll(
        "worker:0 turning ERR at the webhook",
        Duration::from_secs(40),
        Duration::from_millis(100),
        || {
            let got = received.lock().unwrap();
            got.iter()
                .find(|d| d.contains(r#""name":"worker:0""#) && d.contains(r#""new":"ERR""#))
                .cloned()
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    let change: serde_json::Value = serde_json::from_str(&found).unwrap();
    assert_eq!(change["type"], "status_change");
    assert_eq!(change["textid"], "workers");
    assert_eq!(change["details"], "No heartbeat");
}
