//! A recipient's burst of alerts, held back until it settles (spec §8.2: okerr sends a
//! recipient's alerts together once the newest is `batch_delay` old).
//!
//! The node that commits an alert stores it held back ([`Inner::hold_for_bursts`]):
//! storage hands the first alert of a recipient's burst out once it settles, and the
//! later ones at the burst's cap (its oldest alert plus [`BATCH_LONGEST_WAIT`] delays).
//! The node remembers each recipient's burst, from what it commits and what it claims.
//!
//! A claimed alert whose burst has not settled (the first one while newer ones come, or
//! one committed by another node, which storage hands out at its release) is kept claimed
//! by this node until the burst's cap: one renewal of its lease, however long the burst
//! goes on. When the burst settles before its cap (no newer alert for a delay), one
//! renewal ends the leases this node holds and one statement makes the alerts it stored
//! held back claimable, and the next claim delivers them together. A node that dies
//! loses only that memory: its leases and the alerts it held back end at the cap, and any
//! node delivers them then.
//!
//! Holding an alert to the settling time instead (as up to 2026-12) claimed and gave back
//! each alert of a steady burst once per delay, up to six times: under a stream of flips,
//! most of the outbox's work was that (docs/benchmarks.md).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use super::{Engine, Inner};
use crate::outbox::{NotificationId, OutboxEntry};
use crate::storage::{Commit, StorageError};

/// How many times `batch_delay` a recipient's oldest held-back alert waits at most.
pub const BATCH_LONGEST_WAIT: i32 = 6;

/// A burst of one recipient's alerts held back by this node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wave {
    /// The release of its oldest alert.
    oldest: Option<DateTime<Utc>>,
    /// When its newest alert settles (`batch_delay` after its release).
    settles: Option<DateTime<Utc>>,
    /// The alerts this node holds claimed, by the end of their lease (the cap of the wave
    /// when they were held).
    held: BTreeMap<DateTime<Utc>, Vec<NotificationId>>,
    /// The caps this node's own later alerts of the burst were committed held back to
    /// ([`Inner::hold_for_bursts`]): when the burst settles before, they are made
    /// claimable at once.
    stored_to: BTreeSet<DateTime<Utc>>,
}

impl Wave {
    /// Takes in an alert released at `released`.
    fn extend(&mut self, released: DateTime<Utc>, delay: TimeDelta) {
        let settles = released
            .checked_add_signed(delay)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.oldest = Some(self.oldest.map_or(released, |o| o.min(released)));
        self.settles = Some(self.settles.map_or(settles, |s| s.max(settles)));
    }

    /// Takes in the alerts of `other` (not what it holds).
    fn absorb(&mut self, other: &Wave) {
        self.oldest = self.oldest.into_iter().chain(other.oldest).min();
        self.settles = self.settles.into_iter().chain(other.settles).max();
    }

    /// Whether this node holds, claimed or in storage, alerts of it.
    fn holds_any(&self) -> bool {
        !self.held.is_empty() || !self.stored_to.is_empty()
    }

    /// When its oldest alert has waited `longest`.
    fn cap(&self, longest: TimeDelta) -> DateTime<Utc> {
        self.oldest
            .and_then(|o| o.checked_add_signed(longest))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// When the burst goes out: once its newest settled, or its oldest waited `longest`.
    fn goes_at(&self, longest: TimeDelta) -> DateTime<Utc> {
        self.settles
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .min(self.cap(longest))
    }
}

impl Inner {
    /// `batch_delay` and the longest wait, or `None` when alerts are not held back.
    fn burst_delays(&self) -> Option<(TimeDelta, TimeDelta)> {
        let delay = self.config.batch_delay;
        (delay > TimeDelta::zero()).then(|| {
            let longest = delay
                .checked_mul(BATCH_LONGEST_WAIT)
                .unwrap_or(TimeDelta::MAX);
            (delay, longest)
        })
    }

