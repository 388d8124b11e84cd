//! Notifications: what must be told, written to an outbox in the same commit as the change
//! that caused it, and delivered later by a [`Notifier`](crate::Notifier) (spec §8).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::indicator::{Effects, HeldAlert, Indicator, IndicatorId, LogLine, Status};
use crate::name::{Email, IndicatorName, TextId};
use crate::project::{Policy, Project, ProjectId};
use crate::storage::Commit;

/// A notification's id in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NotificationId(pub i64);

impl std::fmt::Display for NotificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Something to tell about an indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The project.
    pub project: ProjectId,
    /// The project's main textid, for links and texts.
    pub textid: TextId,
    /// The indicator.
    pub indicator: IndicatorName,
    /// When it was raised.
    pub created: DateTime<Utc>,
    /// When it may be delivered; later than `created` while alert reduction holds it.
    pub release_at: DateTime<Utc>,
    /// The alert reduction key; an opposite flip before release cancels it.
    pub reduction_key: Option<String>,
    /// When it is first tried, when that is later than `release_at`: the engine holds a
    /// recipient's alerts back until their burst can go out together (its `batch_delay`),
    /// so that storage does not hand them out before (`None`: from `release_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<DateTime<Utc>>,
    /// What to tell.
    pub payload: Payload,
}

/// What a notification tells, and so where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// An alert for one project member who wants alerts (`Changed status OK (1h1m) -> ERR
    /// (No heartbeat)`); one alert of the indicator makes one notification per recipient,
    /// so each recipient's delivery succeeds or fails on its own.
    Alert {
        /// The recipient. `None` in alerts stored before alerts had recipients (they
        /// decode from older outboxes): those go to the project's members who want alerts
        /// at delivery.
        #[serde(default)]
        to: Option<Email>,
        /// okerr's alert text.
        message: String,
    },
    /// A status change for the policy's webhook.
    Webhook {
        /// The policy's `url_statuschange`.
        url: Url,
        /// The change.
        change: StatusChange,
    },
}

/// A status change, as okerr posts it to a webhook (spec §8.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The status before.
    pub old: Status,
    /// The status after.
    pub new: Status,
    /// The details of the new status.
    pub details: String,
    /// When it changed.
    pub time: DateTime<Utc>,
}

impl Notification {
    /// When storage first hands it out: `release_at`, or `hold_until` when later.
    pub fn first_attempt(&self) -> DateTime<Utc> {
        self.hold_until
            .map_or(self.release_at, |h| h.max(self.release_at))
    }

    /// Notifications with the same key are delivered together (one e-mail per recipient);
    /// `None` for those delivered one by one.
    pub fn batch_key(&self) -> Option<&str> {
        match &self.payload {
            Payload::Alert { to, .. } => to.as_ref().map(Email::as_str),
            Payload::Webhook { .. } => None,
        }
    }
}

impl StatusChange {
    /// okerr's webhook JSON, sent in the form field `data`.
    pub fn to_json(&self, textid: &str, name: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "status_change",
            "textid": textid,
            "name": name,
            "old": self.old.as_str(),
            "new": self.new.as_str(),
            "details": self.details,
            "unixtime": self.time.timestamp(),
            "time": self.time.format("%Y-%m-%d %H:%M:%S UTC (+0000)").to_string(),
        })
    }
}

/// A notification as stored in the outbox, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Storage id.
    pub id: NotificationId,
    /// The indicator it is about.
    pub indicator_id: IndicatorId,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// When it was delivered, if it was.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When okerr gave up on it (a dead letter, [`Storage::dead_letter`](crate::Storage::dead_letter)):
    /// it is never tried again.
    #[serde(default)]
    pub dead_at: Option<DateTime<Utc>>,
    /// The notification.
    pub notification: Notification,
}

/// Turns a decision's effects into one commit: log lines, alerts (suppressed by silent
/// and maintenance, held or cancelled by reduction, spec §8.1 and §8.3), and the webhook.
pub(crate) fn build_commit(
    project: &Project,
    policy: &Policy,
    mut indicator: Indicator,
    fx: Effects,
    now: DateTime<Utc>,
) -> Commit {
    indicator.held.retain(|h| h.release_at > now);
    let mut notifications = Vec::new();
    let mut cancel = Vec::new();
    let notification = |indicator: &Indicator, release_at, reduction_key, payload| Notification {
        project: project.id,
        textid: project.textid.clone(),
        indicator: indicator.name.clone(),
        created: now,
        release_at,
        reduction_key,
        hold_until: None,
        payload,
    };
    let suppressed = indicator.silent || indicator.maintenance.is_some();
    for alert in fx.alerts.into_iter().filter(|_| !suppressed) {
        let (release_at, key) = match &policy.reduction {
            None => (now, None),
            Some(reduction) => {
                if let Some((_, opposite)) = &alert.keys {
                    let (flipped, kept): (Vec<HeldAlert>, Vec<HeldAlert>) =
                        indicator.held.drain(..).partition(|h| &h.key == opposite);
                    indicator.held = kept;
                    if !flipped.is_empty() {
                        // A flip back inside the delay: both alerts cancel out.
                        cancel.extend(flipped);
                        continue;
                    }
                }
                let release_at = now + reduction.delay_at(now).to_chrono();
                (release_at, alert.keys.map(|(key, _)| key))
            }
        };
        let recipients: Vec<&Email> = project
            .members
            .iter()
            .filter(|m| m.alerts)
            .map(|m| &m.email)
            .collect();
        if recipients.is_empty() {
            // Nobody to tell: the alert is only logged, and nothing is held to cancel.
            continue;
        }
        if let Some(key) = key.as_ref().filter(|_| release_at > now) {
            indicator.held.push(HeldAlert {
                key: key.clone(),
                release_at,
            });
        }
        for to in recipients {
            let payload = Payload::Alert {
                to: Some(to.clone()),
                message: alert.message.clone(),
            };
            notifications.push(notification(&indicator, release_at, key.clone(), payload));
        }
    }
    if let (Some((old, new)), Some(url)) = (fx.status_change, &policy.url_statuschange) {
        let change = StatusChange {
            old,
            new,
            details: indicator.details.clone(),
            time: now,
        };
        let payload = Payload::Webhook {
            url: url.clone(),
            change,
        };
        notifications.push(notification(&indicator, now, None, payload));
    }
    let log = fx
        .log
        .into_iter()
        .map(|(kind, message)| LogLine {
            time: now,
            kind,
            message,
        })
        .collect();
    Commit {
        indicator,
        log,
        notifications,
        cancel,
        project_version: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_alert_stored_before_recipients_still_decodes() {
        let legacy = r#"{"type": "alert", "message": "Changed status OK (1m) -> ERR (x)"}"#;
        let payload: Payload = serde_json::from_str(legacy).expect("decodes");
        assert_eq!(
            payload,
            Payload::Alert {
                to: None,
                message: "Changed status OK (1m) -> ERR (x)".to_owned()
            }
        );
    }

    #[test]
    fn webhook_json_is_okerrs() {
        let change = StatusChange {
            old: Status::Err,
            new: Status::Ok,
            details: "back".into(),
            time: Utc
                .with_ymd_and_hms(2020, 2, 19, 10, 2, 24)
                .single()
                .expect("time"),
        };
        let json = change.to_json("proj", "srv:web");
        assert_eq!(
            json,
            serde_json::json!({"type": "status_change", "textid": "proj", "name": "srv:web",
                "old": "ERR", "new": "OK", "details": "back", "unixtime": 1582106544,
                "time": "2020-02-19 10:02:24 UTC (+0000)"})
        );
    }
}
