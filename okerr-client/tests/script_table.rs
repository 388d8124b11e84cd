//! A table of scripts and the exact requests (form bodies) each produces, with fixed
//! probes (`okerr_client::script::Fixed`: `apache2` runs, one disk `/` of 100 GiB with
//! 25 GiB free, load 0.5/0.25/0.125, up 3600 s, 2024-05-06 07:08:09). Every instruction
//! appears at least once; the rows from spec okerr-clients.md §7.3 give the Python
//! client's captured request.

use okerr_client::script::{Fixed, Script, ScriptError};

const TEXTID: &str = "mytextid";
const SECRET: &str = "s3cr3t";

/// The body okerrclient sends: no method, no policy unless set.
fn body(name: &str, status: &str, extra: &str) -> String {
    format!("textid={TEXTID}&name={name}&status={status}{extra}")
}

/// `&secret=s3cr3t&tags=…&keypath=&origkeypath=&desc=` with these tags.
fn tail(before_secret: &str, after_secret: &str, tags: &str) -> String {
    format!("{before_secret}&secret={SECRET}{after_secret}&tags={tags}&keypath=&origkeypath=&desc=")
}

fn plain(name: &str, status: &str) -> String {
    body(name, status, &tail("", "", ""))
}

fn with_details(name: &str, status: &str, details: &str) -> String {
    body(name, status, &tail(&format!("&details={details}"), "", ""))
}

fn bodies(name: Option<&str>, script: &[&str]) -> Result<Vec<String>, ScriptError> {
    let ev = Script::parse(script)?.evaluate(name, &Fixed::default())?;
    Ok(ev.updates.iter().map(|u| u.body(TEXTID, SECRET)).collect())
}

