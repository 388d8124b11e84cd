//! A whole SMTP session (`okerr_smtp::serve_connection`) fed any bytes, over an in-memory
//! pipe, against a memory store with project `p1`.
//!
//! Input: the first byte sets the size of the chunks the client writes (1 to 64 bytes,
//! or everything at once for 0), so that commands and message lines are split at every
//! place; the rest is what the client sends before it closes its side.
//!
//! Properties: the session ends; it greets with 220; every reply line is
//! `DDD[ -]text\r\n` with a 2xx–5xx code and a printable text of at most 450 characters;
//! at most five lines (the EHLO reply) per line the client sent, plus the greeting;
//! nothing after a 221 or 421; the store changes only when a message was answered
//! `250 2.0.0 OK (… indicators updated)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okerr_fuzz::{PEER, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = match usize::from(chunk % 65) {
        0 => input.len().max(1),
        n => n,
    };
    let config = okerr_smtp::SmtpConfig {
        // Small limits, so that short inputs reach them.
        max_message_size: 2048,
        max_line_length: 200,
        max_recipients: 3,
        max_updates: 5,
        max_errors: 5,
        ..okerr_smtp::SmtpConfig::default()
    };
    let done = run(async |world| {
        let (mut client, server) = tokio::io::duplex(4096);
        let peer = PEER.parse().expect("peer");
        let session = okerr_smtp::serve_connection(server, peer, &world.engine, &config);
        let talk = async {
            let (mut rd, mut wr) = tokio::io::split(&mut client);
            let send = async {
                for piece in input.chunks(chunk) {
                    // The session may have closed already: then writing fails, as it would.
                    if wr.write_all(piece).await.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
                let _ = wr.shutdown().await;
            };
            let receive = async {
                let mut out = Vec::new();
                rd.read_to_end(&mut out).await.expect("read");
                out
            };
            tokio::join!(send, receive).1
        };
        tokio::join!(session, talk).1
    });
    let output = done.value;
    if done.changed {
        assert!(
            String::from_utf8_lossy(&output).contains("250 2.0.0 OK ("),
            "the store changed without a 250: {:?}",
            String::from_utf8_lossy(&output)
        );
    }
    let output = String::from_utf8(output).expect("replies are UTF-8");
    assert!(output.starts_with("220 "), "no greeting: {output:?}");
    assert!(output.ends_with("\r\n"), "a reply without its line end");
    let lines: Vec<&str> = output.split_terminator("\r\n").collect();
    let sent_lines = input.iter().filter(|b| **b == b'\n').count();
    assert!(
        lines.len() <= 5 * sent_lines + 2,
        "{} reply lines for {sent_lines} lines sent",
        lines.len()
    );
    for (i, line) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        assert!(bytes.len() >= 4, "short reply {line:?}");
        assert!(
            (b'2'..=b'5').contains(&bytes[0])
                && bytes[1].is_ascii_digit()
                && bytes[2].is_ascii_digit()
                && (bytes[3] == b' ' || bytes[3] == b'-'),
            "bad reply line {line:?}"
        );
        let text = &line[4..];
        assert!(text.chars().count() <= 450, "reply text too long");
        assert!(
            !text.chars().any(char::is_control),
            "a control character in {line:?}"
        );
        if line.starts_with("221 ") || line.starts_with("421 ") {
            assert_eq!(i + 1, lines.len(), "replies after closing: {output:?}");
        }
    }
});
