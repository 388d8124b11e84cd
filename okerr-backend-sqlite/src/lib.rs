//! okerr's [`Storage`](okerr::Storage) on SQLite: the embedded default of the server.
//!
//! A file database in WAL mode: readers never wait for the writer, and every write goes
//! through one connection, so concurrent writers queue in the pool instead of meeting
//! `database is locked`. Due indicators and released notifications are found through
//! partial indexes on their deadline columns. The statements are the ones both SQL
//! backends share (`okerr-sql`); this crate holds what SQLite does differently: how it
//! connects, locks and claims, and its migrations.
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
use std::sync::Arc;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use okerr::storage::StorageError;
use okerr_sql::codec::micros;
use okerr_sql::{
    AtOnce, BatchPlan, Dialect, Placeholders, Rows, RowsSql, Statements, Value, WriteConn, WriteTx,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, Sqlite};

pub use sqlx;

/// Closes a connection given back to the pool while sqlx still counts it in a
/// transaction. SQLite rolls a transaction back by itself on some errors (a full disk:
/// `SQLITE_FULL` at commit); sqlx's own `ROLLBACK` then fails, its transaction depth stays
/// 1, and every later `BEGIN IMMEDIATE` of the connection fails (`InvalidSavePointStatement`)
/// until a restart. A new connection recovers as soon as the disk has room again.
fn not_stuck_in_a_transaction(options: SqlitePoolOptions) -> SqlitePoolOptions {
    options.after_release(|conn, _| {
        Box::pin(async move {
            use sqlx::Connection;
            // A committed transaction leaves nothing to do; a dropped one queued a rollback,
            // which the ping runs (each is a round trip to the connection's thread).
            if !conn.is_in_transaction() {
                return Ok(true);
            }
            conn.ping().await?;
            Ok(!conn.is_in_transaction())
        })
    })
}

/// The embedded migrations of this backend.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What SQLite says differently: a write transaction takes the write lock at once, and
/// the values of a set of rows are anonymous parameters (`okerr_sql::rows`).
const DIALECT: Dialect = Dialect {
    name: "sqlite",
    begin: "BEGIN IMMEDIATE",
    placeholders: Placeholders::Anonymous,
    update_batch: "UPDATE OR FAIL",
};

static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| Statements::new(&DIALECT));

/// Indicators due by `$1`, earliest first: a range scan of the partial index
/// `indicators_due`, never of the table.
const DUE_SQL: &str = "SELECT id, version, data FROM indicators
             WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2";

/// Leases the indicators of the rows `id` until `$1`; `lease_until` marks the lease, so
/// that [`okerr::Storage::release_claims`] can end it at the next start.
static LEASE_DUE_SQL: LazyLock<RowsSql> = LazyLock::new(|| {
    RowsSql::new(
        DIALECT.placeholders,
        1,
        &["id"],
        "UPDATE indicators SET due_at = $1, lease_until = $1 WHERE id IN (SELECT j.id FROM j)",
    )
});

/// Notifications released by `$1`, oldest first: a range scan of the partial index
/// `outbox_available`.
const RELEASED_SQL: &str =
    "SELECT id, indicator_id, attempts, delivered_at, last_error, data, dead_at FROM outbox
             WHERE available_at IS NOT NULL AND available_at <= $1
             ORDER BY available_at, id LIMIT $2";

/// Leases the notifications of the rows `id` until `$1`.
static LEASE_RELEASED_SQL: LazyLock<RowsSql> = LazyLock::new(|| {
    RowsSql::new(
        DIALECT.placeholders,
        1,
        &["id"],
        "UPDATE outbox SET available_at = $1, lease_until = $1, claims = claims + 1
         WHERE id IN (SELECT j.id FROM j)",
    )
});

