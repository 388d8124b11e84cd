//! Updates by e-mail against the real binary: `okerr serve --smtp-listen 127.0.0.1:0`,
//! with `swaks` as the sending client; results read back through the API (and the log
//! lines from the server's SQLite database).
//!
//! They need `OKERR_TEST_SWAKS` (set by `ensure_swaks` in `.ci/services.sh`) and skip
//! without it, unless `OKERR_REQUIRE_SWAKS=1`.

use std::net::SocketAddr;
use std::path::PathBuf;

use okerr_tests::Server;
use okerr_tests::mail::{swaks, swaks_send};

/// The line `okerr serve` prints on stderr when it takes mail.
const SMTP_LISTENING: &str = "okerr smtp listening on ";

/// The SMTP address from the server's stderr (printed before the HTTP line that
/// [`Server::start`] waits for).
fn smtp_addr(server: &Server) -> SocketAddr {
    let stderr = server.stderr();
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(SMTP_LISTENING))
        .unwrap_or_else(|| panic!("no `{SMTP_LISTENING}` line in:\n{stderr}"));
    line.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// A server taking mail, and swaks.
struct Setup {
    swaks: PathBuf,
    server: Server,
    smtp: SocketAddr,
}

impl Setup {
    fn new() -> Option<Setup> {
        let swaks = swaks()?;
        let server = Server::start(&["--smtp-listen", "127.0.0.1:0"]);
        let smtp = smtp_addr(&server);
        Some(Setup {
            swaks,
            server,
            smtp,
        })
    }

    fn textid(&self) -> String {
        self.server.textid().to_owned()
    }

    /// Sends `data` (the whole message) to `TEXTID@update.example`; (exit code, transcript).
    fn send(&self, data: &str) -> (Option<i32>, String) {
        let to = format!("{}@update.example", self.textid());
        swaks_send(&self.swaks, self.smtp, &to, data)
    }

    fn status(&self, name: &str) -> Option<(String, String)> {
        self.server.indicator(self.server.textid(), name).map(|v| {
            (
                v["status"].as_str().unwrap_or_default().to_owned(),
                v["details"].as_str().unwrap_or_default().to_owned(),
            )
        })
    }

    fn http_update(&self, fields: &[(&str, &str)]) {
        let t = self.textid();
        let mut all = vec![("textid", t.as_str())];
        all.extend_from_slice(fields);
        let reply = self.server.http().update(&all);
        assert_eq!(reply.status, 200, "{reply:?}");
    }

    /// The indicator's log lines, read from the server's database.
    fn log(&self, name: &str) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            use okerr::Storage as _;
            let storage = okerr_backend_sqlite::SqliteStorage::connect(&self.server.database_url())
                .await
                .expect("open the server's database");
            let project = storage
                .project_by_textid(self.server.textid())
                .await
                .expect("read")
                .expect("project");
            let name = okerr::IndicatorName::parse(name).expect("name");
            let log = storage.log(project.id, &name, 100).await.expect("log");
            storage.close().await;
            log.into_iter().map(|l| l.message).collect()
        })
    }
}

fn message(body: &str) -> String {
    format!("From: script@host.example\nTo: someone@update.example\nSubject: okerr\n\n{body}")
}

/// The server's reply to the end of DATA in swaks' transcript.
#[track_caller]
fn data_reply(transcript: &str) -> String {
    let lines: Vec<&str> = transcript.lines().collect();
    let dot = lines
        .iter()
        .rposition(|l| l.contains("-> ."))
        .unwrap_or_else(|| panic!("no end of data in:\n{transcript}"));
    lines
        .iter()
        .skip(dot + 1)
        .find(|l| l.contains("<-") || l.contains("<**"))
        .map(|l| (*l).to_owned())
        .unwrap_or_else(|| panic!("no reply after the data in:\n{transcript}"))
}

#[test]
fn a_mail_updates_indicators_with_source_smtp() {
    let Some(s) = Setup::new() else { return };
    s.http_update(&[
        ("name", "guarded"),
        ("status", "OK"),
        ("method", "heartbeat|secret=abc"),
        ("secret", "abc"),
    ]);
    let body = "%%% guarded.status = ERR\n\
        %%% guarded.details = disk full\n\
        %%% guarded.secret = abc\n\
        %%% web.status = OK\n\
        %%% web.details = fine\n";
    let (code, transcript) = s.send(&message(body));
    assert_eq!(code, Some(0), "{transcript}");
    assert!(data_reply(&transcript).contains("250 2.0.0 OK (2 indicators updated)"));
    assert_eq!(
        s.status("guarded"),
        Some(("ERR".into(), "disk full".into()))
    );
    assert_eq!(s.status("web"), Some(("OK".into(), "fine".into())));
    let log = s.log("guarded");
    assert!(
        log.iter()
            .any(|l| l == "smtp:127.0.0.1: switch OK > ERR: disk full"),
        "{log:?}"
    );
    assert!(
        s.server.stderr().contains("smtp: message applied"),
        "{}",
        s.server.stderr()
    );
}

