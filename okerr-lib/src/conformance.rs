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
//! These checks are not a stable part of the public API and breaking changes may be made
//! in patch releases. They are intended solely for testing purposes.

use std::fmt::Debug;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use url::Url;

use crate::indicator::{HeldAlert, Indicator, IndicatorId, LogKind, LogLine, Status};
use crate::method::{
    CheckMethod, DiffLimit, Limit, MethodKind, NumericalArgs, StringArgs, StringOptions,
};
use crate::name::{Email, IndicatorName, PolicyName, Secret, Tag, TextId};
use crate::outbox::{Notification, NotificationId, OutboxEntry, Payload, StatusChange};
use crate::project::{Member, NewProject, Policy, Project, ProjectId};
use crate::settings::Settings;
use crate::storage::{Commit, GroupResult, Storage, StorageError};
use crate::{Interval, Reduction};

mod retention;
pub use retention::*;

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
            postpone_notifications_gives_back_without_an_attempt,
            cancel_held_alert,
            commit_batch_mixed,
            commit_batch_groups_are_all_or_none,
            commit_batch_checks_the_project_version,
            commit_batch_with_a_bad_row,
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
        reduction: Some(
            Reduction::parse("0s 00:30-02:00 5m 14:00-14:30 10s").expect("a valid reduction"),
        ),
        url_statuschange: Some(
            Url::parse("https://hooks.example.com/okerr?x=1&y=%C3%BC").expect("a valid url"),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Projects
// ---------------------------------------------------------------------------------------

/// A project reads back as created, by id and by each of its textids; `save_project`
/// replaces every field (name, textids, members, policies, limits); a removed alias is
/// released; unknown textids and ids give `None`; `projects()` lists by id.
pub async fn project_roundtrip(storage: &dyn Storage) {
    empty_store(storage).await;
    let mut new = NewProject::new("Project P", textid("p1"));
    new.aliases = vec![textid("p1-alias")];
    new.members = vec![Member {
        email: email("alice@example.com"),
        alerts: true,
        summary: true,
    }];
    new.max_indicators = Some(10);
    let p = storage
        .create_project(new.clone())
        .await
        .expect("create_project");
    assert_eq!(
        p,
        new.clone().with_id(p.id),
        "create_project returns the project as given, with its id"
    );
    assert_eq!(
        project_of(storage, p.id).await,
        Some(p.clone()),
        "project(id) after create_project"
    );
    for t in ["p1", "p1-alias"] {
        assert_eq!(
            by_textid(storage, t).await,
            Some(p.clone()),
            "project_by_textid({t:?}) after create_project"
        );
    }
    let q = new_project(storage, "q1").await;
    assert_ne!(p.id, q.id, "each project gets its own id");
    assert_eq!(
        all_projects(storage).await,
        by_id(vec![p.clone(), q.clone()]),
        "projects() lists every project, by id"
    );

    let mut changed = p.clone();
    changed.name = "Renamed ü".into();
    changed.aliases.push(textid("p1-second"));
    changed.members[0].alerts = false;
    changed.members.push(Member {
        email: email("bob@example.org"),
        alerts: true,
        summary: false,
    });
    let mut daily = Policy::daily();
    daily.period = Interval::parse("2h").expect("a valid interval");
    daily.url_statuschange = Some(Url::parse("http://127.0.0.1:8080/hook").expect("url"));
    changed.put_policy(daily);
    changed.put_policy(full_policy());
    changed.max_indicators = None;
    changed.limited = true;
    storage
        .save_project(&changed)
        .await
        .expect("save_project of a stored project");
    let changed = saved(&changed);
    assert_eq!(
        project_of(storage, p.id).await,
        Some(changed.clone()),
        "project(id) after save_project: every field replaced, policies and members in order"
    );
    for t in ["p1", "p1-alias", "p1-second"] {
        assert_eq!(
            by_textid(storage, t).await,
            Some(changed.clone()),
            "project_by_textid({t:?}) after save_project added an alias"
        );
    }
    assert_eq!(
        all_projects(storage).await,
        by_id(vec![changed.clone(), q.clone()]),
        "projects() after save_project"
    );

    let mut fewer = changed.clone();
    fewer.aliases.retain(|t| t.as_str() != "p1-alias");
    storage
        .save_project(&fewer)
        .await
        .expect("save_project removing an alias");
    let fewer = saved(&fewer);
    assert_eq!(
        by_textid(storage, "p1-alias").await,
        None,
        "an alias removed by save_project no longer finds the project"
    );
    assert_eq!(by_textid(storage, "p1-second").await, Some(fewer.clone()));
    let mut q2 = q.clone();
    q2.aliases.push(textid("p1-alias"));
    storage
        .save_project(&q2)
        .await
        .expect("a removed alias is free for another project");
    assert_eq!(by_textid(storage, "p1-alias").await, Some(saved(&q2)));

    assert_eq!(
        by_textid(storage, "nope").await,
        None,
        "unknown textid gives None"
    );
    let unknown = ProjectId(p.id.0.max(q.id.0) + 1000);
    assert_eq!(
        project_of(storage, unknown).await,
        None,
        "unknown id gives None"
    );
}

/// A textid (main or alias) belongs to one project: `create_project` and `save_project`
/// taking another project's textid fail with `Conflict` and change nothing; a project's
/// own textids are no conflict; `save_project` of an unknown id fails with `NotFound`.
pub async fn textid_conflicts(storage: &dyn Storage) {
    empty_store(storage).await;
    let mut new = NewProject::new("p", textid("p1"));
    new.aliases = vec![textid("p1-alias")];
    let p = storage.create_project(new).await.expect("create_project");

    let cases: [(&str, &str, &[&str]); 4] = [
        ("a main textid that is another's main textid", "p1", &[]),
        ("a main textid that is another's alias", "p1-alias", &[]),
        ("an alias that is another's main textid", "q1", &["p1"]),
        ("an alias that is another's alias", "q1", &["p1-alias"]),
    ];
    for (what, main, aliases) in cases {
        let mut n = NewProject::new("q", textid(main));
        n.aliases = aliases.iter().map(|a| textid(a)).collect();
        assert_conflict(
            storage.create_project(n).await,
            &format!("create_project with {what}"),
        );
        assert_eq!(
            all_projects(storage).await,
            vec![p.clone()],
            "a refused create_project ({what}) stores nothing"
        );
        assert_eq!(
            by_textid(storage, "q1").await,
            None,
            "a refused create_project ({what}) claims no textid"
        );
    }

    let q = new_project(storage, "q1").await;
    let mut steal_main = q.clone();
    steal_main.aliases.push(textid("p1"));
    let mut steal_alias = q.clone();
    steal_alias.aliases.push(textid("p1-alias"));
    steal_alias.name = "changed".into();
    let mut take_as_main = q.clone();
    take_as_main.textid = textid("p1-alias");
    for (what, bad) in [
        ("an alias that is another's main textid", steal_main),
        ("an alias that is another's alias", steal_alias),
        ("a main textid that is another's alias", take_as_main),
    ] {
        assert_conflict(
            storage.save_project(&bad).await,
            &format!("save_project with {what}"),
        );
        assert_eq!(
            project_of(storage, q.id).await,
            Some(q.clone()),
            "a refused save_project ({what}) changes nothing"
        );
        for (t, owner) in [("p1", &p), ("p1-alias", &p), ("q1", &q)] {
            assert_eq!(
                by_textid(storage, t).await.as_ref(),
                Some(owner),
                "a refused save_project ({what}) moves no textid ({t})"
            );
        }
    }

    storage
        .save_project(&q)
        .await
        .expect("save_project of a project unchanged: its own textids are no conflict");
    let q = saved(&q);
    let mut swapped = q.clone();
    swapped.textid = textid("q1-new");
    swapped.aliases = vec![textid("q1")];
    storage
        .save_project(&swapped)
        .await
        .expect("save_project moving its main textid to an alias is no conflict");
    let swapped = saved(&swapped);
    for t in ["q1", "q1-new"] {
        assert_eq!(
            by_textid(storage, t).await,
            Some(swapped.clone()),
            "project_by_textid({t:?}) after the main textid became an alias"
        );
    }

    let ghost =
        NewProject::new("ghost", textid("ghost")).with_id(ProjectId(p.id.0.max(q.id.0) + 1000));
    match storage.save_project(&ghost).await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("save_project of an unknown id: expected Err(NotFound), got {other:?}"),
    }
    assert_eq!(
        all_projects(storage).await,
        by_id(vec![p.clone(), swapped.clone()]),
        "a save_project of an unknown id creates nothing"
    );
    assert_eq!(by_textid(storage, "ghost").await, None);
}

/// Two edits of one project never undo each other: `save_project` of a copy read before
/// the last save fails with `Conflict` and writes nothing; the version moves on by one per
/// save, and a fresh read saves.
pub async fn save_project_refuses_a_stale_copy(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    assert_eq!(p.version, 0, "a new project is at version 0");
    let (mut first, mut second) = (p.clone(), p.clone());
    first.name = "first edit".into();
    second.limited = true;
    storage.save_project(&first).await.expect("the first edit");
    assert_conflict(
        storage.save_project(&second).await,
        "save_project of a copy read before the first edit",
    );
    assert_eq!(
        project_of(storage, p.id).await,
        Some(saved(&first)),
        "the refused edit wrote nothing"
    );
    let mut again = project_of(storage, p.id).await.expect("stored");
    again.limited = true;
    storage
        .save_project(&again)
        .await
        .expect("the edit redone on a fresh read");
    let stored = project_of(storage, p.id).await.expect("stored");
    assert_eq!(
        (stored.version, stored.name.as_str(), stored.limited),
        (2, "first edit", true)
    );
    assert_eq!(by_textid(storage, "p1").await, Some(stored));
}

