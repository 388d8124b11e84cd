//! The director and the API the clients use (spec §10.2), with `X-API-KEY` project keys
//! or the server's admin token.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use okerr::pyfmt::str_repr;
use okerr::{Action, Indicator, IndicatorName, Project, Storage, StorageError};
use serde_json::{Value, json};

use crate::form::Fields;
use crate::{ADMIN_TOKEN_SETTING, AppState, ClientIp, Error, ErrorKind, text};

type ApiResult = Result<Response, Error>;

/// `GET /api/director/{textid}`: this server's base URL and `\n`, with the caller's address
/// in `Client-IP`; an empty 404 for an unknown textid.
pub(crate) async fn director(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(textid): Path<String>,
) -> ApiResult {
    if state
        .engine()
        .storage()
        .project_by_textid(&textid)
        .await?
        .is_none()
    {
        return Err(Error::new(ErrorKind::NotDirected));
    }
    let mut response = text(StatusCode::OK, format!("{}\n", state.config().public_url));
    if let Ok(value) = HeaderValue::from_str(&ip.to_string()) {
        response.headers_mut().insert("client-ip", value);
    }
    Ok(response)
}

/// The project of `textid`, if the request carries one of its API keys or the admin token.
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    textid: &str,
) -> Result<Project, Error> {
    let storage = state.engine().storage();
    let Some(project) = storage.project_by_textid(textid).await? else {
        return Err(Error::not_found("Not Found\n"));
    };
    let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) else {
        return Err(Error::forbidden("Forbidden: X-API-KEY required\n"));
    };
    if project.key_matches(key) || is_admin(storage.as_ref(), key).await? {
        Ok(project)
    } else {
        Err(Error::forbidden("Forbidden: bad X-API-KEY\n"))
    }
}

/// Whether `key` is the server's admin token.
pub(crate) async fn is_admin(storage: &dyn Storage, key: &str) -> Result<bool, StorageError> {
    let Some(hash) = storage.setting(ADMIN_TOKEN_SETTING).await? else {
        return Ok(false);
    };
    let admin = okerr::ApiKey {
        id: "admin".into(),
        hash,
        remark: String::new(),
        created: DateTime::<Utc>::default(),
    };
    Ok(admin.matches(key))
}

fn names(inds: impl IntoIterator<Item = Indicator>) -> Response {
    let body: String = inds.into_iter().map(|i| format!("{}\n", i.name)).collect();
    text(StatusCode::OK, body)
}

async fn all_indicators(state: &AppState, project: &Project) -> Result<Vec<Indicator>, Error> {
    Ok(state.engine().storage().indicators(project.id).await?)
}

/// `GET /api/indicators/{textid}`: every name, one a line.
pub(crate) async fn indicators(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(textid): Path<String>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    Ok(names(all_indicators(&state, &project).await?))
}

/// `GET /api/indicators/{textid}/{prefix}`: the names that start with the prefix.
pub(crate) async fn indicators_prefix(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, prefix)): Path<(String, String)>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let all = all_indicators(&state, &project).await?;
    Ok(names(
        all.into_iter()
            .filter(|i| i.name.as_str().starts_with(&prefix)),
    ))
}

async fn one(state: &AppState, project: &Project, name: &str) -> Result<Indicator, Error> {
    let found = match IndicatorName::parse(name) {
        Ok(n) => state.engine().storage().indicator(project.id, &n).await?,
        Err(_) => None,
    };
    found.ok_or_else(|| {
        Error::not_found(format!(
            "No indicator with id {name} in project with textid {}\n",
            project.textid
        ))
    })
}

fn unix(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(t.timestamp()))
}

