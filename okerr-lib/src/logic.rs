//! okerr's `logic` method (spec §6.4): the project's data as okerr's `datastruct()`, the
//! evaluation of an indicator's expression over it, and the decision that registers the
//! result (§7.2, with the policy's retry schedules). Pure: the engine reads the project's
//! indicators and passes them in with `now`.
//!
//! The expression language itself (parser, whitelist, Python semantics) is the crate
//! `okerr-logic`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Timelike, Utc};
use okerr_logic::{Context, Dict, Logic, Outcome, Value};

use crate::action::SCHEDULER_SOURCE;
use crate::indicator::{Effects, Indicator, LogKind, Status, Timing};
use crate::method::{LogicArgs, MethodKind};
use crate::outbox::build_commit;
use crate::project::Project;
use crate::settings::Settings;
use crate::storage::Commit;

/// The names of okerr's context (besides those `init` creates).
pub const CONTEXT_NAMES: [&str; 13] = [
    "s", "i", "prefix", "tags", "age", "hhmm", "day", "month", "year", "weekday", "_pid", "_pname",
    "lo",
];

/// The states counted in `prefix[…]` and `tags[…]`, whose zero keys are pre-created.
const STATES: [&str; 4] = ["OK", "ERR", "MAINTENANCE", "SILENT"];

/// Why an indicator is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its `scheduled` time has passed (the claim of the scheduler).
    Due,
    /// An indicator of its project changed: evaluated now, whatever its schedule.
    Changed,
}

/// okerr's key of an indicator in `s` and `i`: the name with every `.` replaced by `_`.
pub fn key_of(name: &str) -> String {
    name.replace('.', "_")
}

/// okerr's `okerrm()`: `DISABLED`, else `MAINTENANCE`, else the status.
fn okerrm(ind: &Indicator) -> &'static str {
    if ind.disabled {
        "DISABLED"
    } else if ind.maintenance.is_some() {
        "MAINTENANCE"
    } else {
        ind.status.as_str()
    }
}

fn secs(d: chrono::TimeDelta) -> i64 {
    d.num_seconds()
}

/// The patience of each policy's indicators without a patience of their own, found once
/// per context (not once per indicator).
struct Patience<'a> {
    project: &'a Project,
    settings: &'a Settings,
    of_policy: HashMap<&'a str, i64>,
}

impl<'a> Patience<'a> {
    fn new(project: &'a Project, settings: &'a Settings) -> Self {
        Patience {
            project,
            settings,
            of_policy: HashMap::new(),
        }
    }

    fn of(&mut self, ind: &'a Indicator) -> i64 {
        let (project, settings) = (self.project, self.settings);
        let compute = || {
            let policy = project.policy_or_default(ind.policy.as_str());
            secs(Timing::of(&ind.method, &policy, settings).patience)
        };
        if ind.method.patience.is_some() {
            return compute();
        }
        *self
            .of_policy
            .entry(ind.policy.as_str())
            .or_insert_with(compute)
    }
}

/// `i[name]`: okerr's fields of one indicator.
fn info(ind: &Indicator, patience: i64, now: DateTime<Utc>) -> Value {
    let mut d = Dict::with_capacity(10);
    d.set("id", ind.id.0);
    d.set("name", ind.name.as_str());
    d.set("status", ind.status.as_str());
    // okerr's mtime is the configuration's; this server keeps the time of the last result.
    d.set("mtime", ind.updated.timestamp());
    d.set("errage", ind.errage(now));
    d.set("uerrage", ind.uerrage(now));
    d.set("age", secs(now - ind.updated));
    d.set("statusage", secs(now - ind.changed));
    d.set("patience", patience);
    d.set("maintenance", ind.maintenance.is_some());
    Value::dict(d)
}

/// Counts per `{STATE}:{key}`, with the zero keys of every state pre-created.
#[derive(Default)]
struct Counter {
    order: Vec<String>,
    counts: HashMap<String, i64>,
}

impl Counter {
    fn count(&mut self, state: &str, key: &str) {
        if !self.counts.contains_key(&format!("OK:{key}")) {
            for s in STATES {
                let k = format!("{s}:{key}");
                self.order.push(k.clone());
                self.counts.insert(k, 0);
            }
        }
        if let Some(n) = self.counts.get_mut(&format!("{state}:{key}")) {
            *n += 1;
        }
    }

