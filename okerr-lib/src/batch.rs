//! The update batcher: how [`Engine::update`](crate::Engine::update) and
//! [`Engine::update_all`](crate::Engine::update_all) reach storage.
//!
//! Updates that arrive together are handled together: a worker takes every update waiting
//! (up to [`EngineConfig::update_batch`](crate::EngineConfig::update_batch)), reads their
//! indicators with one [`Storage::indicators_by_name`], decides each with the pure
//! [`decide_update`], and writes all decisions with one [`Storage::commit_batch`]. Each
//! caller's answer waits for that commit, so nothing is acknowledged before it is stored.
//!
//! - A message of several updates ([`Engine::update_all`](crate::Engine::update_all)) is
//!   one group of the batch: stored all or none.
//! - Indicators come from a bounded cache of the engine ([`IndicatorCache`]) holding the
//!   state of each indicator as this engine last committed it; only the others are read.
//!   Every commit checks the indicator's version, so a cached copy that another writer
//!   (another node, the admin CLI, the scheduler) made stale fails with `Conflict`: it is
//!   forgotten and the update decided again on a fresh read. A refusal or an ignored
//!   update decided on a cached copy is decided again on a fresh read too.
//! - Projects come from a cache of the engine ([`ProjectCache`]). A decision made on a
//!   cached project carries its version ([`Commit::project_version`]); the commit fails
//!   when the project was saved meanwhile, and the update is decided again on a fresh
//!   read. A refusal decided on a cached project is decided again on a fresh read too, so
//!   a stale copy never refuses what the stored project allows.
//! - One batch holds at most one commit per indicator: a message that names an indicator
//!   twice is merged into one commit ([`Commit::merge`]), and a second caller for an
//!   indicator already in the batch waits for the next batch.
//! - A commit that meets a newer version (another node or worker wrote the indicator) is
//!   decided again in the next batch, up to
//!   [`EngineConfig::max_conflict_retries`](crate::EngineConfig::max_conflict_retries).
//! - A worker reads and decides its next batch while the previous one is being stored
//!   ([`EngineConfig::update_pipeline`](crate::EngineConfig::update_pipeline) batches may
//!   be stored at once). The next batch leaves alone the indicators of the batches being
//!   stored, and new indicators of a project they create indicators in (the limit counts
//!   them): those wait for the batch after. So each indicator has at most one commit in
//!   flight, and a batch is decided on what the one before it stored.
//! - Several workers ([`EngineConfig::update_workers`](crate::EngineConfig::update_workers))
//!   share the queue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{mpsc, oneshot};

use crate::engine::{Inner, RefusedUpdate};
use crate::indicator::Indicator;
use crate::name::IndicatorName;
use crate::project::{Project, ProjectId};
use crate::storage::{Commit, StorageError};
use crate::update::{UpdateError, UpdateOutcome, UpdateRequest, decide_update};

/// The maps and sets of the update path, hashed with foldhash: keyed by indicator names,
/// they are hashed several times per update, where SipHash cost a few percent of it.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// The most projects the cache keeps; past it, it starts afresh.
const MAX_CACHED_PROJECTS: usize = 4096;

/// What a caller gets back: an outcome per update, or the refusal of the message.
type Reply = Result<Vec<UpdateOutcome>, RefusedUpdate>;

/// The queue of the batcher's workers.
pub(crate) type Queue = mpsc::UnboundedSender<Job>;

/// One caller's updates, answered together.
#[derive(Debug)]
pub(crate) struct Job {
    reqs: Vec<UpdateRequest>,
    reply: oneshot::Sender<Reply>,
    /// How often its commit met a newer version.
    conflicts: u32,
    /// Read its projects and indicators from storage, not from the caches.
    fresh: bool,
}

impl Job {
    fn answer(self, reply: Reply) {
        // The caller may have gone (its connection closed): then nobody waits.
        let _ = self.reply.send(reply);
    }

    fn refuse(self, index: usize, error: UpdateError) {
        self.answer(Err(RefusedUpdate {
            index,
            applied: 0,
            error,
        }));
    }
}

/// Projects by textid, as last read. Bounded; a stale entry is harmless because commits
/// check the version.
#[derive(Debug, Default)]
pub(crate) struct ProjectCache {
    by_textid: Mutex<HashMap<String, Arc<Project>>>,
}

impl ProjectCache {
    fn get(&self, textid: &str) -> Option<Arc<Project>> {
        self.lock().get(textid).cloned()
    }