/// okerr's JSON of an indicator (`api/indicator`).
fn indicator_json(
    project: &Project,
    ind: &Indicator,
    settings: &okerr::Settings,
    now: DateTime<Utc>,
) -> Value {
    let policy = project.policy_or_default(ind.policy.as_str());
    let policy_id = project
        .policies
        .iter()
        .position(|p| p.name == ind.policy)
        .map_or(0, |i| i + 1);
    let timing = okerr::Timing::of(&ind.method, &policy, settings);
    json!({
        "id": ind.id.0,
        "name": ind.name.as_str(),
        "status": ind.status.as_str(),
        "desc": ind.desc,
        "details": ind.details,
        "disabled": ind.disabled,
        "silent": ind.silent,
        "problem": ind.problem,
        "policy": policy_id,
        "location": "",
        "scheduled": unix(ind.scheduled),
        "expected": unix(ind.expected),
        "changed": unix(Some(ind.changed)),
        "updated": unix(Some(ind.updated)),
        "maintenance": unix(ind.maintenance),
        "flags": ind.flags(now),
        "tags": ind.all_tags(now),
        "errage": ind.errage(now),
        "uerrage": ind.uerrage(now),
        "age": (now - ind.updated).num_seconds(),
        "statusage": (now - ind.changed).num_seconds(),
        "patience": timing.patience.num_seconds(),
        "args": ind.method.args(),
        "policyname": policy.name.as_str(),
        "policyperiod": policy.period.as_str(),
        "checkmethod": ind.method.codename(),
    })
}

/// okerr's JSON layout: keys sorted, four spaces of indent, and a final newline.
fn pretty(value: &Value) -> ApiResult {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut ser).map_err(Error::internal)?;
    out.push(b'\n');
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// `GET /api/indicator/{textid}/{name}`: the indicator as okerr's JSON.
pub(crate) async fn indicator(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, name)): Path<(String, String)>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let ind = one(&state, &project, &name).await?;
    let now = state.engine().clock().now();
    let settings = &state.engine().config().settings;
    pretty(&indicator_json(&project, &ind, settings, now))
}

/// `GET /api/outbox/{textid}`: the project's notifications, oldest first, each with its
/// `state`: `pending` (to be delivered or retried), `delivered`, or `dead` (a dead letter:
/// okerr gave up after it failed for `--dead-letter-after`, and tries it no more).
/// Delivered and dead ones stay until the outbox retention purges them.
pub(crate) async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(textid): Path<String>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let entries = state.engine().storage().outbox(project.id).await?;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp());
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let n = &e.notification;
            let (kind, to) = match &n.payload {
                okerr::Payload::Alert { to, .. } => ("alert", to.as_ref().map(|t| t.to_string())),
                okerr::Payload::Webhook { url, .. } => ("webhook", Some(url.to_string())),
            };
            let state = if e.dead_at.is_some() {
                "dead"
            } else if e.delivered_at.is_some() {
                "delivered"
            } else {
                "pending"
            };
            json!({
                "id": e.id.0,
                "indicator": n.indicator.as_str(),
                "type": kind,
                "to": to,
                "state": state,
                "attempts": e.attempts,
                "last_error": e.last_error,
                "created": n.created.timestamp(),
                "release": n.release_at.timestamp(),
                "delivered": time(e.delivered_at),
                "dead": time(e.dead_at),
            })
        })
        .collect();
    pretty(&Value::Array(list))
}

/// One condition of `api/filter` or `api/tagfilter`.
enum Condition<'a> {
    /// A method argument equals a value (`k=v`).
    Arg(&'a str, &'a str),
    /// A tag is there.
    Has(&'a str),
    /// A tag is not there.
    HasNot(&'a str),
}

impl Condition<'_> {
    fn holds(&self, tags: &[String], args: &BTreeMap<&'static str, String>) -> bool {
        match *self {
            Condition::Arg(k, v) => args.get(k).is_some_and(|a| a == v),
            Condition::Has(t) => tags.iter().any(|x| x == t),
            Condition::HasNot(t) => !tags.iter().any(|x| x == t),
        }
    }

    /// `api/filter`: `k=v`, `tag`, and `!tag` or `-tag`. (A tag cannot have a value, so
    /// `k=v` on something that is not an argument never holds, as in okerr.)
    fn of_filter(c: &str) -> Condition<'_> {
        if let Some((k, v)) = c.split_once('=') {
            Condition::Arg(k, v)
        } else if let Some(t) = c.strip_prefix('!').or_else(|| c.strip_prefix('-')) {
            Condition::HasNot(t)
        } else {
            Condition::Has(c)
        }
    }

    /// `api/tagfilter`: `tag` or `+tag`, and `-tag`.
    fn of_tagfilter(c: &str) -> Condition<'_> {
        match c.strip_prefix('-') {
            Some(t) => Condition::HasNot(t),
            None => Condition::Has(c.strip_prefix('+').unwrap_or(c)),
        }
    }
}

