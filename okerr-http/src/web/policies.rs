//! `/p/{textid}/policies`: the project's policies, each an editable form, and a form for
//! a new one. Every field is checked with okerr's own types; a form with any bad field
//! changes nothing and comes back with its errors.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect};
use ipnet::IpNet;
use maud::{Markup, html};
use okerr::{EditError, Interval, Policy, PolicyName, Project, Reduction, RetrySchedule, Secret};
use serde::Deserialize;
use url::Url;

use super::auth::{Viewer, check_csrf, open_project};
use super::layout::{self, Page};
use super::{PageError, WebResult};
use crate::AppState;
use crate::form::Fields;

/// A policy as the form's texts.
#[derive(Debug, Clone, Default)]
struct PolicyForm {
    name: String,
    period: String,
    patience: String,
    secret: String,
    subnets: String,
    http_update: bool,
    smtp_update: bool,
    autocreate: bool,
    open_autocreate: bool,
    reduction: String,
    webhook: String,
    retry_schedule: String,
    recovery_retry_schedule: String,
}

impl PolicyForm {
    fn of(p: &Policy) -> Self {
        PolicyForm {
            name: p.name.to_string(),
            period: p.period.as_str().to_owned(),
            patience: p.patience.as_str().to_owned(),
            secret: p
                .secret
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
            subnets: p
                .subnets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            http_update: p.http_update,
            smtp_update: p.smtp_update,
            autocreate: p.autocreate,
            open_autocreate: p.open_autocreate,
            reduction: p
                .reduction
                .as_ref()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            webhook: p
                .url_statuschange
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            retry_schedule: p.retry_schedule.to_string(),
            recovery_retry_schedule: p.recovery_retry_schedule.to_string(),
        }
    }

    /// A new policy's form: okerr's defaults.
    fn blank() -> Self {
        let mut form = PolicyForm::of(&Policy::default_policy());
        form.name.clear();
        form
    }

    /// The form's fields; a checkbox that is not sent is off.
    fn from_fields(fields: &mut Fields) -> Self {
        let text =
            |fields: &mut Fields, k: &str| fields.take(k).unwrap_or_default().trim().to_owned();
        let retry = (
            text(fields, "retry_schedule"),
            text(fields, "recovery_retry_schedule"),
        );
        let mut text = |k: &str| text(fields, k);
        let (name, period, patience, secret, subnets, reduction, webhook) = (
            text("name"),
            text("period"),
            text("patience"),
            text("secret"),
            text("subnets"),
            text("reduction"),
            text("webhook"),
        );
        let mut on = |k: &str| fields.take(k).is_some_and(|v| !v.is_empty() && v != "0");
        PolicyForm {
            name,
            period,
            patience,
            secret,
            subnets,
            http_update: on("http_update"),
            smtp_update: on("smtp_update"),
            autocreate: on("autocreate"),
            open_autocreate: on("open_autocreate"),
            reduction,
            webhook,
            retry_schedule: retry.0,
            recovery_retry_schedule: retry.1,
        }
    }

    /// The policy, or every reason it is not one.
    fn to_policy(&self) -> Result<Policy, Vec<String>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let name = keep(e, PolicyName::parse(&self.name).map_err(|e| e.to_string()));
        let period = keep(
            e,
            Interval::parse(&self.period).map_err(|e| format!("period: {e}")),
        );
        let patience = keep(
            e,
            Interval::parse(&self.patience).map_err(|e| format!("patience: {e}")),
        );
        let secret = keep(
            e,
            optional(&self.secret, |s| {
                Secret::parse(s).map_err(|e| e.to_string())
            }),
        );
        let subnets = keep(
            e,
            self.subnets
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(subnet)
                .collect::<Result<Vec<IpNet>, String>>(),
        );
        let reduction = keep(
            e,
            optional(&self.reduction, |s| {
                Reduction::parse(s)
                    .map_err(|e| format!("reduction: {}", e.to_string().replace('\n', " ")))
            }),
        );
        let webhook = keep(e, optional(&self.webhook, webhook));
        let retry = keep(
            e,
            RetrySchedule::parse(&self.retry_schedule).map_err(|e| format!("retry schedule: {e}")),
        );
        let recovery = keep(
            e,
            RetrySchedule::parse(&self.recovery_retry_schedule)
                .map_err(|e| format!("recovery retry schedule: {e}")),
        );
        let (Some(retry_schedule), Some(recovery_retry_schedule)) = (retry, recovery) else {
            return Err(errors);
        };
        match (name, period, patience, secret, subnets, reduction, webhook) {
            (
                Some(name),
                Some(period),
                Some(patience),
                Some(secret),
                Some(subnets),
                Some(reduction),
                Some(url_statuschange),
            ) => Ok(Policy {
                name,
                period,
                patience,
                secret,
                subnets,
                http_update: self.http_update,
                smtp_update: self.smtp_update,
                autocreate: self.autocreate,
                open_autocreate: self.open_autocreate,
                reduction,
                url_statuschange,
                retry_schedule,
                recovery_retry_schedule,
            }),
            _ => Err(errors),
        }
    }
}

