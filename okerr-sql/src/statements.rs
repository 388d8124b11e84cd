//! Every statement both backends run, written once.
//!
//! The dialects agree on almost everything: `$N` placeholders (sqlx's SQLite driver binds
//! them too), `RETURNING`, `ON CONFLICT`, `UPDATE … FROM`, common table expressions of
//! `VALUES`. Sets of rows (a batch of indicators, log lines, ids) are bound as plain
//! parameters of such a table, `j` ([`RowsSql`]); an indicator or notification travels
//! in its row as its JSON text, which is what the `data` columns hold. What differs is
//! given by a [`Dialect`].

use crate::rows::{Placeholders, RowsSql};

/// What a backend's SQL says differently.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// The backend's name in errors.
    pub name: &'static str,
    /// The statement that begins a write transaction.
    pub begin: &'static str,
    /// How statements over sets of rows write their parameters.
    pub placeholders: Placeholders,
    /// How a batch's `UPDATE` of indicators begins. SQLite's `UPDATE OR FAIL` needs no
    /// statement journal (a copy of every page the statement changes, in case it must be
    /// undone alone): a statement that fails fails its whole transaction here anyway.
    pub update_batch: &'static str,
}

/// The statements of one dialect.
#[derive(Debug)]
pub struct Statements {
    /// `$1` id, `$2` data, `$3` version, `$4` expected version.
    pub save_project: String,
    /// `$1` data; returns the id.
    pub insert_project: String,
    /// `$1` id.
    pub project_exists: String,
    /// `$1` id; id, version, data.
    pub project: String,
    /// `$1` textid; id, version, data.
    pub project_by_textid: String,
    /// id, version, data of every project.
    pub projects: String,
    /// Rows `id`: id, version of the projects that exist.
    pub project_versions: RowsSql,
    /// `$1` project id.
    pub delete_textids: String,
    /// `$1` textid, `$2` project id, `$3` position.
    pub insert_textid: String,
    /// `$1` project id, `$2` name; id, version, data.
    pub indicator: String,
    /// `$1` project id; id, version, data by name.
    pub indicators: String,
    /// Rows `project_id, name`: id, version, data of the indicators that exist.
    pub indicators_by_name: RowsSql,
    /// `$1` project id; the count.
    pub count_indicators: String,
    /// Rows `id, version (the new one), due_at, data, name, project_version`: the ids
    /// updated (those at the version before and of that name, in a project at
    /// `project_version` unless it is NULL). The name is matched, never set: a commit does
    /// not rename, and SQLite rewrites the entry of every index on a column the `SET`
    /// names, even to its own value (`UNIQUE (project_id, name)` was a page written per
    /// update).
    pub update_indicators: RowsSql,
    /// Rows `project_id, name, due_at, data, project_version`: id, project id, name of those
    /// inserted (in a project that exists, at `project_version` unless it is NULL). They
    /// are inserted in the order of their keys, so that two nodes inserting the same new
    /// names wait for each other in the same order instead of deadlocking.
    pub insert_indicators: RowsSql,
    /// `$1` indicator id, `$2` reduction key, `$3` release time; the ids deleted.
    pub cancel_held: String,
    /// Rows `indicator_id, at, kind, message`, inserted in order.
    pub insert_log: RowsSql,
    /// Rows `project_id, indicator_id, release_at, reduction_key, data`, inserted in order.
    pub insert_outbox: RowsSql,
    /// `$1` project id, `$2` name.
    pub delete_indicator: String,
    /// `$1` project id, `$2` name, `$3` limit; time, kind, message, newest first.
    pub log: String,
    /// The earliest `due_at` and `available_at`.
    pub next_deadline: String,
    /// `$1` time; rows `id`.
    pub mark_delivered: RowsSql,
    /// `$1` id, `$2` error, `$3` time; the id when it was undelivered.
    pub retry: String,
    /// `$1` time, `$2` error; rows `id`: [`Statements::retry`] for each undelivered one.
    pub retry_many: RowsSql,
    /// `$1` id.
    pub notification_exists: String,
    /// `$1` id, `$2` why, `$3` time: a row that is no notification is a dead letter.
    pub park: String,
    /// `$1` project id; the project's outbox rows.
    pub outbox: String,
    /// `$1` key.
    pub setting: String,
    /// `$1` key, `$2` value.
    pub put_setting: String,
    /// `$1` key, `$2` value; the key when it was stored.
    pub put_setting_if_absent: String,
    /// `$1` now: ends the leases of indicators still held; the count.
    pub release_indicator_claims: String,
    /// Clears the lease markers of indicators.
    pub clear_indicator_leases: String,
    /// `$1` now: ends the leases of notifications still held; the count.
    pub release_notification_claims: String,
    /// Clears the lease markers of notifications.
    pub clear_notification_leases: String,
    /// `$1` the lease held, `$2` the new lease end; rows `id`: the ids renewed.
    pub renew_notifications: RowsSql,
    /// `$1` the time held back to, `$2` now: the notifications held back to `$1` become
    /// claimable from `$2`.
    pub release_held_notifications: String,
    /// `$1` id, `$2` error, `$3` time; the id when it was undelivered.
    pub dead_letter: String,
    /// `$1` time, `$2` limit: the log lines older than `$1` among the oldest `$2`.
    pub prune_log_age: String,
    /// `$1` a log id, `$2` limit; id, indicator id of the lines after it, in id order.
    pub log_after: String,
    /// `$1` lines to keep, `$2` limit; rows `indicator_id`: deletes their lines beyond the
    /// newest `$1`.
    pub prune_log_lines: RowsSql,
    /// `$1` time, `$2` limit: deletes notifications delivered before `$1`.
    pub purge_delivered: String,
    /// `$1` time, `$2` limit: deletes dead letters dead before `$1`.
    pub purge_dead: String,
}

