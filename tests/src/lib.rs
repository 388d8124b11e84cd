//! End-to-end tests across the okerr crates live in `tests/`; this library holds what they
//! share:
//!
//! - [`Server`]: the real `okerr` binary (`target/debug/okerr`, see [`okerr_bin`]) serving
//!   a fresh SQLite database in a temporary directory (or on a database URL given to
//!   [`Server::start_on`]) on `127.0.0.1:0`, with what its first start printed
//!   ([`FirstStart`]), a graceful [`Server::stop`] (SIGTERM, exit 0), a crash
//!   ([`Server::kill`], SIGKILL) and [`Server::restart`] on the same database;
//! - [`Http`] and [`Reply`]: a small blocking HTTP client (plain HTTP, no proxy, no
//!   redirects) and what it got back;
//! - [`Server::admin`]: the admin commands (`okerr project|policy|key|member …`) on the
//!   server's database;
//! - [`clients_bin`] and [`run_client`]: the real Python clients (`okerrupdate`,
//!   `okerrapi`, `okerrclient`) from the virtualenv that `.ci/services.sh` prepares;
//! - [`poll`]: a bounded wait for what only the server's own scheduler does.
//! - [`browser::Browser`]: headless chromium through chromedriver, for the web pages.
//!
//! The binary is built by `cargo test --workspace` (it is a workspace member) or by
//! `cargo build -p okerr-bin`; `cargo test -p okerr-tests` alone does not rebuild it.

#![forbid(unsafe_code)]

pub mod browser;
pub use okerr_test_support::{from_env, mail, poll, value_from_env};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to start listening, and to exit after SIGTERM.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one run of a Python client may take. okerrupdate retries a 5xx for about
/// 60 s (spec okerr-clients.md §3.3), so this is above that.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The line `okerr serve` prints on stderr once it accepts connections.
const LISTENING: &str = "okerr listening on http://";

/// The `okerr` binary: `$OKERR_BIN` when set, else `okerr` next to the directory of the
/// running test executable (`target/debug/deps/..` → `target/debug/okerr`).
///
/// # Panics
/// When the binary is missing, with the command that builds it.
pub fn okerr_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("OKERR_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the path of the test executable");
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("okerr{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the okerr binary is missing at {}: run `cargo build -p okerr-bin` first \
         (`cargo test --workspace` builds it too), or point OKERR_BIN at it",
        bin.display()
    );
    bin
}

/// What `okerr serve` prints on stdout on its first start with an empty database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstStart {
    /// The TextID of the project it created.
    pub textid: String,
    /// The API key of that project (40 characters).
    pub api_key: String,
    /// The admin token it generated; `None` when it was given with `--admin-token`
    /// (the server then prints `(as configured)`).
    pub admin_token: Option<String>,
}

impl FirstStart {
    /// Reads the `TextID:`, `API key:` and `Admin token:` lines; `None` until all three
    /// are there.
    pub fn parse(stdout: &str) -> Option<FirstStart> {
        let value = |label: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_owned())
        };
        let textid = value("TextID:")?;
        let api_key = value("API key:")?;
        let admin_token = value("Admin token:")?;
        let admin_token = (admin_token != "(as configured)").then_some(admin_token);
        Some(FirstStart {
            textid,
            api_key,
            admin_token,
        })
    }
}

/// Text a reader thread collects from a pipe, and a signal for each new piece.
#[derive(Debug, Default)]
struct Collected {
    text: Mutex<String>,
    grew: Condvar,
}

impl Collected {
    fn push(&self, s: &str) {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_str(s);
        self.grew.notify_all();
    }

    fn get(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `f` finds what it wants in the text, at most until `deadline`.
    fn wait_for<T>(&self, deadline: Instant, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        let mut text = self.text.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(found) = f(&text) {
                return Some(found);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            text = self
                .grew
                .wait_timeout(text, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn read_lines(
    pipe: impl Read + Send + 'static,
    into: Arc<Collected>,
    tx: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    into.push(&line);
                    if let Some(tx) = &tx {
                        let _ = tx.send(line.trim_end().to_owned());
                    }
                }
            }
        }
    });
}