/// The names of the project's indicators that meet every `/`-separated condition.
async fn matching(
    state: &AppState,
    headers: &HeaderMap,
    textid: &str,
    conditions: &str,
    parse: fn(&str) -> Condition<'_>,
) -> ApiResult {
    let project = authorize(state, headers, textid).await?;
    let now = state.engine().clock().now();
    let conditions: Vec<Condition<'_>> = conditions
        .split('/')
        .filter(|c| !c.is_empty())
        .map(parse)
        .collect();
    let all = all_indicators(state, &project).await?;
    Ok(names(all.into_iter().filter(|ind| {
        let tags = ind.all_tags(now);
        let args = ind.method.args();
        conditions.iter().all(|c| c.holds(&tags, &args))
    })))
}

/// `GET /api/filter/{textid}/{c1}/{c2}/…`: names of the indicators meeting every
/// condition: `k=v` (a method argument equals v), `tag`, and `!tag` or `-tag`.
pub(crate) async fn filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, conditions)): Path<(String, String)>,
) -> ApiResult {
    matching(&state, &headers, &textid, &conditions, Condition::of_filter).await
}

/// `GET /api/tagfilter/{textid}/{t1}/…`: `tag` or `+tag` must be there, `-tag` must not.
pub(crate) async fn tagfilter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, wanted)): Path<(String, String)>,
) -> ApiResult {
    matching(&state, &headers, &textid, &wanted, Condition::of_tagfilter).await
}

fn python_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// `GET /api/get/{textid}/{name}/{arg}`: one value of an indicator, and `\n`.
pub(crate) async fn get_arg(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, rest)): Path<(String, String)>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let Some((name, arg)) = rest.rsplit_once('/') else {
        return Err(Error::not_found("Not Found\n"));
    };
    let ind = one(&state, &project, name).await?;
    let value = match arg {
        "policy" => ind.policy.to_string(),
        "cm" | "checkmethod" => ind.method.codename().to_owned(),
        "desc" => ind.desc.clone(),
        "silent" => python_bool(ind.silent).to_owned(),
        "problem" => python_bool(ind.problem).to_owned(),
        "disabled" => python_bool(ind.disabled).to_owned(),
        other => ind.method.args().remove(other).ok_or_else(|| {
            Error::not_found(format!(
                "Indicator {name} with id {} has no arg '{other}'",
                ind.id
            ))
        })?,
    };
    Ok(text(StatusCode::OK, format!("{value}\n")))
}

/// The form of `api/set` as actions in okerr's order, and the `{…}` of its answer.
fn set_actions(mut fields: Fields) -> Result<(Vec<Action>, Vec<String>), Error> {
    let mut actions = Vec::new();
    let mut shown = Vec::new();
    if fields.take("name").is_some() {
        return Err(Error::bad_request("Renaming indicators is not supported\n"));
    }
    let mut plain = |fields: &mut Fields, key: &str, action: fn(String) -> Action| {
        if let Some(v) = fields.take(key) {
            shown.push(format!("{}: {}", str_repr(key), str_repr(&v)));
            actions.push(action(v));
        }
    };
    plain(&mut fields, "policy", Action::Policy);
    plain(&mut fields, "description", Action::Description);
    plain(&mut fields, "desc", Action::Description);
    fields.take("location");
    plain(&mut fields, "checkmethod", Action::Method);
    type Flag = (&'static str, fn(bool) -> Action);
    let flags: [Flag; 3] = [
        ("silent", Action::Silent),
        ("disabled", Action::Disabled),
        ("problem", Action::Problem),
    ];
    for (key, action) in flags {
        if let Some(v) = fields.take(key) {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| Error::not_found(format!("{key} can be only 0 or 1\n")))?;
            shown.push(format!("{}: {n}", str_repr(key)));
            actions.push(action(n != 0));
        }
    }
    if let Some(v) = fields.take("retest") {
        let shown_value = v
            .trim()
            .parse::<i64>()
            .map_or_else(|_| str_repr(&v), |n| n.to_string());
        shown.push(format!("'retest': {shown_value}"));
        actions.push(Action::Retest);
    }
    if let Some(v) = fields.take("maintenance") {
        let n: i64 = v
            .trim()
            .parse()
            .map_err(|_| Error::not_found("maintenance can be only 0 or 1"))?;
        shown.push(format!("'maintenance': {n}"));
        actions.push(Action::Maintenance(n != 0));
    }
    for (k, v) in fields.into_rest() {
        shown.push(format!("{}: {}", str_repr(&k), str_repr(&v)));
        actions.push(Action::Arg(k, v));
    }
    Ok((actions, shown))
}

