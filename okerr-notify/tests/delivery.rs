//! Alerts and webhooks delivered to real peers (aiosmtpd, an HTTP listener) by an engine
//! on a manual clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use common::{Hooks, webhook_endpoint};
use okerr::testing::ManualClock;
use okerr::{
    Email, Engine, EngineConfig, IndicatorName, Interval, MemoryStorage, NewProject, Project,
    Reduction, Storage, TextId, UpdateRequest,
};
use okerr_backend_sqlite::SqliteStorage;
use okerr_notify::{Dispatcher, EmailNotifier, MailConfig, WebhookNotifier};
use okerr_test_support::mail::{SmtpSink, aiosmtpd_python, free_port, parse};
use url::Url;

const PUBLIC: &str = "https://okerr.example.net/";

/// A project `p1` whose Default policy has a 2 s period and 1 s patience, with member
/// ops@example.com who wants alerts.
fn project(edit: impl FnOnce(&mut NewProject)) -> NewProject {
    let mut p = NewProject::new("mail test", TextId::parse("p1").unwrap())
        .with_member(Email::parse("ops@example.com").unwrap());
    p.policies[0].period = Interval::from_secs(2);
    p.policies[0].patience = Interval::from_secs(1);
    edit(&mut p);
    p
}

/// An engine that mails through `relay` and batches a recipient's alerts for 10 s.
fn engine(storage: Arc<dyn Storage>, clock: &ManualClock, relay: &str) -> Engine {
    let clock: Arc<dyn okerr::Clock> = Arc::new(clock.clone());
    let mail = MailConfig::new(
        relay,
        "okerr <okerr@example.net>",
        Url::parse(PUBLIC).unwrap(),
    )
    .unwrap();
    let email = EmailNotifier::new(mail, storage.clone(), clock.clone());
    let webhook = WebhookNotifier::new(Duration::from_secs(3), common::loopback()).unwrap();
    let config = EngineConfig {
        batch_delay: TimeDelta::seconds(10),
        ..EngineConfig::default()
    };
    Engine::with_config(
        storage,
        Arc::new(Dispatcher::new(Some(email), webhook)),
        clock,
        config,
    )
}

/// A relay (aiosmtpd), a memory store holding the project `edit` made of [`project`], and
/// an engine that mails through the relay; `None` (the test skips) without aiosmtpd.
async fn mailing(edit: impl FnOnce(&mut NewProject)) -> Option<Mailing> {
    let python = aiosmtpd_python()?;
    let sink = SmtpSink::start(&python, free_port());
    let storage = Arc::new(MemoryStorage::new());
    let p = storage.create_project(project(edit)).await.unwrap();
    let clock = ManualClock::at_epoch();
    let engine = engine(storage.clone(), &clock, &sink.relay());
    Some(Mailing {
        sink,
        storage,
        p,
        clock,
        engine,
    })
}

struct Mailing {
    sink: SmtpSink,
    storage: Arc<MemoryStorage>,
    p: Project,
    clock: ManualClock,
    engine: Engine,
}

async fn push(engine: &Engine, name: &str, status: &str) {
    engine
        .update(UpdateRequest::new("p1", name, status))
        .await
        .unwrap();
}

/// Ticks with the clock moved by `secs` first; returns (delivered, failed).
async fn tick_after(engine: &Engine, clock: &ManualClock, secs: i64) -> (usize, usize) {
    clock.advance(TimeDelta::seconds(secs));
    let r = engine.tick().await.unwrap();
    (r.delivered, r.failed)
}

async fn pending(storage: &dyn Storage, p: &Project) -> usize {
    let outbox = storage.outbox(p.id).await.unwrap();
    outbox.iter().filter(|e| e.delivered_at.is_none()).count()
}

/// Gives the project its member only now, so that the autocreate alerts of the set-up
/// went to nobody.
async fn add_member(storage: &dyn Storage, p: &Project) {
    let mut p = storage.project(p.id).await.unwrap().unwrap();
    p.members.push(okerr::Member {
        email: Email::parse("ops@example.com").unwrap(),
        alerts: true,
        summary: false,
    });
    storage.save_project(&p).await.unwrap();
}