/// The value, or `None` with its error noted.
fn keep<T>(errors: &mut Vec<String>, r: Result<T, String>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// An empty text is no value; any other is parsed.
fn optional<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

/// A network (`10.0.0.0/8`) or one address.
fn subnet(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("subnets: '{s}' is not a network (10.0.0.0/8) or an address"))
}

fn webhook(s: &str) -> Result<Url, String> {
    match Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
        _ => Err(format!("webhook: '{s}' is not an http(s) URL")),
    }
}

fn policy_form(
    viewer: &Viewer,
    action: &str,
    form: &PolicyForm,
    new: bool,
    errors: &[String],
) -> Markup {
    let legend = if new {
        "New policy".to_owned()
    } else {
        form.name.clone()
    };
    let id = if new {
        "policy-new".to_owned()
    } else {
        format!("policy-{}", form.name)
    };
    html! {
        form method="post" action=(action) id=(id) {
            fieldset {
                legend { (legend) }
                @if !errors.is_empty() {
                    ul.error role="alert" { @for e in errors { li { (e) } } }
                }
                (layout::csrf_field(viewer))
                @if new {
                    label { "Name" input type="text" name="name" value=(form.name) required; }
                } @else {
                    input type="hidden" name="name" value=(form.name);
                }
                label { "Period " small { "(3600, 30min, 1d12h)" } input type="text" name="period" value=(form.period); }
                label { "Patience" input type="text" name="patience" value=(form.patience); }
                label { "Secret " small { "(empty: none)" } input type="text" name="secret" value=(form.secret) autocomplete="off"; }
                label { "Subnets " small { "(networks updates may come from, space separated)" }
                    textarea name="subnets" rows="2" { (form.subnets) } }
                label { input type="checkbox" name="http_update" value="1" checked[form.http_update]; "updates over HTTP" }
                label { input type="checkbox" name="smtp_update" value="1" checked[form.smtp_update]; "updates over SMTP" }
                label { input type="checkbox" name="autocreate" value="1" checked[form.autocreate]; "create indicators named in updates" }
                @if form.name != "Default" {
                    label { input type="checkbox" name="open_autocreate" value="1" checked[form.open_autocreate]; "create them without a secret even while Default is locked (autocreate off or a secret)" }
                }
                label { "Alert reduction " small { "(0s 00:30-02:00 5m; empty: none)" } input type="text" name="reduction" value=(form.reduction); }
                label { "Webhook on status change " small { "(empty: none)" } input type="text" name="webhook" value=(form.webhook); }
                label { "Retry schedule " small { "(logic indicators: delays before a change to ERR counts, 30s 5m; empty: at once)" } input type="text" name="retry_schedule" value=(form.retry_schedule); }
                label { "Recovery retry schedule " small { "(the same, for a change to OK)" } input type="text" name="recovery_retry_schedule" value=(form.recovery_retry_schedule); }
                button type="submit" { @if new { "Add policy" } @else { "Save" } }
            }
        }
    }
}

fn render(
    status: StatusCode,
    project: &Project,
    viewer: &Viewer,
    notice: Option<&str>,
    failed: Option<(&PolicyForm, bool, &[String])>,
) -> axum::response::Response {
    let textid = project.textid.as_str();
    let action = format!("{}/policies", layout::project_path(textid));
    let body = html! {
        p { a href=(layout::project_path(textid)) { span title={ "TextID: " (textid) } { (project.name) } } " ›" }
        h1 { "Policies" }
        @if let Some(notice) = notice { p.notice { (notice) } }
        @for p in &project.policies {
            @match failed {
                Some((form, false, errors)) if form.name == p.name.as_str() => (policy_form(viewer, &action, form, false, errors)),
                _ => (policy_form(viewer, &action, &PolicyForm::of(p), false, &[])),
            }
        }
        @match failed {
            Some((form, true, errors)) => (policy_form(viewer, &action, form, true, errors)),
            _ => (policy_form(viewer, &action, &PolicyForm::blank(), true, &[])),
        }
    };
    layout::render(
        status,
        Page::new(format!("Policies of {}", project.name), body).viewer(viewer),
    )
}

