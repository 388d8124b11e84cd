//! Host names to addresses, keeping only those the outbound networks allow.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use okerr::{OutboundNetworks, OutboundRefused};

use crate::{CheckerError, Nameserver};

/// Why a target cannot be connected to.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TargetError {
    /// The name does not resolve (the resolver's text).
    #[error("{0}")]
    Resolve(String),
    /// Every address is outside the outbound networks.
    #[error(transparent)]
    Refused(#[from] OutboundRefused),
}

/// The resolver of the checks: hickory for DNS checks (and for host names when a
/// nameserver is set), the system's otherwise; every answer filtered by the networks.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    pub(crate) dns: TokioResolver,
    system_names: bool,
    pub(crate) networks: Arc<OutboundNetworks>,
}

impl Lookup {
    pub(crate) fn new(ns: Nameserver, networks: OutboundNetworks) -> Result<Self, CheckerError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match ns {
            // Without a readable /etc/resolv.conf (some containers) DNS checks fail with
            // hickory's "no connections available", host names still resolve by the system.
            Nameserver::System => TokioResolver::builder(provider.clone()).unwrap_or_else(|_| {
                TokioResolver::builder_with_config(ResolverConfig::default(), provider)
            }),
            Nameserver::At(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut server.connections {
                    c.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        // okerr's sensor asks afresh each time (a changed record is seen at once) and
        // takes names as absolute (no search list).
        opts.cache_size = 0;
        opts.ndots = 0;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        let dns = builder.build().map_err(CheckerError::Dns)?;
        Ok(Lookup {
            dns,
            system_names: ns == Nameserver::System,
            networks: Arc::new(networks),
        })
    }

    /// Every address of `host` (an IP literal is itself), unfiltered.
    pub(crate) async fn all(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if self.system_names {
            let found = tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| e.to_string())?;
            let mut ips: Vec<IpAddr> = Vec::new();
            for a in found {
                if !ips.contains(&a.ip()) {
                    ips.push(a.ip());
                }
            }
            return Ok(ips);
        }
        let name = if host.ends_with('.') {
            host.to_owned()
        } else {
            format!("{host}.")
        };
        let found = self.dns.lookup_ip(name).await.map_err(|e| e.to_string())?;
        Ok(found.iter().collect())
    }

    /// The addresses of `host` the networks allow, in the resolver's order.
    pub(crate) async fn allowed(&self, host: &str) -> Result<Vec<IpAddr>, TargetError> {
        let ips = self.all(host).await.map_err(TargetError::Resolve)?;
        self.filter(host, ips)
    }

    /// `ips` less the refused ones; the refusal when none is left.
    pub(crate) fn filter(&self, host: &str, ips: Vec<IpAddr>) -> Result<Vec<IpAddr>, TargetError> {
        let first = ips.first().copied();
        let allowed: Vec<IpAddr> = ips
            .into_iter()
            .filter(|ip| self.networks.allows(*ip))
            .collect();
        match (allowed.is_empty(), first) {
            (true, Some(ip)) => Err(self.networks.check(host, ip).err().map_or_else(
                || TargetError::Resolve(format!("no address for {host}")),
                TargetError::Refused,
            )),
            (true, None) => Err(TargetError::Resolve(format!("no address for {host}"))),
            (false, _) => Ok(allowed),
        }
    }

    /// Checks one address.
    pub(crate) fn check(&self, host: &str, ip: IpAddr) -> Result<(), OutboundRefused> {
        self.networks.check(host, ip)
    }
}

/// The resolver reqwest uses: [`Lookup::allowed`], so a name cannot resolve to an allowed
/// address when checked and to a forbidden one when connected (the check is the use).
#[derive(Debug, Clone)]
pub(crate) struct Guarded(pub(crate) Lookup);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match lookup.allowed(&host).await {
                Ok(ips) => Ok(Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)))
                    as reqwest::dns::Addrs),
                Err(e) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}
