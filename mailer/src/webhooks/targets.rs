//! Where a webhook may point. A URL is a door into the mailer's own network: whoever holds
//! the bearer token could otherwise have the mailer POST to its database's admin port, a
//! cloud metadata address or a neighbour on the private network. So, unless
//! `mailer.webhooks.allow_private_targets`, a URL must be http(s) and its host must resolve
//! to public addresses only: checked when an endpoint is added or changed, and again at
//! every connection, by the client's resolver ([`GuardedResolver`]), since a name may
//! resolve elsewhere later (DNS rebinding). The client follows no redirect.

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// How long the check waits for a name to resolve.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Why a URL is refused, in one sentence for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// True for an address anyone on the Internet could reach: not loopback, private, link-local,
/// multicast, unspecified, shared (carrier-grade NAT), documentation or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, protocol assignments; 198.18.0.0/15, benchmarking.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7, unique local; fe80::/10, link-local; fec0::/10, old site-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // 2001:db8::/32, documentation; 64:ff9b::/96 and ::/96 forms carry IPv4 addresses.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        || ip.to_ipv4().is_some())
}

/// Checks `url` as an endpoint's address, resolving its host; answers it parsed.
pub async fn check(url: &str, allow_private: bool) -> Result<Url, Refused> {
    let parsed = parse(url)?;
    if allow_private {
        return Ok(parsed);
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Refused("url must have a host.".into()))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let literal = literal_ip(&parsed);
    let addresses: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| Refused(format!("url: the host {host} does not resolve.")))?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Refused(format!("url: the host {host} does not resolve.")));
    }
    if let Some(ip) = addresses.iter().find(|ip| !is_public(**ip)) {
        return Err(Refused(format!(
            "url: {host} is a loopback, private, link-local, multicast or reserved address \
             ({ip}); set mailer.webhooks.allow_private_targets to allow it."
        )));
    }
    Ok(parsed)
}

/// `url` parsed, when it is an absolute http(s) URL without credentials.
pub fn parse(url: &str) -> Result<Url, Refused> {
    let parsed = Url::parse(url).map_err(|e| Refused(format!("url is not a valid URL ({e}).")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refused("url must start with http:// or https://.".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused(
            "url must not carry credentials: each request is signed instead.".into(),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Refused("url must have a host.".into()));
    }
    Ok(parsed)
}

/// The host of `url` when it is an IP address, which the client connects to without asking
/// its resolver.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    // The parser writes an IPv6 host in brackets, and an IPv4 one (`0x7f000001` included) in
    // dotted form.
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The webhook client's resolver: the system's, keeping only public addresses (unless
/// private ones are allowed), so that a connection is never made to an address [`check`]
/// would refuse.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{host} resolves to no address a webhook may reach (loopback, private, \
                     link-local, multicast and reserved ones are refused)"
                )
                .into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().expect("an address")), "{ip}");
        }
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().expect("an address")), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_private_and_odd_urls_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://localhost:8080/hook",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f000001/",
        ] {
            assert!(check(url, false).await.is_err(), "{url}");
            assert!(
                check(url, true).await.is_ok(),
                "{url} with private targets allowed"
            );
        }
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://user:pw@example.com/",
            "not a url",
            "http://",
        ] {
            assert!(check(url, true).await.is_err(), "{url}");
        }
    }
}
