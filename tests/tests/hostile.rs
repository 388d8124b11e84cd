//! Hostile input against the real binary over real HTTP on 127.0.0.1 (issue 13): a locked
//! `Default` locks `Daily`, log lines cannot be forged, invalid UTF-8 is refused, API
//! fields are bounded, the security headers are sent, and webhooks reach only the
//! operator's outbound networks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use okerr_tests::{Server, path_segment, poll};

/// Locks the project's `Default` as in issue 13: a secret, `10.0.0.0/8`, autocreate off.
fn lock_default(server: &Server) {
    let textid = server.textid().to_owned();
    server.admin_ok(&[
        "policy",
        "set",
        &textid,
        "Default",
        "--secret",
        "TopSecret1",
        "--subnet",
        "10.0.0.0/8",
        "--autocreate",
        "off",
    ]);
}

#[test]
fn a_locked_default_locks_daily_over_http() {
    let server = Server::start(&[]);
    let textid = server.textid().to_owned();
    lock_default(&server);
    // What the issue saw: `curl -d textid=… -d name=intruder -d policy=Daily -d status=ERR`.
    let reply = server.http().update(&[
        ("textid", &textid),
        ("name", "intruder"),
        ("policy", "Daily"),
        ("status", "ERR"),
    ]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, "updates from 127.0.0.1 not allowed"),
        "the sender is outside Default's networks"
    );
    assert!(server.indicator(&textid, "intruder").is_none());
    // With Default's networks opened, the secret is still asked for, then the switch.
    server.admin_ok(&["policy", "set", &textid, "Default", "--subnet", "0.0.0.0/0"]);
    let form = |secret: &'static str| {
        [
            ("textid", textid.clone()),
            ("name", "intruder".to_owned()),
            ("policy", "Daily".to_owned()),
            ("status", "ERR".to_owned()),
            ("secret", secret.to_owned()),
        ]
    };
    let send = |secret| {
        let f = form(secret);
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server.http().update(&f)
    };
    let reply = send("guess");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            "do not create indicator 'intruder' with policy 'Default' because doesn't match secret"
        )
    );
    let reply = send("TopSecret1");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            "Cannot create indicator intruder because policy Default has autocreate off"
        )
    );
    assert!(server.indicator(&textid, "intruder").is_none());
    // Autocreate on again: the owner's client, which sends the secret, creates in Daily.
    server.admin_ok(&["policy", "set", &textid, "Default", "--autocreate", "on"]);
    assert_eq!(send("guess").status, 400);
    let reply = send("TopSecret1");
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert!(server.indicator(&textid, "intruder").is_some(), "created");
}

#[test]
fn a_forged_log_line_stays_on_its_own_line() {
    let server = Server::start(&[]);
    lock_default(&server);
    let textid = server.textid().to_owned();
    let forged = "x\n2026-01-01T00:00:00.000000Z ERROR okerr::serve: FORGED\u{1b}[2J";
    let reply = server
        .http()
        .update(&[("textid", &textid), ("name", forged), ("status", "OK")]);
    assert_eq!(reply.status, 400, "{reply:?}");
    let log = poll(
        "the refusal in the log",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            let log = server.stderr();
            log.contains("update refused").then_some(log)
        },
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00.000000Z")),
        "a forged line:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "a raw ESC:\n{log:?}");
    assert!(
        log.contains(r"x\n2026-01-01T00:00:00.000000Z ERROR okerr::serve: FORGED\u{1b}[2J"),
        "the name is logged escaped:\n{log}"
    );
}

#[test]
fn invalid_utf8_is_refused_and_names_never_collide() {
    let server = Server::start(&[]);
    let textid = server.textid().to_owned();
    for raw in [
        &b"name=srv%FF"[..],
        &b"name=srv%FE"[..],
        &b"name=srv\xff"[..],
    ] {
        let mut body = format!("textid={textid}&status=OK&").into_bytes();
        body.extend_from_slice(raw);
        let reply = server.http().request(
            "POST",
            "update",
            &[],
            Some(("application/x-www-form-urlencoded", body)),
        );
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (400, "Field 'name' is not valid UTF-8"),
            "{raw:?}"
        );
    }
    assert!(
        server.indicator_names(&textid).is_empty(),
        "nothing created"
    );
}

