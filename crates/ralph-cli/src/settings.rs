//! Settings resolution: the raw arguments of `ralph run` and the config file (defaults <
//! ralph.toml < flags) resolved once into a [`ralph_core::Settings`] and the agents to run;
//! `run` and `doctor` both start from here.

use std::path::{Path, PathBuf};

use ralph_agents::{builtin_backend, BackendConfig, PermissionMode};
use ralph_core::{Agent, AgentSettings, Limits, PromptSource, RetrySettings, Settings};
use ralph_types::exit_codes;

use crate::cli::RunArgs;
use crate::config::{self, ConfigFile};
use crate::error::CliError;
use crate::paths;

mod sandbox;

pub use sandbox::{sandbox_settings, SandboxSettings};

/// Whether this version can run `name`. The config accepts every documented name, so a config
/// naming a backend this build lacks fails with a clear message rather than a parse error.
pub fn runnable(name: &str) -> bool {
    ralph_agents::backend_names().contains(&name)
}

/// Load the config named by `-c`, or `./ralph.toml` if present.
pub fn load_config(explicit: Option<&Path>, cwd: &Path) -> Result<ConfigFile, CliError> {
    let path = match explicit {
        Some(p) => {
            if !p.exists() {
                return Err(CliError::usage(
                    format!("config file {} does not exist", p.display()),
                    Some("check the path given to -c/--config, or run `ralph init` to create ralph.toml".into()),
                ));
            }
            p.to_path_buf()
        }
        None => {
            let p = PathBuf::from("ralph.toml");
            if !cwd.join(&p).exists() {
                return Ok(ConfigFile::default());
            }
            p
        }
    };
    config::load(&path).map_err(|e| CliError::preformatted(exit_codes::USAGE, e.to_string()))
}

/// Everything `run` and `doctor` need, resolved.
pub struct Resolved {
    pub settings: Settings,
    /// The primary agent, then `agent.fallback` in order.
    pub agents: Vec<Agent>,
    /// `[sandbox]` with `--sandbox`/`--network`: what every agent asks for.
    pub sandbox: ralph_sandbox::Config,
    /// `[sandbox.gates]` over `[sandbox]`, with the same flags: what every gate asks for.
    pub sandbox_gates: ralph_sandbox::Config,
    /// `RALPH_TEST_SANDBOX_LANDLOCK_ABI`, for `ralph_sandbox::probe`.
    pub sandbox_probe: ralph_sandbox::ProbeOverrides,
}

