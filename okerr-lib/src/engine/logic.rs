//! Logic indicators in the engine: evaluated when due (through the claims of
//! [`Engine::tick`], like expiry) and soon after a change in their project.
//!
//! A change is noted in memory by the node that committed it ([`Inner::note_change`]);
//! once `logic_debounce` has passed, the next scheduler pass reads the project's
//! indicators once and evaluates its logic indicators that have not been evaluated since
//! the change. A node that dies before that pass loses the note: those indicators are then
//! evaluated when due, within their period.

use std::sync::PoisonError;

use chrono::{DateTime, Utc};

use super::{Engine, Inner};
use crate::action::{Action, ActionError};
use crate::indicator::{Indicator, Timing};
use crate::logic::{Trigger, decide_evaluation, noflap_expr};
use crate::name::{IndicatorName, Tag};
use crate::project::{Project, ProjectId};
use crate::storage::StorageError;

/// A project of more indicators than this, not known to have logic indicators, is not
/// read to find out after a change (reading 10,000 indicators takes about 0.1 s): its
/// logic indicators are learned of when this node stores or evaluates one.
pub(crate) const LARGE_PROJECT: u64 = 10_000;

impl Inner {
    /// Notes that `project` has a logic indicator (this node stored or evaluated one).
    pub(crate) fn has_logic(&self, project: ProjectId) {
        self.set_has_logic(project, true);
    }

    fn set_has_logic(&self, project: ProjectId, has: bool) {
        self.has_logic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(project, has);
    }

    /// Whether `project` has logic indicators, as far as this node knows.
    fn knows_logic(&self, project: ProjectId) -> Option<bool> {
        self.has_logic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&project)
            .copied()
    }

    /// Notes that something in `project` changed at `at`, for its logic indicators, and
    /// wakes the run loop for their evaluation.
    pub(crate) fn note_change(&self, project: ProjectId, at: DateTime<Utc>) {
        let first = {
            let mut changed = self.changed.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = changed.entry(project).or_insert((at, at));
            slot.0 = slot.0.min(at);
            slot.1 = slot.1.max(at);
            slot.0
        };
        self.wake_for(Some(first + self.config.logic_debounce));
    }

    /// When the earliest noted change is to be evaluated.
    pub(crate) fn next_change_evaluation(&self) -> Option<DateTime<Utc>> {
        let changed = self.changed.lock().unwrap_or_else(PoisonError::into_inner);
        changed
            .values()
            .map(|(first, _)| *first)
            .min()
            .map(|at| at + self.config.logic_debounce)
    }

    /// Takes the projects whose first noted change is `logic_debounce` old at `now`, with
    /// the time of their last noted change.
    fn take_changes(&self, now: DateTime<Utc>) -> Vec<(ProjectId, DateTime<Utc>)> {
        let mut changed = self.changed.lock().unwrap_or_else(PoisonError::into_inner);
        let ready: Vec<_> = changed
            .iter()
            .filter(|(_, (first, _))| *first + self.config.logic_debounce <= now)
            .map(|(p, (_, last))| (*p, *last))
            .collect();
        for (p, _) in &ready {
            changed.remove(p);
        }
        ready
    }
}

impl Engine {
    /// Evaluates the logic indicators of every project with a change older than
    /// `logic_debounce`: those that have not been evaluated since the change and are not
    /// waiting out a retry schedule. Returns how many were evaluated.
    ///
    /// # Errors
    /// When storage fails; the changes not handled yet are kept.
    pub(crate) async fn evaluate_changed(&self) -> Result<usize, StorageError> {
        let now = self.inner.clock.now();
        let ready = self.inner.take_changes(now);
        let mut evaluated = 0;
        for (n, (project_id, at)) in ready.iter().enumerate() {
            match self.evaluate_project(*project_id, *at).await {
                Ok(count) => evaluated += count,
                Err(e) => {
                    for (p, at) in &ready[n..] {
                        self.inner.note_change(*p, *at);
                    }
                    return Err(e);
                }
            }
        }
        Ok(evaluated)
    }

