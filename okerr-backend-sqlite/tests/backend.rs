//! SQLite beyond the conformance suite: restart of a file database.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use okerr::Storage;
use okerr_backend_sqlite::SqliteStorage;

#[tokio::test]
async fn restart_keeps_deadlines_flags_and_held_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("okerr.db").display());
    let first = SqliteStorage::connect(&url).await.unwrap();
    first.migrate().await.unwrap();
    let handle = first.clone();
    okerr::conformance::restart_keeps_state(Arc::new(first), |old| async move {
        drop(old);
        handle.close().await;
        let reopened = SqliteStorage::connect(&url).await.unwrap();
        reopened.migrate().await.unwrap();
        Arc::new(reopened) as Arc<dyn Storage>
    })
    .await;
}

/// Two stores on one file (as two processes would be) and 50 writers on one indicator,
/// on a multi-threaded runtime: no `database is locked` reaches a caller, no update is
/// lost, and the versions count every update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_file_never_see_locked() {
    use okerr::testing::{ManualClock, RecordingNotifier};
    use okerr::{Engine, IndicatorName, NewProject, TextId, UpdateOutcome, UpdateRequest};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("okerr.db").display());
    let one = SqliteStorage::connect(&url).await.unwrap();
    one.migrate().await.unwrap();
    let two = SqliteStorage::connect(&url).await.unwrap();
    let project = one
        .create_project(NewProject::new("p", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let engines: Vec<Engine> = [one, two]
        .into_iter()
        .map(|s| {
            Engine::new(
                Arc::new(s),
                Arc::new(RecordingNotifier::new()),
                Arc::new(clock.clone()),
            )
        })
        .collect();
    engines[0]
        .update(UpdateRequest::new("p1", "hot", "OK"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let engine = engines[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let req = UpdateRequest {
                details: Some(format!("writer {i}")),
                ..UpdateRequest::new("p1", "hot", if i % 5 == 0 { "ERR" } else { "OK" })
            };
            match engine.update(req).await {
                Ok(UpdateOutcome::Applied(ind)) => ind.version,
                other => panic!("writer {i}: {other:?}"),
            }
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=51).collect::<Vec<u64>>());
    let name = IndicatorName::parse("hot").unwrap();
    let log = engines[1]
        .storage()
        .log(project.id, &name, 1000)
        .await
        .unwrap();
    for i in 0..50 {
        let details = format!(": writer {i}");
        assert!(
            log.iter().any(|l| l.message.ends_with(&details)),
            "writer {i}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_notification_is_parked() {
    let storage = SqliteStorage::connect("sqlite::memory:").await.unwrap();
    storage.migrate().await.unwrap();
    okerr_sql::check_unreadable_notifications_are_parked!(storage);
}

/// A stream of writes far larger than the WAL's checkpoint mark (8,000 pages) leaves the
/// WAL no larger than the mark and one batch: the checkpointer beside the writer and the
/// writer's own checkpoints keep starting it over, and nothing written is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_a_stream_of_writes() {
    use okerr::testing::{ManualClock, RecordingNotifier};
    use okerr::{Engine, EngineConfig, IndicatorName, NewProject, Settings, TextId, UpdateRequest};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okerr.db");
    let wal = dir.path().join("okerr.db-wal");
    let storage = SqliteStorage::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    let project = storage
        .create_project(NewProject::new("p", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let engine = Engine::with_config(
        Arc::new(storage.clone()),
        Arc::new(RecordingNotifier::new()),
        Arc::new(ManualClock::at_epoch()),
        EngineConfig {
            settings: Settings::default().unlimited(),
            ..EngineConfig::default()
        },
    );
    let (indicators, per_message, messages) = (5_000, 250, 400);
    let mut largest = 0;
    for m in 0..messages {
        let updates = (0..per_message)
            .map(|i| {
                let name = format!("i{}", (m * 7_919 + i * 97) % indicators);
                UpdateRequest {
                    details: Some(format!("message {m}")),
                    ..UpdateRequest::new("p1", &name, "OK")
                }
            })
            .collect();
        engine.update_all(updates).await.unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // 8,000 pages of the mark, and the pages of one message beyond it (each a frame of a
    // 4,096-byte page and its 24-byte header).
    let bound = (8_000 + 2 * per_message as u64) * (4_096 + 24);
    assert!(largest > 0, "the database is in WAL mode");
    assert!(
        largest <= bound,
        "the WAL grew to {largest} bytes, more than {bound}"
    );
    let name =
        IndicatorName::parse(&format!("i{}", ((messages - 1) * 7_919) % indicators)).unwrap();
    let last = storage.indicator(project.id, &name).await.unwrap().unwrap();
    assert_eq!(last.details, format!("message {}", messages - 1));
}

/// A batch of changes to stored indicators goes to the writer as one script, with a
/// transaction of its own. A caller that gives up once the script is sent (the future is
/// dropped after its first poll) leaves nothing half done: the next write finds the writer
/// out of that transaction, and the indicator's state and its log agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_given_up_in_its_script_leaves_the_writer_usable() {
    use chrono::{TimeZone, Utc};
    use okerr::{
        CheckMethod, Commit, Indicator, IndicatorName, LogKind, LogLine, NewProject, Policy,
        Settings, TextId,
    };

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("okerr.db").display());
    let storage = SqliteStorage::connect(&url).await.unwrap();
    storage.migrate().await.unwrap();
    let project = storage
        .create_project(NewProject::new("p", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
    let name = IndicatorName::parse("a").unwrap();
    let commit = |indicator: Indicator, message: &str, time| Commit {
        indicator,
        log: vec![LogLine {
            time,
            kind: LogKind::Update,
            message: message.into(),
        }],
        notifications: Vec::new(),
        cancel: Vec::new(),
        project_version: None,
    };
    let new = Indicator::new(
        project.id,
        name.clone(),
        &Policy::default_policy(),
        CheckMethod::heartbeat(),
        &Settings::default(),
        at(0),
    );
    let results = storage
        .commit_batch(vec![vec![commit(new, "created", at(0))]])
        .await
        .unwrap();
    let stored = results.into_iter().next().unwrap().unwrap().remove(0);

    for round in 1..=20 {
        let current = storage.indicator(project.id, &name).await.unwrap().unwrap();
        let mut next = current.clone();
        next.details = format!("given up {round}");
        let given_up = storage.commit_batch(vec![vec![commit(next, "given up", at(round))]]);
        // One poll sends the script; then the caller is gone.
        let _ = tokio::time::timeout(std::time::Duration::ZERO, given_up).await;

        // The script given up may still be on the writer's thread when the indicator is
        // read, and commit after: then the next commit meets a newer version, once.
        let mut conflicts = 0;
        let (now, written) = loop {
            let now = storage.indicator(project.id, &name).await.unwrap().unwrap();
            let mut after = now.clone();
            after.details = format!("after {round}");
            let results = storage
                .commit_batch(vec![vec![commit(after, "after", at(round))]])
                .await
                .unwrap();
            match results.into_iter().next().unwrap() {
                Ok(mut written) => break (now, written.remove(0)),
                Err(e) if e.is_conflict() && conflicts == 0 => conflicts += 1,
                Err(e) => panic!("round {round}: {e:?}"),
            }
        };
        assert_eq!(written.version, now.version + 1, "round {round}");
        // The indicator's version counts exactly the commits its log holds.
        let log = storage.log(project.id, &name, 1_000).await.unwrap();
        assert_eq!(
            written.version - stored.version + 1,
            log.len() as u64,
            "round {round}: {log:?}"
        );
    }
}
