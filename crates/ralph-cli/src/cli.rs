//! Command-line definitions (CLI.md "Commands").

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
    Prompt(crate::commands::prompt::PromptArgs),
    /// Check what is installed and configured
    Doctor(DoctorArgs),
    /// What runs cost: totals and breakdowns by day, model, run or backend
    Cost(crate::commands::cost::CostArgs),
    /// Check the audit log of security-relevant events
    Audit(crate::commands::audit::AuditArgs),
    /// List a run's checkpoints
    Checkpoints(crate::commands::checkpoints::CheckpointsArgs),
    /// Restore the working tree to a checkpoint (itself undoable)
    Rollback(crate::commands::rollback::RollbackArgs),
    /// Print shell completions
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Backend to configure
    #[arg(short, long, default_value = "claude")]
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
    /// Agent backend: claude, custom, or auto
    #[arg(short, long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Model passed to the agent
    #[arg(short, long, value_name = "NAME")]
    pub model: Option<String>,
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_iterations: Option<u32>,
    /// Total runtime limit, e.g. 4h, 1h30m
    #[arg(long, value_name = "DUR", value_parser = parse_nonzero_duration)]
    pub max_runtime: Option<Duration>,
    /// Kill an iteration that runs longer than this
    #[arg(long, value_name = "DUR", value_parser = parse_nonzero_duration)]
    pub iteration_timeout: Option<Duration>,
    /// Kill an iteration after this long without agent output
    #[arg(long, value_name = "DUR", value_parser = parse_nonzero_duration)]
    pub idle_timeout: Option<Duration>,
    /// Stop when the run has cost this many US dollars
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Stop when the run has used this many tokens
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tokens: Option<u64>,
    /// The line that signals completion
    #[arg(long, value_name = "TEXT")]
    pub completion_marker: Option<String>,
    /// Checkpoint every N iterations (0 = off)
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u32>,
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

#[derive(Debug, Args)]
pub struct StatusArgs {
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
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Config file (default: ./ralph.toml if present)
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
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

fn parse_nonzero_duration(s: &str) -> Result<Duration, String> {
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
        return Err("must be a positive amount of US dollars".into());
    }
    Ok(v)
}