    async fn evaluate_project(
        &self,
        project_id: ProjectId,
        at: DateTime<Utc>,
    ) -> Result<usize, StorageError> {
        let storage = &self.inner.storage;
        match self.inner.knows_logic(project_id) {
            Some(false) => return Ok(0),
            Some(true) => {}
            None => {
                if storage.count_indicators(project_id).await? > LARGE_PROJECT {
                    self.inner.set_has_logic(project_id, false);
                    return Ok(0);
                }
            }
        }
        let Some(project) = storage.project(project_id).await? else {
            return Ok(0);
        };
        let all = storage.indicators(project_id).await?;
        let now = self.inner.clock.now();
        let has = all.iter().any(|i| i.method.is_logic());
        self.inner.set_has_logic(project_id, has);
        if !has {
            return Ok(0);
        }
        let settings = &self.inner.config.settings;
        let mut commits: Vec<_> = all
            .iter()
            .filter(|i| i.method.is_logic() && i.updated < at && i.retry == 0)
            .filter_map(|i| decide_evaluation(&project, i, &all, settings, Trigger::Changed, now))
            .collect();
        if commits.is_empty() {
            return Ok(0);
        }
        self.inner.hold_for_bursts(&mut commits);
        let changed: Vec<bool> = commits.iter().map(|c| c.indicator.changed == now).collect();
        let names: Vec<_> = commits.iter().map(|c| c.indicator.name.clone()).collect();
        let results = storage
            .commit_batch(commits.into_iter().map(|c| vec![c]).collect())
            .await?;
        let mut evaluated = 0;
        let mut conflict = false;
        for ((result, changed), name) in results.into_iter().zip(changed).zip(names) {
            match result {
                Ok(stored) => {
                    self.inner.indicators.forget(project_id, &name);
                    evaluated += 1;
                    if changed {
                        self.inner.note_change(project_id, now);
                    }
                    self.inner
                        .wake_for(stored.first().and_then(Indicator::due_at));
                }
                // Someone else wrote it meanwhile: look at the project again next pass
                // (an evaluation made since the change is not repeated).
                Err(e) if e.is_conflict() => conflict = true,
                Err(e) => return Err(e),
            }
        }
        if conflict {
            self.inner.note_change(project_id, at);
        }
        Ok(evaluated)
    }

    /// Evaluates a claimed logic indicator that moved since it was claimed, on a fresh
    /// read, if it is still due. `true` when an evaluation was committed.
    pub(crate) async fn evaluate_one(
        &self,
        project: &Project,
        ind: Indicator,
    ) -> Result<bool, StorageError> {
        let storage = &self.inner.storage;
        let settings = &self.inner.config.settings;
        self.redecide(project, ind, |ind, now| {
            Box::pin(async move {
                let all = storage.indicators(project.id).await?;
                Ok(decide_evaluation(
                    project,
                    &ind,
                    &all,
                    settings,
                    Trigger::Due,
                    now,
                ))
            })
        })
        .await
    }
}

/// The thresholds of okerr's no-flap wizard (spec §6.4), in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoFlap {
    /// The upper indicator is OK once the lower one has been OK for longer than this;
    /// `None`: okerr's default, the lower one's period + patience.
    pub okthr: Option<i64>,
    /// It stays OK while the lower one has been ERR for less than this; `None`: okerr's
    /// default, twice the period + patience.
    pub errthr: Option<i64>,
}

impl Engine {
    /// okerr's no-flap wizard (spec §6.4): creates `{lower}-up`, a logic indicator in the
    /// lower one's policy with the wizard's expression, out of maintenance, and tags the
    /// pair `upper-level` and `lower-level`. Returns the new indicator.
    ///
    /// # Errors
    /// An unknown project or lower indicator, an upper one that exists already, the
    /// indicator limit, or `Storage`.
    pub async fn create_noflap(
        &self,
        textid: &str,
        lower: &IndicatorName,
        thresholds: NoFlap,
        actor: &str,
        ip: &str,
    ) -> Result<Indicator, ActionError> {
        let storage = &self.inner.storage;
        let project = storage
            .project_by_textid(textid)
            .await?
            .ok_or_else(|| ActionError::NoSuchProject(textid.to_owned()))?;
        let low = storage.indicator(project.id, lower).await?.ok_or_else(|| {
            ActionError::NoSuchIndicator {
                textid: textid.to_owned(),
                name: lower.to_string(),
            }
        })?;
        let policy = project.policy_or_default(low.policy.as_str());
        let timing = Timing::of(&low.method, &policy, &self.inner.config.settings);
        let (p, t) = (timing.period.num_seconds(), timing.patience.num_seconds());
        let okthr = thresholds.okthr.unwrap_or(p + t);
        let errthr = thresholds.errthr.unwrap_or(2 * p + t);
        let upper = format!("{lower}-up");
        let created = self.create_indicator(textid, &upper, actor, ip).await?;
        let tag = |t: &str| Tag::parse(t).map_err(|_| ActionError::BadName(t.to_owned()));
        let stored = self
            .act_all(
                textid,
                &created.name,
                &[
                    Action::Method("logic".to_owned()),
                    Action::Arg("expr".to_owned(), noflap_expr(okthr, errthr)),
                    Action::Policy(policy.name.to_string()),
                    Action::Tag(tag("upper-level")?),
                    Action::Maintenance(false),
                ],
                actor,
            )
            .await?;
        self.act(textid, lower, &Action::Tag(tag("lower-level")?), actor)
            .await?;
        Ok(stored)
    }
}
