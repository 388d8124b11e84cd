//! Checks of crash-safe claims and bounded growth: taking back claims, renewing leases,
//! dead letters, pruning the log and purging the outbox.

use std::sync::Arc;

use chrono::TimeDelta;

use super::*;
use crate::indicator::Status;
use crate::outbox::NotificationId;

/// `release_claims` ends the leases still held, of indicators and notifications, so that
/// what a crashed node claimed is claimable at once; rows whose lease a commit, delivery,
/// retry or dead letter ended keep their own deadline (or none); a second call finds
/// nothing.
pub async fn release_claims_takes_back_held_leases(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    for n in ["a", "b", "c"] {
        write(storage, &commit(due_indicator(&p, n, at(10))), "insert").await;
    }
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = (1..=4)
        .map(|i| alert(&p, "x", at(0), at(0), None, &format!("n{i}")))
        .collect();
    write(storage, &cx, "insert x with 4 notifications").await;
    let notes = outbox_of(storage, &p).await;

    let claimed = claim(storage, at(10), at(70), 2).await;
    assert_eq!(claimed.len(), 2, "two of three due indicators claimed");
    let committed = {
        let mut a = claimed[0].clone();
        a.expected = Some(at(500));
        a.scheduled = Some(at(500));
        write(storage, &commit(a), "commit of a claimed indicator").await
    };
    let held = claimed[1].name.clone();
    assert_eq!(claim_notes(storage, at(10), at(70), 10).await.len(), 4);
    storage
        .mark_delivered(&[notes[0].id], at(11))
        .await
        .expect("mark_delivered()");
    storage
        .retry_notification(notes[1].id, at(300), "refused")
        .await
        .expect("retry_notification()");
    storage
        .dead_letter(notes[2].id, at(12), "410 Gone")
        .await
        .expect("dead_letter()");

    assert_eq!(
        storage
            .release_claims(at(20))
            .await
            .expect("release_claims()"),
        2,
        "one indicator and one notification were still leased"
    );
    let due = claim(storage, at(20), at(80), 10).await;
    assert_eq!(
        sorted_names(&due),
        {
            let mut want = vec![held.as_str(), "c"];
            want.sort_unstable();
            want
        },
        "the indicator still leased is claimable at once, beside the one never claimed; \
         the committed one keeps its own deadline"
    );
    assert_eq!(
        claim_notes(storage, at(20), at(80), 10).await,
        vec![notes[3].clone()],
        "the notification still leased is claimable at once; delivered, retried and dead \
         ones are not"
    );
    assert_eq!(
        storage
            .release_claims(at(21))
            .await
            .expect("release_claims()"),
        3,
        "the leases taken since (2 indicators, 1 notification) are released, no others"
    );
    assert_eq!(
        storage
            .release_claims(at(22))
            .await
            .expect("release_claims()"),
        0,
        "nothing is left to release"
    );
    assert_eq!(claim(storage, at(22), at(600), 10).await.len(), 2);
    assert_eq!(claim_notes(storage, at(22), at(600), 10).await.len(), 1);
    assert!(claim(storage, at(499), at(600), 10).await.is_empty());
    assert_eq!(
        claim(storage, at(500), at(600), 10).await,
        vec![committed],
        "the committed indicator is due at its own deadline"
    );
    assert!(claim_notes(storage, at(299), at(600), 10).await.is_empty());
    assert_eq!(
        claim_notes(storage, at(300), at(600), 10).await.len(),
        1,
        "the retried notification at its own time"
    );
    assert_eq!(
        outbox_of(storage, &p).await[2].dead_at,
        Some(at(12)),
        "the dead letter stays dead"
    );
}

