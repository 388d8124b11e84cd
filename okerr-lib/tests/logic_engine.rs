//! Logic indicators in the engine, on a manual clock: evaluated when due (every period)
//! and `logic_debounce` after a change in their project, through the same commit, alerts
//! and retry schedules as any result; an error is a problem until a user clears it.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::TimeDelta;
use common::World;
use okerr::{Action, IndicatorName, RetrySchedule, Status, UpdateRequest};

fn name(n: &str) -> IndicatorName {
    IndicatorName::parse(n).unwrap()
}

/// Creates the logic indicator `sum` with `expr`, out of maintenance.
async fn logic(w: &World, expr: &str) {
    w.engine
        .create_indicator("p1", "sum", "user ops", "127.0.0.1")
        .await
        .unwrap();
    w.engine
        .act_all(
            "p1",
            &name("sum"),
            &[
                Action::Method("logic".into()),
                Action::Arg("expr".into(), expr.into()),
                Action::Maintenance(false),
            ],
            "user ops",
        )
        .await
        .unwrap();
}

fn debounce(w: &World) -> TimeDelta {
    w.engine.config().logic_debounce
}

#[tokio::test]
async fn a_change_is_evaluated_after_the_debounce_and_alerted() {
    let w = World::new().await;
    w.push("a", "OK").await;
    w.push("b", "OK").await;
    logic(&w, "s['a'] and s['b']").await;
    // Changing the method evaluates it at once.
    let report = w.engine.tick().await.unwrap();
    assert_eq!(report.evaluated, 1);
    let sum = w.indicator("sum").await.unwrap();
    assert_eq!((sum.status, sum.expected), (Status::Ok, None));
    assert_eq!(
        sum.scheduled,
        Some(okerr::Clock::now(&w.clock) + TimeDelta::hours(1))
    );
    // Its own creation was a change, and it was evaluated after it: not again.
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);

    w.clock.advance(TimeDelta::milliseconds(1));
    w.push("b", "ERR").await;
    // Not before the debounce ...
    w.clock.advance(debounce(&w) - TimeDelta::milliseconds(1));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    assert_eq!(w.indicator("sum").await.unwrap().status, Status::Ok);
    // ... and at it, long before the period.
    w.clock.advance(TimeDelta::milliseconds(1));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    let sum = w.indicator("sum").await.unwrap();
    assert_eq!(sum.status, Status::Err);
    // b's alert and sum's, delivered by the same pass.
    let alerts = w.notifier.alerts();
    assert_eq!(
        alerts
            .iter()
            .filter(|a| *a == "Changed status OK () -> ERR ()")
            .count(),
        2,
        "{alerts:?}"
    );
    assert!(
        w.log("sum")
            .await
            .contains(&"okerr-process: switch OK > ERR: ".to_owned())
    );
    // A confirmation of b is no change: nothing to evaluate.
    w.push("b", "ERR").await;
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
}

