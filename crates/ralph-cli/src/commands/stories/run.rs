//! `ralph stories run`: the plan parsed and validated, each story's settings resolved from
//! ralph.toml with the plan's `[defaults]` and the story's overrides, then the plan run on one
//! runtime ([`ralph_stories::run_plan`]) with signals forwarded, its events rendered.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;
use ralph_core::settings::GateWhen;
use ralph_core::{Agent, Cancel, Deps, Handles, PromptSource, Settings};
use ralph_stories::{LoopMaker, PlanInput, PlanRunOptions, Story};
use ralph_types::exit_codes;

use super::render::{summary_table, PlanRenderer};
use crate::cli::RunArgs;
use crate::config::ConfigFile;
use crate::error::CliError;
use crate::plan::PlanFile;
use crate::settings::{load_config, resolve};
use crate::{lock, paths};

#[derive(Debug, Args, Default)]
pub struct StoriesRunArgs {
    /// The plan file
    #[arg(
        short = 'f',
        long = "file",
        value_name = "PATH",
        default_value = "stories.toml"
    )]
    pub file: PathBuf,
    /// Config file (default: ./ralph.toml if present)
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Stories at once (default: the number of CPUs, at most 8)
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Run only these stories (and what they depend on)
    #[arg(long, value_name = "ID", num_args = 1..)]
    pub only: Vec<String>,
    /// The integration branch (default: ralph/<plan name>)
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// Start a new plan run even when one is unfinished
    #[arg(long)]
    pub fresh: bool,
    /// Stop the plan run before its agents together spend more (USD)
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Events as JSON lines on stdout
    #[arg(long)]
    pub json: bool,
}

/// Resolves each story's loop: ralph.toml < `[defaults]` < the story's own keys.
struct CliLoops {
    base: ConfigFile,
    plan: Arc<PlanFile>,
    root: PathBuf,
    config: Option<PathBuf>,
}

impl LoopMaker for CliLoops {
    fn story_loop(
        &self,
        story: &Story,
        prompt: String,
        _work_root: &Path,
    ) -> Result<(Settings, Vec<Agent>, Option<ralph_core::Escalation>), String> {
        let (cfg, tier) = routed_config(&self.plan, &self.base, story);
        let args = RunArgs {
            config: self.config.clone(),
            ..RunArgs::default()
        };
        let resolved = resolve(&cfg, &args, &self.root).map_err(|e| e.to_string())?;
        let escalation = match tier {
            Some(from) => Some(self.escalation(&cfg, from, &args)?),
            None => None,
        };
        let mut settings = resolved.settings;
        let layer = self.plan.layer_conf(&self.base, &story.id);
        let mut prompt = prompt;
        if let Some(file) = layer.and_then(|l| l.instructions.as_ref()) {
            // Read at each story's start: an edit applies to the stories that start after it.
            let text = std::fs::read_to_string(self.root.join(file)).map_err(|e| {
                format!(
                    "cannot read the instructions of layer {} ({}): {e}",
                    story.layer.as_str(),
                    file.display()
                )
            })?;
            prompt.push_str(&format!(
                "
Instructions for the {} layer:
{}
",
                story.layer.as_str(),
                text.trim_end()
            ));
        }
        settings.prompt = PromptSource::Text(prompt);
        for g in layer.map(|l| l.gates.as_slice()).unwrap_or(&[]) {
            settings.gates.push(ralph_core::settings::Gate {
                when: ralph_core::settings::GateWhen::Complete,
                ..g.clone()
            });
        }
        for (c, run) in story.auto_criteria() {
            settings.gates.push(ralph_core::settings::Gate {
                name: c.id.clone(),
                run: run.to_string(),
                when: ralph_core::settings::GateWhen::Complete,
                timeout: ralph_core::settings::DEFAULT_GATE_TIMEOUT,
            });
        }
        Ok((settings, resolved.agents, escalation))
    }

