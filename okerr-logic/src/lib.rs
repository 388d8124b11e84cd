//! okerr's logic expressions (spec §6.4): Python syntax, parsed by a real Python parser
//! (`rustpython-parser`), then evaluated over a whitelist of node kinds with Python's
//! semantics, as okerr's `evalidate` does.
//!
//! Pure: no I/O, no clock. The caller builds the [`Context`] (okerr-lib builds okerr's
//! project data) and gets a value back.
//!
//! # The whitelist
//! Constants (`None`, `True`, numbers, strings, tuples), names, subscripts (`s['web']`,
//! `i['web']['status']`; no slices), `and`, `or`, `not`, unary `-` and `+`, the
//! arithmetic `+ - * / // % **`, every comparison (chained too: `1 < x <= 5`), `in`,
//! `not in`, `is`, `is not`, `x if c else y`, list, tuple and dict displays, and calls of
//! the safe builtins `len abs min max sum any all int float str bool` with positional
//! arguments. Everything else — attributes, other calls, lambdas, comprehensions,
//! f-strings, walrus, bitwise operators, slices — is refused when the expression is
//! compiled, with evalidate's text `Operation type {Node} is not allowed`.
//!
//! # Bounds
//! An expression has at most [`MAX_LEN`] characters and [`MAX_DEPTH`] levels of nesting;
//! an evaluation at most [`MAX_STEPS`] steps (a value's length counts as steps) and no
//! value longer than [`MAX_VALUE_LEN`]. Integers are 64 bits: leaving them is an
//! `OverflowError` where Python would grow the number.
//!
//! ```
//! use okerr_logic::{Context, Program, Value, Dict};
//! let mut s = Dict::new();
//! s.set("a", true);
//! s.set("b", false);
//! let mut ctx = Context::new();
//! ctx.set("s", Value::dict(s));
//! let p = Program::compile("s['a'] and not s['b']").unwrap();
//! assert!(p.eval(&ctx).unwrap().truthy());
//! assert_eq!(
//!     Program::compile("s.keys()").unwrap_err().to_string(),
//!     "Operation type Attribute is not allowed"
//! );
//! ```
#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

mod compile;
mod error;
mod eval;
pub mod pyfmt;
mod value;

pub use compile::Builtin;
use compile::Node;
pub use error::{CompileError, EvalError};
pub use value::{Dict, Value};

/// The longest expression, in characters (okerr's arguments hold at most 2000).
pub const MAX_LEN: usize = 2000;
/// The deepest nesting of an expression.
pub const MAX_DEPTH: usize = 64;
/// The most steps one evaluation takes.
pub const MAX_STEPS: u32 = 100_000;
/// The longest string or list an evaluation may build.
pub const MAX_VALUE_LEN: usize = 100_000;
/// The longest text of one `dump` value (okerr keeps 200 characters of the details).
const DUMP_VALUE_LEN: usize = 1_000;

/// The names an expression can read.
#[derive(Debug, Clone, Default)]
pub struct Context {
    vars: HashMap<String, Value>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Binds `name` to `value`.
    pub fn set(&mut self, name: &str, value: Value) {
        self.vars.insert(name.to_owned(), value);
    }

    /// The value bound to `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }
}

/// One compiled expression.
#[derive(Debug, Clone)]
pub struct Program {
    text: String,
    root: Node,
}

