//! The databases the benchmark measures: a fresh, migrated database of one backend, what
//! it is (version, durability settings), sqlx round trips, the set-based commit (raw SQL on
//! the backend's own tables) and the query plans of the scheduler.

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use okerr::{Commit, Indicator, Storage};
use okerr_backend_postgres::PostgresStorage;
use okerr_backend_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use okerr_backend_postgres::sqlx::{self, Row as _};
use okerr_backend_sqlite::SqliteStorage;
use okerr_backend_sqlite::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::Result;

/// The schema the benchmark creates, and drops before and after.
const SCHEMA: &str = "okerr_bench";

/// The set-based `UPDATE` on SQLite: one statement for the whole batch, from a JSON array.
const SQLITE_SET_UPDATE: &str = "UPDATE indicators
     SET version = j.value ->> 'v', due_at = j.value ->> 'due', data = j.value ->> 'data'
     FROM json_each(?) AS j
     WHERE indicators.id = j.value ->> 'id' AND indicators.version = (j.value ->> 'v') - 1";
/// The set-based log `INSERT` on SQLite.
const SQLITE_SET_LOG: &str = "INSERT INTO log (indicator_id, time, kind, message)
     SELECT j.value ->> 'i', j.value ->> 't', j.value ->> 'k', j.value ->> 'm'
     FROM json_each(?) AS j";
/// The set-based `UPDATE` on PostgreSQL: one statement for the whole batch, from arrays.
const PG_SET_UPDATE: &str = "UPDATE indicators i
     SET version = u.version, due_at = u.due, data = u.data
     FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS u(id, version, due, data)
     WHERE i.id = u.id AND i.version = u.version - 1";
/// The set-based log `INSERT` on PostgreSQL.
const PG_SET_LOG: &str = "INSERT INTO log (indicator_id, time, kind, message)
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[])";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh, migrated database of one backend.
#[derive(Debug)]
pub(crate) enum Db {
    Sqlite {
        storage: SqliteStorage,
        path: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        storage: PostgresStorage,
        url: String,
    },
}

/// Times `$samples` runs of `$body` and gives the mean.
macro_rules! mean_of {
    ($samples:expr, $body:expr) => {{
        let samples: usize = $samples;
        let started = Instant::now();
        for _ in 0..samples {
            $body;
        }
        started.elapsed() / u32::try_from(samples.max(1))?
    }};
}

