//! The evaluator of the whitelisted tree, with Python's semantics and bounded work.

use std::sync::Arc;

use crate::compile::{BinOp, Builtin, CmpOp, Node};
use crate::error::EvalError;
use crate::value::{Dict, Number, Value};
use crate::{Context, MAX_STEPS, MAX_VALUE_LEN};

pub(crate) struct Eval<'a> {
    ctx: &'a Context,
    steps: u32,
}

impl<'a> Eval<'a> {
    pub(crate) fn new(ctx: &'a Context) -> Self {
        Eval { ctx, steps: 0 }
    }

    fn step(&mut self, n: usize) -> Result<(), EvalError> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.steps = self.steps.saturating_add(n.max(1));
        if self.steps > MAX_STEPS {
            return Err(EvalError::Limit("too many steps"));
        }
        Ok(())
    }

    pub(crate) fn eval(&mut self, node: &Node) -> Result<Value, EvalError> {
        self.step(1)?;
        Ok(match node {
            Node::Const(v) => v.clone(),
            Node::Name(n) => self
                .ctx
                .get(n)
                .cloned()
                .ok_or_else(|| EvalError::Name(n.to_string()))?,
            Node::Subscript(value, index) => {
                let v = self.eval(value)?;
                let i = self.eval(index)?;
                subscript(&v, &i)?
            }
            Node::And(values) => {
                let mut last = Value::Bool(true);
                for v in values {
                    last = self.eval(v)?;
                    if !last.truthy() {
                        break;
                    }
                }
                last
            }
            Node::Or(values) => {
                let mut last = Value::Bool(false);
                for v in values {
                    last = self.eval(v)?;
                    if last.truthy() {
                        break;
                    }
                }
                last
            }
            Node::Not(v) => Value::Bool(!self.eval(v)?.truthy()),
            Node::Neg(v) => {
                let x = self.eval(v)?;
                match x.number() {
                    Some(Number::Int(i)) => Value::Int(i.checked_neg().ok_or(EvalError::Overflow)?),
                    Some(Number::Float(f)) => Value::Float(-f),
                    None => return Err(bad_unary("-", &x)),
                }
            }
            Node::Pos(v) => {
                let x = self.eval(v)?;
                match x.number() {
                    Some(Number::Int(i)) => Value::Int(i),
                    Some(Number::Float(f)) => Value::Float(f),
                    None => return Err(bad_unary("+", &x)),
                }
            }
            Node::Bin(op, l, r) => {
                let l = self.eval(l)?;
                let r = self.eval(r)?;
                let out = binop(*op, &l, &r)?;
                self.step(size(&out))?;
                out
            }
            Node::Compare(first, rest) => {
                let mut left = self.eval(first)?;
                for (op, right) in rest {
                    let right = self.eval(right)?;
                    if !compare(*op, &left, &right)? {
                        return Ok(Value::Bool(false));
                    }
                    left = right;
                }
                Value::Bool(true)
            }
            Node::IfExp(test, body, orelse) => {
                if self.eval(test)?.truthy() {
                    self.eval(body)?
                } else {
                    self.eval(orelse)?
                }
            }
            Node::List(items) => Value::List(Arc::new(self.all(items)?)),
            Node::Tuple(items) => Value::Tuple(Arc::new(self.all(items)?)),
            Node::Dict(pairs) => {
                let mut d = Dict::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let k = self.eval(k)?;
                    let v = self.eval(v)?;
                    d.insert(k, v)?;
                }
                Value::dict(d)
            }
            Node::Call(f, args) => {
                let args = self.all(args)?;
                let out = call(*f, &args)?;
                self.step(args.iter().map(size).sum())?;
                out
            }
        })
    }

    fn all(&mut self, nodes: &[Node]) -> Result<Vec<Value>, EvalError> {
        nodes.iter().map(|n| self.eval(n)).collect()
    }
}

/// How much work a value stands for (its length), for the step budget.
fn size(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len() / 64,
        Value::List(l) | Value::Tuple(l) => l.len(),
        Value::Dict(d) => d.len(),
        _ => 1,
    }
}

fn bad_unary(op: &str, v: &Value) -> EvalError {
    EvalError::Type(format!(
        "bad operand type for unary {op}: '{}'",
        v.type_name()
    ))
}

