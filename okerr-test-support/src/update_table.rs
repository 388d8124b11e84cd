//! The response table of an update (spec okerr-server.md §5.4, with our decisions where
//! the spec leaves a choice), written once as data: [`UPDATE_TABLE`].
//!
//! Three layers run it, each in its own way of setting up a row and sending its update:
//! the engine (`okerr-lib/tests/update_table.rs`, the answer's text), the HTTP front end
//! (`okerr-http/tests/update_table.rs`, status, text and type over urlencoded and
//! multipart forms) and the `okerr` binary over real HTTP (`tests/tests/http_table.rs`).
//! Each checks, for every refusal, that nothing was stored.
//!
//! A row's update starts from the least a client sends, `textid`, `name` = [`NAME`] and
//! `status` = `OK`, and changes it by [`Row::fields`]. Texts may hold placeholders that
//! [`Row::answer_for`] and [`Row::fields_for`] fill in: `{textid}` (the project's main
//! textid), `{ip}` (the client's address as the server sees it) and `{x*N}` (N times `x`).

/// The indicator every row updates.
pub const NAME: &str = "test:hb";

/// The secret of the rows about a policy's secret.
const POLICY_SECRET: &str = "s3";

/// How the project is set up before the row's update, after the indicator of
/// [`Row::before`] was made (so that the setup does not stand in its way). Applied to the
/// project's `Default` policy unless said otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `autocreate` off.
    AutocreateOff,
    /// A second policy, `Strict`, with `autocreate` off.
    StrictPolicy,
    /// `max_indicators` of the project.
    MaxIndicators(u32),
    /// The policy's secret.
    PolicySecret(&'static str),
    /// The project is limited.
    Limited,
    /// No updates over HTTP.
    HttpUpdateOff,
    /// No updates over SMTP.
    SmtpUpdateOff,
    /// Updates only from this network (a CIDR).
    Subnet(&'static str),
}

/// What exists before the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// No indicator.
    Nothing,
    /// [`NAME`] exists, created by an `OK` update.
    Exists,
    /// [`NAME`] exists and is disabled.
    Disabled,
}

/// Where the update comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// HTTP from the layer's usual client address.
    Http,
    /// HTTP from this address (the engine and the front end can send from any address;
    /// the binary is reached from 127.0.0.1 only).
    HttpFrom(&'static str),
    /// By e-mail (the engine only).
    Smtp,
}

/// The layers that can run a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// `Engine::update` with an `UpdateRequest` (no form: a missing field cannot be said).
    Engine,
    /// okerr-http's router, in process.
    Http,
    /// The `okerr` binary over real HTTP on 127.0.0.1.
    Binary,
}

/// One situation of the table and its answer.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// What the row is about, for messages.
    pub situation: &'static str,
    /// The project's setup.
    pub setup: &'static [Setup],
    /// What exists before the update.
    pub before: Before,
    /// Changes to the least update (`textid`, `name`, `status`): a field set to a value,
    /// or removed (`None`).
    pub fields: &'static [(&'static str, Option<&'static str>)],
    /// Where the update comes from.
    pub peer: Peer,
    /// The rows that only a form can say (missing fields, the `x_` fields) are not run
    /// on the engine.
    pub form_only: bool,
    /// A project alias is used (the binary's projects have none).
    pub alias: bool,
    /// The HTTP status.
    pub status: u16,
    /// The body of the answer (`OK` when accepted), with placeholders.
    pub answer: &'static str,
}

impl Row {
    /// Whether `layer` can run this row.
    pub fn runs_on(&self, layer: Layer) -> bool {
        match layer {
            Layer::Engine => !self.form_only,
            Layer::Http => self.peer != Peer::Smtp,
            Layer::Binary => self.peer == Peer::Http && !self.alias,
        }
    }

    /// Whether the update is accepted.
    pub fn accepted(&self) -> bool {
        self.status == 200
    }

    /// The answer's body for a project whose main textid is `textid`, seen from `ip`.
    pub fn answer_for(&self, textid: &str, ip: &str) -> String {
        fill(self.answer, textid, ip)
    }

