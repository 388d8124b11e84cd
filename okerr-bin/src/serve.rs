//! `okerr serve`: the HTTP front end and the scheduler on one storage, until SIGTERM or
//! SIGINT; then it stops accepting, finishes the requests in flight and exits 0.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use okerr::{Clock, Engine, EngineConfig, Interval, Settings, Storage, SystemClock};
use okerr_http::{ADMIN_TOKEN_SETTING, AppState, HttpConfig};
use okerr_notify::{DailySummary, Dispatcher, EmailNotifier, MailConfig, WebhookNotifier};
use serde::Deserialize;
use url::Url;

use crate::cli::{ServeArgs, TimeOfDay};
use crate::{Error, admin, secret, store};

/// The default address: loopback only, so a first start exposes nothing.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What the `--config` TOML file may hold; options and environment win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    public_url: Option<Url>,
    #[serde(default)]
    trusted_proxies: Vec<IpNet>,
    admin_token: Option<String>,
    min_period: Option<Interval>,
    min_patience: Option<Interval>,
    smtp_listen: Option<SocketAddr>,
    mail_relay: Option<String>,
    mail_from: Option<String>,
    mail_batch_delay: Option<Interval>,
    summary_at: Option<TimeOfDay>,
    header_timeout: Option<Interval>,
    body_timeout: Option<Interval>,
    idle_timeout: Option<Interval>,
    max_connections: Option<usize>,
    update_pipeline: Option<usize>,
    shutdown_grace: Option<Interval>,
    storage_timeout: Option<Interval>,
    max_indicators: Option<u32>,
    autocreate_burst: Option<u32>,
    autocreate_per_minute: Option<u32>,
    outbound_networks: Option<okerr::OutboundNetworks>,
    check_concurrency: Option<usize>,
    check_timeout: Option<Interval>,
    log_lines: Option<u32>,
    log_max_age: Option<Interval>,
    outbox_max_age: Option<Interval>,
    dead_letter_after: Option<Interval>,
}

