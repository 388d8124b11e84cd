//! The `okerr` binary killed with SIGKILL under load loses no update it acknowledged: 8
//! clients, each on its own keep-alive connection, post okerrupdate's `/update` form to 4
//! indicators, every update with its own details; once 3,000 (PostgreSQL: 2,000) are
//! acknowledged (200 `OK`) the server is killed while they still send. After a restart on the same database every
//! acknowledged update is a line in its indicator's log, read from the database's rows
//! (the `log` table joined to `indicators`), not through the server. On SQLite (a file in a
//! temporary directory) and on PostgreSQL (a schema of its own on `OKERR_TEST_PG_URL`,
//! through the URL's `options=-csearch_path=…`; skipped without it unless
//! `OKERR_REQUIRE_PG=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use okerr_tests::{Http, Server, poll, value_from_env};
use sqlx::Connection;

/// Client threads, each with its own connection.
const CLIENTS: usize = 8;
/// Indicators the clients take turns on (autocreated by the first update).
const INDICATORS: usize = 4;
/// Acknowledged updates before the kill, on SQLite.
const SQLITE_BEFORE_KILL: usize = 3_000;
/// On PostgreSQL, where a debug build commits about half as fast (every commit waits for
/// its WAL flush): the test stays within ~10 s on a busy 2-core machine.
const PG_BEFORE_KILL: usize = 2_000;
/// The longest wait for them, on a slow machine.
const AT_MOST: Duration = Duration::from_secs(120);
/// Every update's details start with this, then `<client>-n<number>`.
const MARK: &str = "crash-t";

fn indicator(i: usize) -> String {
    format!("crash:ind{i}")
}

/// okerrupdate's form for one heartbeat, its fields in its order.
fn update_form<'a>(textid: &'a str, name: &'a str, details: &'a str) -> [(&'a str, &'a str); 11] {
    [
        ("textid", textid),
        ("name", name),
        ("status", "OK"),
        ("details", details),
        ("secret", ""),
        ("method", "heartbeat"),
        ("policy", "Default"),
        ("tags", ""),
        ("keypath", ""),
        ("origkeypath", ""),
        ("desc", ""),
    ]
}

/// What one client did until the server went away.
#[derive(Debug, Default)]
struct ClientRun {
    /// (indicator, details) of each update answered 200 `OK`.
    acked: Vec<(String, String)>,
    /// Any other answer.
    refused: Vec<String>,
    /// The transport error that ended it (`None`: stopped after the kill between two
    /// requests).
    ended_by: Option<String>,
}

