//! The values an expression computes with, and Python's rules for them: truthiness,
//! equality and ordering, `str()` and `repr()`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::EvalError;
use crate::pyfmt::{float_repr, str_repr};

/// A Python value of the kinds an okerr expression can see.
///
/// Containers are shared (`Arc`), so that reading `i['web']` out of a context of 10,000
/// indicators copies nothing.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` (64 bits here: an operation that leaves them is an `OverflowError`).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(Arc<str>),
    /// A `list`.
    List(Arc<Vec<Value>>),
    /// A `tuple`.
    Tuple(Arc<Vec<Value>>),
    /// A `dict`.
    Dict(Arc<Dict>),
}

impl Value {
    /// A `str` value.
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// A `dict` value.
    pub fn dict(d: Dict) -> Value {
        Value::Dict(Arc::new(d))
    }

    /// Python's type name (`int`, `str`, `NoneType`, …), as error messages show it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
        }
    }

    /// Python's `bool(x)`.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) | Value::Tuple(l) => !l.is_empty(),
            Value::Dict(d) => !d.is_empty(),
        }
    }

    /// The value as a number when it is one (`bool` counts as `int`).
    pub(crate) fn number(&self) -> Option<Number> {
        match self {
            Value::Bool(b) => Some(Number::Int(i64::from(*b))),
            Value::Int(i) => Some(Number::Int(*i)),
            Value::Float(f) => Some(Number::Float(*f)),
            _ => None,
        }
    }

    /// Python's `==`.
    pub fn py_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.py_eq(y))
            }
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).ok().flatten().is_some_and(|w| v.py_eq(w)))
            }
            _ => match (self.number(), other.number()) {
                (Some(a), Some(b)) => a.cmp_num(b) == Some(std::cmp::Ordering::Equal),
                _ => false,
            },
        }
    }

    /// Python's ordering (`<` and friends): numbers, strings, and lists or tuples
    /// element by element. `None` for NaN. `op` is the operator, for the `TypeError`.
    ///
    /// # Errors
    /// `TypeError` for values Python cannot order.
    pub fn py_cmp(&self, other: &Value, op: &str) -> Result<Option<std::cmp::Ordering>, EvalError> {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Ok(Some(a.cmp(b))),
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                for (x, y) in a.iter().zip(b.iter()) {
                    if !x.py_eq(y) {
                        return x.py_cmp(y, op);
                    }
                }
                Ok(Some(a.len().cmp(&b.len())))
            }
            _ => match (self.number(), other.number()) {
                (Some(a), Some(b)) => Ok(a.cmp_num(b)),
                _ => Err(EvalError::Type(format!(
                    "'{op}' not supported between instances of '{}' and '{}'",
                    self.type_name(),
                    other.type_name()
                ))),
            },
        }
    }

    /// Python's `repr(x)`.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, true, usize::MAX);
        out
    }

    /// Python's `str(x)` if it has at most `max` bytes, else `None` (a context of 10,000
    /// indicators repeated in a list would print to gigabytes: the text is cut off as soon
    /// as it is too long, never built whole).
    pub fn to_string_within(&self, max: usize) -> Option<String> {
        let mut out = String::new();
        self.write(&mut out, false, max).then_some(out)
    }

    /// Writes `repr(self)` (or `str(self)` when `!repr`); `false` once `out` is longer than
    /// `max`, and then stops.
    fn write(&self, out: &mut String, repr: bool, max: usize) -> bool {
        match self {
            Value::Str(s) if repr => out.push_str(&str_repr(s)),
            Value::Str(s) => out.push_str(s),
            Value::List(items) => {
                out.push('[');
                if !write_items(out, items, max) {
                    return false;
                }
                out.push(']');
            }
            Value::Tuple(items) => {
                out.push('(');
                if !write_items(out, items, max) {
                    return false;
                }
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            Value::Dict(d) => {
                out.push('{');
                for (n, (k, v)) in d.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    if !k.write(out, true, max) {
                        return false;
                    }
                    out.push_str(": ");
                    if !v.write(out, true, max) {
                        return false;
                    }
                }
                out.push('}');
            }
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(x) => out.push_str(&float_repr(*x)),
        }
        out.len() <= max
    }
}

fn write_items(out: &mut String, items: &[Value], max: usize) -> bool {
    for (n, v) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        if !v.write(out, true, max) {
            return false;
        }
    }
    true
}

/// Python's `str(x)`: a string is itself, everything else its `repr`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out, false, usize::MAX);
        f.write_str(&out)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s.into())
    }
}

/// A number, with Python's mixed `int`/`float` comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            // Precision loss above 2^53 is Python's too when it mixes int and float.
            #[allow(clippy::cast_precision_loss)]
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    fn cmp_num(self, other: Number) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