fn index_of(i: &Value, len: usize, what: &'static str) -> Result<usize, EvalError> {
    let Some(Number::Int(i)) = i.number().filter(|_| !matches!(i, Value::Float(_))) else {
        return Err(EvalError::Type(format!(
            "{what} indices must be integers, not {}",
            i.type_name()
        )));
    };
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let at = if i < 0 { i + len_i } else { i };
    if (0..len_i).contains(&at) {
        usize::try_from(at).map_err(|_| EvalError::Index(what))
    } else {
        Err(EvalError::Index(what))
    }
}

fn subscript(v: &Value, i: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Dict(d) => d.get(i)?.cloned().ok_or_else(|| EvalError::Key(i.repr())),
        Value::List(l) => Ok(l[index_of(i, l.len(), "list")?].clone()),
        Value::Tuple(l) => Ok(l[index_of(i, l.len(), "tuple")?].clone()),
        Value::Str(s) => {
            let n = s.chars().count();
            let at = index_of(i, n, "string")?;
            Ok(Value::str(
                s.chars().nth(at).map(String::from).unwrap_or_default(),
            ))
        }
        other => Err(EvalError::Type(format!(
            "'{}' object is not subscriptable",
            other.type_name()
        ))),
    }
}

fn unsupported(op: BinOp, l: &Value, r: &Value) -> EvalError {
    EvalError::Type(format!(
        "unsupported operand type(s) for {}: '{}' and '{}'",
        op.symbol(),
        l.type_name(),
        r.type_name()
    ))
}

fn repeat<T: Clone>(items: &[T], n: i64) -> Result<Vec<T>, EvalError> {
    let n = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
    if items.len().saturating_mul(n) > MAX_VALUE_LEN {
        return Err(EvalError::Limit("value too large"));
    }
    Ok(items
        .iter()
        .cloned()
        .cycle()
        .take(items.len() * n)
        .collect())
}

fn concat<T: Clone>(a: &[T], b: &[T]) -> Result<Vec<T>, EvalError> {
    if a.len() + b.len() > MAX_VALUE_LEN {
        return Err(EvalError::Limit("value too large"));
    }
    Ok(a.iter().chain(b).cloned().collect())
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn binop(op: BinOp, l: &Value, r: &Value) -> Result<Value, EvalError> {
    // Sequences first: + joins, * repeats.
    match (op, l, r) {
        (BinOp::Add, Value::Str(a), Value::Str(b)) => {
            if a.len() + b.len() > MAX_VALUE_LEN {
                return Err(EvalError::Limit("value too large"));
            }
            return Ok(Value::str(format!("{a}{b}")));
        }
        (BinOp::Add, Value::List(a), Value::List(b)) => {
            return Ok(Value::List(Arc::new(concat(a, b)?)));
        }
        (BinOp::Add, Value::Tuple(a), Value::Tuple(b)) => {
            return Ok(Value::Tuple(Arc::new(concat(a, b)?)));
        }
        (BinOp::Mul, Value::Str(s), n) | (BinOp::Mul, n, Value::Str(s)) if int_of(n).is_some() => {
            let chars: Vec<char> = s.chars().collect();
            let out: String = repeat(&chars, int_of(n).unwrap_or(0))?
                .into_iter()
                .collect();
            return Ok(Value::str(out));
        }
        (BinOp::Mul, Value::List(s), n) | (BinOp::Mul, n, Value::List(s))
            if int_of(n).is_some() =>
        {
            return Ok(Value::List(Arc::new(repeat(s, int_of(n).unwrap_or(0))?)));
        }
        (BinOp::Mul, Value::Tuple(s), n) | (BinOp::Mul, n, Value::Tuple(s))
            if int_of(n).is_some() =>
        {
            return Ok(Value::Tuple(Arc::new(repeat(s, int_of(n).unwrap_or(0))?)));
        }
        (BinOp::Mod, Value::Str(_), _) => {
            return Err(EvalError::Type(
                "string formatting with % is not supported".to_owned(),
            ));
        }
        _ => {}
    }
    let (Some(a), Some(b)) = (l.number(), r.number()) else {
        return Err(unsupported(op, l, r));
    };
    match (a, b) {
        (Number::Int(a), Number::Int(b)) => int_op(op, a, b),
        (a, b) => float_op(op, a.as_f64(), b.as_f64()),
    }
}

fn int_op(op: BinOp, a: i64, b: i64) -> Result<Value, EvalError> {
    let of = |x: Option<i64>| x.map(Value::Int).ok_or(EvalError::Overflow);
    match op {
        BinOp::Add => of(a.checked_add(b)),
        BinOp::Sub => of(a.checked_sub(b)),
        BinOp::Mul => of(a.checked_mul(b)),
        #[allow(clippy::cast_precision_loss)]
        BinOp::Div => {
            if b == 0 {
                Err(EvalError::ZeroDivision("division by zero"))
            } else {
                Ok(Value::Float(a as f64 / b as f64))
            }
        }
        BinOp::FloorDiv | BinOp::Mod => {
            if b == 0 {
                return Err(EvalError::ZeroDivision(if op == BinOp::FloorDiv {
                    "integer division or modulo by zero"
                } else {
                    "integer modulo by zero"
                }));
            }
            let q = a.checked_div(b).ok_or(EvalError::Overflow)?;
            let r = a.checked_rem(b).ok_or(EvalError::Overflow)?;
            // Python floors: the remainder takes the divisor's sign.
            let (q, r) = if r != 0 && ((r < 0) != (b < 0)) {
                (q - 1, r + b)
            } else {
                (q, r)
            };
            Ok(Value::Int(if op == BinOp::FloorDiv { q } else { r }))
        }
        BinOp::Pow => {
            if b < 0 {
                #[allow(clippy::cast_precision_loss)]
                return float_op(op, a as f64, b as f64);
            }
            let e = u32::try_from(b).map_err(|_| EvalError::Overflow)?;
            of(a.checked_pow(e))
        }
    }
}

fn float_op(op: BinOp, a: f64, b: f64) -> Result<Value, EvalError> {
    Ok(Value::Float(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                return Err(EvalError::ZeroDivision("float division by zero"));
            }
            a / b
        }
        BinOp::FloorDiv => {
            if b == 0.0 {
                return Err(EvalError::ZeroDivision("float floor division by zero"));
            }
            (a / b).floor()
        }
        BinOp::Mod => {
            if b == 0.0 {
                return Err(EvalError::ZeroDivision("float modulo"));
            }
            let r = a % b;
            if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
                r + b
            } else {
                r
            }
        }
        BinOp::Pow => {
            if a == 0.0 && b < 0.0 {
                return Err(EvalError::ZeroDivision(
                    "0.0 cannot be raised to a negative power",
                ));
            }
            a.powf(b)
        }
    }))
}

