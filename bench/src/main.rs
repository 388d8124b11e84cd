//! Measures okerr's storage backends (SQLite and PostgreSQL) and prints a Markdown report.
//!
//! For each backend it measures:
//!
//! 1. **Committed updates per second, single**: heartbeat updates through
//!    [`Engine::update`](okerr::Engine::update) (one project, 1,000 indicators created beforehand), from 1 and from
//!    16 concurrent tokio tasks. Each task owns its own indicators, so no update conflicts.
//!    Two workloads: `OK` confirmations (the indicator row and one log line per update) and
//!    OK/ERR flips (the row, two log lines and one outbox entry). Also the time of each
//!    step of one update (project lookup, indicator read, decision, commit), one after
//!    another, and sqlx round trips: `SELECT 1` on a held connection and through a pool,
//!    a 1 KiB and a 256 KiB parameter on a held connection.
//! 2. **Committed updates per second, batched**: the same decisions, made with the pure
//!    [`decide_update`](okerr::decide_update) from indicators read once, committed with [`Storage::commit_batch`](okerr::Storage::commit_batch) (one commit per group)
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

//! The code: [`args`] reads the command line, [`workloads`] (updates) and [`claims`] (the
//! scheduler) run the measurements on the databases of [`db`], [`report`] collects and
//! prints the results, [`sampler`] reads `/proc` and [`rng`] draws the due times.

use std::time::Instant;

mod args;
mod claims;
mod db;
mod report;
mod rng;
mod sampler;
mod workloads;

use clap::Parser as _;

use args::Options;
use report::{Header, Report};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

fn main() -> Result<()> {
    let options = Options::parse();
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
    let load_before = sampler::load();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut plans = Vec::new();
    let mut databases = Vec::new();
    for &backend in options.backends() {
        eprintln!("{}: updates", backend.name());
        let mut report = Report::new(backend);
        databases.push(workloads::bench_updates(backend, &options, &mut report).await?);
        for &size in options.claim_sizes() {
            eprintln!("{}: claim_due at {size} indicators", backend.name());
            claims::bench_claims(backend, &options, size, &mut report).await?;
        }
        rows.extend(report.rows);
        plans.extend(report.plans);
    }
    let header = Header {
        command,
        load_before,
        databases,
        updates: options.updates(),
        runs: options.runs(),
        elapsed: started.elapsed(),
    };
    report::print(&header, &rows, &plans);
    Ok(())
}
