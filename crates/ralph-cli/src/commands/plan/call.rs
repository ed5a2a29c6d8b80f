//! One bounded, accounted agent call outside the loop: the loop engine run for exactly one
//! iteration with the given prompt, fresh, without the project's gates. Everything a loop's
//! iteration gets, this call gets too: the sandbox, the guard, checkpoints, the redactor, the
//! budgets and the ledger, and its run in `.ralph/ralph.db` under its own scope (`plan:…`,
//! `skill:…`), which `ralph cost --by story` shows and `ralph run` never resumes.

use std::path::{Path, PathBuf};

use ralph_core::{Loop, RunScope};
use ralph_types::exit_codes;

use crate::cli::RunArgs;
use crate::config::ConfigFile;
use crate::error::CliError;
use crate::settings::{resolve, Resolved};

/// The flags of a command that makes such calls (`ralph plan`, `ralph skills run`).
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// Config file (default: ./ralph.toml if present)
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Agent backend, instead of agent.backend
    #[arg(short, long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Model passed to the agent
    #[arg(short, long, value_name = "NAME")]
    pub model: Option<String>,
}

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
    let git = ralph_git::Git::discover(cwd).ok().flatten();
    let lp = Loop {
        // Its iteration directory under `.ralph/runs/<run-id>/`, like any run's (`ralph logs`).
        scope: RunScope {
            story: Some(c.scope),
            ..RunScope::project(&settings.root)
        },
        settings,
        agents,
        git,
        escalation: None,
    };
    let state_dir = cwd.join(".ralph");
    let store = ralph_store::Store::open(&state_dir.join("ralph.db"))?;
    let summary = super::super::run::run_loop(lp, store, &state_dir, c.json)?;
    Ok(Called {
        exit_code: summary.exit_code,
        cost_usd: summary.run.cost_usd,
        tokens: summary.run.tokens.total(),
    })
}