fn contains(container: &Value, item: &Value) -> Result<bool, EvalError> {
    match container {
        Value::Str(s) => match item {
            Value::Str(sub) => Ok(s.contains(&**sub)),
            other => Err(EvalError::Type(format!(
                "'in <string>' requires string as left operand, not {}",
                other.type_name()
            ))),
        },
        Value::List(l) | Value::Tuple(l) => Ok(l.iter().any(|v| v.py_eq(item))),
        Value::Dict(d) => Ok(d.get(item)?.is_some()),
        other => Err(EvalError::Type(format!(
            "argument of type '{}' is not iterable",
            other.type_name()
        ))),
    }
}

fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => Arc::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => Arc::ptr_eq(x, y),
        (Value::Dict(x), Value::Dict(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> Result<bool, EvalError> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    Ok(match op {
        CmpOp::Eq => l.py_eq(r),
        CmpOp::NotEq => !l.py_eq(r),
        CmpOp::Lt => matches!(l.py_cmp(r, "<")?, Some(Less)),
        CmpOp::LtE => matches!(l.py_cmp(r, "<=")?, Some(Less | Equal)),
        CmpOp::Gt => matches!(l.py_cmp(r, ">")?, Some(Greater)),
        CmpOp::GtE => matches!(l.py_cmp(r, ">=")?, Some(Greater | Equal)),
        CmpOp::In => contains(r, l)?,
        CmpOp::NotIn => !contains(r, l)?,
        CmpOp::Is => identical(l, r),
        CmpOp::IsNot => !identical(l, r),
    })
}

/// The items of an iterable argument.
fn items(v: &Value) -> Result<Vec<Value>, EvalError> {
    match v {
        Value::List(l) | Value::Tuple(l) => Ok(l.to_vec()),
        Value::Str(s) => Ok(s.chars().map(|c| Value::str(String::from(c))).collect()),
        Value::Dict(d) => Ok(d.keys().cloned().collect()),
        other => Err(EvalError::Type(format!(
            "'{}' object is not iterable",
            other.type_name()
        ))),
    }
}

fn arity(f: Builtin, args: &[Value], n: usize) -> Result<(), EvalError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(EvalError::Type(format!(
            "{}() takes exactly {n} argument ({} given)",
            f.name(),
            args.len()
        )))
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim().replace('_', "");
    t.parse().ok()
}

