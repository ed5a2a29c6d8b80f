//! `ralph.toml`: typed config file, parsing with precise error locations, the `init` template.
//!
//! The file is parsed with `toml_edit`, which keeps the byte span of every key and value, and
//! then walked by hand rather than through serde. Walking by hand is what lets every check
//! (unknown keys, wrong types, ranges, enum values, durations and rules that involve two keys)
//! point at the exact line and column, name the dotted key and suggest a fix; serde would give
//! either the key path or the span, depending on the error, and would stop at messages we do
//! not control.
//!
//! Everything in [`ConfigFile`] is optional: the CLI fills the gaps from flags and defaults.
//! Values are already validated, so the CLI only has to merge.

mod duration;
pub(crate) mod syntax;
mod template;
pub(crate) mod text;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ralph_agents::{OutputFormat, PermissionMode, PromptVia};
pub use ralph_core::settings::{Gate, GateWhen, RetryStrategy};

pub use duration::{format_duration, parse_duration};
pub use template::{init_template, PROMPT_TEMPLATE};
pub use validate::check_allow_host;

/// Every name `agent.backend` accepts, in the order shown to users: `auto`, then every
/// backend and alias the registry knows (`ralph_agents::all_names_with_aliases`).
pub fn backend_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        std::iter::once("auto")
            .chain(ralph_agents::all_names_with_aliases().iter().copied())
            .collect()
    })
}

/// The default search order of `backend = "auto"` (also what `ralph init` documents).
pub fn default_priority() -> &'static [&'static str] {
    ralph_agents::default_priority()
}

pub use ralph_core::settings::DEFAULT_GATE_TIMEOUT;

/// Check a backend name (from the config or `--backend`) and return its canonical spelling
/// (`q` becomes `kiro`). The error is a short reason with a suggestion, usable in a clap error.
pub fn normalize_backend(name: &str) -> Result<&'static str, String> {
    if name == "auto" {
        return Ok("auto");
    }
    match ralph_agents::resolve_name(name) {
        Some(b) => Ok(b),
        None => {
            let valid = backend_names().join(", ");
            Err(match text::suggest(name, backend_names()) {
                Some(s) => format!("unknown backend; did you mean \"{s}\"? (valid: {valid})"),
                None => format!("unknown backend (valid: {valid})"),
            })
        }
    }
}

/// Typed view of `ralph.toml`. `None` (or an empty list of gates) means "not in the file".
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// `[agent]`
    pub agent: AgentConf,
    /// `[loop]` (`loop` is a Rust keyword, hence the underscore).
    pub loop_: LoopConf,
    /// `[budget]`
    pub budget: BudgetConf,
    /// `[git]`
    pub git: GitConf,
    /// `[retry]`
    pub retry: RetryConf,
    /// `[context]`
    pub context: ContextConf,
    /// `[plan]`
    pub plan: PlanConf,
    /// `[layers.<name>]`, by layer name.
    pub layers: BTreeMap<String, LayerConf>,
    /// `[routing]`
    pub routing: RoutingConf,
    /// `[safety]`
    pub safety: SafetyConf,
    /// `[sandbox]` and `[sandbox.gates]`
    pub sandbox: SandboxConf,
    /// `[pricing."model"]`, by model name as written.
    pub pricing: BTreeMap<String, PriceConf>,
    /// `[[gates]]`, in file order, with `when` and `timeout` defaults already filled in
    /// (there are no flags for gates, so nothing else could fill them).
    pub gates: Vec<Gate>,
    /// The path given to [`parse`] or [`load`]; empty for `ConfigFile::default()`.
    pub file: PathBuf,
    /// Line and column of every value in the file, by dotted key, for [`ConfigFile::error_at`].
    locations: BTreeMap<String, (usize, usize)>,
}

