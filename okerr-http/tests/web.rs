//! The web pages through `Router::oneshot`: sign-in and sessions, CSRF, `X-API-KEY`, what
//! the pages show, and that refused requests change nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::TimeDelta;
use common::{ADMIN_TOKEN, API_KEY, Answer, Form, World, quote_plus};
use okerr::{ApiKey, NewProject, Storage, TextId};

/// A cookie-keeping client over a [`World`], as a browser would be.
struct Browser<'w> {
    world: &'w World,
    cookies: BTreeMap<String, String>,
}

impl<'w> Browser<'w> {
    fn new(world: &'w World) -> Self {
        Browser {
            world,
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, body: &str) -> Answer {
        let mut b = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            b = b.header(header::COOKIE, jar.join("; "));
        }
        if !body.is_empty() {
            b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let answer = self
            .world
            .send(b.body(Body::from(body.to_owned())).unwrap())
            .await;
        for set in answer.headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        answer
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, "").await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(Method::POST, path, &body).await
    }

    /// Signs in with `key` (and `textid`) through the form; the answer to the POST.
    async fn sign_in(&mut self, textid: &str, key: &str) -> Answer {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        let csrf = csrf(&form.body);
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", ""),
                ("textid", textid),
                ("key", key),
            ],
        )
        .await
    }
}

/// The CSRF token of the first form on a page.
fn csrf(body: &str) -> String {
    let start = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[start..].split('"').next().unwrap().to_owned()
}

fn location(answer: &Answer) -> &str {
    answer
        .headers
        .get(header::LOCATION)
        .map_or("", |v| v.to_str().unwrap())
}

/// `srv:ok` OK, `srv:bad` ERR (tagged `db`), `other` OK, 30 s ago.
async fn web_world() -> World {
    let w = World::new().await;
    w.push("srv:ok", "OK").await;
    w.push_form(
        Form::okerrupdate("p1", "srv:bad", "ERR")
            .set("tags", "db")
            .set("details", "disk full"),
    )
    .await;
    w.push("other", "OK").await;
    w.clock.advance(TimeDelta::seconds(30));
    // The first page makes the cookie key (a server setting); snapshots start after it.
    assert_eq!(w.get("/login").await.status, 200);
    w
}

/// Storage is as it was.
#[track_caller]
fn unchanged(w: &World, before: &okerr::MemorySnapshot) {
    assert!(w.snapshot() == *before, "storage changed");
}

#[tokio::test]
async fn without_a_session_every_page_redirects_to_sign_in() {
    let w = web_world().await;
    let before = w.snapshot();
    for (path, next) in [
        ("/p/p1", "%2Fp%2Fp1"),
        ("/p/p1?tag=ERR", "%2Fp%2Fp1%3Ftag%3DERR"),
        ("/i/p1/srv:ok", "%2Fi%2Fp1%2Fsrv%3Aok"),
        ("/p/p1/policies", "%2Fp%2Fp1%2Fpolicies"),
        ("/admin", "%2Fadmin"),
    ] {
        let answer = w.get(path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&answer), format!("/login?next={next}"), "{path}");
    }
    let answer = w.get("/").await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/login"));
    // A form posted without a session changes nothing.
    let answer = w.post_form("/i/p1/srv:ok", "action=maintenance-on").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    // A forged or foreign cookie is no session.
    let mut b = Browser::new(&w);
    b.cookies
        .insert("okerr_session".to_owned(), "eyJ3aG8iOnt9fQ".to_owned());
    assert_eq!(b.get("/p/p1").await.status, StatusCode::SEE_OTHER);
    unchanged(&w, &before);
}

