//! okerr's logic expressions (spec §6.4) as a table: a project state, an indicator's
//! `expr`/`dump`/`init`, and the status and details the evaluation gives — expressions from
//! okerr's documentation and its no-flap wizard, with `dump` output in Python's formatting.
//! Plus the property that an evaluation never sees another project's indicators.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use okerr::logic::{Trigger, decide_evaluation, noflap_expr, warnings};
use okerr::{
    CheckMethod, Indicator, IndicatorName, NewProject, Project, ProjectId, Settings, Status, Tag,
    TextId,
};
use proptest::prelude::*;

/// Saturday 2026-01-03 10:30 UTC.
fn saturday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 3, 10, 30, 0).unwrap()
}

/// Monday 2026-01-05 03:15 UTC.
fn monday_night() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 3, 15, 0).unwrap()
}

fn project(id: i64) -> Project {
    let new = NewProject::new("shop", TextId::parse(&format!("p{id}")).unwrap());
    Project {
        id: ProjectId(id),
        name: new.name,
        textid: new.textid,
        aliases: new.aliases,
        members: new.members,
        policies: new.policies,
        max_indicators: new.max_indicators,
        limited: new.limited,
        api_keys: new.api_keys,
        version: 1,
    }
}

/// One indicator of the state: `name:STATUS` with the seconds since its status changed
/// and since its last result, plus flags written as words (`maintenance`, `silent`,
/// `disabled`, `tag=x`).
struct Row<'a> {
    name: &'a str,
    status: Status,
    statusage: i64,
    age: i64,
    flags: &'a [&'a str],
}

fn ok(name: &str) -> Row<'_> {
    Row {
        name,
        status: Status::Ok,
        statusage: 100,
        age: 30,
        flags: &[],
    }
}

fn err(name: &str) -> Row<'_> {
    Row {
        status: Status::Err,
        ..ok(name)
    }
}

fn indicator(p: &Project, row: &Row<'_>, now: DateTime<Utc>, id: i64) -> Indicator {
    let policy = p.policy_or_default("Default");
    let mut ind = Indicator::new(
        p.id,
        IndicatorName::parse(row.name).unwrap(),
        &policy,
        CheckMethod::heartbeat(),
        &Settings::default(),
        now,
    );
    ind.id = okerr::IndicatorId(id);
    ind.status = row.status;
    ind.changed = now - TimeDelta::seconds(row.statusage);
    ind.updated = now - TimeDelta::seconds(row.age);
    for flag in row.flags {
        match *flag {
            "maintenance" => ind.maintenance = Some(now - TimeDelta::seconds(5)),
            "silent" => ind.silent = true,
            "disabled" => ind.disabled = true,
            tag => ind
                .tags
                .push(Tag::parse(tag.strip_prefix("tag=").unwrap()).unwrap()),
        }
    }
    ind
}

fn logic(
    p: &Project,
    name: &str,
    expr: &str,
    dump: &str,
    init: &str,
    now: DateTime<Utc>,
) -> Indicator {
    let mut ind = indicator(p, &ok(name), now, 999);
    let mut m = CheckMethod::with_defaults("logic").unwrap();
    m.set_arg("expr", expr).unwrap();
    m.set_arg("dump", dump).unwrap();
    m.set_arg("init", init).unwrap();
    ind.method = m;
    ind.scheduled = Some(now);
    ind
}

struct Case<'a> {
    what: &'a str,
    state: Vec<Row<'a>>,
    name: &'a str,
    expr: &'a str,
    dump: &'a str,
    init: &'a str,
    now: DateTime<Utc>,
    status: Status,
    details: &'a str,
    problem: bool,
}

fn case<'a>(what: &'a str, state: Vec<Row<'a>>, expr: &'a str) -> Case<'a> {
    Case {
        what,
        state,
        name: "logic",
        expr,
        dump: "",
        init: "",
        now: saturday(),
        status: Status::Ok,
        details: "",
        problem: false,
    }
}

fn run(c: &Case<'_>) -> (Status, String, bool) {
    let p = project(1);
    let mut all: Vec<Indicator> = c
        .state
        .iter()
        .enumerate()
        .map(|(n, r)| indicator(&p, r, c.now, i64::try_from(n).unwrap() + 1))
        .collect();
    let this = logic(&p, c.name, c.expr, c.dump, c.init, c.now);
    all.push(this.clone());
    let commit =
        decide_evaluation(&p, &this, &all, &Settings::default(), Trigger::Due, c.now).expect("due");
    let ind = commit.indicator;
    (ind.status, ind.details, ind.problem)
}

