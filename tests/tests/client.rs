//! `okerr client` and `okerr update` (our own client, crate okerr-client) against the
//! `okerr` server binary over 127.0.0.1, in director mode (the default) and direct mode;
//! retries against a small scripted HTTP listener.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use okerr_tests::{Output, Server, okerr_bin};
use serde_json::Value;

/// Runs `okerr ARGS…` with `env` on top of an environment without any `OKERR_*` or
/// proxy variable.
fn okerr(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(okerr_bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("OKERR_") || k.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(&*k);
        }
    }
    cmd.envs(env.iter().copied());
    Output::from(cmd.output().expect("run the okerr binary"))
}

/// How the client finds the server: `OKERR_URL` alone (director), or with
/// `OKERR_DIRECT=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Director,
    Direct,
}

const MODES: [Mode; 2] = [Mode::Director, Mode::Direct];

fn env(server: &Server, mode: Mode) -> Vec<(&'static str, String)> {
    let mut env = vec![("OKERR_URL", server.url())];
    if mode == Mode::Direct {
        env.push(("OKERR_DIRECT", "1".to_owned()));
    }
    env
}

fn run(server: &Server, mode: Mode, args: &[&str]) -> Output {
    let env = env(server, mode);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    okerr(args, &env)
}

#[track_caller]
fn accepted(out: &Output, line: &str) {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .lines()
            .chain(out.stdout.lines())
            .any(|l| l == line),
        "{line:?} expected: {out:?}"
    );
}

#[track_caller]
fn refused(out: &Output, reason: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(reason),
        "{reason:?} expected in stderr: {out:?}"
    );
    assert!(!out.stderr.contains("okerr updated"), "{out:?}");
}

#[track_caller]
fn stored(server: &Server, name: &str) -> Value {
    server
        .indicator(server.textid(), name)
        .unwrap_or_else(|| panic!("{name} should be stored"))
}

#[track_caller]
fn status_and_details(ind: &Value, status: &str, details: &str) {
    assert_eq!(
        (ind["status"].as_str(), ind["details"].as_str()),
        (Some(status), Some(details)),
        "{ind}"
    );
}

