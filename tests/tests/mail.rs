//! `okerr serve --mail-relay` against a real SMTP server (aiosmtpd): the server's own
//! scheduler expires a 2 s heartbeat and the alert arrives by e-mail, once, with okerr's
//! text and a link to the indicator page.

use okerr_tests::Server;
use okerr_tests::mail::{SmtpSink, aiosmtpd_python, free_port, parse};

#[test]
fn the_server_mails_the_alert_of_a_silent_indicator() {
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
        "1s",
    ]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    server.admin_ok(&["member", "add", t, "ops@example.com"]);
    server.admin_ok(&["member", "add", t, "boss@example.com", "--no-alerts"]);
    server.admin_ok(&[
        "policy",
        "set",
        t,
        "Fast",
        "--period",
        "2s",
        "--patience",
        "0",
    ]);
    let fields = [
        ("textid", t),
        ("name", "test:apache2"),
        ("status", "OK"),
        ("policy", "Fast"),
    ];
    let reply = server.http().update(&fields);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "{reply:?}"
    );

    // The autocreate alert, then (2 s later) the expiry's; each mailed once the recipient's
    // burst settled for 1 s. They may share a mail.
    let silence = "test:apache2@".to_owned() + t + "  Changed status OK (";
    okerr_tests::poll(
        "the expiry alert by e-mail",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(50),
        || {
            let mails: Vec<_> = sink.messages().iter().map(|m| parse(m)).collect();
            mails
                .iter()
                .any(|m| m.text.contains(&silence))
                .then_some(())
        },
    );
    let link = format!("{}i/{t}/test:apache2", server.url());
    assert_eq!(
        server
            .http()
            .get(&format!("/i/{t}/test:apache2"), &[])
            .status,
        303,
        "the link's page exists (behind the sign-in)"
    );
    // Stop the server (its scheduler finishes its pass) and count everything it sent.
    assert!(server.stop().success());
    let mails: Vec<_> = sink.messages().iter().map(|m| parse(m)).collect();
    let all_text: String = mails.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(all_text.matches(&silence).count(), 1, "{all_text}");
    assert_eq!(
        all_text.matches("autocreated from 127.0.0.1").count(),
        1,
        "{all_text}"
    );
    assert!(all_text.contains(") -> ERR (No heartbeat)"), "{all_text}");
    for mail in &mails {
        assert_eq!(
            mail.to, "ops@example.com",
            "only the member who wants alerts"
        );
        assert_eq!(mail.from, "okerr@example.net");
        assert_eq!(mail.subject, "okerr alert");
    }
    assert!(all_text.contains(&link), "{link} in {all_text}");
}

#[test]
fn the_server_sends_the_daily_summary_once_to_the_members_who_asked() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let sink = SmtpSink::start(&python, free_port());
    let relay = sink.relay();
    // Due at 00:00 UTC: any time of the day is past it, so the summary goes at start.
    let mut server = Server::start(&["--mail-relay", &relay, "--summary-at", "00:00"]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    server.admin_ok(&["member", "add", t, "ops@example.com", "--summary"]);
    server.admin_ok(&["member", "add", t, "dev@example.com"]);
    let reply = server
        .http()
        .update(&[("textid", t), ("name", "db"), ("status", "ERR")]);
    assert_eq!(reply.status, 200, "{reply:?}");
    server.restart();
    let mails = sink.wait_for(1);
    let summaries: Vec<_> = mails
        .iter()
        .map(|m| parse(m))
        .filter(|m| m.subject == "okerr summary")
        .collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(summaries[0].to, "ops@example.com");
    assert!(
        summaries[0]
            .text
            .contains("total: 1, OK: 0, ATT: 1, ERR: 1"),
        "{}",
        summaries[0].text
    );
}
