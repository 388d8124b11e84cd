//! Alert e-mails (spec §8.2): one message per recipient with all of their released
//! alerts, subject `okerr alert`, plain text and HTML.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use maud::{DOCTYPE, html};
use okerr::{
    Clock, DeliveryReport, NotificationId, Notifier, NotifyError, OutboxEntry, Payload, ProjectId,
    ProjectSummary, Storage, StorageError,
};
use url::Url;

/// Why the mail settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The relay URL is not one lettre understands (`smtp://host:port`,
    /// `smtp://host:port?tls=required`, `smtps://user:password@host:465`).
    #[error("invalid mail relay URL (expected smtp://host:port or smtps://user:password@host)")]
    Relay(#[source] lettre::transport::smtp::Error),
    /// The sender is not an e-mail address.
    #[error("invalid sender address {address:?}")]
    From {
        /// The address given.
        address: String,
        /// Why it is invalid.
        #[source]
        source: lettre::address::AddressError,
    },
}

/// Where alert e-mails go through and what they say about the server.
#[derive(Clone)]
pub struct MailConfig {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: Url,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The relay URL may hold a password: not shown.
        f.debug_struct("MailConfig")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url.as_str())
            .finish_non_exhaustive()
    }
}

impl MailConfig {
    /// Mail through `relay` (lettre's URL forms, with credentials if needed) from `from`;
    /// links in the mails point to pages under `public_url`. Talking to the relay gives up
    /// after 30 s.
    ///
    /// # Errors
    /// An invalid relay URL or sender address.
    pub fn new(relay: &str, from: &str, public_url: Url) -> Result<Self, MailError> {
        // lettre's TLS is rustls with ring; make it the process default too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(relay)
            .map_err(MailError::Relay)?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        let from = from.parse().map_err(|source| MailError::From {
            address: from.to_owned(),
            source,
        })?;
        Ok(MailConfig {
            transport,
            from,
            public_url,
        })
    }

    /// The server's public URL, for links.
    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// Sends one message of plain text and HTML to `to`. A refused recipient or message
    /// is a permanent failure, a relay that is down or answers 4xx a transient one.
    pub(crate) async fn send(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), NotifyError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| NotifyError::Permanent(Box::new(e)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| NotifyError::Permanent(Box::new(e)))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(NotifyError::Permanent(Box::new(e))),
            Err(e) => Err(NotifyError::Transient(Box::new(e))),
        }
    }
}

/// Sends alert e-mails. Each recipient's message is delivered or fails on its own, so a
/// refused recipient never makes the others get their alerts twice.
#[derive(Debug)]
pub struct EmailNotifier {
    config: MailConfig,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    sent: AtomicU64,
}

impl EmailNotifier {
    /// A notifier; `storage` gives each mail its projects' summary lines.
    pub fn new(config: MailConfig, storage: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        EmailNotifier {
            config,
            storage,
            clock,
            sent: AtomicU64::new(0),
        }
    }

    /// The summary line of each project of the batch; a project that cannot be read is
    /// left out (the alerts still go).
    async fn summaries(&self, batch: &[OutboxEntry]) -> HashMap<ProjectId, ProjectSummary> {
        let mut summaries = HashMap::new();
        for entry in batch {
            let project = entry.notification.project;
            if summaries.contains_key(&project) {
                continue;
            }
            match self.storage.indicators(project).await {
                Ok(indicators) => {
                    summaries.insert(project, ProjectSummary::of(&indicators));
                }
                Err(error) => {
                    tracing::warn!(%error, %project, "no summary line for the alert mail")
                }
            }
        }
        summaries
    }

