//! `dns` (a record compared, learned or followed; `reverse`; `DNSBL zone`) and `dnsbl`
//! (the host in a list of block lists).

use std::net::IpAddr;
use std::str::FromStr;

use futures_util::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use okerr::ActiveArgs;

use crate::{CheckResult, Inner};

/// The DNS block lists okerr's sensor asks (`async_dnsbl_client.dnsbl_zones`).
pub const DNSBL_ZONES: [&str; 53] = [
    "cbl.abuseat.org",
    "dnsbl.sorbs.net",
    "dul.dnsbl.sorbs.net",
    "smtp.dnsbl.sorbs.net",
    "spam.dnsbl.sorbs.net",
    "zombie.dnsbl.sorbs.net",
    "sbl.spamhaus.org",
    "zen.spamhaus.org",
    "psbl.surriel.com",
    "rbl.spamlab.com",
    "noptr.spamrats.com",
    "cbl.anti-spam.org.cn",
    "dnsbl.inps.de",
    "httpbl.abuse.ch",
    "short.rbl.jp",
    "spamrbl.imp.ch",
    "virbl.bit.nl",
    "dsn.rfc-ignorant.org",
    "opm.tornevall.org",
    "multi.surbl.org",
    "tor.dan.me.uk",
    "relays.mail-abuse.org",
    "rbl-plus.mail-abuse.org",
    "access.redhawk.org",
    "rbl.interserver.net",
    "bogons.cymru.com",
    "truncate.gbudb.net",
    "bl.spamcop.net",
    "b.barracudacentral.org",
    "http.dnsbl.sorbs.net",
    "misc.dnsbl.sorbs.net",
    "socks.dnsbl.sorbs.net",
    "web.dnsbl.sorbs.net",
    "pbl.spamhaus.org",
    "xbl.spamhaus.org",
    "ubl.unsubscore.com",
    "dyna.spamrats.com",
    "spam.spamrats.com",
    "cdl.anti-spam.org.cn",
    "drone.abuse.ch",
    "korea.services.net",
    "virus.rbl.jp",
    "wormrbl.imp.ch",
    "rbl.suresupport.com",
    "spamguard.leadmon.net",
    "netblock.pedantic.org",
    "ix.dnsbl.manitu.net",
    "rbl.efnetrbl.org",
    "blackholes.mail-abuse.org",
    "dnsbl.dronebl.org",
    "db.wpbl.info",
    "query.senderbase.org",
    "csi.cloudmark.com",
];

/// A failed lookup, with dnspython's texts for the common cases.
fn lookup_error(name: &str, rtype: RecordType, e: &NetError) -> String {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            format!("The DNS query name does not exist: {name}")
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => format!(
            "The DNS response does not contain an answer to the question: {name} IN {rtype}"
        ),
        other => other.to_string(),
    }
}