pub fn resolve(cfg: &ConfigFile, args: &RunArgs, cwd: &Path) -> Result<Resolved, CliError> {
    let agent = &cfg.agent;
    let lp = &cfg.loop_;

    let marker = args
        .completion_marker
        .clone()
        .or_else(|| lp.completion_marker.clone())
        .unwrap_or_else(|| "LOOP_COMPLETE".to_string());
    if marker.trim().is_empty() || marker.contains('\n') || marker.trim() != marker {
        return Err(CliError::usage(
            "--completion-marker must be one line of text without surrounding spaces",
            Some("e.g. --completion-marker LOOP_COMPLETE".into()),
        ));
    }

    // Paths in the config file are relative to the project root (the current directory).
    let backend_name = match &args.backend {
        Some(b) => config::normalize_backend(b)
            .map_err(|e| CliError::usage(format!("--backend {b}: {e}"), None))?
            .to_string(),
        None => agent.backend.clone().unwrap_or_else(|| "auto".to_string()),
    };
    let backend_config = BackendConfig {
        command: agent.command.clone().unwrap_or_default(),
        prompt_via: agent.prompt_via.unwrap_or_default(),
        output: agent.output.unwrap_or_default(),
        permission: agent.permissions.clone().unwrap_or(PermissionMode::Full),
    };
    let backend_name = if backend_name == "auto" {
        let priority: Vec<String> = agent.priority.clone().unwrap_or_else(|| {
            config::default_priority()
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        priority
            .iter()
            .filter(|b| runnable(b) && b.as_str() != "custom")
            .find(|b| {
                builtin_backend(b, &backend_config)
                    .is_some_and(|be| paths::find_program(be.program()).is_some())
            })
            .cloned()
            .ok_or_else(|| {
                CliError::new(
                    exit_codes::NEEDS_HUMAN,
                    format!(
                        "no agent CLI found (backend = \"auto\" looked for: {})",
                        priority.join(", ")
                    ),
                    Some("install one (e.g. `npm install -g @anthropic-ai/claude-code`) or set agent.backend; `ralph doctor` shows what is installed".into()),
                )
            })?
    } else {
        backend_name
    };
    if !runnable(&backend_name) {
        return Err(CliError::usage(
            format!("the `{backend_name}` backend is not supported by this version of ralph yet"),
            Some(format!(
                "use one of: {} (or backend = \"custom\" with agent.command)",
                ralph_agents::backend_names().join(", ")
            )),
        ));
    }
    if backend_name == "custom" && backend_config.command.is_empty() {
        return Err(CliError::usage(
            "backend \"custom\" needs agent.command",
            Some("add command = [\"./my-agent\", \"--flag\"] under [agent] in ralph.toml".into()),
        ));
    }
    let model = args.model.clone().or_else(|| agent.model.clone());
    let mut agents = vec![make_agent(&backend_name, model.clone(), &backend_config)?];
    for entry in agent.fallback.iter().flatten() {
        let (name, fallback_model) = match entry.split_once(':') {
            Some((n, m)) => (n, Some(m.to_string())),
            None => (entry.as_str(), None),
        };
        if !runnable(name) {
            return Err(CliError::usage(
                format!("agent.fallback names `{name}`, which this version of ralph cannot run"),
                Some(format!(
                    "use one of: {}",
                    ralph_agents::backend_names().join(", ")
                )),
            ));
        }
        // A fallback shares the primary's permission mode, not its command override or model.
        let config = BackendConfig {
            command: Vec::new(),
            ..backend_config.clone()
        };
        agents.push(make_agent(name, fallback_model, &config)?);
    }

    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(text), _) => PromptSource::Text(text.clone()),
        (None, Some(p)) => PromptSource::File(cwd.join(p)),
        (None, None) => PromptSource::File(
            cwd.join(
                lp.prompt_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("PROMPT.md")),
            ),
        ),
    };

    let defaults = Limits::default();
    let limits = Limits {
        max_iterations: args
            .max_iterations
            .or(lp.max_iterations)
            .unwrap_or(defaults.max_iterations),
        max_runtime: args
            .max_runtime
            .or(lp.max_runtime)
            .unwrap_or(defaults.max_runtime),
        iteration_timeout: args
            .iteration_timeout
            .or(lp.iteration_timeout)
            .unwrap_or(defaults.iteration_timeout),
        idle_timeout: args
            .idle_timeout
            .or(lp.idle_timeout)
            .unwrap_or(defaults.idle_timeout),
        max_cost_usd: args.max_cost.or(cfg.budget.max_cost_usd),
        max_tokens: args.max_tokens.or(cfg.budget.max_tokens),
        max_consecutive_failures: lp
            .max_consecutive_failures
            .unwrap_or(defaults.max_consecutive_failures),
        stop_before_exceeding: cfg
            .budget
            .stop_before_exceeding
            .unwrap_or(defaults.stop_before_exceeding),
        alert_at: cfg.budget.alert_at.clone().unwrap_or(defaults.alert_at),
        daily_usd: cfg.budget.daily_usd,
        monthly_usd: cfg.budget.monthly_usd,
        allow_unenforced: cfg.budget.allow_unenforced.unwrap_or(false),
        iteration_estimate_usd: cfg.budget.iteration_estimate_usd.unwrap_or(0.0),
    };
    let rd = RetrySettings::default();
    let retry = RetrySettings {
        strategy: cfg.retry.strategy.unwrap_or(rd.strategy),
        base_delay: cfg.retry.base_delay.unwrap_or(rd.base_delay),
        max_delay: cfg.retry.max_delay.unwrap_or(rd.max_delay),
    };

    let mut agent_args = agent.args.clone().unwrap_or_default();
    agent_args.extend(args.agent_args.iter().cloned());
    let settings = Settings {
        root: cwd.to_path_buf(),
        agent: AgentSettings {
            backend: backend_name,
            model,
            args: agent_args,
            backend_config,
        },
        limits,
        completion_marker: marker,
        prompt,
        checkpoint_every: args
            .checkpoint_every
            .or(cfg.git.checkpoint_every)
            .unwrap_or(1),
        retry,
        gates: cfg.gates.clone(),
        fresh: args.fresh,
        pricing: price_table(cfg),
        ledger: ledger_path(cfg, cwd),
        notes_max_tokens: cfg.context.notes_max_tokens.unwrap_or(2000),
        summary_model: cfg.context.summary_model.clone(),
        safety: {
            let d = ralph_core::SafetySettings::default();
            let s = &cfg.safety;
            ralph_core::SafetySettings {
                max_files_changed: s.max_files_changed.unwrap_or(d.max_files_changed),
                protected_paths: s.protected_paths.clone().unwrap_or(d.protected_paths),
                blocked_commands: s.blocked_commands.clone().unwrap_or(d.blocked_commands),
                no_progress_iterations: s
                    .no_progress_iterations
                    .unwrap_or(d.no_progress_iterations),
                max_output_bytes: s
                    .max_output_mb
                    .map_or(d.max_output_bytes, |mb| mb.saturating_mul(1024 * 1024)),
            }
        },
        max_untracked_bytes: cfg
            .git
            .max_untracked_mb
            .unwrap_or(10)
            .saturating_mul(1024 * 1024),
        ref_rules: cfg.git.ref_rules.clone(),
        // The values of KEY/TOKEN/SECRET/PASSWORD variables, plus credential patterns.
        redactor: ralph_core::redact::Redactor::new(std::env::vars()),
        sandbox: ralph_core::sandbox::SandboxSettings::default(),
    };
    let sb = sandbox_settings(cfg, args, cwd)?;
    let mut settings = settings;
    settings.sandbox = sandbox::enforce(&sb)?;
    Ok(Resolved {
        settings,
        agents,
        sandbox: sb.agents,
        sandbox_gates: sb.gates,
        sandbox_probe: sb.probe,
    })
}

