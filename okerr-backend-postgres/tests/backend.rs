//! PostgreSQL beyond the conformance suite: restart, query plans, and two nodes on one
//! database. Skipped without `OKERR_TEST_PG_URL`; failing without it when
//! `OKERR_REQUIRE_PG=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::TimeDelta;
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Commit, Engine, EngineConfig, Indicator, IndicatorName, NewProject, Payload, Settings, Status,
    Storage, TextId, UpdateOutcome, UpdateRequest,
};
use okerr_backend_postgres::PostgresStorage;

#[tokio::test]
async fn restart_keeps_deadlines_flags_and_held_alerts() {
    let Some(url) = common::pg_url() else { return };
    let schema = common::fresh_schema();
    let first = common::storage_in(&url, &schema).await;
    okerr::conformance::restart_keeps_state(Arc::new(first), |old| async move {
        drop(old);
        let reopened = PostgresStorage::connect_in_schema(&url, &schema)
            .await
            .unwrap();
        reopened.migrate().await.unwrap();
        Arc::new(reopened) as Arc<dyn Storage>
    })
    .await;
}

/// With 20,000 indicators, 20,000 notifications and statistics, the scheduler's queries
/// are index scans of the partial indexes, in their generic plans too.
#[tokio::test]
async fn due_work_is_found_through_indexes() {
    let Some(storage) = common::storage().await else {
        return;
    };
    let project = storage
        .create_project(
            NewProject::new("p", TextId::parse("p1").unwrap())
                .with_member(okerr::Email::parse("ops@example.com").unwrap()),
        )
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let policy = project.policy_or_default("Default");
    for chunk in 0..20 {
        let commits: Vec<Commit> = (0..1000)
            .map(|i| {
                let name = IndicatorName::parse(&format!("i{chunk}-{i}")).unwrap();
                let now = okerr::Clock::now(&clock) + TimeDelta::seconds(chunk * 1000 + i);
                let ind = Indicator::new(
                    project.id,
                    name,
                    &policy,
                    okerr::CheckMethod::heartbeat(),
                    &Settings::default(),
                    now,
                );
                Commit {
                    indicator: ind,
                    log: Vec::new(),
                    notifications: Vec::new(),
                    cancel: Vec::new(),
                    project_version: None,
                }
            })
            .collect();
        let groups = commits.into_iter().map(|c| vec![c]).collect();
        for result in storage.commit_batch(groups).await.unwrap() {
            result.unwrap();
        }
    }
    // 20,000 alerts held to one time (a burst held to its cap): a tie of the claim's order.
    sqlx::query(
        "INSERT INTO outbox (project_id, indicator_id, release_at, available_at, data)
         SELECT $1, (SELECT MIN(id) FROM indicators), 0, 1000000, '{}'
         FROM generate_series(1, 20000)",
    )
    .bind(project.id.0)
    .execute(storage.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE")
        .execute(storage.pool())
        .await
        .unwrap();
    let plans = storage.scheduler_query_plans().await.unwrap();
    for (name, plan) in &plans {
        println!("{name}:\n  {}", plan.join("\n  "));
    }
    let text = |name: &str| {
        plans
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.join("\n"))
            .unwrap()
    };
    assert!(
        text("claim_due").contains("Index Scan using indicators_due"),
        "{plans:?}"
    );
    assert!(
        !text("claim_due").contains("Seq Scan on indicators"),
        "{plans:?}"
    );
    assert!(
        !text("claim_notifications").contains("Seq Scan on outbox")
            && !text("claim_notifications").contains("Sort"),
        "the claim reads the index in its order, so a tie of 20,000 rows is not sorted \
         first, and finds the rows it changes by the primary key: {plans:?}"
    );
    assert!(
        text("next_deadline").contains("indicators_due"),
        "{plans:?}"
    );
    assert!(
        !text("next_deadline").contains("Seq Scan on indicators"),
        "{plans:?}"
    );
}

