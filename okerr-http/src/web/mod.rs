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
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use okerr::{ActionError, StorageError};

use crate::AppState;
use crate::api::ApiError;

pub(crate) use auth::WebKeys;
pub use auth::{COOKIE_KEY_SETTING, SESSION_COOKIE};

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

/// Why a page is not shown.
pub(crate) enum WebError {
    /// No session: sign in first, then come back to this path.
    SignIn(String),
    /// Signed in, but not for this.
    Forbidden(String),
    /// No such project or indicator.
    NotFound(String),
    /// A form that cannot be used.
    BadRequest(String),
    /// The API's refusal of an `X-API-KEY`, in the API's words.
    Api(ApiError),
    /// Storage failed; already logged.
    Internal,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            WebError::SignIn(next) => {
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                return Redirect::to(&format!("/login?next={next}")).into_response();
            }
            WebError::Api(e) => return e.into_response(),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            WebError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error".to_owned(),
            ),
        };
        layout::error_page(status, &message)
    }
}

impl From<StorageError> for WebError {
    fn from(e: StorageError) -> Self {
        crate::internal(&e);
        WebError::Internal
    }
}

impl From<ActionError> for WebError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Storage(e) => e.into(),
            ActionError::NoSuchProject(_) | ActionError::NoSuchIndicator { .. } => {
                WebError::NotFound(e.to_string())
            }
            e => WebError::BadRequest(e.to_string()),
        }
    }
}

/// What a page handler answers.
pub(crate) type WebResult = Result<Response, WebError>;
