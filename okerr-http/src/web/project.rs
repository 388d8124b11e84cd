//! `GET /p/{textid}`: every indicator of a project with its lamp, filtered by name prefix
//! and tag, under the summary line.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use okerr::{Indicator, ProjectSummary, Status};
use serde::Deserialize;

use super::auth::open_project;
use super::layout::{self, Page};
use super::{WebResult, fmt};
use crate::AppState;

/// The project page reloads itself this often.
pub(crate) const REFRESH_SECONDS: u32 = 30;

/// The lamp of an indicator: its colour class and what it means.
pub(crate) fn lamp(ind: &Indicator) -> (&'static str, &'static str) {
    if ind.disabled {
        ("disabled", "disabled")
    } else if ind.maintenance.is_some() {
        ("maintenance", "maintenance")
    } else {
        match ind.status {
            Status::Ok => ("ok", "OK"),
            Status::Err => ("err", "ERR"),
        }
    }
}

/// The marks beside the lamp: pending, silent, problem.
pub(crate) fn marks(ind: &Indicator, now: DateTime<Utc>) -> Vec<&'static str> {
    [
        (ind.pending(now), "pending"),
        (ind.silent, "silent"),
        (ind.problem, "problem"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// The lamp and its marks, as HTML.
pub(crate) fn lamp_markup(ind: &Indicator, now: DateTime<Utc>) -> Markup {
    let (class, label) = lamp(ind);
    let status = ind.status.as_str();
    html! {
        span class={ "lamp lamp-" (class) } title={ (label) " (" (status) ")" } {}
        @for mark in marks(ind, now) {
            span class={ "mark mark-" (mark) } title=(mark) { (mark) }
        }
    }
}

/// The summary line of the page: okerr's counts, in the order people read them.
fn summary_line(s: &ProjectSummary) -> String {
    format!(
        "total: {}, OK: {}, ERR: {}, maintenance: {}, silent: {}, disabled: {}",
        s.total, s.ok, s.err, s.maintenance, s.silent, s.disabled
    )
}

/// The filter of the project page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    tag: String,
}

impl Filter {
    /// A name prefix, and a tag among okerr's tags (`ERR`, `maintenance`, `policy:…`,
    /// the user's tags).
    fn admits(&self, ind: &Indicator, now: DateTime<Utc>) -> bool {
        let tag = self.tag.trim();
        ind.name.as_str().starts_with(self.prefix.trim())
            && (tag.is_empty() || ind.all_tags(now).iter().any(|t| t == tag))
    }
}

/// `GET /p/{textid}?prefix=&tag=`.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(textid): Path<String>,
    Query(filter): Query<Filter>,
) -> WebResult {
    let (project, viewer) = open_project(&state, &headers, &uri, &textid).await?;
    let mut all = state.engine().storage().indicators(project.id).await?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let now = state.engine().clock().now();
    let summary = ProjectSummary::of(&all);
    let shown: Vec<&Indicator> = all.iter().filter(|i| filter.admits(i, now)).collect();
    let textid = project.textid.as_str();
    let body = html! {
        h1 {
            span.project title={ "TextID: " (textid) } { (project.name) }
        }
        p.summary #summary { (summary_line(&summary)) }
        form.filter method="get" action=(layout::project_path(textid)) {
            label { "Name starts with" input type="text" name="prefix" value=(filter.prefix); }
            label { "Tag" input type="text" name="tag" value=(filter.tag) placeholder="ERR, maintenance, …"; }
            button type="submit" { "Filter" }
            a href=(layout::project_path(textid)) { "all" }
            span.spacer {}
            a href={ (layout::project_path(textid)) "/policies" } { "Policies" }
        }
        @if shown.len() != all.len() {
            p.muted { "Showing " (shown.len()) " of " (all.len()) "." }
        }
        @if all.is_empty() {
            p.muted {
                "No indicators yet. Push one: "
                code { "okerrupdate -i " (textid) " test:apache2 OK" }
            }
        } @else {
            table.indicators {
                thead {
                    tr { th { "" } th { "Name" } th { "Details" } th { "Updated" } th { "Status since" } th { "Tags" } }
                }
                tbody {
                    @for ind in &shown {
                        tr data-name=(ind.name) data-lamp=(lamp(ind).0) data-marks=(marks(ind, now).join(" ")) {
                            td.lamps { (lamp_markup(ind, now)) }
                            td { a href=(layout::indicator_path(textid, ind.name.as_str())) { (ind.name) } }
                            td { (ind.details) }
                            td title=(fmt::exact(ind.updated)) { (fmt::relative(ind.updated, now)) }
                            td title=(fmt::exact(ind.changed)) { (fmt::span((now - ind.changed).num_seconds())) }
                            td { @for tag in &ind.tags { span.tag { (tag) } } }
                        }
                    }
                }
            }
        }
        p.muted { "This page reloads every " (REFRESH_SECONDS) " seconds." }
    };
    let page = Page::new(project.name.clone(), body)
        .viewer(&viewer)
        .refresh(REFRESH_SECONDS);
    Ok(layout::render(StatusCode::OK, page))
}
