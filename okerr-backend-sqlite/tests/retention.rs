//! Bounded growth on SQLite through the engine: 100,000 updates of one indicator leave its
//! log at the bound (`Retention::log_lines`, 1,000 by default), the newest lines kept.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::TimeDelta;
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{Engine, IndicatorName, NewProject, Storage, TextId, UpdateRequest};
use okerr_backend_sqlite::SqliteStorage;

const UPDATES: usize = 100_000;
/// Updates per message: one commit each, so the test stays fast.
const PER_MESSAGE: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_updates_keep_the_log_at_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("okerr.db").display());
    let storage = SqliteStorage::connect(&url).await.unwrap();
    storage.migrate().await.unwrap();
    let storage: Arc<dyn Storage> = Arc::new(storage);
    let project = storage
        .create_project(NewProject::new("p", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let engine = Engine::new(
        storage.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(clock.clone()),
    );
    let bound = engine.config().retention.log_lines as usize;
    assert_eq!(bound, 1000, "the default this test states");
    let name = IndicatorName::parse("flood").unwrap();
    let mut most = 0;
    for round in 0..UPDATES / PER_MESSAGE {
        let reqs = (0..PER_MESSAGE)
            .map(|i| {
                let n = round * PER_MESSAGE + i;
                let status = if n.is_multiple_of(2) { "OK" } else { "ERR" };
                UpdateRequest {
                    details: Some(format!("update {n}")),
                    ..UpdateRequest::new("p1", "flood", status)
                }
            })
            .collect();
        engine.update_all(reqs).await.unwrap();
        clock.advance(TimeDelta::seconds(1));
        // The scheduler's prune step, as its tick runs it every minute.
        let report = engine.prune().await.unwrap();
        assert!(!report.more, "one pass works off a round: {report:?}");
        let lines = storage
            .log(project.id, &name, u32::MAX)
            .await
            .unwrap()
            .len();
        assert!(lines <= bound, "round {round}: {lines} lines");
        most = most.max(lines);
    }
    let log = storage.log(project.id, &name, u32::MAX).await.unwrap();
    assert_eq!(most, bound);
    assert_eq!(log.len(), bound, "the log is at its bound");
    assert!(
        log.last()
            .unwrap()
            .message
            .contains(&format!("update {}", UPDATES - 1)),
        "the newest line is kept: {:?}",
        log.last()
    );
    let sqlite = SqliteStorage::connect(&url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(
        rows as usize, bound,
        "no line beyond the bound stays in the table"
    );
}
