//! `/i/{textid}/{name}` (the link in alert e-mails): an indicator's status, method,
//! policy, schedule and recent log; and the manager's actions, through the engine.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use okerr::{
    Action, Indicator, IndicatorName, LogKind, MethodKind, OutboxEntry, Payload, Project, Status,
    Timing,
};

use super::auth::{Viewer, check_csrf, open_project};
use super::layout::{self, Page};
use super::project::{lamp, lamp_markup};
use super::{PageError, WebResult, fmt};
use crate::AppState;
use crate::form::Fields;

/// How many log lines the page shows.
const LOG_LINES: u32 = 50;

async fn find(
    state: &AppState,
    project: &Project,
    name: &str,
) -> Result<(IndicatorName, Indicator), PageError> {
    let missing = || {
        PageError::not_found(format!(
            "No indicator '{name}' in project {}",
            project.textid
        ))
    };
    let name = IndicatorName::parse(name).map_err(|_| missing())?;
    let ind = state
        .engine()
        .storage()
        .indicator(project.id, &name)
        .await?
        .ok_or_else(missing)?;
    Ok((name, ind))
}

/// One action button: a form of its own with the CSRF token.
fn button(viewer: &Viewer, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" {
            (layout::csrf_field(viewer))
            input type="hidden" name="action" value=(action);
            button class=(class) type="submit" data-action=(action) { (label) }
        }
    }
}

fn actions(viewer: &Viewer, ind: &Indicator) -> Markup {
    let toggle = |on: bool, yes: (&str, &str), no: (&str, &str)| {
        let (action, label) = if on { no } else { yes };
        button(viewer, action, label, "")
    };
    html! {
        div.actions #actions {
            (toggle(ind.maintenance.is_some(), ("maintenance-on", "Start maintenance"), ("maintenance-off", "Stop maintenance")))
            " "
            (toggle(ind.silent, ("silent-on", "Silence"), ("silent-off", "Unsilence")))
            " "
            (toggle(ind.disabled, ("disable", "Disable"), ("enable", "Enable")))
            " "
            (button(viewer, "retest", "Retest", ""))
            " "
            (button(viewer, "set-ok", "Set OK", ""))
            " "
            (button(viewer, "set-err", "Set ERR", ""))
            @if ind.problem {
                " "
                (button(viewer, "problem-off", "Clear problem", ""))
            }
        }
        form.actions method="post" {
            (layout::csrf_field(viewer))
            input type="hidden" name="action" value="delete";
            label { input type="checkbox" name="confirm" value="yes" required; "yes, delete it" }
            button.danger type="submit" data-action="delete" { "Delete" }
        }
    }
}

/// The method form: the codename, for `logic` its three arguments (okerr's UI edits
/// them the same way), for an active check its arguments. A bad expression or argument
/// is refused with okerr's text. The active methods are offered when the server runs
/// them.
fn method_form(viewer: &Viewer, ind: &Indicator, warnings: &[String], active: bool) -> Markup {
    let args = ind.method.args();
    let arg = |k: &str| args.get(k).cloned().unwrap_or_default();
    let logic = matches!(ind.method.kind, MethodKind::Logic(_));
    let mut methods = vec!["heartbeat", "numerical", "string", "logic"];
    if active || ind.method.is_active() {
        methods.extend(okerr::ActiveMethod::ALL.iter().map(|m| m.codename()));
    }
    let active_args = match &ind.method.kind {
        MethodKind::Active(a) => a.method().info().args,
        _ => &[],
    };
    html! {
        @if !warnings.is_empty() {
            ul.warning #logic-warnings role="status" { @for w in warnings { li { (w) } } }
        }
        form.method method="post" #method {
            (layout::csrf_field(viewer))
            input type="hidden" name="action" value="method";
            label { "Method "
                select name="checkmethod" {
                    @for m in &methods {
                        option value=(m) selected[*m == ind.method.codename()] { (m) }
                    }
                }
            }
            @if logic {
                label { "Expression " small { "(Python: s['web'] and i['db']['age'] < 600)" }
                    textarea name="expr" rows="3" { (arg("expr")) } }
                label { "Dump " small { "(comma-separated expressions shown as the details)" }
                    input type="text" name="dump" value=(arg("dump")); }
                label { "Init " small { "(names created as 0 when missing: tags['OK:db'])" }
                    input type="text" name="init" value=(arg("init")); }
            }
            @for a in active_args {
                label { (a.textname) " "
                    @if !a.desc.is_empty() && a.desc != a.textname { small { "(" (a.desc) ")" } }
                    input type="text" name=(a.name) value=(arg(a.name)); }
            }
            button type="submit" data-action="method" { "Save method" }
        }
    }
}

