//! The paths and hosts of one call's policy: the work root and its git layout, the backend's
//! state directories, the read-only paths, and (strict) what may be read.

use std::path::{Path, PathBuf};

use ralph_agents::BackendDescriptor;
use ralph_sandbox::policy::{DAEMON_SOCKETS, SYSTEM_READABLE};
use ralph_sandbox::{Mode, Policy};

use super::{CallPlace, SandboxSide, Who};

/// The call's environment over the inherited one.
pub(super) struct Env<'a> {
    call: &'a [(String, String)],
    base: &'a [(String, String)],
}

impl<'a> Env<'a> {
    pub fn new(call: &'a [(String, String)], base: &'a [(String, String)]) -> Env<'a> {
        Env { call, base }
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        let find = |list: &'a [(String, String)]| {
            list.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        find(self.call)
            .or_else(|| find(self.base))
            .filter(|v| !v.is_empty())
    }

    fn values(&self) -> impl Iterator<Item = &'a str> {
        self.call.iter().chain(self.base).map(|(_, v)| v.as_str())
    }
}

pub(super) fn policy(
    side: &SandboxSide,
    place: CallPlace<'_>,
    who: Who,
    env: &Env<'_>,
    (program, args): (&str, &[String]),
    tmpdir: PathBuf,
) -> Policy {
    let strict = side.enforced.mode == Mode::Strict;
    let home = env.get("HOME").map(PathBuf::from);
    let mut writable = side.writable.clone();
    writable.extend(place.scratch.map(Path::to_path_buf));
    let mut allow_hosts = side.allow_hosts.clone();
    let mut texts: Vec<String> = env.values().map(str::to_string).collect();
    texts.extend(args.iter().cloned());
    if let Who::Agent(d) = who {
        let dirs = state_dirs(d, env, home.as_deref());
        for dir in &dirs {
            // The CLI would create its directory itself; inside the sandbox only what exists
            // can be granted.
            if !dir.exists() && !is_file_entry(dir) {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(text) = crate::bounded::read_bounded(&dir.join("config.toml"), 256 * 1024) {
                texts.push(String::from_utf8_lossy(&text).into_owned());
            }
        }
        writable.extend(dirs);
        allow_hosts.extend(d.api_hosts.iter().map(|h| h.to_string()));
        if let Some(host) = d
            .api_host_setting
            .and_then(|var| env.get(var))
            .and_then(url_host)
        {
            allow_hosts.push(host);
        }
    }
    let mut read_only = vec![place.root.join(".ralph"), place.root.join("ralph.toml")];
    let git = GitLayout::of(place.work_root);
    match &git {
        Some(GitLayout::Main(dir)) if strict => read_only.push(dir.clone()),
        Some(GitLayout::Main(dir)) => {
            read_only.extend(["hooks", "config", "info"].map(|p| dir.join(p)));
        }
        Some(GitLayout::Linked { git_dir, common }) if !strict => {
            writable.push(git_dir.clone());
            writable.extend(["objects", "refs", "logs"].map(|p| common.join(p)));
        }
        _ => {}
    }
    let readable = if strict {
        let mut r = readable(env, home.as_deref(), &writable);
        r.extend(command_files(env, program, args));
        r
    } else {
        Vec::new()
    };
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    Policy {
        enforced: side.enforced.clone(),
        work_root: place.work_root.to_path_buf(),
        writable,
        tmpdir,
        read_only,
        readable,
        hidden: hidden(),
        allow_hosts,
        forwards: ralph_sandbox::allow::loopback_targets(&texts),
    }
}

/// What the command itself needs to read in strict mode: the program (found on PATH when it
/// has no slash) with the prefix it is installed under, and the existing files its arguments
/// name by absolute path (a wrapper's script, the fake agent's).
fn command_files(env: &Env<'_>, program: &str, args: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let found = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        env.get("PATH")
            .unwrap_or("")
            .split(':')
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())
    };
    if let Some(path) = found {
        for p in [path.clone(), std::fs::canonicalize(&path).unwrap_or(path)] {
            if let Some(prefix) = p
                .parent()
                .and_then(Path::parent)
                .filter(|q| q.parent().is_some())
            {
                out.push(prefix.to_path_buf());
            }
            out.extend(p.parent().map(Path::to_path_buf));
        }
    }
    out.extend(
        args.iter()
            .map(PathBuf::from)
            .filter(|p| p.is_absolute() && p.is_file()),
    );
    out
}

/// A home-state entry that names a file (`~/.claude.json`), which is not created.
fn is_file_entry(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "json" || e == "toml")
}

