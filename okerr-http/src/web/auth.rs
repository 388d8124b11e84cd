//! Who looks at a page: a session cookie made at sign-in, or the API's `X-API-KEY`.
//!
//! The session is a private cookie (axum-extra's [`PrivateCookieJar`]: encrypted and
//! authenticated with AES-GCM) under a key kept in the server settings
//! ([`COOKIE_KEY_SETTING`]), so every node of one storage reads every session. It holds
//! who signed in, a random CSRF token and its expiry; it is `HttpOnly`, `SameSite=Lax`
//! (a link from an alert e-mail still opens the page), `Secure` when the public URL is
//! https, and lasts [`SESSION_LIFETIME_HOURS`] hours. A project session names the API key
//! it was made with and ends when that key is revoked; an admin session ends when the
//! admin token changes.
//!
//! Every form carries the session's CSRF token (the sign-in form a token of its own, kept
//! in a short cookie). Requests with `X-API-KEY` need none: a browser never adds that
//! header to a cross-site request.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use maud::html;
use okerr::{Project, ProjectId, Storage, StorageError};
use rand::distr::{Alphanumeric, Distribution};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use super::layout::{self, Page};
use super::{PageError, WebResult};
use crate::form::Fields;
use crate::{ADMIN_TOKEN_SETTING, AppState, api};

/// The server setting that holds the key of the session cookies (128 hex digits).
pub const COOKIE_KEY_SETTING: &str = "web_cookie_key";
/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "okerr_session";
/// The cookie that carries the sign-in form's CSRF token.
const LOGIN_COOKIE: &str = "okerr_login";
/// How long a session lasts.
pub(crate) const SESSION_LIFETIME_HOURS: i64 = 12;

/// The cookie key, read from the server settings once (made there on first use).
#[derive(Clone, Default)]
pub(crate) struct WebKeys(Arc<OnceCell<Key>>);

impl std::fmt::Debug for WebKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebKeys(***)")
    }
}

impl WebKeys {
    async fn key(&self, storage: &dyn Storage) -> Result<Key, StorageError> {
        self.0
            .get_or_try_init(|| load_or_make_key(storage))
            .await
            .cloned()
    }
}

async fn load_or_make_key(storage: &dyn Storage) -> Result<Key, StorageError> {
    if let Some(key) = stored_key(storage).await? {
        return Ok(key);
    }
    let key = Key::generate();
    let text = hex(key.master());
    // Of several nodes starting on one database, the first to store its key wins and
    // the others take that one.
    if storage
        .put_setting_if_absent(COOKIE_KEY_SETTING, &text)
        .await?
    {
        return Ok(key);
    }
    match stored_key(storage).await? {
        Some(stored) => Ok(stored),
        None => {
            // The stored value is no key: replace it.
            storage.put_setting(COOKIE_KEY_SETTING, &text).await?;
            Ok(key)
        }
    }
}