    /// The members of `project` who want alerts, read once per batch.
    async fn alerted_members<'m>(
        &self,
        cache: &'m mut HashMap<ProjectId, Vec<String>>,
        project: ProjectId,
    ) -> Result<&'m [String], StorageError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(project) {
            let project = self.storage.project(project).await?;
            slot.insert(
                project
                    .iter()
                    .flat_map(|p| &p.members)
                    .filter(|m| m.alerts)
                    .map(|m| m.email.to_string())
                    .collect(),
            );
        }
        Ok(cache.get(&project).map_or(&[], Vec::as_slice))
    }

    async fn send(&self, mail: AlertMail<'_>) -> Result<(), NotifyError> {
        self.config
            .send(mail.to, "okerr alert", mail.text(), mail.html())
            .await?;
        tracing::info!(to = mail.to, alerts = mail.alerts.len(), "alert mail sent");
        Ok(())
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    async fn deliver(&self, batch: &[OutboxEntry]) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        let mut by_recipient: BTreeMap<String, Vec<&OutboxEntry>> = BTreeMap::new();
        let mut members: HashMap<ProjectId, Vec<String>> = HashMap::new();
        for entry in batch {
            let to = match &entry.notification.payload {
                Payload::Alert { to: Some(to), .. } => vec![to.to_string()],
                Payload::Alert { to: None, .. } => {
                    match self
                        .alerted_members(&mut members, entry.notification.project)
                        .await
                    {
                        Ok(all) => all.to_vec(),
                        Err(error) => {
                            report
                                .failed
                                .push((entry.id, NotifyError::Transient(Box::new(error))));
                            continue;
                        }
                    }
                }
                Payload::Webhook { .. } => {
                    report.failed.push((
                        entry.id,
                        NotifyError::Permanent(
                            "not an alert: the e-mail notifier only sends alerts".into(),
                        ),
                    ));
                    continue;
                }
            };
            for to in to {
                by_recipient.entry(to).or_default().push(entry);
            }
        }
        let summaries = self.summaries(batch).await;
        let now = self.clock.now();
        let sends = by_recipient.iter().map(|(to, alerts)| {
            let mail = AlertMail {
                id: self.sent.fetch_add(1, Ordering::Relaxed) + 1,
                to,
                generated: now,
                public_url: &self.config.public_url,
                alerts: alerts.clone(),
                summaries: &summaries,
            };
            async move { (alerts, self.send(mail).await) }
        });
        // An entry of several mails (an old alert without a recipient) fails when one of
        // them fails.
        let mut failed: BTreeMap<NotificationId, NotifyError> = BTreeMap::new();
        for (alerts, result) in join_all(sends).await {
            if let Err(error) = result {
                tracing::warn!(%error, "alert mail not sent");
                let text = error.to_string();
                let permanent = error.is_permanent();
                for e in alerts {
                    let again: Box<dyn std::error::Error + Send + Sync> = text.clone().into();
                    let error = if permanent {
                        NotifyError::Permanent(again)
                    } else {
                        NotifyError::Transient(again)
                    };
                    failed.entry(e.id).or_insert(error);
                }
            }
        }
        report.failed.extend(failed);
        report
    }
}

/// One recipient's alert e-mail: okerr's contents (spec §8.2) as plain text and HTML.
#[derive(Debug)]
pub struct AlertMail<'a> {
    /// A counter of the mails this process sent.
    pub id: u64,
    /// The recipient.
    pub to: &'a str,
    /// When the mail was made.
    pub generated: DateTime<Utc>,
    /// The server's public URL, for the links to the indicator pages.
    pub public_url: &'a Url,
    /// The recipient's alerts, oldest first.
    pub alerts: Vec<&'a OutboxEntry>,
    /// The summary line of each project of the alerts, where known.
    pub summaries: &'a HashMap<ProjectId, ProjectSummary>,
}

/// `{public_url}/i/{textid}/{name}`, the indicator's page
/// ([`okerr::name::indicator_page_path`], under the public URL's path).
pub fn indicator_link(public_url: &Url, textid: &str, name: &str) -> Url {
    let mut url = public_url.clone();
    let path = format!(
        "{}{}",
        public_url.path().trim_end_matches('/'),
        okerr::name::indicator_page_path(textid, name)
    );
    url.set_path(&path);
    url
}

