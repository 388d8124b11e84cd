//! Check methods of pushed indicators and their evaluation (spec §2.4, §6.1–§6.3).
//!
//! okerr keeps method arguments as a bag of strings and finds bad values when it evaluates
//! them. Here the arguments are typed: a bad value is refused when the method is set, with
//! okerr's own text, so an indicator can never hold a limit it cannot read.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::active::{ActiveArgs, ActiveMethod};
use crate::duration::Interval;
use crate::indicator::Status;
use crate::name::Secret;
use crate::pyfmt::{fixed2, float_repr, parse_float, shortstr};

/// The codenames of okerr's active checks (crate `okerr-checks` runs them through the
/// engine's [`Sensor`](crate::Sensor); [`MethodKind::Active`] holds their arguments).
/// Users make them ([`CheckMethod::with_defaults_allowing`]); a method line of `/update`
/// naming one is refused with `Method '{c}' is disabled`.
pub const ACTIVE_METHODS: [&str; 10] = [
    "sslcert",
    "ping",
    "tcpport",
    "sha1static",
    "sha1dynamic",
    "httpstatus",
    "httpgrep",
    "whois",
    "dns",
    "dnsbl",
];

/// How an indicator's pushed values are judged, with the arguments every passive method
/// shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckMethod {
    /// Overrides the policy's patience when set.
    pub patience: Option<Interval>,
    /// Overrides the policy's secret when set.
    pub secret: Option<Secret>,
    /// The method and its own arguments.
    pub kind: MethodKind,
}

/// The three passive methods (spec §6.1–§6.3), `logic` (§6.4), which the server
/// evaluates itself, and the active ones the server probes (§6.5, crate `okerr-checks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "codename", rename_all = "lowercase")]
pub enum MethodKind {
    /// `OK` or `ERR` as pushed.
    Heartbeat,
    /// A number checked against limits.
    Numerical(NumericalArgs),
    /// A text compared with the stored one.
    String(StringArgs),
    /// An expression over the project's indicators, evaluated by the server
    /// (`crate::logic`).
    Logic(LogicArgs),
    /// An active check with its arguments, run by the engine's sensor every period
    /// (`crate::sensor`). Made by [`CheckMethod::active`] and
    /// [`CheckMethod::with_defaults_allowing`]; a method line of `/update` naming one is
    /// refused (`Method '{c}' is disabled`). Pushed values are refused
    /// (`ERROR:BAD_METHOD`).
    Active(ActiveArgs),
}

/// Arguments of the `logic` method, as written; [`CheckMethod::set_arg`] accepts only
/// values that compile (`okerr_logic::Logic::compile`), so a stored expression always
/// parses and stays inside the whitelist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicArgs {
    /// The Python expression: truthy is OK, falsy ERR.
    pub expr: String,
    /// Comma-separated expressions whose values become the details.
    pub dump: String,
    /// Names or subscripts created as 0 before evaluation when missing.
    pub init: String,
}

impl Default for LogicArgs {
    fn default() -> Self {
        LogicArgs {
            expr: "True".to_owned(),
            dump: String::new(),
            init: String::new(),
        }
    }
}

impl LogicArgs {
    /// The three arguments compiled.
    ///
    /// # Errors
    /// The argument that does not compile (never for stored arguments, which were
    /// compiled when set).
    pub fn compile(&self) -> Result<okerr_logic::Logic, okerr_logic::ArgError> {
        okerr_logic::Logic::compile(&self.expr, &self.dump, &self.init)
    }
}

/// Arguments of the `numerical` method.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NumericalArgs {
    /// The last value received (good or bad).
    #[serde(with = "float_json")]
    pub current: Option<f64>,
    /// ERR when the value is below.
    pub minlim: Option<Limit>,
    /// ERR when the value is above.
    pub maxlim: Option<Limit>,
    /// ERR when the change from `current` is below.
    pub diffmin: Option<DiffLimit>,
    /// ERR when the change from `current` is above.
    pub diffmax: Option<DiffLimit>,
}

/// An optional float in JSON: a number, or okerr's text (`inf`, `-inf`, `nan`) for what
/// JSON has no number for (serde_json writes those as `null`, which reads back as no value:
/// a learned `inf` was lost; found by the `method_line` fuzz target).
mod float_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) if x.is_finite() => s.serialize_some(x),
            Some(x) => s.serialize_some(&crate::pyfmt::float_repr(*x)),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<Repr>::deserialize(d)? {
            None => Ok(None),
            Some(Repr::Number(x)) => Ok(Some(x)),
            Some(Repr::Text(t)) => crate::pyfmt::parse_float(&t)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a float: {t:?}"))),
        }
    }
}

/// Arguments of the `string` method.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StringArgs {
    /// The expected (or last learned) text.
    pub str: String,
    /// The method's flags.
    pub options: StringOptions,
}

