//! The daily summary e-mail (spec §8.4): once a day, every member who asked for it gets
//! one `okerr summary` message covering all of their projects.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use maud::{DOCTYPE, Markup, html};
use okerr::pyfmt::{shortstr, shorttd};
use okerr::{Clock, Indicator, Project, ProjectId, ProjectSummary, Storage, StorageError};

use crate::email::{MailConfig, indicator_link};

/// How often one person's summary of a day is tried, passes of the run loop (at most an
/// hour) apart.
const ATTEMPTS: u32 = 3;
/// The states of an attempt, in the settings.
const SENDING: &str = "sending since ";
const SENT: &str = "sent";
const FAILED: &str = "failed: ";
/// How long an attempt may be "sending" before it counts as failed (its node died).
const STUCK: TimeDelta = TimeDelta::minutes(10);

/// What one pass of [`DailySummary::send_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryReport {
    /// Summary e-mails sent.
    pub sent: usize,
    /// Summary e-mails that could not be sent (logged, and tried again on a later pass,
    /// three times in all).
    pub failed: usize,
}

/// Sends the daily summaries at a time of day (UTC). Each attempt at a person's summary of
/// a day is made by one node only: the node that first stores its setting
/// (`summary:{day}:{email}`, then `…:2`, `…:3`; [`Storage::put_setting_if_absent`]). A
/// failed attempt is recorded, and the next pass makes the next one.
#[derive(Debug)]
pub struct DailySummary {
    mail: MailConfig,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    at: NaiveTime,
}

impl DailySummary {
    /// Summaries through `mail`, due every day at `at` UTC.
    pub fn new(
        mail: MailConfig,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        at: NaiveTime,
    ) -> Self {
        DailySummary {
            mail,
            storage,
            clock,
            at,
        }
    }

