//! The `okerr` binary over real HTTP: every row of okerr-server.md §5.4 on `POST /update`,
//! the director, the API's keys, `X-Forwarded-For` from trusted and untrusted peers, and
//! the body limit. Each test runs its own server on its own database.

use okerr_test_support::update_table::{self, Before, Layer, Setup, UPDATE_TABLE};
use okerr_tests::{Http, Reply, Server, path_segment};
use serde_json::Value;

/// Asserts an answer's status and body.
#[track_caller]
fn expect(reply: &Reply, status: u16, body: &str) {
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (status, body),
        "whole answer: {reply:?}"
    );
}

/// Asserts that `name` is not stored in the server's first project.
#[track_caller]
fn absent(server: &Server, name: &str) {
    let found = server.indicator(server.textid(), name);
    assert!(found.is_none(), "{name} should not be stored: {found:?}");
}

/// The stored indicator `name` of the server's first project.
#[track_caller]
fn stored(server: &Server, name: &str) -> Value {
    server
        .indicator(server.textid(), name)
        .unwrap_or_else(|| panic!("{name} should be stored"))
}

/// One row's own project on the server, set up by the admin commands: its textid and an
/// API key to read it with.
struct RowProject {
    textid: String,
    key: String,
}

impl RowProject {
    fn create(server: &Server, i: usize) -> RowProject {
        let textid = format!("row{i}");
        server.admin_ok(&["project", "create", "--textid", &textid]);
        let key = server
            .admin_ok(&["key", "create", &textid])
            .trim()
            .to_owned();
        RowProject { textid, key }
    }

    /// The stored indicator and the project's names, read through the API.
    fn state(&self, h: &Http) -> (Option<Value>, String) {
        let key = [("X-API-KEY", self.key.as_str())];
        let t = &self.textid;
        let ind = h.get(
            &format!("api/indicator/{t}/{}", path_segment(update_table::NAME)),
            &key,
        );
        let ind = (ind.status == 200).then(|| ind.json());
        let names = h.get(&format!("api/indicators/{t}"), &key);
        assert_eq!(names.status, 200, "{names:?}");
        (ind, names.body)
    }

    /// Applies `setup` with the admin commands.
    fn apply(&self, server: &Server, setup: &[Setup]) {
        let t = self.textid.as_str();
        for s in setup {
            let n;
            let args: Vec<&str> = match *s {
                Setup::AutocreateOff => vec!["policy", "set", t, "Default", "--autocreate", "off"],
                Setup::StrictPolicy => vec!["policy", "set", t, "Strict", "--autocreate", "off"],
                Setup::MaxIndicators(max) => {
                    n = max.to_string();
                    vec!["project", "set", t, "--max-indicators", &n]
                }
                Setup::PolicySecret(secret) => {
                    vec!["policy", "set", t, "Default", "--secret", secret]
                }
                Setup::Limited => vec!["project", "set", t, "--limited", "on"],
                Setup::HttpUpdateOff => {
                    vec!["policy", "set", t, "Default", "--httpupdate", "off"]
                }
                Setup::SmtpUpdateOff => {
                    vec!["policy", "set", t, "Default", "--smtpupdate", "off"]
                }
                Setup::Subnet(net) => vec!["policy", "set", t, "Default", "--subnet", net],
            };
            server.admin_ok(&args);
        }
    }
}

/// Every row of the shared table (`okerr_test_support::update_table`) that a client on
/// 127.0.0.1 can send, each on a project of its own, set up with the admin commands.
#[test]
fn update_answers_every_row_of_the_table() {
    let server = Server::start(&[]);
    let h = server.http();
    let rows = UPDATE_TABLE.iter().filter(|r| r.runs_on(Layer::Binary));
    let mut ran = 0;
    for (i, row) in rows.enumerate() {
        let what = row.situation;
        let p = RowProject::create(&server, i);
        let t = p.textid.as_str();
        if row.before != Before::Nothing {
            expect(
                &h.update(&[
                    ("textid", t),
                    ("name", update_table::NAME),
                    ("status", "OK"),
                ]),
                200,
                "OK",
            );
        }
        if row.before == Before::Disabled {
            let path = format!("api/set/{t}/{}", path_segment(update_table::NAME));
            let reply = h.post_form(&path, &[("disabled", "1")], &[("X-API-KEY", &p.key)]);
            assert_eq!(reply.status, 200, "{what}: {reply:?}");
        }
        p.apply(&server, row.setup);
        let before = p.state(h);
        let fields = row.fields_for(t);
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let reply = h.update(&fields);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (row.status, row.answer_for(t, "127.0.0.1").as_str()),
            "{what}: {reply:?}"
        );
        let after = p.state(h);
        if row.accepted() {
            assert!(after.0.is_some(), "{what}: the indicator is stored");
        } else {
            assert_eq!(after, before, "{what}: a refused update changes nothing");
        }
        ran += 1;
    }
    assert!(ran > 40, "the binary runs most of the table ({ran} rows)");
}

