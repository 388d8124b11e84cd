//! Whether the scheduler keeps up under load: how late indicators expire when many fall due
//! at once while updates arrive at the full rate the engine takes.
//!
//! One run, on a fresh database of the backend:
//!
//! 1. the engine (with a manual clock) creates `--due` heartbeat indicators (`due:N`) at
//!    t₀ and `--load` others (`load:N`) 70 minutes later, all on the default policy (period
//!    1 h, patience 20 min): the first set falls due at t₀ + 80 min, the second later; the
//!    notifications of the set-up are delivered;
//! 2. `--concurrency` tasks send `OK` confirmations to the `load:` indicators through
//!    [`Engine::update`](okerr::Engine::update) as fast as the engine answers, for the
//!    whole run; `Engine::run` (the scheduler) runs beside them;
//! 3. after one second of load, the clock jumps to t₀ + 81 min: every `due:` indicator is
//!    overdue at the same instant. From that wall-clock instant on, the log is polled every
//!    20 ms (`No heartbeat` lines written since the jump, through a separate connection):
//!    the k-th expiry's lateness is the time of the first poll that counted k of them.
//!
//! It prints, per run, the lateness of the median, 90th percentile and last expiry, the
//! expiry rate, and the update rate during the expiry; then the medians over the runs.
//! Nothing is asserted: the numbers go to `docs/benchmarks.md`.
//!
//! ```sh
//! cargo run --release -p okerr-bench --bin okerr-bench-expiry -- [--backend sqlite|postgres] \
//!     [--due 20000] [--load 1000] [--concurrency 32] [--runs 3] [--update-pipeline N] \
//!     [--pg-url URL]
//! ```

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use clap::{Parser, ValueEnum};
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Engine, EngineConfig, NewProject, Settings, Storage, TextId, UpdateOutcome, UpdateRequest,
};
use okerr_backend_postgres::PostgresStorage;
use okerr_backend_sqlite::SqliteStorage;
use okerr_backend_sqlite::sqlx;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const TEXTID: &str = "bench";
const SCHEMA: &str = "okerr_bench_expiry";
/// How often the log is polled for expiries.
const POLL: Duration = Duration::from_millis(20);
/// The longest a run waits for every expiry.
const GIVE_UP: Duration = Duration::from_secs(120);

/// Measures how late the scheduler expires indicators that fall due at once under load.
#[derive(Debug, Parser)]
#[command(name = "okerr-bench-expiry")]
struct Options {
    /// The backend.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Indicators that fall due at the same instant.
    #[arg(long, default_value_t = 20_000)]
    due: usize,
    /// Indicators that the load confirms meanwhile.
    #[arg(long, default_value_t = 1_000)]
    load: usize,
    /// Concurrent tasks sending the load.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Runs; the summary gives the medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Batches of updates stored at once (`EngineConfig::update_pipeline`); by default what
    /// `okerr serve` takes (0).
    #[arg(long)]
    update_pipeline: Option<usize>,
    /// Indicators the scheduler claims at once (`EngineConfig::batch`); by default what
    /// `okerr serve` takes (250 on PostgreSQL, 500 on SQLite).
    #[arg(long)]
    batch: Option<u32>,
    /// Loops of the scheduler claiming side by side (`EngineConfig::due_workers`); by
    /// default what `okerr serve` takes (4 on PostgreSQL, 1 on SQLite).
    #[arg(long)]
    due_workers: Option<usize>,
    /// The PostgreSQL database (the run works in the schema `okerr_bench_expiry`).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database and a way to poll its log.
enum Db {
    Sqlite {
        storage: SqliteStorage,
        reader: sqlx::SqlitePool,
        _dir: tempfile::TempDir,
    },
    Postgres {
        storage: PostgresStorage,
    },
}

impl Db {
    async fn fresh(options: &Options) -> Result<Db> {
        match options.backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("okerr.db");
                let storage =
                    SqliteStorage::connect(&format!("sqlite://{}", path.display())).await?;
                storage.migrate().await?;
                let reader = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
                            "sqlite://{}",
                            path.display()
                        ))?
                        .read_only(true),
                    )
                    .await?;
                Ok(Db::Sqlite {
                    storage,
                    reader,
                    _dir: dir,
                })
            }
            Backend::Postgres => {
                let admin = PostgresStorage::connect(&options.pg_url).await?;
                let drop = format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE");
                okerr_backend_postgres::sqlx::query(okerr_backend_postgres::sqlx::AssertSqlSafe(
                    drop,
                ))
                .execute(admin.pool())
                .await?;
                admin.close().await;
                let storage = PostgresStorage::connect_in_schema(&options.pg_url, SCHEMA).await?;
                storage.migrate().await?;
                Ok(Db::Postgres { storage })
            }
        }
    }

    fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Db::Sqlite { storage, .. } => Arc::new(storage.clone()),
            Db::Postgres { storage } => Arc::new(storage.clone()),
        }
    }

    /// How many expiry lines the log holds after the id `after`. All of them are counted
    /// each time: on PostgreSQL ids are drawn before their transactions commit, in another
    /// order, so "the lines after the last id seen" would miss some.
    async fn expiries_after(&self, after: i64) -> Result<i64> {
        const QUERY: &str =
            "SELECT COUNT(*) FROM log WHERE id > $1 AND message LIKE '%No heartbeat%'";
        Ok(match self {
            Db::Sqlite { reader, .. } => {
                sqlx::query_scalar::<_, i64>(QUERY)
                    .bind(after)
                    .fetch_one(reader)
                    .await?
            }
            Db::Postgres { storage } => {
                okerr_backend_postgres::sqlx::query_scalar::<_, i64>(QUERY)
                    .bind(after)
                    .fetch_one(storage.pool())
                    .await?
            }
        })
    }
}

