//! The real Python clients from PyPI (`okerrupdate`, `okerrapi`, `okerrclient`) against the
//! `okerr` binary, in direct (`--direct --url …`) and director (`--url …`) mode. Each test
//! checks what the client printed and what the server stored (through the API).
//!
//! They need `OKERR_TEST_CLIENTS_BIN` (a virtualenv's `bin/`, made by
//! `ensure_python_clients` in `.ci/services.sh`) and skip without it, unless
//! `OKERR_REQUIRE_CLIENTS=1`.

use std::path::{Path, PathBuf};

use okerr_tests::{ClientRun, Server, clients_bin, run_client};
use serde_json::Value;

/// How a client finds the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `--direct --url URL`: posts to `URL/update`.
    Direct,
    /// `--url URL`: asks `GET /api/director/<textid>` first.
    Director,
}

const MODES: [Mode; 2] = [Mode::Direct, Mode::Director];

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Director => "director",
        }
    }

    fn args(self, server: &Server) -> Vec<String> {
        let mut args = Vec::new();
        if self == Mode::Direct {
            args.push("--direct".to_owned());
        }
        args.push("--url".to_owned());
        args.push(server.url());
        args
    }
}

/// The clients and a server for them.
struct Setup {
    bin: PathBuf,
    server: Server,
}

impl Setup {
    /// `None` (the test skips) when the clients are not installed.
    fn new() -> Option<Setup> {
        let bin = clients_bin()?;
        Some(Setup {
            bin,
            server: Server::start(&[]),
        })
    }

    fn textid(&self) -> String {
        self.server.textid().to_owned()
    }

    fn stored(&self, name: &str) -> Option<Value> {
        self.server.indicator(self.server.textid(), name)
    }

    #[track_caller]
    fn must_be_stored(&self, name: &str) -> Value {
        self.stored(name)
            .unwrap_or_else(|| panic!("{name} should be stored"))
    }

    fn run(&self, program: &str, mode: Mode, args: &[&str], env: &[(&str, &str)]) -> ClientRun {
        let mut all = mode.args(&self.server);
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_client(&self.bin, program, &all, env)
    }

    /// `okerrupdate` with `OKERR_SECRET=` (empty: the CLI insists on the variable).
    fn okerrupdate(&self, mode: Mode, args: &[&str]) -> ClientRun {
        self.run("okerrupdate", mode, args, &[("OKERR_SECRET", "")])
    }

    /// `okerrclient -i TEXTID -S SECRET [mode] ARGS…`.
    fn okerrclient(&self, mode: Mode, secret: &str, args: &[&str]) -> ClientRun {
        let textid = self.textid();
        let mut all = vec!["-i", textid.as_str(), "-S", secret];
        all.extend_from_slice(args);
        self.run("okerrclient", mode, &all, &[])
    }

    /// `okerrapi -i TEXTID -k KEY [mode] ARGS…` with `OKERR_SECRET=`.
    fn okerrapi(&self, mode: Mode, args: &[&str]) -> ClientRun {
        let textid = self.textid();
        let key = self.server.api_key().to_owned();
        let mut all = vec!["-i", textid.as_str(), "-k", key.as_str()];
        all.extend_from_slice(args);
        self.run("okerrapi", mode, &all, &[("OKERR_SECRET", "")])
    }
}

#[track_caller]
fn succeeded(run: &ClientRun) {
    assert_eq!(run.code, Some(0), "{run:#?}");
}

#[track_caller]
fn failed(run: &ClientRun) {
    assert_eq!(run.code, Some(1), "{run:#?}");
}

/// okerrupdate's refusal: exit 1, the exception on stderr, the doc links on stdout.
#[track_caller]
fn refused(run: &ClientRun, stderr: &str) {
    failed(run);
    assert!(
        run.stderr.contains(stderr),
        "{stderr:?} expected in stderr: {run:#?}"
    );
    assert!(
        run.stdout
            .contains("Documentation: https://okerrupdate.readthedocs.io/en/latest/"),
        "{run:#?}"
    );
}

