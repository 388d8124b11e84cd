//! The web pages in a real browser (headless chromium via chromedriver) against the
//! `okerr` binary: sign-in, the project page's lamps, maintenance from the indicator page,
//! sign-out, and the redirect to sign-in without a session. Screenshots of the project and
//! indicator pages go to `target/screenshots/`.
//!
//! They need `OKERR_TEST_CHROMEDRIVER` (set by `ensure_browser` in `.ci/services.sh`) and
//! skip without it, unless `OKERR_REQUIRE_BROWSER=1`.

use okerr_tests::browser::Browser;
use okerr_tests::{Server, path_segment};

/// Pushes one update and insists that it is accepted.
#[track_caller]
fn push(server: &Server, name: &str, status: &str, details: &str) {
    let textid = server.textid();
    let fields = [
        ("textid", textid),
        ("name", name),
        ("status", status),
        ("details", details),
        ("tags", "web"),
    ];
    let reply = server.http().update(&fields);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "{reply:?}"
    );
}

/// `POST /api/set/{textid}/{name}` with the project's key.
#[track_caller]
fn api_set(server: &Server, name: &str, fields: &[(&str, &str)]) {
    let path = format!(
        "api/set/{}/{}",
        path_segment(server.textid()),
        path_segment(name)
    );
    let reply = server
        .http()
        .post_form(&path, fields, &[("X-API-KEY", server.api_key())]);
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// The lamp of a row of the project page, once the row is there.
fn lamp(browser: &Browser, name: &str) -> Option<String> {
    browser.attr(&format!("tr[data-name=\"{name}\"]"), "data-lamp")
}

#[test]
fn the_project_page_shows_every_lamp_and_maintenance_from_the_indicator_page() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start(&[]);
    let base = server.url();
    let textid = server.textid().to_owned();
    let project_url = format!("{base}p/{textid}");

    // Without a session the page sends the browser to sign in, and back after it.
    browser.goto(&project_url);
    let login = browser.url();
    assert!(
        login.starts_with(&format!("{base}login?next=")),
        "redirected to sign in: {login}"
    );

    push(&server, "test:apache2", "OK", "running");
    push(&server, "test:db", "ERR", "connection refused");
    push(&server, "test:cron", "OK", "");
    push(&server, "test:backup", "OK", "last run 02:00");
    push(&server, "test:quiet", "ERR", "known issue");
    api_set(&server, "test:cron", &[("disabled", "1")]);
    api_set(&server, "test:backup", &[("maintenance", "1")]);
    api_set(&server, "test:quiet", &[("silent", "1")]);

    browser.fill("input[name=key]", server.api_key());
    browser.click("form.signin button[type=submit]");
    browser.wait("the project page after sign-in", |b| {
        (b.url() == project_url).then_some(())
    });

    let expected = [
        ("test:apache2", "ok"),
        ("test:db", "err"),
        ("test:cron", "disabled"),
        ("test:backup", "maintenance"),
        ("test:quiet", "err"),
    ];
    for (name, want) in expected {
        let got = browser.wait(&format!("the row of {name}"), |b| lamp(b, name));
        assert_eq!(got, want, "lamp of {name}");
    }
    assert_eq!(
        browser
            .attr("tr[data-name=\"test:quiet\"]", "data-marks")
            .as_deref(),
        Some("silent")
    );
    assert_eq!(
        browser.attr("h1 span.project", "title"),
        Some(format!("TextID: {textid}")),
        "the TextID on hover of the project name"
    );
    assert_eq!(
        browser.text("#summary"),
        "total: 5, OK: 2, ERR: 2, maintenance: 1, silent: 1, disabled: 1"
    );
    // The lamp is drawn: the browser applied the stylesheet.
    let css = browser.css_value("tr[data-name=\"test:db\"] .lamp", "background-color");
    assert!(css.contains("215, 58, 47"), "a red lamp: {css}");

    // Maintenance from the indicator page.
    browser.click("a[href$=\"/test:apache2\"]");
    browser.wait("the indicator page", |b| {
        b.attr("h1#indicator", "data-lamp").filter(|l| l == "ok")
    });
    assert!(browser.text("#details").contains("running"));
    browser.click("button[data-action=\"maintenance-on\"]");
    browser.wait("the maintenance lamp on the indicator page", |b| {
        b.attr("h1#indicator", "data-lamp")
            .filter(|l| l == "maintenance")
    });
    assert!(
        browser
            .attr("button[data-action=\"maintenance-off\"]", "type")
            .is_some()
    );
    let shot = browser.screenshot("indicator");
    assert!(std::fs::metadata(&shot).expect("indicator.png").len() > 1000);
    let stored = server
        .indicator(&textid, "test:apache2")
        .expect("test:apache2");
    assert!(
        stored["maintenance"].is_i64(),
        "stored in maintenance: {stored}"
    );

    browser.goto(&project_url);
    let got = browser.wait("the project page", |b| lamp(b, "test:apache2"));
    assert_eq!(got, "maintenance");
    assert!(browser.text("#summary").contains("maintenance: 2"));
    let shot = browser.screenshot("project");
    assert!(std::fs::metadata(&shot).expect("project.png").len() > 1000);

    // Signing out ends the session: the page sends the browser to sign in again.
    browser.click("header form button[type=submit]");
    browser.wait("the sign-in page after sign-out", |b| {
        b.url().starts_with(&format!("{base}login")).then_some(())
    });
    browser.goto(&project_url);
    assert!(browser.url().starts_with(&format!("{base}login?next=")));
}
