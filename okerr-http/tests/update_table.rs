//! Every row of spec §5.4 over `POST /update`, with bodies built like the real clients':
//! exact status codes and texts, and for every refusal a store that did not change.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Form, World, addr, default_policy, post_form, post_multipart};
use okerr::{Action, IndicatorName, NewProject, PolicyName, Secret, Source, Status, UpdateRequest};

/// What exists before the update.
#[derive(Clone, Copy, Debug)]
enum Before {
    Nothing,
    /// `test:hb` exists (created by an OK update).
    Exists,
    /// `test:hb` exists and is disabled.
    Disabled,
}

struct Row {
    situation: &'static str,
    project: fn(&mut NewProject),
    before: Before,
    /// The urlencoded body.
    body: fn() -> String,
    status: u16,
    answer: &'static str,
}

/// okerrupdate's update of `test:hb` to OK.
fn hb() -> Form {
    Form::okerrupdate("p1", "test:hb", "OK")
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            situation: "success (the captured okerrupdate body, verbatim)",
            project: |_| {},
            before: Before::Nothing,
            body: || {
                "textid=mytextid&name=test%3Ahb&status=OK&secret=&method=heartbeat&policy=Default&tags=&keypath=&origkeypath=&desc=".into()
            },
            status: 200,
            answer: "OK",
        },
        Row {
            situation: "success on an existing indicator",
            project: |_| {},
            before: Before::Exists,
            body: || hb().set("status", "ERR").encode(),
            status: 200,
            answer: "OK",
        },
        Row {
            situation: "success on an alias textid",
            project: |_| {},
            before: Before::Exists,
            body: || hb().set("textid", "p1-alias").encode(),
            status: 200,
            answer: "OK",
        },
        Row {
            situation: "success: a heartbeat value neither OK nor ERR is ignored",
            project: |_| {},
            before: Before::Exists,
            body: || hb().set("status", "WARN").encode(),
            status: 200,
            answer: "OK",
        },
        Row {
            situation: "textid missing",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().without("textid").encode(),
            status: 400,
            answer: "Required field 'textid' missing",
        },
        Row {
            situation: "name missing",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().without("name").encode(),
            status: 400,
            answer: "Required field 'name' missing",
        },
        Row {
            situation: "status missing",
            project: |_| {},
            before: Before::Exists,
            body: || hb().without("status").encode(),
            status: 400,
            answer: "Required field 'status' missing",
        },
        Row {
            situation: "all three missing: textid is named first",
            project: |_| {},
            before: Before::Nothing,
            body: || {
                hb().without("textid")
                    .without("name")
                    .without("status")
                    .encode()
            },
            status: 400,
            answer: "Required field 'textid' missing",
        },
        Row {
            situation: "an empty body",
            project: |_| {},
            before: Before::Nothing,
            body: String::new,
            status: 400,
            answer: "Required field 'textid' missing",
        },
        Row {
            situation: "unknown textid",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().set("textid", "abc").encode(),
            status: 404,
            answer: "No such project. (textid: 'abc')",
        },
        Row {
            situation: "autocreate off",
            project: |p| default_policy(p).autocreate = false,
            before: Before::Nothing,
            body: || hb().encode(),
            status: 400,
            answer: "Cannot create indicator test:hb because policy Default has autocreate off",
        },
        Row {
            situation: "autocreate off in the named policy",
            project: |p| {
                let mut policy = okerr::Policy::new(PolicyName::parse("Strict").unwrap());
                policy.autocreate = false;
                p.policies.push(policy);
            },
            before: Before::Nothing,
            body: || hb().set("policy", "Strict").encode(),
            status: 400,
            answer: "Cannot create indicator test:hb because policy Strict has autocreate off",
        },
        Row {
            situation: "invalid name on autocreate",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().set("name", "a@b").encode(),
            status: 400,
            answer: "Do not create indicator 'a@b': bad name",
        },
        Row {
            situation: "a name that is an integer",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().set("name", "123").encode(),
            status: 400,
            answer: "Do not create indicator '123': bad name",
        },
        Row {
            situation: "an empty name",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().set("name", "").encode(),
            status: 400,
            answer: "Do not create indicator '': bad name",
        },
        Row {
            situation: "indicator quota",
            project: |p| p.max_indicators = Some(1),
            before: Before::Exists,
            body: || hb().set("name", "other").encode(),
            status: 400,
            answer: "ERROR:LIMIT_MAXINDICATORS Project already has 1 indicators, maxindicators is 1. Indicator not created",
        },
        Row {
            situation: "policy secret mismatch on autocreate",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Nothing,
            body: || hb().set("secret", "nope").encode(),
            status: 400,
            answer: "do not create indicator 'test:hb' with policy 'Default' because doesn't match secret",
        },
        Row {
            situation: "policy secret mismatch on autocreate (empty secret, as okerrupdate sends)",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Nothing,
            body: || hb().encode(),
            status: 400,
            answer: "do not create indicator 'test:hb' with policy 'Default' because doesn't match secret",
        },
        Row {
            situation: "project limited on autocreate",
            project: |p| p.limited = true,
            before: Before::Nothing,
            body: || hb().encode(),
            status: 400,
            answer: "Project is limited. Indicator not created.",
        },
        Row {
            situation: "bad method line",
            project: |_| {},
            before: Before::Nothing,
            body: || {
                hb().set("method", "numerical|maxlim")
                    .set("status", "1")
                    .encode()
            },
            status: 400,
            answer: "bad cm line'numerical|maxlim'",
        },
        Row {
            situation: "unknown method",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().set("method", "x").encode(),
            status: 400,
            answer: "Unknown checkname with codename 'x'",
        },
        Row {
            situation: "an active method (not run by this server)",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().set("method", "sslcert|host=okerr.com").encode(),
            status: 400,
            answer: "Method 'sslcert' is disabled",
        },
        Row {
            situation: "indicator disabled",
            project: |_| {},
            before: Before::Disabled,
            body: || hb().encode(),
            status: 400,
            answer: "Indicator <Indicator: test:hb@p1 (OK)> disabled",
        },
        Row {
            situation: "indicator disabled, addressed by an alias (the main textid is shown)",
            project: |_| {},
            before: Before::Disabled,
            body: || hb().set("textid", "p1-alias").encode(),
            status: 400,
            answer: "Indicator <Indicator: test:hb@p1 (OK)> disabled",
        },
        Row {
            situation: "channel not allowed",
            project: |p| default_policy(p).http_update = false,
            before: Before::Exists,
            body: || hb().encode(),
            status: 400,
            answer: "src:'http' updates are not allowed",
        },
        Row {
            situation: "channel not allowed, also when the update would create",
            project: |p| default_policy(p).http_update = false,
            before: Before::Nothing,
            body: || hb().encode(),
            status: 400,
            answer: "src:'http' updates are not allowed",
        },
        Row {
            situation: "channel not allowed: x_smtp from an untrusted peer does not switch it",
            project: |p| default_policy(p).http_update = false,
            before: Before::Exists,
            body: || hb().set("x_smtp", "1").encode(),
            status: 400,
            answer: "src:'http' updates are not allowed",
        },
        Row {
            situation: "IP not allowed (peer 1.2.3.4)",
            project: |p| default_policy(p).subnets = vec!["10.0.0.0/8".parse().unwrap()],
            before: Before::Exists,
            body: || hb().encode(),
            status: 400,
            answer: "updates from 1.2.3.4 not allowed",
        },
        Row {
            situation: "IP not allowed, also when the update would create",
            project: |p| default_policy(p).subnets = vec!["10.0.0.0/8".parse().unwrap()],
            before: Before::Nothing,
            body: || hb().encode(),
            status: 400,
            answer: "updates from 1.2.3.4 not allowed",
        },
        Row {
            situation: "IP not allowed: x_remoteip from an untrusted peer is ignored",
            project: |p| default_policy(p).subnets = vec!["10.0.0.0/8".parse().unwrap()],
            before: Before::Exists,
            body: || hb().set("x_remoteip", "10.0.0.1").encode(),
            status: 400,
            answer: "updates from 1.2.3.4 not allowed",
        },
        Row {
            situation: "secret required (empty, as okerrupdate sends it)",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Exists,
            body: || hb().encode(),
            status: 400,
            answer: "Require secret",
        },
        Row {
            situation: "secret required (absent)",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Exists,
            body: || hb().without("secret").encode(),
            status: 400,
            answer: "Require secret",
        },
        Row {
            situation: "wrong secret (the comparison is case-sensitive)",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Exists,
            body: || hb().set("secret", "S3").encode(),
            status: 400,
            answer: "Bad secret",
        },
        Row {
            situation: "right secret",
            project: |p| default_policy(p).secret = Some(Secret::parse("s3").unwrap()),
            before: Before::Exists,
            body: || hb().set("secret", "s3").set("status", "ERR").encode(),
            status: 200,
            answer: "OK",
        },
        Row {
            situation: "the indicator's own secret (from the method line) is required",
            project: |_| {},
            before: Before::Nothing,
            body: || hb().set("method", "heartbeat|secret=mine").encode(),
            status: 400,
            answer: "Require secret",
        },
    ]
}

