//! Two nodes on one PostgreSQL database, each with the real `okerr_checks::Checker` as
//! its sensor, run each due active check once: their scheduler passes race on the same
//! claims, and an HTTP server of the test on 127.0.0.1 counts one request per indicator
//! and period. Skipped without `OKERR_TEST_PG_URL`; failing without it when
//! `OKERR_REQUIRE_PG=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use okerr::testing::ManualClock;
use okerr::{
    Action, Engine, EngineConfig, IndicatorName, NewProject, OutboundNetworks, Status, Storage,
    TextId,
};
use okerr_backend_postgres::PostgresStorage;
use okerr_checks::{CheckConfig, Checker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server answering 200 to everything, counting the requests.
async fn counting_peer() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = tcp
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, count)
}

fn node(storage: Arc<dyn Storage>, clock: &ManualClock) -> Engine {
    let checker = Checker::new(CheckConfig {
        outbound: OutboundNetworks::everything(),
        system_roots: false,
        ..CheckConfig::default()
    })
    .unwrap();
    Engine::builder(storage, Arc::new(clock.clone()))
        .config(EngineConfig {
            settings: okerr::Settings::default().unlimited(),
            // Small claims, so that the two nodes take turns within one pass.
            batch: 7,
            ..EngineConfig::default()
        })
        .sensor(Arc::new(checker))
        .build()
}

/// Two nodes on a fresh schema with `N` httpstatus indicators (period 60 s) against a
/// counting peer, all due now.
async fn world() -> Option<(
    Engine,
    Engine,
    ManualClock,
    okerr::Project,
    Arc<AtomicUsize>,
)> {
    let url = common::pg_url()?;
    let schema = common::fresh_schema();
    let a: Arc<dyn Storage> = Arc::new(common::storage_in(&url, &schema).await);
    let b: Arc<dyn Storage> = Arc::new(
        PostgresStorage::connect_in_schema(&url, &schema)
            .await
            .unwrap(),
    );
    let project = a
        .create_project(NewProject::new("web", TextId::parse("p1").unwrap()))
        .await
        .unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap());
    let (node_a, node_b) = (node(a, &clock), node(b, &clock));
    node_a
        .edit_project(project.id, |p| {
            for policy in &mut p.policies {
                policy.period = okerr::Interval::from_secs(60);
            }
            Ok::<_, String>(())
        })
        .await
        .unwrap();
    let (port, requests) = counting_peer().await;
    let target = format!("http://127.0.0.1:{port}/");
    for i in 0..N {
        let name = format!("site{i}");
        node_a
            .create_indicator("p1", &name, "user ops", "127.0.0.1")
            .await
            .unwrap();
        node_a
            .act_all(
                "p1",
                &IndicatorName::parse(&name).unwrap(),
                &[
                    Action::Method("httpstatus".into()),
                    Action::Arg("url".into(), target.clone()),
                    Action::Maintenance(false),
                ],
                "user ops",
            )
            .await
            .unwrap();
    }
    Some((node_a, node_b, clock, project, requests))
}

const N: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_run_each_due_check_once() {
    let Some((node_a, node_b, clock, project, requests)) = world().await else {
        return;
    };
    for round in 1..=3 {
        let (ra, rb) = tokio::join!(node_a.tick(), node_b.tick());
        let (ra, rb) = (ra.unwrap().checks, rb.unwrap().checks);
        eprintln!("round {round}: node A started {ra} checks, node B {rb}");
        let started = ra + rb;
        let settle = async {
            tokio::join!(node_a.checks_settled(), node_b.checks_settled());
        };
        tokio::time::timeout(Duration::from_secs(30), settle)
            .await
            .expect("checks settle");
        assert_eq!(started, N, "round {round}: every due check started once");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            N * round,
            "round {round}: one request per indicator"
        );
        // Nothing is due again before the period.
        let (ra, rb) = tokio::join!(node_a.tick(), node_b.tick());
        assert_eq!(ra.unwrap().checks + rb.unwrap().checks, 0);
        clock.advance(TimeDelta::seconds(60));
    }
    let stored = node_b.storage().indicators(project.id).await.unwrap();
    assert_eq!(stored.len(), N);
    for ind in stored {
        assert_eq!(ind.status, Status::Ok, "{}", ind.name);
        assert_eq!(ind.details, "Got status code 200 OK as expected");
        let log = node_b
            .storage()
            .log(project.id, &ind.name, 100)
            .await
            .unwrap();
        let checks = log
            .iter()
            .filter(|l| l.message.starts_with("okerr-process: confirmed OK"))
            .count();
        assert_eq!(checks, 3, "{}: one result per period", ind.name);
    }
}

/// A node that claimed the checks and died before running them holds them for its lease
/// (`lease + check_timeout + CHECK_MARGIN`, 35 s by default); then the other node runs
/// each of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_check_claims_pass_after_the_lease() {
    let Some((node_a, node_b, clock, _project, requests)) = world().await else {
        return;
    };
    let config = node_a.config();
    let timeout = TimeDelta::from_std(config.check_timeout).unwrap();
    let lease = config.lease + timeout + okerr::engine::CHECK_MARGIN;
    assert_eq!(lease, TimeDelta::seconds(35), "the bound this test states");
    let now = okerr::Clock::now(&clock);
    // Node A claims like its scheduler would, then dies.
    let held = node_a
        .storage()
        .claim_due(now, now + lease, 1000)
        .await
        .unwrap();
    assert_eq!(held.len(), N);
    drop(node_a);
    assert_eq!(node_b.tick().await.unwrap().checks, 0, "A's claims hold");
    clock.advance(lease - TimeDelta::seconds(1));
    assert_eq!(node_b.tick().await.unwrap().checks, 0, "still held");
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(node_b.tick().await.unwrap().checks, N, "taken over");
    tokio::time::timeout(Duration::from_secs(30), node_b.checks_settled())
        .await
        .expect("checks settle");
    assert_eq!(requests.load(Ordering::SeqCst), N);
    assert_eq!(node_b.tick().await.unwrap().checks, 0);
}
