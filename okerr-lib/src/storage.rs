//! The storage contract every backend fulfils.
//!
//! A backend stores and claims rows; it holds no okerr logic. What it must guarantee is
//! checked by the conformance suite (`okerr::conformance`, feature `test-util`), which every
//! backend runs.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::indicator::{HeldAlert, Indicator, LogLine};
use crate::name::IndicatorName;
use crate::outbox::{Notification, NotificationId, OutboxEntry};
use crate::project::{NewProject, Project, ProjectId};

/// An error of a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The row to change does not exist.
    #[error("{entity} {key} not found")]
    NotFound {
        /// What kind of row.
        entity: &'static str,
        /// Which one.
        key: String,
    },
    /// The row moved since it was read (version mismatch), or a unique key is taken.
    #[error("{entity} {key} changed concurrently or already exists")]
    Conflict {
        /// What kind of row.
        entity: &'static str,
        /// Which one.
        key: String,
    },
    /// The backend itself failed.
    #[error("{backend} storage failed")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StorageError {
    /// A [`StorageError::Conflict`].
    pub fn conflict(entity: &'static str, key: impl std::fmt::Display) -> Self {
        StorageError::Conflict {
            entity,
            key: key.to_string(),
        }
    }

    /// A [`StorageError::NotFound`].
    pub fn not_found(entity: &'static str, key: impl std::fmt::Display) -> Self {
        StorageError::NotFound {
            entity,
            key: key.to_string(),
        }
    }

    /// A [`StorageError::Backend`] of the backend named `backend`.
    pub fn backend(
        backend: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StorageError::Backend {
            backend,
            source: Box::new(source),
        }
    }

    /// Whether this is a [`StorageError::Conflict`]: re-read and decide again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict { .. })
    }
}

/// One decision, written atomically: the indicator's new state, its log lines, its new
/// notifications and the held alerts it cancels. All of it is stored, or none.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The indicator's new state. Its `version` is the version it was read at, 0 for a new
    /// indicator; storage writes `version + 1`. Its project and name say which indicator
    /// it is: a commit never renames (one whose name is not the stored indicator's fails
    /// with `Conflict`).
    pub indicator: Indicator,
    /// Log lines to append to the indicator's log.
    pub log: Vec<LogLine>,
    /// Notifications to add to the outbox, for this indicator.
    pub notifications: Vec<Notification>,
    /// Held alerts of this indicator to delete from the outbox (alert reduction). Each must
    /// still be undelivered and unclaimed, else the commit fails with `Conflict`.
    pub cancel: Vec<HeldAlert>,
    /// The version of the project this decision was made on, when it must still be the
    /// stored one (a decision made on a cached project): otherwise the commit fails with
    /// `Conflict` on entity `"project"`. `None` checks nothing.
    pub project_version: Option<u64>,
}

impl Commit {
    /// When storage first hands out one of its notifications (the earliest
    /// [`Notification::first_attempt`]), if it has any: a deadline it brings.
    pub fn first_attempt(&self) -> Option<DateTime<Utc>> {
        self.notifications
            .iter()
            .map(Notification::first_attempt)
            .min()
    }

    /// Takes in `next`, a later decision on the same indicator made on this one's result,
    /// so that this commit stores both: `next`'s state at this one's version, both logs and
    /// notifications in order, and the cancellations. An alert that `next` cancels and this
    /// one creates is neither stored nor cancelled.
    pub fn merge(&mut self, mut next: Commit) {
        next.cancel.retain(|held| {
            let created = self.notifications.iter().position(|n| {
                n.reduction_key.as_deref() == Some(held.key.as_str())
                    && n.release_at == held.release_at
            });
            match created {
                Some(i) => {
                    self.notifications.remove(i);
                    false
                }
                None => true,
            }
        });
        next.indicator.version = self.indicator.version;
        next.indicator.id = self.indicator.id;
        self.indicator = next.indicator;
        self.log.append(&mut next.log);
        self.notifications.append(&mut next.notifications);
        self.cancel.append(&mut next.cancel);
        self.project_version = self.project_version.or(next.project_version);
    }
}