/// What the table cannot say: a GET carries no form, and an indicator's own secret
/// (`heartbeat|secret=…`) is asked for on every later update too.
#[test]
fn update_beyond_the_table() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let h = server.http();
    let t = t.as_str();
    expect(
        &h.get("update", &[]),
        400,
        "Required field 'textid' missing",
    );
    let own = [
        ("textid", t),
        ("name", "row:own"),
        ("status", "OK"),
        ("method", "heartbeat|secret=mine"),
        ("secret", "mine"),
    ];
    expect(&h.update(&own), 200, "OK");
    expect(
        &h.update(&[("textid", t), ("name", "row:own"), ("status", "ERR")]),
        400,
        "Require secret",
    );
    expect(
        &h.update(&[
            ("textid", t),
            ("name", "row:own"),
            ("status", "ERR"),
            ("secret", "mine"),
        ]),
        200,
        "OK",
    );
    assert_eq!(stored(&server, "row:own")["status"], "ERR");
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    expect(
        &h.update(&[
            ("textid", t),
            ("name", "row:bounds"),
            ("status", "OK"),
            ("tags", &tags.join(",")),
        ]),
        400,
        "Too many tags (at most 50)",
    );
    absent(&server, "row:bounds");
}

#[test]
fn update_route_and_body_forms() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    let h = server.http();
    // okerr's route is unanchored: `/update/…` works
    for (path, name) in [
        ("update/", "form:slash"),
        ("update/any/thing", "form:suffix"),
    ] {
        expect(
            &h.post_form(
                path,
                &[("textid", t), ("name", name), ("status", "OK")],
                &[],
            ),
            200,
            "OK",
        );
        assert_eq!(stored(&server, name)["status"], "OK");
    }
    // multipart/form-data
    let boundary = "okerrboundary1234";
    let mut body = String::new();
    for (k, v) in [
        ("textid", t),
        ("name", "form:multipart"),
        ("status", "ERR"),
        ("details", "from multipart"),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    expect(
        &h.request(
            "POST",
            "update",
            &[],
            Some((
                &format!("multipart/form-data; boundary={boundary}"),
                body.into_bytes(),
            )),
        ),
        200,
        "OK",
    );
    let ind = stored(&server, "form:multipart");
    assert_eq!(
        (&ind["status"], &ind["details"]),
        (&"ERR".into(), &"from multipart".into())
    );
    // the exact bytes okerrupdate sends (captured-requests.txt #4), extra fields included
    let raw = format!(
        "textid={t}&name=test%3Astr&status=version+1.2&details=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82+%26+co&secret=s3cr3t&method=string%7Coptions%3Dreinit+dynamic&policy=Default&tags=&keypath=&origkeypath=&desc=&x_remoteip=10.0.0.1"
    );
    expect(
        &h.request(
            "POST",
            "update",
            &[("User-Agent", "python-requests/2.34.2")],
            Some(("application/x-www-form-urlencoded", raw.into_bytes())),
        ),
        200,
        "OK",
    );
    let ind = stored(&server, "test:str");
    assert_eq!(ind["status"], "OK");
    assert_eq!(ind["details"], "Привет & co");
    assert_eq!(ind["checkmethod"], "string");
    assert_eq!(ind["args"]["options"], "reinit dynamic");
    // the answer is plain text
    let reply = h.update(&[
        ("textid", t),
        ("name", "test:str"),
        ("status", "version 1.2"),
    ]);
    expect(&reply, 200, "OK");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn director_answers_its_url_with_the_client_ip() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let h = server.http();
    let reply = h.get(&format!("api/director/{t}"), &[]);
    expect(&reply, 200, &format!("{}\n", server.url()));
    assert_eq!(reply.header("client-ip"), Some("127.0.0.1"));
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{reply:?}"
    );
    // unknown textids, user e-mails and partners: an empty 404
    for unknown in ["nosuchproject", "user@example.com", "p:12"] {
        let reply = h.get(&format!("api/director/{unknown}"), &[]);
        expect(&reply, 404, "");
    }
    // a project made by the admin command is known at once
    assert_eq!(
        server.admin_ok(&["project", "create", "--textid", "second-one"]),
        "second-one\n"
    );
    expect(
        &h.get("api/director/second-one", &[]),
        200,
        &format!("{}\n", server.url()),
    );
}

#[test]
fn director_answers_the_public_url() {
    let server = Server::start(&["--public-url", "http://okerr.example.org:8443/base"]);
    let reply = server
        .http()
        .get(&format!("api/director/{}", server.textid()), &[]);
    expect(&reply, 200, "http://okerr.example.org:8443/base/\n");
}

