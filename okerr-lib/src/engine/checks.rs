//! Active checks in the engine: claimed like expiry by [`Engine::tick`], run off the
//! scheduler pass with bounded concurrency and a hard timeout, decided by
//! [`decide_check`] and committed in batches.
//!
//! A claimed check is spawned, waits for one of `check_concurrency` permits (at most
//! `lease` of real time; a check that cannot start by then is dropped, and its claim ends
//! and is taken again), runs for at most `check_timeout`, and hands its result to the
//! committer task, which commits every result ready at that moment in one
//! `commit_batch`. The claim of a node with a sensor lasts `lease + check_timeout +`
//! [`CHECK_MARGIN`], so it outlasts any check it started: with several nodes on one
//! database each due check runs once, and a node that dies mid-check has its claims taken
//! over after that lease.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{Semaphore, mpsc, watch};

use super::{Engine, Inner};
use crate::indicator::{Indicator, IndicatorId};
use crate::method::MethodKind;
use crate::project::Project;
use crate::sensor::{CheckResult, Sensor, decide_check};
use crate::storage::{Commit, StorageError};

/// How much longer than `lease + check_timeout` the claim of a check lasts: the time to
/// commit its result.
pub const CHECK_MARGIN: TimeDelta = TimeDelta::seconds(5);

/// The most results one commit of the committer takes.
const MAX_RESULTS: usize = 500;

/// What the engine keeps to run checks.
#[derive(Debug)]
pub(crate) struct Checks {
    sensor: Arc<dyn Sensor>,
    permits: Arc<Semaphore>,
    /// Indicators whose check runs or waits to be committed: one is not started twice.
    inflight: Mutex<HashSet<IndicatorId>>,
    /// How many checks are in flight, for [`Engine::checks_settled`].
    count: watch::Sender<usize>,
    /// The committer's queue, started by the first check.
    results: OnceLock<mpsc::UnboundedSender<Ready>>,
}

impl Checks {
    pub(crate) fn new(sensor: Arc<dyn Sensor>, concurrency: usize) -> Self {
        Checks {
            sensor,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            inflight: Mutex::new(HashSet::new()),
            count: watch::Sender::new(0),
            results: OnceLock::new(),
        }
    }

    fn done(&self, ids: impl IntoIterator<Item = IndicatorId>) {
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        let mut n = 0;
        for id in ids {
            n += usize::from(inflight.remove(&id));
        }
        drop(inflight);
        self.count.send_modify(|c| *c = c.saturating_sub(n));
    }
}

/// A check that finished (or was dropped before it started: `result` is `None`).
struct Ready {
    project: Arc<Project>,
    indicator: Indicator,
    result: Option<CheckResult>,
}

/// A decision the conflict loop makes again on a fresh read of the indicator.
pub(crate) type Redecide<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Commit>, StorageError>> + Send + 'a>>;

impl Engine {
    /// The lease of a claim: `lease`, or with a sensor long enough for a check to wait
    /// for its permit, run and be committed.
    pub(crate) fn claim_lease(&self) -> TimeDelta {
        let config = &self.inner.config;
        if self.inner.checks.is_none() {
            return config.lease;
        }
        let timeout = TimeDelta::from_std(config.check_timeout).unwrap_or(TimeDelta::seconds(20));
        config.lease + timeout + CHECK_MARGIN
    }

    /// Starts the check of a claimed active indicator off the scheduler pass. `false`
    /// when the engine has no sensor (the claim then ends with its lease), or the check
    /// of this indicator runs already.
    pub(crate) fn start_check(&self, project: Arc<Project>, indicator: Indicator) -> bool {
        let Some(checks) = &self.inner.checks else {
            return false;
        };
        let MethodKind::Active(args) = &indicator.method.kind else {
            return false;
        };
        {
            let mut inflight = checks
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !inflight.insert(indicator.id) {
                return false;
            }
        }
        checks.count.send_modify(|c| *c += 1);
        let results = checks
            .results
            .get_or_init(|| spawn_committer(Arc::downgrade(&self.inner)))
            .clone();
        let args = args.clone();
        let sensor = checks.sensor.clone();
        let permits = checks.permits.clone();
        let clock = self.inner.clock.clone();
        let config = &self.inner.config;
        let wait = config.lease.to_std().unwrap_or(Duration::from_secs(10));
        let timeout = config.check_timeout;
        tokio::spawn(async move {
            let result = match tokio::time::timeout(wait, permits.acquire_owned()).await {
                Ok(Ok(_permit)) => {
                    let now = clock.now();
                    // Its own task: a sensor that panics fails its check, not the engine.
                    let run = tokio::spawn(async move { sensor.check(&args, now).await });
                    let abort = run.abort_handle();
                    match tokio::time::timeout(timeout, run).await {
                        Ok(Ok(result)) => Some(result),
                        Ok(Err(e)) => Some(CheckResult::err(format!("Check failed: {e}"))),
                        Err(_) => {
                            abort.abort();
                            Some(CheckResult::timed_out(timeout))
                        }
                    }
                }
                _ => {
                    tracing::warn!(
                        indicator = %indicator.name,
                        "check not started within the lease: all permits busy"
                    );
                    None
                }
            };
            let _ = results.send(Ready {
                project,
                indicator,
                result,
            });
        });
        true
    }

