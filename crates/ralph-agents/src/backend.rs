//! Backends: one per agent CLI, plus `custom` for any command.

use std::path::Path;

use crate::parser::StreamParser;
use crate::registry::BackendDescriptor;
use crate::tools::{ToolAction, ToolTable};

/// How the prompt reaches a custom agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptVia {
    /// Written to the agent's stdin, which is then closed.
    #[default]
    Stdin,
    /// Appended as the last argument.
    Arg,
    /// `{prompt_file}` in the command is replaced by the path of the archived prompt file.
    File,
}

/// Which parser reads the agent's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    ClaudeStreamJson,
    /// Codex `exec --json`.
    CodexJson,
    /// Gemini CLI `--output-format stream-json`.
    GeminiStreamJson,
    /// opencode `run --format json`.
    OpencodeJson,
    /// Copilot CLI `--output-format json` (no usage file through `custom`).
    CopilotJson,
    /// Cursor agent `--output-format stream-json`.
    CursorStreamJson,
}

impl PromptVia {
    /// The config spellings, for error hints.
    pub const NAMES: &'static [&'static str] = &["stdin", "arg", "file"];

    /// Parse the `agent.prompt_via` config value.
    pub fn parse(s: &str) -> Option<PromptVia> {
        match s {
            "stdin" => Some(PromptVia::Stdin),
            "arg" => Some(PromptVia::Arg),
            "file" => Some(PromptVia::File),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PromptVia::Stdin => "stdin",
            PromptVia::Arg => "arg",
            PromptVia::File => "file",
        }
    }
}

impl std::fmt::Display for PromptVia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parse the `agent.output` config value (`text`, `claude-stream-json`, `codex-json`,
/// `gemini-stream-json`, `opencode-json`, `copilot-json`, `cursor-stream-json`).
pub fn parse_output_format(s: &str) -> Option<OutputFormat> {
    OutputFormat::parse(s)
}

impl OutputFormat {
    /// The config spellings of the formats this build can parse, for error hints.
    pub const NAMES: &'static [&'static str] = &[
        "text",
        "claude-stream-json",
        "codex-json",
        "gemini-stream-json",
        "opencode-json",
        "copilot-json",
        "cursor-stream-json",
    ];

    /// Parse the `agent.output` config value; same as [`parse_output_format`].
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s {
            "text" => Some(OutputFormat::Text),
            "claude-stream-json" => Some(OutputFormat::ClaudeStreamJson),
            "codex-json" => Some(OutputFormat::CodexJson),
            "gemini-stream-json" => Some(OutputFormat::GeminiStreamJson),
            "opencode-json" => Some(OutputFormat::OpencodeJson),
            "copilot-json" => Some(OutputFormat::CopilotJson),
            "cursor-stream-json" => Some(OutputFormat::CursorStreamJson),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            OutputFormat::Text => "text",
            OutputFormat::ClaudeStreamJson => "claude-stream-json",
            OutputFormat::CodexJson => "codex-json",
            OutputFormat::GeminiStreamJson => "gemini-stream-json",
            OutputFormat::OpencodeJson => "opencode-json",
            OutputFormat::CopilotJson => "copilot-json",
            OutputFormat::CursorStreamJson => "cursor-stream-json",
        }
    }

    pub fn parser(&self) -> Box<dyn StreamParser> {
        match self {
            OutputFormat::Text => Box::new(crate::parser::TextParser::default()),
            OutputFormat::ClaudeStreamJson => {
                Box::new(crate::claude::ClaudeStreamParser::default())
            }
            OutputFormat::CodexJson => Box::new(crate::codex::CodexJsonParser::default()),
            OutputFormat::GeminiStreamJson => {
                Box::new(crate::gemini::GeminiStreamParser::default())
            }
            OutputFormat::OpencodeJson => Box::new(crate::opencode::OpencodeJsonParser::default()),
            OutputFormat::CopilotJson => Box::new(crate::copilot::CopilotJsonParser::default()),
            OutputFormat::CursorStreamJson => {
                Box::new(crate::cursor::CursorStreamParser::default())
            }
        }
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much the agent may do without asking. Headless agents cannot ask, so `Full` is the
/// default; `AllowList` passes the CLI's own allow-list flag instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PermissionMode {
    #[default]
    Full,
    AllowList(Vec<String>),
    /// The CLI's own sandbox (e.g. Codex `-s workspace-write`), where it has one.
    Sandbox,
}

/// The backend-relevant part of the resolved settings.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Overrides the program name (custom: `argv[0]` comes from `command`).
    pub command: Vec<String>,
    pub prompt_via: PromptVia,
    pub output: OutputFormat,
    pub permission: PermissionMode,
}

/// What the engine needs to build one agent call.
#[derive(Debug, Clone)]
pub struct CommandContext<'a> {
    pub prompt: &'a str,
    /// The archived copy of the prompt (`.ralph/runs/<run>/<NNNN>/prompt.md`).
    pub prompt_path: &'a Path,
    pub model: Option<&'a str>,
    /// `agent.args` and the arguments after `--` on the command line.
    pub extra_args: &'a [String],
    /// ralph runs as root (Claude then needs `IS_SANDBOX=1` for skip-permissions).
    pub is_root: bool,
    /// This call's artifact directory (`.ralph/runs/<run>/<NNNN>/`): for files the agent writes
    /// for ralph, such as Copilot's `--usage-output-file`.
    pub scratch_dir: &'a Path,
}

/// A fully built command line. `stdin` is written to the child and then closed; `None` means
/// stdin is connected to /dev/null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
}

impl CommandSpec {
    /// The command line as a shell would need it typed, for `--dry-run` and error messages.
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (k, v) in &self.env {
            parts.push(format!("{k}={}", shell_quote(v)));
        }
        parts.push(shell_quote(&self.program));
        for a in &self.args {
            parts.push(shell_quote(a));
        }
        parts.join(" ")
    }
}

