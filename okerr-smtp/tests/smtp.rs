//! The SMTP server over real TCP on 127.0.0.1 against an in-process engine (memory
//! storage, manual clock): `swaks` as the sending client, and a few raw conversations.
//!
//! The swaks tests need `OKERR_TEST_SWAKS` (set by `ensure_swaks` in `.ci/services.sh`)
//! and skip without it, unless `OKERR_REQUIRE_SWAKS=1`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Engine, IndicatorName, MemoryStorage, NewProject, Policy, ProjectId, Status, Storage, TextId,
    UpdateRequest,
};
use okerr_smtp::SmtpConfig;
use okerr_test_support::mail::{swaks, swaks_send};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const TEXTID: &str = "proj";

/// An SMTP server on 127.0.0.1:0 over a memory storage with project `proj`.
struct Smtp {
    addr: SocketAddr,
    storage: Arc<MemoryStorage>,
    engine: Engine,
    project: ProjectId,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Smtp {
    async fn start(config: SmtpConfig) -> Smtp {
        let storage = Arc::new(MemoryStorage::new());
        let project = storage
            .create_project(NewProject::new("p", TextId::parse(TEXTID).expect("textid")))
            .await
            .expect("project");
        let clock = Arc::new(ManualClock::at_epoch());
        let engine = Engine::new(storage.clone(), Arc::new(RecordingNotifier::new()), clock);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(okerr_smtp::serve(
            listener,
            engine.clone(),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Smtp {
            addr,
            storage,
            engine,
            project: project.id,
            stop: Some(stop),
            served: Some(served),
        }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.expect("join").expect("serve");
        }
    }

    async fn policy(&self, change: impl FnOnce(&mut Policy)) {
        let mut project = self
            .storage
            .project(self.project)
            .await
            .expect("storage")
            .expect("project");
        let mut policy = project.policy_or_default("Default");
        change(&mut policy);
        project.put_policy(policy);
        self.storage.save_project(&project).await.expect("save");
    }

    /// An HTTP-style update, to set the stage.
    async fn http_update(&self, name: &str, status: &str, method: Option<&str>) {
        let mut req = UpdateRequest::new(TEXTID, name, status);
        req.method = method.map(str::to_owned);
        req.secret = Some("abc".to_owned());
        self.engine.update(req).await.expect("http update");
    }

    async fn indicator(&self, name: &str) -> Option<okerr::Indicator> {
        let name = IndicatorName::parse(name).expect("name");
        self.storage
            .indicator(self.project, &name)
            .await
            .expect("storage")
    }

    async fn log(&self, name: &str) -> Vec<String> {
        let name = IndicatorName::parse(name).expect("name");
        self.storage
            .log(self.project, &name, 100)
            .await
            .expect("log")
            .into_iter()
            .map(|l| l.message)
            .collect()
    }

    /// Sends `data` (the whole message) to `to` with swaks; returns (exit code, transcript).
    async fn swaks(&self, swaks: &Path, to: &str, data: &str) -> (Option<i32>, String) {
        let (swaks, server, to, data) = (
            swaks.to_path_buf(),
            self.addr,
            to.to_owned(),
            data.to_owned(),
        );
        tokio::task::spawn_blocking(move || swaks_send(&swaks, server, &to, &data))
            .await
            .expect("join")
    }
}

fn message(body: &str) -> String {
    format!("From: script@host.example\nTo: proj@update.example\nSubject: okerr\n\n{body}")
}

/// The server's reply to the end of DATA, from swaks' transcript (`<-`/`<**` lines).
#[track_caller]
fn data_reply(transcript: &str) -> String {
    let lines: Vec<&str> = transcript.lines().collect();
    let dot = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with(" -> .") || l.contains("-> ."))
        .unwrap_or_else(|| panic!("no end of data in:\n{transcript}"));
    lines
        .iter()
        .skip(dot + 1)
        .find(|l| l.contains("<-") || l.contains("<**"))
        .map(|l| l.to_string())
        .unwrap_or_else(|| panic!("no reply after the data in:\n{transcript}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_updates_several_indicators_one_with_a_secret() {
    let Some(swaks) = swaks() else { return };
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    smtp.http_update("guarded", "OK", Some("heartbeat|secret=abc"))
        .await;
    let body = "Nightly run\n\
        %%% guarded.status = ERR\n\
        %%% guarded.details = disk full\n\
        %%% guarded.secret = abc\n\
        %%% web.status = OK\n\
        %%% web.details = all good  \n\
        %%% host.example.com:cron.status = OK\n";
    let (code, transcript) = smtp
        .swaks(&swaks, "proj@update.example", &message(body))
        .await;
    assert_eq!(code, Some(0), "{transcript}");
    assert!(
        data_reply(&transcript).contains("250 2.0.0 OK (3 indicators updated)"),
        "{transcript}"
    );

    let guarded = smtp.indicator("guarded").await.expect("guarded");
    assert_eq!(guarded.status, Status::Err);
    assert_eq!(guarded.details, "disk full");
    let web = smtp.indicator("web").await.expect("web autocreated");
    assert_eq!(web.status, Status::Ok);
    assert_eq!(web.details, "all good  ");
    assert!(smtp.indicator("host.example.com:cron").await.is_some());
    let log = smtp.log("guarded").await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("smtp:127.0.0.1: switch OK > ERR")),
        "{log:?}"
    );
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_refuses_the_whole_message() {
    let Some(swaks) = swaks() else { return };
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    smtp.http_update("guarded", "OK", Some("heartbeat|secret=abc"))
        .await;
    smtp.http_update("plain", "OK", None).await;
    let before = smtp.indicator("plain").await.expect("plain");
    let body = "%%% plain.status = ERR\n\
        %%% guarded.status = ERR\n\
        %%% guarded.secret = wrong\n\
        %%% newone.status = OK\n";
    let (code, transcript) = smtp
        .swaks(&swaks, "proj@update.example", &message(body))
        .await;
    assert_eq!(code, Some(26), "{transcript}");
    let reply = data_reply(&transcript);
    assert!(
        reply.contains(
            "550 5.7.1 Bad secret (indicator 'guarded'; no update of this message was applied)"
        ),
        "{transcript}"
    );
    assert_eq!(smtp.indicator("plain").await.expect("plain"), before);
    assert_eq!(
        smtp.indicator("guarded").await.expect("g").status,
        Status::Ok
    );
    assert!(smtp.indicator("newone").await.is_none());
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtpupdate_off_refuses() {
    let Some(swaks) = swaks() else { return };
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    smtp.http_update("plain", "OK", None).await;
    smtp.policy(|p| p.smtp_update = false).await;
    let (code, transcript) = smtp
        .swaks(&swaks, "proj@x", &message("%%% plain.status = ERR\n"))
        .await;
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains("550 5.7.1 src:'smtp' updates are not allowed"),
        "{transcript}"
    );
    assert_eq!(smtp.indicator("plain").await.expect("p").status, Status::Ok);
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subnet_without_the_peer_refuses() {
    let Some(swaks) = swaks() else { return };
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    smtp.http_update("plain", "OK", None).await;
    smtp.policy(|p| p.subnets = vec!["10.0.0.0/8".parse().expect("net")])
        .await;
    let (code, transcript) = smtp
        .swaks(&swaks, "proj@x", &message("%%% plain.status = ERR\n"))
        .await;
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains("550 5.7.1 updates from 127.0.0.1 not allowed"),
        "{transcript}"
    );
    assert_eq!(smtp.indicator("plain").await.expect("p").status, Status::Ok);
    // The loopback network lets it in.
    smtp.policy(|p| p.subnets = vec!["127.0.0.0/8".parse().expect("net")])
        .await;
    let (code, transcript) = smtp
        .swaks(&swaks, "proj@x", &message("%%% plain.status = ERR\n"))
        .await;
    assert_eq!(code, Some(0), "{transcript}");
    assert_eq!(
        smtp.indicator("plain").await.expect("p").status,
        Status::Err
    );
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_gets_552_and_changes_nothing() {
    let Some(swaks) = swaks() else { return };
    let config = SmtpConfig {
        max_message_size: 4096,
        ..SmtpConfig::default()
    };
    let mut smtp = Smtp::start(config).await;
    let filler = "x".repeat(70) + "\n";
    let body = format!("%%% big.status = OK\n{}", filler.repeat(100));
    let (code, transcript) = smtp.swaks(&swaks, "proj@x", &message(&body)).await;
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains("552 5.3.4 Message too big (at most 4096 bytes)"),
        "{transcript}"
    );
    assert!(transcript.contains("250-SIZE 4096"), "{transcript}");
    assert!(smtp.indicator("big").await.is_none());
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_status_line_gets_a_clear_5xx() {
    let Some(swaks) = swaks() else { return };
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    let (code, transcript) = smtp
        .swaks(&swaks, "proj@x", &message("Hello, nothing here.\n"))
        .await;
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains(
            "550 5.6.0 No update in the message: it needs a line like '%%% name.status = OK'"
        ),
        "{transcript}"
    );
    let (code, transcript) = smtp
        .swaks(
            &swaks,
            "proj@x",
            &message("%%% a.status = OK\n%%% b.details = x\n"),
        )
        .await;
    assert_eq!(code, Some(26), "{transcript}");
    assert!(
        data_reply(&transcript).contains("550 5.6.0 No status line for indicator 'b'"),
        "{transcript}"
    );
    assert!(smtp.indicator("a").await.is_none());
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_quoted_printable_mail_works() {
    let Some(swaks) = swaks() else { return };
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    let data = "From: script@host.example\n\
        To: proj@update.example\n\
        Subject: okerr\n\
        MIME-Version: 1.0\n\
        Content-Type: multipart/alternative; boundary=\"b1\"\n\
        \n\
        --b1\n\
        Content-Type: text/plain; charset=utf-8\n\
        Content-Transfer-Encoding: quoted-printable\n\
        \n\
        %%% mime.status =3D OK\n\
        %%% mime.details =3D caf=C3=A9 backup, a very long line that the sender's =\n\
        mailer wrapped\n\
        \n\
        --b1\n\
        Content-Type: text/html; charset=utf-8\n\
        Content-Transfer-Encoding: quoted-printable\n\
        \n\
        <p>%%% mime.status =3D ERR</p>\n\
        --b1--\n";
    let (code, transcript) = smtp.swaks(&swaks, "proj@update.example", data).await;
    assert_eq!(code, Some(0), "{transcript}");
    let ind = smtp.indicator("mime").await.expect("mime");
    assert_eq!(ind.status, Status::Ok);
    assert_eq!(
        ind.details,
        "café backup, a very long line that the sender's mailer wrapped"
    );
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_project_is_refused_at_rcpt() {
    let Some(swaks) = swaks() else { return };
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    let (code, transcript) = smtp
        .swaks(&swaks, "nosuch@x", &message("%%% a.status = OK\n"))
        .await;
    assert_eq!(code, Some(24), "{transcript}");
    assert!(
        transcript.contains("550 5.1.1 No such project. (textid: 'nosuch')"),
        "{transcript}"
    );
    smtp.stop().await;
}

/// A raw conversation: sends each line, returns every reply line.
async fn converse(addr: SocketAddr, lines: &[&str]) -> Vec<String> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut replies = Vec::new();
    let mut read_reply = async |replies: &mut Vec<String>| loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await.expect("read") == 0 {
            return false;
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        replies.push(line.trim_end().to_owned());
        if last {
            return true;
        }
    };
    read_reply(&mut replies).await;
    for line in lines {
        wr.write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
        if !read_reply(&mut replies).await {
            break;
        }
    }
    replies
}

#[tokio::test]
async fn ehlo_advertises_size_and_mail_size_is_checked() {
    let config = SmtpConfig {
        max_message_size: 1000,
        ..SmtpConfig::default()
    };
    let mut smtp = Smtp::start(config).await;
    let replies = converse(
        smtp.addr,
        &[
            "MAIL FROM:<a@b>",
            "EHLO me",
            "MAIL FROM:<a@b> SIZE=1001",
            "MAIL FROM:<a@b> SIZE=1000",
            "DATA",
            "RCPT TO:<proj@x>",
            "RCPT TO:<other@x>",
            "RSET",
            "BDAT 10",
            "QUIT",
        ],
    )
    .await;
    let expected = [
        "220 okerr okerr ESMTP ready",
        "503 5.5.1 Say EHLO first",
        "250-okerr okerr",
        "250-SIZE 1000",
        "250-8BITMIME",
        "250-PIPELINING",
        "250 ENHANCEDSTATUSCODES",
        "552 5.3.4 Message too big (at most 1000 bytes)",
        "250 2.1.0 OK",
        "554 5.5.1 No valid recipients",
        "250 2.1.5 OK",
        "452 4.5.3 This message goes to project proj; send it to other separately",
        "250 2.0.0 OK",
        "502 5.5.1 BDAT not implemented",
        "221 2.0.0 okerr closing",
    ];
    assert_eq!(replies, expected);
    smtp.stop().await;
}

#[tokio::test]
async fn pipelined_message_without_swaks() {
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    let stream = TcpStream::connect(smtp.addr).await.expect("connect");
    let (rd, mut wr) = stream.into_split();
    // Everything at once, with a dot-stuffed line; the server answers in order.
    wr.write_all(
        b"EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<proj@x>\r\nDATA\r\n\
          Subject: x\r\n\r\n..%%% dots.status = OK\r\n%%% raw.status = OK\r\n.\r\nQUIT\r\n",
    )
    .await
    .expect("write");
    let mut rd = BufReader::new(rd);
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await.expect("read") == 0 {
            break;
        }
        all.push_str(&line);
    }
    assert!(all.contains("354 End data"), "{all}");
    assert!(all.contains("250 2.0.0 OK (2 indicators updated)"), "{all}");
    assert!(all.ends_with("221 2.0.0 okerr closing\r\n"), "{all}");
    assert_eq!(
        smtp.indicator("dots").await.expect("dots").status,
        Status::Ok
    );
    smtp.stop().await;
}

#[tokio::test]
async fn an_empty_message_is_answered_at_once() {
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    let stream = TcpStream::connect(smtp.addr).await.expect("connect");
    let (rd, mut wr) = stream.into_split();
    // The end of data right after DATA: no body at all.
    wr.write_all(b"EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<proj@x>\r\nDATA\r\n.\r\nQUIT\r\n")
        .await
        .expect("write");
    let mut rd = BufReader::new(rd);
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await.expect("read") == 0 {
            break;
        }
        all.push_str(&line);
    }
    assert!(all.contains("354 End data"), "{all}");
    assert!(
        all.contains("\r\n550 5.6.0 "),
        "refused, not left waiting: {all}"
    );
    assert!(all.ends_with("221 2.0.0 okerr closing\r\n"), "{all}");
    smtp.stop().await;
}

#[tokio::test]
async fn an_idle_client_is_told_421() {
    let config = SmtpConfig {
        idle_timeout: std::time::Duration::from_millis(100),
        ..SmtpConfig::default()
    };
    let mut smtp = Smtp::start(config).await;
    // No command after the greeting: the server's own timer closes the connection.
    let replies = converse(smtp.addr, &[]).await;
    assert_eq!(replies, ["220 okerr okerr ESMTP ready"]);
    let stream = TcpStream::connect(smtp.addr).await.expect("connect");
    let mut rd = BufReader::new(stream);
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await.expect("read") == 0 {
            break;
        }
        all.push_str(&line);
    }
    assert!(
        all.ends_with("421 4.4.2 okerr timeout, closing\r\n"),
        "{all}"
    );
    smtp.stop().await;
}