/// okerr storage on SQLite.
///
/// Reads go through a pool of read-only connections, which in WAL mode never wait for the
/// writer; every write goes through one connection. The engine batches concurrent updates
/// ([`okerr::Storage::commit_batch`]), so one transaction (and one WAL append) serves many.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    /// Connections for reads; in WAL mode they never wait for the writer.
    reader: SqlitePool,
    /// One connection for every write, so writers queue instead of failing.
    writer: Writer,
    /// A pool for tools and tests ([`SqliteStorage::pool`]): the writer's settings, connected
    /// when first used. Its writes wait for the writer's (the busy timeout).
    tools: SqlitePool,
    /// Copies the WAL into the database beside the writer (none for a database in memory).
    checkpointer: Option<Arc<Checkpointer>>,
}

/// The one connection every write goes through.
#[derive(Debug, Clone)]
enum Writer {
    /// A database in memory lives in one connection, which the readers share: a pool's.
    Shared(SqlitePool),
    /// A file's writer: one connection behind a lock, so that the next transaction does not
    /// wait for a pool to take the last one back (sqlx spawns a task and pings the
    /// connection's thread for it; `okerr_sql::WriteTx`).
    Owned {
        slot: Arc<tokio::sync::Mutex<Slot>>,
        options: Arc<SqliteConnectOptions>,
    },
}

/// The writer's connection and what is left to do on it before its next use.
#[derive(Debug)]
struct Slot {
    /// `None` after a connection was dropped as stuck, until the next write connects.
    connection: Option<SqliteConnection>,
    /// A batch written in one script ([`SqliteStorage::commit_at_once`]) began a
    /// transaction that sqlx does not count: set while the script runs, so that a caller
    /// that gave up in the middle leaves a `ROLLBACK` to the next use.
    script_open: bool,
}

/// The table that [`SqliteStorage::commit_at_once`] checks a batch's count of changed
/// indicators in: a row that says 0 fails its `CHECK`, and the script stops before its
/// `COMMIT`. Temporary, so each connection has its own, in memory.
const WHOLE_TABLE_SQL: &str = "CREATE TEMP TABLE IF NOT EXISTS okerr_batch (
    id INTEGER PRIMARY KEY, whole INTEGER NOT NULL CONSTRAINT okerr_batch_whole CHECK (whole))";

impl Writer {
    /// The writer's connection, ready for a statement: a script left open is rolled back,
    /// and a connection stuck in a transaction is replaced.
    async fn slot(&self) -> Result<tokio::sync::OwnedMutexGuard<Slot>, StorageError> {
        let (slot, options) = match self {
            Writer::Shared(_) => {
                return Err(backend(std::io::Error::other(
                    "a shared writer has no slot",
                )));
            }
            Writer::Owned { slot, options } => (slot, options),
        };
        let mut held = slot.clone().lock_owned().await;
        let script_open = held.script_open;
        if let Some(conn) = held.connection.as_mut() {
            if script_open {
                // Fails when SQLite ended the transaction itself: nothing is left open then.
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            }
            if conn.is_in_transaction() {
                // A transaction was dropped (an error, a cancelled caller): its queued
                // rollback runs with the ping. When SQLite had rolled back by itself (a full
                // disk: `SQLITE_FULL` at commit), sqlx's rollback fails and it still counts a
                // transaction; every later `BEGIN` would fail, so the connection is replaced.
                let _ = conn.ping().await;
            }
        }
        if held
            .connection
            .as_ref()
            .is_some_and(sqlx::Connection::is_in_transaction)
        {
            held.connection = None;
        }
        held.script_open = false;
        if held.connection.is_none() {
            let mut conn = options.connect().await.map_err(backend)?;
            sqlx::raw_sql(WHOLE_TABLE_SQL)
                .execute(&mut conn)
                .await
                .map_err(backend)?;
            held.connection = Some(conn);
        }
        Ok(held)
    }

    async fn connection(&self) -> Result<WriteConn<Sqlite>, StorageError> {
        if let Writer::Shared(pool) = self {
            return Ok(Box::new(pool.acquire().await.map_err(backend)?));
        }
        tokio::sync::OwnedMutexGuard::try_map(self.slot().await?, |s| s.connection.as_mut())
            .map(|conn| Box::new(conn) as WriteConn<Sqlite>)
            .map_err(|_| backend(std::io::Error::other("the writer has no connection")))
    }
}