/// Posts updates until a request fails (the server was killed) or `stop` is set.
fn client(
    base: String,
    textid: String,
    me: usize,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> ClientRun {
    // Its own `Http`: its own connection pool, so one keep-alive connection of its own.
    let http = Http::new(&base);
    let mut run = ClientRun::default();
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let name = indicator((me + n) % INDICATORS);
        let details = format!("{MARK}{me}-n{n}");
        match http.try_update(&update_form(&textid, &name, &details)) {
            Ok(reply) if reply.status == 200 && reply.body == "OK" => {
                run.acked.push((name, details));
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Ok(reply) => run
                .refused
                .push(format!("{details}: {} {:?}", reply.status, reply.body)),
            Err(e) => {
                run.ended_by = Some(format!("{e:?}"));
                break;
            }
        }
    }
    run
}

/// The `(indicator, details)` of each update token in the log rows, with how often it is
/// there.
fn logged_updates(rows: &[(String, String)]) -> BTreeMap<(String, String), usize> {
    let mut found = BTreeMap::new();
    for (name, message) in rows {
        let mut rest = message.as_str();
        while let Some(at) = rest.find(MARK) {
            rest = &rest[at + MARK.len()..];
            let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
            let t = digits(rest);
            let Some(after) = rest[t..].strip_prefix("-n").filter(|_| t > 0) else {
                continue;
            };
            let n = digits(after);
            if n > 0 {
                let details = format!("{MARK}{}-n{}", &rest[..t], &after[..n]);
                *found.entry((name.clone(), details)).or_insert(0) += 1;
            }
        }
    }
    found
}

/// Every log line of the database at `url` as (indicator name, message), oldest first,
/// read with sqlx straight from the rows.
fn log_rows(url: &str) -> Vec<(String, String)> {
    const QUERY: &str = "SELECT i.name, l.message FROM log l \
                         JOIN indicators i ON i.id = l.indicator_id ORDER BY l.id";
    runtime().block_on(async {
        let rows: Result<Vec<(String, String)>, sqlx::Error> =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let mut db = sqlx::PgConnection::connect(url)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
                sqlx::query_as(QUERY).fetch_all(&mut db).await
            } else {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .unwrap_or_else(|e| panic!("{url}: {e}"))
                    .create_if_missing(false);
                let mut db = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap_or_else(|e| panic!("open {url}: {e}"));
                sqlx::query_as(QUERY).fetch_all(&mut db).await
            };
        rows.unwrap_or_else(|e| panic!("{QUERY} on {url}: {e}"))
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Load, SIGKILL, restart, and every acknowledged update in the log.
fn kill_9_under_load_loses_nothing(mut server: Server, backend: &str, before_kill: usize) {
    let textid = server.textid().to_owned();
    let started = Instant::now();
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<JoinHandle<ClientRun>> = (0..CLIENTS)
        .map(|me| {
            let (base, textid) = (server.url(), textid.clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || client(base, textid, me, acked, stop))
        })
        .collect();

    // A count, not a time: wait until enough are acknowledged (or a client gave up).
    let loaded = poll(
        &format!("{before_kill} acknowledged updates ({backend})"),
        AT_MOST,
        Duration::from_millis(2),
        || {
            if acked.load(Ordering::SeqCst) >= before_kill {
                Some(true)
            } else {
                clients.iter().any(|c| c.is_finished()).then_some(false)
            }
        },
    );
    let at_kill = acked.load(Ordering::SeqCst);
    let load_took = started.elapsed();
    let killed = server.kill();
    stop.store(true, Ordering::SeqCst);
    let runs: Vec<ClientRun> = clients
        .into_iter()
        .map(|c| c.join().expect("a client thread"))
        .collect();
    assert!(
        loaded,
        "a client stopped before the kill ({backend}): {runs:#?}\n--- server stderr:\n{}",
        server.stderr()
    );
    let acknowledged: Vec<&(String, String)> = runs.iter().flat_map(|r| &r.acked).collect();
    let refused: Vec<&String> = runs.iter().flat_map(|r| &r.refused).collect();
    let ended_by_error = runs.iter().filter(|r| r.ended_by.is_some()).count();
    println!(
        "{backend}: killed ({killed}) at {at_kill} acknowledged after {load_took:.1?}; \
         {} acknowledged in all, {} refused, {ended_by_error} of {CLIENTS} clients ended by \
         a transport error (e.g. {})",
        acknowledged.len(),
        refused.len(),
        runs.iter()
            .find_map(|r| r.ended_by.as_deref())
            .unwrap_or("none"),
    );
    assert!(
        refused.is_empty(),
        "{backend}: {} updates not answered 200 OK before the kill, e.g. {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );

    let restarted = Instant::now();
    server.restart();
    println!("{backend}: restarted in {:.1?}", restarted.elapsed());
    let after = "crash-after-restart";
    let name = indicator(0);
    let reply = server.http().update(&update_form(&textid, &name, after));
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "{backend}: an update after the restart: {reply:?}"
    );
    assert!(
        server.indicator(&textid, &name).is_some(),
        "{backend}: {name} after the restart"
    );

    let rows = log_rows(&server.database_url());
    assert!(
        rows.iter().any(|(n, m)| *n == name && m.contains(after)),
        "{backend}: the update after the restart is not in the log rows read"
    );
    let logged = logged_updates(&rows);
    let wanted: BTreeSet<(String, String)> = acknowledged.iter().map(|&u| u.clone()).collect();
    assert_eq!(
        wanted.len(),
        acknowledged.len(),
        "{backend}: details repeat"
    );
    let lost: Vec<&(String, String)> = wanted.iter().filter(|u| !logged.contains_key(u)).collect();
    let found = wanted.len() - lost.len();
    let unacknowledged = logged.keys().filter(|u| !wanted.contains(*u)).count();
    let twice = logged.values().filter(|&&n| n > 1).count();
    println!(
        "{backend}: acknowledged {}, found {found}, lost {}; in the log without an answer \
         (committed, the answer cut by the kill) {unacknowledged}; logged more than once {twice}; \
         {} log rows",
        wanted.len(),
        lost.len(),
        rows.len()
    );
    assert!(
        lost.is_empty(),
        "{backend}: {} of {} acknowledged updates are not in their indicator's log after \
         SIGKILL and restart, e.g. {:?}",
        lost.len(),
        wanted.len(),
        &lost[..lost.len().min(10)]
    );
    server.stop();
}

#[test]
fn sqlite_kill_9_under_load_loses_no_acknowledged_update() {
    kill_9_under_load_loses_nothing(Server::start(&[]), "sqlite", SQLITE_BEFORE_KILL);
}

/// A schema of its own on the test server, made empty first and dropped at the end (also
/// when the test fails).
#[derive(Debug)]
struct PgSchema {
    base: String,
    name: String,
}

impl PgSchema {
    fn create(base: &str, name: &str) -> PgSchema {
        let schema = PgSchema {
            base: base.to_owned(),
            name: name.to_owned(),
        };
        schema.execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ));
        schema
    }

    fn execute(&self, sql: &str) {
        let sql = sql.to_owned();
        runtime().block_on(async {
            let mut db = sqlx::PgConnection::connect(&self.base)
                .await
                .unwrap_or_else(|e| panic!("connect to {}: {e}", self.base));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut db)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// The base URL with the schema as the connection's search_path (libpq's `options`).
    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = &self.name;
        self.execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
    }
}

#[test]
fn postgres_kill_9_under_load_loses_no_acknowledged_update() {
    let Some(base) = value_from_env("OKERR_TEST_PG_URL", "OKERR_REQUIRE_PG", "ensure_postgres")
    else {
        return;
    };
    let schema = PgSchema::create(&base, &format!("okerr_crash_{}", std::process::id()));
    // Declared after the schema: the server is killed before the schema is dropped.
    let server = Server::start_on(&schema.url(), &[]);
    kill_9_under_load_loses_nothing(server, "postgres", PG_BEFORE_KILL);
}

#[test]
fn log_lines_are_read_token_by_token() {
    let row = |name: &str, message: &str| (name.to_owned(), message.to_owned());
    let rows = [
        row("a", "http:127.0.0.1: switch ? > OK: crash-t1-n12"),
        row("a", "http:127.0.0.1: confirmed OK: crash-t1-n123"),
        row("b", "http:127.0.0.1: confirmed OK: crash-t2-n7"),
        row("b", "http:127.0.0.1: confirmed OK: crash-t2-n7"),
        row("b", "crash-t crash-t3- crash-t3-n crash-tx-n1"),
    ];
    let found = logged_updates(&rows);
    let key = |name: &str, details: &str| (name.to_owned(), details.to_owned());
    assert_eq!(
        found,
        BTreeMap::from([
            (key("a", "crash-t1-n12"), 1),
            (key("a", "crash-t1-n123"), 1),
            (key("b", "crash-t2-n7"), 2),
        ])
    );
}
