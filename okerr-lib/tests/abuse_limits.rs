//! The server's abuse limits through the engine: the default indicator limit of a project
//! and the rate of autocreation, with a manual clock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::TimeDelta;
use okerr::settings::AutocreateRate;
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Engine, EngineConfig, MemoryStorage, NewProject, Settings, Storage, TextId, UpdateRequest,
};

async fn engine(settings: Settings) -> (Engine, Arc<MemoryStorage>, ManualClock) {
    let storage = Arc::new(MemoryStorage::new());
    for t in ["p1", "p2"] {
        let new = NewProject::new(t, TextId::parse(t).unwrap());
        storage.create_project(new).await.unwrap();
    }
    let clock = ManualClock::at_epoch();
    let config = EngineConfig {
        settings,
        ..EngineConfig::default()
    };
    let engine = Engine::with_config(
        storage.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(clock.clone()),
        config,
    );
    (engine, storage, clock)
}

async fn create(engine: &Engine, textid: &str, name: &str) -> Result<(), String> {
    let req = UpdateRequest::new(textid, name, "OK");
    engine
        .update(req)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn count(storage: &MemoryStorage, textid: &str) -> u64 {
    let p = storage.project_by_textid(textid).await.unwrap().unwrap();
    storage.count_indicators(p.id).await.unwrap()
}

#[tokio::test]
async fn autocreation_is_rate_limited_per_project() {
    let rate = AutocreateRate {
        burst: 5,
        per_minute: 2,
    };
    let settings = Settings {
        autocreate_rate: Some(rate),
        ..Settings::default()
    };
    let (engine, storage, clock) = engine(settings).await;
    for i in 0..5 {
        create(&engine, "p1", &format!("n{i}")).await.unwrap();
    }
    let refused = create(&engine, "p1", "n5").await.unwrap_err();
    assert_eq!(
        refused,
        "ERROR:LIMIT_AUTOCREATE Project p1 creates indicators too fast (at most 5 at once, then 2 a minute). Indicator not created"
    );
    assert_eq!(
        count(&storage, "p1").await,
        5,
        "the refused one is not stored"
    );
    // Updates of existing indicators are never limited, nor is another project.
    for _ in 0..20 {
        engine
            .update(UpdateRequest::new("p1", "n0", "ERR"))
            .await
            .unwrap();
    }
    create(&engine, "p2", "other").await.unwrap();
    // Two a minute: one more after 30 s.
    clock.advance(TimeDelta::seconds(29));
    assert!(create(&engine, "p1", "n5").await.is_err());
    clock.advance(TimeDelta::seconds(1));
    create(&engine, "p1", "n5").await.unwrap();
    assert!(create(&engine, "p1", "n6").await.is_err());
    assert_eq!(count(&storage, "p1").await, 6);
}

#[tokio::test]
async fn a_project_without_a_limit_gets_the_servers() {
    let settings = Settings {
        max_indicators: Some(3),
        autocreate_rate: None,
        ..Settings::default()
    };
    let (engine, storage, _clock) = engine(settings).await;
    for i in 0..3 {
        create(&engine, "p1", &format!("n{i}")).await.unwrap();
    }
    assert_eq!(
        create(&engine, "p1", "n3").await.unwrap_err(),
        "ERROR:LIMIT_MAXINDICATORS Project already has 3 indicators, maxindicators is 3. Indicator not created"
    );
    // The API's create counts the same limit.
    let e = engine
        .create_indicator("p1", "n3", "user t", "127.0.0.1")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("maxindicators is 3"), "{e}");
    // A project's own limit wins over the server's.
    let mut p = storage.project_by_textid("p1").await.unwrap().unwrap();
    p.max_indicators = Some(4);
    storage.save_project(&p).await.unwrap();
    create(&engine, "p1", "n3").await.unwrap();
    assert_eq!(count(&storage, "p1").await, 4);
}

#[test]
fn the_defaults_are_documented_ones() {
    let s = Settings::default();
    assert_eq!(s.max_indicators, Some(1000));
    assert_eq!(
        s.autocreate_rate,
        Some(AutocreateRate {
            burst: 100,
            per_minute: 20
        })
    );
}