/// The WAL pages after which the writer checkpoints itself, at the end of a commit. SQLite's
/// default is 1,000 (4 MB); [`Checkpointer`] does most of the copying beside it, so the
/// writer's own checkpoint copies only what came since and then lets the WAL start over.
const WRITER_CHECKPOINT_PAGES: u32 = 8_000;

/// The writer's page cache, in KiB (SQLite's default is 2,000): the pages a batch of
/// random indicators changes, and the indexes above them, stay in it. Not larger: SQLite
/// scans the cache's whole hash table at the end of many transactions
/// (`pager_end_transaction`), and with 32 MiB that was a tenth of the writer's time in a
/// stream of flips (docs/benchmarks.md); 4 MiB was as fast for confirmations and faster
/// for flips, with 1,000 and with 100,000 indicators.
const WRITER_CACHE_KIB: u32 = 4_096;

/// How often [`Checkpointer`] copies the WAL into the database. At full load the writer
/// appends about 80,000 pages a second: every 100 ms left the writer's own checkpoint
/// (every [`WRITER_CHECKPOINT_PAGES`]) most of the copying, inside a commit, and that
/// commit's wait was the p99 (14 ms at 32 connections; 6 ms at 20 ms, at the same rate).
/// Every 5 ms the p99 is 4.4 ms, but 8 % fewer updates get through.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// How often [`Checkpointer`] looks while nothing was written since its last pass: an idle
/// server does not wake 50 times a second.
const CHECKPOINT_IDLE_EVERY: Duration = Duration::from_millis(100);

/// A connection of its own that runs `PRAGMA wal_checkpoint(PASSIVE)` every
/// [`CHECKPOINT_EVERY`] while the WAL grows ([`CHECKPOINT_IDLE_EVERY`] while it does not):
/// it copies committed WAL pages into the database without waiting for the writer or the
/// readers and without making them wait, on another core than the writer's. Without it
/// the writer copies them itself every 1,000 pages, inside the commit that crossed the
/// mark, while every update of the next batch waits. A passive checkpoint
/// never starts the WAL over (the writer keeps appending), so the writer still checkpoints
/// every [`WRITER_CHECKPOINT_PAGES`]: by then almost every page is copied, and its next
/// transaction starts the WAL from the beginning. Stops when the storage is dropped.
#[derive(Debug)]
struct Checkpointer {
    pool: SqlitePool,
    task: tokio::task::JoinHandle<()>,
}

impl Checkpointer {
    async fn start(options: SqliteConnectOptions) -> Result<Checkpointer, StorageError> {
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(backend)?;
        let connection = pool.clone();
        let task = tokio::spawn(async move {
            // The WAL's length in frames at the last pass.
            let mut last = None;
            let mut pause = CHECKPOINT_IDLE_EVERY;
            loop {
                tokio::time::sleep(pause).await;
                // (busy, frames in the WAL, frames copied)
                let done = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&connection)
                    .await;
                pause = match done {
                    Err(sqlx::Error::PoolClosed) => return,
                    Ok((_, frames, _)) if last == Some(frames) => CHECKPOINT_IDLE_EVERY,
                    Ok((_, frames, _)) => {
                        last = Some(frames);
                        CHECKPOINT_EVERY
                    }
                    // Any other failure (the writer checkpointing at the same moment) leaves
                    // the pages to the next pass, or to the writer's own checkpoint.
                    Err(_) => CHECKPOINT_EVERY,
                };
            }
        });
        Ok(Checkpointer { pool, task })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SqliteStorage {
    const BACKEND: &'static str = DIALECT.name;

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
            .statement_cache_capacity(okerr_sql::rows::STATEMENT_CACHE)
            .busy_timeout(Duration::from_secs(30));
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if memory {
            // An in-memory database lives in one connection: readers and the writer share it.
            let pool = not_stuck_in_a_transaction(SqlitePoolOptions::new())
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(backend)?;
            return Ok(SqliteStorage {
                reader: pool.clone(),
                writer: Writer::Shared(pool.clone()),
                tools: pool,
                checkpointer: None,
            });
        }
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer_options = options
            .clone()
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
            .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
            // A statement over many rows inside a transaction keeps the pages it changes in
            // a statement journal, in a temporary file once past 64 KiB: an open, writes
            // and a close in every batch. In memory it is copies.
            .pragma("temp_store", "MEMORY");
        let writer = Writer::Owned {
            slot: Arc::new(tokio::sync::Mutex::new(Slot {
                connection: None,
                script_open: false,
            })),
            options: Arc::new(writer_options.clone()),
        };
        drop(writer.slot().await?);
        let tools = not_stuck_in_a_transaction(SqlitePoolOptions::new())
            .max_connections(1)
            .connect_lazy_with(writer_options);
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(backend)?;
        let checkpointer = Checkpointer::start(options).await?;
        Ok(SqliteStorage {
            reader,
            writer,
            tools,
            checkpointer: Some(Arc::new(checkpointer)),
        })
    }