impl AlertMail<'_> {
    /// The page of the entry's indicator.
    pub fn link(&self, entry: &OutboxEntry) -> Url {
        let n = &entry.notification;
        indicator_link(self.public_url, n.textid.as_str(), n.indicator.as_str())
    }

    fn rows(&self) -> impl Iterator<Item = (String, String, Url, &str)> {
        self.alerts.iter().map(|e| {
            let n = &e.notification;
            let message = match &n.payload {
                Payload::Alert { message, .. } => message.as_str(),
                Payload::Webhook { .. } => "",
            };
            (
                n.created.format("%d %b %Y %H:%M:%S").to_string(),
                format!("{}@{}", n.indicator, n.textid),
                self.link(e),
                message,
            )
        })
    }

    /// The projects of the alerts with their summary lines, in order of appearance.
    fn project_lines(&self) -> Vec<String> {
        let mut seen = Vec::new();
        let mut lines = Vec::new();
        for e in &self.alerts {
            let n = &e.notification;
            if seen.contains(&n.project) {
                continue;
            }
            seen.push(n.project);
            if let Some(summary) = self.summaries.get(&n.project) {
                lines.push(format!("{}: {summary}", n.textid));
            }
        }
        lines
    }

    fn host(&self) -> &str {
        self.public_url.host_str().unwrap_or("okerr")
    }

    /// The plain-text body.
    pub fn text(&self) -> String {
        let mut out = format!(
            "okerr alert\n\nid: {}\nfor: {}\ngenerated on {} at {}\n\n",
            self.id,
            self.to,
            self.host(),
            self.generated.format("%Y-%m-%d %H:%M:%S UTC")
        );
        for (time, name, link, message) in self.rows() {
            out.push_str(&format!("{time} UTC  {name}  {message}\n    {link}\n"));
        }
        out.push('\n');
        for line in self.project_lines() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The HTML body.
    pub fn html(&self) -> String {
        html! {
            (DOCTYPE)
            html {
                head { meta charset="utf-8"; title { "okerr alert" } }
                body style="font-family: sans-serif" {
                    h2 { "okerr alert" }
                    p {
                        "id: " (self.id) br;
                        "for: " (self.to) br;
                        "generated on " (self.host()) " at "
                        (self.generated.format("%Y-%m-%d %H:%M:%S UTC"))
                    }
                    table cellpadding="4" style="border-collapse: collapse" {
                        tr { th align="left" { "time (UTC)" } th align="left" { "indicator" } th align="left" { "alert" } }
                        @for (time, name, link, message) in self.rows() {
                            tr {
                                td { (time) }
                                td { a href=(link) { (name) } }
                                td { (message) }
                            }
                        }
                    }
                    @for line in self.project_lines() {
                        p { (line) }
                    }
                }
            }
        }
        .into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_public_urls_path_and_encode_the_name() {
        let at = |base: &str, name: &str| {
            let base = Url::parse(base).expect("a URL");
            indicator_link(&base, "p1", name).to_string()
        };
        assert_eq!(
            at("https://h/", "test:apache2"),
            "https://h/i/p1/test:apache2"
        );
        assert_eq!(at("https://h/okerr/", "a b"), "https://h/okerr/i/p1/a%20b");
        assert_eq!(
            at("https://h/okerr", "a/../b"),
            "https://h/okerr/i/p1/a%2F..%2Fb"
        );
    }

    #[test]
    fn relay_urls_in_lettres_forms_are_taken_and_others_refused() {
        let public = Url::parse("https://okerr.example.net/").expect("a URL");
        for relay in [
            "smtp://127.0.0.1:25",
            "smtp://mail.example.com:587?tls=required",
            "smtps://user:secret@mail.example.com:465",
            "smtps://mail.example.com",
        ] {
            let config = MailConfig::new(relay, "okerr@example.net", public.clone());
            assert!(config.is_ok(), "{relay}: {config:?}");
            let shown = format!("{config:?}");
            assert!(
                !shown.contains("secret"),
                "the password is not shown: {shown}"
            );
        }
        for relay in ["http://mail.example.com", "mail.example.com:25", ""] {
            assert!(
                matches!(
                    MailConfig::new(relay, "okerr@example.net", public.clone()),
                    Err(MailError::Relay(_))
                ),
                "{relay}"
            );
        }
        assert!(matches!(
            MailConfig::new("smtp://127.0.0.1:25", "not an address", public),
            Err(MailError::From { .. })
        ));
    }
}
