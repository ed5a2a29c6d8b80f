//! Host allow-list matching for the proxy, and the loopback model-server URLs that become
//! forward ports.
//!
//! Matching is on the host as the agent wrote it, never on what it resolves to: the proxy
//! decides before any DNS lookup, so a refused name never leaves the machine.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A host pattern that `[sandbox] allow_hosts` cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allow_hosts entry {entry:?}: {why} (valid entries look like \"example.com\", \
     \"api.example.com:443\", \"*.example.com\", \"10.0.0.1\" or \"[::1]:8080\")"
)]
pub struct BadHost {
    pub entry: String,
    pub why: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// The exact name (lowercase, no trailing dot).
    Name(String),
    /// Any name ending in this suffix, which starts with a dot (`.example.com`): the bare
    /// domain is not included.
    Suffix(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    pattern: Pattern,
    /// `None`: any port.
    port: Option<u16>,
}

/// The hosts the proxy lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

impl AllowList {
    /// Entries: `example.com` (any port), `example.com:443`, `*.example.com` (any subdomain,
    /// not the bare domain), IPv4/IPv6 literals (`10.0.0.1`, `[::1]:8080`, `::1`).
    /// Case-insensitive; a trailing dot is ignored.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, BadHost> {
        let entries = entries
            .iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList { entries })
    }

    /// Whether a connection to `host:port` may go through. `host` is a name or an IP literal
    /// (IPv6 with or without brackets); it is compared as text, never resolved.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            // Brackets hold an IPv6 address or nothing we allow: `[example.com]` is no name.
            Some(inner) => match inner.parse::<Ipv6Addr>() {
                Ok(v6) => Some(canonical_ip(IpAddr::V6(v6))),
                Err(_) => return false,
            },
            None => host.parse::<IpAddr>().ok().map(canonical_ip),
        };
        self.entries.iter().any(|entry| {
            entry.port.is_none_or(|p| p == port)
                && match (&entry.pattern, ip) {
                    (Pattern::Ip(allowed), Some(ip)) => *allowed == ip,
                    (Pattern::Name(name), None) => *name == host,
                    // The suffix starts with a dot, so `example.com` does not match
                    // `*.example.com`, nor does `badexample.com`.
                    (Pattern::Suffix(suffix), None) => {
                        host.len() > suffix.len() && host.ends_with(suffix.as_str())
                    }
                    _ => false,
                }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `::ffff:10.0.0.1` is the IPv4 address: an agent must not get around an IPv4 entry (or
/// past its absence) by spelling it as IPv6.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn parse_entry(raw: &str) -> Result<Entry, BadHost> {
    let bad = |why| BadHost {
        entry: raw.to_owned(),
        why,
    };
    let text = raw.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.contains("://") || text.contains('/') {
        return Err(bad("a host, not a URL: drop the scheme and the path"));
    }
    // A bare IPv6 literal (two colons or more) has no port.
    if let Ok(ip) = text.parse::<Ipv6Addr>() {
        return Ok(Entry {
            pattern: Pattern::Ip(canonical_ip(IpAddr::V6(ip))),
            port: None,
        });
    }
    let (host, port) = split_port(&text).map_err(bad)?;
    if let Some(v6) = host.strip_prefix('[') {
        let v6 = v6
            .strip_suffix(']')
            .ok_or_else(|| bad("unclosed '[' around an IPv6 address"))?;
        let ip = v6
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address inside [ ]"))?;
        return Ok(Entry {
            pattern: Pattern::Ip(canonical_ip(IpAddr::V6(ip))),
            port,
        });
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Entry {
            pattern: Pattern::Ip(IpAddr::V4(ip)),
            port,
        });
    }
    let pattern = match host.strip_prefix("*.") {
        Some(domain) => {
            check_name(domain).map_err(bad)?;
            Pattern::Suffix(format!(".{domain}"))
        }
        None => {
            check_name(host).map_err(bad)?;
            Pattern::Name(host.to_owned())
        }
    };
    Ok(Entry { pattern, port })
}

fn split_port(text: &str) -> Result<(&str, Option<u16>), &'static str> {
    // `[v6]:port`, `name:port`; a colon inside brackets is not a port separator.
    let after_bracket = text.rfind(']').map_or(0, |i| i + 1);
    match text[after_bracket..].rfind(':') {
        None => Ok((text, None)),
        Some(i) => {
            let at = after_bracket + i;
            let port = &text[at + 1..];
            match port.parse::<u16>() {
                Ok(0) => Err("port 0 is not a port"),
                Ok(p) if port.bytes().all(|b| b.is_ascii_digit()) => Ok((&text[..at], Some(p))),
                _ => Err("the port after ':' must be a number from 1 to 65535"),
            }
        }
    }
}

