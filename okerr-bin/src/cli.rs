//! The command line. Scripts depend on it: options are only ever added.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use url::Url;

/// okerr: a monitoring server around the dead man's switch.
#[derive(Debug, Parser)]
#[command(name = "okerr", version)]
pub(crate) struct Cli {
    /// Database URL: `sqlite://FILE` (the default, `okerr.db` in the current directory),
    /// `sqlite::memory:` or `postgres://user@host/db`.
    #[arg(
        long,
        global = true,
        env = "OKERR_DATABASE_URL",
        default_value = "sqlite://okerr.db"
    )]
    pub(crate) database: String,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server: updates over HTTP, the API, and the scheduler.
    Serve(Box<ServeArgs>),
    /// Create and list projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Set and show policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Create and revoke API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Add people to a project.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Set up indicators the server evaluates (logic) or checks (active), and okerr's
    /// no-flap pair.
    #[command(subcommand)]
    Indicator(IndicatorCommand),
    /// Run an okerrclient script and send its update (`-s 'NAME test:apache2' OK`).
    Client(crate::client::ClientArgs),
    /// Send one update, like okerrupdate (`okerr update test:apache2 OK`).
    Update(crate::client::UpdateArgs),
    /// Run one active check now and print its result
    /// (`okerr check httpstatus url=https://example.com/`).
    Check(crate::check::CheckArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "OKERR_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// The base URL clients reach this server at (the director's answer)
    /// [default: http://LISTEN/].
    #[arg(long, env = "OKERR_PUBLIC_URL")]
    pub(crate) public_url: Option<Url>,
    /// A reverse proxy whose X-Forwarded-For is believed (repeatable).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub(crate) trusted_proxies: Vec<IpNet>,
    /// The admin token; generated and printed on the first start when not given.
    #[arg(long, env = "OKERR_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,
    /// Periods shorter than this count as this long (okerr's plans: 1h) [default: 0].
    #[arg(long)]
    pub(crate) min_period: Option<okerr::Interval>,
    /// Patience shorter than this counts as this long (okerr: 5m) [default: 0].
    #[arg(long)]
    pub(crate) min_patience: Option<okerr::Interval>,
    /// Accept updates by e-mail (`%%% name.status = OK` lines to TEXTID@...) on this
    /// address, e.g. 127.0.0.1:10025 behind the MTA [default: off].
    #[arg(long, env = "OKERR_SMTP_LISTEN", value_name = "ADDR:PORT")]
    pub(crate) smtp_listen: Option<SocketAddr>,
    /// The SMTP relay alert e-mails go through: `smtp://host:25`,
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://user:password@host:465`
    /// [default: none; alerts stay in the outbox].
    #[arg(
        long,
        env = "OKERR_MAIL_RELAY",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) mail_relay: Option<String>,
    /// The sender of alert e-mails [default: okerr@ the public URL's domain].
    #[arg(long, env = "OKERR_MAIL_FROM", value_name = "ADDR")]
    pub(crate) mail_from: Option<String>,
    /// How long a recipient's alerts wait for more before they go in one e-mail: until
    /// the newest is this old, at most until the oldest is six times this old [default:
    /// 10s, as okerr].
    #[arg(long, env = "OKERR_MAIL_BATCH_DELAY", value_name = "D")]
    pub(crate) mail_batch_delay: Option<okerr::Interval>,
    /// When the daily summary e-mails go out (HH:MM, UTC) to the members who asked for
    /// them (`okerr member add --summary`); needs a mail relay [default: 06:00].
    #[arg(long, env = "OKERR_SUMMARY_AT", value_name = "HH:MM")]
    pub(crate) summary_at: Option<TimeOfDay>,
    /// How long a client has to send a request's head (from connect, or from the first
    /// byte of a later request) [default: 10s].
    #[arg(long, env = "OKERR_HEADER_TIMEOUT", value_name = "D")]
    pub(crate) header_timeout: Option<okerr::Interval>,
    /// How long a client has to send a request's whole body [default: 30s].
    #[arg(long, env = "OKERR_BODY_TIMEOUT", value_name = "D")]
    pub(crate) body_timeout: Option<okerr::Interval>,
    /// How long a kept-alive connection may wait for its next request [default: 60s].
    #[arg(long, env = "OKERR_IDLE_TIMEOUT", value_name = "D")]
    pub(crate) idle_timeout: Option<okerr::Interval>,
    /// The most HTTP connections open at once; past it new ones wait to be accepted
    /// [default: 10000, at most the open-files limit less 128].
    #[arg(long, env = "OKERR_MAX_CONNECTIONS", value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// After SIGTERM, how long requests in flight may take before the server exits anyway
    /// [default: 10s].
    #[arg(long, env = "OKERR_SHUTDOWN_GRACE", value_name = "D")]
    pub(crate) shutdown_grace: Option<okerr::Interval>,
    /// How long /update waits for the database before it answers 503 [default: 2s].
    #[arg(long, env = "OKERR_STORAGE_TIMEOUT", value_name = "D")]
    pub(crate) storage_timeout: Option<okerr::Interval>,
    /// The most indicators of a project that sets none of its own (`okerr project set
    /// --max-indicators`); 0: no limit [default: 1000].
    #[arg(long, env = "OKERR_MAX_INDICATORS", value_name = "N")]
    pub(crate) max_indicators: Option<u32>,
    /// How many indicators updates may create in one project at once; 0 turns the
    /// autocreate rate limit off [default: 100].
    #[arg(long, env = "OKERR_AUTOCREATE_BURST", value_name = "N")]
    pub(crate) autocreate_burst: Option<u32>,
    /// How many more they may create each minute once the burst is spent [default: 20].
    #[arg(long, env = "OKERR_AUTOCREATE_PER_MINUTE", value_name = "N")]
    pub(crate) autocreate_per_minute: Option<u32>,
    /// A network policy webhooks and active checks may reach: `public` (every public
    /// address) or a CIDR, e.g. 10.1.0.0/16 (repeatable; replaces the default; a server
    /// for strangers sets `public`) [default: 0.0.0.0/0 and ::/0, every address].
    #[arg(long = "outbound-network", value_name = "public|CIDR")]
    pub(crate) outbound_networks: Vec<okerr::OutboundNet>,
    /// How many active checks (httpstatus, sslcert, …) run at once [default: 64].
    #[arg(long, env = "OKERR_CHECK_CONCURRENCY", value_name = "N")]
    pub(crate) check_concurrency: Option<usize>,
    /// The hard bound on one active check, after which it is ERR `Check did not finish
    /// in {n} s` [default: 20s].
    #[arg(long, env = "OKERR_CHECK_TIMEOUT", value_name = "D")]
    pub(crate) check_timeout: Option<okerr::Interval>,
    /// The newest log lines kept per indicator [default: 1000].
    #[arg(long, env = "OKERR_LOG_LINES", value_name = "N")]
    pub(crate) log_lines: Option<u32>,
    /// Log lines older than this are deleted [default: 31d].
    #[arg(long, env = "OKERR_LOG_MAX_AGE", value_name = "D")]
    pub(crate) log_max_age: Option<okerr::Interval>,
    /// Delivered notifications and dead letters are deleted this long after [default: 7d].
    #[arg(long, env = "OKERR_OUTBOX_MAX_AGE", value_name = "D")]
    pub(crate) outbox_max_age: Option<okerr::Interval>,
    /// A notification still failing this long after its release becomes a dead letter
    /// [default: 24h].
    #[arg(long, env = "OKERR_DEAD_LETTER_AFTER", value_name = "D")]
    pub(crate) dead_letter_after: Option<okerr::Interval>,
    /// How many batches of updates may be being stored while the next is read and decided
    /// [default: 0, one batch at a time, the next gathering while it is stored: on both
    /// backends the batches are then the largest and each update costs least; a database
    /// server with many cores may take more].
    #[arg(long, env = "OKERR_UPDATE_PIPELINE", value_name = "N")]
    pub(crate) update_pipeline: Option<usize>,
    /// A TOML file with any of: listen, public_url, trusted_proxies, admin_token,
    /// min_period, min_patience, smtp_listen, mail_relay, mail_from, mail_batch_delay,
    /// summary_at, header_timeout, body_timeout, idle_timeout, max_connections,
    /// shutdown_grace, storage_timeout, max_indicators, autocreate_burst,
    /// autocreate_per_minute, outbound_networks, check_concurrency, check_timeout,
    /// log_lines, log_max_age, outbox_max_age, dead_letter_after, update_pipeline.
    /// Options and environment win over it.
    #[arg(long, env = "OKERR_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Create a project; prints its TextID.
    Create {
        /// The TextID ([a-z0-9.-]); random when not given.
        #[arg(long)]
        textid: Option<String>,
        /// A name for people.
        #[arg(long)]
        name: Option<String>,
    },
    /// List projects: TextID, tab, name.
    List,
    /// Change a project's name or limits.
    Set {
        textid: String,
        /// A name for people.
        #[arg(long)]
        name: Option<String>,
        /// The most indicators autocreate may make: a number, or `none`.
        #[arg(long)]
        max_indicators: Option<String>,
        /// A limited project creates no indicators.
        #[arg(long, value_enum)]
        limited: Option<Switch>,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Switch {
    On,
    Off,
}

impl Switch {
    pub(crate) fn on(self) -> bool {
        matches!(self, Switch::On)
    }
}

// Parsed once per run: the size of the `Set` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Change a policy, creating it when missing.
    Set {
        textid: String,
        policy: String,
        /// How often an update must come (`1h`, `30m`, `90`, `1h30m`).
        #[arg(long)]
        period: Option<okerr::Interval>,
        /// How long to wait past the period.
        #[arg(long)]
        patience: Option<okerr::Interval>,
        /// The secret updates must carry; empty for none.
        #[arg(long)]
        secret: Option<String>,
        /// Allowed networks (repeatable; replaces the list).
        #[arg(long = "subnet", value_name = "CIDR")]
        subnets: Vec<IpNet>,
        /// Accept updates over HTTP.
        #[arg(long, value_enum)]
        httpupdate: Option<Switch>,
        /// Accept updates over SMTP.
        #[arg(long, value_enum)]
        smtpupdate: Option<Switch>,
        /// Create unknown indicators on their first update.
        #[arg(long, value_enum)]
        autocreate: Option<Switch>,
        /// Alert reduction (`0`, `5m`, `0s 00:30-02:00 5m`); empty for none.
        #[arg(long)]
        reduction: Option<String>,
        /// URL told of every status change; empty for none.
        #[arg(long)]
        webhook: Option<String>,
        /// Delays before a logic indicator's change to ERR counts (`30s 5m`); empty for
        /// none.
        #[arg(long)]
        retry_schedule: Option<String>,
        /// The same for a change to OK.
        #[arg(long)]
        recovery_retry_schedule: Option<String>,
    },
    /// Show one policy, or all of the project.
    Show {
        textid: String,
        policy: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum IndicatorCommand {
    /// Make NAME a logic indicator (created when missing) with this expression; warns on
    /// stderr of names that refer to no indicator.
    Logic {
        textid: String,
        name: String,
        /// The Python expression (`s['web'] and s['db']`): truthy is OK.
        #[arg(long)]
        expr: String,
        /// Comma-separated expressions whose values are the details.
        #[arg(long, default_value = "")]
        dump: String,
        /// Names or subscripts created as 0 when missing (`tags['OK:db']`).
        #[arg(long, default_value = "")]
        init: String,
    },
    /// Make NAME an active check (created when missing) the server runs every period:
    /// `okerr indicator active p1 site httpstatus url=https://example.com/`. Arguments as
    /// `okerr check` takes them; the server checks it at once.
    Active {
        textid: String,
        name: String,
        /// The method: httpstatus, httpgrep, sha1static, sha1dynamic, sslcert, tcpport,
        /// ping, dns, dnsbl, whois.
        method: String,
        /// ARG=VALUE, the method's arguments (`GET /api/checkmethods` lists them).
        args: Vec<String>,
    },
    /// okerr's no-flap wizard: creates NAME-up, OK once NAME has been OK for okthr and
    /// while it has been ERR for less than errthr; prints its name.
    Noflap {
        textid: String,
        name: String,
        /// [default: NAME's period + patience].
        #[arg(long)]
        okthr: Option<okerr::Interval>,
        /// [default: twice NAME's period + patience].
        #[arg(long)]
        errthr: Option<okerr::Interval>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create an API key; prints it (it is shown only this once).
    Create {
        textid: String,
        /// What the key is for.
        #[arg(long, default_value = "")]
        remark: String,
    },
    /// Revoke an API key by its id (see `key list`).
    Revoke { textid: String, keyid: String },
    /// List the keys of a project: id, tab, created, tab, remark.
    List { textid: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MemberCommand {
    /// Add a person, who gets the project's alert e-mails.
    Add {
        textid: String,
        email: String,
        /// Add without alert e-mails.
        #[arg(long)]
        no_alerts: bool,
        /// Send this person the daily summary e-mail (`okerr serve --summary-at`).
        #[arg(long)]
        summary: bool,
    },
}

/// A time of day, `HH:MM` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeOfDay(chrono::NaiveTime);

impl TimeOfDay {
    pub(crate) fn time(self) -> chrono::NaiveTime {
        self.0
    }
}

impl Default for TimeOfDay {
    /// 06:00.
    fn default() -> Self {
        TimeOfDay(chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap_or_default())
    }
}

impl std::str::FromStr for TimeOfDay {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        chrono::NaiveTime::parse_from_str(s, "%H:%M")
            .map(TimeOfDay)
            .map_err(|e| format!("{s:?} is no time of day HH:MM: {e}"))
    }
}

impl<'de> serde::Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