fn read_config(path: &Path) -> Result<FileConfig, Error> {
    let config_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Config {
        path: path.display().to_string(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| config_error(e.into()))?;
    toml::from_str(&text).map_err(|e| config_error(e.into()))
}

/// The indicator limit and the autocreate rate (docs/operations.md, "Abuse limits"): a
/// setting of 0 turns its limit off.
fn abuse_limits(args: &ServeArgs, file: &FileConfig) -> Settings {
    let defaults = Settings::default();
    let rate = defaults.autocreate_rate.unwrap_or_default();
    let max_indicators = args
        .max_indicators
        .or(file.max_indicators)
        .or(defaults.max_indicators)
        .filter(|n| *n > 0);
    let burst = args
        .autocreate_burst
        .or(file.autocreate_burst)
        .unwrap_or(rate.burst);
    let per_minute = args
        .autocreate_per_minute
        .or(file.autocreate_per_minute)
        .unwrap_or(rate.per_minute);
    Settings {
        max_indicators,
        autocreate_rate: (burst > 0).then_some(okerr::AutocreateRate { burst, per_minute }),
        ..defaults
    }
}

pub(crate) async fn run(database: &str, args: ServeArgs) -> Result<(), Error> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
    let server = server_config(&args, &file);
    let limits = abuse_limits(&args, &file);
    let outbound = match args.outbound_networks.as_slice() {
        [] => file.outbound_networks.clone().unwrap_or_default(),
        nets => okerr::OutboundNetworks(nets.to_vec()),
    };
    let listen = args.listen.or(file.listen).unwrap_or_else(|| {
        DEFAULT_LISTEN
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)))
    });
    let mut trusted_proxies = file.trusted_proxies;
    trusted_proxies.extend(args.trusted_proxies);
    let settings = Settings {
        min_period: args
            .min_period
            .or(file.min_period)
            .unwrap_or_else(|| Interval::from_secs(0)),
        min_patience: args
            .min_patience
            .or(file.min_patience)
            .unwrap_or_else(|| Interval::from_secs(0)),
        ..limits
    };

    let storage = store::open(database).await?;
    let listener = bind(listen)?;
    let bound = listener.local_addr()?;
    let smtp_listener = match args.smtp_listen.or(file.smtp_listen) {
        Some(addr) => Some(bind(addr)?),
        None => None,
    };
    let public_url = match args.public_url.or(file.public_url) {
        Some(url) => url,
        None => format!("http://{bound}/")
            .parse()
            .map_err(|e| Error::Usage(format!("no public URL for {bound}: {e}")))?,
    };
    let mut http = HttpConfig::new(public_url);
    http.trusted_proxies = trusted_proxies;
    if let Some(bound) = args
        .storage_timeout
        .as_ref()
        .or(file.storage_timeout.as_ref())
    {
        http.storage_timeout = secs(bound);
    }
    http.outbound = outbound.clone();
    let admin_token = args.admin_token.or(file.admin_token);
    first_start(&storage, admin_token.as_deref(), &http.public_url).await?;

    let batch_delay = args
        .mail_batch_delay
        .or(file.mail_batch_delay)
        .unwrap_or_else(|| Interval::from_secs(10));
    let mut retention = okerr::Retention::default();
    if let Some(n) = args.log_lines.or(file.log_lines) {
        retention.log_lines = n;
    }
    for (arg, file, slot) in [
        (args.log_max_age, file.log_max_age, &mut retention.log_age),
        (
            args.outbox_max_age,
            file.outbox_max_age,
            &mut retention.outbox_age,
        ),
        (
            args.dead_letter_after,
            file.dead_letter_after,
            &mut retention.dead_letter_after,
        ),
    ] {
        if let Some(d) = arg.or(file) {
            *slot = d.to_chrono();
        }
    }
    // PostgreSQL's writers work side by side: the scheduler claims in several loops.
    let defaults = if store::is_single_node(database) {
        EngineConfig::default()
    } else {
        EngineConfig::default().with_parallel_claims()
    };
    let check_timeout = args
        .check_timeout
        .or(file.check_timeout)
        .map_or(defaults.check_timeout, |d| secs(&d));
    let config = EngineConfig {
        settings,
        batch_delay: batch_delay.to_chrono(),
        retention,
        update_pipeline: args
            .update_pipeline
            .or(file.update_pipeline)
            .unwrap_or(defaults.update_pipeline),
        check_concurrency: args
            .check_concurrency
            .or(file.check_concurrency)
            .unwrap_or(defaults.check_concurrency)
            .max(1),
        check_timeout,
        ..defaults
    };
    // The active checks: the same outbound networks as webhooks, cut at the same bound
    // by the checker and by the engine.
    let checker = okerr_checks::Checker::new(okerr_checks::CheckConfig {
        timeout: check_timeout,
        outbound: outbound.clone(),
        ..okerr_checks::CheckConfig::default()
    })
    .map_err(|e| Error::Usage(format!("active checks: {e}")))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let relay = args.mail_relay.or(file.mail_relay);
    let from = args.mail_from.or(file.mail_from);
    let mail = mail_config(relay, from, &http.public_url)?;
    let email = mail
        .clone()
        .map(|mail| EmailNotifier::new(mail, storage.clone(), clock.clone()));
    let webhook = WebhookNotifier::new(std::time::Duration::from_secs(3), outbound)
        .map_err(|e| Error::Usage(format!("webhooks: {e}")))?;
    let notifier = Arc::new(Dispatcher::new(email, webhook));
    let summary_at = args.summary_at.or(file.summary_at).unwrap_or_default();
    let summary =
        mail.map(|mail| DailySummary::new(mail, storage.clone(), clock.clone(), summary_at.time()));
    let engine = Engine::builder(storage.clone(), clock)
        .notifier(notifier)
        .config(config)
        .sensor(Arc::new(checker))
        .build();
    if store::is_single_node(database) {
        // Claims of a run that was killed: taken back now, not when their leases end.
        engine.take_back_claims().await?;
    }
    let app = okerr_http::router(AppState::new(engine.clone(), http));

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = {
        let engine = engine.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            engine
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        })
    };
    let summaries = summary.map(|summary| {
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            summary
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        })
    });
    let smtp = match smtp_listener {
        Some(listener) => {
            eprintln!("okerr smtp listening on {}", listener.local_addr()?);
            let mut stopped = stopped.clone();
            Some(tokio::spawn(okerr_smtp::serve(
                listener,
                engine.clone(),
                okerr_smtp::SmtpConfig::default(),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    eprintln!("okerr listening on http://{bound}/ (database {database})");
    okerr_http::serve(listener, app, server, shutdown_signal()).await?;
    tracing::info!("the HTTP server stopped");
    let _ = stop.send(true);
    if let Some(smtp) = smtp
        && let Err(e) = smtp.await
    {
        tracing::error!(error = %e, "the smtp server task failed");
    }
    if let Some(summaries) = summaries
        && let Err(e) = summaries.await
    {
        tracing::error!(error = %e, "the daily summary task failed");
    }
    if let Err(e) = scheduler.await {
        tracing::error!(error = %e, "the scheduler task failed");
    }
    Ok(())
}

/// A setting's duration.
fn secs(interval: &Interval) -> std::time::Duration {
    std::time::Duration::from_secs(interval.as_secs())
}

/// Open files a server needs besides its connections: the database, logs, SMTP, DNS.
const FD_RESERVE: u64 = 128;

/// The limits of the HTTP server; the soft open-files limit is raised to the hard one
/// first, and the connection cap kept below it.
fn server_config(args: &ServeArgs, file: &FileConfig) -> okerr_http::ServerConfig {
    let mut server = okerr_http::ServerConfig::default();
    let pick = |arg: &Option<Interval>, file: &Option<Interval>, default| {
        arg.as_ref().or(file.as_ref()).map_or(default, secs)
    };
    server.header_timeout = pick(
        &args.header_timeout,
        &file.header_timeout,
        server.header_timeout,
    );
    server.body_timeout = pick(&args.body_timeout, &file.body_timeout, server.body_timeout);
    server.idle_timeout = pick(&args.idle_timeout, &file.idle_timeout, server.idle_timeout);
    server.grace = pick(&args.shutdown_grace, &file.shutdown_grace, server.grace);
    if let Some(max) = args.max_connections.or(file.max_connections) {
        server.max_connections = max;
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(limit, "open files limit (soft, raised to the hard limit)");
            let usable = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            if server.max_connections > usable {
                tracing::warn!(
                    max_connections = server.max_connections,
                    usable,
                    limit,
                    "the open files limit allows fewer connections: capped"
                );
                server.max_connections = usable.max(1);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
    server
}

/// Connections the kernel completes and queues before the server accepts them. tokio's
/// default (1,024) overflows when thousands of cron jobs connect in the same second: the
/// kernel then drops SYNs, and each dropped client waits 1, 3, 7 s for its resend. Linux
/// caps it at `net.core.somaxconn` (4,096 by default).
const LISTEN_BACKLOG: u32 = 4_096;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The mail settings, when a relay is configured; without one the server says that
/// alerts stay in the outbox.
fn mail_config(
    relay: Option<String>,
    from: Option<String>,
    public_url: &Url,
) -> Result<Option<MailConfig>, Error> {
    let Some(relay) = relay else {
        tracing::warn!("no mail relay configured (--mail-relay): alerts stay in the outbox");
        return Ok(None);
    };
    let from = from.unwrap_or_else(|| {
        format!(
            "okerr <okerr@{}>",
            public_url.domain().unwrap_or("localhost")
        )
    });
    let mail = MailConfig::new(&relay, &from, public_url.clone()).map_err(|e| {
        let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
        Error::Usage(format!("--mail-relay/--mail-from: {e}{cause}"))
    })?;
    Ok(Some(mail))
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Stores a configured admin token; on the first start with an empty database, makes a
/// project, an API key and (unless configured) an admin token, and prints them with a
/// first update to paste.
async fn first_start(
    storage: &Arc<dyn Storage>,
    admin_token: Option<&str>,
    public_url: &Url,
) -> Result<(), Error> {
    let new_token = match admin_token {
        Some(token) => {
            storage
                .put_setting(ADMIN_TOKEN_SETTING, &okerr::project::sha256_hex(token))
                .await?;
            None
        }
        None if storage.setting(ADMIN_TOKEN_SETTING).await?.is_none() => {
            let token = secret::token(40);
            storage
                .put_setting(ADMIN_TOKEN_SETTING, &okerr::project::sha256_hex(&token))
                .await?;
            Some(token)
        }
        None => None,
    };
    if !storage.projects().await?.is_empty() {
        if let Some(token) = new_token {
            println!("Admin token: {token}");
        }
        return Ok(());
    }
    let project = admin::create_project(storage, None, Some("first project")).await?;
    let key = admin::create_key(storage, project.textid.as_str(), "created on first start").await?;
    let t = &project.textid;
    println!("okerr: a first project was created. Keep these, they are shown only once.");
    println!();
    println!("TextID:      {t}");
    println!("API key:     {key}");
    match &new_token {
        Some(token) => println!("Admin token: {token}"),
        None => println!("Admin token: (as configured)"),
    }
    println!();
    println!("A first update with curl:");
    println!("  curl -d textid={t} -d name=test:apache2 -d status=OK {public_url}update");
    println!("with this binary:");
    println!("  okerr update --url {public_url} -i {t} test:apache2 OK");
    println!("or with okerrupdate (pip install okerrupdate):");
    println!("  OKERR_SECRET= okerrupdate --url {public_url} -i {t} test:apache2 OK");
    println!("Then see the project's page (sign in with the API key):");
    println!("  {public_url}p/{t}");
    println!("or list the indicators:");
    println!("  curl -H 'X-API-KEY: {key}' {public_url}api/indicators/{t}");
    Ok(())
}
