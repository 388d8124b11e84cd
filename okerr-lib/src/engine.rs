//! The engine an embedding program uses: it runs okerr's pure decisions against a
//! [`Storage`], reads the time from a [`Clock`] and hands released notifications to a
//! [`Notifier`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;

use crate::action::{Action, ActionError, decide_actions, decide_create, decide_expiry};
use crate::batch;
use crate::clock::Clock;
use crate::indicator::Indicator;
use crate::name::IndicatorName;
use crate::notify::{DeliveryReport, Notifier, NotifyError};
use crate::outbox::{NotificationId, OutboxEntry};
use crate::project::{Project, ProjectId};
use crate::retention::{self, PruneReport, Retention};
use crate::sensor::Sensor;
use crate::settings::{Bucket, Settings};
use crate::storage::{Commit, Storage, StorageError};
use crate::update::{UpdateError, UpdateOutcome, UpdateRequest};

mod bursts;
mod checks;
mod edit;
mod logic;
pub use bursts::BATCH_LONGEST_WAIT;
pub use checks::CHECK_MARGIN;
pub use edit::{EditError, MAX_EDIT_ATTEMPTS};
pub use logic::NoFlap;

/// How the engine works: okerr's limits and the scheduler's knobs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Minimum period and patience.
    pub settings: Settings,
    /// How many indicators or notifications one claim takes.
    pub batch: u32,
    /// The most updates one batch of the update path reads, decides and commits together.
    pub update_batch: usize,
    /// How many workers take batches of updates from the queue. One is best for both SQL
    /// backends: while its batch commits, the next updates gather for the next batch, so
    /// the batch size follows the load. More workers commit smaller batches side by side.
    pub update_workers: usize,
    /// How many batches of updates may be being stored while the next is read and
    /// decided. 0 (the default): one batch at a time, while it is stored the next gathers,
    /// so batches are as large as the load makes them and each update costs least (best
    /// on both backends on 2 cores: docs/benchmarks.md). 1: the next batch is decided
    /// while one is stored, and stored after it. More: as many commits side by side (on
    /// PostgreSQL each runs in a server process of its own, which a database server with
    /// many cores can use). Each indicator has at most one commit in flight whatever the
    /// depth.
    pub update_pipeline: usize,
    /// How many loops of the scheduler claim and commit due indicators side by side (each
    /// claim skips the rows another holds, as with several nodes). 1 (the default) is
    /// best on SQLite, whose one writer takes the commits in turn anyway; on PostgreSQL
    /// each loop's statements run in a server process of their own, and `okerr serve`
    /// takes 4 ([`EngineConfig::with_parallel_claims`]).
    pub due_workers: usize,
    /// The most indicators the update path keeps in memory, as it last committed them, so
    /// that an update of a known indicator reads nothing (commits check the version, so a
    /// copy another writer made stale is read again). 0 caches none. About half a
    /// kilobyte each.
    pub cached_indicators: usize,
    /// How long a claim holds its rows before another node may take them. A worker renews
    /// the claim of notifications it is delivering every third of it, so a node that dies
    /// hands its claims to the others within one lease (10 s).
    pub lease: TimeDelta,
    /// The longest one delivery (a notifier's batch) may take before it counts as failed.
    pub delivery_timeout: TimeDelta,
    /// What is pruned, and when a failing notification is given up.
    pub retention: Retention,
    /// How often a decision is retried when its indicator moved meanwhile.
    pub max_conflict_retries: u32,
    /// The longest the run loop sleeps without looking at storage.
    pub max_sleep: std::time::Duration,
    /// The first retry delay of a failed delivery; it doubles up to `retry_max`.
    pub retry_base: TimeDelta,
    /// The longest retry delay of a failed delivery.
    pub retry_max: TimeDelta,
    /// How long a recipient's released alerts wait for the burst to settle: they are
    /// delivered together once the newest of them is this old (okerr waits 10 s), and at
    /// the latest when the oldest has waited [`BATCH_LONGEST_WAIT`] times this (a steady
    /// stream of alerts does not hold the mail back for ever). Zero delivers at once.
    pub batch_delay: TimeDelta,
    /// How long after a change in a project its logic indicators are evaluated (okerr
    /// waits for their period): changes within this time are evaluated together. The
    /// evaluation runs on the next scheduler pass after it, so the delay from a change to
    /// the logic indicator's new status is at most this plus one pass.
    pub logic_debounce: TimeDelta,
    /// How many active checks run at once on this node (with a sensor). A claimed check
    /// waits for a free slot at most `lease`; one that cannot start by then is dropped
    /// and claimed again when its lease ends.
    pub check_concurrency: usize,
    /// The hard bound on one active check: the engine cuts a check that has not returned
    /// by then, ERR `Check did not finish in {n} s`. The claims of a node with a sensor
    /// last `lease + check_timeout + 5 s`, so they outlast every check they start.
    pub check_timeout: std::time::Duration,
    /// The shortest time from one scheduler pass to the next when a commit wakes the run
    /// loop (a released alert, a deadline brought forward): what commits bring meanwhile
    /// is handled by one pass. Without it, every batch of updates that releases an alert
    /// runs a pass of its own (a claim of due indicators, a claim of notifications, their
    /// outcome and a read of the next deadline): on SQLite's one writer, flips ran 17 %
    /// faster without those transactions (docs/benchmarks.md, "The scheduler woken by
    /// commits"). Deadlines the loop sleeps to and [`Engine::wake`] are not held back.
    /// 50 ms.
    pub pass_gap: std::time::Duration,
}