    /// The row's changes with their placeholders filled in, for a project whose main
    /// textid is `textid`: to apply to another starting update (a real client's form).
    pub fn changes_for(&self, textid: &str) -> Vec<(&'static str, Option<String>)> {
        self.fields
            .iter()
            .map(|(key, value)| (*key, value.map(|v| fill(v, textid, ""))))
            .collect()
    }

    /// The update's fields, in order, for a project whose main textid is `textid`.
    pub fn fields_for(&self, textid: &str) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = vec![
            ("textid".into(), textid.into()),
            ("name".into(), NAME.into()),
            ("status".into(), "OK".into()),
        ];
        for (key, value) in self.changes_for(textid) {
            let at = fields.iter().position(|(k, _)| k == key);
            match (value, at) {
                (Some(v), Some(i)) => fields[i].1 = v,
                (Some(v), None) => fields.push((key.into(), v)),
                (None, Some(i)) => {
                    fields.remove(i);
                }
                (None, None) => {}
            }
        }
        fields
    }
}

/// Fills in the placeholders of the module's documentation.
fn fill(text: &str, textid: &str, ip: &str) -> String {
    let mut out = text.replace("{textid}", textid).replace("{ip}", ip);
    while let Some(start) = out.find("{x*") {
        let Some(len) = out[start..].find('}') else {
            break;
        };
        let count: usize = out[start + 3..start + len].parse().unwrap_or(0);
        out.replace_range(start..=start + len, &"x".repeat(count));
    }
    out
}

/// A row with the defaults: no setup, nothing before, the least update, accepted.
const ROW: Row = Row {
    situation: "",
    setup: &[],
    before: Before::Nothing,
    fields: &[],
    peer: Peer::Http,
    form_only: false,
    alias: false,
    status: 200,
    answer: "OK",
};

/// An accepted update (200 `OK`).
const fn accepted(situation: &'static str) -> Row {
    Row { situation, ..ROW }
}

/// A refusal (400) with `answer`.
const fn refused(situation: &'static str, answer: &'static str) -> Row {
    Row {
        situation,
        status: 400,
        answer,
        ..ROW
    }
}

const SECRET: &[Setup] = &[Setup::PolicySecret(POLICY_SECRET)];
const LAN: &[Setup] = &[Setup::Subnet("10.0.0.0/8")];

