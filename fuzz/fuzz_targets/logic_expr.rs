//! okerr's logic expressions (`okerr_logic::Program`, issue 14): Python syntax through
//! rustpython-parser, then the whitelist.
//!
//! Input: the expression's text.
//!
//! Properties: compiling never panics; what compiles evaluates in a context like okerr's
//! (`s`, `i`, `prefix`, `lo`, `hhmm`) without panicking, within the step bound, to the same
//! value or error each time; its `str()` and `repr()` are made without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okerr_logic::{Context, Dict, Program, Value};

fn context() -> Context {
    let mut s = Dict::new();
    s.set("web", true);
    s.set("db", false);
    let mut web = Dict::new();
    web.set("status", "OK");
    web.set("statusage", 120);
    let mut i = Dict::new();
    i.set("web", Value::dict(web));
    let mut prefix = Dict::new();
    prefix.set("OK:srv", 2);
    let mut c = Context::new();
    c.set("s", Value::dict(s));
    c.set("i", Value::dict(i));
    c.set("prefix", Value::dict(prefix));
    c.set("lo", Value::None);
    c.set("hhmm", Value::Int(1230));
    c
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(program) = Program::compile(text) else {
        return;
    };
    let ctx = context();
    let first = program.eval(&ctx);
    let second = program.eval(&ctx);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{text}");
            let _ = (a.repr(), a.truthy());
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
        _ => panic!("{text}: {first:?} then {second:?}"),
    }
});