/// okerrclient's success line (it logs to stderr).
#[track_caller]
fn okerrclient_updated(run: &ClientRun, line: &str) {
    succeeded(run);
    assert!(
        run.stderr.lines().any(|l| l == line),
        "{line:?} expected in stderr: {run:#?}"
    );
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
fn okerrupdate_ok_and_err_with_details() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    for mode in MODES {
        let name = format!("cli:hb:{}", mode.label());
        let run = s.okerrupdate(mode, &["-i", &t, &name, "OK"]);
        succeeded(&run);
        assert_eq!(
            run.stdout,
            format!("okerr updated (200 OK) {name}@{t} = OK\n")
        );
        assert_eq!(run.stderr, "", "{run:#?}");
        let ind = s.must_be_stored(&name);
        status_and_details(&ind, "OK", "");
        assert_eq!(ind["checkmethod"], "heartbeat");
        assert_eq!(ind["policyname"], "Default");

        let run = s.okerrupdate(mode, &["-i", &t, "-d", "disk is full: 99%", &name, "ERR"]);
        succeeded(&run);
        assert_eq!(
            run.stdout,
            format!("okerr updated (200 OK) {name}@{t} = ERR\n")
        );
        status_and_details(&s.must_be_stored(&name), "ERR", "disk is full: 99%");

        // `name@textid` instead of -i
        let run = s.okerrupdate(mode, &[&format!("{name}@{t}"), "ok"]);
        succeeded(&run);
        assert_eq!(
            run.stdout,
            format!("okerr updated (200 OK) {name}@{t} = ok\n")
        );
        status_and_details(&s.must_be_stored(&name), "OK", "");
    }
    // director mode drops the path of --url (spec §2.1)
    let with_path = format!("{}some/prefix/", s.server.url());
    let run = run_client(
        &s.bin,
        "okerrupdate",
        &["--url", &with_path, "-i", &t, "cli:hb:path", "OK"],
        &[("OKERR_SECRET", "")],
    );
    succeeded(&run);
    status_and_details(&s.must_be_stored("cli:hb:path"), "OK", "");
}

#[test]
fn okerrupdate_secret() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    s.server
        .admin_ok(&["policy", "set", &t, "Default", "--secret", "s3cr3t"]);
    for mode in MODES {
        let name = format!("cli:secret:{}", mode.label());
        // a wrong secret cannot create it
        let run = s.okerrupdate(mode, &["-i", &t, "-S", "wrong", &name, "OK"]);
        refused(
            &run,
            &format!(
                "okerr exception http code 400 (Bad Request) do not create indicator '{name}' \
                 with policy 'Default' because doesn't match secret"
            ),
        );
        assert!(s.stored(&name).is_none());
        // the right one
        let run = s.okerrupdate(mode, &["-i", &t, "-S", "s3cr3t", &name, "OK"]);
        succeeded(&run);
        assert_eq!(
            run.stdout,
            format!("okerr updated (200 OK) {name}@{t} = OK\n")
        );
        status_and_details(&s.must_be_stored(&name), "OK", "");
        // a wrong one, and none
        let run = s.okerrupdate(mode, &["-i", &t, "-S", "wrong", "-d", "nope", &name, "ERR"]);
        refused(
            &run,
            "okerr exception http code 400 (Bad Request) Bad secret",
        );
        let run = s.okerrupdate(mode, &["-i", &t, &name, "ERR"]);
        refused(
            &run,
            "okerr exception http code 400 (Bad Request) Require secret",
        );
        status_and_details(&s.must_be_stored(&name), "OK", "");
        // the project secret from OKERR_SECRET is the indicator's when -S is absent
        let run = s.run(
            "okerrupdate",
            mode,
            &["-i", &t, "-d", "from the environment", &name, "ERR"],
            &[("OKERR_SECRET", "s3cr3t")],
        );
        succeeded(&run);
        status_and_details(&s.must_be_stored(&name), "ERR", "from the environment");
    }
    // the trap (spec §2.3): without OKERR_SECRET the CLI dies before it sends anything,
    // even with -S
    let run = s.run(
        "okerrupdate",
        Mode::Direct,
        &["-i", &t, "-S", "s3cr3t", "cli:secret:trap", "OK"],
        &[],
    );
    failed(&run);
    assert!(run.stderr.contains("No OKERR_SECRET"), "{run:#?}");
    assert!(s.stored("cli:secret:trap").is_none());
}

