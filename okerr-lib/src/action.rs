//! What users and the scheduler do to indicators besides updates: flags, retest, manual
//! status, and expiry (spec §7.4, §7.5), as pure decisions.

use chrono::{DateTime, Utc};

use crate::indicator::{Effects, Indicator, LogKind, Status, Timing};
use crate::outbox::build_commit;
use crate::project::Project;
use crate::settings::Settings;
use crate::storage::Commit;

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
}

/// Decides a user's action on `indicator`; `actor` names the user in the log (okerr:
/// `user {name}`). `None` when the action changes nothing.
pub fn decide_action(
    project: &Project,
    indicator: &Indicator,
    action: &Action,
    actor: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Commit> {
    let policy = project.policy_or_default(indicator.policy.as_str());
    let timing = Timing::of(&indicator.method, &policy, settings);
    let mut ind = indicator.clone();
    let mut fx = Effects::default();
    let flag = |fx: &mut Effects, name: &str, on: bool| {
        let word = if on { "on" } else { "off" };
        fx.log(LogKind::Indicator, format!("{actor} set {name} {word}"));
    };
    match *action {
        Action::Maintenance(on) => {
            if ind.maintenance.is_some() == on {
                return None;
            }
            ind.maintenance = on.then_some(now);
            let verb = if on { "set" } else { "stop" };
            fx.log(LogKind::Indicator, format!("{actor} {verb} maintenance"));
        }
        Action::Silent(on) => {
            if ind.silent == on {
                return None;
            }
            ind.silent = on;
            flag(&mut fx, "silent", on);
        }
        Action::Disabled(on) => {
            if ind.disabled == on {
                return None;
            }
            ind.disabled = on;
            if !on {
                ind.reschedule(timing, now);
            }
            flag(&mut fx, "disabled", on);
        }
        Action::Problem(on) => {
            if ind.problem == on {
                return None;
            }
            ind.problem = on;
            flag(&mut fx, "problem", on);
        }
        Action::Retest => {
            ind.dead = false;
            ind.expected = Some(now);
            ind.scheduled = Some(now + timing.patience);
            fx.log(LogKind::Indicator, format!("{actor} retest"));
        }
        Action::SetStatus(status) => {
            if ind.disabled {
                return None;
            }
            ind.register_result(status, actor, actor, timing, now, &mut fx);
        }
    }
    Some(build_commit(project, &policy, ind, fx, now))
}

/// Decides the expiry of an indicator whose deadline passed (spec §7.4): ERR
/// `No heartbeat`, marked dead. `None` when it is not due at `now` (it was updated, or
/// is disabled, dead or has a problem).
pub fn decide_expiry(
    project: &Project,
    indicator: &Indicator,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Commit> {
    if indicator.due_at().is_none_or(|due| due > now) {
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
        timing,
        now,
        &mut fx,
    );
    Some(build_commit(project, &policy, ind, fx, now))
}