/// Flags of the `string` method, written shell-style in okerr's `options` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StringOptions {
    /// Learn the first value when `str` is empty.
    pub reinit: bool,
    /// A changed value is OK; the change is reported and learned.
    pub dynamic: bool,
    /// An empty value is OK.
    pub empty_ok: bool,
    /// An empty value is ERR.
    pub empty_err: bool,
    /// Diffs split by lines instead of words.
    pub text: bool,
}

impl StringOptions {
    fn parse(s: &str) -> Result<Self, MethodError> {
        let words = shlex::split(s).ok_or_else(|| MethodError::BadArgument {
            text: format!("Bad options value '{s}'"),
        })?;
        let mut o = StringOptions::default();
        for w in words {
            match w.as_str() {
                "reinit" => o.reinit = true,
                "dynamic" => o.dynamic = true,
                "empty_ok" => o.empty_ok = true,
                "empty_err" => o.empty_err = true,
                "text" => o.text = true,
                other => {
                    return Err(MethodError::BadArgument {
                        text: format!("Unknown option '{other}' for method string"),
                    });
                }
            }
        }
        Ok(o)
    }
}

/// The flags in the order okerr's documentation and clients write them
/// (`reinit dynamic`), so that `api/filter options=…` finds what was sent.
impl fmt::Display for StringOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = [
            (self.reinit, "reinit"),
            (self.dynamic, "dynamic"),
            (self.text, "text"),
            (self.empty_ok, "empty_ok"),
            (self.empty_err, "empty_err"),
        ];
        let on: Vec<&str> = flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&on.join(" "))
    }
}

/// A limit: a float with an optional binary suffix `K`, `M` or `G` (×1024, ×1024², ×1024³).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Limit {
    value: f64,
    text: String,
}

impl Limit {
    /// Parses a limit as okerr does (`90`, `1.5G`, `10k`).
    ///
    /// `None` when the text is not a number with an optional suffix.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
            Some('K') => (&t[..t.len() - 1], 1024.0),
            Some('M') => (&t[..t.len() - 1], 1024.0 * 1024.0),
            Some('G') => (&t[..t.len() - 1], 1024.0 * 1024.0 * 1024.0),
            _ => (t, 1.0),
        };
        let value = parse_float(num)? * mult;
        Some(Limit {
            value,
            text: s.to_owned(),
        })
    }

    /// The limit's value.
    pub fn value(&self) -> f64 {
        self.value
    }
}

impl TryFrom<String> for Limit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Limit::parse(&s).ok_or_else(|| format!("bad limit '{s}'"))
    }
}

impl From<Limit> for String {
    fn from(l: Limit) -> String {
        l.text
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A limit on the change between two values: absolute (with K/M/G) or in percent (`5%`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DiffLimit {
    /// `value − current` is compared.
    Absolute(Limit),
    /// `(value − current)·100 / current` is compared.
    Percent {
        /// The percentage.
        value: f64,
        /// As written.
        text: String,
    },
}

impl DiffLimit {
    /// Parses a diff limit.
    ///
    /// `None` when the text is neither a limit nor a float followed by `%`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().strip_suffix('%') {
            Some(p) => Some(DiffLimit::Percent {
                value: parse_float(p)?,
                text: s.to_owned(),
            }),
            None => Limit::parse(s).map(DiffLimit::Absolute),
        }
    }
}

impl TryFrom<String> for DiffLimit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DiffLimit::parse(&s).ok_or_else(|| format!("bad limit '{s}'"))
    }
}

impl From<DiffLimit> for String {
    fn from(l: DiffLimit) -> String {
        l.to_string()
    }
}

impl fmt::Display for DiffLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiffLimit::Absolute(l) => l.fmt(f),
            DiffLimit::Percent { text, .. } => f.write_str(text),
        }
    }
}

/// Why a method could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    /// The `method` field is not `codename|arg=value|…`.
    #[error("bad cm line'{line}'")]
    BadLine {
        /// The line as sent.
        line: String,
    },
    /// No method has this codename.
    #[error("Unknown checkname with codename '{codename}'")]
    Unknown {
        /// The codename as sent.
        codename: String,
    },
    /// An okerr method this path does not create: an active check named in a method
    /// line of `/update` (okerr's text).
    #[error("Method '{codename}' is disabled")]
    Disabled {
        /// The codename as sent.
        codename: String,
    },
    /// An active check, on a server that runs none (its engine has no sensor).
    #[error("Method '{codename}' is disabled: this server runs no active checks")]
    NoActiveChecks {
        /// The codename as sent.
        codename: String,
    },
    /// An argument value that cannot be used, with okerr's text where okerr has one.
    #[error("{text}")]
    BadArgument {
        /// The message.
        text: String,
    },
}

impl CheckMethod {
    /// A heartbeat with no own patience or secret.
    pub fn heartbeat() -> Self {
        CheckMethod {
            patience: None,
            secret: None,
            kind: MethodKind::Heartbeat,
        }
    }

    /// An active method with every argument at its default (no patience or secret of its
    /// own: okerr's active methods have none).
    pub fn active(method: ActiveMethod) -> Self {
        CheckMethod {
            patience: None,
            secret: None,
            kind: MethodKind::Active(ActiveArgs::defaults(method)),
        }
    }

