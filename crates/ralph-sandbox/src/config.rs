//! What the user asked for (`[sandbox]` and `[sandbox.gates]` in ralph.toml), before it is
//! checked against what the kernel can do.

use std::path::PathBuf;

/// `sandbox.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write only the work root, the private temp dir, the backend's state dirs and
    /// `writable`; read everything.
    Workspace,
    /// Workspace, and reads limited to the work root, the toolchains on PATH and system
    /// libraries; `.git` read-only.
    Strict,
    /// No sandbox.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Workspace => "workspace",
            Mode::Strict => "strict",
            Mode::Off => "off",
        }
    }
}

/// `sandbox.network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// As without a sandbox.
    On,
    /// Own network namespace; only the proxy (allow-listed hosts) and forwarded local model
    /// servers are reachable.
    Allowlist,
    /// Own network namespace with loopback only.
    Off,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::On => "on",
            Network::Allowlist => "allowlist",
            Network::Off => "off",
        }
    }
}

/// The resolved `[sandbox]` section (or `[sandbox.gates]`, which defaults to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `None`: the default, workspace where the kernel supports it, else off with a warning.
    pub mode: Option<Mode>,
    /// Refuse to run (exit 8) when the kernel cannot enforce `mode`.
    pub required: bool,
    /// Extra writable paths (absolute, `~` already expanded).
    pub writable: Vec<PathBuf>,
    pub network: Network,
    /// Extra hosts the proxy lets through (`example.com`, `*.example.com`, `10.0.0.1`,
    /// optionally with `:port`).
    pub allow_hosts: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: None,
            required: false,
            writable: Vec::new(),
            network: Network::On,
            allow_hosts: Vec::new(),
        }
    }
}