/// `[agent]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentConf {
    /// Canonical backend name: one of [`backend_names`] except `q`, which becomes `kiro`.
    /// Only validated as a name: whether this version can run it is the CLI's call.
    pub backend: Option<String>,
    /// Non-empty when present.
    pub model: Option<String>,
    pub args: Option<Vec<String>>,
    /// Canonical backend names, never `auto`.
    pub priority: Option<Vec<String>>,
    /// Canonical backend names, never `auto`.
    pub fallback: Option<Vec<String>>,
    /// Non-empty, and its first element is non-empty. Required when `backend = "custom"`.
    pub command: Option<Vec<String>>,
    pub prompt_via: Option<PromptVia>,
    pub output: Option<OutputFormat>,
    /// `permissions` and `allowed_tools` together: `Full`, or `AllowList` with at least one
    /// tool. `allowed_tools` without `permissions = "allowlist"` is rejected, because it would
    /// silently leave the agent with every permission.
    pub permissions: Option<PermissionMode>,
}

impl AgentConf {
    /// Run on `backend` with `model`. Another backend than the one configured does not inherit
    /// what belonged to that one: its model, a custom command and its output format, how the
    /// prompt is passed, extra arguments (`[layers.<name>]` and `[routing]` tiers switch so).
    pub fn switch_backend(&mut self, backend: &str, model: Option<String>) {
        if self.backend.as_deref() != Some(backend) {
            self.backend = Some(backend.to_string());
            self.model = None;
            self.command = None;
            self.output = None;
            self.prompt_via = None;
            self.args = None;
        }
        if model.is_some() {
            self.model = model;
        }
    }
}

/// `[loop]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopConf {
    /// Relative paths are relative to the project root (the CLI resolves them).
    pub prompt_file: Option<PathBuf>,
    /// Non-empty, one line, no surrounding whitespace.
    pub completion_marker: Option<String>,
    /// ≥ 1.
    pub max_iterations: Option<u32>,
    /// > 0.
    pub max_runtime: Option<Duration>,
    /// > 0.
    pub iteration_timeout: Option<Duration>,
    /// > 0.
    pub idle_timeout: Option<Duration>,
    /// ≥ 1.
    pub max_consecutive_failures: Option<u32>,
}

/// `[budget]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetConf {
    /// Finite and > 0.
    pub max_cost_usd: Option<f64>,
    /// ≥ 1.
    pub max_tokens: Option<u64>,
    /// Spend caps over all runs on this machine, per local day and month (> 0).
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// Fractions in (0, 1], ascending.
    pub alert_at: Option<Vec<f64>>,
    pub stop_before_exceeding: Option<bool>,
    /// Where the cross-project ledger lives (default: $RALPH_HOME or the XDG data dir).
    pub ledger: Option<PathBuf>,
    /// Run with caps the agent cannot be held to (it reports neither cost nor tokens).
    pub allow_unenforced: Option<bool>,
    /// The least an iteration is expected to cost, for the daily and monthly reservations.
    pub iteration_estimate_usd: Option<f64>,
}

/// One `[pricing."model"]` table: USD per million tokens. Missing keys keep the built-in
/// table's value for that model (or 0 for a model it does not know).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceConf {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub context_window: Option<u64>,
}

/// `[context]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextConf {
    /// ≥ 100.
    pub notes_max_tokens: Option<u64>,
    /// `None` (or "" in the file): the agent's own model.
    pub summary_model: Option<String>,
}

/// `[layers.<name>]`: what every story of the layer runs with, under its own `[story.agent]`.
#[derive(Debug, Clone, Default)]
pub struct LayerConf {
    /// A Markdown file (relative to the project root) added to the story's prompt.
    pub instructions: Option<std::path::PathBuf>,
    pub backend: Option<String>,
    pub model: Option<String>,
    /// Run when the story claims completion, with its criteria.
    pub gates: Vec<ralph_core::settings::Gate>,
}

