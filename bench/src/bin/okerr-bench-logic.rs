//! The cost of one logic evaluation (issue 14) in a project of 1,000 and of 10,000
//! indicators, on SQLite: the read of the project's indicators (one query, as the
//! scheduler does it), and the decision (`okerr::logic::decide_evaluation`: okerr's context
//! built for the names the expression reads, the expression evaluated, the result
//! registered), for expressions that read `s`, `i`, `prefix` and `tags`.
//!
//! ```sh
//! cargo run --release -p okerr-bench --bin okerr-bench-logic
//! ```
//!
//! Each time is the median of repeated runs (printed with the count). A benchmark, not a
//! test: nothing is asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, TimeZone, Utc};
use okerr::logic::{Trigger, decide_evaluation};
use okerr::{
    CheckMethod, Commit, Indicator, IndicatorName, NewProject, Settings, Status, Storage, Tag,
    TextId,
};
use okerr_backend_sqlite::SqliteStorage;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXPRESSIONS: [(&str, &str); 4] = [
    ("s only", "s['srv1:web'] and s['srv2:web']"),
    ("i (dicts)", "i['srv1:web']['statusage'] > 60"),
    ("prefix", "prefix['OK:srv1'] >= 1"),
    (
        "tags and age",
        "tags['ERR:db'] == 0 and age['db:errage'] < 600",
    ),
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| indicators | expression | read (ms) | decide (ms) | runs |");
    println!("|---:|---|---:|---:|---:|");
    for n in [1_000usize, 10_000] {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let storage = SqliteStorage::connect(&url).await?;
        storage.migrate().await?;
        let storage: Arc<dyn Storage> = Arc::new(storage);
        let project = storage
            .create_project(NewProject::new("bench", TextId::parse("bench")?))
            .await?;
        let policy = project.policy_or_default("Default");
        let settings = Settings::default();
        let now = Utc
            .with_ymd_and_hms(2026, 1, 5, 12, 0, 0)
            .single()
            .ok_or("time")?;
        let roles = ["web", "db", "cache", "queue"];
        let mut commits = Vec::with_capacity(n);
        for k in 0..n {
            let role = roles[k % roles.len()];
            let name = IndicatorName::parse(&format!("srv{}:{role}", k / roles.len()))?;
            let mut ind = Indicator::new(
                project.id,
                name,
                &policy,
                CheckMethod::heartbeat(),
                &settings,
                now - TimeDelta::minutes(30),
            );
            if k % 7 == 0 {
                ind.status = Status::Err;
            }
            ind.tags.push(Tag::parse(role)?);
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
        let runs = if n <= 1_000 { 200 } else { 30 };
        for (what, expr) in EXPRESSIONS {
            let mut method = CheckMethod::with_defaults("logic")?;
            method.set_arg("expr", expr)?;
            let mut this = Indicator::new(
                project.id,
                IndicatorName::parse("logic")?,
                &policy,
                method,
                &settings,
                now,
            );
            this.scheduled = Some(now);
            let mut reads = Vec::with_capacity(runs);
            let mut decisions = Vec::with_capacity(runs);
            for _ in 0..runs {
                let start = Instant::now();
                let all = storage.indicators(project.id).await?;
                reads.push(start.elapsed());
                let start = Instant::now();
                let commit = decide_evaluation(&project, &this, &all, &settings, Trigger::Due, now);
                decisions.push(start.elapsed());
                std::hint::black_box(commit);
            }
            println!(
                "| {n} | {what}: `{expr}` | {} | {} | {runs} |",
                ms(median(reads)),
                ms(median(decisions))
            );
        }
    }
    Ok(())
}
