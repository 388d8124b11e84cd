//! [`MemoryStorage`]: the whole storage contract in one process, for tests, examples and
//! programs that keep nothing across restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::indicator::{Indicator, IndicatorId, LogLine};
use crate::name::IndicatorName;
use crate::outbox::{NotificationId, OutboxEntry};
use crate::project::{NewProject, Project, ProjectId};
use crate::storage::{Commit, GroupResult, Pruned, Storage, StorageError, repeated_indicators};

/// Storage in memory, behind one mutex. Due indicators and released notifications are
/// found through ordered indexes, as in the SQL backends.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    state: Mutex<MemorySnapshot>,
}

/// Everything a [`MemoryStorage`] holds, comparable: tests take one before and after an
/// operation to show that it changed nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemorySnapshot {
    last_id: i64,
    projects: BTreeMap<ProjectId, Project>,
    textids: BTreeMap<String, ProjectId>,
    indicators: BTreeMap<IndicatorId, Indicator>,
    names: BTreeMap<(ProjectId, IndicatorName), IndicatorId>,
    /// The stored deadline of each indicator: its `due_at`, or a lease end once claimed.
    due: BTreeMap<IndicatorId, DateTime<Utc>>,
    due_index: BTreeSet<(DateTime<Utc>, IndicatorId)>,
    /// The lease end of each indicator claimed and not committed since.
    leases: BTreeMap<IndicatorId, DateTime<Utc>>,
    logs: BTreeMap<IndicatorId, Vec<LogLine>>,
    outbox: BTreeMap<NotificationId, OutboxRow>,
    /// Undelivered notifications by the time they may be claimed.
    available_index: BTreeSet<(DateTime<Utc>, NotificationId)>,
    settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
