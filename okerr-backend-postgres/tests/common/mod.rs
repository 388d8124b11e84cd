//! A fresh PostgreSQL schema per test, or a skip when no server is configured.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use okerr_backend_postgres::PostgresStorage;

/// The server to test against, from `OKERR_TEST_PG_URL`. Without it the test is skipped
/// with a message, unless `OKERR_REQUIRE_PG=1` (as in CI), which makes it fail.
pub fn pg_url() -> Option<String> {
    match std::env::var("OKERR_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("OKERR_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!("OKERR_REQUIRE_PG=1 but OKERR_TEST_PG_URL is not set");
            }
            eprintln!("skipping PostgreSQL test: set OKERR_TEST_PG_URL");
            None
        }
    }
}

/// A schema of its own for one test: `okerr_t_<pid>_<n>`, dropped first if a former run
/// of the same process id left it behind.
pub fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "okerr_t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A migrated store in a fresh schema.
pub async fn storage_in(url: &str, schema: &str) -> PostgresStorage {
    let admin = PostgresStorage::connect(url).await.unwrap();
    if schema.ends_with("_0") {
        drop_stale_schemas(&admin).await;
    }
    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(admin.pool())
        .await
        .unwrap();
    admin.close().await;
    let storage = PostgresStorage::connect_in_schema(url, schema)
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    storage
}

/// A migrated store in a fresh schema, or `None` to skip.
pub async fn storage() -> Option<PostgresStorage> {
    let url = pg_url()?;
    Some(storage_in(&url, &fresh_schema()).await)
}

/// Drops the test schemas of test processes that are gone (their pid has no `/proc`
/// entry), so the test database does not fill up run after run.
pub async fn drop_stale_schemas(admin: &PostgresStorage) {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'okerr_t_%'")
            .fetch_all(admin.pool())
            .await
            .unwrap();
    for (schema,) in rows {
        let pid = schema.split('_').nth(2).unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            // Another test process may be dropping it too.
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(admin.pool())
                .await;
        }
    }
}
