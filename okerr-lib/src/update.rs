//! The update pipeline (spec §5.3) as a pure function: a pushed value, the project and the
//! stored indicator in; a [`Commit`] or okerr's refusal out.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::indicator::{Effects, Indicator, LogKind, Status, Timing};
use crate::method::{CheckMethod, MethodError};
use crate::name::{IndicatorName, Tag};
use crate::outbox::build_commit;
use crate::project::{Policy, Project, Source};
use crate::settings::Settings;
use crate::storage::{Commit, StorageError};

/// The most tags an update may carry.
pub const MAX_TAGS: usize = 50;

/// An update as a front end received it: okerr's form fields, not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    /// Any textid of the project.
    pub textid: String,
    /// The indicator's name.
    pub name: String,
    /// The value: `OK`/`ERR` for a heartbeat, a number, or a text.
    pub status: String,
    /// The secret, when the indicator or its policy has one.
    pub secret: Option<String>,
    /// Free text shown with the status.
    pub details: Option<String>,
    /// `codename|arg=value|…`, used only when the indicator is created.
    pub method: Option<String>,
    /// The policy's name, used only when the indicator is created.
    pub policy: Option<String>,
    /// Comma-separated tags, used only when the indicator is created.
    pub tags: Option<String>,
    /// A description, used only when the indicator is created.
    pub desc: Option<String>,
    /// A non-empty value flags the indicator as having a problem.
    pub error: Option<String>,
    /// okerrclient's key path, stored as sent.
    pub keypath: Option<String>,
    /// okerrclient's original key path, stored as sent.
    pub origkeypath: Option<String>,
    /// The channel it came by.
    pub source: Source,
    /// The sender's address, checked against the policy's subnets.
    pub ip: Option<IpAddr>,
}

impl UpdateRequest {
    /// An HTTP update with the three required fields and nothing else.
    pub fn new(
        textid: impl Into<String>,
        name: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        UpdateRequest {
            textid: textid.into(),
            name: name.into(),
            status: status.into(),
            secret: None,
            details: None,
            method: None,
            policy: None,
            tags: None,
            desc: None,
            error: None,
            keypath: None,
            origkeypath: None,
            source: Source::Http,
            ip: None,
        }
    }

    /// Refuses a request with a field longer than this server accepts (name 1000, status
    /// 2000, details 10000 before truncation to 200, and so on).
    ///
    /// # Errors
    /// [`UpdateError::FieldTooLong`] for the first field over its bound.
    pub fn check_bounds(&self) -> Result<(), UpdateError> {
        for (field, value, max) in self.bounds() {
            if value.is_some_and(|v| v.chars().count() > max) {
                return Err(UpdateError::FieldTooLong { field, max });
            }
        }
        Ok(())
    }

