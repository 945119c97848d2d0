//! Who the client is, for the per-client limits: the TCP peer, or the address a trusted proxy
//! names in `X-Forwarded-For`.
//!
//! The peer comes from the `ConnectInfo<SocketAddr>` request extension that the server loop
//! inserts per connection. `X-Forwarded-For` counts only when the peer is listed in
//! `users.trusted_proxies`: then the client is the last hop, reading from the right, that is
//! not a trusted proxy itself (each proxy appends the address it received from).

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use runtime::client_addr::{self, canonical};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address as the limits key it: an IPv4-mapped IPv6 address as IPv4, and any other
    /// IPv6 address by its /64, the block one subscriber usually holds.
    pub fn key(self) -> IpAddr {
        client_addr::limit_key(self.0)
    }

    /// The client of a request from `peer` with these headers.
    fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> ClientAddr {
        let is_trusted = |ip: &IpAddr| client_addr::is_listed(*ip, trusted);
        if !is_trusted(&peer) {
            return ClientAddr(peer);
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // A hop that does not parse was written by no proxy of ours: stop at the last
            // address a trusted proxy vouched for.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !is_trusted(&ip) {
                break;
            }
        }
        ClientAddr(client)
    }
}

/// `192.0.2.1`, `2001:db8::1`, or either with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // Without the server loop's extension (a router driven by hand) all callers share
        // one key, which keeps the limits on rather than off.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientAddr::resolve(
            canonical(peer),
            &parts.headers,
            &state.trusted_proxies,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_peer() {
        let h = headers(&["203.0.113.9"]);
        assert_eq!(
            ClientAddr::resolve(ip("198.51.100.1"), &h, &[]).0,
            ip("198.51.100.1")
        );
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &h, &[ip("10.0.0.1")]).0,
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_client_is_the_last_hop_that_is_not_a_trusted_proxy() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let spoofed = headers(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &spoofed, &trusted).0,
            ip("203.0.113.9")
        );
        let garbage = headers(&["203.0.113.9, not-an-address"]);
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &garbage, &trusted).0,
            ip("10.0.0.1")
        );
        let with_port = headers(&["[2001:db8::7]:4711"]);
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.1"), &with_port, &trusted).0,
            ip("2001:db8::7")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a = ClientAddr(ip("2001:db8:1:2:aaaa::1")).key();
        let b = ClientAddr(ip("2001:db8:1:2:bbbb::2")).key();
        assert_eq!(a, b);
        assert_eq!(ClientAddr(ip("::ffff:192.0.2.1")).key(), ip("192.0.2.1"));
    }
}
