//! Random textids, API keys and tokens, from the operating system's generator.

use rand::distr::{Alphanumeric, Distribution};

/// `n` random characters of `[A-Za-z0-9]`, as okerr's API keys.
pub(crate) fn token(n: usize) -> String {
    let mut rng = rand::rng();
    Alphanumeric
        .sample_iter(&mut rng)
        .take(n)
        .map(char::from)
        .collect()
}

/// A textid as okerr generates them: 10 characters of `[a-z0-9]`.
pub(crate) fn textid() -> String {
    let mut rng = rand::rng();
    Alphanumeric
        .sample_iter(&mut rng)
        .map(char::from)
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .take(10)
        .collect()
}

/// A new API key for a project: its record (hash only) and the key to show once.
pub(crate) fn api_key(remark: &str, now: chrono::DateTime<chrono::Utc>) -> (okerr::ApiKey, String) {
    let key = token(40);
    let record = okerr::ApiKey::new(token(8), &key, remark, now);
    (record, key)
}
