//! One bounded, accounted agent call outside the loop: the loop engine run for exactly one
//! iteration with the given prompt, fresh, without the project's gates. Everything a loop's
//! iteration gets, this call gets too: the sandbox, the guard, checkpoints, the redactor, the
//! budgets and the ledger, and its run in `.ralph/ralph.db` under its own scope (`plan:…`,
//! `skill:…`), which `ralph cost --by story` shows and `ralph run` never resumes.

use std::path::Path;

use ralph_core::{Cancel, Deps, Engine, Handles, Loop, RunScope};
use ralph_types::exit_codes;

use crate::cli::RunArgs;
use crate::config::ConfigFile;
use crate::error::CliError;
use crate::render::Renderer;
use crate::settings::{resolve, Resolved};

/// What a call is: where it runs, under which scope, with what prompt.
pub(crate) struct Call<'a> {
    pub cfg: &'a ConfigFile,
    /// `-b`/`-m` of the command, over ralph.toml.
    pub backend: Option<String>,
    pub model: Option<String>,
    /// The run's scope in the database: `plan:<name>:design`, `skill:<name>`.
    pub scope: String,
    pub prompt: String,
    pub json: bool,
}

/// What the call cost and how it ended.
pub(crate) struct Called {
    pub exit_code: i32,
    pub cost_usd: f64,
    pub tokens: u64,
}

impl Called {
    /// The engine stopped for a reason that ends the command too: a guard, the budget, a
    /// human needed, a signal. An iteration that ran out of iterations (the agent did not claim
    /// completion) is not one: its output is checked like any other.
    pub fn stops(&self) -> bool {
        !matches!(
            self.exit_code,
            exit_codes::COMPLETED | exit_codes::MAX_ITERATIONS | exit_codes::GAVE_UP
        )
    }
}

pub(crate) fn call_once(cwd: &Path, c: Call) -> Result<Called, CliError> {
    // `[routing]` may give planning calls a tier; `-b`/`-m` win over it.
    let mut cfg = c.cfg.clone();
    let planning = crate::routing::Call {
        layer: None,
        complexity: None,
        kind: "planning",
    };
    if c.backend.is_none() && c.model.is_none() {
        if let Some(i) = crate::routing::tier_for(&cfg.routing, &planning) {
            crate::routing::apply_tier(&mut cfg, i);
        }
    }
    let args = RunArgs {
        prompt: Some(c.prompt),
        max_iterations: Some(1),
        backend: c.backend,
        model: c.model,
        fresh: true,
        json: c.json,
        ..RunArgs::default()
    };
    let Resolved {
        mut settings,
        agents,
        ..
    } = resolve(&cfg, &args, cwd)?;
    // The project's gates check the project's work, not a planning call's document.
    settings.gates.clear();
    for agent in &agents {
        super::super::run::check_installed(agent.backend.as_ref())?;
    }
    let state_dir = cwd.join(".ralph");
    let git = ralph_git::Git::discover(cwd).ok().flatten();
    let store = ralph_store::Store::open(&state_dir.join("ralph.db"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to start the async runtime: {e}"),
                None,
            )
        })?;
    let scope = RunScope {
        // Its iteration directory under `.ralph/runs/<run-id>/`, like any run's (`ralph logs`).
        story: Some(c.scope),
        ..RunScope::project(&settings.root)
    };
    runtime.block_on(async move {
        let cancel = Cancel::new();
        super::super::run::spawn_signal_forwarders(cancel.clone())?;
        let renderer = Renderer {
            json: c.json,
            human: true,
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            counting: false,
            colour: crate::style::get().stderr,
        };
        let handles = Handles::new(store, settings.ledger.clone(), &state_dir, Deps::system());
        let lp = Loop {
            scope,
            settings,
            agents,
            git,
            escalation: None,
        };
        let engine = Engine::new(lp, handles, cancel, Box::new(renderer))
            .map_err(|e| CliError::new(e.exit_code(), e.to_string(), None))?;
        let result = engine.run().await;
        ralph_core::orphans::sweep_all();
        let summary = result.map_err(|e| CliError::new(e.exit_code(), e.to_string(), None))?;
        Ok(Called {
            exit_code: summary.exit_code,
            cost_usd: summary.run.cost_usd,
            tokens: summary.run.tokens.total(),
        })
    })
}