impl Db {
    /// The highest log id now.
    async fn max_log_id(&self) -> Result<i64> {
        const QUERY: &str = "SELECT COALESCE(MAX(id), 0) FROM log";
        Ok(match self {
            Db::Sqlite { reader, .. } => {
                sqlx::query_scalar::<_, i64>(QUERY)
                    .fetch_one(reader)
                    .await?
            }
            Db::Postgres { storage } => {
                okerr_backend_postgres::sqlx::query_scalar::<_, i64>(QUERY)
                    .fetch_one(storage.pool())
                    .await?
            }
        })
    }
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: Duration,
    p50: Duration,
    p90: Duration,
    max: Duration,
    expiries_per_second: f64,
    updates_per_second: f64,
}

fn main() -> Result<()> {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut runs = Vec::new();
        for run in 1..=options.runs {
            let result = one_run(&options).await?;
            eprintln!(
                "run {run}/{}: lateness first {:.3} s, p50 {:.3} s, p90 {:.3} s, max {:.3} s; {:.0} expiries/s \
                 beside {:.0} updates/s",
                options.runs,
                result.first.as_secs_f64(),
                result.p50.as_secs_f64(),
                result.p90.as_secs_f64(),
                result.max.as_secs_f64(),
                result.expiries_per_second,
                result.updates_per_second
            );
            runs.push(result);
        }
        print_summary(&options, &runs);
        Ok(())
    })
}