    /// The bursts this node holds back, by recipient.
    fn waves(&self) -> MutexGuard<'_, HashMap<String, Wave>> {
        self.batch_waves
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds back each notification of `commits` that has a batch key until its burst may
    /// go out ([`Notification::hold_until`](crate::Notification::hold_until)), so that storage does not hand it out before and a
    /// held-back alert is written once or twice, not claimed and held at once (up to
    /// 2026-12, each alert was claimed, held to its burst's cap, given back and claimed
    /// again: five writes to its row, however the burst went on).
    ///
    /// The first alert of a recipient's burst is held until it settles (`batch_delay`
    /// after its release); the later ones, until the burst's cap: while they come, the
    /// burst cannot go before the cap or before they settle, and when it settles earlier
    /// this node makes them claimable at once ([`release_settled_bursts`]). This node's
    /// bursts take the alerts in, so that it knows a burst has not settled while storage
    /// still holds newer alerts back; a burst that went out and holds nothing starts
    /// afresh. Call it before the alerts are committed: an alert whose commit then fails
    /// only makes its burst wait for it.
    ///
    /// An alert that alert reduction releases later is left alone: a burst is made of
    /// released alerts only (okerr looks at the newest *released* one), so it joins one
    /// when it is claimed at its release.
    ///
    /// [`release_settled_bursts`]: Engine::release_settled_bursts
    pub(crate) fn hold_for_bursts<'a>(&self, commits: impl IntoIterator<Item = &'a mut Commit>) {
        let Some((delay, longest)) = self.burst_delays() else {
            return;
        };
        if self.notifier.is_none() {
            return;
        }
        let mut alerts = commits
            .into_iter()
            .flat_map(|c| c.notifications.iter_mut())
            .filter(|n| n.batch_key().is_some())
            .peekable();
        if alerts.peek().is_none() {
            return;
        }
        let now = self.clock.now();
        let mut waves = self.waves();
        for n in alerts {
            let Some(key) = n.batch_key().filter(|_| n.release_at <= now) else {
                continue;
            };
            let wave = match waves.get_mut(key) {
                Some(wave) => wave,
                None => waves.entry(key.to_owned()).or_default(),
            };
            if !wave.holds_any() && wave.goes_at(longest) <= now {
                *wave = Wave::default();
            }
            let first = wave.oldest.is_none();
            wave.extend(n.release_at, delay);
            let hold = if first {
                wave.goes_at(longest)
            } else {
                wave.cap(longest)
            };
            if !first && hold > n.release_at && hold > now {
                wave.stored_to.insert(hold);
            }
            n.hold_until = Some(hold);
        }
    }

    /// When the earliest burst this node holds alerts of goes out.
    pub(crate) fn next_burst_release(&self) -> Option<DateTime<Utc>> {
        let (_, longest) = self.burst_delays()?;
        let waves = self.waves();
        waves
            .values()
            .filter(|w| w.holds_any())
            .map(|w| w.goes_at(longest))
            .min()
    }
}

