//! The update measurements: updates through the engine (single), one update step by
//! step, and decisions committed in batches, through the storage API and set-based.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use okerr::testing::RecordingNotifier;
use okerr::{
    Clock, Engine, IndicatorName, NewProject, Project, Settings, Status, Storage, SystemClock,
    TextId, UpdateOutcome, UpdateRequest, decide_update,
};

use crate::args::Options;
use crate::db::{Backend, Db};
use crate::report::{Latency, Report, ms, per_second, us};
use crate::{BoxError, Result};

/// The textid of the benchmark's project.
pub(crate) const TEXTID: &str = "bench";
/// How many indicators the update measurements spread their updates over.
pub(crate) const INDICATORS: usize = 1_000;
/// The concurrency levels of the single-update measurement.
const CONCURRENCY: [usize; 2] = [1, 16];
/// The batch sizes of the batched measurement.
const BATCHES: [usize; 2] = [100, 1_000];

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

fn indicator_name(i: usize) -> String {
    format!("host{i:04}:heartbeat")
}

/// The update measurements (single and batched) of one backend.
pub(crate) async fn bench_updates(
    backend: Backend,
    options: &Options,
    report: &mut Report,
) -> Result<String> {
    let db = Db::fresh(backend, &options.pg_url).await?;
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
            let latency = Latency::of(&latencies)?;
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
