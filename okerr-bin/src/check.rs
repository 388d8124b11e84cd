//! `okerr check METHOD ARG=VALUE…`: runs one active check now and prints its result, as
//! okerr's sensor's `check.py` does (`okerr check sslcert host=www.example.com`).

use clap::Args;

use crate::Error;

/// Runs one active check now.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The method: httpstatus, httpgrep, sha1static, sha1dynamic, sslcert, tcpport, ping,
    /// dns, dnsbl, whois.
    pub(crate) method: String,
    /// The method's arguments (`url=https://example.com/`); the others keep okerr's
    /// defaults (`GET /api/checkmethods` lists them).
    #[arg(value_name = "ARG=VALUE")]
    pub(crate) args: Vec<String>,
    /// A network the check may reach: `public` or a CIDR (repeatable) [default: every
    /// address].
    #[arg(long = "outbound-network", value_name = "public|CIDR")]
    pub(crate) outbound_networks: Vec<okerr::OutboundNet>,
}

/// Prints `OK details` or `ERR details`, then each learned argument (`set hash=…`) and
/// alert (`alert: …`). Exits 1 on ERR, as a script's check would.
pub(crate) async fn check(args: CheckArgs) -> Result<(), Error> {
    let Some(method) = okerr::ActiveMethod::from_codename(&args.method) else {
        let known: Vec<&str> = okerr::ActiveMethod::ALL
            .iter()
            .map(|m| m.codename())
            .collect();
        return Err(Error::Usage(format!(
            "unknown active method '{}' (known: {})",
            args.method,
            known.join(" ")
        )));
    };
    let mut pairs = Vec::new();
    for a in &args.args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("'{a}' is not ARG=VALUE")))?;
        pairs.push((k, v));
    }
    let request = okerr::ActiveArgs::with(method, pairs.iter().copied())
        .map_err(|e| Error::Usage(e.to_string()))?;
    let mut config = okerr_checks::CheckConfig::default();
    if !args.outbound_networks.is_empty() {
        config.outbound = okerr::OutboundNetworks(args.outbound_networks);
    }
    let checker = okerr_checks::Checker::new(config).map_err(|e| Error::Usage(e.to_string()))?;
    let now = okerr::Clock::now(&okerr::SystemClock);
    let result = checker.check(&request, now).await;
    println!("{} {}", result.status, result.details);
    for (k, v) in &result.set_args {
        println!("set {k}={v}");
    }
    for a in &result.alerts {
        println!("alert: {a}");
    }
    if result.problem {
        println!("problem: the check cannot work with these arguments");
    }
    if result.status == okerr::Status::Err {
        return Err(Error::Failed);
    }
    Ok(())
}