struct OutboxRow {
    entry: OutboxEntry,
    available_at: DateTime<Utc>,
    claims: u32,
    /// The lease end while claimed and not delivered, retried or dead since.
    lease: Option<DateTime<Utc>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStorage::default()
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> MemorySnapshot {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, MemorySnapshot> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemorySnapshot {
    fn next_id(&mut self) -> i64 {
        self.last_id += 1;
        self.last_id
    }

    fn check_textids(&self, project: &Project) -> Result<(), StorageError> {
        let mut own = BTreeSet::new();
        for t in project.textids() {
            let taken = self
                .textids
                .get(t.as_str())
                .is_some_and(|id| *id != project.id);
            if taken || !own.insert(t) {
                return Err(StorageError::conflict("textid", t));
            }
        }
        Ok(())
    }

    fn put_project(&mut self, project: Project) {
        self.textids.retain(|_, id| *id != project.id);
        for t in project.textids() {
            self.textids.insert(t.to_string(), project.id);
        }
        self.projects.insert(project.id, project);
    }

    fn set_due(&mut self, id: IndicatorId, due: Option<DateTime<Utc>>) {
        if let Some(old) = self.due.remove(&id) {
            self.due_index.remove(&(old, id));
        }
        if let Some(due) = due {
            self.due.insert(id, due);
            self.due_index.insert((due, id));
        }
    }

    fn set_available(&mut self, id: NotificationId, at: Option<DateTime<Utc>>) {
        let Some(row) = self.outbox.get_mut(&id) else {
            return;
        };
        row.lease = None;
        self.available_index.remove(&(row.available_at, id));
        if let Some(at) = at {
            row.available_at = at;
            self.available_index.insert((at, id));
        }
    }

    fn apply(&mut self, commit: &Commit) -> Result<Indicator, StorageError> {
        let ind = &commit.indicator;
        let Some(project) = self.projects.get(&ind.project) else {
            return Err(StorageError::not_found("project", ind.project));
        };
        if commit.project_version.is_some_and(|v| v != project.version) {
            return Err(StorageError::conflict("project", ind.project));
        }
        let key = (ind.project, ind.name.clone());
        let existing = self.names.get(&key).and_then(|id| self.indicators.get(id));
        let id = match existing {
            None if ind.version == 0 => None,
            Some(stored) if stored.version == ind.version && ind.version > 0 => Some(stored.id),
            _ => return Err(StorageError::conflict("indicator", &ind.name)),
        };
        let mut cancelled = Vec::new();
        for held in &commit.cancel {
            let rows: Vec<NotificationId> = self
                .outbox
                .values()
                .filter(|r| {
                    Some(r.entry.indicator_id) == id
                        && r.entry.delivered_at.is_none()
                        && r.claims == 0
                        && r.entry.notification.reduction_key.as_deref() == Some(&held.key)
                        && r.entry.notification.release_at == held.release_at
                })
                .map(|r| r.entry.id)
                .collect();
            if rows.is_empty() {
                return Err(StorageError::conflict("held alert", &held.key));
            }
            cancelled.extend(rows);
        }

        let id = id.unwrap_or_else(|| IndicatorId(self.next_id()));
        let mut stored = ind.clone();
        stored.id = id;
        stored.version = ind.version + 1;
        self.names.insert(key, id);
        self.leases.remove(&id);
        self.set_due(id, stored.due_at());
        self.indicators.insert(id, stored.clone());
        self.logs
            .entry(id)
            .or_default()
            .extend(commit.log.iter().cloned());
        for n in cancelled {
            self.set_available(n, None);
            self.outbox.remove(&n);
        }
        for notification in &commit.notifications {
            let nid = NotificationId(self.next_id());
            let at = notification.first_attempt();
            let entry = OutboxEntry {
                id: nid,
                indicator_id: id,
                attempts: 0,
                delivered_at: None,
                last_error: None,
                dead_at: None,
                notification: notification.clone(),
            };
            self.outbox.insert(
                nid,
                OutboxRow {
                    entry,
                    available_at: at,
                    claims: 0,
                    lease: None,
                },
            );
            self.available_index.insert((at, nid));
        }
        Ok(stored)
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn create_project(&self, project: NewProject) -> Result<Project, StorageError> {
        let mut s = self.lock();
        let id = ProjectId(s.last_id + 1);
        let project = project.with_id(id);
        s.check_textids(&project)?;
        s.next_id();
        s.put_project(project.clone());
        Ok(project)
    }

    async fn save_project(&self, project: &Project) -> Result<(), StorageError> {
        let mut s = self.lock();
        let Some(stored) = s.projects.get(&project.id) else {
            return Err(StorageError::not_found("project", project.id));
        };
        if stored.version != project.version {
            return Err(StorageError::conflict("project", project.id));
        }
        s.check_textids(project)?;
        s.put_project(Project {
            version: project.version + 1,
            ..project.clone()
        });
        Ok(())
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StorageError> {
        Ok(self.lock().projects.get(&id).cloned())
    }

    async fn project_by_textid(&self, textid: &str) -> Result<Option<Project>, StorageError> {
        let s = self.lock();
        Ok(s.textids
            .get(textid)
            .and_then(|id| s.projects.get(id))
            .cloned())
    }

    async fn projects(&self) -> Result<Vec<Project>, StorageError> {
        Ok(self.lock().projects.values().cloned().collect())
    }

    async fn indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<Option<Indicator>, StorageError> {
        let s = self.lock();
        Ok(s.names
            .get(&(project, name.clone()))
            .and_then(|id| s.indicators.get(id))
            .cloned())
    }

    async fn indicators(&self, project: ProjectId) -> Result<Vec<Indicator>, StorageError> {
        let s = self.lock();
        Ok(s.names
            .iter()
            .filter(|((p, _), _)| *p == project)
            .filter_map(|(_, id)| s.indicators.get(id).cloned())
            .collect())
    }

    async fn count_indicators(&self, project: ProjectId) -> Result<u64, StorageError> {
        let s = self.lock();
        let n = s.names.keys().filter(|(p, _)| *p == project).count();
        Ok(n as u64)
    }

    async fn commit_batch(
        &self,
        groups: Vec<Vec<Commit>>,
    ) -> Result<Vec<GroupResult>, StorageError> {
        let mut s = self.lock();
        let repeated = repeated_indicators(&groups);
        let mut results = Vec::with_capacity(groups.len());
        for (group, repeated) in groups.iter().zip(repeated) {
            if let Some(conflict) = repeated {
                results.push(Err(conflict));
                continue;
            }
            // A single commit checks everything before it changes anything; a longer group
            // is undone from a copy when one of its commits fails.
            let before = (group.len() > 1).then(|| s.clone());
            let stored: GroupResult = group.iter().map(|c| s.apply(c)).collect();
            if let (Err(_), Some(before)) = (&stored, before) {
                *s = before;
            }
            results.push(stored);
        }
        Ok(results)
    }

    async fn indicators_by_name(
        &self,
        keys: &[(ProjectId, IndicatorName)],
    ) -> Result<Vec<Indicator>, StorageError> {
        let s = self.lock();
        Ok(keys
            .iter()
            .filter_map(|key| s.names.get(key))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|id| s.indicators.get(id).cloned())
            .collect())
    }

    async fn delete_indicator(
        &self,
        project: ProjectId,
        name: &IndicatorName,
    ) -> Result<bool, StorageError> {
        let mut s = self.lock();
        let Some(id) = s.names.remove(&(project, name.clone())) else {
            return Ok(false);
        };
        s.set_due(id, None);
        s.leases.remove(&id);
        s.indicators.remove(&id);
        s.logs.remove(&id);
        Ok(true)
    }

    async fn log(
        &self,
        project: ProjectId,
        name: &IndicatorName,
        limit: u32,
    ) -> Result<Vec<LogLine>, StorageError> {
        let s = self.lock();
        let lines = s
            .names
            .get(&(project, name.clone()))
            .and_then(|id| s.logs.get(id))
            .map_or(&[][..], Vec::as_slice);
        let skip = lines.len().saturating_sub(limit as usize);
        Ok(lines[skip..].to_vec())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Indicator>, StorageError> {
        let mut s = self.lock();
        let ids: Vec<IndicatorId> = s
            .due_index
            .iter()
            .take_while(|(due, _)| *due <= now)
            .take(limit as usize)
            .map(|(_, id)| *id)
            .collect();
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            s.set_due(id, Some(lease_until));
            s.leases.insert(id, lease_until);
            claimed.extend(s.indicators.get(&id).cloned());
        }
        Ok(claimed)
    }

    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        let s = self.lock();
        let due = s.due_index.first().map(|(t, _)| *t);
        let available = s.available_index.first().map(|(t, _)| *t);
        Ok(due.into_iter().chain(available).min())
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        let mut s = self.lock();
        let ids: Vec<NotificationId> = s
            .available_index
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit as usize)
            .map(|(_, id)| *id)
            .collect();
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            s.set_available(id, Some(lease_until));
            if let Some(row) = s.outbox.get_mut(&id) {
                row.lease = Some(lease_until);
                row.claims += 1;
                claimed.push(row.entry.clone());
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
        let mut s = self.lock();
        for id in ids {
            s.set_available(*id, None);
            if let Some(row) = s.outbox.get_mut(id) {
                row.entry.delivered_at = Some(now);
            }
        }
        Ok(())
    }

    async fn retry_notification(
        &self,
        id: NotificationId,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        let mut s = self.lock();
        let Some(row) = s.outbox.get_mut(&id) else {
            return Err(StorageError::not_found("notification", id));
        };
        if row.entry.delivered_at.is_some() {
            return Ok(());
        }
        row.entry.attempts += 1;
        row.entry.last_error = Some(error.to_owned());
        s.set_available(id, Some(at));
        Ok(())
    }

    async fn outbox(&self, project: ProjectId) -> Result<Vec<OutboxEntry>, StorageError> {
        let s = self.lock();
        Ok(s.outbox
            .values()
            .filter(|r| r.entry.notification.project == project)
            .map(|r| r.entry.clone())
            .collect())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self.lock().settings.get(key).cloned())
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.lock()
            .settings
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool, StorageError> {
        let mut s = self.lock();
        if s.settings.contains_key(key) {
            return Ok(false);
        }
        s.settings.insert(key.to_owned(), value.to_owned());
        Ok(true)
    }

    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        let mut s = self.lock();
        let mut released = 0;
        for (id, until) in std::mem::take(&mut s.leases) {
            if until > now {
                s.set_due(id, Some(now));
                released += 1;
            }
        }
        let leased: Vec<(NotificationId, DateTime<Utc>)> = s
            .outbox
            .values()
            .filter_map(|r| r.lease.map(|until| (r.entry.id, until)))
            .collect();
        for (id, until) in leased {
            s.set_available(id, Some(until.min(now)));
            released += u64::from(until > now);
        }
        Ok(released)
    }

    async fn renew_notifications(
        &self,
        ids: &[NotificationId],
        held_until: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<NotificationId>, StorageError> {
        let mut s = self.lock();
        let mut renewed = Vec::new();
        for id in ids {
            if s.outbox
                .get(id)
                .is_some_and(|r| r.lease == Some(held_until))
            {
                s.set_available(*id, Some(lease_until));
                if let Some(row) = s.outbox.get_mut(id) {
                    row.lease = Some(lease_until);
                }
                renewed.push(*id);
            }
        }
        Ok(renewed)
    }

    async fn release_held_notifications(
        &self,
        held_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let mut s = self.lock();
        let held: Vec<NotificationId> = s
            .available_index
            .range((held_until, NotificationId(i64::MIN))..=(held_until, NotificationId(i64::MAX)))
            .map(|&(_, id)| id)
            .filter(|id| {
                s.outbox.get(id).is_some_and(|r| {
                    r.lease.is_none() && r.entry.delivered_at.is_none() && r.entry.dead_at.is_none()
                })
            })
            .collect();
        for id in &held {
            s.set_available(*id, Some(now));
        }
        Ok(held.len() as u64)
    }

    async fn dead_letter(
        &self,
        id: NotificationId,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        let mut s = self.lock();
        let Some(row) = s.outbox.get_mut(&id) else {
            return Err(StorageError::not_found("notification", id));
        };
        if row.entry.delivered_at.is_some() {
            return Ok(());
        }
        row.entry.attempts += 1;
        row.entry.last_error = Some(error.to_owned());
        row.entry.dead_at = Some(now);
        s.set_available(id, None);
        Ok(())
    }

    async fn prune_log(
        &self,
        keep: u32,
        before: DateTime<Utc>,
        _limit: u32,
    ) -> Result<Pruned, StorageError> {
        let mut s = self.lock();
        let mut deleted = 0;
        for lines in s.logs.values_mut() {
            let was = lines.len();
            lines.retain(|l| l.time >= before);
            let over = lines.len().saturating_sub(keep as usize);
            lines.drain(..over);
            deleted += (was - lines.len()) as u64;
        }
        Ok(Pruned {
            deleted,
            more: false,
        })
    }

    async fn purge_outbox(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError> {
        let mut s = self.lock();
        let done: Vec<NotificationId> = s
            .outbox
            .values()
            .filter(|r| {
                r.entry
                    .delivered_at
                    .or(r.entry.dead_at)
                    .is_some_and(|t| t < before)
            })
            .take(limit as usize)
            .map(|r| r.entry.id)
            .collect();
        for id in &done {
            s.set_available(*id, None);
            s.outbox.remove(id);
        }
        Ok(done.len() as u64)
    }
}