/// `POST /api/set/{textid}/{name}`: changes from the form fields, applied together.
pub(crate) async fn set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, name)): Path<(String, String)>,
    fields: Fields,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let ind = one(&state, &project, &name).await?;
    let (actions, shown) = set_actions(fields)?;
    state
        .engine()
        .act_all(project.textid.as_str(), &ind.name, &actions, "api")
        .await?;
    Ok(text(
        StatusCode::OK,
        format!("Changed {name} {{{}}}\n", shown.join(", ")),
    ))
}

/// `POST /api/create/{textid}/{name}`: a heartbeat in policy `Default`, in maintenance.
pub(crate) async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    method: Method,
    headers: HeaderMap,
    Path((textid, name)): Path<(String, String)>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    if method != Method::POST {
        return Err(Error::bad_request("Must be HTTP POST request"));
    }
    let ind = state
        .engine()
        .create_indicator(project.textid.as_str(), &name, "api", &ip.to_string())
        .await?;
    Ok(text(
        StatusCode::OK,
        format!("Created {}@{} ({})\n", ind.name, project.textid, ind.status),
    ))
}

/// `POST /api/noflap/{textid}/{name}`: okerr's no-flap wizard (spec §6.4). Creates
/// `{name}-up`, a logic indicator OK once `name` has been OK for `okthr` and while it has
/// been ERR for less than `errthr` (form fields, time strings; okerr's defaults: period +
/// patience and twice the period + patience of `name`), and tags the pair.
pub(crate) async fn noflap(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path((textid, name)): Path<(String, String)>,
    mut fields: Fields,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let lower = IndicatorName::parse(&name)
        .map_err(|_| Error::not_found(format!("Project {textid} has no indicator {name}\n")))?;
    let mut threshold = |key: &str| -> Result<Option<i64>, Error> {
        match fields.take(key).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => okerr::Interval::parse(v.trim())
                .map(|i| Some(i64::try_from(i.as_secs()).unwrap_or(i64::MAX)))
                .map_err(|e| Error::bad_request(format!("{key}: {e}\n"))),
        }
    };
    let thresholds = okerr::NoFlap {
        okthr: threshold("okthr")?,
        errthr: threshold("errthr")?,
    };
    let ind = state
        .engine()
        .create_noflap(
            project.textid.as_str(),
            &lower,
            thresholds,
            "api",
            &ip.to_string(),
        )
        .await?;
    Ok(text(
        StatusCode::OK,
        format!("Created {}@{} ({})\n", ind.name, project.textid, ind.status),
    ))
}

/// `POST /api/delete/{textid}/{name}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((textid, name)): Path<(String, String)>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    if method != Method::POST {
        return Err(Error::bad_request("Must be HTTP POST request\n"));
    }
    let deleted = match IndicatorName::parse(&name) {
        Ok(n) => {
            state
                .engine()
                .storage()
                .delete_indicator(project.id, &n)
                .await?
        }
        Err(_) => false,
    };
    if !deleted {
        return Err(Error::not_found(format!(
            "Project {textid} has no indicator {name}\n"
        )));
    }
    Ok(text(
        StatusCode::OK,
        format!("Deleted indicator {name} from project {textid}\n"),
    ))
}

/// `GET /api/checkmethods`: okerr's table of methods (`okerr::METHODS`) as okerr writes it:
/// by codename, each with its `name`, `remote` and `args` (`textname`, `desc`,
/// `default`). Active methods are listed as okerr lists them (a server without a sensor
/// refuses to make them: `Method 'x' is disabled: this server runs no active checks`).
pub(crate) async fn checkmethods() -> ApiResult {
    let mut methods = BTreeMap::new();
    for m in okerr::METHODS {
        let args: BTreeMap<&str, Value> = m
            .args
            .iter()
            .map(|a| {
                (
                    a.name,
                    json!({"textname": a.textname, "desc": a.desc, "default": a.default}),
                )
            })
            .collect();
        methods.insert(
            m.codename,
            json!({"name": m.name, "remote": m.remote, "args": args}),
        );
    }
    pretty(&json!(methods))
}

