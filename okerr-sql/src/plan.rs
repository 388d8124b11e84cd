//! How a [`Storage::commit_batch`](okerr::Storage::commit_batch) is written with a
//! handful of set-based statements, whatever its size, and still all or none per group.
//!
//! In one transaction:
//! 1. one `UPDATE … FROM` writes every changed indicator whose version is still the one
//!    read and whose project is still at the version it was decided on, and one
//!    `INSERT … ON CONFLICT DO NOTHING` every new one whose project is; the ids they return
//!    say which were written. Held alerts to cancel are deleted one by one (they are rare);
//! 2. if every commit was written, the log lines and notifications of the whole batch are
//!    inserted with one statement each, and that is all: the common case costs the
//!    statements that write, nothing to check beforehand;
//! 3. else the transaction is rolled back and begun again ([`BatchPlan::restart`]); the
//!    projects of the batch are read, which fails a commit for a project that does not
//!    exist (`NotFound`) or one decided on an older project version (`Conflict`), and the
//!    rounds are written again in a savepoint each, each without the groups that failed
//!    in the one before, until one is whole.
//!
//! [`BatchPlan`] holds that bookkeeping, free of any database: the backends run the
//! statements of [`Statements`](crate::Statements) with the [`Rows`] it gives and tell it
//! what came back.

use std::collections::{BTreeSet, HashMap, HashSet};

use okerr::storage::{Commit, GroupResult, StorageError, repeated_indicators};
use okerr::{Indicator, IndicatorId};

use crate::codec::{micros, to_json};
use crate::rows::{Rows, Value};

/// The bookkeeping of one `commit_batch`.
#[derive(Debug)]
pub struct BatchPlan {
    backend: &'static str,
    groups: Vec<Vec<Commit>>,
    /// Why a group failed; `None` while it may still be written.
    failed: Vec<Option<StorageError>>,
    /// The id of each commit of each group, known once written in this round.
    ids: Vec<Vec<Option<i64>>>,
    /// Whether a group failed in this round (the round is then written again).
    round_failed: bool,
    /// The groups that failed before anything was written (they repeat an indicator).
    failed_at_once: Vec<bool>,
}

/// A held alert to delete: the group, the indicator id, the reduction key and the release
/// time in microseconds.
pub type Cancel = (usize, i64, String, i64);

/// What a backend did with a batch it was offered to write at once, in one statement
/// outside any explicit transaction (PostgreSQL: one round trip instead of five).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtOnce {
    /// It wrote every commit of the batch.
    Written,
    /// It wrote nothing: a commit met a newer version (or its project did), so the
    /// statement failed as a whole. The batch is written round by round.
    NotWhole,
    /// It does not write batches at once (SQLite), or not this one
    /// ([`BatchPlan::write_at_once`] said no).
    NotTried,
}

