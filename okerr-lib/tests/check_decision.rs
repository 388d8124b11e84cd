//! `decide_check`, the pure decision on an active check's result (spec §7.2, §7.4
//! okerr-mqsender): confirmation, change, the retry and recovery schedules step by step
//! with okerr's log texts, quick indicators (no retry, confirmations every 300 s), the
//! problem flag, learned arguments stored back, the result's alerts raised.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use okerr::{
    ActiveArgs, ActiveMethod, CheckMethod, CheckResult, Indicator, IndicatorName, Interval,
    MethodKind, NewProject, Project, ProjectId, RetrySchedule, Settings, Status, TextId,
    decide_check, decide_expiry,
};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

/// A project whose `Default` policy has period `period` s and these retry schedules.
fn project(period: u64, retry: &str, recovery: &str) -> Project {
    let new = NewProject::new("web", TextId::parse("p1").unwrap());
    let mut policies = new.policies;
    for p in &mut policies {
        p.period = Interval::from_secs(period);
        p.retry_schedule = RetrySchedule::parse(retry).unwrap();
        p.recovery_retry_schedule = RetrySchedule::parse(recovery).unwrap();
    }
    Project {
        id: ProjectId(1),
        name: new.name,
        textid: new.textid,
        aliases: new.aliases,
        members: new.members,
        policies,
        max_indicators: new.max_indicators,
        limited: new.limited,
        api_keys: new.api_keys,
        version: 1,
    }
}

fn site(p: &Project, method: ActiveMethod, args: &[(&str, &str)]) -> Indicator {
    let mut m = CheckMethod::active(method);
    for (k, v) in args {
        assert!(m.set_arg(k, v).unwrap(), "{k}");
    }
    let policy = p.policy_or_default("Default");
    let mut ind = Indicator::new(
        p.id,
        IndicatorName::parse("site").unwrap(),
        &policy,
        m,
        &Settings::default(),
        t0(),
    );
    ind.id = okerr::IndicatorId(7);
    ind.version = 1;
    // New active indicators are checked at once.
    ind.scheduled = Some(t0());
    ind
}

/// Decides `result` at `now` and returns the new state and the log texts.
fn decide(
    p: &Project,
    ind: &Indicator,
    result: &CheckResult,
    now: DateTime<Utc>,
) -> (Indicator, Vec<String>) {
    let c = decide_check(p, ind, result, &Settings::default(), now).expect("due");
    let log = c.log.iter().map(|l| l.message.clone()).collect();
    (c.indicator, log)
}

#[test]
fn a_confirmation_and_a_change_without_a_schedule() {
    let p = project(60, "", "");
    let ind = site(
        &p,
        ActiveMethod::HttpStatus,
        &[("url", "http://127.0.0.1:1/")],
    );
    let ok = CheckResult::ok("Got status code 200 OK as expected");
    let (ind, log) = decide(&p, &ind, &ok, t0());
    assert_eq!(
        log,
        ["okerr-process: confirmed OK: Got status code 200 OK as expected"]
    );
    assert_eq!((ind.status, ind.expected), (Status::Ok, None));
    assert_eq!(
        ind.scheduled,
        Some(t0() + TimeDelta::seconds(60)),
        "now + P"
    );
    assert_eq!(ind.updated, t0());
    assert!(!ind.dead);

    let now = t0() + TimeDelta::seconds(60);
    let bad = CheckResult::err("Status code: 500 (not 200)");
    let (ind, log) = decide(&p, &ind, &bad, now);
    assert_eq!(ind.status, Status::Err);
    assert_eq!(
        log,
        [
            "okerr-process: switch OK > ERR: Status code: 500 (not 200)",
            "ALERT:Changed status OK (60s) -> ERR (Status code: 500 (not 200))",
        ]
    );
    assert!(!ind.dead, "an active indicator is never dead");
    assert_eq!(ind.scheduled, Some(now + TimeDelta::seconds(60)));
    assert_eq!(ind.due_at(), ind.scheduled, "and is checked again");
}