#[tokio::test]
async fn a_silent_indicator_sends_exactly_one_mail_with_its_text_and_link() {
    let Some(Mailing {
        sink,
        storage,
        p,
        clock,
        engine,
    }) = mailing(|p| p.members.clear()).await
    else {
        return;
    };
    push(&engine, "test:apache2", "OK").await;
    push(&engine, "db", "OK").await;
    add_member(&*storage, &p).await;

    // db reports every second; test:apache2 (period 2 s, patience 1 s) never again.
    let mut delivered_at = Vec::new();
    for second in 1..=40 {
        push(&engine, "db", "OK").await;
        let (delivered, failed) = tick_after(&engine, &clock, 1).await;
        assert_eq!(failed, 0);
        delivered_at.extend(std::iter::repeat_n(second, delivered));
    }
    assert_eq!(
        delivered_at.len(),
        1,
        "exactly one alert delivered: {delivered_at:?}"
    );
    assert!(
        delivered_at[0] >= 13,
        "expired at 3 s, then mailed once the burst settled for 10 s: {delivered_at:?}"
    );
    let mails = sink.wait_for(1);
    assert_eq!(mails.len(), 1, "exactly one mail");
    let mail = parse(&mails[0]);
    assert_eq!(mail.to, "ops@example.com");
    assert_eq!(mail.from, "okerr@example.net");
    assert_eq!(mail.subject, "okerr alert");
    assert!(
        mail.text.contains("test:apache2@p1  Changed status OK (")
            && mail.text.contains(") -> ERR (No heartbeat)"),
        "{}",
        mail.text
    );
    let link = "https://okerr.example.net/i/p1/test:apache2";
    assert!(mail.text.contains(link), "{}", mail.text);
    assert!(
        mail.html.contains(&format!("href=\"{link}\"")),
        "{}",
        mail.html
    );
    assert!(
        !mail.text.contains("db@p1"),
        "only the silent indicator: {}",
        mail.text
    );
    let summary = "p1: total: 2, OK: 1, ATT: 1, ERR: 1, silent: 0 maintenance: 0, disabled: 0";
    assert!(mail.text.contains(summary), "{}", mail.text);
    assert!(mail.html.contains(summary), "{}", mail.html);
    assert_eq!(pending(&*storage, &p).await, 0);
}

#[tokio::test]
async fn a_flip_and_flip_back_inside_the_reduction_delay_sends_nothing() {
    let reduction = Reduction::parse("5m").unwrap();
    let Some(Mailing {
        sink,
        storage,
        p,
        clock,
        engine,
    }) = mailing(|p| {
        p.members.clear();
        p.policies[0].period = Interval::from_secs(3600);
        p.policies[0].reduction = Some(reduction);
    })
    .await
    else {
        return;
    };
    push(&engine, "srv", "OK").await;
    add_member(&*storage, &p).await;

    push(&engine, "srv", "ERR").await;
    assert_eq!(
        tick_after(&engine, &clock, 60).await,
        (0, 0),
        "held for 5 min"
    );
    push(&engine, "srv", "OK").await;
    for _ in 0..4 {
        assert_eq!(tick_after(&engine, &clock, 300).await, (0, 0));
    }
    assert!(
        sink.messages().is_empty(),
        "the flip and its flip-back cancel out"
    );
    assert_eq!(pending(&*storage, &p).await, 0, "both alerts cancelled");

    // A flip that stands is mailed once the delay and the batch delay passed.
    push(&engine, "srv", "ERR").await;
    assert_eq!(
        tick_after(&engine, &clock, 300).await,
        (0, 0),
        "released, settling"
    );
    assert_eq!(tick_after(&engine, &clock, 10).await, (1, 0));
    let mails = sink.wait_for(1);
    assert_eq!(mails.len(), 1);
    assert!(
        parse(&mails[0])
            .text
            .contains("srv@p1  Changed status OK (")
    );
}