/// `[routing]`: model tiers by layer, complexity and kind of call; escalation on a plateau.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingConf {
    /// Same failures in a row before a story's loop moves up a tier (default 2).
    pub plateau_iterations: Option<u32>,
    /// The tier of calls no rule matches; `None`: the configured agent.
    pub default_tier: Option<String>,
    /// In escalation order.
    pub tiers: Vec<TierConf>,
    /// The first that matches a call gives its tier.
    pub rules: Vec<RuleConf>,
}

/// `[[routing.tier]]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierConf {
    pub name: String,
    /// `backend` or `backend:model`: the first in use, the rest its fallbacks.
    pub models: Vec<String>,
}

/// `[[routing.rule]]`: every key set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleConf {
    pub layer: Option<String>,
    /// `low`, `medium`, `high`.
    pub complexity: Option<String>,
    /// `implementation`, `repair`, `planning`.
    pub kind: Option<String>,
    pub tier: String,
}

/// `[plan]`: `ralph plan`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanConf {
    /// Attempts per phase (1–20; default 3): a phase's output that does not validate is
    /// sent back with the error this many times at most.
    pub max_attempts: Option<u32>,
    /// The template when `--architecture` is not given (default `layered-4`).
    pub architecture: Option<String>,
    /// Where the design document goes (default `docs/design`): `<dir>/<plan>.md`.
    pub design_dir: Option<std::path::PathBuf>,
}

/// `[git]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GitConf {
    /// 0 turns checkpoints off.
    pub checkpoint_every: Option<u32>,
    /// Outside a git repository: refuse to run (true) rather than run without checkpoints.
    pub require: Option<bool>,
    /// Untracked files larger than this (MiB) are left out of checkpoints.
    pub max_untracked_mb: Option<u64>,
    /// `allow_ref_rewrites`, checked: refs the agent may delete or rewrite.
    pub ref_rules: ralph_git::RefRules,
}

/// `[safety]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafetyConf {
    pub max_files_changed: Option<u32>,
    pub protected_paths: Option<Vec<String>>,
    pub blocked_commands: Option<Vec<String>>,
    pub no_progress_iterations: Option<u32>,
    pub max_output_mb: Option<u64>,
}

/// The keys of `[sandbox]`, and of `[sandbox.gates]` (where each unset key takes
/// `[sandbox]`'s value). Paths are kept as written; the CLI resolves them (`~` is `$HOME`,
/// relative is relative to the project root), because the HOME to use is the CLI's to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxKeys {
    pub mode: Option<ralph_sandbox::Mode>,
    pub required: Option<bool>,
    /// Non-empty, without NUL, neither "/" nor "~" (HOME itself is checked once it is known).
    pub writable: Option<Vec<PathBuf>>,
    pub network: Option<ralph_sandbox::Network>,
    /// Each a host pattern as [`crate::config::check_allow_host`] accepts.
    pub allow_hosts: Option<Vec<String>>,
}

/// `[sandbox]`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxConf {
    /// `[sandbox]`'s own keys: the agents' sandbox.
    pub agents: SandboxKeys,
    /// `[sandbox.gates]`, as written (not yet merged with `agents`).
    pub gates: SandboxKeys,
}

/// `[retry]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryConf {
    pub strategy: Option<RetryStrategy>,
    /// May be zero.
    pub base_delay: Option<Duration>,
    /// ≥ the effective base delay (given or default); checked against defaults too.
    pub max_delay: Option<Duration>,
}

impl ConfigFile {
    /// Where the value of `key` (a dotted path such as `agent.backend` or `gates[0].run`) is in
    /// the file, as 1-based (line, column). `None` if the key is not in the file.
    pub fn location(&self, key: &str) -> Option<(usize, usize)> {
        self.locations.get(key).copied()
    }