#[test]
fn okerr_expressions() {
    use Status::{Err, Ok};
    let wizard_ok = noflap_expr(3600 + 300, 2 * 3600 + 300);
    let cases = vec![
        Case {
            status: Ok,
            ..case(
                "two of three nginx nodes are OK",
                vec![ok("nginx1"), ok("nginx2"), err("nginx3")],
                "s['nginx1'] + s['nginx2'] + s['nginx3'] >= 2",
            )
        },
        Case {
            status: Err,
            ..case(
                "only one of three nginx nodes is OK",
                vec![ok("nginx1"), err("nginx2"), err("nginx3")],
                "s['nginx1'] + s['nginx2'] + s['nginx3'] >= 2",
            )
        },
        Case {
            status: Ok,
            dump: "prefix['OK:nginx'], prefix['ERR:nginx'], prefix['MAINTENANCE:nginx']",
            details: "prefix['OK:nginx']=2 prefix['ERR:nginx']=0 prefix['MAINTENANCE:nginx']=1 ",
            ..case(
                "prefixes count by okerrm: maintenance is its own state",
                vec![
                    ok("nginx:1"),
                    ok("nginx:2"),
                    Row {
                        flags: &["maintenance"],
                        ..err("nginx:3")
                    },
                ],
                "prefix['OK:nginx'] >= 2",
            )
        },
        Case {
            dump: "prefix['OK:a'], prefix['OK:a:b'], prefix['SILENT:a']",
            details: "prefix['OK:a']=2 prefix['OK:a:b']=1 prefix['SILENT:a']=0 ",
            ..case(
                "a:b:c yields a and a:b, never the full name; SILENT is pre-created, never counted",
                vec![
                    ok("a:b:c"),
                    Row {
                        flags: &["silent"],
                        ..ok("a:x")
                    },
                ],
                "'OK:a:b:c' not in prefix",
            )
        },
        Case {
            status: Ok,
            ..case(
                "the backup is late only on weekdays: Saturday",
                vec![err("backup")],
                "s['backup'] or weekday >= 5",
            )
        },
        Case {
            status: Err,
            now: monday_night(),
            dump: "weekday, hhmm, day, month, year",
            details: "weekday=0 hhmm=315 day=5 month=1 year=2026 ",
            ..case(
                "the backup is late only on weekdays: Monday",
                vec![err("backup")],
                "s['backup'] or weekday >= 5",
            )
        },
        Case {
            status: Ok,
            now: monday_night(),
            ..case(
                "office hours only",
                vec![err("office")],
                "hhmm < 800 or hhmm > 2000 or s['office']",
            )
        },
        Case {
            status: Ok,
            dump: "s['web_example_com']",
            details: "s['web_example_com']=True ",
            ..case(
                "dots become underscores",
                vec![ok("web.example.com")],
                "s['web_example_com']",
            )
        },
        Case {
            status: Err,
            problem: true,
            details: "KeyError: 'web.example.com'",
            ..case(
                "a dotted key is not there",
                vec![ok("web.example.com")],
                "s['web.example.com']",
            )
        },
        Case {
            status: Ok,
            dump: "len(s)",
            details: "len(s)=2 ",
            ..case(
                "disabled indicators are left out",
                vec![
                    Row {
                        flags: &["disabled"],
                        ..ok("old")
                    },
                    ok("new"),
                ],
                "'old' not in s and 'old' not in i",
            )
        },
        Case {
            status: Err,
            init: "tags['ERR:db']",
            dump: "tags['ERR:db'], tags['OK:db']",
            details: "tags['ERR:db']=1 tags['OK:db']=1 ",
            ..case(
                "user tags count by state",
                vec![
                    Row {
                        flags: &["tag=db"],
                        ..err("pg")
                    },
                    Row {
                        flags: &["tag=db"],
                        ..ok("redis")
                    },
                ],
                "tags['ERR:db'] == 0",
            )
        },
        Case {
            status: Ok,
            init: "tags['ERR:db']",
            dump: "tags['ERR:db']",
            details: "tags['ERR:db']=0 ",
            ..case(
                "init creates a missing key as 0",
                vec![ok("pg")],
                "tags['ERR:db'] == 0",
            )
        },
        Case {
            status: Ok,
            dump: "tags['OK:heartbeat'], tags['OK:policy:Default'], tags['ERR:ATTENTION']",
            details: "tags['OK:heartbeat']=1 tags['OK:policy:Default']=2 tags['ERR:ATTENTION']=1 ",
            ..case(
                "okerr's own tags: method, policy (the logic indicator counts itself), ATTENTION",
                vec![ok("a"), err("b")],
                "tags['ERR:heartbeat'] == 1",
            )
        },
        Case {
            status: Ok,
            dump: "age['db:errage'], age['db:uerrage'], age['errage']",
            details: "age['db:errage']=700 age['db:uerrage']=0 age['errage']=0 ",
            ..case(
                "age keeps the longest errage per tag; uerrage is 0 in maintenance",
                vec![
                    Row {
                        statusage: 700,
                        flags: &["tag=db", "maintenance"],
                        ..err("pg")
                    },
                    Row {
                        statusage: 50,
                        flags: &["tag=db", "silent"],
                        ..err("redis")
                    },
                ],
                "age['db:errage'] > 600",
            )
        },
        Case {
            status: Ok,
            dump: "i['web']",
            details: "i['web']={'id': 1, 'name': 'web', 'status': 'OK', 'mtime': 1767436170, 'errage': 0, 'uerrage': 0, 'age': 30, 'statusage': 100, 'patience': 1200, 'maintenance': False} ",
            ..case(
                "i[name] has okerr's fields",
                vec![ok("web")],
                "i['web']['statusage'] > 60",
            )
        },
        Case {
            status: Ok,
            dump: "0.1 + 0.2, 10 / 4, [s['a']], _pname, _pid, lo",
            details: "0.1 + 0.2=0.30000000000000004 10 / 4=2.5 [s['a']]=[True] _pname=shop _pid=1 lo=None ",
            ..case("values as Python prints them", vec![ok("a")], "True")
        },
        Case {
            status: Err,
            problem: true,
            details: "NameError: name 'nosuch' is not defined",
            ..case("an evaluation error is a problem", vec![], "nosuch > 1")
        },
        Case {
            status: Err,
            problem: true,
            details: "TypeError: 'NoneType' object is not subscriptable",
            ..case(
                "lo is None without a lower indicator",
                vec![ok("x")],
                &wizard_ok,
            )
        },
        Case {
            name: "x-up",
            status: Ok,
            dump: "lo['status'], lo['statusage']",
            details: "lo['status']=OK lo['statusage']=4000 ",
            ..case(
                "no-flap wizard: the lower one OK for longer than okthr",
                vec![Row {
                    statusage: 4000,
                    ..ok("x")
                }],
                &wizard_ok,
            )
        },
        Case {
            name: "x-up",
            status: Err,
            ..case(
                "no-flap wizard: the lower one OK, not long enough",
                vec![Row {
                    statusage: 100,
                    ..ok("x")
                }],
                &wizard_ok,
            )
        },
        Case {
            name: "x-up",
            status: Ok,
            ..case(
                "no-flap wizard: the lower one ERR for less than errthr",
                vec![Row {
                    statusage: 100,
                    ..err("x")
                }],
                &wizard_ok,
            )
        },
        Case {
            name: "x-up",
            status: Err,
            ..case(
                "no-flap wizard: the lower one ERR for longer than errthr",
                vec![Row {
                    statusage: 8000,
                    ..err("x")
                }],
                &wizard_ok,
            )
        },
    ];
    for c in &cases {
        assert_eq!(
            run(c),
            (c.status, c.details.to_owned(), c.problem),
            "{}",
            c.what
        );
    }
}

