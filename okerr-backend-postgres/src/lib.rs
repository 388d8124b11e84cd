//! okerr's [`Storage`](okerr::Storage) on PostgreSQL: several `okerr serve` nodes on one database.
//!
//! A batch of decisions is one transaction guarded by the indicators' versions; due
//! indicators and released notifications are claimed with `FOR UPDATE SKIP LOCKED` through
//! partial indexes on their deadline columns, so nodes share the work and each expiry
//! happens once. The statements are the ones both SQL backends share (`okerr-sql`); this
//! crate holds what PostgreSQL does differently: connections and schemas, row locks and
//! claims, and its migrations.
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
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use okerr::storage::StorageError;
use okerr_sql::codec::micros;
use okerr_sql::{AtOnce, BatchPlan, Dialect, Placeholders, Statements, WriteConn, WriteTx};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};

pub use sqlx;

/// The embedded migrations of this backend.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What PostgreSQL says differently: a transaction begins plainly (its rows are locked by
/// [`LOCK_SQL`]), and the values of a set of rows are numbered parameters.
const DIALECT: Dialect = Dialect {
    name: "postgres",
    begin: "BEGIN",
    placeholders: Placeholders::Numbered,
    update_batch: "UPDATE",
};

static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| Statements::new(&DIALECT));

/// Claims up to `$3` indicators due by `$1` until `$2`, earliest first, skipping rows
/// another node holds: a range scan of the partial index `indicators_due`.
///
/// The claimed rows are changed by their ids as an array (`= ANY(ARRAY(…))`), not by a join
/// with the selection: a prepared statement soon runs a generic plan, which does not know
/// the limit, expects a tenth of the table and joins by hashing a scan of the whole table.
/// By an array, the rows are found through the primary key whatever the plan expects.
const CLAIM_DUE_SQL: &str = "WITH due AS MATERIALIZED (
                 SELECT id, due_at FROM indicators
                 WHERE due_at IS NOT NULL AND due_at <= $1
                 ORDER BY due_at LIMIT $3
                 FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE indicators i SET due_at = $2, lease_until = $2
                 WHERE i.id = ANY(ARRAY(SELECT id FROM due))
                 RETURNING i.id, i.version, i.data
             )
             SELECT c.id, c.version, c.data FROM claimed c JOIN due ON due.id = c.id
             ORDER BY due.due_at, c.id";

/// Claims up to `$3` notifications released by `$1` until `$2`, skipping rows another
/// node holds: a range scan of the partial index `outbox_available`, in the index's order
/// (ties, such as a burst of alerts held to one time, in no given order: sorting them by id
/// read every row of the tie first). Changed by ids as an array, as [`CLAIM_DUE_SQL`].
const CLAIM_NOTIFICATIONS_SQL: &str = "WITH released AS (
                 SELECT id FROM outbox
                 WHERE available_at IS NOT NULL AND available_at <= $1
                 ORDER BY available_at LIMIT $3
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE outbox o SET available_at = $2, lease_until = $2, claims = claims + 1
             WHERE o.id = ANY(ARRAY(SELECT id FROM released))
             RETURNING o.id, o.indicator_id, o.attempts, o.delivered_at, o.last_error, o.data,
                 o.dead_at";

