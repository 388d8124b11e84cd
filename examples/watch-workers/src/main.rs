//! A program that watches its own workers with an embedded okerr engine: SQLite storage,
//! the system clock, a webhook notifier and `engine.run`, no server.
//!
//! Each worker does a job per period and reports it as a heartbeat (`worker:N` OK, or ERR
//! when the job failed). Worker 0 hangs after `--hang-after` jobs: it stops reporting, and
//! once its period and patience have passed, the engine's scheduler turns it ERR
//! ("No heartbeat") and posts the status change to the webhook, as okerr does (spec
//! §8.6: a form field `data` with `{"type": "status_change", …}`).
//!
//! ```text
//! okerr-watch-workers --webhook http://127.0.0.1:9000/hook [--database sqlite://workers.db]
//!     [--workers 3] [--period-secs 2] [--hang-after 5] [--run-for-secs 30]
//!     [--allow-network 127.0.0.0/8]
//! ```
//!
//! The state stays in the database: a restart goes on with the same indicators, and the
//! outbox keeps what the webhook has not taken yet.

use std::sync::Arc;
use std::time::Duration;

use okerr::{
    Engine, EngineConfig, Interval, NewProject, Project, Storage, SystemClock, TextId,
    UpdateRequest,
};
use okerr_backend_sqlite::SqliteStorage;
use okerr_notify::WebhookNotifier;
use url::Url;

/// The project the workers report to.
const TEXTID: &str = "workers";

/// What the command line asks for.
#[derive(Debug)]
struct Args {
    database: String,
    webhook: Url,
    /// The networks the webhook may reach (`--allow-network`, repeatable): public
    /// addresses only unless given, as in `okerr serve`.
    networks: Vec<okerr::outbound::OutboundNet>,
    workers: u32,
    period: u64,
    hang_after: u32,
    run_for: Option<u64>,
}

fn usage() -> String {
    "usage: okerr-watch-workers --webhook URL [--database sqlite://FILE] [--workers N] \
     [--period-secs S] [--hang-after N] [--run-for-secs S] [--allow-network CIDR]..."
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut database = "sqlite://watch-workers.db".to_owned();
    let (mut webhook, mut workers, mut period, mut hang_after, mut run_for) = (None, 3, 2, 5, None);
    let mut networks = Vec::new();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(usage)?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--database" => database = value,
            "--webhook" => {
                webhook = Some(Url::parse(&value).map_err(|e| format!("--webhook: {e}"))?);
            }
            "--workers" => workers = u32::try_from(number(&value)?).map_err(|e| e.to_string())?,
            "--period-secs" => period = number(&value)?.max(1),
            "--hang-after" => {
                hang_after = u32::try_from(number(&value)?).map_err(|e| e.to_string())?;
            }
            "--run-for-secs" => run_for = Some(number(&value)?),
            "--allow-network" => networks.push(value.parse()?),
            _ => return Err(usage()),
        }
    }
    Ok(Args {
        database,
        webhook: webhook.ok_or_else(usage)?,
        workers,
        period,
        hang_after,
        run_for,
        networks,
    })
}

/// The workers' project, made on the first run; its policy `Default` gets the period,
/// a patience of half of it and the webhook, through the engine.
async fn project(engine: &Engine, args: &Args) -> Result<Project, Box<dyn std::error::Error>> {
    let storage = engine.storage();
    let project = match storage.project_by_textid(TEXTID).await? {
        Some(p) => p,
        None => {
            storage
                .create_project(NewProject::new("my workers", TextId::parse(TEXTID)?))
                .await?
        }
    };
    let (period, webhook) = (args.period, args.webhook.clone());
    engine
        .edit_project(project.id, move |p| {
            let mut policy = p.policy_or_default("Default");
            policy.period = Interval::from_secs(period);
            policy.patience = Interval::from_secs(period.div_ceil(2));
            policy.url_statuschange = Some(webhook.clone());
            p.put_policy(policy);
            Ok::<_, std::convert::Infallible>(())
        })
        .await?;
    Ok(project)
}

/// Worker `n`: a job per half period, each reported. Worker 0 hangs after `hang_after`.
async fn worker(engine: Engine, n: u32, period: u64, hang_after: u32) {
    let name = format!("worker:{n}");
    for job in 0u32.. {
        if n == 0 && job >= hang_after {
            eprintln!("{name}: hangs (stops reporting)");
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(period * 500)).await;
        // A real job goes here; its failure would be reported as ERR with the reason.
        let mut update = UpdateRequest::new(TEXTID, &name, "OK");
        update.details = Some(format!("job {job} done"));
        if let Err(e) = engine.update(update).await {
            eprintln!("{name}: the report was refused: {e}");
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let storage = SqliteStorage::connect(&args.database).await?;
    storage.migrate().await?;
    let storage: Arc<dyn Storage> = Arc::new(storage);
    let networks = if args.networks.is_empty() {
        okerr::outbound::OutboundNetworks::default()
    } else {
        okerr::outbound::OutboundNetworks(args.networks.clone())
    };
    let notifier = WebhookNotifier::new(Duration::from_secs(3), networks)?;
    let engine = Engine::with_config(
        storage,
        Arc::new(notifier),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    project(&engine, &args).await?;
    for n in 0..args.workers {
        tokio::spawn(worker(engine.clone(), n, args.period, args.hang_after));
    }
    let run_for = args.run_for;
    let shutdown = async move {
        match run_for {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    eprintln!(
        "watching {} workers (period {} s); status changes go to {}",
        args.workers, args.period, args.webhook
    );
    engine.run(shutdown).await;
    Ok(())
}