#[test]
fn okerrupdate_numerical_with_limits() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    for mode in MODES {
        let name = format!("temp:{}", mode.label());
        let run = s.okerrupdate(
            mode,
            &["-i", &t, "-m", "numerical|maxlim=37", &name, "36.6"],
        );
        succeeded(&run);
        assert_eq!(
            run.stdout,
            format!("okerr updated (200 OK) {name}@{t} = 36.6\n")
        );
        let ind = s.must_be_stored(&name);
        status_and_details(&ind, "OK", "36.6");
        assert_eq!(ind["checkmethod"], "numerical");
        assert_eq!(ind["args"]["maxlim"], "37");
        assert_eq!(ind["args"]["current"], "36.6");

        let run = s.okerrupdate(mode, &["-i", &t, "-m", "numerical|maxlim=37", &name, "38"]);
        succeeded(&run);
        assert_eq!(
            run.stdout,
            format!("okerr updated (200 OK) {name}@{t} = 38\n")
        );
        let ind = s.must_be_stored(&name);
        status_and_details(&ind, "ERR", " | 38.0 > 37.0 (maxlim)");
        assert_eq!(ind["args"]["current"], "38.0");

        // back under the limit, with the client's details
        let run = s.okerrupdate(mode, &["-i", &t, "-d", "cooler", &name, "36"]);
        succeeded(&run);
        status_and_details(&s.must_be_stored(&name), "OK", "cooler");
    }
}

#[test]
fn okerrupdate_string() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    for mode in MODES {
        let name = format!("test:str:{}", mode.label());
        let method = "string|options=reinit dynamic";
        let run = s.okerrupdate(
            mode,
            &[
                "-i",
                &t,
                "-m",
                method,
                "-d",
                "Привет & co",
                &name,
                "version 1.2",
            ],
        );
        succeeded(&run);
        assert_eq!(
            run.stdout,
            format!("okerr updated (200 OK) {name}@{t} = version 1.2\n")
        );
        let ind = s.must_be_stored(&name);
        status_and_details(&ind, "OK", "Привет & co");
        assert_eq!(ind["checkmethod"], "string");
        assert_eq!(ind["args"]["str"], "version 1.2");
        assert_eq!(ind["args"]["options"], "reinit dynamic", "{ind}");

        // dynamic: a new value is learned and stays OK
        let run = s.okerrupdate(mode, &["-i", &t, "-m", method, &name, "version 1.3"]);
        succeeded(&run);
        let ind = s.must_be_stored(&name);
        status_and_details(&ind, "OK", "version 1.3");
        assert_eq!(ind["args"]["str"], "version 1.3");
    }
    // a static string: the first value is a mismatch (spec §6.3 note)
    let run = s.okerrupdate(
        Mode::Direct,
        &["-i", &t, "-m", "string", "test:str:static", "v1"],
    );
    succeeded(&run);
    status_and_details(&s.must_be_stored("test:str:static"), "ERR", "v1");
}

#[test]
fn okerrupdate_unknown_textid() {
    let Some(s) = Setup::new() else { return };
    // director mode: the director's empty 404 gives no URL
    let run = s.okerrupdate(
        Mode::Director,
        &["-i", "nosuchproject", "cli:nowhere", "OK"],
    );
    refused(&run, "cannot update, url not given");
    // direct mode: the update's own 404
    let run = s.okerrupdate(Mode::Direct, &["-i", "nosuchproject", "cli:nowhere", "OK"]);
    refused(
        &run,
        "okerr exception http code 404 (Not Found) No such project. (textid: 'nosuchproject')",
    );
    assert!(s.stored("cli:nowhere").is_none());
    assert!(s.server.indicator_names(s.server.textid()).is_empty());
}