    /// Every `[layers.<name>].instructions` file is there, relative to `root` (the project
    /// root): checked before a plan runs, located at the key.
    #[expect(
        clippy::result_large_err,
        reason = "ConfigError's fields are the documented contract; it is returned once"
    )]
    pub fn check_layer_files(&self, root: &std::path::Path) -> Result<(), ConfigError> {
        for (name, l) in &self.layers {
            if let Some(f) = l.instructions.as_ref().filter(|f| !root.join(f).is_file()) {
                return Err(self.error_at(
                    &format!("layers.{name}.instructions"),
                    format!(
                        "\"{}\" is not a file (relative to the project root)",
                        f.display()
                    ),
                    Some("write the instructions file first, or remove the key".into()),
                ));
            }
        }
        Ok(())
    }

    /// An error about a key of this file, in the same format as parse errors, for checks the
    /// CLI makes later (say, `backend = "codex"` is valid but cannot run in this version).
    /// The location is omitted when the key is not in the file.
    pub fn error_at(
        &self,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        let loc = self.location(key);
        ConfigError {
            file: self.file.clone(),
            line: loc.map(|l| l.0),
            column: loc.map(|l| l.1),
            key: Some(key.to_string()),
            message: message.into(),
            hint,
        }
    }
}

/// A problem with the config file. `Display` gives the full user-facing text:
///
/// ```text
/// error: ralph.toml:4:18: `loop.max_iterations`: expected a whole number ≥ 1, found a string "ten"
///   hint: write max_iterations = 10 (no quotes)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// As given by the caller (relative when the user gave a relative path).
    pub file: PathBuf,
    /// 1-based; points at the offending value, or at the key for unknown keys.
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
    /// Dotted path: `loop.max_iterations`, `gates[1].when` (0-based index), `safety`.
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Parse and validate the text of a config file. `file` is only used in errors.
#[expect(
    clippy::result_large_err,
    reason = "the error's fields are the documented contract; it is returned once, on the way out"
)]
pub fn parse(src: &str, file: &Path) -> Result<ConfigFile, ConfigError> {
    // Editors do not show a byte-order mark, so positions are counted without it.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    validate::parse(src, file)
}

/// The prompt file's text: bounded ([`ralph_core::bounded::PROMPT_MAX_BYTES`]), a regular file,
/// UTF-8.
pub fn read_prompt_file(path: &Path) -> std::io::Result<String> {
    let bytes = ralph_core::bounded::read_bounded(path, ralph_core::bounded::PROMPT_MAX_BYTES)?;
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Read and parse a config file. Read failures are `ConfigError`s too (without a location).
#[expect(
    clippy::result_large_err,
    reason = "the error's fields are the documented contract; it is returned once, on the way out"
)]
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let src = read_toml(path, &CONFIG_FILE)?;
    parse(&src, path)
}

/// A TOML file of ralph's, as the errors of reading it name it.
pub(crate) struct TomlFile {
    /// "the config file", "the plan".
    pub the: &'static str,
    /// "config file", "plan file".
    pub noun: &'static str,
    /// "ralph.toml".
    pub name: &'static str,
    /// The flag that names another one: "-c".
    pub flag: &'static str,
    /// What to do when it does not exist.
    pub missing_hint: &'static str,
}

const CONFIG_FILE: TomlFile = TomlFile {
    the: "the config file",
    noun: "config file",
    name: "ralph.toml",
    flag: "-c",
    missing_hint: "run `ralph init` to create ralph.toml, or pass an existing file with -c PATH",
};