/// The commands the first start prints use the public URL as the director answers it,
/// with its trailing `/`.
#[test]

fn first_start_commands_use_the_public_url_with_its_slash() {
    let server = Server::start(&["--public-url", "http://okerr.example.org:8443/base"]);
    let out = server.stdout();
    for expected in [
        "http://okerr.example.org:8443/base/update\n",
        "okerrupdate --url http://okerr.example.org:8443/base/ -i ",
        "http://okerr.example.org:8443/base/api/indicators/",
    ] {
        assert!(out.contains(expected), "{expected:?} in:\n{out}");
    }
}

#[test]
fn api_needs_a_project_key_or_the_admin_token() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let h = server.http();
    let key = server.api_key().to_owned();
    let admin = server
        .first_start()
        .admin_token
        .clone()
        .expect("a generated admin token");
    assert_eq!(key.len(), 40, "{key}");
    assert_eq!(admin.len(), 40, "{admin}");
    expect(
        &h.update(&[("textid", &t), ("name", "api:one"), ("status", "OK")]),
        200,
        "OK",
    );
    let list = format!("api/indicators/{t}");
    expect(&h.get(&list, &[]), 403, "Forbidden: X-API-KEY required\n");
    expect(
        &h.get(&list, &[("X-API-KEY", "not-a-key")]),
        403,
        "Forbidden: bad X-API-KEY\n",
    );
    expect(&h.get(&list, &[("X-API-KEY", &key)]), 200, "api:one\n");
    expect(&h.get(&list, &[("X-API-KEY", &admin)]), 200, "api:one\n");
    let one = format!("api/indicator/{t}/api:one");
    assert_eq!(h.get(&one, &[]).status, 403);
    let reply = h.get(&one, &[("X-API-KEY", &admin)]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["name"], "api:one");
    let reply = h.post_form(
        &format!("api/set/{t}/api:one"),
        &[("silent", "1")],
        &[("X-API-KEY", "not-a-key")],
    );
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(stored(&server, "api:one")["silent"], false);
    // unknown textid: 404, whatever the key
    assert_eq!(
        h.get("api/indicators/nosuchproject", &[("X-API-KEY", &admin)])
            .status,
        404
    );
    // another project: the first project's key does not open it, the admin token does
    server.admin_ok(&["project", "create", "--textid", "other"]);
    expect(
        &h.get("api/indicators/other", &[("X-API-KEY", &key)]),
        403,
        "Forbidden: bad X-API-KEY\n",
    );
    expect(
        &h.get("api/indicators/other", &[("X-API-KEY", &admin)]),
        200,
        "",
    );
    // the director and checkmethods need no key
    assert_eq!(h.get(&format!("api/director/{t}"), &[]).status, 200);
    let methods = h.get("api/checkmethods", &[]);
    assert_eq!(methods.status, 200, "{methods:?}");
    let methods = methods.json();
    for m in ["heartbeat", "numerical", "string"] {
        assert!(methods.get(m).is_some(), "{methods}");
    }
}

#[test]
fn configured_admin_token() {
    let token = "configured-admin-token-for-the-e2e-tests";
    let server = Server::start(&["--admin-token", token]);
    assert_eq!(server.first_start().admin_token, None);
    assert!(
        server.stdout().contains("Admin token: (as configured)\n"),
        "{}",
        server.stdout()
    );
    assert!(
        !server.stdout().contains(token),
        "the token is never printed"
    );
    let list = format!("api/indicators/{}", server.textid());
    expect(&server.http().get(&list, &[("X-API-KEY", token)]), 200, "");
}

