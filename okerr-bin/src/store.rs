//! Opens the storage a database URL names, and runs its migrations.

use std::sync::Arc;

use okerr::Storage;

use crate::Error;

/// The storage at `url`, migrated: `sqlite:…` (or a plain file path) or `postgres://…`.
pub(crate) async fn open(url: &str) -> Result<Arc<dyn Storage>, Error> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return open_postgres(url).await;
    }
    let url = if url.starts_with("sqlite:") {
        url.to_owned()
    } else {
        format!("sqlite://{url}")
    };
    open_sqlite(&url).await
}

/// Whether the storage at `url` has one node only (SQLite): the claims in it are this
/// server's own.
pub(crate) fn is_single_node(url: &str) -> bool {
    !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str) -> Result<Arc<dyn Storage>, Error> {
    let storage = okerr_backend_sqlite::SqliteStorage::connect(url).await?;
    storage.migrate().await?;
    Ok(Arc::new(storage))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(url: &str) -> Result<Arc<dyn Storage>, Error> {
    Err(Error::Usage(format!(
        "{url}: built without the sqlite feature"
    )))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn Storage>, Error> {
    let storage = okerr_backend_postgres::PostgresStorage::connect(url).await?;
    storage.migrate().await?;
    Ok(Arc::new(storage))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str) -> Result<Arc<dyn Storage>, Error> {
    Err(Error::Usage(format!(
        "{url}: built without the postgres feature"
    )))
}