async fn stored_key(storage: &dyn Storage) -> Result<Option<Key>, StorageError> {
    let Some(text) = storage.setting(COOKIE_KEY_SETTING).await? else {
        return Ok(None);
    };
    let key = unhex(&text).and_then(|bytes| Key::try_from(bytes.as_slice()).ok());
    if key.is_none() {
        tracing::warn!("setting {COOKIE_KEY_SETTING} is not a key: making a new one");
    }
    Ok(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// `n` random characters of `[A-Za-z0-9]` from the operating system's generator.
pub(crate) fn random_token(n: usize) -> String {
    Alphanumeric
        .sample_iter(&mut rand::rng())
        .take(n)
        .map(char::from)
        .collect()
}

/// What the session cookie holds.
#[derive(Debug, Serialize, Deserialize)]
struct SessionData {
    who: Who,
    csrf: String,
    /// Unix time it ends.
    exp: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Who {
    /// Signed in with the admin token whose stored hash is this.
    Admin { hash: String },
    /// Signed in with the API key of this id, of this project.
    Project { id: i64, key: String },
}

/// Who looks at a page.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The admin: every project, and the list of projects.
    pub(crate) admin: bool,
    /// The project a key opened (none for an admin session).
    pub(crate) project: Option<ProjectId>,
    /// The session's CSRF token; `None` for `X-API-KEY`, which needs none.
    pub(crate) csrf: Option<String>,
    /// How actions name this viewer in the log.
    pub(crate) actor: String,
}

impl Viewer {
    pub(crate) fn may_open(&self, project: &Project) -> bool {
        self.admin || self.project == Some(project.id)
    }
}

fn secure(state: &AppState) -> bool {
    state.config().public_url.scheme() == "https"
}

fn cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    path: &'static str,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(state))
        .build()
}

async fn jar(state: &AppState, headers: &HeaderMap) -> Result<PrivateCookieJar, PageError> {
    let key = state
        .web_keys()
        .key(state.engine().storage().as_ref())
        .await?;
    Ok(PrivateCookieJar::from_headers(headers, key))
}

/// The viewer of a valid session cookie, if there is one.
pub(crate) async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Viewer>, PageError> {
    let Some(cookie) = jar(state, headers).await?.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let Ok(data) = serde_json::from_str::<SessionData>(cookie.value()) else {
        return Ok(None);
    };
    if data.exp <= state.engine().clock().now().timestamp() {
        return Ok(None);
    }
    let storage = state.engine().storage();
    let viewer = match data.who {
        Who::Admin { hash } => {
            let current = storage.setting(ADMIN_TOKEN_SETTING).await?;
            (current.as_deref() == Some(hash.as_str())).then(|| Viewer {
                admin: true,
                project: None,
                csrf: Some(data.csrf),
                actor: "web admin".to_owned(),
            })
        }
        Who::Project { id, key } => {
            let project = storage.project(ProjectId(id)).await?;
            project
                .filter(|p| p.api_keys.iter().any(|k| k.id == key))
                .map(|p| Viewer {
                    admin: false,
                    project: Some(p.id),
                    csrf: Some(data.csrf),
                    actor: format!("web key {key}"),
                })
        }
    };
    Ok(viewer)
}

fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

/// The path and query of a request, to come back to after signing in.
fn here(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// The project of `textid` and who opens it: the `X-API-KEY` header (checked as the API
/// checks it), else the session; without either, a redirect to sign in.
pub(crate) async fn open_project(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    textid: &str,
) -> Result<(Project, Viewer), PageError> {
    if let Some(key) = api_key(headers) {
        // Refused in the API's words (plain text), as the API refuses this header.
        let project = api::authorize(state, headers, textid).await?;
        let admin = api::is_admin(state.engine().storage().as_ref(), key).await?;
        let viewer = Viewer {
            admin,
            project: Some(project.id),
            csrf: None,
            actor: "web X-API-KEY".to_owned(),
        };
        return Ok((project, viewer));
    }
    let viewer = session(state, headers)
        .await?
        .ok_or_else(|| PageError::sign_in(here(uri)))?;
    let project = state
        .engine()
        .storage()
        .project_by_textid(textid)
        .await?
        .filter(|p| viewer.may_open(p))
        .ok_or_else(|| {
            PageError::not_found(format!(
                "No project with TextID '{textid}' for this session"
            ))
        })?;
    Ok((project, viewer))
}

/// The admin, by the `X-API-KEY` header or the session; else a redirect to sign in, or
/// 403 for a project's session or key.
pub(crate) async fn open_admin(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Viewer, PageError> {
    let viewer = if let Some(key) = api_key(headers) {
        let admin = api::is_admin(state.engine().storage().as_ref(), key).await?;
        if !admin {
            return Err(PageError::forbidden("Forbidden: bad X-API-KEY"));
        }
        Viewer {
            admin,
            project: None,
            csrf: None,
            actor: "web X-API-KEY".to_owned(),
        }
    } else {
        session(state, headers)
            .await?
            .ok_or_else(|| PageError::sign_in(here(uri)))?
    };
    if !viewer.admin {
        return Err(PageError::forbidden(
            "Only the admin sees the list of projects",
        ));
    }
    Ok(viewer)
}

/// Refuses a form without the session's CSRF token (a request with `X-API-KEY` needs
/// none).
pub(crate) fn check_csrf(viewer: &Viewer, fields: &mut Fields) -> Result<(), PageError> {
    let Some(expected) = &viewer.csrf else {
        return Ok(());
    };
    let given = fields.take("csrf").unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(PageError::forbidden(
            "CSRF token missing or wrong: reload the page and try again",
        ))
    }
}

/// A path to go to after signing in: local paths only.
fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    ok.then_some(next)
}

/// The query of the sign-in page.
#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `GET /`: the admin's projects, the session's project, or the sign-in page.
pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> WebResult {
    let Some(viewer) = session(&state, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let target = match viewer.project {
        Some(id) if !viewer.admin => match state.engine().storage().project(id).await? {
            Some(p) => layout::project_path(p.textid.as_str()),
            None => "/login".to_owned(),
        },
        _ => "/admin".to_owned(),
    };
    Ok(Redirect::to(&target).into_response())
}

fn login_page(
    status: StatusCode,
    state: &AppState,
    jar: PrivateCookieJar,
    next: &str,
    textid: &str,
    error: Option<&str>,
) -> Response {
    let token = random_token(32);
    let jar = jar.add(cookie(state, LOGIN_COOKIE, token.clone(), "/login"));
    let body = html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form.signin method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            label {
                "TextID of the project "
                small { "(empty: any project the key opens)" }
                input type="text" name="textid" value=(textid) autocomplete="username";
            }
            label {
                "API key of the project, or the admin token"
                input type="password" name="key" required autocomplete="current-password";
            }
            button type="submit" { "Sign in" }
        }
    };
    let page = Page::new("Sign in", body);
    (jar, layout::render(status, page)).into_response()
}