#[test]
fn the_retry_and_recovery_schedules_step_by_step() {
    let p = project(60, "10s 20s", "5s");
    let ind = site(&p, ActiveMethod::HttpStatus, &[]);
    let bad = CheckResult::err("Status code: 500 (not 200)");
    let (ind, log) = decide(&p, &ind, &bad, t0());
    assert_eq!(
        log,
        ["okerr-process: got OK > ERR (Status code: 500 (not 200)), will retry in 10s"]
    );
    assert_eq!((ind.status, ind.retry), (Status::Ok, 1));
    assert_eq!(ind.scheduled, Some(t0() + TimeDelta::seconds(10)));
    let at = t0() + TimeDelta::seconds(10);
    assert!(
        decide_check(
            &p,
            &ind,
            &bad,
            &Settings::default(),
            at - TimeDelta::seconds(1)
        )
        .is_none(),
        "not due before the delay"
    );
    let (ind, log) = decide(&p, &ind, &bad, at);
    assert_eq!(
        log,
        ["okerr-process: got OK > ERR (Status code: 500 (not 200)), will retry in 20s"]
    );
    assert_eq!(
        (ind.retry, ind.scheduled),
        (2, Some(at + TimeDelta::seconds(20)))
    );
    let at = at + TimeDelta::seconds(20);
    let (ind, log) = decide(&p, &ind, &bad, at);
    assert_eq!(
        log[0],
        "okerr-process: switch OK > ERR: Status code: 500 (not 200)"
    );
    assert_eq!((ind.status, ind.retry), (Status::Err, 0));
    assert_eq!(ind.scheduled, Some(at + TimeDelta::seconds(60)));

    // Towards OK the recovery schedule applies.
    let at = at + TimeDelta::seconds(60);
    let good = CheckResult::ok("Got status code 200 OK as expected");
    let (ind, log) = decide(&p, &ind, &good, at);
    assert_eq!(
        log,
        ["okerr-process: got ERR > OK (Got status code 200 OK as expected), will retry in 5s"]
    );
    assert_eq!((ind.status, ind.retry), (Status::Err, 1));
    // A confirmation of the old status resets the count.
    let at = at + TimeDelta::seconds(5);
    let (ind, log) = decide(&p, &ind, &bad, at);
    assert_eq!(
        log,
        ["okerr-process: confirmed ERR: Status code: 500 (not 200)"]
    );
    assert_eq!(ind.retry, 0);
    let (ind, _) = decide(&p, &ind, &good, at + TimeDelta::seconds(60));
    assert_eq!(ind.retry, 1);
    let (ind, log) = decide(&p, &ind, &good, at + TimeDelta::seconds(65));
    assert_eq!(ind.status, Status::Ok);
    assert_eq!(
        log[0],
        "okerr-process: switch ERR > OK: Got status code 200 OK as expected"
    );
}

#[test]
fn a_quick_indicator_never_retries_and_reports_every_300_s() {
    let p = project(5, "10s 20s", "10s");
    let ind = site(&p, ActiveMethod::TcpPort, &[("port", "22")]);
    let ok = CheckResult::ok("Connected to 127.0.0.1:22");
    // The first check (no details yet) reports.
    let (ind, log) = decide(&p, &ind, &ok, t0());
    assert_eq!(
        log,
        ["okerr-process: confirmed OK: Connected to 127.0.0.1:22"]
    );
    assert_eq!(
        ind.scheduled,
        Some(t0() + TimeDelta::seconds(5)),
        "checked every 5 s"
    );
    // The next ones within 300 s only move the schedule and refresh the details.
    let other = CheckResult::ok("Connected to 127.0.0.1:22 again");
    let (ind, log) = decide(&p, &ind, &other, t0() + TimeDelta::seconds(5));
    assert!(log.is_empty(), "{log:?}");
    assert_eq!(ind.updated, t0(), "the last report");
    assert_eq!(ind.details, "Connected to 127.0.0.1:22 again");
    assert_eq!(ind.scheduled, Some(t0() + TimeDelta::seconds(10)));
    let (ind, log) = decide(&p, &ind, &ok, t0() + TimeDelta::seconds(300));
    assert_eq!(
        log,
        ["okerr-process: confirmed OK: Connected to 127.0.0.1:22"]
    );
    assert_eq!(ind.updated, t0() + TimeDelta::seconds(300));
    // A change is reported at once, never retried.
    let now = t0() + TimeDelta::seconds(305);
    let refused =
        CheckResult::err("Connection refused to 127.0.0.1:22: [Errno 111] Connection refused");
    let (ind, log) = decide(&p, &ind, &refused, now);
    assert_eq!(ind.status, Status::Err);
    assert_eq!(
        (ind.retry, ind.scheduled),
        (0, Some(now + TimeDelta::seconds(5)))
    );
    assert!(
        log[0].starts_with("okerr-process: switch OK > ERR: Connection refused"),
        "{log:?}"
    );
}

#[test]
fn a_problem_stops_the_checks_until_cleared() {
    let p = project(60, "10s", "");
    let ind = site(&p, ActiveMethod::Dns, &[("type", "A")]);
    let problem = CheckResult::problem("Unknown record type 'XX'");
    let (ind, log) = decide(&p, &ind, &problem, t0());
    assert!(ind.problem);
    assert_eq!(ind.status, Status::Err, "a problem is not retried");
    assert_eq!(ind.due_at(), None, "not checked until a user clears it");
    assert!(
        log.contains(&"Problem: Unknown record type 'XX'".to_owned()),
        "{log:?}"
    );
    assert!(
        decide_check(
            &p,
            &ind,
            &problem,
            &Settings::default(),
            t0() + TimeDelta::hours(1)
        )
        .is_none()
    );
}

