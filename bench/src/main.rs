//! Measures okerr's storage backends (SQLite and PostgreSQL) and prints a Markdown report.
//!
//! For each backend it measures:
//!
//! 1. **Committed updates per second, single**: heartbeat updates through
//!    [`Engine::update`] (one project, 1,000 indicators created beforehand), from 1 and from
//!    16 concurrent tokio tasks. Each task owns its own indicators, so no update conflicts.
//!    Two workloads: `OK` confirmations (the indicator row and one log line per update) and
//!    OK/ERR flips (the row, two log lines and one outbox entry). Also the time of each
//!    step of one update (project lookup, indicator read, decision, commit), one after
//!    another, and sqlx round trips: `SELECT 1` on a held connection and through a pool,
//!    a 1 KiB and a 256 KiB parameter on a held connection.
//! 2. **Committed updates per second, batched**: the same decisions, made with the pure
//!    [`decide_update`] from indicators read once, committed with [`Storage::commit_batch`] (one commit per group)
//!    in batches of 100 and 1,000 (each commit of a batch for another indicator). For
//!    comparison, the confirmations also committed set-based: raw SQL on the backend's own
//!    tables, one `UPDATE` and one `INSERT` per batch. That is not okerr's storage API; it
//!    shows what fewer statements per commit would give on the same schema and durability.
//! 3. **`claim_due` and `next_deadline` at 100,000 and 1,000,000 indicators**: heartbeat
//!    indicators due at random times over a day, inserted with `commit_batch` in batches of
//!    2,000 (the insert rate is reported too); then 100 claims of 100 indicators while
//!    about 1% are due, the time moving forward so that each claim takes a fresh set, and
//!    100 `next_deadline` calls. The backends' query plans are printed after the table.
//!
//! Update rates are the median of 3 runs (1 with `--quick`), all runs shown. Each line also
//! says how much CPU processes other than the benchmark and the PostgreSQL server took
//! meanwhile (from `/proc`; left out for lines shorter than about a second): on a shared
//! 2-core machine that is the first thing to look at when a number is odd. Writes are as
//! durable as the backend is configured: SQLite is a file in a temporary directory in WAL
//! mode with `synchronous=NORMAL`; PostgreSQL runs with the server's settings (printed with
//! the results). The runtime is tokio's multi-thread runtime with 2 workers.
//!
//! Run it with:
//!
//! ```sh
//! cargo run --release -p okerr-bench -- [--backend sqlite|postgres|all] [--quick] [--pg-url URL]
//! ```
//!
//! `--quick` runs 2,000 updates instead of 20,000, once, and `claim_due` at 100,000
//! indicators only. PostgreSQL is reached at `postgres://postgres@127.0.0.1:5432/test`
//! unless `--pg-url` says otherwise; the benchmark works in the schema `okerr_bench`, which
//! it drops before and after. Progress goes to stderr, the report to stdout.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use okerr::testing::RecordingNotifier;
use okerr::{
    CheckMethod, Clock, Commit, Engine, Indicator, IndicatorName, NewProject, Project, Settings,
    Status, Storage, SystemClock, TextId, UpdateOutcome, UpdateRequest, decide_update,
};
use okerr_backend_postgres::PostgresStorage;
use okerr_backend_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use okerr_backend_postgres::sqlx::{self, Row as _};
use okerr_backend_sqlite::SqliteStorage;
use okerr_backend_sqlite::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

mod rng;
mod sampler;

use rng::SplitMix64;
use sampler::{CpuSample, load, machine};

/// The PostgreSQL database used unless `--pg-url` names another.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The schema the benchmark creates, and drops before and after.
const SCHEMA: &str = "okerr_bench";
/// The textid of the benchmark's project.
const TEXTID: &str = "bench";
/// How many indicators the update measurements spread their updates over.
const INDICATORS: usize = 1_000;
/// The concurrency levels of the single-update measurement.
const CONCURRENCY: [usize; 2] = [1, 16];
/// The batch sizes of the batched measurement.
const BATCHES: [usize; 2] = [100, 1_000];
/// Indicators per `commit_batch` when filling the database for `claim_due`.
const INSERT_BATCH: usize = 2_000;
/// Indicators per `claim_due`.
const CLAIM_LIMIT: u32 = 100;
/// Timed calls of `claim_due` and of `next_deadline`.
const REPEATS: usize = 100;
/// The due times of the `claim_due` indicators are spread over this many microseconds.
const DAY_MICROS: i64 = 86_400_000_000;