/// Locks the indicators `$1` in id order, so that two nodes writing overlapping batches
/// wait for each other instead of deadlocking.
const LOCK_SQL: &str = "SELECT id FROM indicators WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// A batch that changes stored indicators only, written by one statement in a transaction
/// of its own ([`BatchPlan::write_at_once`]): one round trip where the rounds of a
/// transaction take five (`BEGIN`, lock, `UPDATE`, `INSERT` log, `COMMIT`). Each set is one
/// array per column:
/// - `$1`–`$6` the indicators (`id, version, due_at, data, name, project_version`), locked
///   in id order first, then changed where their version and their project's still are
///   the ones decided on, as [`Statements::update_indicators`] does;
/// - `$7`–`$10` the log lines (`indicator_id, time, kind, message`), in order;
/// - `$11`–`$16` the notifications (`project_id, indicator_id, release_at, reduction_key,
///   data, available_at`), in order;
/// - `$17` how many indicators it must change (the rows of `$1`).
///
/// When it changes fewer, it divides by zero (SQLSTATE 22012, [`NOT_WHOLE`]): the
/// statement fails and its transaction writes nothing, and the batch is written round by
/// round. Nothing else in it divides.
const AT_ONCE_SQL: &str = "WITH u AS (
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[],
                     $5::text[], $6::int8[])
                     AS u (id, version, due_at, data, name, project_version)
             ), locked AS MATERIALIZED (
                 SELECT id FROM indicators WHERE id IN (SELECT id FROM u)
                 ORDER BY id FOR UPDATE
             ), updated AS (
                 UPDATE indicators SET version = u.version, due_at = u.due_at, data = u.data
                 FROM u WHERE indicators.id = u.id AND indicators.version = u.version - 1
                 AND indicators.name = u.name
                 AND (u.project_version IS NULL OR u.project_version =
                     (SELECT p.version FROM projects p WHERE p.id = indicators.project_id))
                 AND EXISTS (SELECT 1 FROM locked WHERE locked.id = u.id)
                 RETURNING indicators.id
             ), logged AS (
                 INSERT INTO log (indicator_id, time, kind, message)
                 SELECT l.indicator_id, l.time, l.kind, l.message
                 FROM unnest($7::int8[], $8::int8[], $9::text[], $10::text[])
                     WITH ORDINALITY AS l (indicator_id, time, kind, message, pos)
                 ORDER BY l.pos
             ), queued AS (
                 INSERT INTO outbox
                     (project_id, indicator_id, release_at, available_at, reduction_key, data)
                 SELECT o.project_id, o.indicator_id, o.release_at, o.available_at,
                     o.reduction_key, o.data
                 FROM unnest($11::int8[], $12::int8[], $13::int8[], $14::text[], $15::text[],
                     $16::int8[])
                     WITH ORDINALITY AS o (project_id, indicator_id, release_at, reduction_key,
                         data, available_at, pos)
                 ORDER BY o.pos
             )
             SELECT 1 / ((SELECT count(*) FROM updated) = $17)::int";

/// The errors of [`AT_ONCE_SQL`] that mean a commit of the batch was not written (its
/// indicator or project moved, or it is gone): division by zero, and a log line or
/// notification of an indicator deleted meanwhile.
const NOT_WHOLE: [&str; 2] = ["22012", "23503"];

/// okerr storage on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: PgPool,
}

