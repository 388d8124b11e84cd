//! `okerr client` (the okerrclient script language) and `okerr update` (like
//! okerrupdate): push updates to an okerr server with the `okerr-client` library.
//!
//! Both exit 0 only when the server accepted every update; a refusal (any answer but
//! 200) or an unreachable server exits 1 with the server's reason. The Python
//! okerrclient exits 0 on refusals (docs/decisions.md).

use std::time::Duration;

use clap::Args;
use okerr_client::script::{Script, ScriptError};
use okerr_client::{Client, Config, Retry, Update, Url};

/// Where updates go, and as whom (the options of both commands).
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The project's TextID.
    #[arg(short = 'i', long, env = "OKERR_TEXTID")]
    textid: Option<String>,
    /// The secret the project's policy asks for [default: none].
    #[arg(short = 'S', long, env = "OKERR_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The server with --direct, else the director that names it (only the scheme,
    /// host and port are used: GET /api/director/TEXTID).
    #[arg(long, env = "OKERR_URL")]
    url: Option<Url>,
    /// Post to URL/update without asking the director.
    #[arg(
        long,
        env = "OKERR_DIRECT",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    direct: bool,
    /// The time limit of one request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    timeout: u64,
    /// How often a request is repeated after a connection error, a timeout, 429 or
    /// 5xx (waiting 1 s, doubling to 16 s, 60 s at most in all).
    #[arg(long, default_value_t = 5)]
    retries: u32,
}

impl Target {
    fn client(&self, textid: Option<String>) -> Result<Client, Failure> {
        let textid = textid
            .or_else(|| self.textid.clone())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Failure::Usage("no TextID: give -i TEXTID or set OKERR_TEXTID".into())
            })?;
        let url = self
            .url
            .clone()
            .ok_or_else(|| Failure::Usage("no server: give --url URL or set OKERR_URL".into()))?;
        let config = Config {
            textid,
            secret: self.secret.clone().unwrap_or_default(),
            url,
            direct: self.direct,
            retry: Retry {
                retries: self.retries,
                ..Retry::default()
            },
            timeout: Duration::from_secs(self.timeout.max(1)),
        };
        Ok(Client::new(config)?)
    }
}

/// `okerr client`.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    target: Target,
    /// The indicator name the script starts with (NAME changes it) [default: the short
    /// host name].
    #[arg(long = "name", value_name = "DEFNAME")]
    name: Option<String>,
    /// Print the requests instead of sending them.
    #[arg(long)]
    dry: bool,
    /// The script, one instruction per argument: -s 'NAME test:apache2' 'PROC apache2'.
    /// Instructions: OK ERR STR NAME METHOD POLICY DETAILS TAG SET SAVE LOAD EXPORT
    /// EXCEPT DEFAULT INT NONZERO OKERRNOT NONE DUMP DATETIME LIST FIRST LAST LEN FORK
    /// PROC DF LOADAVG UPTIME.
    #[arg(short = 's', long = "sequence", value_name = "INSTRUCTION", num_args = 1.., required = true)]
    sequence: Vec<String>,
}

/// `okerr update`.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    target: Target,
    /// The indicator name; `NAME@TEXTID` gives the TextID too.
    name: String,
    /// The status: OK or ERR (heartbeat), a number (numerical), any text (string).
    status: String,
    /// Details shown with the status.
    #[arg(short = 'd', long)]
    details: Option<String>,
    /// The check method when the server creates the indicator
    /// (`numerical|maxlim=37`).
    #[arg(short = 'm', long, default_value = "heartbeat")]
    method: String,
    /// The policy when the server creates the indicator.
    #[arg(short = 'p', long, default_value = "Default")]
    policy: String,
    /// The description when the server creates the indicator.
    #[arg(long, default_value = "")]
    desc: String,
    /// Print the request instead of sending it.
    #[arg(long)]
    dry: bool,
}

/// Why `okerr client` or `okerr update` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("script: {0}")]
    Script(#[from] ScriptError),
    #[error("update failed: {0}")]
    Send(#[from] okerr_client::Error),
    #[error("{failed} of {total} updates failed")]
    Some { failed: usize, total: usize },
}

/// Runs `okerr client`.
pub(crate) async fn client(args: ClientArgs) -> Result<(), crate::Error> {
    let script = Script::parse(&args.sequence).map_err(Failure::from)?;
    let client = args.target.client(None)?;
    let name = args.name.or_else(okerr_client::probes::short_host_name);
    let probes = okerr_client::probes::SystemProbes;
    let ev = script
        .evaluate(name.as_deref(), &probes)
        .map_err(Failure::from)?;
    for line in &ev.printed {
        println!("{line}");
    }
    for w in &ev.warnings {
        eprintln!("okerr: warning: {w}");
    }
    if args.dry {
        dry(&client, &ev.updates)?;
        return Ok(());
    }
    if ev.updates.is_empty() {
        return Ok(());
    }
    let textid = &client.config().textid;
    let results = client.send_all(&ev.updates).await.map_err(Failure::from)?;
    let total = results.len();
    let mut failed = 0;
    let mut last = None;
    for (update, result) in ev.updates.iter().zip(results) {
        match result {
            Ok(accepted) => eprintln!("{}", accepted.line(update, textid)),
            Err(e) => {
                failed += 1;
                if total > 1 {
                    eprintln!("okerr: {}: update failed: {e}", update.name);
                }
                last = Some(e);
            }
        }
    }
    match (failed, last) {
        (0, _) => Ok(()),
        (1, Some(e)) if total == 1 => Err(Failure::Send(e).into()),
        _ => Err(Failure::Some { failed, total }.into()),
    }
}

/// Runs `okerr update`.
pub(crate) async fn update(args: UpdateArgs) -> Result<(), crate::Error> {
    let (name, textid) = match args.name.split_once('@') {
        Some((name, textid)) => (name.to_owned(), Some(textid.to_owned())),
        None => (args.name.clone(), None),
    };
    let client = args.target.client(textid)?;
    let update = Update {
        details: args.details,
        method: Some(args.method),
        policy: Some(args.policy),
        desc: args.desc,
        ..Update::new(name, args.status)
    };
    if args.dry {
        dry(&client, std::slice::from_ref(&update))?;
        return Ok(());
    }
    let accepted = client.send(&update).await.map_err(Failure::from)?;
    println!("{}", accepted.line(&update, &client.config().textid));
    Ok(())
}

/// `--dry`: the requests on stdout, nothing sent.
fn dry(client: &Client, updates: &[Update]) -> Result<(), Failure> {
    let config = client.config();
    let target = if config.direct {
        Client::update_url(&config.url)?.to_string()
    } else {
        format!("{{the server GET {} names}}update", client.director_url()?)
    };
    for u in updates {
        println!("POST {target}");
        println!("{}", u.body(&config.textid, &config.secret));
    }
    Ok(())
}
