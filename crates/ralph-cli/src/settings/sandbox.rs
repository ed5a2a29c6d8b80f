//! `[sandbox]`, `[sandbox.gates]`, `--sandbox` and `--network` resolved into the
//! [`ralph_sandbox::Config`]s of agents and gates (defaults < `[sandbox]` < `[sandbox.gates]`
//! for gates < flags, which apply to both), and the probe's test hook.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use ralph_sandbox::{Config, Mode, Network, ProbeOverrides};
use ralph_types::exit_codes;

use crate::cli::{NetworkFlag, RunArgs, SandboxFlag};
use crate::config::{ConfigFile, SandboxKeys};
use crate::error::CliError;

/// The test hook (docs/config.md "Environment"): a number 0-255 is the Landlock ABI the probe
/// reports instead of the kernel's, to test what happens on a kernel without Landlock.
pub const LANDLOCK_ABI_ENV: &str = "RALPH_TEST_SANDBOX_LANDLOCK_ABI";

/// The sandbox part of the resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    pub agents: Config,
    pub gates: Config,
    pub probe: ProbeOverrides,
}

/// From this process's environment (HOME, [`LANDLOCK_ABI_ENV`]).
pub fn sandbox_settings(
    cfg: &ConfigFile,
    args: &RunArgs,
    cwd: &Path,
) -> Result<SandboxSettings, CliError> {
    let home = crate::paths::DataHomeEnv::from_process().home;
    let probe = probe_overrides(std::env::var_os(LANDLOCK_ABI_ENV))?;
    let (agents, gates) = sandbox_configs(cfg, args, home.as_deref(), cwd)?;
    Ok(SandboxSettings {
        agents,
        gates,
        probe,
    })
}

/// The value of [`LANDLOCK_ABI_ENV`]: unset or empty is no override.
pub fn probe_overrides(value: Option<OsString>) -> Result<ProbeOverrides, CliError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(ProbeOverrides::default());
    };
    match value.to_str().and_then(|v| v.trim().parse::<u8>().ok()) {
        Some(abi) => Ok(ProbeOverrides {
            landlock_abi: Some(abi),
        }),
        None => Err(CliError::usage(
            format!(
                "{LANDLOCK_ABI_ENV}={}: expected a Landlock ABI version, a whole number from 0 \
                 to 255",
                value.to_string_lossy()
            ),
            Some(format!(
                "unset {LANDLOCK_ABI_ENV} (a test hook: it makes ralph believe the kernel's \
                 Landlock ABI is that number), or set it to e.g. 0"
            )),
        )),
    }
}

/// Agents' and gates' configs. `home` expands `~`; relative paths are relative to `cwd`.
pub fn sandbox_configs(
    cfg: &ConfigFile,
    args: &RunArgs,
    home: Option<&Path>,
    cwd: &Path,
) -> Result<(Config, Config), CliError> {
    let file = &cfg.sandbox;
    let mut agents = merge(cfg, "sandbox", &file.agents, &Config::default(), home, cwd)?;
    let mut gates = merge(cfg, "sandbox.gates", &file.gates, &agents, home, cwd)?;
    for c in [&mut agents, &mut gates] {
        if let Some(m) = args.sandbox {
            c.mode = Some(match m {
                SandboxFlag::Workspace => Mode::Workspace,
                SandboxFlag::Strict => Mode::Strict,
                SandboxFlag::Off => Mode::Off,
            });
        }
        if let Some(n) = args.network {
            c.network = match n {
                NetworkFlag::On => Network::On,
                NetworkFlag::Allowlist => Network::Allowlist,
                NetworkFlag::Off => Network::Off,
            };
        }
    }
    Ok((agents, gates))
}

