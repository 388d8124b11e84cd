//! The SQL layer that okerr's SQLite and PostgreSQL backends share.
//!
//! Both backends store the same tables (see their `migrations/`) and run the same
//! statements: they are written once, in [`Statements`], with what the dialects say
//! differently given by a [`Dialect`]. The row codec ([`codec`]) and the bookkeeping of a
//! batched commit ([`BatchPlan`]) are plain Rust. What runs the statements through sqlx is
//! [`sql_storage!`]: it implements [`okerr::Storage`] for a backend's type with that
//! backend's concrete sqlx types, so the code is written once without generic sqlx bounds.
//!
//! What stays in each backend crate is what its database really does differently: how it
//! connects, how a write transaction begins and locks, how due work is claimed (SQLite's
//! one writer against PostgreSQL's `FOR UPDATE SKIP LOCKED`), and its migrations.
//!
//! This crate holds no okerr decision and never reads a clock: every time is bound by the
//! caller.

#![forbid(unsafe_code)]

pub mod codec;
mod plan;
pub mod rows;
mod statements;
mod write;

pub use plan::{AtOnce, BatchPlan, Cancel};
pub use rows::{Placeholders, Rows, RowsSql, Value};
pub use statements::{Dialect, NEXT_DEADLINE, OUTBOX_COLUMNS, Statements};
pub use write::{WriteConn, WriteTx};

