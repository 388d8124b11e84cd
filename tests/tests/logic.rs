//! End to end with the binary: two heartbeats and a logic indicator `s['a'] and s['b']`
//! over the API; one heartbeat turns ERR, the server's scheduler evaluates the logic
//! indicator after the change (not at its period, an hour away), and its alert is mailed
//! through a real SMTP server (aiosmtpd).
//!
//! The bound: the engine evaluates a project's logic indicators `logic_debounce` (0.5 s)
//! after a change, on its next scheduler pass; the test allows 10 s for a loaded machine
//! and prints the delay it measured.

use std::time::{Duration, Instant};

use okerr_tests::Server;
use okerr_tests::mail::{SmtpSink, aiosmtpd_python, free_port, parse};

#[test]
fn a_logic_indicator_follows_its_heartbeats_and_mails_its_alert() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let sink = SmtpSink::start(&python, free_port());
    let relay = sink.relay();
    let mut server = Server::start(&[
        "--mail-relay",
        &relay,
        "--mail-from",
        "okerr@example.net",
        "--mail-batch-delay",
        "0s",
    ]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    server.admin_ok(&["member", "add", t, "ops@example.com"]);
    let key = server.api_key().to_owned();
    let http = server.http();
    for name in ["a", "b"] {
        let reply = http.update(&[("textid", t), ("name", name), ("status", "OK")]);
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK"), "{reply:?}");
    }
    let reply = http.post_form(&format!("api/create/{t}/both"), &[], &[("X-API-KEY", &key)]);
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = http.post_form(
        &format!("api/setarg/{t}/both"),
        &[
            ("checkmethod", "logic"),
            ("expr", "s['a'] and s['b']"),
            ("dump", "s['b']"),
            ("maintenance", "0"),
        ],
        &[("X-API-KEY", &key)],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    // Its first evaluation, at once.
    okerr_tests::poll(
        "the first evaluation",
        Duration::from_secs(10),
        Duration::from_millis(10),
        || {
            let both = server.indicator(t, "both")?;
            (both["details"] == "s['b']=True ").then_some(())
        },
    );

    let reply = http.update(&[("textid", t), ("name", "b"), ("status", "ERR")]);
    assert_eq!(reply.status, 200, "{reply:?}");
    let changed = Instant::now();
    okerr_tests::poll(
        "the logic indicator to turn ERR",
        Duration::from_secs(10),
        Duration::from_millis(5),
        || {
            let both = server.indicator(t, "both")?;
            (both["status"] == "ERR").then_some(())
        },
    );
    let delay = changed.elapsed();
    eprintln!("logic evaluation delay after the change: {delay:?}");
    let both = server.indicator(t, "both").expect("both");
    assert_eq!(both["details"], "s['b']=False ");
    assert_eq!(both["checkmethod"], "logic");

    let alert = format!("both@{t}  Changed status OK (");
    okerr_tests::poll(
        "the logic indicator's alert by e-mail",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || {
            let mails: Vec<_> = sink.messages().iter().map(|m| parse(m)).collect();
            mails
                .iter()
                .any(|m| m.text.contains(&alert) && m.text.contains(") -> ERR (s['b']=False )"))
                .then_some(())
        },
    );
    assert!(server.stop().success());
    let mails: Vec<_> = sink.messages().iter().map(|m| parse(m)).collect();
    let all_text: String = mails.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(all_text.matches(&alert).count(), 1, "once: {all_text}");
    for mail in &mails {
        assert_eq!(mail.to, "ops@example.com");
    }
}
