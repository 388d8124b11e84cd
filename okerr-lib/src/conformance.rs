//! The storage conformance suite: the checks every [`Storage`] backend must pass.
//!
//! Each check is a plain `async fn(&dyn Storage)` about one property of the contract
//! written on [`Storage`]; the `engine_*` checks take `&Arc<dyn Storage>` and run the
//! [`Engine`](crate::Engine) on the backend, end to end. It expects an empty store of its own, uses fixed times
//! (2025-01-01 00:00:00 UTC plus offsets, at most microsecond precision, which is what SQL
//! backends keep) and never a clock, and panics with a message naming the broken property.
//! [`CHECKS`] lists them all; [`storage_conformance!`](crate::storage_conformance) turns
//! them into one test each for a backend:
//!
//! ```no_run
//! okerr::storage_conformance!(async { Some(okerr::MemoryStorage::new()) });
//! # fn main() {}
//! ```
//!
//! A single check can also be called directly, e.g. while developing a backend:
//! `okerr::conformance::claim_due_in_order_with_lease(&storage).await`.
//!
//! The checks live in one submodule per contract area (projects, indicators and their
//! log, scheduler, outbox, settings, the engine on the backend) and are re-exported here;
//! this module keeps the runner, [`CHECKS`] and the helpers they share.
//!
//! These checks are not a stable part of the public API and breaking changes may be made
//! in patch releases. They are intended solely for testing purposes.

use std::fmt::Debug;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use url::Url;

use crate::indicator::{Indicator, IndicatorId, LogKind, LogLine};
use crate::method::CheckMethod;
use crate::name::{Email, IndicatorName, PolicyName, Secret, Tag, TextId};
use crate::outbox::{Notification, OutboxEntry, Payload};
use crate::project::{NewProject, Policy, Project, ProjectId};
use crate::settings::Settings;
use crate::storage::{Commit, Storage, StorageError};
use crate::{Interval, Reduction, RetrySchedule};

mod engine;
mod indicators;
mod outbox;
mod projects;
mod retention;
mod scheduler;
mod settings;

pub use engine::*;
pub use indicators::*;
pub use outbox::*;
pub use projects::*;
pub use retention::*;
pub use scheduler::*;
pub use settings::*;

/// The name of every check, in the order [`storage_conformance!`](crate::storage_conformance)
/// runs them. Taken from the macro, so the two cannot disagree.
pub const CHECKS: &[&str] = crate::storage_conformance!(@list @names);

/// Runs the whole conformance suite on a storage backend: one `#[tokio::test]` per check
/// of [`okerr::conformance`](crate::conformance), named after the check.
///
/// `$setup` is an expression evaluating to a future of `Option<S>` where `S: Storage`
/// (for instance an `Arc<dyn Storage>`); it is evaluated once per test, and each test
/// needs a fresh, empty and isolated store (a new database or schema). `None` skips the
/// test, for example when no database is configured: the setup should print why.
///
/// The tests are written as `#[tokio::test]`, so the crate invoking the macro needs
/// `tokio` as its own dev-dependency, with the `macros` and `rt` features, besides
/// `okerr-lib` with the `test-util` feature:
///
/// ```toml
/// [dev-dependencies]
/// okerr-lib = { version = "0.1", features = ["test-util"] }
/// tokio = { version = "1", features = ["macros", "rt"] }
/// ```
///
/// In `tests/conformance.rs` of a backend (invoke the macro once per module: the test
/// names are the check names):
///
/// ```ignore
/// okerr::storage_conformance!(async {
///     let Ok(url) = std::env::var("DATABASE_URL") else {
///         eprintln!("skipped: DATABASE_URL is not set");
///         return None;
///     };
///     Some(my_backend::Storage::connect_fresh_schema(&url).await.expect("connect"))
/// });
/// ```
///
/// These checks are not a stable part of the public API and breaking changes may be made
/// in patch releases.
#[macro_export]
macro_rules! storage_conformance {
    (@checks $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some(storage) = $setup.await else { return };
                let storage: ::std::sync::Arc<dyn $crate::Storage> =
                    ::std::sync::Arc::new(storage);
                $crate::conformance::$name(&storage).await;
            }
        )*
    };
    (@names $($name:ident),* $(,)?) => {
        &[$(stringify!($name)),*]
    };
    // The one list of checks, handed to `@checks` or `@names`.
    (@list $($then:tt)*) => {
        $crate::storage_conformance! { $($then)*
            project_roundtrip,
            textid_conflicts,
            save_project_refuses_a_stale_copy,
            indicator_insert_and_read,
            roundtrip_of_all_fields,
            insert_existing_name_conflicts,
            stale_version_conflicts_and_writes_nothing,
            commit_writes_log_and_notifications_atomically,
            same_name_in_two_projects,
            claim_due_in_order_with_lease,
            commit_ends_lease,
            next_deadline_covers_indicators_and_outbox,
            claim_notifications_and_deliver,
            retry_notification_reschedules,
            retry_notifications_reschedules_each,
            cancel_held_alert,
            held_notification_waits_for_its_first_attempt,
            commit_batch_mixed,
            commit_batch_groups_are_all_or_none,
            commit_batch_checks_the_project_version,
            commit_batch_with_a_bad_row,
            commit_batch_does_not_rename,
            commit_batch_larger_than_a_statement,
            indicators_by_name_reads_a_batch,
            delete_indicator_removes_it_and_its_log,
            concurrent_commits_no_lost_update,
            settings_roundtrip,
            put_setting_if_absent_is_won_once,
            engine_many_writers_lose_nothing,
            engine_expiry_alert_and_delivery,
            engine_reduction_cancels_with_nanosecond_clock,
            release_claims_takes_back_held_leases,
            leases_pass_to_another_node_when_they_end,
            dead_letters_are_final_and_visible,
            prune_log_keeps_the_newest_lines,
            purge_outbox_deletes_only_finished_notifications,
            engine_takes_back_its_claims_at_start,
            engine_claims_pass_to_another_node_within_a_lease,
            engine_dead_letters_a_notification_that_keeps_failing,
            engine_logic_is_evaluated_once_by_two_nodes,
        }
    };
    ($setup:expr $(,)?) => {
        $crate::storage_conformance!(@list @checks $setup;);
    };
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// 2025-01-01 00:00:00 UTC, the origin of every time in the suite.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("2025-01-01 00:00:00 is a valid time")
}