/// `GET /login`: the sign-in form.
pub(crate) async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> WebResult {
    let jar = jar(&state, &headers).await?;
    let next = local_path(&query.next).unwrap_or_default();
    Ok(login_page(StatusCode::OK, &state, jar, next, "", None))
}

/// `POST /login`: a project's API key (with or without its TextID) or the admin token
/// opens a session.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut fields: Fields,
) -> WebResult {
    let jar = jar(&state, &headers).await?;
    let expected = jar.get(LOGIN_COOKIE).map(|c| c.value().to_owned());
    let given = fields.take("csrf").unwrap_or_default();
    let csrf_ok = expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(given.as_bytes())));
    let next = fields.take("next").unwrap_or_default();
    let next = local_path(&next).unwrap_or_default().to_owned();
    let textid = fields.take("textid").unwrap_or_default().trim().to_owned();
    if !csrf_ok {
        let error = "The sign-in form expired (CSRF token missing or wrong): try again";
        return Ok(login_page(
            StatusCode::FORBIDDEN,
            &state,
            jar,
            &next,
            &textid,
            Some(error),
        ));
    }
    let key = fields.take("key").unwrap_or_default();
    let storage = state.engine().storage();
    let found = if key.is_empty() {
        None
    } else if api::is_admin(storage.as_ref(), &key).await? {
        let hash = storage
            .setting(ADMIN_TOKEN_SETTING)
            .await?
            .unwrap_or_default();
        let target = if textid.is_empty() {
            "/admin".to_owned()
        } else {
            layout::project_path(&textid)
        };
        Some((Who::Admin { hash }, target))
    } else {
        let candidates = if textid.is_empty() {
            storage.projects().await?
        } else {
            storage
                .project_by_textid(&textid)
                .await?
                .into_iter()
                .collect()
        };
        candidates.into_iter().find_map(|p| {
            let key = p.api_keys.iter().find(|k| k.matches(&key))?;
            let who = Who::Project {
                id: p.id.0,
                key: key.id.clone(),
            };
            Some((who, layout::project_path(p.textid.as_str())))
        })
    };
    let Some((who, target)) = found else {
        tracing::info!(textid, "web sign-in refused");
        return Ok(login_page(
            StatusCode::FORBIDDEN,
            &state,
            jar,
            &next,
            &textid,
            Some("Wrong key (or it does not open this TextID)"),
        ));
    };
    let now = state.engine().clock().now();
    let data = SessionData {
        who,
        csrf: random_token(32),
        exp: now.timestamp() + SESSION_LIFETIME_HOURS * 3600,
    };
    let value = serde_json::to_string(&data).map_err(PageError::internal)?;
    let mut session = cookie(&state, SESSION_COOKIE, value, "/");
    session.set_max_age(time::Duration::hours(SESSION_LIFETIME_HOURS));
    let jar = jar
        .remove(Cookie::build(LOGIN_COOKIE).path("/login"))
        .add(session);
    let target = if next.is_empty() { target } else { next };
    Ok((jar, Redirect::to(&target)).into_response())
}

/// `POST /logout`: ends the session (with its CSRF token).
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut fields: Fields,
) -> WebResult {
    if let Some(viewer) = session(&state, &headers).await? {
        check_csrf(&viewer, &mut fields)?;
    }
    let jar = jar(&state, &headers)
        .await?
        .remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}
