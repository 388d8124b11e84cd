//! Every row of spec §5.4 through the engine: okerr's exact texts, and for every refusal,
//! a store that did not change. (The status codes are the HTTP front end's:
//! `okerr-http/tests/update_table.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{World, req};
use okerr::{
    Action, IndicatorName, NewProject, PolicyName, Secret, Source, UpdateError, UpdateOutcome,
    UpdateRequest,
};

/// What exists before the update.
#[derive(Clone, Copy)]
enum Before {
    Nothing,
    /// `srv` exists (created by an OK update).
    Exists,
    /// `srv` exists and is disabled.
    Disabled,
}

struct Row {
    situation: &'static str,
    project: fn(&mut NewProject),
    before: Before,
    request: fn() -> UpdateRequest,
    /// `OK` when accepted, else the refusal's text.
    body: &'static str,
}

fn default_policy(p: &mut NewProject) -> &mut okerr::Policy {
    p.policies
        .iter_mut()
        .find(|p| p.name.as_str() == "Default")
        .unwrap()
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            situation: "success",
            project: |_| {},
            before: Before::Nothing,
            request: || req("srv", "OK"),
            body: "OK",
        },
        Row {
            situation: "success on an alias textid",
            project: |_| {},
            before: Before::Exists,
            request: || UpdateRequest {
                textid: "p1-alias".into(),
                ..req("srv", "ERR")
            },
            body: "OK",
        },
        Row {
            situation: "success: a heartbeat value that is neither OK nor ERR is ignored",
            project: |_| {},
            before: Before::Exists,
            request: || req("srv", "WARN"),
            body: "OK",
        },
        Row {
            situation: "unknown textid",
            project: |_| {},
            before: Before::Nothing,
            request: || UpdateRequest {
                textid: "abc".into(),
                ..req("srv", "OK")
            },
            body: "No such project. (textid: 'abc')",
        },
        Row {
            situation: "autocreate off",
            project: |p| default_policy(p).autocreate = false,
            before: Before::Nothing,
            request: || req("srv", "OK"),
            body: "Cannot create indicator srv because policy Default has autocreate off",
        },
        Row {
            situation: "autocreate off in the named policy",
            project: |p| {
                let mut policy = okerr::Policy::new(PolicyName::parse("Strict").unwrap());
                policy.autocreate = false;
                p.policies.push(policy);
            },
            before: Before::Nothing,
            request: || UpdateRequest {
                policy: Some("Strict".into()),
                ..req("srv", "OK")
            },
            body: "Cannot create indicator srv because policy Strict has autocreate off",
        },
        Row {
            situation: "invalid name on autocreate",
            project: |_| {},
            before: Before::Nothing,
            request: || req("a@b", "OK"),
            body: "Do not create indicator 'a@b': bad name",
        },
        Row {
            situation: "a name that is an integer",
            project: |_| {},
            before: Before::Nothing,
            request: || req("123", "OK"),
            body: "Do not create indicator '123': bad name",
        },
        Row {
            situation: "an empty name",
            project: |_| {},
            before: Before::Nothing,
            request: || req("", "OK"),
            body: "Do not create indicator '': bad name",
        },
        Row {
            situation: "indicator quota",
            project: |p| p.max_indicators = Some(1),
            before: Before::Exists,
            request: || req("other", "OK"),
            body: "ERROR:LIMIT_MAXINDICATORS Project already has 1 indicators, maxindicators is 1. Indicator not created",
        },
        Row {
            situation: "policy secret mismatch on autocreate",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Nothing,
            request: || UpdateRequest {
                secret: Some("nope".into()),
                ..req("srv", "OK")
            },
            body: "do not create indicator 'srv' with policy 'Default' because doesn't match secret",
        },
        Row {
            situation: "project limited on autocreate",
            project: |p| p.limited = true,
            before: Before::Nothing,
            request: || req("srv", "OK"),
            body: "Project is limited. Indicator not created.",
        },
        Row {
            situation: "bad method line",
            project: |_| {},
            before: Before::Nothing,
            request: || UpdateRequest {
                method: Some("numerical|maxlim".into()),
                ..req("srv", "1")
            },
            body: "bad cm line'numerical|maxlim'",
        },
        Row {
            situation: "unknown method",
            project: |_| {},
            before: Before::Nothing,
            request: || UpdateRequest {
                method: Some("x".into()),
                ..req("srv", "OK")
            },
            body: "Unknown checkname with codename 'x'",
        },
        Row {
            situation: "an active method (not run by this server)",
            project: |_| {},
            before: Before::Nothing,
            request: || UpdateRequest {
                method: Some("sslcert".into()),
                ..req("srv", "OK")
            },
            body: "Method 'sslcert' is disabled",
        },
        Row {
            situation: "indicator disabled",
            project: |_| {},
            before: Before::Disabled,
            request: || req("srv", "OK"),
            body: "Indicator <Indicator: srv@p1 (OK)> disabled",
        },
        Row {
            situation: "channel not allowed (http)",
            project: |p| default_policy(p).http_update = false,
            before: Before::Exists,
            request: || req("srv", "OK"),
            body: "src:'http' updates are not allowed",
        },
        Row {
            situation: "channel not allowed (smtp)",
            project: |p| default_policy(p).smtp_update = false,
            before: Before::Exists,
            request: || UpdateRequest {
                source: Source::Smtp,
                ..req("srv", "OK")
            },
            body: "src:'smtp' updates are not allowed",
        },
        Row {
            situation: "channel not allowed, also when the update would create",
            project: |p| default_policy(p).http_update = false,
            before: Before::Nothing,
            request: || req("srv", "OK"),
            body: "src:'http' updates are not allowed",
        },
        Row {
            situation: "IP not allowed",
            project: |p| default_policy(p).subnets = vec!["10.0.0.0/8".parse().unwrap()],
            before: Before::Exists,
            request: || req("srv", "OK"),
            body: "updates from 1.2.3.4 not allowed",
        },
        Row {
            situation: "IPv6 not allowed",
            project: |p| default_policy(p).subnets = vec!["0.0.0.0/0".parse().unwrap()],
            before: Before::Exists,
            request: || UpdateRequest {
                ip: Some("2001:db8::1".parse().unwrap()),
                ..req("srv", "OK")
            },
            body: "updates from 2001:db8::1 not allowed",
        },
        Row {
            situation: "secret required",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Exists,
            request: || req("srv", "OK"),
            body: "Require secret",
        },
        Row {
            situation: "secret required (empty)",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Exists,
            request: || UpdateRequest {
                secret: Some(String::new()),
                ..req("srv", "OK")
            },
            body: "Require secret",
        },
        Row {
            situation: "wrong secret",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Exists,
            request: || UpdateRequest {
                secret: Some("S3".into()),
                ..req("srv", "OK")
            },
            body: "Bad secret",
        },
        Row {
            situation: "the indicator's own secret (from the method line) is required",
            project: |_| {},
            before: Before::Nothing,
            request: || UpdateRequest {
                method: Some("heartbeat|secret=mine".into()),
                ..req("srv", "OK")
            },
            body: "Require secret",
        },
        Row {
            situation: "a field over its bound",
            project: |_| {},
            before: Before::Exists,
            request: || req("srv", &"x".repeat(2001)),
            body: "Field 'status' is too long (at most 2000 characters)",
        },
    ]
}