/// How long a statement waits for a pooled connection (or a new one) before it fails.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

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
        // A short acquire timeout: in an outage a request fails within a second instead of
        // 30 s, and the pool's reconnect backoff (a fifth of it) stays short, so the server
        // is back within a fraction of a second of the database.
        let options = options.statement_cache_capacity(okerr_sql::rows::STATEMENT_CACHE);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
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
    /// notifications, next deadline), one line of the plan per entry: their generic plans,
    /// which a prepared statement runs after its first few executions. On a table with
    /// statistics they are index scans of the partial indexes `indicators_due` and
    /// `outbox_available`; on a tiny table the planner may prefer a sequential scan.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn scheduler_query_plans(
        &self,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StorageError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let mut plans = Vec::new();
        for (name, sql, binds) in [
            ("claim_due", CLAIM_DUE_SQL, 3),
            ("claim_notifications", CLAIM_NOTIFICATIONS_SQL, 3),
            ("next_deadline", okerr_sql::NEXT_DEADLINE, 0),
        ] {
            // A statement prepared in SQL, so that its plan is the generic one (a statement
            // sent with its parameters is planned for their values).
            let (types, params) = match binds {
                0 => (String::new(), String::new()),
                n => (
                    format!("({})", vec!["bigint"; n].join(", ")),
                    format!("({})", vec!["0"; n].join(", ")),
                ),
            };
            let prepare = format!("PREPARE okerr_plan{types} AS {sql}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(prepare))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let explain = format!("EXPLAIN EXECUTE okerr_plan{params}");
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(explain))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::raw_sql("DEALLOCATE okerr_plan")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            plans.push((name, rows.iter().map(|r| r.get::<String, _>(0)).collect()));
        }
        tx.rollback().await.map_err(backend)?;
        Ok(plans)
    }

    const BACKEND: &'static str = DIALECT.name;

    fn sql() -> &'static Statements {
        &STATEMENTS
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn write_conn(&self) -> Result<WriteConn<Postgres>, StorageError> {
        Ok(Box::new(self.pool.acquire().await.map_err(backend)?))
    }

    async fn begin_write(&self) -> Result<WriteTx<Postgres>, StorageError> {
        WriteTx::begin(self.write_conn().await?, DIALECT.begin)
            .await
            .map_err(backend)
    }

    /// Locks the rows a batch changes in id order (see [`LOCK_SQL`]).
    async fn lock_indicators(tx: &mut WriteTx<Postgres>, ids: &[i64]) -> Result<(), sqlx::Error> {
        if ids.len() > 1 {
            sqlx::query(LOCK_SQL).bind(ids).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes a batch of changes to stored indicators in one statement ([`AT_ONCE_SQL`]).
    /// A batch that cannot be encoded is an `Encode` error.
    async fn commit_at_once(&self, plan: &mut BatchPlan) -> Result<AtOnce, sqlx::Error> {
        if !plan.write_at_once() {
            return Ok(AtOnce::NotTried);
        }
        let encode = |e: StorageError| sqlx::Error::Encode(Box::new(e));
        let indicators = plan.updates().map_err(encode)?;
        let log = plan.log_rows().map_err(encode)?;
        let outbox = plan.outbox_rows().map_err(encode)?;
        // Every commit left is one of these changes (`write_at_once` said so).
        let expected =
            i64::try_from(indicators.len()).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let written = sqlx::query(AT_ONCE_SQL)
            .bind(indicators.ints(0))
            .bind(indicators.ints(1))
            .bind(indicators.ints(2))
            .bind(indicators.texts(3))
            .bind(indicators.texts(4))
            .bind(indicators.ints(5))
            .bind(log.ints(0))
            .bind(log.ints(1))
            .bind(log.texts(2))
            .bind(log.texts(3))
            .bind(outbox.ints(0))
            .bind(outbox.ints(1))
            .bind(outbox.ints(2))
            .bind(outbox.texts(3))
            .bind(outbox.texts(4))
            .bind(outbox.ints(5))
            .bind(expected)
            .execute(&self.pool)
            .await;
        match written {
            Ok(_) => Ok(AtOnce::Written),
            Err(sqlx::Error::Database(e)) if e.code().is_some_and(|c| NOT_WHOLE.contains(&&*c)) => {
                Ok(AtOnce::NotWhole)
            }
            Err(e) => Err(e),
        }
    }

    /// Claims due indicators, as rows of `id, version, data`.
    async fn claim_due_rows(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PgRow>, StorageError> {
        self.claim(CLAIM_DUE_SQL, now, lease_until, limit).await
    }

    /// Claims released notifications, as rows of [`okerr_sql::OUTBOX_COLUMNS`].
    async fn claim_notification_rows(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PgRow>, StorageError> {
        self.claim(CLAIM_NOTIFICATIONS_SQL, now, lease_until, limit)
            .await
    }
}

impl PostgresStorage {
    /// Runs one of the claim statements (`$1` now, `$2` the lease's end, `$3` the limit).
    async fn claim(
        &self,
        sql: &'static str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PgRow>, StorageError> {
        sqlx::query(sql)
            .bind(micros(now))
            .bind(micros(lease_until))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::backend(DIALECT.name, e)
}

okerr_sql::sql_storage!(PostgresStorage, Postgres);