    /// The method's okerr codename.
    pub fn codename(&self) -> &'static str {
        match &self.kind {
            MethodKind::Heartbeat => "heartbeat",
            MethodKind::Numerical(_) => "numerical",
            MethodKind::String(_) => "string",
            MethodKind::Logic(_) => "logic",
            MethodKind::Active(a) => a.method().codename(),
        }
    }

    /// Whether the indicator follows the passive rules: results come from outside and it
    /// expires without them (heartbeat, numerical, string). `false` for `logic` and the
    /// active checks, which the server runs itself: rescheduled every period, never dead,
    /// refused on `/update`.
    pub fn is_passive(&self) -> bool {
        !matches!(self.kind, MethodKind::Logic(_) | MethodKind::Active(_))
    }

    /// Whether it is `logic`, evaluated by the server over its project (`crate::logic`).
    pub fn is_logic(&self) -> bool {
        matches!(self.kind, MethodKind::Logic(_))
    }

    /// Whether it is an active check the server's sensor runs (`crate::sensor`).
    pub fn is_active(&self) -> bool {
        matches!(self.kind, MethodKind::Active(_))
    }

    /// Parses okerr's method line, `codename|arg=value|…` (spec §5.3 step 6.7), and returns
    /// the method with every other argument at its default, plus the arguments taken from
    /// the line (for the `Create arg` log lines). Arguments the method does not have are
    /// ignored, as in okerr.
    ///
    /// # Errors
    /// `BadLine` for an element without exactly one `=`, `Unknown`/`Disabled` for a codename
    /// this server does not run, `BadArgument` for a value that cannot be used.
    pub fn parse_line(line: &str) -> Result<(Self, Vec<(String, String)>), MethodError> {
        let mut parts = line.split('|');
        let codename = parts.next().unwrap_or_default();
        let mut args = Vec::new();
        for part in parts.filter(|p| !p.is_empty()) {
            let mut kv = part.split('=');
            match (kv.next(), kv.next(), kv.next()) {
                (Some(k), Some(v), None) => args.push((k.trim().to_owned(), v.trim().to_owned())),
                _ => {
                    return Err(MethodError::BadLine {
                        line: line.to_owned(),
                    });
                }
            }
        }
        let mut method = CheckMethod::with_defaults(codename)?;
        let mut applied = Vec::new();
        for (k, v) in args {
            if method.set_arg(&k, &v)? {
                applied.push((k, v));
            }
        }
        Ok((method, applied))
    }

    /// The method of this codename with every argument at its default; an active one
    /// when `active_checks` (the engine has a sensor to run it).
    ///
    /// # Errors
    /// `Unknown` for a codename okerr does not have, `NoActiveChecks` for an active one
    /// without `active_checks`.
    pub fn with_defaults_allowing(
        codename: &str,
        active_checks: bool,
    ) -> Result<Self, MethodError> {
        match ActiveMethod::from_codename(codename) {
            Some(m) if active_checks => Ok(CheckMethod::active(m)),
            Some(_) => Err(MethodError::NoActiveChecks {
                codename: codename.to_owned(),
            }),
            None => CheckMethod::with_defaults(codename),
        }
    }

    /// The method of this codename with every argument at its default, as a method line
    /// names it: the passive methods and `logic` (an update needs only a textid, so it
    /// never makes the server probe a host of the sender's choosing).
    ///
    /// # Errors
    /// `Unknown` or `Disabled` for a codename this server does not make this way.
    pub fn with_defaults(codename: &str) -> Result<Self, MethodError> {
        let kind = match codename {
            "heartbeat" => MethodKind::Heartbeat,
            "numerical" => MethodKind::Numerical(NumericalArgs::default()),
            "string" => MethodKind::String(StringArgs::default()),
            "logic" => MethodKind::Logic(LogicArgs::default()),
            c if ACTIVE_METHODS.contains(&c) => {
                return Err(MethodError::Disabled {
                    codename: c.to_owned(),
                });
            }
            c => {
                return Err(MethodError::Unknown {
                    codename: c.to_owned(),
                });
            }
        };
        Ok(CheckMethod {
            patience: None,
            secret: None,
            kind,
        })
    }

    /// Sets one argument from its okerr text form. Returns `false` (and changes nothing)
    /// when the method has no such argument. Like okerr, `\r\n` becomes `\n` and the value
    /// is stripped of surrounding `\r\n\t ` characters.
    ///
    /// # Errors
    /// `BadArgument` when the value cannot be used; nothing is changed then.
    pub fn set_arg(&mut self, name: &str, value: &str) -> Result<bool, MethodError> {
        let value = value.replace("\r\n", "\n");
        let value = value.trim_matches(['\r', '\n', '\t', ' ']);
        let float_err = |name: &str| MethodError::BadArgument {
            text: format!("Bad {name} value '{value}', cannot convert to float"),
        };
        match (name, &mut self.kind) {
            ("expr" | "dump" | "init", MethodKind::Logic(a)) => {
                let mut next = a.clone();
                let slot = match name {
                    "expr" => &mut next.expr,
                    "dump" => &mut next.dump,
                    _ => &mut next.init,
                };
                value.clone_into(slot);
                next.compile().map_err(|e| MethodError::BadArgument {
                    text: e.to_string(),
                })?;
                *a = next;
            }
            // okerr's logic method has only expr, dump and init.
            ("patience" | "secret", MethodKind::Logic(_)) => return Ok(false),
            // An active method has only its own arguments (no patience, no secret).
            (_, MethodKind::Active(a)) => return a.set(name, value),
            ("patience", _) => {
                self.patience = if value.is_empty() {
                    None
                } else {
                    Some(
                        Interval::parse(value).map_err(|e| MethodError::BadArgument {
                            text: e.to_string(),
                        })?,
                    )
                };
            }
            ("secret", _) => {
                self.secret = if value.is_empty() {
                    None
                } else {
                    Some(Secret::parse(value).map_err(|e| MethodError::BadArgument {
                        text: e.to_string(),
                    })?)
                };
            }
            ("current", MethodKind::Numerical(a)) => {
                a.current = if value.is_empty() {
                    None
                } else {
                    Some(parse_float(value).ok_or_else(|| float_err(name))?)
                };
            }
            ("minlim" | "maxlim", MethodKind::Numerical(a)) => {
                let limit = if value.is_empty() {
                    None
                } else {
                    Some(Limit::parse(value).ok_or_else(|| float_err(name))?)
                };
                if name == "minlim" {
                    a.minlim = limit;
                } else {
                    a.maxlim = limit;
                }
            }
            ("diffmin" | "diffmax", MethodKind::Numerical(a)) => {
                let limit = if value.is_empty() {
                    None
                } else {
                    Some(DiffLimit::parse(value).ok_or_else(|| float_err(name))?)
                };
                if name == "diffmin" {
                    a.diffmin = limit;
                } else {
                    a.diffmax = limit;
                }
            }
            ("str", MethodKind::String(a)) => a.str = value.to_owned(),
            ("options", MethodKind::String(a)) => a.options = StringOptions::parse(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Every argument of the method as okerr shows it: all values are strings, unset
    /// ones empty.
    pub fn args(&self) -> BTreeMap<&'static str, String> {
        let mut m = BTreeMap::new();
        if let MethodKind::Logic(a) = &self.kind {
            m.insert("expr", a.expr.clone());
            m.insert("dump", a.dump.clone());
            m.insert("init", a.init.clone());
            return m;
        }
        if let MethodKind::Active(a) = &self.kind {
            for arg in a.method().info().args {
                m.insert(arg.name, a.get(arg.name).to_owned());
            }
            return m;
        }
        m.insert(
            "patience",
            self.patience
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
        );
        m.insert(
            "secret",
            self.secret
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
        );
        let text = |o: Option<String>| o.unwrap_or_default();
        match &self.kind {
            MethodKind::Heartbeat => {}
            MethodKind::Numerical(a) => {
                m.insert("current", text(a.current.map(float_repr)));
                m.insert("minlim", text(a.minlim.as_ref().map(Limit::to_string)));
                m.insert("maxlim", text(a.maxlim.as_ref().map(Limit::to_string)));
                m.insert(
                    "diffmin",
                    text(a.diffmin.as_ref().map(DiffLimit::to_string)),
                );
                m.insert(
                    "diffmax",
                    text(a.diffmax.as_ref().map(DiffLimit::to_string)),
                );
            }
            MethodKind::String(a) => {
                m.insert("str", a.str.clone());
                m.insert("options", a.options.to_string());
            }
            MethodKind::Logic(_) => {}
            MethodKind::Active(_) => {}
        }
        m
    }

    /// Judges a pushed value (spec §6). `status` is the indicator's current status and
    /// `details` the details sent with the value (empty when none). Arguments the method
    /// learns (`current`, `str`) are updated in place.
    pub(crate) fn evaluate(&mut self, status: Status, value: &str, details: &str) -> Evaluation {
        match &mut self.kind {
            MethodKind::Heartbeat => match value.to_uppercase().as_str() {
                "OK" => Evaluation::result(Status::Ok, details),
                "ERR" => Evaluation::result(Status::Err, details),
                _ => Evaluation::default(),
            },
            MethodKind::Numerical(a) => a.evaluate(value, details),
            MethodKind::String(a) => a.evaluate(status, value, details),
            // Not pushed: the update path refuses it before (`ERROR:BAD_METHOD`).
            MethodKind::Logic(_) => Evaluation::default(),
            // The server probes it; a pushed value is not a result.
            MethodKind::Active(_) => Evaluation::default(),
        }
    }
}

/// An alert raised by an evaluation, with its reduction keys (spec §8.3): the alert's own
/// key, and the key of the opposite alert that it cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlertSpec {
    pub(crate) message: String,
    pub(crate) keys: Option<(String, String)>,
}

