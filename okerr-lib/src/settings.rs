//! Server-wide settings that okerr took from plans.

use crate::duration::Interval;

/// Server-wide limits. okerr took them from the owner's plan (`minperiod` 3600 s, patience
/// at least 300 s); here they are server settings, 0 by default, so short periods work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Periods shorter than this count as this long.
    pub min_period: Interval,
    /// Patience shorter than this counts as this long.
    pub min_patience: Interval,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_period: Interval::from_secs(0),
            min_patience: Interval::from_secs(0),
        }
    }
}

impl Settings {
    /// okerr's own limits: period at least 3600 s, patience at least 300 s.
    pub fn okerr_plan() -> Self {
        Settings {
            min_period: Interval::from_secs(3600),
            min_patience: Interval::from_secs(300),
        }
    }
}