/// Two nodes (two engines with their own pools) on one database: 1,000 indicators updated
/// by both at once, then both expire at once, each with the scheduler `okerr serve` runs on
/// PostgreSQL (four loops of claims of 250). Every indicator expires exactly once, there is
/// exactly one alert per status change, and each ends as its last accepted update left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_database() {
    let Some(url) = common::pg_url() else { return };
    let schema = common::fresh_schema();
    let a = Arc::new(common::storage_in(&url, &schema).await) as Arc<dyn Storage>;
    let b = Arc::new(
        PostgresStorage::connect_in_schema(&url, &schema)
            .await
            .unwrap(),
    ) as Arc<dyn Storage>;
    let project = a
        .create_project(
            NewProject::new("p", TextId::parse("p1").unwrap())
                .with_member(okerr::Email::parse("ops@example.com").unwrap()),
        )
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let (notify_a, notify_b) = (RecordingNotifier::new(), RecordingNotifier::new());
    // 1,000 indicators created at once: no autocreate rate limit, no indicator limit.
    let config = || EngineConfig {
        settings: Settings::default().unlimited(),
        ..EngineConfig::default().with_parallel_claims()
    };
    let node_a = Engine::with_config(
        a.clone(),
        Arc::new(notify_a.clone()),
        Arc::new(clock.clone()),
        config(),
    );
    let node_b = Engine::with_config(
        b.clone(),
        Arc::new(notify_b.clone()),
        Arc::new(clock.clone()),
        config(),
    );
    const N: usize = 1000;

    // Both nodes push every indicator, in the same order, from 8 tasks each.
    let mut tasks = Vec::new();
    for (node_no, node) in [(0u8, node_a.clone()), (1u8, node_b.clone())] {
        for task in 0..8 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let mut applied = Vec::new();
                for round in 0..3usize {
                    for i in (task..N).step_by(8) {
                        let status = if (i + round + usize::from(node_no)) % 4 == 0 {
                            "ERR"
                        } else {
                            "OK"
                        };
                        let req = UpdateRequest::new("p1", format!("i{i}"), status);
                        match node.update(req).await.unwrap() {
                            UpdateOutcome::Applied(ind) => {
                                applied.push((i, ind.version, ind.status))
                            }
                            UpdateOutcome::Ignored => panic!("nothing is ignored"),
                        }
                    }
                }
                applied
            }));
        }
    }
    // The last accepted update of each indicator is the one with the highest version.
    let mut last: HashMap<usize, (u64, Status)> = HashMap::new();
    let mut versions: HashMap<usize, Vec<u64>> = HashMap::new();
    for task in tasks {
        for (i, version, status) in task.await.unwrap() {
            versions.entry(i).or_default().push(version);
            let entry = last.entry(i).or_insert((version, status));
            if version > entry.0 {
                *entry = (version, status);
            }
        }
    }
    for (i, mut v) in versions {
        v.sort_unstable();
        assert_eq!(
            v,
            (1..=6).collect::<Vec<u64>>(),
            "i{i}: six updates, six versions"
        );
    }
    let inds = a.indicators(project.id).await.unwrap();
    assert_eq!(inds.len(), N);
    for ind in &inds {
        let i: usize = ind.name.as_str()[1..].parse().unwrap();
        assert_eq!(
            ind.status, last[&i].1,
            "{} ends as its last update",
            ind.name
        );
    }
    let alive = inds.iter().filter(|i| i.status == Status::Ok).count();

    // Past every deadline, both nodes expire at once.
    clock.advance(TimeDelta::hours(2));
    let (ra, rb) = tokio::join!(node_a.tick(), node_b.tick());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.expired + rb.expired,
        alive,
        "each live indicator expired once: {ra:?} {rb:?}"
    );
    for node in [&node_a, &node_b] {
        assert_eq!(node.tick().await.unwrap().expired, 0);
    }

    for ind in a.indicators(project.id).await.unwrap() {
        assert_eq!((ind.status, ind.dead), (Status::Err, true), "{}", ind.name);
        let log = a.log(project.id, &ind.name, 1000).await.unwrap();
        let expiries = log
            .iter()
            .filter(|l| l.message.starts_with("okerr-process:"))
            .count();
        let was_alive = last[&ind.name.as_str()[1..].parse::<usize>().unwrap()].1 == Status::Ok;
        assert_eq!(expiries, usize::from(was_alive), "{}: {log:?}", ind.name);
        let switches = log
            .iter()
            .filter(|l| l.message.contains(": switch "))
            .count();
        let changes = log
            .iter()
            .filter(|l| l.message.starts_with("ALERT:Changed status"))
            .count();
        assert_eq!(switches, changes, "{}", ind.name);
    }
    let outbox = a.outbox(project.id).await.unwrap();
    let mut per_indicator: HashMap<&str, usize> = HashMap::new();
    for e in &outbox {
        if let Payload::Alert { message, .. } = &e.notification.payload
            && message.starts_with("Changed status")
        {
            *per_indicator
                .entry(e.notification.indicator.as_str())
                .or_default() += 1;
        }
    }
    for ind in a.indicators(project.id).await.unwrap() {
        let log = a.log(project.id, &ind.name, 1000).await.unwrap();
        let switches = log
            .iter()
            .filter(|l| l.message.contains(": switch "))
            .count();
        let alerts = per_indicator.get(ind.name.as_str()).copied().unwrap_or(0);
        assert_eq!(
            alerts, switches,
            "one alert per status change of {}",
            ind.name
        );
    }

    // Both nodes delivered (a tick delivers one claim; what is left, now); nothing twice,
    // nothing left.
    let (da, db) = tokio::join!(node_a.deliver_released(), node_b.deliver_released());
    da.unwrap();
    db.unwrap();
    let mut delivered: Vec<i64> = notify_a
        .delivered()
        .iter()
        .chain(notify_b.delivered().iter())
        .map(|e| e.id.0)
        .collect();
    let total = delivered.len();
    delivered.sort_unstable();
    delivered.dedup();
    assert_eq!(delivered.len(), total, "no notification delivered twice");
    assert_eq!(total, outbox.len(), "every notification delivered");
}