const USAGE: &str = "usage: okerr-bench [--backend sqlite|postgres|all] [--quick] [--pg-url URL]";

/// The set-based `UPDATE` on SQLite: one statement for the whole batch, from a JSON array.
const SQLITE_SET_UPDATE: &str = "UPDATE indicators
     SET version = j.value ->> 'v', due_at = j.value ->> 'due', data = j.value ->> 'data'
     FROM json_each(?) AS j
     WHERE indicators.id = j.value ->> 'id' AND indicators.version = (j.value ->> 'v') - 1";
/// The set-based log `INSERT` on SQLite.
const SQLITE_SET_LOG: &str = "INSERT INTO log (indicator_id, time, kind, message)
     SELECT j.value ->> 'i', j.value ->> 't', j.value ->> 'k', j.value ->> 'm'
     FROM json_each(?) AS j";
/// The set-based `UPDATE` on PostgreSQL: one statement for the whole batch, from arrays.
const PG_SET_UPDATE: &str = "UPDATE indicators i
     SET version = u.version, due_at = u.due, data = u.data
     FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS u(id, version, due, data)
     WHERE i.id = u.id AND i.version = u.version - 1";
/// The set-based log `INSERT` on PostgreSQL.
const PG_SET_LOG: &str = "INSERT INTO log (indicator_id, time, kind, message)
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[])";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug)]
struct Options {
    backends: Vec<Backend>,
    quick: bool,
    pg_url: String,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            backends: vec![Backend::Sqlite, Backend::Postgres],
            quick: false,
            pg_url: DEFAULT_PG_URL.to_owned(),
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--backend" => {
                    options.backends = match args.next().as_deref() {
                        Some("sqlite") => vec![Backend::Sqlite],
                        Some("postgres") => vec![Backend::Postgres],
                        Some("all") => vec![Backend::Sqlite, Backend::Postgres],
                        _ => return Err(USAGE.to_owned()),
                    }
                }
                "--pg-url" => options.pg_url = args.next().ok_or(USAGE)?,
                _ => return Err(USAGE.to_owned()),
            }
        }
        Ok(options)
    }

    /// Updates per single-update and per batched run.
    fn updates(&self) -> usize {
        if self.quick { 2_000 } else { 20_000 }
    }

    /// Runs of each update measurement; the report gives the median.
    fn runs(&self) -> usize {
        if self.quick { 1 } else { 3 }
    }

    /// Updates timed step by step, and `SELECT 1` round trips.
    fn samples(&self) -> usize {
        if self.quick { 500 } else { 2_000 }
    }

    /// Indicator counts of the `claim_due` measurement.
    fn claim_sizes(&self) -> &'static [usize] {
        if self.quick {
            &[100_000]
        } else {
            &[100_000, 1_000_000]
        }
    }
}

/// A fresh, migrated database of one backend.
#[derive(Debug)]
enum Db {
    Sqlite {
        storage: SqliteStorage,
        path: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        storage: PostgresStorage,
        url: String,
    },
}

/// Times `$samples` runs of `$body` and gives the mean.
macro_rules! mean_of {
    ($samples:expr, $body:expr) => {{
        let samples: usize = $samples;
        let started = Instant::now();
        for _ in 0..samples {
            $body;
        }
        started.elapsed() / u32::try_from(samples.max(1))?
    }};
}