impl Engine {
    /// Ends the leases of the alerts this node holds of the bursts that go out at `now`,
    /// so that the next claim takes them.
    ///
    /// # Errors
    /// When storage fails; the alerts then go out when their leases end.
    pub(super) async fn release_settled_bursts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let Some((_, longest)) = self.inner.burst_delays() else {
            return Ok(());
        };
        let mut due: Vec<(DateTime<Utc>, Vec<NotificationId>)> = Vec::new();
        let mut stored = BTreeSet::new();
        {
            let mut waves = self.inner.waves();
            for wave in waves
                .values_mut()
                .filter(|w| w.holds_any() && w.goes_at(longest) <= now)
            {
                due.extend(std::mem::take(&mut wave.held));
                stored.extend(std::mem::take(&mut wave.stored_to));
            }
        }
        due.retain(|(until, _)| *until > now);
        stored.retain(|until| *until > now);
        for (until, ids) in &due {
            self.inner
                .storage
                .renew_notifications(ids, *until, now)
                .await?;
        }
        for until in stored {
            self.inner
                .storage
                .release_held_notifications(until, now)
                .await?;
        }
        Ok(())
    }

    /// The entries of `batch`, claimed at `claimed` (leased until `claimed + lease`), whose
    /// burst has settled: a recipient's released alerts wait until the newest of them is
    /// `batch_delay` old, or until the oldest has waited [`BATCH_LONGEST_WAIT`] times that.
    /// The others stay claimed by this node until the burst's cap and are left out.
    ///
    /// A burst is usually claimed in several passes, so the node remembers each
    /// recipient's burst it holds back: the alerts claimed later extend it, and the ones
    /// held earlier come back with it ([`release_settled_bursts`]). A burst whose alerts
    /// another node claims is remembered by each node for its own part; each alert still
    /// goes out within the longest wait of its release.
    ///
    /// [`release_settled_bursts`]: Engine::release_settled_bursts
    pub(super) async fn settled(
        &self,
        batch: Vec<OutboxEntry>,
        claimed: DateTime<Utc>,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        let Some((delay, longest)) = self.inner.burst_delays() else {
            return Ok(batch);
        };
        let mut claimed_waves: HashMap<&str, Wave> = HashMap::new();
        for entry in &batch {
            if let Some(key) = entry.notification.batch_key() {
                claimed_waves
                    .entry(key)
                    .or_default()
                    .extend(entry.notification.release_at, delay);
            }
        }
        // The claimed recipients whose burst (with what this node held back of it before)
        // does not go out now: the cap to hold their alerts to.
        let mut hold_until: HashMap<&str, DateTime<Utc>> = HashMap::new();
        {
            let mut waves = self.inner.waves();
            // A burst that went out a delay ago, holding nothing, is forgotten.
            waves.retain(|_, w| {
                w.holds_any()
                    || w.goes_at(longest)
                        .checked_add_signed(delay)
                        .is_none_or(|t| t > claimed)
            });
            for (key, new) in claimed_waves {
                let wave = waves.entry(key.to_owned()).or_default();
                wave.absorb(&new);
                if wave.goes_at(longest) > claimed {
                    hold_until.insert(key, wave.cap(longest));
                } else {
                    // What the node held of it was released before this claim.
                    waves.remove(key);
                }
            }
        }
        let mut waiting: BTreeMap<(DateTime<Utc>, &str), Vec<NotificationId>> = BTreeMap::new();
        for entry in &batch {
            let Some(key) = entry.notification.batch_key() else {
                continue;
            };
            if let Some(&until) = hold_until.get(key) {
                waiting.entry((until, key)).or_default().push(entry.id);
            }
        }
        let lease = claimed + self.inner.config.lease;
        let mut left_out = HashSet::new();
        for ((until, key), ids) in waiting {
            left_out.extend(ids.iter().copied());
            let held = self
                .inner
                .storage
                .renew_notifications(&ids, lease, until)
                .await?;
            if held.is_empty() {
                continue;
            }
            let mut waves = self.inner.waves();
            waves
                .entry(key.to_owned())
                .or_default()
                .held
                .entry(until)
                .or_default()
                .extend(held);
        }
        Ok(batch
            .into_iter()
            .filter(|e| !left_out.contains(&e.id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(s)
    }

    #[test]
    fn a_wave_goes_when_its_newest_settles_or_at_its_cap() {
        let delay = TimeDelta::seconds(10);
        let longest = delay * BATCH_LONGEST_WAIT;
        let mut w = Wave::default();
        w.extend(at(100), delay);
        assert_eq!(w.goes_at(longest), at(110));
        w.extend(at(105), delay);
        w.extend(at(95), delay);
        assert_eq!(w.goes_at(longest), at(115));
        assert_eq!(w.cap(longest), at(155));
        w.extend(at(150), delay);
        assert_eq!(w.goes_at(longest), at(155), "the cap of the oldest");
    }
}
