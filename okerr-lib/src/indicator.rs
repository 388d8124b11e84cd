//! Indicators and okerr's status state machine (spec §2.5, §7).

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::method::{AlertSpec, CheckMethod};
use crate::name::{IndicatorName, PolicyName, Tag};
use crate::project::{Policy, ProjectId};
use crate::pyfmt::{shorttd, truncate_details};
use crate::settings::Settings;

/// An indicator's status. okerr has exactly two; every other state is a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Fine.
    #[serde(rename = "OK")]
    Ok,
    /// Failing, or silent for too long.
    #[serde(rename = "ERR")]
    Err,
}

impl Status {
    /// `OK` or `ERR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Err => "ERR",
        }
    }

    /// The other status.
    pub fn opposite(self) -> Status {
        match self {
            Status::Ok => Status::Err,
            Status::Err => Status::Ok,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "OK" => Ok(Status::Ok),
            "ERR" => Ok(Status::Err),
            other => Err(format!("unknown status '{other}'")),
        }
    }
}

/// An indicator's id in storage. [`IndicatorId::NEW`] marks one not stored yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IndicatorId(pub i64);

impl IndicatorId {
    /// The id of an indicator that storage has not assigned an id to yet.
    pub const NEW: IndicatorId = IndicatorId(0);
}

impl fmt::Display for IndicatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An alert of this indicator still held by alert reduction: it can be cancelled by the
/// opposite flip until `release_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAlert {
    /// The alert's reduction key (the new status of a change, or a string value).
    pub key: String,
    /// When the alert is released for delivery.
    pub release_at: DateTime<Utc>,
}

/// A named thing whose state is pushed into a project (spec §2.5).
///
/// The fields are public so that backends can store and load them; the engine keeps
/// them consistent: `dead` only with `ERR`, `expected <= scheduled`, `version` counts
/// the commits of this indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// Storage id, [`IndicatorId::NEW`] before the first commit.
    pub id: IndicatorId,
    /// The project it belongs to.
    pub project: ProjectId,
    /// Unique within the project.
    pub name: IndicatorName,
    /// The name of its policy; a missing policy falls back to `Default`.
    pub policy: PolicyName,
    /// How pushed values are judged.
    pub method: CheckMethod,
    /// OK or ERR.
    pub status: Status,
    /// The status before the last change outside maintenance.
    pub prev_status: Option<Status>,
    /// The last details, at most 200 characters.
    pub details: String,
    /// A free description.
    pub desc: String,
    /// User tags.
    pub tags: Vec<Tag>,
    /// In maintenance since: results still count, alerts are not sent.
    #[serde(serialize_with = "crate::timefmt::serialize_opt")]
    pub maintenance: Option<DateTime<Utc>>,
    /// No alerts; everything else as usual.
    pub silent: bool,
    /// Refuses updates, never expires, never changes.
    pub disabled: bool,
    /// A configuration or evaluation problem: never expires until a user clears it.
    pub problem: bool,
    /// Turned ERR (by expiry or a pushed ERR) and is not expired again.
    pub dead: bool,
    /// When it was created.
    #[serde(serialize_with = "crate::timefmt::serialize")]
    pub created: DateTime<Utc>,
    /// When its status last changed.
    #[serde(serialize_with = "crate::timefmt::serialize")]
    pub changed: DateTime<Utc>,
    /// When a result last came.
    #[serde(serialize_with = "crate::timefmt::serialize")]
    pub updated: DateTime<Utc>,
    /// When the next update is expected; later than this the indicator is pending.
    #[serde(serialize_with = "crate::timefmt::serialize_opt")]
    pub expected: Option<DateTime<Utc>>,
    /// When it expires to ERR without an update.
    #[serde(serialize_with = "crate::timefmt::serialize_opt")]
    pub scheduled: Option<DateTime<Utc>>,
    /// okerrclient's key path, stored as sent.
    pub keypath: Option<String>,
    /// okerrclient's original key path, stored as sent.
    pub origkeypath: Option<String>,
    /// Alerts held by reduction that a flip back may still cancel.
    pub held: Vec<HeldAlert>,
    /// okerr's `retry`: how many delays of the policy's retry schedule a pending change
    /// of an active (logic) indicator has waited (spec §7.2). Always 0 for passive ones.
    #[serde(default)]
    pub retry: u32,
    /// The number of commits of this indicator: 0 before the first, then 1, 2, …
    pub version: u64,
}