/// The table. Where our answer differs from okerr's, the row says so and
/// docs/decisions.md gives the reason.
pub const UPDATE_TABLE: &[Row] = &[
    Row {
        situation: "success",
        ..ROW
    },
    Row {
        situation: "success on an existing indicator",
        before: Before::Exists,
        fields: &[("status", Some("ERR"))],
        ..ROW
    },
    Row {
        situation: "success: a heartbeat status in any case",
        before: Before::Exists,
        fields: &[("status", Some("eRr"))],
        ..ROW
    },
    Row {
        situation: "success on an alias textid",
        before: Before::Exists,
        fields: &[("textid", Some("{textid}-alias"))],
        alias: true,
        ..ROW
    },
    Row {
        situation: "success: a heartbeat value neither OK nor ERR is ignored",
        before: Before::Exists,
        fields: &[("status", Some("WARN"))],
        ..ROW
    },
    // Required field missing: okerr answers 200, we answer 400 with okerr's text.
    Row {
        fields: &[("textid", None)],
        form_only: true,
        ..refused("textid missing", "Required field 'textid' missing")
    },
    Row {
        fields: &[("name", None)],
        form_only: true,
        ..refused("name missing", "Required field 'name' missing")
    },
    Row {
        before: Before::Exists,
        fields: &[("status", None)],
        form_only: true,
        ..refused("status missing", "Required field 'status' missing")
    },
    Row {
        fields: &[("textid", None), ("name", None), ("status", None)],
        form_only: true,
        ..refused(
            "all three missing: textid is named first",
            "Required field 'textid' missing",
        )
    },
    Row {
        fields: &[("textid", Some("abc"))],
        status: 404,
        ..refused("unknown textid", "No such project. (textid: 'abc')")
    },
    Row {
        setup: &[Setup::AutocreateOff],
        ..refused(
            "autocreate off",
            "Cannot create indicator test:hb because policy Default has autocreate off",
        )
    },
    Row {
        setup: &[Setup::StrictPolicy],
        fields: &[("policy", Some("Strict"))],
        ..refused(
            "autocreate off in the named policy",
            "Cannot create indicator test:hb because policy Strict has autocreate off",
        )
    },
    Row {
        setup: &[Setup::AutocreateOff],
        before: Before::Exists,
        ..accepted("autocreate off: an existing indicator takes updates")
    },
    Row {
        fields: &[("name", Some("a@b"))],
        ..refused(
            "invalid name on autocreate",
            "Do not create indicator 'a@b': bad name",
        )
    },
    Row {
        fields: &[("name", Some("bad<name"))],
        ..refused(
            "invalid name: <",
            "Do not create indicator 'bad<name': bad name",
        )
    },
    Row {
        fields: &[("name", Some("50%"))],
        ..refused("invalid name: %", "Do not create indicator '50%': bad name")
    },
    Row {
        fields: &[("name", Some("back\\slash"))],
        ..refused(
            "invalid name: a backslash",
            "Do not create indicator 'back\\slash': bad name",
        )
    },
    Row {
        fields: &[("name", Some("a//b"))],
        ..refused(
            "invalid name: an empty path part",
            "Do not create indicator 'a//b': bad name",
        )
    },
    Row {
        fields: &[("name", Some("123"))],
        ..refused(
            "a name that is an integer (our decision)",
            "Do not create indicator '123': bad name",
        )
    },
    Row {
        fields: &[("name", Some(""))],
        ..refused(
            "an empty name (our decision)",
            "Do not create indicator '': bad name",
        )
    },
    Row {
        fields: &[("name", Some("{x*201}"))],
        ..refused(
            "a name over 200 characters (our decision)",
            "Do not create indicator '{x*201}': bad name",
        )
    },
    Row {
        setup: &[Setup::MaxIndicators(1)],
        before: Before::Exists,
        fields: &[("name", Some("other"))],
        ..refused(
            "indicator quota",
            "ERROR:LIMIT_MAXINDICATORS Project already has 1 indicators, maxindicators is 1. Indicator not created",
        )
    },
    Row {
        setup: &[Setup::MaxIndicators(1)],
        before: Before::Exists,
        ..accepted("indicator quota: an existing indicator takes updates")
    },
    Row {
        setup: SECRET,
        fields: &[("secret", Some("nope"))],
        ..refused(
            "policy secret mismatch on autocreate",
            "do not create indicator 'test:hb' with policy 'Default' because doesn't match secret",
        )
    },
    Row {
        setup: SECRET,
        fields: &[("secret", Some(""))],
        ..refused(
            "policy secret mismatch on autocreate (empty, as okerrupdate sends)",
            "do not create indicator 'test:hb' with policy 'Default' because doesn't match secret",
        )
    },
    Row {
        setup: SECRET,
        ..refused(
            "policy secret mismatch on autocreate (absent)",
            "do not create indicator 'test:hb' with policy 'Default' because doesn't match secret",
        )
    },
    Row {
        setup: &[Setup::Limited],
        ..refused(
            "project limited on autocreate",
            "Project is limited. Indicator not created.",
        )
    },
    Row {
        setup: &[Setup::Limited],
        before: Before::Exists,
        ..accepted("project limited: an existing indicator takes updates")
    },
    Row {
        fields: &[("method", Some("numerical|maxlim")), ("status", Some("1"))],
        ..refused("bad method line", "bad cm line'numerical|maxlim'")
    },
    Row {
        fields: &[("method", Some("numerical|a=b=c")), ("status", Some("1"))],
        ..refused("bad method line: a=b=c", "bad cm line'numerical|a=b=c'")
    },
    Row {
        fields: &[("method", Some("x"))],
        ..refused("unknown method", "Unknown checkname with codename 'x'")
    },
    Row {
        fields: &[("method", Some("sslcert|host=okerr.com"))],
        ..refused(
            "an active method, not run by this server (our decision)",
            "Method 'sslcert' is disabled",
        )
    },
    Row {
        fields: &[
            ("method", Some("numerical|maxlim=x")),
            ("status", Some("1")),
        ],
        ..refused(
            "a bad method argument is refused at creation (our decision)",
            "Bad maxlim value 'x', cannot convert to float",
        )
    },
    Row {
        fields: &[("method", Some("string|options=bogus"))],
        ..refused(
            "an unknown option is refused at creation (our decision)",
            "Unknown option 'bogus' for method string",
        )
    },
    Row {
        before: Before::Disabled,
        fields: &[("status", Some("ERR"))],
        ..refused(
            "indicator disabled",
            "Indicator <Indicator: test:hb@{textid} (OK)> disabled",
        )
    },
    Row {
        before: Before::Disabled,
        fields: &[("textid", Some("{textid}-alias"))],
        alias: true,
        ..refused(
            "indicator disabled, addressed by an alias (the main textid is shown)",
            "Indicator <Indicator: test:hb@{textid} (OK)> disabled",
        )
    },
    Row {
        setup: &[Setup::HttpUpdateOff],
        before: Before::Exists,
        ..refused("channel not allowed", "src:'http' updates are not allowed")
    },
    Row {
        setup: &[Setup::HttpUpdateOff],
        ..refused(
            "channel not allowed, also when the update would create",
            "src:'http' updates are not allowed",
        )
    },
    Row {
        setup: &[Setup::HttpUpdateOff],
        before: Before::Exists,
        fields: &[("x_smtp", Some("1"))],
        form_only: true,
        ..refused(
            "channel not allowed: x_smtp from an untrusted peer does not switch it",
            "src:'http' updates are not allowed",
        )
    },
    Row {
        setup: &[Setup::SmtpUpdateOff],
        before: Before::Exists,
        peer: Peer::Smtp,
        ..refused(
            "channel not allowed (smtp)",
            "src:'smtp' updates are not allowed",
        )
    },
    Row {
        setup: LAN,
        before: Before::Exists,
        ..refused("IP not allowed", "updates from {ip} not allowed")
    },
    Row {
        setup: LAN,
        ..refused(
            "IP not allowed, also when the update would create",
            "updates from {ip} not allowed",
        )
    },
    Row {
        setup: LAN,
        before: Before::Exists,
        fields: &[("x_remoteip", Some("10.0.0.1"))],
        form_only: true,
        ..refused(
            "IP not allowed: x_remoteip from an untrusted peer is ignored",
            "updates from {ip} not allowed",
        )
    },
    Row {
        setup: LAN,
        peer: Peer::HttpFrom("10.9.8.7"),
        ..accepted("IP allowed: from inside the subnet")
    },
    Row {
        setup: &[Setup::Subnet("0.0.0.0/0")],
        before: Before::Exists,
        peer: Peer::HttpFrom("2001:db8::1"),
        ..refused("IPv6 not allowed", "updates from 2001:db8::1 not allowed")
    },
    Row {
        setup: SECRET,
        before: Before::Exists,
        ..refused("secret required (absent)", "Require secret")
    },
    Row {
        setup: SECRET,
        before: Before::Exists,
        fields: &[("secret", Some(""))],
        ..refused(
            "secret required (empty, as okerrupdate sends it)",
            "Require secret",
        )
    },
    Row {
        setup: SECRET,
        before: Before::Exists,
        fields: &[("secret", Some("S3"))],
        ..refused(
            "wrong secret (the comparison is case-sensitive)",
            "Bad secret",
        )
    },
    Row {
        setup: SECRET,
        before: Before::Exists,
        fields: &[("secret", Some("s3 "))],
        ..refused("wrong secret (a trailing space)", "Bad secret")
    },
    Row {
        setup: SECRET,
        before: Before::Exists,
        fields: &[("secret", Some("s3")), ("status", Some("ERR"))],
        ..accepted("right secret")
    },
    Row {
        fields: &[("method", Some("heartbeat|secret=mine"))],
        ..refused(
            "the indicator's own secret (from the method line) is required",
            "Require secret",
        )
    },
    Row {
        fields: &[
            ("method", Some("heartbeat|secret=mine")),
            ("secret", Some("mine")),
        ],
        ..accepted("the indicator's own secret given")
    },
    Row {
        before: Before::Exists,
        fields: &[("status", Some("{x*2001}"))],
        ..refused(
            "a field over its bound (our decision)",
            "Field 'status' is too long (at most 2000 characters)",
        )
    },
    Row {
        fields: &[("details", Some("{x*10001}"))],
        ..refused(
            "details over their bound (our decision)",
            "Field 'details' is too long (at most 10000 characters)",
        )
    },
];