impl EngineConfig {
    /// The scheduler's knobs for a storage whose writers work side by side (PostgreSQL):
    /// four loops of claims of 250 due indicators (or notifications), where one loop of
    /// 500 suits SQLite's one writer. Measured: 20,000 indicators due at once beside full
    /// load expire with median lateness 0.39 s instead of 0.68 s (docs/benchmarks.md, "The
    /// scheduler under load"). `okerr serve` takes it on PostgreSQL.
    #[must_use]
    pub fn with_parallel_claims(self) -> EngineConfig {
        EngineConfig {
            due_workers: 4,
            batch: 250,
            ..self
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            settings: Settings::default(),
            batch: 500,
            update_batch: 512,
            update_workers: 1,
            update_pipeline: 0,
            due_workers: 1,
            cached_indicators: 100_000,
            lease: TimeDelta::seconds(10),
            delivery_timeout: TimeDelta::seconds(60),
            retention: Retention::default(),
            max_conflict_retries: 64,
            max_sleep: std::time::Duration::from_secs(60),
            retry_base: TimeDelta::seconds(5),
            retry_max: TimeDelta::hours(1),
            batch_delay: TimeDelta::zero(),
            logic_debounce: TimeDelta::milliseconds(500),
            check_concurrency: 64,
            check_timeout: std::time::Duration::from_secs(20),
            pass_gap: std::time::Duration::from_millis(50),
        }
    }
}

/// The first and the last noted change of a project, for its logic indicators.
pub(crate) type ChangeNote = (DateTime<Utc>, DateTime<Utc>);

/// The most projects whose autocreate bucket is kept at once.
const MAX_BUCKETS: usize = 10_000;

/// What one pass of the scheduler did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Indicators that expired to ERR.
    pub expired: usize,
    /// Logic indicators evaluated (due, or after a change in their project).
    pub evaluated: usize,
    /// Active checks started (they finish and are committed after the pass:
    /// [`Engine::checks_settled`]).
    pub checks: usize,
    /// Notifications delivered.
    pub delivered: usize,
    /// Notifications whose delivery failed and will be retried.
    pub failed: usize,
    /// Notifications given up after failing for `retention.dead_letter_after`.
    pub dead: usize,
}

/// okerr's engine. Cheap to clone; clones share everything.
///
/// ```
/// # use std::sync::Arc;
/// use okerr::{Engine, MemoryStorage, SystemClock, UpdateRequest, NewProject, TextId};
/// use okerr::storage::Storage;
/// use okerr::testing::RecordingNotifier;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let storage = Arc::new(MemoryStorage::new());
/// storage.create_project(NewProject::new("demo", TextId::parse("demo")?)).await?;
/// let engine = Engine::new(storage, Arc::new(RecordingNotifier::new()), Arc::new(SystemClock));
/// engine.update(UpdateRequest::new("demo", "test:apache2", "OK")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) storage: Arc<dyn Storage>,
    /// `None`: notifications stay in the outbox until an engine with a notifier runs.
    notifier: Option<Arc<dyn Notifier>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    /// Wakes the run loop now ([`Engine::wake`]).
    wake: Notify,
    /// Wakes the run loop for what a commit brought, `pass_gap` after its last pass.
    wake_after_gap: Notify,
    /// When the run loop plans to wake next; an earlier deadline wakes it now.
    planned_wake: Mutex<Option<DateTime<Utc>>>,
    /// The queue of the update batcher, started by the first update.
    batcher: OnceLock<batch::Queue>,
    /// Projects by textid, as last read: decisions on them are committed only while the
    /// project is still at that version.
    pub(crate) projects: batch::ProjectCache,
    /// Indicators as the update path last committed them.
    pub(crate) indicators: batch::IndicatorCache,
    /// The autocreate bucket of each project that created indicators lately.
    pub(crate) autocreated: Mutex<HashMap<ProjectId, Bucket>>,
    /// When the scheduler prunes next; `None` at once.
    next_prune: Mutex<Option<DateTime<Utc>>>,
    /// Projects with a change their logic indicators have not been evaluated on yet, and
    /// when the first and the last such change happened.
    pub(crate) changed: Mutex<HashMap<ProjectId, ChangeNote>>,
    /// Whether a project has logic indicators, as far as this node knows: learned by
    /// reading it after a change (a project of more than `LARGE_PROJECT` indicators is
    /// not read: false), and set when this node stores or evaluates a logic indicator
    /// there. A project known to have none is not read for its changes.
    pub(crate) has_logic: Mutex<HashMap<ProjectId, bool>>,
    /// The sensor and the checks in flight; `None`: active indicators are not checked
    /// (and cannot be made).
    pub(crate) checks: Option<checks::Checks>,
    /// The bursts of alerts this node is holding back, by batch key (the recipient).
    batch_waves: Mutex<HashMap<String, bursts::Wave>>,
}

