//! Who gets an alert, how a recipient's alerts are batched, and messages of several
//! updates that apply all or none.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::TimeDelta;
use common::World;
use okerr::project::Member;
use okerr::{
    Email, Engine, EngineConfig, Payload, Reduction, Secret, Storage, UpdateError, UpdateRequest,
};

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn recipients(w: &World) -> Vec<(String, String)> {
    w.notifier
        .delivered()
        .into_iter()
        .filter_map(|e| match e.notification.payload {
            Payload::Alert { to, message } => Some((to?.to_string(), message)),
            Payload::Webhook { .. } => None,
        })
        .collect()
}

/// An engine on the world's storage, clock and notifier, delivering a recipient's alerts
/// once the newest is 10 s old.
fn batching(w: &World) -> Engine {
    let config = EngineConfig {
        batch_delay: TimeDelta::seconds(10),
        ..EngineConfig::default()
    };
    Engine::with_config(
        w.storage.clone(),
        Arc::new(w.notifier.clone()),
        Arc::new(w.clock.clone()),
        config,
    )
}

#[tokio::test]
async fn every_member_who_wants_alerts_gets_each_alert_once() {
    let w = World::with(|p| {
        p.members.push(Member {
            email: email("dev@example.com"),
            alerts: true,
            summary: false,
        });
        p.members.push(Member {
            email: email("boss@example.com"),
            alerts: false,
            summary: false,
        });
    })
    .await;
    w.push("srv", "OK").await;
    w.engine.tick().await.unwrap();
    let mut got = recipients(&w);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("dev@example.com".to_owned(), "autocreated".to_owned()),
            ("ops@example.com".to_owned(), "autocreated".to_owned()),
        ]
    );
}