/// A lease ends at `lease_until`: another node claims the rows from then on (the handover
/// bound is one lease). `renew_notifications` moves only leases still held as claimed,
/// so a node whose lease ended and was taken cannot extend the new holder's; the holder
/// may move its lease to a later end or to an earlier one.
pub async fn leases_pass_to_another_node_when_they_end(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    write(storage, &commit(due_indicator(&p, "a", at(10))), "insert").await;
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = vec![
        alert(&p, "x", at(0), at(0), None, "n1"),
        alert(&p, "x", at(0), at(0), None, "n2"),
    ];
    write(storage, &cx, "insert x with 2 notifications").await;
    let notes = outbox_of(storage, &p).await;
    let ids = [notes[0].id, notes[1].id];

    // Node A claims with a 10 s lease, then dies.
    assert_eq!(claim(storage, at(10), at(20), 10).await.len(), 1);
    assert_eq!(claim_notes(storage, at(10), at(20), 10).await.len(), 2);
    // Node B.
    assert!(
        claim(storage, at_us(19_999_999), at(30), 10)
            .await
            .is_empty()
    );
    assert!(
        claim_notes(storage, at_us(19_999_999), at(30), 10)
            .await
            .is_empty()
    );
    assert_eq!(
        names(&claim(storage, at(20), at(30), 10).await),
        vec!["a"],
        "the indicator passes to another node at the lease end"
    );

    let mut fresh = claim_notes(storage, at(20), at(30), 10).await;
    fresh.sort_by_key(|e| e.id);
    assert_eq!(
        fresh.len(),
        2,
        "the notifications pass to B at the lease end"
    );
    assert!(
        storage
            .renew_notifications(&ids, at(20), at(35))
            .await
            .expect("renew_notifications()")
            .is_empty(),
        "A, whose lease ended and was taken, cannot renew it"
    );
    assert_eq!(
        storage
            .renew_notifications(&ids, at(30), at(40))
            .await
            .expect("renew_notifications()"),
        ids.to_vec(),
        "B, the holder, renews its leases"
    );
    assert!(
        claim_notes(storage, at(35), at(45), 10).await.is_empty(),
        "a renewed lease holds past its first end"
    );
    assert!(
        claim_notes(storage, at_us(39_999_999), at(45), 10)
            .await
            .is_empty()
    );
    assert!(
        storage
            .renew_notifications(&ids, at(30), at(50))
            .await
            .expect("renew_notifications()")
            .is_empty(),
        "a renewal from a lease end that is no longer held changes nothing"
    );
    storage
        .mark_delivered(&ids[..1], at(36))
        .await
        .expect("mark_delivered()");
    assert_eq!(
        storage
            .renew_notifications(&ids, at(40), at(50))
            .await
            .expect("renew_notifications()"),
        vec![ids[1]],
        "a delivered notification is not renewed"
    );
    assert!(claim_notes(storage, at(49), at(60), 10).await.is_empty());
    assert_eq!(claim_notes(storage, at(50), at(60), 10).await.len(), 1);
    // A holder may also end its lease early (a held-back burst of alerts that settled).
    assert_eq!(
        storage
            .renew_notifications(&ids, at(60), at(52))
            .await
            .expect("renew_notifications()"),
        vec![ids[1]],
        "a lease moved to an earlier end"
    );
    assert!(claim_notes(storage, at(51), at(60), 10).await.is_empty());
    assert_eq!(
        claim_notes(storage, at(52), at(62), 10).await.len(),
        1,
        "claimable from its new, earlier end"
    );
}

/// A dead letter is never claimed again, keeps its error and counts its last attempt, and
/// stays in the outbox with `dead_at`; a delivered notification is left as it is; an
/// unknown one is `NotFound`.
pub async fn dead_letters_are_final_and_visible(storage: &dyn Storage) {
    let (p, notes) = queued_alerts(storage, 2).await;
    assert_eq!(claim_notes(storage, at(0), at(10), 10).await.len(), 2);
    storage
        .retry_notification(notes[0].id, at(5), "503")
        .await
        .expect("retry_notification()");
    storage
        .mark_delivered(&[notes[1].id], at(1))
        .await
        .expect("mark_delivered()");
    assert_eq!(claim_notes(storage, at(5), at(15), 10).await.len(), 1);
    storage
        .dead_letter(notes[0].id, at(6), "410 Gone")
        .await
        .expect("dead_letter()");
    storage
        .dead_letter(notes[1].id, at(6), "late")
        .await
        .expect("dead_letter() of a delivered notification");
    let after = outbox_of(storage, &p).await;
    assert_eq!(
        after[0],
        OutboxEntry {
            attempts: 2,
            last_error: Some("410 Gone".into()),
            dead_at: Some(at(6)),
            ..notes[0].clone()
        },
        "a dead letter counts its last attempt, keeps the error and says when it died"
    );
    assert_eq!(after[1].delivered_at, Some(at(1)));
    assert_eq!(
        after[1].dead_at, None,
        "a delivered notification is left as it is"
    );
    assert!(
        claim_notes(storage, at(100_000), at(100_060), 10)
            .await
            .is_empty(),
        "a dead letter is never claimed again"
    );
    assert_eq!(deadline(storage).await, None, "nor is it a deadline");
    assert!(
        storage.release_claims(at(7)).await.is_ok(),
        "release_claims leaves dead letters alone"
    );
    assert!(
        claim_notes(storage, at(100_000), at(100_060), 10)
            .await
            .is_empty()
    );
    match storage
        .dead_letter(NotificationId(999_999), at(6), "x")
        .await
    {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("dead_letter of an unknown id: expected NotFound, got {other:?}"),
    }
}