impl Db {
    async fn fresh(backend: Backend, options: &Options) -> Result<Db> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("okerr-bench.db").display().to_string();
                let storage = SqliteStorage::connect(&format!("sqlite://{path}")).await?;
                storage.migrate().await?;
                Ok(Db::Sqlite {
                    storage,
                    path,
                    _dir: dir,
                })
            }
            Backend::Postgres => {
                drop_schema(&options.pg_url).await?;
                let storage = PostgresStorage::connect_in_schema(&options.pg_url, SCHEMA).await?;
                storage.migrate().await?;
                Ok(Db::Postgres {
                    storage,
                    url: options.pg_url.clone(),
                })
            }
        }
    }

    fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Db::Sqlite { storage, .. } => Arc::new(storage.clone()),
            Db::Postgres { storage, .. } => Arc::new(storage.clone()),
        }
    }

    /// The database's version and durability settings, read from the database itself.
    async fn describe(&self) -> Result<String> {
        match self {
            Db::Sqlite { storage, path, .. } => {
                let pool = storage.pool();
                let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(pool)
                    .await?;
                let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(pool)
                    .await?;
                let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(pool)
                    .await?;
                let synchronous = match synchronous {
                    0 => "OFF",
                    1 => "NORMAL",
                    2 => "FULL",
                    3 => "EXTRA",
                    _ => "?",
                };
                Ok(format!(
                    "SQLite {version} (bundled), journal_mode={journal}, \
                     synchronous={synchronous}, file `{path}` on the root ext4 disk (one \
                     writer connection, 4 readers)"
                ))
            }
            Db::Postgres { storage, .. } => {
                let pool = storage.pool();
                let version: String = sqlx::query_scalar("SHOW server_version")
                    .fetch_one(pool)
                    .await?;
                let mut text = format!("PostgreSQL {version} on the same machine");
                for setting in [
                    "fsync",
                    "synchronous_commit",
                    "wal_sync_method",
                    "full_page_writes",
                    "shared_buffers",
                ] {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
                        .fetch_one(pool)
                        .await?;
                    let value: String = row.try_get(0)?;
                    write!(text, ", {setting}={value}")?;
                }
                text.push_str(" (pool of 8 connections, sqlx defaults)");
                Ok(text)
            }
        }
    }

    /// Mean round trips through sqlx: `SELECT 1` on a connection held throughout, through
    /// the backend's pool (acquire, the pool's `test_before_acquire` ping, the query, the
    /// return to the pool) and through a one-connection pool without the ping; and
    /// `SELECT length($1)` with a 1 KiB and a 256 KiB text on the held connection.
    async fn round_trips(&self, samples: usize) -> Result<[Duration; 5]> {
        let small = "x".repeat(1 << 10);
        let large = "x".repeat(1 << 18);
        let few = samples.div_ceil(20);
        match self {
            Db::Sqlite { storage, path, .. } => {
                let pool = storage.pool();
                let via_pool = mean_of!(samples, sqlx::query("SELECT 1").execute(pool).await?);
                let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?;
                let unpinged = SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                let no_ping = mean_of!(samples, sqlx::query("SELECT 1").execute(&unpinged).await?);
                unpinged.close().await;
                let mut conn = pool.acquire().await?;
                let held = mean_of!(samples, sqlx::query("SELECT 1").execute(&mut *conn).await?);
                let length = |text: &str| sqlx::query("SELECT length(?)").bind(text.to_owned());
                let small = mean_of!(few, length(&small).execute(&mut *conn).await?);
                let large = mean_of!(few, length(&large).execute(&mut *conn).await?);
                Ok([held, via_pool, no_ping, small, large])
            }
            Db::Postgres { storage, url } => {
                let pool = storage.pool();
                let via_pool = mean_of!(samples, sqlx::query("SELECT 1").execute(pool).await?);
                let unpinged = PgPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(PgConnectOptions::from_str(url)?)
                    .await?;
                let no_ping = mean_of!(samples, sqlx::query("SELECT 1").execute(&unpinged).await?);
                unpinged.close().await;
                let mut conn = pool.acquire().await?;
                let held = mean_of!(samples, sqlx::query("SELECT 1").execute(&mut *conn).await?);
                let length = |text: &str| sqlx::query("SELECT length($1)").bind(text.to_owned());
                let small = mean_of!(few, length(&small).execute(&mut *conn).await?);
                let large = mean_of!(few, length(&large).execute(&mut *conn).await?);
                Ok([held, via_pool, no_ping, small, large])
            }
        }
    }

    /// The same storage through a pool that does not ping before each acquire, where the
    /// backend lets one build the pool (PostgreSQL).
    async fn without_ping(&self) -> Result<Option<PostgresStorage>> {
        match self {
            Db::Sqlite { .. } => Ok(None),
            Db::Postgres { url, .. } => {
                let options = PgConnectOptions::from_str(url)?.options([("search_path", SCHEMA)]);
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Ok(Some(PostgresStorage::new(pool)))
            }
        }
    }

    /// Commits updates of existing indicators that only add log lines, set-based: one
    /// `UPDATE` and one `INSERT` for the whole batch, in one transaction. All or nothing;
    /// returns the indicators as stored.
    async fn commit_set_based(&self, commits: &[Commit]) -> Result<Vec<Indicator>> {
        let mut stored = Vec::with_capacity(commits.len());
        let mut log = Vec::new();
        for commit in commits {
            if commit.indicator.version == 0
                || !commit.notifications.is_empty()
                || !commit.cancel.is_empty()
            {
                return Err("set-based commits only update indicators and add log lines".into());
            }
            let mut ind = commit.indicator.clone();
            ind.version += 1;
            for line in &commit.log {
                log.push((
                    ind.id.0,
                    line.time.timestamp_micros(),
                    line.kind.as_str(),
                    line.message.as_str(),
                ));
            }
            stored.push(ind);
        }
        let ids: Vec<i64> = stored.iter().map(|i| i.id.0).collect();
        let versions = stored
            .iter()
            .map(|i| i64::try_from(i.version))
            .collect::<Result<Vec<i64>, _>>()?;
        let dues: Vec<Option<i64>> = stored
            .iter()
            .map(|i| i.due_at().map(|t| t.timestamp_micros()))
            .collect();
        let data = stored
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<String>, _>>()?;
        let updated = match self {
            Db::Sqlite { storage, .. } => {
                let rows: Vec<serde_json::Value> = (0..stored.len())
                    .map(|k| {
                        serde_json::json!({
                            "id": ids[k], "v": versions[k], "due": dues[k], "data": data[k],
                        })
                    })
                    .collect();
                let lines: Vec<serde_json::Value> = log
                    .iter()
                    .map(|(i, t, k, m)| serde_json::json!({"i": i, "t": t, "k": k, "m": m}))
                    .collect();
                let mut tx = storage.pool().begin_with("BEGIN IMMEDIATE").await?;
                let updated = sqlx::query(SQLITE_SET_UPDATE)
                    .bind(serde_json::to_string(&rows)?)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(SQLITE_SET_LOG)
                    .bind(serde_json::to_string(&lines)?)
                    .execute(&mut *tx)
                    .await?;
                if updated == stored.len() as u64 {
                    tx.commit().await?;
                }
                updated
            }
            Db::Postgres { storage, .. } => {
                let mut tx = storage.pool().begin().await?;
                let updated = sqlx::query(PG_SET_UPDATE)
                    .bind(&ids)
                    .bind(&versions)
                    .bind(&dues)
                    .bind(&data)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(PG_SET_LOG)
                    .bind(log.iter().map(|l| l.0).collect::<Vec<_>>())
                    .bind(log.iter().map(|l| l.1).collect::<Vec<_>>())
                    .bind(log.iter().map(|l| l.2).collect::<Vec<_>>())
                    .bind(log.iter().map(|l| l.3).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await?;
                if updated == stored.len() as u64 {
                    tx.commit().await?;
                }
                updated
            }
        };
        if updated != stored.len() as u64 {
            return Err(format!(
                "set-based commit updated {updated} of {} indicators",
                stored.len()
            )
            .into());
        }
        Ok(stored)
    }

    /// The backend's plans of `claim_due` and `next_deadline`, one line each.
    async fn plans(&self) -> Result<Vec<(&'static str, String)>> {
        let plans = match self {
            Db::Sqlite { storage, .. } => storage.scheduler_query_plans().await?,
            Db::Postgres { storage, .. } => storage.scheduler_query_plans().await?,
        };
        Ok(plans
            .into_iter()
            .filter(|(name, _)| *name != "claim_notifications")
            .map(|(name, lines)| {
                let lines: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
                (name, lines.join(" / "))
            })
            .collect())
    }

    async fn close(self) -> Result<()> {
        match self {
            Db::Sqlite { storage, .. } => {
                storage.close().await;
                Ok(())
            }
            Db::Postgres { storage, url } => {
                storage.close().await;
                drop_schema(&url).await
            }
        }
    }
}

