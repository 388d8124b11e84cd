//! `serve_connection`: one SMTP session over a stream accepted elsewhere (here an
//! in-memory pipe), as the fuzz target `smtp_session` drives it.

use std::sync::Arc;

use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{Engine, IndicatorName, MemoryStorage, NewProject, Status, Storage, TextId};
use okerr_smtp::SmtpConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_session_on_a_pipe_applies_its_message_and_ends_at_quit() {
    let storage = Arc::new(MemoryStorage::new());
    let project = storage
        .create_project(NewProject::new("p", TextId::parse("proj").expect("textid")))
        .await
        .expect("project");
    let engine = Engine::new(
        storage.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(ManualClock::at_epoch()),
    );
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let peer = "127.0.0.1:2525".parse().expect("peer");
    let config = SmtpConfig::default();
    let session = okerr_smtp::serve_connection(server, peer, &engine, &config);
    let talk = async {
        client
            .write_all(
                b"EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<proj@x>\r\nDATA\r\n\
                  Subject: x\r\n\r\n%%% pipe.status = ERR\r\n.\r\nQUIT\r\n",
            )
            .await
            .expect("write");
        let mut replies = String::new();
        client.read_to_string(&mut replies).await.expect("read");
        replies
    };
    // The session ends by itself at QUIT, which closes the pipe for the client.
    let ((), replies) = tokio::join!(session, talk);
    assert!(
        replies.starts_with("220 okerr okerr ESMTP ready\r\n"),
        "{replies}"
    );
    assert!(
        replies.contains("250 2.0.0 OK (1 indicators updated)\r\n"),
        "{replies}"
    );
    assert!(
        replies.ends_with("221 2.0.0 okerr closing\r\n"),
        "{replies}"
    );
    let name = IndicatorName::parse("pipe").expect("name");
    let ind = storage
        .indicator(project.id, &name)
        .await
        .expect("storage")
        .expect("indicator");
    assert_eq!(ind.status, Status::Err);
}
