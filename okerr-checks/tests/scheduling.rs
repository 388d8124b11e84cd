//! Active checks scheduled by the engine with the real [`Checker`], on a manual clock,
//! against peers on 127.0.0.1: every period, the retry and recovery schedules, a check
//! that hangs past its timeout (cut, and holding no other check), a learned hash stored
//! back. The engine's time is the manual clock; only the checks themselves take real
//! time (a few milliseconds each, and the hang's half second).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use okerr::testing::ManualClock;
use okerr::{
    Action, Clock, Engine, EngineConfig, Indicator, IndicatorName, MemoryStorage, NewProject,
    Project, RetrySchedule, Settings, Status, Storage, TextId,
};
use okerr_checks::Checker;
use support::{Reply, Web};

struct World {
    storage: Arc<MemoryStorage>,
    clock: ManualClock,
    engine: Engine,
    project: Project,
}

impl World {
    async fn new(checker: Checker, tune: impl FnOnce(&mut EngineConfig)) -> World {
        let storage = Arc::new(MemoryStorage::new());
        let project = storage
            .create_project(NewProject::new("web", TextId::parse("p1").unwrap()))
            .await
            .unwrap();
        let clock = ManualClock::new(support::now());
        let mut config = EngineConfig {
            settings: Settings::default().unlimited(),
            ..EngineConfig::default()
        };
        tune(&mut config);
        let engine = Engine::builder(storage.clone(), Arc::new(clock.clone()))
            .config(config)
            .sensor(Arc::new(checker))
            .build();
        World {
            storage,
            clock,
            engine,
            project,
        }
    }

    /// Sets the retry schedules of the policy `Default`, and its period.
    async fn policy(&self, period: &str, retry: &str, recovery: &str) {
        self.engine
            .edit_project(self.project.id, |p| {
                for policy in &mut p.policies {
                    policy.period = okerr::Interval::parse(period).unwrap();
                    policy.retry_schedule = RetrySchedule::parse(retry).unwrap();
                    policy.recovery_retry_schedule = RetrySchedule::parse(recovery).unwrap();
                }
                Ok::<_, String>(())
            })
            .await
            .unwrap();
    }

    /// Creates `name` with this active method and arguments, out of maintenance.
    async fn active(&self, name: &str, method: &str, args: &[(&str, &str)]) -> Indicator {
        self.engine
            .create_indicator("p1", name, "user ops", "127.0.0.1")
            .await
            .unwrap();
        let mut actions = vec![Action::Method(method.into())];
        actions.extend(
            args.iter()
                .map(|(k, v)| Action::Arg((*k).into(), (*v).into())),
        );
        actions.push(Action::Maintenance(false));
        self.engine
            .act_all(
                "p1",
                &IndicatorName::parse(name).unwrap(),
                &actions,
                "user ops",
            )
            .await
            .unwrap()
    }

