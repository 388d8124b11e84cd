//! What users and the scheduler do to indicators besides updates: flags, retest, manual
//! status, and expiry (spec §7.4, §7.5), as pure decisions.

use chrono::{DateTime, Utc};

use crate::indicator::{Effects, Indicator, LogKind, LogLine, Status, Timing};
use crate::method::{CheckMethod, MethodError};
use crate::name::{IndicatorName, Tag};
use crate::outbox::build_commit;
use crate::project::Project;
use crate::settings::Settings;
use crate::storage::{Commit, StorageError};

/// The details and log source of an expiry.
pub const EXPIRY_DETAILS: &str = "No heartbeat";
/// The source label of the scheduler in log lines.
pub const SCHEDULER_SOURCE: &str = "okerr-process";

/// A change a user makes to an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start (`true`) or stop maintenance: results count, alerts are not sent. Leaving
    /// maintenance raises no alert, as in okerr.
    Maintenance(bool),
    /// Switch alerts off (`true`) or on.
    Silent(bool),
    /// Disable (`true`): updates are refused and it never expires. Enabling gives it a
    /// fresh period.
    Disabled(bool),
    /// Set or clear the problem flag; a problem indicator never expires.
    Problem(bool),
    /// Expect an update within the patience from now (okerr's retest of a passive
    /// indicator): `dead` is cleared, `expected = now`, `scheduled = now + T`.
    Retest,
    /// Set the status by hand (okerr's "set OK" / "set ERR").
    SetStatus(Status),
    /// Move the indicator to the project's policy of this name.
    Policy(String),
    /// Set the description.
    Description(String),
    /// Change the check method: every argument goes back to its default, `dead` is cleared.
    Method(String),
    /// Set one argument of the check method from its okerr text (`maxlim=90`,
    /// `patience=10m`, `secret=…`); an argument the method does not have is ignored.
    Arg(String, String),
    /// Add a user tag, if the indicator does not have it (the no-flap wizard tags its
    /// pair `upper-level` and `lower-level`).
    Tag(Tag),
}

/// The most changes one request may make (`api/set` fields).
pub const MAX_ACTIONS: usize = 50;

impl Action {
    /// Refuses a text longer than the same text may be on `/update` (a description 2000
    /// characters, as `desc`; a policy name 200; a method 2000; an argument's name 100 and
    /// its value 2000).
    ///
    /// # Errors
    /// [`ActionError::FieldTooLong`] for the first text over its bound.
    pub fn check_bounds(&self) -> Result<(), ActionError> {
        let (field, value, max) = match self {
            Action::Policy(p) => ("policy", p.as_str(), 200),
            Action::Description(d) => ("description", d.as_str(), 2000),
            Action::Method(m) => ("checkmethod", m.as_str(), 2000),
            Action::Arg(name, value) => {
                if name.chars().count() > 100 {
                    return Err(ActionError::FieldTooLong {
                        field: "argument name".to_owned(),
                        max: 100,
                    });
                }
                (name.as_str(), value.as_str(), 2000)
            }
            _ => return Ok(()),
        };
        if value.chars().count() > max {
            return Err(ActionError::FieldTooLong {
                field: field.to_owned(),
                max,
            });
        }
        Ok(())
    }
}

