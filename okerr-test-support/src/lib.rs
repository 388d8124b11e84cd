//! What the tests of several okerr crates share, so that none of them needs the
//! end-to-end crate `tests/` (which runs the `okerr` binary):
//!
//! - [`update_table`]: the spec's response table (okerr-server.md §5.4) as data, which the
//!   engine (okerr-lib), the HTTP front end (okerr-http) and the binary (`tests/`) each run;
//! - [`mail`]: a real SMTP server (aiosmtpd) and client (swaks) for the tests that mail;
//! - [`from_env`] and [`value_from_env`]: the one skip-or-require rule for real peers that
//!   `.ci/services.sh` provides;
//! - [`poll`]: a bounded wait for what only a real process does.

#![forbid(unsafe_code)]

pub mod mail;
pub mod update_table;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Polls `f` every `every` until it returns `Some`, at most for `timeout`; for what only
/// the server's own scheduler does. Tests do not sleep otherwise.
///
/// # Panics
/// On timeout, naming `what`.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = f() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// A real peer's path from the environment variable `var`, which `ensure` (a function of
/// `.ci/services.sh`) sets. Unset: prints that the test is skipped and returns `None`.
///
/// # Panics
/// When `var` is unset and the variable `require` is `1` (`.ci/test` sets it: in CI a
/// missing peer fails the test instead of skipping it).
pub fn from_env(var: &str, require: &str, ensure: &str) -> Option<PathBuf> {
    value_from_env(var, require, ensure).map(PathBuf::from)
}

/// The value of the environment variable `var` (a path, a URL), which `ensure` (a function
/// of `.ci/services.sh`) sets. Unset or empty: prints that the test is skipped and
/// returns `None`.
///
/// # Panics
/// When `var` is unset and the variable `require` is `1`.
pub fn value_from_env(var: &str, require: &str, ensure: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(value) => Some(value),
        None => {
            assert!(
                std::env::var(require).as_deref() != Ok("1"),
                "{require}=1 but {var} is unset: run `bash .ci/test`, or \
                 `source .ci/services.sh && {ensure}`"
            );
            eprintln!("skipping: {var} is unset (`source .ci/services.sh && {ensure}` sets it)");
            None
        }
    }
}
