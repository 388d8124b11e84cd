//! The daily summary e-mail through a real SMTP server (aiosmtpd), on a manual clock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{NaiveTime, TimeDelta};
use okerr::testing::ManualClock;
use okerr::{
    Action, Clock, Email, Engine, EngineConfig, IndicatorName, Member, MemoryStorage, NewProject,
    Storage, TextId, UpdateRequest,
};
use okerr_notify::{DailySummary, MailConfig};
use okerr_test_support::mail::{SmtpSink, aiosmtpd_python, free_port, parse};
use url::Url;

fn member(email: &str, summary: bool) -> Member {
    Member {
        email: Email::parse(email).unwrap(),
        alerts: false,
        summary,
    }
}

fn summaries(storage: &Arc<MemoryStorage>, clock: &ManualClock, relay: &str) -> DailySummary {
    let public = Url::parse("https://okerr.example.net/").unwrap();
    let mail = MailConfig::new(relay, "okerr@example.net", public).unwrap();
    let at = NaiveTime::from_hms_opt(6, 0, 0).unwrap();
    DailySummary::new(mail, storage.clone(), Arc::new(clock.clone()), at)
}

#[tokio::test]
async fn each_member_who_asked_gets_one_summary_a_day_of_all_their_projects() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let sink = SmtpSink::start(&python, free_port());
    let storage = Arc::new(MemoryStorage::new());
    let clock = ManualClock::at_epoch(); // 2025-01-01 00:00 UTC
    for (textid, name) in [("web", "Web servers"), ("db", "Databases")] {
        let mut p = NewProject::new(name, TextId::parse(textid).unwrap());
        p.members = vec![
            member("ops@example.com", true),
            member("dev@example.com", false),
        ];
        storage.create_project(p).await.unwrap();
    }
    let engine = Engine::with_config(
        storage.clone(),
        Arc::new(okerr::testing::RecordingNotifier::new()),
        Arc::new(clock.clone()),
        EngineConfig::default(),
    );
    for (name, status) in [("a", "OK"), ("b", "ERR"), ("c", "OK"), ("d", "OK")] {
        let mut req = UpdateRequest::new("web", name, status);
        req.details = Some(format!("{name} {}", "x".repeat(80)));
        engine.update(req).await.unwrap();
    }
    engine
        .update(UpdateRequest::new("db", "main", "OK"))
        .await
        .unwrap();
    let name = |n: &str| IndicatorName::parse(n).unwrap();
    engine
        .act("web", &name("c"), &Action::Disabled(true), "test")
        .await
        .unwrap();
    engine
        .act("web", &name("d"), &Action::Maintenance(true), "test")
        .await
        .unwrap();

    let node1 = summaries(&storage, &clock, &sink.relay());
    let node2 = summaries(&storage, &clock, &sink.relay());
    assert_eq!(node1.send_due().await.unwrap().sent, 0, "before 06:00");
    assert_eq!(
        node1.next_after(clock.now()),
        clock.now() + TimeDelta::hours(6)
    );
    clock.advance(TimeDelta::hours(6));
    assert_eq!(node1.send_due().await.unwrap().sent, 1, "one mail for ops@");
    assert_eq!(
        node2.send_due().await.unwrap().sent,
        0,
        "the other node: already sent"
    );
    assert_eq!(node1.send_due().await.unwrap().sent, 0, "once a day");
    clock.advance(TimeDelta::hours(12));
    assert_eq!(node2.send_due().await.unwrap().sent, 0);

    let mails = sink.wait_for(1);
    assert_eq!(mails.len(), 1);
    let mail = parse(&mails[0]);
    assert_eq!(
        (mail.to.as_str(), mail.subject.as_str()),
        ("ops@example.com", "okerr summary")
    );
    let text = &mail.text;
    assert!(
        text.contains(
            "Web servers (web): total: 4, OK: 2, ATT: 2, ERR: 1, silent: 0 maintenance: 1, disabled: 1"
        ),
        "{text}"
    );
    assert!(text.contains("Databases (db): total: 1"), "{text}");
    assert!(
        text.contains("oldest update 2025-01-01 00:00:00 UTC"),
        "{text}"
    );
    let (web_at, db_at) = (
        text.find("Web servers").unwrap(),
        text.find("Databases").unwrap(),
    );
    assert!(web_at < db_at, "projects in order: {text}");
    let web = &text[web_at..db_at];
    let attention = &web[web.find("ATTENTION").unwrap()..web.find("\nIndicators").unwrap()];
    assert!(attention.contains(" b  b xxx"), "{attention}");
    assert!(
        attention.contains(" d  d xxx"),
        "maintenance needs a look: {attention}"
    );
    assert!(!attention.contains(" a  a xxx"), "{attention}");
    let all = &web[web.find("\nIndicators").unwrap()..];
    assert!(
        all.contains(" a  a xxx") && all.contains(" b  b xxx"),
        "{all}"
    );
    assert!(
        !all.contains(" c  c xxx"),
        "disabled ones are left out: {all}"
    );
    let brief = format!("a {}.. (82)", "x".repeat(41));
    assert_eq!(brief.chars().count(), 50);
    assert!(text.contains(&brief), "details ≤ 50: {text}");
    assert!(text.contains("(updated 6h ago, status since 6h)"), "{text}");
    assert!(
        mail.html
            .contains("href=\"https://okerr.example.net/i/web/b\""),
        "{}",
        mail.html
    );

    clock.advance(TimeDelta::hours(12)); // the next day, 06:00
    assert_eq!(node2.send_due().await.unwrap().sent, 1, "the next day's");
    assert_eq!(node1.send_due().await.unwrap().sent, 0);
    assert_eq!(sink.wait_for(2).len(), 2);
}

