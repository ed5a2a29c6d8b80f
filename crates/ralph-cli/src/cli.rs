//! Command-line definitions (CLI.md "Commands"): every command, flag and value with its help
//! text, in one place. The commands themselves are in [`crate::commands`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ralph",
    version,
    about = "Run an AI coding agent in a loop until the work is verifiably done",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write ralph.toml and a PROMPT.md template in the current directory
    Init(InitArgs),
    /// Run the loop (resumes an unfinished run unless --fresh)
    Run(Box<RunArgs>),
    /// Show the current or last run
    Status(StatusArgs),
    /// Stop the running loop after the current iteration (--now: kill the agent)
    Stop(StopArgs),
    /// Show iterations, artifacts or events of a run
    Logs(LogsArgs),
    /// Inspect the prompts ralph sent: versions, diffs, overhead
    Prompt(PromptArgs),
    /// Check what is installed and configured
    Doctor(DoctorArgs),
    /// What runs cost: totals and breakdowns by day, model, run or backend
    Cost(CostArgs),
    /// Check the audit log of security-relevant events
    Audit(AuditArgs),
    /// List a run's checkpoints
    Checkpoints(CheckpointsArgs),
    /// Restore the working tree to a checkpoint (itself undoable)
    Rollback(RollbackArgs),
    /// Print shell completions
    Completions(CompletionsArgs),
    /// Print the JSON Schema of ralph.toml or stories.toml
    Schema(SchemaArgs),
    /// Work through a plan of stories (stories.toml)
    Stories(StoriesArgs),
    /// An agent writes the design and the plan of stories from a PRD; ralph validates both
    Plan(Box<crate::commands::plan::PlanArgs>),
    /// The planner's prompts, as editable skill files: list, show, export, run one
    Skills(crate::commands::skills::SkillsArgs),
    /// Architecture templates for `ralph plan`: layers, their order, default edges
    Templates(crate::commands::templates::TemplatesArgs),
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file's schema
    #[arg(value_enum)]
    pub file: SchemaFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaFile {
    /// stories.toml, the plan of `ralph stories`
    Stories,
    /// ralph.toml
    Config,
}

#[derive(Debug, Args)]
pub struct StoriesArgs {
    #[command(subcommand)]
    pub cmd: StoriesCmd,
}

/// `ralph stories …`: one variant per subcommand, each with its own args struct and its own
/// file under `commands/stories/`.
#[derive(Debug, Subcommand)]
pub enum StoriesCmd {
    /// Validate the plan (and ralph.toml with each story's overrides); nothing runs
    Check(StoriesCheckArgs),
    /// Run the plan: stories in parallel worktrees, each merged once verified (resumes an
    /// unfinished plan run unless --fresh)
    Run(Box<crate::commands::stories::run::StoriesRunArgs>),
    /// The latest plan run: each story's state, layer, dependencies, iterations, cost, branch
    Status(crate::commands::stories::status::StoriesStatusArgs),
    /// Run failed, conflicted or blocked stories again (on their branches, with their work)
    Retry(crate::commands::stories::retry::StoriesRetryArgs),
    /// Fast-forward your branch to the integration branch's tip (never anything else)
    Land(crate::commands::stories::land::StoriesLandArgs),
    /// Remove the story worktrees that are provably free of work
    Clean(crate::commands::stories::clean::StoriesCleanArgs),
}

