//! okerr's [`Storage`] on SQLite: the embedded default of the server.
//!
//! A file database in WAL mode: readers never wait for the writer, and every write goes
//! through one connection, so concurrent writers queue in the pool instead of meeting
//! `database is locked`. Due indicators and released notifications are found through
//! partial indexes on their deadline columns.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use okerr_backend_sqlite::SqliteStorage;
//! use okerr::{NewProject, Storage, TextId};
//!
//! let storage = SqliteStorage::connect("sqlite::memory:").await?;
//! storage.migrate().await?;
//! let project = storage.create_project(NewProject::new("demo", TextId::parse("demo")?)).await?;
//! assert!(storage.project_by_textid("demo").await?.is_some());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use okerr::storage::columns::{self, from_micros, micros};
use okerr::storage::{Commit, Storage, StorageError};
use okerr::{
    Indicator, IndicatorId, IndicatorName, LogKind, LogLine, NewProject, NotificationId,
    OutboxEntry, Project, ProjectId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

pub use sqlx;

/// The embedded migrations of this backend.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const BACKEND: &str = "sqlite";

/// Indicators due by `?1`, earliest first: a range scan of the partial index
/// `indicators_due`, never of the table.
const DUE_SQL: &str = "SELECT id, version, data FROM indicators
             WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?";

/// The earliest deadline of an indicator and of a notification: the first entry of the
/// partial indexes `indicators_due` and `outbox_available`.
const NEXT_DEADLINE_SQL: &str =
    "SELECT (SELECT MIN(due_at) FROM indicators WHERE due_at IS NOT NULL),
                    (SELECT MIN(available_at) FROM outbox WHERE available_at IS NOT NULL)";

/// Notifications released by `?1`, oldest first: a range scan of the partial index
/// `outbox_available`.
const RELEASED_SQL: &str =
    "SELECT id, indicator_id, attempts, delivered_at, last_error, data FROM outbox
             WHERE available_at IS NOT NULL AND available_at <= ?
             ORDER BY available_at, id LIMIT ?";

/// The most commits the group committer writes in one transaction.
const MAX_GROUP: usize = 512;

/// A commit waiting for the group committer, and where its result goes.
type Pending = (Commit, oneshot::Sender<Result<Indicator, StorageError>>);

/// okerr storage on SQLite.
///
/// Concurrent [`commit`](Storage::commit)s are written together: a group committer takes
/// every commit waiting and writes them in one transaction (each still all or nothing, in
/// a savepoint of its own), so one `fsync` serves many updates.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    /// Connections for reads; in WAL mode they never wait for the writer.
    reader: SqlitePool,
    /// One connection for every write, so writers queue instead of failing.
    writer: SqlitePool,
    /// The queue of the group committer.
    group: mpsc::Sender<Pending>,
}