#[test]
fn api_fields_are_bounded_and_answers_carry_the_security_headers() {
    let server = Server::start(&[]);
    let textid = server.textid().to_owned();
    let key = server.api_key().to_owned();
    let ok = server.http().update(&[
        ("textid", &textid),
        ("name", "srv"),
        ("status", "OK"),
        ("method", "heartbeat|secret=TopSecret1"),
        ("secret", "TopSecret1"),
    ]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));

    let set = format!("api/set/{}/srv", path_segment(&textid));
    let long = "d".repeat(60_000);
    let reply = server
        .http()
        .post_form(&set, &[("desc", &long)], &[("X-API-KEY", &key)]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            "Field 'description' is too long (at most 2000 characters)\n"
        )
    );
    let at_bound = "d".repeat(2000);
    let reply = server
        .http()
        .post_form(&set, &[("desc", &at_bound)], &[("X-API-KEY", &key)]);
    assert_eq!(reply.status, 200, "{reply:?}");

    let json = server.http().get(
        &format!("api/indicator/{}/srv", path_segment(&textid)),
        &[("X-API-KEY", &key)],
    );
    assert_eq!(json.status, 200);
    assert_eq!(json.header("cache-control"), Some("no-store"));
    assert_eq!(json.header("x-content-type-options"), Some("nosniff"));
    // The indicator page's log shows the secret of the method line masked.
    let ind = server.indicator(&textid, "srv").expect("srv");
    assert_eq!(ind["desc"].as_str().map(str::len), Some(2000));
    let page = server.http().get(
        &format!("i/{}/srv", path_segment(&textid)),
        &[("X-API-KEY", &key)],
    );
    assert!(!page.body.contains("TopSecret1"), "{}", page.body);
    let missing = server.http().get("no/such/page", &[]);
    assert_eq!(missing.header("x-content-type-options"), Some("nosniff"));
}

/// A webhook endpoint on 127.0.0.1: sends each request's first line on the channel and
/// answers 200.
fn endpoint() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/internal-admin",
        listener.local_addr().expect("addr")
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send(first.trim_end().to_owned());
        }
    });
    (url, rx)
}

/// Sets `url` as Default's webhook, creates `srv` and flips it.
fn flip_with_webhook(server: &Server, url: &str) {
    let textid = server.textid().to_owned();
    server.admin_ok(&["policy", "set", &textid, "Default", "--webhook", url]);
    for status in ["OK", "ERR"] {
        let reply =
            server
                .http()
                .update(&[("textid", &textid), ("name", "srv"), ("status", status)]);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

#[test]
fn a_loopback_webhook_is_refused_with_public_only() {
    let (url, received) = endpoint();
    let server = Server::start(&["--outbound-network", "public"]);
    flip_with_webhook(&server, &url);
    let log = poll(
        "the refused delivery in the log",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            let log = server.stderr();
            log.contains("delivery failed").then_some(log)
        },
    );
    assert!(
        log.contains("is outside the networks this server may reach (outbound_networks: public)"),
        "{log}"
    );
    assert!(received.try_recv().is_err(), "nothing reached the endpoint");
}

/// The default allows every address (a self-hosted server's webhook receiver next door).
#[test]
fn a_loopback_webhook_delivers_by_default() {
    let (url, received) = endpoint();
    let server = Server::start(&[]);
    flip_with_webhook(&server, &url);
    let first = received
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook was posted");
    assert_eq!(first, "POST /internal-admin HTTP/1.1");
}

#[test]
fn an_allowed_network_delivers() {
    let (url, received) = endpoint();
    let server = Server::start(&["--outbound-network", "127.0.0.0/8"]);
    flip_with_webhook(&server, &url);
    let first = received
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook was posted");
    assert_eq!(first, "POST /internal-admin HTTP/1.1");
}
