//! Status changes posted to a policy's `url_statuschange` (spec §8.6).

use std::time::Duration;

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures_util::future::join_all;
use okerr::{DeliveryReport, IndicatorId, Notifier, NotifyError, OutboxEntry, Payload};
use url::Url;

/// Why the webhook client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client")]
pub struct WebhookError(#[source] reqwest::Error);

/// Posts okerr's JSON (`{"type": "status_change", …}`) in the form field `data`, each
/// webhook of a batch at once, each with a timeout. A 2xx answer delivers; a connection
/// error, a timeout or a 5xx is tried again later; another 4xx also, at the longest
/// backoff (the endpoint refuses, a person must look).
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    http: reqwest::Client,
}

impl WebhookNotifier {
    /// A notifier whose requests give up after `timeout` (okerr: 3 s).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS provider).
    pub fn new(timeout: Duration) -> Result<Self, WebhookError> {
        // reqwest is built without a default TLS provider: use rustls with ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("okerr-rs/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WebhookError)?;
        Ok(WebhookNotifier { http })
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
        let response = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| NotifyError::Transient(Box::new(e)))?;
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