/// What an evaluation decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Evaluation {
    /// The result to register, `None` when the value is ignored.
    pub(crate) result: Option<(Status, String)>,
    /// Indicator log lines written before the result.
    pub(crate) log: Vec<String>,
    /// Informational alerts raised before the result.
    pub(crate) alerts: Vec<AlertSpec>,
    /// The string method's `empty_ok` switch to OK by okerr's legacy route: an alert
    /// without the age part, and no webhook.
    pub(crate) legacy_ok: bool,
}

impl Evaluation {
    fn result(status: Status, details: &str) -> Self {
        Evaluation {
            result: Some((status, details.to_owned())),
            ..Evaluation::default()
        }
    }
}

impl NumericalArgs {
    fn evaluate(&mut self, raw: &str, details: &str) -> Evaluation {
        let Some(v) = parse_float(raw) else {
            return Evaluation {
                log: vec![format!(
                    "no update: status '{}' is not numerical.",
                    crate::pyfmt::bytes_repr(raw)
                )],
                ..Evaluation::default()
            };
        };
        let mut details = details.to_owned();
        let failure = self.first_failure(v);
        self.current = Some(v);
        if let Some(text) = failure {
            details.push_str(&text);
            return Evaluation::result(Status::Err, &details);
        }
        if details.is_empty() {
            details = float_repr(v);
        }
        Evaluation {
            log: vec![format!("OK update {}", float_repr(v))],
            ..Evaluation::result(Status::Ok, &details)
        }
    }

