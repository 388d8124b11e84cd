//! TLS for the checks: the trusted authorities, a client configuration that validates at
//! the check's `now`, and the `sslcert` check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use okerr::ActiveArgs;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use x509_cert::der::Decode;

use crate::options::Options;
use crate::resolve::TargetError;
use crate::{CheckResult, CheckerError, Inner, days_between};

/// The authorities the checks trust, and the verifier made of them.
#[derive(Debug)]
pub(crate) struct Trust {
    provider: Arc<CryptoProvider>,
    /// `None` when no authority is trusted at all: every verified handshake fails.
    webpki: Option<Arc<WebPkiServerVerifier>>,
}

impl Trust {
    pub(crate) fn new(
        system: bool,
        extra: &[CertificateDer<'static>],
    ) -> Result<Self, CheckerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        if system {
            // Unreadable system certificates are skipped (the result lists them).
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        for cert in extra {
            roots.add(cert.clone()).map_err(CheckerError::Root)?;
        }
        let webpki = if roots.is_empty() {
            None
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .ok()
        };
        Ok(Trust { provider, webpki })
    }

    /// A client configuration that validates certificates at `now` (or not at all).
    pub(crate) fn client_config(&self, now: DateTime<Utc>, verify: bool) -> ClientConfig {
        let verifier = Arc::new(Verifier {
            webpki: if verify {
                Some(self.webpki.clone())
            } else {
                None
            },
            algorithms: self.provider.signature_verification_algorithms,
        });
        let time = Arc::new(FixedTime(UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(u64::try_from(now.timestamp()).unwrap_or(0)),
        )));
        let builder = ClientConfig::builder_with_details(self.provider.clone(), time)
            .with_safe_default_protocol_versions();
        match builder {
            Ok(b) => b
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
            // The ring provider supports the default versions; never reached.
            Err(_) => ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        }
    }
}

/// The check's `now` as rustls' clock.
#[derive(Debug)]
struct FixedTime(UnixTime);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// WebPKI verification (chain, name, validity at the check's time), or none with
/// `noverify`; the handshake's signatures are verified either way.
#[derive(Debug)]
struct Verifier {
    /// `None`: no verification. `Some(None)`: verification, but no authority is trusted.
    webpki: Option<Option<Arc<WebPkiServerVerifier>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.webpki {
            None => Ok(ServerCertVerified::assertion()),
            Some(None) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
            Some(Some(v)) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The `notAfter` of a DER certificate.
fn not_after(der: &[u8]) -> Result<DateTime<Utc>, String> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let secs = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
        .as_secs();
    DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0)
        .ok_or_else(|| "certificate expiry out of range".to_owned())
}

/// `sslcert`: a TLS handshake with `addr or host`:`port`, verified unless `noverify` or
/// `ssl_noverify`, then OK `"{n} days left"` when more than `days` whole days are left.
pub(crate) async fn sslcert(i: &Inner, args: &ActiveArgs, now: DateTime<Utc>) -> CheckResult {
    let host = args.get("host");
    let (Ok(port), Ok(days)) = (
        args.get("port").parse::<u16>(),
        args.get("days").parse::<i64>(),
    ) else {
        return CheckResult::problem("Bad port or days argument");
    };
    let o = Options::parse(args.get("options"));
    let verify = !o.noverify(true);
    let result = tokio::time::timeout(
        i.config.tls_timeout,
        handshake(i, host, port, &o, now, verify),
    )
    .await;
    let expiry = match result {
        Ok(Ok(expiry)) => expiry,
        Ok(Err(Failure::Socket(e))) => {
            let mut details = format!("socket error: {e}");
            // okerr adds the name's addresses, for a name
            if host.parse::<IpAddr>().is_err()
                && let Ok(ips) = i.resolver.all(host).await
            {
                let ips: Vec<String> = ips
                    .iter()
                    .filter(|ip| ip.is_ipv4())
                    .map(IpAddr::to_string)
                    .collect();
                details.push_str(&format!(" (DNS: {})", ips.join(" ")));
            }
            return CheckResult::err(details);
        }
        Ok(Err(Failure::Refused(e))) => return CheckResult::err(e),
        Ok(Err(Failure::Tls(e))) => return CheckResult::err(format!("SSL error: {e}")),
        Err(_) => return CheckResult::err("socket error: timed out"),
    };
    let left = days_between(now, expiry);
    if left > days {
        CheckResult::ok(format!("{left} days left"))
    } else if left >= 0 {
        CheckResult::err(format!("Certificate will expire soon (in {left} days)"))
    } else {
        CheckResult::err(format!("Certificate expired {} days ago", -left))
    }
}

enum Failure {
    Socket(String),
    Refused(String),
    Tls(String),
}

async fn handshake(
    i: &Inner,
    host: &str,
    port: u16,
    o: &Options,
    now: DateTime<Utc>,
    verify: bool,
) -> Result<DateTime<Utc>, Failure> {
    let ip = match o.addr().map_err(Failure::Socket)? {
        Some(ip) => {
            i.resolver
                .check(host, ip)
                .map_err(|e| Failure::Refused(e.to_string()))?;
            ip
        }
        None => match i.resolver.allowed(host).await {
            Ok(ips) => ips[0],
            Err(TargetError::Refused(e)) => return Err(Failure::Refused(e.to_string())),
            Err(TargetError::Resolve(e)) => return Err(Failure::Socket(e)),
        },
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| Failure::Tls(format!("bad host name '{host}': {e}")))?;
    let tcp = TcpStream::connect(SocketAddr::new(ip, port))
        .await
        .map_err(|e| Failure::Socket(crate::tcp::py_oserror(&e)))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(i.tls.client_config(now, verify)));
    let tls = connector.connect(name, tcp).await.map_err(|e| {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Failure::Tls(tls.to_string()),
            None => Failure::Socket(crate::tcp::py_oserror(&e)),
        }
    })?;
    let (_, conn) = tls.get_ref();
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Failure::Tls("no certificate".to_owned()))?;
    not_after(cert).map_err(Failure::Tls)
}
