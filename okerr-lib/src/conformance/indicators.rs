//! Indicators and their log: first commits, updates at a version, every field, batches,
//! deletion and concurrent writers.

use chrono::TimeDelta;
use url::Url;

use crate::Interval;
use crate::indicator::{HeldAlert, Indicator, IndicatorId, LogKind, Status};
use crate::method::{
    CheckMethod, DiffLimit, Limit, MethodKind, NumericalArgs, StringArgs, StringOptions,
};
use crate::name::{IndicatorName, Secret};
use crate::outbox::{Notification, Payload, StatusChange};
use crate::project::{Policy, ProjectId};
use crate::settings::Settings;
use crate::storage::{Commit, GroupResult, Storage, StorageError};

use super::*;

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
        hold_until: None,
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

// Batches, deletion, concurrency

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

/// A commit names its indicator by project and name: one that carries a stored
/// indicator's id and version under another name renames nothing and creates nothing; it
/// fails with `Conflict`, and both names read as before.
pub async fn commit_batch_does_not_rename(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let a1 = write(storage, &commit(new_indicator(&p, "a", at(0))), "insert a").await;
    let mut renamed = a1.clone();
    renamed.name = IndicatorName::parse("b").expect("a valid name");
    renamed.details = "under another name".into();
    let results = batch(storage, vec![vec![commit(renamed)]]).await;
    assert!(
        results[0].as_ref().is_err_and(StorageError::is_conflict),
        "a commit under another name: expected Conflict, got {:?}",
        results[0]
    );
    assert_eq!(get(storage, &p, "a").await, Some(a1));
    assert_eq!(get(storage, &p, "b").await, None);
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

/// A batch larger than one SQL statement binds (the SQL backends write sets of rows in
/// chunks of 1,024) is still one all-or-none write per group: 2,500 new indicators with a
/// log line and an alert each, read back by name in one call, then changed with two log
/// lines each while one group in the middle is stale. Every good group is stored, the
/// stale one not at all, and log lines and alerts keep the order they were given in.
pub async fn commit_batch_larger_than_a_statement(storage: &dyn Storage) {
    const N: usize = 2_500;
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let key = |i: usize| format!("i{i:04}");
    let groups = (0..N)
        .map(|i| {
            let mut c = commit(new_indicator(&p, &key(i), at(1)));
            c.log = vec![line(at(1), LogKind::Indicator, &format!("created {i}"))];
            c.notifications = vec![alert(&p, &key(i), at(1), at(1), None, &key(i))];
            vec![c]
        })
        .collect();
    let results = batch(storage, groups).await;
    assert!(
        results.iter().all(Result::is_ok),
        "every new indicator of a large batch is stored: {:?}",
        results.iter().find(|r| r.is_err())
    );
    let keys: Vec<_> = (0..N).map(|i| (p.id, name(&key(i)))).collect();
    let mut stored = storage
        .indicators_by_name(&keys)
        .await
        .expect("read by name");
    assert_eq!(
        stored.len(),
        N,
        "indicators_by_name reads a large batch whole"
    );
    stored.sort_by(|a, b| a.name.cmp(&b.name));
    let outbox = outbox_of(storage, &p).await;
    let order: Vec<String> = outbox
        .iter()
        .map(|e| e.notification.indicator.to_string())
        .collect();
    assert_eq!(
        order,
        (0..N).map(key).collect::<Vec<_>>(),
        "alerts in the batch's order"
    );

    let stale = N / 2;
    let mut moved = stored[stale].clone();
    moved.details = "moved meanwhile".into();
    let moved = write(storage, &commit(moved), "move one indicator").await;
    let groups = stored
        .iter()
        .enumerate()
        .map(|(i, ind)| {
            let mut changed = ind.clone();
            changed.details = format!("changed {i}");
            let mut c = commit(changed);
            c.log = vec![
                line(at(2), LogKind::Indicator, &format!("first {i}")),
                line(at(2), LogKind::Indicator, &format!("second {i}")),
            ];
            vec![c]
        })
        .collect();
    let results = batch(storage, groups).await;
    for (i, result) in results.iter().enumerate() {
        if i == stale {
            assert!(
                result.as_ref().is_err_and(StorageError::is_conflict),
                "the stale group of a large batch: {result:?}"
            );
        } else {
            assert!(result.is_ok(), "group {i} of a large batch: {result:?}");
        }
    }
    for i in [0, 1, 1023, 1024, stale - 1, stale + 1, N - 1] {
        let ind = get(storage, &p, &key(i)).await.expect("stored");
        assert_eq!(ind.details, format!("changed {i}"), "indicator {i}");
        let messages: Vec<String> = log_of(storage, &p, &key(i))
            .await
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(
            messages,
            [
                format!("created {i}"),
                format!("first {i}"),
                format!("second {i}")
            ],
            "the log of indicator {i}"
        );
    }
    let ind = get(storage, &p, &key(stale)).await.expect("stored");
    assert_eq!(ind, moved, "the stale group changed nothing");
    assert_eq!(log_of(storage, &p, &key(stale)).await.len(), 1);
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
