//! Why an expression was refused (when saved) or failed (when evaluated).

/// An expression that is refused before it is ever evaluated: it does not parse, or it
/// uses something outside the whitelist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// Not Python expression syntax; the parser's message.
    #[error("Syntax error in '{text}': {message}")]
    Syntax {
        /// The expression as written.
        text: String,
        /// What the parser said, with the byte offset.
        message: String,
    },
    /// A node kind outside the whitelist (evalidate's text).
    #[error("Operation type {node} is not allowed")]
    NotAllowed {
        /// The Python AST name of the node (`Attribute`, `Lambda`, …).
        node: &'static str,
    },
    /// A call of anything but one of the safe builtins.
    #[error("Call to function {name}() is not allowed")]
    Call {
        /// What was called, as written (`open`, or `<expression>`).
        name: String,
    },
    /// An integer constant beyond 64 bits.
    #[error("Integer constant {text} is too large")]
    BigInt {
        /// The constant.
        text: String,
    },
    /// Nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("Expression is nested too deeply (more than {0} levels)")]
    TooDeep(usize),
    /// Longer than [`MAX_LEN`](crate::MAX_LEN).
    #[error("Expression is too long (more than {0} characters)")]
    TooLong(usize),
    /// `init` names something that cannot be created (only `name` and `name[key]…`).
    #[error("Cannot initialize '{0}': only a name or a subscript of one with constant keys")]
    BadInit(String),
}

/// An evaluation that failed, worded as Python's exception (`KeyError: 'x'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A name the context does not have.
    #[error("NameError: name '{0}' is not defined")]
    Name(String),
    /// A missing key; the key's repr.
    #[error("KeyError: {0}")]
    Key(String),
    /// An index out of range.
    #[error("IndexError: {0} index out of range")]
    Index(&'static str),
    /// Values of the wrong type.
    #[error("TypeError: {0}")]
    Type(String),
    /// A value of the right type that cannot be used (`int('x')`).
    #[error("ValueError: {0}")]
    Value(String),
    /// Division or modulo by zero.
    #[error("ZeroDivisionError: {0}")]
    ZeroDivision(&'static str),
    /// An integer beyond 64 bits (Python would grow it; this evaluator stops).
    #[error("OverflowError: integer overflow")]
    Overflow,
    /// More steps, or a bigger value, than the bounds allow.
    #[error("Evaluation limit exceeded: {0}")]
    Limit(&'static str),
}