#[test]
fn okerrclient_updates() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    for mode in MODES {
        let name = format!("test:oc:{}", mode.label());
        let run = s.okerrclient(mode, "", &["--name", &name, "-s", "OK"]);
        okerrclient_updated(&run, &format!("okerr updated (200 OK) {name}@{t} = OK"));
        let ind = s.must_be_stored(&name);
        status_and_details(&ind, "OK", "");
        // okerrclient sends no method and no policy
        assert_eq!(ind["checkmethod"], "heartbeat");
        assert_eq!(ind["policyname"], "Default");

        let run = s.okerrclient(
            mode,
            "",
            &["--name", &name, "-s", "DETAILS disk is full", "ERR"],
        );
        okerrclient_updated(&run, &format!("okerr updated (200 OK) {name}@{t} = ERR"));
        status_and_details(&s.must_be_stored(&name), "ERR", "disk is full");

        // the seed's commands
        for status in ["OK", "ERR", "OK"] {
            let run = s.okerrclient(mode, "", &["-s", "NAME test:apache2", status]);
            okerrclient_updated(
                &run,
                &format!("okerr updated (200 OK) test:apache2@{t} = {status}"),
            );
            status_and_details(&s.must_be_stored("test:apache2"), status, "");
        }

        // METHOD, POLICY, TAG, STR
        let name = format!("test:num:{}", mode.label());
        let run = s.okerrclient(
            mode,
            "",
            &[
                "--name",
                &name,
                "-s",
                "METHOD numerical maxlim=37 minlim=0",
                "POLICY Daily",
                "TAG temp",
                "STR 36.6",
            ],
        );
        okerrclient_updated(&run, &format!("okerr updated (200 OK) {name}@{t} = 36.6"));
        let ind = s.must_be_stored(&name);
        status_and_details(&ind, "OK", "36.6");
        assert_eq!(ind["checkmethod"], "numerical");
        assert_eq!(ind["policyname"], "Daily");
        assert_eq!(
            (&ind["args"]["maxlim"], &ind["args"]["minlim"]),
            (&"37".into(), &"0".into())
        );
        let tags = ind["tags"].as_array().expect("tags");
        assert!(tags.iter().any(|x| x == "temp"), "{ind}");
    }
    // no update at all: NONE and --dry send nothing, exit 0
    for args in [
        &["--name", "test:none", "-s", "OK", "NONE"][..],
        &["--dry", "--name", "test:none", "-s", "OK"][..],
    ] {
        let run = s.okerrclient(Mode::Direct, "", args);
        succeeded(&run);
    }
    assert!(s.stored("test:none").is_none());
}

#[test]
fn okerrclient_refused_and_its_secret() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    s.server
        .admin_ok(&["policy", "set", &t, "Default", "--secret", "s3cr3t"]);
    for mode in MODES {
        let name = format!("test:oc:{}", mode.label());
        let run = s.okerrclient(mode, "s3cr3t", &["--name", &name, "-s", "OK"]);
        okerrclient_updated(&run, &format!("okerr updated (200 OK) {name}@{t} = OK"));
        status_and_details(&s.must_be_stored(&name), "OK", "");
        // refused: okerrclient still exits 0, and says so
        let run = s.okerrclient(
            mode,
            "wrong",
            &["--name", &name, "-s", "DETAILS nope", "ERR"],
        );
        succeeded(&run);
        assert!(
            run.stderr
                .lines()
                .any(|l| l
                    == "update failed: okerr exception http code 400 (Bad Request) Bad secret"),
            "{run:#?}"
        );
        assert!(!run.stderr.contains("okerr updated"), "{run:#?}");
        status_and_details(&s.must_be_stored(&name), "OK", "");
        let run = s.okerrclient(mode, "", &["--name", &name, "-s", "ERR"]);
        succeeded(&run);
        assert!(
            run.stderr.contains(
                "update failed: okerr exception http code 400 (Bad Request) Require secret"
            ),
            "{run:#?}"
        );
        // the secret from OKERR_SECRET when there is no -S
        let mut args = mode.args(&s.server);
        args.extend(["-i", &t, "--name", &name, "-s", "ERR"].map(str::to_owned));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_client(&s.bin, "okerrclient", &args, &[("OKERR_SECRET", "s3cr3t")]);
        okerrclient_updated(&run, &format!("okerr updated (200 OK) {name}@{t} = ERR"));
        status_and_details(&s.must_be_stored(&name), "ERR", "");
    }
    // without any secret okerrclient dies before it sends anything
    let run = run_client(
        &s.bin,
        "okerrclient",
        &[
            "-i",
            &t,
            "--direct",
            "--url",
            &s.server.url(),
            "--name",
            "test:oc:nosecret",
            "-s",
            "OK",
        ],
        &[],
    );
    failed(&run);
    assert!(run.stderr.contains("No OKERR_SECRET"), "{run:#?}");
    assert!(s.stored("test:oc:nosecret").is_none());
}

