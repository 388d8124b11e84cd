//! The [`Engine`](crate::Engine) on the backend, end to end, with a manual clock.

use chrono::TimeDelta;

use crate::Reduction;
use crate::indicator::Status;
use crate::project::NewProject;
use crate::storage::Storage;

use super::*;

fn engine_on(
    storage: &std::sync::Arc<dyn Storage>,
    clock: &crate::testing::ManualClock,
    notifier: &crate::testing::RecordingNotifier,
) -> crate::Engine {
    crate::Engine::new(
        storage.clone(),
        std::sync::Arc::new(notifier.clone()),
        std::sync::Arc::new(clock.clone()),
    )
}

/// 50 concurrent updates of one indicator through the engine: none is lost (each is in the
/// log), and each got a version of its own.
pub async fn engine_many_writers_lose_nothing(storage: &std::sync::Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(storage, &clock, &notifier);
    let project = storage
        .create_project(NewProject::new("p", textid("p1")).with_member(ops()))
        .await
        .expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "hot", "OK"))
        .await
        .expect("first update");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let status = if i % 3 == 0 { "ERR" } else { "OK" };
                let details = format!("writer {i}");
                let req = crate::UpdateRequest {
                    details: Some(details),
                    ..crate::UpdateRequest::new("p1", "hot", status)
                };
                match engine.update(req).await {
                    Ok(crate::UpdateOutcome::Applied(ind)) => ind.version,
                    other => panic!("writer {i} was not applied: {other:?}"),
                }
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.expect("writer task"));
    }
    versions.sort_unstable();
    let expected: Vec<u64> = (2..=51).collect();
    assert_eq!(versions, expected, "every writer got a version of its own");
    let ind = storage
        .indicator(project.id, &name("hot"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(ind.version, 51);
    let log = storage
        .log(project.id, &name("hot"), 1000)
        .await
        .expect("log");
    for i in 0..50 {
        let details = format!(": writer {i}");
        assert!(
            log.iter().any(|l| l.message.ends_with(&details)),
            "the update of writer {i} is not in the log"
        );
    }
}

/// An update, then the deadline passes: the engine expires the indicator once, its alert is
/// delivered once and marked delivered in the outbox.
pub async fn engine_expiry_alert_and_delivery(storage: &std::sync::Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(storage, &clock, &notifier);
    let project = storage
        .create_project(NewProject::new("p", textid("p1")).with_member(ops()))
        .await
        .expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "OK"))
        .await
        .expect("update");
    clock.advance(TimeDelta::minutes(80));
    let report = engine.tick().await.expect("tick");
    assert_eq!((report.expired, report.delivered), (1, 2), "{report:?}");
    let report = engine.tick().await.expect("second tick");
    assert_eq!((report.expired, report.delivered), (0, 0), "{report:?}");
    assert_eq!(
        notifier.alerts(),
        vec![
            "autocreated".to_owned(),
            "Changed status OK (1h20m) -> ERR (No heartbeat)".to_owned()
        ]
    );
    let ind = storage
        .indicator(project.id, &name("srv"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!((ind.status, ind.dead), (Status::Err, true));
    let outbox = storage.outbox(project.id).await.expect("outbox");
    assert!(
        outbox.iter().all(|e| e.delivered_at.is_some()),
        "{outbox:?}"
    );
    assert_eq!(storage.next_deadline().await.expect("deadline"), None);
}

/// Alert reduction end to end on a clock with nanoseconds (finer than SQL backends keep): a
/// flip and its flip-back inside the delay cancel out in the outbox.
pub async fn engine_reduction_cancels_with_nanosecond_clock(storage: &std::sync::Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0() + TimeDelta::nanoseconds(123_456_789));
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(storage, &clock, &notifier);
    let mut new = NewProject::new("p", textid("p1")).with_member(ops());
    new.policies[0].reduction = Some(Reduction::parse("5m").expect("reduction"));
    let project = storage.create_project(new).await.expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "OK"))
        .await
        .expect("create");
    clock.advance(TimeDelta::minutes(10));
    engine.tick().await.expect("tick");
    clock.advance(TimeDelta::nanoseconds(1_001));
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "ERR"))
        .await
        .expect("flip");
    clock.advance(TimeDelta::seconds(30) + TimeDelta::nanoseconds(7));
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "OK"))
        .await
        .expect("flip back");
    clock.advance(TimeDelta::minutes(10));
    engine.tick().await.expect("tick");
    assert_eq!(notifier.alerts(), vec!["autocreated".to_owned()]);
    let waiting: Vec<_> = storage
        .outbox(project.id)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|e| e.delivered_at.is_none())
        .collect();
    assert!(
        waiting.is_empty(),
        "the flip and flip-back cancel out: {waiting:?}"
    );
}

