//! The scheduler measurements: a fresh database filled with heartbeat indicators due
//! over a day, then `claim_due` and `next_deadline` timed on it.

use std::time::Instant;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use okerr::{
    CheckMethod, Clock, Commit, Indicator, IndicatorName, NewProject, Settings, SystemClock, TextId,
};

use crate::Result;
use crate::args::Options;
use crate::db::{Backend, Db};
use crate::report::{Latency, Report, ms, per_second, thousands};
use crate::rng::SplitMix64;
use crate::workloads::TEXTID;

/// Indicators per `commit_batch` when filling the database for `claim_due`.
const INSERT_BATCH: usize = 2_000;
/// Indicators per `claim_due`.
const CLAIM_LIMIT: u32 = 100;
/// Timed calls of `claim_due` and of `next_deadline`.
const REPEATS: usize = 100;
/// The due times of the `claim_due` indicators are spread over this many microseconds.
const DAY_MICROS: i64 = 86_400_000_000;

/// Fills a fresh database with `size` heartbeat indicators due over a day, then times
/// `claim_due` and `next_deadline`.
pub(crate) async fn bench_claims(
    backend: Backend,
    options: &Options,
    size: usize,
    report: &mut Report,
) -> Result<()> {
    let db = Db::fresh(backend, &options.pg_url).await?;
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
    let claim = Latency::of(&latencies)?;
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
    let next = Latency::of(&latencies)?;
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