    /// The details suffix of the first failing check, in okerr's order.
    fn first_failure(&self, v: f64) -> Option<String> {
        let f = float_repr;
        if let Some(min) = &self.minlim
            && v < min.value()
        {
            return Some(format!(" | {} < {} (minlim)", f(v), f(min.value())));
        }
        if let Some(max) = &self.maxlim
            && v > max.value()
        {
            return Some(format!(" | {} > {} (maxlim)", f(v), f(max.value())));
        }
        let current = self.current?;
        let d = v - current;
        let devp = if current == 0.0 {
            0.0
        } else {
            d * 100.0 / current
        };
        let checks = [
            (&self.diffmax, ">", "diffmax"),
            (&self.diffmin, "<", "diffmin"),
        ];
        for (limit, op, name) in checks {
            let fails = |x: f64, lim: f64| if op == ">" { x > lim } else { x < lim };
            match limit {
                Some(DiffLimit::Percent { value: lim, .. }) if fails(devp, *lim) => {
                    return Some(format!(
                        " | {}% {op} {}% ({name})",
                        fixed2(devp),
                        fixed2(*lim)
                    ));
                }
                Some(DiffLimit::Absolute(lim)) if fails(d, lim.value()) => {
                    return Some(format!(" | {} {op} {} ({name})", f(d), f(lim.value())));
                }
                _ => {}
            }
        }
        None
    }
}

impl StringArgs {
    fn evaluate(&mut self, status: Status, v: &str, details: &str) -> Evaluation {
        let o = self.options;
        let d = if details.is_empty() { v } else { details };
        if v == self.str {
            return Evaluation::result(Status::Ok, d);
        }
        if o.reinit && self.str.is_empty() {
            self.str = v.to_owned();
            return Evaluation {
                alerts: vec![AlertSpec {
                    message: format!("initialize: {}", shortstr(v, 40)),
                    keys: None,
                }],
                ..Evaluation::result(Status::Ok, d)
            };
        }
        if o.empty_err && v.is_empty() {
            let d = if details.is_empty() {
                "Error, because empty value"
            } else {
                details
            };
            return Evaluation::result(Status::Err, d);
        }
        if o.empty_ok && v.is_empty() {
            return Evaluation {
                legacy_ok: status == Status::Err,
                ..Evaluation::result(Status::Ok, d)
            };
        }
        let diff = token_diff(&self.str, v, o.text);
        if o.dynamic {
            let (log, alert) = match &diff {
                Some(diff) => (diff.clone(), diff.clone()),
                None => (
                    format!(
                        "Change: old: {} new: {}",
                        shortstr(&json_dumps(&self.str), 40),
                        shortstr(&json_dumps(v), 40)
                    ),
                    format!("Change: old: {} new: {}", self.str, v),
                ),
            };
            let keys = Some((self.str.clone(), v.to_owned()));
            self.str = v.to_owned();
            return Evaluation {
                log: vec![log],
                alerts: vec![AlertSpec {
                    message: alert,
                    keys,
                }],
                ..Evaluation::result(Status::Ok, d)
            };
        }
        let text = diff.unwrap_or_else(|| {
            format!(
                "Mismatch: str: {} new: {}",
                shortstr(&json_dumps(&self.str), 40),
                shortstr(&json_dumps(v), 40)
            )
        });
        let alerts = if status == Status::Ok {
            vec![AlertSpec {
                message: text.clone(),
                keys: None,
            }]
        } else {
            Vec::new()
        };
        Evaluation {
            log: vec![text],
            alerts,
            ..Evaluation::result(Status::Err, d)
        }
    }
}

