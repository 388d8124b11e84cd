//! The update batcher's pipeline: the next batch is read and decided while the previous
//! one is being stored, commits stay in order, and an indicator of the batch being stored
//! waits for the batch after.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use okerr::storage::{Commit, GroupResult, Pruned, Storage, StorageError};
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Engine, EngineConfig, Indicator, IndicatorName, LogLine, MemoryStorage, NewProject,
    NotificationId, OutboxEntry, Project, ProjectId, TextId, UpdateRequest,
};
use tokio::sync::{Notify, Semaphore};

/// A memory store whose batch commits wait for a permit, and which records what it is
/// asked: `read a,b` for a bulk read, `commit a,b` when a commit starts.
#[derive(Debug)]
struct Gated {
    inner: MemoryStorage,
    gate: Semaphore,
    events: Mutex<Vec<String>>,
    changed: Notify,
    /// How many of the next batch commits fail whole with a conflict (a transaction the
    /// database aborted to break a deadlock), storing nothing.
    lost_races: Mutex<usize>,
}

impl Gated {
    fn note(&self, event: String) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_waiters();
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Waits (5 s at most) until `event` has happened `times` times.
    async fn until(&self, event: &str, times: usize) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if self.events().iter().filter(|e| *e == event).count() >= times {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("not {times} {event:?} in {:?}", self.events()));
    }
}

