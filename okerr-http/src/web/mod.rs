//! The web pages people keep open: sign-in, a project with its lamps, an indicator with
//! its log and actions, the policies, and the admin's list of projects.
//!
//! Server-rendered HTML (maud), one small stylesheet, no JavaScript: every change is a
//! plain form `POST` with a CSRF token, answered by a redirect. The project page reloads
//! itself (`<meta http-equiv="refresh">`). Pages open with a session cookie (see
//! [`auth`]) or, for scripts, the API's `X-API-KEY` header.

mod admin;
mod auth;
mod fmt;
mod indicator;
mod layout;
mod policies;
mod project;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};

use crate::{AppState, Error, Page};

pub(crate) use auth::WebKeys;
pub use auth::{COOKIE_KEY_SETTING, SESSION_COOKIE};
pub(crate) use layout::error_page;

/// The routes of the pages, merged into [`crate::router`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(auth::home))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/static/okerr.css", get(layout::css))
        .route("/p/{textid}", get(project::page))
        .route(
            "/p/{textid}/policies",
            get(policies::page).post(policies::save),
        )
        .route(
            "/i/{textid}/{*name}",
            get(indicator::page).post(indicator::act),
        )
        .route("/admin", get(admin::page))
        .route("/admin/projects", post(admin::create))
        // A project page of thousands of indicators is megabytes of HTML every 30 s:
        // gzip it for browsers that ask. The API and `/update` answer as okerr did.
        .layer(tower_http::compression::CompressionLayer::new())
}

/// The error of a page: shown as an HTML page ([`Page`]).
pub(crate) type PageError = Error<Page>;

/// What a page handler answers: a page, or its error.
pub(crate) type WebResult = Result<Response, PageError>;
