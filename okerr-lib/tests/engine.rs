//! The engine's time semantics (spec §7.5), alerts (§8) and delivery, on a manual clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use common::{World, req};
use okerr::{
    Action, Engine, EngineConfig, IndicatorName, Interval, MethodKind, NewProject, Payload,
    Reduction, Status, Storage, UpdateOutcome, UpdateRequest,
};

fn minutes(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

fn name(n: &str) -> IndicatorName {
    IndicatorName::parse(n).unwrap()
}

/// `Default` is period 1h, patience 20m: the deadline is 80 minutes after an update.
#[tokio::test]
async fn an_indicator_expires_after_period_and_patience_once() {
    let w = World::new().await;
    let t0 = w.push("srv", "OK").await;
    assert_eq!(t0.expected, Some(t0.updated + minutes(60)));
    assert_eq!(t0.scheduled, Some(t0.updated + minutes(80)));

    w.clock.advance(minutes(61));
    assert_eq!(w.engine.tick().await.unwrap().expired, 0);
    let ind = w.indicator("srv").await.unwrap();
    assert_eq!(ind.status, Status::Ok);
    assert!(
        ind.pending(w.clock_now()),
        "pending between expected and scheduled"
    );
    assert_eq!(ind.flags(w.clock_now()), vec!["OK", "pending"]);

    w.clock.advance(minutes(19));
    let report = w.engine.tick().await.unwrap();
    assert_eq!(report.expired, 1);
    let ind = w.indicator("srv").await.unwrap();
    assert_eq!(
        (ind.status, ind.details.as_str()),
        (Status::Err, "No heartbeat")
    );
    assert!(ind.dead);
    assert_eq!(ind.due_at(), None);
    let log = w.log("srv").await;
    assert!(log.contains(&"okerr-process: switch OK > ERR: No heartbeat".to_owned()));
    assert_eq!(
        w.notifier.alerts(),
        vec![
            "autocreated".to_owned(),
            "Changed status OK (1h20m) -> ERR (No heartbeat)".to_owned()
        ]
    );

    w.clock.advance(minutes(200));
    assert_eq!(
        w.engine.tick().await.unwrap().expired,
        0,
        "a dead indicator never expires again"
    );
    assert_eq!(w.notifier.alerts().len(), 2);
}

#[tokio::test]
async fn a_late_update_recovers_and_an_update_before_the_scheduler_counts_as_on_time() {
    let w = World::new().await;
    w.push("late", "OK").await;
    w.push("ontime", "OK").await;
    w.clock.advance(minutes(90));
    // `ontime` is past its deadline, but the scheduler has not run: a normal confirmation.
    let ontime = w.push("ontime", "OK").await;
    assert_eq!(ontime.status, Status::Ok);
    w.engine.tick().await.unwrap();
    assert_eq!(w.indicator("ontime").await.unwrap().status, Status::Ok);
    assert_eq!(w.indicator("late").await.unwrap().status, Status::Err);

    w.clock.advance(minutes(5));
    let late = w.push("late", "OK").await;
    assert_eq!(late.status, Status::Ok);
    assert!(!late.dead);
    assert_eq!(late.scheduled, Some(w.clock_now() + minutes(80)));
    w.engine.tick().await.unwrap();
    assert_eq!(
        w.notifier.alerts().last().unwrap(),
        "Changed status ERR (5m) -> OK ()"
    );
}

#[tokio::test]
async fn a_pushed_err_is_dead_and_never_expires() {
    let w = World::new().await;
    w.push("srv", "OK").await;
    w.clock.advance(minutes(1));
    let ind = w
        .engine
        .update(UpdateRequest {
            details: Some("disk full".into()),
            ..req("srv", "ERR")
        })
        .await
        .unwrap();
    let UpdateOutcome::Applied(ind) = ind else {
        panic!("applied")
    };
    assert!(ind.dead);
    assert_eq!(ind.details, "disk full");
    w.clock.advance(minutes(500));
    assert_eq!(w.engine.tick().await.unwrap().expired, 0);
    assert_eq!(
        w.log("srv").await.last().unwrap(),
        "ALERT:Changed status OK (60s) -> ERR (disk full)"
    );
}

#[tokio::test]
async fn maintenance_keeps_results_and_holds_back_alerts_and_webhooks() {
    let w = World::with(|p| {
        p.policies[0].url_statuschange = Some("http://127.0.0.1:9/hook".parse().unwrap());
    })
    .await;
    w.push("srv", "OK").await;
    w.engine.tick().await.unwrap();
    let delivered = w.notifier.delivered().len();
    w.engine
        .act("p1", &name("srv"), &Action::Maintenance(true), "user ann")
        .await
        .unwrap();
    w.push("srv", "ERR").await;
    w.clock.advance(minutes(1));
    w.push("srv", "OK").await;
    w.engine
        .act("p1", &name("srv"), &Action::Maintenance(false), "user ann")
        .await
        .unwrap();
    w.engine.tick().await.unwrap();
    assert_eq!(
        w.notifier.delivered().len(),
        delivered,
        "no alert, no webhook"
    );
    let log = w.log("srv").await;
    assert!(log.contains(&"user ann set maintenance".to_owned()));
    assert!(log.contains(&"user ann stop maintenance".to_owned()));
    assert!(
        log.iter()
            .any(|l| l.starts_with("ALERT:Changed status OK () -> ERR")),
        "suppressed alerts are still logged: {log:?}"
    );
    let ind = w.indicator("srv").await.unwrap();
    assert_eq!(ind.status, Status::Ok);
    assert_eq!(ind.prev_status, None, "no change outside maintenance yet");
}

#[tokio::test]
async fn silent_holds_back_alerts_but_not_the_webhook() {
    let w = World::with(|p| {
        p.policies[0].url_statuschange = Some("http://127.0.0.1:9/hook".parse().unwrap());
    })
    .await;
    w.push("srv", "OK").await;
    w.engine
        .act("p1", &name("srv"), &Action::Silent(true), "user ann")
        .await
        .unwrap();
    w.engine.tick().await.unwrap();
    let before = w.notifier.delivered().len();
    w.clock.advance(minutes(2));
    w.push("srv", "ERR").await;
    w.engine.tick().await.unwrap();
    let new: Vec<_> = w.notifier.delivered().split_off(before);
    assert_eq!(new.len(), 1);
    let Payload::Webhook { url, change } = &new[0].notification.payload else {
        panic!("a webhook, got {new:?}")
    };
    assert_eq!(url.as_str(), "http://127.0.0.1:9/hook");
    let json = change.to_json("p1", "srv");
    assert_eq!(json["old"], "OK");
    assert_eq!(json["new"], "ERR");
    assert_eq!(json["type"], "status_change");
}

#[tokio::test]
async fn problem_and_disabled_indicators_never_expire() {
    let w = World::new().await;
    w.engine
        .update(UpdateRequest {
            error: Some("cannot read sensor".into()),
            ..req("prob", "OK")
        })
        .await
        .unwrap();
    let prob = w.indicator("prob").await.unwrap();
    assert!(prob.problem);
    assert!(
        w.log("prob")
            .await
            .contains(&"Problem: cannot read sensor".to_owned())
    );
    w.engine
        .update(UpdateRequest {
            error: Some(String::new()),
            ..req("noprob", "OK")
        })
        .await
        .unwrap();
    assert!(
        !w.indicator("noprob").await.unwrap().problem,
        "an empty error is no problem"
    );

    w.push("off", "OK").await;
    w.engine
        .act("p1", &name("off"), &Action::Disabled(true), "user ann")
        .await
        .unwrap();
    w.clock.advance(minutes(100));
    w.engine.tick().await.unwrap();
    assert_eq!(w.indicator("prob").await.unwrap().status, Status::Ok);
    assert_eq!(w.indicator("off").await.unwrap().status, Status::Ok);
    assert_eq!(w.indicator("noprob").await.unwrap().status, Status::Err);

    // Enabling gives a fresh period; clearing the problem lets it expire.
    let off = w
        .engine
        .act("p1", &name("off"), &Action::Disabled(false), "user ann")
        .await
        .unwrap();
    assert_eq!(off.scheduled, Some(w.clock_now() + minutes(80)));
    w.engine
        .act("p1", &name("prob"), &Action::Problem(false), "user ann")
        .await
        .unwrap();
    w.engine.tick().await.unwrap();
    assert_eq!(w.indicator("prob").await.unwrap().status, Status::Err);
    assert_eq!(w.indicator("off").await.unwrap().status, Status::Ok);
}

#[tokio::test]
async fn retest_expects_an_update_within_the_patience() {
    let w = World::new().await;
    w.push("srv", "ERR").await;
    let ind = w
        .engine
        .act("p1", &name("srv"), &Action::Retest, "user ann")
        .await
        .unwrap();
    assert!(!ind.dead);
    assert_eq!(ind.expected, Some(w.clock_now()));
    assert_eq!(ind.scheduled, Some(w.clock_now() + minutes(20)));
    w.clock.advance(minutes(20));
    assert_eq!(w.engine.tick().await.unwrap().expired, 1);
    let log = w.log("srv").await;
    assert_eq!(
        log.last().unwrap(),
        "okerr-process: confirmed ERR: No heartbeat"
    );
}

#[tokio::test]
async fn set_status_by_hand() {
    let w = World::new().await;
    w.push("srv", "OK").await;
    let ind = w
        .engine
        .act(
            "p1",
            &name("srv"),
            &Action::SetStatus(Status::Err),
            "user ann",
        )
        .await
        .unwrap();
    assert_eq!(
        (ind.status, ind.details.as_str()),
        (Status::Err, "user ann")
    );
    assert!(
        w.log("srv")
            .await
            .contains(&"user ann: switch OK > ERR: user ann".to_owned())
    );
}

fn with_reduction(spec: &'static str) -> impl FnOnce(&mut NewProject) {
    move |p| p.policies[0].reduction = Some(Reduction::parse(spec).unwrap())
}

#[tokio::test]
async fn alert_reduction_cancels_a_flip_back_inside_the_delay() {
    let w = World::with(with_reduction("5m")).await;
    w.push("srv", "OK").await;
    w.clock.advance(minutes(10));
    w.engine.tick().await.unwrap();
    let base = w.notifier.alerts().len();
    assert_eq!(base, 1, "the autocreate alert, held for 5 minutes too");
    let flipped = w.push("srv", "ERR").await;
    assert_eq!(flipped.held.len(), 1);
    w.engine.tick().await.unwrap();
    assert_eq!(w.notifier.alerts().len(), base, "held for 5 minutes");
    w.clock.advance(minutes(4));
    let back = w.push("srv", "OK").await;
    assert!(back.held.is_empty());
    w.clock.advance(minutes(10));
    w.engine.tick().await.unwrap();
    assert_eq!(
        w.notifier.alerts().len(),
        base,
        "the flip and its flip-back cancel out"
    );
    let pending: Vec<_> = w
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.delivered_at.is_none())
        .collect();
    assert!(
        pending.is_empty(),
        "nothing left in the outbox: {pending:?}"
    );
}

