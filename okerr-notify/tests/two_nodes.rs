//! Two nodes on one PostgreSQL database mail the alerts of one burst to a real relay
//! (aiosmtpd): every alert reaches each recipient exactly once. Skipped without
//! `OKERR_TEST_PG_URL` or `OKERR_TEST_AIOSMTPD` unless `OKERR_REQUIRE_PG=1` /
//! `OKERR_REQUIRE_SMTP=1`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use okerr::testing::ManualClock;
use okerr::{
    Email, Engine, EngineConfig, Interval, Member, NewProject, Storage, TextId, UpdateRequest,
};
use okerr_backend_postgres::{PostgresStorage, sqlx};
use okerr_notify::{Dispatcher, EmailNotifier, MailConfig, WebhookNotifier};
use okerr_test_support::mail::{SmtpSink, aiosmtpd_python, free_port, parse};
use url::Url;

fn pg_url() -> Option<String> {
    okerr_test_support::value_from_env("OKERR_TEST_PG_URL", "OKERR_REQUIRE_PG", "ensure_postgres")
}

/// A node: its own pool on the shared schema, and an engine mailing through `relay`.
async fn node(url: &str, schema: &str, clock: &ManualClock, relay: &str) -> Engine {
    let storage: Arc<dyn Storage> = Arc::new(
        PostgresStorage::connect_in_schema(url, schema)
            .await
            .unwrap(),
    );
    let clock: Arc<dyn okerr::Clock> = Arc::new(clock.clone());
    let public = Url::parse("https://okerr.example.net/").unwrap();
    let mail = MailConfig::new(relay, "okerr@example.net", public).unwrap();
    let email = EmailNotifier::new(mail, storage.clone(), clock.clone());
    let webhook = WebhookNotifier::new(
        std::time::Duration::from_secs(3),
        okerr::OutboundNetworks::default(),
    )
    .unwrap();
    let config = EngineConfig {
        batch_delay: TimeDelta::seconds(10),
        batch: 16, // several claims per burst, so that both nodes take part
        ..EngineConfig::default()
    };
    Engine::with_config(
        storage,
        Arc::new(Dispatcher::new(Some(email), webhook)),
        clock,
        config,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_mail_each_alert_to_each_recipient_once() {
    let Some(url) = pg_url() else { return };
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let sink = SmtpSink::start(&python, free_port());
    let schema = format!("okerr_notify_t_{}", std::process::id());
    let admin = PostgresStorage::connect(&url).await.unwrap();
    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(drop.clone()))
        .execute(admin.pool())
        .await
        .unwrap();
    let first = PostgresStorage::connect_in_schema(&url, &schema)
        .await
        .unwrap();
    first.migrate().await.unwrap();
    let mut p = NewProject::new("p", TextId::parse("p1").unwrap());
    p.policies[0].period = Interval::from_secs(60);
    p.policies[0].patience = Interval::from_secs(0);
    let project = first.create_project(p).await.unwrap();

    let clock = ManualClock::at_epoch();
    let (one, two) = (
        node(&url, &schema, &clock, &sink.relay()).await,
        node(&url, &schema, &clock, &sink.relay()).await,
    );
    let names: Vec<String> = (0..30).map(|i| format!("host{i:02}")).collect();
    for name in &names {
        one.update(UpdateRequest::new("p1", name, "OK"))
            .await
            .unwrap();
    }
    // The members come after the autocreate alerts: only the expiries are mailed.
    let mut stored = first.project(project.id).await.unwrap().unwrap();
    for email in ["a@example.com", "b@example.com"] {
        stored.members.push(Member {
            email: Email::parse(email).unwrap(),
            alerts: true,
            summary: false,
        });
    }
    first.save_project(&stored).await.unwrap();

    // Both nodes expire and deliver at the same time, pass after pass.
    let mut delivered = 0;
    let mut by_node = (0, 0);
    for _ in 0..8 {
        clock.advance(TimeDelta::seconds(61));
        let (a, b) = tokio::join!(one.tick(), two.tick());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.failed, b.failed), (0, 0));
        delivered += a.delivered + b.delivered;
        by_node = (by_node.0 + a.delivered, by_node.1 + b.delivered);
    }
    eprintln!("delivered by node: {by_node:?}");
    assert_eq!(delivered, 60, "30 expiries × 2 recipients");

    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mails = sink.wait_for(1);
    for raw in &mails {
        let mail = parse(raw);
        for line in mail
            .text
            .lines()
            .filter(|l| l.contains("  Changed status OK ("))
        {
            let name = line.split("  ").nth(1).unwrap_or_default();
            *seen.entry((mail.to.clone(), name.to_owned())).or_default() += 1;
        }
    }
    for to in ["a@example.com", "b@example.com"] {
        for name in &names {
            let key = (to.to_owned(), format!("{name}@p1"));
            assert_eq!(seen.get(&key), Some(&1), "{key:?} in {seen:?}");
        }
    }
    assert_eq!(seen.len(), 60, "nothing else: {seen:?}");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(admin.pool())
        .await
        .unwrap();
}
