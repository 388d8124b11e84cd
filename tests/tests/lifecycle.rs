//! The `okerr` binary over time and across restarts: the server's own scheduler expires a
//! 2 s heartbeat, a restart keeps indicators and their deadlines, SIGTERM exits 0, and the
//! admin commands work on the database the server uses.

use std::time::Duration;

use okerr_tests::{Server, poll};
use serde_json::Value;

/// How often and how long to look for what the scheduler does.
const EVERY: Duration = Duration::from_millis(100);
const AT_MOST: Duration = Duration::from_secs(20);

/// Polls the indicator until its status is `status`; returns its JSON.
#[track_caller]
fn wait_for_status(server: &Server, name: &str, status: &str) -> Value {
    let textid = server.textid().to_owned();
    poll(&format!("{name} to turn {status}"), AT_MOST, EVERY, || {
        server
            .indicator(&textid, name)
            .filter(|ind| ind["status"] == status)
    })
}

fn unix(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("a unix time: {v}"))
}

#[test]
fn heartbeat_expires_by_the_scheduler_and_a_late_ok_recovers_it() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let t = t.as_str();
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
        ("name", "life:hb"),
        ("status", "OK"),
        ("details", "alive"),
        ("policy", "Fast"),
    ];
    let reply = server.http().update(&fields);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "{reply:?}"
    );
    let fresh = server.indicator(t, "life:hb").expect("created");
    assert_eq!(fresh["status"], "OK");
    assert_eq!(fresh["policyname"], "Fast");
    assert_eq!(fresh["policyperiod"], "2s");
    let updated = unix(&fresh["updated"]);
    assert_eq!(unix(&fresh["expected"]), updated + 2, "{fresh}");
    assert_eq!(unix(&fresh["scheduled"]), updated + 2, "{fresh}");

    let expired = wait_for_status(&server, "life:hb", "ERR");
    assert_eq!(expired["details"], "No heartbeat", "{expired}");
    assert!(
        unix(&expired["changed"]) >= unix(&fresh["scheduled"]),
        "expired before its deadline: {fresh} then {expired}"
    );
    // a change sets `changed` and `updated` (okerr's `change()`)
    assert_eq!(
        unix(&expired["updated"]),
        unix(&expired["changed"]),
        "{expired}"
    );

    // a late OK brings it back, with a new deadline
    let reply = server.http().update(&fields);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "{reply:?}"
    );
    let back = server.indicator(t, "life:hb").expect("stored");
    assert_eq!(
        (&back["status"], &back["details"]),
        (&"OK".into(), &"alive".into())
    );
    assert_eq!(
        unix(&back["scheduled"]),
        unix(&back["updated"]) + 2,
        "{back}"
    );
    // and it expires again
    let again = wait_for_status(&server, "life:hb", "ERR");
    assert_eq!(again["details"], "No heartbeat", "{again}");
}