/// A DNS name: labels of letters, digits, `-` and `_`, at most 63 bytes each and 253 in all.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("no host name");
    }
    if name.len() > 253 {
        return Err("a host name is at most 253 characters");
    }
    if name.contains('*') {
        return Err("'*' is only allowed as a whole first label, as in \"*.example.com\"");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return Err("a label is at most 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("a host name holds only letters, digits, '-', '_' and '.'");
        }
    }
    // `127.1` or `0x7f.1` would be taken as a name here but as an address by the resolver
    // (inet_aton), so an entry whose last label is numeric would allow an address nobody
    // wrote down.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()) || tld.starts_with("0x"))
    {
        return Err("the last label of a host name cannot be a number; write IPv4 addresses in full (10.0.0.1)");
    }
    Ok(())
}

/// The distinct loopback servers named by `http://` and `https://` URLs anywhere in `texts`
/// (environment values, argv, config files): `127.0.0.1` (any `127.x.y.z`), `localhost` and
/// `[::1]`, with the scheme's default port when none is written. `localhost` is taken as
/// `127.0.0.1`. In the order first seen.
pub fn loopback_targets(texts: &[&str]) -> Vec<SocketAddr> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for text in texts {
        let lower = text.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(at) = rest.find("://") {
            let scheme_default = scheme_port(&rest[..at]);
            let after = &rest[at + 3..];
            if let Some(addr) = scheme_default.and_then(|port| loopback_authority(after, port)) {
                if seen.insert(addr) {
                    found.push(addr);
                }
            }
            rest = after;
        }
    }
    found
}

/// The default port of the scheme that ends `before` (`...https`), if it is http(s) and not
/// the tail of a longer word (`xhttp://`).
fn scheme_port(before: &str) -> Option<u16> {
    let (scheme, port) = if before.ends_with("https") {
        ("https", 443)
    } else if before.ends_with("http") {
        ("http", 80)
    } else {
        return None;
    };
    let start = before.len() - scheme.len();
    let prev = before[..start].chars().next_back();
    match prev {
        Some(c) if c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.' => None,
        _ => Some(port),
    }
}