impl BatchPlan {
    /// The plan of `groups`. A group that repeats an indicator of an earlier group (or of
    /// itself) fails at once with `Conflict`.
    pub fn new(backend: &'static str, mut groups: Vec<Vec<Commit>>) -> BatchPlan {
        let mut failed = repeated_indicators(&groups);
        // From here on each commit's indicator is the state to store: at its new version.
        for (group, failed) in groups.iter_mut().zip(&mut failed) {
            for c in group.iter_mut() {
                let ind = &mut c.indicator;
                match ind
                    .version
                    .checked_add(1)
                    .filter(|v| i64::try_from(*v).is_ok())
                {
                    Some(v) => ind.version = v,
                    None => {
                        failed
                            .get_or_insert_with(|| StorageError::conflict("indicator", &ind.name));
                    }
                }
            }
        }
        let ids = groups.iter().map(|g| vec![None; g.len()]).collect();
        let failed_at_once = failed.iter().map(Option::is_some).collect();
        BatchPlan {
            backend,
            groups,
            failed,
            ids,
            round_failed: false,
            failed_at_once,
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Vec<Commit>)> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(g, _)| self.failed[*g].is_none())
    }

    fn live_commits(&self) -> impl Iterator<Item = (usize, usize, &Commit)> {
        self.live()
            .flat_map(|(g, group)| group.iter().enumerate().map(move |(i, c)| (g, i, c)))
    }

    /// Whether every group has failed (nothing is left to write).
    pub fn is_done(&self) -> bool {
        self.live().next().is_none()
    }

    fn fail(&mut self, group: usize, error: StorageError) {
        if self.failed[group].is_none() {
            self.failed[group] = Some(error);
            self.round_failed = true;
        }
    }

    /// Fails a group in this round (a held alert to cancel was not there).
    pub fn fail_group(&mut self, group: usize, error: StorageError) {
        self.fail(group, error);
    }

    /// Rows `id` of every project the batch writes to; empty for an empty batch.
    pub fn project_ids(&self) -> Rows<'static> {
        let ids: BTreeSet<i64> = self
            .live_commits()
            .map(|(_, _, c)| c.indicator.project.0)
            .collect();
        let mut rows = Rows::new(1);
        for id in ids {
            rows.push([Value::from(id)]);
        }
        rows
    }

    /// Fails the commits whose project does not exist (`NotFound`) or is no longer at the
    /// version they were decided on (`Conflict`). `versions` maps the projects found to
    /// their stored version.
    pub fn check_projects(&mut self, versions: &HashMap<i64, i64>) {
        let mut failures = Vec::new();
        for (g, _, c) in self.live_commits() {
            let project = c.indicator.project;
            match versions.get(&project.0) {
                None => failures.push((g, StorageError::not_found("project", project))),
                Some(stored) => {
                    if c.project_version
                        .is_some_and(|v| i64::try_from(v).ok() != Some(*stored))
                    {
                        failures.push((g, StorageError::conflict("project", project)));
                    }
                }
            }
        }
        for (g, error) in failures {
            self.fail(g, error);
        }
        self.round_failed = false;
    }

    /// Forgets what the rounds so far found: the transaction was rolled back, and the
    /// groups are written again after [`BatchPlan::check_projects`] (so a commit for a
    /// project that is gone fails `NotFound`, not as a conflict of its indicator).
    pub fn restart(&mut self) {
        for (failed, at_once) in self.failed.iter_mut().zip(&self.failed_at_once) {
            if !at_once {
                *failed = None;
            }
        }
        self.start_round();
    }

    /// Whether the batch can be written by one statement that fails unless it writes
    /// every commit (see [`AtOnce`]): it changes stored indicators only and cancels no held
    /// alert, so every id is known before the write. Then the plan records those ids as
    /// written (for [`BatchPlan::log_rows`] and [`BatchPlan::outbox_rows`]); a statement
    /// that fails leaves them to [`BatchPlan::restart`].
    pub fn write_at_once(&mut self) -> bool {
        let possible = !self.is_done()
            && self
                .live_commits()
                .all(|(_, _, c)| !is_new(&c.indicator) && c.cancel.is_empty());
        if possible {
            let ids: Vec<_> = self
                .live_commits()
                .map(|(g, i, c)| (g, i, c.indicator.id.0))
                .collect();
            for (g, i, id) in ids {
                self.ids[g][i] = Some(id);
            }
        }
        possible
    }

    /// Begins a round: what a previous round wrote was rolled back.
    pub fn start_round(&mut self) {
        self.round_failed = false;
        for ids in &mut self.ids {
            ids.iter_mut().for_each(|id| *id = None);
        }
    }

    /// The ids of the stored indicators this round changes, in ascending order (to lock them
    /// in an order every node agrees on).
    pub fn update_ids(&self) -> Vec<i64> {
        let ids: BTreeSet<i64> = self
            .live_commits()
            .filter(|(_, _, c)| !is_new(&c.indicator))
            .map(|(_, _, c)| c.indicator.id.0)
            .collect();
        ids.into_iter().collect()
    }

    /// Rows `id, new version, due_at, data, name, project version` of the stored
    /// indicators to change (the project version they were decided on, or NULL).
    ///
    /// # Errors
    /// When an indicator cannot be written as JSON.
    pub fn updates(&self) -> Result<Rows<'_>, StorageError> {
        let mut rows = Rows::new(6);
        for (_, _, c) in self.live_commits() {
            let ind = &c.indicator;
            if is_new(ind) {
                continue;
            }
            rows.push([
                Value::from(ind.id.0),
                Value::from(self.version(ind)?),
                Value::from(ind.due_at().map(micros)),
                Value::from(to_json(self.backend, ind)?),
                Value::from(ind.name.as_str()),
                Value::from(self.project_version(c)?),
            ]);
        }
        Ok(rows)
    }

    /// Rows `project id, name, due_at, data, project version` of the new indicators.
    ///
    /// # Errors
    /// When an indicator cannot be written as JSON.
    pub fn inserts(&self) -> Result<Rows<'_>, StorageError> {
        let mut rows = Rows::new(5);
        for (_, _, c) in self.live_commits() {
            let ind = &c.indicator;
            if !is_new(ind) {
                continue;
            }
            rows.push([
                Value::from(ind.project.0),
                Value::from(ind.name.as_str()),
                Value::from(ind.due_at().map(micros)),
                Value::from(to_json(self.backend, ind)?),
                Value::from(self.project_version(c)?),
            ]);
        }
        Ok(rows)
    }

    /// Records what the round's `UPDATE` and `INSERT` wrote (`updated` ids; `inserted` id,
    /// project id and name): a commit that was not written fails its group with
    /// `Conflict` (its indicator moved, or its name exists).
    pub fn record_writes(&mut self, updated: &[i64], inserted: &[(i64, i64, String)]) {
        let updated: HashSet<i64> = updated.iter().copied().collect();
        let inserted: HashMap<(i64, &str), i64> = inserted
            .iter()
            .map(|(id, project, name)| ((*project, name.as_str()), *id))
            .collect();
        let mut failures = Vec::new();
        let mut ids = Vec::new();
        for (g, i, c) in self.live_commits() {
            let ind = &c.indicator;
            let id = if is_new(ind) {
                inserted.get(&(ind.project.0, ind.name.as_str())).copied()
            } else {
                updated.contains(&ind.id.0).then_some(ind.id.0)
            };
            match id {
                Some(id) => ids.push((g, i, id)),
                None => failures.push((g, StorageError::conflict("indicator", &ind.name))),
            }
        }
        for (g, i, id) in ids {
            self.ids[g][i] = Some(id);
        }
        for (g, error) in failures {
            self.fail(g, error);
        }
    }

    /// The held alerts the written commits cancel.
    pub fn cancels(&self) -> Vec<Cancel> {
        let mut cancels = Vec::new();
        for (g, i, c) in self.live_commits() {
            if let Some(id) = self.ids[g][i] {
                for held in &c.cancel {
                    cancels.push((g, id, held.key.clone(), micros(held.release_at)));
                }
            }
        }
        cancels
    }

    /// Whether a group failed in this round: undo the round (the transaction or its
    /// savepoint) and write again.
    pub fn round_failed(&self) -> bool {
        self.round_failed
    }

    /// Rows `indicator id, time, kind, message` of the batch's log lines, in order.
    ///
    /// # Errors
    /// When a written commit has no id (a bug).
    pub fn log_rows(&self) -> Result<Rows<'_>, StorageError> {
        let mut rows = Rows::new(4);
        for (g, i, c) in self.live_commits() {
            let id = self.id(g, i)?;
            for line in &c.log {
                rows.push([
                    Value::from(id),
                    Value::from(micros(line.time)),
                    Value::from(line.kind.as_str()),
                    Value::from(line.message.as_str()),
                ]);
            }
        }
        Ok(rows)
    }

    /// Rows `project id, indicator id, release_at, reduction key, data, available_at` of
    /// the batch's notifications, in order (`available_at` their first attempt).
    ///
    /// # Errors
    /// When a notification cannot be written as JSON.
    pub fn outbox_rows(&self) -> Result<Rows<'_>, StorageError> {
        let mut rows = Rows::new(6);
        for (g, i, c) in self.live_commits() {
            let id = self.id(g, i)?;
            for n in &c.notifications {
                rows.push([
                    Value::from(n.project.0),
                    Value::from(id),
                    Value::from(micros(n.release_at)),
                    Value::from(n.reduction_key.as_deref()),
                    Value::from(to_json(self.backend, n)?),
                    Value::from(micros(n.first_attempt())),
                ]);
            }
        }
        Ok(rows)
    }

    /// One result per group: the indicators as stored, or why the group failed.
    pub fn finish(self) -> Vec<GroupResult> {
        let BatchPlan {
            groups,
            failed,
            ids,
            ..
        } = self;
        groups
            .into_iter()
            .zip(failed)
            .zip(ids)
            .map(|((group, failed), ids)| match failed {
                Some(error) => Err(error),
                None => Ok(group
                    .into_iter()
                    .zip(ids)
                    .map(|(c, id)| stored(c.indicator, id))
                    .collect()),
            })
            .collect()
    }

    fn id(&self, g: usize, i: usize) -> Result<i64, StorageError> {
        self.ids[g][i].ok_or_else(|| {
            StorageError::backend(
                self.backend,
                std::io::Error::other("a commit of the batch has no id after its write"),
            )
        })
    }

    /// The project version a commit was decided on, as its column holds it.
    fn project_version(&self, c: &Commit) -> Result<Option<i64>, StorageError> {
        c.project_version
            .map(i64::try_from)
            .transpose()
            .map_err(|e| StorageError::backend(self.backend, e))
    }

    /// An indicator's new version as its column holds it (checked by [`BatchPlan::new`]).
    fn version(&self, ind: &Indicator) -> Result<i64, StorageError> {
        i64::try_from(ind.version).map_err(|e| StorageError::backend(self.backend, e))
    }
}