#[cfg(feature = "okerr")]
mod on_okerr {
    use super::{Peer, Row, Setup};

    /// Applies `setup` to a project (to be saved by the caller).
    ///
    /// # Panics
    /// On a setup the table does not hold (a bad CIDR, a bad secret).
    pub fn apply(setup: &[Setup], p: &mut okerr::Project) {
        for s in setup {
            let default = p
                .policies
                .iter_mut()
                .find(|p| p.name.as_str() == "Default")
                .expect("a new project has the policy Default");
            match *s {
                Setup::AutocreateOff => default.autocreate = false,
                Setup::StrictPolicy => {
                    let name = okerr::PolicyName::parse("Strict").expect("a policy name");
                    let mut strict = okerr::Policy::new(name);
                    strict.autocreate = false;
                    p.policies.push(strict);
                }
                Setup::MaxIndicators(n) => p.max_indicators = Some(n),
                Setup::PolicySecret(s) => {
                    default.secret = Some(okerr::Secret::parse(s).expect("a secret"));
                }
                Setup::Limited => p.limited = true,
                Setup::HttpUpdateOff => default.http_update = false,
                Setup::SmtpUpdateOff => default.smtp_update = false,
                Setup::Subnet(net) => default.subnets = vec![net.parse().expect("a CIDR")],
            }
        }
    }