// ---------------------------------------------------------------------------------------
// Indicators
// ---------------------------------------------------------------------------------------

/// The first commit of an indicator (version 0) stores it with a new id and version 1;
/// `indicator()` returns exactly what `commit` returned; `indicators()` lists the
/// project's indicators by name and `count_indicators()` counts them.
pub async fn indicator_insert_and_read(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let now = at_us(1_234_567);
    let mut b = new_indicator(&p, "b", now);
    b.details = "first details".into();
    b.desc = "a description".into();
    b.tags = vec![tag("web"), tag("prod")];
    b.held = vec![HeldAlert {
        key: "ERR".into(),
        release_at: now + TimeDelta::microseconds(300_000_001),
    }];
    b.method.kind = MethodKind::Numerical(NumericalArgs {
        current: Some(2.5),
        minlim: Limit::parse("1"),
        maxlim: Limit::parse("10K"),
        ..NumericalArgs::default()
    });
    let stored = write(storage, &commit(b.clone()), "insert b").await;
    assert_ne!(
        stored.id,
        IndicatorId::NEW,
        "commit assigns an id to a new indicator"
    );
    assert_eq!(stored.version, 1, "the first commit stores version 1");
    assert_eq!(
        stored,
        as_stored(&b, stored.id, 1),
        "commit returns the indicator as given, with its id and version 1"
    );
    assert_eq!(
        get(storage, &p, "b").await,
        Some(stored.clone()),
        "indicator() returns exactly what commit returned"
    );
    assert_eq!(list(storage, &p).await, vec![stored.clone()]);
    assert_eq!(count(storage, &p).await, 1);

    let c = write(storage, &commit(new_indicator(&p, "c", at(1))), "insert c").await;
    let a = write(storage, &commit(new_indicator(&p, "a", at(2))), "insert a").await;
    assert!(
        a.id != stored.id && a.id != c.id && stored.id != c.id && a.id != IndicatorId::NEW,
        "each indicator gets its own id: {:?}, {:?}, {:?}",
        a.id,
        stored.id,
        c.id
    );
    assert_eq!(
        list(storage, &p).await,
        vec![a, stored, c],
        "indicators() lists every indicator of the project, by name"
    );
    assert_eq!(count(storage, &p).await, 3, "count_indicators()");
    assert_eq!(
        get(storage, &p, "d").await,
        None,
        "an unknown name gives None"
    );

    let q = new_project(storage, "q1").await;
    assert_eq!(get(storage, &q, "a").await, None, "names are per project");
    assert!(
        list(storage, &q).await.is_empty(),
        "indicators() of another project"
    );
    assert_eq!(
        count(storage, &q).await,
        0,
        "count_indicators() of another project"
    );
}

/// Every field of an indicator survives a commit and a read unchanged (all options set,
/// then all cleared again), and so do log lines and both kinds of notification payload.
pub async fn roundtrip_of_all_fields(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let now = at_us(86_400_000_000 + 123_456);
    let us = TimeDelta::microseconds;

    let mut full = Indicator::new(
        p.id,
        name("srv/web: all fields ü"),
        &Policy::daily(),
        CheckMethod {
            patience: Some(Interval::parse("5min").expect("a valid interval")),
            secret: Some(Secret::parse("method secret").expect("a valid secret")),
            kind: MethodKind::Numerical(NumericalArgs {
                current: Some(-1234.5678),
                minlim: Limit::parse("1.5K"),
                maxlim: Limit::parse("90"),
                diffmin: DiffLimit::parse("-5%"),
                diffmax: DiffLimit::parse("2M"),
            }),
        },
        &Settings::default(),
        now,
    );
    assert_eq!(full.policy.as_str(), "Daily");
    full.status = Status::Err;
    full.prev_status = Some(Status::Ok);
    full.details = "details with ü and \"quotes\"".into();
    full.desc = "a description\nover two lines".into();
    full.tags = vec![tag("web"), tag("_prod"), tag("Zeta")];
    full.maintenance = Some(now + us(1));
    full.silent = true;
    full.problem = true;
    full.dead = true;
    full.changed = now + us(2);
    full.updated = now + us(3);
    full.expected = Some(now + us(4_000_004));
    full.scheduled = Some(now + us(5_000_005));
    full.keypath = Some("servers:web".into());
    full.origkeypath = Some("servers:$host".into());
    full.held = vec![
        HeldAlert {
            key: "ERR".into(),
            release_at: now + us(600_000_007),
        },
        HeldAlert {
            key: "a string value".into(),
            release_at: now + us(700_000_008),
        },
    ];
    let log = vec![
        line(now, LogKind::Indicator, "Created, method numerical"),
        line(now + us(9), LogKind::Update, "http: switch OK > ERR: ü"),
        line(
            now + us(9),
            LogKind::Alert,
            "ALERT:Changed status OK -> ERR",
        ),
    ];
    let webhook = Notification {
        project: p.id,
        textid: p.textid.clone(),
        indicator: full.name.clone(),
        created: now + us(10),
        release_at: now + us(10),
        reduction_key: None,
        payload: Payload::Webhook {
            url: Url::parse("https://hooks.example.com/okerr?x=1&y=%C3%BC").expect("url"),
            change: StatusChange {
                old: Status::Ok,
                new: Status::Err,
                details: "details with ü".into(),
                time: now + us(11),
            },
        },
    };
    let held_alert = alert(
        &p,
        full.name.as_str(),
        now + us(12),
        now + us(600_000_007),
        Some("ERR"),
        "Changed status OK (1h) -> ERR (ü)",
    );
    let c = Commit {
        indicator: full.clone(),
        log: log.clone(),
        notifications: vec![webhook.clone(), held_alert.clone()],
        cancel: Vec::new(),
        project_version: None,
    };
    let stored = write(storage, &c, "insert of an indicator with every field set").await;
    assert_eq!(
        stored,
        as_stored(&full, stored.id, 1),
        "commit returns every field as given"
    );
    assert_eq!(
        get(storage, &p, full.name.as_str()).await,
        Some(stored.clone()),
        "indicator() returns every field as committed"
    );
    assert_eq!(
        storage.log(p.id, &full.name, 100).await.expect("log()"),
        log,
        "log lines survive unchanged"
    );
    let outbox = outbox_of(storage, &p).await;
    let notes: Vec<&Notification> = outbox.iter().map(|e| &e.notification).collect();
    assert_eq!(
        notes,
        vec![&webhook, &held_alert],
        "notifications (webhook and alert payloads) survive unchanged"
    );

    let mut string = Indicator::new(
        p.id,
        name("string"),
        &full_policy(),
        CheckMethod {
            patience: None,
            secret: None,
            kind: MethodKind::String(StringArgs {
                str: "expected text\nline 2 ü".into(),
                options: StringOptions {
                    reinit: true,
                    dynamic: false,
                    empty_ok: true,
                    empty_err: false,
                    text: true,
                },
            }),
        },
        &Settings::default(),
        now,
    );
    string.disabled = true;
    let s = write(
        storage,
        &commit(string.clone()),
        "insert of a string indicator",
    )
    .await;
    assert_eq!(
        get(storage, &p, "string").await,
        Some(as_stored(&string, s.id, 1))
    );

    // Every optional field cleared again: `None` and empty values overwrite stored ones.
    let mut cleared = stored.clone();
    cleared.method = CheckMethod::with_defaults("numerical").expect("numerical");
    cleared.prev_status = None;
    cleared.details = String::new();
    cleared.desc = String::new();
    cleared.tags = Vec::new();
    cleared.maintenance = None;
    cleared.silent = false;
    cleared.problem = false;
    cleared.dead = false;
    cleared.status = Status::Ok;
    cleared.expected = None;
    cleared.scheduled = None;
    cleared.keypath = None;
    cleared.origkeypath = None;
    cleared.held = Vec::new();
    let c2 = write(
        storage,
        &commit(cleared.clone()),
        "update clearing every field",
    )
    .await;
    assert_eq!(
        c2,
        as_stored(&cleared, stored.id, 2),
        "commit returns the cleared indicator"
    );
    assert_eq!(
        get(storage, &p, full.name.as_str()).await,
        Some(c2),
        "fields set to None or empty are stored so, not kept from before"
    );
}

/// A second first commit (version 0) of an existing name fails with `Conflict` and
/// writes nothing: the stored indicator, its log and the outbox stay as they were.
pub async fn insert_existing_name_conflicts(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut first = commit(new_indicator(&p, "a", at(0)));
    first.log = vec![line(at(0), LogKind::Indicator, "created")];
    first.notifications = vec![alert(&p, "a", at(0), at(0), None, "first alert")];
    let a = write(storage, &first, "insert a").await;
    let log_before = log_of(storage, &p, "a").await;
    let outbox_before = outbox_of(storage, &p).await;
    let deadline_before = deadline(storage).await;
    assert_eq!(log_before.len(), 1);
    assert_eq!(outbox_before.len(), 1);

    let mut again = commit(new_indicator(&p, "a", at(10)));
    again.indicator.details = "second".into();
    again.indicator.scheduled = Some(at(-100));
    again.log = vec![line(at(10), LogKind::Indicator, "created again")];
    again.notifications = vec![alert(&p, "a", at(10), at(10), None, "second alert")];
    assert_conflict(
        storage.commit(&again).await,
        "a version-0 commit of an existing name",
    );
    again.indicator.id = a.id;
    assert_conflict(
        storage.commit(&again).await,
        "a version-0 commit of an existing name, with its id",
    );
    assert_eq!(
        get(storage, &p, "a").await,
        Some(a),
        "a refused insert leaves the stored indicator unchanged"
    );
    assert_eq!(count(storage, &p).await, 1);
    assert_eq!(
        log_of(storage, &p, "a").await,
        log_before,
        "a refused insert writes no log line"
    );
    assert_eq!(
        outbox_of(storage, &p).await,
        outbox_before,
        "a refused insert writes no notification"
    );
    assert_eq!(
        deadline(storage).await,
        deadline_before,
        "a refused insert changes no deadline"
    );
}