async fn drop_schema(url: &str) -> Result<()> {
    let admin = PostgresStorage::connect(url).await?;
    let drop = format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(admin.pool())
        .await?;
    admin.close().await;
    Ok(())
}

/// What the updates send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// `OK` to an OK indicator: the indicator row and one log line.
    Confirm,
    /// The opposite of the indicator's status: the indicator row, two log lines (the
    /// switch and the alert) and one outbox entry.
    Flip,
}

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Workload::Confirm => "OK confirm",
            Workload::Flip => "OK/ERR flip",
        }
    }

    fn status(self, current: Status) -> Status {
        match self {
            Workload::Confirm => Status::Ok,
            Workload::Flip => current.opposite(),
        }
    }
}

/// How a batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// [`Storage::commit_batch`] (one commit per group).
    CommitMany,
    /// [`Db::commit_set_based`].
    SetBased,
}

/// One line of the result table.
#[derive(Debug)]
struct Row {
    backend: Backend,
    measurement: String,
    result: String,
    detail: String,
}

/// Collects rows and prints progress to stderr, so that stdout has only the report.
#[derive(Debug)]
struct Report {
    backend: Backend,
    rows: Vec<Row>,
    plans: Vec<String>,
    /// Where the current measurement started, to tell how much CPU other processes took.
    since: CpuSample,
}