/// Whether a commit's indicator (at its new version) is a new one: read at version 0.
fn is_new(ind: &Indicator) -> bool {
    ind.version == 1
}

/// The indicator as storage holds it after its commit.
fn stored(mut ind: Indicator, id: Option<i64>) -> Indicator {
    if let Some(id) = id {
        ind.id = IndicatorId(id);
    }
    ind
}

#[cfg(test)]
mod tests {
    use super::BatchPlan;
    use okerr::storage::Commit;
    use okerr::{
        CheckMethod, HeldAlert, Indicator, IndicatorId, IndicatorName, Policy, ProjectId, Settings,
    };

    /// A commit of indicator `name`, stored with `id` at version 3 (or new when `id` is 0).
    fn commit(name: &str, id: i64) -> Commit {
        let name = IndicatorName::parse(name).unwrap_or_else(|e| panic!("{e}"));
        let mut indicator = Indicator::new(
            ProjectId(1),
            name,
            &Policy::default_policy(),
            CheckMethod::heartbeat(),
            &Settings::default(),
            chrono::DateTime::UNIX_EPOCH,
        );
        if id > 0 {
            indicator.id = IndicatorId(id);
            indicator.version = 3;
        }
        Commit {
            indicator,
            log: Vec::new(),
            notifications: Vec::new(),
            cancel: Vec::new(),
            project_version: None,
        }
    }