fn call(f: Builtin, args: &[Value]) -> Result<Value, EvalError> {
    match f {
        Builtin::Len => {
            arity(f, args, 1)?;
            let n = match &args[0] {
                Value::Str(s) => s.chars().count(),
                Value::List(l) | Value::Tuple(l) => l.len(),
                Value::Dict(d) => d.len(),
                other => {
                    return Err(EvalError::Type(format!(
                        "object of type '{}' has no len()",
                        other.type_name()
                    )));
                }
            };
            Ok(Value::Int(
                i64::try_from(n).map_err(|_| EvalError::Overflow)?,
            ))
        }
        Builtin::Abs => {
            arity(f, args, 1)?;
            match args[0].number() {
                Some(Number::Int(i)) => Ok(Value::Int(i.checked_abs().ok_or(EvalError::Overflow)?)),
                Some(Number::Float(x)) => Ok(Value::Float(x.abs())),
                None => Err(bad_unary("abs()", &args[0])),
            }
        }
        Builtin::Min | Builtin::Max => {
            let list = match args {
                [one] => items(one)?,
                [] => {
                    return Err(EvalError::Type(format!(
                        "{} expected at least 1 argument, got 0",
                        f.name()
                    )));
                }
                many => many.to_vec(),
            };
            let mut best: Option<Value> = None;
            for v in list {
                best = Some(match best {
                    None => v,
                    Some(b) => {
                        let better = if f == Builtin::Min {
                            matches!(v.py_cmp(&b, "<")?, Some(std::cmp::Ordering::Less))
                        } else {
                            matches!(v.py_cmp(&b, ">")?, Some(std::cmp::Ordering::Greater))
                        };
                        if better { v } else { b }
                    }
                });
            }
            best.ok_or_else(|| EvalError::Value(format!("{}() arg is an empty sequence", f.name())))
        }
        Builtin::Sum => {
            let (iterable, start) = match args {
                [it] => (it, Value::Int(0)),
                [it, start] => (it, start.clone()),
                _ => {
                    return Err(EvalError::Type(
                        "sum() takes at most 2 arguments".to_owned(),
                    ));
                }
            };
            let mut acc = start;
            for v in items(iterable)? {
                acc = binop(BinOp::Add, &acc, &v)?;
            }
            Ok(acc)
        }
        Builtin::Any | Builtin::All => {
            arity(f, args, 1)?;
            let list = items(&args[0])?;
            Ok(Value::Bool(if f == Builtin::Any {
                list.iter().any(Value::truthy)
            } else {
                list.iter().all(Value::truthy)
            }))
        }
        Builtin::Int => {
            arity(f, args, 1)?;
            match &args[0] {
                Value::Str(s) => parse_int(s).map(Value::Int).ok_or_else(|| {
                    EvalError::Value(format!(
                        "invalid literal for int() with base 10: {}",
                        args[0].repr()
                    ))
                }),
                Value::Float(x) => {
                    if x.is_finite() && x.abs() < 9.2e18 {
                        #[allow(clippy::cast_possible_truncation)]
                        Ok(Value::Int(x.trunc() as i64))
                    } else {
                        Err(EvalError::Overflow)
                    }
                }
                v => match int_of(v) {
                    Some(i) => Ok(Value::Int(i)),
                    None => Err(EvalError::Type(format!(
                        "int() argument must be a string or a number, not '{}'",
                        v.type_name()
                    ))),
                },
            }
        }
        Builtin::Float => {
            arity(f, args, 1)?;
            match &args[0] {
                Value::Str(s) => {
                    let t = s.trim().to_ascii_lowercase();
                    let parsed = match t.trim_start_matches(['+', '-']) {
                        "inf" | "infinity" | "nan" => t.parse::<f64>().ok(),
                        _ => t.replace('_', "").parse::<f64>().ok(),
                    };
                    parsed.map(Value::Float).ok_or_else(|| {
                        EvalError::Value(format!(
                            "could not convert string to float: {}",
                            args[0].repr()
                        ))
                    })
                }
                v => match v.number() {
                    Some(n) => Ok(Value::Float(n.as_f64())),
                    None => Err(EvalError::Type(format!(
                        "float() argument must be a string or a number, not '{}'",
                        v.type_name()
                    ))),
                },
            }
        }
        Builtin::Str => {
            arity(f, args, 1)?;
            args[0]
                .to_string_within(MAX_VALUE_LEN)
                .map(Value::str)
                .ok_or(EvalError::Limit("value too large"))
        }
        Builtin::Bool => {
            arity(f, args, 1)?;
            Ok(Value::Bool(args[0].truthy()))
        }
    }
}