    /// The row's update as the engine takes it, from `default_ip` unless the row names
    /// its peer. Only for rows that run on the engine (`form_only` is false).
    ///
    /// # Panics
    /// On a row the engine does not run, or a bad address in the table.
    pub fn request(row: &Row, textid: &str, default_ip: &str) -> okerr::UpdateRequest {
        assert!(!row.form_only, "{}: a form-only row", row.situation);
        let fields = row.fields_for(textid);
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let mut r = okerr::UpdateRequest::new(
            get("textid").unwrap_or_default(),
            get("name").unwrap_or_default(),
            get("status").unwrap_or_default(),
        );
        r.secret = get("secret");
        r.details = get("details");
        r.method = get("method");
        r.policy = get("policy");
        let ip = match row.peer {
            Peer::HttpFrom(ip) => ip,
            Peer::Http | Peer::Smtp => default_ip,
        };
        r.ip = Some(ip.parse().expect("an address"));
        if row.peer == Peer::Smtp {
            r.source = okerr::Source::Smtp;
        }
        r
    }
}

#[cfg(feature = "okerr")]
pub use on_okerr::{apply, request};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(fill("a {textid} b {ip}", "p1", "1.2.3.4"), "a p1 b 1.2.3.4");
        assert_eq!(fill("'{x*3}'", "", ""), "'xxx'");
    }

    #[test]
    fn fields_change_the_least_update() {
        let row = Row {
            fields: &[
                ("name", None),
                ("secret", Some("s")),
                ("textid", Some("{textid}-a")),
            ],
            ..ROW
        };
        let fields = row.fields_for("p1");
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("textid", "p1-a"), ("status", "OK"), ("secret", "s")]
        );
    }

    #[test]
    fn every_situation_is_named_once() {
        let mut names: Vec<&str> = UPDATE_TABLE.iter().map(|r| r.situation).collect();
        assert!(names.iter().all(|n| !n.is_empty()));
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a situation is named twice");
    }
}
