//! Resolved settings: what the engine runs with. Built by `ralph-cli` from defaults, `ralph.toml`
//! and flags; the engine never reads files, environment or flags itself.

use std::path::PathBuf;
use std::time::Duration;

use ralph_agents::BackendConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Project root: where the agent runs, where `.ralph/` lives.
    pub root: PathBuf,
    pub agent: AgentSettings,
    pub limits: Limits,
    pub completion_marker: String,
    /// Where the prompt comes from.
    pub prompt: PromptSource,
    pub checkpoint_every: u32,
    pub retry: RetrySettings,
    pub gates: Vec<Gate>,
    /// Start a new run even if an unfinished one exists.
    pub fresh: bool,
    /// Prices for agents that report tokens but no cost (built in, overridden by `[pricing]`).
    pub pricing: ralph_agents::PriceTable,
    /// The machine-wide cost ledger (for daily and monthly budgets), if one can be located.
    pub ledger: Option<PathBuf>,
    /// Past this many (estimated) tokens the notes on earlier iterations are summarised.
    pub notes_max_tokens: u64,
    /// Model for that summary (default: the agent's own).
    pub summary_model: Option<String>,
    pub safety: SafetySettings,
    /// Untracked files larger than this are left out of checkpoints.
    pub max_untracked_bytes: u64,
    /// Refs the agent may delete or rewrite (`[git] allow_ref_rewrites`); every other ref is
    /// put back after each iteration.
    pub ref_rules: ralph_git::RefRules,
    /// Applied on every sink: artifacts, database, events, terminal, audit log.
    pub redactor: crate::redact::Redactor,
    /// What the OS sandbox enforces on agents and gates (`[sandbox]`).
    pub sandbox: crate::sandbox::SandboxSettings,
}

/// Guardrails enforced by ralph (`[safety]`).
#[derive(Debug, Clone)]
pub struct SafetySettings {
    pub max_files_changed: u32,
    pub protected_paths: Vec<String>,
    /// User patterns added to the built-in blocked commands.
    pub blocked_commands: Vec<String>,
    pub no_progress_iterations: u32,
    pub max_output_bytes: u64,
}

impl Default for SafetySettings {
    fn default() -> Self {
        SafetySettings {
            max_files_changed: 200,
            protected_paths: vec![".git/**".into(), ".ralph/**".into(), "ralph.toml".into()],
            blocked_commands: Vec::new(),
            no_progress_iterations: 3,
            max_output_bytes: 100 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// A concrete backend name (`auto` is resolved by the CLI before the engine starts).
    pub backend: String,
    pub model: Option<String>,
    /// `agent.args` followed by the arguments after `--`.
    pub args: Vec<String>,
    pub backend_config: BackendConfig,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_iterations: u32,
    pub max_runtime: Duration,
    pub iteration_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_cost_usd: Option<f64>,
    pub max_tokens: Option<u64>,
    pub max_consecutive_failures: u32,
    /// Stop before an iteration when the spend so far plus the most expensive iteration so far
    /// would pass a cap (`budget.stop_before_exceeding`); otherwise a cap stops the run after
    /// the iteration that crossed it.
    pub stop_before_exceeding: bool,
    /// Fractions of a cap at which a `budget.alert` is raised (`budget.alert_at`).
    pub alert_at: Vec<f64>,
    /// Spend caps over all runs on this machine, per local day and month.
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// Accept cost and token caps an agent cannot be held to (it reports neither), with a
    /// warning, instead of refusing to start (`budget.allow_unenforced`).
    pub allow_unenforced: bool,
    /// The least an iteration is expected to cost when it reserves its share of the daily and
    /// monthly caps in the ledger (`budget.iteration_estimate_usd`; 0: recent iterations only).
    pub iteration_estimate_usd: f64,
}

#[derive(Debug, Clone)]
pub enum PromptSource {
    /// Read each iteration, so edits during a run take effect.
    File(PathBuf),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryStrategy {
    Immediate,
    Linear,
    Exponential,
}

#[derive(Debug, Clone)]
pub struct RetrySettings {
    pub strategy: RetryStrategy,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateWhen {
    /// Only when the agent claims completion.
    Complete,
    /// After every iteration.
    Iteration,
    /// Stories mode: in a story's fresh worktree, before its agent first runs (dependencies
    /// install, the base is green). Not run by the single loop.
    PreStory,
    /// Stories mode: when a story's agent claims completion, with its `auto` criteria. Not run
    /// by the single loop.
    PostStory,
    /// Stories mode: on every merge candidate, before the integration branch may move to it.
    /// Not run by the single loop.
    PreMerge,
}

impl GateWhen {
    /// Whether the loop runs it when the agent claims completion (`story`: a story's loop).
    pub fn on_completion(self, story: bool) -> bool {
        self == GateWhen::Complete || (story && self == GateWhen::PostStory)
    }
}

/// A gate's timeout when it sets none; also a story criterion's (criteria have no timeout
/// key).
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone)]
pub struct Gate {
    pub name: String,
    /// Run with `sh -c` in the project root.
    pub run: String,
    pub when: GateWhen,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_iterations: 100,
            max_runtime: Duration::from_secs(4 * 3600),
            iteration_timeout: Duration::from_secs(30 * 60),
            idle_timeout: Duration::from_secs(10 * 60),
            max_cost_usd: None,
            max_tokens: None,
            max_consecutive_failures: 5,
            stop_before_exceeding: true,
            alert_at: vec![0.5, 0.8, 1.0],
            daily_usd: None,
            monthly_usd: None,
            allow_unenforced: false,
            iteration_estimate_usd: 0.0,
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            strategy: RetryStrategy::Exponential,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(600),
        }
    }
}

impl Settings {
    /// Settings with every default of `ralph.toml` (the ones `ralph init` documents), for a
    /// project at `root` running `agent` on `prompt`; secrets are not redacted (give a
    /// `Redactor` built from the environment for that). Tests and benchmarks start here.
    pub fn new(root: PathBuf, agent: AgentSettings, prompt: PromptSource) -> Settings {
        Settings {
            root,
            agent,
            limits: Limits::default(),
            completion_marker: "LOOP_COMPLETE".into(),
            prompt,
            checkpoint_every: 1,
            retry: RetrySettings::default(),
            gates: Vec::new(),
            fresh: false,
            pricing: ralph_agents::PriceTable::builtin(),
            ledger: None,
            notes_max_tokens: 2000,
            summary_model: None,
            safety: SafetySettings::default(),
            max_untracked_bytes: 10 * 1024 * 1024,
            ref_rules: ralph_git::RefRules::default(),
            redactor: crate::redact::Redactor::new(std::iter::empty::<(String, String)>()),
            sandbox: crate::sandbox::SandboxSettings::default(),
        }
    }
}

/// Settings for unit tests: a project at `/nonexistent`, a text prompt, defaults elsewhere.
#[cfg(test)]
pub(crate) fn test_settings() -> Settings {
    let agent = AgentSettings {
        backend: "custom".into(),
        model: None,
        args: Vec::new(),
        backend_config: BackendConfig::default(),
    };
    Settings::new(
        PathBuf::from("/nonexistent"),
        agent,
        PromptSource::Text("do it".into()),
    )
}