#[tokio::test]
async fn alert_reduction_releases_a_flip_that_stands_after_the_delay() {
    let w = World::with(with_reduction("0s 00:00-23:59 5m")).await;
    w.push("srv", "OK").await;
    w.clock.advance(minutes(10));
    w.engine.tick().await.unwrap();
    let base = w.notifier.alerts().len();
    w.push("srv", "ERR").await;
    w.clock.advance(TimeDelta::seconds(299));
    w.engine.tick().await.unwrap();
    assert_eq!(w.notifier.alerts().len(), base);
    w.clock.advance(TimeDelta::seconds(1));
    w.engine.tick().await.unwrap();
    assert_eq!(
        w.notifier.alerts()[base..],
        ["Changed status OK (10m) -> ERR ()".to_owned()]
    );
    // A flip back after the release is a new alert of its own.
    w.clock.advance(minutes(1));
    w.push("srv", "OK").await;
    w.clock.advance(minutes(5));
    w.engine.tick().await.unwrap();
    assert_eq!(w.notifier.alerts().len(), base + 2);
}

#[tokio::test]
async fn without_reduction_every_alert_is_released_at_once() {
    let w = World::new().await;
    assert!(w.project.policy("Daily").unwrap().reduction.is_none());
    w.engine
        .update(UpdateRequest {
            policy: Some("Daily".into()),
            ..req("srv", "OK")
        })
        .await
        .unwrap();
    w.push("srv", "ERR").await;
    w.push("srv", "OK").await;
    w.engine.tick().await.unwrap();
    assert_eq!(
        w.notifier.alerts(),
        vec![
            "autocreated from 1.2.3.4",
            "Changed status OK () -> ERR ()",
            "Changed status ERR () -> OK ()"
        ]
    );
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff_and_delivered_once() {
    let w = World::new().await;
    w.notifier.set_failing(true);
    w.push("srv", "OK").await;
    let report = w.engine.tick().await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 1));
    let entry = &w.outbox().await[0];
    assert_eq!(entry.attempts, 1);
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("switched to failing")
    );
    w.notifier.set_failing(false);
    w.clock.advance(TimeDelta::seconds(4));
    assert_eq!(w.engine.tick().await.unwrap().delivered, 0, "backoff: 5 s");
    w.clock.advance(TimeDelta::seconds(1));
    assert_eq!(w.engine.tick().await.unwrap().delivered, 1);
    w.clock.advance(minutes(10));
    assert_eq!(w.engine.tick().await.unwrap().delivered, 0);
    assert_eq!(w.notifier.alerts(), vec!["autocreated"]);
}