/// `t0 + secs` seconds.
fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

/// `t0 + micros` microseconds: sub-second times, as precise as SQL backends store them.
fn at_us(micros: i64) -> DateTime<Utc> {
    t0() + TimeDelta::microseconds(micros)
}

fn textid(s: &str) -> TextId {
    TextId::parse(s).expect("a valid textid")
}

fn name(s: &str) -> IndicatorName {
    IndicatorName::parse(s).expect("a valid indicator name")
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).expect("a valid tag")
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("a valid e-mail address")
}

/// Asserts the store is empty, as every check needs.
async fn empty_store(storage: &dyn Storage) {
    let projects = storage.projects().await.expect("projects()");
    assert!(
        projects.is_empty(),
        "the conformance checks need an empty, isolated store; it has projects {projects:?}"
    );
    assert_eq!(
        storage.next_deadline().await.expect("next_deadline()"),
        None,
        "the conformance checks need an empty, isolated store; it has a deadline"
    );
}

/// `p` as storage holds it after `save_project(p)`: one version on.
fn saved(p: &Project) -> Project {
    Project {
        version: p.version + 1,
        ..p.clone()
    }
}

/// The member who gets the alerts of the conformance projects.
fn ops() -> Email {
    Email::parse("ops@example.com").expect("a valid address")
}

/// A project with okerr's two policies, one textid and one member who gets alerts.
async fn new_project(storage: &dyn Storage, t: &str) -> Project {
    storage
        .create_project(NewProject::new(format!("project {t}"), textid(t)).with_member(ops()))
        .await
        .expect("create_project of a project with a free textid")
}

/// A new heartbeat indicator of policy `Default`, created at `now`.
fn new_indicator(project: &Project, n: &str, now: DateTime<Utc>) -> Indicator {
    Indicator::new(
        project.id,
        name(n),
        &Policy::default_policy(),
        CheckMethod::heartbeat(),
        &Settings::default(),
        now,
    )
}

/// A new indicator created at `t0`, due (expected and scheduled) at `due`.
fn due_indicator(project: &Project, n: &str, due: DateTime<Utc>) -> Indicator {
    let mut ind = new_indicator(project, n, t0());
    ind.expected = Some(due);
    ind.scheduled = Some(due);
    ind
}

/// A commit of just the indicator.
fn commit(indicator: Indicator) -> Commit {
    Commit {
        indicator,
        log: Vec::new(),
        notifications: Vec::new(),
        cancel: Vec::new(),
        project_version: None,
    }
}

fn line(time: DateTime<Utc>, kind: LogKind, message: &str) -> LogLine {
    LogLine {
        time,
        kind,
        message: message.to_owned(),
    }
}

/// An alert about indicator `n` of `project`.
fn alert(
    project: &Project,
    n: &str,
    created: DateTime<Utc>,
    release_at: DateTime<Utc>,
    key: Option<&str>,
    message: &str,
) -> Notification {
    Notification {
        project: project.id,
        textid: project.textid.clone(),
        indicator: name(n),
        created,
        release_at,
        reduction_key: key.map(str::to_owned),
        hold_until: None,
        payload: Payload::Alert {
            to: Some(ops()),
            message: message.to_owned(),
        },
    }
}

/// The indicator as storage must return it after committing `ind`.
fn as_stored(ind: &Indicator, id: IndicatorId, version: u64) -> Indicator {
    Indicator {
        id,
        version,
        ..ind.clone()
    }
}