/// A stored notification that cannot be read (written by another version, damaged) does
/// not hold up the others. The check hands the backend SQL that both dialects run as it
/// is: `run(sql)` must run a statement (it stores such a row, released long ago), and
/// `parked(sql)` must return the one row of a query, `available_at` and `last_error` of the
/// bad row. The good alert next to it is delivered, the bad row is not handed out, and it
/// is parked: never available again, with the cause in `last_error`. Not in the macro,
/// since only the backend can write a bad row.
pub async fn unreadable_notifications_are_parked<R, RunFut, P, ParkedFut>(
    storage: std::sync::Arc<dyn Storage>,
    run: R,
    parked: P,
) where
    R: FnOnce(String) -> RunFut,
    RunFut: std::future::Future<Output = ()>,
    P: FnOnce(String) -> ParkedFut,
    ParkedFut: std::future::Future<Output = (Option<i64>, Option<String>)>,
{
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(&storage, &clock, &notifier);
    let project = storage
        .create_project(NewProject::new("p", textid("p1")).with_member(ops()))
        .await
        .expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "a", "OK"))
        .await
        .expect("update");
    let a = get(&*storage, &project, "a").await.expect("stored");
    run(format!(
        "INSERT INTO outbox (project_id, indicator_id, release_at, available_at, data)
         VALUES ({}, {}, 0, 0, '{{\"type\": \"from the future\"}}')",
        project.id.0, a.id.0
    ))
    .await;
    clock.advance(TimeDelta::seconds(1));
    let report = engine
        .tick()
        .await
        .expect("a tick despite the unreadable row");
    assert_eq!(
        (report.delivered, report.failed),
        (1, 0),
        "the good alert is delivered"
    );
    assert_eq!(notifier.alerts(), vec!["autocreated"]);
    // Past any retry delay, before the indicator expires (1h20m).
    clock.advance(TimeDelta::minutes(30));
    let report = engine.tick().await.expect("the next tick");
    assert_eq!(
        report,
        crate::TickReport::default(),
        "the bad row is parked"
    );
    let (available, error) = parked(
        "SELECT available_at, last_error FROM outbox WHERE data LIKE '%from the future%'".into(),
    )
    .await;
    assert_eq!(available, None, "never claimed again");
    assert!(
        error
            .as_deref()
            .unwrap_or_default()
            .starts_with("unreadable, parked: "),
        "{error:?}"
    );
}