#[tokio::test]
async fn due_every_period() {
    let w = World::new().await;
    w.push("a", "OK").await;
    logic(&w, "s['a']").await;
    w.engine.tick().await.unwrap();
    // Its own creation was a change, and it was evaluated after it: not again.
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    let before = w.log("sum").await.len();
    w.clock.advance(TimeDelta::minutes(59));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    w.clock.advance(TimeDelta::minutes(1) - debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    let log = w.log("sum").await;
    assert_eq!(log.len(), before + 1);
    assert_eq!(log.last().unwrap(), "okerr-process: confirmed OK: ");
    // Never expires, never dead.
    let sum = w.indicator("sum").await.unwrap();
    assert!(!sum.dead && !sum.pending(okerr::Clock::now(&w.clock)));
}

#[tokio::test]
async fn the_retry_schedule_postpones_a_change() {
    let w = World::new().await;
    w.engine
        .edit_project(w.project.id, |p| {
            let d = p
                .policies
                .iter_mut()
                .find(|x| x.name.as_str() == "Default")
                .unwrap();
            d.retry_schedule = RetrySchedule::parse("30s 1m").unwrap();
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    w.push("a", "OK").await;
    logic(&w, "s['a']").await;
    w.engine.tick().await.unwrap();
    w.clock.advance(debounce(&w));
    w.engine.tick().await.unwrap();
    w.push("a", "ERR").await;
    w.clock.advance(debounce(&w));
    w.engine.tick().await.unwrap();
    let sum = w.indicator("sum").await.unwrap();
    assert_eq!((sum.status, sum.retry), (Status::Ok, 1));
    assert_eq!(
        w.log("sum").await.last().unwrap(),
        "okerr-process: got OK > ERR (), will retry in 30s"
    );
    // Another change meanwhile does not shorten the wait.
    w.push("c", "OK").await;
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    w.clock.advance(TimeDelta::seconds(30) - debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    assert_eq!(
        w.log("sum").await.last().unwrap(),
        "okerr-process: got OK > ERR (), will retry in 60s"
    );
    w.clock.advance(TimeDelta::seconds(60));
    w.engine.tick().await.unwrap();
    let sum = w.indicator("sum").await.unwrap();
    assert_eq!((sum.status, sum.retry), (Status::Err, 0));
    let log = w.log("sum").await;
    assert_eq!(log[log.len() - 2], "okerr-process: switch OK > ERR: ");
    assert_eq!(
        log[log.len() - 1],
        "ALERT:Changed status OK (1m31s) -> ERR ()"
    );
}

#[tokio::test]
async fn an_error_is_a_problem_until_cleared() {
    let w = World::new().await;
    logic(&w, "s['nope']").await;
    w.engine.tick().await.unwrap();
    let sum = w.indicator("sum").await.unwrap();
    assert!(sum.problem);
    assert_eq!(
        (sum.status, sum.details.as_str()),
        (Status::Err, "KeyError: 'nope'")
    );
    assert!(
        w.log("sum")
            .await
            .contains(&"Problem: KeyError: 'nope'".to_owned())
    );
    // Not evaluated again, neither when due nor after a change.
    w.push("x", "OK").await;
    w.clock.advance(TimeDelta::hours(2));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    // Fixed and cleared by a user: evaluated at once.
    w.push("nope", "OK").await;
    w.engine
        .act("p1", &name("sum"), &Action::Problem(false), "user ops")
        .await
        .unwrap();
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    let sum = w.indicator("sum").await.unwrap();
    assert_eq!((sum.status, sum.problem), (Status::Ok, false));
}

#[tokio::test]
async fn updates_and_autocreate() {
    let w = World::new().await;
    logic(&w, "True").await;
    let e = w
        .engine
        .update(UpdateRequest::new("p1", "sum", "OK"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ERROR:BAD_METHOD Indicator exists with cm: logic"
    );
    // Autocreate with a logic method line: created, not evaluated by this update.
    let req = UpdateRequest {
        method: Some("logic|expr=s['sum'] and 1 < 2".into()),
        ..UpdateRequest::new("p1", "auto", "ERR")
    };
    w.engine.update(req).await.unwrap();
    let auto = w.indicator("auto").await.unwrap();
    assert_eq!(auto.method.args()["expr"], "s['sum'] and 1 < 2");
    assert_eq!(auto.status, Status::Ok);
    let req = UpdateRequest {
        method: Some("logic|expr=__import__('os')".into()),
        ..UpdateRequest::new("p1", "bad", "ERR")
    };
    let e = w.engine.update(req).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Bad expr: Call to function __import__() is not allowed"
    );
}

#[tokio::test]
async fn a_project_without_logic_is_not_read_for_each_change_but_learns_of_new_logic() {
    let w = World::new().await;
    w.push("x", "OK").await;
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    w.push("x", "ERR").await;
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 0);
    // A logic indicator stored through this engine ends the project's logic-free mark.
    logic(&w, "s['x']").await;
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    assert_eq!(w.indicator("sum").await.unwrap().status, Status::Err);
    w.clock.advance(TimeDelta::seconds(1));
    w.push("x", "OK").await;
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    assert_eq!(w.indicator("sum").await.unwrap().status, Status::Ok);
}

/// A project of more than 10,000 indicators is not read after a change to find out
/// whether it has logic indicators: a logic indicator another node made there is
/// evaluated when due, and from then on this node evaluates it after changes too.
#[tokio::test]
async fn a_large_project_learns_of_logic_made_elsewhere_when_it_is_due() {
    let w = World::with(|p| p.max_indicators = Some(20_000)).await;
    let policy = w.project.policy_or_default("Default");
    let now = okerr::Clock::now(&w.clock);
    let groups: Vec<Vec<okerr::Commit>> = (0..10_001)
        .map(|k| {
            let ind = okerr::Indicator::new(
                w.project.id,
                name(&format!("bulk:{k}")),
                &policy,
                okerr::CheckMethod::heartbeat(),
                &okerr::Settings::default(),
                now,
            );
            vec![okerr::Commit {
                indicator: ind,
                log: Vec::new(),
                notifications: Vec::new(),
                cancel: Vec::new(),
                project_version: None,
            }]
        })
        .collect();
    for r in okerr::Storage::commit_batch(&*w.storage, groups)
        .await
        .unwrap()
    {
        r.unwrap();
    }
    w.push("x", "OK").await;
    // Another node makes the logic indicator.
    let other = okerr::Engine::new(
        w.storage.clone(),
        std::sync::Arc::new(w.notifier.clone()),
        std::sync::Arc::new(w.clock.clone()),
    );
    other
        .create_indicator("p1", "sum", "user ops", "127.0.0.1")
        .await
        .unwrap();
    other
        .act_all(
            "p1",
            &name("sum"),
            &[
                Action::Method("logic".into()),
                Action::Arg("expr".into(), "s['x']".into()),
                Action::Maintenance(false),
            ],
            "user ops",
        )
        .await
        .unwrap();
    assert_eq!(other.tick().await.unwrap().evaluated, 1);
    w.clock.advance(TimeDelta::seconds(1));
    w.push("x", "ERR").await;
    w.clock.advance(debounce(&w));
    assert_eq!(
        w.engine.tick().await.unwrap().evaluated,
        0,
        "not read: too large"
    );
    assert_eq!(w.indicator("sum").await.unwrap().status, Status::Ok);
    // Due: this node claims and evaluates it, and knows of it from now on.
    w.clock.advance(TimeDelta::hours(1));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    assert_eq!(w.indicator("sum").await.unwrap().status, Status::Err);
    w.clock.advance(TimeDelta::seconds(1));
    w.push("x", "OK").await;
    w.clock.advance(debounce(&w));
    assert_eq!(w.engine.tick().await.unwrap().evaluated, 1);
    assert_eq!(w.indicator("sum").await.unwrap().status, Status::Ok);
}