/// `GET /api/policy/{textid}/{name}`: a policy's period, patience and retry schedules as
/// JSON (okerr has no such call; its policies are set in its web pages). Not its secret.
pub(crate) async fn policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, name)): Path<(String, String)>,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let Some(policy) = project.policy(&name) else {
        return Err(no_policy(&textid, &name));
    };
    pretty(&policy_json(policy))
}

/// `POST /api/policy/{textid}/{name}`: form fields `retry_schedule` and
/// `recovery_retry_schedule` (okerr's delays, `30s 5m`; empty: none) replace those of the
/// policy; a field not sent is left as it is. Answers the policy as `GET` does; a bad
/// schedule is a 400 with okerr's text and changes nothing.
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((textid, name)): Path<(String, String)>,
    mut fields: Fields,
) -> ApiResult {
    let project = authorize(&state, &headers, &textid).await?;
    let retry = schedule("retry schedule", fields.take("retry_schedule"))?;
    let recovery = schedule(
        "recovery retry schedule",
        fields.take("recovery_retry_schedule"),
    )?;
    let saved = state
        .engine()
        .edit_project(project.id, |p| {
            let Some(mut policy) = p.policy(&name).cloned() else {
                return Err(no_policy(&textid, &name));
            };
            if let Some(r) = &retry {
                policy.retry_schedule = r.clone();
            }
            if let Some(r) = &recovery {
                policy.recovery_retry_schedule = r.clone();
            }
            p.put_policy(policy.clone());
            Ok(policy)
        })
        .await
        .map_err(|e| match e {
            okerr::EditError::Edit(e) => e,
            okerr::EditError::Storage(e) => e.into(),
            // Deleted meanwhile.
            _ => Error::not_found("Not Found\n"),
        })?;
    pretty(&policy_json(&saved))
}

/// A schedule sent in a field, parsed; `None` when the field was not sent.
fn schedule(what: &str, text: Option<String>) -> Result<Option<okerr::RetrySchedule>, Error> {
    text.map(|t| {
        okerr::RetrySchedule::parse(&t).map_err(|e| Error::bad_request(format!("{what}: {e}\n")))
    })
    .transpose()
}

fn no_policy(textid: &str, name: &str) -> Error {
    Error::not_found(format!("Project {textid} has no policy {name}\n"))
}

fn policy_json(p: &okerr::Policy) -> Value {
    json!({
        "name": p.name.as_str(),
        "period": p.period.to_string(),
        "patience": p.patience.to_string(),
        "retry_schedule": p.retry_schedule.to_string(),
        "recovery_retry_schedule": p.recovery_retry_schedule.to_string(),
    })
}

/// `GET /api/ip`: the caller's address as this server sees it.
pub(crate) async fn ip(ClientIp(ip): ClientIp) -> Response {
    text(StatusCode::OK, format!("{ip}\n"))
}

/// `GET /healthz`: `OK` when storage answers.
/// Ready when the database answers a read and a write within
/// [`HttpConfig::health_timeout`](crate::HttpConfig::health_timeout) (a full disk fails
/// the write while reads still work), and the last update did not fail in the database
/// (within the last [`FAILED_WRITE_REMEMBERED`](crate::FAILED_WRITE_REMEMBERED)).
pub(crate) async fn health(State(state): State<AppState>) -> ApiResult {
    if state.writes().failing() {
        tracing::warn!("not ready: the last update failed in the database");
        return Err(Error::new(ErrorKind::Unavailable(
            "Not ready: the database failed the last update\n".into(),
        )));
    }
    let storage = state.engine().storage();
    let probe = async {
        storage.next_deadline().await?;
        storage.put_setting(HEALTH_PROBE_SETTING, "ok").await
    };
    match tokio::time::timeout(state.config().health_timeout, probe).await {
        Ok(Ok(())) => Ok(text(StatusCode::OK, "OK\n")),
        Ok(Err(error)) => {
            tracing::warn!(%error, source = ?std::error::Error::source(&error), "not ready");
            Err(Error::new(ErrorKind::Unavailable(
                "Not ready: the database failed\n".into(),
            )))
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer in time");
            Err(Error::new(ErrorKind::Unavailable(
                "Not ready: the database did not answer in time\n".into(),
            )))
        }
    }
}

/// The server setting `/healthz` writes to prove the database takes writes.
const HEALTH_PROBE_SETTING: &str = "healthz_probe";