#[test]
fn a_wrong_secret_gets_5xx_and_changes_nothing() {
    let Some(s) = Setup::new() else { return };
    s.http_update(&[
        ("name", "guarded"),
        ("status", "OK"),
        ("method", "heartbeat|secret=abc"),
        ("secret", "abc"),
    ]);
    s.http_update(&[("name", "other"), ("status", "OK"), ("details", "before")]);
    let body = "%%% other.status = ERR\n%%% other.details = after\n\
        %%% guarded.status = ERR\n%%% guarded.secret = wrong\n";
    let (code, transcript) = s.send(&message(body));
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains(
            "550 5.7.1 Bad secret (indicator 'guarded'; no update of this message was applied)"
        ),
        "{transcript}"
    );
    assert_eq!(s.status("other"), Some(("OK".into(), "before".into())));
    assert_eq!(s.status("guarded").map(|s| s.0), Some("OK".into()));
}

#[test]
fn smtpupdate_off_and_subnets_refuse() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    s.http_update(&[("name", "plain"), ("status", "OK")]);
    s.server
        .admin_ok(&["policy", "set", &t, "Default", "--smtpupdate", "off"]);
    let (code, transcript) = s.send(&message("%%% plain.status = ERR\n"));
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains("550 5.7.1 src:'smtp' updates are not allowed"),
        "{transcript}"
    );
    s.server.admin_ok(&[
        "policy",
        "set",
        &t,
        "Default",
        "--smtpupdate",
        "on",
        "--subnet",
        "10.0.0.0/8",
    ]);
    let (code, transcript) = s.send(&message("%%% plain.status = ERR\n"));
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains("550 5.7.1 updates from 127.0.0.1 not allowed"),
        "{transcript}"
    );
    assert_eq!(s.status("plain").map(|s| s.0), Some("OK".into()));
    // HTTP is not SMTP: the switch is per channel.
    s.server
        .admin_ok(&["policy", "set", &t, "Default", "--subnet", "127.0.0.0/8"]);
    let (code, transcript) = s.send(&message("%%% plain.status = ERR\n"));
    assert_eq!(code, Some(0), "{transcript}");
    assert_eq!(s.status("plain").map(|s| s.0), Some("ERR".into()));
}

#[test]
fn oversized_and_statusless_messages_are_refused() {
    let Some(s) = Setup::new() else { return };
    let filler = "x".repeat(99) + "\n";
    let body = format!("%%% big.status = OK\n{}", filler.repeat(11_000));
    let (code, transcript) = s.send(&message(&body));
    assert_eq!(code, Some(26), "{transcript:.2000}");
    assert!(
        transcript.contains("552 5.3.4 Message too big (at most 1048576 bytes)"),
        "{transcript:.2000}"
    );
    assert_eq!(s.status("big"), None);
    let (code, transcript) = s.send(&message("status: OK\n"));
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains("550 5.6.0 No update in the message"),
        "{transcript}"
    );
}

#[test]
fn a_multipart_quoted_printable_mail_works() {
    let Some(s) = Setup::new() else { return };
    let data = "From: script@host.example\n\
        To: someone@update.example\n\
        Subject: okerr\n\
        MIME-Version: 1.0\n\
        Content-Type: multipart/alternative; boundary=\"b1\"\n\
        \n\
        --b1\n\
        Content-Type: text/plain; charset=utf-8\n\
        Content-Transfer-Encoding: quoted-printable\n\
        \n\
        %%% mime.status =3D OK\n\
        %%% mime.details =3D caf=C3=A9 backup, wrapped by the =\n\
        mailer\n\
        \n\
        --b1\n\
        Content-Type: text/html; charset=utf-8\n\
        \n\
        <p>%%% mime.status =3D ERR</p>\n\
        --b1--\n";
    let (code, transcript) = s.send(data);
    assert_eq!(code, Some(0), "{transcript}");
    assert_eq!(
        s.status("mime"),
        Some(("OK".into(), "café backup, wrapped by the mailer".into()))
    );
}

#[test]
fn the_config_file_turns_smtp_on() {
    let Some(_swaks) = swaks() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("okerr.toml");
    std::fs::write(&config, "smtp_listen = \"127.0.0.1:0\"\n").expect("write config");
    let config = config.display().to_string();
    let server = Server::start(&["--config", &config]);
    let addr = smtp_addr(&server);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    // Without the option, no SMTP.
    let plain = Server::start(&[]);
    assert!(!plain.stderr().contains(SMTP_LISTENING));
}
