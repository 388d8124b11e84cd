//! The API the clients use (`okerrapi`, `okerrclient --api-*`): `X-API-KEY` or the admin
//! token, okerr's texts, and what each call does to storage.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::Method;
use chrono::TimeDelta;
use common::{ADMIN_TOKEN, API_KEY, Form, World, request};
use okerr::{ApiKey, NewProject, Status, Storage, TextId};
use serde_json::Value;

/// `srv1:a` (OK), `srv1:b` (ERR) and `other` (OK), pushed over `/update`, then 30 s later.
async fn api_world() -> World {
    let w = World::new().await;
    w.push("srv1:a", "OK").await;
    w.push("srv1:b", "ERR").await;
    w.push("other", "OK").await;
    w.clock.advance(TimeDelta::seconds(30));
    w
}

/// The same plus `temp`, numerical with `maxlim=90`.
async fn api_world_with_numerical() -> World {
    let w = api_world().await;
    w.push_form(Form::okerrupdate("p1", "temp", "36.6").set("method", "numerical|maxlim=90"))
        .await;
    w
}

#[tokio::test]
async fn the_api_key_or_the_admin_token_is_needed() {
    let w = api_world().await;
    let before = w.snapshot();
    let answer = w.get("/api/indicators/p1").await;
    assert_eq!(answer.pair(), (403, "Forbidden: X-API-KEY required\n"));
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    let answer = w.api_get("/api/indicators/p1", "WRONGKEY").await;
    assert_eq!(answer.pair(), (403, "Forbidden: bad X-API-KEY\n"));
    let answer = w.api_get("/api/indicators/p1", "").await;
    assert_eq!(answer.pair(), (403, "Forbidden: bad X-API-KEY\n"));
    // The key's hash is not the key.
    let answer = w
        .api_get("/api/indicators/p1", &okerr::project::sha256_hex(API_KEY))
        .await;
    assert_eq!(answer.status, 403);
    let answer = w.api_get("/api/indicators/p1", API_KEY).await;
    assert_eq!(answer.pair(), (200, "other\nsrv1:a\nsrv1:b\n"));
    let answer = w.api_get("/api/indicators/p1", ADMIN_TOKEN).await;
    assert_eq!(answer.pair(), (200, "other\nsrv1:a\nsrv1:b\n"));
    // Any textid of the project.
    let answer = w.api_get("/api/indicators/p1-alias", API_KEY).await;
    assert_eq!(answer.pair(), (200, "other\nsrv1:a\nsrv1:b\n"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn a_key_opens_its_own_project_only() {
    let w = api_world().await;
    let mut p2 = NewProject::new("second", TextId::parse("p2").unwrap());
    p2.api_keys.push(ApiKey::new(
        "k2",
        "OTHERKEY",
        "test",
        okerr::Clock::now(&w.clock),
    ));
    w.storage.create_project(p2).await.unwrap();
    let answer = w.api_get("/api/indicators/p1", "OTHERKEY").await;
    assert_eq!(answer.pair(), (403, "Forbidden: bad X-API-KEY\n"));
    let answer = w.api_get("/api/indicators/p2", API_KEY).await;
    assert_eq!(answer.pair(), (403, "Forbidden: bad X-API-KEY\n"));
    let answer = w.api_get("/api/indicators/p2", "OTHERKEY").await;
    assert_eq!(answer.pair(), (200, ""));
    // The admin token opens every project.
    let answer = w.api_get("/api/indicators/p2", ADMIN_TOKEN).await;
    assert_eq!(answer.pair(), (200, ""));
}

#[tokio::test]
async fn an_unknown_project_is_404() {
    let w = api_world().await;
    for key in [None, Some(API_KEY), Some(ADMIN_TOKEN)] {
        let answer = w
            .send(request(Method::GET, "/api/indicators/nope", key, ""))
            .await;
        assert_eq!(answer.pair(), (404, "Not Found\n"), "{key:?}");
    }
}

#[tokio::test]
async fn without_a_key_nothing_changes() {
    let w = api_world_with_numerical().await;
    let before = w.snapshot();
    let calls = [
        (Method::GET, "/api/indicator/p1/srv1:a", ""),
        (Method::GET, "/api/filter/p1/OK", ""),
        (Method::GET, "/api/tagfilter/p1/OK", ""),
        (Method::GET, "/api/get/p1/srv1:a/policy", ""),
        (Method::POST, "/api/set/p1/srv1:a", "silent=1"),
        (Method::POST, "/api/create/p1/new:x", ""),
        (Method::POST, "/api/delete/p1/srv1:a", ""),
    ];
    for (method, path, body) in calls {
        for key in [None, Some("WRONGKEY")] {
            let answer = w.send(request(method.clone(), path, key, body)).await;
            assert_eq!(answer.status, 403, "{method} {path} {key:?}");
            assert_eq!(w.snapshot(), before, "{method} {path} {key:?}");
        }
    }
}

#[tokio::test]
async fn indicators_by_prefix() {
    let w = api_world().await;
    // okerrapi quotes the prefix; okerrclient sends it raw.
    for path in ["/api/indicators/p1/srv1%3A", "/api/indicators/p1/srv1:"] {
        let answer = w.api_get(path, API_KEY).await;
        assert_eq!(answer.pair(), (200, "srv1:a\nsrv1:b\n"), "{path}");
        assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    }
    // okerrclient's form without a prefix has a trailing slash.
    let answer = w.api_get("/api/indicators/p1/", API_KEY).await;
    assert_eq!(answer.pair(), (200, "other\nsrv1:a\nsrv1:b\n"));
    let answer = w.api_get("/api/indicators/p1/srv1%3Ab", API_KEY).await;
    assert_eq!(answer.pair(), (200, "srv1:b\n"));
    let answer = w.api_get("/api/indicators/p1/zzz", API_KEY).await;
    assert_eq!(answer.pair(), (200, ""));
    // The prefix is case-sensitive.
    let answer = w.api_get("/api/indicators/p1/SRV1", API_KEY).await;
    assert_eq!(answer.pair(), (200, ""));
}

#[tokio::test]
async fn one_indicator_as_okerrs_json() {
    let w = api_world().await;
    let id = w.indicator("srv1:a").await.unwrap().id;
    let expected = format!(
        r#"{{
    "age": 30,
    "args": {{
        "patience": "",
        "secret": ""
    }},
    "changed": 1735689600,
    "checkmethod": "heartbeat",
    "desc": "",
    "details": "",
    "disabled": false,
    "errage": 0,
    "expected": 1735693200,
    "flags": [
        "OK"
    ],
    "id": {id},
    "location": "",
    "maintenance": null,
    "name": "srv1:a",
    "patience": 1200,
    "policy": 1,
    "policyname": "Default",
    "policyperiod": "3600",
    "problem": false,
    "scheduled": 1735694400,
    "silent": false,
    "status": "OK",
    "statusage": 30,
    "tags": [
        "OK",
        "heartbeat",
        "passive",
        "policy:Default"
    ],
    "uerrage": 0,
    "updated": 1735689600
}}
"#
    );
    // okerrapi quotes the name, okerrclient does not.
    for path in ["/api/indicator/p1/srv1%3Aa", "/api/indicator/p1/srv1:a"] {
        let answer = w.api_get(path, API_KEY).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.content_type(), "application/json");
        assert_eq!(answer.body, expected, "{path}");
    }
    // The ERR one: errage counts, and it needs attention.
    let answer = w.api_get("/api/indicator/p1/srv1%3Ab", API_KEY).await;
    let json: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["status"], "ERR");
    assert_eq!(json["flags"], serde_json::json!(["ERR"]));
    assert_eq!(json["errage"], 30);
    assert_eq!(
        json["tags"],
        serde_json::json!(["ERR", "heartbeat", "passive", "ATTENTION", "policy:Default"])
    );
}