    fn resolver_loop(
        &self,
        prompt: String,
        _work_root: &Path,
    ) -> Result<(Settings, Vec<Agent>), String> {
        // The plan's defaults only: "" is no story's id. `[routing]` may give repairs a tier.
        let mut cfg = self.plan.config_for(&self.base, "");
        let repair = crate::routing::Call {
            layer: None,
            complexity: None,
            kind: "repair",
        };
        if let Some(i) = crate::routing::tier_for(&self.base.routing, &repair) {
            crate::routing::apply_tier(&mut cfg, i);
        }
        let args = RunArgs {
            config: self.config.clone(),
            ..RunArgs::default()
        };
        let resolved = resolve(&cfg, &args, &self.root).map_err(|e| e.to_string())?;
        let mut settings = resolved.settings;
        settings.prompt = PromptSource::Text(prompt);
        // Only the merge's checks decide (the queue adds them); the project's own
        // completion gates would run on a tree that is not the project's yet.
        settings.gates.retain(|g| g.when == GateWhen::Iteration);
        Ok((settings, resolved.agents))
    }
}

impl CliLoops {
    /// The tiers above `from`, each resolved like the story's own, to move up through.
    fn escalation(
        &self,
        cfg: &ConfigFile,
        from: usize,
        args: &RunArgs,
    ) -> Result<ralph_core::Escalation, String> {
        let routing = &self.base.routing;
        let mut tiers = Vec::new();
        for i in from + 1..routing.tiers.len() {
            let mut c = cfg.clone();
            crate::routing::apply_tier(&mut c, i);
            let resolved = resolve(&c, args, &self.root).map_err(|e| e.to_string())?;
            tiers.push(ralph_core::Tier {
                name: routing.tiers[i].name.clone(),
                agents: resolved.agents,
            });
        }
        Ok(ralph_core::Escalation {
            plateau_iterations: routing
                .plateau_iterations
                .unwrap_or(crate::routing::DEFAULT_PLATEAU),
            tiers,
        })
    }
}

/// The config story `story` runs with: its plan's, and the tier `[routing]` picks for it
/// (with the tier's index), unless the story or its layer names its own backend or model.
fn routed_config(plan: &PlanFile, base: &ConfigFile, story: &Story) -> (ConfigFile, Option<usize>) {
    let mut cfg = plan.config_for(base, &story.id);
    let own = plan
        .overrides
        .get(&story.id)
        .is_some_and(|o| o.agent.backend.is_some() || o.agent.model.is_some())
        || plan
            .layer_conf(base, &story.id)
            .is_some_and(|l| l.backend.is_some() || l.model.is_some());
    if own {
        return (cfg, None);
    }
    let call = crate::routing::Call {
        layer: Some(story.layer.as_str()),
        complexity: Some(story.complexity()),
        kind: "implementation",
    };
    let tier = crate::routing::tier_for(&base.routing, &call);
    if let Some(i) = tier {
        crate::routing::apply_tier(&mut cfg, i);
    }
    (cfg, tier)
}

