//! Status changes posted to a policy's `url_statuschange` (spec §8.6).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use okerr::{
    DeliveryReport, IndicatorId, Notifier, NotifyError, OutboundNetworks, OutboundRefused,
    OutboxEntry, Payload,
};
use url::{Host, Url};

/// Why the webhook client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client")]
pub struct WebhookError(#[source] reqwest::Error);

/// Posts okerr's JSON (`{"type": "status_change", …}`) in the form field `data`, each
/// webhook of a batch at once, each with a timeout. A 2xx answer delivers; a connection
/// error, a timeout or a 5xx is tried again later; another 4xx also, at the longest
/// backoff (the endpoint refuses, a person must look).
///
/// It connects only to addresses inside its [`OutboundNetworks`]: names are resolved by
/// a resolver that drops the others (so a name cannot resolve to a public address when
/// checked and to a private one when used: the check is the use), a literal IP is checked
/// as it is, and no proxy or redirect is followed. A refused webhook fails permanently
/// with the reason.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    http: reqwest::Client,
    networks: Arc<OutboundNetworks>,
}

/// Resolves a webhook's host and keeps only the allowed addresses.
#[derive(Debug)]
struct GuardedResolver {
    networks: Arc<OutboundNetworks>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let networks = self.networks.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| networks.allows(a.ip()));
            match (allowed.is_empty(), refused.first()) {
                (true, Some(addr)) => Err(Box::new(OutboundRefused {
                    host,
                    ip: addr.ip(),
                    allowed: networks.to_string(),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

impl WebhookNotifier {
    /// A notifier whose requests give up after `timeout` (okerr: 3 s) and reach only
    /// `networks` (the server's default: [`OutboundNetworks::default`], every address).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS provider).
    pub fn new(timeout: Duration, networks: OutboundNetworks) -> Result<Self, WebhookError> {
        // reqwest is built without a default TLS provider: use rustls with ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let networks = Arc::new(networks);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("okerr-rs/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would connect for us, past the resolver.
            .no_proxy()
            .dns_resolver(GuardedResolver {
                networks: networks.clone(),
            })
            .build()
            .map_err(WebhookError)?;
        Ok(WebhookNotifier { http, networks })
    }

    /// Refuses a URL whose host is a literal IP outside the networks (names are checked
    /// by the resolver, when connecting).
    fn check_literal(&self, url: &Url) -> Result<(), OutboundRefused> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => ip.into(),
            Some(Host::Ipv6(ip)) => ip.into(),
            _ => return Ok(()),
        };
        self.networks.check(url.host_str().unwrap_or_default(), ip)
    }

    async fn post(&self, entry: &OutboxEntry) -> Result<(), NotifyError> {
        let n = &entry.notification;
        let Payload::Webhook { url, change } = &n.payload else {
            return Err(NotifyError::Permanent(
                "not a webhook: the webhook notifier only posts status changes".into(),
            ));
        };
        let data = change
            .to_json(n.textid.as_str(), n.indicator.as_str())
            .to_string();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("data", &data)
            .finish();
        if let Err(refused) = self.check_literal(url) {
            return Err(refused_error(url, &refused));
        }
        let response = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| match refusal_in(&e) {
                Some(refused) => refused_error(url, refused),
                None => NotifyError::Transient(Box::new(e)),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let error = format!("webhook {url} answered {status}").into();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(NotifyError::Transient(error))
        } else {
            Err(NotifyError::Permanent(error))
        }
    }
}

/// A webhook refused by the outbound networks: permanent, until the operator or the owner
/// changes something.
fn refused_error(url: &Url, refused: &OutboundRefused) -> NotifyError {
    NotifyError::Permanent(format!("webhook {url} refused: {refused}").into())
}

/// The resolver's refusal, somewhere in the chain of a request's error.
fn refusal_in(e: &reqwest::Error) -> Option<&OutboundRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<OutboundRefused>() {
            return Some(refused);
        }
        source = err.source();
    }
    None
}

#[async_trait]
impl Notifier for WebhookNotifier {
    /// The changes of one indicator to one URL are posted one after the other, oldest
    /// first, and after a failure the newer ones wait too (they fail with it), so a
    /// receiver sees them in order; different indicators and URLs are posted at once.
    async fn deliver(&self, batch: &[OutboxEntry]) -> DeliveryReport {
        let mut streams: BTreeMap<(IndicatorId, Option<&Url>), Vec<&OutboxEntry>> = BTreeMap::new();
        for entry in batch {
            let url = match &entry.notification.payload {
                Payload::Webhook { url, .. } => Some(url),
                Payload::Alert { .. } => None,
            };
            streams
                .entry((entry.indicator_id, url))
                .or_default()
                .push(entry);
        }
        let posted = join_all(streams.into_values().map(|mut stream| async move {
            stream.sort_by_key(|e| e.id);
            let mut failed = Vec::new();
            let mut blocked: Option<bool> = None; // whether the failure was permanent
            for entry in stream {
                match blocked {
                    None => {
                        if let Err(error) = self.post(entry).await {
                            blocked = Some(error.is_permanent());
                            failed.push((entry.id, error));
                        }
                    }
                    // Waits as long as the older one, to be posted after it.
                    Some(permanent) => {
                        let error = "an older change to this webhook is not delivered yet".into();
                        let error = if permanent {
                            NotifyError::Permanent(error)
                        } else {
                            NotifyError::Transient(error)
                        };
                        failed.push((entry.id, error));
                    }
                }
            }
            failed
        }))
        .await;
        DeliveryReport {
            failed: posted.into_iter().flatten().collect(),
        }
    }
}