#[tokio::test]
async fn autocreate_takes_method_policy_desc_and_tags() {
    let w = World::new().await;
    let r = UpdateRequest {
        method: Some("numerical|maxlim=90|minlim=1".into()),
        policy: Some("Nope".into()),
        desc: Some("disk usage".into()),
        tags: Some("disk,-bad,web_1".into()),
        details: Some("sda1".into()),
        ..req("srv:disk", "95")
    };
    w.engine.update(r).await.unwrap();
    let ind = w.indicator("srv:disk").await.unwrap();
    assert_eq!(ind.policy.as_str(), "Default");
    assert_eq!(ind.desc, "disk usage");
    let tags: Vec<&str> = ind.tags.iter().map(|t| t.as_str()).collect();
    assert_eq!(tags, ["disk", "web_1"]);
    assert_eq!(
        (ind.status, ind.details.as_str()),
        (Status::Err, "sda1 | 95.0 > 90.0 (maxlim)")
    );
    let MethodKind::Numerical(args) = &ind.method.kind else {
        panic!("numerical")
    };
    assert_eq!(args.current, Some(95.0));
    assert_eq!(
        w.log("srv:disk").await,
        vec![
            "Cannot find policy 'Nope' to create indicator 'srv:disk', use default",
            "Create arg maxlim = 90",
            "Create arg minlim = 1",
            "ALERT:autocreated from 1.2.3.4",
            "http:1.2.3.4: switch OK > ERR: sda1 | 95.0 > 90.0 (maxlim)",
            "ALERT:Changed status OK () -> ERR (sda1 | 95.0 > 90.0 (maxlim))",
        ]
    );
}

