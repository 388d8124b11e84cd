//! How okerr's values are stored in SQL rows: times as microseconds since the epoch, and
//! projects, indicators and notifications as JSON next to the columns they are found by.
//!
//! A damaged row is an error, never a default: a time out of range, a negative version or
//! count, a log kind that does not exist, JSON that is not the value.

use chrono::{DateTime, Utc};
use okerr::storage::StorageError;
use okerr::{
    Indicator, IndicatorId, LogKind, LogLine, NotificationId, OutboxEntry, Project, ProjectId,
};

/// The error of a row that cannot be what it should be.
#[derive(Debug, thiserror::Error)]
#[error("damaged row: {what} {value}")]
pub struct Damaged {
    what: &'static str,
    value: String,
}

fn damaged(backend: &'static str, what: &'static str, value: impl ToString) -> StorageError {
    StorageError::backend(
        backend,
        Damaged {
            what,
            value: value.to_string(),
        },
    )
}

/// A time as microseconds since the Unix epoch.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time from microseconds since the Unix epoch.
///
/// # Errors
/// When `m` is out of chrono's range.
pub fn from_micros(backend: &'static str, m: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_micros(m).ok_or_else(|| damaged(backend, "time", m))
}

/// A version or a count from its column.
///
/// # Errors
/// When `v` is negative.
pub fn unsigned(backend: &'static str, what: &'static str, v: i64) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| damaged(backend, what, v))
}

/// A value as JSON text.
///
/// # Errors
/// A `Backend` error of `backend` when the value cannot be serialized.
pub fn to_json<T: serde::Serialize + ?Sized>(
    backend: &'static str,
    v: &T,
) -> Result<String, StorageError> {
    // Room for an indicator (about 600 bytes) from the start: `to_string` starts at 128
    // bytes and copies the text each time it doubles.
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, v).map_err(|e| StorageError::backend(backend, e))?;
    String::from_utf8(out).map_err(|e| StorageError::backend(backend, e))
}

/// A value from JSON text.
///
/// # Errors
/// A `Backend` error of `backend` when the text is not such a value.
pub fn from_json<T: serde::de::DeserializeOwned>(
    backend: &'static str,
    s: &str,
) -> Result<T, StorageError> {
    serde_json::from_str(s).map_err(|e| StorageError::backend(backend, e))
}

/// A project from its row: the id and version columns win over the JSON.
///
/// # Errors
/// When `data` is not a project or `version` is negative.
pub fn project(
    backend: &'static str,
    id: i64,
    version: i64,
    data: &str,
) -> Result<Project, StorageError> {
    let mut project: Project = from_json(backend, data)?;
    project.id = ProjectId(id);
    project.version = unsigned(backend, "project version", version)?;
    Ok(project)
}

/// An indicator from its row: the id and version columns win over the JSON.
///
/// # Errors
/// When `data` is not an indicator or `version` is negative.
pub fn indicator(
    backend: &'static str,
    id: i64,
    version: i64,
    data: &str,
) -> Result<Indicator, StorageError> {
    let mut ind: Indicator = from_json(backend, data)?;
    ind.id = IndicatorId(id);
    ind.version = unsigned(backend, "indicator version", version)?;
    Ok(ind)
}

/// A log line from its row.
///
/// # Errors
/// When the time is out of range or the kind unknown.
pub fn log_line(
    backend: &'static str,
    time: i64,
    kind: &str,
    message: String,
) -> Result<LogLine, StorageError> {
    Ok(LogLine {
        time: from_micros(backend, time)?,
        kind: kind
            .parse::<LogKind>()
            .map_err(|_| damaged(backend, "log kind", kind))?,
        message,
    })
}

/// The columns of an outbox row besides the notification's JSON.
#[derive(Debug)]
pub struct OutboxRow<'a> {
    /// `id`.
    pub id: i64,
    /// `indicator_id`.
    pub indicator_id: i64,
    /// `attempts`.
    pub attempts: i64,
    /// `delivered_at`, in microseconds.
    pub delivered_at: Option<i64>,
    /// `last_error`.
    pub last_error: Option<String>,
    /// `data`: the notification as JSON.
    pub data: &'a str,
    /// `dead_at`, in microseconds.
    pub dead_at: Option<i64>,
}

/// An outbox entry from its row.
///
/// # Errors
/// When `data` is not a notification, `attempts` is negative or a time out of range.
pub fn outbox_entry(
    backend: &'static str,
    row: OutboxRow<'_>,
) -> Result<OutboxEntry, StorageError> {
    let attempts = unsigned(backend, "attempts", row.attempts)?;
    Ok(OutboxEntry {
        id: NotificationId(row.id),
        indicator_id: IndicatorId(row.indicator_id),
        attempts: u32::try_from(attempts).map_err(|_| damaged(backend, "attempts", attempts))?,
        delivered_at: row
            .delivered_at
            .map(|m| from_micros(backend, m))
            .transpose()?,
        last_error: row.last_error,
        dead_at: row.dead_at.map(|m| from_micros(backend, m)).transpose()?,
        notification: from_json(backend, row.data)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_rows_are_errors_not_defaults() {
        assert!(from_micros("t", i64::MAX).is_err(), "a time out of range");
        assert!(unsigned("t", "version", -1).is_err(), "a negative version");
        assert!(log_line("t", 0, "no such kind", String::new()).is_err());
        assert!(
            indicator("t", 1, 1, "{").is_err(),
            "JSON that is no indicator"
        );
        let row = OutboxRow {
            id: 1,
            indicator_id: 1,
            attempts: -3,
            delivered_at: None,
            last_error: None,
            data: "{}",
            dead_at: None,
        };
        assert!(outbox_entry("t", row).is_err(), "negative attempts");
        assert_eq!(from_micros("t", 0).ok(), DateTime::from_timestamp(0, 0));
        assert_eq!(unsigned("t", "version", 7).ok(), Some(7));
    }
}