/// Prunes with `keep`, `before` and a small chunk until nothing more is left.
async fn prune_all(storage: &dyn Storage, keep: u32, before: DateTime<Utc>) -> u64 {
    let mut deleted = 0;
    for _ in 0..10_000 {
        let pruned = storage
            .prune_log(keep, before, 7)
            .await
            .expect("prune_log()");
        deleted += pruned.deleted;
        if !pruned.more {
            return deleted;
        }
    }
    panic!("prune_log says `more` for ever");
}

async fn add_lines(storage: &dyn Storage, ind: Indicator, from: i64, to: i64) -> Indicator {
    let mut c = commit(ind);
    c.log = (from..to)
        .map(|i| line(at(i), LogKind::Update, &format!("line {i}")))
        .collect();
    write(storage, &c, "commit with log lines").await
}

fn messages(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|l| l.message.clone()).collect()
}

fn numbered(from: i64, to: i64) -> Vec<String> {
    (from..to).map(|i| format!("line {i}")).collect()
}

/// `prune_log` keeps the newest `keep` lines of every indicator and none older than
/// `before`, in bounded chunks; lines committed after a pass are pruned by the next.
pub async fn prune_log_keeps_the_newest_lines(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let a = add_lines(storage, new_indicator(&p, "a", at(0)), 0, 30).await;
    let b = add_lines(storage, new_indicator(&p, "b", at(0)), 30, 35).await;
    let deleted = prune_all(storage, 10, at(0)).await;
    assert_eq!(deleted, 20, "a's 20 oldest lines");
    assert_eq!(messages(&log_of(storage, &p, "a").await), numbered(20, 30));
    assert_eq!(
        messages(&log_of(storage, &p, "b").await),
        numbered(30, 35),
        "an indicator within the bound keeps everything"
    );
    let a = add_lines(storage, a, 35, 60).await;
    assert_eq!(prune_all(storage, 10, at(0)).await, 25);
    assert_eq!(
        messages(&log_of(storage, &p, "a").await),
        numbered(50, 60),
        "lines committed after a pass are pruned by the next"
    );
    assert_eq!(
        prune_all(storage, 10, at(0)).await,
        0,
        "nothing more to prune"
    );
    let _b = add_lines(storage, b, 60, 62).await;
    assert_eq!(
        prune_all(storage, 100, at(55)).await,
        10,
        "lines older than `before`: a's 50..55, all of b's older ones"
    );
    assert_eq!(messages(&log_of(storage, &p, "a").await), numbered(55, 60));
    assert_eq!(messages(&log_of(storage, &p, "b").await), numbered(60, 62));
    let _a = a;
}

/// `purge_outbox` deletes, in chunks of `limit`, notifications delivered or dead before
/// `before`; undelivered live ones (pending, retrying, held) are never deleted.
pub async fn purge_outbox_deletes_only_finished_notifications(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut x = new_indicator(&p, "x", at(0));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = (1..=6)
        .map(|i| alert(&p, "x", at(0), at(0), None, &format!("n{i}")))
        .collect();
    cx.notifications
        .push(alert(&p, "x", at(0), at(1000), Some("ERR"), "held"));
    write(storage, &cx, "insert x with 7 notifications").await;
    let notes = outbox_of(storage, &p).await;
    assert_eq!(claim_notes(storage, at(0), at(10), 10).await.len(), 6);
    storage
        .mark_delivered(&[notes[0].id, notes[1].id], at(100))
        .await
        .expect("mark_delivered()");
    storage
        .mark_delivered(&[notes[2].id], at(300))
        .await
        .expect("mark_delivered()");
    storage
        .dead_letter(notes[3].id, at(200), "gone")
        .await
        .expect("dead_letter()");
    storage
        .retry_notification(notes[4].id, at(50), "busy")
        .await
        .expect("retry_notification()");
    let purged = |before, limit| async move {
        storage
            .purge_outbox(before, limit)
            .await
            .expect("purge_outbox()")
    };
    assert_eq!(
        purged(at(100), 10).await,
        0,
        "delivered at 100 is not before 100"
    );
    assert_eq!(purged(at(250), 1).await, 1, "at most `limit`");
    assert_eq!(
        purged(at(250), 10).await,
        2,
        "the other delivered one and the dead one"
    );
    let left: Vec<NotificationId> = outbox_of(storage, &p).await.iter().map(|e| e.id).collect();
    assert_eq!(
        left,
        vec![notes[2].id, notes[4].id, notes[5].id, notes[6].id],
        "delivered later, retrying, leased and held notifications stay"
    );
    assert_eq!(purged(at(1_000_000), 10).await, 1);
    assert_eq!(outbox_of(storage, &p).await.len(), 3);
}