/// `keys` over `base`: every key the file does not set keeps `base`'s value.
fn merge(
    cfg: &ConfigFile,
    section: &str,
    keys: &SandboxKeys,
    base: &Config,
    home: Option<&Path>,
    cwd: &Path,
) -> Result<Config, CliError> {
    let writable = match &keys.writable {
        None => base.writable.clone(),
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, p) in list.iter().enumerate() {
                let abs = writable_path(p, home, cwd).map_err(|(message, hint)| {
                    let e = cfg.error_at(&format!("{section}.writable[{i}]"), message, Some(hint));
                    CliError::preformatted(exit_codes::USAGE, e.to_string())
                })?;
                out.push(abs);
            }
            out
        }
    };
    Ok(Config {
        mode: keys.mode.or(base.mode),
        required: keys.required.unwrap_or(base.required),
        writable,
        network: keys.network.unwrap_or(base.network),
        allow_hosts: keys
            .allow_hosts
            .clone()
            .unwrap_or_else(|| base.allow_hosts.clone()),
    })
}

/// One `writable` entry made absolute: `~` is `home`, relative is from `cwd`; `..` is resolved
/// by the text (the directory may not exist yet). The filesystem root and HOME itself are
/// refused, however they are spelt.
fn writable_path(p: &Path, home: Option<&Path>, cwd: &Path) -> Result<PathBuf, (String, String)> {
    let shown = p.display();
    let abs = match p.strip_prefix("~") {
        Ok(rest) => match home {
            Some(h) => cwd.join(h).join(rest),
            None => {
                return Err((
                    format!("\"{shown}\" starts with ~, and HOME is not set"),
                    "set HOME, or write the absolute path".into(),
                ))
            }
        },
        Err(_) => cwd.join(p),
    };
    let abs = lexical(&abs);
    if abs.parent().is_none() {
        return Err((
            format!("\"{shown}\" is the filesystem root: the agent could write anything"),
            "name the directories the agent must write, or set mode = \"off\"".into(),
        ));
    }
    if home.is_some_and(|h| lexical(&cwd.join(h)) == abs) {
        return Err((
            format!("\"{shown}\" is your home directory: the agent could write all of it"),
            "name the directories under it the agent must write, e.g. \"~/.cache/sccache\"".into(),
        ));
    }
    Ok(abs)
}

/// `.` dropped and `..` applied to the path's text (never above the root).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The writable paths of one side. The implicit default (no `mode` set) also lets the agent
/// write the system's temp directories, as Codex's workspace-write does: tools and scripts
/// that write `/tmp` by name are common, and a default that breaks them would be switched off.
/// Asking for `mode = "workspace"` (or `strict`) keeps them out.
fn writable(config: &Config) -> Vec<PathBuf> {
    let mut out = config.writable.clone();
    if config.mode.is_none() {
        for tmp in [std::env::temp_dir(), PathBuf::from("/tmp")] {
            if tmp.is_dir() && !out.contains(&tmp) {
                out.push(tmp);
            }
        }
    }
    out
}

