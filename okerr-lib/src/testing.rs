//! Test helpers (feature `test-util`): a clock that only moves when told, and a notifier
//! that records what it was given. Not a stable API.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::notify::{DeliveryReport, Notifier, NotifyError};
use crate::outbox::{OutboxEntry, Payload};

/// A clock that moves only by [`set`](ManualClock::set) and
/// [`advance`](ManualClock::advance). Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock standing at 2025-01-01 00:00:00 UTC.
    pub fn at_epoch() -> Self {
        ManualClock::new(
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        )
    }

    /// Sets the time.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    /// Moves the time forward (or back, for a negative delta).
    pub fn advance(&self, d: TimeDelta) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A notifier that records every entry it delivers, or fails every batch while
/// switched to failing. Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct RecordingNotifier {
    delivered: Arc<Mutex<Vec<OutboxEntry>>>,
    batches: Arc<Mutex<Vec<usize>>>,
    failing: Arc<AtomicBool>,
    arrived: Arc<Notify>,
}

impl RecordingNotifier {
    /// A notifier that delivers.
    pub fn new() -> Self {
        RecordingNotifier::default()
    }

    /// Makes every following delivery fail (`true`) or succeed.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Everything delivered so far, in order.
    pub fn delivered(&self) -> Vec<OutboxEntry> {
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The size of each delivered batch, in order.
    pub fn batches(&self) -> Vec<usize> {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The texts of the alerts delivered so far, in order.
    pub fn alerts(&self) -> Vec<String> {
        self.delivered()
            .into_iter()
            .filter_map(|e| match e.notification.payload {
                Payload::Alert { message, .. } => Some(message),
                Payload::Webhook { .. } => None,
            })
            .collect()
    }

    /// Waits until at least `n` entries were delivered.
    pub async fn wait_for(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            if self.delivered().len() >= n {
                return;
            }
            arrived.await;
        }
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn deliver(&self, batch: &[OutboxEntry]) -> DeliveryReport {
        if self.failing.load(Ordering::SeqCst) {
            return DeliveryReport::all_failed(batch, || {
                NotifyError::Transient("the recording notifier is switched to failing".into())
            });
        }
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch.iter().cloned());
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(batch.len());
        self.arrived.notify_waiters();
        DeliveryReport::all_delivered()
    }
}
