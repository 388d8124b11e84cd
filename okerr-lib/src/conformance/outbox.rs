//! The outbox: claiming, delivering, postponing and retrying notifications, held alerts.

use crate::indicator::{HeldAlert, Indicator, LogKind, Status};
use crate::outbox::{NotificationId, OutboxEntry};
use crate::storage::{Commit, Storage};

use super::*;

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

/// A notification whose `hold_until` is later than its release (a recipient's burst held
/// back) is stored as it was committed, yet is not handed out before `hold_until`, and
/// `next_deadline` says when it is: written with a new indicator and with a change to a
/// stored one (SQL backends write those two by different statements).
/// `release_held_notifications(t, now)` makes the ones held back to exactly `t`, unleased,
/// claimable from `now`.
pub async fn held_notification_waits_for_its_first_attempt(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    let mut n1 = alert(&p, "x", at(0), at(0), None, "n1, held until 10");
    n1.hold_until = Some(at(10));
    cx.notifications = vec![n1];
    let x1 = write(storage, &cx, "insert x with a held-back alert").await;
    let mut up = x1.clone();
    up.details = "again".into();
    let mut cu = commit(up);
    let mut n2 = alert(&p, "x", at(5), at(5), None, "n2, held until 15");
    n2.hold_until = Some(at(15));
    let mut n3 = alert(
        &p,
        "x",
        at(5),
        at(5),
        None,
        "n3, held until before its release",
    );
    n3.hold_until = Some(at(1));
    cu.notifications = vec![n2.clone(), n3];
    write(storage, &cu, "update x with alerts").await;
    let outbox = outbox_of(storage, &p).await;
    let notes: Vec<_> = outbox.iter().map(|e| e.notification.clone()).collect();
    assert_eq!(
        notes,
        cx.notifications
            .iter()
            .chain(&cu.notifications)
            .cloned()
            .collect::<Vec<_>>(),
        "stored as committed, hold_until too"
    );
    assert_eq!(deadline(storage).await, Some(at(5)), "n3 from its release");
    assert_eq!(
        claim_notes(storage, at(9), at(100), 10).await,
        vec![outbox[2].clone()],
        "before 10, only n3, which is not held past its release"
    );
    assert_eq!(deadline(storage).await, Some(at(10)), "n1 at 10");
    assert_eq!(
        claim_notes(storage, at(10), at(100), 10).await,
        vec![outbox[0].clone()],
        "n1 at 10, n2 still held"
    );
    assert_eq!(deadline(storage).await, Some(at(15)));
    assert_eq!(
        storage
            .release_held_notifications(at(15), at(12))
            .await
            .expect("release_held_notifications()"),
        1,
        "n2, held to 15; n1, leased until 100 and held to 10 before, is not"
    );
    assert_eq!(deadline(storage).await, Some(at(12)));
    assert_eq!(
        claim_notes(storage, at(12), at(100), 10).await,
        vec![outbox[1].clone()],
        "n2 from 12"
    );
    assert_eq!(
        storage
            .release_held_notifications(at(100), at(13))
            .await
            .expect("release_held_notifications()"),
        0,
        "leased notifications are not held back"
    );
    assert!(claim_notes(storage, at(13), at(100), 10).await.is_empty());
}

/// `retry_notifications(ids, at, error)` does what `retry_notification` does for each
/// undelivered one of `ids`, and leaves delivered and unknown ids alone.
pub async fn retry_notifications_reschedules_each(storage: &dyn Storage) {
    let (p, entries) = queued_alerts(storage, 3).await;
    let (e1, e2, e3) = (entries[0].clone(), entries[1].clone(), entries[2].clone());
    assert_eq!(
        claim_notes(storage, at(10), at(70), 10).await,
        vec![e1.clone(), e2.clone(), e3.clone()]
    );
    storage
        .mark_delivered(&[e3.id], at(11))
        .await
        .expect("mark_delivered()");
    let unknown = NotificationId(e3.id.0 + 1000);
    storage
        .retry_notifications(&[e1.id, e2.id, e3.id, unknown], at(300), "no relay")
        .await
        .expect("retry_notifications()");
    let retried = |e: &OutboxEntry| OutboxEntry {
        attempts: 1,
        last_error: Some("no relay".into()),
        ..e.clone()
    };
    let after = outbox_of(storage, &p).await;
    assert_eq!(
        after[..2],
        [retried(&e1), retried(&e2)],
        "each counts the attempt and records the error"
    );
    assert_eq!(
        (
            after[2].delivered_at,
            after[2].attempts,
            &after[2].last_error
        ),
        (Some(at(11)), 0, &None),
        "a delivered entry stays as it was"
    );
    assert!(
        claim_notes(storage, at(100), at(160), 10).await.is_empty(),
        "not claimed after the lease end but before the retry time"
    );
    assert_eq!(deadline(storage).await, Some(at(300)));
    assert_eq!(
        claim_notes(storage, at(300), at(360), 10).await,
        vec![retried(&e1), retried(&e2)],
        "both claimed again from the retry time"
    );
    storage
        .retry_notifications(&[], at(400), "nothing")
        .await
        .expect("retry_notifications() of none");
}

/// `retry_notification(id, at, error)` counts the attempt, records the error and makes
/// the entry claimable again from `at` only (also when `at` is before its lease end).
pub async fn retry_notification_reschedules(storage: &dyn Storage) {
    let (p, mut entries) = queued_alerts(storage, 1).await;
    let e = entries.remove(0);
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