/// Pushes a few indicators with our own HTTP client, for okerrapi to read.
fn some_indicators(s: &Setup) {
    let t = s.textid();
    for fields in [
        &[("name", "api:one"), ("status", "OK")][..],
        &[
            ("name", "api:two"),
            ("status", "ERR"),
            ("details", "broken"),
        ][..],
        &[
            ("name", "srv1:my ind"),
            ("status", "OK"),
            ("details", "with a space"),
        ][..],
        &[
            ("name", "temp"),
            ("status", "36.6"),
            ("method", "numerical|maxlim=37"),
        ][..],
    ] {
        let mut all = vec![("textid", t.as_str())];
        all.extend_from_slice(fields);
        let reply = s.server.http().update(&all);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

/// okerrapi prints the answer with `print()`: the body and one more newline.
fn printed(lines: &[&str]) -> String {
    format!("{}\n\n", lines.join("\n"))
}

#[test]
fn okerrapi_reads_the_api() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    some_indicators(&s);
    let all = s.server.indicator_names(&t);
    assert_eq!(all, ["api:one", "api:two", "srv1:my ind", "temp"]);
    for mode in MODES {
        let run = s.okerrapi(mode, &["indicators"]);
        succeeded(&run);
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_eq!(run.stdout, printed(&names), "{run:#?}");

        let run = s.okerrapi(mode, &["indicators", "srv1:"]);
        succeeded(&run);
        assert_eq!(run.stdout, printed(&["srv1:my ind"]), "{run:#?}");

        // `srv1%3Amy%20ind`: percent-decoded by the server
        let run = s.okerrapi(mode, &["-n", "srv1:my ind", "indicator"]);
        succeeded(&run);
        let printed_json: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("okerrapi printed no JSON ({e}): {run:#?}"));
        let ind = s.must_be_stored("srv1:my ind");
        for field in [
            "id",
            "name",
            "status",
            "details",
            "checkmethod",
            "policyname",
            "policyperiod",
            "expected",
            "scheduled",
            "changed",
            "updated",
            "args",
            "tags",
            "disabled",
            "silent",
            "problem",
        ] {
            assert_eq!(
                printed_json[field], ind[field],
                "{field}: {printed_json} vs {ind}"
            );
        }
        assert_eq!(printed_json["details"], "with a space");

        let run = s.okerrapi(mode, &["filter", "heartbeat"]);
        succeeded(&run);
        assert_eq!(
            run.stdout,
            printed(&["api:one", "api:two", "srv1:my ind"]),
            "{run:#?}"
        );
        let run = s.okerrapi(mode, &["filter", "heartbeat", "!ERR"]);
        succeeded(&run);
        assert_eq!(run.stdout, printed(&["api:one", "srv1:my ind"]), "{run:#?}");
        let run = s.okerrapi(mode, &["filter", "numerical", "maxlim=37"]);
        succeeded(&run);
        assert_eq!(run.stdout, printed(&["temp"]), "{run:#?}");

        let run = s.okerrapi(mode, &["-n", "nosuch", "indicator"]);
        succeeded(&run);
        assert!(
            run.stderr
                .contains(&format!("Not found indicator 'nosuch' in project '{t}'")),
            "{run:#?}"
        );
    }

    // set: the answer is printed, the change stored
    let run = s.okerrapi(Mode::Direct, &["-n", "api:one", "set", "silent=1"]);
    succeeded(&run);
    assert_eq!(run.stdout, "Changed api:one {'silent': 1}\n\n", "{run:#?}");
    assert_eq!(s.must_be_stored("api:one")["silent"], true);
    let run = s.okerrapi(Mode::Director, &["-n", "temp", "set", "maxlim=40"]);
    succeeded(&run);
    assert_eq!(run.stdout, "Changed temp {'maxlim': '40'}\n\n", "{run:#?}");
    assert_eq!(s.must_be_stored("temp")["args"]["maxlim"], "40");

    // a wrong key: 403, a traceback and exit 1
    let run = run_client(
        &s.bin,
        "okerrapi",
        &[
            "--direct",
            "--url",
            &s.server.url(),
            "-i",
            &t,
            "-k",
            "wrongkey",
            "indicators",
        ],
        &[("OKERR_SECRET", "")],
    );
    failed(&run);
    assert!(
        run.stderr.contains("403 Client Error: Forbidden"),
        "{run:#?}"
    );
    // the trap: okerrapi needs OKERR_SECRET too
    let key = s.server.api_key().to_owned();
    let run = run_client(
        &s.bin,
        "okerrapi",
        &[
            "--direct",
            "--url",
            &s.server.url(),
            "-i",
            &t,
            "-k",
            &key,
            "indicators",
        ],
        &[],
    );
    failed(&run);
    assert!(run.stderr.contains("No OKERR_SECRET"), "{run:#?}");
}

