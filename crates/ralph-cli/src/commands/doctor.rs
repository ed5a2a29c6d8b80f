//! `ralph doctor`: what is installed and configured, and what is not; exits with the code a
//! `ralph run` would fail with (2 for a bad config or prompt, 8 for a missing agent).

use std::io::Write;
use std::path::Path;

use ralph_types::exit_codes;

use super::open_store;
use crate::cli::{DoctorArgs, RunArgs};
use crate::error::CliError;
use crate::paths;
use crate::settings::{
    load_config, read_prompt, resolve, runnable, sandbox_settings, SandboxSettings,
};
use crate::style::{self, Colour};

pub fn cmd_doctor(args: DoctorArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let mut out = std::io::stdout().lock();
    let colour = style::get().stdout;
    let paint = |text: &str, c: Colour| style::paint(text, c, colour);
    let mut code = exit_codes::SUCCESS;
    let _ = writeln!(out, "ralph      {}", env!("CARGO_PKG_VERSION"));
    let cfg = match load_config(args.config.as_deref(), &cwd) {
        Ok(c) => {
            let shown = if c.file.as_os_str().is_empty() {
                "none (defaults)".to_string()
            } else {
                format!("{} ok", c.file.display())
            };
            let _ = writeln!(out, "config     {shown}");
            Some(c)
        }
        Err(e) => {
            let _ = writeln!(out, "config     INVALID\n{e}");
            code = exit_codes::USAGE;
            None
        }
    };
    match ralph_git::git_version() {
        Ok(v) => {
            let repo = match ralph_git::Git::discover(&cwd) {
                Ok(Some(_)) => "inside a repository: checkpoints on",
                Ok(None) => "not a repository: checkpoints off",
                Err(_) => "repository check failed",
            };
            let _ = writeln!(out, "git        {v} ({repo})");
        }
        Err(e) => {
            let _ = writeln!(out, "git        {e}; checkpoints off");
        }
    }
    let _ = writeln!(out, "backends");
    let probe_config = cfg
        .as_ref()
        .map(|c| ralph_agents::BackendConfig {
            command: c.agent.command.clone().unwrap_or_default(),
            ..Default::default()
        })
        .unwrap_or_default();
    // Every backend the registry knows, in priority order, `custom` last.
    for name in ralph_agents::descriptors().iter().map(|d| &d.name) {
        if !runnable(name) {
            let _ = writeln!(out, "  {name:<9} not supported by this version yet");
            continue;
        }
        // `agent.command` is the program of the configured backend (or of `custom`) only: every
        // other backend is probed as its own program.
        let configured = cfg
            .as_ref()
            .and_then(|c| c.agent.backend.as_deref())
            .and_then(|b| crate::config::normalize_backend(b).ok());
        let probe = if *name == "custom" || configured == Some(*name) {
            probe_config.clone()
        } else {
            ralph_agents::BackendConfig::default()
        };
        let Some(be) = ralph_agents::builtin_backend(name, &probe) else {
            continue;
        };
        if *name == "custom" && probe_config.command.is_empty() {
            let _ = writeln!(out, "  {name:<9} not configured (set agent.command)");
            continue;
        }
        let auth: Vec<String> = be
            .auth_env()
            .iter()
            .map(|v| {
                let set = if std::env::var_os(v).is_some() {
                    "set"
                } else {
                    "unset"
                };
                format!("{v} {set}")
            })
            .collect();
        let auth = if auth.is_empty() {
            String::new()
        } else {
            format!(" · {}", auth.join(", "))
        };
        match paths::find_program(be.program()) {
            Some(path) => {
                let version = program_version(&path, be.version_args());
                let version = paint(&version, Colour::Green);
                let _ = writeln!(out, "  {name:<9} {version} ({}){auth}", path.display());
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {name:<9} {} (`{}` not found){auth}",
                    paint("not installed", Colour::Red),
                    be.program()
                );
            }
        }
    }
    // What `ralph run` would resolve; when the agents do not resolve, the sandbox still does.
    let mut resolved_sandbox = None;
    if let Some(cfg) = &cfg {
        match resolve(cfg, &RunArgs::default(), &cwd) {
            Ok(r) => {
                resolved_sandbox = Some(SandboxSettings {
                    agents: r.sandbox.clone(),
                    gates: r.sandbox_gates.clone(),
                    probe: r.sandbox_probe,
                });
                for (i, agent) in r.agents.iter().enumerate() {
                    let installed = paths::find_program(agent.backend.program()).is_some();
                    let model = agent
                        .model
                        .as_deref()
                        .map(|m| format!(" {m}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{}{}{model} ({})",
                        if i == 0 { "selected   " } else { "fallback   " },
                        agent.backend.name(),
                        if installed {
                            paint("ready", Colour::Green)
                        } else {
                            paint("NOT INSTALLED", Colour::Red)
                        }
                    );
                    if !installed && code == exit_codes::SUCCESS {
                        code = exit_codes::NEEDS_HUMAN;
                    }
                }
                match read_prompt(&r.settings.prompt, &cwd) {
                    Ok(p) => {
                        let _ = writeln!(out, "prompt     {} bytes", p.len());
                    }
                    Err(e) => {
                        let _ = writeln!(out, "prompt     {}", e.message);
                        if code == exit_codes::SUCCESS {
                            code = exit_codes::USAGE;
                        }
                    }
                }
            }
            Err(e) => {
                // A sandbox problem is shown in the sandbox section, not as the agent's.
                let sandbox_err = sandbox_settings(cfg, &RunArgs::default(), &cwd).err();
                if sandbox_err.is_none_or(|s| s.message != e.message) {
                    let _ = writeln!(out, "selected   {}", e.message);
                }
                if code == exit_codes::SUCCESS {
                    code = e.code;
                }
            }
        }
    }
    if let Some(cfg) = &cfg {
        let settings = match resolved_sandbox {
            Some(s) => Ok(s),
            None => sandbox_settings(cfg, &RunArgs::default(), &cwd),
        };
        let sandbox = sandbox_section(settings);
        let _ = write!(out, "{}", sandbox.text);
        if code == exit_codes::SUCCESS {
            code = sandbox.code;
        }
    }
    let state = match open_store(&cwd) {
        Ok(Some(store)) => match store.runs(1000) {
            Ok(runs) => format!(
                ".ralph/ralph.db ({} run{})",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" }
            ),
            Err(e) => format!(".ralph/ralph.db unreadable: {e}"),
        },
        Ok(None) => "no state yet".to_string(),
        Err(e) => format!(".ralph/ralph.db unreadable: {}", e.message),
    };
    let _ = writeln!(out, "state      {state}");
    Ok(code)
}

