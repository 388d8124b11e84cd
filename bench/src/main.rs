//! Measures okerr's storage backends (SQLite and PostgreSQL) and prints a Markdown table.
//!
//! For each backend it measures:
//!
//! 1. **Committed updates per second, single**: heartbeat updates through
//!    [`Engine::update`] (one project, 1,000 indicators created beforehand), from 1 and from
//!    16 concurrent tokio tasks. Each task owns its own indicators, so no update conflicts.
//!    Two workloads: `OK` confirmations (one log line per update) and OK/ERR flips (two log
//!    lines and one outbox entry per update). Also the time of each step of one update
//!    (project lookup, indicator read, decision, commit), one after another.
//! 2. **Committed updates per second, batched**: the same decisions, made with the pure
//!    [`decide_update`] from indicators read once, committed with [`Storage::commit_many`]
//!    in batches of 100 and 1,000 (each commit of a batch for another indicator).
//! 3. **`claim_due` and `next_deadline` at 100,000 and 1,000,000 indicators**: heartbeat
//!    indicators due at random times over a day, inserted with `commit_many` (the insert
//!    rate is reported too); then 100 claims of 100 indicators while about 1% are due, the
//!    time moving forward so that each claim takes a fresh set, and 100 `next_deadline`
//!    calls.
//!
//! Every write is durable as the backend is configured: SQLite is a file in a temporary
//! directory in WAL mode with `synchronous=NORMAL`; PostgreSQL runs with the server's
//! settings (printed with the results). The runtime is tokio's multi-thread runtime with
//! 2 workers.
//!
//! Run it with:
//!
//! ```sh
//! cargo run --release -p okerr-bench -- [--backend sqlite|postgres|all] [--quick] [--pg-url URL]
//! ```
//!
//! `--quick` runs 2,000 updates instead of 20,000 and `claim_due` at 100,000 indicators
//! only. PostgreSQL is reached at `postgres://postgres@127.0.0.1:5432/test` unless
//! `--pg-url` says otherwise; the benchmark works in the schema `okerr_bench`, which it drops
//! before and after.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use okerr::testing::RecordingNotifier;
use okerr::{
    CheckMethod, Clock, Commit, Engine, Indicator, IndicatorName, NewProject, Project, Settings,
    Status, Storage, SystemClock, TextId, UpdateOutcome, UpdateRequest, decide_update,
};
use okerr_backend_postgres::PostgresStorage;
use okerr_backend_postgres::sqlx::{self, Row as _};
use okerr_backend_sqlite::SqliteStorage;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

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
/// Indicators per `commit_many` when filling the database for `claim_due`.
const INSERT_BATCH: usize = 2_000;
/// Indicators per `claim_due`.
const CLAIM_LIMIT: u32 = 100;
/// Timed calls of `claim_due` and of `next_deadline`.
const REPEATS: usize = 100;
/// The due times of the `claim_due` indicators are spread over this many microseconds.
const DAY_MICROS: i64 = 86_400_000_000;

const USAGE: &str = "usage: okerr-bench [--backend sqlite|postgres|all] [--quick] [--pg-url URL]";

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

    /// Updates timed step by step.
    fn breakdown_samples(&self) -> usize {
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
                     synchronous={synchronous}, file `{path}` (one writer connection, \
                     4 readers)"
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
                text.push_str(" (pool of 8 connections)");
                Ok(text)
            }
        }
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
}

impl Report {
    fn add(&mut self, measurement: String, result: String, detail: String) {
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

/// SplitMix64: a small, fast, seeded generator for the due times.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: i64) -> i64 {
        let bound = bound.max(1).unsigned_abs();
        i64::try_from(self.next() % bound).unwrap_or_default()
    }
}