#[test]
fn forwarded_for_counts_from_a_trusted_proxy() {
    let server = Server::start(&["--trusted-proxy", "127.0.0.0/8"]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    let h = server.http();
    server.admin_ok(&["policy", "set", t, "Default", "--subnet", "10.0.0.0/8"]);
    let fields = [("textid", t), ("name", "xff:lan"), ("status", "OK")];
    // the proxy's own address is outside the policy's subnets
    expect(
        &h.post_form("update", &fields, &[]),
        400,
        "updates from 127.0.0.1 not allowed",
    );
    absent(&server, "xff:lan");
    expect(
        &h.post_form("update", &fields, &[("X-Forwarded-For", "10.1.2.3")]),
        200,
        "OK",
    );
    assert_eq!(stored(&server, "xff:lan")["status"], "OK");
    // read from the right: a client cannot choose its address with a first entry
    expect(
        &h.post_form(
            "update",
            &[("textid", t), ("name", "xff:spoofed"), ("status", "OK")],
            &[("X-Forwarded-For", "10.1.2.3, 192.0.2.7")],
        ),
        400,
        "updates from 192.0.2.7 not allowed",
    );
    absent(&server, "xff:spoofed");
    expect(
        &h.post_form(
            "update",
            &[("textid", t), ("name", "xff:chain"), ("status", "OK")],
            &[("X-Forwarded-For", "192.0.2.7, 10.1.2.3")],
        ),
        200,
        "OK",
    );
    // the director and /api/ip see the same address
    let reply = h.get(
        &format!("api/director/{t}"),
        &[("X-Forwarded-For", "10.1.2.3")],
    );
    assert_eq!(reply.header("client-ip"), Some("10.1.2.3"), "{reply:?}");
    expect(
        &h.get("api/ip", &[("X-Forwarded-For", "10.1.2.3")]),
        200,
        "10.1.2.3\n",
    );
}

#[test]
fn forwarded_for_from_anyone_else_is_ignored() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    let h = server.http();
    server.admin_ok(&["policy", "set", t, "Default", "--subnet", "10.0.0.0/8"]);
    expect(
        &h.post_form(
            "update",
            &[("textid", t), ("name", "xff:lan"), ("status", "OK")],
            &[("X-Forwarded-For", "10.1.2.3")],
        ),
        400,
        "updates from 127.0.0.1 not allowed",
    );
    absent(&server, "xff:lan");
    // okerr's `x_remoteip` and `x_smtp` count only from trusted callers: ignored here
    expect(
        &h.update(&[
            ("textid", t),
            ("name", "xff:lan"),
            ("status", "OK"),
            ("x_remoteip", "10.1.2.3"),
        ]),
        400,
        "updates from 127.0.0.1 not allowed",
    );
    server.admin_ok(&["policy", "set", t, "NoHttp", "--httpupdate", "off"]);
    expect(
        &h.update(&[
            ("textid", t),
            ("name", "xff:smtp"),
            ("status", "OK"),
            ("policy", "NoHttp"),
            ("x_smtp", "1"),
        ]),
        400,
        "src:'http' updates are not allowed",
    );
    absent(&server, "xff:lan");
    absent(&server, "xff:smtp");
    let reply = h.get(
        &format!("api/director/{t}"),
        &[("X-Forwarded-For", "10.1.2.3")],
    );
    assert_eq!(reply.header("client-ip"), Some("127.0.0.1"), "{reply:?}");
    expect(
        &h.get("api/ip", &[("X-Forwarded-For", "10.1.2.3")]),
        200,
        "127.0.0.1\n",
    );
}

#[test]
fn oversize_body_is_refused_and_nothing_stored() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let h = server.http();
    let details = "x".repeat(200 * 1024);
    // A client of its own: the server closes the connection after the 413 without
    // `Connection: close`, so a pooled connection would fail the next request.
    let once = Http::new(&server.url());
    let reply = once.update(&[
        ("textid", &t),
        ("name", "big:one"),
        ("status", "ERR"),
        ("details", &details),
    ]);
    assert_eq!(reply.status, 413, "{reply:?}");
    absent(&server, "big:one");
    // the server still answers on a new connection
    expect(
        &h.update(&[("textid", &t), ("name", "big:after"), ("status", "OK")]),
        200,
        "OK",
    );
    assert_eq!(server.indicator_names(&t), ["big:after"]);
}

/// `api/indicator` shows the patience the scheduler uses: with `--min-patience 5m`, a
/// policy patience of 0 counts as 300 s (its `scheduled` is `expected + 300`).
#[test]

fn api_shows_the_effective_patience() {
    let server = Server::start(&["--min-period", "1h", "--min-patience", "5m"]);
    let t = server.textid().to_owned();
    server.admin_ok(&[
        "policy",
        "set",
        &t,
        "Fast",
        "--period",
        "2s",
        "--patience",
        "0",
    ]);
    expect(
        &server.http().update(&[
            ("textid", &t),
            ("name", "min:patience"),
            ("status", "OK"),
            ("policy", "Fast"),
        ]),
        200,
        "OK",
    );
    let ind = stored(&server, "min:patience");
    let (updated, expected, scheduled) = (
        ind["updated"].as_i64().expect("updated"),
        ind["expected"].as_i64().expect("expected"),
        ind["scheduled"].as_i64().expect("scheduled"),
    );
    assert_eq!(expected, updated + 3600, "{ind}");
    assert_eq!(scheduled, expected + 300, "{ind}");
    assert_eq!(ind["patience"], 300, "{ind}");
}

/// okerr collapses leading double slashes when the path would not resolve otherwise
/// (okerr-server.md §5.1), so `--url http://host:port//` still works.
#[test]

fn leading_double_slashes_are_collapsed() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let h = server.http();
    expect(
        &h.get(&format!("/api/director/{t}"), &[]),
        200,
        &format!("{}\n", server.url()),
    );
    expect(
        &h.post_form(
            "/update",
            &[("textid", &t), ("name", "slash:two"), ("status", "OK")],
            &[],
        ),
        200,
        "OK",
    );
}