#[test]
fn warnings_for_names_that_refer_to_nothing() {
    let p = project(1);
    let now = saturday();
    let all = vec![
        indicator(&p, &ok("web.example.com"), now, 1),
        indicator(&p, &ok("db"), now, 2),
    ];
    let this = logic(
        &p,
        "sum",
        "s['db'] and s['web.example.com'] and i['nope']['age'] > x",
        "",
        "",
        now,
    );
    let okerr::MethodKind::Logic(args) = &this.method.kind else {
        unreachable!()
    };
    assert_eq!(
        warnings(&p, &this, args, &all),
        [
            "s['web.example.com'] refers to no indicator (dots are written as _: 'web_example_com')",
            "i['nope'] refers to no indicator",
            "name 'x' is not defined",
        ]
    );
    let up = logic(&p, "web-up", "lo['status'] == 'OK'", "", "", now);
    let okerr::MethodKind::Logic(args) = &up.method.kind else {
        unreachable!()
    };
    assert_eq!(
        warnings(&p, &up, args, &all),
        ["lo is None: there is no indicator 'web'"]
    );
}

fn rows() -> impl Strategy<Value = Vec<(String, bool, bool, bool)>> {
    prop::collection::vec(
        (
            "[a-c]{1,2}(:[a-c]{1,2}){0,2}",
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        0..12,
    )
}

proptest! {
    /// The same project state with any other project's indicators mixed in evaluates the
    /// same: every part of the context (`s`, `i`, `prefix`, `tags`, `age`, `lo`) is of
    /// the project alone.
    #[test]
    fn evaluation_never_reads_another_project(own in rows(), other in rows(), name in "[a-c]{1,2}") {
        let now = saturday();
        let p = project(1);
        let q = project(2);
        let build = |proj: &Project, rows: &[(String, bool, bool, bool)], base: i64| -> Vec<Indicator> {
            let mut seen = std::collections::HashSet::new();
            rows.iter()
                .filter(|(n, ..)| seen.insert(n.clone()))
                .enumerate()
                .map(|(k, (n, is_ok, maint, silent))| {
                    let flags: &[&str] = match (maint, silent) {
                        (true, true) => &["maintenance", "silent"],
                        (true, false) => &["maintenance"],
                        (false, true) => &["silent"],
                        (false, false) => &[],
                    };
                    let row = Row { flags, ..if *is_ok { ok(n) } else { err(n) } };
                    indicator(proj, &row, now, base + i64::try_from(k).unwrap())
                })
                .collect()
        };
        let mine = build(&p, &own, 1);
        let theirs = build(&q, &other, 1000);
        let this = logic(
            &p,
            &format!("{name}-up"),
            &format!("'{name}' in s or 'x' in i"),
            "s, i, prefix, tags, age, lo",
            "",
            now,
        );
        let settings = Settings::default();
        let mut alone = mine.clone();
        alone.push(this.clone());
        let mut mixed = theirs.clone();
        mixed.extend(mine);
        mixed.push(this.clone());
        mixed.extend(theirs);
        let okerr::MethodKind::Logic(args) = &this.method.kind else { unreachable!() };
        // The whole dump, not the 200 characters of the details.
        let a = okerr::logic::evaluate(&p, &this, args, &alone, &settings, now);
        let b = okerr::logic::evaluate(&p, &this, args, &mixed, &settings, now);
        prop_assert_eq!(a, b);
    }
}

/// Expressions of the whitelist over okerr's context.
fn context_expr() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("s['a']".to_owned()),
        Just("s['zz']".to_owned()),
        Just("i['a']['statusage']".to_owned()),
        Just("i['a']".to_owned()),
        Just("prefix['OK:srv']".to_owned()),
        Just("tags['ERR:db']".to_owned()),
        Just("age['db:errage']".to_owned()),
        Just("lo".to_owned()),
        Just("hhmm".to_owned()),
        Just("weekday".to_owned()),
        Just("_pname".to_owned()),
        Just("len(s)".to_owned()),
        any::<i32>().prop_map(|n| n.to_string()),
        "[a-z:]{0,5}".prop_map(|s| format!("'{s}'")),
    ];
    atom.prop_recursive(4, 24, 3, |inner| {
        let op = prop_oneof![
            Just("and"),
            Just("or"),
            Just("=="),
            Just("<"),
            Just(">="),
            Just("+"),
            Just("-"),
            Just("*"),
            Just("/"),
            Just("%"),
            Just("in"),
            Just("not in"),
        ];
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("({a}) {o} ({b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("max([{a}, {b}])")),
        ]
    })
}

