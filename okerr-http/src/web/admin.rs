//! `/admin`: the admin's list of projects, and a form that creates one (with an API key
//! shown once).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use maud::html;
use okerr::{ApiKey, NewProject, TextId};

use super::WebResult;
use super::auth::{Viewer, check_csrf, open_admin, random_token};
use super::layout::{self, Page};
use crate::AppState;
use crate::form::Fields;

async fn list(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<maud::Markup>,
) -> WebResult {
    let storage = state.engine().storage();
    let mut projects = storage.projects().await?;
    projects.sort_by(|a, b| a.textid.cmp(&b.textid));
    let mut rows = Vec::with_capacity(projects.len());
    for p in projects {
        let count = storage.count_indicators(p.id).await?;
        rows.push((p, count));
    }
    let body = html! {
        h1 { "Projects" }
        @if let Some(message) = message { (message) }
        table.projects {
            thead { tr { th { "TextID" } th { "Name" } th { "Indicators" } th { "API keys" } } }
            tbody {
                @for (p, count) in &rows {
                    tr data-textid=(p.textid) {
                        td { a href=(layout::project_path(p.textid.as_str())) { (p.textid) } }
                        td { (p.name) }
                        td { (count) }
                        td { (p.api_keys.len()) }
                    }
                }
            }
        }
        h2 { "New project" }
        form method="post" action="/admin/projects" {
            (layout::csrf_field(viewer))
            label { "Name" input type="text" name="name" required; }
            label { "TextID " small { "(a-z, 0-9, '-', '.'; empty: a random one)" } input type="text" name="textid"; }
            button type="submit" { "Create" }
        }
    };
    Ok(layout::render(
        status,
        Page::new("Projects", body).viewer(viewer),
    ))
}

/// `GET /admin`.
pub(crate) async fn page(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> WebResult {
    let viewer = open_admin(&state, &headers, &uri).await?;
    list(&state, &viewer, StatusCode::OK, None).await
}

/// `POST /admin/projects`: a project with okerr's two policies and one API key.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    mut fields: Fields,
) -> WebResult {
    let viewer = open_admin(&state, &headers, &uri).await?;
    check_csrf(&viewer, &mut fields)?;
    let name = fields.take("name").unwrap_or_default().trim().to_owned();
    let wanted = fields.take("textid").unwrap_or_default().trim().to_owned();
    let refuse = |message: String| {
        let message = html! { p.error role="alert" { (message) } };
        list(&state, &viewer, StatusCode::BAD_REQUEST, Some(message))
    };
    if name.is_empty() || name.chars().count() > 200 {
        return refuse("A project needs a name of 1 to 200 characters".to_owned()).await;
    }
    let textid = if wanted.is_empty() {
        random_token(40)
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .take(10)
            .collect()
    } else {
        wanted
    };
    let textid = match TextId::parse(&textid) {
        Ok(t) => t,
        Err(e) => return refuse(e.to_string()).await,
    };
    let storage = state.engine().storage();
    if storage.project_by_textid(textid.as_str()).await?.is_some() {
        return refuse(format!("The TextID '{textid}' is taken")).await;
    }
    let key = random_token(40);
    let now = state.engine().clock().now();
    let mut new = NewProject::new(name, textid);
    new.api_keys
        .push(ApiKey::new(random_token(8), &key, "made on the web", now));
    let project = match storage.create_project(new).await {
        Ok(p) => p,
        Err(e) if e.is_conflict() => return refuse("That TextID is taken".to_owned()).await,
        Err(e) => return Err(e.into()),
    };
    tracing::info!(textid = %project.textid, actor = viewer.actor, "project created from the web");
    let message = html! {
        div.notice #created {
            p { "Created project " strong { (project.name) } " with TextID " code #new-textid { (project.textid) } "." }
            p { "Its API key, shown only now: " code #new-key { (key) } }
            p { a href=(layout::project_path(project.textid.as_str())) { "Open it" } }
        }
    };
    list(&state, &viewer, StatusCode::CREATED, Some(message)).await
}
