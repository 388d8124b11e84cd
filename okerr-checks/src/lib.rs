//! okerr's active checks (spec §6.5): the server probes web sites, certificates, ports,
//! DNS records, domains and hosts itself.
//!
//! Each check is a function of a request to a result: [`Checker::check`] takes the
//! method's arguments ([`okerr::ActiveArgs`]) and `now`, and returns a [`CheckResult`]
//! (status, okerr's details text, arguments learned, alerts, problem flag). It stores
//! nothing and reads no clock (a certificate's days left are counted from the `now` it is
//! given, and TLS certificates are validated at that time too), so the engine, a test or a
//! remote sensor can run the same code.
//!
//! Every check is bounded: besides okerr's own network timeouts (HTTP 3 s, TCP 2 s, ping
//! 2 s an echo, TLS 10 s), [`CheckConfig::timeout`] cuts any check that has not finished,
//! which then is ERR `Check did not finish in {n} s`.
//!
//! Every connection goes only to addresses the operator's
//! [`OutboundNetworks`] allow (the same setting as policy
//! webhooks): names are resolved and filtered before connecting, literal addresses are
//! checked as they are. A refused target is ERR with the reason.
//!
//! Watching a web site and its certificate:
//!
//! ```no_run
//! use okerr::{ActiveArgs, ActiveMethod, Status};
//! use okerr_checks::{CheckConfig, Checker};
//!
//! # async fn watch() -> Result<(), Box<dyn std::error::Error>> {
//! let checker = Checker::new(CheckConfig::default())?;
//! let site = ActiveArgs::with(
//!     ActiveMethod::HttpGrep,
//!     [("url", "https://www.example.com/"), ("musthave", "Example Domain")],
//! )?;
//! let cert = ActiveArgs::with(
//!     ActiveMethod::SslCert,
//!     [("host", "www.example.com"), ("days", "14")],
//! )?;
//! let now = chrono::Utc::now();
//! for args in [site, cert] {
//!     let result = checker.check(&args, now).await;
//!     // e.g. "sslcert: OK 87 days left"
//!     println!("{}: {} {}", args.method(), result.status, result.details);
//!     if result.status == Status::Err { /* alert */ }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The crates: reqwest (rustls, ring) for HTTP, tokio-rustls for the certificate check,
//! x509-cert to read its expiry, hickory-resolver for DNS, surge-ping for ICMP, tokio for
//! TCP and whois (docs/decisions.md, "Active checks").

#![forbid(unsafe_code)]

mod dns;
mod http;
mod options;
mod ping;
mod resolve;
mod tcp;
mod tls;
mod whois;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use okerr::{ActiveArgs, ActiveMethod, OutboundNetworks};
use rustls::pki_types::CertificateDer;

pub use dns::DNSBL_ZONES;
pub use http::MAX_BODY;

/// The version okerr's sensor reports in its User-Agent (`OkerrSensor/{version}`).
pub const SENSOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a check found: the type is okerr-lib's (`okerr::CheckResult`), which the engine
/// decides on; re-exported here so that this crate's API stands alone.
pub use okerr::CheckResult;

/// Where DNS queries (the `dns` and `dnsbl` checks, and every host name the other checks
/// connect to) are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nameserver {
    /// The system's: `/etc/resolv.conf` for DNS checks, the system resolver (getaddrinfo)
    /// for host names.
    #[default]
    System,
    /// This server, over UDP (and TCP for truncated answers), for both.
    At(SocketAddr),
}

/// Where whois questions go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WhoisServer {
    /// `whois.iana.org:43`, then the registry it refers to (`refer:`).
    #[default]
    Iana,
    /// This server only (`host:port`), no referral.
    At(String),
}

/// How the checks run: the operator's settings.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The hard bound on one check, whatever it waits for (default 20 s).
    pub timeout: Duration,
    /// The timeout of an HTTP request (okerr: 3 s).
    pub http_timeout: Duration,
    /// The timeout of a TCP connection and of its banner (okerr: 2 s).
    pub tcp_timeout: Duration,
    /// The timeout of the TLS connection of `sslcert` (okerr: 10 s).
    pub tls_timeout: Duration,
    /// How long each of ping's three echoes waits for its reply (okerr: 2 s).
    pub ping_timeout: Duration,
    /// The pause between ping's echoes (okerr: 1 s).
    pub ping_interval: Duration,
    /// The User-Agent of HTTP checks (okerr: `OkerrSensor/{version}`).
    pub user_agent: String,
    /// The networks checks may connect to.
    pub outbound: OutboundNetworks,
    /// Where DNS questions go.
    pub nameserver: Nameserver,
    /// Where whois questions go.
    pub whois: WhoisServer,
    /// Certificate authorities trusted besides the system's (a private CA; tests).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Whether the system's certificate authorities are trusted (default yes).
    pub system_roots: bool,
    /// The DNS block lists of `dnsbl` (default okerr's [`DNSBL_ZONES`]).
    pub dnsbl_zones: Vec<String>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            timeout: Duration::from_secs(20),
            http_timeout: Duration::from_secs(3),
            tcp_timeout: Duration::from_secs(2),
            tls_timeout: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(1),
            user_agent: format!("OkerrSensor/{SENSOR_VERSION}"),
            outbound: OutboundNetworks::default(),
            nameserver: Nameserver::System,
            whois: WhoisServer::Iana,
            extra_roots: Vec::new(),
            system_roots: true,
            dnsbl_zones: DNSBL_ZONES.iter().map(|z| (*z).to_owned()).collect(),
        }
    }
}

