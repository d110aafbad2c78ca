//! Which registry an image would be pulled from, and whether this node lets a task make its docker
//! daemon connect there. A task names its image, so with `--pull missing` it chooses a connection
//! the worker's daemon opens: to `127.0.0.1:PORT/x` that is a request from the worker's host to its
//! own loopback, to `10.0.0.5:5000/x` one into the worker's private network. By default such
//! registries are refused before docker is asked anything; an operator allows one by name with
//! `--allow-registry HOST[:PORT]`.
//!
//! Only what the reference itself says is judged (no DNS look-up): addresses in every notation
//! the resolver accepts (`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`), `localhost` and the
//! special-use names that are local by definition, and one-label names, which only the worker's
//! own `/etc/hosts` or search domains can resolve. A public name whose DNS answer is private is
//! not caught here (README, "Image pulls").

use std::net::{Ipv4Addr, Ipv6Addr};

/// The registry part of an image reference (`host[:port]`, as written), or `None` for Docker
/// Hub. Docker's rule: the first path component names a registry when there is more than one
/// component and it contains a `.` or a `:`, or is `localhost`. (Upper case there is refused by
/// validation, and counted as a registry here like the validator does.)
pub fn registry_of(image: &str) -> Option<&str> {
    let name = image.split_once('@').map_or(image, |(name, _digest)| name);
    let (first, _rest) = name.split_once('/')?;
    let is_registry = first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase());
    is_registry.then_some(first)
}

/// A registry split into its host (lower case, no trailing dot, IPv6 without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub host: String,
    pub port: Option<u16>,
}

impl Registry {
    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Registry, String> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{text:?}: an IPv6 address needs its closing ']'"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("{text:?}: expected ':PORT' after ']'")),
                },
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| format!("{text:?}: the port must be a number up to 65535"))
            })
            .transpose()?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || "/@[]".contains(c);
        if host.is_empty() || host.chars().any(bad_char) {
            return Err(format!(
                "{text:?}: expected a registry as HOST or HOST:PORT (e.g. registry.example:5000)"
            ));
        }
        Ok(Registry { host, port })
    }
}

impl std::fmt::Display for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(&host),
        }
    }
}

/// Why a registry host is on the worker's own side of the network, or `None` if nothing in its
/// name says so.
pub fn local_host(host: &str) -> Option<&'static str> {
    if let Ok(v6) = host.split('%').next().unwrap_or(host).parse::<Ipv6Addr>() {
        if host.contains('%') {
            return Some("an IPv6 address with a zone (link-local)");
        }
        return local_v6(v6);
    }
    if let Some(v4) = inet_aton(host) {
        return local_v4(v4);
    }
    const LOCAL_NAMES: [&str; 5] = [
        "localhost",
        "ip6-localhost",
        "ip6-loopback",
        "localhost6",
        "localhost.localdomain",
    ];
    if LOCAL_NAMES.contains(&host) || host.ends_with(".localhost") {
        return Some("a name of the loopback");
    }
    // Special-use names that only a local resolver answers: mDNS (RFC 6762), home networks
    // (RFC 8375), ICANN's private-use `.internal`, and the common `.localdomain`.
    const LOCAL_SUFFIXES: [&str; 4] = [".local", ".home.arpa", ".internal", ".localdomain"];
    if LOCAL_SUFFIXES.iter().any(|s| host.ends_with(s)) {
        return Some("a name of the local network");
    }
    if !host.contains('.') {
        return Some("a one-label name, resolved by the worker's own /etc/hosts or search domains");
    }
    None
}

fn local_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip.is_loopback() => "a loopback address",
        _ if a == 0 => "an unspecified address (0.0.0.0/8 reaches the host itself)",
        _ if ip.is_private() => "a private address (RFC 1918)",
        _ if ip.is_link_local() => "a link-local address",
        _ if a == 100 && (64..128).contains(&b) => "a shared address (100.64.0.0/10, CGNAT)",
        _ if a == 192 && b == 0 && c == 0 => "an IETF protocol address (192.0.0.0/24)",
        _ if a == 198 && (18..20).contains(&b) => "a benchmarking address (198.18.0.0/15)",
        _ if a >= 224 => "a multicast, reserved or broadcast address",
        _ => return None,
    })
}

fn local_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address are judged by it: mapped (::ffff:a.b.c.d),
    // compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::).
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return local_v4(v4);
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return local_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return local_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return local_v4(embedded(s[1], s[2]));
    }
    Some(match () {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() => "an unspecified address",
        _ if s[0] & 0xfe00 == 0xfc00 => "a unique local address (fc00::/7)",
        _ if s[0] & 0xffc0 == 0xfe80 => "a link-local address",
        _ if s[0] & 0xffc0 == 0xfec0 => "a site-local address",
        _ if s[0] & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// An IPv4 address in every notation the C resolver's `inet_aton` accepts (and so a daemon
/// resolving through it): one to four parts, each decimal, octal (`0` first) or hex (`0x`), the
/// last filling the remaining bytes: `127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`.
fn inet_aton(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if digits.is_empty() && radix != 16 {
            return None;
        }
        let value = if digits.is_empty() {
            0 // "0x" alone is zero to inet_aton
        } else {
            u32::from_str_radix(digits, radix).ok()?
        };
        values.push(value);
    }
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|&v| v > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - leading.len() as u32);
    if last_bits < 32 && *last >= 1 << last_bits {
        return None;
    }
    let mut address: u32 = 0;
    for (i, &v) in leading.iter().enumerate() {
        address |= v << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(address | last))
}

/// The registries this node lets tasks pull from although their names look local.
#[derive(Debug, Clone, Default)]
pub struct RegistryPolicy {
    /// `HOST` allows that host on any port, `HOST:PORT` that port only.
    pub allowed: Vec<Registry>,
}

impl RegistryPolicy {
    /// Reads `--allow-registry` values (each may be a comma-separated list).
    pub fn parse(values: &[String]) -> Result<RegistryPolicy, String> {
        let mut allowed = Vec::new();
        for item in values.iter().flat_map(|v| v.split(',')) {
            if item.trim().is_empty() {
                continue;
            }
            allowed.push(Registry::parse(item)?);
        }
        Ok(RegistryPolicy { allowed })
    }

    fn allows(&self, registry: &Registry) -> bool {
        self.allowed
            .iter()
            .any(|a| a.host == registry.host && a.port.is_none_or(|p| Some(p) == registry.port))
    }

    /// Why this node does not pull `image`, or `None` if it may.
    pub fn refusal(&self, image: &str) -> Option<String> {
        let written = registry_of(image)?;
        let registry = match Registry::parse(written) {
            Ok(registry) => registry,
            Err(why) => return Some(format!("its registry cannot be read: {why}")),
        };
        if self.allows(&registry) {
            return None;
        }
        let what = local_host(&registry.host)?;
        Some(format!(
            "image {image:?} is pulled from registry {written:?}, {what}: this node does not let a task \
             make it connect to its own network (allow it with --allow-registry {registry})"
        ))
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