    async fn get(&self, name: &str) -> Indicator {
        self.storage
            .indicator(self.project.id, &IndicatorName::parse(name).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    async fn log(&self, name: &str) -> Vec<String> {
        let mut lines = self
            .storage
            .log(self.project.id, &IndicatorName::parse(name).unwrap(), 100)
            .await
            .unwrap();
        lines.sort_by_key(|l| l.time);
        lines.into_iter().map(|l| l.message).collect()
    }

    /// One scheduler pass, then waits for the checks it started; how many it started.
    async fn pass(&self) -> usize {
        let started = self.engine.tick().await.unwrap().checks;
        tokio::time::timeout(Duration::from_secs(10), self.engine.checks_settled())
            .await
            .expect("checks settle");
        started
    }
}

/// A web server answering every request with the status in `code`.
async fn web(code: &Arc<AtomicU16>) -> Web {
    let code = code.clone();
    Web::start(None, move |_| {
        Reply::new(code.load(Ordering::SeqCst), "hello")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_every_period_with_retry_and_recovery_schedules() {
    let code = Arc::new(AtomicU16::new(200));
    let server = web(&code).await;
    let w = World::new(support::checker(None, None, None).await, |_| {}).await;
    w.policy("60s", "10s", "5s").await;
    let url = server.url("http", "127.0.0.1", "/");
    let made = w.active("site", "httpstatus", &[("url", &url)]).await;
    assert_eq!(
        made.scheduled,
        Some(w.clock.now()),
        "a new active indicator is checked at once"
    );

    assert_eq!(w.pass().await, 1);
    let site = w.get("site").await;
    let t = w.clock.now();
    assert_eq!((site.status, site.expected), (Status::Ok, None));
    assert_eq!(site.details, "Got status code 200 OK as expected");
    assert_eq!(
        site.scheduled,
        Some(t + TimeDelta::seconds(60)),
        "every period"
    );
    assert_eq!(site.updated, t, "the last check");
    assert_eq!(w.pass().await, 0, "not due again before its period");
    assert_eq!(server.requests.lock().unwrap().len(), 1);

    w.clock.advance(TimeDelta::seconds(60));
    assert_eq!(w.pass().await, 1);
    assert_eq!(server.requests.lock().unwrap().len(), 2);

    // The server fails: the change waits out the retry schedule (10 s).
    code.store(500, Ordering::SeqCst);
    w.clock.advance(TimeDelta::seconds(60));
    assert_eq!(w.pass().await, 1);
    let site = w.get("site").await;
    let t = w.clock.now();
    assert_eq!((site.status, site.retry), (Status::Ok, 1));
    assert_eq!(site.scheduled, Some(t + TimeDelta::seconds(10)));
    w.clock.advance(TimeDelta::seconds(10));
    assert_eq!(w.pass().await, 1);
    let site = w.get("site").await;
    assert_eq!((site.status, site.retry), (Status::Err, 0));
    assert_eq!(
        site.details,
        "Bad status code 500 Internal Server Error (not 200) "
    );

    // It recovers: the recovery schedule (5 s).
    code.store(200, Ordering::SeqCst);
    w.clock.advance(TimeDelta::seconds(60));
    assert_eq!(w.pass().await, 1);
    assert_eq!(w.get("site").await.status, Status::Err);
    w.clock.advance(TimeDelta::seconds(5));
    assert_eq!(w.pass().await, 1);
    assert_eq!(w.get("site").await.status, Status::Ok);

    let log = w.log("site").await;
    let updates: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("okerr-process"))
        .collect();
    assert_eq!(
        updates,
        [
            "okerr-process: confirmed OK: Got status code 200 OK as expected",
            "okerr-process: confirmed OK: Got status code 200 OK as expected",
            "okerr-process: got OK > ERR (Bad status code 500 Internal Server Error (not 200) ), will retry in 10s",
            "okerr-process: switch OK > ERR: Bad status code 500 Internal Server Error (not 200) ",
            "okerr-process: got ERR > OK (Got status code 200 OK as expected), will retry in 5s",
            "okerr-process: switch ERR > OK: Got status code 200 OK as expected",
        ]
    );
    assert!(
        log.iter().any(|l| l.starts_with("ALERT:Changed status OK")),
        "{log:?}"
    );
    assert_eq!(
        server.requests.lock().unwrap().len(),
        6,
        "one request a check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_check_is_cut_and_holds_no_other() {
    let hang = Web::start(None, |_| Reply::hang()).await;
    let code = Arc::new(AtomicU16::new(200));
    let good = web(&code).await;
    // The engine's bound, shorter than the checker's own (20 s) and HTTP's (3 s).
    let w = World::new(support::checker(None, None, None).await, |c| {
        c.check_timeout = Duration::from_millis(500);
    })
    .await;
    w.policy("60s", "", "").await;
    w.active(
        "stuck",
        "httpstatus",
        &[("url", &hang.url("http", "127.0.0.1", "/"))],
    )
    .await;
    w.active(
        "fine",
        "httpstatus",
        &[("url", &good.url("http", "127.0.0.1", "/"))],
    )
    .await;

    let started = Instant::now();
    let report = w.engine.tick().await.unwrap();
    assert_eq!(report.checks, 2, "both started in one pass");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the pass does not wait for the checks: {:?}",
        started.elapsed()
    );
    // The good one is committed while the other hangs.
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.get("fine").await.details.is_empty() {
        assert!(Instant::now() < deadline, "the good check was held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.engine.checks_in_flight(), 1, "the hanging one still runs");
    w.engine.checks_settled().await;
    let stuck = w.get("stuck").await;
    assert_eq!(stuck.status, Status::Err);
    assert_eq!(stuck.details, "Check did not finish in 0.5 s");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        stuck.scheduled,
        Some(w.clock.now() + TimeDelta::seconds(60)),
        "checked again next period"
    );
    assert_eq!(w.get("fine").await.status, Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learned_hash_is_stored_back() {
    let body = Arc::new(std::sync::Mutex::new("version 1".to_owned()));
    let page = body.clone();
    let server = Web::start(None, move |_| Reply::new(200, &page.lock().unwrap())).await;
    let w = World::new(support::checker(None, None, None).await, |_| {}).await;
    w.policy("60s", "", "").await;
    let url = server.url("http", "127.0.0.1", "/");
    w.active("page", "sha1dynamic", &[("url", &url)]).await;
    assert_eq!(w.pass().await, 1);
    let page = w.get("page").await;
    let hash = page.method.args()["hash"].clone();
    assert_eq!(hash.len(), 40, "a sha1 learned: {hash:?}");
    assert_eq!(page.details, "hash initialized");
    w.clock.advance(TimeDelta::seconds(60));
    assert_eq!(w.pass().await, 1);
    assert_eq!(w.get("page").await.details, "hash match");

    *body.lock().unwrap() = "version 2".to_owned();
    w.clock.advance(TimeDelta::seconds(60));
    assert_eq!(w.pass().await, 1);
    let page = w.get("page").await;
    let new = page.method.args()["hash"].clone();
    assert_ne!(new, hash);
    assert_eq!(
        (page.status, page.details.as_str()),
        (Status::Ok, "new hash")
    );
    let log = w.log("page").await;
    let alert = format!("ALERT:Page {url} changed hash from {hash} to {new}");
    assert!(log.contains(&alert), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sensor_active_methods_are_refused() {
    let storage = Arc::new(MemoryStorage::new());
    storage
        .create_project(NewProject::new("web", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let engine = Engine::builder(storage, Arc::new(ManualClock::new(support::now()))).build();
    assert!(!engine.config().settings.active_checks);
    engine
        .create_indicator("p1", "site", "user ops", "127.0.0.1")
        .await
        .unwrap();
    let e = engine
        .act(
            "p1",
            &IndicatorName::parse("site").unwrap(),
            &Action::Method("httpstatus".into()),
            "user ops",
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Method 'httpstatus' is disabled: this server runs no active checks"
    );
}