#[test]
fn a_restart_keeps_the_indicator_its_deadline_and_its_expiry() {
    let mut server = Server::start(&[]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    // long enough that a stop and a start fit in before the deadline
    server.admin_ok(&[
        "policy",
        "set",
        t,
        "Short",
        "--period",
        "5s",
        "--patience",
        "0",
    ]);
    let reply = server.http().update(&[
        ("textid", t),
        ("name", "life:restart"),
        ("status", "OK"),
        ("details", "before the restart"),
        ("policy", "Short"),
    ]);
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = server.http().update(&[
        ("textid", t),
        ("name", "life:err"),
        ("status", "ERR"),
        ("details", "broken before the restart"),
        ("policy", "Daily"),
    ]);
    assert_eq!(reply.status, 200, "{reply:?}");
    let before = server.indicator(t, "life:restart").expect("created");
    let err_before = server.indicator(t, "life:err").expect("created");
    let old_url = server.url();

    let status = server.stop();
    assert_eq!(status.code(), Some(0));
    assert!(
        server.stderr().contains("shutting down"),
        "{}",
        server.stderr()
    );
    server.restart();
    // no first-start output on a database that has a project
    assert_eq!(server.stdout(), "", "a restart prints nothing on stdout");
    assert_ne!(server.url(), old_url, "a new port on each start");

    let after = server.indicator(t, "life:restart").expect("kept");
    for field in [
        "id",
        "status",
        "details",
        "expected",
        "scheduled",
        "updated",
        "changed",
        "policyname",
    ] {
        assert_eq!(
            after[field], before[field],
            "{field}: {before} then {after}"
        );
    }
    assert_eq!(
        after["status"], "OK",
        "expired before the restart was over: {after}"
    );
    let err_after = server.indicator(t, "life:err").expect("kept");
    for field in [
        "id",
        "status",
        "details",
        "expected",
        "scheduled",
        "changed",
    ] {
        assert_eq!(
            err_after[field], err_before[field],
            "{field}: {err_before} then {err_after}"
        );
    }
    // the API key and the project survive too
    assert_eq!(server.indicator_names(t), ["life:err", "life:restart"]);

    // the new process's scheduler expires it at the stored deadline, not a new one
    let expired = wait_for_status(&server, "life:restart", "ERR");
    assert_eq!(expired["details"], "No heartbeat", "{expired}");
    assert!(
        unix(&expired["changed"]) >= unix(&before["scheduled"]),
        "{before} then {expired}"
    );
    // the ERR one in `Daily` is untouched
    assert_eq!(
        server.indicator(t, "life:err").expect("kept")["details"],
        "broken before the restart"
    );
}

#[test]
fn sigterm_exits_zero_and_stops_listening() {
    let mut server = Server::start(&[]);
    let url = server.url();
    let status = server.stop();
    assert!(status.success(), "{status}");
    assert_eq!(status.code(), Some(0));
    let log = server.stderr();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped accepting"), "{log}");
    // nothing listens there any more
    assert!(
        connection_refused(&url),
        "{url} still accepts connections after the exit"
    );
}

/// Whether connecting to the server's address is refused.
fn connection_refused(url: &str) -> bool {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse::<std::net::SocketAddr>()
        .expect("an address");
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
}

#[test]
fn admin_commands_on_the_servers_database() {
    let server = Server::start(&[]);
    let h = server.http();

    // project create prints exactly the TextID
    let out = server.admin(&["project", "create", "--textid", "abc123", "--name", "N"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "abc123\n");
    let list = server.admin_ok(&["project", "list"]);
    assert!(list.lines().any(|l| l == "abc123\tN"), "{list}");
    assert!(
        list.lines()
            .any(|l| l == format!("{}\tfirst project", server.textid())),
        "{list}"
    );
    // a second time: refused, exit 1
    let again = server.admin(&["project", "create", "--textid", "abc123"]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert_eq!(again.stdout, "");
    // a bad TextID
    let bad = server.admin(&["project", "create", "--textid", "ABC"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(bad.stderr.contains("invalid textid 'ABC'"), "{bad:?}");
    // a random TextID: 10 characters of [a-z0-9]
    let random = server.admin_ok(&["project", "create"]);
    let random = random.trim_end_matches('\n');
    assert_eq!(random.len(), 10, "{random:?}");
    assert!(
        random
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{random:?}"
    );

    // the running server knows the new project
    let reply = h.update(&[("textid", "abc123"), ("name", "adm:one"), ("status", "OK")]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "{reply:?}"
    );

    // key create: 40 characters that open the API; key revoke closes it again
    let key = server.admin_ok(&["key", "create", "abc123", "--remark", "e2e"]);
    let key = key.strip_suffix('\n').expect("one line");
    assert_eq!(key.len(), 40, "{key:?}");
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "{key:?}");
    let reply = h.get("api/indicators/abc123", &[("X-API-KEY", key)]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "adm:one\n"),
        "{reply:?}"
    );
    let reply = h.get("api/indicator/abc123/adm:one", &[("X-API-KEY", key)]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["status"], "OK");
    let keys = server.admin_ok(&["key", "list", "abc123"]);
    let lines: Vec<&str> = keys.lines().collect();
    assert_eq!(lines.len(), 1, "{keys}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields.len(), 3, "{keys}");
    assert_eq!(fields[2], "e2e", "{keys}");
    let keyid = fields[0];
    assert!(!keys.contains(key), "key list never shows the key");
    let bad = server.admin(&["key", "revoke", "abc123", "nosuchkey"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(
        bad.stderr.contains("no key 'nosuchkey' in abc123"),
        "{bad:?}"
    );
    assert_eq!(server.admin_ok(&["key", "revoke", "abc123", keyid]), "");
    let reply = h.get("api/indicators/abc123", &[("X-API-KEY", key)]);
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(server.admin_ok(&["key", "list", "abc123"]), "");
    // the first project's key still works on its own project
    assert!(server.indicator_names(server.textid()).is_empty());

    // policy show, set, show
    let default = server.admin_ok(&["policy", "show", "abc123", "Default"]);
    assert_eq!(
        default,
        "[Default]\nperiod = 3600\npatience = 1200\nsecret = \nsubnets = 0.0.0.0/0 ::/0\n\
         httpupdate = on\nsmtpupdate = on\nautocreate = on\nreduction = 0\nwebhook = \n\
         retry_schedule = \nrecovery_retry_schedule = \n"
    );
    assert_eq!(
        server.admin_ok(&[
            "policy",
            "set",
            "abc123",
            "Default",
            "--period",
            "5m",
            "--patience",
            "1m",
            "--secret",
            "s3cr3t",
            "--subnet",
            "10.0.0.0/8",
            "--subnet",
            "192.168.0.0/16",
            "--httpupdate",
            "off",
            "--autocreate",
            "off",
            "--reduction",
            "5m",
            "--webhook",
            "http://127.0.0.1:9/hook",
        ]),
        ""
    );
    let changed = server.admin_ok(&["policy", "show", "abc123", "Default"]);
    assert_eq!(
        changed,
        "[Default]\nperiod = 5m\npatience = 1m\nsecret = (set)\n\
         subnets = 10.0.0.0/8 192.168.0.0/16\nhttpupdate = off\nsmtpupdate = on\n\
         autocreate = off\nreduction = 5m\nwebhook = http://127.0.0.1:9/hook\n\
         retry_schedule = \nrecovery_retry_schedule = \n"
    );
    assert!(!changed.contains("s3cr3t"), "the secret is never shown");
    // the running server applies it at once (the address is checked first: nothing else
    // is told to a sender outside the subnets, docs/decisions.md)
    let reply = h.update(&[
        ("textid", "abc123"),
        ("name", "adm:one"),
        ("status", "OK"),
        ("secret", "s3cr3t"),
    ]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, "updates from 127.0.0.1 not allowed"),
        "{reply:?}"
    );
    // a new policy, and all of them
    server.admin_ok(&[
        "policy",
        "set",
        "abc123",
        "Fast",
        "--period",
        "2s",
        "--patience",
        "0",
    ]);
    let all = server.admin_ok(&["policy", "show", "abc123"]);
    let names: Vec<&str> = all.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(names, ["[Default]", "[Daily]", "[Fast]"], "{all}");
    assert!(all.contains("[Fast]\nperiod = 2s\npatience = 0\n"), "{all}");
    // empty values clear
    server.admin_ok(&[
        "policy",
        "set",
        "abc123",
        "Default",
        "--secret",
        "",
        "--webhook",
        "",
    ]);
    let cleared = server.admin_ok(&["policy", "show", "abc123", "Default"]);
    assert!(cleared.contains("\nsecret = \n"), "{cleared}");
    assert!(cleared.contains("\nwebhook = \n"), "{cleared}");
    // refusals: exit 1 or 2 with a message, nothing on stdout
    for args in [
        &["policy", "show", "abc123", "Nope"][..],
        &["policy", "show", "nosuchproject"][..],
        &["policy", "set", "abc123", "Default", "--period", "bogus"][..],
        &["member", "add", "abc123", "not-an-address"][..],
    ] {
        let out = server.admin(args);
        assert!(matches!(out.code, Some(1 | 2)), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }

    // member add
    assert_eq!(
        server.admin_ok(&["member", "add", "abc123", "ops@example.com"]),
        ""
    );
    assert_eq!(
        server.admin_ok(&[
            "member",
            "add",
            "abc123",
            "quiet@example.com",
            "--no-alerts"
        ]),
        ""
    );
}
