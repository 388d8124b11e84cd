//! The client's address: the TCP peer, or what a trusted proxy says in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::{AppState, Error};

/// The address a request comes from, as policies check it.
///
/// It is the TCP peer, unless the peer is a trusted proxy: then `X-Forwarded-For` is read
/// from the right, and the first address that is not itself a trusted proxy is the
/// client. An untrusted peer's `X-Forwarded-For` is ignored (okerr believed anyone's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The router is served without the peer addresses.
#[derive(Debug, thiserror::Error)]
#[error("no peer address: serve with into_make_service_with_connect_info")]
struct NoPeerAddress;

impl FromRequestParts<AppState> for ClientIp {
    /// A 500 ([`crate::ErrorKind::Internal`]) when the router is served without
    /// `into_make_service_with_connect_info`.
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        // Through the extractor, not the extension: it also honours `MockConnectInfo`.
        let Ok(ConnectInfo(peer)) =
            ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await
        else {
            return Err(Error::internal(NoPeerAddress));
        };
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        Ok(ClientIp(client_ip(
            peer.ip(),
            &forwarded,
            &state.config().trusted_proxies,
        )))
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client address from the peer and the `X-Forwarded-For` chain.
fn client_ip(peer: IpAddr, forwarded: &str, proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !trusted(client, proxies) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let peer = ip("10.0.0.5");
        assert_eq!(client_ip(ip("1.2.3.4"), "5.6.7.8", &proxies), ip("1.2.3.4"));
        assert_eq!(client_ip(peer, "", &proxies), peer);
        assert_eq!(client_ip(peer, "5.6.7.8", &proxies), ip("5.6.7.8"));
        // A spoofed first entry is skipped: the proxy appended the real client.
        assert_eq!(client_ip(peer, "9.9.9.9, 5.6.7.8", &proxies), ip("5.6.7.8"));
        assert_eq!(
            client_ip(peer, "5.6.7.8, 10.0.0.9", &proxies),
            ip("5.6.7.8")
        );
        assert_eq!(client_ip(peer, "garbage", &proxies), peer);
        assert_eq!(client_ip(ip("::ffff:1.2.3.4"), "", &proxies), ip("1.2.3.4"));
    }
}