#[tokio::test]
async fn an_unknown_indicator_is_404() {
    let w = api_world().await;
    let answer = w.api_get("/api/indicator/p1/nope", API_KEY).await;
    assert_eq!(
        answer.pair(),
        (404, "No indicator with id nope in project with textid p1\n")
    );
    // An invalid name is unknown too.
    let answer = w.api_get("/api/indicator/p1/a%40b", API_KEY).await;
    assert_eq!(
        answer.pair(),
        (404, "No indicator with id a@b in project with textid p1\n")
    );
}

#[tokio::test]
async fn filter() {
    let w = api_world_with_numerical().await;
    // A user-created indicator starts in maintenance.
    let answer = w.api_post("/api/create/p1/new:x", API_KEY, "").await;
    assert_eq!(answer.status, 200);
    let cases = [
        // okerrclient sends `!` raw and ends with a slash; okerrapi quotes each part.
        ("heartbeat/!maintenance", "other\nsrv1:a\nsrv1:b\n"),
        ("heartbeat/%21maintenance", "other\nsrv1:a\nsrv1:b\n"),
        ("heartbeat/!maintenance/", "other\nsrv1:a\nsrv1:b\n"),
        ("heartbeat/-maintenance", "other\nsrv1:a\nsrv1:b\n"),
        ("maintenance", "new:x\n"),
        ("heartbeat/ERR", "srv1:b\n"),
        ("OK", "new:x\nother\nsrv1:a\ntemp\n"),
        ("passive/OK/!heartbeat", "temp\n"),
        ("policy:Default/ATTENTION", "new:x\nsrv1:b\n"),
        // `k=v`: a method argument, compared as text.
        ("maxlim=90", "temp\n"),
        ("maxlim%3D90", "temp\n"),
        ("numerical/maxlim=90/!maintenance", "temp\n"),
        ("maxlim=90.0", ""),
        ("maxlim=91", ""),
        ("patience=", "new:x\nother\nsrv1:a\nsrv1:b\ntemp\n"),
        // A tag has no value: always false.
        ("OK=1", ""),
        ("nosuchtag", ""),
    ];
    for (conditions, expected) in cases {
        let answer = w
            .api_get(&format!("/api/filter/p1/{conditions}"), API_KEY)
            .await;
        assert_eq!(answer.pair(), (200, expected), "{conditions}");
    }
}

