//! Projects, their members and policies (spec §2.2, §2.3).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::duration::{Interval, RetrySchedule};
use crate::name::{Email, PolicyName, Secret, TextId};
use crate::reduction::Reduction;

/// A project's id in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProjectId(pub i64);

impl std::fmt::Display for ProjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an update came from. Each channel has its own switch on the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `POST /update`.
    Http,
    /// An e-mail with `%%%` lines.
    Smtp,
}

impl Source {
    /// okerr's name of the channel: `http` or `smtp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Smtp => "smtp",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a group of indicators is watched and who may update them (spec §2.3).
///
/// Every field is a validated type, so any `Policy` value is a valid policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Unique within the project.
    pub name: PolicyName,
    /// How often an update must come.
    pub period: Interval,
    /// How long to wait past the period before the indicator turns ERR.
    pub patience: Interval,
    /// The shared secret updates must carry, if any.
    pub secret: Option<Secret>,
    /// Updates are accepted only from addresses inside one of these networks.
    pub subnets: Vec<IpNet>,
    /// Accept updates over HTTP.
    pub http_update: bool,
    /// Accept updates over SMTP.
    pub smtp_update: bool,
    /// Create unknown indicators named in updates.
    pub autocreate: bool,
    /// Create indicators even while `Default` is locked down (autocreate off or a secret)
    /// although this policy has no secret of its own: the owner opened it deliberately.
    /// Off by default, so locking `Default` locks every open policy too (see
    /// [`Project::creation_gate`]).
    #[serde(default)]
    pub open_autocreate: bool,
    /// Alert reduction: `None` releases every alert at once and never cancels (okerr's
    /// empty string); `Some` holds alerts for the scheduled delay and cancels a flip by its
    /// flip-back (spec §8.3).
    pub reduction: Option<Reduction>,
    /// The webhook told of every status change outside maintenance (spec §8.6).
    pub url_statuschange: Option<Url>,
    /// Delays before a change to ERR of an active (logic) indicator is committed.
    #[serde(default)]
    pub retry_schedule: RetrySchedule,
    /// Delays before a change to OK of an active (logic) indicator is committed.
    #[serde(default)]
    pub recovery_retry_schedule: RetrySchedule,
}

impl Policy {
    /// A new policy with okerr's model defaults, as the UI creates it: period 1h,
    /// patience 300s, autocreate, both channels, reduction `0`, the whole world allowed.
    pub fn new(name: PolicyName) -> Self {
        Policy {
            name,
            period: Interval::from_secs(3600),
            patience: Interval::from_secs(300),
            secret: None,
            subnets: world(),
            http_update: true,
            smtp_update: true,
            autocreate: true,
            open_autocreate: false,
            reduction: Some(zero_reduction()),
            url_statuschange: None,
            retry_schedule: RetrySchedule::default(),
            recovery_retry_schedule: RetrySchedule::default(),
        }
    }

    /// The `Default` policy of every new project: period 3600, patience 1200, reduction `0`.
    pub fn default_policy() -> Self {
        Policy {
            period: interval("3600"),
            patience: interval("1200"),
            ..Policy::new(PolicyName::default_name())
        }
    }

    /// The `Daily` policy of every new project: period 86400, patience 7200, no reduction.
    pub fn daily() -> Self {
        Policy {
            period: interval("86400"),
            patience: interval("7200"),
            reduction: None,
            ..Policy::new(PolicyName::parse("Daily").expect("a valid constant name"))
        }
    }

    /// Whether an update from `ip` is allowed: the address lies in at least one subnet.
    /// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.subnets.iter().any(|net| net.contains(&ip))
    }

    /// Whether updates over `source` are switched on.
    pub fn allows_source(&self, source: Source) -> bool {
        match source {
            Source::Http => self.http_update,
            Source::Smtp => self.smtp_update,
        }
    }
}

fn interval(s: &str) -> Interval {
    Interval::parse(s).expect("a valid constant interval")
}

fn zero_reduction() -> Reduction {
    Reduction::parse("0").expect("a valid constant reduction")
}

/// `0.0.0.0/0` and `::/0`, the subnets of a new policy.
pub fn world() -> Vec<IpNet> {
    vec![
        IpNet::V4(ipnet::Ipv4Net::default()),
        IpNet::V6(ipnet::Ipv6Net::default()),
    ]
}

/// A project API key (okerr's `X-API-KEY`): only a SHA-256 hash of the key is kept; the
/// key itself is shown once, when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// A short public name of the key, to list and revoke it.
    pub id: String,
    /// Lower-case hex SHA-256 of the key.
    pub hash: String,
    /// What the key is for.
    pub remark: String,
    /// When it was made.
    pub created: DateTime<Utc>,
}

impl ApiKey {
    /// A key record for `secret` (a long random string the caller made).
    pub fn new(
        id: impl Into<String>,
        secret: &str,
        remark: impl Into<String>,
        created: DateTime<Utc>,
    ) -> Self {
        ApiKey {
            id: id.into(),
            hash: sha256_hex(secret),
            remark: remark.into(),
            created,
        }
    }

    /// Whether `presented` is this key; the hashes are compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        sha256_hex(presented)
            .as_bytes()
            .ct_eq(self.hash.as_bytes())
            .into()
    }
}

/// Lower-case hex SHA-256 of `s`.
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A person who belongs to a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where alerts go.
    pub email: Email,
    /// Whether this member gets alert e-mails (okerr's `sendalert`).
    pub alerts: bool,
    /// Whether this member gets the daily summary e-mail (okerr's `sendsummary`).
    #[serde(default)]
    pub summary: bool,
}