/// What the engine enforces: both configs checked against the kernel. `required = true` and a
/// kernel that cannot enforce it is exit 8 with the reason and the fix, before anything runs.
pub fn enforce(sb: &SandboxSettings) -> Result<ralph_core::sandbox::SandboxSettings, CliError> {
    let network = [&sb.agents, &sb.gates]
        .iter()
        .any(|c| c.network != ralph_sandbox::Network::On && c.mode != Some(Mode::Off));
    let support = ralph_sandbox::probe_for(sb.probe, network);
    let side = |config: &Config, who: &str| match ralph_sandbox::resolve(config, &support) {
        ralph_sandbox::Resolution::Enforced(enforced) => Ok(ralph_core::sandbox::SandboxSide {
            enforced,
            writable: writable(config),
            allow_hosts: config.allow_hosts.clone(),
        }),
        ralph_sandbox::Resolution::Refused { reason, fix } => Err(CliError::new(
            exit_codes::NEEDS_HUMAN,
            format!("{reason} (for {who}); nothing was run"),
            Some(fix),
        )),
    };
    Ok(ralph_core::sandbox::SandboxSettings {
        agents: side(&sb.agents, "agents")?,
        gates: side(&sb.gates, "gates")?,
        support,
        env: std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect(),
        tmp_root: std::env::temp_dir(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(src: &str) -> ConfigFile {
        crate::config::parse(src, Path::new("ralph.toml")).unwrap()
    }

    fn configs(src: &str, args: &RunArgs) -> Result<(Config, Config), CliError> {
        sandbox_configs(
            &cfg(src),
            args,
            Some(Path::new("/home/me")),
            Path::new("/proj"),
        )
    }

    #[test]
    fn defaults_when_the_file_says_nothing() {
        let (a, g) = configs("", &RunArgs::default()).unwrap();
        assert_eq!(a, Config::default());
        assert_eq!(g, Config::default());
    }

    #[test]
    fn paths_resolve_and_gates_inherit_each_unset_key() {
        let (a, g) = configs(
            "[sandbox]\nmode = \"strict\"\nrequired = true\nnetwork = \"allowlist\"\n\
             writable = [\"~/.cache/x\", \"target/../out\", \"/var/tmp/b\"]\n\
             allow_hosts = [\"example.com\"]\n\n[sandbox.gates]\nnetwork = \"on\"\n",
            &RunArgs::default(),
        )
        .unwrap();
        assert_eq!(a.mode, Some(Mode::Strict));
        assert!(a.required);
        assert_eq!(a.network, Network::Allowlist);
        let want: Vec<PathBuf> = ["/home/me/.cache/x", "/proj/out", "/var/tmp/b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(a.writable, want);
        assert_eq!(a.allow_hosts, vec!["example.com".to_string()]);
        assert_eq!(
            g,
            Config {
                network: Network::On,
                ..a.clone()
            }
        );
        let (_, g) = configs(
            "[sandbox]\nwritable = [\"a\"]\n[sandbox.gates]\nwritable = []\nmode = \"off\"\n",
            &RunArgs::default(),
        )
        .unwrap();
        assert!(g.writable.is_empty());
        assert_eq!(g.mode, Some(Mode::Off));
    }

    #[test]
    fn flags_beat_both_sections() {
        let args = RunArgs {
            sandbox: Some(SandboxFlag::Off),
            network: Some(NetworkFlag::Off),
            ..RunArgs::default()
        };
        let (a, g) = configs(
            "[sandbox]\nmode = \"strict\"\n[sandbox.gates]\nmode = \"workspace\"\nnetwork = \"on\"\n",
            &args,
        )
        .unwrap();
        assert_eq!((a.mode, a.network), (Some(Mode::Off), Network::Off));
        assert_eq!((g.mode, g.network), (Some(Mode::Off), Network::Off));
    }

    #[test]
    fn root_and_home_are_refused_however_spelt() {
        for (src, key_at) in [
            (
                "[sandbox]\nwritable = [\"/home/me\"]\n",
                "ralph.toml:2:13: `sandbox.writable[0]`",
            ),
            (
                "[sandbox]\nwritable = [\"ok\", \"../..\"]\n",
                "ralph.toml:2:19: `sandbox.writable[1]`",
            ),
            (
                "[sandbox.gates]\nwritable = [\"~/x/..\"]\n",
                "ralph.toml:2:13: `sandbox.gates.writable[0]`",
            ),
        ] {
            let e = configs(src, &RunArgs::default()).unwrap_err();
            assert_eq!(e.code, exit_codes::USAGE);
            assert!(e.message.contains(key_at), "{src}: {}", e.message);
            assert!(e.message.contains("hint: "), "{}", e.message);
        }
        let e = sandbox_configs(
            &cfg("[sandbox]\nwritable = [\"~/x\"]\n"),
            &RunArgs::default(),
            None,
            Path::new("/proj"),
        )
        .unwrap_err();
        assert!(e.message.contains("HOME is not set"), "{}", e.message);
    }

    #[test]
    fn the_landlock_hook() {
        let v = |s: &str| probe_overrides(Some(OsString::from(s)));
        assert_eq!(probe_overrides(None).unwrap(), ProbeOverrides::default());
        assert_eq!(v("").unwrap(), ProbeOverrides::default());
        assert_eq!(v("0").unwrap().landlock_abi, Some(0));
        assert_eq!(v("255").unwrap().landlock_abi, Some(255));
        for bad in ["256", "-1", "one", "1.5"] {
            let e = v(bad).unwrap_err();
            assert_eq!(e.code, exit_codes::USAGE);
            assert!(e.message.contains(LANDLOCK_ABI_ENV), "{}", e.message);
        }
    }
}