/// okerr's token diff of two texts: `Change: +added … -removed … `, split by whichever of
/// space, `,`, `:`, `|` (or newline for `text`) gives the fewest changed tokens without
/// repeating a token on either side; a separator in neither text is not tried. `None`
/// when no separator works or nothing changed.
fn token_diff(old: &str, new: &str, text: bool) -> Option<String> {
    let seps: &[char] = if text { &['\n'] } else { &[' ', ',', ':', '|'] };
    let mut best: Option<(usize, Vec<&str>, Vec<&str>)> = None;
    for &sep in seps.iter().filter(|&&c| old.contains(c) || new.contains(c)) {
        let a: Vec<&str> = old.split(sep).collect();
        let b: Vec<&str> = new.split(sep).collect();
        if has_duplicates(&a) || has_duplicates(&b) {
            continue;
        }
        let added: Vec<&str> = b.iter().copied().filter(|t| !a.contains(t)).collect();
        let removed: Vec<&str> = a.iter().copied().filter(|t| !b.contains(t)).collect();
        let score = added.len() + removed.len();
        if score > 0 && best.as_ref().is_none_or(|(s, _, _)| score < *s) {
            best = Some((score, added, removed));
        }
    }
    let (_, added, removed) = best?;
    let mut out = String::from("Change: ");
    for t in added {
        out.push_str(&format!("+{t} "));
    }
    for t in removed {
        out.push_str(&format!("-{t} "));
    }
    Some(out)
}

fn has_duplicates(tokens: &[&str]) -> bool {
    let mut seen = std::collections::HashSet::new();
    !tokens.iter().all(|t| seen.insert(*t))
}