/// The effective period and patience of an indicator (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// P.
    pub period: TimeDelta,
    /// T.
    pub patience: TimeDelta,
    /// okerr's quick indicator: an active check whose raw policy period is at most
    /// [`QUICK_PERIOD`] (spec §4). It is checked every period, never retried, and a
    /// confirmation is reported at most every 300 s (`crate::sensor::QUICK_THROTTLE`).
    pub quick: bool,
}

/// okerr's `MQ_QUICK_TIME`: an active indicator whose raw policy period is at most this is
/// quick.
pub const QUICK_PERIOD: u64 = 10;

impl Timing {
    /// P = max(policy period, server minimum); T = max(the method's patience, else the
    /// policy's, server minimum); quick for an active check of raw period ≤ 10 s.
    pub fn of(method: &CheckMethod, policy: &Policy, settings: &Settings) -> Timing {
        let period = policy.period.as_secs().max(settings.min_period.as_secs());
        let patience = method
            .patience
            .as_ref()
            .unwrap_or(&policy.patience)
            .as_secs()
            .max(settings.min_patience.as_secs());
        Timing {
            period: secs(period),
            patience: secs(patience),
            quick: method.is_active() && policy.period.as_secs() <= QUICK_PERIOD,
        }
    }
}

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

impl Indicator {
    /// A new indicator with status OK, its schedule set from `now`.
    pub fn new(
        project: ProjectId,
        name: IndicatorName,
        policy: &Policy,
        method: CheckMethod,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Self {
        let mut ind = Indicator {
            id: IndicatorId::NEW,
            project,
            name,
            policy: policy.name.clone(),
            method,
            status: Status::Ok,
            prev_status: None,
            details: String::new(),
            desc: String::new(),
            tags: Vec::new(),
            maintenance: None,
            silent: false,
            disabled: false,
            problem: false,
            dead: false,
            created: now,
            changed: now,
            updated: now,
            expected: None,
            scheduled: None,
            keypath: None,
            origkeypath: None,
            held: Vec::new(),
            retry: 0,
            version: 0,
        };
        ind.reschedule(Timing::of(&ind.method, policy, settings), now);
        ind
    }

    /// When the scheduler must act on this indicator: its expiry time, unless it is
    /// disabled, has a problem or is dead. Backends index this value.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        if self.disabled || self.problem || self.dead {
            None
        } else {
            self.scheduled
        }
    }

    /// Whether an update is overdue but the indicator has not expired yet
    /// (`now > expected`); for a server-evaluated (logic) one, whether its evaluation is
    /// more than 30 s late (`now > scheduled + 30 s`, okerr's `MQ_PROCESS_TIME`).
    pub fn pending(&self, now: DateTime<Utc>) -> bool {
        if self.method.is_passive() {
            self.expected.is_some_and(|e| now > e)
        } else {
            self.scheduled
                .is_some_and(|s| now > s + TimeDelta::seconds(30))
        }
    }

    /// okerr's flags: `disabled`/`OK`/`ERR`, then `pending`, `maintenance`, `silent`,
    /// `problem` as they apply.
    pub fn flags(&self, now: DateTime<Utc>) -> Vec<&'static str> {
        let mut f = vec![if self.disabled {
            "disabled"
        } else {
            self.status.as_str()
        }];
        let extra = [
            (self.pending(now), "pending"),
            (self.maintenance.is_some(), "maintenance"),
            (self.silent, "silent"),
            (self.problem, "problem"),
        ];
        f.extend(extra.iter().filter(|(on, _)| *on).map(|(_, n)| *n));
        f
    }

    /// okerr's `ATTENTION`: a problem, maintenance, or ERR and not silent.
    pub fn needs_attention(&self) -> bool {
        self.problem || self.maintenance.is_some() || (self.status == Status::Err && !self.silent)
    }

    /// okerr's tags (spec §2.5): the flags, the method's codename, `passive`, `ATTENTION`
    /// when it needs a look (a problem, maintenance, or ERR and not silent),
    /// `policy:{name}`, then the user tags.
    pub fn all_tags(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut tags: Vec<String> = self.flags(now).into_iter().map(str::to_owned).collect();
        tags.push(self.method.codename().to_owned());
        tags.push(
            if self.method.is_passive() {
                "passive"
            } else {
                "active"
            }
            .to_owned(),
        );
        if self.needs_attention() {
            tags.push("ATTENTION".to_owned());
        }
        tags.push(format!("policy:{}", self.policy));
        tags.extend(self.tags.iter().map(|t| t.to_string()));
        tags
    }

    /// Seconds since the status changed, when it is ERR and not silent; else 0.
    pub fn errage(&self, now: DateTime<Utc>) -> i64 {
        if self.status == Status::Err && !self.silent {
            (now - self.changed).num_seconds()
        } else {
            0
        }
    }

    /// Like [`errage`](Indicator::errage), and 0 in maintenance too.
    pub fn uerrage(&self, now: DateTime<Utc>) -> i64 {
        if self.maintenance.is_some() {
            0
        } else {
            self.errage(now)
        }
    }

    /// `name@textid`, okerr's full name.
    pub fn full_name(&self, textid: &str) -> String {
        format!("{}@{}", self.name, textid)
    }

    /// `expected = now + P`, `scheduled = now + P + T` (spec §7.1); for a logic or an
    /// active indicator `expected = None`, `scheduled = now + P` (okerr's regular active
    /// rule). A quick active indicator is checked every P as well (okerr's quick sensors
    /// loop by themselves; here `scheduled` is the next check, see `crate::sensor`); an
    /// active check is never due more often than every second.
    pub(crate) fn reschedule(&mut self, timing: Timing, now: DateTime<Utc>) {
        if self.method.is_passive() {
            let expected = now + timing.period;
            self.expected = Some(expected);
            self.scheduled = Some(expected + timing.patience);
        } else {
            let period = if self.method.is_active() {
                timing.period.max(TimeDelta::seconds(1))
            } else {
                timing.period
            };
            self.expected = None;
            self.scheduled = Some(now + period);
        }
    }

    /// Evaluate (a logic indicator) at once: `scheduled = now` (okerr's retest of an
    /// active indicator, also what changing its method or arguments does).
    pub(crate) fn retest_now(&mut self, now: DateTime<Utc>) {
        self.expected = None;
        self.scheduled = Some(now);
    }

    /// okerr's `register_result` (spec §7.2), the one entry point of every result: a
    /// pushed update, an expiry, a user's "set OK", a logic evaluation, a check. A
    /// confirmation resets `retry` and reschedules. A change first waits out the policy's
    /// retry schedule (`retry_schedule` towards ERR, `recovery_retry_schedule` towards OK)
    /// when `can_retry` and the indicator may retry (not passive, not quick), and is
    /// committed once the schedule is spent. `dead` follows a passive indicator's ERR.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register_result(
        &mut self,
        status: Status,
        details: &str,
        source: &str,
        policy: &Policy,
        timing: Timing,
        can_retry: bool,
        now: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        self.details = truncate_details(details);
        let passive = self.method.is_passive();
        if status == self.status {
            fx.log(
                LogKind::Update,
                format!("{source}: confirmed {status}: {}", self.details),
            );
            self.dead = status == Status::Err && passive;
            self.retry = 0;
            self.updated = now;
            self.reschedule(timing, now);
            return;
        }
        if can_retry && !passive && !timing.quick {
            let schedule = if status == Status::Ok {
                &policy.recovery_retry_schedule
            } else {
                &policy.retry_schedule
            };
            let step = usize::try_from(self.retry).unwrap_or(usize::MAX);
            if let Some(delay) = schedule.delays().get(step) {
                fx.log(
                    LogKind::Update,
                    format!(
                        "{source}: got {} > {status} ({}), will retry in {}s",
                        self.status,
                        self.details,
                        delay.as_secs()
                    ),
                );
                self.expected = None;
                self.scheduled = Some(now + delay.to_chrono());
                self.retry += 1;
                return;
            }
        }
        fx.log(
            LogKind::Update,
            format!(
                "{source}: switch {} > {status}: {}",
                self.status, self.details
            ),
        );
        self.retry = 0;
        self.dead = status == Status::Err && passive;
        if !self.disabled {
            self.change(status, now, fx);
            self.reschedule(timing, now);
        }
    }

    /// okerr's `change` (spec §7.3): the alert, the times, and outside maintenance the
    /// previous status and the webhook.
    pub(crate) fn change(&mut self, new: Status, now: DateTime<Utc>, fx: &mut Effects) {
        let old = self.status;
        let age = shorttd((now - self.changed).num_seconds());
        fx.alert(
            format!("Changed status {old} ({age}) -> {new} ({})", self.details),
            Some((new.as_str().to_owned(), old.as_str().to_owned())),
        );
        self.changed_outside_alert(new, now, fx);
    }

    /// The part of a change that is not the alert (shared with the string method's
    /// legacy route, whose alert has another text and fires no webhook).
    fn changed_outside_alert(&mut self, new: Status, now: DateTime<Utc>, fx: &mut Effects) {
        let old = self.status;
        self.changed = now;
        self.updated = now;
        if self.maintenance.is_none() {
            self.prev_status = Some(old);
            fx.status_change = Some((old, new));
        }
        self.status = new;
    }

    /// The string method's `empty_ok` switch ERR → OK (spec §6.3 rule 4, quirk 15): an
    /// alert without the age part and no webhook.
    pub(crate) fn legacy_switch_ok(&mut self, now: DateTime<Utc>, fx: &mut Effects) {
        fx.alert(
            format!("Changed status ERR -> OK ({})", self.details),
            Some(("OK".to_owned(), "ERR".to_owned())),
        );
        self.changed_outside_alert(Status::Ok, now, fx);
        fx.status_change = None;
    }
}