fn loopback_authority(after: &str, default_port: u16) -> Option<SocketAddr> {
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:@[]".contains(c)))
        .unwrap_or(after.len());
    let authority = &after[..end];
    // Userinfo (`user:pass@`) is not part of the address.
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_port(hostport).ok()?;
    let port = port.unwrap_or(default_port);
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "[::1]" => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => match other.parse::<Ipv4Addr>() {
            Ok(v4) if v4.is_loopback() => IpAddr::V4(v4),
            _ => return None,
        },
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        match AllowList::new(entries) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn names_match_exactly_case_insensitively_and_without_trailing_dot() {
        let l = list(&["Example.COM."]);
        assert!(l.allows("example.com", 443));
        assert!(l.allows("EXAMPLE.com.", 80));
        assert!(!l.allows("www.example.com", 443));
        assert!(!l.allows("example.co", 443));
        assert!(!l.allows("example.com.evil", 443));
        assert!(!l.is_empty());
        assert!(list(&[] as &[&str]).is_empty());
        assert!(!list(&[] as &[&str]).allows("example.com", 443));
    }

    #[test]
    fn ports_restrict_when_given() {
        let l = list(&["api.example.com:443"]);
        assert!(l.allows("api.example.com", 443));
        assert!(!l.allows("api.example.com", 80));
    }

    #[test]
    fn wildcards_match_subdomains_not_the_bare_domain() {
        let l = list(&["*.example.com"]);
        assert!(l.allows("a.example.com", 443));
        assert!(l.allows("a.b.example.com", 1));
        assert!(!l.allows("example.com", 443));
        assert!(!l.allows("badexample.com", 443));
        assert!(!l.allows(".example.com", 443));
        let l = list(&["*.example.com:8443"]);
        assert!(l.allows("x.example.com", 8443));
        assert!(!l.allows("x.example.com", 443));
    }

    #[test]
    fn ip_literals_match_as_addresses_only() {
        let l = list(&["10.0.0.1", "[::1]:8080", "fe80::1"]);
        assert!(l.allows("10.0.0.1", 22));
        assert!(l.allows("::ffff:10.0.0.1", 22));
        assert!(l.allows("[::ffff:10.0.0.1]", 22));
        assert!(!l.allows("10.0.0.2", 22));
        assert!(l.allows("[::1]", 8080));
        assert!(l.allows("::1", 8080));
        assert!(l.allows("0:0:0:0:0:0:0:1", 8080));
        assert!(!l.allows("[::1]", 8081));
        assert!(l.allows("FE80::1", 1));
        // A name never matches an IP entry, nor an address a name entry.
        assert!(!list(&["localhost"]).allows("127.0.0.1", 80));
        assert!(!list(&["127.0.0.1"]).allows("localhost", 80));
        assert!(!list(&["example.com"]).allows("[example.com]", 80));
        assert!(!list(&["10.0.0.1"]).allows("[10.0.0.1]", 80));
        assert!(AllowList::new(&["*.0.1"]).is_err());
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (entry, needle) in [
            ("", "empty"),
            ("https://example.com", "not a URL"),
            ("example.com/path", "not a URL"),
            ("example.com:0", "port 0"),
            ("example.com:99999", "1 to 65535"),
            ("example.com:http", "1 to 65535"),
            ("example.com:+80", "1 to 65535"),
            ("ex ample.com", "only letters"),
            ("a..b", "empty label"),
            ("*example.com", "'*'"),
            ("a.*.example.com", "'*'"),
            ("*.", "'*'"),
            ("*..", "no host name"),
            ("[::1", "unclosed"),
            ("[example.com]:80", "IPv6"),
            ("127.1", "cannot be a number"),
            ("10.0.0.256", "cannot be a number"),
        ] {
            match AllowList::new(&[entry]) {
                Ok(_) => panic!("{entry:?} was accepted"),
                Err(e) => {
                    assert_eq!(e.entry, entry);
                    let text = e.to_string();
                    assert!(text.contains(needle), "{entry:?}: {text}");
                    assert!(text.contains("*.example.com"), "{text}");
                }
            }
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(AllowList::new(&[long]).is_err());
    }

    #[test]
    fn loopback_urls_are_found_in_any_text() {
        let found = loopback_targets(&[
            "OPENAI_BASE_URL=http://127.0.0.1:11434/v1",
            "--url https://localhost:8443/x and http://[::1]:9000?q",
            "plain http://localhost then HTTPS://127.0.0.2/",
            "dupe \"http://127.0.0.1:11434\" http://user:pw@localhost:5000/",
            "not ours: http://example.com:80 http://127.0.0.1.evil.com/ xhttp://127.0.0.1:7",
            "http://127.0.0.1:0 http://127.0.0.1:70000 http://10.0.0.1:80",
        ]);
        let want: Vec<SocketAddr> = [
            "127.0.0.1:11434",
            "127.0.0.1:8443",
            "[::1]:9000",
            "127.0.0.1:80",
            "127.0.0.2:443",
            "127.0.0.1:5000",
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
        assert_eq!(found, want);
    }
}
