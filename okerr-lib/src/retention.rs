//! Bounded growth: what the scheduler prunes, and when okerr gives up on a notification.
//!
//! Pruning is periodic, batched scheduler work ([`Engine::prune`](crate::Engine::prune)):
//! each statement deletes a bounded chunk through an index, so that the update path's
//! statements stay as they are and a backlog never holds the writer long.

use chrono::{DateTime, TimeDelta, Utc};

use crate::engine::Inner;
use crate::storage::StorageError;

/// What okerr keeps and for how long (docs/operations.md, `## Retention`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The newest log lines kept per indicator (1,000).
    pub log_lines: u32,
    /// Log lines older than this are deleted (31 days, okerr's `LOGRECORD_AGE`).
    pub log_age: TimeDelta,
    /// Delivered notifications and dead letters are deleted this long after they were
    /// delivered or given up (7 days).
    pub outbox_age: TimeDelta,
    /// A notification still failing this long after its release is given up: a dead letter,
    /// never tried again (24 hours).
    pub dead_letter_after: TimeDelta,
    /// How often the scheduler prunes (1 minute).
    pub prune_every: TimeDelta,
    /// The most rows one prune statement deletes (1,000).
    pub prune_chunk: u32,
    /// The most prune statements of one pass (50): a backlog is worked off over several
    /// passes, between which expiries and deliveries run.
    pub prune_budget: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            log_lines: 1000,
            log_age: TimeDelta::days(31),
            outbox_age: TimeDelta::days(7),
            dead_letter_after: TimeDelta::hours(24),
            prune_every: TimeDelta::minutes(1),
            prune_chunk: 1000,
            prune_budget: 50,
        }
    }
}

/// What one prune pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Log lines deleted.
    pub log_lines: u64,
    /// Delivered notifications and dead letters deleted.
    pub notifications: u64,
    /// Whether the budget ran out before everything beyond the bounds was deleted.
    pub more: bool,
}

/// One prune pass at `now`, at most `prune_budget` statements.
pub(crate) async fn prune(inner: &Inner, now: DateTime<Utc>) -> Result<PruneReport, StorageError> {
    let storage = &inner.storage;
    let r = &inner.config.retention;
    let mut report = PruneReport::default();
    let mut budget = r.prune_budget.max(1);
    loop {
        let pruned = storage
            .prune_log(r.log_lines, now - r.log_age, r.prune_chunk)
            .await?;
        report.log_lines += pruned.deleted;
        budget -= 1;
        if !pruned.more {
            break;
        }
        if budget == 0 {
            report.more = true;
            return Ok(report);
        }
    }
    while budget > 0 {
        let purged = storage
            .purge_outbox(now - r.outbox_age, r.prune_chunk)
            .await?;
        report.notifications += purged;
        budget -= 1;
        if purged < u64::from(r.prune_chunk) {
            return Ok(report);
        }
    }
    report.more = true;
    Ok(report)
}