fn names<'a>(names: impl Iterator<Item = &'a IndicatorName>) -> String {
    names.map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[rustfmt::skip]
#[async_trait]
impl Storage for Gated {
    async fn create_project(&self, p: NewProject) -> Result<Project, StorageError> { self.inner.create_project(p).await }
    async fn save_project(&self, p: &Project) -> Result<(), StorageError> { self.inner.save_project(p).await }
    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StorageError> { self.inner.project(id).await }
    async fn project_by_textid(&self, t: &str) -> Result<Option<Project>, StorageError> { self.inner.project_by_textid(t).await }
    async fn projects(&self) -> Result<Vec<Project>, StorageError> { self.inner.projects().await }
    async fn indicator(&self, p: ProjectId, n: &IndicatorName) -> Result<Option<Indicator>, StorageError> { self.inner.indicator(p, n).await }
    async fn indicators(&self, p: ProjectId) -> Result<Vec<Indicator>, StorageError> { self.inner.indicators(p).await }
    async fn count_indicators(&self, p: ProjectId) -> Result<u64, StorageError> { self.inner.count_indicators(p).await }
    async fn commit_batch(&self, g: Vec<Vec<Commit>>) -> Result<Vec<GroupResult>, StorageError> {
        self.note(format!("commit {}", names(g.iter().flatten().map(|c| &c.indicator.name))));
        self.gate.acquire().await.unwrap().forget();
        {
            let mut lost = self.lost_races.lock().unwrap();
            if *lost > 0 {
                *lost -= 1;
                return Err(StorageError::conflict("transaction", "deadlock detected"));
            }
        }
        self.inner.commit_batch(g).await
    }
    async fn indicators_by_name(&self, k: &[(ProjectId, IndicatorName)]) -> Result<Vec<Indicator>, StorageError> {
        self.note(format!("read {}", names(k.iter().map(|(_, n)| n))));
        self.inner.indicators_by_name(k).await
    }
    async fn delete_indicator(&self, p: ProjectId, n: &IndicatorName) -> Result<bool, StorageError> { self.inner.delete_indicator(p, n).await }
    async fn log(&self, p: ProjectId, n: &IndicatorName, limit: u32) -> Result<Vec<LogLine>, StorageError> { self.inner.log(p, n, limit).await }
    async fn claim_due(&self, now: DateTime<Utc>, until: DateTime<Utc>, limit: u32) -> Result<Vec<Indicator>, StorageError> { self.inner.claim_due(now, until, limit).await }
    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> { self.inner.next_deadline().await }
    async fn claim_notifications(&self, now: DateTime<Utc>, until: DateTime<Utc>, limit: u32) -> Result<Vec<OutboxEntry>, StorageError> { self.inner.claim_notifications(now, until, limit).await }
    async fn mark_delivered(&self, ids: &[NotificationId], now: DateTime<Utc>) -> Result<(), StorageError> { self.inner.mark_delivered(ids, now).await }
    async fn retry_notification(&self, id: NotificationId, at: DateTime<Utc>, error: &str) -> Result<(), StorageError> { self.inner.retry_notification(id, at, error).await }
    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StorageError> { self.inner.release_claims(now).await }
    async fn renew_notifications(&self, ids: &[NotificationId], held: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<NotificationId>, StorageError> { self.inner.renew_notifications(ids, held, until).await }
    async fn release_held_notifications(&self, held: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StorageError> { self.inner.release_held_notifications(held, now).await }
    async fn dead_letter(&self, id: NotificationId, now: DateTime<Utc>, error: &str) -> Result<(), StorageError> { self.inner.dead_letter(id, now, error).await }
    async fn prune_log(&self, keep: u32, before: DateTime<Utc>, limit: u32) -> Result<Pruned, StorageError> { self.inner.prune_log(keep, before, limit).await }
    async fn purge_outbox(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError> { self.inner.purge_outbox(before, limit).await }
    async fn outbox(&self, p: ProjectId) -> Result<Vec<OutboxEntry>, StorageError> { self.inner.outbox(p).await }
    async fn setting(&self, k: &str) -> Result<Option<String>, StorageError> { self.inner.setting(k).await }
    async fn put_setting(&self, k: &str, v: &str) -> Result<(), StorageError> { self.inner.put_setting(k, v).await }
    async fn put_setting_if_absent(&self, k: &str, v: &str) -> Result<bool, StorageError> { self.inner.put_setting_if_absent(k, v).await }
}

fn update(engine: &Engine, name: &str, details: &str) -> tokio::task::JoinHandle<Indicator> {
    let engine = engine.clone();
    let req = UpdateRequest {
        details: Some(details.to_owned()),
        ..UpdateRequest::new("p1", name, "OK")
    };
    tokio::spawn(async move {
        match engine.update(req).await.unwrap() {
            okerr::UpdateOutcome::Applied(ind) => *ind,
            other => panic!("not applied: {other:?}"),
        }
    })
}

/// A project `p1` on a gated store (one commit let through), and an engine on it storing
/// up to `pipeline` batches at once.
async fn gated(pipeline: usize) -> (Arc<Gated>, Engine) {
    let storage = Arc::new(Gated {
        inner: MemoryStorage::new(),
        gate: Semaphore::new(1),
        events: Mutex::new(Vec::new()),
        changed: Notify::new(),
        lost_races: Mutex::new(0),
    });
    storage
        .create_project(NewProject::new("p", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let engine = Engine::with_config(
        storage.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(ManualClock::at_epoch()),
        EngineConfig {
            update_pipeline: pipeline,
            ..EngineConfig::default()
        },
    );
    (storage, engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_batch_is_decided_while_one_commits_and_commits_stay_in_order() {
    let (storage, engine) = gated(1).await;
    // `a` exists (and is cached); its next commit is held at the gate.
    update(&engine, "a", "first").await.unwrap();
    let first_a = update(&engine, "a", "second");
    storage.until("commit a", 2).await;

    // While it is held: a new indicator `b` is read and decided, and `a` again waits.
    let b = update(&engine, "b", "new");
    storage.until("read b", 1).await;
    let third_a = update(&engine, "a", "third");
    assert_eq!(
        storage.events(),
        ["read a", "commit a", "commit a", "read b"],
        "b was not read while a's commit was held"
    );
    assert!(!first_a.is_finished() && !b.is_finished());

    // One commit at a time, in order: a, then b (prepared already), then a again.
    storage.gate.add_permits(1);
    assert_eq!(first_a.await.unwrap().details, "second");
    storage.until("commit b", 1).await;
    storage.gate.add_permits(2);
    assert_eq!(b.await.unwrap().details, "new");
    let a = third_a.await.unwrap();
    assert_eq!((a.details.as_str(), a.version), ("third", 3));
    assert_eq!(
        storage.events()[3..],
        ["read b", "commit b", "commit a"],
        "commits out of order"
    );

    // A new indicator waits while another one of its project is being created (the
    // indicator limit counts them), and nothing spins meanwhile.
    let c = update(&engine, "c", "new");
    storage.until("commit c", 1).await;
    let d = update(&engine, "d", "new");
    storage.until("read d", 1).await;
    assert!(
        !storage.events().contains(&"commit d".to_owned()),
        "{:?}",
        storage.events()
    );
    storage.gate.add_permits(2);
    let (c, d) = tokio::time::timeout(Duration::from_secs(5), async {
        (c.await.unwrap(), d.await.unwrap())
    })
    .await
    .expect("c and d were not stored");
    assert_eq!((c.version, d.version), (1, 1));
    assert_eq!(
        storage.events()[6..],
        ["read c", "commit c", "read d", "read d", "commit d"],
        "d is read again once c is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeper_pipelines_commit_side_by_side_but_never_one_indicator_twice() {
    let (storage, engine) = gated(2).await;
    update(&engine, "a", "first").await.unwrap();
    storage.gate.add_permits(1);
    update(&engine, "b", "first").await.unwrap();
    // Both are cached now; a's commit is held, b's starts beside it, a again waits.
    let a = update(&engine, "a", "second");
    storage.until("commit a", 2).await;
    let b = update(&engine, "b", "second");
    storage.until("commit b", 2).await;
    let again = update(&engine, "a", "third");
    assert!(!a.is_finished() && !b.is_finished());
    storage.gate.add_permits(3);
    let (a, b, again) = tokio::time::timeout(Duration::from_secs(5), async {
        (a.await.unwrap(), b.await.unwrap(), again.await.unwrap())
    })
    .await
    .expect("not stored");
    assert_eq!((a.version, b.version, again.version), (2, 2, 3));
    assert_eq!(again.details, "third");
    let events = storage.events();
    assert_eq!(
        events.iter().filter(|e| *e == "commit a").count(),
        3,
        "{events:?}"
    );
}

/// A batch whose transaction the database aborted as a whole (a deadlock with another
/// node's) stored nothing: its updates are decided again and stored once, and every
/// caller is answered OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_lost_a_race_as_a_whole_is_decided_again() {
    let (storage, engine) = gated(0).await;
    storage.gate.add_permits(100);
    update(&engine, "a", "first").await.unwrap();
    *storage.lost_races.lock().unwrap() = 2;
    let a = update(&engine, "a", "second").await.unwrap();
    let b = update(&engine, "b", "new").await.unwrap();
    assert_eq!((a.details.as_str(), a.version), ("second", 2));
    assert_eq!((b.details.as_str(), b.version), ("new", 1));
    assert_eq!(
        *storage.lost_races.lock().unwrap(),
        0,
        "both lost races were met"
    );
    let stored = storage.inner.indicators(a.project).await.unwrap();
    let versions: Vec<(String, u64)> = stored
        .iter()
        .map(|i| (i.name.to_string(), i.version))
        .collect();
    assert_eq!(
        versions,
        [("a".to_owned(), 2), ("b".to_owned(), 1)],
        "each stored once"
    );
}