/// Creates `test:hb` (and disables it) through the engine, so that the project's
/// restrictions do not stand in the way.
async fn prepare(w: &World, before: Before) {
    if matches!(before, Before::Nothing) {
        return;
    }
    let mut r = UpdateRequest::new("p1", "test:hb", "OK");
    r.secret = Some("s3".into());
    if !w.project.policy("Default").unwrap().http_update {
        r.source = Source::Smtp;
    }
    w.engine.update(r).await.unwrap();
    if matches!(before, Before::Disabled) {
        let name = IndicatorName::parse("test:hb").unwrap();
        w.engine
            .act("p1", &name, &Action::Disabled(true), "user t")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_row_of_the_response_table() {
    for row in rows() {
        let w = World::with(row.project).await;
        prepare(&w, row.before).await;
        let before = w.snapshot();
        let answer = w.post_form("/update", &(row.body)()).await;
        assert_eq!(answer.pair(), (row.status, row.answer), "{}", row.situation);
        assert_eq!(
            answer.content_type(),
            "text/plain; charset=utf-8",
            "{}",
            row.situation
        );
        if row.status == 200 {
            assert!(
                w.indicator("test:hb").await.is_some(),
                "{}: the indicator is there",
                row.situation
            );
        } else {
            assert_eq!(
                w.snapshot(),
                before,
                "a refused update changes nothing: {}",
                row.situation
            );
        }
    }
}

#[tokio::test]
async fn the_response_table_over_multipart_too() {
    for row in rows() {
        let body = (row.body)();
        // The empty body has no multipart form at all; it is covered above.
        if body.is_empty() {
            continue;
        }
        let w = World::with(row.project).await;
        prepare(&w, row.before).await;
        let before = w.snapshot();
        let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let answer = w.send(post_multipart("/update", &Form(fields))).await;
        assert_eq!(
            answer.pair(),
            (row.status, row.answer),
            "multipart: {}",
            row.situation
        );
        if row.status != 200 {
            assert_eq!(w.snapshot(), before, "multipart: {}", row.situation);
        }
    }
}

#[tokio::test]
async fn the_decisions_of_an_update_are_stored() {
    let w = World::new().await;
    w.push("test:hb", "OK").await;
    let ind = w.indicator("test:hb").await.unwrap();
    assert_eq!(ind.status, Status::Ok);
    assert_eq!(ind.policy.as_str(), "Default");
    assert_eq!(ind.method.codename(), "heartbeat");
    assert_eq!(w.alerts().await, ["autocreated from 1.2.3.4"]);
    let log = w.log("test:hb").await;
    assert!(
        log.iter().any(|l| l.contains("http:1.2.3.4")),
        "the source label names the client address: {log:?}"
    );
}

#[tokio::test]
async fn a_get_without_body_is_a_missing_field() {
    let w = World::new().await;
    let before = w.snapshot();
    let get = Request::builder()
        .method(Method::GET)
        .uri("/update?textid=p1&name=test%3Ahb&status=OK")
        .body(Body::empty())
        .unwrap();
    let answer = w.send(get).await;
    // Only POST fields are read, not the query string.
    assert_eq!(answer.pair(), (400, "Required field 'textid' missing"));
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    let answer = w.get("/update").await;
    assert_eq!(answer.pair(), (400, "Required field 'textid' missing"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn the_route_is_unanchored() {
    let w = World::new().await;
    for (i, path) in ["/update", "/update/", "/update/anything", "/update/a/b/c"]
        .into_iter()
        .enumerate()
    {
        let name = format!("route:{i}");
        let answer = w
            .post_form(path, &Form::okerrupdate("p1", &name, "OK").encode())
            .await;
        assert_eq!(answer.pair(), (200, "OK"), "{path}");
        assert!(w.indicator(&name).await.is_some(), "{path}");
    }
    // ...but `/updates` is not the update route.
    let answer = w.post_form("/updates", &hb().encode()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_and_x_fields_are_ignored() {
    let w = World::new().await;
    let form = hb()
        .set("x_remoteip", "10.0.0.1")
        .set("x_smtp", "1")
        .set("whatever", "value")
        .set("id", "17");
    w.push_form(form).await;
    let ind = w.indicator("test:hb").await.unwrap();
    assert_eq!(ind.status, Status::Ok);
    assert_eq!(w.alerts().await, ["autocreated from 1.2.3.4"]);
    let log = w.log("test:hb").await.join("\n");
    assert!(
        !log.contains("smtp"),
        "x_smtp does not switch the source: {log}"
    );
    assert!(!log.contains("10.0.0.1"), "x_remoteip is not used: {log}");
}

#[tokio::test]
async fn a_lowercase_heartbeat_status_counts() {
    let w = World::new().await;
    w.push("test:hb", "ERR").await;
    assert_eq!(w.indicator("test:hb").await.unwrap().status, Status::Err);
    w.push("test:hb", "ok").await;
    assert_eq!(w.indicator("test:hb").await.unwrap().status, Status::Ok);
    w.push("test:hb", "eRr").await;
    assert_eq!(w.indicator("test:hb").await.unwrap().status, Status::Err);
}

#[tokio::test]
async fn utf8_details_are_stored_decoded() {
    let w = World::new().await;
    let body = "textid=mytextid&name=test%3Astr&status=version+1.2&details=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82+%26+co&secret=s3cr3t&method=string%7Coptions%3Dreinit+dynamic&policy=Default&tags=&keypath=&origkeypath=&desc=";
    let answer = w.post_form("/update", body).await;
    assert_eq!(answer.pair(), (200, "OK"));
    let ind = w.indicator("test:str").await.unwrap();
    assert_eq!(ind.method.codename(), "string");
    // Stored as flags and shown in a fixed order, not as sent (okerr keeps the text).
    assert_eq!(ind.method.args()["options"], "reinit dynamic");
    assert_eq!(ind.method.args()["str"], "version 1.2");
    assert_eq!(ind.details, "Привет & co");
    // The multipart form carries UTF-8 raw.
    let form = Form::okerrupdate("p1", "test:utf", "ERR").set("details", "Привет & co");
    let answer = w.send(post_multipart("/update", &form)).await;
    assert_eq!(answer.pair(), (200, "OK"));
    assert_eq!(
        w.indicator("test:utf").await.unwrap().details,
        "Привет & co"
    );
}

#[tokio::test]
async fn the_captured_client_bodies_are_accepted() {
    let w = World::new().await;
    let bodies = [
        // okerrupdate, ERR with details and secret.
        "textid=mytextid&name=test%3Ahb&status=ERR&details=disk+is+full%3A+99%25&secret=s3cr3t&method=heartbeat&policy=Default&tags=&keypath=&origkeypath=&desc=",
        // okerrupdate, numerical in policy Daily.
        "textid=mytextid&name=temp&status=36.6&secret=s3cr3t&method=numerical%7Cmaxlim%3D37&policy=Daily&tags=&keypath=&origkeypath=&desc=body+temperature",
        // okerrclient: no method, no policy.
        "textid=mytextid&name=test%3Aoc&status=OK&secret=s3cr3t&tags=&keypath=&origkeypath=&desc=",
        // okerrclient MKSEQ.
        "textid=mytextid&name=srv1&status=OK&details=from+keyval&secret=s3cr3t&tags=&keypath=&origkeypath=servers%3Asrv1&desc=",
        // The library, with error, tags and x_remoteip.
        "textid=mytextid&name=py%3Adirect&status=ERR&details=d&secret=s3cr3t&policy=Default&tags=a%2Cb&error=some+problem&keypath=&origkeypath=&desc=&x_remoteip=10.0.0.1",
        // okerrmod, with an empty details field.
        "textid=mytextid&name=myhost%3Ala&status=0.986&details=&secret=s3cr3t&method=numerical%7Cmaxlim%3D2&tags=la&keypath=&origkeypath=&desc=",
    ];
    for body in bodies {
        let answer = w.post_form("/update", body).await;
        assert_eq!(answer.pair(), (200, "OK"), "{body}");
    }
    let hb = w.indicator("test:hb").await.unwrap();
    assert_eq!(
        (hb.status, hb.details.as_str()),
        (Status::Err, "disk is full: 99%")
    );
    let temp = w.indicator("temp").await.unwrap();
    assert_eq!(temp.policy.as_str(), "Daily");
    assert_eq!(temp.desc, "body temperature");
    assert_eq!(temp.method.args()["maxlim"], "37");
    assert_eq!(temp.status, Status::Ok);
    let oc = w.indicator("test:oc").await.unwrap();
    assert_eq!(
        (oc.method.codename(), oc.policy.as_str()),
        ("heartbeat", "Default")
    );
    let srv1 = w.indicator("srv1").await.unwrap();
    assert_eq!(srv1.origkeypath.as_deref(), Some("servers:srv1"));
    assert_eq!(srv1.keypath, None);
    let py = w.indicator("py:direct").await.unwrap();
    assert!(py.problem);
    let tags: Vec<String> = py.tags.iter().map(ToString::to_string).collect();
    assert_eq!(tags, ["a", "b"]);
    let la = w.indicator("myhost:la").await.unwrap();
    assert_eq!(la.method.args()["current"], "0.986");
    // Empty details of a numerical value default to the value (spec §6.2).
    assert_eq!(la.details, "0.986");
    assert!(!la.problem);
}

#[tokio::test]
async fn a_repeated_field_the_last_wins() {
    let w = World::new().await;
    let form = hb()
        .set("status", "ERR")
        .append("status", "OK")
        .append("details", "first")
        .append("details", "second");
    w.push_form(form).await;
    let ind = w.indicator("test:hb").await.unwrap();
    assert_eq!((ind.status, ind.details.as_str()), (Status::Ok, "second"));
    // The same in a multipart form.
    let form = Form::okerrupdate("p1", "test:mp", "OK").append("status", "ERR");
    let answer = w.send(post_multipart("/update", &form)).await;
    assert_eq!(answer.pair(), (200, "OK"));
    assert_eq!(w.indicator("test:mp").await.unwrap().status, Status::Err);
}

#[tokio::test]
async fn a_refused_update_leaves_no_autocreated_indicator() {
    // okerr creates the indicator before the address check; here nothing is kept.
    let w = World::with(|p| default_policy(p).subnets = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let answer = w.post_form("/update", &hb().encode()).await;
    assert_eq!(answer.pair(), (400, "updates from 1.2.3.4 not allowed"));
    assert!(w.names().await.is_empty());
    assert!(w.outbox().await.is_empty());
    // From inside the subnet it works.
    let answer = w
        .send_from(addr("10.9.8.7:5000"), post_form("/update", &hb().encode()))
        .await;
    assert_eq!(answer.pair(), (200, "OK"));
    assert_eq!(w.alerts().await, ["autocreated from 10.9.8.7"]);
}

#[tokio::test]
async fn the_error_field_flags_a_problem_only_when_not_empty() {
    let w = World::new().await;
    w.push_form(hb().set("error", "")).await;
    assert!(!w.indicator("test:hb").await.unwrap().problem);
    w.push_form(hb().set("error", "disk on fire")).await;
    assert!(w.indicator("test:hb").await.unwrap().problem);
    assert!(
        w.log("test:hb")
            .await
            .contains(&"Problem: disk on fire".to_owned())
    );
}

#[tokio::test]
async fn an_update_without_content_type_is_read_as_a_form() {
    // curl -d sets the type; a bare body without one (some scripts) is read the same.
    let w = World::new().await;
    let body = hb().encode();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/update")
        .body(Body::from(body))
        .unwrap();
    let answer = w.send(req).await;
    assert_eq!(answer.pair(), (200, "OK"));
}
