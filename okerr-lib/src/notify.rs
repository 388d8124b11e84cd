//! Delivery of notifications from the outbox (e-mail, webhooks) behind one trait.

use async_trait::async_trait;

use crate::outbox::{NotificationId, OutboxEntry};

/// Why a notification could not be delivered. Either way it stays in the outbox and is
/// tried again later with backoff: nothing acknowledged is lost.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Likely to work later (a relay down, a timeout).
    #[error("temporary delivery failure: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Unlikely to work without a change of configuration (a refused recipient); tried
    /// again at the longest backoff.
    #[error("permanent delivery failure: {0}")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl NotifyError {
    /// Whether this failure is permanent.
    pub fn is_permanent(&self) -> bool {
        matches!(self, NotifyError::Permanent(_))
    }
}

/// What became of a batch: every entry not listed in `failed` was delivered.
#[derive(Debug, Default)]
pub struct DeliveryReport {
    /// The entries that were not delivered, with the reason.
    pub failed: Vec<(NotificationId, NotifyError)>,
}

impl DeliveryReport {
    /// Every entry of the batch was delivered.
    pub fn all_delivered() -> Self {
        DeliveryReport::default()
    }

    /// No entry of `batch` was delivered, for the same reason.
    pub fn all_failed(batch: &[OutboxEntry], error: impl Fn() -> NotifyError) -> Self {
        DeliveryReport {
            failed: batch.iter().map(|e| (e.id, error())).collect(),
        }
    }
}

/// Delivers released notifications. The engine marks each entry delivered after `deliver`
/// reports it so, and never hands a delivered entry out again; an entry may be handed out
/// twice only if the process dies between delivery and marking (at least once).
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug + 'static {
    /// Delivers a batch of released notifications (alerts and webhooks, of any projects).
    async fn deliver(&self, batch: &[OutboxEntry]) -> DeliveryReport;
}

#[async_trait]
impl<T: Notifier + ?Sized> Notifier for std::sync::Arc<T> {
    async fn deliver(&self, batch: &[OutboxEntry]) -> DeliveryReport {
        (**self).deliver(batch).await
    }
}
