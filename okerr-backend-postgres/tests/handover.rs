//! Two nodes on one PostgreSQL database: when one dies holding claims, the other takes
//! them over within one lease (`EngineConfig::lease`, 10 s by default), and a node that
//! lives keeps its claims by renewing them. Skipped without `OKERR_TEST_PG_URL`; failing
//! without it when `OKERR_REQUIRE_PG=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Clock, DeliveryReport, Engine, EngineConfig, LogKind, NewProject, Notifier, OutboxEntry,
    Status, Storage, TextId, UpdateRequest,
};
use okerr_backend_postgres::PostgresStorage;

/// A notifier that never finishes: the node is stuck mid-delivery, then dies.
#[derive(Debug)]
struct Hangs;

#[async_trait]
impl Notifier for Hangs {
    async fn deliver(&self, _batch: &[OutboxEntry]) -> DeliveryReport {
        std::future::pending().await
    }
}

async fn two_nodes() -> Option<(Arc<dyn Storage>, Arc<dyn Storage>)> {
    let url = common::pg_url()?;
    let schema = common::fresh_schema();
    let a = Arc::new(common::storage_in(&url, &schema).await) as Arc<dyn Storage>;
    let b = Arc::new(
        PostgresStorage::connect_in_schema(&url, &schema)
            .await
            .unwrap(),
    ) as Arc<dyn Storage>;
    Some((a, b))
}

fn node(storage: &Arc<dyn Storage>, notifier: Arc<dyn Notifier>, clock: &ManualClock) -> Engine {
    Engine::with_config(
        storage.clone(),
        notifier,
        Arc::new(clock.clone()),
        // Hundreds of indicators created at once: no autocreate rate limit.
        EngineConfig {
            settings: okerr::Settings::default().unlimited(),
            ..EngineConfig::default()
        },
    )
}

/// Node A claims a backlog of 200 overdue indicators and dies before committing (the
/// claim is taken, nothing else). Node B expires none of them while A's lease holds and
/// every one, once, when it ends: 10 s after A's claim.
#[tokio::test]
async fn a_dead_nodes_expiry_claims_pass_within_one_lease() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    a.create_project(NewProject::new("p", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let node_b = node(&b, Arc::new(RecordingNotifier::new()), &clock);
    let reqs = (0..200)
        .map(|i| UpdateRequest::new("p1", format!("i{i}"), "OK"))
        .collect();
    node_b.update_all(reqs).await.unwrap();
    clock.advance(TimeDelta::days(2));
    let crashed_at = clock.now();
    let lease = EngineConfig::default().lease;
    assert_eq!(lease, TimeDelta::seconds(10), "the bound this test states");
    let held = a
        .claim_due(crashed_at, crashed_at + lease, 1000)
        .await
        .unwrap();
    assert_eq!(held.len(), 200, "A's claim of the whole backlog");

    clock.set(crashed_at + lease - TimeDelta::microseconds(1));
    assert_eq!(
        node_b.tick().await.unwrap().expired,
        0,
        "A's lease still holds"
    );
    clock.set(crashed_at + lease);
    assert_eq!(
        node_b.tick().await.unwrap().expired,
        200,
        "B expires the backlog when A's lease ends"
    );
    assert_eq!(
        node_b.tick().await.unwrap().expired,
        0,
        "each expiry happens once"
    );
    let project = b.project_by_textid("p1").await.unwrap().unwrap();
    for ind in b.indicators(project.id).await.unwrap() {
        assert_eq!(ind.status, Status::Err, "{}", ind.name);
        let expiries = b
            .log(project.id, &ind.name, 100)
            .await
            .unwrap()
            .iter()
            .filter(|l| l.kind == LogKind::Update && l.message.contains("No heartbeat"))
            .count();
        assert_eq!(expiries, 1, "{} expired once", ind.name);
    }
}

/// Waits (real time, with a deadline) until the next deadline in storage is `t`.
async fn deadline_becomes(storage: &Arc<dyn Storage>, t: DateTime<Utc>) {
    let started = Instant::now();
    loop {
        let next = storage.next_deadline().await.unwrap();
        if next == Some(t) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the next deadline is {next:?}, not {t}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Node A delivers an alert and hangs: while it lives it renews its claim, so B does not
/// deliver the alert a second time even after A's first lease ended. Then A dies: B
/// delivers the alert once, within one lease of A's last renewal.
#[tokio::test]
async fn a_live_node_renews_its_delivery_claims_and_a_dead_one_hands_them_over() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let ops = okerr::Email::parse("ops@example.com").unwrap();
    a.create_project(NewProject::new("p", TextId::parse("p1").unwrap()).with_member(ops))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let recorded = RecordingNotifier::new();
    let node_a = node(&a, Arc::new(Hangs), &clock);
    let node_b = node(&b, Arc::new(recorded.clone()), &clock);
    let lease = node_a.config().lease;
    node_b
        .update(UpdateRequest::new("p1", "web", "OK"))
        .await
        .unwrap();
    node_b
        .update(UpdateRequest::new("p1", "web", "ERR"))
        .await
        .unwrap();
    let project = a.project_by_textid("p1").await.unwrap().unwrap();
    let alerts = a.outbox(project.id).await.unwrap().len();
    assert!(alerts > 0, "alerts to deliver");

    let claimed_at = clock.now();
    let stuck = {
        let node_a = node_a.clone();
        tokio::spawn(async move { node_a.deliver_released().await })
    };
    // A claimed until claimed_at + lease; the clock moves past it while A renews.
    let first_end = claimed_at + lease;
    deadline_becomes(&a, first_end).await;
    clock.set(first_end - TimeDelta::seconds(1));
    // A renews every third of the lease (real time): to the clock's now plus a lease.
    deadline_becomes(&a, clock.now() + lease).await;
    clock.set(first_end + TimeDelta::seconds(1));
    assert_eq!(
        node_b.tick().await.unwrap().delivered,
        0,
        "past A's first lease end, B leaves the renewed claim alone"
    );
    stuck.abort();
    let _ = stuck.await;
    let last = a.next_deadline().await.unwrap().unwrap();
    clock.set(last - TimeDelta::microseconds(1));
    assert_eq!(node_b.tick().await.unwrap().delivered, 0);
    clock.set(last);
    assert_eq!(
        node_b.tick().await.unwrap().delivered,
        alerts,
        "A is dead: B delivers when its last renewed lease ends"
    );
    assert!(last <= clock.now() && last - claimed_at <= lease * 2_i32);
    assert_eq!(recorded.delivered().len(), alerts, "each delivered once");
}