    fn into_value(self) -> Value {
        let mut d = Dict::with_capacity(self.order.len());
        for k in self.order {
            let n = self.counts.get(&k).copied().unwrap_or(0);
            d.set(&k, n);
        }
        Value::dict(d)
    }
}

/// okerr's `project.datastruct()` plus `lo` for `this`, limited to the names in `names`
/// (building `tags` for 10,000 indicators when the expression reads only `s` is waste).
/// Only indicators of `project` are seen; disabled ones are left out.
pub fn context(
    project: &Project,
    this: &Indicator,
    indicators: &[Indicator],
    names: &BTreeSet<String>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Context {
    let wants = |n: &str| names.contains(n);
    let visible: Vec<&Indicator> = indicators
        .iter()
        .filter(|i| i.project == project.id && !i.disabled)
        .collect();
    let mut patience = Patience::new(project, settings);
    let mut ctx = Context::new();
    if wants("s") {
        let mut s = Dict::with_capacity(visible.len());
        for ind in &visible {
            s.set(&key_of(ind.name.as_str()), ind.status == Status::Ok);
        }
        ctx.set("s", Value::dict(s));
    }
    if wants("i") {
        let mut i = Dict::with_capacity(visible.len());
        for ind in &visible {
            i.set(&key_of(ind.name.as_str()), info(ind, patience.of(ind), now));
        }
        ctx.set("i", Value::dict(i));
    }
    if wants("prefix") {
        let mut c = Counter::default();
        for ind in &visible {
            let state = okerrm(ind);
            let parts: Vec<&str> = ind.name.as_str().split(':').collect();
            for n in 1..parts.len() {
                c.count(state, &parts[..n].join(":"));
            }
        }
        ctx.set("prefix", c.into_value());
    }
    if wants("tags") || wants("age") {
        let mut c = Counter::default();
        let mut ages = Dict::new();
        ages.set("errage", 0);
        ages.set("uerrage", 0);
        let mut max: HashMap<String, (i64, i64)> = HashMap::new();
        let mut order = Vec::new();
        for ind in &visible {
            let state = okerrm(ind);
            let (errage, uerrage) = (ind.errage(now), ind.uerrage(now));
            for tag in ind.all_tags(now) {
                c.count(state, &tag);
                let slot = max.entry(tag.clone()).or_insert_with(|| {
                    order.push(tag.clone());
                    (0, 0)
                });
                slot.0 = slot.0.max(errage);
                slot.1 = slot.1.max(uerrage);
            }
        }
        for tag in order {
            let (e, u) = max.get(&tag).copied().unwrap_or_default();
            ages.set(&format!("{tag}:errage"), e);
            ages.set(&format!("{tag}:uerrage"), u);
        }
        ctx.set("tags", c.into_value());
        ctx.set("age", Value::dict(ages));
    }
    let hhmm = i64::from(now.hour() * 100 + now.minute());
    ctx.set("hhmm", Value::Int(hhmm));
    ctx.set("day", Value::Int(i64::from(now.day())));
    ctx.set("month", Value::Int(i64::from(now.month())));
    ctx.set("year", Value::Int(i64::from(now.year())));
    ctx.set(
        "weekday",
        Value::Int(i64::from(now.weekday().num_days_from_monday())),
    );
    ctx.set("_pid", Value::Int(project.id.0));
    ctx.set("_pname", Value::from(project.name.as_str()));
    if wants("lo") {
        let lo = this
            .name
            .as_str()
            .strip_suffix("-up")
            .and_then(|lower| visible.iter().find(|i| i.name.as_str() == lower))
            .map_or(Value::None, |ind| info(ind, patience.of(ind), now));
        ctx.set("lo", lo);
    }
    ctx
}

/// Evaluates `this` (a logic indicator) over `indicators` (its project's, read together):
/// OK or ERR with the `dump` details, or the error's text.
///
/// # Errors
/// The evaluation's error (`KeyError: 'web'`), or the argument that does not compile.
pub fn evaluate(
    project: &Project,
    this: &Indicator,
    args: &LogicArgs,
    indicators: &[Indicator],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Outcome, String> {
    let logic = args.compile().map_err(|e| e.to_string())?;
    let mut ctx = context(project, this, indicators, &logic.names(), settings, now);
    logic.evaluate(&mut ctx).map_err(|e| e.to_string())
}

/// Decides the evaluation of `indicator`: its result registered by okerr's rules (§7.2,
/// with the policy's retry schedules), or ERR with the error's text as details and the
/// problem flag (§6.4; not retried). `None` when it is not a logic indicator, is disabled
/// or has a problem, or (for [`Trigger::Due`]) is not due at `now`.
pub fn decide_evaluation(
    project: &Project,
    indicator: &Indicator,
    indicators: &[Indicator],
    settings: &Settings,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Option<Commit> {
    let MethodKind::Logic(args) = &indicator.method.kind else {
        return None;
    };
    let due = indicator.due_at()?;
    if trigger == Trigger::Due && due > now {
        return None;
    }
    let policy = project.policy_or_default(indicator.policy.as_str());
    let timing = Timing::of(&indicator.method, &policy, settings);
    let mut ind = indicator.clone();
    let mut fx = Effects::default();
    match evaluate(project, indicator, args, indicators, settings, now) {
        Ok(out) => {
            let status = if out.ok { Status::Ok } else { Status::Err };
            ind.register_result(
                status,
                &out.details,
                SCHEDULER_SOURCE,
                &policy,
                timing,
                true,
                now,
                &mut fx,
            );
        }
        Err(error) => {
            ind.register_result(
                Status::Err,
                &error,
                SCHEDULER_SOURCE,
                &policy,
                timing,
                false,
                now,
                &mut fx,
            );
            ind.problem = true;
            fx.log(LogKind::Indicator, format!("Problem: {error}"));
        }
    }
    Some(build_commit(project, &policy, ind, fx, now))
}

/// What is worth telling a user about the logic arguments `args` of `this` in a project
/// of these `indicators`, though they compile: names that refer to no indicator
/// (`s['web']` without `web`), names the context does not have, a `lo` without its
/// lower indicator.
pub fn warnings(
    project: &Project,
    this: &Indicator,
    args: &LogicArgs,
    indicators: &[Indicator],
) -> Vec<String> {
    let Ok(logic) = args.compile() else {
        return Vec::new();
    };
    warnings_of(&logic, project, this, indicators)
}

fn warnings_of(
    logic: &Logic,
    project: &Project,
    this: &Indicator,
    indicators: &[Indicator],
) -> Vec<String> {
    let keys: BTreeSet<String> = indicators
        .iter()
        .filter(|i| i.project == project.id && !i.disabled)
        .map(|i| key_of(i.name.as_str()))
        .collect();
    let mut out = Vec::new();
    for (root, key) in logic.constant_keys() {
        if (root == "s" || root == "i") && !keys.contains(&key) {
            let hint = if key.contains('.') {
                format!(" (dots are written as _: '{}')", key_of(&key))
            } else {
                String::new()
            };
            out.push(format!("{root}['{key}'] refers to no indicator{hint}"));
        }
    }
    for name in logic.unknown_names(CONTEXT_NAMES) {
        out.push(format!("name '{name}' is not defined"));
    }
    if logic.names().contains("lo") {
        let lower = this.name.as_str().strip_suffix("-up");
        let found = lower.is_some_and(|l| {
            indicators
                .iter()
                .any(|i| i.project == project.id && !i.disabled && i.name.as_str() == l)
        });
        if !found {
            let text = match lower {
                Some(l) => format!("lo is None: there is no indicator '{l}'"),
                None => "lo is None: the name does not end with -up".to_owned(),
            };
            out.push(text);
        }
    }
    out.dedup();
    out
}

/// The expression of okerr's no-flap wizard (§6.4) for a lower indicator with these
/// thresholds in seconds: OK once the lower one has been OK for `okthr`, and still OK
/// while it has been ERR for less than `errthr`.
pub fn noflap_expr(okthr: i64, errthr: i64) -> String {
    format!(
        "(lo['status']=='OK' and lo['statusage']>{okthr}) or (lo['status']=='ERR' and lo['statusage']<{errthr})"
    )
}