/// The query of the policies page after a save.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Saved {
    #[serde(default)]
    saved: String,
}

/// `GET /p/{textid}/policies`.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(textid): Path<String>,
    Query(saved): Query<Saved>,
) -> WebResult {
    let (project, viewer) = open_project(&state, &headers, &uri, &textid).await?;
    let notice = (!saved.saved.is_empty()).then(|| format!("Saved policy {}", saved.saved));
    Ok(render(
        StatusCode::OK,
        &project,
        &viewer,
        notice.as_deref(),
        None,
    ))
}

/// Why a webhook may not be saved: its host is, or resolves to, an address outside the
/// server's outbound networks. A name that does not resolve now is kept: the notifier's
/// resolver decides when it connects, as it does for every name.
async fn outbound_refusal(state: &AppState, webhook: Option<&url::Url>) -> Option<String> {
    let url = webhook?;
    let networks = &state.config().outbound;
    let host = url.host_str()?.to_owned();
    let ips: Vec<std::net::IpAddr> = match url.host()? {
        url::Host::Ipv4(ip) => vec![ip.into()],
        url::Host::Ipv6(ip) => vec![ip.into()],
        url::Host::Domain(name) => {
            let lookup = tokio::net::lookup_host((name, url.port_or_known_default().unwrap_or(80)));
            match tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            }
        }
    };
    let refused = ips
        .into_iter()
        .find_map(|ip| networks.check(&host, ip).err())?;
    Some(format!("webhook: {refused}"))
}

/// `POST /p/{textid}/policies`: saves the policy of the form's `name`, or adds it.
pub(crate) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(textid): Path<String>,
    mut fields: Fields,
) -> WebResult {
    let (project, viewer) = open_project(&state, &headers, &uri, &textid).await?;
    check_csrf(&viewer, &mut fields)?;
    let form = PolicyForm::from_fields(&mut fields);
    let new = project.policy(&form.name).is_none();
    let checked = match form.to_policy() {
        Ok(p) => match outbound_refusal(&state, p.url_statuschange.as_ref()).await {
            Some(refused) => Err(vec![refused]),
            None => Ok(p),
        },
        Err(errors) => Err(errors),
    };
    let policy = match checked {
        Ok(p) => p,
        Err(errors) => {
            let page = render(
                StatusCode::BAD_REQUEST,
                &project,
                &viewer,
                None,
                Some((&form, new, &errors)),
            );
            return Ok(page);
        }
    };
    let name = policy.name.to_string();
    // Applied by the engine to a fresh copy, again when someone saved the project
    // meanwhile (a key revoked, a member added), with the viewer's rights checked on it.
    state
        .engine()
        .edit_project(project.id, |p| {
            if !viewer.may_open(p) {
                return Err(PageError::not_found(format!(
                    "No project with TextID '{textid}' for this session"
                )));
            }
            p.put_policy(policy.clone());
            Ok(())
        })
        .await
        .map_err(|e| match e {
            EditError::Edit(e) => e,
            EditError::Storage(e) => e.into(),
            // Deleted meanwhile.
            _ => PageError::not_found(format!("No project with TextID '{textid}'")),
        })?;
    tracing::info!(textid = %project.textid, policy = name, actor = viewer.actor, "policy saved from the web");
    let saved: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let back = format!(
        "{}/policies?saved={saved}",
        layout::project_path(project.textid.as_str())
    );
    Ok(Redirect::to(&back).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_round_trips_and_every_bad_field_is_named() {
        let form = PolicyForm::of(&Policy::default_policy());
        assert_eq!(form.to_policy(), Ok(Policy::default_policy()));
        let bad = PolicyForm {
            name: " x".to_owned(),
            period: "soon".to_owned(),
            subnets: "10.0.0.0/8 nonsense".to_owned(),
            reduction: "whenever".to_owned(),
            webhook: "ftp://example.com/".to_owned(),
            ..form
        };
        let errors = bad.to_policy().err().unwrap_or_default();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors[1].starts_with("period: Cannot parse 'soon'"),
            "{errors:?}"
        );
        assert!(errors[2].contains("'nonsense'"), "{errors:?}");
    }
}