impl Report {
    fn new(backend: Backend) -> Report {
        Report {
            backend,
            rows: Vec::new(),
            plans: Vec::new(),
            since: CpuSample::now(),
        }
    }

    /// Starts a measurement.
    fn start(&mut self) {
        self.since = CpuSample::now();
    }

    /// Ends the measurement started last and records it, with the share of the CPU that
    /// processes other than this one and the PostgreSQL server took meanwhile.
    fn add(&mut self, measurement: String, result: String, detail: String) {
        let detail = match self.since.foreign_since() {
            Some(foreign) => format!("{detail}; other processes {:.0}% CPU", 100.0 * foreign),
            None => detail,
        };
        eprintln!(
            "  {}: {measurement}: {result} ({detail})",
            self.backend.name()
        );
        self.rows.push(Row {
            backend: self.backend,
            measurement,
            result,
            detail,
        });
        self.start();
    }

    /// Adds a measurement of `runs` update rates: the median, with every run.
    fn add_rates(&mut self, measurement: String, mut rates: Vec<f64>, extra: &str) {
        let runs: Vec<String> = rates.iter().map(|r| thousands(*r)).collect();
        rates.sort_by(f64::total_cmp);
        let median = rates.get(rates.len() / 2).copied().unwrap_or_default();
        let detail = if runs.len() > 1 {
            format!(
                "median of {} runs: {}; {extra}",
                runs.len(),
                runs.join(" / ")
            )
        } else {
            extra.to_owned()
        };
        self.add(
            measurement,
            format!("{} updates/s", thousands(median)),
            detail,
        );
    }
}

fn indicator_name(i: usize) -> String {
    format!("host{i:04}:heartbeat")
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Mean, median and 99th percentile (nearest rank) of some latencies.
#[derive(Debug, Clone, Copy)]
struct Latency {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let rank = |p: f64| {
            let index = (p * samples.len() as f64).ceil() as usize;
            samples
                .get(index.saturating_sub(1))
                .copied()
                .unwrap_or_default()
        };
        let total: Duration = samples.iter().sum();
        let count = u32::try_from(samples.len()).unwrap_or(u32::MAX).max(1);
        Latency {
            mean: total / count,
            p50: rank(0.50),
            p99: rank(0.99),
        }
    }
}

