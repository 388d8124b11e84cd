//! Peers for the checks' tests, all on 127.0.0.1, started by the tests: an HTTP(S) server
//! with a handler, a certificate authority (rcgen), a DNS responder (hickory-proto
//! messages over UDP), a TCP listener with a banner, a whois responder.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record};
use okerr::{ActiveArgs, ActiveMethod, OutboundNetworks};
use okerr_checks::{CheckConfig, CheckResult, Checker, Nameserver, WhoisServer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

/// The time of every test: certificates are made around it.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

/// A certificate authority of the tests.
pub struct Pki {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub ca: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "okerr test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap().der().clone();
        Pki {
            issuer: rcgen::Issuer::new(params, key),
            ca,
        }
    }

    /// A server certificate for `names`, valid between the two dates.
    pub fn leaf(
        &self,
        names: &[&str],
        from: (i32, u8, u8),
        until: (i32, u8, u8),
    ) -> rustls::ServerConfig {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let _ = rustls::crypto::ring::default_provider().install_default();
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert, self.ca.clone()], key)
            .unwrap()
    }
}

/// An answer of the test web server.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Never answer (the connection is held open).
    pub hang: bool,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            hang: false,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn hang() -> Self {
        Reply {
            hang: true,
            ..Reply::new(200, "")
        }
    }
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// An HTTP/1.1 server (over TLS when given a configuration) answering each request with
/// the handler's reply for its path, and keeping each request's head.
pub struct Web {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Web {
    pub async fn start(
        tls: Option<rustls::ServerConfig>,
        handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> Web {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let seen = seen.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(tcp).await {
                                serve(s, handler, seen).await;
                            }
                        }
                        None => serve(tcp, handler, seen).await,
                    }
                });
            }
        });
        Web { addr, requests }
    }

    pub fn url(&self, scheme: &str, host: &str, path: &str) -> String {
        format!("{scheme}://{host}:{}{path}", self.addr.port())
    }

    pub fn last_request(&self) -> String {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: S,
    handler: Handler,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut s = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match s.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    seen.lock().unwrap().push(head.clone());
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let reply = handler(&path);
    if reply.hang {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        return;
    }
    let mut out = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&reply.body);
    let _ = s.get_mut().write_all(&bytes).await;
    let _ = s.get_mut().shutdown().await;
}

/// DNS records of the test responder: (name, rdata); a name it does not hold is NXDOMAIN.
pub type Zone = Arc<Mutex<Vec<(String, RData)>>>;

/// A DNS responder on 127.0.0.1 (UDP).
pub struct Dns {
    pub addr: SocketAddr,
    pub zone: Zone,
    pub queries: Arc<Mutex<Vec<String>>>,
}

impl Dns {
    pub async fn start(records: Vec<(&str, RData)>) -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone: Zone = Arc::new(Mutex::new(
            records.into_iter().map(|(n, d)| (fqdn(n), d)).collect(),
        ));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (z, q) = (zone.clone(), queries.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(msg) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply =
                    Message::new(msg.metadata.id, MessageType::Response, msg.metadata.op_code);
                reply.metadata.recursion_desired = msg.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                reply.metadata.authoritative = true;
                for query in &msg.queries {
                    let name = query.name().to_lowercase().to_string();
                    q.lock()
                        .unwrap()
                        .push(format!("{name} {}", query.query_type()));
                    let records = z.lock().unwrap().clone();
                    let known = records.iter().any(|(n, _)| *n == name);
                    if !known {
                        reply.metadata.response_code = ResponseCode::NXDomain;
                    }
                    for (n, d) in records
                        .iter()
                        .filter(|(n, d)| *n == name && d.record_type() == query.query_type())
                    {
                        reply.add_answer(Record::from_rdata(
                            Name::from_ascii(n).unwrap(),
                            60,
                            d.clone(),
                        ));
                    }
                    reply.add_query(query.clone());
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
            }
        });
        Dns {
            addr,
            zone,
            queries,
        }
    }

    /// Replaces the records of `name` with `data`.
    pub fn set(&self, name: &str, data: Vec<RData>) {
        let name = fqdn(name);
        let mut z = self.zone.lock().unwrap();
        z.retain(|(n, _)| *n != name);
        z.extend(data.into_iter().map(|d| (name.clone(), d)));
    }
}

fn fqdn(n: &str) -> String {
    let n = n.to_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

pub fn a(ip: &str) -> RData {
    RData::A(hickory_resolver::proto::rr::rdata::A(
        ip.parse::<Ipv4Addr>().unwrap(),
    ))
}

pub fn txt(s: &str) -> RData {
    RData::TXT(hickory_resolver::proto::rr::rdata::TXT::new(vec![
        s.to_owned(),
    ]))
}

pub fn mx(pref: u16, host: &str) -> RData {
    RData::MX(hickory_resolver::proto::rr::rdata::MX::new(
        pref,
        Name::from_ascii(fqdn(host)).unwrap(),
    ))
}

pub fn ptr(host: &str) -> RData {
    RData::PTR(hickory_resolver::proto::rr::rdata::PTR(
        Name::from_ascii(fqdn(host)).unwrap(),
    ))
}

/// A TCP server that writes `banner` to each connection (nothing when empty) and holds it.
pub async fn banner(banner: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = s.write_all(banner).await;
                let mut sink = [0u8; 64];
                let _ = s.read(&mut sink).await;
            });
        }
    });
    addr
}

/// A port nothing listens on (bound, then closed).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A whois server answering each domain with its text (an unknown one: `No match`).
pub async fn whois(answers: BTreeMap<&'static str, String>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answers = Arc::new(answers);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let answers = answers.clone();
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                let mut line = String::new();
                let _ = s.read_line(&mut line).await;
                let text = answers
                    .get(line.trim())
                    .cloned()
                    .unwrap_or_else(|| format!("No match for \"{}\".\r\n", line.trim()));
                let _ = s.get_mut().write_all(text.as_bytes()).await;
            });
        }
    });
    addr
}

/// A checker for the tests: every network allowed, the test CA trusted, DNS at `dns` (or,
/// without one, at an empty responder of the test: no name resolves, and no question
/// leaves 127.0.0.1).
pub async fn checker(dns: Option<&Dns>, pki: Option<&Pki>, whois: Option<SocketAddr>) -> Checker {
    checker_with(dns, pki, whois, |_| {}).await
}

pub async fn checker_with(
    dns: Option<&Dns>,
    pki: Option<&Pki>,
    whois: Option<SocketAddr>,
    tune: impl FnOnce(&mut CheckConfig),
) -> Checker {
    let empty;
    let dns = match dns {
        Some(d) => d,
        None => {
            empty = Dns::start(Vec::new()).await;
            &empty
        }
    };
    let mut config = CheckConfig {
        outbound: OutboundNetworks::everything(),
        nameserver: Nameserver::At(dns.addr),
        whois: whois.map_or(WhoisServer::Iana, |w| WhoisServer::At(w.to_string())),
        extra_roots: pki.map(|p| vec![p.ca.clone()]).unwrap_or_default(),
        system_roots: false,
        ..CheckConfig::default()
    };
    tune(&mut config);
    Checker::new(config).unwrap()
}

/// Runs `method` with these arguments at [`now`].
pub async fn run(c: &Checker, method: &str, args: &[(&str, &str)]) -> CheckResult {
    let m = ActiveMethod::from_codename(method).unwrap();
    let args = ActiveArgs::with(m, args.iter().copied()).unwrap();
    c.check(&args, now()).await
}