async fn one_run(options: &Options) -> Result<Run> {
    let db = Db::fresh(options).await?;
    let storage = db.storage();
    storage
        .create_project(
            NewProject::new("bench", TextId::parse(TEXTID)?)
                .with_member(okerr::Email::parse("ops@example.com")?),
        )
        .await?;
    let t0 = okerr::Clock::now(&okerr::SystemClock);
    let clock = ManualClock::new(t0);
    // What `okerr serve` takes, unless an option says otherwise.
    let served = match options.backend {
        Backend::Postgres => EngineConfig::default().with_parallel_claims(),
        Backend::Sqlite => EngineConfig::default(),
    };
    let engine = Engine::with_config(
        storage,
        Arc::new(RecordingNotifier::new()),
        Arc::new(clock.clone()),
        EngineConfig {
            settings: Settings::default().unlimited(),
            update_pipeline: options.update_pipeline.unwrap_or(served.update_pipeline),
            batch: options.batch.unwrap_or(served.batch),
            due_workers: options.due_workers.unwrap_or(served.due_workers),
            ..served
        },
    );
    eprintln!("creating {} indicators due at once", options.due);
    create(&engine, "due", options.due).await?;
    clock.set(t0 + TimeDelta::minutes(70));
    eprintln!("creating {} indicators for the load", options.load);
    create(&engine, "load", options.load).await?;

    // The alerts of the set-up are delivered before the measurement starts.
    engine.deliver_released().await?;

    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for task in 0..options.concurrency {
        let (engine, stop, updates) = (engine.clone(), Arc::clone(&stop), Arc::clone(&updates));
        let names: Vec<String> = (task..options.load)
            .step_by(options.concurrency)
            .map(|i| format!("load:{i}"))
            .collect();
        load.push(tokio::spawn(async move {
            for name in names.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = engine
                    .update(UpdateRequest::new(TEXTID, name.as_str(), "OK"))
                    .await?;
                if !matches!(outcome, UpdateOutcome::Applied(_)) {
                    return Err::<(), Box<dyn std::error::Error + Send + Sync>>(
                        format!("the update of {name} was not applied: {outcome:?}").into(),
                    );
                }
                updates.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .run(async {
                    let _ = shutdown_rx.await;
                })
                .await;
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = db.max_log_id().await?;
    clock.set(t0 + TimeDelta::minutes(81));
    let jumped = Instant::now();
    let updates_before = updates.load(Ordering::Relaxed);
    engine.wake();
    // seen[k] = when at least k + 1 expiries were counted.
    let mut seen: Vec<Duration> = Vec::with_capacity(options.due);
    while seen.len() < options.due {
        if jumped.elapsed() > GIVE_UP {
            return Err(format!(
                "only {} of {} indicators expired in {} s",
                seen.len(),
                options.due,
                GIVE_UP.as_secs()
            )
            .into());
        }
        tokio::time::sleep(POLL).await;
        let count = usize::try_from(db.expiries_after(start).await?)?;
        let at = jumped.elapsed();
        let new = count.saturating_sub(seen.len());
        seen.extend(std::iter::repeat_n(at, new));
    }
    let elapsed = jumped.elapsed();
    let updates_during = updates.load(Ordering::Relaxed) - updates_before;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await??;
    }
    let _ = shutdown_tx.send(());
    scheduler.await?;
    let at = |q: f64| seen[((seen.len() as f64 * q).ceil() as usize).clamp(1, seen.len()) - 1];
    let expired_in = seen.last().copied().unwrap_or_default().as_secs_f64();
    Ok(Run {
        first: at(0.0),
        p50: at(0.5),
        p90: at(0.9),
        max: at(1.0),
        expiries_per_second: options.due as f64 / expired_in.max(1e-9),
        updates_per_second: updates_during as f64 / elapsed.as_secs_f64(),
    })
}

/// Creates `count` heartbeat indicators `{prefix}:N` by updates, 64 at a time.
async fn create(engine: &Engine, prefix: &str, count: usize) -> Result<()> {
    let mut tasks = Vec::new();
    for task in 0..64 {
        let engine = engine.clone();
        let names: Vec<String> = (task..count)
            .step_by(64)
            .map(|i| format!("{prefix}:{i}"))
            .collect();
        tasks.push(tokio::spawn(async move {
            for name in names {
                engine
                    .update(UpdateRequest::new(TEXTID, name.as_str(), "OK"))
                    .await?;
            }
            Ok::<(), okerr::UpdateError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

fn print_summary(options: &Options, runs: &[Run]) {
    let median = |f: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let spread = format!(
            "{:.2}–{:.2}",
            v.first().copied().unwrap_or_default(),
            v.last().copied().unwrap_or_default()
        );
        (v.get(v.len() / 2).copied().unwrap_or_default(), spread)
    };
    let (p50, p50s) = median(|r| r.p50.as_secs_f64());
    let (p90, p90s) = median(|r| r.p90.as_secs_f64());
    let (max, maxs) = median(|r| r.max.as_secs_f64());
    let (rate, rates) = median(|r| r.expiries_per_second);
    let (load, loads) = median(|r| r.updates_per_second);
    println!(
        "| backend | due at once | load | lateness p50 | p90 | max | expiries/s | updates/s meanwhile |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {:?} | {} | {} tasks on {} indicators | {p50:.2} s ({p50s}) | {p90:.2} s ({p90s}) | {max:.2} s ({maxs}) | {rate:.0} ({rates}) | {load:.0} ({loads}) |",
        options.backend, options.due, options.concurrency, options.load
    );
    println!(
        "\nMedians of {} runs (spread min–max); lateness measured from the instant all became due, polled every {} ms.",
        runs.len(),
        POLL.as_millis()
    );
}
