//! The okerrclient script language (spec okerr-clients.md §7): each argument of `-s` is
//! one instruction, `$var` is filled in from the variables, and at the end one update
//! goes out with the data as its status.
//!
//! [`Script::parse`] checks the instruction names and their `key=value` arguments;
//! [`Script::evaluate`] runs it against [`Probes`] and gives the [`Update`]s to send,
//! without any network, so the same script always gives the same requests.
//!
//! ```
//! use okerr_client::script::{Script, Fixed};
//!
//! let script = Script::parse(["NAME test:apache2", "DETAILS all fine", "OK"])?;
//! let ev = script.evaluate(Some("myhost"), &Fixed::default())?;
//! assert_eq!(ev.updates.len(), 1);
//! assert_eq!(ev.updates[0].name, "test:apache2");
//! assert_eq!(ev.updates[0].status, "OK");
//! assert_eq!(ev.updates[0].details.as_deref(), Some("all fine"));
//! # Ok::<(), okerr_client::script::ScriptError>(())
//! ```

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use okerr::pyfmt::{float_repr, str_repr};
use serde_json::{Map, Value};

use crate::probes::{Disk, Probes};
use crate::update::Update;

/// Why a script cannot run. The Python client exits 1 for these; so does `okerr client`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// An unknown instruction name (okerrclient's words).
    #[error("No method {0}")]
    UnknownInstruction(String),
    /// An instruction that does not split into words (unbalanced quotes), or is empty.
    #[error("cannot parse instruction {0:?}")]
    Unparsable(String),
    /// A `key=value` argument the instruction does not know.
    #[error("bad argument {argument:?} in {instruction:?}")]
    BadArgument {
        /// The whole instruction.
        instruction: String,
        /// The argument.
        argument: String,
    },
    /// An instruction that cannot work on its argument or data.
    #[error("{instruction}: {message}")]
    Runtime {
        /// The instruction's name.
        instruction: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// How an instruction takes its arguments.
#[derive(Debug, Clone, Copy)]
enum Style {
    /// `key=value` words, with these keys and defaults (none: no arguments).
    Keys(&'static [(&'static str, &'static str)]),
    /// The raw text after the first space, with this default.
    Rest(&'static str),
    /// Whatever follows is ignored.
    Ignored,
}

/// Every instruction this interpreter knows, with its argument style.
const INSTRUCTIONS: &[(&str, Style)] = &[
    ("OK", Style::Keys(&[])),
    ("ERR", Style::Keys(&[])),
    ("STR", Style::Rest("")),
    ("NAME", Style::Rest("$_name:noname")),
    ("METHOD", Style::Rest("")),
    ("POLICY", Style::Rest("Default")),
    ("DETAILS", Style::Rest("")),
    ("TAG", Style::Rest("")),
    ("SET", Style::Rest("")),
    ("SAVE", Style::Rest("")),
    ("LOAD", Style::Rest("")),
    ("EXPORT", Style::Rest("")),
    ("EXCEPT", Style::Rest("")),
    ("DEFAULT", Style::Rest("")),
    ("INT", Style::Keys(&[])),
    ("NONZERO", Style::Keys(&[])),
    ("OKERRNOT", Style::Keys(&[])),
    ("NONE", Style::Keys(&[])),
    ("DUMP", Style::Keys(&[])),
    ("DATETIME", Style::Keys(&[("prefix", "_"), ("offset", "0")])),
    ("LIST", Style::Rest("")),
    ("FIRST", Style::Rest("1")),
    ("LAST", Style::Rest("1")),
    ("LEN", Style::Ignored),
    ("FORK", Style::Keys(&[])),
    ("PROC", Style::Rest("")),
    ("DF", Style::Keys(&[("path", "")])),
    ("LOADAVG", Style::Keys(&[("period", "0")])),
    ("UPTIME", Style::Keys(&[])),
];

/// The names of the instructions this interpreter knows.
pub fn instructions() -> impl Iterator<Item = &'static str> {
    INSTRUCTIONS.iter().map(|(name, _)| *name)
}

/// One parsed instruction: its name and its arguments (defaults filled in), before
/// `$var` substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instr {
    name: &'static str,
    args: Vec<(&'static str, String)>,
}

impl Instr {
    fn parse(text: &str) -> Result<Instr, ScriptError> {
        let words = shlex::split(text).ok_or_else(|| ScriptError::Unparsable(text.to_owned()))?;
        let first = words
            .first()
            .ok_or_else(|| ScriptError::Unparsable(text.to_owned()))?;
        let (name, style) = INSTRUCTIONS
            .iter()
            .find(|(n, _)| n == first)
            .ok_or_else(|| ScriptError::UnknownInstruction(first.clone()))?;
        let args = match style {
            Style::Ignored => Vec::new(),
            Style::Rest(default) => {
                let rest = text.split_once(' ').map_or(*default, |(_, rest)| rest);
                vec![("", rest.to_owned())]
            }
            Style::Keys(keys) => {
                let mut args: Vec<(&'static str, String)> =
                    keys.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
                for word in &words[1..] {
                    let (k, v) = word.split_once('=').unwrap_or((word, ""));
                    let slot = args.iter_mut().find(|(key, _)| *key == k).ok_or_else(|| {
                        ScriptError::BadArgument {
                            instruction: text.to_owned(),
                            argument: word.clone(),
                        }
                    })?;
                    slot.1 = v.to_owned();
                }
                args
            }
        };
        Ok(Instr { name, args })
    }
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    instrs: Vec<Instr>,
}

/// What a script gave: the updates to send (in order; FORK gives one per element) and
/// what DUMP printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The updates, in the order the Python client sends them.
    pub updates: Vec<Update>,
    /// What DUMP printed, one entry per DUMP.
    pub printed: Vec<String>,
    /// Problems that did not stop the script (okerrclient logs them as errors).
    pub warnings: Vec<String>,
}

impl Script {
    /// Parses the instructions, one per item (as the words after `-s`).
    ///
    /// # Errors
    /// [`ScriptError::UnknownInstruction`], [`ScriptError::Unparsable`] or
    /// [`ScriptError::BadArgument`] for the first bad instruction.
    pub fn parse<I, S>(instructions: I) -> Result<Script, ScriptError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let instrs = instructions
            .into_iter()
            .map(|s| Instr::parse(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Script { instrs })
    }

    /// Runs the script. `name` is the indicator name it starts with (`--name`, the
    /// host name by default); without one (and no NAME) nothing is sent.
    ///
    /// # Errors
    /// [`ScriptError::Runtime`] when an instruction cannot work on its argument or data
    /// (`INT` of a word, `FIRST x`, a bad `SET`, `METHOD` with unbalanced quotes, …), or
    /// when the script runs more than [`MAX_STEPS`] instructions (nested `FORK`s multiply).
    pub fn evaluate(
        &self,
        name: Option<&str>,
        probes: &dyn Probes,
    ) -> Result<Evaluation, ScriptError> {
        let mut run = Run {
            vars: BTreeMap::new(),
            probes,
            out: Evaluation::default(),
            steps: 0,
        };
        let seq = Seq {
            name: name.map(str::to_owned),
            ..Seq::default()
        };
        run.sequence(&self.instrs, seq, Value::Null)?;
        Ok(run.out)
    }
}

/// The sequence state besides the data: what the update carries.
#[derive(Debug, Clone, Default)]
struct Seq {
    name: Option<String>,
    method: Option<String>,
    policy: Option<String>,
    details: Option<String>,
    tags: Vec<String>,
    except: Option<String>,
}

struct Run<'a> {
    /// Shared by forks, as in okerrclient.
    vars: BTreeMap<String, Value>,
    probes: &'a dyn Probes,
    out: Evaluation,
    /// Instructions run so far, over every fork.
    steps: usize,
}

/// The most instructions one evaluation runs, over all its forks: a `FORK` runs the rest of
/// the script once per element, so a few nested ones over long lists (or the characters of
/// a string) would run for ever. Real scripts run tens to thousands.
pub const MAX_STEPS: usize = 100_000;

/// An instruction's arguments after substitution; the rest-of-line one has the key "".
struct Args(Vec<(&'static str, String)>);

impl Args {
    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What an instruction does to the flow.
enum Flow {
    Next(Value),
    Stop,
}

fn runtime(instruction: &'static str, message: impl Into<String>) -> ScriptError {
    ScriptError::Runtime {
        instruction,
        message: message.into(),
    }
}

impl Run<'_> {
    fn sequence(
        &mut self,
        instrs: &[Instr],
        mut seq: Seq,
        mut data: Value,
    ) -> Result<(), ScriptError> {
        for (i, instr) in instrs.iter().enumerate() {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(runtime(
                    instr.name,
                    format!("the script ran more than {MAX_STEPS} instructions"),
                ));
            }
            let lookup = self.lookup_table(&seq, &data);
            let args = Args(
                instr
                    .args
                    .iter()
                    .map(|(k, v)| (*k, substitute(v, &lookup)))
                    .collect(),
            );
            let flow = if instr.name == "FORK" {
                for row in iterate("FORK", &data)? {
                    self.sequence(&instrs[i + 1..], seq.clone(), row)?;
                }
                Flow::Stop
            } else {
                self.step(instr.name, &args, &mut seq, data)?
            };
            match flow {
                Flow::Next(next) => data = next,
                Flow::Stop => {
                    // a stopped script sends its EXCEPT value (nothing without one)
                    data = seq.except.clone().map_or(Value::Null, Value::String);
                    break;
                }
            }
        }
        if let Some(name) = seq.name
            && !data.is_null()
        {
            self.out.updates.push(Update {
                name,
                status: py_str(&data),
                details: seq.details,
                method: seq.method,
                policy: seq.policy,
                tags: seq.tags,
                ..Update::default()
            });
        }
        Ok(())
    }

    /// The variables `$x` can name: SET/SAVE/EXPORT/DATETIME ones, `_name`, `_str`
    /// (string data) and `_dict_KEY` (dict data).
    fn lookup_table(&self, seq: &Seq, data: &Value) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), py_str(v)))
            .collect();
        vars.insert(
            "_name".to_owned(),
            seq.name.clone().unwrap_or_else(|| "None".to_owned()),
        );
        match data {
            Value::String(s) => {
                vars.insert("_str".to_owned(), s.clone());
            }
            Value::Object(map) => {
                for (k, v) in map {
                    vars.insert(format!("_dict_{k}"), py_str(v));
                }
            }
            _ => {}
        }
        vars
    }

    fn step(
        &mut self,
        name: &'static str,
        args: &Args,
        seq: &mut Seq,
        data: Value,
    ) -> Result<Flow, ScriptError> {
        let arg = |key: &str| args.get(key);
        let rest = arg("");
        let next = match name {
            "OK" | "ERR" => Value::from(name),
            "STR" => {
                if !rest.is_empty() {
                    Value::from(rest)
                } else {
                    Value::from(match &data {
                        Value::Null => String::new(),
                        Value::Array(items) if items.iter().all(Value::is_string) => {
                            items.iter().map(py_str).collect::<Vec<_>>().join("\n")
                        }
                        Value::Object(map) => map.keys().cloned().collect::<Vec<_>>().join("\n"),
                        other => py_str(other),
                    })
                }
            }
            "NAME" => {
                let mut vars = self.lookup_table(seq, &Value::Null);
                if let Value::Object(map) = &data {
                    for (k, v) in map {
                        vars.insert(k.clone(), py_str(v));
                    }
                }
                seq.name = Some(substitute(rest, &vars));
                data
            }
            "METHOD" => {
                let words = shlex::split(rest)
                    .ok_or_else(|| runtime(name, format!("cannot split {rest:?} into words")))?;
                seq.method = Some(words.join("|"));
                data
            }
            "POLICY" => {
                seq.policy = Some(rest.to_owned());
                data
            }
            "DETAILS" => {
                seq.details = Some(match &data {
                    Value::Null => rest.to_owned(),
                    Value::Object(map) if !rest.is_empty() => {
                        let vars = map.iter().map(|(k, v)| (k.clone(), py_str(v))).collect();
                        substitute(rest, &vars)
                    }
                    _ if !rest.is_empty() => rest.to_owned(),
                    other => py_str(other),
                });
                data
            }
            "TAG" => {
                seq.tags.push(rest.to_owned());
                data
            }
            "SET" => {
                let (var, value) = parse_set(rest).ok_or_else(|| {
                    runtime(
                        name,
                        format!(
                            "cannot parse {rest:?}: write SET name=value or name=\"some value\""
                        ),
                    )
                })?;
                self.vars.insert(var, Value::from(value));
                data
            }
            "SAVE" => {
                match &data {
                    Value::Object(map) if rest.is_empty() => {
                        for (k, v) in map {
                            self.vars.insert(k.clone(), v.clone());
                        }
                    }
                    _ => {
                        self.vars.insert(rest.to_owned(), data.clone());
                    }
                }
                data
            }
            "LOAD" => self.vars.get(rest).cloned().unwrap_or(Value::Null),
            "EXPORT" => {
                let parts: Vec<&str> = rest.split('=').map(str::trim).collect();
                match (parts.as_slice(), &data) {
                    ([var], Value::String(_)) => {
                        self.vars.insert((*var).to_owned(), data.clone());
                    }
                    ([var, field], Value::Object(map)) if map.contains_key(*field) => {
                        let v = map.get(*field).cloned().unwrap_or(Value::Null);
                        self.vars.insert((*var).to_owned(), v);
                    }
                    _ => self.out.warnings.push(format!(
                        "export error. Exp: {rest}, Data: {}",
                        py_str(&data).chars().take(50).collect::<String>()
                    )),
                }
                data
            }
            "EXCEPT" => {
                seq.except = Some(rest.to_owned());
                data
            }
            "DEFAULT" => {
                if truthy(&data) {
                    data
                } else {
                    match serde_json::from_str(rest) {
                        Ok(v) => v,
                        Err(e) => {
                            self.out
                                .warnings
                                .push(format!("DEFAULT: not valid default JSON: {rest} ({e})"));
                            return Ok(Flow::Stop);
                        }
                    }
                }
            }
            "INT" => match &data {
                Value::String(s) => {
                    let f = parse_float(s)
                        .ok_or_else(|| runtime(name, format!("not a number: {s:?}")))?;
                    Value::from(truncate(name, f)?)
                }
                Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::from(i),
                    None => Value::from(truncate(name, n.as_f64().unwrap_or(f64::NAN))?),
                },
                Value::Bool(b) => Value::from(i64::from(*b)),
                _ => Value::Null,
            },
            "NONZERO" => {
                let f = match &data {
                    Value::String(s) => parse_float(s),
                    Value::Number(n) => n.as_f64(),
                    Value::Bool(b) => Some(f64::from(u8::from(*b))),
                    _ => None,
                };
                match f {
                    Some(f) if f.is_finite() => {
                        Value::from(if f.trunc() > 0.0 { "OK" } else { "ERR" })
                    }
                    _ => {
                        self.out.warnings.push(format!(
                            "bad data for NONZERO: {} (must be numerical)",
                            py_str(&data)
                        ));
                        Value::from("ERR")
                    }
                }
            }
            "OKERRNOT" => Value::from(if data == "ERR" { "OK" } else { "ERR" }),
            "NONE" => Value::Null,
            "DUMP" => {
                self.out.printed.push(py_str(&data));
                data
            }
            "DATETIME" => {
                let offset: i64 = arg("offset").trim().parse().map_err(|_| {
                    runtime(
                        name,
                        format!("offset is not an integer: {:?}", arg("offset")),
                    )
                })?;
                let now = self.probes.now();
                let m = now
                    .checked_add_signed(chrono::TimeDelta::seconds(offset))
                    .unwrap_or(now);
                self.datetime(arg("prefix"), m);
                data
            }
            "LIST" => {
                if !rest.is_empty() {
                    let words = shlex::split(rest).ok_or_else(|| {
                        runtime(name, format!("cannot split {rest:?} into words"))
                    })?;
                    Value::from(words)
                } else if truthy(&data) {
                    Value::Array(iterate(name, &data)?)
                } else {
                    Value::Null
                }
            }
            "FIRST" | "LAST" => {
                let n: i64 = rest
                    .trim()
                    .parse()
                    .map_err(|_| runtime(name, format!("not a count: {rest:?}")))?;
                let Value::Array(items) = data else {
                    return Ok(Flow::Stop);
                };
                if n == 1 {
                    let one = if name == "FIRST" {
                        items.first()
                    } else {
                        items.last()
                    };
                    match one {
                        Some(v) => v.clone(),
                        None => return Ok(Flow::Stop),
                    }
                } else if name == "FIRST" {
                    Value::Array(py_slice(&items, None, Some(n)))
                } else {
                    Value::Array(py_slice(&items, Some(n.saturating_neg()), None))
                }
            }
            "LEN" => match &data {
                Value::Null => Value::Null,
                Value::String(s) => Value::from(s.chars().count()),
                Value::Array(a) => Value::from(a.len()),
                Value::Object(o) => Value::from(o.len()),
                other => return Err(runtime(name, format!("no length: {}", py_str(other)))),
            },
            "PROC" => {
                let process = rest.trim();
                if process.is_empty() {
                    return Err(runtime(name, "give a process name: PROC apache2"));
                }
                Value::from(if self.probes.process_running(process) {
                    "OK"
                } else {
                    "ERR"
                })
            }
            "DF" => {
                let path = arg("path");
                let disks = self.probes.disks();
                if path.is_empty() {
                    Value::Array(
                        disks
                            .iter()
                            .filter(|d| !d.device.starts_with("/dev/loop"))
                            .map(|d| df_entry(d, &d.mount_point))
                            .collect(),
                    )
                } else {
                    let disk = disk_of(&disks, path).ok_or_else(|| {
                        runtime(name, format!("no mounted file system holds {path:?}"))
                    })?;
                    df_entry(disk, path)
                }
            }
            "LOADAVG" => {
                let period: usize = arg("period")
                    .trim()
                    .parse()
                    .ok()
                    .filter(|p| *p < 3)
                    .ok_or_else(|| {
                        runtime(
                            name,
                            format!("period must be 0, 1 or 2, not {:?}", arg("period")),
                        )
                    })?;
                let la = self.probes.load_average();
                seq.details = Some(format!(
                    "{}, {}, {}",
                    float_repr(la[0]),
                    float_repr(la[1]),
                    float_repr(la[2])
                ));
                float_value(la[period])
            }
            "UPTIME" => Value::from(self.probes.uptime()),
            other => return Err(ScriptError::UnknownInstruction(other.to_owned())),
        };
        Ok(Flow::Next(next))
    }

    fn datetime(&mut self, prefix: &str, m: NaiveDateTime) {
        use chrono::{Datelike, Timelike};
        let mut set = |k: &str, v: Value| {
            self.vars.insert(format!("{prefix}{k}"), v);
        };
        set("day", Value::from(m.day()));
        set("month", Value::from(m.month()));
        set("year", Value::from(m.year()));
        set("dd", Value::from(format!("{:02}", m.day())));
        set("mm", Value::from(format!("{:02}", m.month())));
        set(
            "yy",
            Value::from(format!("{:02}", m.year().rem_euclid(100))),
        );
        set("hour", Value::from(m.hour()));
        set("minute", Value::from(m.minute()));
        set("second", Value::from(m.second()));
        set("HH", Value::from(format!("{:02}", m.hour())));
        set("MM", Value::from(format!("{:02}", m.minute())));
        set("SS", Value::from(format!("{:02}", m.second())));
    }
}

