//! From Python source to the whitelisted tree: parse with rustpython's parser, then keep
//! only the node kinds the evaluator knows, refusing every other one by its AST name.

use std::sync::Arc;

use rustpython_parser::ast::{self, Constant, Expr};

use crate::error::CompileError;
use crate::value::Value;
use crate::{MAX_DEPTH, MAX_LEN};

/// A node of the whitelisted tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Value),
    Name(Arc<str>),
    Subscript(Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Pos(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Compare(Box<Node>, Vec<(CmpOp, Node)>),
    IfExp(Box<Node>, Box<Node>, Box<Node>),
    List(Vec<Node>),
    Tuple(Vec<Node>),
    Dict(Vec<(Node, Node)>),
    Call(Builtin, Vec<Node>),
}

/// The arithmetic operators of the whitelist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "** or pow()",
        }
    }
}

/// The comparison operators (all of Python's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtE,
    Gt,
    GtE,
    In,
    NotIn,
    Is,
    IsNot,
}

/// The safe builtins an expression may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `len(x)`.
    Len,
    /// `abs(x)`.
    Abs,
    /// `min(iterable)` or `min(a, b, …)`.
    Min,
    /// `max(iterable)` or `max(a, b, …)`.
    Max,
    /// `sum(iterable[, start])`.
    Sum,
    /// `any(iterable)`.
    Any,
    /// `all(iterable)`.
    All,
    /// `int(x)`.
    Int,
    /// `float(x)`.
    Float,
    /// `str(x)`.
    Str,
    /// `bool(x)`.
    Bool,
}