/// The update measurements (single and batched) of one backend.
async fn bench_updates(backend: Backend, options: &Options, report: &mut Report) -> Result<String> {
    let db = Db::fresh(backend, options).await?;
    let description = db.describe().await?;
    let storage = db.storage();
    let project = storage
        .create_project(NewProject::new("bench", TextId::parse(TEXTID)?))
        .await?;
    let engine = Engine::new(
        storage.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(SystemClock),
    );
    let names: Arc<Vec<String>> = Arc::new((0..INDICATORS).map(indicator_name).collect());
    for name in names.iter() {
        engine
            .update(UpdateRequest::new(TEXTID, name.as_str(), "OK"))
            .await?;
    }
    let updates = options.updates();

    for workload in [Workload::Confirm, Workload::Flip] {
        for concurrency in CONCURRENCY {
            let statuses = statuses(storage.as_ref(), &project, &names).await?;
            let started = Instant::now();
            let latencies =
                run_single(&engine, &names, statuses, workload, updates, concurrency).await?;
            let elapsed = started.elapsed();
            let latency = Latency::of(latencies);
            report.add(
                format!("single, {}, C={concurrency}", workload.label()),
                format!("{} updates/s", thousands(per_second(updates, elapsed))),
                format!(
                    "{updates} updates in {:.2} s; latency p50 {}, p99 {}",
                    elapsed.as_secs_f64(),
                    ms(latency.p50),
                    ms(latency.p99)
                ),
            );
        }
        if workload == Workload::Confirm {
            breakdown(&engine, &project, options.breakdown_samples(), report).await?;
        }
        for batch in BATCHES {
            let (elapsed, in_commit) =
                run_batched(storage.as_ref(), &project, workload, updates, batch).await?;
            report.add(
                format!("batched {batch}, {}", workload.label()),
                format!("{} updates/s", thousands(per_second(updates, elapsed))),
                format!(
                    "{updates} updates in {:.2} s, {:.0}% of it in commit_many ({} per batch)",
                    elapsed.as_secs_f64(),
                    100.0 * in_commit.as_secs_f64() / elapsed.as_secs_f64(),
                    ms(in_commit / u32::try_from(updates.div_ceil(batch))?)
                ),
            );
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
/// engine does, the pure decision and the commit.
async fn breakdown(
    engine: &Engine,
    project: &Project,
    samples: usize,
    report: &mut Report,
) -> Result<()> {
    let storage = engine.storage();
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
            engine.clock().now(),
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
    report.add(
        "one update, step by step (C=1, OK confirm)".to_owned(),
        format!("{} per update", us(total)),
        format!(
            "project_by_textid {}, indicator {}, decide_update {}, commit {} \
             (mean of {samples})",
            us(by_textid),
            us(indicator),
            us(decide),
            us(commit)
        ),
    );
    Ok(())
}

/// `updates` decisions committed with `commit_many` in batches of `batch`, each commit of a
/// batch for another indicator. Returns the whole time and the part spent in `commit_many`.
async fn run_batched(
    storage: &dyn Storage,
    project: &Project,
    workload: Workload,
    updates: usize,
    batch: usize,
) -> Result<(Duration, Duration)> {
    let mut indicators = storage.indicators(project.id).await?;
    if batch > indicators.len() {
        return Err("a batch must not touch an indicator twice".into());
    }
    let settings = Settings::default();
    let clock = SystemClock;
    let mut cursor = 0;
    let mut done = 0;
    let mut in_commit = Duration::ZERO;
    let started = Instant::now();
    while done < updates {
        let size = batch.min(updates - done);
        let now = clock.now();
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
        let results = storage.commit_many(&commits).await?;
        in_commit += committing.elapsed();
        for (slot, result) in slots.into_iter().zip(results) {
            indicators[slot] = result?;
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
        .create_project(NewProject::new("bench", TextId::parse(TEXTID)?))
        .await?;
    let policy = project.policy_or_default("Default");
    let settings = Settings::default();
    let start = SystemClock.now().duration_trunc(TimeDelta::seconds(1))?;
    let mut rng = SplitMix64(0x0123_4567_89ab_cdef);

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
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for result in storage.commit_many(&commits).await? {
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
            "insert {} indicators, commit_many of {INSERT_BATCH}",
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
    let size_i64 = i64::try_from(size)?;
    let step = TimeDelta::microseconds(DAY_MICROS * i64::from(CLAIM_LIMIT) / size_i64);
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
    db.close().await
}

/// The CPU model, core count and memory, from `/proc` where it exists.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown memory".to_owned(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    format!("{cpu}, {cores} cores, {memory}")
}

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
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut databases = Vec::new();
    for &backend in &options.backends {
        eprintln!("{}: updates", backend.name());
        let mut report = Report {
            backend,
            rows: Vec::new(),
        };
        databases.push(bench_updates(backend, &options, &mut report).await?);
        for &size in options.claim_sizes() {
            eprintln!("{}: claim_due at {size} indicators", backend.name());
            bench_claims(backend, &options, size, &mut report).await?;
        }
        rows.extend(report.rows);
    }

    println!("## okerr storage benchmark\n");
    println!("- command: `{command}`");
    println!(
        "- machine: {}; tokio multi-thread runtime with 2 workers; the database server, \
         if any, shares these cores",
        machine()
    );
    for description in databases {
        println!("- {description}");
    }
    println!(
        "- updates: {} per run over {INDICATORS} heartbeat indicators of one project \
         (policy Default); total run time {:.0} s",
        options.updates(),
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
    Ok(())
}