/// The update measurements (single and batched) of one backend.
async fn bench_updates(backend: Backend, options: &Options, report: &mut Report) -> Result<String> {
    let db = Db::fresh(backend, options).await?;
    let description = db.describe().await?;
    let storage = db.storage();
    let project = storage
        .create_project(
            NewProject::new("bench", TextId::parse(TEXTID)?)
                .with_member(okerr::Email::parse("ops@example.com")?),
        )
        .await?;
    // No indicator limit nor autocreate rate: the set-up creates its indicators at once.
    let engine = Engine::with_config(
        storage.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
        okerr::EngineConfig {
            settings: Settings::default().unlimited(),
            ..okerr::EngineConfig::default()
        },
    );
    let names: Arc<Vec<String>> = Arc::new((0..INDICATORS).map(indicator_name).collect());
    for name in names.iter() {
        engine
            .update(UpdateRequest::new(TEXTID, name.as_str(), "OK"))
            .await?;
    }
    let updates = options.updates();

    report.start();
    let [held, via_pool, no_ping, small, large] = db.round_trips(options.samples()).await?;
    report.add(
        "sqlx round trip, `SELECT 1`".to_owned(),
        format!(
            "{} held, {} via the pool, {} via a pool without ping",
            us(held),
            us(via_pool),
            us(no_ping)
        ),
        format!(
            "mean of {}; via the pool adds the acquire, its `test_before_acquire` ping and \
             the return",
            options.samples()
        ),
    );
    report.add(
        "sqlx round trip, `SELECT length($1)`, held".to_owned(),
        format!("{} with 1 KiB, {} with 256 KiB", us(small), us(large)),
        format!("mean of {}", options.samples().div_ceil(20)),
    );

    for workload in [Workload::Confirm, Workload::Flip] {
        for concurrency in CONCURRENCY {
            let mut rates = Vec::new();
            let mut latencies = Vec::new();
            for _ in 0..options.runs() {
                let statuses = statuses(storage.as_ref(), &project, &names).await?;
                let started = Instant::now();
                let run =
                    run_single(&engine, &names, statuses, workload, updates, concurrency).await?;
                rates.push(per_second(updates, started.elapsed()));
                latencies.extend(run);
            }
            let latency = Latency::of(latencies);
            report.add_rates(
                format!("single, {}, C={concurrency}", workload.label()),
                rates,
                &format!(
                    "{updates} updates per run; latency p50 {}, p99 {}",
                    ms(latency.p50),
                    ms(latency.p99)
                ),
            );
        }
        if workload == Workload::Confirm {
            let storage = engine.storage();
            let line = breakdown(storage.as_ref(), &project, options.samples()).await?;
            report.add(
                "one update, step by step (C=1, OK confirm)".to_owned(),
                line.0,
                line.1,
            );
            if let Some(unpinged) = db.without_ping().await? {
                report.start();
                let line = breakdown(&unpinged, &project, options.samples()).await?;
                report.add(
                    "one update, step by step, pool without `test_before_acquire`".to_owned(),
                    line.0,
                    line.1,
                );
                unpinged.close().await;
            }
        }
        let writers: &[Writer] = match workload {
            Workload::Confirm => &[Writer::CommitMany, Writer::SetBased],
            Workload::Flip => &[Writer::CommitMany],
        };
        for &writer in writers {
            for batch in BATCHES {
                let mut rates = Vec::new();
                let mut share = Vec::new();
                for _ in 0..options.runs() {
                    let (elapsed, in_commit) =
                        run_batched(&db, &project, workload, writer, updates, batch).await?;
                    rates.push(per_second(updates, elapsed));
                    share.push(in_commit.as_secs_f64() / elapsed.as_secs_f64());
                }
                let share = share.iter().sum::<f64>() / share.len().max(1) as f64;
                let measurement = match writer {
                    Writer::CommitMany => format!("batched {batch}, {}", workload.label()),
                    Writer::SetBased => {
                        format!(
                            "set-based {batch}, {} (raw SQL, not the API)",
                            workload.label()
                        )
                    }
                };
                report.add_rates(
                    measurement,
                    rates,
                    &format!(
                        "{updates} updates per run, {:.0}% of the time in the commit",
                        100.0 * share
                    ),
                );
            }
        }
    }
    db.close().await?;
    Ok(description)
}

/// The current status of every benchmark indicator, in the order of `names`.
async fn statuses(
    storage: &dyn Storage,
    project: &Project,
    names: &[String],
) -> Result<Vec<Status>> {
    let stored: HashMap<String, Status> = storage
        .indicators(project.id)
        .await?
        .into_iter()
        .map(|ind| (ind.name.to_string(), ind.status))
        .collect();
    names
        .iter()
        .map(|name| {
            stored
                .get(name)
                .copied()
                .ok_or_else(|| format!("indicator {name} is missing").into())
        })
        .collect()
}

/// `updates` updates through the engine from `concurrency` tasks; task `t` owns the
/// indicators `t, t + concurrency, …`, so updates never conflict. Returns the latency of
/// every update.
async fn run_single(
    engine: &Engine,
    names: &Arc<Vec<String>>,
    statuses: Vec<Status>,
    workload: Workload,
    updates: usize,
    concurrency: usize,
) -> Result<Vec<Duration>> {
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let owned: Vec<usize> = (task..names.len()).step_by(concurrency).collect();
        let mut current: Vec<Status> = owned.iter().map(|&i| statuses[i]).collect();
        let count = updates / concurrency + usize::from(task < updates % concurrency);
        let engine = engine.clone();
        let names = Arc::clone(names);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for k in 0..count {
                let slot = k % owned.len();
                let status = workload.status(current[slot]);
                current[slot] = status;
                let req = UpdateRequest::new(TEXTID, names[owned[slot]].as_str(), status.as_str());
                let started = Instant::now();
                let outcome = engine.update(req).await?;
                latencies.push(started.elapsed());
                if !matches!(outcome, UpdateOutcome::Applied(_)) {
                    return Err(BoxError::from("a heartbeat update was ignored"));
                }
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(updates);
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(latencies)
}

/// Times the steps of `samples` engine-like updates, one after another: the two reads the
/// engine does, the pure decision and the commit. Returns the result and the detail.
async fn breakdown(
    storage: &dyn Storage,
    project: &Project,
    samples: usize,
) -> Result<(String, String)> {
    let settings = Settings::default();
    let mut steps = [Duration::ZERO; 4];
    for i in 0..samples {
        let name = IndicatorName::parse(&indicator_name(i % INDICATORS))?;
        let req = UpdateRequest::new(TEXTID, name.as_str(), "OK");
        let t0 = Instant::now();
        let found = storage
            .project_by_textid(TEXTID)
            .await?
            .ok_or("the project is missing")?;
        let t1 = Instant::now();
        let existing = storage.indicator(found.id, &name).await?;
        let t2 = Instant::now();
        let commit = decide_update(
            project,
            existing.as_ref(),
            0,
            &req,
            &settings,
            SystemClock.now(),
        )?
        .ok_or("a confirmation was ignored")?;
        let t3 = Instant::now();
        storage.commit(&commit).await?;
        let t4 = Instant::now();
        for (step, (from, to)) in steps
            .iter_mut()
            .zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4)])
        {
            *step += to - from;
        }
    }
    let n = u32::try_from(samples)?;
    let [by_textid, indicator, decide, commit] = steps.map(|s| s / n);
    let total = by_textid + indicator + decide + commit;
    Ok((
        format!("{} per update", us(total)),
        format!(
            "project_by_textid {}, indicator {}, decide_update {}, commit {} (mean of \
             {samples})",
            us(by_textid),
            us(indicator),
            us(decide),
            us(commit)
        ),
    ))
}