#[tokio::test]
async fn every_row_of_the_response_table() {
    for row in rows() {
        let w = World::with(row.project).await;
        if !matches!(row.before, Before::Nothing) {
            // Created through the storage-independent path: an update with the policy's
            // secret, from an allowed address.
            let mut r = UpdateRequest::new("p1", "srv", "OK");
            r.secret = Some("s3".into());
            let policy = w.project.policy("Default").unwrap();
            if !policy.http_update {
                r.source = okerr::Source::Smtp;
            }
            w.engine.update(r).await.unwrap();
        }
        if matches!(row.before, Before::Disabled) {
            let name = IndicatorName::parse("srv").unwrap();
            w.engine
                .act("p1", &name, &Action::Disabled(true), "user t")
                .await
                .unwrap();
        }
        let before = w.storage.snapshot();
        let result = w.engine.update((row.request)()).await;
        match result {
            Ok(outcome) => {
                assert_eq!(row.body, "OK", "{}", row.situation);
                if let UpdateOutcome::Ignored = outcome {
                    assert_eq!(w.storage.snapshot(), before, "{}", row.situation);
                }
            }
            Err(e) => {
                assert_eq!(e.to_string(), row.body, "{}", row.situation);
                assert_ne!(row.body, "OK", "{}", row.situation);
                assert_eq!(
                    w.storage.snapshot(),
                    before,
                    "a refused update changes nothing: {}",
                    row.situation
                );
            }
        }
    }
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