pub fn cmd_stories_run(args: StoriesRunArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let plan = crate::plan::load_plan(&args.file)
        .map_err(|e| CliError::preformatted(exit_codes::USAGE, e.to_string()))?;
    let cfg = load_config(args.config.as_deref(), &cwd)?;
    cfg.check_layer_files(&cwd)
        .map_err(|e| CliError::preformatted(exit_codes::USAGE, e.to_string()))?;
    let run_args = RunArgs {
        config: args.config.clone(),
        ..RunArgs::default()
    };
    // The project's own settings: what the merge queue's checks run with. Each story's are
    // resolved now too, so a bad override is a usage error before anything starts.
    let resolved = resolve(&cfg, &run_args, &cwd)?;
    for story in &plan.plan.stories {
        resolve(&routed_config(&plan, &cfg, story).0, &run_args, &cwd)?;
    }
    let Some(repo) = ralph_git::Git::discover(&cwd).ok().flatten() else {
        return Err(CliError::usage(
            format!("{} is not inside a git repository", cwd.display()),
            Some("stories run in git worktrees: `git init` and commit first".into()),
        ));
    };
    ralph_git::check_stories_git().map_err(|e| CliError::usage(e.to_string(), None))?;
    let state_dir = cwd.join(".ralph");
    paths::ensure_state_dir(&state_dir)?;
    let _lock = lock::acquire(&state_dir)?;
    let store = ralph_store::Store::open(&state_dir.join("ralph.db"))?;
    if !args.fresh {
        if let Some(done) = already_merged(&store, &plan.plan.name)? {
            eprintln!("ralph: {done}");
            return Ok(exit_codes::COMPLETED);
        }
    }
    let parallel = args.parallel.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(8)
    });
    let opts = PlanRunOptions {
        parallel: parallel.max(1),
        only: args.only.clone(),
        into: args.into.clone(),
        fresh: args.fresh,
    };
    let plan = Arc::new(plan);
    let input = PlanInput {
        plan: Arc::new(plan.plan.clone()),
        plan_path: args.file.display().to_string(),
        plan_hash: plan.hash.clone(),
        settings: Arc::new(resolved.settings.clone()),
        pre_merge: gates(&resolved.settings, GateWhen::PreMerge),
        pre_story: gates(&resolved.settings, GateWhen::PreStory),
        post_story: gates(&resolved.settings, GateWhen::PostStory),
        maker: Arc::new(CliLoops {
            base: cfg,
            plan: plan.clone(),
            root: cwd.clone(),
            config: args.config.clone(),
        }),
    };
    // One thread per story at once, and one for the rest of the plan: a loop's own git steps
    // (checkpoints, commits) block the thread they run on while git works, and with fewer
    // threads one loop's checkpoint held up another's agent start or the merge queue (the
    // makespan benchmark measured it). Threads waiting on git use no CPU; heavier git work
    // runs on the blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.parallel + 1)
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to start the async runtime: {e}"),
                None,
            )
        })?;
    let json = args.json;
    let max_cost = args.max_cost.or(resolved.settings.limits.max_cost_usd);
    runtime.block_on(async move {
        let cancel = Cancel::new();
        crate::commands::run::spawn_signal_forwarders(cancel.clone())?;
        let mut handles = Handles::new(
            store,
            resolved.settings.ledger.clone(),
            &state_dir,
            Deps::system(),
        );
        if let Some(usd) = max_cost {
            handles.budget = Some(ralph_core::PlanBudget::new(
                ralph_core::PlanCaps {
                    max_cost_usd: Some(usd),
                    max_tokens: None,
                    stop_before_exceeding: true,
                },
                0.0,
                0,
            ));
        }
        // The live line only where someone watches: a terminal that can redraw a line.
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let sink = Arc::new(Mutex::new(PlanRenderer::new(json, tty)));
        let outcome =
            ralph_stories::run_plan(input, opts, repo, handles, cancel, sink.clone()).await;
        ralph_core::orphans::sweep_all();
        let outcome = outcome.map_err(|e| match e {
            ralph_stories::PlanError::Refused { message, hint } => {
                CliError::usage(message, Some(hint))
            }
            ralph_stories::PlanError::Failed(e) => CliError::new(
                exit_codes::INTERNAL_ERROR,
                e,
                Some(
                    "the plan run is kept: fix the cause, then `ralph stories run` resumes it"
                        .into(),
                ),
            ),
        })?;
        summary_table(&outcome);
        Ok(outcome.exit_code)
    })
}

/// The plan's latest plan run merged every story and nothing is unfinished: what to say.
fn already_merged(store: &ralph_store::Store, plan: &str) -> Result<Option<String>, CliError> {
    if store.latest_unfinished_plan_run(plan)?.is_some() {
        return Ok(None);
    }
    let Some(last) = store.latest_plan_run(Some(plan))? else {
        return Ok(None);
    };
    if last.state != ralph_store::RunState::Completed || last.finished_at.is_none() {
        return Ok(None);
    }
    Ok(Some(format!(
        "plan {plan} is already merged into {} (plan run {}); `ralph stories land` brings it \
         onto your branch, `--fresh` runs the plan again",
        last.integration_branch, last.id
    )))
}

/// ralph.toml's gates of one `when`, as the stories mode's checks.
fn gates(settings: &Settings, when: GateWhen) -> Vec<ralph_stories::checks::Check> {
    settings
        .gates
        .iter()
        .filter(|g| g.when == when)
        .map(|g| ralph_stories::checks::Check {
            name: g.name.clone(),
            run: g.run.clone(),
            timeout: g.timeout,
        })
        .collect()
}