#[tokio::test]
async fn alerts_wait_for_a_dead_relay_across_a_restart_and_arrive_once() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("okerr.db").display());
    let port = free_port();
    let relay = format!("smtp://127.0.0.1:{port}");
    let clock = ManualClock::at_epoch();
    let name = IndicatorName::parse("srv").unwrap();

    let storage = Arc::new(SqliteStorage::connect(&url).await.unwrap());
    storage.migrate().await.unwrap();
    let p = storage
        .create_project(project(|p| {
            p.policies[0].period = Interval::from_secs(3600)
        }))
        .await
        .unwrap();
    let engine1 = engine(storage.clone(), &clock, &relay);
    push(&engine1, "srv", "OK").await;
    assert_eq!(
        tick_after(&engine1, &clock, 10).await,
        (0, 1),
        "the relay is down"
    );
    assert_eq!(
        tick_after(&engine1, &clock, 5).await,
        (0, 1),
        "again after 5 s"
    );
    let entry = &storage.outbox(p.id).await.unwrap()[0];
    assert_eq!(entry.attempts, 2);
    assert!(entry.last_error.is_some());
    assert!(entry.delivered_at.is_none());
    drop(engine1);
    storage.close().await;

    // The server restarts; the relay comes back.
    let sink = SmtpSink::start(&python, port);
    let storage = Arc::new(SqliteStorage::connect(&url).await.unwrap());
    let engine2 = engine(storage.clone(), &clock, &relay);
    assert!(storage.indicator(p.id, &name).await.unwrap().is_some());
    assert_eq!(
        tick_after(&engine2, &clock, 5).await,
        (0, 0),
        "backoff: 10 s"
    );
    assert_eq!(tick_after(&engine2, &clock, 5).await, (1, 0));
    assert_eq!(tick_after(&engine2, &clock, 600).await.0, 0);
    let mails = sink.wait_for(1);
    assert_eq!(mails.len(), 1, "delivered once");
    assert!(parse(&mails[0]).text.contains("srv@p1  autocreated"));
    assert_eq!(pending(&*storage, &p).await, 0);
}

#[tokio::test]
async fn the_webhook_gets_okerrs_json_in_the_form_field_data_and_is_retried() {
    let hooks = Hooks::default();
    *hooks.fail_first.lock().unwrap() = 1;
    let url = webhook_endpoint(hooks.clone()).await;
    let storage = Arc::new(MemoryStorage::new());
    let p = storage
        .create_project(project(|p| {
            p.members.clear();
            p.policies[0].url_statuschange = Some(url);
        }))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    // No relay is needed for webhooks.
    let webhook = WebhookNotifier::new(Duration::from_secs(3), common::loopback()).unwrap();
    let engine = Engine::new(
        storage.clone(),
        Arc::new(Dispatcher::new(None, webhook)),
        Arc::new(clock.clone()),
    );
    push(&engine, "srv", "OK").await;
    push(&engine, "srv", "ERR").await;
    assert_eq!(
        tick_after(&engine, &clock, 0).await,
        (0, 1),
        "the endpoint answers 500"
    );
    assert_eq!(
        tick_after(&engine, &clock, 5).await,
        (1, 0),
        "retried after 5 s"
    );
    assert_eq!(tick_after(&engine, &clock, 600).await, (0, 0));
    let data = hooks.data();
    assert_eq!(data.len(), 1);
    let d = &data[0];
    assert_eq!(d["type"], "status_change");
    assert_eq!(d["textid"], "p1");
    assert_eq!(d["name"], "srv");
    assert_eq!(
        (d["old"].as_str(), d["new"].as_str()),
        (Some("OK"), Some("ERR"))
    );
    assert_eq!(d["unixtime"], 1_735_689_600);
    assert_eq!(d["time"], "2025-01-01 00:00:00 UTC (+0000)");
    assert_eq!(pending(&*storage, &p).await, 0);
}

#[tokio::test]
async fn an_alert_stored_without_a_recipient_goes_to_every_member_who_wants_alerts() {
    let Some(Mailing {
        sink,
        storage,
        p,
        clock,
        engine,
    }) = mailing(|p| {
        p.members.clear();
        p.policies[0].period = Interval::from_secs(3600);
    })
    .await
    else {
        return;
    };
    push(&engine, "srv", "OK").await;
    for (email, alerts) in [
        ("a@example.com", true),
        ("b@example.com", true),
        ("c@example.com", false),
    ] {
        let mut project = storage.project(p.id).await.unwrap().unwrap();
        project.members.push(okerr::Member {
            email: Email::parse(email).unwrap(),
            alerts,
            summary: false,
        });
        storage.save_project(&project).await.unwrap();
    }
    // As an outbox written before alerts had recipients holds it.
    let name = IndicatorName::parse("srv").unwrap();
    let indicator = storage.indicator(p.id, &name).await.unwrap().unwrap();
    let legacy = okerr::Notification {
        project: p.id,
        textid: p.textid.clone(),
        indicator: name,
        created: okerr::Clock::now(&clock),
        release_at: okerr::Clock::now(&clock),
        reduction_key: None,
        hold_until: None,
        payload: okerr::Payload::Alert {
            to: None,
            message: "Changed status OK (1m) -> ERR (No heartbeat)".to_owned(),
        },
    };
    let commit = okerr::Commit {
        indicator,
        log: Vec::new(),
        notifications: vec![legacy],
        cancel: Vec::new(),
        project_version: None,
    };
    storage.commit(&commit).await.unwrap();
    assert_eq!(tick_after(&engine, &clock, 1).await, (1, 0));
    let mut to: Vec<String> = sink.wait_for(2).iter().map(|m| parse(m).to).collect();
    to.sort();
    assert_eq!(to, ["a@example.com", "b@example.com"]);
    assert_eq!(pending(&*storage, &p).await, 0);
}