/// The program: `agent.command[0]` when set, else the CLI's own name.
pub(crate) fn program_or<'a>(config: &'a BackendConfig, default: &'a str) -> &'a str {
    config
        .command
        .first()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .unwrap_or(default)
}

/// `agent.command[1..]`: arguments that come before the backend's own.
pub(crate) fn prefix_args(config: &BackendConfig) -> Vec<String> {
    config.command.iter().skip(1).cloned().collect()
}

/// The model, unless unset or empty.
pub(crate) fn model_of<'a>(ctx: &CommandContext<'a>) -> Option<&'a str> {
    ctx.model.filter(|m| !m.is_empty())
}

/// Quote for POSIX sh only where needed (`--dry-run`, commands rebuilt from argv arrays, the
/// guard's unwrapping of `env -S`).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A shell command prefix an agent CLI should refuse by itself (`rm -rf /`, `git push --force`,
/// `git reset --hard`): see [`Backend::deny_args`]. Defense in depth only: ralph checks every
/// tool use the agent reports as it streams and stops the agent on a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    /// The words a refused command starts with, as typed (`git push --force`).
    pub shell_prefix: String,
}

impl DenyRule {
    pub fn new(shell_prefix: impl Into<String>) -> DenyRule {
        DenyRule {
            shell_prefix: shell_prefix.into(),
        }
    }

    /// The prefix with whitespace collapsed; `None` when empty or when it cannot be written
    /// inside an agent's `Tool(…)` rule syntax (parentheses, commas, line breaks).
    pub(crate) fn clean_prefix(&self) -> Option<String> {
        let p = self
            .shell_prefix
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let unsafe_char = |c: char| matches!(c, '(' | ')' | ',' | '"' | '\\') || c.is_control();
        (!p.is_empty() && !p.chars().any(unsafe_char)).then_some(p)
    }
}

pub trait Backend: Send + Sync {
    /// The backend's registry entry: the static facts about it.
    fn descriptor(&self) -> &'static BackendDescriptor;
    /// The backend's name as used in config (`claude`, `custom`, …).
    fn name(&self) -> &'static str {
        self.descriptor().name
    }
    /// The program that is run; looked up on PATH for detection.
    fn program(&self) -> &str;
    /// Arguments that make the program print its version.
    fn version_args(&self) -> &[&str] {
        &["--version"]
    }
    /// Environment variables that carry credentials for this agent (shown by `ralph doctor`).
    fn auth_env(&self) -> &[&'static str] {
        self.descriptor().auth_env
    }
    /// Build the command for one call.
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec;
    /// A fresh parser for one call's stdout.
    fn parser(&self) -> Box<dyn StreamParser>;
    /// The parser for the call built from `ctx` (a backend whose usage arrives in a file names
    /// it here). The engine calls this one.
    fn parser_for(&self, _ctx: &CommandContext<'_>) -> Box<dyn StreamParser> {
        self.parser()
    }
    /// Whether this backend can run with `mode`; the CLI refuses other modes before starting.
    fn supports_permission(&self, mode: &PermissionMode) -> bool {
        matches!(mode, PermissionMode::Full)
    }
    /// Whether the agent reports token usage at all (if not, ralph says so once and records
    /// usage as unknown).
    fn reports_usage(&self) -> bool {
        true
    }
    /// Whether this backend's output can carry cost or token usage at all: a cost or token
    /// cap is enforceable only then. The built-in backends: [`Backend::reports_usage`]; a
    /// custom command: what its `agent.output` parser reads.
    fn usage_in_output(&self) -> bool {
        self.reports_usage()
    }
    /// The tools this agent reports that run commands or write files.
    fn tools(&self) -> &'static ToolTable {
        &self.descriptor().tools
    }
    /// What a tool use this agent reported does (`name` and `input` of
    /// [`AgentEvent::ToolUse`](crate::AgentEvent::ToolUse)), read with [`Backend::tools`] only:
    /// tools it does not list are [`ToolAction::Other`]. The guard reads every backend's tools
    /// ([`crate::tools::command_any`], [`crate::tools::paths_any`]).
    fn tool_action(&self, name: &str, input_json: &str) -> ToolAction {
        self.tools().action(name, input_json)
    }
    /// Arguments that make the agent refuse `rules` itself, for CLIs that take a deny list on
    /// the command line: Claude (`--disallowedTools "Bash(P) Bash(P *)"`), Copilot
    /// (`--deny-tool shell(P)` for prefixes that are plain command names such as `sudo`, since
    /// Copilot matches command identifiers, not flags). Empty for the others: Gemini 0.61 has no
    /// deny flag (its `tools.exclude` setting and policy files need a settings or `--policy`
    /// file), Codex (execpolicy rule files), opencode (`permission.bash` in its config), Cursor
    /// (`cli-config.json`), Amp (`amp.permissions`), Kiro and custom commands. Defense in depth
    /// only: ralph's own guard checks every tool use as it streams.
    fn deny_args(&self, _rules: &[DenyRule]) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_prompt_via_round_trip() {
        for name in OutputFormat::NAMES {
            assert_eq!(parse_output_format(name).map(|f| f.as_str()), Some(*name));
        }
        for name in PromptVia::NAMES {
            assert_eq!(PromptVia::parse(name).map(|p| p.as_str()), Some(*name));
        }
        assert_eq!(parse_output_format("json"), None);
        assert_eq!(PromptVia::parse("STDIN"), None);
        assert_eq!(
            OutputFormat::ClaudeStreamJson.to_string(),
            "claude-stream-json"
        );
        assert_eq!(PromptVia::File.to_string(), "file");
    }
}
