//! Every row of spec §5.4 (the table of `okerr_test_support::update_table`) through the
//! engine: okerr's exact texts, and for every refusal, a store that did not change. (The
//! status codes are the HTTP front end's: `okerr-http/tests/update_table.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{World, req};
use okerr::{Action, IndicatorName, Secret, UpdateError, UpdateOutcome, UpdateRequest};
use okerr_test_support::update_table::{self, Before, Layer, UPDATE_TABLE};

fn default_policy(p: &mut okerr::NewProject) -> &mut okerr::Policy {
    p.policies
        .iter_mut()
        .find(|p| p.name.as_str() == "Default")
        .unwrap()
}

/// Makes the indicator of `before` (and disables it), then applies `setup` to the stored
/// project.
async fn prepare(w: &World, before: Before, setup: &[update_table::Setup]) {
    if before != Before::Nothing {
        w.push(update_table::NAME, "OK").await;
    }
    if before == Before::Disabled {
        let name = IndicatorName::parse(update_table::NAME).unwrap();
        w.engine
            .act("p1", &name, &Action::Disabled(true), "user t")
            .await
            .unwrap();
    }
    w.engine
        .edit_project(w.project.id, |p| {
            update_table::apply(setup, p);
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn every_row_of_the_response_table() {
    let rows = UPDATE_TABLE.iter().filter(|r| r.runs_on(Layer::Engine));
    let mut ran = 0;
    for row in rows {
        let w = World::new().await;
        prepare(&w, row.before, row.setup).await;
        let before = w.storage.snapshot();
        let result = w
            .engine
            .update(update_table::request(row, "p1", "1.2.3.4"))
            .await;
        let answer = row.answer_for("p1", "1.2.3.4");
        match result {
            Ok(outcome) => {
                assert!(
                    row.accepted(),
                    "{}: accepted, not {answer:?}",
                    row.situation
                );
                if let UpdateOutcome::Ignored = outcome {
                    assert_eq!(w.storage.snapshot(), before, "{}", row.situation);
                } else {
                    assert_ne!(w.storage.snapshot(), before, "{}: stored", row.situation);
                }
            }
            Err(e) => {
                assert_eq!(e.to_string(), answer, "{}", row.situation);
                assert!(!row.accepted(), "{}: refused", row.situation);
                assert_eq!(
                    w.storage.snapshot(),
                    before,
                    "a refused update changes nothing: {}",
                    row.situation
                );
            }
        }
        ran += 1;
    }
    assert!(ran > 40, "the engine runs most of the table ({ran} rows)");
}

#[test]
fn a_missing_field_has_okerrs_text() {
    let e = UpdateError::MissingField("status");
    assert_eq!(e.to_string(), "Required field 'status' missing");
}

#[tokio::test]
async fn policy_and_indicator_secrets_are_both_checked_on_creation() {
    let w = World::with(|p| default_policy(p).secret = Some(Secret::parse("pol").unwrap())).await;
    let create = UpdateRequest {
        secret: Some("pol".into()),
        method: Some("heartbeat|secret=own".into()),
        ..req("srv", "OK")
    };
    // The policy's secret allows the creation, the indicator's own is then checked.
    let e = w.engine.update(create.clone()).await.unwrap_err();
    assert_eq!(e.to_string(), "Bad secret");
    let create = UpdateRequest {
        secret: Some("own".into()),
        ..create
    };
    let e = w.engine.update(create).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "do not create indicator 'srv' with policy 'Default' because doesn't match secret"
    );
}