/// Constructs outside the whitelist.
fn forbidden_expr() -> impl Strategy<Value = String> {
    (context_expr(), 0..6usize).prop_map(|(e, k)| match k {
        0 => format!("({e}).__class__"),
        1 => format!("__import__('os') or ({e})"),
        2 => format!("[x for x in s] and ({e})"),
        3 => format!("(lambda: ({e}))()"),
        4 => format!("s[0:1] or ({e})"),
        _ => format!("eval(\"{e}\")"),
    })
}

proptest! {
    /// Every whitelisted expression over okerr's context ends as OK, ERR, or ERR with the
    /// problem flag (its error as details): never a panic, never an indicator left due.
    #[test]
    fn whitelisted_expressions_end_ok_err_or_problem(expr in context_expr()) {
        let now = saturday();
        let p = project(1);
        let mut all = vec![
            indicator(&p, &ok("a"), now, 1),
            indicator(&p, &Row { flags: &["tag=db"], ..err("srv:db") }, now, 2),
        ];
        let mut m = CheckMethod::with_defaults("logic").unwrap();
        prop_assume!(m.set_arg("expr", &expr).is_ok());
        let mut this = indicator(&p, &ok("a-up"), now, 3);
        this.method = m;
        this.scheduled = Some(now);
        all.push(this.clone());
        let commit = decide_evaluation(&p, &this, &all, &Settings::default(), Trigger::Due, now)
            .expect("due");
        let ind = commit.indicator;
        if ind.problem {
            prop_assert_eq!(ind.status, Status::Err);
            prop_assert!(!ind.details.is_empty());
        }
        prop_assert!(ind.scheduled.is_some_and(|s| s > now), "evaluated again later");
    }

    /// An expression with a node outside the whitelist is refused when it is saved, and
    /// the indicator's arguments stay as they were.
    #[test]
    fn a_node_outside_the_whitelist_is_refused_when_saved(expr in forbidden_expr()) {
        let mut m = CheckMethod::with_defaults("logic").unwrap();
        let before = m.clone();
        let e = m.set_arg("expr", &expr).expect_err("refused");
        prop_assert!(e.to_string().starts_with("Bad expr: "), "{}", e);
        prop_assert_eq!(m, before);
    }
}