impl Program {
    /// Parses `text` as a Python expression and checks it against the whitelist.
    ///
    /// # Errors
    /// [`CompileError`]: a syntax error, a node outside the whitelist, a call of anything
    /// but a safe builtin, or an expression over the bounds.
    pub fn compile(text: &str) -> Result<Program, CompileError> {
        Ok(Program {
            text: text.to_owned(),
            root: compile::compile(text)?,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the expression in `ctx`.
    ///
    /// # Errors
    /// [`EvalError`], worded as Python's exception (`KeyError: 'web'`).
    pub fn eval(&self, ctx: &Context) -> Result<Value, EvalError> {
        eval::Eval::new(ctx).eval(&self.root)
    }

    /// The names the expression reads (so that a caller builds only those).
    pub fn names(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        walk(&self.root, &mut |n| {
            if let Node::Name(name) = n {
                out.insert(name.to_string());
            }
        });
        out
    }

    /// Every `name['key']` with a constant string key, as `(name, key)`: the indicators
    /// and counters the expression names, for a check against the project when it is saved.
    pub fn constant_keys(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        walk(&self.root, &mut |n| {
            if let Node::Subscript(value, index) = n
                && let (Node::Name(root), Node::Const(Value::Str(key))) = (&**value, &**index)
            {
                out.push((root.to_string(), key.to_string()));
            }
        });
        out
    }
}

fn walk(n: &Node, f: &mut impl FnMut(&Node)) {
    f(n);
    match n {
        Node::Const(_) | Node::Name(_) => {}
        Node::Subscript(a, b) | Node::Bin(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        Node::Not(a) | Node::Neg(a) | Node::Pos(a) => walk(a, f),
        Node::And(v) | Node::Or(v) | Node::List(v) | Node::Tuple(v) | Node::Call(_, v) => {
            v.iter().for_each(|x| walk(x, f));
        }
        Node::Compare(a, rest) => {
            walk(a, f);
            rest.iter().for_each(|(_, x)| walk(x, f));
        }
        Node::IfExp(a, b, c) => {
            walk(a, f);
            walk(b, f);
            walk(c, f);
        }
        Node::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
            walk(k, f);
            walk(v, f);
        }),
    }
}

/// One entry of `init`: a name, or a name subscripted by constant keys, set to 0 when
/// missing.
#[derive(Debug, Clone)]
struct Init {
    text: String,
    name: String,
    keys: Vec<Value>,
}

/// Which argument of the `logic` method a compile error is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Bad {arg}: {error}")]
pub struct ArgError {
    /// `expr`, `dump` or `init`.
    pub arg: &'static str,
    /// What is wrong.
    #[source]
    pub error: CompileError,
}

/// The three arguments of okerr's `logic` method, compiled.
#[derive(Debug, Clone)]
pub struct Logic {
    expr: Program,
    dump: Vec<Program>,
    init: Vec<Init>,
}

/// What one evaluation gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The expression was truthy (OK) or not (ERR).
    pub ok: bool,
    /// The `dump` values, `"{expr}={value} "` each; empty without `dump`.
    pub details: String,
}

impl Logic {
    /// Compiles `expr`, `dump` (comma-separated expressions) and `init` (names or
    /// subscripts with constant keys, separated by commas or spaces).
    ///
    /// # Errors
    /// The first argument that does not compile.
    pub fn compile(expr: &str, dump: &str, init: &str) -> Result<Logic, ArgError> {
        let expr = Program::compile(expr).map_err(|error| ArgError { arg: "expr", error })?;
        let dump = split_top(dump, false)
            .into_iter()
            .map(|d| Program::compile(&d))
            .collect::<Result<_, _>>()
            .map_err(|error| ArgError { arg: "dump", error })?;
        let init = split_top(init, true)
            .into_iter()
            .map(|t| parse_init(&t))
            .collect::<Result<_, _>>()
            .map_err(|error| ArgError { arg: "init", error })?;
        Ok(Logic { expr, dump, init })
    }

    /// The names the three arguments read.
    pub fn names(&self) -> BTreeSet<String> {
        let mut names = self.expr.names();
        for d in &self.dump {
            names.extend(d.names());
        }
        names.extend(self.init.iter().map(|i| i.name.clone()));
        names
    }

