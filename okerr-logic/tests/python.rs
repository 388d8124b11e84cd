//! Expressions against Python's own answers: each row's expected text is what CPython 3.11
//! prints for `str(eval(expr))` (or `{type}: {message}` of the exception it raises) in the
//! same context; checked by running the table through python3 once.

use okerr_logic::{Context, Dict, Logic, Program, Value};

fn ctx() -> Context {
    let mut s = Dict::new();
    s.set("a", true);
    s.set("b", false);
    s.set("web_example_com", true);
    let mut web = Dict::new();
    web.set("status", "OK");
    web.set("age", 30);
    let mut i = Dict::new();
    i.set("web", Value::dict(web));
    let mut c = Context::new();
    c.set("s", Value::dict(s));
    c.set("i", Value::dict(i));
    c.set("hhmm", Value::Int(930));
    c.set("weekday", Value::Int(5));
    c.set("lo", Value::None);
    c
}

fn show(text: &str) -> String {
    let p = Program::compile(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    match p.eval(&ctx()) {
        Ok(v) => v.to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn values_and_errors_as_python_prints_them() {
    let table = [
        ("s['a'] and s['b']", "False"),
        ("s['a'] or s['b']", "True"),
        ("not s['b']", "True"),
        ("s['b'] or 0", "0"),
        ("s['a'] and 'yes'", "yes"),
        ("1 < 2 < 3", "True"),
        ("1 < 3 < 2", "False"),
        ("hhmm >= 900 and hhmm <= 1800", "True"),
        ("weekday in (5, 6)", "True"),
        ("weekday not in [5, 6]", "False"),
        ("'OK' in 'OK:x'", "True"),
        ("'web' in i", "True"),
        ("i['web']['status'] == 'OK'", "True"),
        ("i['web']", "{'status': 'OK', 'age': 30}"),
        ("i['web']['age'] / 4", "7.5"),
        ("i['web']['age'] // 4", "7"),
        ("-7 // 2", "-4"),
        ("-7 % 3", "2"),
        ("7 % -3", "-2"),
        ("2 ** 10", "1024"),
        ("2 ** -1", "0.5"),
        ("10 / 5", "2.0"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("1e16 + 1", "1e+16"),
        ("1 == 1.0", "True"),
        ("True + True", "2"),
        ("'ab' * 3", "ababab"),
        ("[1, 'a', None, True]", "[1, 'a', None, True]"),
        ("(1,)", "(1,)"),
        ("()", "()"),
        ("{'k': [1, 2]}", "{'k': [1, 2]}"),
        ("\"it's\"", "it's"),
        ("lo is None", "True"),
        ("lo is not None", "False"),
        ("'x' if lo is None else lo['status']", "x"),
        ("len(i)", "1"),
        ("max(1, 5, 3)", "5"),
        ("min([4, 2, 8])", "2"),
        ("sum([1, 2, 3])", "6"),
        ("any([0, '', 3])", "True"),
        ("all([1, 0])", "False"),
        ("int('42') + 1", "43"),
        ("int(3.9)", "3"),
        ("float('1.5')", "1.5"),
        ("str(1.0) + 'x'", "1.0x"),
        ("bool([])", "False"),
        ("abs(-3)", "3"),
        ("s['nope']", "KeyError: 'nope'"),
        ("nope", "NameError: name 'nope' is not defined"),
        ("1 / 0", "ZeroDivisionError: division by zero"),
        ("1 % 0", "ZeroDivisionError: integer modulo by zero"),
        (
            "1 // 0",
            "ZeroDivisionError: integer division or modulo by zero",
        ),
        (
            "1.0 // 0",
            "ZeroDivisionError: float floor division by zero",
        ),
        ("1.0 / 0", "ZeroDivisionError: float division by zero"),
        (
            "1 < 'a'",
            "TypeError: '<' not supported between instances of 'int' and 'str'",
        ),
        (
            "1 + 'a'",
            "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
        ),
        (
            "lo['status']",
            "TypeError: 'NoneType' object is not subscriptable",
        ),
        ("[1][3]", "IndexError: list index out of range"),
        (
            "int('x')",
            "ValueError: invalid literal for int() with base 10: 'x'",
        ),
        ("{[1]: 2}", "TypeError: unhashable type: 'list'"),
        (
            "3 in 5",
            "TypeError: argument of type 'int' is not iterable",
        ),
    ];
    for (expr, want) in table {
        assert_eq!(show(expr), want, "{expr}");
    }
}

/// Where this evaluator knowingly differs from Python: 64-bit integers.
#[test]
fn integers_are_64_bits() {
    assert_eq!(
        show("9223372036854775807 + 1"),
        "OverflowError: integer overflow"
    );
    assert_eq!(show("2 ** 64"), "OverflowError: integer overflow");
}

#[test]
fn refused_when_compiled() {
    let table = [
        ("s.keys()", "Operation type Attribute is not allowed"),
        (
            "__import__('os')",
            "Call to function __import__() is not allowed",
        ),
        (
            "open('/etc/passwd')",
            "Call to function open() is not allowed",
        ),
        ("(lambda: 1)()", "Operation type Lambda is not allowed"),
        ("s['a']()", "Call to function <expression>() is not allowed"),
        ("lambda: 1", "Operation type Lambda is not allowed"),
        ("[x for x in s]", "Operation type ListComp is not allowed"),
        (
            "(x for x in s)",
            "Operation type GeneratorExp is not allowed",
        ),
        ("{x for x in s}", "Operation type SetComp is not allowed"),
        ("{1, 2}", "Operation type Set is not allowed"),
        ("f'{s}'", "Operation type JoinedStr is not allowed"),
        ("(y := 1)", "Operation type NamedExpr is not allowed"),
        ("s[1:2]", "Operation type Slice is not allowed"),
        ("1 | 2", "Operation type BitOr is not allowed"),
        ("~1", "Operation type Invert is not allowed"),
        ("b'x'", "Operation type Bytes is not allowed"),
        ("len(x=1)", "Operation type keyword is not allowed"),
        (
            "99999999999999999999",
            "Integer constant 99999999999999999999 is too large",
        ),
    ];
    for (expr, want) in table {
        let e = Program::compile(expr).expect_err(expr);
        assert_eq!(e.to_string(), want, "{expr}");
    }
    for bad in ["s['a'] and", "1 +", "import os", "x = 1", "", "s['a'\n"] {
        let e = Program::compile(bad).expect_err(bad);
        assert!(e.to_string().starts_with("Syntax error in "), "{bad}: {e}");
    }
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    // Parentheses alone do not nest the tree; operators do.
    assert!(Program::compile(&deep).is_ok());
    let deep = format!("{}1", "-".repeat(100));
    assert_eq!(
        Program::compile(&deep).expect_err("deep").to_string(),
        "Expression is nested too deeply (more than 64 levels)"
    );
    let long = "1+".repeat(1000) + "1";
    assert!(Program::compile(&long).is_err());
}

#[test]
fn evaluation_is_bounded() {
    let p = Program::compile("'x' * 1000000").expect("compiles");
    assert_eq!(
        p.eval(&ctx()).expect_err("too big").to_string(),
        "Evaluation limit exceeded: value too large"
    );
    // Repetition that stays under the value bound still spends the step budget.
    let p = Program::compile(&vec!["len([0] * 90000)"; 20].join(" + ")).expect("compiles");
    assert_eq!(
        p.eval(&ctx()).expect_err("too many steps").to_string(),
        "Evaluation limit exceeded: too many steps"
    );
}

#[test]
fn dump_init_and_names() {
    let logic = Logic::compile(
        "tags['OK:web'] >= 2 and s['a']",
        "tags['OK:web'], i['web']['status'], max(1, 2)",
        "tags['OK:web'] tags['ERR:web'], counter",
    )
    .expect("compiles");
    let mut c = ctx();
    let out = logic.evaluate(&mut c).expect("evaluates");
    assert!(!out.ok, "tags['OK:web'] was created as 0");
    assert_eq!(
        out.details,
        "tags['OK:web']=0 i['web']['status']=OK max(1, 2)=2 "
    );
    assert_eq!(c.get("counter").map(Value::to_string).as_deref(), Some("0"));
    let names: Vec<String> = logic.names().into_iter().collect();
    assert_eq!(names, ["counter", "i", "s", "tags"]);
    assert_eq!(
        logic.constant_keys(),
        [
            ("s".to_owned(), "a".to_owned()),
            ("i".to_owned(), "web".to_owned())
        ]
    );
    assert_eq!(logic.unknown_names(["s", "i"]), Vec::<String>::new());
    let e = Logic::compile("True", "", "len(x)").expect_err("bad init");
    assert_eq!(
        e.to_string(),
        "Bad init: Cannot initialize 'len(x)': only a name or a subscript of one with constant keys"
    );
    let e = Logic::compile("True", "a.b", "").expect_err("bad dump");
    assert_eq!(
        e.to_string(),
        "Bad dump: Operation type Attribute is not allowed"
    );
}

#[test]
fn printing_a_huge_value_is_bounded() {
    // 50 × 50 references to one string of 49 KB: cheap to build, 122 MB to print.
    let mut ctx = ctx();
    let big: Vec<Value> = (0..10_000).map(Value::Int).collect();
    ctx.set("range_", Value::List(std::sync::Arc::new(big)));
    let p = Program::compile("str([[str(range_)] * 50] * 50)").expect("compiles");
    assert_eq!(
        p.eval(&ctx).expect_err("too big").to_string(),
        "Evaluation limit exceeded: value too large"
    );
    let logic = Logic::compile("True", "[range_] * 50, 1", "").expect("compiles");
    let out = logic.evaluate(&mut ctx).expect("evaluates");
    assert_eq!(out.details, "[range_] * 50=.. 1=1 ");
}