fn is_nxdomain(e: &NetError) -> bool {
    matches!(e, NetError::Dns(DnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::NXDomain)
}

fn fqdn(s: &str) -> String {
    if s.ends_with('.') {
        s.to_owned()
    } else {
        format!("{s}.")
    }
}

/// A record as dnspython writes it (`to_text`): TXT strings quoted.
fn rdata_text(d: &RData) -> String {
    match d {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| {
                let s = String::from_utf8_lossy(s);
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The answers of type `rtype` for `name`, as texts.
async fn query(r: &TokioResolver, name: &str, rtype: RecordType) -> Result<Vec<String>, String> {
    let qname = fqdn(name);
    match r.lookup(qname.as_str(), rtype).await {
        Ok(l) => {
            let found: Vec<String> = l
                .answers()
                .iter()
                .filter(|rec| rec.record_type() == rtype)
                .map(|rec| rdata_text(&rec.data))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "The DNS response does not contain an answer to the question: {qname} IN {rtype}"
                ));
            }
            Ok(found)
        }
        Err(e) => Err(lookup_error(&qname, rtype, &e)),
    }
}

/// `dns`: the sorted, space-joined answers compared with `value`; `init` learns an empty
/// value, `dynamic` follows a change (OK, learned, alert `"{old} > {new}"`). `type` may be
/// `reverse` (PTR of an address) or `DNSBL zone`.
pub(crate) async fn dns(i: &Inner, args: &ActiveArgs) -> CheckResult {
    let host = args.get("host");
    let qtype = args.get("type");
    let options = args.get("options");
    let value = args.get("value");
    let r = &i.resolver.dns;

    if qtype.to_lowercase().starts_with("dnsbl") {
        return dns_blocklist(i, host, qtype).await;
    }
    let (name, rtype) = if qtype.eq_ignore_ascii_case("reverse") {
        match host.parse::<IpAddr>() {
            Ok(ip) => (Name::from(ip).to_string(), RecordType::PTR),
            Err(_) => {
                return CheckResult::err(format!(
                    "'{host}' does not appear to be an IPv4 or IPv6 address"
                ));
            }
        }
    } else {
        match RecordType::from_str(&qtype.to_uppercase()) {
            Ok(t) if !matches!(t, RecordType::Unknown(_)) => (host.to_owned(), t),
            _ => return CheckResult::problem("DNS resource record type is unknown."),
        }
    };
    let mut answers = match query(r, &name, rtype).await {
        Ok(a) => a,
        Err(e) => return CheckResult::err(e),
    };
    answers.sort();
    let dnsstr = answers.join(" ");
    if value.is_empty() && options.contains("init") {
        return CheckResult::ok(format!("init: {dnsstr}")).learn("value", dnsstr);
    }
    if dnsstr == value {
        return CheckResult::ok(format!("match: {dnsstr}"));
    }
    if options.contains("dynamic") {
        let alert = format!("{value} > {dnsstr}");
        return CheckResult::ok(format!("new: {dnsstr}"))
            .learn("value", dnsstr)
            .alert(alert);
    }
    CheckResult::err(dnsstr)
}

/// `dns` with `type=DNSBL zone`: OK `"{host} ({ip}) not in {zone}."` when the zone has no
/// record for the host's address; listed: ERR with the zone's TXT, the A record learned.
async fn dns_blocklist(i: &Inner, host: &str, qtype: &str) -> CheckResult {
    let mut words = qtype.split_whitespace();
    let (Some(_), Some(zone), None) = (words.next(), words.next(), words.next()) else {
        return CheckResult::err("not enough values to unpack (expected 2)");
    };
    let zone = fqdn(zone);
    let ip4 = match i.resolver.all(host).await {
        Ok(ips) => match ips.into_iter().find(IpAddr::is_ipv4) {
            Some(ip) => ip,
            None => return CheckResult::err(format!("no IPv4 address for {host}")),
        },
        Err(e) => return CheckResult::err(e),
    };
    let qhost = format!("{}.{zone}", reversed(ip4));
    let r = &i.resolver.dns;
    match r.lookup(qhost.as_str(), RecordType::A).await {
        Err(e) if is_nxdomain(&e) => CheckResult::ok(format!("{host} ({ip4}) not in {zone}")),
        Err(e) => CheckResult::err(lookup_error(&qhost, RecordType::A, &e)),
        Ok(found) => {
            let listed = found
                .answers()
                .iter()
                .find(|rec| rec.record_type() == RecordType::A)
                .map(|rec| rdata_text(&rec.data))
                .unwrap_or_default();
            match query(r, &qhost, RecordType::TXT).await {
                Ok(txt) => CheckResult::err(txt[0].clone()).learn("value", listed),
                Err(e) => CheckResult::err(e).learn("value", listed),
            }
        }
    }
}

/// `4.3.2.1` for `1.2.3.4`.
fn reversed(ip: IpAddr) -> String {
    let s = ip.to_string();
    let mut parts: Vec<&str> = s.split('.').collect();
    parts.reverse();
    parts.join(".")
}

/// `dnsbl`: the host's addresses looked up in every zone (okerr's list less `skip`, plus
/// `extra`), all at once. OK `"Not found in {n} DNSBL checked"` (with `" ({k} skipped)"`);
/// listed: ERR `"{first three zones} (total: {hits}/{n})"`.
pub(crate) async fn dnsbl(i: &Inner, args: &ActiveArgs) -> CheckResult {
    let host = args.get("host");
    let split = |s: &str| -> Vec<String> {
        s.split([',', ' '])
            .filter(|z| !z.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let skip = split(args.get("skip"));
    let extra = split(args.get("extra"));
    let mut zones = i.config.dnsbl_zones.clone();
    for bl in &skip {
        match zones.iter().position(|z| z == bl) {
            Some(p) => {
                zones.remove(p);
            }
            None => return CheckResult::err(format!("Zone {bl} not available. Maybe mistype?")),
        }
    }
    zones.extend(extra);
    let r = &i.resolver.dns;
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match r.lookup(fqdn(host).as_str(), RecordType::A).await {
            Ok(found) => found
                .answers()
                .iter()
                .filter_map(|a| match &a.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                })
                .collect(),
            Err(_) => return CheckResult::err(format!("Failed to resolve {host}")),
        },
    };
    let mut asks = Vec::new();
    for ip in &ips {
        let rev = reversed(*ip);
        for zone in &zones {
            let q = fqdn(&format!("{rev}.{zone}"));
            asks.push(async move {
                let listed = r
                    .lookup(q.as_str(), RecordType::A)
                    .await
                    .is_ok_and(|l| l.answers().iter().any(|a| a.record_type() == RecordType::A));
                listed.then(|| zone.clone())
            });
        }
    }
    let hits: Vec<String> = join_all(asks).await.into_iter().flatten().collect();
    let checked = zones.len();
    if hits.is_empty() {
        let mut details = format!("Not found in {checked} DNSBL checked");
        if !skip.is_empty() {
            details.push_str(&format!(" ({} skipped)", skip.len()));
        }
        return CheckResult::ok(details);
    }
    CheckResult::err(format!(
        "{} (total: {}/{checked})",
        hits.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        hits.len()
    ))
}