/// The text of a TOML file: bounded, a regular file, UTF-8 (the first bad byte located).
#[expect(
    clippy::result_large_err,
    reason = "the error's fields are the documented contract; it is returned once, on the way out"
)]
pub(crate) fn read_toml(path: &Path, kind: &TomlFile) -> Result<String, ConfigError> {
    let file_error = |message: String, hint: String| ConfigError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message,
        hint: Some(hint),
    };
    let TomlFile {
        the,
        noun,
        name,
        flag,
        missing_hint,
    } = kind;
    if path.is_dir() {
        return Err(file_error(
            format!("is a directory, not a {noun}"),
            format!("pass the path of the file itself, e.g. {flag} path/to/{name}"),
        ));
    }
    let bytes = ralph_core::bounded::read_bounded(path, ralph_core::bounded::CONFIG_MAX_BYTES)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => file_error(
                format!("cannot read {the}: {e}"),
                format!("pass the path of a regular {name} (at most 1 MiB)"),
            ),
            std::io::ErrorKind::NotFound => file_error(
                format!("cannot read {the}: it does not exist"),
                missing_hint.to_string(),
            ),
            std::io::ErrorKind::PermissionDenied => file_error(
                format!("cannot read {the}: permission denied"),
                "check the file's permissions (it needs to be readable by you)".into(),
            ),
            _ => file_error(
                format!("cannot read {the}: {e}"),
                "check that the path is a readable file".into(),
            ),
        })?;
    String::from_utf8(bytes).map_err(|e| {
        // Point at the first bad byte: the text before it is valid UTF-8 by definition.
        let good = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or_default();
        let before = String::from_utf8_lossy(good);
        let (line, column) = text::line_col(&before, before.len());
        ConfigError {
            file: path.to_path_buf(),
            line: Some(line),
            column: Some(column),
            key: None,
            message: "the file is not valid UTF-8 text".into(),
            hint: Some(format!("save {name} as UTF-8 (TOML files must be UTF-8)")),
        }
    })
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "test helpers return the parser's Result as it is"
)]
mod tests {
    use super::*;

    fn p(src: &str) -> Result<ConfigFile, ConfigError> {
        parse(src, Path::new("ralph.toml"))
    }

    const FULL: &str = r#"
[agent]
backend = "custom"
model = "claude-sonnet-4-5"
args = ["--verbose"]
priority = ["claude", "q"]
fallback = ["codex"]
command = ["./my-agent", "--flag", "{prompt_file}"]
prompt_via = "file"
output = "claude-stream-json"
permissions = "allowlist"
allowed_tools = ["Read", "Edit", "Bash(git diff *)"]

[loop]
prompt_file = "docs/PROMPT.md"
completion_marker = "ALL_DONE"
max_iterations = 42
max_runtime = "1h30m"
iteration_timeout = "20m"
idle_timeout = "90s"
max_consecutive_failures = 3

[budget]
max_cost_usd = 12.5
max_tokens = 1000000

[git]
checkpoint_every = 0

[retry]
strategy = "linear"
base_delay = "0s"
max_delay = "2m"

[[gates]]
name = "tests"
run = "cargo test"

[[gates]]
name = "lint.clippy-1"
run = "cargo clippy"
when = "iteration"
timeout = "5m"
"#;