/// Implements [`okerr::Storage`] for a backend type on the shared statements.
///
/// `sql_storage!(Type, Database)` expects, as inherent items of `Type`:
/// - `const BACKEND: &'static str` (the backend's name in errors);
/// - `fn sql() -> &'static Statements`;
/// - `fn reader(&self) -> &sqlx::Pool<Database>` (reads);
/// - `async fn write_conn(&self) -> Result<WriteConn<Database>, StorageError>` (a connection
///   to write on, held until dropped: [`WriteConn`]);
/// - `async fn begin_write(&self) -> Result<WriteTx<Database>, StorageError>`;
/// - `async fn lock_indicators(tx: &mut WriteTx<Database>, ids: &[i64]) -> Result<(), sqlx::Error>`
///   (lock the rows a batch changes, in id order, where the database needs it);
/// - `async fn commit_at_once(&self, plan: &mut BatchPlan) -> Result<AtOnce, sqlx::Error>`
///   (write a batch in one statement where the database can, else [`AtOnce::NotTried`]);
/// - `async fn claim_due_rows(&self, now, lease_until, limit) -> Result<Vec<Row>, StorageError>`
///   (rows of `id, version, data`) and `async fn claim_notification_rows(&self, now,
///   lease_until, limit) -> Result<Vec<Row>, StorageError>` (rows of [`OUTBOX_COLUMNS`]):
///   the claimed rows, decoded here.
///
/// The crate that invokes it depends on `sqlx`, `async-trait`, `chrono` and `okerr-lib`.
#[macro_export]
macro_rules! sql_storage {
    ($ty:ty, $db:ty) => {
        const _: () = {
            use ::chrono::{DateTime, Utc};
            use ::okerr::storage::{Commit, GroupResult, Pruned, Storage, StorageError};
            use ::okerr::{
                Indicator, IndicatorName, LogLine, NewProject, NotificationId, OutboxEntry,
                Project, ProjectId,
            };
            use ::sqlx::Row as _;
            use $crate::codec::{self, micros};

            type Tx = $crate::WriteTx<$db>;
            type DbRow = <$db as ::sqlx::Database>::Row;
            type Query = ::sqlx::query::Query<'static, $db, <$db as ::sqlx::Database>::Arguments>;

            /// `statement` over each chunk of `rows`, with its plain parameters bound first
            /// by `scalars`.
            fn rows_queries<'r>(
                statement: &'static $crate::RowsSql,
                rows: &'r $crate::Rows<'_>,
                scalars: impl Fn(Query) -> Query + 'r,
            ) -> impl Iterator<Item = Query> + 'r {
                rows.chunks().map(move |chunk| {
                    let mut query = ::sqlx::query(statement.text(chunk.padded_rows()));
                    if statement.scalars_first() {
                        query = scalars(query);
                    }
                    for value in chunk.values() {
                        query = match value {
                            $crate::Value::Int(v) => query.bind(v),
                            $crate::Value::Text(v) => query.bind(v.as_deref()),
                        };
                    }
                    if !statement.scalars_first() {
                        query = scalars(query);
                    }
                    query
                })
            }

            /// The rows `statement` returns over every chunk of `rows`, run by `executor`.
            macro_rules! fetch_rows {
                ($statement:expr, $rows:expr, $scalars:expr, $executor:expr) => {{
                    let mut fetched: Vec<DbRow> = Vec::new();
                    for query in rows_queries($statement, $rows, $scalars) {
                        fetched.extend(query.fetch_all($executor).await.map_err(write_error)?);
                    }
                    fetched
                }};
            }

            /// The rows `ids` as a set of rows `id`.
            fn id_rows(ids: impl IntoIterator<Item = i64>) -> $crate::Rows<'static> {
                let mut rows = $crate::Rows::new(1);
                for id in ids {
                    rows.push([$crate::Value::from(id)]);
                }
                rows
            }

            fn backend(e: impl ::std::error::Error + Send + Sync + 'static) -> StorageError {
                StorageError::backend(<$ty>::BACKEND, e)
            }

            /// An error of a write: a transaction the database aborted to break a
            /// deadlock or a serialization failure (PostgreSQL's `40P01`, `40001`) wrote
            /// nothing and is a `Conflict`, to decide again; anything else is the backend's.
            fn write_error(e: ::sqlx::Error) -> StorageError {
                if let ::sqlx::Error::Database(d) = &e
                    && matches!(d.code().as_deref(), Some("40P01" | "40001"))
                {
                    return StorageError::conflict("transaction", d.message());
                }
                backend(e)
            }

            fn get<'r, T>(row: &'r DbRow, i: usize) -> Result<T, StorageError>
            where
                T: ::sqlx::Decode<'r, $db> + ::sqlx::Type<$db>,
            {
                row.try_get(i).map_err(backend)
            }

            fn project_row(row: &DbRow) -> Result<Project, StorageError> {
                codec::project(<$ty>::BACKEND, get(row, 0)?, get(row, 1)?, get(row, 2)?)
            }

            fn indicator_row(row: &DbRow) -> Result<Indicator, StorageError> {
                codec::indicator(<$ty>::BACKEND, get(row, 0)?, get(row, 1)?, get(row, 2)?)
            }

            fn outbox_row(row: &DbRow) -> Result<OutboxEntry, StorageError> {
                codec::outbox_entry(
                    <$ty>::BACKEND,
                    codec::OutboxRow {
                        id: get(row, 0)?,
                        indicator_id: get(row, 1)?,
                        attempts: get(row, 2)?,
                        delivered_at: get(row, 3)?,
                        last_error: get(row, 4)?,
                        data: get(row, 5)?,
                        dead_at: get(row, 6)?,
                    },
                )
            }

            /// Runs `statement` with `$1` the time `at` over the rows `id` of `ids`.
            async fn outbox_ids_at(
                storage: &$ty,
                statement: &'static $crate::RowsSql,
                ids: &[NotificationId],
                at: DateTime<Utc>,
            ) -> Result<(), StorageError> {
                outbox_ids(storage, statement, ids, |q| q.bind(micros(at))).await
            }

            /// Runs `statement` over the rows `id` of `ids`, chunk by chunk, with its plain
            /// parameters bound by `scalars`.
            async fn outbox_ids(
                storage: &$ty,
                statement: &'static $crate::RowsSql,
                ids: &[NotificationId],
                scalars: impl Fn(Query) -> Query,
            ) -> Result<(), StorageError> {
                let rows = id_rows(ids.iter().map(|id| id.0));
                let mut conn = storage.write_conn().await?;
                for query in rows_queries(statement, &rows, scalars) {
                    query.execute(&mut **conn).await.map_err(backend)?;
                }
                Ok(())
            }

            /// Runs `statement` on one notification with `$1` its id, `$2` an error and `$3`
            /// the time `at`; `NotFound` when it wrote nothing and no such notification
            /// exists (one that exists but was not in the state the statement wants is fine).
            async fn notification_with_error(
                storage: &$ty,
                statement: &'static str,
                id: NotificationId,
                error: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StorageError> {
                let mut conn = storage.write_conn().await?;
                let done = ::sqlx::query(statement)
                    .bind(id.0)
                    .bind(error)
                    .bind(micros(at))
                    .fetch_optional(&mut **conn)
                    .await
                    .map_err(backend)?;
                if done.is_none() {
                    let exists = ::sqlx::query(<$ty>::sql().notification_exists.as_str())
                        .bind(id.0)
                        .fetch_optional(&mut **conn)
                        .await
                        .map_err(backend)?;
                    if exists.is_none() {
                        return Err(StorageError::not_found("notification", id));
                    }
                }
                Ok(())
            }

            async fn write_textids(tx: &mut Tx, project: &Project) -> Result<(), StorageError> {
                let sql = <$ty>::sql();
                ::sqlx::query(sql.delete_textids.as_str())
                    .bind(project.id.0)
                    .execute(&mut **tx)
                    .await
                    .map_err(backend)?;
                for (position, textid) in project.textids().enumerate() {
                    let position = i64::try_from(position).map_err(backend)?;
                    ::sqlx::query(sql.insert_textid.as_str())
                        .bind(textid.as_str())
                        .bind(project.id.0)
                        .bind(position)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| match &e {
                            ::sqlx::Error::Database(d)
                                if d.kind() == ::sqlx::error::ErrorKind::UniqueViolation =>
                            {
                                StorageError::conflict("textid", textid)
                            }
                            _ => backend(e),
                        })?;
                }
                Ok(())
            }

            /// One round of a batch: `true` when it was written whole.
            async fn write_round(
                tx: &mut Tx,
                plan: &mut $crate::BatchPlan,
            ) -> Result<bool, StorageError> {
                let sql = <$ty>::sql();
                plan.start_round();
                <$ty>::lock_indicators(tx, &plan.update_ids())
                    .await
                    .map_err(write_error)?;
                let rows = plan.updates()?;
                let updated = fetch_rows!(&sql.update_indicators, &rows, |q| q, &mut **tx)
                    .iter()
                    .map(|row| get::<i64>(row, 0))
                    .collect::<Result<Vec<_>, _>>()?;
                let rows = plan.inserts()?;
                let inserted = fetch_rows!(&sql.insert_indicators, &rows, |q| q, &mut **tx)
                    .iter()
                    .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?)))
                    .collect::<Result<Vec<_>, StorageError>>()?;
                plan.record_writes(&updated, &inserted);
                for (group, id, key, release) in plan.cancels() {
                    let deleted = ::sqlx::query(sql.cancel_held.as_str())
                        .bind(id)
                        .bind(key.as_str())
                        .bind(release)
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(write_error)?;
                    if deleted.is_empty() {
                        plan.fail_group(group, StorageError::conflict("held alert", &key));
                    }
                }
                if plan.round_failed() {
                    return Ok(false);
                }
                for (statement, rows) in [
                    (&sql.insert_log, plan.log_rows()?),
                    (&sql.insert_outbox, plan.outbox_rows()?),
                ] {
                    for query in rows_queries(statement, &rows, |q| q) {
                        query.execute(&mut **tx).await.map_err(write_error)?;
                    }
                }
                Ok(true)
            }

            /// Reads the stored versions of the projects the batch writes to and fails the
            /// commits they make stale (only after a first round that was not whole).
            async fn check_project_versions(
                tx: &mut Tx,
                plan: &mut $crate::BatchPlan,
            ) -> Result<(), StorageError> {
                let mut versions = ::std::collections::HashMap::new();
                let sql = <$ty>::sql();
                let projects = plan.project_ids();
                for row in fetch_rows!(&sql.project_versions, &projects, |q| q, &mut **tx) {
                    versions.insert(get::<i64>(&row, 0)?, get::<i64>(&row, 1)?);
                }
                plan.check_projects(&versions);
                Ok(())
            }

            async fn savepoint(tx: &mut Tx, statement: &'static str) -> Result<(), StorageError> {
                ::sqlx::query(statement)
                    .execute(&mut **tx)
                    .await
                    .map(|_| ())
                    .map_err(write_error)
            }

            #[::async_trait::async_trait]
            impl Storage for $ty {
                async fn create_project(
                    &self,
                    project: NewProject,
                ) -> Result<Project, StorageError> {
                    let mut tx = self.begin_write().await?;
                    let placeholder = project.clone().with_id(ProjectId(0));
                    let row = ::sqlx::query(<$ty>::sql().insert_project.as_str())
                        .bind(codec::to_json(<$ty>::BACKEND, &placeholder)?)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend)?;
                    let project = project.with_id(ProjectId(get(&row, 0)?));
                    write_textids(&mut tx, &project).await?;
                    tx.commit().await.map_err(backend)?;
                    Ok(project)
                }

                async fn save_project(&self, project: &Project) -> Result<(), StorageError> {
                    let sql = <$ty>::sql();
                    let mut tx = self.begin_write().await?;
                    let saved = Project {
                        version: project.version + 1,
                        ..project.clone()
                    };
                    let version = i64::try_from(project.version).map_err(backend)?;
                    let done = ::sqlx::query(sql.save_project.as_str())
                        .bind(project.id.0)
                        .bind(codec::to_json(<$ty>::BACKEND, &saved)?)
                        .bind(version + 1)
                        .bind(version)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    if done.rows_affected() == 0 {
                        let exists = ::sqlx::query(sql.project_exists.as_str())
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
                    ::sqlx::query(<$ty>::sql().project.as_str())
                        .bind(id.0)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend)?
                        .map(|row| project_row(&row))
                        .transpose()
                }

                async fn project_by_textid(
                    &self,
                    textid: &str,
                ) -> Result<Option<Project>, StorageError> {
                    ::sqlx::query(<$ty>::sql().project_by_textid.as_str())
                        .bind(textid)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend)?
                        .map(|row| project_row(&row))
                        .transpose()
                }

                async fn projects(&self) -> Result<Vec<Project>, StorageError> {
                    ::sqlx::query(<$ty>::sql().projects.as_str())
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend)?
                        .iter()
                        .map(project_row)
                        .collect()
                }

                async fn indicator(
                    &self,
                    project: ProjectId,
                    name: &IndicatorName,
                ) -> Result<Option<Indicator>, StorageError> {
                    ::sqlx::query(<$ty>::sql().indicator.as_str())
                        .bind(project.0)
                        .bind(name.as_str())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend)?
                        .map(|row| indicator_row(&row))
                        .transpose()
                }

                async fn indicators(
                    &self,
                    project: ProjectId,
                ) -> Result<Vec<Indicator>, StorageError> {
                    ::sqlx::query(<$ty>::sql().indicators.as_str())
                        .bind(project.0)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend)?
                        .iter()
                        .map(indicator_row)
                        .collect()
                }

                async fn indicators_by_name(
                    &self,
                    keys: &[(ProjectId, IndicatorName)],
                ) -> Result<Vec<Indicator>, StorageError> {
                    if keys.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut rows = $crate::Rows::new(2);
                    for (project, name) in keys {
                        rows.push([
                            $crate::Value::from(project.0),
                            $crate::Value::from(name.as_str()),
                        ]);
                    }
                    let sql = <$ty>::sql();
                    fetch_rows!(&sql.indicators_by_name, &rows, |q| q, self.reader())
                        .iter()
                        .map(indicator_row)
                        .collect()
                }

                async fn count_indicators(&self, project: ProjectId) -> Result<u64, StorageError> {
                    let row = ::sqlx::query(<$ty>::sql().count_indicators.as_str())
                        .bind(project.0)
                        .fetch_one(self.reader())
                        .await
                        .map_err(backend)?;
                    codec::unsigned(<$ty>::BACKEND, "count", get(&row, 0)?)
                }

                async fn commit_batch(
                    &self,
                    groups: Vec<Vec<Commit>>,
                ) -> Result<Vec<GroupResult>, StorageError> {
                    let sql = <$ty>::sql();
                    let mut plan = $crate::BatchPlan::new(<$ty>::BACKEND, groups);
                    if plan.is_done() {
                        return Ok(plan.finish());
                    }
                    // The first round is written without a savepoint and without reading
                    // the projects (its statements check their versions): it is almost
                    // always whole, and each statement is a round trip. A backend that can
                    // writes it as one statement. When a group fails in it, the
                    // transaction is rolled back and begun again, the projects are read
                    // (to tell a project that is gone from a conflict), and the rounds
                    // after that go in a savepoint each.
                    let mut tx;
                    let whole = match self.commit_at_once(&mut plan).await.map_err(write_error)? {
                        $crate::AtOnce::Written => return Ok(plan.finish()),
                        $crate::AtOnce::NotWhole => {
                            tx = self.begin_write().await?;
                            false
                        }
                        $crate::AtOnce::NotTried => {
                            tx = self.begin_write().await?;
                            let whole = write_round(&mut tx, &mut plan).await?;
                            if !whole {
                                tx.rollback().await.map_err(write_error)?;
                                tx = self.begin_write().await?;
                            }
                            whole
                        }
                    };
                    if !whole {
                        plan.restart();
                        check_project_versions(&mut tx, &mut plan).await?;
                        while !plan.is_done() {
                            savepoint(&mut tx, "SAVEPOINT okerr_batch").await?;
                            let whole = write_round(&mut tx, &mut plan).await?;
                            if !whole {
                                savepoint(&mut tx, "ROLLBACK TO SAVEPOINT okerr_batch").await?;
                            }
                            savepoint(&mut tx, "RELEASE SAVEPOINT okerr_batch").await?;
                            if whole {
                                break;
                            }
                        }
                    }
                    tx.commit().await.map_err(write_error)?;
                    Ok(plan.finish())
                }

                async fn delete_indicator(
                    &self,
                    project: ProjectId,
                    name: &IndicatorName,
                ) -> Result<bool, StorageError> {
                    let mut tx = self.begin_write().await?;
                    let done = ::sqlx::query(<$ty>::sql().delete_indicator.as_str())
                        .bind(project.0)
                        .bind(name.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    tx.commit().await.map_err(backend)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn log(
                    &self,
                    project: ProjectId,
                    name: &IndicatorName,
                    limit: u32,
                ) -> Result<Vec<LogLine>, StorageError> {
                    let rows = ::sqlx::query(<$ty>::sql().log.as_str())
                        .bind(project.0)
                        .bind(name.as_str())
                        .bind(i64::from(limit))
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend)?;
                    rows.iter()
                        .rev()
                        .map(|r| {
                            codec::log_line(
                                <$ty>::BACKEND,
                                get(r, 0)?,
                                get::<&str>(r, 1)?,
                                get(r, 2)?,
                            )
                        })
                        .collect()
                }

                async fn claim_due(
                    &self,
                    now: DateTime<Utc>,
                    lease_until: DateTime<Utc>,
                    limit: u32,
                ) -> Result<Vec<Indicator>, StorageError> {
                    self.claim_due_rows(now, lease_until, limit)
                        .await?
                        .iter()
                        .map(indicator_row)
                        .collect()
                }

                async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
                    let row = ::sqlx::query(<$ty>::sql().next_deadline.as_str())
                        .fetch_one(self.reader())
                        .await
                        .map_err(backend)?;
                    let due: Option<i64> = get(&row, 0)?;
                    let available: Option<i64> = get(&row, 1)?;
                    due.into_iter()
                        .chain(available)
                        .min()
                        .map(|m| codec::from_micros(<$ty>::BACKEND, m))
                        .transpose()
                }

                async fn claim_notifications(
                    &self,
                    now: DateTime<Utc>,
                    lease_until: DateTime<Utc>,
                    limit: u32,
                ) -> Result<Vec<OutboxEntry>, StorageError> {
                    let rows = self
                        .claim_notification_rows(now, lease_until, limit)
                        .await?;
                    let mut claimed = Vec::with_capacity(rows.len());
                    for row in &rows {
                        match outbox_row(row) {
                            Ok(entry) => claimed.push(entry),
                            Err(e) => {
                                // Parked: never claimed again, so one bad row cannot stop
                                // the others.
                                ::sqlx::query(<$ty>::sql().park.as_str())
                                    .bind(get::<i64>(row, 0)?)
                                    .bind(format!("unreadable, parked: {e}"))
                                    .bind(micros(now))
                                    .execute(&mut **self.write_conn().await?)
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
                    outbox_ids_at(self, &<$ty>::sql().mark_delivered, ids, now).await
                }

                async fn retry_notification(
                    &self,
                    id: NotificationId,
                    at: DateTime<Utc>,
                    error: &str,
                ) -> Result<(), StorageError> {
                    let statement = <$ty>::sql().retry.as_str();
                    notification_with_error(self, statement, id, error, at).await
                }

                async fn retry_notifications(
                    &self,
                    ids: &[NotificationId],
                    at: DateTime<Utc>,
                    error: &str,
                ) -> Result<(), StorageError> {
                    let error = error.to_owned();
                    let bind = |q: Query| q.bind(micros(at)).bind(error.clone());
                    outbox_ids(self, &<$ty>::sql().retry_many, ids, bind).await
                }

                async fn outbox(
                    &self,
                    project: ProjectId,
                ) -> Result<Vec<OutboxEntry>, StorageError> {
                    ::sqlx::query(<$ty>::sql().outbox.as_str())
                        .bind(project.0)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend)?
                        .iter()
                        .map(outbox_row)
                        .collect()
                }

                async fn setting(&self, key: &str) -> Result<Option<String>, StorageError> {
                    ::sqlx::query(<$ty>::sql().setting.as_str())
                        .bind(key)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend)?
                        .map(|row| get(&row, 0))
                        .transpose()
                }

                async fn put_setting(&self, key: &str, value: &str) -> Result<(), StorageError> {
                    ::sqlx::query(<$ty>::sql().put_setting.as_str())
                        .bind(key)
                        .bind(value)
                        .execute(&mut **self.write_conn().await?)
                        .await
                        .map(|_| ())
                        .map_err(backend)
                }

                async fn put_setting_if_absent(
                    &self,
                    key: &str,
                    value: &str,
                ) -> Result<bool, StorageError> {
                    let stored = ::sqlx::query(<$ty>::sql().put_setting_if_absent.as_str())
                        .bind(key)
                        .bind(value)
                        .fetch_optional(&mut **self.write_conn().await?)
                        .await
                        .map_err(backend)?;
                    Ok(stored.is_some())
                }
                async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
                    let sql = <$ty>::sql();
                    let mut tx = self.begin_write().await?;
                    let mut released = 0;
                    for (release, clear) in [
                        (&sql.release_indicator_claims, &sql.clear_indicator_leases),
                        (
                            &sql.release_notification_claims,
                            &sql.clear_notification_leases,
                        ),
                    ] {
                        released += ::sqlx::query(release.as_str())
                            .bind(micros(now))
                            .execute(&mut *tx)
                            .await
                            .map_err(backend)?
                            .rows_affected();
                        ::sqlx::query(clear.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(backend)?;
                    }
                    tx.commit().await.map_err(backend)?;
                    Ok(released)
                }

                async fn renew_notifications(
                    &self,
                    ids: &[NotificationId],
                    held_until: DateTime<Utc>,
                    lease_until: DateTime<Utc>,
                ) -> Result<Vec<NotificationId>, StorageError> {
                    let rows = id_rows(ids.iter().map(|id| id.0));
                    let bind = |q: Query| q.bind(micros(held_until)).bind(micros(lease_until));
                    let sql = <$ty>::sql();
                    let mut conn = self.write_conn().await?;
                    let renewed = fetch_rows!(&sql.renew_notifications, &rows, bind, &mut **conn);
                    let mut ids = renewed
                        .iter()
                        .map(|r| get::<i64>(r, 0).map(NotificationId))
                        .collect::<Result<Vec<_>, _>>()?;
                    ids.sort_unstable();
                    Ok(ids)
                }

                async fn release_held_notifications(
                    &self,
                    held_until: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> Result<u64, StorageError> {
                    ::sqlx::query(<$ty>::sql().release_held_notifications.as_str())
                        .bind(micros(held_until))
                        .bind(micros(now))
                        .execute(&mut **self.write_conn().await?)
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(backend)
                }

                async fn dead_letter(
                    &self,
                    id: NotificationId,
                    now: DateTime<Utc>,
                    error: &str,
                ) -> Result<(), StorageError> {
                    let statement = <$ty>::sql().dead_letter.as_str();
                    notification_with_error(self, statement, id, error, now).await
                }

                async fn prune_log(
                    &self,
                    keep: u32,
                    before: DateTime<Utc>,
                    limit: u32,
                ) -> Result<Pruned, StorageError> {
                    const PRUNED_TO: &str = "okerr.log_pruned_to";
                    let sql = <$ty>::sql();
                    let chunk = u64::from(limit.max(1));
                    let limit = i64::from(limit.max(1));
                    // Old lines are at the head of the log: its first ids.
                    let aged = ::sqlx::query(sql.prune_log_age.as_str())
                        .bind(micros(before))
                        .bind(limit)
                        .execute(&mut **self.write_conn().await?)
                        .await
                        .map_err(backend)?
                        .rows_affected();
                    if aged > 0 {
                        return Ok(Pruned {
                            deleted: aged,
                            more: true,
                        });
                    }
                    // Lines beyond the newest `keep`: only indicators with lines after the
                    // mark of the last pass can have them.
                    let mark: i64 = match self.setting(PRUNED_TO).await? {
                        Some(v) => v.parse().map_err(backend)?,
                        None => 0,
                    };
                    let fresh = ::sqlx::query(sql.log_after.as_str())
                        .bind(mark)
                        .bind(limit)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend)?;
                    let Some(last) = fresh.last() else {
                        return Ok(Pruned {
                            deleted: aged,
                            more: false,
                        });
                    };
                    let last: i64 = get(last, 0)?;
                    let mut inds = fresh
                        .iter()
                        .map(|r| get::<i64>(r, 1))
                        .collect::<Result<Vec<i64>, _>>()?;
                    inds.sort_unstable();
                    inds.dedup();
                    let inds = id_rows(inds);
                    let mut cut = 0;
                    let bind = |q: Query| q.bind(i64::from(keep)).bind(limit);
                    for query in rows_queries(&sql.prune_log_lines, &inds, bind) {
                        cut += query
                            .execute(&mut **self.write_conn().await?)
                            .await
                            .map_err(backend)?
                            .rows_affected();
                        if cut >= chunk {
                            break;
                        }
                    }
                    if cut < chunk {
                        // These indicators are within bounds: the next pass starts after.
                        self.put_setting(PRUNED_TO, &last.to_string()).await?;
                    }
                    Ok(Pruned {
                        deleted: aged + cut,
                        more: cut >= chunk || fresh.len() as u64 >= chunk,
                    })
                }

                async fn purge_outbox(
                    &self,
                    before: DateTime<Utc>,
                    limit: u32,
                ) -> Result<u64, StorageError> {
                    let sql = <$ty>::sql();
                    let mut purged = 0;
                    for statement in [&sql.purge_delivered, &sql.purge_dead] {
                        let left = u64::from(limit).saturating_sub(purged);
                        if left == 0 {
                            break;
                        }
                        purged += ::sqlx::query(statement.as_str())
                            .bind(micros(before))
                            .bind(i64::try_from(left).map_err(backend)?)
                            .execute(&mut **self.write_conn().await?)
                            .await
                            .map_err(backend)?
                            .rows_affected();
                    }
                    Ok(purged)
                }
            }
        };
    };
}

/// The backend half of `okerr::conformance::unreadable_notifications_are_parked` (feature
/// `test-util` of okerr-lib), for a storage of [`sql_storage!`] with
/// `fn pool(&self) -> &sqlx::Pool<_>`: runs the check's SQL on that pool. Both backends' tests invoke it, as
/// `okerr_sql::check_unreadable_notifications_are_parked!(storage)`; the crate that does
/// depends on `sqlx` and `okerr-lib`.
#[macro_export]
macro_rules! check_unreadable_notifications_are_parked {
    ($storage:expr) => {{
        let storage = $storage;
        let (pool, query_pool) = (storage.pool().clone(), storage.pool().clone());
        ::okerr::conformance::unreadable_notifications_are_parked(
            ::std::sync::Arc::new(storage),
            |sql| async move {
                ::sqlx::raw_sql(::sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .map(drop)
                    .expect("store the unreadable row");
            },
            |sql| async move {
                ::sqlx::query_as(::sqlx::AssertSqlSafe(sql))
                    .fetch_one(&query_pool)
                    .await
                    .expect("read the parked row")
            },
        )
        .await;
    }};
}