/// The sandbox lines of the report, and the exit code `ralph run` would have for them.
struct SandboxReport {
    text: String,
    code: i32,
}

/// What the kernel supports and what `ralph run` would enforce for agents and gates.
fn sandbox_section(settings: Result<SandboxSettings, CliError>) -> SandboxReport {
    match settings {
        Ok(s) => {
            let support = ralph_sandbox::probe(s.probe);
            let agents = ralph_sandbox::resolve(&s.agents, &support);
            let gates = ralph_sandbox::resolve(&s.gates, &support);
            let refused = [&agents, &gates]
                .iter()
                .any(|r| matches!(r, ralph_sandbox::Resolution::Refused { .. }));
            SandboxReport {
                text: sandbox_text(&support, &agents, &gates),
                code: if refused {
                    exit_codes::NEEDS_HUMAN
                } else {
                    exit_codes::SUCCESS
                },
            }
        }
        Err(e) => SandboxReport {
            text: format!("sandbox    {}\n", e.message),
            code: e.code,
        },
    }
}

/// The sandbox lines as text: pure, so they can be snapshot-tested for any kernel.
fn sandbox_text(
    support: &ralph_sandbox::Support,
    agents: &ralph_sandbox::Resolution,
    gates: &ralph_sandbox::Resolution,
) -> String {
    use ralph_sandbox::probe::MIN_LANDLOCK_ABI;
    use ralph_sandbox::Resolution;
    use std::fmt::Write as _;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let abi = support.landlock_abi;
    let verdict = match (support.filesystem(), abi) {
        (true, _) => "ok",
        (false, 0) => "none",
        (false, _) => "too old",
    };
    let mut t = String::from("sandbox\n");
    let _ = writeln!(
        t,
        "  landlock  ABI {abi} ({MIN_LANDLOCK_ABI} or later needed: {verdict})"
    );
    let _ = writeln!(t, "  seccomp   {}", yes(support.seccomp));
    let _ = writeln!(t, "  user ns   {}", yes(support.user_namespaces));
    let _ = writeln!(t, "  net ns    {}", yes(support.network_namespaces));
    for (name, r) in [("agents", agents), ("gates", gates)] {
        match r {
            Resolution::Enforced(e) => {
                let _ = writeln!(
                    t,
                    "  {name:<9} mode {}, network {}",
                    e.mode.as_str(),
                    e.network.as_str()
                );
                for gap in &e.gaps {
                    let _ = writeln!(t, "            gap: {gap}");
                }
            }
            Resolution::Refused { reason, fix } => {
                let _ = writeln!(t, "  {name:<9} REFUSED: {reason}");
                let _ = writeln!(t, "            fix: {fix}");
            }
        }
    }
    t
}

fn program_version(path: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        Err(e) => format!("version unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use ralph_sandbox::{resolve, Config, Mode, Network, Support};

    use super::sandbox_text;

    const FULL: Support = Support {
        landlock_abi: 7,
        seccomp: true,
        user_namespaces: true,
        network_namespaces: true,
    };

    fn text(agents: &Config, gates: &Config, support: &Support) -> String {
        sandbox_text(support, &resolve(agents, support), &resolve(gates, support))
    }

    #[test]
    fn everything_enforced() {
        let gates = Config {
            mode: Some(Mode::Strict),
            network: Network::Off,
            ..Config::default()
        };
        insta::assert_snapshot!(text(&Config::default(), &gates, &FULL));
    }

    #[test]
    fn no_landlock_and_no_namespaces_are_gaps() {
        let support = Support {
            landlock_abi: 1,
            user_namespaces: false,
            network_namespaces: false,
            ..FULL
        };
        let gates = Config {
            mode: Some(Mode::Off),
            ..Config::default()
        };
        insta::assert_snapshot!(text(&Config::default(), &gates, &support));
        let support = Support {
            landlock_abi: 7,
            seccomp: false,
            ..support
        };
        let agents = Config {
            network: Network::Allowlist,
            ..Config::default()
        };
        insta::assert_snapshot!(
            "namespaces_and_seccomp_missing",
            text(&agents, &gates, &support)
        );
    }

    #[test]
    fn required_on_a_kernel_without_landlock_is_refused() {
        let support = Support {
            landlock_abi: 0,
            ..FULL
        };
        let agents = Config {
            required: true,
            ..Config::default()
        };
        insta::assert_snapshot!(text(&agents, &Config::default(), &support));
    }
}
