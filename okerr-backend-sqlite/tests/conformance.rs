//! The storage conformance suite of okerr-lib, on SQLite in memory and in a WAL file.
#![allow(clippy::unwrap_used)]

use okerr_backend_sqlite::SqliteStorage;

async fn in_memory() -> Option<SqliteStorage> {
    let storage = SqliteStorage::connect("sqlite::memory:").await.unwrap();
    storage.migrate().await.unwrap();
    Some(storage)
}

okerr::storage_conformance!(in_memory());

mod file {
    use super::*;

    /// A fresh database file; the directory is kept for the life of the test process.
    async fn in_file() -> Option<SqliteStorage> {
        let dir = tempfile::tempdir().unwrap().keep();
        let url = format!("sqlite://{}", dir.join("okerr.db").display());
        let storage = SqliteStorage::connect(&url).await.unwrap();
        storage.migrate().await.unwrap();
        Some(storage)
    }

    okerr::storage_conformance!(in_file());
}