/// Why a [`Checker`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckerError {
    /// The DNS resolver could not be made.
    #[error("cannot make the DNS resolver")]
    Dns(#[source] hickory_resolver::net::NetError),
    /// A certificate authority of `extra_roots` is not usable.
    #[error("a certificate authority of extra_roots is not usable")]
    Root(#[source] rustls::Error),
}

/// Runs checks: the settings and what the checks share (the DNS resolver, the trusted
/// certificate authorities, the ICMP sockets). Cheap to share (`Arc` inside).
#[derive(Debug, Clone)]
pub struct Checker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CheckConfig,
    resolver: resolve::Lookup,
    tls: tls::Trust,
    ping: ping::Pinger,
}

impl Checker {
    /// A checker with these settings.
    ///
    /// # Errors
    /// When the DNS resolver cannot be made or an extra root is not a usable certificate
    /// authority. (An unreadable `/etc/resolv.conf` is no error: DNS checks then fail
    /// each with the reason, and host names are still resolved by the system.)
    pub fn new(config: CheckConfig) -> Result<Self, CheckerError> {
        // reqwest and tokio-rustls are built without a default TLS provider: ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resolver = resolve::Lookup::new(config.nameserver, config.outbound.clone())?;
        let tls = tls::Trust::new(config.system_roots, &config.extra_roots)?;
        Ok(Checker {
            inner: Arc::new(Inner {
                config,
                resolver,
                tls,
                ping: ping::Pinger::default(),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &CheckConfig {
        &self.inner.config
    }

    /// Runs the check `args` describe, at `now`, within [`CheckConfig::timeout`].
    pub async fn check(&self, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
        let bound = self.inner.config.timeout;
        match tokio::time::timeout(bound, self.run(args, now)).await {
            Ok(result) => result,
            Err(_) => CheckResult::timed_out(bound),
        }
    }

    async fn run(&self, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
        let i = &*self.inner;
        match args.method() {
            ActiveMethod::HttpStatus => http::httpstatus(i, args, now).await,
            ActiveMethod::HttpGrep => http::httpgrep(i, args, now).await,
            ActiveMethod::Sha1Static => http::sha1(i, args, now, false).await,
            ActiveMethod::Sha1Dynamic => http::sha1(i, args, now, true).await,
            ActiveMethod::SslCert => tls::sslcert(i, args, now).await,
            ActiveMethod::TcpPort => tcp::tcpport(i, args).await,
            ActiveMethod::Ping => ping::ping(i, args).await,
            ActiveMethod::Dns => dns::dns(i, args).await,
            ActiveMethod::Dnsbl => dns::dnsbl(i, args).await,
            ActiveMethod::Whois => whois::whois(i, args, now).await,
        }
    }
}

/// The engine's seam: the scheduler runs due checks through [`okerr::Sensor`].
#[async_trait::async_trait]
impl okerr::Sensor for Checker {
    async fn check(&self, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
        Checker::check(self, args, now).await
    }
}

/// Whole days from `now` to `then`, rounded down as Python's `timedelta.days` (so 1 hour
/// ago is -1).
fn days_between(now: DateTime<Utc>, then: DateTime<Utc>) -> i64 {
    (then - now).num_seconds().div_euclid(86_400)
}

/// Whether this process may send ICMP echoes (raw sockets as root, or unprivileged ICMP
/// sockets where `net.ipv4.ping_group_range` allows them); the reason when not.
///
/// # Errors
/// The reason the ICMP socket could not be opened.
pub async fn icmp_available() -> Result<(), String> {
    ping::Pinger::available().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_round_down_like_python() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap();
        let at = |d, h| Utc.with_ymd_and_hms(2030, 1, d, h, 0, 0).unwrap();
        assert_eq!(days_between(now, at(3, 11)), 1);
        assert_eq!(days_between(now, at(3, 12)), 2);
        assert_eq!(days_between(now, at(1, 11)), -1);
        assert_eq!(days_between(now, at(1, 12)), 0);
    }
}
