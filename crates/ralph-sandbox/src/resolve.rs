//! What the user asked for against what the kernel can do: the mode that is enforced, what
//! was given up and why, or a refusal when `required = true`.

use crate::{Config, Mode, Network, Support};

/// What will be enforced for every spawn of one kind (agents, or gates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforced {
    pub mode: Mode,
    pub network: Network,
    /// A user and mount namespace is set up: protected paths (`.ralph/`, `ralph.toml`,
    /// `.git/hooks`, `.git/config`) are read-only by the kernel, and daemon sockets are hidden.
    pub namespaces: bool,
    /// What could not be enforced, one sentence each (shown once at start, recorded in the
    /// audit log and in status). Empty when everything asked for is enforced.
    pub gaps: Vec<String>,
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Enforced(Enforced),
    /// `required = true` and the kernel cannot enforce it: run nothing (exit 8).
    Refused {
        reason: String,
        fix: String,
    },
}

/// Decide what is enforced. Pure: `support` comes from [`crate::probe`].
pub fn resolve(config: &Config, support: &Support) -> Resolution {
    let mut gaps = Vec::new();
    let asked = config.mode.unwrap_or(Mode::Workspace);
    let mut mode = asked;
    if asked != Mode::Off && !support.filesystem() {
        let reason = if support.landlock_abi == 0 {
            "this kernel has no Landlock (ABI 0: not built in, or not in the `lsm=` boot list)"
                .to_string()
        } else {
            format!(
                "this kernel's Landlock ABI is {}, ralph needs {} or later",
                support.landlock_abi,
                crate::probe::MIN_LANDLOCK_ABI
            )
        };
        if config.required {
            return Resolution::Refused {
                reason: format!(
                    "[sandbox] mode = \"{}\" cannot be enforced: {reason}",
                    asked.as_str()
                ),
                fix: "run on Linux 5.19 or later with Landlock enabled (add `landlock` to the \
                      kernel's `lsm=` list), or set `[sandbox] required = false` to run \
                      without the sandbox"
                    .into(),
            };
        }
        if config.mode.is_some() {
            gaps.push(format!("the agent runs without a sandbox: {reason}"));
        } else {
            gaps.push(format!(
                "the agent runs without a sandbox (the default is mode = \"workspace\"): {reason}"
            ));
        }
        mode = Mode::Off;
    }
    let mut network = config.network;
    if mode != Mode::Off && network != Network::On && !support.network() {
        let reason = "this kernel does not allow unprivileged user and network namespaces \
                      (see `sysctl kernel.unprivileged_userns_clone` and \
                      `kernel.apparmor_restrict_unprivileged_userns`)";
        if config.required {
            return Resolution::Refused {
                reason: format!(
                    "[sandbox] network = \"{}\" cannot be enforced: {reason}",
                    network.as_str()
                ),
                fix: "allow unprivileged user namespaces, or set `[sandbox] network = \"on\"`"
                    .into(),
            };
        }
        gaps.push(format!(
            "network = \"{}\" is not enforced, the agent's network is as without a sandbox: {reason}",
            network.as_str()
        ));
        network = Network::On;
    }
    if mode == Mode::Off {
        network = Network::On;
    }
    let namespaces = mode != Mode::Off && support.user_namespaces;
    if mode != Mode::Off && !namespaces {
        if mode == Mode::Strict && config.required {
            return Resolution::Refused {
                reason: "[sandbox] mode = \"strict\" needs a user namespace to make .git \
                         read-only, and this kernel does not allow one"
                    .into(),
                fix: "allow unprivileged user namespaces, or use mode = \"workspace\"".into(),
            };
        }
        gaps.push(
            "no user namespace: .ralph/, ralph.toml and .git/hooks are only checked after each \
             iteration, not made read-only by the kernel"
                .into(),
        );
    }
    if mode != Mode::Off && !support.seccomp {
        gaps.push(
            "no seccomp: ptrace, mount, bpf and the other denied syscalls are not filtered".into(),
        );
    }
    Resolution::Enforced(Enforced {
        mode,
        network,
        namespaces,
        gaps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: Support = Support {
        landlock_abi: 7,
        seccomp: true,
        user_namespaces: true,
        network_namespaces: true,
    };

    #[test]
    fn default_is_workspace_when_supported() {
        let Resolution::Enforced(e) = resolve(&Config::default(), &FULL) else {
            panic!("refused")
        };
        assert_eq!(e.mode, Mode::Workspace);
        assert!(e.namespaces);
        assert!(e.gaps.is_empty());
    }

    #[test]
    fn required_without_landlock_refuses() {
        let c = Config {
            mode: Some(Mode::Workspace),
            required: true,
            ..Config::default()
        };
        let s = Support {
            landlock_abi: 0,
            ..FULL
        };
        assert!(matches!(resolve(&c, &s), Resolution::Refused { .. }));
        let c = Config {
            required: false,
            ..c
        };
        let Resolution::Enforced(e) = resolve(&c, &s) else {
            panic!("refused")
        };
        assert_eq!(e.mode, Mode::Off);
        assert_eq!(e.gaps.len(), 1, "{:?}", e.gaps);
    }

    #[test]
    fn network_needs_namespaces() {
        let c = Config {
            network: Network::Allowlist,
            ..Config::default()
        };
        let s = Support {
            user_namespaces: false,
            network_namespaces: false,
            ..FULL
        };
        let Resolution::Enforced(e) = resolve(&c, &s) else {
            panic!("refused")
        };
        assert_eq!(e.network, Network::On);
        assert!(!e.namespaces);
        let c = Config {
            required: true,
            ..c
        };
        assert!(matches!(resolve(&c, &s), Resolution::Refused { .. }));
    }
}