#[tokio::test]
async fn a_project_key_signs_in_with_a_secure_cookie_and_opens_its_project() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    let answer = b.sign_in("", API_KEY).await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/p/p1"));
    let set: Vec<&str> = answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("okerr_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "plain http: {session}");
    // The cookie is encrypted: nothing of its content shows.
    assert!(
        !session.contains("csrf") && !session.contains("project"),
        "{session}"
    );

    let page = b.get("/p/p1").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type(), "text/html; charset=utf-8");
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        page.body
            .contains(r#"<meta http-equiv="refresh" content="30">"#)
    );
    assert!(
        page.body
            .contains(r#"title="TextID: p1">test project</span>"#)
    );
    assert!(
        page.body.contains(r#"data-name="srv:ok" data-lamp="ok""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"data-name="srv:bad" data-lamp="err""#));
    assert!(page.body.contains("disk full"));
    assert!(page.body.contains(r#"href="/i/p1/srv:bad""#));
    assert!(
        page.body
            .contains("total: 3, OK: 2, ERR: 1, maintenance: 0, silent: 0, disabled: 0")
    );
    // Another TextID of the project opens it too.
    assert_eq!(b.get("/p/p1-alias").await.status, 200);
    // The indicator page: status, schedule in words and exact times, the log.
    let page = b.get("/i/p1/srv:bad").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="indicator" data-lamp="err""#));
    assert!(page.body.contains("ERR; expires no more until an update"));
    assert!(
        page.body
            .contains("http:1.2.3.4: switch OK &gt; ERR: disk full")
    );
    assert!(
        page.body
            .contains("ALERT:Changed status OK () -&gt; ERR (disk full)")
    );
    let page = b.get("/i/p1/srv:ok").await;
    assert!(page.body.contains("in 59m30s"), "expected in words");
    assert!(
        page.body.contains("2025-01-01 01:00:00 UTC"),
        "expected exactly"
    );
    assert!(page.body.contains("in 1h19m"), "expires in words");
    assert!(
        page.body.contains("2025-01-01 01:20:00 UTC"),
        "expires exactly"
    );
    // A key's session opens its own project only, and no admin page.
    let p2 = NewProject::new("second", TextId::parse("p2").unwrap());
    w.storage.create_project(p2).await.unwrap();
    assert_eq!(b.get("/p/p2").await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get("/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!((b.get("/").await.status.as_u16()), 303);
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let mut w = web_world().await;
    w.config = okerr_http::HttpConfig::new("https://okerr.example/".parse().unwrap());
    let mut b = Browser::new(&w);
    let answer = b.sign_in("p1", API_KEY).await;
    assert_eq!(answer.status, 303);
    let all: Vec<&str> = answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = all
        .iter()
        .find(|c| c.starts_with("okerr_session="))
        .unwrap();
    assert!(session.contains("Secure"), "{session}");
}

#[tokio::test]
async fn a_wrong_key_or_a_missing_form_token_opens_no_session() {
    let w = web_world().await;
    let mut other = NewProject::new("second", TextId::parse("p2").unwrap());
    other.api_keys.push(ApiKey::new(
        "k2",
        "OTHERKEY",
        "t",
        okerr::Clock::now(&w.clock),
    ));
    w.storage.create_project(other).await.unwrap();
    let before = w.snapshot();
    for (textid, key) in [
        ("", "WRONG"),
        ("p1", "WRONG"),
        ("p2", API_KEY),
        ("nope", API_KEY),
        ("", ""),
    ] {
        let mut b = Browser::new(&w);
        let answer = b.sign_in(textid, key).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{textid} {key}");
        assert!(answer.body.contains("Wrong key"), "{}", answer.body);
        assert!(!b.cookies.contains_key("okerr_session"));
        assert_eq!(b.get("/p/p1").await.status, StatusCode::SEE_OTHER);
    }
    // The sign-in form's own token: without it (or with another browser's), no session.
    let mut b = Browser::new(&w);
    b.get("/login").await;
    let answer = b.post("/login", &[("key", API_KEY)]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.body.contains("CSRF"), "{}", answer.body);
    let mut stranger = Browser::new(&w);
    let token = csrf(&stranger.get("/login").await.body);
    let answer = b
        .post("/login", &[("csrf", &token), ("key", API_KEY)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("okerr_session"));
    // A foreign `next` is not followed.
    let mut b = Browser::new(&w);
    let token = csrf(&b.get("/login?next=//evil.example/").await.body);
    let answer = b
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("next", "//evil.example/"),
                ("key", API_KEY),
            ],
        )
        .await;
    assert_eq!(location(&answer), "/p/p1");
    let token = csrf(&b.get("/login").await.body);
    let answer = b
        .post(
            "/login",
            &[("csrf", &token), ("next", "/i/p1/other"), ("key", API_KEY)],
        )
        .await;
    assert_eq!(location(&answer), "/i/p1/other");
    unchanged(&w, &before);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let page = b.get("/i/p1/srv:ok").await;
    let token = csrf(&page.body);
    let before = w.snapshot();
    for fields in [
        vec![("action", "maintenance-on")],
        vec![("action", "maintenance-on"), ("csrf", "")],
        vec![
            ("action", "maintenance-on"),
            ("csrf", "0123456789abcdef0123456789abcdef"),
        ],
        vec![("action", "delete"), ("confirm", "yes")],
    ] {
        let answer = b.post("/i/p1/srv:ok", &fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(answer.body.contains("CSRF token missing or wrong"));
    }
    let policies = [("name", "Default"), ("period", "5m"), ("patience", "1m")];
    assert_eq!(b.post("/p/p1/policies", &policies).await.status, 403);
    assert_eq!(b.post("/logout", &[]).await.status, 403);
    unchanged(&w, &before);
    // With its token, the same form works, and the project page shows it.
    let answer = b
        .post(
            "/i/p1/srv:ok",
            &[("csrf", &token), ("action", "maintenance-on")],
        )
        .await;
    assert_eq!(
        (answer.status.as_u16(), location(&answer)),
        (303, "/i/p1/srv:ok")
    );
    assert!(w.indicator("srv:ok").await.unwrap().maintenance.is_some());
    assert!(
        w.log("srv:ok")
            .await
            .contains(&"web key k1 set maintenance".to_owned())
    );
    let page = b.get("/p/p1").await;
    assert!(
        page.body
            .contains(r#"data-name="srv:ok" data-lamp="maintenance""#)
    );
    assert!(page.body.contains("maintenance: 1"));
    // A bad action or an unconfirmed delete is a clear 400 and changes nothing.
    let before = w.snapshot();
    let answer = b
        .post("/i/p1/srv:ok", &[("csrf", &token), ("action", "explode")])
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.contains("Unknown action &#39;explode&#39;")
            || answer.body.contains("Unknown action 'explode'")
    );
    let answer = b
        .post("/i/p1/srv:ok", &[("csrf", &token), ("action", "delete")])
        .await;
    assert_eq!(answer.status, 400);
    unchanged(&w, &before);
    let answer = b
        .post(
            "/i/p1/srv:ok",
            &[("csrf", &token), ("action", "delete"), ("confirm", "yes")],
        )
        .await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/p/p1"));
    assert!(w.indicator("srv:ok").await.is_none());
    // Signing out needs the token too, and ends the session in the browser.
    let answer = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!((answer.status.as_u16(), location(&answer)), (303, "/login"));
    assert!(!b.cookies.contains_key("okerr_session"));
    assert_eq!(b.get("/p/p1").await.status, 303);
}

#[tokio::test]
async fn every_action_of_the_indicator_page_goes_through_the_engine() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let token = csrf(&b.get("/i/p1/srv:bad").await.body);
    let mut act = async |action: &str| {
        let answer = b
            .post("/i/p1/srv:bad", &[("csrf", &token), ("action", action)])
            .await;
        assert_eq!(answer.status, 303, "{action}: {}", answer.body);
        w.indicator("srv:bad").await.unwrap()
    };
    assert!(act("silent-on").await.silent);
    assert!(!act("silent-off").await.silent);
    assert_eq!(act("set-ok").await.status, okerr::Status::Ok);
    assert_eq!(act("set-err").await.status, okerr::Status::Err);
    let retested = act("retest").await;
    assert!(!retested.dead);
    assert!(act("disable").await.disabled);
    assert!(!act("enable").await.disabled);
    assert!(act("maintenance-on").await.maintenance.is_some());
    assert!(act("maintenance-off").await.maintenance.is_none());
    let page = b.get("/i/p1/srv:bad").await;
    assert!(
        page.body.contains("web key k1 set silent on"),
        "{}",
        page.body
    );
    assert!(page.body.contains("web key k1 retest"));
}

#[tokio::test]
async fn x_api_key_opens_the_pages_for_scripts() {
    let w = web_world().await;
    let answer = w.api_get("/p/p1", API_KEY).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .body
            .contains(r#"data-name="srv:bad" data-lamp="err""#)
    );
    assert!(
        !answer.body.contains("name=\"csrf\""),
        "no session, no token"
    );
    assert_eq!(w.api_get("/i/p1/srv:bad", ADMIN_TOKEN).await.status, 200);
    assert_eq!(w.api_get("/admin", ADMIN_TOKEN).await.status, 200);
    // The API's refusals, in the API's words.
    let answer = w.api_get("/p/p1", "WRONG").await;
    assert_eq!(answer.pair(), (403, "Forbidden: bad X-API-KEY\n"));
    assert_eq!(w.api_get("/admin", API_KEY).await.status, 403);
    assert_eq!(w.api_get("/p/nope", API_KEY).await.status, 404);
    // A script's form needs no CSRF token: a browser never sends this header cross-site.
    let before = w.snapshot();
    let answer = w.api_post("/i/p1/other", "WRONG", "action=disable").await;
    assert_eq!(answer.status, 403);
    unchanged(&w, &before);
    let answer = w.api_post("/i/p1/other", API_KEY, "action=disable").await;
    assert_eq!(answer.status, 303);
    assert!(w.indicator("other").await.unwrap().disabled);
    assert!(
        w.log("other")
            .await
            .contains(&"web X-API-KEY set disabled on".to_owned())
    );
}

#[tokio::test]
async fn the_project_page_filters_by_prefix_and_tag_and_escapes_what_was_pushed() {
    let w = web_world().await;
    w.push_form(Form::okerrupdate("p1", "srv:html", "OK").set("details", "<b>bold</b> & \"q\""))
        .await;
    let rows = |body: &str| -> Vec<String> {
        body.match_indices("data-name=\"")
            .map(|(i, _)| body[i + 11..].split('"').next().unwrap().to_owned())
            .collect()
    };
    let page = w.api_get("/p/p1", API_KEY).await;
    assert_eq!(rows(&page.body), ["other", "srv:bad", "srv:html", "srv:ok"]);
    assert!(
        page.body
            .contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;q&quot;")
    );
    assert!(!page.body.contains("<b>bold"));
    let page = w.api_get("/p/p1?prefix=srv:", API_KEY).await;
    assert_eq!(rows(&page.body), ["srv:bad", "srv:html", "srv:ok"]);
    assert!(page.body.contains("Showing 3 of 4."));
    assert!(
        page.body.contains("total: 4,"),
        "the summary counts the whole project"
    );
    let page = w.api_get("/p/p1?tag=db", API_KEY).await;
    assert_eq!(rows(&page.body), ["srv:bad"]);
    let page = w.api_get("/p/p1?tag=ERR&prefix=other", API_KEY).await;
    assert!(rows(&page.body).is_empty());
    // Pending: past the period, before the patience runs out.
    w.clock.advance(TimeDelta::seconds(3600));
    let page = w.api_get("/p/p1?prefix=other", API_KEY).await;
    assert!(
        page.body.contains(r#"data-lamp="ok" data-marks="pending""#),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_session_ends_with_its_time_its_key_or_the_admin_token() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    assert_eq!(b.get("/p/p1").await.status, 200);
    w.clock.advance(TimeDelta::hours(12));
    assert_eq!(b.get("/p/p1").await.status, 303);

    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let mut project = w.storage.project(w.project.id).await.unwrap().unwrap();
    project.api_keys.clear();
    w.storage.save_project(&project).await.unwrap();
    assert_eq!(b.get("/p/p1").await.status, 303, "the key was revoked");

    let mut b = Browser::new(&w);
    let answer = b.sign_in("", ADMIN_TOKEN).await;
    assert_eq!(location(&answer), "/admin");
    assert_eq!(b.get("/p/p1").await.status, 200);
    w.storage
        .put_setting(
            okerr_http::ADMIN_TOKEN_SETTING,
            &okerr::project::sha256_hex("NEW"),
        )
        .await
        .unwrap();
    assert_eq!(b.get("/admin").await.status, 303, "the token changed");
}

#[tokio::test]
async fn policies_are_edited_with_clear_errors_and_all_or_nothing() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let page = b.get("/p/p1/policies").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"id="policy-Default""#) && page.body.contains(r#"id="policy-Daily""#)
    );
    let token = csrf(&page.body);
    let before = w.snapshot();
    let bad = [
        ("csrf", token.as_str()),
        ("name", "Default"),
        ("period", "soon"),
        ("patience", "1m"),
        ("subnets", "10.0.0.0/8 not-a-net"),
        ("http_update", "1"),
        ("reduction", "0"),
        ("webhook", "javascript:alert(1)"),
    ];
    let answer = b.post("/p/p1/policies", &bad).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.contains("period: Cannot parse &#39;soon&#39;")
            || answer.body.contains("period: Cannot parse 'soon'"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("not-a-net"));
    assert!(answer.body.contains("is not an http(s) URL"));
    unchanged(&w, &before);
    let good = [
        ("csrf", token.as_str()),
        ("name", "Default"),
        ("period", "5m"),
        ("patience", "1m"),
        ("secret", "s3cret"),
        ("subnets", "10.0.0.0/8, 192.168.1.7"),
        ("http_update", "1"),
        ("reduction", ""),
        ("webhook", "https://hooks.example/okerr"),
    ];
    let answer = b.post("/p/p1/policies", &good).await;
    assert_eq!(
        (answer.status.as_u16(), location(&answer)),
        (303, "/p/p1/policies?saved=Default")
    );
    let project = w.storage.project(w.project.id).await.unwrap().unwrap();
    let p = project.policy("Default").unwrap();
    assert_eq!((p.period.as_secs(), p.patience.as_secs()), (300, 60));
    assert!(p.secret.as_ref().unwrap().matches("s3cret"));
    assert_eq!(p.subnets.len(), 2);
    assert!(p.http_update && !p.smtp_update && !p.autocreate && p.reduction.is_none());
    assert_eq!(
        p.url_statuschange.as_ref().unwrap().as_str(),
        "https://hooks.example/okerr"
    );
    // A new name adds a policy.
    let new = [
        ("csrf", token.as_str()),
        ("name", "Hourly"),
        ("period", "1h"),
        ("patience", "5m"),
    ];
    assert_eq!(b.post("/p/p1/policies", &new).await.status, 303);
    let project = w.storage.project(w.project.id).await.unwrap().unwrap();
    assert_eq!(project.policies.len(), 3);
    // Updates now follow the saved policy: no autocreate, a secret, subnets; the address
    // is checked first (nothing else is told to a sender from outside).
    let answer = w
        .post_form("/update", &Form::okerrupdate("p1", "x", "OK").encode())
        .await;
    assert_eq!(answer.body, "updates from 1.2.3.4 not allowed");
}

#[tokio::test]
async fn a_webhook_outside_the_outbound_networks_is_refused_and_the_page_says_why() {
    let mut w = web_world().await;
    w.config.outbound = okerr::OutboundNetworks::public();
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let token = csrf(&b.get("/p/p1/policies").await.body);
    let form = |hook: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("name", "Default".to_owned()),
            ("period", "1h".to_owned()),
            ("patience", "20m".to_owned()),
            ("autocreate", "1".to_owned()),
            ("webhook", hook.to_owned()),
        ]
    };
    let before = w.snapshot();
    for (hook, host) in [
        ("http://127.0.0.1:9/internal-admin", "127.0.0.1 (127.0.0.1)"),
        ("http://[::1]:9/internal-admin", "[::1] (::1)"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 (169.254.169.254)",
        ),
        ("http://localhost:9/internal-admin", "localhost ("),
    ] {
        let fields = form(hook);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = b.post("/p/p1/policies", &fields).await;
        assert_eq!(answer.status, 400, "{hook}");
        assert!(
            answer.body.contains(&format!("webhook: {host}")),
            "{hook}: {}",
            answer.body
        );
        assert!(
            answer.body.contains(
                "is outside the networks this server may reach (outbound_networks: public)"
            ),
            "{}",
            answer.body
        );
        unchanged(&w, &before);
    }
    // The operator allows loopback: the same webhook is saved.
    drop(b);
    w.config.outbound = okerr::OutboundNetworks(vec!["127.0.0.0/8".parse().unwrap()]);
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let token = csrf(&b.get("/p/p1/policies").await.body);
    let fields = [
        ("csrf", token.as_str()),
        ("name", "Default"),
        ("period", "1h"),
        ("patience", "20m"),
        ("webhook", "http://127.0.0.1:9/internal-admin"),
    ];
    assert_eq!(b.post("/p/p1/policies", &fields).await.status, 303);
    let project = w.storage.project(w.project.id).await.unwrap().unwrap();
    let hook = project.policy("Default").unwrap().url_statuschange.clone();
    assert_eq!(hook.unwrap().as_str(), "http://127.0.0.1:9/internal-admin");
}

#[tokio::test]
async fn daily_can_be_opened_deliberately_from_the_policies_page() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let page = b.get("/p/p1/policies").await;
    assert!(
        page.body.contains(r#"name="open_autocreate""#),
        "{}",
        page.body
    );
    let token = csrf(&page.body);
    let fields = [
        ("csrf", token.as_str()),
        ("name", "Daily"),
        ("period", "1d"),
        ("patience", "2h"),
        ("autocreate", "1"),
        ("open_autocreate", "1"),
    ];
    assert_eq!(b.post("/p/p1/policies", &fields).await.status, 303);
    let project = w.storage.project(w.project.id).await.unwrap().unwrap();
    assert!(project.policy("Daily").unwrap().open_autocreate);
    assert!(!project.policy("Default").unwrap().open_autocreate);
}

#[tokio::test]
async fn the_admin_lists_and_creates_projects() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    let answer = b.sign_in("", ADMIN_TOKEN).await;
    assert_eq!(location(&answer), "/admin");
    let page = b.get("/admin").await;
    assert!(page.body.contains(r#"data-textid="p1""#));
    let token = csrf(&page.body);
    let before = w.snapshot();
    for (name, textid) in [("", "x"), ("Name", "Bad_TextID"), ("Name", "p1")] {
        let answer = b
            .post(
                "/admin/projects",
                &[("csrf", &token), ("name", name), ("textid", textid)],
            )
            .await;
        assert_eq!(answer.status, 400, "{name} {textid}");
        assert!(answer.body.contains("class=\"error\""));
    }
    unchanged(&w, &before);
    let answer = b
        .post(
            "/admin/projects",
            &[("csrf", &token), ("name", "Web shop"), ("textid", "shop")],
        )
        .await;
    assert_eq!(answer.status, 201);
    let key_start = answer.body.find("id=\"new-key\">").unwrap() + 13;
    let key = answer.body[key_start..].split('<').next().unwrap();
    assert_eq!(key.len(), 40);
    assert_eq!(w.api_get("/p/shop", key).await.status, 200);
    assert_eq!(w.api_get("/api/indicators/shop", key).await.status, 200);
    // A project's session may not create projects.
    let mut p = Browser::new(&w);
    p.sign_in("p1", API_KEY).await;
    let answer = p.post("/admin/projects", &[("name", "x")]).await;
    assert_eq!(answer.status, 403);
}

#[tokio::test]
async fn unknown_indicators_and_the_stylesheet() {
    let w = web_world().await;
    assert_eq!(w.api_get("/i/p1/nope", API_KEY).await.status, 404);
    assert_eq!(w.api_get("/i/p1/123", API_KEY).await.status, 404);
    let css = w.get("/static/okerr.css").await;
    assert_eq!(
        (css.status.as_u16(), css.content_type()),
        (200, "text/css; charset=utf-8")
    );
    assert!(css.body.contains(".lamp-ok"));
    // The API is untouched by the pages.
    assert_eq!(
        w.api_get("/api/indicators/p1", API_KEY).await.pair(),
        (200, "other\nsrv:bad\nsrv:ok\n")
    );
}

#[tokio::test]
async fn links_to_indicators_with_odd_names_open_them() {
    let w = web_world().await;
    let names = [
        (
            "disk /var #2 ?x&y=é",
            "/i/p1/disk%20%2Fvar%20%232%20%3Fx%26y%3D%C3%A9",
        ),
        // Segments a browser would resolve if `/` stayed as it is.
        ("a/../b", "/i/p1/a%2F..%2Fb"),
        ("x/..", "/i/p1/x%2F.."),
    ];
    for (name, link) in names {
        w.push(name, "OK").await;
        let page = w.api_get("/p/p1", API_KEY).await;
        assert!(
            page.body.contains(&format!("href=\"{link}\"")),
            "{link} in {}",
            page.body
        );
        let answer = w.api_get(link, API_KEY).await;
        assert_eq!(answer.status, 200, "{link}");
        let shown = name.replace('&', "&amp;");
        assert!(
            answer.body.contains(&format!("{shown}</h1>")),
            "{}",
            answer.body
        );
        let answer = w.api_post(link, API_KEY, "action=silent-on").await;
        assert_eq!((answer.status.as_u16(), location(&answer)), (303, link));
        assert!(w.indicator(name).await.unwrap().silent, "{name}");
    }
}

/// Raw bytes and headers of `GET path` with `X-API-KEY` and `Accept-Encoding: gzip`.
async fn get_gzip(w: &World, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = Request::builder()
        .uri(path)
        .header("x-api-key", API_KEY)
        .header(header::ACCEPT_ENCODING, "gzip, deflate")
        .body(Body::empty())
        .unwrap();
    let response = w.router_from(w.peer).oneshot(req).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

#[tokio::test]
async fn pages_are_gzipped_for_browsers_that_ask_and_the_api_is_not() {
    use std::io::Read;
    let w = web_world().await;
    let (status, headers, body) = get_gzip(&w, "/p/p1").await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let mut page = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut page)
        .unwrap();
    assert!(
        page.contains(r#"data-name="srv:bad" data-lamp="err""#),
        "{page}"
    );
    // The API answers as okerr did, whatever the client accepts.
    let (status, headers, body) = get_gzip(&w, "/api/indicators/p1").await;
    assert_eq!(status, 200);
    assert!(headers.get(header::CONTENT_ENCODING).is_none());
    assert!(String::from_utf8(body).unwrap().contains("srv:bad"));
}

/// A notification that keeps failing ends, after `dead_letter_after`, as a dead letter:
/// listed on its indicator's page and with `state: dead` in `api/outbox`.
#[tokio::test]
async fn a_dead_letter_is_shown_on_the_indicator_page_and_in_the_api() {
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let w = World::new().await;
    w.push("srv:web", "OK").await;
    w.push("srv:web", "ERR").await;
    w.notifier.set_failing(true);
    let mut dead = 0;
    for _ in 0..200 {
        dead += w.engine.tick().await.unwrap().dead;
        if dead > 0 {
            break;
        }
        match w.storage.next_deadline().await.unwrap() {
            Some(t) => w.clock.set(t),
            None => break,
        }
    }
    assert!(dead > 0, "the alert was given up");
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("notification dead-lettered"))
        .collect();
    assert_eq!(warned.len(), dead, "one line per dead letter:\n{text}");
    assert!(
        warned
            .iter()
            .all(|l| l.contains("WARN") && l.contains("indicator=srv:web")),
        "{warned:#?}"
    );
    let api = w.api_get("/api/outbox/p1", API_KEY).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    let list: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    let dead: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "dead")
        .collect();
    assert!(!dead.is_empty(), "{list:#}");
    assert!(dead.iter().all(|e| e["indicator"] == "srv:web"), "{list:#}");
    assert_eq!(dead[0]["to"], "ops@example.com");
    assert!(dead[0]["attempts"].as_u64().unwrap() > 5, "{list:#}");
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("switched to failing")
    );
    assert_eq!(
        w.api_get("/api/outbox/p1", "WRONG").await.status,
        StatusCode::FORBIDDEN
    );

    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let page = b.get("/i/p1/srv:web").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"id="dead-letters""#), "{}", page.body);
    assert!(page.body.contains("ops@example.com"));
    assert!(page.body.contains("switched to failing"));
    let other = {
        w.push("srv:db", "OK").await;
        b.get("/i/p1/srv:db").await
    };
    assert!(
        !other.body.contains("dead-letters"),
        "only the indicator's own dead letters"
    );
}

#[tokio::test]
async fn retry_schedules_are_policy_fields_with_okerrs_check() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let page = b.get("/p/p1/policies").await;
    assert!(page.body.contains(r#"name="retry_schedule""#));
    assert!(page.body.contains(r#"name="recovery_retry_schedule""#));
    let token = csrf(&page.body);
    let before = w.snapshot();
    let form = |retry: &'static str, recovery: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("name", "Default".to_owned()),
            ("period", "1h".to_owned()),
            ("patience", "20m".to_owned()),
            ("autocreate", "1".to_owned()),
            ("retry_schedule", retry.to_owned()),
            ("recovery_retry_schedule", recovery.to_owned()),
        ]
    };
    let post = async |b: &mut Browser<'_>, fields: Vec<(&str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post("/p/p1/policies", &fields).await
    };
    let answer = post(&mut b, form("30s 5x", "")).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .body
            .contains("retry schedule: Cannot parse &#39;5x&#39;. Valid examples are: 10s, 5m, 2h")
            || answer
                .body
                .contains("retry schedule: Cannot parse '5x'. Valid examples are: 10s, 5m, 2h"),
        "{}",
        answer.body
    );
    unchanged(&w, &before);
    let answer = post(&mut b, form("30s 5m", "10")).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let project = w.storage.project(w.project.id).await.unwrap().unwrap();
    let p = project.policy("Default").unwrap();
    assert_eq!(p.retry_schedule.to_string(), "30s 5m");
    assert_eq!(p.recovery_retry_schedule.to_string(), "10");
    assert!(
        b.get("/p/p1/policies")
            .await
            .body
            .contains(r#"value="30s 5m""#)
    );
}

#[tokio::test]
async fn a_logic_indicator_is_edited_on_its_page_with_warnings() {
    let w = web_world().await;
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let token = csrf(&b.get("/i/p1/other").await.body);
    // Heartbeat to logic: the expression fields appear.
    let answer = b
        .post(
            "/i/p1/other",
            &[
                ("csrf", &token),
                ("action", "method"),
                ("checkmethod", "logic"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let page = b.get("/i/p1/other").await;
    assert!(
        page.body
            .contains(r#"<textarea name="expr" rows="3">True</textarea>"#),
        "{}",
        page.body
    );
    let before = w.snapshot();
    let answer = b
        .post(
            "/i/p1/other",
            &[
                ("csrf", &token),
                ("action", "method"),
                ("checkmethod", "logic"),
                ("expr", "s.get('x')"),
                ("dump", ""),
                ("init", ""),
            ],
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .body
            .contains("Bad expr: Operation type Attribute is not allowed"),
        "{}",
        answer.body
    );
    unchanged(&w, &before);
    let answer = b
        .post(
            "/i/p1/other",
            &[
                ("csrf", &token),
                ("action", "method"),
                ("checkmethod", "logic"),
                ("expr", "s['srv:ok'] and s['srv:gone']"),
                ("dump", "s['srv:ok']"),
                ("init", ""),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let other = w.indicator("other").await.unwrap();
    assert_eq!(other.method.args()["expr"], "s['srv:ok'] and s['srv:gone']");
    let page = b.get("/i/p1/other").await;
    assert!(
        page.body
            .contains("s[&#39;srv:gone&#39;] refers to no indicator")
            || page.body.contains("s['srv:gone'] refers to no indicator"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Evaluated next"));
}

/// A sensor that finds every site up.
#[derive(Debug)]
struct AllUp;

#[async_trait::async_trait]
impl okerr::Sensor for AllUp {
    async fn check(
        &self,
        _args: &okerr::ActiveArgs,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> okerr::CheckResult {
        okerr::CheckResult::ok("Got status code 200 OK as expected")
    }
}

#[tokio::test]
async fn an_active_indicator_is_made_on_its_page_and_shows_its_checks() {
    let mut w = web_world().await;
    w.engine = okerr::Engine::builder(w.storage.clone(), std::sync::Arc::new(w.clock.clone()))
        .notifier(std::sync::Arc::new(w.notifier.clone()))
        .sensor(std::sync::Arc::new(AllUp))
        .build();
    let mut b = Browser::new(&w);
    b.sign_in("p1", API_KEY).await;
    let page = b.get("/i/p1/other").await;
    assert!(
        page.body.contains(r#"<option value="sslcert">"#),
        "the active methods are offered: {}",
        page.body
    );
    let token = csrf(&page.body);
    let answer = b
        .post(
            "/i/p1/other",
            &[
                ("csrf", &token),
                ("action", "method"),
                ("checkmethod", "httpstatus"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let page = b.get("/i/p1/other").await;
    assert!(
        page.body
            .contains(r#"<input type="text" name="url" value="https://okerr.com/">"#),
        "its arguments: {}",
        page.body
    );
    let answer = b
        .post(
            "/i/p1/other",
            &[
                ("csrf", &token),
                ("action", "method"),
                ("checkmethod", "httpstatus"),
                ("url", "http://127.0.0.1:9/"),
                ("status", "200"),
                ("options", ""),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let ind = w.indicator("other").await.unwrap();
    assert_eq!(ind.method.args()["url"], "http://127.0.0.1:9/");
    assert_eq!(
        ind.scheduled,
        Some(okerr::Clock::now(&w.clock)),
        "checked at once"
    );
    assert_eq!(w.engine.tick().await.unwrap().checks, 1);
    w.engine.checks_settled().await;
    let page = b.get("/i/p1/other").await;
    for shown in [
        "Last check",
        "Checked next</th><td id=\"expires\">in 60m",
        "Got status code 200 OK as expected",
        "okerr-process: confirmed OK: Got status code 200 OK as expected",
        "http://127.0.0.1:9/",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
}
