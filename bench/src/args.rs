//! The command line: `okerr-bench [--backend sqlite|postgres|all] [--quick] [--pg-url URL]`,
//! and what `--quick` changes.

use clap::{Parser, ValueEnum};

use crate::db::Backend;

/// The PostgreSQL database used unless `--pg-url` names another.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Measures okerr's storage backends and prints a Markdown report on stdout (progress on
/// stderr).
#[derive(Debug, Parser)]
#[command(name = "okerr-bench", args_override_self = true)]
pub(crate) struct Options {
    /// The backends to measure.
    #[arg(long = "backend", value_name = "BACKEND", value_enum, default_value_t = Backends::All)]
    backends: Backends,
    /// 2,000 updates instead of 20,000, one run, `claim_due` at 100,000 indicators only.
    #[arg(long)]
    pub(crate) quick: bool,
    /// The PostgreSQL database; the benchmark works in its schema `okerr_bench`, dropped
    /// before and after.
    #[arg(long, value_name = "URL", default_value = DEFAULT_PG_URL)]
    pub(crate) pg_url: String,
}

/// The values of `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backends {
    Sqlite,
    Postgres,
    All,
}

impl Options {
    /// The backends to measure, in order.
    pub(crate) fn backends(&self) -> &'static [Backend] {
        match self.backends {
            Backends::Sqlite => &[Backend::Sqlite],
            Backends::Postgres => &[Backend::Postgres],
            Backends::All => &[Backend::Sqlite, Backend::Postgres],
        }
    }

    /// Updates per single-update and per batched run.
    pub(crate) fn updates(&self) -> usize {
        if self.quick { 2_000 } else { 20_000 }
    }

    /// Runs of each update measurement; the report gives the median.
    pub(crate) fn runs(&self) -> usize {
        if self.quick { 1 } else { 3 }
    }

    /// Updates timed step by step, and `SELECT 1` round trips.
    pub(crate) fn samples(&self) -> usize {
        if self.quick { 500 } else { 2_000 }
    }

    /// Indicator counts of the `claim_due` measurement.
    pub(crate) fn claim_sizes(&self) -> &'static [usize] {
        if self.quick {
            &[100_000]
        } else {
            &[100_000, 1_000_000]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("okerr-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_measure_both_backends_fully() -> Result<(), clap::Error> {
        let options = parse(&[])?;
        assert_eq!(options.backends(), [Backend::Sqlite, Backend::Postgres]);
        assert!(!options.quick);
        assert_eq!(options.pg_url, DEFAULT_PG_URL);
        Ok(())
    }

    #[test]
    fn flags_are_read_and_the_last_one_wins() -> Result<(), clap::Error> {
        let options = parse(&[
            "--backend",
            "postgres",
            "--quick",
            "--pg-url",
            "postgres://x/y",
            "--backend",
            "sqlite",
        ])?;
        assert_eq!(options.backends(), [Backend::Sqlite]);
        assert!(options.quick);
        assert_eq!(options.pg_url, "postgres://x/y");
        assert_eq!(options.updates(), 2_000);
        Ok(())
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert!(parse(&["--backend", "mysql"]).is_err());
        assert!(parse(&["--backend"]).is_err());
        assert!(parse(&["extra"]).is_err());
    }
}
