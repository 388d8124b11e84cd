//! A real SMTP server for the tests that send mail: Python's `aiosmtpd`, storing what it
//! receives in a maildir, and the received messages decoded.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python with `aiosmtpd` installed, from `OKERR_TEST_AIOSMTPD`; `None` (the test
/// skips) when unset, a panic when `OKERR_REQUIRE_SMTP=1` demands it.
pub fn aiosmtpd_python() -> Option<PathBuf> {
    crate::from_env(
        "OKERR_TEST_AIOSMTPD",
        "OKERR_REQUIRE_SMTP",
        "ensure_mail_sink",
    )
}

/// swaks, the SMTP client that sends the mails of the tests, from `OKERR_TEST_SWAKS`;
/// `None` (the test skips) when unset, a panic when `OKERR_REQUIRE_SWAKS=1` demands it.
pub fn swaks() -> Option<PathBuf> {
    crate::from_env("OKERR_TEST_SWAKS", "OKERR_REQUIRE_SWAKS", "ensure_swaks")
}

/// Sends `data` (the whole message, headers and body) with swaks to `to` through the SMTP
/// server at `server`; returns swaks' exit code and its transcript (stdout and stderr).
pub fn swaks_send(swaks: &Path, server: SocketAddr, to: &str, data: &str) -> (Option<i32>, String) {
    let mut child = Command::new(swaks)
        .args(["--server", &server.to_string(), "--helo", "test.example"])
        .args(["--from", "script@host.example", "--to", to])
        .args(["--data", "-", "--timeout", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run swaks");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data.as_bytes())
        .expect("write the message");
    let out = child.wait_with_output().expect("swaks");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), transcript)
}

/// A port on 127.0.0.1 that was free a moment ago, and never handed out before in this
/// process: Linux often gives the port just released to the next `bind` to port 0, so two
/// tests starting side by side would get the same one, and one's server would fail to
/// listen while its test talked to the other's.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// An `aiosmtpd` server on 127.0.0.1 that stores every message it accepts in a maildir.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    /// The port it listens on.
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
        let mut sink = SmtpSink {
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
            assert!(
                sink.child.try_wait().unwrap().is_none(),
                "aiosmtpd stopped before it listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            sink.child.try_wait().unwrap().is_none(),
            "aiosmtpd stopped: something else listens on {addr}"
        );
        sink
    }

    /// `smtp://127.0.0.1:{port}`, the relay URL for lettre.
    pub fn relay(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, raw, in the order they arrived.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(dir) = std::fs::read_dir(self.maildir.path().join("mail").join(sub)) {
                files.extend(dir.map(|e| e.unwrap().path()));
            }
        }
        files.sort_by_key(|f| arrival(f));
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    /// Waits (at most 20 s) until at least `n` messages arrived, and returns them all.
    pub fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        crate::poll(
            &format!("{n} messages at the SMTP server"),
            Duration::from_secs(20),
            Duration::from_millis(20),
            || Some(self.messages()).filter(|m| m.len() >= n),
        )
    }
}

/// The place of a maildir file in the order of arrival: Python's `mailbox.Maildir` names
/// a file `{secs}.M{micros}P{pid}Q{count}.{host}`, where `count` grows by one per message
/// of the process. The name itself does not sort (the microseconds are not zero-padded:
/// `M99999` sorts after `M100000`), so the count is the key.
fn arrival(file: &Path) -> (u64, String) {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let count = name
        .split_once('Q')
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|c| c.parse().ok())
        .unwrap_or(u64::MAX);
    (count, name)
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
    /// The first To address.
    pub to: String,
    /// The From address.
    pub from: String,
    /// The subject.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Decodes a raw message.
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

#[cfg(test)]
mod tests {
    use super::arrival;
    use std::path::Path;

    #[test]
    fn maildir_files_are_ordered_by_their_count_not_their_name() {
        let mut files = [
            "1733100000.M99999P7Q2.host",
            "1733100000.M100000P7Q3.host",
            "1733100000.M5P7Q10.host",
            "1733099999.M999999P7Q1.host",
        ]
        .map(Path::new);
        files.sort_by_key(|f| arrival(f));
        assert_eq!(
            files.map(|f| f.to_str().unwrap()),
            [
                "1733099999.M999999P7Q1.host",
                "1733100000.M99999P7Q2.host",
                "1733100000.M100000P7Q3.host",
                "1733100000.M5P7Q10.host",
            ]
        );
    }
}