/// An update at the stored version succeeds (version + 1, same id); a commit at another
/// version (stale or ahead), or at a version above 0 for a name that does not exist,
/// fails with `Conflict` and writes neither the indicator, nor its log lines, nor its
/// notifications, nor a deadline.
pub async fn stale_version_conflicts_and_writes_nothing(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let v1 = write(storage, &commit(new_indicator(&p, "a", at(0))), "insert a").await;
    let mut up = v1.clone();
    up.details = "second".into();
    up.updated = at(60);
    let mut c = commit(up);
    c.log = vec![line(at(60), LogKind::Update, "second")];
    c.notifications = vec![alert(&p, "a", at(60), at(60), None, "second")];
    let v2 = write(storage, &c, "update at the stored version").await;
    assert_eq!(v2.id, v1.id, "an update keeps the id");
    assert_eq!(v2.version, 2, "an update stores version + 1");
    assert_eq!(v2, as_stored(&c.indicator, v1.id, 2));
    assert_eq!(get(storage, &p, "a").await, Some(v2.clone()));

    let log_before = log_of(storage, &p, "a").await;
    let outbox_before = outbox_of(storage, &p).await;
    let deadline_before = deadline(storage).await;
    for (what, version) in [("a stale version", 1), ("a version ahead", 3)] {
        let mut stale = v1.clone();
        stale.version = version;
        stale.details = "stale".into();
        stale.scheduled = Some(at(1));
        let c = Commit {
            indicator: stale,
            log: vec![line(at(70), LogKind::Update, "stale")],
            notifications: vec![alert(&p, "a", at(70), at(70), None, "stale")],
            cancel: Vec::new(),
            project_version: None,
        };
        assert_conflict(storage.commit(&c).await, &format!("a commit at {what}"));
        assert_eq!(
            get(storage, &p, "a").await,
            Some(v2.clone()),
            "a commit at {what} leaves the indicator unchanged"
        );
        assert_eq!(
            log_of(storage, &p, "a").await,
            log_before,
            "a commit at {what} writes no log line"
        );
        assert_eq!(
            outbox_of(storage, &p).await,
            outbox_before,
            "a commit at {what} writes no notification"
        );
        assert_eq!(
            deadline(storage).await,
            deadline_before,
            "a commit at {what} changes no deadline"
        );
    }

    let mut ghost = new_indicator(&p, "ghost", at(0));
    ghost.version = 1;
    let mut c = commit(ghost);
    c.log = vec![line(at(80), LogKind::Update, "ghost")];
    assert_conflict(
        storage.commit(&c).await,
        "a commit at version 1 of a name that does not exist",
    );
    assert_eq!(get(storage, &p, "ghost").await, None, "nothing is created");
    assert!(log_of(storage, &p, "ghost").await.is_empty());
    assert_eq!(count(storage, &p).await, 1);

    let mut up = v2.clone();
    up.details = "third".into();
    let v3 = write(storage, &commit(up), "update after refused commits").await;
    assert_eq!(v3.version, 3);
}

/// A commit's log lines and notifications are stored with it: `log()` returns lines
/// oldest first (in commit order when their times are equal), `log(limit)` only the
/// newest `limit`; `outbox()` has the notifications in order, for the indicator's id,
/// with no attempt and not delivered.
pub async fn commit_writes_log_and_notifications_atomically(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let now = at_us(5_000_123);
    let l1 = line(now, LogKind::Update, "http: switch OK > ERR: down");
    let l2 = line(now, LogKind::Alert, "ALERT:Changed status OK -> ERR (down)");
    let n1 = alert(&p, "a", now, now, None, "first");
    let n2 = alert(
        &p,
        "a",
        now,
        now + TimeDelta::seconds(1),
        Some("ERR"),
        "second",
    );
    let c = Commit {
        indicator: new_indicator(&p, "a", now),
        log: vec![l1.clone(), l2.clone()],
        notifications: vec![n1.clone(), n2.clone()],
        cancel: Vec::new(),
        project_version: None,
    };
    let a = write(storage, &c, "insert with 2 log lines and 2 notifications").await;
    assert_eq!(
        log_of(storage, &p, "a").await,
        vec![l1.clone(), l2.clone()],
        "log() is oldest first; lines of equal time keep their commit order"
    );
    let log = |limit| storage.log(p.id, &a.name, limit);
    assert_eq!(
        log(1).await.expect("log()"),
        vec![l2.clone()],
        "log(limit 1) is the newest line only"
    );
    assert_eq!(log(2).await.expect("log()"), vec![l1.clone(), l2.clone()]);
    assert!(log(0).await.expect("log()").is_empty(), "log(limit 0)");

    let outbox = outbox_of(storage, &p).await;
    let notes: Vec<&Notification> = outbox.iter().map(|e| &e.notification).collect();
    assert_eq!(
        notes,
        vec![&n1, &n2],
        "outbox() has the commit's notifications, oldest first"
    );
    assert!(
        outbox[0].id < outbox[1].id,
        "outbox() is by id, ids increasing in commit order: {:?}",
        outbox
    );
    for e in &outbox {
        assert_eq!(
            e.indicator_id, a.id,
            "an outbox entry is for the committed indicator's id"
        );
        assert_eq!(e.attempts, 0, "a new outbox entry has no attempt");
        assert_eq!(e.delivered_at, None, "a new outbox entry is not delivered");
        assert_eq!(e.last_error, None, "a new outbox entry has no error");
    }

    let l3 = line(now + TimeDelta::seconds(1), LogKind::Update, "confirmed");
    let mut up = commit(a.clone());
    up.log = vec![l3.clone()];
    write(storage, &up, "update with one log line").await;
    assert_eq!(
        log_of(storage, &p, "a").await,
        vec![l1, l2.clone(), l3.clone()],
        "a later commit appends to the log"
    );
    assert_eq!(log(2).await.expect("log()"), vec![l2, l3]);
    assert_eq!(
        outbox_of(storage, &p).await,
        outbox,
        "a commit without notifications leaves the outbox alone"
    );
    assert!(
        log_of(storage, &p, "b").await.is_empty(),
        "log() of an unknown indicator is empty"
    );
}

/// Indicator names are unique per project only: the same name in two projects gives two
/// indicators with their own ids, states, logs and outboxes.
pub async fn same_name_in_two_projects(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let q = new_project(storage, "q1").await;
    let mut cp = commit(new_indicator(&p, "a", at(0)));
    cp.indicator.details = "in p".into();
    cp.log = vec![line(at(0), LogKind::Update, "in p")];
    cp.notifications = vec![alert(&p, "a", at(0), at(0), None, "in p")];
    let mut cq = commit(new_indicator(&q, "a", at(1)));
    cq.indicator.details = "in q".into();
    cq.log = vec![line(at(1), LogKind::Update, "in q")];
    cq.notifications = vec![alert(&q, "a", at(1), at(1), None, "in q")];
    let pa = write(storage, &cp, "insert a in p").await;
    let qa = write(storage, &cq, "insert a in q: names are per project").await;
    assert_ne!(pa.id, qa.id, "two indicators, two ids");
    assert_eq!(get(storage, &p, "a").await, Some(pa.clone()));
    assert_eq!(get(storage, &q, "a").await, Some(qa.clone()));
    assert_eq!(list(storage, &p).await, vec![pa.clone()]);
    assert_eq!(list(storage, &q).await, vec![qa.clone()]);
    assert_eq!((count(storage, &p).await, count(storage, &q).await), (1, 1));
    assert_eq!(
        log_of(storage, &p, "a").await,
        cp.log,
        "each has its own log"
    );
    assert_eq!(
        log_of(storage, &q, "a").await,
        cq.log,
        "each has its own log"
    );
    let op = outbox_of(storage, &p).await;
    let oq = outbox_of(storage, &q).await;
    assert_eq!(op.len(), 1, "outbox() is per project");
    assert_eq!(oq.len(), 1, "outbox() is per project");
    assert_eq!((op[0].indicator_id, oq[0].indicator_id), (pa.id, qa.id));

    let mut up = pa.clone();
    up.details = "p moved".into();
    let pa2 = write(storage, &commit(up), "update a in p").await;
    assert_eq!(
        get(storage, &q, "a").await,
        Some(qa.clone()),
        "an update in one project leaves the other's indicator alone"
    );
    assert!(
        storage
            .delete_indicator(p.id, &pa2.name)
            .await
            .expect("delete_indicator()")
    );
    assert_eq!(
        get(storage, &q, "a").await,
        Some(qa),
        "deleting in one project leaves the other's indicator alone"
    );
    assert_eq!(log_of(storage, &q, "a").await, cq.log);
}

// ---------------------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------------------