/// For each group of a [`Storage::commit_batch`], the `Conflict` it fails with when it
/// repeats an indicator of an earlier group or of itself (the contract allows an indicator
/// in one commit per call), else `None`. For backends, so that they all apply the rule alike.
pub fn repeated_indicators(groups: &[Vec<Commit>]) -> Vec<Option<StorageError>> {
    let mut seen = std::collections::HashSet::new();
    groups
        .iter()
        .map(|group| {
            group
                .iter()
                .find(|c| !seen.insert((c.indicator.project, &c.indicator.name)))
                .map(|dup| StorageError::conflict("indicator", &dup.indicator.name))
        })
        .collect()
}

/// The result of one group of [`Storage::commit_batch`]: the indicators as stored, in the
/// order of the group's commits, or why none of the group was stored.
pub type GroupResult = Result<Vec<Indicator>, StorageError>;

/// Where okerr keeps projects, indicators, logs and the outbox.
///
/// # The contract
/// - [`commit`](Storage::commit) is atomic and optimistic: it fails with
///   [`StorageError::Conflict`] and changes nothing when the stored indicator's version is
///   not the commit's (or, for version 0, when the name exists). The engine then re-reads
///   and decides again, so no update is lost.
/// - Due work is found through an index on [`Indicator::due_at`], never by a scan:
///   [`claim_due`](Storage::claim_due) returns indicators whose `due_at <= now` and leases
///   them until `lease_until`, so that other nodes skip them meanwhile.
/// - Every time comes from the caller; a backend never reads a clock. Times are kept to
///   the microsecond at least (SQL backends store microseconds).
/// - A commit at a version above 0 for a name that no longer exists is a `Conflict` (the
///   engine re-reads and decides again), as is one for a name that exists at version 0.
/// - Indicator ids are never reused, since outbox entries refer to them.
/// - Log lines come back in commit order, also when they share a time.
/// - [`commit_batch`](Storage::commit_batch) stores each group all or none, and behaves as
///   the groups run one after another; an indicator appears in at most one of its commits.
/// - A commit with a `project_version` fails with `Conflict` when the project was saved
///   since (the engine decided on a cached copy: it reads the project again).
/// - A claim (`claim_due`, `claim_notifications`) leases rows until `lease_until`
///   inclusive: at `lease_until` they can be claimed again. Rows come back in the order of
///   their stored deadline (a lease end counts as one), ties unspecified.
/// - `retry_notification` ends the lease: the entry is claimable again from `at`.
/// - [`release_claims`](Storage::release_claims) ends every lease that is still held (a
///   node restarting after a crash takes back its own claims); a commit, delivery, retry
///   or dead letter ends a lease before that, and `release_claims` leaves those rows as
///   they are.
/// - [`renew_notifications`](Storage::renew_notifications) moves only leases still held
///   as claimed (later or earlier): not those another node claimed after the lease ended.
/// - A dead letter ([`dead_letter`](Storage::dead_letter)) is never claimed again and
///   stays visible in [`outbox`](Storage::outbox) with its `dead_at` until purged.
/// - [`prune_log`](Storage::prune_log) and [`purge_outbox`](Storage::purge_outbox) delete
///   in bounded chunks, so that a backlog never holds the writer long.
/// - Textids are unique across all projects, a project's own included; saving a project
///   frees the textids it no longer has.
/// - Indicator names are ordered by their bytes.
///
/// # Implementing a custom storage
/// Implement every method; the conformance suite checks the contract. A sketch that
/// delegates to [`MemoryStorage`](crate::MemoryStorage), as a decorator would:
///
/// ```
/// use async_trait::async_trait;
/// use chrono::{DateTime, Utc};
/// use okerr::storage::{Commit, GroupResult, Pruned, Storage, StorageError};
/// use okerr::{Indicator, IndicatorName, LogLine, MemoryStorage, NewProject,
///     NotificationId, OutboxEntry, Project, ProjectId};
///
/// #[derive(Debug, Default)]
/// struct Counting { inner: MemoryStorage, commits: std::sync::atomic::AtomicU64 }
///
/// #[async_trait]
/// impl Storage for Counting {
///     async fn create_project(&self, p: NewProject) -> Result<Project, StorageError> { self.inner.create_project(p).await }
///     async fn save_project(&self, p: &Project) -> Result<(), StorageError> { self.inner.save_project(p).await }
///     async fn project(&self, id: ProjectId) -> Result<Option<Project>, StorageError> { self.inner.project(id).await }
///     async fn project_by_textid(&self, t: &str) -> Result<Option<Project>, StorageError> { self.inner.project_by_textid(t).await }
///     async fn projects(&self) -> Result<Vec<Project>, StorageError> { self.inner.projects().await }
///     async fn indicator(&self, p: ProjectId, n: &IndicatorName) -> Result<Option<Indicator>, StorageError> { self.inner.indicator(p, n).await }
///     async fn indicators(&self, p: ProjectId) -> Result<Vec<Indicator>, StorageError> { self.inner.indicators(p).await }
///     async fn count_indicators(&self, p: ProjectId) -> Result<u64, StorageError> { self.inner.count_indicators(p).await }
///     async fn commit_batch(&self, g: Vec<Vec<Commit>>) -> Result<Vec<GroupResult>, StorageError> {
///         self.commits.fetch_add(g.iter().map(Vec::len).sum::<usize>() as u64, std::sync::atomic::Ordering::Relaxed);
///         self.inner.commit_batch(g).await
///     }
///     async fn indicators_by_name(&self, k: &[(ProjectId, IndicatorName)]) -> Result<Vec<Indicator>, StorageError> { self.inner.indicators_by_name(k).await }
///     async fn delete_indicator(&self, p: ProjectId, n: &IndicatorName) -> Result<bool, StorageError> { self.inner.delete_indicator(p, n).await }
///     async fn log(&self, p: ProjectId, n: &IndicatorName, limit: u32) -> Result<Vec<LogLine>, StorageError> { self.inner.log(p, n, limit).await }
///     async fn claim_due(&self, now: DateTime<Utc>, until: DateTime<Utc>, limit: u32) -> Result<Vec<Indicator>, StorageError> { self.inner.claim_due(now, until, limit).await }
///     async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> { self.inner.next_deadline().await }
///     async fn claim_notifications(&self, now: DateTime<Utc>, until: DateTime<Utc>, limit: u32) -> Result<Vec<OutboxEntry>, StorageError> { self.inner.claim_notifications(now, until, limit).await }
///     async fn mark_delivered(&self, ids: &[NotificationId], now: DateTime<Utc>) -> Result<(), StorageError> { self.inner.mark_delivered(ids, now).await }
///     async fn retry_notification(&self, id: NotificationId, at: DateTime<Utc>, error: &str) -> Result<(), StorageError> { self.inner.retry_notification(id, at, error).await }
///     async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StorageError> { self.inner.release_claims(now).await }
///     async fn renew_notifications(&self, ids: &[NotificationId], held: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<NotificationId>, StorageError> { self.inner.renew_notifications(ids, held, until).await }
///     async fn release_held_notifications(&self, held: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StorageError> { self.inner.release_held_notifications(held, now).await }
///     async fn dead_letter(&self, id: NotificationId, now: DateTime<Utc>, error: &str) -> Result<(), StorageError> { self.inner.dead_letter(id, now, error).await }
///     async fn prune_log(&self, keep: u32, before: DateTime<Utc>, limit: u32) -> Result<Pruned, StorageError> { self.inner.prune_log(keep, before, limit).await }
///     async fn purge_outbox(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError> { self.inner.purge_outbox(before, limit).await }
///     async fn outbox(&self, p: ProjectId) -> Result<Vec<OutboxEntry>, StorageError> { self.inner.outbox(p).await }
///     async fn setting(&self, k: &str) -> Result<Option<String>, StorageError> { self.inner.setting(k).await }
///     async fn put_setting(&self, k: &str, v: &str) -> Result<(), StorageError> { self.inner.put_setting(k, v).await }
///     async fn put_setting_if_absent(&self, k: &str, v: &str) -> Result<bool, StorageError> { self.inner.put_setting_if_absent(k, v).await }
/// }
/// ```
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new project and gives it an id.
    ///
    /// # Errors
    /// `Conflict` when one of its textids belongs to another project.
    async fn create_project(&self, project: NewProject) -> Result<Project, StorageError>;

    /// Replaces a stored project (name, textids, members, policies, limits, keys) when it
    /// is still at `project.version`, and moves its version on by one.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `Conflict` when the project was saved since it was
    /// read (read it again and redo the change) or a textid belongs to another project.
    /// Nothing is written then.
    async fn save_project(&self, project: &Project) -> Result<(), StorageError>;

    /// The project of this id.
    ///
    /// # Errors
    /// When the backend fails.
    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StorageError>;

    /// The project that has `textid` among its textids.
    ///
    /// # Errors
    /// When the backend fails.
    async fn project_by_textid(&self, textid: &str) -> Result<Option<Project>, StorageError>;

    /// Every project, by id.
    ///
    /// # Errors
    /// When the backend fails.
    async fn projects(&self) -> Result<Vec<Project>, StorageError>;

    /// The indicator of this name in this project.
    ///
    /// # Errors
    /// When the backend fails.
    async fn indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<Option<Indicator>, StorageError>;

    /// Every indicator of the project, by name.
    ///
    /// # Errors
    /// When the backend fails.
    async fn indicators(&self, project: ProjectId) -> Result<Vec<Indicator>, StorageError>;

    /// How many indicators the project has.
    ///
    /// # Errors
    /// When the backend fails.
    async fn count_indicators(&self, project: ProjectId) -> Result<u64, StorageError>;

    /// Writes one decision atomically and returns the indicator as stored (id assigned,
    /// version incremented). A commit ends any lease of the indicator. The same as a
    /// [`commit_batch`](Storage::commit_batch) of one group of one commit.
    ///
    /// # Errors
    /// `Conflict` when the indicator moved since it was read, when a new indicator's name
    /// exists, when an alert to cancel was delivered or claimed, or when the project moved
    /// from `project_version`; nothing is written then.
    async fn commit(&self, commit: &Commit) -> Result<Indicator, StorageError> {
        let mut results = self.commit_batch(vec![vec![commit.clone()]]).await?;
        let mut stored = results.pop().ok_or_else(missing_result)??;
        stored.pop().ok_or_else(missing_result)
    }

    /// Writes groups of decisions, in as few transactions as the backend can. Each group is
    /// all or none: every commit of it is stored, or none is and its result says why (the
    /// first failing commit's error). One result per group, in order; groups behave as if
    /// written one after another. An indicator may appear in only one commit of a call: a
    /// later group that repeats one fails with `Conflict`.
    ///
    /// # Errors
    /// The outer error when the backend fails as a whole (nothing of the call is stored
    /// then); per-group errors as in [`commit`](Storage::commit).
    async fn commit_batch(
        &self,
        groups: Vec<Vec<Commit>>,
    ) -> Result<Vec<GroupResult>, StorageError>;

    /// The stored indicators among these names, in any order; names that do not exist are
    /// left out. One read for a whole batch of updates.
    ///
    /// # Errors
    /// When the backend fails.
    async fn indicators_by_name(
        &self,
        keys: &[(ProjectId, IndicatorName)],
    ) -> Result<Vec<Indicator>, StorageError>;

    /// Deletes an indicator and its log; its undelivered notifications stay. Returns
    /// whether it existed.
    ///
    /// # Errors
    /// When the backend fails.
    async fn delete_indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<bool, StorageError>;

    /// The newest `limit` lines of an indicator's log, oldest first.
    ///
    /// # Errors
    /// When the backend fails.
    async fn log(
        &self,
        project: ProjectId,
        name: &IndicatorName,
        limit: u32,
    ) -> Result<Vec<LogLine>, StorageError>;

    /// Up to `limit` indicators whose `due_at <= now` and that are not leased, earliest
    /// first, each leased until `lease_until`.
    ///
    /// # Errors
    /// When the backend fails.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Indicator>, StorageError>;

    /// The earliest time at which [`claim_due`](Storage::claim_due) or
    /// [`claim_notifications`](Storage::claim_notifications) will have something (a lease
    /// end counts); `None` when nothing is waiting.
    ///
    /// # Errors
    /// When the backend fails.
    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError>;

    /// Up to `limit` undelivered notifications that are released and due for an attempt
    /// (`release_at <= now`, not leased, past their retry time), oldest first, each leased
    /// until `lease_until`. A stored row that is no notification (written by another
    /// version, damaged) is parked, not returned: never claimed again, the reason in its
    /// `last_error`, so that it cannot hold up the others.
    ///
    /// # Errors
    /// When the backend fails.
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StorageError>;

    /// Marks notifications delivered; they are never claimed again.
    ///
    /// # Errors
    /// When the backend fails.
    async fn mark_delivered(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Records a failed attempt: the notification may be claimed again from `at`. A
    /// delivered notification is left as it is.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; when the backend fails.
    async fn retry_notification(
        &self,
        id: NotificationId,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError>;

    /// Records a failed attempt of each of `ids`, all with the same `error`: as
    /// [`retry_notification`](Storage::retry_notification) each, in one write where the
    /// backend can (a relay that refuses a whole claim is one statement, not one
    /// transaction per notification). Delivered or unknown notifications are left as they
    /// are.
    ///
    /// # Errors
    /// When the backend fails.
    async fn retry_notifications(
        &self,
        ids: &[NotificationId],
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        for id in ids {
            match self.retry_notification(*id, at, error).await {
                Err(StorageError::NotFound { .. }) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Every notification of the project still in the outbox or delivered, oldest first.
    ///
    /// # Errors
    /// When the backend fails.
    async fn outbox(&self, project: ProjectId) -> Result<Vec<OutboxEntry>, StorageError>;

    /// A server-wide setting (for example the hash of the admin token).
    ///
    /// # Errors
    /// When the backend fails.
    async fn setting(&self, key: &str) -> Result<Option<String>, StorageError>;

    /// Stores a server-wide setting, replacing any former value.
    ///
    /// # Errors
    /// When the backend fails.
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StorageError>;

    /// Stores a server-wide setting unless `key` already has one: `true` when this call
    /// stored it. Of several nodes trying the same key, exactly one gets `true` (a job
    /// that must run once, such as a day's summary e-mails).
    ///
    /// # Errors
    /// When the backend fails.
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool, StorageError>;

    /// Ends every lease still held, of indicators and notifications alike: they can be
    /// claimed again from `now`. Returns how many leases it ended. For a node that is the
    /// only one working on this storage (SQLite) to take back, at start, the claims it held
    /// when it stopped; on a storage other nodes share it would take their claims.
    ///
    /// # Errors
    /// When the backend fails.
    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StorageError>;

    /// Moves the lease of the notifications among `ids` that are still leased until
    /// `held_until` (as [`claim_notifications`](Storage::claim_notifications) or an
    /// earlier renewal left them) to `lease_until`, later (a delivery that takes long, a
    /// burst of alerts held back) or earlier (a held burst that settled: claimable from
    /// then), and returns those. A notification delivered, retried, dead or claimed by
    /// another node since is left out.
    ///
    /// # Errors
    /// When the backend fails.
    async fn renew_notifications(
        &self,
        ids: &[NotificationId],
        held_until: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<NotificationId>, StorageError>;

    /// Makes the notifications held back until exactly `held_until` (committed with that
    /// [`hold_until`](crate::Notification::hold_until), or given back to it, and not
    /// leased, delivered or dead) claimable from `now`, and returns how many: a burst of
    /// alerts that settled before the cap they were held to.
    ///
    /// # Errors
    /// When the backend fails.
    async fn release_held_notifications(
        &self,
        held_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError>;

    /// Records the last failed attempt of a notification that okerr gives up on: it
    /// becomes a dead letter (`dead_at = now`, the error in `last_error`), never claimed
    /// again. A delivered notification is left as it is.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; when the backend fails.
    async fn dead_letter(
        &self,
        id: NotificationId,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError>;

    /// Deletes up to about `limit` log lines that are beyond the newest `keep` lines of
    /// their indicator or older than `before`. Call it again while
    /// [`Pruned::more`] says so: afterwards every indicator keeps at most `keep` lines
    /// (of those committed before the first call) and none older than `before`. Old lines
    /// are looked for from the head of the log (commit order): a line older than
    /// `before` committed after younger ones (a clock stepped back) may wait until they
    /// are old too.
    ///
    /// # Errors
    /// When the backend fails; what was deleted before stays deleted.
    async fn prune_log(
        &self,
        keep: u32,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Pruned, StorageError>;

    /// Deletes up to `limit` notifications delivered or dead before `before`, and returns
    /// how many. Undelivered live notifications are never deleted.
    ///
    /// # Errors
    /// When the backend fails.
    async fn purge_outbox(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError>;
}

/// What one [`Storage::prune_log`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Log lines deleted.
    pub deleted: u64,
    /// Whether there may be more to delete: call again.
    pub more: bool,
}

/// The error of a backend that gave fewer results than it was given commits.
fn missing_result() -> StorageError {
    StorageError::backend(
        "storage",
        std::io::Error::other("commit_batch gave no result for a commit"),
    )
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Storage + ?Sized> Storage for Arc<T> {
    async fn create_project(&self, project: NewProject) -> Result<Project, StorageError> {
        (**self).create_project(project).await
    }
    async fn save_project(&self, project: &Project) -> Result<(), StorageError> {
        (**self).save_project(project).await
    }
    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StorageError> {
        (**self).project(id).await
    }
    async fn project_by_textid(&self, textid: &str) -> Result<Option<Project>, StorageError> {
        (**self).project_by_textid(textid).await
    }
    async fn projects(&self) -> Result<Vec<Project>, StorageError> {
        (**self).projects().await
    }
    async fn indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<Option<Indicator>, StorageError> {
        (**self).indicator(project, name).await
    }
    async fn indicators(&self, project: ProjectId) -> Result<Vec<Indicator>, StorageError> {
        (**self).indicators(project).await
    }
    async fn count_indicators(&self, project: ProjectId) -> Result<u64, StorageError> {
        (**self).count_indicators(project).await
    }
    async fn commit(&self, commit: &Commit) -> Result<Indicator, StorageError> {
        (**self).commit(commit).await
    }
    async fn commit_batch(
        &self,
        groups: Vec<Vec<Commit>>,
    ) -> Result<Vec<GroupResult>, StorageError> {
        (**self).commit_batch(groups).await
    }
    async fn indicators_by_name(
        &self,
        keys: &[(ProjectId, IndicatorName)],
    ) -> Result<Vec<Indicator>, StorageError> {
        (**self).indicators_by_name(keys).await
    }
    async fn delete_indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<bool, StorageError> {
        (**self).delete_indicator(project, name).await
    }
    async fn log(
        &self,
        project: ProjectId,
        name: &IndicatorName,
        limit: u32,
    ) -> Result<Vec<LogLine>, StorageError> {
        (**self).log(project, name, limit).await
    }
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Indicator>, StorageError> {
        (**self).claim_due(now, lease_until, limit).await
    }
    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        (**self).next_deadline().await
    }
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        (**self).claim_notifications(now, lease_until, limit).await
    }
    async fn mark_delivered(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        (**self).mark_delivered(ids, now).await
    }
    async fn retry_notification(
        &self,
        id: NotificationId,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        (**self).retry_notification(id, at, error).await
    }
    async fn retry_notifications(
        &self,
        ids: &[NotificationId],
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        (**self).retry_notifications(ids, at, error).await
    }
    async fn outbox(&self, project: ProjectId) -> Result<Vec<OutboxEntry>, StorageError> {
        (**self).outbox(project).await
    }
    async fn setting(&self, key: &str) -> Result<Option<String>, StorageError> {
        (**self).setting(key).await
    }
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StorageError> {
        (**self).put_setting(key, value).await
    }
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool, StorageError> {
        (**self).put_setting_if_absent(key, value).await
    }
    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        (**self).release_claims(now).await
    }
    async fn renew_notifications(
        &self,
        ids: &[NotificationId],
        held_until: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<NotificationId>, StorageError> {
        (**self)
            .renew_notifications(ids, held_until, lease_until)
            .await
    }
    async fn release_held_notifications(
        &self,
        held_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        (**self).release_held_notifications(held_until, now).await
    }
    async fn dead_letter(
        &self,
        id: NotificationId,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        (**self).dead_letter(id, now, error).await
    }
    async fn prune_log(
        &self,
        keep: u32,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Pruned, StorageError> {
        (**self).prune_log(keep, before, limit).await
    }
    async fn purge_outbox(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError> {
        (**self).purge_outbox(before, limit).await
    }
}