impl SqliteStorage {
    /// Opens (creating if missing) the database at `url`, e.g. `sqlite://okerr.db` or
    /// `sqlite::memory:`. The file is put in WAL mode with foreign keys on.
    ///
    /// # Errors
    /// When the URL is invalid or the database cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if memory {
            // An in-memory database lives in one connection: readers and the writer share it.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(backend)?;
            return Ok(SqliteStorage::from_pools(pool.clone(), pool));
        }
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend)?;
        Ok(SqliteStorage::from_pools(reader, writer))
    }

    /// Storage on these pools; starts the group committer (needs a Tokio runtime).
    fn from_pools(reader: SqlitePool, writer: SqlitePool) -> Self {
        let (group, queue) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(group_committer(writer.clone(), queue));
        SqliteStorage {
            reader,
            writer,
            group,
        }
    }

    /// Runs the embedded migrations.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.writer).await.map_err(backend)
    }

    /// The embedded migrations.
    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// Closes every connection; in-flight work finishes first.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The pool that writes, for tools and tests (e.g. `EXPLAIN QUERY PLAN`).
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// `EXPLAIN QUERY PLAN` of the scheduler's queries (claim due indicators, claim released
    /// notifications, next deadline): each a range scan of a partial index, never a table
    /// scan. For operators who want to see it on their database.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn scheduler_query_plans(
        &self,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StorageError> {
        let mut plans = Vec::new();
        for (name, sql, binds) in [
            ("claim_due", DUE_SQL, 2),
            ("claim_notifications", RELEASED_SQL, 2),
            ("next_deadline", NEXT_DEADLINE_SQL, 0),
        ] {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
            for _ in 0..binds {
                query = query.bind(0_i64);
            }
            let rows = query.fetch_all(&self.reader).await.map_err(backend)?;
            plans.push((
                name,
                rows.iter().map(|r| r.get::<String, _>("detail")).collect(),
            ));
        }
        Ok(plans)
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock at once (waiting up to
    /// the busy timeout), so a transaction that reads before it writes cannot fail with
    /// `database is locked` when another process wrote meanwhile.
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StorageError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
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

/// Row ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: one statement for
/// a whole claim instead of one per row.
fn id_list(ids: impl Iterator<Item = i64>) -> Result<String, StorageError> {
    to_json(&ids.collect::<Vec<i64>>())
}

async fn write_textids(
    tx: &mut Transaction<'static, Sqlite>,
    project: &Project,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM textids WHERE project_id = ?")
        .bind(project.id.0)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    for (position, textid) in project.textids().enumerate() {
        sqlx::query("INSERT INTO textids (textid, project_id, position) VALUES (?, ?, ?)")
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

fn indicator_from_row(row: &SqliteRow) -> Result<Indicator, StorageError> {
    columns::indicator(
        BACKEND,
        row.get("id"),
        row.get("version"),
        row.get::<&str, _>("data"),
    )
}

fn entry_from_row(row: &SqliteRow) -> Result<OutboxEntry, StorageError> {
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

/// The entries of claimed rows, and the ids of rows that are no notification with why.
fn read_entries(rows: &[SqliteRow]) -> (Vec<OutboxEntry>, Vec<(i64, String)>) {
    let mut entries = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in rows {
        match entry_from_row(row) {
            Ok(entry) => entries.push(entry),
            Err(e) => unreadable.push((row.get("id"), format!("unreadable, parked: {e}"))),
        }
    }
    (entries, unreadable)
}

/// Writes commits in one transaction, each in a savepoint of its own.
async fn write_many(
    writer: &SqlitePool,
    commits: &[Commit],
) -> Result<Vec<Result<Indicator, StorageError>>, StorageError> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(backend)?;
    let mut results = Vec::with_capacity(commits.len());
    for commit in commits {
        results.push(apply(&mut tx, commit).await);
    }
    tx.commit().await.map_err(backend)?;
    Ok(results)
}

/// Takes every commit waiting and writes them together, until the storage is dropped.
async fn group_committer(writer: SqlitePool, mut queue: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut batch, MAX_GROUP).await > 0 {
        let (commits, replies): (Vec<Commit>, Vec<_>) = batch.drain(..).unzip();
        match write_many(&writer, &commits).await {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(backend(std::io::Error::other(message.clone()))));
                }
            }
        }
    }
}