/// `claim_due` returns only indicators with `due_at <= now` (inclusive), earliest first,
/// at most `limit`, unchanged; leased ones are skipped until `lease_until` has passed;
/// disabled, problem and dead indicators (no `due_at`) are never claimed.
pub async fn claim_due_in_order_with_lease(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut stored = std::collections::BTreeMap::new();
    for (n, secs) in [("a", 30), ("b", 10), ("c", 20), ("d", 100), ("h", 15)] {
        let ind = write(
            storage,
            &commit(due_indicator(&p, n, at(secs))),
            &format!("insert {n}"),
        )
        .await;
        stored.insert(n, ind);
    }
    let mut e = due_indicator(&p, "e", at(5));
    e.disabled = true;
    let mut f = due_indicator(&p, "f", at(5));
    f.problem = true;
    let mut g = due_indicator(&p, "g", at(5));
    g.status = Status::Err;
    g.dead = true;
    for ind in [e, f, g] {
        write(storage, &commit(ind), "insert an indicator without due_at").await;
    }

    assert!(
        claim(storage, at(9), at(100), 10).await.is_empty(),
        "nothing is due before the earliest due_at; disabled, problem and dead never are"
    );
    assert_eq!(
        claim(storage, at(25), at(85), 1).await,
        vec![stored["b"].clone()],
        "claim_due(limit 1) gives the earliest due indicator, as stored"
    );
    assert_eq!(
        names(&claim(storage, at(25), at(85), 10).await),
        vec!["h", "c"],
        "claim_due gives the due indicators earliest first, skipping the leased one"
    );
    assert!(
        claim(storage, at(25), at(85), 10).await.is_empty(),
        "a second claim at the same time finds every due indicator leased"
    );
    assert_eq!(
        claim(storage, at(30), at(95), 10).await,
        vec![stored["a"].clone()],
        "an indicator due at exactly now is claimed; leased ones are not"
    );
    for (n, ind) in &stored {
        assert_eq!(
            get(storage, &p, n).await.as_ref(),
            Some(ind),
            "a claim changes nothing of the indicator, not even its version"
        );
    }
    assert!(
        claim(storage, at(84), at(200), 10).await.is_empty(),
        "leased indicators are not claimed before the lease ends"
    );
    assert_eq!(
        sorted_names(&claim(storage, at(86), at(200), 10).await),
        vec!["b", "c", "h"],
        "after the lease end the indicators are claimed again"
    );
    // Their order here is not checked: "earliest" could mean by due_at or by the
    // deadline after a lease, and the contract does not say which.
    let all = claim(storage, at(10_000), at(10_060), 100).await;
    assert_eq!(
        sorted_names(&all),
        vec!["a", "b", "c", "d", "h"],
        "disabled, problem and dead indicators are never claimed"
    );
}

/// Committing a claimed indicator ends its lease: its new `due_at` is its deadline (it is
/// claimed again from then, even before the lease would have ended), and no `due_at`
/// (dead) means it is never claimed again.
pub async fn commit_ends_lease(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    for n in ["a", "b"] {
        write(storage, &commit(due_indicator(&p, n, at(10))), "insert").await;
    }
    let claimed = claim(storage, at(10), at(70), 10).await;
    assert_eq!(sorted_names(&claimed), vec!["a", "b"]);
    let find = |n: &str| {
        claimed
            .iter()
            .find(|i| i.name.as_str() == n)
            .cloned()
            .expect("claimed")
    };

    let mut a = find("a");
    a.updated = at(12);
    a.expected = Some(at(30));
    a.scheduled = Some(at(30));
    let a2 = write(storage, &commit(a), "commit of a claimed indicator").await;
    assert_eq!(a2.version, 2);
    assert_eq!(
        deadline(storage).await,
        Some(at(30)),
        "after the commit, a's deadline is its new due_at, not the lease end"
    );
    assert!(
        claim(storage, at(29), at(100), 10).await.is_empty(),
        "not claimed before its new due_at"
    );
    assert_eq!(
        claim(storage, at(30), at(90), 10).await,
        vec![a2],
        "claimed at its new due_at, before the old lease (until 70) would have ended"
    );

    let mut b = find("b");
    b.status = Status::Err;
    b.dead = true;
    write(
        storage,
        &commit(b),
        "commit making a claimed indicator dead",
    )
    .await;
    assert_eq!(
        names(&claim(storage, at(10_000), at(10_060), 10).await),
        vec!["a"],
        "an indicator committed without due_at is never claimed again, lease or not"
    );
    assert_eq!(deadline(storage).await, Some(at(10_060)));
}

/// `next_deadline` is `None` with nothing waiting, else the earliest of: due indicators'
/// `due_at`, leased indicators' lease end, undelivered notifications' release (or lease)
/// time. Delivered notifications and indicators without `due_at` do not count.
pub async fn next_deadline_covers_indicators_and_outbox(storage: &dyn Storage) {
    empty_store(storage).await;
    assert_eq!(
        deadline(storage).await,
        None,
        "an empty store has no deadline"
    );
    let p = new_project(storage, "p1").await;
    assert_eq!(
        deadline(storage).await,
        None,
        "a project alone has no deadline"
    );

    let a = write(
        storage,
        &commit(due_indicator(&p, "a", at(100))),
        "insert a",
    )
    .await;
    let b = write(storage, &commit(due_indicator(&p, "b", at(50))), "insert b").await;
    let mut c = due_indicator(&p, "c", at(10));
    c.disabled = true;
    write(storage, &commit(c), "insert disabled c").await;
    assert_eq!(
        deadline(storage).await,
        Some(at(50)),
        "the earliest due_at (a disabled indicator has none)"
    );

    let mut x = due_indicator(&p, "x", at(5));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = vec![alert(&p, "x", at(0), at(40), None, "held until 40")];
    write(storage, &cx, "insert x with a notification").await;
    assert_eq!(
        deadline(storage).await,
        Some(at(40)),
        "a notification released earlier than every due_at"
    );
    let notes = claim_notes(storage, at(40), at(45), 10).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        deadline(storage).await,
        Some(at(45)),
        "a leased notification counts by its lease end"
    );
    storage
        .mark_delivered(&[notes[0].id], at(41))
        .await
        .expect("mark_delivered()");
    assert_eq!(
        deadline(storage).await,
        Some(at(50)),
        "a delivered notification does not count"
    );

    assert_eq!(claim(storage, at(50), at(70), 10).await, vec![b.clone()]);
    assert_eq!(
        deadline(storage).await,
        Some(at(70)),
        "a leased indicator counts by its lease end"
    );
    let mut b2 = b.clone();
    b2.expected = Some(at(200));
    b2.scheduled = Some(at(200));
    write(storage, &commit(b2), "update b").await;
    assert_eq!(
        deadline(storage).await,
        Some(at(100)),
        "after b's commit: a's due_at"
    );
    storage
        .delete_indicator(p.id, &a.name)
        .await
        .expect("delete_indicator()");
    assert_eq!(
        deadline(storage).await,
        Some(at(200)),
        "a deleted indicator does not count"
    );
    storage
        .delete_indicator(p.id, &b.name)
        .await
        .expect("delete_indicator()");
    assert_eq!(
        deadline(storage).await,
        None,
        "nothing waits: c is disabled, x is disabled, the notification is delivered"
    );
}

// ---------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------

/// `claim_notifications` skips notifications not released yet (`release_at > now`),
/// gives released ones oldest first (across projects), at most `limit`, and leases them;
/// `mark_delivered` records `delivered_at` and the entry is never claimed again.
pub async fn claim_notifications_and_deliver(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let q = new_project(storage, "q1").await;
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = vec![
        alert(&p, "x", at(0), at(0), None, "n1"),
        alert(&p, "x", at(0), at(0), None, "n2"),
        alert(&p, "x", at(0), at(100), Some("ERR"), "n3, held until 100"),
    ];
    write(storage, &cx, "insert x with 3 notifications").await;
    let mut y = new_indicator(&q, "y", at(5));
    y.disabled = true;
    let mut cy = commit(y);
    cy.notifications = vec![alert(&q, "y", at(5), at(5), None, "n4")];
    write(storage, &cy, "insert y with a notification").await;
    let ep = outbox_of(storage, &p).await;
    let eq = outbox_of(storage, &q).await;
    assert_eq!((ep.len(), eq.len()), (3, 1));
    let (e1, e2, e3, e4) = (&ep[0], &ep[1], &ep[2], &eq[0]);

    assert_eq!(
        claim_notes(storage, at(10), at(70), 1).await,
        vec![e1.clone()],
        "claim_notifications(limit 1) gives the oldest released notification"
    );
    assert_eq!(
        claim_notes(storage, at(10), at(70), 10).await,
        vec![e2.clone(), e4.clone()],
        "released notifications oldest first (of every project); leased and held ones skipped"
    );
    assert!(
        claim_notes(storage, at(10), at(70), 10).await.is_empty(),
        "a second claim finds every released notification leased"
    );
    storage
        .mark_delivered(&[e1.id], at(20))
        .await
        .expect("mark_delivered()");
    assert_eq!(
        outbox_of(storage, &p).await[0].delivered_at,
        Some(at(20)),
        "outbox() shows delivered_at"
    );
    assert_eq!(
        claim_notes(storage, at(99), at(150), 10).await,
        vec![e2.clone(), e4.clone()],
        "after the lease end undelivered ones are claimed again, a delivered one is not"
    );
    assert_eq!(
        claim_notes(storage, at(100), at(160), 10).await,
        vec![e3.clone()],
        "a notification released at exactly now is claimed"
    );
    storage
        .mark_delivered(&[e2.id, e3.id, e4.id], at(110))
        .await
        .expect("mark_delivered()");
    assert!(
        claim_notes(storage, at(10_000), at(10_060), 100)
            .await
            .is_empty(),
        "delivered notifications are never claimed again, leases or not"
    );
    let delivered: Vec<_> = outbox_of(storage, &p)
        .await
        .iter()
        .map(|e| (e.id, e.delivered_at, e.attempts))
        .collect();
    assert_eq!(
        delivered,
        vec![
            (e1.id, Some(at(20)), 0),
            (e2.id, Some(at(110)), 0),
            (e3.id, Some(at(110)), 0)
        ],
        "outbox() keeps delivered notifications, with their delivered_at"
    );
    assert_eq!(outbox_of(storage, &q).await[0].delivered_at, Some(at(110)));
    assert_eq!(
        deadline(storage).await,
        None,
        "delivered notifications leave no deadline"
    );
}