fn engine_with_lease(
    storage: &Arc<dyn Storage>,
    clock: &crate::testing::ManualClock,
    notifier: &crate::testing::RecordingNotifier,
    lease: TimeDelta,
) -> crate::Engine {
    crate::Engine::with_config(
        storage.clone(),
        Arc::new(notifier.clone()),
        Arc::new(clock.clone()),
        crate::EngineConfig {
            lease,
            ..crate::EngineConfig::default()
        },
    )
}

async fn overdue_project(storage: &Arc<dyn Storage>, n: usize) -> Project {
    let p = new_project(storage.as_ref(), "p1").await;
    for i in 0..n {
        let c = commit(due_indicator(&p, &format!("i{i}"), at(10)));
        write(storage.as_ref(), &c, "insert an overdue indicator").await;
    }
    p
}

/// A node claims an expiry backlog and dies before committing. Restarted alone on its
/// storage, it takes its claims back and expires everything at once, not when the lease
/// would have ended.
pub async fn engine_takes_back_its_claims_at_start(storage: &Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(at(20));
    let notifier = crate::testing::RecordingNotifier::new();
    let p = overdue_project(storage, 20).await;
    let lease = crate::EngineConfig::default().lease;
    assert_eq!(
        claim(storage.as_ref(), at(20), at(20) + lease, 15)
            .await
            .len(),
        15,
        "the dead node's claim"
    );
    let engine = engine_with_lease(storage, &clock, &notifier, lease);
    assert_eq!(
        engine.take_back_claims().await.expect("take_back_claims()"),
        15
    );
    let report = engine.tick().await.expect("tick()");
    assert_eq!(
        report.expired, 20,
        "every overdue indicator expires at the restart"
    );
    for ind in list(storage.as_ref(), &p).await {
        assert_eq!(ind.status, Status::Err, "{} is ERR", ind.name);
    }
}

/// Two nodes: A claims a backlog and dies. B expires nothing while A's lease holds and
/// everything once it ends: the handover bound is one lease.
pub async fn engine_claims_pass_to_another_node_within_a_lease(storage: &Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(at(20));
    let notifier = crate::testing::RecordingNotifier::new();
    let lease = TimeDelta::seconds(10);
    let _p = overdue_project(storage, 12).await;
    assert_eq!(claim(storage.as_ref(), at(20), at(30), 100).await.len(), 12);
    let b = engine_with_lease(storage, &clock, &notifier, lease);
    clock.set(at_us(29_999_999));
    assert_eq!(
        b.tick().await.expect("tick()").expired,
        0,
        "A's lease holds"
    );
    clock.set(at(30));
    assert_eq!(
        b.tick().await.expect("tick()").expired,
        12,
        "B expires A's backlog when the lease ends"
    );
}

/// Deliveries that keep failing are retried until `dead_letter_after` since release, then
/// the notification is a dead letter, tried no more.
pub async fn engine_dead_letters_a_notification_that_keeps_failing(storage: &Arc<dyn Storage>) {
    let clock = crate::testing::ManualClock::new(t0());
    let notifier = crate::testing::RecordingNotifier::new();
    let engine = engine_with_lease(storage, &clock, &notifier, TimeDelta::seconds(10));
    let p = new_project(storage.as_ref(), "p1").await;
    let mut x = new_indicator(&p, "x", t0());
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = vec![alert(&p, "x", t0(), t0(), None, "n1")];
    write(storage.as_ref(), &cx, "insert x with a notification").await;
    notifier.set_failing(true);
    let bound = engine.config().retention.dead_letter_after;
    let mut dead = 0;
    let mut failed = 0;
    for _ in 0..200 {
        let report = engine.tick().await.expect("tick()");
        failed += report.failed;
        dead += report.dead;
        if dead > 0 {
            break;
        }
        match deadline(storage.as_ref()).await {
            Some(next) => clock.set(next),
            None => break,
        }
    }
    assert_eq!(dead, 1, "given up once");
    assert!(failed > 5, "retried before: {failed} attempts");
    let entry = &outbox_of(storage.as_ref(), &p).await[0];
    let dead_at = entry.dead_at.expect("dead_at");
    assert!(dead_at >= t0() + bound, "not before the bound: {dead_at}");
    assert_eq!(entry.attempts as usize, failed + 1);
    assert_eq!(deadline(storage.as_ref()).await, None, "tried no more");
    notifier.set_failing(false);
    clock.advance(TimeDelta::days(1));
    assert_eq!(engine.tick().await.expect("tick()").delivered, 0);
}