impl Builtin {
    /// Every safe builtin with its Python name.
    pub const ALL: [(&'static str, Builtin); 11] = [
        ("len", Builtin::Len),
        ("abs", Builtin::Abs),
        ("min", Builtin::Min),
        ("max", Builtin::Max),
        ("sum", Builtin::Sum),
        ("any", Builtin::Any),
        ("all", Builtin::All),
        ("int", Builtin::Int),
        ("float", Builtin::Float),
        ("str", Builtin::Str),
        ("bool", Builtin::Bool),
    ];

    fn named(name: &str) -> Option<Builtin> {
        Builtin::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }

    /// The Python name.
    pub fn name(self) -> &'static str {
        Builtin::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Parses `text` as one Python expression and converts it to the whitelisted tree.
pub(crate) fn compile(text: &str) -> Result<Node, CompileError> {
    if text.chars().count() > MAX_LEN {
        return Err(CompileError::TooLong(MAX_LEN));
    }
    let expr = <Expr as rustpython_parser::Parse>::parse(text, "<expr>").map_err(|e| {
        CompileError::Syntax {
            text: text.to_owned(),
            message: e.to_string(),
        }
    })?;
    convert(&expr, 0)
}

fn boxed(e: &Expr, depth: usize) -> Result<Box<Node>, CompileError> {
    convert(e, depth).map(Box::new)
}

fn all(es: &[Expr], depth: usize) -> Result<Vec<Node>, CompileError> {
    es.iter().map(|e| convert(e, depth)).collect()
}

fn convert(e: &Expr, depth: usize) -> Result<Node, CompileError> {
    if depth > MAX_DEPTH {
        return Err(CompileError::TooDeep(MAX_DEPTH));
    }
    let d = depth + 1;
    Ok(match e {
        Expr::Constant(c) => Node::Const(constant(&c.value)?),
        Expr::Name(n) => Node::Name(n.id.as_str().into()),
        Expr::Subscript(s) => {
            if matches!(*s.slice, Expr::Slice(_)) {
                return Err(CompileError::NotAllowed { node: "Slice" });
            }
            Node::Subscript(boxed(&s.value, d)?, boxed(&s.slice, d)?)
        }
        Expr::BoolOp(b) => match b.op {
            ast::BoolOp::And => Node::And(all(&b.values, d)?),
            ast::BoolOp::Or => Node::Or(all(&b.values, d)?),
        },
        Expr::UnaryOp(u) => {
            let operand = boxed(&u.operand, d)?;
            match u.op {
                ast::UnaryOp::Not => Node::Not(operand),
                ast::UnaryOp::USub => Node::Neg(operand),
                ast::UnaryOp::UAdd => Node::Pos(operand),
                ast::UnaryOp::Invert => return Err(CompileError::NotAllowed { node: "Invert" }),
            }
        }
        Expr::BinOp(b) => {
            let op = match b.op {
                ast::Operator::Add => BinOp::Add,
                ast::Operator::Sub => BinOp::Sub,
                ast::Operator::Mult => BinOp::Mul,
                ast::Operator::Div => BinOp::Div,
                ast::Operator::FloorDiv => BinOp::FloorDiv,
                ast::Operator::Mod => BinOp::Mod,
                ast::Operator::Pow => BinOp::Pow,
                ast::Operator::MatMult => return Err(CompileError::NotAllowed { node: "MatMult" }),
                ast::Operator::LShift => return Err(CompileError::NotAllowed { node: "LShift" }),
                ast::Operator::RShift => return Err(CompileError::NotAllowed { node: "RShift" }),
                ast::Operator::BitOr => return Err(CompileError::NotAllowed { node: "BitOr" }),
                ast::Operator::BitXor => return Err(CompileError::NotAllowed { node: "BitXor" }),
                ast::Operator::BitAnd => return Err(CompileError::NotAllowed { node: "BitAnd" }),
            };
            Node::Bin(op, boxed(&b.left, d)?, boxed(&b.right, d)?)
        }
        Expr::Compare(c) => {
            let mut rest = Vec::with_capacity(c.ops.len());
            for (op, right) in c.ops.iter().zip(&c.comparators) {
                let op = match op {
                    ast::CmpOp::Eq => CmpOp::Eq,
                    ast::CmpOp::NotEq => CmpOp::NotEq,
                    ast::CmpOp::Lt => CmpOp::Lt,
                    ast::CmpOp::LtE => CmpOp::LtE,
                    ast::CmpOp::Gt => CmpOp::Gt,
                    ast::CmpOp::GtE => CmpOp::GtE,
                    ast::CmpOp::In => CmpOp::In,
                    ast::CmpOp::NotIn => CmpOp::NotIn,
                    ast::CmpOp::Is => CmpOp::Is,
                    ast::CmpOp::IsNot => CmpOp::IsNot,
                };
                rest.push((op, convert(right, d)?));
            }
            Node::Compare(boxed(&c.left, d)?, rest)
        }
        Expr::IfExp(i) => Node::IfExp(boxed(&i.test, d)?, boxed(&i.body, d)?, boxed(&i.orelse, d)?),
        Expr::List(l) => Node::List(all(&l.elts, d)?),
        Expr::Tuple(t) => Node::Tuple(all(&t.elts, d)?),
        Expr::Dict(x) => {
            let mut pairs = Vec::with_capacity(x.values.len());
            for (k, v) in x.keys.iter().zip(&x.values) {
                // `{**other}` has no key.
                let Some(k) = k else {
                    return Err(CompileError::NotAllowed { node: "Starred" });
                };
                pairs.push((convert(k, d)?, convert(v, d)?));
            }
            Node::Dict(pairs)
        }
        Expr::Call(c) => {
            let name = match &*c.func {
                Expr::Name(n) => n.id.as_str().to_owned(),
                other => {
                    // What is called is refused first (`s.keys()`: the attribute).
                    convert(other, d)?;
                    "<expression>".to_owned()
                }
            };
            let Some(builtin) = Builtin::named(&name) else {
                return Err(CompileError::Call { name });
            };
            if !c.keywords.is_empty() {
                return Err(CompileError::NotAllowed { node: "keyword" });
            }
            Node::Call(builtin, all(&c.args, d)?)
        }
        other => {
            return Err(CompileError::NotAllowed {
                node: node_name(other),
            });
        }
    })
}

fn constant(c: &Constant) -> Result<Value, CompileError> {
    Ok(match c {
        Constant::None => Value::None,
        Constant::Bool(b) => Value::Bool(*b),
        Constant::Str(s) => Value::str(s.as_str()),
        Constant::Int(i) => Value::Int(i64::try_from(i).map_err(|_| CompileError::BigInt {
            text: i.to_string(),
        })?),
        Constant::Float(f) => Value::Float(*f),
        Constant::Tuple(items) => Value::Tuple(Arc::new(
            items.iter().map(constant).collect::<Result<_, _>>()?,
        )),
        Constant::Bytes(_) => return Err(CompileError::NotAllowed { node: "Bytes" }),
        Constant::Complex { .. } => return Err(CompileError::NotAllowed { node: "Complex" }),
        Constant::Ellipsis => return Err(CompileError::NotAllowed { node: "Ellipsis" }),
    })
}

/// The Python AST name of a node outside the whitelist.
fn node_name(e: &Expr) -> &'static str {
    match e {
        Expr::NamedExpr(_) => "NamedExpr",
        Expr::Lambda(_) => "Lambda",
        Expr::Set(_) => "Set",
        Expr::ListComp(_) => "ListComp",
        Expr::SetComp(_) => "SetComp",
        Expr::DictComp(_) => "DictComp",
        Expr::GeneratorExp(_) => "GeneratorExp",
        Expr::Await(_) => "Await",
        Expr::Yield(_) => "Yield",
        Expr::YieldFrom(_) => "YieldFrom",
        Expr::FormattedValue(_) | Expr::JoinedStr(_) => "JoinedStr",
        Expr::Attribute(_) => "Attribute",
        Expr::Starred(_) => "Starred",
        Expr::Slice(_) => "Slice",
        _ => "Unknown",
    }
}