    #[test]
    fn only_changes_of_stored_indicators_are_written_at_once() {
        let mut plan = BatchPlan::new("test", vec![vec![commit("a", 1)], vec![commit("b", 2)]]);
        assert!(plan.write_at_once());
        assert_eq!(plan.updates().map(|r| r.len()).ok(), Some(2));
        assert_eq!(
            plan.updates().map(|r| r.ints(0)).ok(),
            Some(vec![Some(1), Some(2)])
        );
        assert_eq!(
            plan.updates().map(|r| r.ints(1)).ok(),
            Some(vec![Some(4), Some(4)])
        );

        let new = vec![vec![commit("a", 1)], vec![commit("c", 0)]];
        assert!(
            !BatchPlan::new("test", new).write_at_once(),
            "a new indicator"
        );

        let mut cancelling = commit("b", 2);
        cancelling.cancel.push(HeldAlert {
            key: "ERR".to_owned(),
            release_at: chrono::DateTime::UNIX_EPOCH,
        });
        let cancels = vec![vec![commit("a", 1)], vec![cancelling]];
        assert!(
            !BatchPlan::new("test", cancels).write_at_once(),
            "a held alert to cancel"
        );

        let repeated = vec![vec![commit("a", 1)], vec![commit("a", 1)]];
        let mut plan = BatchPlan::new("test", repeated);
        assert!(
            plan.write_at_once(),
            "the group that repeats it failed at once"
        );
        assert_eq!(plan.updates().map(|r| r.len()).ok(), Some(1));
        assert!(
            !BatchPlan::new("test", Vec::new()).write_at_once(),
            "nothing to write"
        );
    }
}