/// `postpone_notifications(ids, at)` gives claimed entries back: claimable again from `at`
/// only, attempts and error unchanged; a delivered entry and an unknown id are left alone.
pub async fn postpone_notifications_gives_back_without_an_attempt(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = vec![
        alert(&p, "x", at(0), at(0), None, "n1"),
        alert(&p, "x", at(0), at(0), None, "n2"),
    ];
    write(storage, &cx, "insert x with two notifications").await;
    let entries = outbox_of(storage, &p).await;
    let (e1, e2) = (entries[0].clone(), entries[1].clone());
    assert_eq!(
        claim_notes(storage, at(10), at(70), 10).await,
        vec![e1.clone(), e2.clone()]
    );
    storage
        .mark_delivered(&[e2.id], at(11))
        .await
        .expect("mark_delivered()");
    storage
        .postpone_notifications(&[e1.id, e2.id, NotificationId(e2.id.0 + 1000)], at(40))
        .await
        .expect("postpone_notifications()");
    let after = outbox_of(storage, &p).await;
    assert_eq!(after[0], e1, "attempts and error unchanged");
    assert_eq!(
        after[1].delivered_at,
        Some(at(11)),
        "a delivered entry stays delivered"
    );
    assert_eq!(
        deadline(storage).await,
        Some(at(40)),
        "the new time is a deadline"
    );
    assert!(
        claim_notes(storage, at(39), at(100), 10).await.is_empty(),
        "not claimable before the new time, though before the lease end"
    );
    assert_eq!(
        claim_notes(storage, at(40), at(100), 10).await,
        vec![e1],
        "claimable again from the new time, the delivered one never"
    );
}

/// `retry_notification(id, at, error)` counts the attempt, records the error and makes
/// the entry claimable again from `at` only (also when `at` is before its lease end).
pub async fn retry_notification_reschedules(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = vec![alert(&p, "x", at(0), at(0), None, "n1")];
    write(storage, &cx, "insert x with a notification").await;
    let e = outbox_of(storage, &p).await.remove(0);
    assert_eq!(
        claim_notes(storage, at(10), at(70), 10).await,
        vec![e.clone()]
    );

    storage
        .retry_notification(e.id, at(300), "connection refused")
        .await
        .expect("retry_notification()");
    let retried = OutboxEntry {
        attempts: 1,
        last_error: Some("connection refused".into()),
        ..e.clone()
    };
    assert_eq!(
        outbox_of(storage, &p).await,
        vec![retried.clone()],
        "retry_notification counts the attempt and records the error"
    );
    assert!(
        claim_notes(storage, at(100), at(160), 10).await.is_empty(),
        "not claimed after the lease end but before the retry time"
    );
    assert_eq!(
        deadline(storage).await,
        Some(at(300)),
        "the retry time is a deadline"
    );
    assert!(claim_notes(storage, at(299), at(360), 10).await.is_empty());
    assert_eq!(
        claim_notes(storage, at(300), at(360), 10).await,
        vec![retried],
        "claimed again from the retry time"
    );

    storage
        .retry_notification(e.id, at(320), "timeout")
        .await
        .expect("retry_notification()");
    let retried = OutboxEntry {
        attempts: 2,
        last_error: Some("timeout".into()),
        ..e.clone()
    };
    assert_eq!(outbox_of(storage, &p).await, vec![retried.clone()]);
    assert!(claim_notes(storage, at(319), at(380), 10).await.is_empty());
    assert_eq!(
        claim_notes(storage, at(320), at(380), 10).await,
        vec![retried],
        "a retry time before the lease end (360) makes it claimable from the retry time"
    );
    storage
        .mark_delivered(&[e.id], at(330))
        .await
        .expect("mark_delivered()");
    let after = outbox_of(storage, &p).await;
    assert_eq!(after[0].delivered_at, Some(at(330)));
    assert!(
        claim_notes(storage, at(10_000), at(10_060), 10)
            .await
            .is_empty(),
        "delivered after a retry: never claimed again"
    );
}

/// A held alert (reduction key, future `release_at`, listed in the indicator's `held`)
/// is deleted from the outbox by a later commit that cancels it, atomically with that
/// commit. Cancelling fails with `Conflict`, writing nothing, when the commit is stale,
/// when the alert was already claimed or delivered, or when there is no such alert.
pub async fn cancel_held_alert(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let held = HeldAlert {
        key: "ERR".into(),
        release_at: at(300),
    };
    let mut a = new_indicator(&p, "a", at(0));
    a.status = Status::Err;
    a.held = vec![held.clone()];
    let ca = Commit {
        indicator: a,
        log: vec![line(at(0), LogKind::Alert, "ALERT:-> ERR")],
        notifications: vec![alert(&p, "a", at(0), at(300), Some("ERR"), "-> ERR")],
        cancel: Vec::new(),
        project_version: None,
    };
    let a1 = write(storage, &ca, "insert a with a held alert").await;
    assert_eq!(a1.held, vec![held.clone()], "the held alert is stored");
    let outbox = outbox_of(storage, &p).await;
    assert_eq!(outbox.len(), 1);
    assert!(
        claim_notes(storage, at(10), at(70), 10).await.is_empty(),
        "a held alert is not claimed before its release"
    );

    let mut up = a1.clone();
    up.details = "still failing".into();
    let a2 = write(storage, &commit(up), "update keeping the held alert").await;
    let log_before = log_of(storage, &p, "a").await;
    let flip = |from: &Indicator| {
        let mut ind = from.clone();
        ind.status = Status::Ok;
        ind.prev_status = Some(Status::Err);
        ind.held = Vec::new();
        Commit {
            indicator: ind,
            log: vec![line(at(20), LogKind::Update, "switch ERR > OK")],
            notifications: Vec::new(),
            cancel: vec![held.clone()],
            project_version: None,
        }
    };
    assert_conflict(
        storage.commit(&flip(&a1)).await,
        "a stale commit cancelling a held alert",
    );
    assert_eq!(
        outbox_of(storage, &p).await,
        outbox,
        "a refused commit cancels nothing"
    );
    assert_eq!(get(storage, &p, "a").await, Some(a2.clone()));
    assert_eq!(log_of(storage, &p, "a").await, log_before);

    let flip2 = flip(&a2);
    let a3 = write(storage, &flip2, "commit cancelling a held alert").await;
    assert_eq!(a3, as_stored(&flip2.indicator, a1.id, 3));
    assert_eq!(get(storage, &p, "a").await, Some(a3.clone()));
    assert!(
        outbox_of(storage, &p).await.is_empty(),
        "the cancelled alert is deleted from the outbox"
    );
    assert_eq!(log_of(storage, &p, "a").await.len(), log_before.len() + 1);
    assert_eq!(
        deadline(storage).await,
        a3.due_at(),
        "the cancelled alert's release is no deadline any more"
    );

    // An alert already claimed cannot be cancelled.
    let held_b = HeldAlert {
        key: "ERR".into(),
        release_at: at(60),
    };
    let mut b = new_indicator(&p, "b", at(0));
    b.status = Status::Err;
    b.held = vec![held_b.clone()];
    let mut cb = commit(b);
    cb.notifications = vec![alert(&p, "b", at(0), at(60), Some("ERR"), "b -> ERR")];
    let b1 = write(storage, &cb, "insert b with a held alert").await;
    let claimed = claim_notes(storage, at(60), at(120), 10).await;
    assert_eq!(claimed.len(), 1, "b's alert is released at 60");
    let outbox_before = outbox_of(storage, &p).await;
    let b_log = log_of(storage, &p, "b").await;
    let mut flip_b = flip(&b1);
    flip_b.cancel = vec![held_b];
    flip_b.notifications = vec![alert(&p, "b", at(61), at(61), None, "b -> OK")];
    assert_conflict(
        storage.commit(&flip_b).await,
        "cancelling an alert that was already claimed",
    );
    assert_eq!(get(storage, &p, "b").await, Some(b1.clone()));
    assert_eq!(log_of(storage, &p, "b").await, b_log);
    assert_eq!(
        outbox_of(storage, &p).await,
        outbox_before,
        "a refused cancel deletes nothing and adds nothing"
    );
    storage
        .mark_delivered(&[claimed[0].id], at(62))
        .await
        .expect("mark_delivered()");
    assert_conflict(
        storage.commit(&flip_b).await,
        "cancelling an alert that was delivered",
    );
    assert_eq!(get(storage, &p, "b").await, Some(b1));
    assert_eq!(outbox_of(storage, &p).await.len(), outbox_before.len());

    // An alert that is not in the outbox at all.
    let c1 = write(storage, &commit(new_indicator(&p, "c", at(0))), "insert c").await;
    let mut cc = commit(c1.clone());
    cc.cancel = vec![HeldAlert {
        key: "ERR".into(),
        release_at: at(300),
    }];
    assert_conflict(
        storage.commit(&cc).await,
        "cancelling an alert that does not exist",
    );
    assert_eq!(get(storage, &p, "c").await, Some(c1));
}

// ---------------------------------------------------------------------------------------
// Batches, deletion, concurrency
// ---------------------------------------------------------------------------------------