/// One running `okerr serve` on its own SQLite database in a temporary directory, or on
/// the database URL given to [`Server::start_on`].
///
/// Dropping it kills the server (SIGKILL) if it still runs; [`Server::stop`] ends it
/// gracefully and checks that it exits 0.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    /// A command the binary runs under (`prlimit --nofile=1024: --`), if any.
    wrapper: Vec<String>,
    extra_args: Vec<String>,
    /// The database URL from [`Server::start_on`]; `None`: `okerr.db` in `dir`.
    database: Option<String>,
    first_start: Option<FirstStart>,
    stdout: Arc<Collected>,
    stderr: Arc<Collected>,
    http: Http,
    // Last: the database goes away after the child is killed.
    dir: TempDir,
}

impl Server {
    /// Starts `okerr --database sqlite://<tempdir>/okerr.db serve --listen 127.0.0.1:0
    /// [extra_args]` on a new database, waits (at most [`START_TIMEOUT`]) for its
    /// `okerr listening on http://ADDR/` line and reads what its first start printed.
    ///
    /// # Panics
    /// When the server does not start, with what it printed.
    pub fn start(extra_args: &[&str]) -> Server {
        Server::start_with(None, extra_args)
    }

    /// Like [`Server::start`], on the database at `url` (`postgres://…`, `sqlite://…`),
    /// which must be empty: the first start makes the project and prints its TextID. The
    /// caller owns that database (it outlives the server).
    ///
    /// # Panics
    /// When the server does not start, with what it printed.
    pub fn start_on(url: &str, extra_args: &[&str]) -> Server {
        Server::start_with(Some(url.to_owned()), extra_args)
    }

    /// Like [`Server::start`], the binary run under `wrapper`, a command that execs its
    /// arguments (e.g. `prlimit --nofile=1024: --`): [`Server::pid`] is still the server's.
    ///
    /// # Panics
    /// When the server does not start, with what it printed.
    pub fn start_under(wrapper: &[&str], extra_args: &[&str]) -> Server {
        Server::start_with_wrapper(None, wrapper, extra_args)
    }

    fn start_with(database: Option<String>, extra_args: &[&str]) -> Server {
        Server::start_with_wrapper(database, &[], extra_args)
    }