    fn bounds(&self) -> [(&'static str, Option<&str>, usize); 12] {
        [
            ("textid", Some(&self.textid), 200),
            ("name", Some(&self.name), 1000),
            ("status", Some(&self.status), 2000),
            ("secret", self.secret.as_deref(), 1000),
            ("details", self.details.as_deref(), 10_000),
            ("method", self.method.as_deref(), 2000),
            ("policy", self.policy.as_deref(), 200),
            ("tags", self.tags.as_deref(), 2000),
            ("desc", self.desc.as_deref(), 2000),
            ("error", self.error.as_deref(), 1000),
            ("keypath", self.keypath.as_deref(), 255),
            ("origkeypath", self.origkeypath.as_deref(), 255),
        ]
    }
}

/// Why an update was refused. `Display` is okerr's response text, byte for byte (spec
/// §5.4); the front ends choose how to answer it (okerr-http: its status codes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// A required form field is absent. okerr answers it as a success; here it is refused
    /// like any other (see the decisions in `docs/`).
    #[error("Required field '{0}' missing")]
    MissingField(&'static str),
    /// A field is longer than this server accepts.
    #[error("Field '{field}' is too long (at most {max} characters)")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// More tags than [`MAX_TAGS`].
    #[error("Too many tags (at most {0})")]
    TooManyTags(usize),
    /// No project has this textid.
    #[error("No such project. (textid: '{0}')")]
    NoSuchProject(String),
    /// The indicator is unknown and its policy does not create indicators.
    #[error("Cannot create indicator {name} because policy {policy} has autocreate off")]
    AutocreateOff {
        /// The name as sent.
        name: String,
        /// The policy.
        policy: String,
    },
    /// The indicator is unknown and its name is invalid.
    #[error("Do not create indicator '{0}': bad name")]
    BadName(String),
    /// The project has as many indicators as it may.
    #[error(
        "ERROR:LIMIT_MAXINDICATORS Project already has {count} indicators, maxindicators is {max}. Indicator not created"
    )]
    LimitMaxIndicators {
        /// Indicators the project has.
        count: u64,
        /// Its limit.
        max: u32,
    },
    /// The project created indicators faster than the server allows
    /// ([`Settings::autocreate_rate`]).
    #[error(
        "ERROR:LIMIT_AUTOCREATE Project {textid} creates indicators too fast (at most {burst} at once, then {per_minute} a minute). Indicator not created"
    )]
    LimitAutocreate {
        /// The project's main textid.
        textid: String,
        /// The bucket's size.
        burst: u32,
        /// Its refill a minute.
        per_minute: u32,
    },
    /// The policy has a secret and the update does not carry it.
    #[error("do not create indicator '{name}' with policy '{policy}' because doesn't match secret")]
    AutocreateSecret {
        /// The name.
        name: String,
        /// The policy.
        policy: String,
    },
    /// The project may not create indicators.
    #[error("Project is limited. Indicator not created.")]
    ProjectLimited,
    /// The `method` field cannot be used.
    #[error(transparent)]
    Method(#[from] MethodError),
    /// The indicator is not pushed (a logic indicator is evaluated by the server).
    #[error("ERROR:BAD_METHOD Indicator exists with cm: {0}")]
    BadMethod(&'static str),
    /// The indicator is disabled.
    #[error("Indicator <Indicator: {name}@{textid} ({status})> disabled")]
    Disabled {
        /// The indicator.
        name: String,
        /// The project's main textid.
        textid: String,
        /// Its status.
        status: Status,
    },
    /// The policy refuses updates over this channel.
    #[error("src:'{0}' updates are not allowed")]
    SourceNotAllowed(Source),
    /// The sender's address is outside the policy's subnets.
    #[error("updates from {0} not allowed")]
    IpNotAllowed(IpAddr),
    /// A secret is needed and none was sent.
    #[error("Require secret")]
    RequireSecret,
    /// The secret sent is wrong.
    #[error("Bad secret")]
    BadSecret,
    /// Storage failed; the update was not applied.
    #[error("storage failed")]
    Storage(#[from] StorageError),
}

/// What an accepted update did.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// The indicator as stored after the update.
    Applied(Box<Indicator>),
    /// Accepted and nothing to store (a heartbeat value other than OK or ERR).
    Ignored,
}

/// Decides an update (spec §5.3, steps 3 and 6–15): `existing` is the stored indicator of
/// that name, `indicator_count` the project's count (only read when creating). Returns
/// `None` when the update is accepted but changes nothing. A refused update produces no
/// commit at all: not even an autocreated indicator is kept.
///
/// # Errors
/// okerr's refusals, in okerr's order.
pub fn decide_update(
    project: &Project,
    existing: Option<&Indicator>,
    indicator_count: u64,
    req: &UpdateRequest,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Option<Commit>, UpdateError> {
    req.check_bounds()?;
    let tags = parse_tags(req.tags.as_deref().unwrap_or(""))?;
    let mut fx = Effects::default();
    let (mut ind, policy) = match existing {
        Some(ind) => {
            let policy = project.policy_or_default(ind.policy.as_str());
            // The address and the secret first: nothing about the indicator is told to a
            // sender who fails them (docs/decisions.md, "Refusals reveal nothing").
            admit(&policy, ind, req)?;
            (ind.clone(), policy)
        }
        None => {
            let (ind, policy) =
                autocreate(project, indicator_count, req, tags, settings, now, &mut fx)?;
            if !ind.method.is_passive() {
                // Spec §5.3 step 6.11: created, and this update is not evaluated.
                return Ok(Some(build_commit(project, &policy, ind, fx, now)));
            }
            (ind, policy)
        }
    };
    if ind.disabled {
        return Err(UpdateError::Disabled {
            name: ind.name.to_string(),
            textid: project.textid.to_string(),
            status: ind.status,
        });
    }
    if !policy.allows_source(req.source) {
        return Err(UpdateError::SourceNotAllowed(req.source));
    }
    if existing.is_none() {
        admit(&policy, &ind, req)?;
    }
    if !ind.method.is_passive() {
        return Err(UpdateError::BadMethod(ind.method.codename()));
    }

    let source = match req.ip {
        Some(ip) => format!("{}:{ip}", req.source),
        None => req.source.to_string(),
    };
    let timing = Timing::of(&ind.method, &policy, settings);
    let details = req.details.as_deref().unwrap_or("");
    let status = ind.status;
    let evaluation = ind.method.evaluate(status, &req.status, details);
    for line in evaluation.log {
        fx.log(LogKind::Indicator, line);
    }
    for alert in evaluation.alerts {
        fx.alert(alert.message, alert.keys);
    }
    if evaluation.legacy_ok {
        ind.legacy_switch_ok(now, &mut fx);
    }
    if let Some((status, details)) = evaluation.result {
        ind.register_result(
            status, &details, &source, &policy, timing, false, now, &mut fx,
        );
    }
    if let Some(error) = req.error.as_deref().filter(|e| !e.is_empty()) {
        ind.problem = true;
        fx.log(LogKind::Indicator, format!("Problem: {error}"));
    }
    ind.keypath = req.keypath.clone().filter(|k| !k.is_empty());
    ind.origkeypath = req.origkeypath.clone().filter(|k| !k.is_empty());

    if existing.is_some_and(|e| *e == ind) && fx.log.is_empty() {
        return Ok(None);
    }
    Ok(Some(build_commit(project, &policy, ind, fx, now)))
}

/// Spec §5.3 steps 9 and 11: the sender's address in the policy's subnets, and the
/// indicator's own secret, else the policy's.
fn admit(policy: &Policy, ind: &Indicator, req: &UpdateRequest) -> Result<(), UpdateError> {
    if let Some(ip) = req.ip.filter(|ip| !policy.allows_ip(*ip)) {
        return Err(UpdateError::IpNotAllowed(ip));
    }
    if let Some(expected) = ind.method.secret.as_ref().or(policy.secret.as_ref()) {
        match req.secret.as_deref().filter(|s| !s.is_empty()) {
            None => return Err(UpdateError::RequireSecret),
            Some(given) if !expected.matches(given) => return Err(UpdateError::BadSecret),
            Some(_) => {}
        }
    }
    Ok(())
}

/// okerr keeps the comma-separated tags that start with `[a-zA-Z0-9_]` and drops the rest.
fn parse_tags(tags: &str) -> Result<Vec<Tag>, UpdateError> {
    let tags: Vec<Tag> = tags.split(',').filter_map(|t| Tag::parse(t).ok()).collect();
    if tags.len() > MAX_TAGS {
        return Err(UpdateError::TooManyTags(MAX_TAGS));
    }
    Ok(tags)
}

/// Spec §5.3 step 6: a new indicator for an unknown name, or okerr's refusal.
fn autocreate(
    project: &Project,
    indicator_count: u64,
    req: &UpdateRequest,
    tags: Vec<Tag>,
    settings: &Settings,
    now: DateTime<Utc>,
    fx: &mut Effects,
) -> Result<(Indicator, Policy), UpdateError> {
    let wanted = req
        .policy
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or("Default");
    let policy = match project.policy(wanted) {
        Some(p) => p.clone(),
        None => {
            fx.log(
                LogKind::Indicator,
                format!(
                    "Cannot find policy '{wanted}' to create indicator '{}', use default",
                    req.name
                ),
            );
            project.policy_or_default("Default")
        }
    };
    // A policy left open while `Default` is locked down creates only what `Default` would
    // (docs/decisions.md, "Locking a project down"): its subnets, secret and switch decide
    // too. The address and the secrets are checked before anything else is told.
    let gates: Vec<&Policy> = std::iter::once(&policy)
        .chain(project.creation_gate(&policy))
        .collect();
    if let Some(ip) = req.ip
        && gates.iter().any(|p| !p.allows_ip(ip))
    {
        return Err(UpdateError::IpNotAllowed(ip));
    }
    for p in &gates {
        if let Some(secret) = &p.secret
            && !secret.matches(req.secret.as_deref().unwrap_or(""))
        {
            return Err(UpdateError::AutocreateSecret {
                name: req.name.clone(),
                policy: p.name.to_string(),
            });
        }
    }
    for p in &gates {
        if !p.autocreate {
            return Err(UpdateError::AutocreateOff {
                name: req.name.clone(),
                policy: p.name.to_string(),
            });
        }
    }
    let name =
        IndicatorName::parse(&req.name).map_err(|_| UpdateError::BadName(req.name.clone()))?;
    if let Some(max) = settings.indicator_limit(project)
        && indicator_count >= u64::from(max)
    {
        return Err(UpdateError::LimitMaxIndicators {
            count: indicator_count,
            max,
        });
    }
    if project.limited {
        return Err(UpdateError::ProjectLimited);
    }
    let line = req
        .method
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or("heartbeat");
    let (method, applied) = CheckMethod::parse_line(line)?;
    for (k, v) in applied {
        // The log is shown on the indicator's page: a secret is never written in clear.
        let v = if k == "secret" { "***" } else { v.as_str() };
        fx.log(LogKind::Indicator, format!("Create arg {k} = {v}"));
    }
    let mut ind = Indicator::new(project.id, name, &policy, method, settings, now);
    ind.desc = req.desc.clone().unwrap_or_default();
    ind.tags = tags;
    let alert = match req.ip {
        Some(ip) => format!("autocreated from {ip}"),
        None => "autocreated".to_owned(),
    };
    fx.alert(alert, None);
    Ok((ind, policy))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::name::{Secret, TextId};
    use crate::project::{NewProject, ProjectId};

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    /// A project whose `Default` is locked down as in issue 13: a secret, `10.0.0.0/8`,
    /// autocreate off; `Daily` as every project gets it.
    fn locked() -> Project {
        let mut p = NewProject::new("locked", TextId::parse("p1").unwrap()).with_id(ProjectId(1));
        let d = p.policies.iter_mut().find(|p| p.name.as_str() == "Default");
        let d = d.unwrap();
        d.secret = Some(Secret::parse("TopSecret1").unwrap());
        d.subnets = vec!["10.0.0.0/8".parse().unwrap()];
        d.autocreate = false;
        p
    }

    fn intruder(ip: &str, secret: Option<&str>) -> UpdateRequest {
        UpdateRequest {
            policy: Some("Daily".into()),
            secret: secret.map(Into::into),
            ip: Some(ip.parse().unwrap()),
            ..UpdateRequest::new("p1", "intruder", "ERR")
        }
    }

    fn decide(p: &Project, req: &UpdateRequest) -> Result<Option<Commit>, UpdateError> {
        decide_update(p, None, 0, req, &Settings::default(), now())
    }

    fn policy_mut<'a>(p: &'a mut Project, name: &str) -> &'a mut Policy {
        p.policies
            .iter_mut()
            .find(|x| x.name.as_str() == name)
            .unwrap()
    }

    #[test]
    fn a_locked_default_locks_daily() {
        let p = locked();
        let e = decide(&p, &intruder("127.0.0.1", None)).unwrap_err();
        assert_eq!(e.to_string(), "updates from 127.0.0.1 not allowed");
        let e = decide(&p, &intruder("10.1.2.3", None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "do not create indicator 'intruder' with policy 'Default' because doesn't match secret"
        );
        let e = decide(&p, &intruder("10.1.2.3", Some("TopSecret1"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Cannot create indicator intruder because policy Default has autocreate off"
        );
    }

    #[test]
    fn a_default_with_a_secret_and_autocreate_needs_its_secret_through_daily() {
        let mut p = locked();
        policy_mut(&mut p, "Default").autocreate = true;
        policy_mut(&mut p, "Default").subnets = crate::project::world();
        let e = decide(&p, &intruder("127.0.0.1", None)).unwrap_err();
        assert!(
            matches!(e, UpdateError::AutocreateSecret { ref policy, .. } if policy == "Default")
        );
        // What okerrupdate -S TopSecret1 -p Daily sends: created in Daily.
        let c = decide(&p, &intruder("127.0.0.1", Some("TopSecret1")))
            .unwrap()
            .unwrap();
        assert_eq!(c.indicator.policy.as_str(), "Daily");
    }

    #[test]
    fn a_policy_opened_deliberately_creates_while_default_is_locked() {
        let mut p = locked();
        policy_mut(&mut p, "Daily").open_autocreate = true;
        let c = decide(&p, &intruder("127.0.0.1", None)).unwrap().unwrap();
        assert_eq!(c.indicator.name.as_str(), "intruder");

        // A secret of its own is a deliberate gate too: it alone decides.
        let mut p = locked();
        policy_mut(&mut p, "Daily").secret = Some(Secret::parse("daily").unwrap());
        assert!(decide(&p, &intruder("127.0.0.1", None)).is_err());
        assert!(
            decide(&p, &intruder("127.0.0.1", Some("daily")))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn an_open_project_creates_through_daily_as_okerr() {
        let p = NewProject::new("open", TextId::parse("p1").unwrap()).with_id(ProjectId(1));
        assert!(decide(&p, &intruder("127.0.0.1", None)).unwrap().is_some());
        // Autocreate off alone (no secret) also closes Daily.
        let mut p = p;
        policy_mut(&mut p, "Default").autocreate = false;
        let e = decide(&p, &intruder("127.0.0.1", None)).unwrap_err();
        assert!(matches!(e, UpdateError::AutocreateOff { ref policy, .. } if policy == "Default"));
    }

    #[test]
    fn nothing_is_told_before_the_address_and_the_secret() {
        let p = locked();
        // An unknown name in the locked Default: the secret refusal, not "autocreate off".
        let req = UpdateRequest {
            ip: Some("10.0.0.1".parse().unwrap()),
            ..UpdateRequest::new("p1", "x", "OK")
        };
        assert!(matches!(
            decide(&p, &req),
            Err(UpdateError::AutocreateSecret { .. })
        ));
        // A disabled indicator: the sender without the secret learns nothing of it.
        let mut open = p.clone();
        policy_mut(&mut open, "Default").autocreate = true;
        let create = UpdateRequest {
            secret: Some("TopSecret1".into()),
            ..req.clone()
        };
        let mut ind = decide(&open, &create).unwrap().unwrap().indicator;
        ind.disabled = true;
        let s = Settings::default();
        let e = decide_update(&p, Some(&ind), 1, &req, &s, now()).unwrap_err();
        assert_eq!(e.to_string(), "Require secret");
        let from_outside = UpdateRequest {
            ip: Some("1.2.3.4".parse().unwrap()),
            ..create.clone()
        };
        let e = decide_update(&p, Some(&ind), 1, &from_outside, &s, now()).unwrap_err();
        assert_eq!(e.to_string(), "updates from 1.2.3.4 not allowed");
        let e = decide_update(&p, Some(&ind), 1, &create, &s, now()).unwrap_err();
        assert!(matches!(e, UpdateError::Disabled { .. }), "{e}");
    }

    #[test]
    fn a_secret_from_the_method_line_is_logged_masked() {
        let p = NewProject::new("open", TextId::parse("p1").unwrap()).with_id(ProjectId(1));
        let req = UpdateRequest {
            method: Some("heartbeat|secret=TopSecret1".into()),
            secret: Some("TopSecret1".into()),
            ..UpdateRequest::new("p1", "srv", "OK")
        };
        let c = decide(&p, &req).unwrap().unwrap();
        let text = format!("{:?}", c.log);
        assert!(text.contains("Create arg secret = ***"), "{text}");
        assert!(!text.contains("TopSecret1"), "{text}");
    }

    #[test]
    fn the_servers_indicator_limit_applies_to_a_project_without_one() {
        let p = NewProject::new("open", TextId::parse("p1").unwrap()).with_id(ProjectId(1));
        let req = UpdateRequest::new("p1", "srv", "OK");
        let settings = Settings {
            max_indicators: Some(2),
            ..Settings::default()
        };
        let e = decide_update(&p, None, 2, &req, &settings, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ERROR:LIMIT_MAXINDICATORS Project already has 2 indicators, maxindicators is 2. Indicator not created"
        );
        assert!(decide_update(&p, None, 1, &req, &settings, now()).is_ok());
        let mut own = p.clone();
        own.max_indicators = Some(5);
        assert!(decide_update(&own, None, 2, &req, &settings, now()).is_ok());
        let unlimited = settings.clone().unlimited();
        assert!(decide_update(&p, None, 1_000_000, &req, &unlimited, now()).is_ok());
    }
}
