//! okerr's [`Storage`] on PostgreSQL: several `okerr serve` nodes on one database.
//!
//! Every decision is one transaction guarded by the indicator's version; due indicators and
//! released notifications are claimed with `FOR UPDATE SKIP LOCKED` through partial
//! indexes on their deadline columns, so nodes share the work and each expiry happens once.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use okerr_backend_postgres::PostgresStorage;
//! use okerr::{NewProject, Storage, TextId};
//!
//! let storage = PostgresStorage::connect("postgres://postgres@127.0.0.1/okerr").await?;
//! storage.migrate().await?;
//! storage.create_project(NewProject::new("demo", TextId::parse("demo")?)).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use okerr::storage::columns::{self, from_micros, micros};
use okerr::storage::{Commit, Storage, StorageError};
use okerr::{
    Indicator, IndicatorId, IndicatorName, LogKind, LogLine, NewProject, NotificationId,
    OutboxEntry, Project, ProjectId,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

pub use sqlx;

/// The embedded migrations of this backend.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const BACKEND: &str = "postgres";

/// Claims up to `$3` indicators due by `$1` until `$2`, earliest first, skipping rows
/// another node holds: a range scan of the partial index `indicators_due`.
const CLAIM_DUE_SQL: &str = "WITH due AS (
                 SELECT id, due_at FROM indicators
                 WHERE due_at IS NOT NULL AND due_at <= $1
                 ORDER BY due_at LIMIT $3
                 FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE indicators i SET due_at = $2 FROM due WHERE i.id = due.id
                 RETURNING i.id, i.version, i.data, due.due_at AS was_due
             )
             SELECT id, version, data FROM claimed ORDER BY was_due, id";

/// The earliest deadline of an indicator and of a notification: the first entry of the
/// partial indexes `indicators_due` and `outbox_available`.
const NEXT_DEADLINE_SQL: &str =
    "SELECT (SELECT MIN(due_at) FROM indicators WHERE due_at IS NOT NULL),
                    (SELECT MIN(available_at) FROM outbox WHERE available_at IS NOT NULL)";

/// Claims up to `$3` notifications released by `$1` until `$2`, skipping rows another
/// node holds: a range scan of the partial index `outbox_available`.
const CLAIM_NOTIFICATIONS_SQL: &str = "WITH released AS (
                 SELECT id FROM outbox
                 WHERE available_at IS NOT NULL AND available_at <= $1
                 ORDER BY available_at, id LIMIT $3
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE outbox o SET available_at = $2, claims = claims + 1
             FROM released WHERE o.id = released.id
             RETURNING o.id, o.indicator_id, o.attempts, o.delivered_at, o.last_error, o.data";

/// okerr storage on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    /// Connects to the database at `url` (`postgres://user@host/db`).
    ///
    /// # Errors
    /// When the URL is invalid or the database does not answer.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        PostgresStorage::connect_with(options).await
    }

    /// Connects to the database at `url` with the tables in `schema`, which is created when
    /// missing: several okerr installations (or tests) can share one database.
    ///
    /// # Errors
    /// When the URL or the schema name is invalid, or the database does not answer.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StorageError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(backend(std::io::Error::other(format!(
                "invalid schema name '{schema}': use [a-z_][a-z0-9_]*"
            ))));
        }
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        let create = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&admin)
            .await
            .map_err(backend)?;
        admin.close().await;
        PostgresStorage::connect_with(options.options([("search_path", schema)])).await
    }

    /// Connects with options of your own.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Ok(PostgresStorage { pool })
    }

    /// Uses a pool you built.
    pub fn new(pool: PgPool) -> Self {
        PostgresStorage { pool }
    }

    /// Runs the embedded migrations.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await.map_err(backend)
    }

    /// The embedded migrations.
    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// Closes every connection; in-flight work finishes first.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool, for tools and tests (e.g. `EXPLAIN`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `EXPLAIN` of the scheduler's queries (claim due indicators, claim released
    /// notifications, next deadline), one line of the plan per entry. On a table with
    /// statistics they are index scans of the partial indexes `indicators_due` and
    /// `outbox_available`; on a tiny table the planner may prefer a sequential scan.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn scheduler_query_plans(
        &self,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StorageError> {
        let mut plans = Vec::new();
        for (name, sql, binds) in [
            ("claim_due", CLAIM_DUE_SQL, 3),
            ("claim_notifications", CLAIM_NOTIFICATIONS_SQL, 3),
            ("next_deadline", NEXT_DEADLINE_SQL, 0),
        ] {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")));
            for _ in 0..binds {
                query = query.bind(0_i64);
            }
            let rows = query.fetch_all(&self.pool).await.map_err(backend)?;
            plans.push((name, rows.iter().map(|r| r.get::<String, _>(0)).collect()));
        }
        Ok(plans)
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StorageError> {
        self.pool.begin().await.map_err(backend)
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::backend(BACKEND, e)
}

/// Maps sqlx's errors: a unique violation is a conflict, a missing row not found.
fn map_sqlx(
    entity: &'static str,
    key: impl std::fmt::Display,
) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |e| match &e {
        sqlx::Error::RowNotFound => StorageError::not_found(entity, key),
        sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            StorageError::conflict(entity, key)
        }
        _ => backend(e),
    }
}