    /// The first time summaries are due after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive().and_time(self.at).and_utc();
        if today > now {
            today
        } else {
            today + TimeDelta::days(1)
        }
    }

    /// Sends today's summaries when their time has come and no node sent them yet.
    ///
    /// # Errors
    /// When storage fails; what was sent before stays sent.
    pub async fn send_due(&self) -> Result<SummaryReport, StorageError> {
        let now = self.clock.now();
        let mut report = SummaryReport::default();
        if now.time() < self.at {
            return Ok(report);
        }
        let day = now.date_naive();
        let projects = self.storage.projects().await?;
        let mut recipients: BTreeMap<&str, Vec<&Project>> = BTreeMap::new();
        for project in &projects {
            for member in project.members.iter().filter(|m| m.summary) {
                recipients
                    .entry(member.email.as_str())
                    .or_default()
                    .push(project);
            }
        }
        let mut indicators: HashMap<ProjectId, Vec<Indicator>> = HashMap::new();
        for (to, projects) in recipients {
            let Some(key) = self
                .claim_attempt(&format!("summary:{day}:{to}"), now)
                .await?
            else {
                continue;
            };
            for project in &projects {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    indicators.entry(project.id)
                {
                    slot.insert(self.storage.indicators(project.id).await?);
                }
            }
            let mail = SummaryMail {
                to,
                generated: now,
                mail: &self.mail,
                projects: projects
                    .iter()
                    .map(|p| (*p, indicators.get(&p.id).map_or(&[][..], Vec::as_slice)))
                    .collect(),
            };
            match self
                .mail
                .send(to, "okerr summary", mail.text(), mail.html())
                .await
            {
                Ok(()) => {
                    tracing::info!(to, "summary mail sent");
                    self.storage.put_setting(&key, SENT).await?;
                    report.sent += 1;
                }
                Err(error) => {
                    tracing::error!(to, %error, "summary mail not sent; tried again within the hour");
                    let failed = format!("{FAILED}{error}");
                    self.storage.put_setting(&key, &failed).await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Claims the next attempt at one person's summary of a day: the key of the attempt
    /// this node makes, or `None` when it is sent, being sent by another node, or failed
    /// `ATTEMPTS` times. Attempt 1 is `base`, the next ones `base:2`, `base:3`.
    /// An attempt still "sending" after [`STUCK`] counts as failed: its node died.
    async fn claim_attempt(
        &self,
        base: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StorageError> {
        for attempt in 1..=ATTEMPTS {
            let key = match attempt {
                1 => base.to_owned(),
                n => format!("{base}:{n}"),
            };
            let sending = format!("{SENDING}{}", now.to_rfc3339());
            if self.storage.put_setting_if_absent(&key, &sending).await? {
                return Ok(Some(key));
            }
            let state = self.storage.setting(&key).await?.unwrap_or_default();
            let stuck = state
                .strip_prefix(SENDING)
                .and_then(|since| DateTime::parse_from_rfc3339(since).ok())
                .is_some_and(|since| since.to_utc() + STUCK < now);
            if !(state.starts_with(FAILED) || stuck) {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Sends the summaries every day until `shutdown` completes.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.send_due().await {
                tracing::error!(%error, "daily summary failed");
            }
            let now = self.clock.now();
            // At most an hour: a clock that jumps is noticed within the hour.
            let pause = (self.next_after(now) - now)
                .to_std()
                .unwrap_or_default()
                .min(std::time::Duration::from_secs(3600));
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// One person's summary: okerr's contents (spec §8.4) per project, as text and HTML.
#[derive(Debug)]
pub struct SummaryMail<'a> {
    /// The recipient.
    pub to: &'a str,
    /// When the summary was made.
    pub generated: DateTime<Utc>,
    /// Where links point.
    pub mail: &'a MailConfig,
    /// The recipient's projects with their indicators.
    pub projects: Vec<(&'a Project, &'a [Indicator])>,
}

/// One indicator's row: flags, name, brief details, age, age of the status.
struct Row {
    flags: String,
    name: String,
    link: url::Url,
    details: String,
    age: String,
    status_age: String,
}

impl SummaryMail<'_> {
    fn row(&self, project: &Project, ind: &Indicator) -> Row {
        let now = self.generated;
        Row {
            flags: ind.flags(now).join(" "),
            name: ind.name.to_string(),
            link: indicator_link(
                self.mail.public_url(),
                project.textid.as_str(),
                ind.name.as_str(),
            ),
            details: shortstr(&ind.details, 50),
            age: shorttd((now - ind.updated).num_seconds()),
            status_age: shorttd((now - ind.changed).num_seconds()),
        }
    }

    /// Per project: the head line, the ATTENTION rows and all enabled rows.
    fn sections(&self) -> Vec<(String, String, Vec<Row>, Vec<Row>)> {
        self.projects
            .iter()
            .map(|(project, inds)| {
                let head = format!(
                    "{} ({}): {}",
                    project.name,
                    project.textid,
                    ProjectSummary::of(inds.iter())
                );
                let updates = match (
                    inds.iter().map(|i| i.updated).min(),
                    inds.iter().map(|i| i.updated).max(),
                ) {
                    (Some(oldest), Some(newest)) => format!(
                        "oldest update {}, newest update {}",
                        oldest.format("%Y-%m-%d %H:%M:%S UTC"),
                        newest.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    _ => "no indicators".to_owned(),
                };
                let enabled = || inds.iter().filter(|i| !i.disabled);
                let attention = enabled()
                    .filter(|i| i.needs_attention())
                    .map(|i| self.row(project, i))
                    .collect();
                let all = enabled().map(|i| self.row(project, i)).collect();
                (head, updates, attention, all)
            })
            .collect()
    }

    /// The plain-text body.
    pub fn text(&self) -> String {
        let mut out = format!(
            "okerr summary\n\nfor: {}\ngenerated at {}\n",
            self.to,
            self.generated.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let table = |out: &mut String, rows: &[Row]| {
            for r in rows {
                out.push_str(&format!(
                    "  {:<16} {}  {}  (updated {} ago, status since {})\n",
                    r.flags, r.name, r.details, r.age, r.status_age
                ));
            }
        };
        for (head, updates, attention, all) in self.sections() {
            out.push_str(&format!("\n{head}\n{updates}\n"));
            if !attention.is_empty() {
                out.push_str("\nATTENTION\n");
                table(&mut out, &attention);
            }
            out.push_str("\nIndicators\n");
            table(&mut out, &all);
        }
        out
    }

    /// The HTML body.
    pub fn html(&self) -> String {
        fn table(rows: &[Row]) -> Markup {
            html! {
                table cellpadding="4" style="border-collapse: collapse" {
                    tr {
                        th align="left" { "flags" } th align="left" { "indicator" }
                        th align="left" { "details" } th align="left" { "updated" }
                        th align="left" { "status since" }
                    }
                    @for r in rows {
                        tr {
                            td { (r.flags) } td { a href=(r.link) { (r.name) } }
                            td { (r.details) } td { (r.age) } td { (r.status_age) }
                        }
                    }
                }
            }
        }
        html! {
            (DOCTYPE)
            html {
                head { meta charset="utf-8"; title { "okerr summary" } }
                body style="font-family: sans-serif" {
                    h2 { "okerr summary" }
                    p {
                        "for: " (self.to) br;
                        "generated at " (self.generated.format("%Y-%m-%d %H:%M:%S UTC"))
                    }
                    @for (head, updates, attention, all) in self.sections() {
                        h3 { (head) }
                        p { (updates) }
                        @if !attention.is_empty() {
                            h4 { "ATTENTION" }
                            (table(&attention))
                        }
                        h4 { "Indicators" }
                        (table(&all))
                    }
                }
            }
        }
        .into_string()
    }
}
