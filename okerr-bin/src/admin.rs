//! Admin commands on the database directly. Only the value asked for goes to stdout.

use std::sync::Arc;

use okerr::{
    Action, Email, IndicatorName, Member, MethodKind, NewProject, Policy, PolicyName, Project,
    Reduction, RetrySchedule, Secret, Storage, TextId,
};

use crate::cli::{IndicatorCommand, KeyCommand, MemberCommand, PolicyCommand, ProjectCommand};
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

/// Applies `edit` to the project through the engine ([`okerr::Engine::edit_project`]):
/// when someone saved the project since it was read (the web pages, another command), the
/// engine reads it again and redoes `edit`, so that no edit undoes another.
async fn edit_project<T>(
    storage: &Arc<dyn Storage>,
    textid: &str,
    edit: impl FnMut(&mut Project) -> Result<T, Error>,
) -> Result<T, Error> {
    let id = project_of(storage, textid).await?.id;
    let engine = okerr::Engine::without_notifier(
        storage.clone(),
        Arc::new(okerr::SystemClock),
        okerr::EngineConfig::default(),
    );
    match engine.edit_project(id, edit).await {
        Ok(out) => Ok(out),
        Err(okerr::EditError::Edit(e)) => Err(e),
        Err(okerr::EditError::Storage(e)) => Err(e.into()),
        Err(_) => Err(Error::Usage(format!("no project with textid '{textid}'"))),
    }
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
            let max_indicators = match max_indicators.as_deref() {
                None => None,
                Some("none") => Some(None),
                Some(n) => Some(Some(n.parse().map_err(|_| {
                    usage(format!(
                        "--max-indicators takes a number or none, not '{n}'"
                    ))
                })?)),
            };
            edit_project(&storage, &textid, |project| {
                if let Some(name) = &name {
                    project.name.clone_from(name);
                }
                if let Some(max) = max_indicators {
                    project.max_indicators = max;
                }
                if let Some(on) = limited {
                    project.limited = on.on();
                }
                Ok(())
            })
            .await?;
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
            retry_schedule,
            recovery_retry_schedule,
        } => {
            let name = PolicyName::parse(&policy).map_err(usage)?;
            let schedule = |s: Option<String>| {
                s.map(|s| RetrySchedule::parse(&s).map_err(usage))
                    .transpose()
            };
            let retry_schedule = schedule(retry_schedule)?;
            let recovery_retry_schedule = schedule(recovery_retry_schedule)?;
            let secret = secret
                .map(|s| match s.as_str() {
                    "" => Ok(None),
                    s => Secret::parse(s).map(Some).map_err(usage),
                })
                .transpose()?;
            let reduction = reduction
                .map(|r| match r.trim() {
                    "" => Ok(None),
                    _ => Reduction::parse(&r).map(Some).map_err(usage),
                })
                .transpose()?;
            let webhook = webhook
                .map(|w| match w.as_str() {
                    "" => Ok(None),
                    w => w
                        .parse()
                        .map(Some)
                        .map_err(|e| usage(format!("bad webhook URL '{w}': {e}"))),
                })
                .transpose()?;
            edit_project(&storage, &textid, |project| {
                let mut p = project
                    .policy(name.as_str())
                    .cloned()
                    .unwrap_or_else(|| Policy::new(name.clone()));
                if let Some(period) = &period {
                    p.period = period.clone();
                }
                if let Some(patience) = &patience {
                    p.patience = patience.clone();
                }
                if let Some(secret) = &secret {
                    p.secret.clone_from(secret);
                }
                if !subnets.is_empty() {
                    p.subnets.clone_from(&subnets);
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
                if let Some(reduction) = &reduction {
                    p.reduction.clone_from(reduction);
                }
                if let Some(webhook) = &webhook {
                    p.url_statuschange.clone_from(webhook);
                }
                if let Some(r) = &retry_schedule {
                    p.retry_schedule.clone_from(r);
                }
                if let Some(r) = &recovery_retry_schedule {
                    p.recovery_retry_schedule.clone_from(r);
                }
                project.put_policy(p);
                Ok(())
            })
            .await?;
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
        "[{}]\nperiod = {}\npatience = {}\nsecret = {}\nsubnets = {}\nhttpupdate = {}\nsmtpupdate = {}\nautocreate = {}\nreduction = {}\nwebhook = {}\nretry_schedule = {}\nrecovery_retry_schedule = {}\n",
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
        p.retry_schedule,
        p.recovery_retry_schedule,
    )
}

/// An engine on the database for commands that change indicators (only the engine
/// writes them); it delivers nothing: the alerts wait in the outbox for the server, and
/// it checks nothing, but may make active indicators (`okerr serve` runs them).
/// An engine's refusal as the CLI's error: storage failures stay storage failures.
fn action(e: okerr::ActionError) -> Error {
    match e {
        okerr::ActionError::Storage(e) => Error::Storage(e),
        other => usage(other),
    }
}