#[tokio::test]
async fn shutdown_tells_idle_clients_421() {
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    let stream = TcpStream::connect(smtp.addr).await.expect("connect");
    let mut rd = BufReader::new(stream);
    let mut greeting = String::new();
    rd.read_line(&mut greeting).await.expect("greeting");
    smtp.stop().await;
    let mut line = String::new();
    rd.read_line(&mut line).await.expect("read");
    assert_eq!(line, "421 4.3.2 okerr shutting down\r\n");
}

#[tokio::test]
async fn repeated_unknown_commands_close_the_session() {
    let config = SmtpConfig {
        max_errors: 5,
        ..SmtpConfig::default()
    };
    let mut smtp = Smtp::start(config).await;
    for bad in [
        "XYZZY plugh",
        "EXPN root",
        "ETRN example.com",
        "AUTH PLAIN AAAA",
    ] {
        let lines: Vec<&str> = std::iter::once("EHLO client.example")
            .chain(std::iter::repeat_n(bad, 50))
            .collect();
        let replies = converse(smtp.addr, &lines).await;
        let last = replies.last().expect("replies");
        assert!(
            last.starts_with("421 4.7.0 Too many errors"),
            "{bad}: {replies:#?}"
        );
        // The greeting, the EHLO lines, five refusals, then 421 and the end of the session.
        let refusals = replies.iter().filter(|r| r.starts_with('5')).count();
        assert_eq!(refusals, 5, "{bad}: {replies:#?}");
    }
    // A session with a few mistakes still works.
    let replies = converse(smtp.addr, &["HELO c", "XYZZY", "NOOP", "QUIT"]).await;
    assert!(replies.iter().any(|r| r.starts_with("221")), "{replies:#?}");
    smtp.stop().await;
}