#[tokio::test]
async fn without_recipients_an_alert_is_only_logged_and_a_flip_back_still_works() {
    let w = World::with(|p| {
        p.members.clear();
        p.policies[0].reduction = Some(Reduction::parse("5m").unwrap());
    })
    .await;
    w.push("srv", "OK").await;
    let flipped = w.push("srv", "ERR").await;
    assert!(flipped.held.is_empty(), "nothing queued, nothing held");
    let back = w.push("srv", "OK").await;
    assert_eq!(back.status, okerr::Status::Ok);
    assert!(w.outbox().await.is_empty());
    let log = w.log("srv").await;
    assert!(
        log.iter().any(|l| l.starts_with("ALERT:Changed status OK")),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_burst_is_delivered_in_one_batch_once_the_newest_alert_is_settled() {
    let w = World::new().await;
    let engine = batching(&w);
    w.push("a", "OK").await;
    w.clock.advance(TimeDelta::seconds(6));
    w.push("b", "OK").await;
    w.clock.advance(TimeDelta::seconds(6));
    let report = engine.tick().await.unwrap();
    assert_eq!(report.delivered, 0, "the newest alert is 6 s old");
    assert!(w.notifier.delivered().is_empty());
    assert_eq!(
        w.outbox().await.iter().map(|e| e.attempts).max(),
        Some(0),
        "waiting is no failed attempt"
    );
    w.clock.advance(TimeDelta::seconds(3));
    let report = engine.tick().await.unwrap();
    assert_eq!(report.delivered, 0, "9 s");
    w.clock.advance(TimeDelta::seconds(1));
    let report = engine.tick().await.unwrap();
    assert_eq!(report.delivered, 2, "both, together, at 10 s");
    assert_eq!(w.notifier.batches(), vec![2]);
    w.clock.advance(TimeDelta::minutes(5));
    assert_eq!(engine.tick().await.unwrap().delivered, 0, "never twice");
}

#[tokio::test]
async fn a_burst_claimed_in_several_passes_is_still_one_batch() {
    // `Engine::run` claims each alert as soon as it is released: the burst's alerts are
    // claimed and held one by one, and still go out together once the newest settles.
    let w = World::new().await;
    let engine = batching(&w);
    w.push("a", "OK").await;
    assert_eq!(engine.tick().await.unwrap().delivered, 0, "a waits");
    w.clock.advance(TimeDelta::seconds(6));
    w.push("b", "OK").await;
    assert_eq!(engine.tick().await.unwrap().delivered, 0, "b waits");
    w.clock.advance(TimeDelta::seconds(4));
    assert_eq!(
        engine.tick().await.unwrap().delivered,
        0,
        "a is 10 s old, but b, of the same recipient, only 4 s"
    );
    w.clock.advance(TimeDelta::seconds(6));
    assert_eq!(
        engine.tick().await.unwrap().delivered,
        2,
        "both at b + 10 s"
    );
    assert_eq!(w.notifier.batches(), vec![2]);
}

#[tokio::test]
async fn a_steady_stream_of_alerts_still_goes_out_within_the_longest_wait() {
    // An alert every 5 s to one recipient never lets the newest settle for 10 s: each
    // alert still goes out once the oldest of its burst has waited 6 x 10 s, in mails of
    // several alerts.
    let w = World::new().await;
    let engine = batching(&w);
    let longest = TimeDelta::seconds(10) * okerr::BATCH_LONGEST_WAIT;
    for i in 0..40 {
        w.push(&format!("i{i}"), "OK").await;
        let seen = w.notifier.delivered().len();
        engine.tick().await.unwrap();
        let now = okerr::Clock::now(&w.clock);
        for e in &w.notifier.delivered()[seen..] {
            let waited = now - e.notification.release_at;
            assert!(waited <= longest, "an alert waited {waited}");
        }
        w.clock.advance(TimeDelta::seconds(5));
    }
    let now = okerr::Clock::now(&w.clock);
    let delivered = w.notifier.delivered();
    assert!(
        w.outbox()
            .await
            .iter()
            .filter(|e| e.delivered_at.is_none())
            .all(|e| now - e.notification.release_at <= longest),
        "only the alerts of the last minute wait"
    );
    assert!(delivered.len() >= 25, "{} delivered", delivered.len());
    let batches = w.notifier.batches();
    assert!(
        batches.iter().all(|&n| n > 1),
        "each mail carries several alerts: {batches:?}"
    );
}

#[tokio::test]
async fn the_next_deadline_wakes_the_scheduler_when_the_burst_settles() {
    let w = World::new().await;
    let engine = batching(&w);
    w.push("a", "OK").await;
    let created = okerr::Clock::now(&w.clock);
    w.clock.advance(TimeDelta::seconds(2));
    engine.tick().await.unwrap();
    assert_eq!(
        engine.next_deadline().await.unwrap(),
        Some(created + TimeDelta::seconds(10)),
        "the node that holds the burst wakes when it settles"
    );
    let longest = TimeDelta::seconds(10) * okerr::BATCH_LONGEST_WAIT;
    assert_eq!(
        okerr::Storage::next_deadline(&*w.storage).await.unwrap(),
        Some(created + longest),
        "in storage, the alert is held to the burst's cap"
    );
}

#[tokio::test]
async fn a_steady_burst_holds_each_alert_once_to_its_cap() {
    // Each alert of a burst is claimed when released and held to the burst's cap in one
    // renewal: in storage, nothing of the burst falls due again before the cap, however
    // many alerts join it (held to their settling time instead, each would be claimed and
    // given back once per delay).
    let w = World::new().await;
    let engine = batching(&w);
    let longest = TimeDelta::seconds(10) * okerr::BATCH_LONGEST_WAIT;
    w.push("i0", "OK").await;
    let first = okerr::Clock::now(&w.clock);
    for i in 1..11 {
        engine.tick().await.unwrap();
        assert_eq!(
            okerr::Storage::next_deadline(&*w.storage).await.unwrap(),
            Some(first + longest),
            "after alert {i}"
        );
        w.clock.advance(TimeDelta::seconds(5));
        w.push(&format!("i{i}"), "OK").await;
    }
    assert!(
        w.notifier.delivered().is_empty(),
        "the burst has not settled"
    );
    w.clock.set(first + longest);
    assert_eq!(
        engine.tick().await.unwrap().delivered,
        11,
        "all of it at the cap, the newest too"
    );
    assert_eq!(w.notifier.batches(), vec![11]);
}

#[tokio::test]
async fn a_burst_held_by_a_node_that_is_gone_goes_out_at_its_cap() {
    let w = World::new().await;
    let holder = batching(&w);
    w.push("a", "OK").await;
    let created = okerr::Clock::now(&w.clock);
    holder.tick().await.unwrap();
    drop(holder);
    // Another node (or this one restarted) knows nothing of the burst: the alert is
    // claimed by its lease until the cap, then delivered.
    let other = batching(&w);
    w.clock.advance(TimeDelta::seconds(30));
    assert_eq!(other.tick().await.unwrap().delivered, 0, "still held");
    w.clock
        .set(created + TimeDelta::seconds(10) * okerr::BATCH_LONGEST_WAIT);
    assert_eq!(other.tick().await.unwrap().delivered, 1, "at the cap");
}

/// Updates `name` to `status` through `engine` (whose bursts then know the alert).
async fn push_through(engine: &Engine, name: &str, status: &str) {
    engine.update(common::req(name, status)).await.unwrap();
}

#[tokio::test]
async fn a_node_that_batches_does_not_claim_its_own_alert_before_the_burst_may_go_out() {
    // The alert is stored held back until it settles: storage does not hand it out
    // before, so a lone alert is claimed once, and delivered by that claim.
    let w = World::new().await;
    let engine = batching(&w);
    push_through(&engine, "a", "OK").await;
    let created = okerr::Clock::now(&w.clock);
    let settles = created + TimeDelta::seconds(10);
    assert_eq!(w.outbox().await[0].notification.hold_until, Some(settles));
    w.clock.advance(TimeDelta::seconds(2));
    assert_eq!(engine.tick().await.unwrap().delivered, 0);
    assert_eq!(
        okerr::Storage::next_deadline(&*w.storage).await.unwrap(),
        Some(settles),
        "not claimed and held to the cap: nothing handed it out yet"
    );
    w.clock.set(settles);
    assert_eq!(engine.tick().await.unwrap().delivered, 1, "when it settles");
    assert_eq!(w.notifier.batches(), vec![1]);
}

#[tokio::test]
async fn a_node_that_batches_holds_its_burst_until_the_newest_of_its_own_alerts_settles() {
    let w = World::new().await;
    let engine = batching(&w);
    push_through(&engine, "a", "OK").await;
    let first = okerr::Clock::now(&w.clock);
    w.clock.advance(TimeDelta::seconds(6));
    push_through(&engine, "b", "OK").await;
    let longest = TimeDelta::seconds(10) * okerr::BATCH_LONGEST_WAIT;
    let holds: Vec<_> = w
        .outbox()
        .await
        .iter()
        .map(|e| e.notification.hold_until)
        .collect();
    assert_eq!(
        holds,
        vec![Some(first + TimeDelta::seconds(10)), Some(first + longest)],
        "the first until it settles, the later one until the cap"
    );
    w.clock.set(first + TimeDelta::seconds(10));
    assert_eq!(
        engine.tick().await.unwrap().delivered,
        0,
        "a may go, but b, which storage still holds back, is 4 s old"
    );
    w.clock.set(first + TimeDelta::seconds(15));
    assert_eq!(engine.tick().await.unwrap().delivered, 0);
    w.clock.set(first + TimeDelta::seconds(16));
    assert_eq!(
        engine.tick().await.unwrap().delivered,
        2,
        "both at b + 10 s: b, stored held to the cap, is made claimable then"
    );
    assert_eq!(w.notifier.batches(), vec![2]);
}

#[tokio::test]
async fn the_newest_alerts_of_a_steady_burst_go_out_with_it_at_its_cap() {
    // An alert every 5 s: the ones of the last delay before the cap are held back by
    // storage only until the cap, and go out in the same mail as the rest.
    let w = World::new().await;
    let engine = batching(&w);
    let longest = TimeDelta::seconds(10) * okerr::BATCH_LONGEST_WAIT;
    let first = okerr::Clock::now(&w.clock);
    for i in 0..12 {
        w.clock.set(first + TimeDelta::seconds(5 * i));
        push_through(&engine, &format!("i{i}"), "OK").await;
        engine.tick().await.unwrap();
    }
    assert!(w.notifier.delivered().is_empty(), "the burst never settled");
    let holds: Vec<_> = w
        .outbox()
        .await
        .iter()
        .filter_map(|e| e.notification.hold_until)
        .collect();
    assert_eq!(holds.len(), 12);
    assert!(holds.iter().all(|&h| h <= first + longest), "{holds:?}");
    w.clock.set(first + longest);
    assert_eq!(
        engine.tick().await.unwrap().delivered,
        12,
        "all of it at the cap, the one released 5 s before too"
    );
    assert_eq!(w.notifier.batches(), vec![12]);
}

#[tokio::test]
async fn an_alert_that_reduction_releases_later_does_not_hold_back_a_released_one() {
    // okerr batches a recipient's *released* alerts: one that alert reduction holds for
    // 5 minutes is no part of the burst until then.
    let w = World::with(|p| {
        p.policies[0].reduction = Some(Reduction::parse("5m").unwrap());
    })
    .await;
    let engine = batching(&w);
    w.push("held", "OK").await;
    engine
        .update(UpdateRequest {
            policy: Some("Daily".into()),
            ..common::req("quick", "OK")
        })
        .await
        .unwrap();
    // The alerts of the creations (reduction holds the one of `held` too) go first.
    w.clock.advance(TimeDelta::seconds(400));
    engine.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert!(w.outbox().await.iter().all(|e| e.delivered_at.is_some()));
    let created = w.notifier.delivered().len();
    push_through(&engine, "held", "ERR").await;
    push_through(&engine, "quick", "ERR").await;
    w.clock.advance(TimeDelta::seconds(10));
    assert_eq!(engine.tick().await.unwrap().delivered, 1, "quick, settled");
    assert_eq!(
        w.notifier.delivered()[created]
            .notification
            .indicator
            .as_str(),
        "quick"
    );
    w.clock.advance(TimeDelta::seconds(290));
    assert_eq!(
        engine.tick().await.unwrap().delivered,
        0,
        "held, released, settling"
    );
    w.clock.advance(TimeDelta::seconds(10));
    assert_eq!(engine.tick().await.unwrap().delivered, 1, "held, settled");
}

#[tokio::test]
async fn a_message_of_updates_applies_all_or_none() {
    let w = World::new().await;
    w.push("a", "ERR").await;
    w.push("b", "ERR").await;
    let mut project = w.project.clone();
    project.policies[0].secret = Some(Secret::parse("s3cret").unwrap());
    w.storage.save_project(&project).await.unwrap();
    let update = |name: &str, status: &str, secret: &str| UpdateRequest {
        secret: Some(secret.to_owned()),
        ..UpdateRequest::new("p1", name, status)
    };
    let refused = w
        .engine
        .update_all(vec![
            update("a", "OK", "s3cret"),
            update("b", "OK", "wrong"),
        ])
        .await
        .unwrap_err();
    assert_eq!((refused.index, refused.applied), (1, 0));
    assert!(
        matches!(refused.error, UpdateError::BadSecret),
        "{:?}",
        refused.error
    );
    assert_eq!(
        w.indicator("a").await.unwrap().status,
        okerr::Status::Err,
        "the first update was not stored"
    );
    let outcomes = w
        .engine
        .update_all(vec![
            update("a", "OK", "s3cret"),
            update("b", "OK", "s3cret"),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(w.indicator("a").await.unwrap().status, okerr::Status::Ok);
    assert_eq!(w.indicator("b").await.unwrap().status, okerr::Status::Ok);
}

#[tokio::test]
async fn a_message_creating_more_indicators_than_the_limit_allows_stores_none() {
    let w = World::with(|p| p.max_indicators = Some(2)).await;
    w.push("old", "OK").await;
    let refused = w
        .engine
        .update_all(vec![
            UpdateRequest::new("p1", "new1", "OK"),
            UpdateRequest::new("p1", "new2", "OK"),
        ])
        .await
        .unwrap_err();
    assert_eq!(refused.index, 1, "{:?}", refused.error);
    assert!(
        w.indicator("new1").await.is_none(),
        "the first was not stored"
    );
    w.engine
        .update_all(vec![
            UpdateRequest::new("p1", "old", "ERR"),
            UpdateRequest::new("p1", "new1", "OK"),
        ])
        .await
        .unwrap();
    assert!(w.indicator("new1").await.is_some());
}

/// A notifier whose deliveries never end (a relay that accepts the connection and then
/// says nothing).
#[derive(Debug)]
struct Stuck;

#[async_trait::async_trait]
impl okerr::Notifier for Stuck {
    async fn deliver(&self, _batch: &[okerr::OutboxEntry]) -> okerr::DeliveryReport {
        std::future::pending().await
    }
}

// Tokio's paused clock stands in for the wait: the timeout fires without sleeping.
#[tokio::test(start_paused = true)]
async fn a_delivery_that_outlasts_the_delivery_timeout_is_cut_off_and_tried_again() {
    let w = World::new().await;
    let engine = Engine::new(
        w.storage.clone(),
        Arc::new(Stuck),
        Arc::new(w.clock.clone()),
    );
    w.push("srv", "OK").await;
    let report = engine.tick().await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 1));
    let entry = &w.outbox().await[0];
    assert_eq!(entry.attempts, 1);
    assert!(entry.delivered_at.is_none());
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("longer than 60s"),
        "{entry:?}"
    );
}

/// A message that names one indicator several times (created, flipped, flipped back) is
/// stored as one commit of that indicator, with what the same updates store one after the
/// other: the same final state, log lines and outbox (an alert that a later update of the
/// message cancels is not stored).
#[tokio::test]
async fn a_message_naming_an_indicator_twice_stores_what_the_updates_store_one_by_one() {
    let statuses = ["OK", "ERR", "OK", "ERR"];
    let one_by_one = World::new().await;
    for status in statuses {
        one_by_one
            .engine
            .update(UpdateRequest::new("p1", "a", status))
            .await
            .unwrap();
    }
    let message = World::new().await;
    let outcomes = message
        .engine
        .update_all(
            statuses
                .iter()
                .map(|s| UpdateRequest::new("p1", "a", *s))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(outcomes.len(), statuses.len());

    let merged = message.indicator("a").await.unwrap();
    assert_eq!(merged.version, 1, "one commit for the whole message");
    let mut sequential = one_by_one.indicator("a").await.unwrap();
    sequential.version = merged.version;
    assert_eq!(merged, sequential);
    assert_eq!(message.log("a").await, one_by_one.log("a").await);
    let notifications = |outbox: Vec<okerr::OutboxEntry>| {
        outbox
            .into_iter()
            .map(|e| e.notification)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        notifications(message.outbox().await),
        notifications(one_by_one.outbox().await)
    );
}
