//! Pushes updates through the `okerr-client` library: a heartbeat, a number with a
//! numerical check method, and a status from the okerrclient script language.
//!
//! Run with: `cargo run -p okerr-example-push -- URL TEXTID [SECRET]`, against a server
//! started with `okerr serve` (it prints its TextID on the first start), e.g.
//! `cargo run -p okerr-example-push -- http://127.0.0.1:8080/ ph5ux533ea`.
//!
//! The seed's cron script for `okerr client` is `apache2.sh` next to this crate's
//! `Cargo.toml`.

use std::process::ExitCode;

use okerr_client::script::Script;
use okerr_client::{Client, Config, Update, Url};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(textid)) = (args.first(), args.get(1)) else {
        eprintln!("usage: okerr-example-push URL TEXTID [SECRET]");
        return ExitCode::from(2);
    };
    match push(url, textid, args.get(2).cloned().unwrap_or_default()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("okerr-example-push: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn push(url: &str, textid: &str, secret: String) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::new(textid, Url::parse(url)?);
    config.secret = secret;
    let client = Client::new(config)?;

    // A heartbeat, with details.
    let heartbeat = Update {
        details: Some("pushed by okerr-example-push".into()),
        ..Update::new("example:heartbeat", "OK")
    };
    // A number, checked against a limit when the server creates the indicator.
    let temperature = Update {
        method: Some("numerical|maxlim=37".into()),
        ..Update::new("example:temperature", "36.6")
    };
    // A script, as `okerr client -s …` runs it: the 1-minute load average as a number,
    // all three in the details.
    let script = Script::parse(["NAME example:load", "METHOD numerical maxlim=4", "LOADAVG"])?;
    let evaluation = script.evaluate(None, &okerr_client::probes::SystemProbes)?;

    // One director lookup for all of them.
    let updates: Vec<Update> = [heartbeat, temperature]
        .into_iter()
        .chain(evaluation.updates)
        .collect();
    let mut failed = 0;
    for (update, result) in updates.iter().zip(client.send_all(&updates).await?) {
        match result {
            Ok(accepted) => println!("{}", accepted.line(update, textid)),
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", update.name);
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} updates failed", updates.len()).into());
    }
    Ok(())
}
