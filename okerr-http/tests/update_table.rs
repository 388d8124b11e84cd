//! Every row of spec §5.4 (the table of `okerr_test_support::update_table`) over
//! `POST /update`, urlencoded and multipart, with the least form and okerrupdate's: exact
//! status codes and texts, and for every refusal a store that did not change.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use std::net::SocketAddr;

use common::{Form, World, addr, default_policy, post_form, post_multipart};
use okerr::{Action, IndicatorName, Status, UpdateRequest};
use okerr_test_support::update_table::{self, Before, Layer, Peer, Row, UPDATE_TABLE};

/// okerrupdate's update of `test:hb` to OK.
fn hb() -> Form {
    Form::okerrupdate("p1", "test:hb", "OK")
}

/// Makes the indicator of `before` (and disables it) through the engine, then applies
/// `setup` to the stored project.
async fn prepare(w: &World, before: Before, setup: &[update_table::Setup]) {
    if before != Before::Nothing {
        w.engine
            .update(UpdateRequest::new("p1", update_table::NAME, "OK"))
            .await
            .unwrap();
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

/// The ways a row's update is sent: the least form, urlencoded and as multipart, and
/// okerrupdate's form (every field it sends) with the row's changes.
#[derive(Debug, Clone, Copy)]
enum Sent {
    Least,
    LeastMultipart,
    Okerrupdate,
}

fn request_of(row: &Row, sent: Sent) -> Request<Body> {
    match sent {
        Sent::Least => {
            let form = Form(row.fields_for("p1"));
            post_form("/update", &form.encode())
        }
        Sent::LeastMultipart => post_multipart("/update", &Form(row.fields_for("p1"))),
        Sent::Okerrupdate => {
            let mut form = hb();
            for (key, value) in row.changes_for("p1") {
                form = match value {
                    Some(v) => form.set(key, &v),
                    None => form.without(key),
                };
            }
            post_form("/update", &form.encode())
        }
    }
}

#[tokio::test]
async fn every_row_of_the_response_table() {
    let mut ran = 0;
    for row in UPDATE_TABLE.iter().filter(|r| r.runs_on(Layer::Http)) {
        for sent in [Sent::Least, Sent::LeastMultipart, Sent::Okerrupdate] {
            let what = format!("{} ({sent:?})", row.situation);
            let w = World::new().await;
            prepare(&w, row.before, row.setup).await;
            let before = w.snapshot();
            let peer = match row.peer {
                Peer::HttpFrom(ip) => SocketAddr::new(ip.parse().unwrap(), 5000),
                Peer::Http | Peer::Smtp => w.peer,
            };
            let answer = w.send_from(peer, request_of(row, sent)).await;
            let expected = row.answer_for("p1", &w.peer.ip().to_string());
            assert_eq!(answer.pair(), (row.status, expected.as_str()), "{what}");
            assert_eq!(answer.content_type(), "text/plain; charset=utf-8", "{what}");
            if row.accepted() {
                assert!(
                    w.indicator(update_table::NAME).await.is_some(),
                    "{what}: the indicator is there"
                );
            } else {
                assert_eq!(
                    w.snapshot(),
                    before,
                    "a refused update changes nothing: {what}"
                );
            }
            ran += 1;
        }
    }
    assert!(
        ran > 150,
        "the front end runs most of the table ({ran} runs)"
    );
}

#[tokio::test]
async fn the_captured_okerrupdate_body_verbatim() {
    let w = World::new().await;
    let body = "textid=mytextid&name=test%3Ahb&status=OK&secret=&method=heartbeat&policy=Default&tags=&keypath=&origkeypath=&desc=";
    let answer = w.post_form("/update", body).await;
    assert_eq!(answer.pair(), (200, "OK"));
    assert!(w.indicator("test:hb").await.is_some());
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