#[tokio::test]
async fn a_summary_the_relay_refused_is_tried_again_on_the_next_pass() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let port = free_port();
    let relay = format!("smtp://127.0.0.1:{port}");
    let storage = Arc::new(MemoryStorage::new());
    let clock = ManualClock::at_epoch();
    let mut p = NewProject::new("Web servers", TextId::parse("web").unwrap());
    p.members = vec![member("ops@example.com", true)];
    storage.create_project(p).await.unwrap();
    let node1 = summaries(&storage, &clock, &relay);
    let node2 = summaries(&storage, &clock, &relay);
    clock.advance(TimeDelta::hours(6));
    let report = node1.send_due().await.unwrap();
    assert_eq!((report.sent, report.failed), (0, 1), "the relay is down");
    let sink = SmtpSink::start(&python, port);
    clock.advance(TimeDelta::hours(1));
    let report = node2.send_due().await.unwrap();
    assert_eq!(
        (report.sent, report.failed),
        (1, 0),
        "the second attempt, on another node"
    );
    assert_eq!(
        node1.send_due().await.unwrap(),
        Default::default(),
        "sent: no third"
    );
    assert_eq!(sink.wait_for(1).len(), 1);
    drop(sink);

    // A relay that stays down: three attempts that day, then none.
    clock.advance(TimeDelta::days(1));
    for attempt in 1..=3 {
        let report = node1.send_due().await.unwrap();
        assert_eq!((report.sent, report.failed), (0, 1), "attempt {attempt}");
        clock.advance(TimeDelta::hours(1));
    }
    assert_eq!(
        node2.send_due().await.unwrap(),
        Default::default(),
        "no fourth attempt"
    );
}

#[tokio::test]
async fn an_attempt_left_sending_by_a_dead_node_is_taken_over() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let sink = SmtpSink::start(&python, free_port());
    let storage = Arc::new(MemoryStorage::new());
    let clock = ManualClock::at_epoch();
    let mut p = NewProject::new("Web servers", TextId::parse("web").unwrap());
    p.members = vec![member("ops@example.com", true)];
    storage.create_project(p).await.unwrap();
    clock.advance(TimeDelta::hours(6));
    // A node claimed the first attempt and died before it sent anything.
    let since = format!("sending since {}", clock.now().to_rfc3339());
    storage
        .put_setting("summary:2025-01-01:ops@example.com", &since)
        .await
        .unwrap();
    let node = summaries(&storage, &clock, &sink.relay());
    assert_eq!(
        node.send_due().await.unwrap().sent,
        0,
        "it may still be sending"
    );
    clock.advance(TimeDelta::minutes(11));
    assert_eq!(
        node.send_due().await.unwrap().sent,
        1,
        "taken over after 10 minutes"
    );
    assert_eq!(node.send_due().await.unwrap().sent, 0);
    assert_eq!(sink.wait_for(1).len(), 1);
}
