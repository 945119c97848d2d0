//! Client addresses as both services count them: one address however the socket spells it,
//! and one key per subscriber for the per-client limits.

use std::net::{IpAddr, Ipv6Addr};

/// `ip` with an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) written as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key per-client limits count `ip` under: an IPv4 address as itself, and any other
/// IPv6 address by its /64, the block one subscriber usually holds.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Whether `ip` is one of `list` (`trusted_proxies`), whichever way either is spelled.
pub fn is_listed(ip: IpAddr, list: &[IpAddr]) -> bool {
    let ip = canonical(ip);
    list.iter().any(|listed| canonical(*listed) == ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn a_listed_address_matches_in_either_spelling() {
        assert!(is_listed(ip("::ffff:10.0.0.1"), &[ip("10.0.0.1")]));
        assert!(is_listed(ip("10.0.0.1"), &[ip("::ffff:10.0.0.1")]));
        assert!(!is_listed(ip("10.0.0.2"), &[ip("10.0.0.1")]));
    }
}