impl Engine {
    /// An engine with the default configuration.
    pub fn new(
        storage: Arc<dyn Storage>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Engine::with_config(storage, notifier, clock, EngineConfig::default())
    }

    /// An engine with its own configuration.
    pub fn with_config(
        storage: Arc<dyn Storage>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        Engine::build(storage, Some(notifier), clock, config, None)
    }

    /// An engine that delivers nothing: released notifications stay in the outbox (for a
    /// server with no mail relay yet, or a node that only takes updates).
    pub fn without_notifier(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        Engine::build(storage, None, clock, config, None)
    }

    /// A builder, for an engine with a [`Sensor`] (active checks) or other options the
    /// constructors above do not take.
    pub fn builder(storage: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> EngineBuilder {
        EngineBuilder {
            storage,
            clock,
            notifier: None,
            config: EngineConfig::default(),
            sensor: None,
        }
    }

    fn build(
        storage: Arc<dyn Storage>,
        notifier: Option<Arc<dyn Notifier>>,
        clock: Arc<dyn Clock>,
        mut config: EngineConfig,
        sensor: Option<Arc<dyn Sensor>>,
    ) -> Self {
        // Active methods can be given to indicators when they are run (or when the
        // configuration says another node runs them).
        config.settings.active_checks |= sensor.is_some();
        let checks = sensor.map(|s| checks::Checks::new(s, config.check_concurrency));
        let indicators = batch::IndicatorCache::new(config.cached_indicators);
        Engine {
            inner: Arc::new(Inner {
                storage,
                notifier,
                clock,
                config,
                wake: Notify::new(),
                wake_after_gap: Notify::new(),
                planned_wake: Mutex::new(None),
                batcher: OnceLock::new(),
                projects: batch::ProjectCache::default(),
                indicators,
                autocreated: Mutex::new(HashMap::new()),
                next_prune: Mutex::new(None),
                changed: Mutex::new(HashMap::new()),
                has_logic: Mutex::new(HashMap::new()),
                checks,
                batch_waves: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The storage the engine works on.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Applies a pushed update (spec §5.3): decided, then committed with its log lines and
    /// alerts in one atomic commit, retried when another writer moved the indicator.
    ///
    /// Concurrent updates are batched (`okerr-lib/src/batch.rs`): read with one query,
    /// decided one by one, committed in one transaction; the answer comes once the batch
    /// is committed, so an `Ok` is durable.
    ///
    /// # Errors
    /// okerr's refusals (their `Display` is okerr's text), or `Storage`.
    pub async fn update(&self, req: UpdateRequest) -> Result<UpdateOutcome, UpdateError> {
        let mut outcomes = self.update_all(vec![req]).await.map_err(|r| r.error)?;
        outcomes
            .pop()
            .ok_or_else(|| UpdateError::Storage(batch::lost_reply()))
    }

    /// Applies several updates as one message (an e-mail with several `%%%` blocks), all
    /// or none: every update is decided before anything is stored, and all of them are
    /// committed in one transaction. A refusal of any of them stores none.
    ///
    /// # Errors
    /// The first refusal, with the index of its update; or `Storage`. Nothing of the
    /// message is stored then.
    pub async fn update_all(
        &self,
        reqs: Vec<UpdateRequest>,
    ) -> Result<Vec<UpdateOutcome>, RefusedUpdate> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        for (index, req) in reqs.iter().enumerate() {
            req.check_bounds().map_err(|error| RefusedUpdate {
                index,
                applied: 0,
                error,
            })?;
        }
        let queue = self.inner.batcher.get_or_init(|| {
            batch::spawn(
                Arc::downgrade(&self.inner),
                self.inner.config.update_workers.max(1),
            )
        });
        batch::submit(queue, reqs).await
    }

    /// Applies a user's action to an indicator. Returns the indicator as stored after it.
    ///
    /// # Errors
    /// Unknown project or indicator, or `Storage`.
    pub async fn act(
        &self,
        textid: &str,
        name: &IndicatorName,
        action: &Action,
        actor: &str,
    ) -> Result<Indicator, ActionError> {
        self.act_all(textid, name, std::slice::from_ref(action), actor)
            .await
    }

    /// Applies several actions to an indicator as one change, in order (okerr's `api/set`).
    ///
    /// # Errors
    /// Unknown project, indicator, policy or method, a bad argument, or `Storage`; nothing
    /// is applied then.
    pub async fn act_all(
        &self,
        textid: &str,
        name: &IndicatorName,
        actions: &[Action],
        actor: &str,
    ) -> Result<Indicator, ActionError> {
        let storage = &self.inner.storage;
        let project = storage
            .project_by_textid(textid)
            .await?
            .ok_or_else(|| ActionError::NoSuchProject(textid.to_owned()))?;
        let mut attempt = 0;
        loop {
            let ind = storage.indicator(project.id, name).await?.ok_or_else(|| {
                ActionError::NoSuchIndicator {
                    textid: textid.to_owned(),
                    name: name.to_string(),
                }
            })?;
            let now = self.inner.clock.now();
            let settings = &self.inner.config.settings;
            let Some(commit) = decide_actions(&project, &ind, actions, actor, settings, now)?
            else {
                return Ok(ind);
            };
            if let Some(stored) = self.commit(commit, &mut attempt).await? {
                // A user's change (a flag, a status) can change what the project's logic
                // indicators see.
                if stored.method.is_logic() {
                    self.inner.has_logic(project.id);
                }
                self.inner.note_change(project.id, now);
                return Ok(stored);
            }
        }
    }

    /// Creates an indicator for a user (okerr's `api/create`): a heartbeat in policy
    /// `Default`, in maintenance. `ip` is the user's address, for the alert.
    ///
    /// # Errors
    /// Unknown project, an existing or invalid name, the indicator limit, or `Storage`.
    pub async fn create_indicator(
        &self,
        textid: &str,
        name: &str,
        actor: &str,
        ip: &str,
    ) -> Result<Indicator, ActionError> {
        let storage = &self.inner.storage;
        let project = storage
            .project_by_textid(textid)
            .await?
            .ok_or_else(|| ActionError::NoSuchProject(textid.to_owned()))?;
        let count = match self.inner.config.settings.indicator_limit(&project) {
            Some(_) => storage.count_indicators(project.id).await?,
            None => 0,
        };
        let now = self.inner.clock.now();
        let commit = decide_create(
            &project,
            name,
            count,
            actor,
            ip,
            &self.inner.config.settings,
            now,
        )?;
        match self.commit_once(commit).await {
            Err(e) if e.is_conflict() => Err(ActionError::AlreadyExists(name.to_owned())),
            result => {
                let stored = result?;
                self.inner.note_change(project.id, now);
                Ok(stored)
            }
        }
    }

    /// Commits a decision once, and wakes the run loop when it brings a deadline forward.
    async fn commit_once(&self, mut commit: Commit) -> Result<Indicator, StorageError> {
        let ind = &commit.indicator;
        self.inner.indicators.forget(ind.project, &ind.name);
        self.inner.hold_for_bursts([&mut commit]);
        let stored = self.inner.storage.commit(&commit).await?;
        let release = commit.first_attempt();
        self.wake_for(stored.due_at().into_iter().chain(release).min());
        Ok(stored)
    }

    /// Commits a decision. `Ok(None)` asks the caller to re-read and decide again (the
    /// indicator moved); after `max_conflict_retries` the conflict is returned.
    async fn commit(
        &self,
        commit: Commit,
        attempt: &mut u32,
    ) -> Result<Option<Indicator>, StorageError> {
        match self.commit_once(commit).await {
            Ok(stored) => Ok(Some(stored)),
            Err(e) if e.is_conflict() && *attempt < self.inner.config.max_conflict_retries => {
                *attempt += 1;
                tokio::task::yield_now().await;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Expires every indicator whose deadline has passed (spec §7.4): ERR `No heartbeat`,
    /// dead, with its alert; due logic indicators of the same claims are evaluated. Each
    /// expiry and evaluation happens once, also with several engines on one storage.
    /// Returns how many expired.
    ///
    /// # Errors
    /// When storage fails; what was committed before stays.
    pub async fn expire_due(&self) -> Result<usize, StorageError> {
        Ok(self.run_due().await?.expired)
    }

    /// The due work of [`tick`](Engine::tick): claims what is due and, by method, expires
    /// it (passive), evaluates it (logic, over its project's indicators read in one query
    /// per project and claim), or starts its check (active, off this pass: the results
    /// are committed by the checks' committer); expiries and evaluations of a claim are
    /// committed in one batch.
    async fn run_due(&self) -> Result<TickReport, StorageError> {
        let workers = self.inner.config.due_workers.max(1);
        if workers == 1 {
            return self.claim_and_commit_due().await;
        }
        // Claims skip what another claim holds, so the loops share the due rows like the
        // engines of several nodes do.
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let engine = self.clone();
            loops.spawn(async move { engine.claim_and_commit_due().await });
        }
        let mut report = TickReport::default();
        let mut failed = None;
        while let Some(done) = loops.join_next().await {
            match done {
                Ok(Ok(one)) => {
                    report.expired += one.expired;
                    report.evaluated += one.evaluated;
                    report.checks += one.checks;
                }
                Ok(Err(e)) => failed = Some(e),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: the runtime is shutting down; what the loop committed stays,
                // and what it held comes back when its lease ends.
                Err(_) => {}
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// One loop of [`run_due`](Engine::run_due): claims of `batch`, each decided and
    /// committed, until a claim is not full.
    async fn claim_and_commit_due(&self) -> Result<TickReport, StorageError> {
        let storage = &self.inner.storage;
        let config = &self.inner.config;
        let lease = self.claim_lease();
        let mut projects: HashMap<ProjectId, Option<Arc<Project>>> = HashMap::new();
        let mut report = TickReport::default();
        loop {
            let now = self.inner.clock.now();
            let claimed = storage.claim_due(now, now + lease, config.batch).await?;
            let full = claimed.len() >= config.batch as usize;
            let mut commits = Vec::with_capacity(claimed.len());
            // The indicators of each project with a logic indicator in this claim.
            let mut members: HashMap<ProjectId, Vec<Indicator>> = HashMap::new();
            for ind in claimed {
                if let std::collections::hash_map::Entry::Vacant(slot) = projects.entry(ind.project)
                {
                    slot.insert(storage.project(ind.project).await?.map(Arc::new));
                }
                let Some(Some(project)) = projects.get(&ind.project) else {
                    continue;
                };
                let commit = if ind.method.is_active() {
                    if ind.due_at().is_some_and(|due| due <= now)
                        && self.start_check(project.clone(), ind)
                    {
                        report.checks += 1;
                    }
                    None
                } else if ind.method.is_passive() {
                    decide_expiry(project, &ind, &config.settings, now)
                } else {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        members.entry(project.id)
                    {
                        slot.insert(storage.indicators(project.id).await?);
                    }
                    let all = members.get(&project.id).map_or(&[][..], Vec::as_slice);
                    crate::logic::decide_evaluation(
                        project,
                        &ind,
                        all,
                        &config.settings,
                        crate::logic::Trigger::Due,
                        now,
                    )
                };
                commits.extend(commit);
            }
            // The whole claim is committed in one batch; an indicator that moved since it
            // was claimed (an update came) is read again and decided on its own.
            self.inner.hold_for_bursts(&mut commits);
            let keys: Vec<_> = commits
                .iter()
                .map(|c| {
                    let release = c.first_attempt();
                    let passive = c.indicator.method.is_passive();
                    let changed = c.indicator.changed == now;
                    (
                        c.indicator.project,
                        c.indicator.name.clone(),
                        release,
                        passive,
                        changed,
                    )
                })
                .collect();
            let results = storage
                .commit_batch(commits.into_iter().map(|c| vec![c]).collect())
                .await?;
            for ((project, name, release, passive, changed), result) in
                keys.into_iter().zip(results)
            {
                match result {
                    Ok(_) => {
                        self.inner.indicators.forget(project, &name);
                        if passive {
                            report.expired += 1;
                        } else {
                            report.evaluated += 1;
                            self.inner.has_logic(project);
                        }
                        if changed {
                            self.inner.note_change(project, now);
                        }
                        self.inner.wake_for(release);
                    }
                    Err(e) if e.is_conflict() => {
                        let project = projects.get(&project).and_then(Option::as_ref);
                        let fresh = match project {
                            Some(p) => storage.indicator(p.id, &name).await?,
                            None => None,
                        };
                        if let (Some(project), Some(fresh)) = (project, fresh) {
                            if fresh.method.is_passive() {
                                report.expired +=
                                    usize::from(self.expire_one(project, fresh).await?);
                            } else if fresh.method.is_logic() {
                                report.evaluated +=
                                    usize::from(self.evaluate_one(project, fresh).await?);
                            }
                            // An indicator made active meanwhile is checked at once: its
                            // method's change retested it.
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            if !full {
                return Ok(report);
            }
        }
    }

    async fn expire_one(&self, project: &Project, ind: Indicator) -> Result<bool, StorageError> {
        let settings = &self.inner.config.settings;
        self.redecide(project, ind, |ind, now| {
            let commit = decide_expiry(project, &ind, settings, now);
            Box::pin(async move { Ok(commit) })
        })
        .await
    }

    /// Hands released notifications to the notifier and records the outcome: delivered
    /// ones are marked and never handed out again; failed ones are retried later with
    /// exponential backoff.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn deliver_released(&self) -> Result<TickReport, StorageError> {
        self.deliver_claims(usize::MAX).await
    }

    /// [`deliver_released`](Engine::deliver_released), but at most `claims` claims of
    /// `batch` notifications (what is left is released still, so the run loop comes back at
    /// once).
    async fn deliver_claims(&self, claims: usize) -> Result<TickReport, StorageError> {
        let storage = &self.inner.storage;
        let config = &self.inner.config;
        let mut report = TickReport::default();
        let Some(notifier) = &self.inner.notifier else {
            return Ok(report);
        };
        for _ in 0..claims {
            let now = self.inner.clock.now();
            self.release_settled_bursts(now).await?;
            let batch = storage
                .claim_notifications(now, now + config.lease, config.batch)
                .await?;
            if batch.is_empty() {
                return Ok(report);
            }
            let full = batch.len() >= config.batch as usize;
            let batch = self.settled(batch, now).await?;
            if batch.is_empty() {
                if full {
                    continue;
                }
                return Ok(report);
            }
            let outcome = self.deliver_holding(notifier.as_ref(), &batch, now).await;
            let now = self.inner.clock.now();
            let mut delivered: Vec<_> = batch.iter().map(|e| e.id).collect();
            // Failures to retry at the same time with the same error are written together.
            let mut retries: BTreeMap<(DateTime<Utc>, String), Vec<NotificationId>> =
                BTreeMap::new();
            for (id, error) in &outcome.failed {
                delivered.retain(|d| d != id);
                let Some(entry) = batch.iter().find(|e| e.id == *id) else {
                    continue;
                };
                let given_up = entry.notification.release_at + config.retention.dead_letter_after;
                if now >= given_up {
                    tracing::warn!(
                        notification = %id,
                        project = %entry.notification.textid,
                        indicator = %entry.notification.indicator,
                        attempts = entry.attempts + 1,
                        %error,
                        "delivery failed for too long, notification dead-lettered"
                    );
                    storage.dead_letter(*id, now, &error.to_string()).await?;
                    report.dead += 1;
                    continue;
                }
                let delay = if error.is_permanent() {
                    config.retry_max
                } else {
                    backoff(config.retry_base, config.retry_max, entry.attempts)
                };
                retries
                    .entry((now + delay, error.to_string()))
                    .or_default()
                    .push(*id);
                report.failed += 1;
            }
            for ((at, error), ids) in &retries {
                tracing::warn!(
                    notifications = ids.len(),
                    %error,
                    retry_at = %at,
                    "delivery failed, will retry"
                );
                storage.retry_notifications(ids, *at, error).await?;
            }
            storage.mark_delivered(&delivered, now).await?;
            report.delivered += delivered.len();
            if !full {
                return Ok(report);
            }
        }
        Ok(report)
    }

    /// Hands `batch`, claimed at `claimed` until `claimed + lease`, to the notifier, and
    /// renews the claim every third of the lease while it works, so that another node does
    /// not take the entries meanwhile, yet takes them within one lease if this node dies.
    /// A delivery longer than `delivery_timeout` counts as failed.
    async fn deliver_holding(
        &self,
        notifier: &dyn Notifier,
        batch: &[OutboxEntry],
        claimed: DateTime<Utc>,
    ) -> DeliveryReport {
        let config = &self.inner.config;
        let limit = config
            .delivery_timeout
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1));
        let every = (config.lease / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1))
            .max(std::time::Duration::from_millis(10));
        let ids: Vec<NotificationId> = batch.iter().map(|e| e.id).collect();
        let mut held = claimed + config.lease;
        let delivery = tokio::time::timeout(limit, notifier.deliver(batch));
        tokio::pin!(delivery);
        loop {
            tokio::select! {
                outcome = &mut delivery => {
                    return outcome.unwrap_or_else(|_| {
                        DeliveryReport::all_failed(batch, || {
                            NotifyError::Transient(
                                format!("delivery took longer than {}s", limit.as_secs()).into(),
                            )
                        })
                    });
                }
                () = tokio::time::sleep(every) => {
                    let until = self.inner.clock.now() + config.lease;
                    match self.inner.storage.renew_notifications(&ids, held, until).await {
                        Ok(renewed) => {
                            if renewed.len() < ids.len() {
                                tracing::warn!(
                                    lost = ids.len() - renewed.len(),
                                    "claims of notifications in delivery ended before renewal"
                                );
                            }
                            held = until;
                        }
                        Err(error) => tracing::error!(%error, "cannot renew delivery claims"),
                    }
                }
            }
        }
    }

    /// One pass of the scheduler: expire and evaluate what is due, start the due active
    /// checks (they run and are committed after the pass returns: see
    /// [`checks_settled`](Engine::checks_settled)), deliver one claim of released
    /// notifications (at most `batch`), and prune when `retention.prune_every` has passed
    /// since the last prune (or a backlog is left). Delivery is bounded so that a burst of
    /// alerts (or a slow notifier) holds up the expiry of others by one notifier batch at
    /// most; [`run`](Engine::run) comes back at once while released notifications are left.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn tick(&self) -> Result<TickReport, StorageError> {
        let report = self.pass().await?;
        self.prune_if_due().await?;
        Ok(report)
    }

    /// A tick without the pruning: due work, changed logic, one claim of deliveries.
    async fn pass(&self) -> Result<TickReport, StorageError> {
        let due = self.run_due().await?;
        let evaluated = due.evaluated + self.evaluate_changed().await?;
        let delivered = self.deliver_claims(1).await?;
        Ok(TickReport {
            expired: due.expired,
            evaluated,
            checks: due.checks,
            ..delivered
        })
    }

    /// A prune pass when one is due (every `retention.prune_every`, at once again while a
    /// backlog is left); how long until the next is due, at most `max_sleep`.
    async fn prune_if_due(&self) -> Result<std::time::Duration, StorageError> {
        let now = self.inner.clock.now();
        let due = *self
            .inner
            .next_prune
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let next = match due {
            Some(at) if at > now => at,
            _ => {
                let report = self.prune().await?;
                let next = if report.more {
                    now
                } else {
                    now + self.inner.config.retention.prune_every
                };
                *self
                    .inner
                    .next_prune
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(next);
                next
            }
        };
        Ok((next - now)
            .to_std()
            .unwrap_or_default()
            .min(self.inner.config.max_sleep))
    }

    /// One bounded prune pass (see [`Retention`]): log lines beyond the bounds, then
    /// delivered and dead notifications past `outbox_age`, in chunks through indexes.
    /// [`tick`](Engine::tick) runs it every `retention.prune_every`.
    ///
    /// # Errors
    /// When storage fails; what was deleted stays deleted.
    pub async fn prune(&self) -> Result<PruneReport, StorageError> {
        let report = retention::prune(&self.inner, self.inner.clock.now()).await?;
        if report.log_lines + report.notifications > 0 {
            tracing::debug!(
                log_lines = report.log_lines,
                notifications = report.notifications,
                more = report.more,
                "pruned"
            );
        }
        Ok(report)
    }

    /// Takes back every claim still held in storage (a lease of a node that crashed), so
    /// that its indicators expire and its notifications are delivered now instead of when
    /// the lease would have ended. Only for a node that is alone on its storage (SQLite):
    /// on a shared one it would take the claims of live nodes. Returns how many it took.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn take_back_claims(&self) -> Result<u64, StorageError> {
        let taken = self
            .inner
            .storage
            .release_claims(self.inner.clock.now())
            .await?;
        if taken > 0 {
            tracing::info!(claims = taken, "took back the claims of the last run");
            self.wake();
        }
        Ok(taken)
    }

    /// Runs the scheduler until `shutdown` completes: a tick, then sleep until the next
    /// deadline in storage (at most `max_sleep`), waking early when an update or
    /// [`wake`](Engine::wake) brings a deadline forward. Storage errors are logged and
    /// retried after a short pause.
    ///
    /// Pruning runs beside the ticks, not inside them: a prune pass of a large log takes
    /// seconds (each statement finds the lines beyond the newest 1,000 of up to a thousand
    /// indicators), and expiries and deliveries do not wait for it. On shutdown the pass or
    /// prune statement in progress finishes first.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let (stop, mut stopping) = tokio::sync::watch::channel(false);
        let scheduler = async {
            tokio::pin!(shutdown);
            loop {
                let started = tokio::time::Instant::now();
                let pause = match self.pass().await {
                    Ok(_) => self.until_next_deadline().await,
                    Err(error) => {
                        tracing::error!(%error, "scheduler pass failed");
                        std::time::Duration::from_secs(1)
                    }
                };
                let deadline = tokio::time::Instant::now() + pause;
                let stop_now = tokio::select! {
                    () = &mut shutdown => true,
                    () = tokio::time::sleep_until(deadline) => false,
                    () = self.inner.wake.notified() => false,
                    () = self.inner.wake_after_gap.notified() => {
                        // What the commits bring until the gap ends is one pass.
                        let gap_end = deadline.min(started + self.inner.config.pass_gap);
                        tokio::select! {
                            () = &mut shutdown => true,
                            () = tokio::time::sleep_until(gap_end) => false,
                            () = self.inner.wake.notified() => false,
                        }
                    }
                };
                if stop_now {
                    let _ = stop.send(true);
                    return;
                }
            }
        };
        let pruner = async {
            loop {
                let pause = self.prune_if_due().await.unwrap_or_else(|error| {
                    tracing::error!(%error, "prune pass failed");
                    std::time::Duration::from_secs(1)
                });
                tokio::select! {
                    _ = stopping.changed() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        };
        tokio::join!(scheduler, pruner);
    }

    /// When the scheduler has work next, as far as this node knows: the earliest due
    /// indicator or released notification in storage, a change to evaluate logic
    /// indicators on, a held-back burst of alerts that goes out. `None`: nothing planned.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        let stored = self.inner.storage.next_deadline().await?;
        Ok(stored.into_iter().chain(self.inner.next_in_memory()).min())
    }

    async fn until_next_deadline(&self) -> std::time::Duration {
        let max = self.inner.config.max_sleep;
        let next = self.next_deadline().await.unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read the next deadline");
            self.inner.next_in_memory()
        });
        *self
            .inner
            .planned_wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = next;
        let now = self.inner.clock.now();
        let pause = next.map_or(max, |t| (t - now).to_std().unwrap_or_default().min(max));
        if self.inner.notifier.is_none() && pause.is_zero() {
            // Released notifications wait for a notifier and keep the deadline in the past:
            // look again at most once a second instead of spinning. (A deadline ahead is
            // slept to exactly: a check due in 10 ms is not started a second late.)
            return std::time::Duration::from_secs(1).min(max);
        }
        pause
    }

    /// Wakes the run loop now, for example after the clock was moved in a test.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Wakes the run loop when `at` comes before the time it plans to wake.
    fn wake_for(&self, at: Option<DateTime<Utc>>) {
        self.inner.wake_for(at);
    }
}

impl Inner {
    /// Takes a token of `project`'s autocreate bucket (a full one the first time); `false`
    /// when the project created indicators faster than [`Settings::autocreate_rate`].
    /// Buckets are per node, kept in memory.
    pub(crate) fn may_autocreate(&self, project: &Project, now: DateTime<Utc>) -> bool {
        let Some(rate) = self.config.settings.autocreate_rate else {
            return true;
        };
        let mut buckets = self
            .autocreated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&project.id) {
            // Forget the buckets that refilled; a full bucket and no bucket are the same.
            buckets.retain(|_, b| !b.is_full(rate, now));
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        buckets
            .entry(project.id)
            .or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now)
    }

    /// The earliest work only this node's memory knows of: a change to evaluate logic
    /// indicators on, a held-back burst that goes out.
    fn next_in_memory(&self) -> Option<DateTime<Utc>> {
        self.next_change_evaluation()
            .into_iter()
            .chain(self.next_burst_release())
            .min()
    }

    /// Wakes the run loop when `at` comes before the time it plans to wake.
    pub(crate) fn wake_for(&self, at: Option<DateTime<Utc>>) {
        let Some(at) = at else { return };
        let planned = *self
            .planned_wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if planned.is_none_or(|p| at < p) {
            self.wake_after_gap.notify_one();
        }
    }
}

/// Builds an [`Engine`]: [`Engine::builder`], then the options, then
/// [`build`](EngineBuilder::build).
///
/// ```
/// # use std::sync::Arc;
/// use okerr::{CheckResult, Engine, EngineConfig, MemoryStorage, Sensor, SystemClock};
/// # use okerr::ActiveArgs;
/// #[derive(Debug)]
/// struct AlwaysOk;
/// #[async_trait::async_trait]
/// impl Sensor for AlwaysOk {
///     async fn check(&self, _: &ActiveArgs, _: chrono::DateTime<chrono::Utc>) -> CheckResult {
///         CheckResult::ok("fine")
///     }
/// }
/// let engine = Engine::builder(Arc::new(MemoryStorage::new()), Arc::new(SystemClock))
///     .config(EngineConfig::default())
///     .sensor(Arc::new(AlwaysOk))
///     .build();
/// assert!(engine.config().settings.active_checks);
/// ```
#[derive(Debug)]
#[must_use]
pub struct EngineBuilder {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    notifier: Option<Arc<dyn Notifier>>,
    config: EngineConfig,
    sensor: Option<Arc<dyn Sensor>>,
}

impl EngineBuilder {
    /// Delivers released notifications through `notifier` (without one they stay in
    /// the outbox).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The configuration (default [`EngineConfig::default`]).
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs active checks with `sensor`: due active indicators are checked, and users may
    /// give indicators active methods (`Settings::active_checks`).
    pub fn sensor(mut self, sensor: Arc<dyn Sensor>) -> Self {
        self.sensor = Some(sensor);
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        Engine::build(
            self.storage,
            self.notifier,
            self.clock,
            self.config,
            self.sensor,
        )
    }
}

/// An update of [`Engine::update_all`] was refused; see there what was stored.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RefusedUpdate {
    /// The position of the refused update in the request list.
    pub index: usize,
    /// How many updates of the list were stored: always 0, since a message is stored all
    /// or none (kept for callers that report it).
    pub applied: usize,
    /// Why it was refused; the error's text is this error's text.
    pub error: UpdateError,
}

/// `base · 2^attempts`, at most `max`.
fn backoff(base: TimeDelta, max: TimeDelta, attempts: u32) -> TimeDelta {
    let factor = 1i32.checked_shl(attempts.min(30)).unwrap_or(i32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = TimeDelta::seconds(5);
        let m = TimeDelta::hours(1);
        assert_eq!(backoff(b, m, 0), TimeDelta::seconds(5));
        assert_eq!(backoff(b, m, 3), TimeDelta::seconds(40));
        assert_eq!(backoff(b, m, 20), m);
        assert_eq!(backoff(b, m, u32::MAX), m);
    }
}