/// `okerrclient --api-*`: no secret needed, paths sent raw, the User-Agent of okerrclient.
#[test]
fn okerrclient_api_commands() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    some_indicators(&s);
    let key = s.server.api_key().to_owned();
    let url = s.server.url();
    let api = |args: &[&str]| {
        let mut all = vec![
            "-i",
            t.as_str(),
            "--api-url",
            url.as_str(),
            "--api-key",
            key.as_str(),
        ];
        all.extend_from_slice(args);
        run_client(&s.bin, "okerrclient", &all, &[])
    };
    let run = run_client(
        &s.bin,
        "okerrclient",
        &["-i", &t, "--url", &url, "--api-director"],
        &[],
    );
    succeeded(&run);
    assert_eq!(run.stdout.trim_end(), url.as_str(), "{run:#?}");

    let run = api(&["--api-indicators", "srv1:"]);
    succeeded(&run);
    assert_eq!(run.stdout.trim_end(), "srv1:my ind", "{run:#?}");

    let run = api(&["--name", "api:two", "--api-indicator"]);
    succeeded(&run);
    let json: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {run:#?}"));
    assert_eq!(
        (&json["status"], &json["details"]),
        (&"ERR".into(), &"broken".into())
    );

    let run = api(&["--api-filter", "heartbeat", "!ERR"]);
    succeeded(&run);
    assert_eq!(run.stdout.trim_end(), "api:one\nsrv1:my ind", "{run:#?}");

    let run = api(&["--name", "api:new", "--api-create"]);
    succeeded(&run);
    assert!(
        run.stdout.contains(&format!("Created api:new@{t} (OK)")),
        "{run:#?}"
    );
    let ind = s.must_be_stored("api:new");
    assert_eq!(ind["checkmethod"], "heartbeat");
    assert!(
        !ind["maintenance"].is_null(),
        "api/create starts in maintenance: {ind}"
    );

    let run = api(&["--name", "api:new", "--api-get", "policy"]);
    succeeded(&run);
    assert_eq!(run.stdout.trim_end(), "Default", "{run:#?}");

    let run = api(&["--name", "api:new", "--api-delete"]);
    succeeded(&run);
    assert!(s.stored("api:new").is_none());

    let run = api(&["--api-checkmethods"]);
    succeeded(&run);
    assert!(run.stdout.contains("numerical"), "{run:#?}");
}

/// The clients' `bin/` exists and has every program the tests run.
#[test]
fn the_clients_are_installed() {
    let Some(bin) = clients_bin() else { return };
    for program in ["okerrupdate", "okerrapi", "okerrclient"] {
        assert!(
            Path::new(&bin).join(program).is_file(),
            "{program} in {}",
            bin.display()
        );
    }
}

/// The okerrupdate library: `indicator().update()` without method or policy, and
/// `project.update()` with `error`, tags and an `x_remoteip` field (captured request #14).
#[test]
fn okerrupdate_library() {
    let Some(s) = Setup::new() else { return };
    let t = s.textid();
    let script = format!(
        r#"
import okerrupdate
p = okerrupdate.OkerrProject({t:?}, secret='', url={url:?}, direct=True)
p.indicator('py:hb').update('OK')
p.x['remoteip'] = '10.0.0.1'
p.update('py:direct', 'ERR', details='d', error='some problem', tags=['a', 'b'])
try:
    p.update('py:bad<name', 'OK')
except okerrupdate.OkerrExc as e:
    print('refused:', e.msg, '| code:', e.code, '| status:', e.requests_response.status_code)
"#,
        url = s.server.url()
    );
    let run = run_client(&s.bin, "python", &["-c", &script], &[]);
    succeeded(&run);
    // `project.update()` sends the name as given (only `OkerrIndicator` cleans names)
    assert_eq!(
        run.stdout,
        format!(
            "okerr updated (200 OK) py:hb@{t} = OK\n\
             okerr updated (200 OK) py:direct@{t} = ERR\n\
             refused: okerr exception http code 400 (Bad Request) Do not create indicator \
             'py:bad<name': bad name | code: None | status: 400\n"
        ),
        "{run:#?}"
    );
    status_and_details(&s.must_be_stored("py:hb"), "OK", "");
    let ind = s.must_be_stored("py:direct");
    status_and_details(&ind, "ERR", "d");
    assert_eq!(
        ind["problem"], true,
        "the error field flags a problem: {ind}"
    );
    let tags = ind["tags"].as_array().expect("tags");
    for tag in ["a", "b", "problem"] {
        assert!(tags.iter().any(|x| x == tag), "{tag} in {ind}");
    }
    assert_eq!(
        s.server.indicator_names(&t),
        ["py:direct", "py:hb"],
        "nothing else stored"
    );
}
