//! Delivers okerr's outbox (spec §8): alert e-mails through an SMTP relay with lettre, one
//! message per recipient carrying all of that recipient's released alerts, and status
//! changes posted to a policy's webhook in the form field `data`. Also the daily summary
//! e-mail ([`DailySummary`]).
//!
//! The [`Engine`](okerr::Engine) decides what is released, batches a recipient's burst
//! ([`EngineConfig::batch_delay`](okerr::EngineConfig)), retries failures with backoff and
//! marks what was delivered; the notifiers here only talk to the outside world and report
//! per entry what went through.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn wire(storage: Arc<dyn okerr::Storage>) -> Result<(), Box<dyn std::error::Error>> {
//! use okerr_notify::{Dispatcher, EmailNotifier, MailConfig, WebhookNotifier};
//! let public_url = url::Url::parse("https://okerr.example.com/")?;
//! let mail = MailConfig::new("smtp://127.0.0.1:25", "okerr@example.com", public_url)?;
//! let clock: Arc<dyn okerr::Clock> = Arc::new(okerr::SystemClock);
//! let email = EmailNotifier::new(mail, storage, clock);
//! let notifier = Dispatcher::new(Some(email), WebhookNotifier::new(std::time::Duration::from_secs(3), Default::default())?);
//! # let _ = notifier; Ok(()) }
//! ```

mod email;
mod summary;
mod webhook;

use async_trait::async_trait;
use okerr::{DeliveryReport, Notifier, NotifyError, OutboxEntry, Payload};

pub use email::{AlertMail, EmailNotifier, MailConfig, MailError, indicator_link};
pub use summary::{DailySummary, SummaryMail, SummaryReport};
pub use webhook::{WebhookError, WebhookNotifier};

/// The server's notifier: alerts to the e-mail notifier, status changes to the webhook
/// notifier. Without a mail relay, alerts fail permanently ("no mail relay configured")
/// and stay in the outbox, tried again at the longest backoff.
#[derive(Debug)]
pub struct Dispatcher {
    email: Option<EmailNotifier>,
    webhook: WebhookNotifier,
}

impl Dispatcher {
    /// A dispatcher; `email` is `None` when no relay is configured.
    pub fn new(email: Option<EmailNotifier>, webhook: WebhookNotifier) -> Self {
        Dispatcher { email, webhook }
    }
}

#[async_trait]
impl Notifier for Dispatcher {
    async fn deliver(&self, batch: &[OutboxEntry]) -> DeliveryReport {
        let (alerts, hooks): (Vec<OutboxEntry>, Vec<OutboxEntry>) = batch
            .iter()
            .cloned()
            .partition(|e| matches!(e.notification.payload, Payload::Alert { .. }));
        let (mut report, alerts) = match &self.email {
            Some(email) => {
                futures_util::future::join(self.webhook.deliver(&hooks), email.deliver(&alerts))
                    .await
            }
            None => (
                self.webhook.deliver(&hooks).await,
                DeliveryReport::all_failed(&alerts, || {
                    NotifyError::Permanent("no mail relay configured (--mail-relay)".into())
                }),
            ),
        };
        report.failed.extend(alerts.failed);
        report
    }
}