#[tokio::test]
async fn tagfilter() {
    let w = api_world_with_numerical().await;
    let cases = [
        ("+passive/-ERR", "other\nsrv1:a\ntemp\n"),
        ("%2Bpassive/-ERR", "other\nsrv1:a\ntemp\n"),
        ("passive/ERR", "srv1:b\n"),
        ("-heartbeat", "temp\n"),
        ("+numerical/+OK", "temp\n"),
        ("-passive", ""),
    ];
    for (tags, expected) in cases {
        let answer = w
            .api_get(&format!("/api/tagfilter/p1/{tags}"), API_KEY)
            .await;
        assert_eq!(answer.pair(), (200, expected), "{tags}");
    }
}

#[tokio::test]
async fn set_changes_everything_at_once() {
    let w = World::new().await;
    w.push_form(Form::okerrupdate("p1", "srv1:a", "50").set("method", "numerical|maxlim=90"))
        .await;
    w.clock.advance(TimeDelta::seconds(30));
    let now = okerr::Clock::now(&w.clock);
    let before = w.indicator("srv1:a").await.unwrap();
    assert!(!before.silent);
    // okerrapi quotes the name.
    let answer = w
        .api_post(
            "/api/set/p1/srv1%3Aa",
            API_KEY,
            "silent=1&retest=1&maxlim=5",
        )
        .await;
    assert_eq!(
        answer.pair(),
        (
            200,
            "Changed srv1:a {'silent': 1, 'retest': 1, 'maxlim': '5'}\n"
        )
    );
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    let after = w.indicator("srv1:a").await.unwrap();
    assert!(after.silent);
    assert_eq!(after.method.args()["maxlim"], "5");
    assert_eq!(after.expected, Some(now), "retest expects an update now");
    assert_eq!(after.scheduled, Some(now + TimeDelta::seconds(1200)));
    let log = w.log("srv1:a").await;
    for line in ["api set silent on", "api retest", "api set maxlim = 5"] {
        assert!(log.contains(&line.to_owned()), "{line} in {log:?}");
    }
    let answer = w.api_get("/api/get/p1/srv1:a/silent", API_KEY).await;
    assert_eq!(answer.pair(), (200, "True\n"));
    let answer = w.api_get("/api/get/p1/srv1:a/maxlim", API_KEY).await;
    assert_eq!(answer.pair(), (200, "5\n"));

    // More fields, with the admin token and the `setarg` alias.
    let answer = w
        .api_post(
            "/api/setarg/p1/srv1:a",
            ADMIN_TOKEN,
            "policy=Daily&desc=it%27s+hot&silent=0&problem=7&maintenance=1&minlim=1",
        )
        .await;
    assert_eq!(
        answer.pair(),
        (
            200,
            "Changed srv1:a {'policy': 'Daily', 'desc': \"it's hot\", 'silent': 0, 'problem': 7, 'maintenance': 1, 'minlim': '1'}\n"
        )
    );
    let after = w.indicator("srv1:a").await.unwrap();
    assert_eq!(after.policy.as_str(), "Daily");
    assert_eq!(after.desc, "it's hot");
    assert!(!after.silent && after.problem && after.maintenance.is_some());
    assert_eq!(after.method.args()["minlim"], "1");

    // Nothing to change: the answer still lists nothing, and storage stays.
    let before = w.snapshot();
    let answer = w.api_post("/api/set/p1/srv1:a", API_KEY, "").await;
    assert_eq!(answer.pair(), (200, "Changed srv1:a {}\n"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn set_refuses_the_whole_request_on_a_bad_field() {
    let w = World::new().await;
    w.push_form(Form::okerrupdate("p1", "srv1:a", "50").set("method", "numerical|maxlim=90"))
        .await;
    let before = w.snapshot();
    let cases = [
        ("silent=x", 404, "silent can be only 0 or 1\n"),
        ("disabled=yes", 404, "disabled can be only 0 or 1\n"),
        ("problem=", 404, "problem can be only 0 or 1\n"),
        ("maintenance=x", 404, "maintenance can be only 0 or 1"),
        ("policy=Nope", 404, "No such policy\n"),
        // The silent flag comes first but is not applied either.
        ("silent=1&policy=Nope", 404, "No such policy\n"),
        (
            "silent=1&maxlim=abc",
            400,
            "Bad maxlim value 'abc', cannot convert to float\n",
        ),
        (
            "checkmethod=nope",
            404,
            "Unknown checkname with codename 'nope'\n",
        ),
        (
            "checkmethod=sslcert",
            404,
            "Method 'sslcert' is disabled: this server runs no active checks\n",
        ),
        (
            "name=renamed",
            400,
            "Renaming indicators is not supported\n",
        ),
    ];
    for (body, status, text) in cases {
        let answer = w.api_post("/api/set/p1/srv1%3Aa", API_KEY, body).await;
        assert_eq!(answer.pair(), (status, text), "{body}");
        assert_eq!(w.snapshot(), before, "{body}");
    }
    // An unknown indicator.
    let answer = w.api_post("/api/set/p1/nope", API_KEY, "silent=1").await;
    assert_eq!(
        answer.pair(),
        (404, "No indicator with id nope in project with textid p1\n")
    );
    // Only POST.
    let answer = w.api_get("/api/set/p1/srv1%3Aa", API_KEY).await;
    assert_eq!(answer.status, 405);
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn get_one_value() {
    let w = api_world_with_numerical().await;
    let id = w.indicator("srv1:a").await.unwrap().id;
    let cases = [
        ("srv1:a/policy", "Default\n"),
        ("srv1%3Aa/policy", "Default\n"),
        ("srv1:a/silent", "False\n"),
        ("srv1:a/problem", "False\n"),
        ("srv1:a/disabled", "False\n"),
        ("srv1:a/cm", "heartbeat\n"),
        ("srv1:a/checkmethod", "heartbeat\n"),
        ("srv1:a/desc", "\n"),
        ("srv1:a/patience", "\n"),
        ("temp/maxlim", "90\n"),
        ("temp/current", "36.6\n"),
        ("temp/checkmethod", "numerical\n"),
    ];
    for (rest, expected) in cases {
        for verb in ["get", "getarg"] {
            let answer = w.api_get(&format!("/api/{verb}/p1/{rest}"), API_KEY).await;
            assert_eq!(answer.pair(), (200, expected), "{verb} {rest}");
        }
    }
    let answer = w.api_get("/api/get/p1/srv1:a/nosuch", API_KEY).await;
    assert_eq!(
        answer.pair(),
        (
            404,
            format!("Indicator srv1:a with id {id} has no arg 'nosuch'").as_str()
        )
    );
    let answer = w.api_get("/api/get/p1/nope/policy", API_KEY).await;
    assert_eq!(
        answer.pair(),
        (404, "No indicator with id nope in project with textid p1\n")
    );
    let answer = w.api_get("/api/get/p1/srv1:a", API_KEY).await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn create_and_delete() {
    let w = api_world().await;
    let answer = w.api_post("/api/create/p1/new:x", API_KEY, "").await;
    assert_eq!(answer.pair(), (200, "Created new:x@p1 (OK)\n"));
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    let created = w.indicator("new:x").await.unwrap();
    assert_eq!(created.status, Status::Ok);
    assert_eq!(created.method.codename(), "heartbeat");
    assert_eq!(created.policy.as_str(), "Default");
    assert!(created.maintenance.is_some(), "created in maintenance");
    assert!(
        w.alerts()
            .await
            .contains(&"created by api from 1.2.3.4".to_owned())
    );
    let answer = w.api_get("/api/get/p1/new:x/checkmethod", API_KEY).await;
    assert_eq!(answer.pair(), (200, "heartbeat\n"));

    let before = w.snapshot();
    // Only POST, checked after the key.
    let answer = w.api_get("/api/create/p1/new:x", API_KEY).await;
    assert_eq!(answer.pair(), (400, "Must be HTTP POST request"));
    let answer = w.get("/api/create/p1/new:x").await;
    assert_eq!(answer.status, 403);
    // Once only.
    let answer = w.api_post("/api/create/p1/new:x", API_KEY, "").await;
    assert_eq!(answer.pair(), (400, "Indicator new:x already exists\n"));
    let answer = w.api_post("/api/create/p1/a%40b", API_KEY, "").await;
    assert_eq!(
        answer.pair(),
        (400, "Do not create indicator 'a@b': bad name\n")
    );
    assert_eq!(w.snapshot(), before);

    let answer = w.api_get("/api/delete/p1/new:x", API_KEY).await;
    assert_eq!(answer.pair(), (400, "Must be HTTP POST request\n"));
    assert_eq!(w.snapshot(), before);
    let answer = w.api_post("/api/delete/p1/new:x", API_KEY, "").await;
    assert_eq!(
        answer.pair(),
        (200, "Deleted indicator new:x from project p1\n")
    );
    assert!(w.indicator("new:x").await.is_none());
    assert_eq!(w.names().await, ["other", "srv1:a", "srv1:b"]);
    let before = w.snapshot();
    let answer = w.api_post("/api/delete/p1/new:x", API_KEY, "").await;
    assert_eq!(answer.pair(), (404, "Project p1 has no indicator new:x\n"));
    let answer = w.api_post("/api/delete/p1/a%40b", API_KEY, "").await;
    assert_eq!(answer.pair(), (404, "Project p1 has no indicator a@b\n"));
    assert_eq!(w.snapshot(), before);
    // okerrapi quotes the name; the admin token may delete too.
    let answer = w.api_post("/api/delete/p1/srv1%3Aa", ADMIN_TOKEN, "").await;
    assert_eq!(
        answer.pair(),
        (200, "Deleted indicator srv1:a from project p1\n")
    );
    // A deleted indicator is created anew by the next update.
    w.push("srv1:a", "OK").await;
    assert!(w.indicator("srv1:a").await.unwrap().maintenance.is_none());
}

#[tokio::test]
async fn create_respects_the_indicator_limit() {
    let w = World::with(|p| p.max_indicators = Some(1)).await;
    w.push("srv1:a", "OK").await;
    let before = w.snapshot();
    let answer = w.api_post("/api/create/p1/new:x", API_KEY, "").await;
    assert_eq!(
        answer.pair(),
        (
            400,
            "ERROR:LIMIT_MAXINDICATORS Project already has 1 indicators, maxindicators is 1. Indicator not created\n"
        )
    );
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn checkmethods_needs_no_key() {
    let w = World::new().await;
    let answer = w.get("/api/checkmethods").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type(), "application/json");
    // okerr's json.dumps(sort_keys=True, indent=4)
    assert!(
        answer
            .body
            .starts_with("{\n    \"dns\": {\n        \"args\": {\n"),
        "{}",
        answer.body
    );
    assert!(answer.body.ends_with("}\n"));
    let json: Value = serde_json::from_str(&answer.body).unwrap();
    let methods: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        methods,
        [
            "dns",
            "dnsbl",
            "heartbeat",
            "httpgrep",
            "httpstatus",
            "logic",
            "numerical",
            "ping",
            "sha1dynamic",
            "sha1static",
            "sslcert",
            "string",
            "tcpport",
            "whois"
        ]
    );
    assert_eq!(json["numerical"]["name"], "Numerical");
    assert_eq!(json["logic"]["name"], "Logical expression");
    assert_eq!(json["logic"]["args"]["expr"]["default"], "True");
    assert_eq!(json["numerical"]["remote"], false);
    assert_eq!(json["numerical"]["args"]["maxlim"]["default"], "");
    assert_eq!(json["numerical"]["args"]["current"]["textname"], "value");
    assert_eq!(
        json["string"]["args"]["options"]["desc"],
        "text, dynamic, empty_ok, empty_err, reinit"
    );
    assert_eq!(json["heartbeat"]["args"]["secret"]["default"], "");
    assert_eq!(json["httpgrep"]["name"], "HTTP grep");
    assert_eq!(json["httpgrep"]["remote"], true);
    assert_eq!(json["httpgrep"]["args"]["mustnothave"]["default"], "Error");
    assert_eq!(json["sslcert"]["args"]["days"]["default"], "20");
    assert_eq!(json["dns"]["args"]["options"]["default"], "init dynamic");
    assert_eq!(json["tcpport"]["args"]["port"]["default"], "80");
    // every argument a method parses is in the table, with the same default
    for codename in ["heartbeat", "numerical", "string", "logic"] {
        let m = okerr::CheckMethod::with_defaults(codename).unwrap();
        let table = json[codename]["args"].as_object().unwrap();
        assert_eq!(table.len(), m.args().len(), "{codename}");
        for (name, value) in m.args() {
            assert_eq!(table[name]["default"], value.as_str(), "{codename} {name}");
        }
    }
    // the active methods are listed, not yet created
    for m in okerr::ActiveMethod::ALL {
        let table = json[m.codename()]["args"].as_object().unwrap();
        let defaults = okerr::ActiveArgs::defaults(m);
        assert_eq!(table.len(), defaults.all().len(), "{m}");
        assert_eq!(
            okerr::CheckMethod::with_defaults(m.codename())
                .unwrap_err()
                .to_string(),
            format!("Method '{m}' is disabled")
        );
    }
}

#[tokio::test]
async fn healthz() {
    let w = World::new().await;
    // The probe writes one setting (to prove the database takes writes), the same each
    // time: after the first, /healthz changes nothing.
    assert_eq!(w.get("/healthz").await.pair(), (200, "OK\n"));
    assert_eq!(
        w.storage.setting("healthz_probe").await.unwrap().as_deref(),
        Some("ok")
    );
    let before = w.snapshot();
    let answer = w.get("/healthz").await;
    assert_eq!(answer.pair(), (200, "OK\n"));
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let w = World::new().await;
    // `/` is the web pages' home (a redirect); see tests/web.rs.
    for path in [
        "/nothing",
        "/api",
        "/api/nothing",
        "/api/indicator/p1/",
        "/api/indicators",
    ] {
        let answer = w.api_get(path, API_KEY).await;
        assert_eq!(answer.status, 404, "{path}");
    }
}

#[tokio::test]
async fn a_request_id_is_given_and_kept() {
    let w = World::new().await;
    let first = w.get("/healthz").await;
    let second = w.get("/healthz").await;
    let (first, second) = (
        first.headers.get("x-request-id").unwrap(),
        second.headers.get("x-request-id").unwrap(),
    );
    assert_ne!(first, second, "each request has an id of its own");
    let mut req = request(Method::GET, "/healthz", None, "");
    req.headers_mut()
        .insert("x-request-id", "my-id-17".parse().unwrap());
    let answer = w.send(req).await;
    assert_eq!(answer.headers.get("x-request-id").unwrap(), "my-id-17");
}

#[tokio::test]
async fn the_api_sees_what_updates_did() {
    let w = api_world().await;
    w.push("srv1:a", "ERR").await;
    let answer = w.api_get("/api/filter/p1/ERR", API_KEY).await;
    assert_eq!(answer.pair(), (200, "srv1:a\nsrv1:b\n"));
    let ids: Vec<_> = w
        .storage
        .indicators(w.project.id)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), 3);
}

/// okerrclient sends `/api/filter/p1/` when no condition is given: every name.
#[tokio::test]
async fn filters_without_conditions_list_everything() {
    let w = common::World::new().await;
    for name in ["b", "a"] {
        w.push(name, "OK").await;
    }
    for path in ["/api/filter/p1/", "/api/filter/p1", "/api/tagfilter/p1/"] {
        let answer = w.api_get(path, API_KEY).await;
        assert_eq!(answer.pair(), (200, "a\nb\n"), "{path}");
    }
}

#[tokio::test]
async fn policy_retry_schedules_are_read_and_set() {
    let w = api_world().await;
    let schedule = |s: &str| okerr::RetrySchedule::parse(s).unwrap().to_string();
    let answer = w.api_get("/api/policy/p1/Default", API_KEY).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["name"], "Default");
    assert_eq!(json["retry_schedule"], "");
    assert!(json.get("secret").is_none(), "{json}");

    // Refused at once with okerr's text, and nothing changes.
    let before = w.snapshot();
    let bad = okerr::RetrySchedule::parse("soon").unwrap_err().to_string();
    let answer = w
        .api_post(
            "/api/policy/p1/Default",
            API_KEY,
            "retry_schedule=30s+5m&recovery_retry_schedule=soon",
        )
        .await;
    assert_eq!(
        answer.pair(),
        (400, format!("recovery retry schedule: {bad}\n").as_str())
    );
    let answer = w
        .api_post("/api/policy/p1/Nope", API_KEY, "retry_schedule=30s")
        .await;
    assert_eq!(answer.pair(), (404, "Project p1 has no policy Nope\n"));
    let answer = w
        .api_post("/api/policy/p1/Default", "WRONGKEY", "retry_schedule=30s")
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(w.snapshot(), before);

    // Set: only the fields sent change.
    let answer = w
        .api_post("/api/policy/p1/Default", API_KEY, "retry_schedule=30s+5m")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["retry_schedule"], schedule("30s 5m"));
    assert_eq!(json["recovery_retry_schedule"], "");
    let answer = w
        .api_post(
            "/api/policy/p1/Default",
            API_KEY,
            "recovery_retry_schedule=1m",
        )
        .await;
    let json: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["retry_schedule"], schedule("30s 5m"));
    assert_eq!(json["recovery_retry_schedule"], schedule("1m"));
    let stored = w
        .engine
        .storage()
        .project_by_textid("p1")
        .await
        .unwrap()
        .unwrap();
    let policy = stored.policy("Default").unwrap();
    assert_eq!(policy.retry_schedule.to_string(), schedule("30s 5m"));
    assert_eq!(policy.recovery_retry_schedule.to_string(), schedule("1m"));
}