    fn start_with_wrapper(
        database: Option<String>,
        wrapper: &[&str],
        extra_args: &[&str],
    ) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("okerr-e2e-")
            .tempdir()
            .expect("a temporary directory");
        let mut server = Server {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            wrapper: wrapper.iter().map(|s| (*s).to_owned()).collect(),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            database,
            first_start: None,
            stdout: Arc::default(),
            stderr: Arc::default(),
            http: Http::new("http://127.0.0.1:0/"),
            dir,
        };
        server.spawn(true);
        server
    }

    /// The database URL the server and the admin commands use.
    pub fn database_url(&self) -> String {
        if let Some(url) = &self.database {
            return url.clone();
        }
        format!("sqlite://{}", self.dir.path().join("okerr.db").display())
    }

    fn spawn(&mut self, first: bool) {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(okerr_bin());
                cmd
            }
            None => Command::new(okerr_bin()),
        };
        cmd.arg("--database")
            .arg(self.database_url())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "OKERR_DATABASE_URL",
            "OKERR_LISTEN",
            "OKERR_PUBLIC_URL",
            "OKERR_ADMIN_TOKEN",
            "OKERR_CONFIG",
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().expect("spawn the okerr binary");
        let deadline = Instant::now() + START_TIMEOUT;
        self.stdout = Arc::default();
        self.stderr = Arc::default();
        let (tx, rx) = mpsc::channel();
        read_lines(
            child.stdout.take().expect("piped stdout"),
            self.stdout.clone(),
            None,
        );
        read_lines(
            child.stderr.take().expect("piped stderr"),
            self.stderr.clone(),
            Some(tx),
        );
        self.child = Some(child);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(LISTENING) {
                        let addr = rest.split('/').next().unwrap_or_default();
                        break addr.parse::<SocketAddr>().unwrap_or_else(|e| {
                            self.fail(&format!("cannot parse the address in {line:?}: {e}"))
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no `{LISTENING}…` line within {START_TIMEOUT:?}"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.fail("the server closed stderr before it listened")
                }
            }
        };
        self.addr = addr;
        self.http = Http::new(&self.url());
        if first {
            // stdout was written before the listening line; the reader may lag behind.
            let parsed = self.stdout.wait_for(deadline, FirstStart::parse);
            if parsed.is_none() {
                self.fail("no TextID / API key / Admin token on stdout at the first start");
            }
            self.first_start = parsed;
        }
    }

    /// Kills the child and panics with `why` and everything the server printed.
    fn fail(&mut self, why: &str) -> ! {
        let status = self.child.take().map(|mut c| {
            let _ = c.kill();
            c.wait()
        });
        panic!(
            "okerr serve: {why} (exit: {status:?})\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout.get(),
            self.stderr.get()
        );
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`, with the trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The process id of the running server.
    ///
    /// # Panics
    /// When the server is stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// What the first start printed (TextID, API key, admin token).
    ///
    /// # Panics
    /// Never after [`Server::start`], which fails without it.
    pub fn first_start(&self) -> &FirstStart {
        self.first_start
            .as_ref()
            .expect("the first start printed its TextID")
    }

    /// The TextID of the project made on the first start.
    pub fn textid(&self) -> &str {
        &self.first_start().textid
    }

    /// The API key of the project made on the first start.
    pub fn api_key(&self) -> &str {
        &self.first_start().api_key
    }

    /// What the current (or last) run printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.get()
    }

    /// What the current (or last) run printed on stderr so far: its log.
    pub fn stderr(&self) -> String {
        self.stderr.get()
    }

    /// A client for this server (its base URL follows [`Server::restart`]).
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Sends SIGTERM (with `kill -TERM`) and waits, at most [`START_TIMEOUT`], for the
    /// server to exit.
    ///
    /// # Panics
    /// When it is not running, does not exit in time, or exits with anything but 0.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_within(START_TIMEOUT).0
    }

    /// Sends SIGTERM and waits at most `limit` for the server to exit; returns how it
    /// exited and how long that took.
    ///
    /// # Panics
    /// When it is not running, does not exit within `limit`, or exits with anything but 0.
    pub fn stop_within(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let pid = self.pid();
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed: {sent}");
        let deadline = started + limit;
        let status = loop {
            let child = self.child.as_mut().expect("the server runs");
            if let Some(status) = child.try_wait().expect("wait for the server") {
                break status;
            }
            if Instant::now() > deadline {
                self.fail(&format!("did not exit within {limit:?} of SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.child = None;
        assert!(
            status.success(),
            "okerr serve exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
        (status, started.elapsed())
    }

    /// Kills the server with SIGKILL (a crash: no shutdown of any kind) and reaps it.
    ///
    /// # Panics
    /// When it is not running, or had exited already (with what it printed).
    pub fn kill(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("the server runs");
        if let Some(status) = child.try_wait().expect("wait for the server") {
            self.child = None;
            panic!(
                "okerr serve had exited ({status}) before SIGKILL; stderr:\n{}",
                self.stderr()
            );
        }
        child.kill().expect("SIGKILL the server");
        let status = child.wait().expect("wait for the killed server");
        self.child = None;
        status
    }

    /// Stops the server (if it runs; see [`Server::stop`]) and starts it again on the
    /// same database, with the same arguments. The port changes. After [`Server::kill`]
    /// this is a start after a crash.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn(false);
    }

    /// Runs `okerr --database <this server's database> ARGS…` and returns what it did.
    pub fn admin(&self, args: &[&str]) -> Output {
        let out = Command::new(okerr_bin())
            .arg("--database")
            .arg(self.database_url())
            .args(args)
            .env_remove("OKERR_DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run an okerr admin command");
        Output::from(out)
    }

    /// Like [`Server::admin`], and checks that it exits 0; returns its stdout.
    ///
    /// # Panics
    /// When the command fails.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert_eq!(
            out.code,
            Some(0),
            "okerr {} failed: {out:?}",
            args.join(" ")
        );
        out.stdout
    }

    /// `GET /api/indicator/{textid}/{name}` with the first start's API key: the JSON, or
    /// `None` on 404.
    ///
    /// # Panics
    /// On any other answer.
    pub fn indicator(&self, textid: &str, name: &str) -> Option<serde_json::Value> {
        let path = format!(
            "api/indicator/{}/{}",
            path_segment(textid),
            path_segment(name)
        );
        let reply = self.http.get(&path, &[("X-API-KEY", self.api_key())]);
        match reply.status {
            200 => Some(reply.json()),
            404 => None,
            _ => panic!("GET /{path}: {reply:?}"),
        }
    }

    /// The names `GET /api/indicators/{textid}` lists, with the first start's API key.
    ///
    /// # Panics
    /// On an answer other than 200.
    pub fn indicator_names(&self, textid: &str) -> Vec<String> {
        let path = format!("api/indicators/{}", path_segment(textid));
        let reply = self.http.get(&path, &[("X-API-KEY", self.api_key())]);
        assert_eq!(reply.status, 200, "GET /{path}: {reply:?}");
        reply.body.lines().map(str::to_owned).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// What a finished command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// stdout, as (lossy) UTF-8.
    pub stdout: String,
    /// stderr, as (lossy) UTF-8.
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Percent-encodes one path segment: everything but `A-Z a-z 0-9 - . _ ~ :`.
pub fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `application/x-www-form-urlencoded` body as Python's `urlencode` makes it (space as
/// `+`, everything else that is not unreserved as `%XX`), fields in the order given.
pub fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case (the last value of a repeated name).
    pub headers: BTreeMap<String, String>,
    /// The body, as (lossy) UTF-8.
    pub body: String,
}