/// Restart: state written through the engine (deadlines, flags, a dead indicator, an alert
/// held by reduction) reads back the same from a reopened store, and the work goes on from
/// there. Not in the macro, since reopening is the backend's own business: `reopen` must
/// close `first` (drop or close its pools) and open the same database again.
pub async fn restart_keeps_state<F, Fut>(first: std::sync::Arc<dyn Storage>, reopen: F)
where
    F: FnOnce(std::sync::Arc<dyn Storage>) -> Fut,
    Fut: std::future::Future<Output = std::sync::Arc<dyn Storage>>,
{
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(&first, &clock, &notifier);
    let mut new = NewProject::new("p", textid("p1")).with_member(ops());
    new.policies[0].reduction = Some(Reduction::parse("5m").expect("reduction"));
    let project = first.create_project(new).await.expect("create project");
    for (n, status) in [
        ("alive", "OK"),
        ("dead", "ERR"),
        ("maint", "OK"),
        ("quiet", "OK"),
        ("held", "OK"),
    ] {
        engine
            .update(crate::UpdateRequest::new("p1", n, status))
            .await
            .expect("update");
    }
    engine
        .act(
            "p1",
            &name("maint"),
            &crate::Action::Maintenance(true),
            "user t",
        )
        .await
        .expect("maintenance");
    engine
        .act("p1", &name("quiet"), &crate::Action::Silent(true), "user t")
        .await
        .expect("silent");
    clock.advance(TimeDelta::minutes(10));
    engine.tick().await.expect("tick");
    engine
        .update(crate::UpdateRequest::new("p1", "held", "ERR"))
        .await
        .expect("flip");

    let indicators = first.indicators(project.id).await.expect("indicators");
    let outbox = first.outbox(project.id).await.expect("outbox");
    let deadline = first.next_deadline().await.expect("deadline");
    let log = first
        .log(project.id, &name("held"), 100)
        .await
        .expect("log");
    assert!(
        indicators.iter().any(|i| !i.held.is_empty()),
        "an alert is held: {indicators:?}"
    );
    drop(engine);

    let second = reopen(first).await;
    assert_eq!(
        second.project(project.id).await.expect("project"),
        Some(project.clone())
    );
    assert_eq!(
        second.indicators(project.id).await.expect("indicators"),
        indicators
    );
    assert_eq!(second.outbox(project.id).await.expect("outbox"), outbox);
    assert_eq!(second.next_deadline().await.expect("deadline"), deadline);
    assert_eq!(
        second
            .log(project.id, &name("held"), 100)
            .await
            .expect("log"),
        log
    );

    // The work goes on: the held alert is released, then the live ones expire.
    let engine = engine_on(&second, &clock, &notifier);
    let before = notifier.alerts().len();
    clock.advance(TimeDelta::minutes(5));
    engine.tick().await.expect("tick");
    assert_eq!(
        notifier.alerts()[before..],
        ["Changed status OK (10m) -> ERR ()".to_owned()]
    );
    clock.advance(TimeDelta::minutes(80));
    let report = engine.tick().await.expect("tick");
    assert_eq!(
        report.expired, 3,
        "alive, maint and quiet expire; dead and held are dead"
    );
    clock.advance(TimeDelta::minutes(5));
    engine.tick().await.expect("tick");
    let alerts = &notifier.alerts()[before + 1..];
    assert_eq!(
        alerts.iter().filter(|a| a.contains("No heartbeat")).count(),
        1,
        "maintenance and silent hold their alerts back: {alerts:?}"
    );
}

/// A due logic indicator and two engines (two nodes) on the storage, ticking at once: it
/// is evaluated once, through the claims expiry uses, over its project's indicators.
pub async fn engine_logic_is_evaluated_once_by_two_nodes(storage: &std::sync::Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let a = engine_on(storage, &clock, &notifier);
    let b = engine_on(storage, &clock, &notifier);
    let project = storage
        .create_project(NewProject::new("p", textid("p1")).with_member(ops()))
        .await
        .expect("create project");
    a.update(crate::UpdateRequest::new("p1", "web", "ERR"))
        .await
        .expect("update");
    a.create_indicator("p1", "sum", "user ops", "127.0.0.1")
        .await
        .expect("create");
    a.act_all(
        "p1",
        &name("sum"),
        &[
            crate::Action::Method("logic".into()),
            crate::Action::Arg("expr".into(), "s['web']".into()),
            crate::Action::Arg("dump".into(), "i['web']['status']".into()),
            crate::Action::Maintenance(false),
        ],
        "user ops",
    )
    .await
    .expect("logic");
    clock.advance(TimeDelta::minutes(90));
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    let (ra, rb) = (ra.expect("tick a"), rb.expect("tick b"));
    assert_eq!(ra.evaluated + rb.evaluated, 1, "{ra:?} {rb:?}");
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    assert_eq!(
        ra.expect("tick a").evaluated + rb.expect("tick b").evaluated,
        0
    );
    let sum = storage
        .indicator(project.id, &name("sum"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        (sum.status, sum.details.as_str()),
        (Status::Err, "i['web']['status']=ERR ")
    );
    let log = storage
        .log(project.id, &name("sum"), 100)
        .await
        .expect("log");
    let results: Vec<_> = log
        .iter()
        .filter(|l| l.message.starts_with("okerr-process:"))
        .collect();
    assert_eq!(results.len(), 1, "{log:?}");
    assert!(
        notifier
            .alerts()
            .iter()
            .any(|m| m.ends_with("-> ERR (i['web']['status']=ERR )")),
        "{:?}",
        notifier.alerts()
    );
}