/// Python's `json.dumps` of a string (ASCII only, non-ASCII as `\uXXXX`).
fn json_dumps(s: &str) -> String {
    let json = serde_json::Value::String(s.to_owned()).to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A learned value survives the stores' JSON exactly: serde_json's default float
    /// parsing can be one unit in the last place off (found by the `method_line` fuzz
    /// target), so the workspace enables its `float_roundtrip`.
    #[test]
    fn learned_values_survive_json_exactly() {
        let (m, _) = CheckMethod::parse_line("numerical|current=001000000375737276.5")
            .expect("a valid line");
        let json = serde_json::to_string(&m).expect("a method serializes");
        let back: CheckMethod = serde_json::from_str(&json).expect("and reads back");
        assert_eq!(back.args()["current"], "1000000375737276.5");
        assert_eq!(back.args(), m.args());
        // JSON has no infinity: kept as okerr's text, not lost as null.
        for (line, shown) in [
            ("numerical|current=003800E0037573727615", "inf"),
            ("numerical|current=-1e999", "-inf"),
            ("numerical|current=nan", "nan"),
        ] {
            let (m, _) = CheckMethod::parse_line(line).expect("a valid line");
            assert_eq!(m.args()["current"], shown);
            let json = serde_json::to_string(&m).expect("a method serializes");
            let back: CheckMethod = serde_json::from_str(&json).expect("and reads back");
            assert_eq!(back.args()["current"], shown, "{json}");
        }
    }

    fn numerical(line: &str) -> CheckMethod {
        CheckMethod::parse_line(line).expect("valid line").0
    }

    fn eval(m: &mut CheckMethod, value: &str, details: &str) -> Evaluation {
        m.evaluate(Status::Ok, value, details)
    }

    #[test]
    fn method_lines() {
        let (m, applied) =
            CheckMethod::parse_line("numerical|maxlim=90| minlim = 1K ").expect("ok");
        assert_eq!(m.codename(), "numerical");
        assert_eq!(
            applied,
            vec![
                ("maxlim".into(), "90".into()),
                ("minlim".into(), "1K".into())
            ]
        );
        assert_eq!(m.args()["minlim"], "1K");
        let (m, _) = CheckMethod::parse_line("heartbeat|secret=abc|nosuch=1").expect("ok");
        assert!(m.secret.as_ref().is_some_and(|s| s.matches("abc")));
        let cases = [
            ("numerical|maxlim", "bad cm line'numerical|maxlim'"),
            ("numerical|a=b=c", "bad cm line'numerical|a=b=c'"),
            ("foo", "Unknown checkname with codename 'foo'"),
            ("sslcert|host=x", "Method 'sslcert' is disabled"),
            (
                "logic|expr=s.keys()",
                "Bad expr: Operation type Attribute is not allowed",
            ),
            (
                "numerical|maxlim=abc",
                "Bad maxlim value 'abc', cannot convert to float",
            ),
            (
                "numerical|diffmin=x%",
                "Bad diffmin value 'x%', cannot convert to float",
            ),
            (
                "heartbeat|patience=1d2",
                "Cannot parse '1d2'. Valid examples are: 10s, 5m, 2h",
            ),
            (
                "string|options=fast",
                "Unknown option 'fast' for method string",
            ),
        ];
        for (line, text) in cases {
            let err = CheckMethod::parse_line(line).expect_err(line);
            assert_eq!(err.to_string(), text, "{line}");
        }
        assert!(CheckMethod::parse_line("numerical||maxlim=1|").is_ok());
    }

    #[test]
    fn heartbeat_rules() {
        let mut m = CheckMethod::heartbeat();
        assert_eq!(
            eval(&mut m, "ok", "d").result,
            Some((Status::Ok, "d".into()))
        );
        assert_eq!(
            eval(&mut m, "Err", "").result,
            Some((Status::Err, String::new()))
        );
        assert_eq!(eval(&mut m, "WARN", "x"), Evaluation::default());
        assert_eq!(eval(&mut m, "OK ", "x"), Evaluation::default());
    }

    /// Every rule of spec §6.2 with okerr's exact texts.
    #[test]
    fn numerical_rules() {
        struct Case {
            line: &'static str,
            current: Option<f64>,
            value: &'static str,
            details: &'static str,
            status: Status,
            text: &'static str,
        }
        use Status::{Err, Ok};
        let cases = [
            Case {
                line: "numerical",
                current: None,
                value: "22",
                details: "",
                status: Ok,
                text: "22.0",
            },
            Case {
                line: "numerical",
                current: None,
                value: " 1e16 ",
                details: "",
                status: Ok,
                text: "1e+16",
            },
            Case {
                line: "numerical",
                current: None,
                value: "5",
                details: "load",
                status: Ok,
                text: "load",
            },
            Case {
                line: "numerical|minlim=10",
                current: None,
                value: "5",
                details: "",
                status: Err,
                text: " | 5.0 < 10.0 (minlim)",
            },
            Case {
                line: "numerical|maxlim=90",
                current: None,
                value: "99",
                details: "disk",
                status: Err,
                text: "disk | 99.0 > 90.0 (maxlim)",
            },
            Case {
                line: "numerical|maxlim=1K",
                current: None,
                value: "1025",
                details: "",
                status: Err,
                text: " | 1025.0 > 1024.0 (maxlim)",
            },
            Case {
                line: "numerical|maxlim=1m",
                current: None,
                value: "1048576",
                details: "",
                status: Ok,
                text: "1048576.0",
            },
            Case {
                line: "numerical|maxlim=1G",
                current: None,
                value: "2e9",
                details: "",
                status: Err,
                text: " | 2000000000.0 > 1073741824.0 (maxlim)",
            },
            Case {
                line: "numerical|minlim=1|maxlim=2",
                current: None,
                value: "0",
                details: "",
                status: Err,
                text: " | 0.0 < 1.0 (minlim)",
            },
            Case {
                line: "numerical|diffmax=10",
                current: Some(100.0),
                value: "111",
                details: "",
                status: Err,
                text: " | 11.0 > 10.0 (diffmax)",
            },
            Case {
                line: "numerical|diffmax=10",
                current: None,
                value: "111",
                details: "",
                status: Ok,
                text: "111.0",
            },
            Case {
                line: "numerical|diffmax=10%",
                current: Some(100.0),
                value: "111",
                details: "",
                status: Err,
                text: " | 11.00% > 10.00% (diffmax)",
            },
            Case {
                line: "numerical|diffmin=0",
                current: Some(500.0),
                value: "20",
                details: "",
                status: Err,
                text: " | -480.0 < 0.0 (diffmin)",
            },
            Case {
                line: "numerical|diffmin=0",
                current: Some(500.0),
                value: "501",
                details: "",
                status: Ok,
                text: "501.0",
            },
            Case {
                line: "numerical|diffmin=-10%",
                current: Some(200.0),
                value: "100",
                details: "",
                status: Err,
                text: " | -50.00% < -10.00% (diffmin)",
            },
            Case {
                line: "numerical|diffmin=-10%",
                current: Some(0.0),
                value: "100",
                details: "",
                status: Ok,
                text: "100.0",
            },
            Case {
                line: "numerical|diffmax=1|diffmin=5",
                current: Some(10.0),
                value: "13",
                details: "",
                status: Err,
                text: " | 3.0 > 1.0 (diffmax)",
            },
            Case {
                line: "numerical|maxlim=5|diffmax=1",
                current: Some(1.0),
                value: "9",
                details: "",
                status: Err,
                text: " | 9.0 > 5.0 (maxlim)",
            },
        ];
        for c in cases {
            let mut m = numerical(c.line);
            if let MethodKind::Numerical(a) = &mut m.kind {
                a.current = c.current;
            }
            let e = eval(&mut m, c.value, c.details);
            assert_eq!(
                e.result,
                Some((c.status, c.text.to_owned())),
                "{} {}",
                c.line,
                c.value
            );
            let MethodKind::Numerical(a) = &m.kind else {
                unreachable!()
            };
            assert_eq!(a.current, parse_float(c.value), "current is the last value");
        }
    }

    #[test]
    fn numerical_not_a_number_logs_only() {
        let mut m = numerical("numerical|maxlim=1");
        let e = eval(&mut m, "12 apples", "");
        assert_eq!(e.result, None);
        assert_eq!(
            e.log,
            vec!["no update: status 'b'12 apples'' is not numerical."]
        );
        let e = eval(&mut m, "ok", "");
        assert_eq!(e.log, vec!["no update: status 'b'ok'' is not numerical."]);
        let ok = eval(&mut m, "0.5", "");
        assert_eq!(ok.log, vec!["OK update 0.5"]);
    }

    fn string(options: &str, str: &str) -> CheckMethod {
        let mut m = CheckMethod::with_defaults("string").expect("string");
        m.set_arg("options", options).expect("options");
        m.set_arg("str", str).expect("str");
        m
    }

    fn stored(m: &CheckMethod) -> String {
        m.args()["str"].clone()
    }

    /// Every rule of spec §6.3 with okerr's exact texts.
    #[test]
    fn string_rules() {
        // 1. equal
        let mut m = string("", "v1");
        let e = eval(&mut m, "v1", "");
        assert_eq!(e.result, Some((Status::Ok, "v1".into())));
        assert!(e.alerts.is_empty() && e.log.is_empty());
        // 2. reinit learns the first value
        let mut m = string("reinit", "");
        let e = eval(&mut m, "hello", "");
        assert_eq!(e.result, Some((Status::Ok, "hello".into())));
        assert_eq!(e.alerts[0].message, "initialize: hello");
        assert_eq!(stored(&m), "hello");
        let long = "x".repeat(50);
        let mut m = string("reinit", "");
        let e = eval(&mut m, &long, "");
        assert_eq!(
            e.alerts[0].message,
            format!("initialize: {}.. (50)", "x".repeat(33))
        );
        // 3. empty_err
        let mut m = string("empty_err", "a");
        assert_eq!(
            eval(&mut m, "", "").result,
            Some((Status::Err, "Error, because empty value".into()))
        );
        assert_eq!(
            eval(&mut m, "", "mine").result,
            Some((Status::Err, "mine".into()))
        );
        // 4. empty_ok: OK; legacy route when it was ERR
        let mut m = string("empty_ok", "a");
        let e = m.evaluate(Status::Err, "", "");
        assert_eq!(e.result, Some((Status::Ok, String::new())));
        assert!(e.legacy_ok);
        assert!(!m.evaluate(Status::Ok, "", "").legacy_ok);
        // 5. dynamic: change reported, learned, OK
        let mut m = string("dynamic", "a b c");
        let e = eval(&mut m, "a b d", "");
        assert_eq!(e.result, Some((Status::Ok, "a b d".into())));
        assert_eq!(e.log, vec!["Change: +d -c "]);
        assert_eq!(e.alerts[0].message, "Change: +d -c ");
        assert_eq!(e.alerts[0].keys, Some(("a b c".into(), "a b d".into())));
        assert_eq!(stored(&m), "a b d");
        // dynamic without a usable split: old/new texts
        let mut m = string("dynamic", "x x");
        let e = eval(&mut m, "y y", "");
        assert_eq!(e.log, vec![r#"Change: old: "x x" new: "y y""#]);
        assert_eq!(e.alerts[0].message, "Change: old: x x new: y y");
        // 6. static mismatch: ERR, alert only when it was OK
        let mut m = string("", "a,b");
        let e = eval(&mut m, "a,c", "");
        assert_eq!(e.result, Some((Status::Err, "a,c".into())));
        assert_eq!(e.log, vec!["Change: +c -b "]);
        assert_eq!(e.alerts.len(), 1);
        assert_eq!(stored(&m), "a,b", "a static string is not learned");
        let e = m.evaluate(Status::Err, "a,c", "");
        assert!(e.alerts.is_empty());
        let mut m = string("", "");
        let e = eval(&mut m, "é é", "");
        assert_eq!(e.log, vec![r#"Mismatch: str: "" new: "\u00e9 \u00e9""#]);
        // the text option splits by lines
        let mut m = string("text dynamic", "l1\nl2");
        let e = eval(&mut m, "l1\nl3", "");
        assert_eq!(e.log, vec!["Change: +l3 -l2 "]);
    }

    #[test]
    fn args_roundtrip() {
        let (m, _) = CheckMethod::parse_line(
            "numerical|minlim=1|maxlim=2G|diffmin=-5%|diffmax=3|patience=10m",
        )
        .expect("ok");
        let args = m.args();
        assert_eq!(args["minlim"], "1");
        assert_eq!(args["maxlim"], "2G");
        assert_eq!(args["diffmin"], "-5%");
        assert_eq!(args["patience"], "10m");
        assert_eq!(args["current"], "");
        let json = serde_json::to_string(&m).expect("json");
        let back: CheckMethod = serde_json::from_str(&json).expect("back");
        assert_eq!(back, m);
        let s = string("reinit dynamic", "abc");
        assert_eq!(s.args()["options"], "reinit dynamic");
    }
}