#[derive(Debug, Args)]
pub struct StoriesCheckArgs {
    /// The plan file
    #[arg(short, long, value_name = "PATH", default_value = "stories.toml")]
    pub file: PathBuf,
    /// Config file (default: ./ralph.toml if present)
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Machine-readable output: the plan's name, size, integration branch and order
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(
        short,
        long,
        value_name = "NAME",
        default_value = "claude",
        help = backend_help("Backend to write into ralph.toml")
    )]
    pub backend: String,
    /// Overwrite existing ralph.toml and PROMPT.md
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Config file (default: ./ralph.toml if present)
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Prompt file (default: PROMPT.md)
    #[arg(short = 'P', long, value_name = "PATH")]
    pub prompt_file: Option<PathBuf>,
    /// Prompt text (overrides the prompt file)
    #[arg(short, long, value_name = "TEXT", conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    #[arg(
        short,
        long,
        value_name = "NAME",
        help = backend_help("Agent backend, instead of agent.backend")
    )]
    pub backend: Option<String>,
    /// Model passed to the agent
    #[arg(short, long, value_name = "NAME")]
    pub model: Option<String>,
    /// Stop after this many iterations [default: 100]
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_iterations)]
    pub max_iterations: Option<u32>,
    /// Total runtime limit, e.g. 4h, 1h30m
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = parse_nonzero_duration)]
    pub max_runtime: Option<Duration>,
    /// Kill an iteration that runs longer than this
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = parse_nonzero_duration)]
    pub iteration_timeout: Option<Duration>,
    /// Kill an iteration after this long without agent output
    #[arg(long, value_name = "DUR", allow_hyphen_values = true, value_parser = parse_nonzero_duration)]
    pub idle_timeout: Option<Duration>,
    /// Stop when the run has cost this many US dollars
    #[arg(long, value_name = "USD", allow_hyphen_values = true, value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Stop when the run has used this many tokens
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_tokens)]
    pub max_tokens: Option<u64>,
    /// The line that signals completion
    #[arg(long, value_name = "TEXT")]
    pub completion_marker: Option<String>,
    /// Checkpoint every N iterations (0 = off)
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_every)]
    pub checkpoint_every: Option<u32>,
    /// OS sandbox of agents and gates, instead of sandbox.mode (and sandbox.gates.mode)
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<SandboxFlag>,
    /// Network of sandboxed agents and gates, instead of sandbox.network (and
    /// sandbox.gates.network)
    #[arg(long, value_name = "NET")]
    pub network: Option<NetworkFlag>,
    /// Start a new run even if one is unfinished
    #[arg(long)]
    pub fresh: bool,
    /// Print the prompt and the agent command line; run nothing
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON event per line on stdout; human output goes to stderr
    #[arg(long)]
    pub json: bool,
    /// Extra arguments for the agent
    #[arg(last = true, value_name = "AGENT_ARGS")]
    pub agent_args: Vec<String>,
}

/// `--sandbox`: `ralph_sandbox::Mode` as clap parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxFlag {
    /// Writes only to the project (or story worktree), its temp dir and `writable`
    Workspace,
    /// Workspace, and reads limited to the project, toolchains and system directories
    Strict,
    /// No sandbox
    Off,
}

/// `--network`: `ralph_sandbox::Network` as clap parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkFlag {
    /// As without a sandbox
    On,
    /// Only sandbox.allow_hosts, the backend's API hosts and local model servers
    Allowlist,
    /// Loopback only
    Off,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object (CLI.md "ralph status --json")
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Kill the agent now instead of after the current iteration
    #[arg(long)]
    pub now: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Run id (default: the latest run)
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Show this iteration's prompt, output, stderr and gate logs
    #[arg(long, value_name = "N")]
    pub iteration: Option<u32>,
    /// Keep printing new events until the run finishes
    #[arg(long, short)]
    pub follow: bool,
    /// Print the run's events as JSON lines
    #[arg(long)]
    pub json: bool,
    /// Write the agent's output as it is, escape sequences included (on a terminal they are
    /// shown as `^[` and the like, so they cannot act on it)
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Config file (default: ./ralph.toml if present)
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Only iterations that finished on or after this local date (YYYY-MM-DD) or time (RFC3339)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Group by day, model, run, backend or project [default: run]
    #[arg(long, value_enum, value_name = "KEY")]
    pub by: Option<CostBy>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    /// Every project on this machine (the user-level ledger in $RALPH_HOME), not just this one
    #[arg(long)]
    pub all_projects: bool,
    /// Config file whose budget.ledger locates the ledger (default: ./ralph.toml if present)
    #[arg(short, long, value_name = "PATH", requires = "all_projects")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostBy {
    /// Local date the iteration finished on
    Day,
    /// The model the agent ran
    Model,
    /// Run id
    Run,
    /// Agent backend
    Backend,
    /// Project root (useful with --all-projects)
    Project,
    /// The story whose loop made the call (`ralph stories`); `-` for the single loop
    Story,
}