impl Reply {
    /// One header, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A blocking HTTP client for one server: plain HTTP, no proxy, no redirects followed,
/// 10 s per request.
#[derive(Debug, Clone)]
pub struct Http {
    base: String,
    client: reqwest::blocking::Client,
}

impl Http {
    /// A client for the server at `base` (`http://host:port/`).
    pub fn new(base: &str) -> Http {
        // In a workspace build reqwest's features are unified with okerr-client's
        // (`rustls-no-provider`): a client then needs a process-wide TLS provider, though
        // these tests speak plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        Http {
            base: base.to_owned(),
            client,
        }
    }

    /// The base URL, with its trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder, what: &str) -> Reply {
        Http::try_send(req).unwrap_or_else(|e| panic!("{what}: {e} ({e:?})"))
    }

    fn try_send(req: reqwest::blocking::RequestBuilder) -> Result<Reply, reqwest::Error> {
        let resp = req.send()?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.bytes()?;
        Ok(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Any request: `path` is relative to the base (no leading `/`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = self.client.request(method.clone(), &url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((content_type, body)) = body {
            req = req.header("Content-Type", content_type).body(body);
        }
        self.send(req, &format!("{method} {url}"))
    }

    /// `GET path` with extra headers.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, None)
    }

    /// `POST path` with an urlencoded form (fields in order), as the clients send it.
    pub fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        self.request(
            "POST",
            path,
            headers,
            Some((
                "application/x-www-form-urlencoded",
                form(fields).into_bytes(),
            )),
        )
    }

    /// `POST /update` with these form fields.
    pub fn update(&self, fields: &[(&str, &str)]) -> Reply {
        self.post_form("update", fields, &[])
    }

    /// Like [`Http::update`], and a failure to connect, send or read the answer (a server
    /// that went away) is an `Err` instead of a panic. Requests of one `Http` share its
    /// keep-alive connection.
    ///
    /// # Errors
    /// The transport error.
    pub fn try_update(&self, fields: &[(&str, &str)]) -> Result<Reply, reqwest::Error> {
        let req = self
            .client
            .post(format!("{}update", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(fields).into_bytes());
        Http::try_send(req)
    }
}

/// The virtualenv `bin/` with `okerrupdate`, `okerrapi` and `okerrclient`, from
/// `OKERR_TEST_CLIENTS_BIN` (set by `ensure_python_clients` in `.ci/services.sh`).
/// Without it, prints why the test is skipped and returns `None`.
///
/// # Panics
/// When it is unset and `OKERR_REQUIRE_CLIENTS=1`, or when it names no such directory.
pub fn clients_bin() -> Option<PathBuf> {
    let dir = from_env(
        "OKERR_TEST_CLIENTS_BIN",
        "OKERR_REQUIRE_CLIENTS",
        "ensure_python_clients",
    )?;
    assert!(
        dir.join("okerrupdate").is_file(),
        "OKERR_TEST_CLIENTS_BIN={} holds no okerrupdate",
        dir.display()
    );
    Some(dir)
}

/// What a run of a Python client did; `stderr` without okerrclient's syslog noise.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// The command line, for messages.
    pub command: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr, with the `--- Logging error ---` blocks removed (see
    /// [`without_logging_errors`]).
    pub stderr: String,
    /// stderr as printed.
    pub raw_stderr: String,
}

/// Removes the `--- Logging error ---` … `Arguments: …` blocks that Python prints for
/// each log line when okerrclient's `SysLogHandler('/dev/log')` has no socket (spec
/// okerr-clients.md §7.1).
pub fn without_logging_errors(stderr: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in stderr.lines() {
        if line == "--- Logging error ---" {
            skipping = true;
        } else if skipping {
            if line.starts_with("Arguments:") {
                skipping = false;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs `<bin>/<program> ARGS…` with `env` on top of a clean environment: no `OKERR_*`
/// variable from outside, no proxy, `HOME` a fresh empty directory (so no dotenv or
/// `~/.okerrclient.conf` is read), UTF-8 I/O. Waits at most [`CLIENT_TIMEOUT`].
///
/// # Panics
/// When the program cannot run or does not finish in time.
pub fn run_client(bin: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> ClientRun {
    let home = tempfile::Builder::new()
        .prefix("okerr-client-home-")
        .tempdir()
        .expect("a temporary HOME");
    let path = bin.join(program);
    let mut cmd = Command::new(&path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("OKERR_") || k.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("HOME", home.path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONUTF8", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let command = format!(
        "{}{program} {}",
        env.iter()
            .map(|(k, v)| format!("{k}={v} "))
            .collect::<String>(),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = Arc::new(Collected::default());
    let stderr = Arc::new(Collected::default());
    let (out_pipe, err_pipe) = (
        child.stdout.take().expect("piped stdout"),
        child.stderr.take().expect("piped stderr"),
    );
    let readers = [
        {
            let into = stdout.clone();
            std::thread::spawn(move || collect(out_pipe, &into))
        },
        {
            let into = stderr.clone();
            std::thread::spawn(move || collect(err_pipe, &into))
        },
    ];
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command}: still running after {CLIENT_TIMEOUT:?}\n--- stdout:\n{}\n--- stderr:\n{}",
                stdout.get(),
                stderr.get()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for r in readers {
        let _ = r.join();
    }
    let raw_stderr = stderr.get();
    ClientRun {
        command,
        code: status.code(),
        stdout: stdout.get(),
        stderr: without_logging_errors(&raw_stderr),
        raw_stderr,
    }
}

fn collect(mut pipe: impl Read, into: &Collected) {
    let mut buf = Vec::new();
    let _ = pipe.read_to_end(&mut buf);
    into.push(&String::from_utf8_lossy(&buf));
}