/// `commit_batch` of one commit per group gives one result per group, in order, each
/// commit atomic on its own: a stale one fails with `Conflict` and writes nothing while the others are stored; two
/// commits from the same read in one batch do not both succeed.
pub async fn commit_batch_mixed(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let a1 = write(storage, &commit(new_indicator(&p, "a", at(0))), "insert a").await;
    let c1 = write(storage, &commit(new_indicator(&p, "c", at(0))), "insert c").await;
    let mut up = a1.clone();
    up.details = "moved".into();
    let a2 = write(storage, &commit(up), "update a").await;
    let a_log = log_of(storage, &p, "a").await;

    let b_note = alert(&p, "b", at(1), at(1), None, "b");
    let new_b = Commit {
        indicator: new_indicator(&p, "b", at(1)),
        log: vec![line(at(1), LogKind::Indicator, "created b")],
        notifications: vec![b_note.clone()],
        cancel: Vec::new(),
        project_version: None,
    };
    let mut stale_a = a1.clone();
    stale_a.details = "stale".into();
    let stale = Commit {
        indicator: stale_a,
        log: vec![line(at(1), LogKind::Update, "stale")],
        notifications: vec![alert(&p, "a", at(1), at(1), None, "stale")],
        cancel: Vec::new(),
        project_version: None,
    };
    let mut up_c = c1.clone();
    up_c.details = "updated".into();
    let mut update_c = commit(up_c);
    update_c.log = vec![line(at(1), LogKind::Update, "updated c")];

    let results = batch(
        storage,
        vec![vec![new_b.clone()], vec![stale], vec![update_c.clone()]],
    )
    .await
    .into_iter()
    .map(|r| r.map(|mut stored| stored.remove(0)));
    let mut results = results;
    let b = match results.next() {
        Some(Ok(b)) => b,
        other => panic!("commit_batch: the new indicator: expected Ok, got {other:?}"),
    };
    match results.next() {
        Some(Err(e)) if e.is_conflict() => {}
        other => panic!("commit_batch: the stale commit: expected Err(Conflict), got {other:?}"),
    }
    let c2 = match results.next() {
        Some(Ok(c)) => c,
        other => panic!("commit_batch: the valid update: expected Ok, got {other:?}"),
    };
    assert_ne!(b.id, IndicatorId::NEW);
    assert_eq!(b, as_stored(&new_b.indicator, b.id, 1));
    assert_eq!(c2, as_stored(&update_c.indicator, c1.id, 2));
    assert_eq!(get(storage, &p, "b").await, Some(b.clone()));
    assert_eq!(get(storage, &p, "c").await, Some(c2));
    assert_eq!(
        get(storage, &p, "a").await,
        Some(a2.clone()),
        "the stale commit of the batch changed nothing"
    );
    assert_eq!(log_of(storage, &p, "a").await, a_log);
    assert_eq!(log_of(storage, &p, "b").await, new_b.log);
    assert_eq!(log_of(storage, &p, "c").await, update_c.log);
    let outbox = outbox_of(storage, &p).await;
    assert_eq!(
        outbox.iter().map(|e| &e.notification).collect::<Vec<_>>(),
        vec![&b_note],
        "only the successful commits' notifications are in the outbox"
    );
    assert_eq!(outbox[0].indicator_id, b.id);

    assert!(
        batch(storage, Vec::new()).await.is_empty(),
        "commit_batch of no group gives no result"
    );

    let mut x = a2.clone();
    x.details = "x".into();
    let mut y = a2.clone();
    y.details = "y".into();
    let results = batch(storage, vec![vec![commit(x.clone())], vec![commit(y)]]).await;
    match results.as_slice() {
        [Ok(first), Err(e)] if e.is_conflict() => {
            assert_eq!(first, &[as_stored(&x, a1.id, 3)]);
        }
        other => panic!(
            "commit_batch of two commits from the same read: expected [Ok, Err(Conflict)], got {other:?}"
        ),
    }
    assert_eq!(get(storage, &p, "a").await, Some(as_stored(&x, a1.id, 3)));
}

/// Writes a batch and expects it to be taken as a whole.
async fn batch(storage: &dyn Storage, groups: Vec<Vec<Commit>>) -> Vec<GroupResult> {
    let n = groups.len();
    let results = storage.commit_batch(groups).await.expect("commit_batch()");
    assert_eq!(results.len(), n, "one result per group");
    results
}

/// A group of `commit_batch` is all or none: a group with one stale commit stores none of
/// its commits (not the new indicator, not its log or alert), while the other groups of
/// the same call are stored; a group of several good commits is stored whole.
pub async fn commit_batch_groups_are_all_or_none(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let a1 = write(storage, &commit(new_indicator(&p, "a", at(0))), "insert a").await;
    let c1 = write(storage, &commit(new_indicator(&p, "c", at(0))), "insert c").await;
    let mut a2 = a1.clone();
    a2.details = "moved".into();
    let a2 = write(storage, &commit(a2), "update a").await;
    let outbox_before = outbox_of(storage, &p).await;

    let mut new_d = commit(new_indicator(&p, "d", at(1)));
    new_d.log = vec![line(at(1), LogKind::Indicator, "created d")];
    new_d.notifications = vec![alert(&p, "d", at(1), at(1), None, "d")];
    let mut stale_a = a1.clone();
    stale_a.details = "stale".into();
    let mut up_c = c1.clone();
    up_c.details = "c in a good group".into();
    let mut new_e = commit(new_indicator(&p, "e", at(1)));
    new_e.log = vec![line(at(1), LogKind::Indicator, "created e")];
    let results = batch(
        storage,
        vec![
            vec![new_d, commit(stale_a)],
            vec![commit(up_c.clone()), new_e.clone()],
        ],
    )
    .await;
    match &results[0] {
        Err(e) if e.is_conflict() => {}
        other => panic!("a group with a stale commit: expected Err(Conflict), got {other:?}"),
    }
    match &results[1] {
        Ok(stored) => {
            assert_eq!(stored.len(), 2, "one indicator per commit of the group");
            assert_eq!(stored[0], as_stored(&up_c, c1.id, 2));
            assert_eq!(stored[1].name, name("e"));
        }
        other => panic!("a good group: expected Ok, got {other:?}"),
    }
    assert_eq!(
        get(storage, &p, "d").await,
        None,
        "the failed group's new indicator"
    );
    assert!(log_of(storage, &p, "d").await.is_empty());
    assert_eq!(
        get(storage, &p, "a").await,
        Some(a2),
        "the stale commit changed nothing"
    );
    assert_eq!(
        outbox_of(storage, &p).await,
        outbox_before,
        "the failed group's alert is not in the outbox"
    );
    assert_eq!(log_of(storage, &p, "e").await, new_e.log);
    assert_eq!(
        get(storage, &p, "c").await.map(|c| c.details),
        Some("c in a good group".to_owned())
    );

    // An indicator in two groups of one call: the later group fails whole.
    let c2 = get(storage, &p, "c").await.expect("c");
    let mut first = c2.clone();
    first.details = "first".into();
    let mut again = c2.clone();
    again.details = "again".into();
    let results = batch(
        storage,
        vec![
            vec![commit(first)],
            vec![commit(new_indicator(&p, "f", at(2))), commit(again)],
        ],
    )
    .await;
    assert!(results[0].is_ok(), "the first group: {:?}", results[0]);
    assert!(
        results[1].as_ref().is_err_and(StorageError::is_conflict),
        "a group repeating an indicator of the call: {:?}",
        results[1]
    );
    assert_eq!(get(storage, &p, "f").await, None);
}

