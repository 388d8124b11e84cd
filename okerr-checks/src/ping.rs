//! `ping`: three ICMP echoes, all of which must be answered.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use okerr::ActiveArgs;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence};
use tokio::sync::OnceCell;

use crate::resolve::TargetError;
use crate::{CheckResult, Inner};

/// The echoes of one check.
const COUNT: u16 = 3;

/// The ICMP sockets (one per address family), opened at the first ping: raw sockets as
/// root, else unprivileged ICMP datagram sockets where the kernel allows them
/// (`net.ipv4.ping_group_range`).
#[derive(Default)]
pub(crate) struct Pinger {
    v4: OnceCell<Result<Client, String>>,
    v6: OnceCell<Result<Client, String>>,
    ident: AtomicU16,
}

impl std::fmt::Debug for Pinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinger").finish_non_exhaustive()
    }
}

impl Pinger {
    async fn client(&self, v6: bool) -> Result<&Client, String> {
        let (cell, kind) = if v6 {
            (&self.v6, ICMP::V6)
        } else {
            (&self.v4, ICMP::V4)
        };
        cell.get_or_init(|| async move {
            Client::new(&Config::builder().kind(kind).build()).map_err(|e| e.to_string())
        })
        .await
        .as_ref()
        .map_err(Clone::clone)
    }

    /// Whether this process may send ICMP echoes (for tests that must skip otherwise).
    pub(crate) async fn available() -> Result<(), String> {
        Client::new(&Config::default())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// OK when all three echoes are answered; details `"{ip}: {avg:.2f}ms ({recv}/{sent})"`.
pub(crate) async fn ping(i: &Inner, args: &ActiveArgs) -> CheckResult {
    let host = args.get("host");
    let ip = match i.resolver.allowed(host).await {
        Ok(ips) => ips[0],
        Err(TargetError::Resolve(_)) => {
            return CheckResult::err(format!("The name '{host}' cannot be resolved"));
        }
        Err(TargetError::Refused(e)) => return CheckResult::err(e.to_string()),
    };
    let client = match i.ping.client(ip.is_ipv6()).await {
        Ok(c) => c,
        Err(e) => return CheckResult::err(e),
    };
    // Several checks of one host at once must not take each other's replies.
    let ident = PingIdentifier(
        i.ping
            .ident
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(std::process::id() as u16),
    );
    let (received, rtts) = echoes(
        client,
        ip,
        ident,
        i.config.ping_timeout,
        i.config.ping_interval,
    )
    .await;
    let avg = if rtts.is_empty() {
        0.0
    } else {
        rtts.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / rtts.len() as f64
    };
    let details = format!("{ip}: {avg:.2}ms ({received}/{COUNT})");
    if received == COUNT {
        CheckResult::ok(details)
    } else {
        CheckResult::err(details)
    }
}

async fn echoes(
    client: &Client,
    ip: IpAddr,
    ident: PingIdentifier,
    timeout: Duration,
    interval: Duration,
) -> (u16, Vec<Duration>) {
    let mut pinger = client.pinger(ip, ident).await;
    pinger.timeout(timeout);
    let payload = [0u8; 56];
    let mut rtts = Vec::new();
    for seq in 0..COUNT {
        if seq > 0 {
            tokio::time::sleep(interval).await;
        }
        if let Ok((_, rtt)) = pinger.ping(PingSequence(seq), &payload).await {
            rtts.push(rtt);
        }
    }
    (u16::try_from(rtts.len()).unwrap_or(0), rtts)
}