async fn write_textids(
    tx: &mut Transaction<'static, Postgres>,
    project: &Project,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM textids WHERE project_id = $1")
        .bind(project.id.0)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    for (position, textid) in project.textids().enumerate() {
        sqlx::query("INSERT INTO textids (textid, project_id, position) VALUES ($1, $2, $3)")
            .bind(textid.as_str())
            .bind(project.id.0)
            .bind(position as i64)
            .execute(&mut **tx)
            .await
            .map_err(map_sqlx("textid", textid))?;
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StorageError> {
    columns::to_json(BACKEND, v)
}

fn project_from_row(id: i64, data: &str) -> Result<Project, StorageError> {
    columns::project(BACKEND, id, data)
}

fn indicator_from_row(row: &PgRow) -> Result<Indicator, StorageError> {
    columns::indicator(
        BACKEND,
        row.get("id"),
        row.get("version"),
        row.get::<&str, _>("data"),
    )
}

fn entry_from_row(row: &PgRow) -> Result<OutboxEntry, StorageError> {
    columns::outbox_entry(
        BACKEND,
        columns::OutboxRow {
            id: row.get("id"),
            indicator_id: row.get("indicator_id"),
            attempts: row.get("attempts"),
            delivered_at: row.get("delivered_at"),
            last_error: row.get("last_error"),
            data: row.get("data"),
        },
    )
}

/// Applies one commit inside `tx`, all or nothing (a savepoint undoes a failed one).
async fn apply(
    tx: &mut Transaction<'static, Postgres>,
    commit: &Commit,
) -> Result<Indicator, StorageError> {
    sqlx::query("SAVEPOINT okerr_commit")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    let result = apply_inner(tx, commit).await;
    let end = if result.is_ok() {
        "RELEASE SAVEPOINT okerr_commit"
    } else {
        "ROLLBACK TO SAVEPOINT okerr_commit"
    };
    sqlx::query(end).execute(&mut **tx).await.map_err(backend)?;
    if result.is_err() {
        sqlx::query("RELEASE SAVEPOINT okerr_commit")
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    result
}

async fn apply_inner(
    tx: &mut Transaction<'static, Postgres>,
    commit: &Commit,
) -> Result<Indicator, StorageError> {
    let ind = &commit.indicator;
    let conflict = || StorageError::conflict("indicator", &ind.name);
    let mut stored = ind.clone();
    stored.version = ind.version + 1;
    let version = i64::try_from(stored.version).map_err(|_| conflict())?;
    let due = stored.due_at().map(micros);
    let data = to_json(&stored)?;
    let id = if ind.version == 0 {
        let row = sqlx::query(
            "INSERT INTO indicators (project_id, name, version, due_at, data) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
        )
        .bind(ind.project.0)
        .bind(ind.name.as_str())
        .bind(version)
        .bind(due)
        .bind(&data)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
        row.map(|r| r.get::<i64, _>(0)).ok_or_else(conflict)?
    } else {
        let done = sqlx::query(
            "UPDATE indicators SET version = $1, due_at = $2, data = $3, name = $4
             WHERE id = $5 AND version = $6",
        )
        .bind(version)
        .bind(due)
        .bind(&data)
        .bind(ind.name.as_str())
        .bind(ind.id.0)
        .bind(version - 1)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() != 1 {
            return Err(conflict());
        }
        ind.id.0
    };
    stored.id = IndicatorId(id);
    for held in &commit.cancel {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE indicator_id = $1 AND reduction_key = $2 AND release_at = $3
             AND delivered_at IS NULL AND claims = 0",
        )
        .bind(id)
        .bind(&held.key)
        .bind(micros(held.release_at))
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StorageError::conflict("held alert", &held.key));
        }
    }
    for line in &commit.log {
        sqlx::query("INSERT INTO log (indicator_id, time, kind, message) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(micros(line.time))
            .bind(line.kind.as_str())
            .bind(&line.message)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    for n in &commit.notifications {
        sqlx::query(
            "INSERT INTO outbox (project_id, indicator_id, release_at, available_at, reduction_key, data)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(n.project.0)
        .bind(id)
        .bind(micros(n.release_at))
        .bind(micros(n.release_at))
        .bind(n.reduction_key.as_deref())
        .bind(to_json(n)?)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    }
    Ok(stored)
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn create_project(&self, project: NewProject) -> Result<Project, StorageError> {
        let mut tx = self.begin().await?;
        let placeholder = project.clone().with_id(ProjectId(0));
        let id: i64 = sqlx::query("INSERT INTO projects (data) VALUES ($1) RETURNING id")
            .bind(to_json(&placeholder)?)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
            .get(0);
        let project = project.with_id(ProjectId(id));
        write_textids(&mut tx, &project).await?;
        tx.commit().await.map_err(backend)?;
        Ok(project)
    }

    async fn save_project(&self, project: &Project) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        let saved = Project {
            version: project.version + 1,
            ..project.clone()
        };
        let version = i64::try_from(project.version).map_err(backend)?;
        let done = sqlx::query(
            "UPDATE projects SET data = $1 WHERE id = $2 AND COALESCE((data::jsonb ->> 'version')::bigint, 0) = $3",
        )
        .bind(to_json(&saved)?)
        .bind(project.id.0)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM projects WHERE id = $1")
                .bind(project.id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            return Err(match exists {
                Some(_) => StorageError::conflict("project", project.id),
                None => StorageError::not_found("project", project.id),
            });
        }
        write_textids(&mut tx, project).await?;
        tx.commit().await.map_err(backend)
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StorageError> {
        let row = sqlx::query("SELECT data FROM projects WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(row) => Ok(Some(project_from_row(id.0, row.get(0))?)),
            None => Ok(None),
        }
    }

    async fn project_by_textid(&self, textid: &str) -> Result<Option<Project>, StorageError> {
        let row = sqlx::query(
            "SELECT p.id, p.data FROM textids t JOIN projects p ON p.id = t.project_id
             WHERE t.textid = $1",
        )
        .bind(textid)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        match row {
            Some(row) => Ok(Some(project_from_row(row.get(0), row.get(1))?)),
            None => Ok(None),
        }
    }

    async fn projects(&self) -> Result<Vec<Project>, StorageError> {
        let rows = sqlx::query("SELECT id, data FROM projects ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut projects = Vec::with_capacity(rows.len());
        for row in rows {
            projects.push(project_from_row(row.get(0), row.get(1))?);
        }
        Ok(projects)
    }

    async fn indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<Option<Indicator>, StorageError> {
        sqlx::query("SELECT id, version, data FROM indicators WHERE project_id = $1 AND name = $2")
            .bind(project.0)
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(|row| indicator_from_row(&row))
            .transpose()
    }

    async fn indicators(&self, project: ProjectId) -> Result<Vec<Indicator>, StorageError> {
        sqlx::query("SELECT id, version, data FROM indicators WHERE project_id = $1 ORDER BY name")
            .bind(project.0)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(indicator_from_row)
            .collect()
    }

    async fn count_indicators(&self, project: ProjectId) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM indicators WHERE project_id = $1")
            .bind(project.0)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn commit(&self, commit: &Commit) -> Result<Indicator, StorageError> {
        let mut tx = self.begin().await?;
        let stored = apply(&mut tx, commit).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn commit_many(
        &self,
        commits: &[Commit],
    ) -> Result<Vec<Result<Indicator, StorageError>>, StorageError> {
        let mut tx = self.begin().await?;
        let mut results = Vec::with_capacity(commits.len());
        for commit in commits {
            results.push(apply(&mut tx, commit).await);
        }
        tx.commit().await.map_err(backend)?;
        Ok(results)
    }

    async fn delete_indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM indicators WHERE project_id = $1 AND name = $2")
            .bind(project.0)
            .bind(name.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn log(
        &self,
        project: ProjectId,
        name: &IndicatorName,
        limit: u32,
    ) -> Result<Vec<LogLine>, StorageError> {
        let rows = sqlx::query(
            "SELECT l.time, l.kind, l.message FROM log l
             JOIN indicators i ON i.id = l.indicator_id
             WHERE i.project_id = $1 AND i.name = $2
             ORDER BY l.id DESC LIMIT $3",
        )
        .bind(project.0)
        .bind(name.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .rev()
            .map(|r| {
                Ok(LogLine {
                    time: from_micros(r.get(0)),
                    kind: LogKind::from_str(r.get::<&str, _>(1))
                        .map_err(|e| backend(std::io::Error::other(e)))?,
                    message: r.get(2),
                })
            })
            .collect()
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Indicator>, StorageError> {
        let rows = sqlx::query(CLAIM_DUE_SQL)
            .bind(micros(now))
            .bind(micros(lease_until))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(indicator_from_row).collect()
    }

    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        let row = sqlx::query(NEXT_DEADLINE_SQL)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let due: Option<i64> = row.get(0);
        let available: Option<i64> = row.get(1);
        Ok(due.into_iter().chain(available).min().map(from_micros))
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        let rows = sqlx::query(CLAIM_NOTIFICATIONS_SQL)
            .bind(micros(now))
            .bind(micros(lease_until))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            match entry_from_row(row) {
                Ok(entry) => claimed.push(entry),
                Err(e) => {
                    // Parked: never claimed again, so one bad row cannot stop the others.
                    sqlx::query(
                        "UPDATE outbox SET available_at = NULL, last_error = $1 WHERE id = $2",
                    )
                    .bind(format!("unreadable, parked: {e}"))
                    .bind(row.get::<i64, _>("id"))
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?;
                }
            }
        }
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn mark_delivered(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        sqlx::query("UPDATE outbox SET delivered_at = $1, available_at = NULL WHERE id = ANY($2)")
            .bind(micros(now))
            .bind(&ids)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn postpone_notifications(
        &self,
        ids: &[NotificationId],
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        sqlx::query(
            "UPDATE outbox SET available_at = $1 WHERE id = ANY($2) AND delivered_at IS NULL",
        )
        .bind(micros(at))
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn retry_notification(
        &self,
        id: NotificationId,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, available_at = $2
             WHERE id = $3 AND delivered_at IS NULL",
        )
        .bind(error)
        .bind(micros(at))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM outbox WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            if exists.is_none() {
                return Err(StorageError::not_found("notification", id));
            }
        }
        Ok(())
    }

    async fn outbox(&self, project: ProjectId) -> Result<Vec<OutboxEntry>, StorageError> {
        sqlx::query(
            "SELECT id, indicator_id, attempts, delivered_at, last_error, data FROM outbox
             WHERE project_id = $1 ORDER BY id",
        )
        .bind(project.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(entry_from_row)
        .collect()
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