#[test]
fn learned_arguments_are_stored_back_and_alerts_raised() {
    let p = project(60, "", "");
    let ind = site(
        &p,
        ActiveMethod::Sha1Dynamic,
        &[("url", "http://127.0.0.1:1/")],
    );
    let init = CheckResult::ok("hash initialized").learn("hash", "aaaa");
    let (ind, log) = decide(&p, &ind, &init, t0());
    assert_eq!(ind.method.args()["hash"], "aaaa");
    assert!(
        log.contains(&"okerr-process set hash = aaaa".to_owned()),
        "{log:?}"
    );
    let changed = CheckResult::ok("new hash")
        .learn("hash", "bbbb")
        .alert("Page http://127.0.0.1:1/ changed hash from aaaa to bbbb");
    let c = decide_check(
        &p,
        &ind,
        &changed,
        &Settings::default(),
        t0() + TimeDelta::seconds(60),
    )
    .unwrap();
    assert_eq!(c.indicator.method.args()["hash"], "bbbb");
    let log: Vec<_> = c.log.iter().map(|l| l.message.as_str()).collect();
    assert!(
        log.contains(&"ALERT:Page http://127.0.0.1:1/ changed hash from aaaa to bbbb"),
        "{log:?}"
    );
    assert_eq!(c.indicator.status, Status::Ok);
}

#[test]
fn only_due_active_indicators_are_decided() {
    let p = project(60, "", "");
    let mut ind = site(&p, ActiveMethod::HttpStatus, &[]);
    let ok = CheckResult::ok("fine");
    assert!(
        decide_check(
            &p,
            &ind,
            &ok,
            &Settings::default(),
            t0() - TimeDelta::seconds(1)
        )
        .is_none()
    );
    ind.disabled = true;
    assert!(decide_check(&p, &ind, &ok, &Settings::default(), t0()).is_none());
    ind.disabled = false;
    ind.method = CheckMethod::heartbeat();
    assert!(decide_check(&p, &ind, &ok, &Settings::default(), t0()).is_none());
    // and expiry leaves active indicators alone: they are checked, not expired
    let active = site(&p, ActiveMethod::HttpStatus, &[]);
    assert!(decide_expiry(&p, &active, &Settings::default(), t0()).is_none());
    assert!(matches!(active.method.kind, MethodKind::Active(_)));
}

fn result() -> impl Strategy<Value = CheckResult> {
    (
        any::<bool>(),
        "[a-z ]{0,20}",
        proptest::option::of("[0-9a-f]{4}"),
        any::<bool>(),
    )
        .prop_map(|(ok, details, hash, alert)| {
            let mut r = if ok {
                CheckResult::ok(details)
            } else {
                CheckResult::err(details)
            };
            if let Some(h) = hash {
                r = r.learn("hash", h);
            }
            if alert {
                r = r.alert("changed");
            }
            r
        })
}

proptest! {
    /// Over any sequence of results, each decided when due: the status changes only
    /// once the schedule towards it is spent (so never without `retry` back at 0),
    /// `retry` never exceeds the schedule, the indicator is never dead, always due
    /// again, and the stored hash is the last one learned.
    #[test]
    fn any_sequence_of_results(
        results in proptest::collection::vec(result(), 1..30),
        retry in 0usize..3,
        recovery in 0usize..3,
        quick in any::<bool>(),
    ) {
        let sched = |n: usize| (1..=n).map(|i| format!("{i}s")).collect::<Vec<_>>().join(" ");
        let p = project(if quick { 5 } else { 60 }, &sched(retry), &sched(recovery));
        let mut ind = site(&p, ActiveMethod::Sha1Dynamic, &[]);
        let mut hash = String::new();
        for r in &results {
            let now = ind.due_at().unwrap();
            let before = ind.status;
            let c = decide_check(&p, &ind, r, &Settings::default(), now).unwrap();
            if let Some(h) = r.set_args.get("hash") {
                hash.clone_from(h);
            }
            let next = c.indicator;
            prop_assert!(!next.dead);
            prop_assert!(next.due_at().is_some_and(|d| d > now));
            let limit = if r.status == Status::Ok { recovery } else { retry };
            prop_assert!(next.retry as usize <= limit);
            if quick {
                prop_assert_eq!(next.retry, 0);
            }
            if next.status != before {
                prop_assert_eq!(next.status, r.status);
                prop_assert_eq!(next.retry, 0);
            }
            let stored = next.method.args()["hash"].clone();
            prop_assert_eq!(stored, hash.clone());
            let alerted = c.log.iter().any(|l| l.message == "ALERT:changed");
            prop_assert_eq!(alerted, !r.alerts.is_empty());
            ind = next;
            ind.version += 1;
        }
        let _ = ActiveArgs::defaults(ActiveMethod::Sha1Dynamic);
    }
}