    /// Runs the embedded migrations.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = self.write_conn().await?;
        MIGRATOR.run(&mut **conn).await.map_err(backend)
    }

    /// The embedded migrations.
    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// Closes every connection; in-flight work finishes first.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.pool.close().await;
        }
        self.reader.close().await;
        self.tools.close().await;
        match &self.writer {
            Writer::Shared(pool) => pool.close().await,
            Writer::Owned { slot, .. } => {
                if let Some(conn) = slot.lock().await.connection.take() {
                    let _ = conn.close().await;
                }
            }
        }
    }

    /// A pool for tools and tests (e.g. `EXPLAIN QUERY PLAN`), with the writer's settings.
    /// It is not the storage's writer: its writes wait for the writer's (up to the busy
    /// timeout).
    pub fn pool(&self) -> &SqlitePool {
        &self.tools
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
            ("next_deadline", okerr_sql::NEXT_DEADLINE, 0),
        ] {
            plans.push((name, self.query_plan(sql, binds).await?));
        }
        Ok(plans)
    }

    /// `EXPLAIN QUERY PLAN` of `sql`, with its `binds` parameters 0: a line per step.
    async fn query_plan(&self, sql: &str, binds: usize) -> Result<Vec<String>, StorageError> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for _ in 0..binds {
            query = query.bind(0_i64);
        }
        let rows = query.fetch_all(&self.reader).await.map_err(backend)?;
        Ok(rows.iter().map(|r| r.get::<String, _>("detail")).collect())
    }

    fn sql() -> &'static Statements {
        &STATEMENTS
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    async fn write_conn(&self) -> Result<WriteConn<Sqlite>, StorageError> {
        self.writer.connection().await
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock at once (waiting up to
    /// the busy timeout), so a transaction that reads before it writes cannot fail with
    /// `database is locked` when another process wrote meanwhile.
    async fn begin_write(&self) -> Result<WriteTx<Sqlite>, StorageError> {
        WriteTx::begin(self.write_conn().await?, DIALECT.begin)
            .await
            .map_err(backend)
    }

    /// Nothing to lock: the write transaction holds the whole database.
    async fn lock_indicators(_tx: &mut WriteTx<Sqlite>, _ids: &[i64]) -> Result<(), sqlx::Error> {
        Ok(())
    }

    /// Writes a batch of changes to stored indicators as one script, in one round trip to
    /// the writer's thread ([`at_once_script`]): each statement run alone is one, and under
    /// load each waited for a core. The script fails before its `COMMIT` unless the
    /// `UPDATE` changed every indicator; then it is rolled back and the batch is written
    /// round by round. Not for a database in memory (its writer is a pool's), nor for a
    /// batch of more than [`okerr_sql::rows::MAX_ROWS`] rows of a kind.
    async fn commit_at_once(&self, plan: &mut BatchPlan) -> Result<AtOnce, sqlx::Error> {
        if matches!(self.writer, Writer::Shared(_)) || !plan.write_at_once() {
            return Ok(AtOnce::NotTried);
        }
        let encode = |e: StorageError| sqlx::Error::Encode(Box::new(e));
        let indicators = plan.updates().map_err(encode)?;
        let log = plan.log_rows().map_err(encode)?;
        let outbox = plan.outbox_rows().map_err(encode)?;
        let (Some(changes), Some(lines), Some(alerts)) =
            (one_chunk(&indicators), one_chunk(&log), one_chunk(&outbox))
        else {
            return Ok(AtOnce::NotTried);
        };
        let Some(script) = at_once_script(changes, lines, alerts) else {
            return Ok(AtOnce::NotTried);
        };
        let expected =
            i64::try_from(indicators.len()).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let mut query = sqlx::query(script);
        for value in indicators.chunks().flat_map(|c| c.values()) {
            query = bind_value(query, value);
        }
        query = query.bind(expected);
        for value in log.chunks().chain(outbox.chunks()).flat_map(|c| c.values()) {
            query = bind_value(query, value);
        }
        let mut slot = self
            .writer
            .slot()
            .await
            .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?;
        slot.script_open = true;
        let Some(conn) = slot.connection.as_mut() else {
            return Ok(AtOnce::NotTried);
        };
        let written = query.execute(&mut *conn).await;
        let outcome = match written {
            Ok(_) => {
                slot.script_open = false;
                return Ok(AtOnce::Written);
            }
            Err(sqlx::Error::Database(e)) if e.message().contains("okerr_batch_whole") => {
                Ok(AtOnce::NotWhole)
            }
            Err(e) => Err(e),
        };
        // Fails when SQLite ended the transaction itself (a full disk at `COMMIT`).
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        slot.script_open = false;
        outcome
    }

    /// Claims due indicators (rows of `id, version, data`): one writer, so a read and a
    /// lease in one transaction.
    async fn claim_due_rows(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SqliteRow>, StorageError> {
        self.claim(DUE_SQL, &LEASE_DUE_SQL, now, lease_until, limit)
            .await
    }

    /// Claims released notifications, as rows of [`okerr_sql::OUTBOX_COLUMNS`].
    async fn claim_notification_rows(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SqliteRow>, StorageError> {
        self.claim(RELEASED_SQL, &LEASE_RELEASED_SQL, now, lease_until, limit)
            .await
    }
}

impl SqliteStorage {
    /// A claim in one write transaction: the rows `select` finds (`$1` now, `$2` the
    /// limit), then `lease` on their ids (`$1` the lease's end, rows `id`).
    async fn claim(
        &self,
        select: &'static str,
        lease: &'static RowsSql,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SqliteRow>, StorageError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(select)
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let mut ids = Rows::new(1);
        for row in &rows {
            ids.push([Value::from(row.try_get::<i64, _>(0).map_err(backend)?)]);
        }
        for chunk in ids.chunks() {
            let mut query = sqlx::query(lease.text(chunk.padded_rows()));
            for value in chunk.values() {
                if let Value::Int(id) = value {
                    query = query.bind(id);
                }
            }
            let query = query.bind(micros(lease_until));
            query.execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(rows)
    }
}

/// The rows of `rows` as one statement binds them (0 for none), or `None` when they take
/// more than one statement.
fn one_chunk(rows: &Rows<'_>) -> Option<usize> {
    match rows.chunks().count() {
        0 => Some(0),
        1 => rows.chunks().next().map(|c| c.padded_rows()),
        _ => None,
    }
}

fn bind_value<'q>(
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    value: Value<'q>,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
    match value {
        Value::Int(v) => query.bind(v),
        Value::Text(v) => query.bind(v),
    }
}

/// The texts of [`at_once_script`], by the padded sizes of its three sets of rows.
static SCRIPTS: [OnceLock<String>; SCRIPT_SIZES * SCRIPT_SIZES * SCRIPT_SIZES] =
    [const { OnceLock::new() }; SCRIPT_SIZES * SCRIPT_SIZES * SCRIPT_SIZES];

/// The padded sizes of a set of rows in a script: none, or a power of two up to
/// [`okerr_sql::rows::MAX_ROWS`].
const SCRIPT_SIZES: usize = okerr_sql::rows::MAX_ROWS.trailing_zeros() as usize + 2;

/// A batch's changes to stored indicators as one script, for `changes` rows of changed
/// indicators, `lines` log lines and `alerts` notifications (each padded as
/// [`okerr_sql::rows::Chunk::padded_rows`], 0 for none): the shared statements between
/// `BEGIN IMMEDIATE` and `COMMIT`, and after the `UPDATE` a row of [`WHOLE_TABLE_SQL`]
/// that fails its `CHECK` unless the `UPDATE` changed as many indicators as its
/// parameter says. The parameters, in order: the indicators' rows, that count, the log
/// lines' rows, the notifications' rows. `None` for sizes that are no such padding.
fn at_once_script(changes: usize, lines: usize, alerts: usize) -> Option<&'static str> {
    let slot = |n: usize| {
        if n == 0 {
            0
        } else {
            n.trailing_zeros() as usize + 1
        }
    };
    let at = (slot(changes) * SCRIPT_SIZES + slot(lines)) * SCRIPT_SIZES + slot(alerts);
    if [changes, lines, alerts]
        .iter()
        .any(|&n| n > okerr_sql::rows::MAX_ROWS || (n > 0 && !n.is_power_of_two()))
    {
        return None;
    }
    let text = SCRIPTS.get(at)?;
    Some(text.get_or_init(|| {
        let sql = SqliteStorage::sql();
        let mut script = format!(
            "{}; {}; INSERT OR REPLACE INTO temp.okerr_batch (id, whole) VALUES (1, changes() = ?);",
            DIALECT.begin,
            sql.update_indicators.text(changes),
        );
        for (rows, statement) in [(lines, &sql.insert_log), (alerts, &sql.insert_outbox)] {
            if rows > 0 {
                script.push(' ');
                script.push_str(statement.text(rows));
                script.push(';');
            }
        }
        script.push_str(" COMMIT");
        script
    }))
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::backend(DIALECT.name, e)
}

okerr_sql::sql_storage!(SqliteStorage, Sqlite);

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer keeps its statement journals in memory (a batch's statements journal
    /// the pages they change; in a file, that is an open, writes and a close per batch).
    #[tokio::test]
    async fn the_writer_journals_statements_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("okerr.db").display());
        let storage = SqliteStorage::connect(&url).await.expect("connect");
        let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(storage.pool())
            .await
            .expect("pragma");
        assert_eq!(temp_store, 2, "MEMORY");
    }

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

    /// The statements over a set of rows look each row up by its key: a scan of the rows
    /// (`j`), never of a table, whatever the size of the set.
    #[tokio::test]
    async fn sets_of_rows_are_looked_up_by_key() {
        let storage = SqliteStorage::connect("sqlite::memory:")
            .await
            .expect("connect");
        storage.migrate().await.expect("migrate");
        let sql = SqliteStorage::sql();
        for (name, statement, scalars) in [
            ("project_versions", &sql.project_versions, 0),
            ("indicators_by_name", &sql.indicators_by_name, 0),
            ("update_indicators", &sql.update_indicators, 0),
            ("mark_delivered", &sql.mark_delivered, 1),
            ("renew_notifications", &sql.renew_notifications, 2),
            ("lease_due", &LEASE_DUE_SQL, 1),
            ("lease_released", &LEASE_RELEASED_SQL, 1),
        ] {
            for rows in [1, 64, 1024] {
                let binds = scalars + rows * statement.width();
                let plan = storage
                    .query_plan(statement.text(rows), binds)
                    .await
                    .expect("plan");
                let scans: Vec<&String> = plan
                    .iter()
                    .filter(|d| {
                        d.starts_with("SCAN")
                            && !d.starts_with("SCAN j")
                            && !d.contains("CONSTANT ROW")
                    })
                    .collect();
                println!("{name} ({rows} rows): {plan:?}");
                assert!(
                    scans.is_empty(),
                    "{name} of {rows} rows scans a table: {plan:?}"
                );
            }
        }
    }
}