/// Applies one commit inside `tx`, all or nothing (a savepoint undoes a failed one).
async fn apply(
    tx: &mut Transaction<'static, Sqlite>,
    commit: &Commit,
) -> Result<Indicator, StorageError> {
    sqlx::query("SAVEPOINT okerr_commit")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    let result = apply_inner(tx, commit).await;
    let end = if result.is_ok() {
        "RELEASE okerr_commit"
    } else {
        "ROLLBACK TO okerr_commit"
    };
    sqlx::query(end).execute(&mut **tx).await.map_err(backend)?;
    if result.is_err() {
        sqlx::query("RELEASE okerr_commit")
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    result
}

async fn apply_inner(
    tx: &mut Transaction<'static, Sqlite>,
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
            "INSERT INTO indicators (project_id, name, version, due_at, data) VALUES (?, ?, ?, ?, ?)
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
            "UPDATE indicators SET version = ?, due_at = ?, data = ?, name = ?
             WHERE id = ? AND version = ?",
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
            "DELETE FROM outbox WHERE indicator_id = ? AND reduction_key = ? AND release_at = ?
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
        sqlx::query("INSERT INTO log (indicator_id, time, kind, message) VALUES (?, ?, ?, ?)")
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
             VALUES (?, ?, ?, ?, ?, ?)",
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
impl Storage for SqliteStorage {
    async fn create_project(&self, project: NewProject) -> Result<Project, StorageError> {
        let mut tx = self.begin().await?;
        let placeholder = project.clone().with_id(ProjectId(0));
        let id: i64 = sqlx::query("INSERT INTO projects (data) VALUES (?) RETURNING id")
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
            "UPDATE projects SET data = ? WHERE id = ? AND COALESCE(json_extract(data, '$.version'), 0) = ?",
        )
        .bind(to_json(&saved)?)
        .bind(project.id.0)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM projects WHERE id = ?")
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
        let row = sqlx::query("SELECT data FROM projects WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
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
             WHERE t.textid = ?",
        )
        .bind(textid)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        match row {
            Some(row) => Ok(Some(project_from_row(row.get(0), row.get(1))?)),
            None => Ok(None),
        }
    }

    async fn projects(&self) -> Result<Vec<Project>, StorageError> {
        let rows = sqlx::query("SELECT id, data FROM projects ORDER BY id")
            .fetch_all(&self.reader)
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
        sqlx::query("SELECT id, version, data FROM indicators WHERE project_id = ? AND name = ?")
            .bind(project.0)
            .bind(name.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?
            .map(|row| indicator_from_row(&row))
            .transpose()
    }

    async fn indicators(&self, project: ProjectId) -> Result<Vec<Indicator>, StorageError> {
        sqlx::query("SELECT id, version, data FROM indicators WHERE project_id = ? ORDER BY name")
            .bind(project.0)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(indicator_from_row)
            .collect()
    }

    async fn count_indicators(&self, project: ProjectId) -> Result<u64, StorageError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM indicators WHERE project_id = ?")
            .bind(project.0)
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn commit(&self, commit: &Commit) -> Result<Indicator, StorageError> {
        let closed = || backend(std::io::Error::other("the group committer has stopped"));
        let (reply, result) = oneshot::channel();
        self.group
            .send((commit.clone(), reply))
            .await
            .map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }

    async fn commit_many(
        &self,
        commits: &[Commit],
    ) -> Result<Vec<Result<Indicator, StorageError>>, StorageError> {
        write_many(&self.writer, commits).await
    }

    async fn delete_indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM indicators WHERE project_id = ? AND name = ?")
            .bind(project.0)
            .bind(name.as_str())
            .execute(&self.writer)
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
             WHERE i.project_id = ? AND i.name = ?
             ORDER BY l.id DESC LIMIT ?",
        )
        .bind(project.0)
        .bind(name.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
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
        let mut tx = self.begin().await?;
        let rows = sqlx::query(DUE_SQL)
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let claimed: Vec<Indicator> = rows
            .iter()
            .map(indicator_from_row)
            .collect::<Result<_, _>>()?;
        let ids = id_list(claimed.iter().map(|i| i.id.0))?;
        sqlx::query(
            "UPDATE indicators SET due_at = ? WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(micros(lease_until))
        .bind(ids)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        let row = sqlx::query(NEXT_DEADLINE_SQL)
            .fetch_one(&self.reader)
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
        let mut tx = self.begin().await?;
        let rows = sqlx::query(RELEASED_SQL)
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let (mut claimed, unreadable) = read_entries(&rows);
        for (id, error) in &unreadable {
            // Parked: never claimed again, so one bad row cannot stop the others.
            sqlx::query("UPDATE outbox SET available_at = NULL, last_error = ? WHERE id = ?")
                .bind(error)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let ids = id_list(claimed.iter().map(|e| e.id.0))?;
        sqlx::query(
            "UPDATE outbox SET available_at = ?, claims = claims + 1
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(micros(lease_until))
        .bind(ids)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn mark_delivered(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query("UPDATE outbox SET delivered_at = ?, available_at = NULL WHERE id = ?")
                .bind(micros(now))
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn postpone_notifications(
        &self,
        ids: &[NotificationId],
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let ids = id_list(ids.iter().map(|id| id.0))?;
        sqlx::query(
            "UPDATE outbox SET available_at = ?
             WHERE id IN (SELECT value FROM json_each(?)) AND delivered_at IS NULL",
        )
        .bind(micros(at))
        .bind(ids)
        .execute(&self.writer)
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
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, available_at = ?
             WHERE id = ? AND delivered_at IS NULL",
        )
        .bind(error)
        .bind(micros(at))
        .bind(id.0)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM outbox WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.writer)
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
             WHERE project_id = ? ORDER BY id",
        )
        .bind(project.0)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(entry_from_row)
        .collect()
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Due work and the next deadline come from the partial indexes, never a table scan.
    #[tokio::test]
    async fn due_work_is_found_through_indexes() {
        let storage = SqliteStorage::connect("sqlite::memory:")
            .await
            .expect("connect");
        storage.migrate().await.expect("migrate");
        let plans = storage.scheduler_query_plans().await.expect("plans");
        println!("{plans:#?}");
        let [(_, due), (_, released), (_, next)] = &plans[..] else {
            panic!("three plans: {plans:?}")
        };
        assert_eq!(
            due,
            &["SEARCH indicators USING INDEX indicators_due (due_at>? AND due_at<?)"]
        );
        assert_eq!(
            released,
            &["SEARCH outbox USING INDEX outbox_available (available_at>? AND available_at<?)"]
        );
        let scans: Vec<&String> = next
            .iter()
            .filter(|d| d.starts_with("SCAN") && *d != "SCAN CONSTANT ROW")
            .collect();
        assert!(scans.is_empty(), "no table scan: {next:?}");
        for index in [
            "indicators USING COVERING INDEX indicators_due",
            "outbox USING COVERING INDEX outbox_available",
        ] {
            assert!(next.iter().any(|d| d.contains(index)), "{index}: {next:?}");
        }
    }
}
