//! A project's state in one line, as alert e-mails and pages show it (okerr's
//! `stringstat`, spec §8.2).

use crate::indicator::{Indicator, Status};

/// How many indicators of a project are in which state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectSummary {
    /// Every indicator.
    pub total: usize,
    /// OK and not disabled.
    pub ok: usize,
    /// Needing a look ([`Indicator::needs_attention`]), not disabled.
    pub attention: usize,
    /// ERR and not disabled.
    pub err: usize,
    /// Silent, not disabled.
    pub silent: usize,
    /// In maintenance, not disabled.
    pub maintenance: usize,
    /// Disabled.
    pub disabled: usize,
}

impl ProjectSummary {
    /// Counts the indicators.
    pub fn of<'a>(indicators: impl IntoIterator<Item = &'a Indicator>) -> Self {
        let mut s = ProjectSummary::default();
        for ind in indicators {
            s.total += 1;
            if ind.disabled {
                s.disabled += 1;
                continue;
            }
            match ind.status {
                Status::Ok => s.ok += 1,
                Status::Err => s.err += 1,
            }
            s.attention += usize::from(ind.needs_attention());
            s.silent += usize::from(ind.silent);
            s.maintenance += usize::from(ind.maintenance.is_some());
        }
        s
    }
}

impl std::fmt::Display for ProjectSummary {
    /// okerr's text: `total: 3, OK: 2, ATT: 1, ERR: 1, silent: 0 maintenance: 0, disabled: 0`
    /// (with okerr's missing comma after `silent`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "total: {}, OK: {}, ATT: {}, ERR: {}, silent: {} maintenance: {}, disabled: {}",
            self.total,
            self.ok,
            self.attention,
            self.err,
            self.silent,
            self.maintenance,
            self.disabled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okerrs_line_counts_each_state() {
        let s = ProjectSummary {
            total: 6,
            ok: 3,
            attention: 2,
            err: 2,
            silent: 1,
            maintenance: 1,
            disabled: 1,
        };
        assert_eq!(
            s.to_string(),
            "total: 6, OK: 3, ATT: 2, ERR: 2, silent: 1 maintenance: 1, disabled: 1"
        );
        assert_eq!(ProjectSummary::of([]), ProjectSummary::default());
    }
}