/// The kind of a log line, after okerr's log typecodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// A result: confirmed or switched.
    Update,
    /// Something about the indicator: creation arguments, problems, flags.
    Indicator,
    /// An alert (`ALERT:…`), also when it was suppressed.
    Alert,
}

impl LogKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Update => "update",
            LogKind::Indicator => "indicator",
            LogKind::Alert => "alert",
        }
    }
}

impl std::str::FromStr for LogKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "update" => Ok(LogKind::Update),
            "indicator" => Ok(LogKind::Indicator),
            "alert" => Ok(LogKind::Alert),
            other => Err(format!("unknown log kind '{other}'")),
        }
    }
}

/// One line of an indicator's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was written.
    pub time: DateTime<Utc>,
    /// What it is about.
    pub kind: LogKind,
    /// okerr's text.
    pub message: String,
}

/// What a decision produces besides the indicator's new state, before alerts are turned
/// into notifications.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) log: Vec<(LogKind, String)>,
    pub(crate) alerts: Vec<AlertSpec>,
    pub(crate) status_change: Option<(Status, Status)>,
}

impl Effects {
    pub(crate) fn log(&mut self, kind: LogKind, message: String) {
        self.log.push((kind, message));
    }

    /// Raises an alert; like okerr, every alert is logged as `ALERT:{message}`, also
    /// when silent or maintenance suppresses it.
    pub(crate) fn alert(&mut self, message: String, keys: Option<(String, String)>) {
        self.log(LogKind::Alert, format!("ALERT:{message}"));
        self.alerts.push(AlertSpec { message, keys });
    }
}
