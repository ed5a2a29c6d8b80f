//! The paths and network one spawn gets, described by the caller in plain paths. ralph-core
//! fills it in (it knows the project, git's layout and the backend); this crate only turns it
//! into kernel objects.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::Enforced;

/// What one agent or gate spawn may touch.
#[derive(Debug, Clone)]
pub struct Policy {
    pub enforced: Enforced,
    /// The project root, or a story's worktree: writable.
    pub work_root: PathBuf,
    /// Other writable directories or files (the backend's state dirs, `writable`, a linked
    /// worktree's git dirs). Missing ones are skipped: the caller creates those it wants.
    pub writable: Vec<PathBuf>,
    /// The private per-spawn temp dir (TMPDIR), created by the caller.
    pub tmpdir: PathBuf,
    /// Paths under a writable root that the agent may only read (`.ralph/`, `ralph.toml`,
    /// `.git/hooks`, `.git/config`, and `.git` in strict mode). Enforced with read-only bind
    /// mounts, so only when `enforced.namespaces`.
    pub read_only: Vec<PathBuf>,
    /// Strict mode: the directories reads are limited to besides the writable ones (system
    /// directories and the toolchains on PATH). Ignored in workspace mode (reads everywhere).
    pub readable: Vec<PathBuf>,
    /// Sockets of daemons that would be a way out (docker, containerd, the system bus…),
    /// hidden behind `/dev/null` in the mount namespace. Missing ones are skipped.
    pub hidden: Vec<PathBuf>,
    /// `network = "allowlist"`: hosts the proxy lets through.
    pub allow_hosts: Vec<String>,
    /// `network = "allowlist"`: local servers (model servers on loopback) reachable at the
    /// same address inside the namespace.
    pub forwards: Vec<SocketAddr>,
}

/// Daemon sockets that give a process a way around any sandbox (a container runtime runs
/// anything as root; the system bus reaches systemd and the resolver).
pub const DAEMON_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/run/dbus/system_bus_socket",
    "/run/systemd/private",
    "/run/systemd/io.systemd.ManagedOOM",
    "/run/systemd/resolve/io.systemd.Resolve",
    "/run/systemd/userdb/io.systemd.DynamicUser",
    "/var/run/nscd/socket",
    "/run/nscd/socket",
];

/// System directories readable in strict mode (those that exist).
pub const SYSTEM_READABLE: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/dev", "/proc",
    "/sys", "/run", "/opt", "/nix", "/snap",
];
