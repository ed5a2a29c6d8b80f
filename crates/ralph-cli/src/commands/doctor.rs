//! `ralph doctor`: what is installed and configured, and what is not; exits with the code a
//! `ralph run` would fail with (2 for a bad config or prompt, 8 for a missing agent).

use std::io::Write;
use std::path::Path;

use ralph_types::exit_codes;

use super::open_store;
use crate::cli::{DoctorArgs, RunArgs};
use crate::error::CliError;
use crate::paths;
use crate::settings::{load_config, read_prompt, resolve, runnable};
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
    if let Some(cfg) = &cfg {
        match resolve(cfg, &RunArgs::default(), &cwd) {
            Ok(r) => {
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
                let _ = writeln!(out, "selected   {}", e.message);
                if code == exit_codes::SUCCESS {
                    code = e.code;
                }
            }
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
