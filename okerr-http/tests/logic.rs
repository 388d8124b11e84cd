//! Logic indicators through the API: created with `/api/create` then `/api/setarg` (or
//! `/api/set checkmethod=logic`), refused at once when the expression does not compile,
//! evaluated by the engine, and okerr's no-flap wizard.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::TimeDelta;
use common::{API_KEY, Form, World};
use okerr::Status;
use serde_json::Value;

#[tokio::test]
async fn create_then_setarg_makes_a_logic_indicator_the_engine_evaluates() {
    let w = World::new().await;
    w.push("a", "OK").await;
    w.push("b", "OK").await;
    let answer = w.api_post("/api/create/p1/both", API_KEY, "").await;
    assert_eq!(answer.pair(), (200, "Created both@p1 (OK)\n"));
    let answer = w
        .api_post(
            "/api/setarg/p1/both",
            API_KEY,
            "checkmethod=logic&expr=s%5B%27a%27%5D+and+s%5B%27b%27%5D&dump=s%5B%27b%27%5D&maintenance=0",
        )
        .await;
    assert_eq!(
        answer.pair(),
        (
            200,
            "Changed both {'checkmethod': 'logic', 'maintenance': 0, 'dump': \"s['b']\", 'expr': \"s['a'] and s['b']\"}\n"
        )
    );
    let json: Value =
        serde_json::from_str(&w.api_get("/api/indicator/p1/both", API_KEY).await.body).unwrap();
    assert_eq!(json["checkmethod"], "logic");
    assert_eq!(json["args"]["expr"], "s['a'] and s['b']");
    assert_eq!(json["args"]["init"], "");
    assert!(json["tags"].as_array().unwrap().contains(&"active".into()));
    assert_eq!(
        w.get("/api/get/p1/both/expr").await.status,
        403,
        "needs the key"
    );
    let answer = w.api_get("/api/get/p1/both/expr", API_KEY).await;
    assert_eq!(answer.pair(), (200, "s['a'] and s['b']\n"));

    w.engine.tick().await.unwrap();
    let both = w.indicator("both").await.unwrap();
    assert_eq!(
        (both.status, both.details.as_str()),
        (Status::Ok, "s['b']=True ")
    );
    w.clock.advance(TimeDelta::seconds(1));
    w.push("b", "ERR").await;
    w.clock.advance(w.engine.config().logic_debounce);
    w.engine.tick().await.unwrap();
    let both = w.indicator("both").await.unwrap();
    assert_eq!(
        (both.status, both.details.as_str()),
        (Status::Err, "s['b']=False ")
    );

    // It is not pushed.
    let reply = w
        .send(common::post_form(
            "/update",
            &Form::okerrupdate("p1", "both", "OK").encode(),
        ))
        .await;
    assert_eq!(
        reply.pair(),
        (400, "ERROR:BAD_METHOD Indicator exists with cm: logic")
    );
}

#[tokio::test]
async fn an_expression_outside_the_whitelist_is_refused_when_saved() {
    let w = World::new().await;
    w.push("a", "OK").await;
    w.api_post("/api/set/p1/a", API_KEY, "checkmethod=logic")
        .await;
    let before = w.snapshot();
    let cases = [
        (
            "expr=s.keys%28%29",
            "Bad expr: Operation type Attribute is not allowed\n",
        ),
        (
            "expr=__import__%28%27os%27%29",
            "Bad expr: Call to function __import__() is not allowed\n",
        ),
        (
            "expr=%5Bx+for+x+in+s%5D",
            "Bad expr: Operation type ListComp is not allowed\n",
        ),
        (
            "dump=lambda%3A+1",
            "Bad dump: Operation type Lambda is not allowed\n",
        ),
        (
            "init=len%28s%29",
            "Bad init: Cannot initialize 'len(s)': only a name or a subscript of one with constant keys\n",
        ),
    ];
    for (body, text) in cases {
        let answer = w.api_post("/api/set/p1/a", API_KEY, body).await;
        assert_eq!(answer.pair(), (400, text), "{body}");
    }
    let answer = w
        .api_post("/api/set/p1/a", API_KEY, "expr=s%5B%27a%27%5D+and")
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .body
            .starts_with("Bad expr: Syntax error in 's['a'] and': "),
        "{}",
        answer.body
    );
    assert!(w.snapshot() == before, "nothing was stored");
}

#[tokio::test]
async fn the_noflap_wizard_creates_the_up_pair() {
    let w = World::new().await;
    w.push("x", "OK").await;
    let answer = w.api_post("/api/noflap/p1/x", API_KEY, "").await;
    assert_eq!(answer.pair(), (200, "Created x-up@p1 (OK)\n"));
    let up = w.indicator("x-up").await.unwrap();
    // Default: period 3600, patience 1200.
    assert_eq!(
        up.method.args()["expr"],
        "(lo['status']=='OK' and lo['statusage']>4800) or (lo['status']=='ERR' and lo['statusage']<8400)"
    );
    assert!(up.maintenance.is_none());
    assert_eq!(
        up.tags.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["upper-level"]
    );
    let x = w.indicator("x").await.unwrap();
    assert_eq!(
        x.tags.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["lower-level"]
    );
    // Evaluated: x has been OK for a moment only, so the upper one is ERR.
    w.engine.tick().await.unwrap();
    assert_eq!(w.indicator("x-up").await.unwrap().status, Status::Err);

    w.push("y", "OK").await;
    let answer = w
        .api_post("/api/noflap/p1/y", API_KEY, "okthr=10m&errthr=1h")
        .await;
    assert_eq!(answer.status, 200);
    assert!(w.indicator("y-up").await.unwrap().method.args()["expr"].contains(">600) or"));
    let answer = w.api_post("/api/noflap/p1/y", API_KEY, "").await;
    assert_eq!(answer.pair(), (400, "Indicator y-up already exists\n"));
    let answer = w.api_post("/api/noflap/p1/nope", API_KEY, "").await;
    assert_eq!(answer.status, 404);
    let answer = w.api_post("/api/noflap/p1/x", API_KEY, "okthr=1d2").await;
    assert_eq!(
        answer.pair(),
        (
            400,
            "okthr: Cannot parse '1d2'. Valid examples are: 10s, 5m, 2h\n"
        )
    );
}