#[test]
fn the_seeds_two_commands() {
    for mode in MODES {
        let server = Server::start(&[]);
        let t = server.textid().to_owned();
        // okerrclient -i TEXTID -s 'NAME test:apache2' 'OK'
        let out = run(
            &server,
            mode,
            &["client", "-i", &t, "-s", "NAME test:apache2", "OK"],
        );
        accepted(
            &out,
            &format!("okerr updated (200 OK) test:apache2@{t} = OK"),
        );
        let ind = stored(&server, "test:apache2");
        status_and_details(&ind, "OK", "");
        assert_eq!(ind["checkmethod"], "heartbeat");
        assert_eq!(ind["policyname"], "Default");

        // okerrclient -i TEXTID -S SECRET -s "NAME test:apache2" ERR, once the policy
        // asks for the secret
        server.admin_ok(&["policy", "set", &t, "Default", "--secret", "s3cr3t"]);
        let out = run(
            &server,
            mode,
            &[
                "client",
                "-i",
                &t,
                "-S",
                "s3cr3t",
                "-s",
                "NAME test:apache2",
                "ERR",
            ],
        );
        accepted(
            &out,
            &format!("okerr updated (200 OK) test:apache2@{t} = ERR"),
        );
        status_and_details(&stored(&server, "test:apache2"), "ERR", "");

        // refused: exit 1 with the server's reason, nothing changes
        let out = run(
            &server,
            mode,
            &["client", "-i", &t, "-s", "NAME test:apache2", "OK"],
        );
        refused(&out, "400 Bad Request: Require secret");
        let out = run(
            &server,
            mode,
            &[
                "client",
                "-i",
                &t,
                "-S",
                "wrong",
                "-s",
                "NAME test:apache2",
                "OK",
            ],
        );
        refused(&out, "400 Bad Request: Bad secret");
        status_and_details(&stored(&server, "test:apache2"), "ERR", "");
        // the secret from OKERR_SECRET
        let mut env = env(&server, mode);
        env.push(("OKERR_SECRET", "s3cr3t".to_owned()));
        env.push(("OKERR_TEXTID", t.clone()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = okerr(&["client", "-s", "NAME test:apache2", "OK"], &env);
        accepted(
            &out,
            &format!("okerr updated (200 OK) test:apache2@{t} = OK"),
        );
        status_and_details(&stored(&server, "test:apache2"), "OK", "");
    }
}

#[test]
fn scripts_with_probes_methods_and_forks() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    for mode in MODES {
        // PROC: the server is a running process named `okerr`
        let out = run(
            &server,
            mode,
            &[
                "client",
                "-i",
                &t,
                "--name",
                "test:proc",
                "-s",
                "DETAILS server runs",
                "PROC okerr",
            ],
        );
        accepted(&out, &format!("okerr updated (200 OK) test:proc@{t} = OK"));
        status_and_details(&stored(&server, "test:proc"), "OK", "server runs");
        let out = run(
            &server,
            mode,
            &[
                "client",
                "-i",
                &t,
                "--name",
                "test:proc",
                "-s",
                "PROC no-such-process-okerr-test",
            ],
        );
        accepted(&out, &format!("okerr updated (200 OK) test:proc@{t} = ERR"));
        status_and_details(&stored(&server, "test:proc"), "ERR", "");
    }
    // METHOD, POLICY, TAG, STR (okerrclient's captured example)
    server.admin_ok(&["policy", "set", &t, "Daily", "--period", "1d"]);
    let out = run(
        &server,
        Mode::Director,
        &[
            "client",
            "-i",
            &t,
            "--name",
            "test:num",
            "-s",
            "METHOD numerical maxlim=37 minlim=0",
            "POLICY Daily",
            "TAG temp",
            "STR 36.6",
        ],
    );
    accepted(&out, &format!("okerr updated (200 OK) test:num@{t} = 36.6"));
    let ind = stored(&server, "test:num");
    assert_eq!(ind["checkmethod"], "numerical", "{ind}");
    assert_eq!(ind["policyname"], "Daily", "{ind}");
    assert_eq!(
        (&ind["args"]["maxlim"], &ind["args"]["minlim"]),
        (&"37".into(), &"0".into())
    );
    assert!(
        ind["tags"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "temp")),
        "{ind}"
    );
    // FORK: one update per element, all accepted
    let out = run(
        &server,
        Mode::Direct,
        &[
            "client",
            "-i",
            &t,
            "-s",
            "LIST alpha beta",
            "FORK",
            "NAME test:$_str",
            "OK",
        ],
    );
    accepted(&out, &format!("okerr updated (200 OK) test:alpha@{t} = OK"));
    accepted(&out, &format!("okerr updated (200 OK) test:beta@{t} = OK"));
    status_and_details(&stored(&server, "test:beta"), "OK", "");
    // UPTIME and LOADAVG give numbers the server takes
    let out = run(
        &server,
        Mode::Direct,
        &[
            "client",
            "-i",
            &t,
            "--name",
            "test:la",
            "-s",
            "METHOD numerical",
            "LOADAVG",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(stored(&server, "test:la")["checkmethod"], "numerical");
}

#[test]
fn nothing_sent_for_dry_none_and_bad_scripts() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let out = run(
        &server,
        Mode::Direct,
        &[
            "client", "-i", &t, "--dry", "--name", "test:dry", "-s", "OK",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "POST {}update\ntextid={t}&name=test%3Adry&status=OK&secret=&tags=&keypath=&origkeypath=&desc=\n",
            server.url()
        )
    );
    let out = run(
        &server,
        Mode::Director,
        &["client", "-i", &t, "--name", "test:dry", "-s", "OK", "NONE"],
    );
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
    let out = run(
        &server,
        Mode::Director,
        &["client", "-i", &t, "--name", "test:dry", "-s", "FOO"],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("No method FOO"), "{out:?}");
    let out = run(
        &server,
        Mode::Director,
        &[
            "client", "-i", &t, "--name", "test:dry", "-s", "STR x", "INT",
        ],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("INT: not a number"), "{out:?}");
    assert!(server.indicator_names(&t).is_empty());
    // without a textid or a URL: a usage error, nothing sent
    let out = okerr(&["client", "-s", "OK"], &[("OKERR_URL", &server.url())]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no TextID"), "{out:?}");
    let out = okerr(&["update", "-i", &t, "x", "OK"], &[]);
    assert!(
        out.stderr
            .contains("no server: give --url URL or set OKERR_URL"),
        "{out:?}"
    );
}

#[test]
fn okerr_update_like_okerrupdate() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    for mode in MODES {
        let out = run(
            &server,
            mode,
            &[
                "update",
                "-i",
                &t,
                "-d",
                "disk is full: 99%",
                "cli:hb",
                "ERR",
            ],
        );
        assert_eq!(
            out.stdout,
            format!("okerr updated (200 OK) cli:hb@{t} = ERR\n"),
            "{out:?}"
        );
        assert_eq!(out.code, Some(0));
        status_and_details(&stored(&server, "cli:hb"), "ERR", "disk is full: 99%");
        // name@textid
        let out = run(&server, mode, &["update", &format!("cli:hb@{t}"), "ok"]);
        assert_eq!(
            out.stdout,
            format!("okerr updated (200 OK) cli:hb@{t} = ok\n"),
            "{out:?}"
        );
        status_and_details(&stored(&server, "cli:hb"), "OK", "");
    }
    let out = run(
        &server,
        Mode::Direct,
        &[
            "update",
            "-i",
            &t,
            "-m",
            "numerical|maxlim=37",
            "--desc",
            "body temperature",
            "temp",
            "36.6",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let ind = stored(&server, "temp");
    assert_eq!(ind["checkmethod"], "numerical", "{ind}");
    assert_eq!(ind["args"]["maxlim"], "37", "{ind}");
    // refusals: the server's reason, exit 1
    let out = run(
        &server,
        Mode::Direct,
        &["update", "-i", &t, "-m", "numerical|maxlim=x", "bad", "1"],
    );
    refused(&out, "400 Bad Request: Bad maxlim value 'x'");
    let out = run(
        &server,
        Mode::Direct,
        &["update", "-i", "nosuchproject", "x", "OK"],
    );
    refused(
        &out,
        "404 Not Found: No such project. (textid: 'nosuchproject')",
    );
    let out = run(
        &server,
        Mode::Director,
        &["update", "-i", "nosuchproject", "x", "OK"],
    );
    refused(
        &out,
        "gave no server for textid \"nosuchproject\": 404 Not Found",
    );
    // director mode uses only the host of --url
    let out = okerr(
        &[
            "update",
            "-i",
            &t,
            "--url",
            &format!("{}some/prefix/", server.url()),
            "cli:path",
            "OK",
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    status_and_details(&stored(&server, "cli:path"), "OK", "");
    // direct mode keeps the path of --url: /prefix/update is not a route of the server
    let out = okerr(
        &[
            "update",
            "--direct",
            "-i",
            &t,
            "--url",
            &format!("{}prefix", server.url()),
            "cli:direct",
            "OK",
        ],
        &[],
    );
    refused(
        &out,
        &format!("refused by {}prefix/update: 404 Not Found", server.url()),
    );
}

/// A listener that answers each request with the next of `answers` (status, body) and
/// reports each request's first line and body.
fn scripted(answers: Vec<(u16, &'static str)>) -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request_body = vec![0; length];
            let _ = reader.read_exact(&mut request_body);
            let _ = tx.send((
                first.trim_end().to_owned(),
                String::from_utf8_lossy(&request_body).into_owned(),
            ));
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, rx)
}

#[test]
fn retries_on_5xx_and_gives_up() {
    // 503, then 200: the same POST twice, accepted
    let (url, seen) = scripted(vec![(503, "busy"), (200, "OK")]);
    let out = okerr(
        &[
            "client",
            "--direct",
            "--url",
            &url,
            "-i",
            "t",
            "--retries",
            "2",
            "--name",
            "n",
            "-s",
            "OK",
        ],
        &[],
    );
    accepted(&out, "okerr updated (200 OK) n@t = OK");
    let requests: Vec<_> = seen.try_iter().collect();
    let post = (
        "POST /update HTTP/1.1".to_owned(),
        "textid=t&name=n&status=OK&secret=&tags=&keypath=&origkeypath=&desc=".to_owned(),
    );
    assert_eq!(requests, vec![post.clone(), post.clone()]);
    // 500 for good: gives up after 1 + 1 attempts with the last answer
    let (url, seen) = scripted(vec![(500, "broken"), (500, "still broken"), (200, "OK")]);
    let out = okerr(
        &[
            "update",
            "--direct",
            "--url",
            &url,
            "-i",
            "t",
            "--retries",
            "1",
            "n",
            "OK",
        ],
        &[],
    );
    refused(
        &out,
        "kept failing: 500 Internal Server Error after 2 attempt(s): still broken",
    );
    assert_eq!(seen.try_iter().count(), 2);
    // 400 is not retried
    let (url, seen) = scripted(vec![(400, "Bad secret"), (200, "OK")]);
    let out = okerr(
        &[
            "update",
            "--direct",
            "--url",
            &url,
            "-i",
            "t",
            "--retries",
            "3",
            "n",
            "OK",
        ],
        &[],
    );
    refused(&out, "400 Bad Request: Bad secret");
    assert_eq!(seen.try_iter().count(), 1);
    // nobody listening: connection errors are retried, then exit 1
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/", l.local_addr().expect("address"))
    };
    let out = okerr(
        &[
            "update",
            "--direct",
            "--url",
            &closed,
            "-i",
            "t",
            "--retries",
            "1",
            "n",
            "OK",
        ],
        &[],
    );
    refused(&out, "(2 attempt(s))");
    assert!(out.stderr.contains("cannot reach"), "{out:?}");
}

/// examples/push/apache2.sh, the seed's cron script for `okerr client`, with the
/// binary on `PATH`.
#[test]
fn the_example_cron_script() {
    let server = Server::start(&[]);
    let t = server.textid().to_owned();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/push/apache2.sh");
    let bin_dir = okerr_bin()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let url = server.url();
    for (process, status) in [("okerr", "OK"), ("no-such-process-okerr-test", "ERR")] {
        let out = Output::from(
            Command::new("sh")
                .arg(&script)
                .env("PATH", &path)
                .env("OKERR_TEXTID", &t)
                .env("OKERR_URL", &url)
                .env("OKERR_PROCESS", process)
                .env_remove("OKERR_DIRECT")
                .env_remove("OKERR_SECRET")
                .stdin(Stdio::null())
                .output()
                .expect("run apache2.sh"),
        );
        accepted(
            &out,
            &format!("okerr updated (200 OK) test:apache2@{t} = {status}"),
        );
        status_and_details(&stored(&server, "test:apache2"), status, "checked by cron");
    }
}

/// `okerr check METHOD ARG=VALUE…` runs one active check now: the result on stdout, exit 0
/// on OK and 1 on ERR; the outbound networks bound it as the server's setting does.
#[test]
fn okerr_check_runs_one_active_check() {
    let server = Server::start(&[]);
    let url = format!("{}api/ip", server.url());
    let out = okerr(&["check", "httpstatus", &format!("url={url}")], &[]);
    assert!((out.code == Some(0)), "{out:?}");
    assert_eq!(out.stdout, "OK Got status code 200 OK as expected\n");
    let out = okerr(
        &[
            "check",
            "httpgrep",
            &format!("url={url}"),
            "musthave=127.0.0.1",
        ],
        &[],
    );
    assert_eq!(
        ((out.code == Some(0)), out.stdout.as_str()),
        (true, "OK \n"),
        "{out:?}"
    );
    let out = okerr(&["check", "sha1static", &format!("url={url}")], &[]);
    assert!(
        out.stdout.starts_with("OK hash initialized\nset hash="),
        "{out:?}"
    );
    let out = okerr(
        &["check", "httpstatus", &format!("url={url}"), "status=404"],
        &[],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "ERR Bad status code 200 OK (not 404) \n");
    let addr = server.addr();
    let port = format!("port={}", addr.port());
    let out = okerr(
        &[
            "check",
            "tcpport",
            "host=127.0.0.1",
            &port,
            "--outbound-network",
            "public",
        ],
        &[],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .contains("is outside the networks this server may reach (outbound_networks: public)"),
        "{out:?}"
    );
    let out = okerr(&["check", "nonsense"], &[]);
    assert!(
        out.stderr.contains("unknown active method 'nonsense'"),
        "{out:?}"
    );
}
