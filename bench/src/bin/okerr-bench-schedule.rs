//! Scheduling lateness of active checks (issue 15): N `httpstatus` indicators (default
//! 10,000) with a period of 60 s on SQLite, checked by one engine (`Engine::run`, the
//! system clock, the real `okerr_checks::Checker`) against axum servers on 32 loopback
//! addresses. Two starts: `spread` (the indicators' first checks spread evenly over one
//! period, the steady state) and `burst` (all due at once, as after creating them in bulk
//! or a restart).
//!
//! ```sh
//! cargo run --release -p okerr-bench --bin okerr-bench-schedule [-- N PERIOD_S RUN_S]
//! ```
//!
//! The lateness of a check is the time from when it was due (`scheduled`) to when its
//! result was decided and committed (the time of its log line), so it holds the claim, the
//! wait for a permit, the check itself and the batched commit. Each next check is due one
//! period after the last result (okerr's `scheduled = now + P`), so it is read from the
//! log: the first line against the planned start, each next against the line before + P.
//! A benchmark, not a test: nothing is asserted; the report (Markdown) goes to stdout.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hdrhistogram::Histogram;
use okerr::{
    ActiveMethod, CheckMethod, Clock, Commit, Engine, EngineConfig, Indicator, IndicatorName,
    Interval, LogKind, NewProject, OutboundNetworks, Settings, Storage, SystemClock, TextId,
};
use okerr_backend_sqlite::SqliteStorage;
use okerr_checks::{CheckConfig, Checker};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The loopback addresses the peers listen on.
const PEERS: u8 = 32;

async fn http_peer(ip: u8) -> Result<std::net::SocketAddr> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Welcome" }));
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.{ip}:0")).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    Spread,
    Burst,
}

struct Report {
    checks: u64,
    /// Results that were not `confirmed OK` (a failed check).
    failed: u64,
    missed: usize,
    /// The first check of each indicator, from when it was planned (or the engine
    /// started, if later).
    first: Histogram<u64>,
    /// Every later check, from the last result + P.
    then: Histogram<u64>,
}

async fn run(n: usize, period: i64, run_for: Duration, start: Start) -> Result<Report> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let sqlite = SqliteStorage::connect(&url).await?;
    sqlite.migrate().await?;
    let storage: Arc<dyn Storage> = Arc::new(sqlite);
    let mut new = NewProject::new("bench", TextId::parse("bench")?);
    for p in &mut new.policies {
        p.period = Interval::from_secs(u64::try_from(period)?);
    }
    let project = storage.create_project(new).await?;
    let policy = project.policy_or_default("Default");
    let settings = Settings::default().unlimited();
    let mut peers = Vec::new();
    for ip in 1..=PEERS {
        peers.push(http_peer(ip).await?);
    }
    let t0: DateTime<Utc> = SystemClock.now() + TimeDelta::seconds(2);
    let step = TimeDelta::microseconds(period * 1_000_000 / i64::try_from(n)?);
    let mut planned = Vec::with_capacity(n);
    let mut commits = Vec::with_capacity(n);
    for i in 0..n {
        let mut method = CheckMethod::active(ActiveMethod::HttpStatus);
        method.set_arg("url", &format!("http://{}/", peers[i % peers.len()]))?;
        let name = IndicatorName::parse(&format!("site{i}"))?;
        let mut ind = Indicator::new(project.id, name, &policy, method, &settings, t0);
        let due = match start {
            Start::Spread => t0 + step * i32::try_from(i)?,
            Start::Burst => t0,
        };
        ind.scheduled = Some(due);
        planned.push((ind.name.clone(), due));
        commits.push(vec![Commit {
            indicator: ind,
            log: Vec::new(),
            notifications: Vec::new(),
            cancel: Vec::new(),
            project_version: None,
        }]);
    }
    for chunk in commits.chunks(2_000) {
        for r in storage.commit_batch(chunk.to_vec()).await? {
            r?;
        }
    }
    let checker = Checker::new(CheckConfig {
        outbound: OutboundNetworks::everything(),
        system_roots: false,
        ..CheckConfig::default()
    })?;
    // A notifier, as `okerr serve` has (the runs in docs/benchmarks.md were made so).
    let engine = Engine::builder(storage.clone(), Arc::new(SystemClock))
        .notifier(Arc::new(okerr::testing::RecordingNotifier::new()))
        .config(EngineConfig {
            settings,
            ..EngineConfig::default()
        })
        .sensor(Arc::new(checker))
        .build();
    let started = SystemClock.now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    tokio::time::sleep(run_for).await;
    let _ = stop.send(());
    runner.await?;
    engine.checks_settled().await;
    let end = SystemClock.now();

    let mut first_h = Histogram::<u64>::new(3)?;
    let mut then = Histogram::<u64>::new(3)?;
    let mut checks = 0;
    let mut failed = 0;
    let mut missed = 0;
    let p = TimeDelta::seconds(period);
    for (name, first) in &planned {
        let mut lines: Vec<_> = storage
            .log(project.id, name, 1_000)
            .await?
            .into_iter()
            .filter(|l| l.kind == LogKind::Update)
            .map(|l| {
                if !l.message.starts_with("okerr-process: confirmed OK") {
                    failed += 1;
                }
                l.time
            })
            .collect();
        lines.sort();
        let mut due = (*first).max(started);
        for (k, t) in lines.iter().enumerate() {
            let late = u64::try_from((*t - due).num_milliseconds().max(0))?;
            if k == 0 {
                first_h.record(late)?;
            } else {
                then.record(late)?;
            }
            checks += 1;
            due = *t + p;
        }
        // Due a second before the end and not checked: missed.
        if due + TimeDelta::seconds(1) < end {
            missed += 1;
        }
    }
    Ok(Report {
        checks,
        failed,
        missed,
        first: first_h,
        then,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map_or(Ok(10_000), |s| s.parse())?;
    let period: i64 = args.get(1).map_or(Ok(60), |s| s.parse())?;
    let run_s: u64 = args
        .get(2)
        .map_or(Ok(u64::try_from(2 * period + 10)?), |s| s.parse())?;
    println!(
        "{n} httpstatus indicators, period {period} s, {run_s} s of `Engine::run` on SQLite, \
         check_concurrency {}:\n",
        EngineConfig::default().check_concurrency
    );
    println!(
        "| start | checks | failed | checks/s | which checks | lateness p50 | p90 | p99 | max | missed |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for (what, start) in [("spread", Start::Spread), ("burst", Start::Burst)] {
        let r = run(n, period, Duration::from_secs(run_s), start).await?;
        #[allow(clippy::cast_precision_loss)]
        let rate = r.checks as f64 / run_s as f64;
        for (which, h) in [("first", &r.first), ("later", &r.then)] {
            println!(
                "| {what} | {} | {} | {rate:.0} | {which} ({}) | {} ms | {} ms | {} ms | {} ms | {} |",
                r.checks,
                r.failed,
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.9),
                h.value_at_quantile(0.99),
                h.max(),
                r.missed
            );
        }
    }
    Ok(())
}