    fn put(&self, textid: &str, project: Arc<Project>) {
        let mut map = self.lock();
        if map.len() >= MAX_CACHED_PROJECTS {
            map.clear();
        }
        map.insert(textid.to_owned(), project);
    }

    /// Forgets a project, under every textid.
    pub(crate) fn forget(&self, id: ProjectId) {
        self.lock().retain(|_, p| p.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Project>>> {
        self.by_textid
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Indicators by project and name, as this engine last committed them. Bounded: when full
/// it drops an eighth of its entries, whichever the hash order gives first (so a working
/// set the size of the cache stays mostly cached instead of starting afresh). A stale entry
/// is harmless because commits check the version.
#[derive(Debug)]
pub(crate) struct IndicatorCache {
    by_key: Mutex<HashMap<Key, Arc<Indicator>>>,
    max: usize,
}

impl IndicatorCache {
    /// A cache of at most `max` indicators; 0 caches none.
    pub(crate) fn new(max: usize) -> IndicatorCache {
        IndicatorCache {
            by_key: Mutex::new(HashMap::default()),
            max,
        }
    }

    fn get(&self, key: &Key) -> Option<Arc<Indicator>> {
        self.lock().get(key).cloned()
    }

    fn put(&self, indicator: Indicator) {
        if self.max == 0 {
            return;
        }
        let mut map = self.lock();
        let key = (indicator.project, indicator.name.clone());
        if map.len() >= self.max && !map.contains_key(&key) {
            let evicted: Vec<Key> = map.keys().take((self.max / 8).max(1)).cloned().collect();
            for k in &evicted {
                map.remove(k);
            }
        }
        map.insert(key, Arc::new(indicator));
    }

    /// Forgets an indicator (written elsewhere than through the batcher, or in doubt).
    pub(crate) fn forget(&self, project: ProjectId, name: &IndicatorName) {
        self.lock().remove(&(project, name.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Indicator>>> {
        self.by_key.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts `workers` workers on a new queue. They hold the engine weakly and stop when it
/// is dropped (the queue closes with it).
pub(crate) fn spawn(engine: Weak<Inner>, workers: usize) -> Queue {
    let (queue, jobs) = mpsc::unbounded_channel();
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    for _ in 0..workers {
        tokio::spawn(work(engine.clone(), jobs.clone()));
    }
    queue
}

/// Queues updates and waits for their answer.
pub(crate) async fn submit(queue: &Queue, reqs: Vec<UpdateRequest>) -> Reply {
    let (reply, answer) = oneshot::channel();
    let job = Job {
        reqs,
        reply,
        conflicts: 0,
        fresh: false,
    };
    let refused = || RefusedUpdate {
        index: 0,
        applied: 0,
        error: UpdateError::Storage(lost_reply()),
    };
    queue.send(job).map_err(|_| refused())?;
    answer.await.map_err(|_| refused())?
}

/// The error of an update whose worker went away before answering.
pub(crate) fn lost_reply() -> StorageError {
    StorageError::backend(
        "engine",
        std::io::Error::other("the update batcher stopped before answering"),
    )
}

/// The commit of a worker's previous batch, stored while the worker prepares the next.
struct Committing {
    /// What the next batch must leave alone until it is stored.
    busy: Busy,
    /// The commit, answering its callers; gives back the jobs to try again.
    task: tokio::task::JoinHandle<Vec<Job>>,
}

/// What a batch being committed holds: its indicators, and the projects it creates
/// indicators in (whose count the next batch cannot know before it is stored).
#[derive(Debug, Default)]
struct Busy {
    keys: HashSet<Key>,
    creating: HashSet<ProjectId>,
}

/// What woke a worker that had nothing to do.
enum Woken {
    Job(Option<Job>),
    Committed(Vec<Job>),
}

async fn work(engine: Weak<Inner>, jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>) {
    let mut deferred: VecDeque<Job> = VecDeque::new();
    // The batches being stored, oldest first.
    let mut committing: VecDeque<Committing> = VecDeque::new();
    loop {
        let mut batch: Vec<Job> = deferred.drain(..).collect();
        let (max, depth) = match engine.upgrade() {
            Some(engine) => (
                engine.config.update_batch.max(1),
                engine.config.update_pipeline,
            ),
            None => return,
        };
        // A worker with jobs of its own to redo only takes what is waiting: another worker
        // may hold the queue while it waits for new jobs.
        let queue = if batch.is_empty() {
            let mut queue = jobs.lock().await;
            let woken = match committing.front_mut() {
                Some(c) => tokio::select! {
                    job = queue.recv() => Woken::Job(job),
                    retry = &mut c.task => Woken::Committed(retry.unwrap_or_default()),
                },
                None => Woken::Job(queue.recv().await),
            };
            match woken {
                Woken::Job(Some(job)) => batch.push(job),
                Woken::Job(None) => {
                    for c in committing {
                        let _ = c.task.await;
                    }
                    return;
                }
                Woken::Committed(retry) => {
                    committing.pop_front();
                    deferred.extend(retry);
                    continue;
                }
            }
            // Let the callers that are about to send join this batch.
            tokio::task::yield_now().await;
            Some(queue)
        } else {
            jobs.try_lock().ok()
        };
        // One batch at a time: it gathers only once the batch being stored is stored, so
        // that every update that arrived meanwhile joins it (gathered before, the batch
        // held only what came first and the rest waited a whole commit more).
        let queue = if depth == 0 && !committing.is_empty() {
            drop(queue);
            for c in committing.drain(..) {
                deferred.extend(c.task.await.unwrap_or_default());
            }
            // Jobs to decide again are older than the ones that came since: first.
            let mut earlier: Vec<Job> = deferred.drain(..).collect();
            earlier.append(&mut batch);
            batch = earlier;
            jobs.try_lock().ok()
        } else {
            queue
        };
        if let Some(mut queue) = queue {
            let mut updates: usize = batch.iter().map(|j| j.reqs.len()).sum();
            while updates < max {
                match queue.try_recv() {
                    Ok(job) => {
                        updates += job.reqs.len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        // This batch is read and decided while the previous ones are stored, leaving alone
        // what they hold.
        let mut busy = Busy::default();
        for c in &committing {
            busy.keys.extend(c.busy.keys.iter().cloned());
            busy.creating.extend(c.busy.creating.iter().copied());
        }
        let (prepared, retry) = prepare(&engine, batch, &busy).await;
        deferred.extend(retry);
        let Some(prepared) = prepared else {
            // What is left may wait for the oldest batch being stored.
            if !deferred.is_empty()
                && let Some(c) = committing.pop_front()
            {
                deferred.extend(c.task.await.unwrap_or_default());
            }
            continue;
        };
        while committing.len() >= depth.max(1) {
            if let Some(c) = committing.pop_front() {
                deferred.extend(c.task.await.unwrap_or_default());
            }
        }
        committing.push_back(Committing {
            busy: prepared.busy(),
            task: tokio::spawn(commit(engine, prepared)),
        });
    }
}

/// An indicator's key in a batch.
type Key = (ProjectId, IndicatorName);

/// What a decided update will answer once its commit is stored.
enum Planned {
    Ignored,
    /// The state after this update, and which commit of the job stores it.
    Stored(usize, Box<Indicator>),
}

/// A job whose updates were decided: its commits (one per indicator) and what to answer.
struct Decided {
    job: Job,
    commits: Vec<Commit>,
    planned: Vec<Planned>,
    projects: Vec<ProjectId>,
    /// The indicators it names.
    keys: Vec<Key>,
}

/// A job waiting for its commit: what it will answer, the projects and indicators it names.
type Waiting = (Job, Vec<Planned>, Vec<ProjectId>, Vec<Key>);

/// A batch read and decided, to commit.
struct Prepared {
    /// One group of commits per job, stored all or none.
    groups: Vec<Vec<Commit>>,
    /// Each job with its answers and the projects and indicators it names.
    waiting: Vec<Waiting>,
    /// The time the batch was decided at.
    now: chrono::DateTime<chrono::Utc>,
}

impl Prepared {
    fn busy(&self) -> Busy {
        let mut busy = Busy::default();
        for (_, _, _, keys) in &self.waiting {
            busy.keys.extend(keys.iter().cloned());
        }
        for commit in self.groups.iter().flatten() {
            if commit.indicator.version == 0 {
                busy.creating.insert(commit.indicator.project);
            }
        }
        busy
    }
}

/// Reads and decides one batch, leaving alone what `busy` holds: returns what to commit,
/// and the jobs to try again in the next batch. Jobs with nothing to store are answered.
async fn prepare(engine: &Inner, batch: Vec<Job>, busy: &Busy) -> (Option<Prepared>, Vec<Job>) {
    let mut retry = Vec::new();
    let storage = &engine.storage;

    // The projects of each job, from the cache or storage, and the key of each update (none
    // for an invalid name: `decide_update` refuses it).
    let mut jobs = Vec::with_capacity(batch.len());
    for job in batch {
        match projects_of(engine, &job).await {
            Ok((projects, cached)) => {
                let keys: Vec<Option<Key>> = job
                    .reqs
                    .iter()
                    .zip(&projects)
                    .map(|(req, p)| IndicatorName::parse(&req.name).ok().map(|n| (p.id, n)))
                    .collect();
                jobs.push((job, projects, cached, keys));
            }
            Err((index, error)) => job.refuse(index, error),
        }
    }

    // Every indicator the batch names: from the cache, the others in one read.
    let mut stored: HashMap<Key, Arc<Indicator>> = HashMap::default();
    let mut missing: Vec<Key> = Vec::new();
    for (job, _, _, keys) in &jobs {
        for key in keys.iter().flatten() {
            match (job.fresh, engine.indicators.get(key)) {
                (false, Some(ind)) => {
                    stored.insert(key.clone(), ind);
                }
                _ => missing.push(key.clone()),
            }
        }
    }
    // A key read fresh for one job is fresh for all of the batch.
    for key in &missing {
        stored.remove(key);
    }
    let cached_keys: HashSet<Key> = stored.keys().cloned().collect();
    let found = if missing.is_empty() {
        Ok(Vec::new())
    } else {
        storage.indicators_by_name(&missing).await
    };
    match found {
        Ok(found) => stored.extend(
            found
                .into_iter()
                .map(|i| ((i.project, i.name.clone()), Arc::new(i))),
        ),
        Err(e) => {
            let e = Arc::new(e);
            for (job, _, _, _) in jobs {
                job.refuse(0, UpdateError::Storage(shared(&e)));
            }
            return (None, retry);
        }
    }

    // Decide, job by job, each indicator at most once per batch.
    let now = engine.clock.now();
    let mut taken: HashSet<Key> = HashSet::default();
    let mut counts: HashMap<ProjectId, u64> = HashMap::default();
    let mut decided = Vec::new();
    'jobs: for (mut job, projects, cached, job_keys) in jobs {
        // An indicator already in this batch, or in the one being stored, and a new
        // indicator in a project the batch being stored creates some in (the limit counts
        // them), wait for the next batch.
        let creates_beside = job_keys.iter().zip(&projects).any(|(k, p)| {
            busy.creating.contains(&p.id) && k.as_ref().is_none_or(|k| !stored.contains_key(k))
        });
        if creates_beside
            || job_keys
                .iter()
                .flatten()
                .any(|k| taken.contains(k) || busy.keys.contains(k))
        {
            retry.push(job);
            continue;
        }
        let mut commits: Vec<Commit> = Vec::new();
        let mut at: HashMap<&Key, usize> = HashMap::default();
        let mut planned = Vec::with_capacity(job.reqs.len());
        let mut created: HashMap<ProjectId, u64> = HashMap::default();
        let stale_risk =
            (cached || job_keys.iter().flatten().any(|k| cached_keys.contains(k))) && !job.fresh;
        for (index, (req, project)) in job.reqs.iter().zip(&projects).enumerate() {
            let key = job_keys[index].as_ref();
            let earlier = key.and_then(|k| at.get(k).copied());
            let existing = match earlier {
                Some(i) => Some(as_stored(&commits[i])),
                None => key.and_then(|k| stored.get(k)).map(|i| Indicator::clone(i)),
            };
            let limit = engine.config.settings.indicator_limit(project);
            let count = match (&existing, limit) {
                (None, Some(_)) => {
                    let base = match counts.get(&project.id) {
                        Some(n) => *n,
                        None => match storage.count_indicators(project.id).await {
                            Ok(n) => *counts.entry(project.id).or_insert(n),
                            Err(e) => {
                                job.refuse(index, e.into());
                                continue 'jobs;
                            }
                        },
                    };
                    base + created.get(&project.id).copied().unwrap_or(0)
                }
                _ => 0,
            };
            let settings = &engine.config.settings;
            match decide_update(project, existing.as_ref(), count, req, settings, now) {
                Err(_) | Ok(None) if stale_risk => {
                    // Perhaps refused or ignored because of a stale copy: decide again on a
                    // fresh read.
                    job.fresh = true;
                    retry.push(job);
                    continue 'jobs;
                }
                Err(error) => {
                    job.refuse(index, error);
                    continue 'jobs;
                }
                Ok(None) => planned.push(Planned::Ignored),
                Ok(Some(_)) if existing.is_none() && !engine.may_autocreate(project, now) => {
                    job.refuse(index, autocreate_rate_error(engine, project));
                    continue 'jobs;
                }
                Ok(Some(mut commit)) => {
                    commit.project_version = Some(project.version);
                    if existing.is_none() {
                        *created.entry(project.id).or_default() += 1;
                    }
                    let state = Box::new(commit.indicator.clone());
                    let slot = match earlier {
                        Some(i) => {
                            commits[i].merge(commit);
                            i
                        }
                        None => {
                            commits.push(commit);
                            if let Some(k) = key {
                                at.insert(k, commits.len() - 1);
                            }
                            commits.len() - 1
                        }
                    };
                    planned.push(Planned::Stored(slot, state));
                }
            }
        }
        for (project, n) in created {
            *counts.entry(project).or_default() += n;
        }
        taken.extend(job_keys.iter().flatten().cloned());
        decided.push(Decided {
            job,
            commits,
            planned,
            projects: projects.iter().map(|p| p.id).collect(),
            keys: job_keys.into_iter().flatten().collect(),
        });
    }

    // Jobs with nothing to store are answered now; the others are committed together.
    let (empty_jobs, decided): (Vec<_>, Vec<_>) =
        decided.into_iter().partition(|d| d.commits.is_empty());
    for d in empty_jobs {
        d.job.answer(Ok(d
            .planned
            .iter()
            .map(|_| UpdateOutcome::Ignored)
            .collect()));
    }
    if decided.is_empty() {
        return (None, retry);
    }
    let mut groups = Vec::with_capacity(decided.len());
    let mut waiting = Vec::with_capacity(decided.len());
    for d in decided {
        groups.push(d.commits);
        waiting.push((d.job, d.planned, d.projects, d.keys));
    }
    (
        Some(Prepared {
            groups,
            waiting,
            now,
        }),
        retry,
    )
}

/// Commits a prepared batch and answers its callers; returns the jobs to try again.
async fn commit(engine: Arc<Inner>, prepared: Prepared) -> Vec<Job> {
    let Prepared {
        mut groups,
        waiting,
        now,
    } = prepared;
    let engine = &*engine;
    let storage = &engine.storage;
    let mut retry = Vec::new();
    engine.hold_for_bursts(groups.iter_mut().flatten());
    let releases: Vec<_> = groups
        .iter()
        .map(|g| g.iter().filter_map(Commit::first_attempt).min())
        .collect();
    let results = match storage.commit_batch(groups).await {
        Ok(results) => results,
        Err(e) if e.is_conflict() => {
            // The transaction lost a race as a whole (PostgreSQL broke a deadlock with
            // another node's): nothing was stored, each job is decided again.
            let e = Arc::new(e);
            for (mut job, _, _, keys) in waiting {
                forget(engine, &keys);
                if job.conflicts < engine.config.max_conflict_retries {
                    job.conflicts += 1;
                    retry.push(job);
                } else {
                    job.refuse(0, UpdateError::Storage(shared(&e)));
                }
            }
            return retry;
        }
        Err(e) => {
            // Whether anything was stored is unknown: forget what the batch named.
            let e = Arc::new(e);
            for (job, _, _, keys) in waiting {
                forget(engine, &keys);
                job.refuse(0, UpdateError::Storage(shared(&e)));
            }
            return retry;
        }
    };
    for (((mut job, planned, projects, keys), result), release) in
        waiting.into_iter().zip(results).zip(releases)
    {
        match result {
            Ok(stored) => {
                let due = stored.iter().filter_map(Indicator::due_at).min();
                engine.wake_for(due.into_iter().chain(release).min());
                let outcomes = planned
                    .into_iter()
                    .map(|p| match p {
                        Planned::Ignored => UpdateOutcome::Ignored,
                        Planned::Stored(slot, mut state) => {
                            if let Some(s) = stored.get(slot) {
                                state.id = s.id;
                                state.version = s.version;
                            }
                            UpdateOutcome::Applied(state)
                        }
                    })
                    .collect();
                job.answer(Ok(outcomes));
                for ind in stored {
                    // A change of status (or a new indicator) is what logic indicators
                    // of the project may read.
                    if ind.method.is_logic() {
                        engine.has_logic(ind.project);
                    }
                    if ind.changed == now || ind.version == 1 {
                        engine.note_change(ind.project, now);
                    }
                    engine.indicators.put(ind);
                }
            }
            Err(e) if e.is_conflict() && job.conflicts < engine.config.max_conflict_retries => {
                forget(engine, &keys);
                if matches!(
                    &e,
                    StorageError::Conflict {
                        entity: "project",
                        ..
                    }
                ) {
                    for id in projects {
                        engine.projects.forget(id);
                    }
                    job.fresh = true;
                }
                job.conflicts += 1;
                retry.push(job);
            }
            Err(e) => {
                forget(engine, &keys);
                job.refuse(0, UpdateError::Storage(e));
            }
        }
    }
    retry
}

fn forget(engine: &Inner, keys: &[Key]) {
    for (project, name) in keys {
        engine.indicators.forget(*project, name);
    }
}

/// The projects of a job's updates, and whether any came from the cache.
async fn projects_of(
    engine: &Inner,
    job: &Job,
) -> Result<(Vec<Arc<Project>>, bool), (usize, UpdateError)> {
    let mut projects: Vec<Arc<Project>> = Vec::with_capacity(job.reqs.len());
    let mut cached = false;
    for (index, req) in job.reqs.iter().enumerate() {
        if let Some(p) = projects
            .iter()
            .find(|p| p.textids().any(|t| t.as_str() == req.textid))
        {
            let p = p.clone();
            projects.push(p);
            continue;
        }
        if !job.fresh
            && let Some(p) = engine.projects.get(&req.textid)
        {
            cached = true;
            projects.push(p);
            continue;
        }
        let project = match engine.storage.project_by_textid(&req.textid).await {
            Ok(Some(p)) => Arc::new(p),
            Ok(None) => return Err((index, UpdateError::NoSuchProject(req.textid.clone()))),
            Err(e) => return Err((index, e.into())),
        };
        engine.projects.put(&req.textid, project.clone());
        projects.push(project);
    }
    Ok((projects, cached))
}

/// The indicator as storage will hold it after `commit`: what a later update of the same
/// message is decided on.
fn as_stored(commit: &Commit) -> Indicator {
    let mut ind = commit.indicator.clone();
    ind.version += 1;
    ind
}

/// A storage error that several callers share (a batch that failed as a whole).
fn shared(e: &Arc<StorageError>) -> StorageError {
    let backend = match &**e {
        StorageError::Backend { backend, .. } => backend,
        _ => "storage",
    };
    StorageError::backend(backend, SharedError(e.clone()))
}

/// One error, given to every caller of a failed batch.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct SharedError(Arc<StorageError>);

/// The refusal of an update that would create an indicator too soon after the others.
fn autocreate_rate_error(engine: &Inner, project: &Project) -> UpdateError {
    let rate = engine.config.settings.autocreate_rate.unwrap_or_default();
    UpdateError::LimitAutocreate {
        textid: project.textid.to_string(),
        burst: rate.burst,
        per_minute: rate.per_minute,
    }
}

#[cfg(test)]
mod tests {
    use super::IndicatorCache;
    use crate::{CheckMethod, Indicator, IndicatorName, Policy, ProjectId, Settings};

    fn indicator(i: usize) -> Indicator {
        let name = IndicatorName::parse(&format!("i{i}")).unwrap_or_else(|e| panic!("{e}"));
        let method = CheckMethod::with_defaults("heartbeat").unwrap_or_else(|e| panic!("{e}"));
        Indicator::new(
            ProjectId(1),
            name,
            &Policy::default_policy(),
            method,
            &Settings::default(),
            chrono::DateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_full_cache_drops_an_eighth_and_keeps_the_rest() {
        let cache = IndicatorCache::new(80);
        for i in 0..80 {
            cache.put(indicator(i));
        }
        assert_eq!(cache.lock().len(), 80);
        // An entry already there is replaced, nothing dropped.
        cache.put(indicator(5));
        assert_eq!(cache.lock().len(), 80);
        cache.put(indicator(80));
        assert_eq!(cache.lock().len(), 71, "80 - 10 + 1");
        assert!(cache.get(&(ProjectId(1), indicator(80).name)).is_some());
        let none = IndicatorCache::new(0);
        none.put(indicator(1));
        assert_eq!(none.lock().len(), 0);
    }
}