#[test]
fn scripts_and_their_requests() {
    let oc = Some("test:oc");
    let table: Vec<(Option<&str>, Vec<&str>, Vec<String>)> = vec![
        // the seed's commands
        (
            Some("myhost"),
            vec!["NAME test:apache2", "OK"],
            vec![plain("test%3Aapache2", "OK")],
        ),
        (
            Some("myhost"),
            vec!["NAME test:apache2", "ERR"],
            vec![plain("test%3Aapache2", "ERR")],
        ),
        // spec §7.3, captured from okerrclient
        (oc, vec!["OK"], vec![plain("test%3Aoc", "OK")]),
        (
            oc,
            vec!["DETAILS disk is full", "ERR"],
            vec![with_details("test%3Aoc", "ERR", "disk+is+full")],
        ),
        (
            Some("test:num"),
            vec![
                "METHOD numerical maxlim=37 minlim=0",
                "POLICY Daily",
                "TAG temp",
                "STR 36.6",
            ],
            vec![body(
                "test%3Anum",
                "36.6",
                &tail(
                    "",
                    "&method=numerical%7Cmaxlim%3D37%7Cminlim%3D0&policy=Daily",
                    "temp",
                ),
            )],
        ),
        (
            Some("myhost"),
            vec!["NAME $_name:renamed", "SET x=42", "LOAD x"],
            vec![plain("myhost%3Arenamed", "42")],
        ),
        (
            Some("test"),
            vec![
                "LIST alpha beta",
                "FORK",
                "NAME test:$_str",
                "DETAILS item $_str",
                "OK",
            ],
            vec![
                with_details("test%3Aalpha", "OK", "item+alpha"),
                with_details("test%3Abeta", "OK", "item+beta"),
            ],
        ),
        (
            oc,
            vec![
                "DATETIME",
                "DETAILS at $_HH:$_MM",
                "EXCEPT ERR",
                "LIST",
                "FIRST",
            ],
            vec![with_details("test%3Aoc", "ERR", "at+07%3A08")],
        ),
        (
            oc,
            vec!["STR 0", "NONZERO", "OKERRNOT"],
            vec![plain("test%3Aoc", "OK")],
        ),
        (oc, vec!["OK", "NONE"], vec![]),
        // NAME without argument: okerrclient's default `$_name:noname`
        (
            oc,
            vec!["NAME", "OK"],
            vec![plain("test%3Aoc%3Anoname", "OK")],
        ),
        // NAME from the data's dict keys
        (
            oc,
            vec![r#"DEFAULT {"srv": "db1"}"#, "NAME host:$srv", "OK"],
            vec![plain("host%3Adb1", "OK")],
        ),
        // POLICY without argument: Default; METHOD keeps quoted words whole
        (
            oc,
            vec!["POLICY", "METHOD string 'options=reinit dynamic'", "STR v1"],
            vec![body(
                "test%3Aoc",
                "v1",
                &tail(
                    "",
                    "&method=string%7Coptions%3Dreinit+dynamic&policy=Default",
                    "",
                ),
            )],
        ),
        // tags, comma-joined
        (
            oc,
            vec!["TAG a", "TAG b", "OK"],
            vec![body("test%3Aoc", "OK", &tail("", "", "a%2Cb"))],
        ),
        // STR without text: the data as text; list of strings joined by newlines
        (
            oc,
            vec!["LIST a b", "STR"],
            vec![plain("test%3Aoc", "a%0Ab")],
        ),
        (oc, vec!["STR"], vec![plain("test%3Aoc", "")]),
        // DETAILS: with no format, the data; with a dict, the format filled from it
        (
            oc,
            vec!["STR 7", "DETAILS"],
            vec![with_details("test%3Aoc", "7", "7")],
        ),
        (
            oc,
            vec![r#"DEFAULT {"a": 1}"#, "DETAILS a is $a", "OKERRNOT"],
            vec![with_details("test%3Aoc", "ERR", "a+is+1")],
        ),
        // SET with quotes, $var in any argument, $$ and unknown $vars kept
        (
            oc,
            vec![
                r#"SET who="the web server""#,
                "DETAILS $who costs $$5, $nope",
                "OK",
            ],
            vec![with_details(
                "test%3Aoc",
                "OK",
                "the+web+server+costs+%245%2C+%24nope",
            )],
        ),
        // SAVE / LOAD, SAVE of a dict without a name saves each key
        (
            oc,
            vec!["STR hello", "SAVE greeting", "NONE", "LOAD greeting"],
            vec![plain("test%3Aoc", "hello")],
        ),
        (
            oc,
            vec![r#"DEFAULT {"k": "v"}"#, "SAVE", "STR $k"],
            vec![plain("test%3Aoc", "v")],
        ),
        // EXPORT a string, EXPORT a dict field
        (
            oc,
            vec!["STR abc", "EXPORT s", "STR got $s"],
            vec![plain("test%3Aoc", "got+abc")],
        ),
        (
            oc,
            vec![r#"DEFAULT {"f": "x"}"#, "EXPORT v = f", "STR $v"],
            vec![plain("test%3Aoc", "x")],
        ),
        // _str and _dict_ variables
        (
            oc,
            vec!["STR up", "STR $_str and $_str"],
            vec![plain("test%3Aoc", "up+and+up")],
        ),
        (
            oc,
            vec![r#"DEFAULT {"n": 3}"#, "STR n=$_dict_n"],
            vec![plain("test%3Aoc", "n%3D3")],
        ),
        // DEFAULT only replaces falsy data; bad JSON stops (EXCEPT value, or nothing)
        (
            oc,
            vec!["STR kept", "DEFAULT 5"],
            vec![plain("test%3Aoc", "kept")],
        ),
        (oc, vec!["DEFAULT 5"], vec![plain("test%3Aoc", "5")]),
        (
            oc,
            vec!["EXCEPT ERR", "DEFAULT {bad"],
            vec![plain("test%3Aoc", "ERR")],
        ),
        (oc, vec!["DEFAULT {bad"], vec![]),
        // INT, NONZERO
        (oc, vec!["STR 36.6", "INT"], vec![plain("test%3Aoc", "36")]),
        (
            oc,
            vec!["STR 0.9", "NONZERO"],
            vec![plain("test%3Aoc", "ERR")],
        ),
        (oc, vec!["STR 2", "NONZERO"], vec![plain("test%3Aoc", "OK")]),
        (
            oc,
            vec!["STR many", "NONZERO"],
            vec![plain("test%3Aoc", "ERR")],
        ),
        // OKERRNOT: ERR becomes OK, anything else ERR
        (oc, vec!["ERR", "OKERRNOT"], vec![plain("test%3Aoc", "OK")]),
        (oc, vec!["OK", "OKERRNOT"], vec![plain("test%3Aoc", "ERR")]),
        // DUMP passes the data on
        (oc, vec!["STR x", "DUMP"], vec![plain("test%3Aoc", "x")]),
        // DATETIME with prefix and offset (one day and one hour later)
        (
            oc,
            vec![
                "DATETIME prefix=t offset=90000",
                "STR $tyear-$tmm-$tdd $tHH:$tMM:$tSS $tday/$tmonth/$tyy $thour:$tminute:$tsecond",
            ],
            vec![plain(
                "test%3Aoc",
                "2024-05-07+08%3A08%3A09+7%2F5%2F24+8%3A8%3A9",
            )],
        ),
        // LIST, FIRST n, LAST, LAST n, LEN
        (
            oc,
            vec!["LIST a b c", "FIRST 2"],
            vec![plain("test%3Aoc", "%5B%27a%27%2C+%27b%27%5D")],
        ),
        (
            oc,
            vec!["LIST a b c", "LAST"],
            vec![plain("test%3Aoc", "c")],
        ),
        (
            oc,
            vec!["LIST a b c", "LAST 2", "STR"],
            vec![plain("test%3Aoc", "b%0Ac")],
        ),
        (oc, vec!["LIST a b c", "LEN"], vec![plain("test%3Aoc", "3")]),
        (
            oc,
            vec!["STR abcd", "LIST", "LEN"],
            vec![plain("test%3Aoc", "4")],
        ),
        // LAST of an empty list stops: the EXCEPT value is sent, or nothing without one
        (
            oc,
            vec!["EXCEPT ERR", "STR", "LIST", "LAST"],
            vec![plain("test%3Aoc", "ERR")],
        ),
        (oc, vec!["STR", "LIST", "LAST", "OK"], vec![]),
        // FIRST of a non-list stops
        (
            oc,
            vec!["EXCEPT gone", "OK", "FIRST"],
            vec![plain("test%3Aoc", "gone")],
        ),
        // FORK keeps the state set before it; EXCEPT set before it is the parent's status
        (
            oc,
            vec!["TAG t", "LIST 1 2", "FORK", "NAME n$_str", "INT"],
            vec![
                body("n1", "1", &tail("", "", "t")),
                body("n2", "2", &tail("", "", "t")),
            ],
        ),
        (
            oc,
            vec!["EXCEPT OK", "LIST x", "FORK", "NAME f:$_str", "ERR"],
            vec![plain("f%3Ax", "ERR"), plain("test%3Aoc", "OK")],
        ),
        // the local probes
        (
            Some("test:apache2"),
            vec!["PROC apache2"],
            vec![plain("test%3Aapache2", "OK")],
        ),
        (
            Some("test:nginx"),
            vec!["PROC nginx"],
            vec![plain("test%3Anginx", "ERR")],
        ),
        (
            Some("web"),
            vec!["SET p=apache2", "PROC $p", "OKERRNOT"],
            vec![plain("web", "ERR")],
        ),
        (
            Some("srv:df"),
            vec![
                "DF path=/var/log",
                "DETAILS $path: $percent% used",
                "EXPORT pct=percent",
                "STR $pct",
            ],
            vec![with_details(
                "srv%3Adf",
                "75.0",
                "%2Fvar%2Flog%3A+75.0%25+used",
            )],
        ),
        (
            Some("srv:df"),
            vec!["DF", "LEN"],
            vec![plain("srv%3Adf", "1")],
        ),
        (
            Some("srv:df"),
            vec!["DF", "FIRST", "EXPORT f=freeg", "STR $f"],
            vec![plain("srv%3Adf", "25")],
        ),
        (
            Some("srv:la"),
            vec!["METHOD numerical maxlim=2", "LOADAVG"],
            vec![body(
                "srv%3Ala",
                "0.5",
                &tail(
                    "&details=0.5%2C+0.25%2C+0.125",
                    "&method=numerical%7Cmaxlim%3D2",
                    "",
                ),
            )],
        ),
        (
            Some("srv:la"),
            vec!["LOADAVG period=2", "NONE", "STR x"],
            vec![with_details("srv%3Ala", "x", "0.5%2C+0.25%2C+0.125")],
        ),
        (
            Some("srv:up"),
            vec!["UPTIME"],
            vec![plain("srv%3Aup", "3600")],
        ),
        // no name: nothing to send
        (None, vec!["OK"], vec![]),
        // names are cleaned as okerrupdate does
        (None, vec!["NAME a@b", "OK"], vec![plain("a_b", "OK")]),
    ];
    let mut failures = Vec::new();
    for (name, script, expected) in &table {
        match bodies(*name, script) {
            Ok(got) if &got == expected => {}
            other => failures.push(format!(
                "{script:?} (name {name:?}):\n  got      {other:?}\n  expected {expected:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
    // every instruction is in the table
    let all: String = table
        .iter()
        .flat_map(|(_, s, _)| s.iter().map(|i| format!("{i} ")))
        .collect();
    for instr in okerr_client::script::instructions() {
        assert!(
            all.split(|c: char| !c.is_ascii_uppercase())
                .any(|w| w == instr),
            "{instr} is not in the table"
        );
    }
}

#[test]
fn dump_prints_and_warnings_are_kept() {
    let ev = Script::parse([
        "STR x",
        "DUMP",
        "LIST a",
        "DUMP",
        "STR bad",
        "NONZERO",
        "EXPORT a=b",
    ])
    .and_then(|s| s.evaluate(Some("n"), &Fixed::default()))
    .expect("runs");
    assert_eq!(ev.printed, vec!["x".to_owned(), "['a']".to_owned()]);
    assert_eq!(ev.warnings.len(), 2, "{ev:?}");
    assert!(ev.warnings[0].contains("NONZERO"), "{ev:?}");
}

#[test]
fn bad_scripts_are_errors() {
    let parse = |s: &[&str]| Script::parse(s).map(|_| ()).map_err(|e| e.to_string());
    assert_eq!(parse(&["FOO"]), Err("No method FOO".to_owned()));
    assert_eq!(parse(&["ok"]), Err("No method ok".to_owned()));
    assert_eq!(
        parse(&[""]),
        Err("cannot parse instruction \"\"".to_owned())
    );
    assert_eq!(
        parse(&["STR 'open"]),
        Err("cannot parse instruction \"STR 'open\"".to_owned())
    );
    assert_eq!(
        parse(&["OK now"]),
        Err("bad argument \"now\" in \"OK now\"".to_owned())
    );
    assert_eq!(
        parse(&["DATETIME zone=UTC"]),
        Err("bad argument \"zone=UTC\" in \"DATETIME zone=UTC\"".to_owned())
    );
    let run = |s: &[&str]| {
        Script::parse(s)
            .and_then(|s| s.evaluate(Some("n"), &Fixed::default()))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        run(&["STR abc", "INT"]),
        Err("INT: not a number: \"abc\"".to_owned())
    );
    assert_eq!(
        run(&["LIST a", "FIRST x"]),
        Err("FIRST: not a count: \"x\"".to_owned())
    );
    assert!(run(&["SET novalue"]).is_err_and(|e| e.starts_with("SET: cannot parse")));
    assert!(run(&["PROC"]).is_err_and(|e| e.starts_with("PROC: give a process name")));
    assert!(run(&["LOADAVG period=3"]).is_err_and(|e| e.starts_with("LOADAVG: period")));
    assert!(run(&["DATETIME offset=soon"]).is_err_and(|e| e.starts_with("DATETIME: offset")));
    assert!(run(&["OK", "FORK"]).is_ok(), "a string forks per character");
    assert!(run(&["UPTIME", "FORK"]).is_err_and(|e| e.starts_with("FORK: needs a list")));
    assert!(run(&["UPTIME", "LEN"]).is_err_and(|e| e.starts_with("LEN: no length")));
    assert!(run(&["DF path=relative"]).is_err_and(|e| e.starts_with("DF: no mounted")));
}

/// Nested `FORK`s over the characters of a string multiply (ten of ten characters would be
/// ten billion runs): past `MAX_STEPS` instructions the evaluation stops with an error
/// (found by the `client_script` fuzz target, which timed out).
#[test]
fn nested_forks_are_bounded() {
    let mut script = vec!["STR abcdefghij"];
    for _ in 0..10 {
        script.extend(["FORK", "SAVE", "STR abcdefghij"]);
    }
    let err = bodies(Some("n"), &script)
        .expect_err("ten nested forks are refused")
        .to_string();
    assert!(
        err.contains(&format!(
            "ran more than {} instructions",
            okerr_client::script::MAX_STEPS
        )),
        "{err}"
    );
    // One FORK over ten characters is well inside the bound.
    let ten = bodies(Some("n"), &["STR abcdefghij", "FORK", "SAVE", "OK"]).expect("one fork runs");
    assert_eq!(ten.len(), 10);
}
