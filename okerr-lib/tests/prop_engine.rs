//! Property tests of the engine's semantics: expiry, refusals, alert reduction, and
//! invariants under random interleavings of updates, user actions and clock moves.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::World;
use okerr::{
    Action, Clock, Indicator, IndicatorName, Interval, NewProject, Payload, Policy, Reduction,
    Secret, Source, Status, UpdateError, UpdateOutcome, UpdateRequest,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn set_timing(p: &mut NewProject, period: u64, patience: u64) {
    let d = &mut p.policies[0];
    d.period = Interval::from_secs(period);
    d.patience = Interval::from_secs(patience);
}

#[derive(Debug, Clone)]
enum Step {
    Push(Status),
    Advance(i64),
    /// Moves the clock to the last update's deadline plus this many seconds.
    ToDeadline(i64),
    Tick,
}

fn steps(max_gap: i64) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        prop_oneof![Just(Status::Ok), Just(Status::Err)].prop_map(Step::Push),
        (0..max_gap).prop_map(Step::Advance),
        (-2i64..=2).prop_map(Step::ToDeadline),
        Just(Step::Tick),
    ];
    prop::collection::vec(step, 1..40)
}

proptest! {
    #![proptest_config(config())]

    /// An indicator never expires before its last accepted update + P + T, always has
    /// expired once the engine runs after that (unless a pushed ERR already made it dead),
    /// and expires once, not twice.
    #[test]
    fn expiry_happens_exactly_at_its_time_and_once(
        period in 1u64..5000,
        patience in 0u64..5000,
        steps in steps(12_000),
    ) {
        block_on(async move {
            let w = World::with(|p| set_timing(p, period, patience)).await;
            let deadline = TimeDelta::seconds((period + patience) as i64);
            let mut last: Option<(DateTime<Utc>, Status)> = None;
            let mut expired_since_update = 0;
            for step in steps {
                match step {
                    Step::Push(s) => {
                        w.engine.update(UpdateRequest::new("p1", "srv", s.as_str())).await.unwrap();
                        last = Some((w.clock.now(), s));
                        expired_since_update = 0;
                    }
                    Step::Advance(secs) => w.clock.advance(TimeDelta::seconds(secs)),
                    Step::ToDeadline(offset) => {
                        if let Some((at, _)) = last {
                            let target = at + deadline + TimeDelta::seconds(offset);
                            w.clock.set(target.max(w.clock.now()));
                        }
                    }
                    Step::Tick => {
                        let report = w.engine.tick().await.unwrap();
                        expired_since_update += report.expired;
                        let Some((at, pushed)) = last else {
                            assert_eq!(report.expired, 0);
                            continue;
                        };
                        let ind = w.indicator("srv").await.unwrap();
                        let now = w.clock.now();
                        if now < at + deadline {
                            assert_eq!(report.expired, 0, "expired early");
                            assert_eq!(ind.status, pushed);
                        } else if pushed == Status::Ok {
                            assert_eq!((ind.status, ind.dead), (Status::Err, true), "not expired in time");
                            assert_eq!(expired_since_update, 1, "expires exactly once");
                        } else {
                            assert_eq!(expired_since_update, 0, "a pushed ERR is dead and never expires");
                        }
                    }
                }
            }
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Refusal {
    WrongSecret,
    MissingSecret,
    IpOutside,
    HttpOff,
    SmtpOff,
    Disabled,
    AutocreateOff,
}

fn refusals() -> impl Strategy<Value = Refusal> {
    prop_oneof![
        Just(Refusal::WrongSecret),
        Just(Refusal::MissingSecret),
        Just(Refusal::IpOutside),
        Just(Refusal::HttpOff),
        Just(Refusal::SmtpOff),
        Just(Refusal::Disabled),
        Just(Refusal::AutocreateOff),
    ]
}

fn policy_for(refusal: Refusal, p: &mut Policy) {
    match refusal {
        Refusal::WrongSecret | Refusal::MissingSecret => {
            p.secret = Some(Secret::parse("right").unwrap());
        }
        Refusal::IpOutside => p.subnets = vec!["10.0.0.0/8".parse().unwrap()],
        Refusal::HttpOff => p.http_update = false,
        Refusal::SmtpOff => p.smtp_update = false,
        Refusal::AutocreateOff => p.autocreate = false,
        Refusal::Disabled => {}
    }
}

proptest! {
    #![proptest_config(config())]

    /// Every refused update leaves storage exactly as it was, whatever the value, details,
    /// method or tags it carries, and whether or not the indicator exists.
    #[test]
    fn refused_updates_change_nothing(
        refusal in refusals(),
        exists in any::<bool>(),
        status in prop_oneof![Just("OK".to_owned()), Just("ERR".to_owned()), "[ -~]{0,20}"],
        details in proptest::option::of("[ -~]{0,50}"),
        method in proptest::option::of(prop_oneof![
            Just("heartbeat".to_owned()), Just("numerical|maxlim=5".to_owned()),
            Just("string|options=reinit".to_owned())]),
        tags in proptest::option::of("[a-z,]{0,20}"),
        error in proptest::option::of("[a-z]{0,5}"),
    ) {
        block_on(async move {
            let exists = exists || matches!(refusal, Refusal::Disabled);
            let exists = exists && !matches!(refusal, Refusal::AutocreateOff);
            let w = World::with(|p| policy_for(refusal, &mut p.policies[0])).await;
            if exists {
                let mut create = UpdateRequest::new("p1", "srv", "OK");
                create.secret = Some("right".into());
                create.source = if matches!(refusal, Refusal::HttpOff) { Source::Smtp } else { Source::Http };
                w.engine.update(create).await.unwrap();
                if matches!(refusal, Refusal::Disabled) {
                    let name = IndicatorName::parse("srv").unwrap();
                    w.engine.act("p1", &name, &Action::Disabled(true), "user").await.unwrap();
                }
            }
            w.clock.advance(TimeDelta::seconds(7));
            let mut r = UpdateRequest {
                details, method, tags, error,
                ip: Some("192.0.2.1".parse().unwrap()),
                secret: Some("right".into()),
                ..UpdateRequest::new("p1", "srv", status)
            };
            match refusal {
                Refusal::WrongSecret => r.secret = Some("wrong".into()),
                Refusal::MissingSecret => r.secret = None,
                Refusal::SmtpOff => r.source = Source::Smtp,
                _ => {}
            }
            let before = w.storage.snapshot();
            let result = w.engine.update(r).await;
            // Refused as any bad update is: not an unknown project, not a failure.
            let refused = matches!(
                &result,
                Err(e) if !matches!(e, UpdateError::NoSuchProject(_) | UpdateError::Storage(_))
            );
            assert!(refused, "{refusal:?} must be refused, got {result:?}");
            assert_eq!(w.storage.snapshot(), before, "{refusal:?} changed storage");
        });
    }
}

proptest! {
    #![proptest_config(config())]

    /// Alert reduction: a flip and its flip-back inside the delay are never both delivered,
    /// and the people are never left with a stale picture: the last status alert delivered
    /// always names the final status (none is needed when it never left OK).
    #[test]
    fn reduction_cancels_flaps_and_never_loses_a_standing_flip(
        delay in 1i64..600,
        gaps in prop::collection::vec(0i64..1200, 1..20),
        tick_between in any::<bool>(),
    ) {
        block_on(async move {
            let spec = format!("{delay}s");
            let w = World::with(|p| {
                p.policies[0].reduction = Some(Reduction::parse(&spec).unwrap());
            }).await;
            w.push("srv", "OK").await;
            let mut status = Status::Ok;
            let mut flips: Vec<(DateTime<Utc>, Status)> = Vec::new();
            for gap in gaps {
                w.clock.advance(TimeDelta::seconds(gap));
                status = status.opposite();
                w.push("srv", status.as_str()).await;
                flips.push((w.clock.now(), status));
                if tick_between {
                    w.engine.tick().await.unwrap();
                }
            }
            w.clock.advance(TimeDelta::seconds(2 * delay + 1));
            w.engine.tick().await.unwrap();

            let delivered: Vec<(DateTime<Utc>, String)> = w.notifier.delivered().into_iter()
                .filter_map(|e| match e.notification.payload {
                    Payload::Alert { message, .. } if message.starts_with("Changed status") =>
                        Some((e.notification.created, message)),
                    _ => None,
                })
                .collect();
            let delivered_at = |t: DateTime<Utc>| delivered.iter().any(|(c, _)| *c == t);
            for pair in flips.windows(2) {
                let ((t1, _), (t2, _)) = (pair[0], pair[1]);
                if t2 - t1 < TimeDelta::seconds(delay) && t1 != t2 {
                    assert!(!(delivered_at(t1) && delivered_at(t2)),
                        "a flap inside the delay was delivered: {t1} {t2}");
                }
            }
            match delivered.last() {
                Some((_, text)) => assert!(text.contains(&format!("-> {status} (")),
                    "the last alert {text:?} is not the final status {status}"),
                None => assert_eq!(status, Status::Ok, "a flip to ERR that stands was lost"),
            }
            let waiting = w.outbox().await.into_iter().filter(|e| e.delivered_at.is_none()).count();
            assert_eq!(waiting, 0, "everything released was delivered");
        });
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push(usize, &'static str),
    Advance(i64),
    Tick,
    Act(usize, Action),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let action = prop_oneof![
        any::<bool>().prop_map(Action::Maintenance),
        any::<bool>().prop_map(Action::Silent),
        any::<bool>().prop_map(Action::Disabled),
        any::<bool>().prop_map(Action::Problem),
        Just(Action::Retest),
        prop_oneof![Just(Status::Ok), Just(Status::Err)].prop_map(Action::SetStatus),
    ];
    let op = prop_oneof![
        4 => (0usize..3, prop_oneof![Just("OK"), Just("ERR"), Just("ok"), Just("maybe")])
            .prop_map(|(i, s)| Op::Push(i, s)),
        3 => (0i64..400).prop_map(Op::Advance),
        2 => Just(Op::Tick),
        2 => (0usize..3, action).prop_map(|(i, a)| Op::Act(i, a)),
    ];
    prop::collection::vec(op, 1..60)
}

const NAMES: [&str; 3] = ["a", "b:c", "d/e"];

fn check_invariants(ind: &Indicator, before: Option<&Indicator>) {
    if ind.dead {
        assert_eq!(ind.status, Status::Err, "dead only for ERR: {ind:?}");
    }
    if let (Some(e), Some(s)) = (ind.expected, ind.scheduled) {
        assert!(e <= s, "expected after scheduled: {ind:?}");
    }
    if let Some(b) = before {
        assert!(ind.version >= b.version, "versions never go back");
    }
}

proptest! {
    #![proptest_config(config())]

    /// Random interleavings of updates, user actions, scheduler passes and clock moves keep
    /// the invariants: dead only for ERR, expected before scheduled, versions only grow,
    /// and an accepted update moves the deadline only forward.
    #[test]
    fn invariants_hold_under_random_interleavings(ops in ops()) {
        block_on(async move {
            let w = World::with(|p| set_timing(p, 300, 120)).await;
            for op in ops {
                match op {
                    Op::Push(i, status) => {
                        let before = w.indicator(NAMES[i]).await;
                        match w.engine.update(UpdateRequest::new("p1", NAMES[i], status)).await {
                            Ok(UpdateOutcome::Applied(after)) => {
                                check_invariants(&after, before.as_ref());
                                if let (Some(b), Some(a)) = (before.as_ref().and_then(|b| b.scheduled), after.scheduled) {
                                    assert!(a >= b, "an accepted update moved the deadline back");
                                }
                            }
                            Ok(UpdateOutcome::Ignored) => {
                                assert_eq!(w.indicator(NAMES[i]).await, before);
                            }
                            Err(e) => {
                                assert!(before.as_ref().is_some_and(|b| b.disabled),
                                    "only a disabled indicator refuses here: {e}");
                                assert_eq!(w.indicator(NAMES[i]).await, before);
                            }
                        }
                    }
                    Op::Advance(secs) => w.clock.advance(TimeDelta::seconds(secs)),
                    Op::Tick => {
                        w.engine.tick().await.unwrap();
                    }
                    Op::Act(i, action) => {
                        let name = IndicatorName::parse(NAMES[i]).unwrap();
                        let before = w.indicator(NAMES[i]).await;
                        match w.engine.act("p1", &name, &action, "user t").await {
                            Ok(after) => check_invariants(&after, before.as_ref()),
                            Err(_) => assert!(before.is_none()),
                        }
                    }
                }
                for n in NAMES {
                    if let Some(ind) = w.indicator(n).await {
                        check_invariants(&ind, None);
                        if ind.due_at().is_some_and(|d| d <= w.clock.now()) {
                            // Due but not yet expired: the next pass must expire it.
                            assert!(!ind.dead);
                        }
                    }
                }
            }
        });
    }
}