/// Why a user's action was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// No project has this textid.
    #[error("No such project. (textid: '{0}')")]
    NoSuchProject(String),
    /// The project has no indicator of this name.
    #[error("Project {textid} has no indicator {name}")]
    NoSuchIndicator {
        /// The project's textid.
        textid: String,
        /// The name asked for.
        name: String,
    },
    /// The indicator to create exists.
    #[error("Indicator {0} already exists")]
    AlreadyExists(String),
    /// The name of the indicator to create is invalid.
    #[error("Do not create indicator '{0}': bad name")]
    BadName(String),
    /// The project has as many indicators as it may, or is limited.
    #[error(
        "ERROR:LIMIT_MAXINDICATORS Project already has {count} indicators, maxindicators is {max}. Indicator not created"
    )]
    Limit {
        /// Indicators the project has.
        count: u64,
        /// Its limit.
        max: u32,
    },
    /// A value longer than this server accepts, or too many changes at once.
    #[error("Field '{field}' is too long (at most {max} characters)")]
    FieldTooLong {
        /// The field.
        field: String,
        /// Its limit.
        max: usize,
    },
    /// More changes in one request than [`MAX_ACTIONS`].
    #[error("Too many changes at once (at most {0})")]
    TooManyActions(usize),
    /// The project has no policy of this name.
    #[error("No such policy")]
    NoSuchPolicy(String),
    /// The method or an argument cannot be used.
    #[error(transparent)]
    Method(#[from] MethodError),
    /// Storage failed.
    #[error("storage failed")]
    Storage(#[from] StorageError),
}

/// Decides a user's action on `indicator`; `actor` names the user in the log (okerr:
/// `user {name}`). `None` when the action changes nothing.
///
/// # Errors
/// An unknown policy or method, or an argument value that cannot be used.
pub fn decide_action(
    project: &Project,
    indicator: &Indicator,
    action: &Action,
    actor: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Option<Commit>, ActionError> {
    decide_actions(
        project,
        indicator,
        std::slice::from_ref(action),
        actor,
        settings,
        now,
    )
}

/// Decides several actions as one change (okerr's `api/set` with several fields), in the
/// order given. `None` when together they change nothing.
///
/// # Errors
/// The first action that cannot be applied; then nothing is applied.
pub fn decide_actions(
    project: &Project,
    indicator: &Indicator,
    actions: &[Action],
    actor: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Option<Commit>, ActionError> {
    if actions.len() > MAX_ACTIONS {
        return Err(ActionError::TooManyActions(MAX_ACTIONS));
    }
    for action in actions {
        action.check_bounds()?;
    }
    let mut ind = indicator.clone();
    let mut fx = Effects::default();
    for action in actions {
        apply(project, &mut ind, &mut fx, action, actor, settings, now)?;
    }
    if ind == *indicator && fx.log.is_empty() {
        return Ok(None);
    }
    let policy = project.policy_or_default(ind.policy.as_str());
    Ok(Some(build_commit(project, &policy, ind, fx, now)))
}

fn apply(
    project: &Project,
    ind: &mut Indicator,
    fx: &mut Effects,
    action: &Action,
    actor: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    let policy = project.policy_or_default(ind.policy.as_str());
    let timing = Timing::of(&ind.method, &policy, settings);
    let flag = |fx: &mut Effects, name: &str, on: bool| {
        let word = if on { "on" } else { "off" };
        fx.log(LogKind::Indicator, format!("{actor} set {name} {word}"));
    };
    match action {
        Action::Maintenance(on) => {
            if ind.maintenance.is_some() != *on {
                ind.maintenance = on.then_some(now);
                let verb = if *on { "set" } else { "stop" };
                fx.log(LogKind::Indicator, format!("{actor} {verb} maintenance"));
            }
        }
        Action::Silent(on) => {
            if ind.silent != *on {
                ind.silent = *on;
                flag(fx, "silent", *on);
            }
        }
        Action::Disabled(on) => {
            if ind.disabled != *on {
                ind.disabled = *on;
                if !on {
                    ind.reschedule(timing, now);
                }
                flag(fx, "disabled", *on);
            }
        }
        Action::Problem(on) => {
            if ind.problem != *on {
                ind.problem = *on;
                flag(fx, "problem", *on);
            }
        }
        Action::Retest => {
            ind.dead = false;
            if ind.method.is_passive() {
                ind.expected = Some(now);
                ind.scheduled = Some(now + timing.patience);
            } else {
                ind.retest_now(now);
            }
            fx.log(LogKind::Indicator, format!("{actor} retest"));
        }
        Action::SetStatus(status) => {
            if !ind.disabled {
                ind.register_result(*status, actor, actor, &policy, timing, false, now, fx);
            }
        }
        Action::Policy(name) => {
            let policy = project
                .policy(name)
                .ok_or_else(|| ActionError::NoSuchPolicy(name.clone()))?;
            if ind.policy != policy.name {
                ind.policy = policy.name.clone();
                fx.log(LogKind::Indicator, format!("{actor} set policy {name}"));
            }
        }
        Action::Description(desc) => {
            if ind.desc != *desc {
                ind.desc.clone_from(desc);
                fx.log(LogKind::Indicator, format!("{actor} set description"));
            }
        }
        Action::Method(codename) => {
            let was_passive = ind.method.is_passive();
            ind.method = CheckMethod::with_defaults_allowing(codename, settings.active_checks)?;
            ind.dead = false;
            ind.retry = 0;
            if ind.method.is_active() {
                // The details were the old method's; the first check's come next.
                ind.details.clear();
            }
            if !ind.method.is_passive() {
                // okerr retests an active indicator whose method changed.
                ind.retest_now(now);
            } else if !was_passive {
                ind.reschedule(Timing::of(&ind.method, &policy, settings), now);
            }
            fx.log(LogKind::Indicator, format!("{actor} set method {codename}"));
        }
        Action::Tag(tag) => {
            if !ind.tags.contains(tag) {
                ind.tags.push(tag.clone());
                fx.log(LogKind::Indicator, format!("{actor} add tag {tag}"));
            }
        }
        Action::Arg(name, value) => {
            let before = ind.method.clone();
            if ind.method.set_arg(name, value)? && ind.method != before {
                if !ind.method.is_passive() {
                    // A changed expression is evaluated at once (okerr retests too).
                    ind.retest_now(now);
                }
                let shown = if name == "secret" {
                    "***"
                } else {
                    value.as_str()
                };
                fx.log(LogKind::Indicator, format!("{actor} set {name} = {shown}"));
            }
        }
    }
    Ok(())
}

/// Decides the creation of an indicator by a user (okerr's `api/create` and the UI): a
/// heartbeat in policy `Default`, in maintenance from the start. Its alert
/// `created by {actor} from {ip}` is raised before maintenance starts, so it is sent.
///
/// # Errors
/// A bad name, or the project's indicator limit.
pub fn decide_create(
    project: &Project,
    name: &str,
    indicator_count: u64,
    actor: &str,
    ip: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Commit, ActionError> {
    let name = IndicatorName::parse(name).map_err(|_| ActionError::BadName(name.to_owned()))?;
    if let Some(max) = settings
        .indicator_limit(project)
        .filter(|m| indicator_count >= u64::from(*m))
    {
        return Err(ActionError::Limit {
            count: indicator_count,
            max,
        });
    }
    let policy = project.policy_or_default("Default");
    let mut ind = Indicator::new(
        project.id,
        name,
        &policy,
        CheckMethod::heartbeat(),
        settings,
        now,
    );
    let mut fx = Effects::default();
    fx.alert(format!("created by {actor} from {ip}"), None);
    let commit = build_commit(project, &policy, ind.clone(), fx, now);
    ind = commit.indicator;
    ind.maintenance = Some(now);
    let mut log = commit.log;
    log.push(LogLine {
        time: now,
        kind: LogKind::Indicator,
        message: format!("{actor} set maintenance"),
    });
    Ok(Commit {
        indicator: ind,
        log,
        ..commit
    })
}

/// Decides the expiry of an indicator whose deadline passed (spec §7.4): ERR
/// `No heartbeat`, marked dead. `None` when it is not due at `now` (it was updated, or
/// is disabled, dead or has a problem), or is not passive (logic and active indicators are
/// evaluated and checked instead).
pub fn decide_expiry(
    project: &Project,
    indicator: &Indicator,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Commit> {
    if !indicator.method.is_passive() || indicator.due_at().is_none_or(|due| due > now) {
        return None;
    }
    let policy = project.policy_or_default(indicator.policy.as_str());
    let timing = Timing::of(&indicator.method, &policy, settings);
    let mut ind = indicator.clone();
    let mut fx = Effects::default();
    ind.register_result(
        Status::Err,
        EXPIRY_DETAILS,
        SCHEDULER_SOURCE,
        &policy,
        timing,
        false,
        now,
        &mut fx,
    );
    Some(build_commit(project, &policy, ind, fx, now))
}
