//! Properties of the whitelist: whatever is built from it compiles and evaluates without
//! panicking (to a value or an error); whatever holds a node outside it is refused.

use okerr_logic::{CompileError, Context, Dict, Program, Value};
use proptest::prelude::*;

fn ctx() -> Context {
    let mut s = Dict::new();
    s.set("a", true);
    s.set("b", false);
    let mut web = Dict::new();
    web.set("status", "ERR");
    web.set("statusage", 120);
    let mut i = Dict::new();
    i.set("web", Value::dict(web));
    let mut c = Context::new();
    c.set("s", Value::dict(s));
    c.set("i", Value::dict(i));
    c.set("n", Value::Int(7));
    c.set("lo", Value::None);
    c
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "[a-z' ]{0,6}".prop_map(|s| format!("{s:?}")),
        Just("True".to_owned()),
        Just("False".to_owned()),
        Just("None".to_owned()),
        Just("n".to_owned()),
        Just("lo".to_owned()),
        Just("s".to_owned()),
        Just("nosuch".to_owned()),
        Just("s['a']".to_owned()),
        Just("s['zz']".to_owned()),
        Just("i['web']".to_owned()),
        Just("i['web']['statusage']".to_owned()),
    ]
}

/// Expressions of the whitelist only.
fn whitelisted() -> impl Strategy<Value = String> {
    atom().prop_recursive(5, 48, 4, |inner| {
        let bin = prop_oneof![
            Just("+"),
            Just("-"),
            Just("*"),
            Just("/"),
            Just("//"),
            Just("%"),
            Just("**"),
            Just("and"),
            Just("or"),
            Just("=="),
            Just("!="),
            Just("<"),
            Just("<="),
            Just(">"),
            Just(">="),
            Just("in"),
            Just("not in"),
            Just("is"),
            Just("is not"),
        ];
        let func = prop_oneof![
            Just("len"),
            Just("abs"),
            Just("min"),
            Just("max"),
            Just("sum"),
            Just("any"),
            Just("all"),
            Just("int"),
            Just("float"),
            Just("str"),
            Just("bool"),
        ];
        prop_oneof![
            (inner.clone(), bin, inner.clone()).prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})[{b}]")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("({a}) if ({b}) else ({c})")),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| format!("({},)", v.join(", "))),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| format!("{{{k}: {v}}}")),
            (func, prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(f, v)| format!("{f}({})", v.join(", "))),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(a, b, c)| format!("({a}) < ({b}) <= ({c})")),
        ]
    })
}

/// A construct outside the whitelist, around or inside `e`.
fn forbidden(e: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("({e}).real")),
        Just(format!("open({e})")),
        Just(format!("__import__({e})")),
        Just(format!("(lambda q: q)({e})")),
        Just(format!("[q for q in ({e})]")),
        Just(format!("{{q: 1 for q in ({e})}}")),
        Just(format!("({e}) and f'{{n}}'")),
        Just(format!("(q := ({e}))")),
        Just(format!("({e})[1:2]")),
        Just(format!("({e}) | 1")),
        Just(format!("{{({e}), 1}}")),
        Just(format!("getattr({e}, 'x')")),
        Just(format!("({e})()")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn whitelisted_expressions_evaluate_without_panicking(text in whitelisted()) {
        let p = match Program::compile(&text) {
            Ok(p) => p,
            // Only the bounds may refuse what the generator builds.
            Err(e) => {
                prop_assert!(
                    matches!(e, CompileError::TooDeep(_) | CompileError::BigInt { .. }),
                    "{text}: {e}"
                );
                return Ok(());
            }
        };
        let ctx = ctx();
        // A value (its truth is the status) or an error (a problem): never a panic.
        match p.eval(&ctx) {
            Ok(v) => { let _ = (v.truthy(), v.to_string()); }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn a_node_outside_the_whitelist_is_refused(text in whitelisted().prop_flat_map(forbidden)) {
        let e = Program::compile(&text).expect_err(&text);
        prop_assert!(
            matches!(e, CompileError::NotAllowed { .. } | CompileError::Call { .. }
                | CompileError::TooDeep(_) | CompileError::BigInt { .. }),
            "{text}: {e}"
        );
    }
}
