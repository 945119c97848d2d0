//! Peer addresses named in the configuration: one address (`10.0.0.7`, `::1`) or a CIDR
//! range (`10.0.0.0/8`, `fd00::/8`).

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One address or a CIDR range of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerRange {
    network: IpAddr,
    prefix: u8,
}

impl PeerRange {
    /// Whether `peer` is in the range. An IPv4 address seen as IPv6 (`::ffff:10.0.0.7`, what a
    /// dual-stack socket reports) is compared as the IPv4 address it is.
    pub fn contains(&self, peer: IpAddr) -> bool {
        match (self.network, canonical(peer)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether any range of `ranges` contains `peer`.
pub fn any_contains(ranges: &[PeerRange], peer: IpAddr) -> bool {
    ranges.iter().any(|r| r.contains(peer))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_matches(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let whole = usize::from(prefix / 8);
    let rest = prefix % 8;
    if net[..whole] != ip[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        net[whole] & mask == ip[whole] & mask
    }
}

/// Why a text is not a peer range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPeerRange(String);

impl fmt::Display for InvalidPeerRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an address or a CIDR range (as in 10.0.0.7 or 10.0.0.0/8)",
            self.0
        )
    }
}

impl FromStr for PeerRange {
    type Err = InvalidPeerRange;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wrong = || InvalidPeerRange(text.to_string());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(address.trim().parse::<IpAddr>().map_err(|_| wrong())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(wrong)?,
        };
        Ok(PeerRange { network, prefix })
    }
}

impl fmt::Display for PeerRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> Deserialize<'de> for PeerRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> PeerRange {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_or_a_range_contains_its_peers_only() {
        let one = range("10.0.0.7");
        assert!(one.contains("10.0.0.7".parse().unwrap()));
        assert!(one.contains("::ffff:10.0.0.7".parse().unwrap()));
        assert!(!one.contains("10.0.0.8".parse().unwrap()));
        let net = range("10.2.0.0/15");
        assert!(net.contains("10.3.200.1".parse().unwrap()));
        assert!(!net.contains("10.1.255.1".parse().unwrap()));
        assert!(!net.contains("10.4.0.1".parse().unwrap()));
        let v6 = range("fd00::/8");
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(range("0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
        for bad in [
            "nowhere",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.1/x",
        ] {
            assert!(bad.parse::<PeerRange>().is_err(), "{bad}");
        }
    }
}