/// What is needed to create a project; storage assigns the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProject {
    /// A free name, shown to people.
    pub name: String,
    /// The main textid, used in okerr's texts (`name@textid`) and links.
    pub textid: TextId,
    /// Up to two more textids that address the project too.
    pub aliases: Vec<TextId>,
    /// The people of the project.
    pub members: Vec<Member>,
    /// The project's policies; always holds `Default`.
    pub policies: Vec<Policy>,
    /// The most indicators autocreate may create, `None` for no limit.
    pub max_indicators: Option<u32>,
    /// A limited project creates no indicators; updates to existing ones still work.
    pub limited: bool,
    /// API keys of the project.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
}

impl NewProject {
    /// A project with one textid and okerr's two policies, `Default` and `Daily`.
    pub fn new(name: impl Into<String>, textid: TextId) -> Self {
        NewProject {
            name: name.into(),
            textid,
            aliases: Vec::new(),
            members: Vec::new(),
            policies: vec![Policy::default_policy(), Policy::daily()],
            max_indicators: None,
            limited: false,
            api_keys: Vec::new(),
        }
    }

    /// Adds a member who gets alert e-mails.
    pub fn with_member(mut self, email: Email) -> Self {
        self.members.push(Member {
            email,
            alerts: true,
            summary: false,
        });
        self
    }

    /// Gives this project its storage id.
    pub fn with_id(self, id: ProjectId) -> Project {
        Project {
            id,
            name: self.name,
            textid: self.textid,
            aliases: self.aliases,
            members: self.members,
            policies: self.policies,
            max_indicators: self.max_indicators,
            limited: self.limited,
            api_keys: self.api_keys,
            version: 0,
        }
    }
}

/// A project: indicators are pushed into it by any of its textids (spec §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Storage id.
    pub id: ProjectId,
    /// A free name, shown to people.
    pub name: String,
    /// The main textid, used in okerr's texts (`name@textid`) and links.
    pub textid: TextId,
    /// Up to two more textids that address the project too.
    pub aliases: Vec<TextId>,
    /// The people of the project.
    pub members: Vec<Member>,
    /// The project's policies; `Default` is always there.
    pub policies: Vec<Policy>,
    /// The most indicators autocreate may create, `None` for no limit.
    pub max_indicators: Option<u32>,
    /// A limited project creates no indicators; updates to existing ones still work.
    pub limited: bool,
    /// API keys of the project.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// How often the project was saved; [`Storage::save_project`] refuses a project read
    /// before the last save, so that two edits never undo each other.
    ///
    /// [`Storage::save_project`]: crate::Storage::save_project
    #[serde(default)]
    pub version: u64,
}

impl Project {
    /// Whether `presented` is one of the project's API keys.
    pub fn key_matches(&self, presented: &str) -> bool {
        self.api_keys.iter().any(|k| k.matches(presented))
    }

    /// Every textid of the project, the main one first.
    pub fn textids(&self) -> impl Iterator<Item = &TextId> {
        std::iter::once(&self.textid).chain(&self.aliases)
    }

    /// The policy of this name.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name.as_str() == name)
    }

    /// The policy of this name, else `Default`, else okerr's default values.
    pub fn policy_or_default(&self, name: &str) -> Policy {
        self.policy(name)
            .or_else(|| self.policy("Default"))
            .cloned()
            .unwrap_or_else(Policy::default_policy)
    }

    /// The policy whose autocreate switch and secret decide whether an update may create
    /// an indicator with `policy`: `policy` itself when it is `Default`, has a secret of its
    /// own or is opened deliberately ([`Policy::open_autocreate`]); otherwise `Default`
    /// when `Default` is locked down (autocreate off or a secret). So a project whose
    /// `Default` is locked gets no new indicator anonymously through `Daily` or any other
    /// policy created open.
    pub fn creation_gate<'a>(&'a self, policy: &'a Policy) -> Option<&'a Policy> {
        if policy.name.as_str() == "Default" || policy.secret.is_some() || policy.open_autocreate {
            return None;
        }
        self.policy("Default")
            .filter(|d| !d.autocreate || d.secret.is_some())
    }

    /// Adds `policy`, or replaces the policy of the same name.
    pub fn put_policy(&mut self, policy: Policy) {
        match self.policies.iter_mut().find(|p| p.name == policy.name) {
            Some(p) => *p = policy,
            None => self.policies.push(policy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okerr_policies() {
        let d = Policy::default_policy();
        assert_eq!(d.name.as_str(), "Default");
        assert_eq!((d.period.as_secs(), d.patience.as_secs()), (3600, 1200));
        assert_eq!(d.reduction.as_ref().map(Reduction::as_str), Some("0"));
        assert!(d.autocreate && d.http_update && d.smtp_update && d.secret.is_none());
        let daily = Policy::daily();
        assert_eq!(daily.name.as_str(), "Daily");
        assert_eq!(
            (daily.period.as_secs(), daily.patience.as_secs()),
            (86400, 7200)
        );
        assert!(daily.reduction.is_none());
    }

    #[test]
    fn subnets() {
        let mut p = Policy::default_policy();
        assert!(p.allows_ip("1.2.3.4".parse().expect("ip")));
        assert!(p.allows_ip("::1".parse().expect("ip")));
        p.subnets = vec!["10.0.0.0/8".parse().expect("net")];
        assert!(p.allows_ip("10.1.2.3".parse().expect("ip")));
        assert!(p.allows_ip("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(!p.allows_ip("11.1.2.3".parse().expect("ip")));
        p.subnets = vec!["::/0".parse().expect("net")];
        assert!(
            !p.allows_ip("1.2.3.4".parse().expect("ip")),
            "IPv4 does not match ::/0"
        );
        p.subnets.clear();
        assert!(!p.allows_ip("1.2.3.4".parse().expect("ip")));
    }
}