/// A commit decided on a project at some version (`project_version`) is stored only while
/// the project is still at it: after a `save_project` it fails with `Conflict` on the
/// project and writes nothing; at the new version it is stored.
pub async fn commit_batch_checks_the_project_version(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let a1 = write(storage, &commit(new_indicator(&p, "a", at(0))), "insert a").await;
    let mut edited = p.clone();
    edited.name = "renamed".into();
    storage.save_project(&edited).await.expect("save_project");

    let mut up = a1.clone();
    up.details = "on the old project".into();
    let mut old = commit(up.clone());
    old.project_version = Some(p.version);
    let mut new_b = commit(new_indicator(&p, "b", at(1)));
    new_b.project_version = Some(p.version);
    let results = batch(storage, vec![vec![old], vec![new_b]]).await;
    for (what, result) in ["an update", "a new indicator"].iter().zip(&results) {
        match result {
            Err(StorageError::Conflict {
                entity: "project", ..
            }) => {}
            other => panic!("{what} decided on a stale project: expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(get(storage, &p, "a").await, Some(a1.clone()));
    assert_eq!(get(storage, &p, "b").await, None);

    let mut fresh = commit(up);
    fresh.project_version = Some(p.version + 1);
    let results = batch(storage, vec![vec![fresh]]).await;
    assert!(
        results[0].is_ok(),
        "at the stored version: {:?}",
        results[0]
    );
    assert_eq!(
        get(storage, &p, "a").await.map(|a| a.details),
        Some("on the old project".to_owned())
    );
}

/// One bad row does not sink the batch: a commit for a project that does not exist, and
/// one that cancels a held alert that is not there, fail alone (with their group); the
/// other groups of the call are stored.
pub async fn commit_batch_with_a_bad_row(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut ghost = p.clone();
    ghost.id = ProjectId(p.id.0 + 1000);
    let a1 = write(storage, &commit(new_indicator(&p, "a", at(0))), "insert a").await;
    let mut no_held = a1.clone();
    no_held.details = "cancels nothing".into();
    let mut cancel = commit(no_held);
    cancel.cancel = vec![HeldAlert {
        key: "ERR".into(),
        release_at: at(100),
    }];
    let good = commit(new_indicator(&p, "good", at(1)));
    let results = batch(
        storage,
        vec![
            vec![commit(new_indicator(&ghost, "orphan", at(1)))],
            vec![cancel],
            vec![good],
        ],
    )
    .await;
    assert!(
        results[0].is_err(),
        "a project that does not exist: {:?}",
        results[0]
    );
    assert!(
        results[1].as_ref().is_err_and(StorageError::is_conflict),
        "a held alert that is not there: {:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "the good group: {:?}", results[2]);
    assert_eq!(get(storage, &p, "a").await, Some(a1));
    assert!(get(storage, &p, "good").await.is_some());
}

/// `indicators_by_name` returns the stored indicators among the names asked, of the right
/// projects, leaving out names that do not exist; asking for nothing gives nothing.
pub async fn indicators_by_name_reads_a_batch(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let q = new_project(storage, "p2").await;
    let a = write(storage, &commit(new_indicator(&p, "a", at(0))), "a").await;
    let b = write(storage, &commit(new_indicator(&p, "b", at(0))), "b").await;
    let qa = write(storage, &commit(new_indicator(&q, "a", at(0))), "q a").await;
    let keys = vec![
        (p.id, name("a")),
        (p.id, name("missing")),
        (q.id, name("a")),
        (q.id, name("b")),
        (p.id, name("b")),
    ];
    let mut found = storage.indicators_by_name(&keys).await.expect("read");
    found.sort_by_key(|i| i.id);
    let mut expected = vec![a, b, qa];
    expected.sort_by_key(|i| i.id);
    assert_eq!(found, expected);
    assert!(
        storage
            .indicators_by_name(&[])
            .await
            .expect("read nothing")
            .is_empty()
    );
}

/// `delete_indicator` returns whether the indicator existed; the indicator and its log
/// are gone (it is never claimed, a commit from an older read conflicts), its
/// notifications stay in the outbox; the name can be created again with a fresh id and
/// an empty log.
pub async fn delete_indicator_removes_it_and_its_log(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut cb = commit(due_indicator(&p, "b", at(2000)));
    cb.log = vec![line(at(0), LogKind::Indicator, "created b")];
    let b1 = write(storage, &cb, "insert b").await;
    // `a` is the newest indicator, so that a backend reusing the highest deleted id
    // (SQLite's rowid without AUTOINCREMENT) is caught below.
    let mut ca = commit(due_indicator(&p, "a", at(10)));
    ca.log = vec![line(at(0), LogKind::Indicator, "created a")];
    ca.notifications = vec![alert(&p, "a", at(0), at(0), None, "a")];
    let a1 = write(storage, &ca, "insert a").await;
    let outbox = outbox_of(storage, &p).await;

    assert!(
        delete(storage, &p, "a").await,
        "deleting a stored indicator returns true"
    );
    assert!(
        !delete(storage, &p, "a").await,
        "deleting it again returns false"
    );
    assert_eq!(get(storage, &p, "a").await, None, "the indicator is gone");
    assert!(log_of(storage, &p, "a").await.is_empty(), "its log is gone");
    assert_eq!(count(storage, &p).await, 1);
    assert_eq!(list(storage, &p).await, vec![b1.clone()]);
    assert_eq!(log_of(storage, &p, "b").await, cb.log, "other logs stay");
    assert_eq!(
        outbox_of(storage, &p).await,
        outbox,
        "its notifications stay in the outbox"
    );
    assert!(
        claim(storage, at(1000), at(1060), 10).await.is_empty(),
        "a deleted indicator is never claimed"
    );

    let mut late = a1.clone();
    late.details = "late".into();
    assert_conflict(
        storage.commit(&commit(late)).await,
        "a commit from a read before the delete",
    );
    assert_eq!(get(storage, &p, "a").await, None, "it recreates nothing");

    let mut again = commit(new_indicator(&p, "a", at(5)));
    again.log = vec![line(at(5), LogKind::Indicator, "created a again")];
    let a2 = write(storage, &again, "insert a again after its delete").await;
    assert_eq!(a2.version, 1);
    assert_ne!(
        a2.id, a1.id,
        "ids are not reused: the outbox still names the deleted indicator's id"
    );
    assert_eq!(
        log_of(storage, &p, "a").await,
        again.log,
        "the old log does not come back"
    );

    let q = new_project(storage, "q1").await;
    assert!(
        !storage
            .delete_indicator(q.id, &name("b"))
            .await
            .expect("delete_indicator()"),
        "deleting a name of another project returns false"
    );
    assert_eq!(get(storage, &p, "b").await, Some(b1));
    assert!(
        !delete(storage, &p, "nope").await,
        "deleting an unknown name returns false"
    );
}

/// Optimistic concurrency loses no update: of two writers that read the same version and
/// commit at once exactly one wins; twenty writers doing read-modify-commit with retries,
/// interleaved round by round, each land exactly once.
pub async fn concurrent_commits_no_lost_update(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut a = new_indicator(&p, "a", at(0));
    a.desc = "0".into();
    write(storage, &commit(a), "insert a").await;

    let r1 = get(storage, &p, "a").await.expect("a is stored");
    let r2 = get(storage, &p, "a").await.expect("a is stored");
    let writer = |mut ind: Indicator, who: &str| {
        ind.details = who.to_owned();
        let mut c = commit(ind);
        c.log = vec![line(at(1), LogKind::Update, who)];
        c.notifications = vec![alert(&p, "a", at(1), at(1), None, who)];
        c
    };
    let (c1, c2) = (writer(r1, "one"), writer(r2, "two"));
    let (x, y) = tokio::join!(storage.commit(&c1), storage.commit(&c2));
    let (winner, who) = match (x, y) {
        (Ok(w), Err(e)) if e.is_conflict() => (w, "one"),
        (Err(e), Ok(w)) if e.is_conflict() => (w, "two"),
        other => panic!(
            "two commits from the same read: expected exactly one Ok and one Conflict, got {other:?}"
        ),
    };
    assert_eq!(winner.version, 2);
    assert_eq!(winner.details, who);
    assert_eq!(get(storage, &p, "a").await, Some(winner));
    let messages: Vec<String> = log_of(storage, &p, "a")
        .await
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(messages, vec![who], "only the winner's log line is written");
    assert_eq!(
        outbox_of(storage, &p).await.len(),
        1,
        "only the winner's notification is written"
    );

    let mut pending: Vec<i64> = (0..20).collect();
    let mut round = 0;
    while !pending.is_empty() {
        round += 1;
        let mut reads = Vec::new();
        for w in &pending {
            reads.push((*w, get(storage, &p, "a").await.expect("a is stored")));
        }
        let mut losers = Vec::new();
        for (w, mut ind) in reads {
            let n: u32 = ind.desc.parse().expect("desc holds the counter");
            ind.desc = (n + 1).to_string();
            let mut c = commit(ind);
            c.log = vec![line(
                at(100 + round),
                LogKind::Update,
                &format!("writer {w}"),
            )];
            match storage.commit(&c).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() => losers.push(w),
                Err(e) => panic!("writer {w}: commit failed: {e:?}"),
            }
        }
        assert_eq!(
            losers.len() + 1,
            pending.len(),
            "of writers that read the same version, exactly one wins (round {round})"
        );
        pending = losers;
    }
    let last = get(storage, &p, "a").await.expect("a is stored");
    assert_eq!(
        last.desc, "20",
        "every increment landed once: no update is lost"
    );
    assert_eq!(last.version, 22, "2 + one version per increment");
    let mut writers: Vec<String> = log_of(storage, &p, "a")
        .await
        .into_iter()
        .skip(1)
        .map(|l| l.message)
        .collect();
    writers.sort_by_key(|m| {
        m.trim_start_matches("writer ")
            .parse::<u32>()
            .expect("a writer's line")
    });
    let expected: Vec<String> = (0..20).map(|w| format!("writer {w}")).collect();
    assert_eq!(
        writers, expected,
        "each writer's log line is written exactly once"
    );
}

// ---------------------------------------------------------------------------------------
// The engine on the backend
// ---------------------------------------------------------------------------------------

fn engine_on(
    storage: &std::sync::Arc<dyn Storage>,
    clock: &crate::testing::ManualClock,
    notifier: &crate::testing::RecordingNotifier,
) -> crate::Engine {
    crate::Engine::new(
        storage.clone(),
        std::sync::Arc::new(notifier.clone()),
        std::sync::Arc::new(clock.clone()),
    )
}

/// 50 concurrent updates of one indicator through the engine: none is lost (each is in the
/// log), and each got a version of its own.
pub async fn engine_many_writers_lose_nothing(storage: &std::sync::Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(storage, &clock, &notifier);
    let project = storage
        .create_project(NewProject::new("p", textid("p1")).with_member(ops()))
        .await
        .expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "hot", "OK"))
        .await
        .expect("first update");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let status = if i % 3 == 0 { "ERR" } else { "OK" };
                let details = format!("writer {i}");
                let req = crate::UpdateRequest {
                    details: Some(details),
                    ..crate::UpdateRequest::new("p1", "hot", status)
                };
                match engine.update(req).await {
                    Ok(crate::UpdateOutcome::Applied(ind)) => ind.version,
                    other => panic!("writer {i} was not applied: {other:?}"),
                }
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.expect("writer task"));
    }
    versions.sort_unstable();
    let expected: Vec<u64> = (2..=51).collect();
    assert_eq!(versions, expected, "every writer got a version of its own");
    let ind = storage
        .indicator(project.id, &name("hot"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(ind.version, 51);
    let log = storage
        .log(project.id, &name("hot"), 1000)
        .await
        .expect("log");
    for i in 0..50 {
        let details = format!(": writer {i}");
        assert!(
            log.iter().any(|l| l.message.ends_with(&details)),
            "the update of writer {i} is not in the log"
        );
    }
}

/// An update, then the deadline passes: the engine expires the indicator once, its alert is
/// delivered once and marked delivered in the outbox.
pub async fn engine_expiry_alert_and_delivery(storage: &std::sync::Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(storage, &clock, &notifier);
    let project = storage
        .create_project(NewProject::new("p", textid("p1")).with_member(ops()))
        .await
        .expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "OK"))
        .await
        .expect("update");
    clock.advance(TimeDelta::minutes(80));
    let report = engine.tick().await.expect("tick");
    assert_eq!((report.expired, report.delivered), (1, 2), "{report:?}");
    let report = engine.tick().await.expect("second tick");
    assert_eq!((report.expired, report.delivered), (0, 0), "{report:?}");
    assert_eq!(
        notifier.alerts(),
        vec![
            "autocreated".to_owned(),
            "Changed status OK (1h20m) -> ERR (No heartbeat)".to_owned()
        ]
    );
    let ind = storage
        .indicator(project.id, &name("srv"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!((ind.status, ind.dead), (Status::Err, true));
    let outbox = storage.outbox(project.id).await.expect("outbox");
    assert!(
        outbox.iter().all(|e| e.delivered_at.is_some()),
        "{outbox:?}"
    );
    assert_eq!(storage.next_deadline().await.expect("deadline"), None);
}

/// Alert reduction end to end on a clock with nanoseconds (finer than SQL backends keep): a
/// flip and its flip-back inside the delay cancel out in the outbox.
pub async fn engine_reduction_cancels_with_nanosecond_clock(storage: &std::sync::Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0() + TimeDelta::nanoseconds(123_456_789));
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(storage, &clock, &notifier);
    let mut new = NewProject::new("p", textid("p1")).with_member(ops());
    new.policies[0].reduction = Some(Reduction::parse("5m").expect("reduction"));
    let project = storage.create_project(new).await.expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "OK"))
        .await
        .expect("create");
    clock.advance(TimeDelta::minutes(10));
    engine.tick().await.expect("tick");
    clock.advance(TimeDelta::nanoseconds(1_001));
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "ERR"))
        .await
        .expect("flip");
    clock.advance(TimeDelta::seconds(30) + TimeDelta::nanoseconds(7));
    engine
        .update(crate::UpdateRequest::new("p1", "srv", "OK"))
        .await
        .expect("flip back");
    clock.advance(TimeDelta::minutes(10));
    engine.tick().await.expect("tick");
    assert_eq!(notifier.alerts(), vec!["autocreated".to_owned()]);
    let waiting: Vec<_> = storage
        .outbox(project.id)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|e| e.delivered_at.is_none())
        .collect();
    assert!(
        waiting.is_empty(),
        "the flip and flip-back cancel out: {waiting:?}"
    );
}