#[tokio::test]
async fn an_unreadable_notification_is_parked() {
    let Some(storage) = common::storage().await else {
        return;
    };
    okerr_sql::check_unreadable_notifications_are_parked!(storage);
}

/// The log has no foreign key to its indicator (checking it cost a lookup per log line);
/// deleting an indicator still deletes every log row of it, through a trigger, and leaves
/// the others.
#[tokio::test]
async fn deleting_an_indicator_deletes_its_log_rows() {
    use okerr_backend_postgres::sqlx;
    let Some(storage) = common::storage().await else {
        return;
    };
    let project = storage
        .create_project(NewProject::new("p", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let engine = Engine::new(
        Arc::new(storage.clone()),
        Arc::new(RecordingNotifier::default()),
        Arc::new(clock.clone()),
    );
    for (name, status) in [("a", "OK"), ("b", "OK"), ("a", "ERR"), ("a", "OK")] {
        engine
            .update(UpdateRequest::new("p1", name, status))
            .await
            .unwrap();
    }
    let rows = |id: i64| {
        let pool = storage.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM log WHERE indicator_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let id = |name: &str| {
        let name = IndicatorName::parse(name).unwrap();
        let storage = storage.clone();
        async move {
            storage
                .indicator(project.id, &name)
                .await
                .unwrap()
                .unwrap()
                .id
                .0
        }
    };
    let (a, b) = (id("a").await, id("b").await);
    assert!(rows(a).await >= 3, "a's updates are logged");
    let b_rows = rows(b).await;
    assert!(b_rows >= 1);
    assert!(
        storage
            .delete_indicator(project.id, &IndicatorName::parse("a").unwrap())
            .await
            .unwrap()
    );
    assert_eq!(
        rows(a).await,
        0,
        "no log row of the deleted indicator is left"
    );
    assert_eq!(rows(b).await, b_rows, "the others' stay");
}