/// The elements Python's `for x in data` gives: a list's items, a string's characters,
/// a dict's keys.
fn iterate(instruction: &'static str, data: &Value) -> Result<Vec<Value>, ScriptError> {
    match data {
        Value::Array(items) => Ok(items.clone()),
        Value::String(s) => Ok(s.chars().map(|c| Value::from(c.to_string())).collect()),
        Value::Object(map) => Ok(map.keys().map(|k| Value::from(k.as_str())).collect()),
        other => Err(runtime(
            instruction,
            format!("needs a list, got {}", py_str(other)),
        )),
    }
}

/// Python's `items[start:stop]`.
fn py_slice(items: &[Value], start: Option<i64>, stop: Option<i64>) -> Vec<Value> {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let clamp = |i: i64| -> usize {
        let i = if i < 0 { (len + i).max(0) } else { i.min(len) };
        usize::try_from(i).unwrap_or(0)
    };
    let from = start.map_or(0, clamp);
    let to = stop.map_or(items.len(), clamp);
    items
        .get(from..to.max(from))
        .map(<[Value]>::to_vec)
        .unwrap_or_default()
}

fn parse_float(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

fn truncate(instruction: &'static str, f: f64) -> Result<i64, ScriptError> {
    if f.is_finite() && f.abs() < 9.2e18 {
        // In range, checked above.
        #[allow(clippy::cast_possible_truncation)]
        Ok(f.trunc() as i64)
    } else {
        Err(runtime(
            instruction,
            format!("cannot make an integer of {}", float_repr(f)),
        ))
    }
}

fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `SET name=value`: the value is one shell word (quotes allowed).
fn parse_set(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let mut words = shlex::split(value.trim())?;
    if words.len() != 1 {
        return None;
    }
    Some((name.to_owned(), words.pop()?))
}

/// The file system `path` is on: the longest mount point that is a prefix of it.
fn disk_of<'d>(disks: &'d [Disk], path: &str) -> Option<&'d Disk> {
    let path = std::path::Path::new(path);
    disks
        .iter()
        .filter(|d| path.starts_with(&d.mount_point))
        .max_by_key(|d| d.mount_point.len())
}