#[tokio::test]
async fn a_mail_of_released_alerts_keeps_the_held_ones_for_later() {
    let Some(Mailing {
        sink,
        storage,
        p,
        clock,
        engine,
    }) = mailing(|p| {
        p.members.clear();
        p.policies[0].period = Interval::from_secs(3600);
        p.policies[0].reduction = Some(Reduction::parse("5m").unwrap());
        p.policies[1].period = Interval::from_secs(3600); // Daily: no reduction
    })
    .await
    else {
        return;
    };
    push(&engine, "held", "OK").await;
    let mut quick = UpdateRequest::new("p1", "quick", "OK");
    quick.policy = Some("Daily".to_owned());
    engine.update(quick).await.unwrap();
    add_member(&*storage, &p).await;

    push(&engine, "held", "ERR").await; // held for 5 minutes
    push(&engine, "quick", "ERR").await; // released at once
    assert_eq!(
        tick_after(&engine, &clock, 10).await,
        (1, 0),
        "the released one"
    );
    let first = parse(&sink.wait_for(1)[0]);
    assert!(
        first.text.contains("quick@p1  Changed status"),
        "{}",
        first.text
    );
    assert!(!first.text.contains("held@p1"), "{}", first.text);
    assert_eq!(
        pending(&*storage, &p).await,
        1,
        "the held alert is still there"
    );

    // Held until 5 min after the flip (at 0 s), then 10 s to settle.
    assert_eq!(
        tick_after(&engine, &clock, 295).await,
        (0, 0),
        "released, settling"
    );
    assert_eq!(tick_after(&engine, &clock, 5).await, (1, 0));
    let mails = sink.wait_for(2);
    assert_eq!(mails.len(), 2);
    let second = parse(&mails[1]);
    assert!(
        second.text.contains("held@p1  Changed status OK ("),
        "{}",
        second.text
    );
    assert_eq!(pending(&*storage, &p).await, 0);
}

#[tokio::test]
async fn the_changes_of_an_indicator_reach_the_webhook_in_order_also_after_a_failure() {
    let hooks = Hooks::default();
    *hooks.fail_first.lock().unwrap() = 1;
    let url = webhook_endpoint(hooks.clone()).await;
    let storage = Arc::new(MemoryStorage::new());
    storage
        .create_project(project(|p| {
            p.members.clear();
            p.policies[0].period = Interval::from_secs(3600);
            p.policies[0].url_statuschange = Some(url);
        }))
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let webhook = WebhookNotifier::new(Duration::from_secs(3), common::loopback()).unwrap();
    let engine = Engine::new(
        storage.clone(),
        Arc::new(Dispatcher::new(None, webhook)),
        Arc::new(clock.clone()),
    );
    push(&engine, "srv", "OK").await;
    for i in 0..10 {
        clock.advance(TimeDelta::seconds(1));
        push(&engine, "srv", if i % 2 == 0 { "ERR" } else { "OK" }).await;
    }
    // The first post gets a 500: all ten wait and go, in order, on the retry.
    assert_eq!(tick_after(&engine, &clock, 0).await, (0, 10));
    assert_eq!(tick_after(&engine, &clock, 5).await, (10, 0));
    let news: Vec<String> = hooks
        .data()
        .iter()
        .map(|d| d["new"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<&str> = (0..10)
        .map(|i| if i % 2 == 0 { "ERR" } else { "OK" })
        .collect();
    assert_eq!(news, expected);
    let times: Vec<i64> = hooks
        .data()
        .iter()
        .map(|d| d["unixtime"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}