/// The columns of an outbox row, in the order [`crate::codec::OutboxRow`] reads them.
pub const OUTBOX_COLUMNS: &str =
    "id, indicator_id, attempts, delivered_at, last_error, data, dead_at";

impl Statements {
    /// The statements in `dialect`.
    pub fn new(dialect: &Dialect) -> Statements {
        let rows =
            |scalars, columns, body| RowsSql::new(dialect.placeholders, scalars, columns, body);
        const IDS: &[&str] = &["id"];
        Statements {
            save_project:
                "UPDATE projects SET data = $2, version = $3 WHERE id = $1 AND version = $4".into(),
            insert_project: "INSERT INTO projects (data, version) VALUES ($1, 0) RETURNING id"
                .into(),
            project_exists: "SELECT id FROM projects WHERE id = $1".into(),
            project: "SELECT id, version, data FROM projects WHERE id = $1".into(),
            project_by_textid: "SELECT p.id, p.version, p.data FROM textids t
                 JOIN projects p ON p.id = t.project_id WHERE t.textid = $1"
                .into(),
            projects: "SELECT id, version, data FROM projects ORDER BY id".into(),
            project_versions: rows(
                0,
                IDS,
                "SELECT id, version FROM projects WHERE id IN (SELECT j.id FROM j)",
            ),
            delete_textids: "DELETE FROM textids WHERE project_id = $1".into(),
            insert_textid: "INSERT INTO textids (textid, project_id, position) VALUES ($1, $2, $3)"
                .into(),
            indicator:
                "SELECT id, version, data FROM indicators WHERE project_id = $1 AND name = $2"
                    .into(),
            indicators:
                "SELECT id, version, data FROM indicators WHERE project_id = $1 ORDER BY name"
                    .into(),
            indicators_by_name: rows(
                0,
                &["project_id", "name"],
                "SELECT i.id, i.version, i.data FROM j
                 JOIN indicators i ON i.project_id = j.project_id AND i.name = j.name",
            ),
            count_indicators: "SELECT COUNT(*) FROM indicators WHERE project_id = $1".into(),
            update_indicators: rows(
                0,
                &["id", "version", "due_at", "data", "name", "project_version"],
                &format!(
                    "{} indicators SET version = j.version, due_at = j.due_at, data = j.data
                 FROM j WHERE indicators.id = j.id AND indicators.version = j.version - 1
                 AND indicators.name = j.name
                 AND (j.project_version IS NULL OR j.project_version =
                     (SELECT p.version FROM projects p WHERE p.id = indicators.project_id))
                 RETURNING indicators.id",
                    dialect.update_batch
                ),
            ),
            insert_indicators: rows(
                0,
                &["project_id", "name", "due_at", "data", "project_version"],
                "INSERT INTO indicators (project_id, name, version, due_at, data)
                 SELECT j.project_id, j.name, 1, j.due_at, j.data FROM j
                 WHERE EXISTS (SELECT 1 FROM projects p WHERE p.id = j.project_id
                     AND (j.project_version IS NULL OR p.version = j.project_version))
                 ORDER BY j.project_id, j.name
                 ON CONFLICT (project_id, name) DO NOTHING
                 RETURNING id, project_id, name",
            ),
            cancel_held: "DELETE FROM outbox WHERE indicator_id = $1 AND reduction_key = $2
                 AND release_at = $3 AND delivered_at IS NULL AND claims = 0 RETURNING id"
                .into(),
            insert_log: rows(
                0,
                &["indicator_id", "at", "kind", "message"],
                "INSERT INTO log (indicator_id, time, kind, message)
                 SELECT j.indicator_id, j.at, j.kind, j.message FROM j
                 WHERE j.indicator_id IS NOT NULL ORDER BY j.pos",
            ),
            insert_outbox: rows(
                0,
                &[
                    "project_id",
                    "indicator_id",
                    "release_at",
                    "reduction_key",
                    "data",
                    "available_at",
                ],
                "INSERT INTO outbox
                     (project_id, indicator_id, release_at, available_at, reduction_key, data)
                 SELECT j.project_id, j.indicator_id, j.release_at, j.available_at,
                     j.reduction_key, j.data
                 FROM j WHERE j.project_id IS NOT NULL ORDER BY j.pos",
            ),
            delete_indicator: "DELETE FROM indicators WHERE project_id = $1 AND name = $2".into(),
            log: "SELECT l.time, l.kind, l.message FROM log l
                 JOIN indicators i ON i.id = l.indicator_id
                 WHERE i.project_id = $1 AND i.name = $2
                 ORDER BY l.id DESC LIMIT $3"
                .into(),
            next_deadline: NEXT_DEADLINE.into(),
            mark_delivered: rows(
                1,
                IDS,
                "UPDATE outbox SET delivered_at = $1, available_at = NULL
                 WHERE id IN (SELECT j.id FROM j)",
            ),
            retry: "UPDATE outbox SET attempts = attempts + 1, last_error = $2, available_at = $3
                 WHERE id = $1 AND delivered_at IS NULL RETURNING id"
                .into(),
            retry_many: rows(
                2,
                IDS,
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, available_at = $1
                 WHERE id IN (SELECT j.id FROM j) AND delivered_at IS NULL",
            ),
            notification_exists: "SELECT id FROM outbox WHERE id = $1".into(),
            park:
                "UPDATE outbox SET available_at = NULL, last_error = $2, dead_at = $3 WHERE id = $1"
                    .into(),
            outbox: format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE project_id = $1 ORDER BY id"
            ),
            setting: "SELECT value FROM settings WHERE key = $1".into(),
            put_setting: "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                .into(),
            put_setting_if_absent: "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO NOTHING RETURNING key"
                .into(),
            release_indicator_claims: "UPDATE indicators SET due_at = $1, lease_until = NULL
                 WHERE lease_until IS NOT NULL AND due_at = lease_until AND due_at > $1"
                .into(),
            clear_indicator_leases:
                "UPDATE indicators SET lease_until = NULL WHERE lease_until IS NOT NULL".into(),
            release_notification_claims: "UPDATE outbox SET available_at = $1, lease_until = NULL
                 WHERE lease_until IS NOT NULL AND available_at = lease_until
                 AND available_at > $1"
                .into(),
            clear_notification_leases:
                "UPDATE outbox SET lease_until = NULL WHERE lease_until IS NOT NULL".into(),
            release_held_notifications: "UPDATE outbox SET available_at = $2
                 WHERE available_at = $1 AND lease_until IS NULL
                 AND delivered_at IS NULL AND dead_at IS NULL"
                .into(),
            renew_notifications: rows(
                2,
                IDS,
                "UPDATE outbox SET available_at = $2, lease_until = $2
                 WHERE id IN (SELECT j.id FROM j) AND lease_until = $1 AND available_at = $1
                 AND delivered_at IS NULL RETURNING id",
            ),
            dead_letter: "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                 available_at = NULL, dead_at = $3
                 WHERE id = $1 AND delivered_at IS NULL RETURNING id"
                .into(),
            prune_log_age: "DELETE FROM log
                 WHERE id IN (SELECT id FROM log ORDER BY id LIMIT $2) AND time < $1"
                .into(),
            log_after: "SELECT id, indicator_id FROM log WHERE id > $1 ORDER BY id LIMIT $2".into(),
            prune_log_lines: rows(
                2,
                &["indicator_id"],
                ", cut AS MATERIALIZED (
                     SELECT c.ind, (SELECT x.id FROM log x WHERE x.indicator_id = c.ind
                                    ORDER BY x.id DESC LIMIT 1 OFFSET $1) AS below
                     FROM (SELECT DISTINCT j.indicator_id AS ind FROM j
                           WHERE j.indicator_id IS NOT NULL) c
                 )
                 DELETE FROM log WHERE id IN (
                     SELECT l.id FROM cut JOIN log l
                     ON l.indicator_id = cut.ind AND l.id <= cut.below LIMIT $2
                 )",
            ),
            purge_delivered: "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                 WHERE delivered_at IS NOT NULL AND delivered_at < $1
                 ORDER BY delivered_at LIMIT $2)"
                .into(),
            purge_dead: "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                 WHERE dead_at IS NOT NULL AND dead_at < $1 ORDER BY dead_at LIMIT $2)"
                .into(),
        }
    }
}

/// The earliest deadline of an indicator and of a notification: the first entry of the
/// partial indexes `indicators_due` and `outbox_available`.
pub const NEXT_DEADLINE: &str =
    "SELECT (SELECT MIN(due_at) FROM indicators WHERE due_at IS NOT NULL),
            (SELECT MIN(available_at) FROM outbox WHERE available_at IS NOT NULL)";