/// `updates` decisions committed in batches of `batch`, each commit of a batch for another
/// indicator. Returns the whole time and the part spent committing.
async fn run_batched(
    db: &Db,
    project: &Project,
    workload: Workload,
    writer: Writer,
    updates: usize,
    batch: usize,
) -> Result<(Duration, Duration)> {
    let storage = db.storage();
    let mut indicators = storage.indicators(project.id).await?;
    if batch > indicators.len() {
        return Err("a batch must not touch an indicator twice".into());
    }
    let settings = Settings::default();
    let mut cursor = 0;
    let mut done = 0;
    let mut in_commit = Duration::ZERO;
    let started = Instant::now();
    while done < updates {
        let size = batch.min(updates - done);
        let now = SystemClock.now();
        let mut slots = Vec::with_capacity(size);
        let mut commits = Vec::with_capacity(size);
        for _ in 0..size {
            let slot = cursor % indicators.len();
            cursor += 1;
            let ind = &indicators[slot];
            let status = workload.status(ind.status);
            let req = UpdateRequest::new(TEXTID, ind.name.as_str(), status.as_str());
            let commit = decide_update(project, Some(ind), 0, &req, &settings, now)?
                .ok_or("a heartbeat update was ignored")?;
            slots.push(slot);
            commits.push(commit);
        }
        let committing = Instant::now();
        let stored = match writer {
            Writer::CommitMany => storage
                .commit_batch(commits.iter().cloned().map(|c| vec![c]).collect())
                .await?
                .into_iter()
                .map(|r| r.map(|mut stored| stored.remove(0)))
                .collect::<Result<Vec<_>, _>>()?,
            Writer::SetBased => db.commit_set_based(&commits).await?,
        };
        in_commit += committing.elapsed();
        for (slot, ind) in slots.into_iter().zip(stored) {
            indicators[slot] = ind;
        }
        done += size;
    }
    Ok((started.elapsed(), in_commit))
}

