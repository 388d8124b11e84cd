//! The frame of every page: head, header bar, stylesheet and security headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::auth::Viewer;

/// The stylesheet, served at `/static/okerr.css`.
const CSS: &str = include_str!("okerr.css");

/// What a page is made of.
pub(crate) struct Page<'a> {
    title: String,
    body: Markup,
    viewer: Option<&'a Viewer>,
    refresh: Option<u32>,
}

impl<'a> Page<'a> {
    pub(crate) fn new(title: impl Into<String>, body: Markup) -> Self {
        Page {
            title: title.into(),
            body,
            viewer: None,
            refresh: None,
        }
    }

    /// Shows the viewer's links and the sign-out button.
    pub(crate) fn viewer(mut self, viewer: &'a Viewer) -> Self {
        self.viewer = Some(viewer);
        self
    }

    /// Reloads the page every `seconds`.
    pub(crate) fn refresh(mut self, seconds: u32) -> Self {
        self.refresh = Some(seconds);
        self
    }
}

/// `/p/{textid}`.
pub(crate) fn project_path(textid: &str) -> String {
    okerr::name::project_page_path(textid)
}

/// `/i/{textid}/{name}`: the link alert e-mails carry.
pub(crate) fn indicator_path(textid: &str, name: &str) -> String {
    okerr::name::indicator_page_path(textid, name)
}

/// A hidden field with the session's CSRF token (nothing for `X-API-KEY`).
pub(crate) fn csrf_field(viewer: &Viewer) -> Markup {
    html! {
        @if let Some(token) = &viewer.csrf {
            input type="hidden" name="csrf" value=(token);
        }
    }
}

fn header_bar(viewer: Option<&Viewer>) -> Markup {
    html! {
        header {
            a.brand href="/" { "okerr" }
            @if let Some(viewer) = viewer {
                @if viewer.admin {
                    a href="/admin" { "Projects" }
                }
                span.spacer {}
                @if viewer.csrf.is_some() {
                    form.inline method="post" action="/logout" {
                        (csrf_field(viewer))
                        button.link type="submit" { "Sign out" }
                    }
                }
            }
        }
    }
}

/// The page as HTML, with headers that keep it private and unframed, and allow no
/// script at all.
pub(crate) fn render(status: StatusCode, page: Page<'_>) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = page.refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (page.title) " - okerr" }
                link rel="stylesheet" href="/static/okerr.css";
            }
            body {
                (header_bar(page.viewer))
                main { (page.body) }
            }
        }
    };
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// A page with one message.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p.error role="alert" { (message) }
        p { a href="/" { "Home" } }
    };
    render(status, Page::new(status.as_str(), body))
}

/// `GET /static/okerr.css`.
pub(crate) async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}