    /// The constant keys every argument names (see [`Program::constant_keys`]), minus
    /// those `init` creates.
    pub fn constant_keys(&self) -> Vec<(String, String)> {
        let mut keys = self.expr.constant_keys();
        for d in &self.dump {
            keys.extend(d.constant_keys());
        }
        keys.retain(|(name, key)| {
            !self.init.iter().any(|i| {
                i.name == *name && matches!(i.keys.first(), Some(Value::Str(k)) if **k == *key)
            })
        });
        keys
    }

    /// Names that are read but neither in `known` nor created by `init` (a `NameError`
    /// waiting to happen).
    pub fn unknown_names<'a>(&self, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let known: BTreeSet<&str> = known.into_iter().collect();
        let mut names = self.expr.names();
        for d in &self.dump {
            names.extend(d.names());
        }
        names
            .into_iter()
            .filter(|n| !known.contains(n.as_str()) && !self.init.iter().any(|i| i.name == *n))
            .collect()
    }

    /// Applies `init` to `ctx`, evaluates `expr`, then each `dump` expression.
    ///
    /// # Errors
    /// The first evaluation that fails.
    pub fn evaluate(&self, ctx: &mut Context) -> Result<Outcome, EvalError> {
        for init in &self.init {
            apply_init(ctx, init)?;
        }
        let ok = self.expr.eval(ctx)?.truthy();
        let mut details = String::new();
        for d in &self.dump {
            let v = d.eval(ctx)?;
            // okerr keeps 200 characters of the details: a huge value is cut short.
            let shown = v
                .to_string_within(DUMP_VALUE_LEN)
                .unwrap_or_else(|| "..".to_owned());
            details.push_str(&format!("{}={shown} ", d.text()));
        }
        Ok(Outcome { ok, details })
    }
}

/// Splits at commas (and, with `spaces`, whitespace) outside brackets and quotes; parts
/// are trimmed, empty ones dropped.
fn split_top(text: &str, spaces: bool) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                cur.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                cur.push(c);
            }
            ')' | ']' | '}' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth <= 0 => parts.push(std::mem::take(&mut cur)),
            c if spaces && depth <= 0 && c.is_whitespace() => {
                parts.push(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_init(text: &str) -> Result<Init, CompileError> {
    let program = Program::compile(text)?;
    let mut keys = Vec::new();
    let mut node = &program.root;
    loop {
        match node {
            Node::Name(name) => {
                keys.reverse();
                return Ok(Init {
                    text: text.to_owned(),
                    name: name.to_string(),
                    keys,
                });
            }
            Node::Subscript(value, index) => match &**index {
                Node::Const(k) => {
                    keys.push(k.clone());
                    node = value;
                }
                _ => return Err(CompileError::BadInit(text.to_owned())),
            },
            _ => return Err(CompileError::BadInit(text.to_owned())),
        }
    }
}

fn apply_init(ctx: &mut Context, init: &Init) -> Result<(), EvalError> {
    let slot = ctx
        .vars
        .entry(init.name.clone())
        .or_insert_with(|| match init.keys.is_empty() {
            true => Value::Int(0),
            false => Value::dict(Dict::new()),
        });
    set_missing(slot, &init.keys, &init.text)
}

fn set_missing(slot: &mut Value, keys: &[Value], text: &str) -> Result<(), EvalError> {
    let Some((key, rest)) = keys.split_first() else {
        return Ok(());
    };
    let Value::Dict(d) = slot else {
        return Err(EvalError::Type(format!(
            "cannot initialize {text}: '{}' object is not a dict",
            slot.type_name()
        )));
    };
    let d = Arc::make_mut(d);
    if d.get(key)?.is_none() {
        let fresh = if rest.is_empty() {
            Value::Int(0)
        } else {
            Value::dict(Dict::new())
        };
        d.insert(key.clone(), fresh)?;
    }
    // The entry exists now; descend into it.
    let mut inner = d.get(key)?.cloned().unwrap_or(Value::None);
    set_missing(&mut inner, rest, text)?;
    d.insert(key.clone(), inner)
}
