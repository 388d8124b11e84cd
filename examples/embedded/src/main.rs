//! Embeds the okerr engine with `MemoryStorage` and a manual clock: a heartbeat is pushed,
//! time moves past period + patience, and the indicator turns ERR with its alert.
//!
//! Run with: `cargo run -p okerr-example-embedded`

use std::sync::Arc;

use chrono::TimeDelta;
use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Clock, Engine, IndicatorName, MemoryStorage, NewProject, Storage, TextId, UpdateRequest,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let storage = Arc::new(MemoryStorage::new());
    let clock = ManualClock::at_epoch();
    let notifier = RecordingNotifier::new();
    let project = storage
        .create_project(
            NewProject::new("example", TextId::parse("example")?)
                .with_member(okerr::Email::parse("ops@example.com")?),
        )
        .await?;
    let engine = Engine::new(
        storage.clone(),
        Arc::new(notifier.clone()),
        Arc::new(clock.clone()),
    );

    // What `okerrupdate test:apache2 OK` does over HTTP: policy Default, period 1h,
    // patience 20m.
    engine
        .update(UpdateRequest::new("example", "test:apache2", "OK"))
        .await?;
    let name = IndicatorName::parse("test:apache2")?;
    let ind = storage
        .indicator(project.id, &name)
        .await?
        .ok_or("the update created the indicator")?;
    println!(
        "{} at {}: {} (expires at {})",
        ind.full_name(project.textid.as_str()),
        clock.now(),
        ind.status,
        ind.scheduled.map(|t| t.to_string()).unwrap_or_default()
    );

    // The cron job was deleted: no update for 1h21m.
    clock.advance(TimeDelta::minutes(81));
    let report = engine.tick().await?;
    let ind = storage
        .indicator(project.id, &name)
        .await?
        .ok_or("still stored")?;
    println!(
        "{} at {}: {} ({}), {} expired",
        ind.full_name(project.textid.as_str()),
        clock.now(),
        ind.status,
        ind.details,
        report.expired
    );
    for alert in notifier.alerts() {
        println!("alert: {alert}");
    }
    if ind.status != okerr::Status::Err {
        return Err("the indicator did not expire".into());
    }
    Ok(())
}