/// A dict key, hashed as Python hashes: `1`, `1.0` and `True` are one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HashKey {
    None,
    Int(i64),
    Float(u64),
    Str(Arc<str>),
}

impl HashKey {
    fn of(v: &Value) -> Result<HashKey, EvalError> {
        Ok(match v {
            Value::None => HashKey::None,
            Value::Bool(b) => HashKey::Int(i64::from(*b)),
            Value::Int(i) => HashKey::Int(*i),
            Value::Float(f) => {
                // An integral float is the int of the same value, as in Python.
                #[allow(clippy::cast_possible_truncation)]
                let i = *f as i64;
                #[allow(clippy::cast_precision_loss)]
                if f.fract() == 0.0 && (i as f64) == *f {
                    HashKey::Int(i)
                } else {
                    HashKey::Float(f.to_bits())
                }
            }
            Value::Str(s) => HashKey::Str(s.clone()),
            other => {
                return Err(EvalError::Type(format!(
                    "unhashable type: '{}'",
                    other.type_name()
                )));
            }
        })
    }
}

/// A Python `dict`: insertion-ordered, looked up by hash.
#[derive(Debug, Clone, Default)]
pub struct Dict {
    entries: Vec<(Value, Value)>,
    index: HashMap<HashKey, usize>,
}

impl Dict {
    /// An empty dict.
    pub fn new() -> Dict {
        Dict::default()
    }

    /// An empty dict with room for `n` entries.
    pub fn with_capacity(n: usize) -> Dict {
        Dict {
            entries: Vec::with_capacity(n),
            index: HashMap::with_capacity(n),
        }
    }

    /// Sets `key` to `value`; an existing key keeps its place.
    ///
    /// # Errors
    /// `TypeError` for a key Python cannot hash (a list, a dict; tuples are not supported
    /// as keys here).
    pub fn insert(&mut self, key: Value, value: Value) -> Result<(), EvalError> {
        let h = HashKey::of(&key)?;
        match self.index.get(&h) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(h, self.entries.len());
                self.entries.push((key, value));
            }
        }
        Ok(())
    }

    /// Sets the string key `key` to `value`.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let key: Arc<str> = key.into();
        let h = HashKey::Str(key.clone());
        let value = value.into();
        match self.index.get(&h) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(h, self.entries.len());
                self.entries.push((Value::Str(key), value));
            }
        }
    }

    /// The value of `key`, if present.
    ///
    /// # Errors
    /// `TypeError` for a key Python cannot hash.
    pub fn get(&self, key: &Value) -> Result<Option<&Value>, EvalError> {
        let h = HashKey::of(key)?;
        Ok(self.index.get(&h).map(|&i| &self.entries[i].1))
    }

    /// The value of the string key `key`, if present.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.index
            .get(&HashKey::Str(key.into()))
            .map(|&i| &self.entries[i].1)
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_formatting() {
        let mut d = Dict::new();
        d.set("id", 3);
        d.set("name", "web");
        d.set("ok", true);
        d.set("x", Value::Float(1.5));
        d.set("n", Value::None);
        let v = Value::dict(d);
        assert_eq!(
            v.to_string(),
            "{'id': 3, 'name': 'web', 'ok': True, 'x': 1.5, 'n': None}"
        );
        let t = Value::Tuple(Arc::new(vec![Value::from("it's")]));
        assert_eq!(t.to_string(), "(\"it's\",)");
        assert_eq!(Value::Float(2.0).to_string(), "2.0");
        assert_eq!(Value::Float(1e16).to_string(), "1e+16");
        assert_eq!(Value::from("a'b").to_string(), "a'b");
        assert_eq!(Value::from("a'b").repr(), "\"a'b\"");
    }

    #[test]
    fn python_equality_and_keys() {
        assert!(Value::Int(1).py_eq(&Value::Float(1.0)));
        assert!(Value::Bool(true).py_eq(&Value::Int(1)));
        assert!(!Value::Int(1).py_eq(&Value::from("1")));
        let mut d = Dict::new();
        d.insert(Value::Int(1), Value::from("a")).expect("hashable");
        assert!(d.get(&Value::Float(1.0)).expect("hashable").is_some());
        assert!(d.get(&Value::Bool(true)).expect("hashable").is_some());
        assert!(d.get(&Value::List(Arc::new(vec![]))).is_err());
        let e = Value::Int(1)
            .py_cmp(&Value::from("a"), "<")
            .expect_err("no order");
        assert_eq!(
            e.to_string(),
            "TypeError: '<' not supported between instances of 'int' and 'str'"
        );
    }
}