#[derive(Debug, Args)]
pub struct PromptArgs {
    #[command(subcommand)]
    pub cmd: PromptCmd,
    /// Run id (default: the latest run)
    #[arg(long, global = true, value_name = "ID")]
    pub run: Option<String>,
    /// Machine-readable output
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PromptCmd {
    /// One line per iteration: prompt size, bytes ralph added, user-prompt version
    Log,
    /// Print the prompt sent in iteration N, verbatim
    Show {
        /// Iteration (1-based)
        n: u32,
    },
    /// Unified diff of the prompts of iterations N and M (exit 0 whether or not they differ)
    Diff {
        /// Iteration (1-based)
        n: u32,
        /// Iteration (1-based)
        m: u32,
    },
    /// Bytes and tokens (o200k_base) ralph added, and the prefix shared with the previous prompt
    Stats,
}

#[derive(Debug, Args)]
pub struct CheckpointsArgs {
    /// Run id (default: the latest run)
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Iteration N (0 = before the first iteration), or a checkpoint name such as
    /// rollback-20261121-101500 (or its full ref)
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Run id (default: the latest run)
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Print the files that would be written or deleted; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub cmd: AuditCmd,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the audit log's hash chain and the heads recorded in checkpoint commits
    /// (exit 6 if it was tampered with or truncated)
    Verify {
        /// Print the result as one JSON object
        #[arg(long)]
        json: bool,
    },
}

/// "`what`: claude, codex, …, custom, or auto": the backends this build can run, so the help
/// never lists fewer (or more) than there are.
fn backend_help(what: &str) -> String {
    format!(
        "{what}: {}, or auto (the first installed, in agent.priority order)",
        ralph_agents::backend_names().join(", ")
    )
}

/// A whole number in `min..=max`, said plainly when it is not (a negative or huge value
/// included: clap would read `-1` as a flag, or report only the type's range).
fn whole(s: &str, min: u64, max: u64, example: &str) -> Result<u64, String> {
    let hint = format!("a whole number from {min} to {max}, e.g. {example}");
    let v: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number; give {hint}"))?;
    if v < i128::from(min) || v > i128::from(max) {
        return Err(format!("{s} is out of range; give {hint}"));
    }
    u64::try_from(v).map_err(|_| format!("{s} is out of range; give {hint}"))
}

fn parse_iterations(s: &str) -> Result<u32, String> {
    whole(s, 1, u64::from(u32::MAX), "--max-iterations 50")
        .and_then(|v| u32::try_from(v).map_err(|e| e.to_string()))
}

fn parse_tokens(s: &str) -> Result<u64, String> {
    whole(s, 1, u64::MAX, "--max-tokens 2000000")
}

fn parse_every(s: &str) -> Result<u32, String> {
    whole(
        s,
        0,
        u64::from(u32::MAX),
        "--checkpoint-every 1 (0 turns checkpoints off)",
    )
    .and_then(|v| u32::try_from(v).map_err(|e| e.to_string()))
}

fn parse_nonzero_duration(s: &str) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err(format!(
            "`{s}` is negative; give a duration greater than zero, e.g. 30m, 4h, 1h30m"
        ));
    }
    let d = crate::config::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

fn parse_usd(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("`{s}` is not an amount of US dollars (e.g. 2.50)"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!(
            "{s} is not a positive amount; give the most the run may cost in US dollars, e.g. \
             --max-cost 2.50"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every subcommand and argument without help, and every value of an argument whose other
    /// values have help, with its path.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() {
                out.push(format!("{path} {id}"));
            }
            // Values are explained all or none (clap lists them either way).
            let values = arg.get_possible_values();
            if arg.get_action().takes_values() && values.iter().any(|v| v.get_help().is_some()) {
                for value in values.iter().filter(|v| v.get_help().is_none()) {
                    out.push(format!("{path} {id}={}", value.get_name()));
                }
            }
        }
        for sub in cmd.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_name() != "help" {
                out.push(sub_path.clone());
            }
            undocumented(sub, &sub_path, out);
        }
    }

    #[test]
    fn every_command_flag_and_value_has_help() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "ralph", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
