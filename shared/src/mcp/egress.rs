//! Where the assistant may reach a workspace's MCP servers: the public internet only, unless the
//! operator allows private addresses (`MATHIA_MCP_ALLOW_PRIVATE`). A workspace's owner chooses the
//! URL; without this, they could send the assistant into the deployment's own network (a cloud
//! metadata service, an internal admin page) and read what it answers through the tools.
//!
//! Checked twice: at registration, for what the URL says (an IP address, `localhost`); and at
//! every connection, for what its name resolves to then, since a name can be pointed elsewhere
//! after it was registered. The second check is the HTTP client's own resolver, so the address
//! checked is the address connected to. The client goes through no proxy and follows only
//! same-origin redirects, as rmcp's own client does.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, LazyLock},
};

use reqwest_mcp::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed for one request (same origin only).
const MAX_REDIRECTS: usize = 10;

/// Whether `ip` is on the public internet: not loopback, private, link-local, shared (CGNAT),
/// multicast, documentation, benchmarking or reserved space, nor such an IPv4 address carried in
/// IPv6 (mapped, compatible, NAT64, 6to4), nor Teredo.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || a == 127
        || (a == 169 && b == 254) // link-local: cloud metadata services live here
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF protocol assignments, TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // ::/8, reserved: unspecified, loopback, the deprecated IPv4-compatible and translated
        // addresses.
        [0, ..] => false,
        // NAT64: an IPv4 address behind a translator; the local-use prefix is a private one.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => false,
        // 6to4: an IPv4 address in the prefix.
        [0x2002, hi, lo, ..] => is_public_v4(embedded(hi, lo)),
        // Teredo tunnels, documentation, the discard prefix.
        [0x2001, 0, ..] | [0x2001, 0xdb8, ..] | [0x100, 0, 0, 0, ..] => false,
        // Unique local, link-local and site-local, multicast.
        [first, ..] => {
            !((first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first & 0xff00) == 0xff00)
        }
    }
}

/// Why a URL's host may not be registered, when it says so itself: a non-public IP address, or
/// a name that always means this machine. Other names are checked when they are connected to.
pub fn refused_host(host: &str) -> Option<&'static str> {
    if refused_address(host) {
        return Some("a private, loopback or link-local address");
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost")).then_some("this machine's own name")
}

/// Whether a URL's host is an IP address that is not public. The HTTP client connects to an
/// address without resolving it, so this is checked before connecting; a name is checked by the
/// client's resolver.
pub fn refused_address(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| !is_public(ip))
}

/// The resolver of [`public_client`]: the system's, less every address that is not public. A
/// name with none left fails to resolve, and nothing is connected to.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                tracing::warn!(host = %host, "an MCP server's name resolves to no public address: not connected");
                return Err("the server's name resolves to no public address".into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for MCP servers when only public addresses may be reached.
pub fn public_client() -> reqwest_mcp::Client {
    static CLIENT: LazyLock<reqwest_mcp::Client> = LazyLock::new(|| {
        reqwest_mcp::Client::builder()
            .dns_resolver(Arc::new(PublicOnly))
            .no_proxy()
            // As rmcp's own client: a pooled connection whose last body was not read whole
            // stalls the next request.
            .pool_max_idle_per_host(0)
            .redirect(same_origin_redirects())
            .build()
            .expect("an HTTP client")
    });
    CLIENT.clone()
}

/// Only same-origin 307 and 308 redirects, which keep the method and body (rmcp's policy): the
/// host stays the one checked, and a name is resolved through [`PublicOnly`] again.
fn same_origin_redirects() -> reqwest_mcp::redirect::Policy {
    reqwest_mcp::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(
            attempt.status(),
            reqwest_mcp::StatusCode::TEMPORARY_REDIRECT | reqwest_mcp::StatusCode::PERMANENT_REDIRECT
        );
        let same_origin =
            attempt.previous().first().is_some_and(|original| original.origin() == attempt.url().origin());
        if !keeps_body || !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap())
    }

    #[test]
    fn only_public_addresses_are_public() {
        for ip in
            ["1.1.1.1", "8.8.8.8", "93.184.216.34", "100.128.0.1", "172.32.0.1", "2606:4700::1111", "2a00:1450::1"]
        {
            assert!(public(ip), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.8.9.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "::ffff:0:7f00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        assert!(public("64:ff9b::808:808"), "NAT64 of a public address");
        assert!(public("::ffff:8.8.8.8"), "mapped public address");
    }

    #[test]
    fn a_url_host_that_names_this_machine_or_a_private_address_is_refused() {
        for host in
            ["127.0.0.1", "[::1]", "[::ffff:10.0.0.1]", "169.254.169.254", "localhost", "LOCALHOST.", "api.localhost"]
        {
            assert!(refused_host(host).is_some(), "{host}");
        }
        for host in ["mcp.example.com", "8.8.8.8", "[2606:4700::1111]", "localhost.example.com"] {
            assert_eq!(refused_host(host), None, "{host}");
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_every_address_that_is_not_public() {
        let Err(e) = PublicOnly.resolve("localhost".parse().unwrap()).await else {
            panic!("localhost resolved to a public address");
        };
        assert!(e.to_string().contains("no public address"), "{e}");
    }
}
