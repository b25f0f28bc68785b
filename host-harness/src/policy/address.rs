//! Which IP addresses a connection may dial: globally routable unicast only.
//!
//! Applied to every address the resolver returns, right before the socket connects, so a public-looking
//! name that resolves (or rebinds) to loopback, a private network or cloud metadata is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, or `None` when it is public.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

pub fn is_public(ip: IpAddr) -> bool {
    non_public_reason(ip).is_none()
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("\"this network\" (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private network")
    } else if ip.is_link_local() {
        Some("link-local (incl. cloud metadata 169.254.169.254)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT (100.64.0.0/10)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        Some("documentation range")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking (198.18.0.0/15)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if a >= 240 {
        Some("reserved or broadcast (240.0.0.0/4)")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Forms that carry an IPv4 address: judge the embedded one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4).or(Some("IPv4-mapped"));
    }
    if seg[0..6] == [0, 0, 0, 0, 0, 0] {
        return Some("IPv4-compatible (deprecated)");
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b {
        return Some("NAT64 (64:ff9b::/96)");
    }
    if seg[0] == 0x2002 {
        return Some("6to4 (2002::/16)");
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        return Some("Teredo (2001::/32)");
    }
    if seg[0] == 0x2001 && seg[1] == 0xdb8 {
        return Some("documentation (2001:db8::/32)");
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return Some("unique local (fc00::/7)");
    }
    if seg[0] & 0xffc0 == 0xfe80 {
        return Some("link-local (fe80::/10)");
    }
    if seg[0] & 0xffc0 == 0xfec0 {
        return Some("site-local (deprecated)");
    }
    if seg[0] & 0xff00 == 0xff00 {
        return Some("multicast");
    }
    if seg[0] == 0x100 && seg[1..4] == [0, 0, 0] {
        return Some("discard-only (100::/64)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_non_public_range() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:0:1::",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(!is_public(addr), "{ip} should be refused");
        }
    }

    #[test]
    fn accepts_public_unicast() {
        for ip in ["8.8.8.8", "104.18.2.3", "2606:4700::1111", "::ffff:8.8.8.8"] {
            let addr: IpAddr = ip.parse().unwrap();
            // IPv4-mapped public addresses are still refused: a Theta host never resolves to one.
            if ip.starts_with("::ffff") {
                assert!(!is_public(addr));
            } else {
                assert!(is_public(addr), "{ip} should pass");
            }
        }
    }
}
