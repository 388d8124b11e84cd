//! Active checks in the engine with test sensors, on a manual clock: the concurrency
//! bound, a sensor that panics, and results that meet an edit made during the check (an
//! edit of the arguments drops the result; any other edit does not).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use okerr::testing::ManualClock;
use okerr::{
    Action, ActiveArgs, CheckResult, Clock, Engine, EngineConfig, Indicator, IndicatorName,
    MemoryStorage, NewProject, Sensor, Settings, Status, Storage, TextId,
};
use tokio::sync::Semaphore;

/// Counts the checks running at once; each waits for a permit of `gate` (or `pause`).
#[derive(Debug)]
struct Gated {
    running: AtomicUsize,
    most: AtomicUsize,
    done: AtomicUsize,
    gate: Semaphore,
}

impl Gated {
    fn new() -> Arc<Self> {
        Arc::new(Gated {
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            gate: Semaphore::new(0),
        })
    }
}

#[async_trait]
impl Sensor for Gated {
    async fn check(&self, args: &ActiveArgs, _now: DateTime<Utc>) -> CheckResult {
        let n = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        if args.get("url").contains("panic") {
            panic!("the sensor broke");
        }
        self.gate.acquire().await.unwrap().forget();
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        CheckResult::ok(format!("checked {}", args.get("url")))
    }
}

struct World {
    storage: Arc<MemoryStorage>,
    clock: ManualClock,
    engine: Engine,
    project: okerr::Project,
}

async fn world(sensor: Arc<dyn Sensor>, concurrency: usize) -> World {
    let storage = Arc::new(MemoryStorage::new());
    let project = storage
        .create_project(NewProject::new("web", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let engine = Engine::builder(storage.clone(), Arc::new(clock.clone()))
        .config(EngineConfig {
            settings: Settings::default().unlimited(),
            check_concurrency: concurrency,
            ..EngineConfig::default()
        })
        .sensor(sensor)
        .build();
    World {
        storage,
        clock,
        engine,
        project,
    }
}

fn name(n: &str) -> IndicatorName {
    IndicatorName::parse(n).unwrap()
}

impl World {
    async fn site(&self, n: &str, url: &str) {
        self.engine
            .create_indicator("p1", n, "user ops", "127.0.0.1")
            .await
            .unwrap();
        self.engine
            .act_all(
                "p1",
                &name(n),
                &[
                    Action::Method("httpstatus".into()),
                    Action::Arg("url".into(), url.into()),
                    Action::Maintenance(false),
                ],
                "user ops",
            )
            .await
            .unwrap();
    }

    async fn get(&self, n: &str) -> Indicator {
        self.storage
            .indicator(self.project.id, &name(n))
            .await
            .unwrap()
            .unwrap()
    }

    async fn settled(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.engine.checks_settled())
            .await
            .expect("checks settle");
    }
}

async fn until(what: &str, mut test: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !test() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_check_concurrency_checks_run_at_once() {
    let sensor = Gated::new();
    let w = world(sensor.clone(), 3).await;
    for i in 0..10 {
        w.site(&format!("s{i}"), &format!("http://127.0.0.1:{}/", 1000 + i))
            .await;
    }
    assert_eq!(w.engine.tick().await.unwrap().checks, 10, "all started");
    until("three run", || sensor.running.load(Ordering::SeqCst) == 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sensor.most.load(Ordering::SeqCst), 3, "never more");
    assert_eq!(w.engine.checks_in_flight(), 10);
    sensor.gate.add_permits(10);
    w.settled().await;
    assert_eq!(sensor.done.load(Ordering::SeqCst), 10);
    assert_eq!(sensor.most.load(Ordering::SeqCst), 3);
    for i in 0..10 {
        let s = w.get(&format!("s{i}")).await;
        assert_eq!(s.details, format!("checked http://127.0.0.1:{}/", 1000 + i));
    }
    // A pass while checks run does not start them again, even past their lease (a
    // manual clock jumps).
    w.clock.advance(chrono::TimeDelta::hours(2));
    assert_eq!(w.engine.tick().await.unwrap().checks, 10);
    w.clock.advance(chrono::TimeDelta::minutes(10));
    assert_eq!(w.engine.tick().await.unwrap().checks, 0, "in flight");
    sensor.gate.add_permits(10);
    w.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sensor_that_panics_fails_its_check_only() {
    let sensor = Gated::new();
    sensor.gate.add_permits(10);
    let w = world(sensor, 4).await;
    w.site("broken", "http://panic/").await;
    w.site("fine", "http://127.0.0.1:1/").await;
    assert_eq!(w.engine.tick().await.unwrap().checks, 2);
    w.settled().await;
    let broken = w.get("broken").await;
    assert_eq!(broken.status, Status::Err);
    assert!(
        broken.details.starts_with("Check failed: task"),
        "{}",
        broken.details
    );
    assert_eq!(w.get("fine").await.details, "checked http://127.0.0.1:1/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_during_the_check_is_kept_and_new_arguments_drop_the_result() {
    let sensor = Gated::new();
    let w = world(sensor.clone(), 4).await;
    w.site("site", "http://127.0.0.1:1/").await;
    w.site("desc", "http://127.0.0.1:2/").await;
    assert_eq!(w.engine.tick().await.unwrap().checks, 2);
    until("both run", || sensor.running.load(Ordering::SeqCst) == 2).await;
    // While the checks run, a user changes one's URL and the other's description.
    w.engine
        .act(
            "p1",
            &name("site"),
            &Action::Arg("url".into(), "http://127.0.0.1:3/".into()),
            "user ops",
        )
        .await
        .unwrap();
    w.engine
        .act(
            "p1",
            &name("desc"),
            &Action::Description("the shop".into()),
            "user ops",
        )
        .await
        .unwrap();
    sensor.gate.add_permits(2);
    w.settled().await;
    let site = w.get("site").await;
    assert_eq!(site.details, "", "the old URL's result is dropped");
    assert_eq!(
        site.scheduled,
        Some(w.clock.now()),
        "the new URL is checked at once"
    );
    let desc = w.get("desc").await;
    assert_eq!(desc.details, "checked http://127.0.0.1:2/", "decided again");
    assert_eq!(desc.desc, "the shop", "the edit kept");
    sensor.gate.add_permits(1);
    assert_eq!(w.engine.tick().await.unwrap().checks, 1);
    w.settled().await;
    assert_eq!(w.get("site").await.details, "checked http://127.0.0.1:3/");
}