    /// Waits until every check started has been committed (or dropped): for tests and
    /// benchmarks that drive the engine with [`tick`](Engine::tick).
    pub async fn checks_settled(&self) {
        let Some(checks) = &self.inner.checks else {
            return;
        };
        let mut rx = checks.count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// How many checks run or wait to be committed now.
    pub fn checks_in_flight(&self) -> usize {
        self.inner.checks.as_ref().map_or(0, |c| *c.count.borrow())
    }

    /// Decides and commits the results of a batch of checks; a result whose indicator
    /// moved meanwhile is decided again on a fresh read, and dropped when its arguments
    /// changed (the new ones are checked at once: changing them retests).
    async fn commit_checks(&self, batch: Vec<Ready>) -> Result<usize, StorageError> {
        let storage = &self.inner.storage;
        let settings = &self.inner.config.settings;
        let now = self.inner.clock.now();
        let mut commits = Vec::with_capacity(batch.len());
        let mut decided = Vec::with_capacity(batch.len());
        for ready in &batch {
            let Some(result) = &ready.result else {
                continue;
            };
            if let Some(c) = decide_check(&ready.project, &ready.indicator, result, settings, now) {
                commits.push(c);
                decided.push((ready, result));
            }
        }
        self.inner.hold_for_bursts(&mut commits);
        let keys: Vec<_> = commits
            .iter()
            .map(|c| {
                let release = c.first_attempt();
                (release, c.indicator.changed == now)
            })
            .collect();
        let results = storage
            .commit_batch(commits.into_iter().map(|c| vec![c]).collect())
            .await?;
        let mut committed = 0;
        for (((ready, checked), (release, changed)), stored) in
            decided.into_iter().zip(keys).zip(results)
        {
            let project = &ready.project;
            match stored {
                Ok(stored) => {
                    committed += 1;
                    self.inner
                        .indicators
                        .forget(project.id, &ready.indicator.name);
                    if changed {
                        self.inner.note_change(project.id, now);
                    }
                    let due = stored.first().and_then(Indicator::due_at);
                    self.inner.wake_for(due.into_iter().chain(release).min());
                }
                Err(e) if e.is_conflict() => {
                    let Some(fresh) = storage.indicator(project.id, &ready.indicator.name).await?
                    else {
                        continue;
                    };
                    let method = &ready.indicator.method;
                    let again = self
                        .redecide(project, fresh, |ind, now| {
                            let commit = if ind.method == *method {
                                decide_check(project, &ind, checked, settings, now)
                            } else {
                                None
                            };
                            Box::pin(async move { Ok(commit) })
                        })
                        .await?;
                    committed += usize::from(again);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(committed)
    }

    /// The conflict loop of the scheduler's decisions (expiry, evaluation, checks): `decide`
    /// gets `ind` (read after a conflict) and `now`, and its commit is committed; on a
    /// conflict the indicator is read again and decided again, until `decide` has nothing
    /// to do or `max_conflict_retries` is spent. `true` when a decision was committed.
    pub(crate) async fn redecide<'a>(
        &self,
        project: &Project,
        mut ind: Indicator,
        mut decide: impl FnMut(Indicator, DateTime<Utc>) -> Redecide<'a>,
    ) -> Result<bool, StorageError> {
        let mut attempt = 0;
        loop {
            let now = self.inner.clock.now();
            let name = ind.name.clone();
            let Some(commit) = decide(ind, now).await? else {
                return Ok(false);
            };
            let changed = commit.indicator.changed == now;
            if self.commit(commit, &mut attempt).await?.is_some() {
                if changed {
                    self.inner.note_change(project.id, now);
                }
                return Ok(true);
            }
            match self.inner.storage.indicator(project.id, &name).await? {
                Some(fresh) => ind = fresh,
                None => return Ok(false),
            }
        }
    }
}

/// The committer: takes finished checks, and commits every one ready at that moment
/// together. Holds the engine only while it commits.
fn spawn_committer(engine: Weak<Inner>) -> mpsc::UnboundedSender<Ready> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Ready>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_RESULTS {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let Some(inner) = engine.upgrade() else {
                return;
            };
            let engine = Engine { inner };
            let ids: Vec<IndicatorId> = batch.iter().map(|r| r.indicator.id).collect();
            if let Err(error) = engine.commit_checks(batch).await {
                // The claims end with their lease and the checks run again.
                tracing::error!(%error, "cannot commit check results");
            }
            if let Some(checks) = &engine.inner.checks {
                checks.done(ids);
            }
        }
    });
    tx
}