fn df_entry(d: &Disk, path: &str) -> Value {
    const G: u64 = 1024 * 1024 * 1024;
    let used = d.total.saturating_sub(d.free);
    let percent = if d.total == 0 {
        0.0
    } else {
        // Sizes are far below 2^53 bytes' precision loss mattering for a percentage.
        #[allow(clippy::cast_precision_loss)]
        let p = used as f64 * 100.0 / d.total as f64;
        (p * 10.0).round() / 10.0
    };
    let mut m = Map::new();
    m.insert("path".into(), Value::from(path));
    m.insert("total".into(), Value::from(d.total));
    m.insert("used".into(), Value::from(used));
    m.insert("free".into(), Value::from(d.free));
    m.insert("totalg".into(), Value::from(d.total / G));
    m.insert("usedg".into(), Value::from(used / G));
    m.insert("freeg".into(), Value::from(d.free / G));
    m.insert("percent".into(), float_value(percent));
    Value::Object(m)
}

/// Python's truth of a value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `str()` of a value: what becomes the status, and what `$var` gives.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => {
            if n.is_f64() {
                float_repr(n.as_f64().unwrap_or(f64::NAN))
            } else {
                n.to_string()
            }
        }
        Value::String(s) => str_repr(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", str_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `string.Template(tpl).safe_substitute(vars)`: `$name` and `${name}` (names
/// `[_A-Za-z][_A-Za-z0-9]*`) from `vars`, `$$` as `$`; anything else stays as it is.
pub fn substitute(tpl: &str, vars: &BTreeMap<String, String>) -> String {
    let is_start = |c: char| c == '_' || c.is_ascii_alphabetic();
    let is_part = |c: char| c == '_' || c.is_ascii_alphanumeric();
    let mut out = String::with_capacity(tpl.len());
    let mut rest = tpl;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (ident, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end)
                    if inner[..end].starts_with(is_start) && inner[..end].chars().all(is_part) =>
                {
                    (&inner[..end], end + 2)
                }
                _ => ("", 0),
            }
        } else if after.starts_with(is_start) {
            let end = after.find(|c: char| !is_part(c)).unwrap_or(after.len());
            (&after[..end], end)
        } else {
            ("", 0)
        };
        match vars.get(ident) {
            Some(value) if consumed > 0 => {
                out.push_str(value);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Probes with fixed answers, for tests and examples: processes by name, disks, load,
/// uptime and a fixed local time.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// The names of running processes.
    pub processes: Vec<String>,
    /// The mounted file systems.
    pub disks: Vec<Disk>,
    /// The load averages.
    pub load: [f64; 3],
    /// Seconds since boot.
    pub uptime: u64,
    /// The local time.
    pub now: NaiveDateTime,
}

impl Default for Fixed {
    /// `init` and `apache2` run; one disk `/` of 100 GiB with 25 GiB free; load 0.5,
    /// 0.25, 0.125; up 3600 s; 2024-05-06 07:08:09.
    fn default() -> Fixed {
        const G: u64 = 1024 * 1024 * 1024;
        Fixed {
            processes: vec!["init".into(), "apache2".into()],
            disks: vec![Disk {
                mount_point: "/".into(),
                device: "/dev/sda1".into(),
                total: 100 * G,
                free: 25 * G,
            }],
            load: [0.5, 0.25, 0.125],
            uptime: 3600,
            now: NaiveDate::from_ymd_opt(2024, 5, 6)
                .and_then(|d| d.and_hms_opt(7, 8, 9))
                .unwrap_or_default(),
        }
    }
}

impl Probes for Fixed {
    fn process_running(&self, name: &str) -> bool {
        self.processes.iter().any(|p| p == name)
    }
    fn disks(&self) -> Vec<Disk> {
        self.disks.clone()
    }
    fn load_average(&self) -> [f64; 3] {
        self.load
    }
    fn uptime(&self) -> u64 {
        self.uptime
    }
    fn now(&self) -> NaiveDateTime {
        self.now
    }
}