#[tokio::test]
async fn string_with_reinit_learns_then_compares() {
    let w = World::new().await;
    let r = UpdateRequest {
        method: Some("string|options=reinit".into()),
        ..req("version", "1.2.3")
    };
    w.engine.update(r).await.unwrap();
    assert_eq!(w.indicator("version").await.unwrap().status, Status::Ok);
    let ind = w.push("version", "1.2.4").await;
    assert_eq!((ind.status, ind.details.as_str()), (Status::Err, "1.2.4"));
    let mismatch = r#"Mismatch: str: "1.2.3" new: "1.2.4""#.to_owned();
    assert!(w.log("version").await.contains(&mismatch));
    let ind = w.push("version", "1.2.3").await;
    assert_eq!(ind.status, Status::Ok);
}

#[tokio::test]
async fn details_are_truncated_like_okerr() {
    let w = World::new().await;
    let r = UpdateRequest {
        details: Some("d".repeat(300)),
        ..req("srv", "OK")
    };
    w.engine.update(r).await.unwrap();
    let ind = w.indicator("srv").await.unwrap();
    assert_eq!(ind.details, format!("{}..", "d".repeat(198)));
}

#[tokio::test]
async fn server_minimums_raise_period_and_patience() {
    let w = World::with(|p| {
        p.policies[0].period = Interval::parse("1s").unwrap();
        p.policies[0].patience = Interval::parse("1s").unwrap();
    })
    .await;
    let config = EngineConfig {
        settings: okerr::Settings::okerr_plan(),
        ..EngineConfig::default()
    };
    let engine = Engine::with_config(
        w.storage.clone(),
        Arc::new(w.notifier.clone()),
        Arc::new(w.clock.clone()),
        config,
    );
    engine
        .update(UpdateRequest::new("p1", "a", "OK"))
        .await
        .unwrap();
    let a = w.indicator("a").await.unwrap();
    assert_eq!(a.scheduled, Some(a.updated + minutes(65)));
    // Without minimums a 1 s period and patience mean what they say.
    let b = w.push("b", "OK").await;
    assert_eq!(b.scheduled, Some(b.updated + TimeDelta::seconds(2)));
}