/// The backend's state directories: its HOME-relative entries, the same under the XDG
/// variables when they are set, and the directories its own variables name.
fn state_dirs(d: &BackendDescriptor, env: &Env<'_>, home: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in d.home_state {
        if let Some(home) = home {
            out.push(home.join(entry));
        }
        for (prefix, var) in [
            (".config/", "XDG_CONFIG_HOME"),
            (".local/share/", "XDG_DATA_HOME"),
            (".cache/", "XDG_CACHE_HOME"),
            (".local/state/", "XDG_STATE_HOME"),
        ] {
            if let (Some(rest), Some(base)) = (entry.strip_prefix(prefix), env.get(var)) {
                out.push(Path::new(base).join(rest));
            }
        }
    }
    for var in d.state_env {
        if let Some(dir) = env.get(var) {
            out.push(PathBuf::from(dir));
        }
    }
    out.retain(|p| p.is_absolute() && p.parent().is_some());
    out.sort();
    out.dedup();
    out
}

/// Strict mode's readable paths: system directories, each PATH entry and the prefix above it
/// (`~/.cargo` for `~/.cargo/bin`, which holds the toolchain's libraries), rustup's toolchains
/// when cargo is on PATH, and git's user config.
fn readable(env: &Env<'_>, home: Option<&Path>, writable: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = SYSTEM_READABLE.iter().map(PathBuf::from).collect();
    for dir in env
        .get("PATH")
        .unwrap_or("")
        .split(':')
        .filter(|d| d.starts_with('/'))
    {
        let dir = PathBuf::from(dir);
        for d in [dir.clone(), std::fs::canonicalize(&dir).unwrap_or(dir)] {
            if let Some(prefix) = d.parent().filter(|p| p.parent().is_some()) {
                out.push(prefix.to_path_buf());
            }
            out.push(d);
        }
    }
    if let Some(home) = home {
        let rustup = env
            .get("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".rustup"));
        out.push(rustup);
        out.push(home.join(".gitconfig"));
        out.push(home.join(".config/git"));
    }
    out.extend(writable.iter().cloned());
    out.sort();
    out.dedup();
    out
}

fn hidden() -> Vec<PathBuf> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut out: Vec<PathBuf> = DAEMON_SOCKETS.iter().map(PathBuf::from).collect();
    for p in [
        "bus",
        "docker.sock",
        "podman/podman.sock",
        "systemd/private",
    ] {
        out.push(PathBuf::from(format!("/run/user/{uid}/{p}")));
    }
    out
}

/// `https://host:port/path` → `host:port` (or `host`), for a non-loopback endpoint URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = authority
        .strip_prefix('[')
        .and_then(|a| a.split_once(']'))
        .map_or_else(|| authority.split(':').next().unwrap_or(""), |(h, _)| h);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!host.is_empty() && !loopback).then(|| authority.to_string())
}

/// Where the work root's git data is.
enum GitLayout {
    /// `.git` is a directory of the work root.
    Main(PathBuf),
    /// A linked worktree: its own git dir (`<common>/worktrees/<name>`) and the common dir.
    Linked { git_dir: PathBuf, common: PathBuf },
}

impl GitLayout {
    fn of(work_root: &Path) -> Option<GitLayout> {
        let dot = work_root.join(".git");
        let meta = std::fs::symlink_metadata(&dot).ok()?;
        if meta.is_dir() {
            return Some(GitLayout::Main(dot));
        }
        let text = crate::bounded::read_bounded(&dot, 64 * 1024).ok()?;
        let text = String::from_utf8_lossy(&text);
        let git_dir = text.trim().strip_prefix("gitdir:")?.trim();
        let git_dir = work_root.join(git_dir);
        let common = crate::bounded::read_bounded(&git_dir.join("commondir"), 64 * 1024)
            .ok()
            .map(|c| git_dir.join(String::from_utf8_lossy(&c).trim()))
            .unwrap_or_else(|| git_dir.clone());
        let common = std::fs::canonicalize(&common).unwrap_or(common);
        Some(GitLayout::Linked { git_dir, common })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hosts() {
        assert_eq!(
            url_host("https://gw.corp.example/v1").as_deref(),
            Some("gw.corp.example")
        );
        assert_eq!(url_host("http://gw:8443/x").as_deref(), Some("gw:8443"));
        assert_eq!(url_host("http://127.0.0.1:9/x"), None);
        assert_eq!(url_host("http://localhost:9"), None);
        assert_eq!(url_host("http://[::1]:9/"), None);
        assert_eq!(url_host("not a url"), None);
    }

    #[test]
    fn state_dirs_follow_their_variables() {
        let d = ralph_agents::descriptor("codex").unwrap();
        let call = vec![("CODEX_HOME".to_string(), "/h/codex-home".to_string())];
        let env = Env::new(&call, &[]);
        let dirs = state_dirs(d, &env, Some(Path::new("/h")));
        assert!(dirs.contains(&PathBuf::from("/h/.codex")), "{dirs:?}");
        assert!(dirs.contains(&PathBuf::from("/h/codex-home")), "{dirs:?}");
        let d = ralph_agents::descriptor("opencode").unwrap();
        let base = vec![("XDG_CACHE_HOME".to_string(), "/x/cache".to_string())];
        let env = Env::new(&[], &base);
        let dirs = state_dirs(d, &env, Some(Path::new("/h")));
        assert!(
            dirs.contains(&PathBuf::from("/x/cache/opencode")),
            "{dirs:?}"
        );
    }
}
