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
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "OK"),
            "{reply:?}"
        );
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

#[test]
fn the_cli_sets_retry_schedules_logic_indicators_and_the_noflap_pair() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    let bad = server.admin(&["policy", "set", t, "Default", "--retry-schedule", "30s 5x"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert_eq!(
        bad.stderr.trim_end(),
        "okerr: Cannot parse '5x'. Valid examples are: 10s, 5m, 2h"
    );
    server.admin_ok(&[
        "policy",
        "set",
        t,
        "Default",
        "--retry-schedule",
        "30s 5m",
        "--recovery-retry-schedule",
        "10",
    ]);
    let shown = server.admin_ok(&["policy", "show", t, "Default"]);
    assert!(shown.contains("retry_schedule = 30s 5m\n"), "{shown}");
    assert!(shown.contains("recovery_retry_schedule = 10\n"), "{shown}");

    let reply = server
        .http()
        .update(&[("textid", t), ("name", "x"), ("status", "OK")]);
    assert_eq!(reply.status, 200, "{reply:?}");
    let out = server.admin(&[
        "indicator",
        "logic",
        t,
        "sum",
        "--expr",
        "s['x'] and s['nope']",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "sum\n"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("okerr: warning: s['nope'] refers to no indicator"),
        "{out:?}"
    );
    let sum = server.indicator(t, "sum").expect("created");
    assert_eq!(sum["checkmethod"], "logic");
    assert_eq!(sum["args"]["expr"], "s['x'] and s['nope']");
    let bad = server.admin(&["indicator", "logic", t, "sum", "--expr", "s.x"]);
    assert_eq!(bad.code, Some(1));
    assert_eq!(
        bad.stderr.trim_end(),
        "okerr: Bad expr: Operation type Attribute is not allowed"
    );
    assert_eq!(
        server.indicator(t, "sum").expect("kept")["args"]["expr"],
        "s['x'] and s['nope']"
    );

    assert_eq!(
        server.admin_ok(&["indicator", "noflap", t, "x", "--okthr", "10m"]),
        "x-up\n"
    );
    let up = server.indicator(t, "x-up").expect("created");
    assert_eq!(up["checkmethod"], "logic");
    assert!(
        up["args"]["expr"]
            .as_str()
            .is_some_and(|e| e.starts_with("(lo['status']=='OK' and lo['statusage']>600) or")),
        "{up}"
    );
    assert!(
        up["tags"]
            .as_array()
            .is_some_and(|t| t.contains(&"upper-level".into()))
    );
}