/// `GET /i/{textid}/{name}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((textid, name)): Path<(String, String)>,
) -> WebResult {
    let (project, viewer) = open_project(&state, &headers, &uri, &textid).await?;
    let (name, ind) = find(&state, &project, &name).await?;
    let log = state
        .engine()
        .storage()
        .log(project.id, &name, LOG_LINES)
        .await?;
    let dead: Vec<OutboxEntry> = state
        .engine()
        .storage()
        .outbox(project.id)
        .await?
        .into_iter()
        .filter(|e| e.dead_at.is_some() && e.notification.indicator == name)
        .collect();
    let now = state.engine().clock().now();
    let policy = project.policy_or_default(ind.policy.as_str());
    let timing = Timing::of(&ind.method, &policy, &state.engine().config().settings);
    let warnings = match &ind.method.kind {
        MethodKind::Logic(args) => {
            let all = state.engine().storage().indicators(project.id).await?;
            okerr::logic::warnings(&project, &ind, args, &all)
        }
        _ => Vec::new(),
    };
    let textid = project.textid.as_str();
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| -> Markup {
        match t {
            Some(t) => html! { (fmt::relative(t, now)) " " span.muted { "(" (fmt::exact(t)) ")" } },
            None => html! { span.muted { "never" } },
        }
    };
    let body = html! {
        p {
            a href=(layout::project_path(textid)) {
                span title={ "TextID: " (textid) } { (project.name) }
            }
            " › "
        }
        h1 #indicator data-lamp=(lamp(&ind).0) {
            (lamp_markup(&ind, now)) " " (ind.name)
        }
        table.facts {
            tr { th { "Status" } td #status { (ind.status) @for f in ind.flags(now).iter().skip(1) { " " span.tag { (f) } } } }
            tr { th { "Details" } td #details { (ind.details) } }
            @if !ind.desc.is_empty() {
                tr { th { "Description" } td { (ind.desc) } }
            }
            tr { th { "Method" } td { (ind.method.codename()) } }
            @for (arg, value) in ind.method.args() {
                @if arg != "secret" && !value.is_empty() {
                    tr { th { "· " (arg) } td { (value) } }
                }
            }
            tr {
                th { "Policy" }
                td {
                    (policy.name) " "
                    span.muted {
                        "(period " (fmt::span(timing.period.num_seconds()))
                        ", patience " (fmt::span(timing.patience.num_seconds())) ")"
                    }
                    " " a href={ (layout::project_path(textid)) "/policies" } { "policies" }
                }
            }
            tr { th { "Tags" } td { @for tag in ind.all_tags(now) { span.tag { (tag) } } } }
            tr { th { @if ind.method.is_active() { "Last check" } @else { "Updated" } } td #updated { (when(Some(ind.updated))) } }
            tr { th { "Status since" } td { (when(Some(ind.changed))) } }
            tr { th { "Update expected" } td #expected { (when(ind.expected)) } }
            tr {
                th {
                    @if ind.method.is_passive() { "Expires" }
                    @else if ind.method.is_active() { "Checked next" }
                    @else { "Evaluated next" }
                }
                td #expires {
                    @if ind.due_at().is_none() && !ind.dead {
                        span.muted { "never (disabled or problem)" }
                    } @else if ind.dead {
                        span.muted { "ERR; expires no more until an update" }
                    } @else {
                        (when(ind.scheduled))
                    }
                }
            }
            @if let Some(since) = ind.maintenance {
                tr { th { "Maintenance since" } td { (when(Some(since))) } }
            }
            tr { th { "Created" } td { (when(Some(ind.created))) } }
        }
        h2 { "Actions" }
        (actions(&viewer, &ind))
        h2 { "Method" }
        (method_form(&viewer, &ind, &warnings, state.engine().config().settings.active_checks))
        @if !dead.is_empty() {
            h2 #dead-letters { "Dead letters" }
            p.muted {
                "Notifications okerr gave up on after failing for "
                (fmt::span(state.engine().config().retention.dead_letter_after.num_seconds()))
                "; they are not tried again."
            }
            table.log {
                thead { tr { th { "Given up" } th { "To" } th { "Attempts" } th { "Last error" } } }
                tbody {
                    @for e in &dead {
                        tr.dead-letter {
                            td { @if let Some(t) = e.dead_at { (fmt::exact(t)) } }
                            td { (dead_letter_target(e)) }
                            td { (e.attempts) }
                            td { pre { (e.last_error.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
        }
        h2 { "Log" }
        @if log.is_empty() {
            p.muted { "Nothing logged yet." }
        } @else {
            table.log {
                thead { tr { th { "Time" } th { "Kind" } th { "Message" } } }
                tbody {
                    @for line in log.iter().rev() {
                        tr class={ "log-" (line.kind.as_str()) } {
                            td title=(fmt::relative(line.time, now)) { (fmt::exact(line.time)) }
                            td { (kind_label(line.kind)) }
                            td { pre { (line.message) } }
                        }
                    }
                }
            }
        }
    };
    let title = ind.full_name(textid);
    Ok(layout::render(
        StatusCode::OK,
        Page::new(title, body).viewer(&viewer),
    ))
}

/// Where a notification was to go: the recipient or the webhook.
fn dead_letter_target(entry: &OutboxEntry) -> String {
    match &entry.notification.payload {
        Payload::Alert { to: Some(to), .. } => to.to_string(),
        Payload::Alert { to: None, .. } => "the project's members".to_owned(),
        Payload::Webhook { url, .. } => url.to_string(),
    }
}

fn kind_label(kind: LogKind) -> &'static str {
    match kind {
        LogKind::Update => "update",
        LogKind::Indicator => "change",
        LogKind::Alert => "alert",
    }
}

/// `POST /i/{textid}/{name}` with `action`: maintenance, silent, retest, disable/enable,
/// set OK/ERR (through [`okerr::Engine::act`]) or delete (with `confirm=yes`); then back
/// to the page.
pub(crate) async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((textid, name)): Path<(String, String)>,
    mut fields: Fields,
) -> WebResult {
    let (project, viewer) = open_project(&state, &headers, &uri, &textid).await?;
    check_csrf(&viewer, &mut fields)?;
    let (name, _) = find(&state, &project, &name).await?;
    let requested = fields.take("action").unwrap_or_default();
    let action = match requested.as_str() {
        "maintenance-on" => Action::Maintenance(true),
        "maintenance-off" => Action::Maintenance(false),
        "silent-on" => Action::Silent(true),
        "silent-off" => Action::Silent(false),
        "disable" => Action::Disabled(true),
        "enable" => Action::Disabled(false),
        "retest" => Action::Retest,
        "set-ok" => Action::SetStatus(Status::Ok),
        "set-err" => Action::SetStatus(Status::Err),
        "problem-off" => Action::Problem(false),
        "method" => {
            let (_, ind) = find(&state, &project, name.as_str()).await?;
            let mut actions = Vec::new();
            let codename = fields.take("checkmethod").unwrap_or_default();
            if codename != ind.method.codename() {
                actions.push(Action::Method(codename));
            }
            let active_args = match &ind.method.kind {
                MethodKind::Active(a) => a.method().info().args,
                _ => &[],
            };
            let names = ["expr", "dump", "init"]
                .into_iter()
                .chain(active_args.iter().map(|a| a.name));
            for arg in names {
                if let Some(v) = fields.take(arg) {
                    actions.push(Action::Arg(arg.to_owned(), v));
                }
            }
            state
                .engine()
                .act_all(project.textid.as_str(), &name, &actions, &viewer.actor)
                .await?;
            let back = layout::indicator_path(project.textid.as_str(), name.as_str());
            return Ok(Redirect::to(&back).into_response());
        }
        "delete" => {
            if fields.take("confirm").as_deref() != Some("yes") {
                return Err(PageError::bad_request(
                    "Deleting needs the confirmation box ticked",
                ));
            }
            state
                .engine()
                .storage()
                .delete_indicator(project.id, &name)
                .await?;
            tracing::info!(textid = %project.textid, %name, actor = viewer.actor, "deleted from the web");
            return Ok(Redirect::to(&layout::project_path(project.textid.as_str())).into_response());
        }
        other => {
            return Err(PageError::bad_request(format!("Unknown action '{other}'")));
        }
    };
    state
        .engine()
        .act(project.textid.as_str(), &name, &action, &viewer.actor)
        .await?;
    let back = layout::indicator_path(project.textid.as_str(), name.as_str());
    Ok(Redirect::to(&back).into_response())
}
