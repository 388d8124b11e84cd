//! Admin commands on the database directly. Only the value asked for goes to stdout.

use std::sync::Arc;

use okerr::{
    Email, Member, NewProject, Policy, PolicyName, Project, Reduction, Secret, Storage, TextId,
};

use crate::cli::{KeyCommand, MemberCommand, PolicyCommand, ProjectCommand};
use crate::{Error, secret, store};

fn usage(e: impl std::fmt::Display) -> Error {
    Error::Usage(e.to_string())
}

async fn project_of(storage: &Arc<dyn Storage>, textid: &str) -> Result<Project, Error> {
    storage
        .project_by_textid(textid)
        .await?
        .ok_or_else(|| Error::Usage(format!("no project with textid '{textid}'")))
}

fn now() -> chrono::DateTime<chrono::Utc> {
    okerr::Clock::now(&okerr::SystemClock)
}

/// Creates a project with okerr's two policies; returns it.
pub(crate) async fn create_project(
    storage: &Arc<dyn Storage>,
    textid: Option<&str>,
    name: Option<&str>,
) -> Result<Project, Error> {
    let textid = match textid {
        Some(t) => TextId::parse(t).map_err(usage)?,
        None => TextId::parse(&secret::textid()).map_err(usage)?,
    };
    let name = name.unwrap_or(textid.as_str()).to_owned();
    match storage
        .create_project(NewProject::new(name, textid.clone()))
        .await
    {
        Err(e) if e.is_conflict() => Err(usage(format!("textid {textid} is already taken"))),
        result => Ok(result?),
    }
}

pub(crate) async fn project(database: &str, cmd: ProjectCommand) -> Result<(), Error> {
    let storage = store::open(database).await?;
    match cmd {
        ProjectCommand::Create { textid, name } => {
            let project = create_project(&storage, textid.as_deref(), name.as_deref()).await?;
            println!("{}", project.textid);
        }
        ProjectCommand::Set {
            textid,
            name,
            max_indicators,
            limited,
        } => {
            let mut project = project_of(&storage, &textid).await?;
            if let Some(name) = name {
                project.name = name;
            }
            if let Some(max) = max_indicators {
                project.max_indicators = match max.as_str() {
                    "none" => None,
                    n => Some(n.parse().map_err(|_| {
                        usage(format!(
                            "--max-indicators takes a number or none, not '{n}'"
                        ))
                    })?),
                };
            }
            if let Some(on) = limited {
                project.limited = on.on();
            }
            storage.save_project(&project).await?;
        }
        ProjectCommand::List => {
            for p in storage.projects().await? {
                println!("{}\t{}", p.textid, p.name);
            }
        }
    }
    Ok(())
}

pub(crate) async fn policy(database: &str, cmd: PolicyCommand) -> Result<(), Error> {
    let storage = store::open(database).await?;
    match cmd {
        PolicyCommand::Set {
            textid,
            policy,
            period,
            patience,
            secret,
            subnets,
            httpupdate,
            smtpupdate,
            autocreate,
            reduction,
            webhook,
        } => {
            let mut project = project_of(&storage, &textid).await?;
            let name = PolicyName::parse(&policy).map_err(usage)?;
            let mut p = project
                .policy(name.as_str())
                .cloned()
                .unwrap_or_else(|| Policy::new(name));
            if let Some(period) = period {
                p.period = period;
            }
            if let Some(patience) = patience {
                p.patience = patience;
            }
            if let Some(s) = secret {
                p.secret = if s.is_empty() {
                    None
                } else {
                    Some(Secret::parse(&s).map_err(usage)?)
                };
            }
            if !subnets.is_empty() {
                p.subnets = subnets;
            }
            if let Some(on) = httpupdate {
                p.http_update = on.on();
            }
            if let Some(on) = smtpupdate {
                p.smtp_update = on.on();
            }
            if let Some(on) = autocreate {
                p.autocreate = on.on();
            }
            if let Some(r) = reduction {
                p.reduction = if r.trim().is_empty() {
                    None
                } else {
                    Some(Reduction::parse(&r).map_err(usage)?)
                };
            }
            if let Some(w) = webhook {
                p.url_statuschange = if w.is_empty() {
                    None
                } else {
                    Some(
                        w.parse()
                            .map_err(|e| usage(format!("bad webhook URL '{w}': {e}")))?,
                    )
                };
            }
            project.put_policy(p);
            storage.save_project(&project).await?;
        }
        PolicyCommand::Show { textid, policy } => {
            let project = project_of(&storage, &textid).await?;
            let shown: Vec<&Policy> = match &policy {
                Some(name) => vec![
                    project
                        .policy(name)
                        .ok_or_else(|| usage(format!("no policy '{name}' in {textid}")))?,
                ],
                None => project.policies.iter().collect(),
            };
            for p in shown {
                print!("{}", show_policy(p));
            }
        }
    }
    Ok(())
}

fn show_policy(p: &Policy) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    let subnets: Vec<String> = p.subnets.iter().map(ToString::to_string).collect();
    format!(
        "[{}]\nperiod = {}\npatience = {}\nsecret = {}\nsubnets = {}\nhttpupdate = {}\nsmtpupdate = {}\nautocreate = {}\nreduction = {}\nwebhook = {}\n",
        p.name,
        p.period,
        p.patience,
        if p.secret.is_some() { "(set)" } else { "" },
        subnets.join(" "),
        on(p.http_update),
        on(p.smtp_update),
        on(p.autocreate),
        p.reduction
            .as_ref()
            .map(Reduction::as_str)
            .unwrap_or_default(),
        p.url_statuschange
            .as_ref()
            .map(url::Url::as_str)
            .unwrap_or_default(),
    )
}

/// Adds a new API key to the project and returns the key to show once.
pub(crate) async fn create_key(
    storage: &Arc<dyn Storage>,
    project: &mut Project,
    remark: &str,
) -> Result<String, Error> {
    let (record, key) = secret::api_key(remark, now());
    project.api_keys.push(record);
    storage.save_project(project).await?;
    Ok(key)
}

pub(crate) async fn key(database: &str, cmd: KeyCommand) -> Result<(), Error> {
    let storage = store::open(database).await?;
    match cmd {
        KeyCommand::Create { textid, remark } => {
            let mut project = project_of(&storage, &textid).await?;
            println!("{}", create_key(&storage, &mut project, &remark).await?);
        }
        KeyCommand::Revoke { textid, keyid } => {
            let mut project = project_of(&storage, &textid).await?;
            let before = project.api_keys.len();
            project.api_keys.retain(|k| k.id != keyid);
            if project.api_keys.len() == before {
                return Err(usage(format!("no key '{keyid}' in {textid}")));
            }
            storage.save_project(&project).await?;
        }
        KeyCommand::List { textid } => {
            for k in project_of(&storage, &textid).await?.api_keys {
                println!(
                    "{}\t{}\t{}",
                    k.id,
                    k.created.format("%Y-%m-%d %H:%M:%S"),
                    k.remark
                );
            }
        }
    }
    Ok(())
}

pub(crate) async fn member(database: &str, cmd: MemberCommand) -> Result<(), Error> {
    let storage = store::open(database).await?;
    let MemberCommand::Add {
        textid,
        email,
        no_alerts,
        summary,
    } = cmd;
    let mut project = project_of(&storage, &textid).await?;
    let email = Email::parse(&email).map_err(usage)?;
    project.members.retain(|m| m.email != email);
    project.members.push(Member {
        email,
        alerts: !no_alerts,
        summary,
    });
    storage.save_project(&project).await?;
    Ok(())
}
