//! Active checks in the engine, the pure half: the [`Sensor`] seam the engine calls (crate
//! `okerr-checks` implements it; a remote sensor could later), the [`CheckResult`] it
//! returns, and [`decide_check`], which turns a result into okerr's state change (spec
//! §7.2, §7.4 okerr-mqsender). No network code lives here.
//!
//! Data flows one way: the scheduler claims a due active indicator, hands its arguments to
//! the sensor, and the result is decided by [`decide_check`] and committed.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::action::SCHEDULER_SOURCE;
use crate::active::ActiveArgs;
use crate::indicator::{Effects, Indicator, LogKind, Status, Timing};
use crate::method::MethodKind;
use crate::outbox::build_commit;
use crate::project::Project;
use crate::settings::Settings;
use crate::storage::Commit;

/// okerr's `MQ_THROTTLE_TIME`: a quick indicator whose status stays the same reports
/// (logs a confirmation) at most this often.
pub const QUICK_THROTTLE: TimeDelta = TimeDelta::seconds(300);

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// OK or ERR.
    pub status: Status,
    /// okerr's details text.
    pub details: String,
    /// Arguments learned, to store back (`hash`, `value`).
    pub set_args: BTreeMap<String, String>,
    /// Alerts to raise (`Page {url} changed hash from {old} to {new}`, `{old} > {new}`).
    pub alerts: Vec<String>,
    /// Whether the indicator should get its problem flag (the check cannot work as set,
    /// e.g. an unknown DNS record type): okerr then stops checking it until a user clears it.
    pub problem: bool,
}

impl CheckResult {
    /// OK with these details.
    pub fn ok(details: impl Into<String>) -> Self {
        CheckResult {
            status: Status::Ok,
            details: details.into(),
            set_args: BTreeMap::new(),
            alerts: Vec::new(),
            problem: false,
        }
    }

    /// ERR with these details.
    pub fn err(details: impl Into<String>) -> Self {
        CheckResult {
            status: Status::Err,
            ..CheckResult::ok(details)
        }
    }

    /// ERR with these details and the problem flag.
    pub fn problem(details: impl Into<String>) -> Self {
        CheckResult {
            problem: true,
            ..CheckResult::err(details)
        }
    }

    /// The same result with an argument learned (stored back into the indicator).
    #[must_use]
    pub fn learn(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_args.insert(name.to_owned(), value.into());
        self
    }

    /// The same result with an alert to raise.
    #[must_use]
    pub fn alert(mut self, text: impl Into<String>) -> Self {
        self.alerts.push(text.into());
        self
    }

    /// ERR `Check did not finish in {n} s`: a check cut after `bound`.
    pub fn timed_out(bound: Duration) -> Self {
        CheckResult::err(format!("Check did not finish in {} s", fmt_secs(bound)))
    }
}

/// `3` for 3 s, `0.5` for 500 ms.
fn fmt_secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

/// Runs active checks: a pure request → result function of the arguments and `now`
/// (`okerr_checks::Checker` is one). The engine bounds every call by
/// `EngineConfig::check_timeout` too, so a sensor that does not return holds nothing.
#[async_trait]
pub trait Sensor: Send + Sync + std::fmt::Debug + 'static {
    /// Runs the check `args` describe, at `now`.
    async fn check(&self, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult;
}

#[async_trait]
impl<T: Sensor + ?Sized> Sensor for std::sync::Arc<T> {
    async fn check(&self, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
        (**self).check(args, now).await
    }
}

/// Decides what a check's `result` does to `indicator` (an active one, checked with its
/// current arguments): okerr's `register_result` (§7.2) with the policy's retry schedules
/// (none for quick indicators), then the problem flag when the result says so, the
/// result's alerts raised as okerr's alerts, and the learned arguments (`set_args`) stored
/// back. A quick indicator (raw policy period ≤ 10 s) whose status, arguments and alerts
/// stay the same within [`QUICK_THROTTLE`] of its last report only moves its schedule and
/// refreshes its details: no log line, `updated` unchanged (okerr's quick sensors report a
/// change at once, else every 300 s). Its first check (no details yet: a new method
/// starts without) always reports.
///
/// `None` when it is not an active indicator, is disabled, has a problem or is dead, or
/// is not due at `now`.
pub fn decide_check(
    project: &Project,
    indicator: &Indicator,
    result: &CheckResult,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Commit> {
    let MethodKind::Active(args) = &indicator.method.kind else {
        return None;
    };
    if indicator.due_at()? > now {
        return None;
    }
    let policy = project.policy_or_default(indicator.policy.as_str());
    let timing = Timing::of(&indicator.method, &policy, settings);
    let mut learned = args.clone();
    for (name, value) in &result.set_args {
        // A learned value the arguments refuse is dropped (the check made it: never).
        let _ = learned.set(name, value);
    }
    let mut ind = indicator.clone();
    let mut fx = Effects::default();
    let quiet = timing.quick
        && result.status == ind.status
        && !result.problem
        && result.alerts.is_empty()
        && learned == *args
        && !ind.details.is_empty()
        && now - ind.updated < QUICK_THROTTLE;
    if quiet {
        ind.details = crate::pyfmt::truncate_details(&result.details);
        ind.retry = 0;
        ind.reschedule(timing, now);
    } else {
        ind.register_result(
            result.status,
            &result.details,
            SCHEDULER_SOURCE,
            &policy,
            timing,
            !result.problem,
            now,
            &mut fx,
        );
    }
    if result.problem {
        ind.problem = true;
        fx.log(LogKind::Indicator, format!("Problem: {}", result.details));
    }
    for alert in &result.alerts {
        fx.alert(alert.clone(), None);
    }
    if learned != *args {
        for (name, value) in &result.set_args {
            if learned.get(name) == value && args.get(name) != value {
                fx.log(
                    LogKind::Indicator,
                    format!("{SCHEDULER_SOURCE} set {name} = {value}"),
                );
            }
        }
        ind.method.kind = MethodKind::Active(learned);
    }
    Some(build_commit(project, &policy, ind, fx, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_out_text() {
        assert_eq!(
            CheckResult::timed_out(Duration::from_millis(500)).details,
            "Check did not finish in 0.5 s"
        );
        assert_eq!(
            CheckResult::timed_out(Duration::from_secs(20)).details,
            "Check did not finish in 20 s"
        );
    }
}