/// Fills a fresh database with `size` heartbeat indicators due over a day, then times
/// `claim_due` and `next_deadline`.
async fn bench_claims(
    backend: Backend,
    options: &Options,
    size: usize,
    report: &mut Report,
) -> Result<()> {
    let db = Db::fresh(backend, options).await?;
    let storage = db.storage();
    let project = storage
        .create_project(
            NewProject::new("bench", TextId::parse(TEXTID)?)
                .with_member(okerr::Email::parse("ops@example.com")?),
        )
        .await?;
    let policy = project.policy_or_default("Default");
    let settings = Settings::default();
    let start = SystemClock.now().duration_trunc(TimeDelta::seconds(1))?;
    let mut rng = SplitMix64(0x0123_4567_89ab_cdef);

    report.start();
    let filling = Instant::now();
    let mut batch_start = 0;
    while batch_start < size {
        let batch_end = (batch_start + INSERT_BATCH).min(size);
        let commits = (batch_start..batch_end)
            .map(|i| {
                let name = IndicatorName::parse(&format!("host{i:07}:heartbeat"))?;
                let mut ind = Indicator::new(
                    project.id,
                    name,
                    &policy,
                    CheckMethod::heartbeat(),
                    &settings,
                    start,
                );
                let due = start + TimeDelta::microseconds(rng.below(DAY_MICROS));
                ind.expected = Some(due);
                ind.scheduled = Some(due);
                Ok(Commit {
                    indicator: ind,
                    log: Vec::new(),
                    notifications: Vec::new(),
                    cancel: Vec::new(),
                    project_version: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let groups = commits.into_iter().map(|c| vec![c]).collect();
        for result in storage.commit_batch(groups).await? {
            result?;
        }
        batch_start = batch_end;
        if batch_start % 100_000 == 0 {
            eprintln!("    {}: {batch_start} indicators inserted", backend.name());
        }
    }
    let filled = filling.elapsed();
    report.add(
        format!(
            "insert {} indicators, commit_batch of {INSERT_BATCH}",
            thousands(size as f64)
        ),
        format!("{} indicators/s", thousands(per_second(size, filled))),
        format!(
            "{:.1} s; each commit is the indicator row only (no log, no outbox)",
            filled.as_secs_f64()
        ),
    );

    // About 1% of the indicators are due at the first claim; each claim moves the time by
    // as much as makes another CLAIM_LIMIT due, so every claim takes a fresh set. Leases
    // end after the last due time, so claimed indicators do not come back.
    let step = TimeDelta::microseconds(DAY_MICROS * i64::from(CLAIM_LIMIT) / i64::try_from(size)?);
    let mut now: DateTime<Utc> = start + TimeDelta::microseconds(DAY_MICROS / 100);
    let lease_until = start + TimeDelta::days(2);
    let mut latencies = Vec::with_capacity(REPEATS);
    let mut claimed = 0;
    for _ in 0..REPEATS {
        let started = Instant::now();
        let got = storage.claim_due(now, lease_until, CLAIM_LIMIT).await?;
        latencies.push(started.elapsed());
        claimed += got.len();
        now += step;
    }
    let claim = Latency::of(latencies);
    report.add(
        format!(
            "claim_due({CLAIM_LIMIT}) at {} indicators, ~1% due",
            thousands(size as f64)
        ),
        format!("mean {}, p99 {}", ms(claim.mean), ms(claim.p99)),
        format!(
            "{REPEATS} claims, {claimed} indicators claimed; p50 {}",
            ms(claim.p50)
        ),
    );

    let mut latencies = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let started = Instant::now();
        let next = storage.next_deadline().await?;
        latencies.push(started.elapsed());
        if next.is_none() {
            return Err("next_deadline found nothing".into());
        }
    }
    let next = Latency::of(latencies);
    report.add(
        format!("next_deadline at {} indicators", thousands(size as f64)),
        format!("mean {}", ms(next.mean)),
        format!(
            "{REPEATS} calls; p50 {}, p99 {}",
            ms(next.p50),
            ms(next.p99)
        ),
    );
    for (query, plan) in db.plans().await? {
        report.plans.push(format!(
            "{} at {} indicators, `{query}`: {plan}",
            backend.name(),
            thousands(size as f64)
        ));
    }
    db.close().await
}

/// The CPU model, core count and memory, from `/proc` where it exists.
fn main() -> Result<()> {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<()> {
    let command = std::iter::once("cargo run --release -p okerr-bench --".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let load_before = load();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut plans = Vec::new();
    let mut databases = Vec::new();
    for &backend in &options.backends {
        eprintln!("{}: updates", backend.name());
        let mut report = Report::new(backend);
        databases.push(bench_updates(backend, &options, &mut report).await?);
        for &size in options.claim_sizes() {
            eprintln!("{}: claim_due at {size} indicators", backend.name());
            bench_claims(backend, &options, size, &mut report).await?;
        }
        rows.extend(report.rows);
        plans.extend(report.plans);
    }

    println!("## okerr storage benchmark\n");
    println!("- command: `{command}`");
    println!(
        "- machine: {}; tokio multi-thread runtime with 2 workers; the database server \
         shares these cores; 1-minute load average {load_before} before, {} after",
        machine(),
        load()
    );
    for description in databases {
        println!("- {description}");
    }
    println!(
        "- updates: {} per run, {} run(s) each, over {INDICATORS} heartbeat indicators of \
         one project (policy Default); total run time {:.0} s",
        options.updates(),
        options.runs(),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| backend | measurement | result | detail |");
    println!("|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} |",
            row.backend.name(),
            row.measurement,
            row.result,
            row.detail
        );
    }
    println!("\nQuery plans (`scheduler_query_plans`, after the claims):\n");
    for plan in plans {
        println!("- {plan}");
    }
    Ok(())
}
