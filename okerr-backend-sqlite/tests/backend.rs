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
