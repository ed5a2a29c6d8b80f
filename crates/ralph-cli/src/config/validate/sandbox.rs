//! `[sandbox]` and `[sandbox.gates]`: the OS sandbox around agents and gates.
//!
//! Only the syntax is checked here. Paths stay as written (`~` and relative paths are resolved
//! by the CLI, which knows HOME and the project root), and `[sandbox.gates]` is not merged with
//! `[sandbox]` yet: that is settings resolution too.

use std::path::{Component, Path, PathBuf};

use ralph_sandbox::{Mode, Network};
use toml_edit::{TableLike, Value};

use super::{entries, Entry, Result, Walker};
use crate::config::text::found;
use crate::config::{SandboxConf, SandboxKeys};

const HOSTS_HINT: &str = "write hosts like \"example.com\", \"example.com:443\", \
                          \"*.example.com\", \"10.0.0.1\" or \"[::1]:8080\"";

impl Walker<'_> {
    pub(crate) fn sandbox(&mut self, table: &dyn TableLike) -> Result<SandboxConf> {
        let mut gates = SandboxKeys::default();
        let agents = self.sandbox_keys("sandbox", table, Some(&mut gates))?;
        Ok(SandboxConf { agents, gates })
    }

    /// The keys of one table; `gates` is where `[sandbox.gates]` goes, `None` inside it.
    fn sandbox_keys(
        &mut self,
        section: &str,
        table: &dyn TableLike,
        mut gates: Option<&mut SandboxKeys>,
    ) -> Result<SandboxKeys> {
        let mut keys = SandboxKeys::default();
        for e in &entries(section, table) {
            self.record(e);
            match e.name {
                "mode" => {
                    keys.mode = Some(match self.choice(e, super::SANDBOX_MODES, "workspace")? {
                        "strict" => Mode::Strict,
                        "off" => Mode::Off,
                        _ => Mode::Workspace,
                    })
                }
                "required" => keys.required = Some(self.boolean(e, "true")?),
                "network" => {
                    keys.network =
                        Some(match self.choice(e, super::NETWORK_MODES, "allowlist")? {
                            "allowlist" => Network::Allowlist,
                            "off" => Network::Off,
                            _ => Network::On,
                        })
                }
                "writable" => keys.writable = Some(self.writable(e)?),
                "allow_hosts" => keys.allow_hosts = Some(self.allow_hosts(e)?),
                "gates" if gates.is_some() => {
                    let Some(inner) = e.item.as_table_like() else {
                        return Err(self.bad(
                            e,
                            format!("expected a table [sandbox.gates], found {}", found(e.item)),
                            "write [sandbox.gates] on a line of its own and put the gates' keys \
                             (mode, required, writable, network, allow_hosts) below it",
                        ));
                    };
                    let parsed = self.sandbox_keys("sandbox.gates", inner, None)?;
                    if let Some(g) = gates.as_deref_mut() {
                        *g = parsed;
                    }
                }
                _ => return Err(self.unknown_key(e, section)),
            }
        }
        Ok(keys)
    }

    fn writable(&mut self, e: &Entry) -> Result<Vec<PathBuf>> {
        let list = self.strings(e, &["~/.cache/sccache", "target"])?;
        for (i, path) in list.iter().enumerate() {
            let item = self.item_span(e, i);
            let key = format!("{}[{i}]", e.path());
            if let Some(span) = item.clone() {
                let pos = super::line_col(self.src, span.start);
                self.locations.insert(key.clone(), pos);
            }
            if let Err((message, hint)) = check_writable(path) {
                return Err(self.error(item, Some(key), message, hint));
            }
        }
        Ok(list.into_iter().map(PathBuf::from).collect())
    }

    fn allow_hosts(&self, e: &Entry) -> Result<Vec<String>> {
        let list = self.strings(e, &["example.com", "*.example.com:443"])?;
        for (i, host) in list.iter().enumerate() {
            if let Err(reason) = check_allow_host(host) {
                let hint = match url_host(host) {
                    Some(h) => format!("write the host alone: \"{h}\""),
                    None => HOSTS_HINT.to_string(),
                };
                return Err(self.error(
                    self.item_span(e, i),
                    Some(format!("{}[{i}]", e.path())),
                    format!(
                        "invalid host {}: {reason}",
                        crate::config::text::quote(host)
                    ),
                    hint,
                ));
            }
        }
        Ok(list)
    }

    fn item_span(&self, e: &Entry, i: usize) -> Option<std::ops::Range<usize>> {
        match e.item.as_value() {
            Some(Value::Array(a)) => a.get(i).and_then(Value::span),
            _ => e.span(),
        }
    }
}