/// Creates indicator `name` (`parsed`) of `project` (`textid`) unless it exists.
async fn create_if_missing(
    storage: &Arc<dyn Storage>,
    engine: &okerr::Engine,
    project: &Project,
    textid: &str,
    name: &str,
    parsed: &IndicatorName,
) -> Result<(), Error> {
    if storage.indicator(project.id, parsed).await?.is_none() {
        engine
            .create_indicator(textid, name, "admin", "cli")
            .await
            .map_err(action)?;
    }
    Ok(())
}

fn engine_of(storage: &Arc<dyn Storage>) -> okerr::Engine {
    let mut config = okerr::EngineConfig::default();
    config.settings.active_checks = true;
    okerr::Engine::without_notifier(storage.clone(), Arc::new(okerr::SystemClock), config)
}

pub(crate) async fn indicator(database: &str, cmd: IndicatorCommand) -> Result<(), Error> {
    let storage = store::open(database).await?;
    let engine = engine_of(&storage);
    match cmd {
        IndicatorCommand::Logic {
            textid,
            name,
            expr,
            dump,
            init,
        } => {
            let project = project_of(&storage, &textid).await?;
            let parsed = IndicatorName::parse(&name).map_err(usage)?;
            create_if_missing(&storage, &engine, &project, &textid, &name, &parsed).await?;
            let stored = engine
                .act_all(
                    &textid,
                    &parsed,
                    &[
                        Action::Method("logic".into()),
                        Action::Arg("expr".into(), expr),
                        Action::Arg("dump".into(), dump),
                        Action::Arg("init".into(), init),
                        Action::Maintenance(false),
                    ],
                    "admin",
                )
                .await
                .map_err(action)?;
            if let MethodKind::Logic(args) = &stored.method.kind {
                let all = storage.indicators(project.id).await?;
                for w in okerr::logic::warnings(&project, &stored, args, &all) {
                    eprintln!("okerr: warning: {w}");
                }
            }
            println!("{}", stored.name);
        }
        IndicatorCommand::Active {
            textid,
            name,
            method,
            args,
        } => {
            let project = project_of(&storage, &textid).await?;
            let parsed = IndicatorName::parse(&name).map_err(usage)?;
            if okerr::ActiveMethod::from_codename(&method).is_none() {
                return Err(usage(format!("'{method}' is not an active method")));
            }
            let mut actions = vec![Action::Method(method)];
            for a in &args {
                let (k, v) = a
                    .split_once('=')
                    .ok_or_else(|| usage(format!("'{a}' is not ARG=VALUE")))?;
                actions.push(Action::Arg(k.to_owned(), v.to_owned()));
            }
            actions.push(Action::Maintenance(false));
            create_if_missing(&storage, &engine, &project, &textid, &name, &parsed).await?;
            let stored = engine
                .act_all(&textid, &parsed, &actions, "admin")
                .await
                .map_err(action)?;
            println!("{}", stored.name);
        }
        IndicatorCommand::Noflap {
            textid,
            name,
            okthr,
            errthr,
        } => {
            let lower = IndicatorName::parse(&name).map_err(usage)?;
            let secs = |i: Option<okerr::Interval>| {
                i.map(|i| i64::try_from(i.as_secs()).unwrap_or(i64::MAX))
            };
            let thresholds = okerr::NoFlap {
                okthr: secs(okthr),
                errthr: secs(errthr),
            };
            let up = engine
                .create_noflap(&textid, &lower, thresholds, "admin", "cli")
                .await
                .map_err(action)?;
            println!("{}", up.name);
        }
    }
    Ok(())
}

/// Adds a new API key to the project and returns the key to show once.
pub(crate) async fn create_key(
    storage: &Arc<dyn Storage>,
    textid: &str,
    remark: &str,
) -> Result<String, Error> {
    let (record, key) = secret::api_key(remark, now());
    edit_project(storage, textid, |project| {
        project.api_keys.push(record.clone());
        Ok(())
    })
    .await?;
    Ok(key)
}

pub(crate) async fn key(database: &str, cmd: KeyCommand) -> Result<(), Error> {
    let storage = store::open(database).await?;
    match cmd {
        KeyCommand::Create { textid, remark } => {
            println!("{}", create_key(&storage, &textid, &remark).await?);
        }
        KeyCommand::Revoke { textid, keyid } => {
            edit_project(&storage, &textid, |project| {
                let before = project.api_keys.len();
                project.api_keys.retain(|k| k.id != keyid);
                if project.api_keys.len() == before {
                    return Err(usage(format!("no key '{keyid}' in {textid}")));
                }
                Ok(())
            })
            .await?;
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
    let email = Email::parse(&email).map_err(usage)?;
    edit_project(&storage, &textid, |project| {
        project.members.retain(|m| m.email != email);
        project.members.push(Member {
            email: email.clone(),
            alerts: !no_alerts,
            summary,
        });
        Ok(())
    })
    .await
}