/// Commits and returns the stored indicator; panics (naming `what`) on an error.
async fn write(storage: &dyn Storage, c: &Commit, what: &str) -> Indicator {
    match storage.commit(c).await {
        Ok(stored) => stored,
        Err(e) => panic!("{what}: commit failed: {e:?}"),
    }
}

/// An empty store with project `p1` and its disabled indicator `x`, which queued `n`
/// alerts released at t₀ (`n1` … `nN`); the project and its outbox, in id order.
async fn queued_alerts(storage: &dyn Storage, n: usize) -> (Project, Vec<OutboxEntry>) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = (1..=n)
        .map(|i| alert(&p, "x", at(0), at(0), None, &format!("n{i}")))
        .collect();
    write(storage, &cx, &format!("insert x with {n} notifications")).await;
    let entries = outbox_of(storage, &p).await;
    assert_eq!(entries.len(), n, "the outbox holds the {n} notifications");
    (p, entries)
}

#[track_caller]
fn assert_conflict<T: Debug>(result: Result<T, StorageError>, what: &str) {
    match result {
        Err(e) if e.is_conflict() => {}
        other => panic!("{what}: expected Err(StorageError::Conflict), got {other:?}"),
    }
}

async fn get(storage: &dyn Storage, project: &Project, n: &str) -> Option<Indicator> {
    storage
        .indicator(project.id, &name(n))
        .await
        .expect("indicator()")
}

async fn delete(storage: &dyn Storage, project: &Project, n: &str) -> bool {
    storage
        .delete_indicator(project.id, &name(n))
        .await
        .expect("delete_indicator()")
}

async fn list(storage: &dyn Storage, project: &Project) -> Vec<Indicator> {
    storage.indicators(project.id).await.expect("indicators()")
}

async fn count(storage: &dyn Storage, project: &Project) -> u64 {
    storage
        .count_indicators(project.id)
        .await
        .expect("count_indicators()")
}

async fn log_of(storage: &dyn Storage, project: &Project, n: &str) -> Vec<LogLine> {
    storage
        .log(project.id, &name(n), 1000)
        .await
        .expect("log()")
}

async fn outbox_of(storage: &dyn Storage, project: &Project) -> Vec<OutboxEntry> {
    storage.outbox(project.id).await.expect("outbox()")
}

async fn by_textid(storage: &dyn Storage, t: &str) -> Option<Project> {
    storage
        .project_by_textid(t)
        .await
        .expect("project_by_textid()")
}

async fn project_of(storage: &dyn Storage, id: ProjectId) -> Option<Project> {
    storage.project(id).await.expect("project()")
}

async fn all_projects(storage: &dyn Storage) -> Vec<Project> {
    storage.projects().await.expect("projects()")
}

async fn claim(
    storage: &dyn Storage,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Vec<Indicator> {
    storage
        .claim_due(now, lease_until, limit)
        .await
        .expect("claim_due()")
}

async fn claim_notes(
    storage: &dyn Storage,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Vec<OutboxEntry> {
    storage
        .claim_notifications(now, lease_until, limit)
        .await
        .expect("claim_notifications()")
}

async fn deadline(storage: &dyn Storage) -> Option<DateTime<Utc>> {
    storage.next_deadline().await.expect("next_deadline()")
}

fn names(inds: &[Indicator]) -> Vec<&str> {
    inds.iter().map(|i| i.name.as_str()).collect()
}

fn sorted_names(inds: &[Indicator]) -> Vec<&str> {
    let mut n = names(inds);
    n.sort_unstable();
    n
}

fn by_id(mut projects: Vec<Project>) -> Vec<Project> {
    projects.sort_by_key(|p| p.id);
    projects
}

/// A policy with every field away from its default.
fn full_policy() -> Policy {
    Policy {
        name: PolicyName::parse("Custom policy ü").expect("a valid policy name"),
        period: Interval::parse("1h30m").expect("a valid interval"),
        patience: Interval::parse("90").expect("a valid interval"),
        secret: Some(Secret::parse("s3cret").expect("a valid secret")),
        subnets: vec![
            "10.0.0.0/8".parse().expect("a valid network"),
            "2001:db8::/32".parse().expect("a valid network"),
        ],
        http_update: false,
        smtp_update: true,
        autocreate: false,
        open_autocreate: true,
        reduction: Some(
            Reduction::parse("0s 00:30-02:00 5m 14:00-14:30 10s").expect("a valid reduction"),
        ),
        url_statuschange: Some(
            Url::parse("https://hooks.example.com/okerr?x=1&y=%C3%BC").expect("a valid url"),
        ),
        retry_schedule: RetrySchedule::parse("30s 5m").expect("a valid schedule"),
        recovery_retry_schedule: RetrySchedule::parse("10").expect("a valid schedule"),
    }
}
