//! Where outbound requests (policy webhooks and active checks) may connect: the operator's
//! one setting, `outbound_networks`. By default every address, as a self-hosted server
//! whose project owners are the operator's own people wants (a check of the intranet's
//! web site, a webhook to a local receiver). A server for strangers sets `public`, so
//! that a project key cannot turn it into a client of its own loopback, the private
//! network it runs in or a cloud metadata service (docs/operations.md, "Outbound
//! networks"; docs/decisions.md).
//!
//! The check is on addresses, made where the connection is made (a resolver that drops
//! forbidden addresses, and a check of literal IPs), so a name that resolves elsewhere on
//! the second look does not pass.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One entry of the setting: `public` (every globally reachable address) or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum OutboundNet {
    /// Every address that is not special-purpose ([`is_public`]).
    Public,
    /// This network, whatever it is (`127.0.0.0/8`, `10.1.0.0/16`).
    Net(IpNet),
}

impl FromStr for OutboundNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "public" {
            return Ok(OutboundNet::Public);
        }
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map(OutboundNet::Net)
            .map_err(|_| format!("'{s}' is neither 'public' nor a network like 10.0.0.0/8"))
    }
}

impl TryFrom<String> for OutboundNet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<OutboundNet> for String {
    fn from(n: OutboundNet) -> String {
        n.to_string()
    }
}

impl fmt::Display for OutboundNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundNet::Public => f.write_str("public"),
            OutboundNet::Net(n) => n.fmt(f),
        }
    }
}

/// The networks outbound requests may reach: an address is allowed when one entry holds it.
/// An empty list allows nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutboundNetworks(pub Vec<OutboundNet>);

impl Default for OutboundNetworks {
    /// Every address ([`everything`](Self::everything)): the setting of a self-hosted
    /// server. A multi-tenant server sets [`public`](Self::public).
    fn default() -> Self {
        OutboundNetworks::everything()
    }
}

impl fmt::Display for OutboundNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            n.fmt(f)?;
        }
        Ok(())
    }
}

/// An outbound request refused: the address is outside `outbound_networks`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} ({ip}) is outside the networks this server may reach (outbound_networks: {allowed})"
)]
pub struct OutboundRefused {
    /// The host as named in the URL.
    pub host: String,
    /// The refused address.
    pub ip: IpAddr,
    /// The setting, as text.
    pub allowed: String,
}

impl OutboundNetworks {
    /// Public addresses only (the setting `public`): for a server whose project owners are
    /// not all trusted, so none can reach the server's loopback or private networks.
    pub fn public() -> Self {
        OutboundNetworks(vec![OutboundNet::Public])
    }

    /// Every address (the setting `0.0.0.0/0, ::/0`, the default): for a server whose
    /// every project owner is trusted.
    pub fn everything() -> Self {
        OutboundNetworks(
            crate::project::world()
                .into_iter()
                .map(OutboundNet::Net)
                .collect(),
        )
    }

    /// Whether a connection to `ip` is allowed. An IPv4-mapped IPv6 address counts as the
    /// IPv4 address it carries.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| match n {
            OutboundNet::Public => is_public(ip),
            OutboundNet::Net(net) => net.contains(&ip),
        })
    }

    /// [`allows`](Self::allows), with the refusal to show.
    ///
    /// # Errors
    /// [`OutboundRefused`] when `ip` is not allowed.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), OutboundRefused> {
        if self.allows(ip) {
            return Ok(());
        }
        Err(OutboundRefused {
            host: host.to_owned(),
            ip,
            allowed: self.to_string(),
        })
    }
}

/// Whether `ip` is a public (globally reachable) address: not unspecified, loopback,
/// private (RFC 1918, unique local), shared (CGN), link-local (cloud metadata services
/// live at 169.254.169.254), documentation, benchmarking, multicast, broadcast, reserved,
/// nor an IPv6 form that carries an IPv4 address (mapped, NAT64, 6to4, Teredo) unless that
/// address is public itself.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10, shared (CGN)
                || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24, IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // 198.18.0.0/15, benchmarking
                || a >= 240) // 240.0.0.0/4, reserved
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() || v6.is_loopback() || v6.is_multicast() {
                return false;
            }
            // 64:ff9b::/96 NAT64 and 2002::/16 6to4 carry an IPv4 address: as that address.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = [s[6].to_be_bytes(), s[7].to_be_bytes()];
                return is_public(IpAddr::from([a[0], a[1], b[0], b[1]]));
            }
            if s[0] == 0x2002 {
                let [a, b] = [s[1].to_be_bytes(), s[2].to_be_bytes()];
                return is_public(IpAddr::from([a[0], a[1], b[0], b[1]]));
            }
            !((s[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10, link-local
                || (s[0] & 0xffc0) == 0xfec0 // fec0::/10, site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32, documentation
                || (s[0] == 0x2001 && s[1] == 0) // 2001::/32, Teredo
                || (s[0] == 0x2001 && s[1] < 0x200) // 2001::/23, IETF protocol assignments
                || s[..4] == [0x100, 0, 0, 0] // 100::/64, discard
                || s[..6] == [0, 0, 0, 0, 0, 0]) // ::/96, IPv4-compatible (deprecated)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn everything_by_default() {
        let n = OutboundNetworks::default();
        assert_eq!(n, OutboundNetworks::everything());
        for any in ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "8.8.8.8"] {
            assert!(n.allows(ip(any)), "{any}");
        }
        assert_eq!(n.to_string(), "0.0.0.0/0, ::/0");
    }

    #[test]
    fn public_refuses_every_special_range() {
        let n = OutboundNetworks::public();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "::127.0.0.1",
        ] {
            assert!(!n.allows(ip(bad)), "{bad} must be refused");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "::ffff:8.8.8.8",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "64:ff9b::808:808",
        ] {
            assert!(n.allows(ip(good)), "{good} must be allowed");
        }
    }

    #[test]
    fn a_network_of_the_setting_is_allowed_whatever_it_is() {
        let n: OutboundNetworks =
            serde_json::from_str(r#"["public", "127.0.0.0/8", "10.1.0.0/16"]"#).unwrap();
        assert!(n.allows(ip("127.0.0.1")));
        assert!(n.allows(ip("::ffff:127.0.0.2")));
        assert!(n.allows(ip("10.1.2.3")));
        assert!(!n.allows(ip("10.2.0.1")));
        assert!(n.allows(ip("8.8.8.8")));
        assert_eq!(n.to_string(), "public, 127.0.0.0/8, 10.1.0.0/16");
        let none = OutboundNetworks(Vec::new());
        assert!(!none.allows(ip("8.8.8.8")));
        let e = none.check("example.com", ip("8.8.8.8")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "example.com (8.8.8.8) is outside the networks this server may reach (outbound_networks: none)"
        );
        assert!("nonsense".parse::<OutboundNet>().is_err());
        assert_eq!("::1".parse::<OutboundNet>().unwrap().to_string(), "::1/128");
        assert!(OutboundNetworks::everything().allows(ip("127.0.0.1")));
    }
}