/// Garbage from a client, as commands and as a message without a usable `%%%` line: every
/// reply is a well-formed SMTP reply (a 2xx–5xx code, then a space or a dash), the session
/// goes on or ends with a reply, and storage does not change.
#[tokio::test]
async fn garbage_gets_smtp_replies_and_changes_nothing() {
    let mut smtp = Smtp::start(SmtpConfig::default()).await;
    smtp.http_update("a", "OK", None).await;
    let before = smtp.storage.snapshot();
    let rcpt = format!("RCPT TO:<{TEXTID}@x>");
    // A message's body is sent as one piece, ending with its `.` line: one reply to it.
    let body = [
        "Subject: garbage",
        "",
        "%%% .status = OK",
        "%%%a.details = no status",
        "\u{fffd}\u{0}%%%",
        "..",
        ".",
    ]
    .join("\r\n");
    let no_marker = "%% a.status = ERR\r\n%%%\r\n.";
    let conversations: Vec<Vec<&str>> = vec![
        vec![
            "",
            " ",
            "\u{7f}\u{1}",
            "HELO",
            "MAIL",
            "RCPT",
            "DATA",
            "QUIT",
        ],
        vec![
            "EHLO x",
            "MAIL FROM:<",
            "MAIL FROM:<a@b> SIZE=x",
            "RCPT TO:<>",
            "DATA",
        ],
        vec![
            "EHLO x",
            "RCPT TO:<proj@x>",
            "DATA",
            "VRFY x",
            "NOOP",
            "RSET",
            "QUIT",
        ],
        vec!["EHLO x", "MAIL FROM:<a@b>", &rcpt, "DATA", &body, "QUIT"],
        vec![
            "EHLO x",
            "MAIL FROM:<a@b>",
            &rcpt,
            "DATA",
            no_marker,
            "QUIT",
        ],
    ];
    let mut refused_messages = 0;
    for lines in &conversations {
        let replies = converse(smtp.addr, lines).await;
        refused_messages += replies
            .iter()
            .filter(|r| r.starts_with("550 5.6.0"))
            .count();
        assert!(!replies.is_empty(), "a greeting at least: {lines:?}");
        for reply in &replies {
            let b = reply.as_bytes();
            let well_formed = b.len() >= 4
                && (b'2'..=b'5').contains(&b[0])
                && b[1].is_ascii_digit()
                && b[2].is_ascii_digit()
                && (b[3] == b' ' || b[3] == b'-');
            assert!(well_formed, "{reply:?} in {replies:?}");
        }
    }
    assert_eq!(refused_messages, 2, "both messages are refused as such");
    assert_eq!(smtp.storage.snapshot(), before, "garbage changes nothing");
    smtp.stop().await;
}