/// A `writable` entry as written: (message, hint) when it is one ralph refuses. HOME given as
/// an absolute path is checked by the CLI, once HOME is known.
fn check_writable(path: &str) -> std::result::Result<(), (String, String)> {
    if path.trim().is_empty() {
        return Err((
            "expected a non-empty path, found an empty string".into(),
            "remove the empty item or write a directory such as \"~/.cache/sccache\"".into(),
        ));
    }
    if path.contains('\0') {
        return Err((
            "a path cannot contain a NUL character".into(),
            "write the directory's path without \\u0000".into(),
        ));
    }
    let p = Path::new(path);
    let only = |c: &Component| matches!(c, Component::RootDir | Component::CurDir);
    if p.has_root() && p.components().all(|c| only(&c)) {
        return Err((
            "\"/\" would make the whole filesystem writable to the agent".into(),
            "name the directories the agent must write, e.g. writable = [\"/var/cache/build\"], \
             or set mode = \"off\" to run without the sandbox"
                .into(),
        ));
    }
    if let Ok(rest) = p.strip_prefix("~") {
        if rest.components().all(|c| matches!(c, Component::CurDir)) {
            return Err((
                "\"~\" would make your whole home directory writable to the agent".into(),
                "name the directories under it the agent must write, e.g. \
                 writable = [\"~/.cache/sccache\"]"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `allow_hosts` syntax: a host name, `*.` + a host name, an IPv4 address or a bracketed IPv6
/// address, optionally with `:port` (1-65535). Returns the reason when it is not one.
///
/// One function on purpose: `ralph_sandbox::allow::AllowList::new` will replace it.
pub fn check_allow_host(entry: &str) -> std::result::Result<(), String> {
    syntax(entry)?;
    // What the proxy will match against: the same parser, so a value accepted here is never
    // refused at run time.
    ralph_sandbox::allow::AllowList::new(&[entry])
        .map(drop)
        .map_err(|e| e.why.to_string())
}

/// The checks with the most precise messages, before the proxy's parser.
fn syntax(entry: &str) -> std::result::Result<(), String> {
    if entry.trim().is_empty() {
        return Err("it is empty".into());
    }
    if entry.contains("://") {
        return Err("a host, not a URL (no scheme)".into());
    }
    if entry.contains('/') {
        return Err("a host, not a URL (no path)".into());
    }
    if entry.chars().any(char::is_whitespace) {
        return Err("a host has no spaces".into());
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("an IPv6 address opened with `[` needs its `]`".into());
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{inside}` is not an IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err("after `]` only `:port` may follow".into()),
            },
        }
    } else if entry.matches(':').count() > 1 {
        // A bare IPv6 address: it cannot carry a port without brackets.
        return match entry.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => {
                Err("an IPv6 address with a port is written in brackets: \"[::1]:8080\"".into())
            }
        };
    } else {
        match entry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(entry), None),
        }
    };
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(n) if n >= 1 => {}
            _ => return Err(format!("the port `{port}` is not a number from 1 to 65535")),
        }
    }
    let Some(host) = host else { return Ok(()) };
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.contains('*') {
        return Err("`*` is only allowed as a `*.` prefix, as in \"*.example.com\"".into());
    }
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err("a host name has no empty labels (`..`, or a leading or trailing dot)".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.'))
    {
        return Err(format!("`{c}` cannot be part of a host name"));
    }
    Ok(())
}

/// The host of a URL someone wrote where a host was expected, for the hint.
fn url_host(entry: &str) -> Option<&str> {
    let (_, rest) = entry.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty() && check_allow_host(host).is_ok()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        for ok in [
            "example.com",
            "example.com:443",
            "*.example.com",
            "*.example.com:8443",
            "10.0.0.1",
            "10.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "::1",
            "localhost",
            "my_host-1.internal",
        ] {
            assert_eq!(check_allow_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            " ",
            "https://example.com",
            "example.com/v1",
            "ex*mple.com",
            "*example.com",
            "a.*.example.com",
            "example.com:0",
            "example.com:65536",
            "example.com:",
            "example.com:http",
            "[::1",
            "[nothost]:80",
            "[::1]x",
            "::1:99999:zz",
            "exa mple.com",
            "example..com",
            ".example.com",
            "*.",
            "ex@mple.com",
        ] {
            assert!(check_allow_host(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn url_hints_name_the_host() {
        assert_eq!(
            url_host("https://api.example.com/v1"),
            Some("api.example.com")
        );
        assert_eq!(url_host("http://u:p@h.io:8080/x"), Some("h.io:8080"));
        assert_eq!(url_host("example.com"), None);
    }

    #[test]
    fn writable_refuses_root_and_home() {
        for bad in ["/", "//", "/.", "/./", "~", "~/", "~/.", "", " ", "a\0b"] {
            assert!(check_writable(bad).is_err(), "{bad:?} accepted");
        }
        for ok in ["/var/cache", "~/.cache", "target", "./out", "~bob"] {
            assert!(check_writable(ok).is_ok(), "{ok:?} refused");
        }
    }
}