/// Where this run's machine-wide ledger is: [`paths::ledger_path`] from `budget.ledger` and the
/// environment.
fn ledger_path(cfg: &ConfigFile, cwd: &Path) -> Option<PathBuf> {
    paths::ledger_path(
        cfg.budget.ledger.as_deref(),
        &paths::DataHomeEnv::from_process(),
        cwd,
    )
}

/// The built-in prices with `[pricing."model"]` applied: a table may set only some keys; the
/// rest keep the built-in value (or 0 for a model the table does not know).
fn price_table(cfg: &ConfigFile) -> ralph_agents::PriceTable {
    let mut table = ralph_agents::PriceTable::builtin();
    for (model, conf) in &cfg.pricing {
        let base = table.get(model).copied().unwrap_or_default();
        table.insert(
            model.clone(),
            ralph_agents::Price {
                input: conf.input.unwrap_or(base.input),
                output: conf.output.unwrap_or(base.output),
                cache_read: conf.cache_read.unwrap_or(base.cache_read),
                cache_write: conf.cache_write.unwrap_or(base.cache_write),
                context_window: conf.context_window.or(base.context_window),
            },
        );
    }
    table
}

fn make_agent(
    name: &str,
    model: Option<String>,
    config: &BackendConfig,
) -> Result<Agent, CliError> {
    let backend = builtin_backend(name, config).ok_or_else(|| {
        CliError::new(
            exit_codes::INTERNAL_ERROR,
            format!("backend `{name}` is not built in"),
            None,
        )
    })?;
    if !backend.supports_permission(&config.permission) {
        let mode = match &config.permission {
            PermissionMode::Full => "full",
            PermissionMode::AllowList(_) => "allowlist",
            PermissionMode::Sandbox => "sandbox",
        };
        return Err(CliError::usage(
            format!("the {name} agent has no `{mode}` permission mode"),
            Some(
                "docs/config.md lists the modes each agent supports; or use permissions = \"full\""
                    .into(),
            ),
        ));
    }
    Ok(Agent { backend, model })
}

pub fn read_prompt(source: &PromptSource, cwd: &Path) -> Result<String, CliError> {
    match source {
        PromptSource::Text(t) => Ok(t.clone()),
        PromptSource::File(p) => crate::config::read_prompt_file(p).map_err(|e| {
            let shown = p.strip_prefix(cwd).unwrap_or(p).display().to_string();
            if e.kind() == std::io::ErrorKind::InvalidInput {
                CliError::usage(
                    format!("cannot read the prompt file {shown}: {e}"),
                    Some(format!(
                        "point --prompt-file (or loop.prompt_file) at a regular text file of at                          most {} MiB",
                        ralph_core::bounded::PROMPT_MAX_BYTES / (1024 * 1024)
                    )),
                )
            } else if e.kind() == std::io::ErrorKind::NotFound {
                CliError::usage(
                    format!("prompt file {shown} does not exist"),
                    Some("write your task into it (`ralph init` creates a template), or pass --prompt TEXT / --prompt-file PATH".into()),
                )
            } else {
                CliError::usage(format!("cannot read the prompt file {shown}: {e}"), None)
            }
        }),
    }
}