    #[test]
    fn full_config_parses_into_typed_values() {
        let c = p(FULL).unwrap();
        assert_eq!(c.agent.backend.as_deref(), Some("custom"));
        assert_eq!(c.agent.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(c.agent.args, Some(vec!["--verbose".to_string()]));
        assert_eq!(
            c.agent.priority,
            Some(vec!["claude".to_string(), "kiro".to_string()])
        );
        assert_eq!(c.agent.fallback, Some(vec!["codex".to_string()]));
        assert_eq!(
            c.agent.command,
            Some(vec![
                "./my-agent".into(),
                "--flag".into(),
                "{prompt_file}".into()
            ])
        );
        assert_eq!(c.agent.prompt_via, Some(PromptVia::File));
        assert_eq!(c.agent.output, Some(OutputFormat::ClaudeStreamJson));
        assert_eq!(
            c.agent.permissions,
            Some(PermissionMode::AllowList(vec![
                "Read".into(),
                "Edit".into(),
                "Bash(git diff *)".into()
            ]))
        );
        assert_eq!(c.loop_.prompt_file, Some(PathBuf::from("docs/PROMPT.md")));
        assert_eq!(c.loop_.completion_marker.as_deref(), Some("ALL_DONE"));
        assert_eq!(c.loop_.max_iterations, Some(42));
        assert_eq!(c.loop_.max_runtime, Some(Duration::from_secs(5400)));
        assert_eq!(c.loop_.iteration_timeout, Some(Duration::from_secs(1200)));
        assert_eq!(c.loop_.idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(c.loop_.max_consecutive_failures, Some(3));
        assert_eq!(c.budget.max_cost_usd, Some(12.5));
        assert_eq!(c.budget.max_tokens, Some(1_000_000));
        assert_eq!(c.git.checkpoint_every, Some(0));
        assert_eq!(c.retry.strategy, Some(RetryStrategy::Linear));
        assert_eq!(c.retry.base_delay, Some(Duration::ZERO));
        assert_eq!(c.retry.max_delay, Some(Duration::from_secs(120)));
        assert_eq!(c.gates.len(), 2);
        assert_eq!(c.gates[0].name, "tests");
        assert_eq!(c.gates[0].run, "cargo test");
        assert_eq!(c.gates[0].when, GateWhen::Complete);
        assert_eq!(c.gates[0].timeout, DEFAULT_GATE_TIMEOUT);
        assert_eq!(c.gates[1].name, "lint.clippy-1");
        assert_eq!(c.gates[1].when, GateWhen::Iteration);
        assert_eq!(c.gates[1].timeout, Duration::from_secs(300));
        assert_eq!(c.file, PathBuf::from("ralph.toml"));
        assert_eq!(c.location("agent.backend"), Some((3, 11)));
        assert_eq!(c.location("gates[1].when"), Some((42, 8)));
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = p("").unwrap();
        assert_eq!(c.agent, AgentConf::default());
        assert_eq!(c.loop_, LoopConf::default());
        assert!(c.gates.is_empty());
        let c = p("# only a comment\n\n[loop]\n").unwrap();
        assert_eq!(c.loop_, LoopConf::default());
    }

    #[test]
    fn other_table_spellings_are_accepted() {
        // Dotted keys, inline tables and an inline array of gates are all plain TOML.
        let c = p(concat!(
            "agent.backend = \"q\"\n",
            "loop = { max_iterations = 7 }\n",
            "gates = [{ name = \"t\", run = \"true\", timeout = \"1m\" }]\n",
        ))
        .unwrap();
        assert_eq!(c.agent.backend.as_deref(), Some("kiro"));
        assert_eq!(c.loop_.max_iterations, Some(7));
        assert_eq!(c.gates[0].timeout, Duration::from_secs(60));
        let c = p("[agent]\npermissions = \"full\"\nallowed_tools = []\n").unwrap();
        assert_eq!(c.agent.permissions, Some(PermissionMode::Full));
        let c = p("[budget]\nmax_cost_usd = 5\n").unwrap();
        assert_eq!(c.budget.max_cost_usd, Some(5.0));
    }

    #[test]
    fn crlf_and_tabs_keep_positions_right() {
        let e = p("[loop]\r\n\tmax_iterations = 0\r\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(19)));
        let e = p("[agent]\r\nbackend = claude\r\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(11)));
        assert_eq!(e.key.as_deref(), Some("agent.backend"));
        assert_eq!(e.hint.as_deref(), Some("write backend = \"claude\""));
    }

    #[test]
    fn bom_is_ignored_for_positions() {
        let e = p("\u{feff}[loop]\nmax_iterations = 0\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(18)));
    }

    #[test]
    fn error_display_format() {
        let e = ConfigError {
            file: "ralph.toml".into(),
            line: Some(4),
            column: Some(18),
            key: Some("loop.max_iterations".into()),
            message: "expected a whole number ≥ 1, found a string \"ten\"".into(),
            hint: Some("write max_iterations = 10 (no quotes)".into()),
        };
        assert_eq!(
            e.to_string(),
            "error: ralph.toml:4:18: `loop.max_iterations`: expected a whole number ≥ 1, \
             found a string \"ten\"\n  hint: write max_iterations = 10 (no quotes)"
        );
        let e = ConfigError {
            line: None,
            column: None,
            key: None,
            hint: None,
            ..e
        };
        assert_eq!(
            e.to_string(),
            "error: ralph.toml: expected a whole number ≥ 1, found a string \"ten\""
        );
    }

    #[test]
    fn the_brief_example_is_reproduced() {
        let e = p("# ralph\n\n[loop]\nmax_iterations = \"ten\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: ralph.toml:4:18: `loop.max_iterations`: expected a whole number ≥ 1, \
             found a string \"ten\"\n  hint: write max_iterations = 10 (no quotes)"
        );
    }

    #[test]
    fn error_at_uses_recorded_locations() {
        let c = p("[agent]\nbackend = \"codex\"\n").unwrap();
        let e = c.error_at("agent.backend", "codex is not supported yet", None);
        assert_eq!((e.line, e.column), (Some(2), Some(11)));
        let e = c.error_at("agent.model", "x", None);
        assert_eq!((e.line, e.column), (None, None));
    }

    #[test]
    fn normalize_backend_names() {
        assert_eq!(normalize_backend("q"), Ok("kiro"));
        assert_eq!(normalize_backend("claude"), Ok("claude"));
        assert!(normalize_backend("cladue")
            .unwrap_err()
            .contains("did you mean \"claude\"?"));
    }

    #[test]
    fn load_reports_file_problems() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
        assert!(e.hint.as_deref().unwrap_or("").contains("ralph init"));
        let e = load(dir.path()).unwrap_err();
        assert!(e.message.contains("directory"), "{e}");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, b"[loop]\nx = \"\xff\"\n").unwrap();
        let e = load(&bad).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(6)));
        let good = dir.path().join("ralph.toml");
        std::fs::write(&good, "[loop]\nmax_iterations = 3\n").unwrap();
        assert_eq!(load(&good).unwrap().loop_.max_iterations, Some(3));
    }

    #[test]
    fn pricing_tables_parse_and_validate() {
        let c = parse(
            "[pricing.\"my/model-1\"]\ninput = 1\noutput = 2.5\ncontext_window = 1000\n\n\
             [pricing.gpt-x]\ncache_read = 0\n",
            Path::new("ralph.toml"),
        )
        .unwrap();
        let p = &c.pricing["my/model-1"];
        assert_eq!(
            (p.input, p.output, p.cache_read, p.context_window),
            (Some(1.0), Some(2.5), None, Some(1000))
        );
        assert_eq!(c.pricing["gpt-x"].cache_read, Some(0.0));
        let e = parse("[pricing.m]\ninput = -1\n", Path::new("ralph.toml")).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.key.as_deref()),
            (Some(2), Some(9), Some("pricing.m.input"))
        );
        let e = parse("[pricing.m]\nimput = 1\n", Path::new("ralph.toml")).unwrap_err();
        assert!(e.to_string().contains("input"), "{e}");
        let e = parse("[pricing]\nm = 3\n", Path::new("ralph.toml")).unwrap_err();
        assert!(e.to_string().contains("expected a table of prices"), "{e}");
        let c = parse(
            "[agent]\npermissions = \"sandbox\"\nfallback = [\"codex:gpt-5.5\", \"q\"]\n",
            Path::new("ralph.toml"),
        )
        .unwrap();
        assert_eq!(c.agent.permissions, Some(PermissionMode::Sandbox));
        assert_eq!(
            c.agent.fallback,
            Some(vec!["codex:gpt-5.5".to_string(), "kiro".to_string()])
        );
        let e = parse(
            "[agent]\nfallback = [\"codex:\"]\n",
            Path::new("ralph.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("names no model"), "{e}");
    }
}