/// A stored notification that cannot be read (written by another version, damaged) does
/// not hold up the others: `insert_unreadable(project, indicator)` must store such a row,
/// released long ago, by the backend's own means; the good alert next to it is delivered
/// and the bad row is not handed out (the backend's test then looks at the parked row).
/// Not in the macro, since only the backend can write a bad row.
pub async fn unreadable_notifications_are_parked<F, Fut>(
    storage: std::sync::Arc<dyn Storage>,
    insert_unreadable: F,
) where
    F: FnOnce(ProjectId, IndicatorId) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(&storage, &clock, &notifier);
    let project = storage
        .create_project(NewProject::new("p", textid("p1")).with_member(ops()))
        .await
        .expect("create project");
    engine
        .update(crate::UpdateRequest::new("p1", "a", "OK"))
        .await
        .expect("update");
    let a = get(&*storage, &project, "a").await.expect("stored");
    insert_unreadable(project.id, a.id).await;
    clock.advance(TimeDelta::seconds(1));
    let report = engine
        .tick()
        .await
        .expect("a tick despite the unreadable row");
    assert_eq!(
        (report.delivered, report.failed),
        (1, 0),
        "the good alert is delivered"
    );
    assert_eq!(notifier.alerts(), vec!["autocreated"]);
    // Past any retry delay, before the indicator expires (1h20m).
    clock.advance(TimeDelta::minutes(30));
    let report = engine.tick().await.expect("the next tick");
    assert_eq!(
        report,
        crate::TickReport::default(),
        "the bad row is parked"
    );
}

/// Restart: state written through the engine (deadlines, flags, a dead indicator, an alert
/// held by reduction) reads back the same from a reopened store, and the work goes on from
/// there. Not in the macro, since reopening is the backend's own business: `reopen` must
/// close `first` (drop or close its pools) and open the same database again.
pub async fn restart_keeps_state<F, Fut>(first: std::sync::Arc<dyn Storage>, reopen: F)
where
    F: FnOnce(std::sync::Arc<dyn Storage>) -> Fut,
    Fut: std::future::Future<Output = std::sync::Arc<dyn Storage>>,
{
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_on(&first, &clock, &notifier);
    let mut new = NewProject::new("p", textid("p1")).with_member(ops());
    new.policies[0].reduction = Some(Reduction::parse("5m").expect("reduction"));
    let project = first.create_project(new).await.expect("create project");
    for (n, status) in [
        ("alive", "OK"),
        ("dead", "ERR"),
        ("maint", "OK"),
        ("quiet", "OK"),
        ("held", "OK"),
    ] {
        engine
            .update(crate::UpdateRequest::new("p1", n, status))
            .await
            .expect("update");
    }
    engine
        .act(
            "p1",
            &name("maint"),
            &crate::Action::Maintenance(true),
            "user t",
        )
        .await
        .expect("maintenance");
    engine
        .act("p1", &name("quiet"), &crate::Action::Silent(true), "user t")
        .await
        .expect("silent");
    clock.advance(TimeDelta::minutes(10));
    engine.tick().await.expect("tick");
    engine
        .update(crate::UpdateRequest::new("p1", "held", "ERR"))
        .await
        .expect("flip");

    let indicators = first.indicators(project.id).await.expect("indicators");
    let outbox = first.outbox(project.id).await.expect("outbox");
    let deadline = first.next_deadline().await.expect("deadline");
    let log = first
        .log(project.id, &name("held"), 100)
        .await
        .expect("log");
    assert!(
        indicators.iter().any(|i| !i.held.is_empty()),
        "an alert is held: {indicators:?}"
    );
    drop(engine);

    let second = reopen(first).await;
    assert_eq!(
        second.project(project.id).await.expect("project"),
        Some(project.clone())
    );
    assert_eq!(
        second.indicators(project.id).await.expect("indicators"),
        indicators
    );
    assert_eq!(second.outbox(project.id).await.expect("outbox"), outbox);
    assert_eq!(second.next_deadline().await.expect("deadline"), deadline);
    assert_eq!(
        second
            .log(project.id, &name("held"), 100)
            .await
            .expect("log"),
        log
    );

    // The work goes on: the held alert is released, then the live ones expire.
    let engine = engine_on(&second, &clock, &notifier);
    let before = notifier.alerts().len();
    clock.advance(TimeDelta::minutes(5));
    engine.tick().await.expect("tick");
    assert_eq!(
        notifier.alerts()[before..],
        ["Changed status OK (10m) -> ERR ()".to_owned()]
    );
    clock.advance(TimeDelta::minutes(80));
    let report = engine.tick().await.expect("tick");
    assert_eq!(
        report.expired, 3,
        "alive, maint and quiet expire; dead and held are dead"
    );
    clock.advance(TimeDelta::minutes(5));
    engine.tick().await.expect("tick");
    let alerts = &notifier.alerts()[before + 1..];
    assert_eq!(
        alerts.iter().filter(|a| a.contains("No heartbeat")).count(),
        1,
        "maintenance and silent hold their alerts back: {alerts:?}"
    );
}

/// Server-wide settings: absent until put, then the last value put.
pub async fn settings_roundtrip(storage: &dyn Storage) {
    assert_eq!(storage.setting("admin_token").await.expect("read"), None);
    storage
        .put_setting("admin_token", "one")
        .await
        .expect("put");
    storage
        .put_setting("admin_token", "two")
        .await
        .expect("replace");
    storage.put_setting("other", "x").await.expect("put other");
    assert_eq!(
        storage.setting("admin_token").await.expect("read"),
        Some("two".to_owned())
    );
    assert_eq!(
        storage.setting("other").await.expect("read"),
        Some("x".to_owned())
    );
}

/// `put_setting_if_absent`: of 16 concurrent tries on one key exactly one wins and its
/// value stays; a key set by `put_setting` is never taken.
pub async fn put_setting_if_absent_is_won_once(storage: &std::sync::Arc<dyn Storage>) {
    let tries = (0..16).map(|i| {
        let storage = storage.clone();
        tokio::spawn(async move {
            let won = storage
                .put_setting_if_absent("daily", &format!("node {i}"))
                .await
                .expect("put_setting_if_absent()");
            (i, won)
        })
    });
    let mut winners = Vec::new();
    for t in tries {
        let (i, won) = t.await.expect("a task");
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(
        storage.setting("daily").await.expect("read"),
        Some(format!("node {}", winners[0])),
        "the winner's value stays"
    );
    storage.put_setting("taken", "x").await.expect("put");
    assert!(
        !storage
            .put_setting_if_absent("taken", "y")
            .await
            .expect("put_setting_if_absent()")
    );
    assert_eq!(
        storage.setting("taken").await.expect("read"),
        Some("x".to_owned())
    );
}
