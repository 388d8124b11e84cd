//! Status changes posted to a policy's `url_statuschange` (spec §8.6).

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use okerr::{DeliveryReport, Notifier, NotifyError, OutboxEntry, Payload};

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
    async fn deliver(&self, batch: &[OutboxEntry]) -> DeliveryReport {
        let results = join_all(batch.iter().map(|e| self.post(e))).await;
        DeliveryReport {
            failed: batch
                .iter()
                .zip(results)
                .filter_map(|(e, r)| r.err().map(|error| (e.id, error)))
                .collect(),
        }
    }
}