impl Db {
    /// A fresh database of `backend`: SQLite in a temporary directory, PostgreSQL in the
    /// schema `okerr_bench` of `pg_url`, dropped first.
    pub(crate) async fn fresh(backend: Backend, pg_url: &str) -> Result<Db> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("okerr-bench.db").display().to_string();
                let storage = SqliteStorage::connect(&format!("sqlite://{path}")).await?;
                storage.migrate().await?;
                Ok(Db::Sqlite {
                    storage,
                    path,
                    _dir: dir,
                })
            }
            Backend::Postgres => {
                drop_schema(pg_url).await?;
                let storage = PostgresStorage::connect_in_schema(pg_url, SCHEMA).await?;
                storage.migrate().await?;
                Ok(Db::Postgres {
                    storage,
                    url: pg_url.to_owned(),
                })
            }
        }
    }

    /// The database as okerr's storage.
    pub(crate) fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Db::Sqlite { storage, .. } => Arc::new(storage.clone()),
            Db::Postgres { storage, .. } => Arc::new(storage.clone()),
        }
    }

    /// The database's version and durability settings, read from the database itself.
    pub(crate) async fn describe(&self) -> Result<String> {
        match self {
            Db::Sqlite { storage, path, .. } => {
                let pool = storage.pool();
                let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(pool)
                    .await?;
                let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(pool)
                    .await?;
                let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(pool)
                    .await?;
                let synchronous = match synchronous {
                    0 => "OFF",
                    1 => "NORMAL",
                    2 => "FULL",
                    3 => "EXTRA",
                    _ => "?",
                };
                Ok(format!(
                    "SQLite {version} (bundled), journal_mode={journal}, \
                     synchronous={synchronous}, file `{path}` on the root ext4 disk (one \
                     writer connection, 4 readers)"
                ))
            }
            Db::Postgres { storage, .. } => {
                let pool = storage.pool();
                let version: String = sqlx::query_scalar("SHOW server_version")
                    .fetch_one(pool)
                    .await?;
                let mut text = format!("PostgreSQL {version} on the same machine");
                for setting in [
                    "fsync",
                    "synchronous_commit",
                    "wal_sync_method",
                    "full_page_writes",
                    "shared_buffers",
                ] {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
                        .fetch_one(pool)
                        .await?;
                    let value: String = row.try_get(0)?;
                    write!(text, ", {setting}={value}")?;
                }
                text.push_str(" (pool of 8 connections, sqlx defaults)");
                Ok(text)
            }
        }
    }

    /// Mean round trips through sqlx: `SELECT 1` on a connection held throughout, through
    /// the backend's pool (acquire, the pool's `test_before_acquire` ping, the query, the
    /// return to the pool) and through a one-connection pool without the ping; and
    /// `SELECT length($1)` with a 1 KiB and a 256 KiB text on the held connection.
    pub(crate) async fn round_trips(&self, samples: usize) -> Result<[Duration; 5]> {
        let small = "x".repeat(1 << 10);
        let large = "x".repeat(1 << 18);
        let few = samples.div_ceil(20);
        match self {
            Db::Sqlite { storage, path, .. } => {
                let pool = storage.pool();
                let via_pool = mean_of!(samples, sqlx::query("SELECT 1").execute(pool).await?);
                let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?;
                let unpinged = SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                let no_ping = mean_of!(samples, sqlx::query("SELECT 1").execute(&unpinged).await?);
                unpinged.close().await;
                let mut conn = pool.acquire().await?;
                let held = mean_of!(samples, sqlx::query("SELECT 1").execute(&mut *conn).await?);
                let length = |text: &str| sqlx::query("SELECT length(?)").bind(text.to_owned());
                let small = mean_of!(few, length(&small).execute(&mut *conn).await?);
                let large = mean_of!(few, length(&large).execute(&mut *conn).await?);
                Ok([held, via_pool, no_ping, small, large])
            }
            Db::Postgres { storage, url } => {
                let pool = storage.pool();
                let via_pool = mean_of!(samples, sqlx::query("SELECT 1").execute(pool).await?);
                let unpinged = PgPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(PgConnectOptions::from_str(url)?)
                    .await?;
                let no_ping = mean_of!(samples, sqlx::query("SELECT 1").execute(&unpinged).await?);
                unpinged.close().await;
                let mut conn = pool.acquire().await?;
                let held = mean_of!(samples, sqlx::query("SELECT 1").execute(&mut *conn).await?);
                let length = |text: &str| sqlx::query("SELECT length($1)").bind(text.to_owned());
                let small = mean_of!(few, length(&small).execute(&mut *conn).await?);
                let large = mean_of!(few, length(&large).execute(&mut *conn).await?);
                Ok([held, via_pool, no_ping, small, large])
            }
        }
    }

    /// The same storage through a pool that does not ping before each acquire, where the
    /// backend lets one build the pool (PostgreSQL).
    pub(crate) async fn without_ping(&self) -> Result<Option<PostgresStorage>> {
        match self {
            Db::Sqlite { .. } => Ok(None),
            Db::Postgres { url, .. } => {
                let options = PgConnectOptions::from_str(url)?.options([("search_path", SCHEMA)]);
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Ok(Some(PostgresStorage::new(pool)))
            }
        }
    }

    /// Commits updates of existing indicators that only add log lines, set-based: one
    /// `UPDATE` and one `INSERT` for the whole batch, in one transaction. All or nothing;
    /// returns the indicators as stored.
    pub(crate) async fn commit_set_based(&self, commits: &[Commit]) -> Result<Vec<Indicator>> {
        let mut stored = Vec::with_capacity(commits.len());
        let mut log = Vec::new();
        for commit in commits {
            if commit.indicator.version == 0
                || !commit.notifications.is_empty()
                || !commit.cancel.is_empty()
            {
                return Err("set-based commits only update indicators and add log lines".into());
            }
            let mut ind = commit.indicator.clone();
            ind.version += 1;
            for line in &commit.log {
                log.push((
                    ind.id.0,
                    line.time.timestamp_micros(),
                    line.kind.as_str(),
                    line.message.as_str(),
                ));
            }
            stored.push(ind);
        }
        let ids: Vec<i64> = stored.iter().map(|i| i.id.0).collect();
        let versions = stored
            .iter()
            .map(|i| i64::try_from(i.version))
            .collect::<Result<Vec<i64>, _>>()?;
        let dues: Vec<Option<i64>> = stored
            .iter()
            .map(|i| i.due_at().map(|t| t.timestamp_micros()))
            .collect();
        let data = stored
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<String>, _>>()?;
        let updated = match self {
            Db::Sqlite { storage, .. } => {
                let rows: Vec<serde_json::Value> = (0..stored.len())
                    .map(|k| {
                        serde_json::json!({
                            "id": ids[k], "v": versions[k], "due": dues[k], "data": data[k],
                        })
                    })
                    .collect();
                let lines: Vec<serde_json::Value> = log
                    .iter()
                    .map(|(i, t, k, m)| serde_json::json!({"i": i, "t": t, "k": k, "m": m}))
                    .collect();
                let mut tx = storage.pool().begin_with("BEGIN IMMEDIATE").await?;
                let updated = sqlx::query(SQLITE_SET_UPDATE)
                    .bind(serde_json::to_string(&rows)?)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(SQLITE_SET_LOG)
                    .bind(serde_json::to_string(&lines)?)
                    .execute(&mut *tx)
                    .await?;
                if updated == stored.len() as u64 {
                    tx.commit().await?;
                }
                updated
            }
            Db::Postgres { storage, .. } => {
                let mut tx = storage.pool().begin().await?;
                let updated = sqlx::query(PG_SET_UPDATE)
                    .bind(&ids)
                    .bind(&versions)
                    .bind(&dues)
                    .bind(&data)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(PG_SET_LOG)
                    .bind(log.iter().map(|l| l.0).collect::<Vec<_>>())
                    .bind(log.iter().map(|l| l.1).collect::<Vec<_>>())
                    .bind(log.iter().map(|l| l.2).collect::<Vec<_>>())
                    .bind(log.iter().map(|l| l.3).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await?;
                if updated == stored.len() as u64 {
                    tx.commit().await?;
                }
                updated
            }
        };
        if updated != stored.len() as u64 {
            return Err(format!(
                "set-based commit updated {updated} of {} indicators",
                stored.len()
            )
            .into());
        }
        Ok(stored)
    }

    /// The backend's plans of `claim_due` and `next_deadline`, one line each.
    pub(crate) async fn plans(&self) -> Result<Vec<(&'static str, String)>> {
        let plans = match self {
            Db::Sqlite { storage, .. } => storage.scheduler_query_plans().await?,
            Db::Postgres { storage, .. } => storage.scheduler_query_plans().await?,
        };
        Ok(plans
            .into_iter()
            .filter(|(name, _)| *name != "claim_notifications")
            .map(|(name, lines)| {
                let lines: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
                (name, lines.join(" / "))
            })
            .collect())
    }

    /// Closes the pools; drops PostgreSQL's schema.
    pub(crate) async fn close(self) -> Result<()> {
        match self {
            Db::Sqlite { storage, .. } => {
                storage.close().await;
                Ok(())
            }
            Db::Postgres { storage, url } => {
                storage.close().await;
                drop_schema(&url).await
            }
        }
    }
}

/// Drops the benchmark's schema of the PostgreSQL database at `url`.
async fn drop_schema(url: &str) -> Result<()> {
    let admin = PostgresStorage::connect(url).await?;
    let drop = format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(admin.pool())
        .await?;
    admin.close().await;
    Ok(())
}