/// 50 writers on one indicator, on a multi-threaded runtime: every update is in the log
/// and the version counts them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_are_all_applied() {
    let w = World::new().await;
    w.push("hot", "OK").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let engine = w.engine.clone();
        tasks.push(tokio::spawn(async move {
            let status = if i % 2 == 0 { "OK" } else { "ERR" };
            engine.update(req("hot", status)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ind = w.indicator("hot").await.unwrap();
    assert_eq!(ind.version, 51);
    let results = w
        .log("hot")
        .await
        .iter()
        .filter(|l| l.contains(": confirmed ") || l.contains(": switch "))
        .count();
    assert_eq!(results, 51);
}

/// The run loop sleeps until the next deadline and wakes early when told; time moves only
/// on the manual clock.
#[tokio::test]
async fn the_run_loop_expires_and_delivers_when_woken() {
    let w = World::with(|p| {
        p.policies[0].period = Interval::parse("2s").unwrap();
        p.policies[0].patience = Interval::parse("0").unwrap();
    })
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = w.engine.clone();
    let runner = tokio::spawn(async move {
        engine
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    w.push("srv", "OK").await;
    guard(w.notifier.wait_for(1)).await;
    assert_eq!(w.notifier.alerts(), vec!["autocreated"]);
    w.clock.advance(TimeDelta::seconds(2));
    w.engine.wake();
    guard(w.notifier.wait_for(2)).await;
    assert_eq!(
        w.notifier.alerts()[1],
        "Changed status OK (2s) -> ERR (No heartbeat)"
    );
    stop.send(()).unwrap();
    guard(runner).await.unwrap();
    let stored = w
        .storage
        .indicator(w.project.id, &name("srv"))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.dead);
}

/// Alerts that commits release within `pass_gap` of the last pass go out in one pass (one
/// delivery), not one pass each; with no gap, each commit wakes a pass of its own.
#[tokio::test(start_paused = true)]
async fn commits_within_the_pass_gap_are_delivered_by_one_pass() {
    for (gap, expected) in [
        (Duration::from_millis(50), vec![3, 1, 2]),
        (Duration::ZERO, vec![3, 1, 1, 1]),
    ] {
        let w = World::new().await;
        let engine = Engine::builder(w.storage.clone(), Arc::new(w.clock.clone()))
            .notifier(Arc::new(w.notifier.clone()))
            .config(EngineConfig {
                pass_gap: gap,
                ..EngineConfig::default()
            })
            .build();
        for n in ["a", "b", "c"] {
            engine.update(req(n, "OK")).await.unwrap();
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runner = tokio::spawn({
            let engine = engine.clone();
            async move {
                engine
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            }
        });
        // The first pass delivers the three "autocreated" alerts.
        guard(w.notifier.wait_for(3)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The first flip's pass runs at once; the two after it, 10 and 20 ms later, wait
        // for the gap and share one pass.
        for n in ["a", "b", "c"] {
            engine.update(req(n, "ERR")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        guard(w.notifier.wait_for(6)).await;
        let batches = w.notifier.batches();
        assert_eq!(batches, expected, "gap {gap:?}");
        stop.send(()).unwrap();
        guard(runner).await.unwrap();
    }
}

/// A bound on waiting for an event, so a broken run loop fails instead of hanging.
async fn guard<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the event happened")
}

trait ClockNow {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}

impl ClockNow for World {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        okerr::Clock::now(&self.clock)
    }
}

#[tokio::test]
async fn several_actions_apply_as_one_change() {
    let w = World::new().await;
    w.push("srv", "OK").await;
    let before = w.indicator("srv").await.unwrap().version;
    let actions = [
        Action::Policy("Daily".into()),
        Action::Description("web server".into()),
        Action::Method("numerical".into()),
        Action::Arg("maxlim".into(), "90".into()),
        Action::Arg("nosuch".into(), "1".into()),
        Action::Silent(true),
    ];
    let ind = w
        .engine
        .act_all("p1", &name("srv"), &actions, "user ann")
        .await
        .unwrap();
    assert_eq!(ind.version, before + 1, "one commit");
    assert_eq!(ind.policy.as_str(), "Daily");
    assert_eq!(ind.desc, "web server");
    assert_eq!(ind.method.args()["maxlim"], "90");
    assert!(ind.silent);
    assert_eq!(
        ind.scheduled,
        Some(ind.updated + minutes(80)),
        "unchanged until the next update"
    );
    let next = w.push("srv", "5").await;
    assert_eq!(
        next.scheduled,
        Some(next.updated + TimeDelta::hours(26)),
        "then Daily's"
    );

    // A bad action refuses the whole change.
    let bad = [
        Action::Silent(false),
        Action::Arg("maxlim".into(), "lots".into()),
    ];
    let e = w
        .engine
        .act_all("p1", &name("srv"), &bad, "user ann")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Bad maxlim value 'lots', cannot convert to float"
    );
    assert!(w.indicator("srv").await.unwrap().silent);
    let e = w
        .engine
        .act(
            "p1",
            &name("srv"),
            &Action::Policy("Nope".into()),
            "user ann",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, okerr::ActionError::NoSuchPolicy(_)), "{e:?}");
}

#[tokio::test]
async fn a_user_creates_an_indicator_in_maintenance() {
    let w = World::new().await;
    let ind = w
        .engine
        .create_indicator("p1", "new:one", "user ann", "10.1.1.1")
        .await
        .unwrap();
    assert!(ind.maintenance.is_some());
    assert_eq!(ind.policy.as_str(), "Default");
    w.engine.tick().await.unwrap();
    assert_eq!(
        w.notifier.alerts(),
        vec!["created by user ann from 10.1.1.1"]
    );
    let e = w
        .engine
        .create_indicator("p1", "new:one", "user ann", "10.1.1.1")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Indicator new:one already exists");
    let e = w
        .engine
        .create_indicator("p1", "42", "user ann", "10.1.1.1")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Do not create indicator '42': bad name");
}

/// A second engine on the same storage (another node): the first one's cached copy of
/// `shared` goes stale and is never used to decide. Its next update meets the newer
/// version, is decided again on a fresh read, and stores what a fresh engine would.
#[tokio::test]
async fn an_indicator_cached_by_one_node_and_moved_by_another_is_read_again() {
    let w = World::new().await;
    let other = Engine::new(
        w.storage.clone(),
        Arc::new(w.notifier.clone()),
        Arc::new(w.clock.clone()),
    );
    assert_eq!(w.push("shared", "OK").await.version, 1);
    w.clock.advance(minutes(1));
    w.engine.update(req("shared", "OK")).await.unwrap();
    w.clock.advance(minutes(1));
    // The other node flips it: the first engine's copy (version 2, OK) is stale.
    other.update(req("shared", "ERR")).await.unwrap();
    w.clock.advance(minutes(1));
    let outcome = w.engine.update(req("shared", "OK")).await.unwrap();
    let UpdateOutcome::Applied(ind) = outcome else {
        panic!("not applied: {outcome:?}");
    };
    assert_eq!(ind.version, 4, "decided on the stored version 3");
    assert_eq!(ind.prev_status, Some(Status::Err), "the flip back is seen");
    let stored = w.indicator("shared").await.unwrap();
    assert_eq!((stored.version, stored.status), (4, Status::Ok));
    let log = w.log("shared").await;
    assert_eq!(
        log.iter().filter(|l| l.contains("switch")).count(),
        2,
        "both flips are logged: {log:?}"
    );
}

/// The scheduler expires an indicator the update path has cached: the next update
/// recovers it from ERR, as it would without a cache.
#[tokio::test]
async fn an_expired_indicator_is_not_confirmed_from_a_stale_copy() {
    let w = World::new().await;
    w.push("srv", "OK").await;
    w.clock.advance(minutes(81));
    assert_eq!(w.engine.tick().await.unwrap().expired, 1);
    let ind = w.push("srv", "OK").await;
    assert_eq!(
        (ind.status, ind.prev_status),
        (Status::Ok, Some(Status::Err))
    );
    assert!(!ind.dead);
    assert_eq!(ind.version, 3);
}

/// A copy cached by a node goes stale when another node disables the indicator: an update
/// is refused as the stored indicator says, not applied from the copy.
#[tokio::test]
async fn a_refusal_is_decided_on_the_stored_indicator() {
    let w = World::new().await;
    let other = Engine::new(
        w.storage.clone(),
        Arc::new(w.notifier.clone()),
        Arc::new(w.clock.clone()),
    );
    w.push("srv", "OK").await;
    w.push("srv", "OK").await;
    other
        .act(
            "p1",
            &name("srv"),
            &Action::Disabled(true),
            "ops@example.com",
        )
        .await
        .unwrap();
    let disabled = w.indicator("srv").await.unwrap();
    assert!(disabled.disabled);
    let result = w.engine.update(req("srv", "ERR")).await;
    assert!(
        result.is_err(),
        "a disabled indicator takes no update: {result:?}"
    );
    assert_eq!(
        w.indicator("srv").await.unwrap(),
        disabled,
        "nothing changed"
    );
}

#[tokio::test]
async fn several_claim_loops_expire_each_due_indicator_once() {
    let w = World::new().await;
    let engine = Engine::with_config(
        w.storage.clone(),
        Arc::new(w.notifier.clone()),
        Arc::new(w.clock.clone()),
        EngineConfig {
            due_workers: 3,
            batch: 7,
            ..EngineConfig::default()
        },
    );
    for i in 0..50 {
        w.push(&format!("srv{i}"), "OK").await;
    }
    w.clock.advance(minutes(81));
    let report = engine.tick().await.unwrap();
    assert_eq!(report.expired, 50, "claims of 7 in three loops take all 50");
    for i in 0..50 {
        let ind = w.indicator(&format!("srv{i}")).await.unwrap();
        assert_eq!((ind.status, ind.dead), (Status::Err, true), "srv{i}");
    }
    engine.deliver_released().await.unwrap();
    let expiries = w
        .notifier
        .alerts()
        .iter()
        .filter(|a| a.ends_with("ERR (No heartbeat)"))
        .count();
    assert_eq!(expiries, 50, "one alert per expiry");
    assert_eq!(engine.tick().await.unwrap().expired, 0);
}
