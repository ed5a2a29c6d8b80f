//! Backends: one per agent CLI, plus `custom` for any command.

use std::path::Path;

use crate::parser::StreamParser;

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
}

impl OutputFormat {
    pub fn parser(&self) -> Box<dyn StreamParser> {
        match self {
            OutputFormat::Text => Box::new(crate::parser::TextParser::default()),
            OutputFormat::ClaudeStreamJson => Box::new(crate::parser::ClaudeStreamParser::default()),
        }
    }
}

/// How much the agent may do without asking. Headless agents cannot ask, so `Full` is the
/// default; `AllowList` passes the CLI's own allow-list flag instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PermissionMode {
    #[default]
    Full,
    AllowList(Vec<String>),
}

/// The backend-relevant part of the resolved settings.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Overrides the program name (custom: argv[0] comes from `command`).
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

/// Quote for POSIX sh only where needed.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub trait Backend: Send + Sync {
    /// The backend's name as used in config (`claude`, `custom`, …).
    fn name(&self) -> &'static str;
    /// The program that is run; looked up on PATH for detection.
    fn program(&self) -> &str;
    /// Arguments that make the program print its version.
    fn version_args(&self) -> &[&str] {
        &["--version"]
    }
    /// Environment variables that carry credentials for this agent (shown by `ralph doctor`).
    fn auth_env(&self) -> &[&'static str] {
        &[]
    }
    /// Build the command for one call.
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec;
    /// A fresh parser for one call's stdout.
    fn parser(&self) -> Box<dyn StreamParser>;
}

/// Names accepted by `agent.backend` (besides `auto`), in default priority order.
pub fn backend_names() -> &'static [&'static str] {
    &["claude", "custom"]
}

/// Build a backend by name. `None` for an unknown name.
pub fn builtin_backend(name: &str, config: &BackendConfig) -> Option<Box<dyn Backend>> {
    match name {
        "claude" => Some(Box::new(ClaudeBackend::new(config.clone()))),
        "custom" => Some(Box::new(CustomBackend::new(config.clone()))),
        _ => None,
    }
}

/// Claude Code: `claude -p --output-format stream-json --verbose`, prompt on stdin.
#[derive(Debug, Clone)]
pub struct ClaudeBackend {
    config: BackendConfig,
}

impl ClaudeBackend {
    pub fn new(config: BackendConfig) -> Self {
        ClaudeBackend { config }
    }
}

/// Any command; argv from `agent.command`.
#[derive(Debug, Clone)]
pub struct CustomBackend {
    config: BackendConfig,
}

impl CustomBackend {
    pub fn new(config: BackendConfig) -> Self {
        CustomBackend { config }
    }
}

impl Backend for ClaudeBackend {
    fn name(&self) -> &'static str {
        "claude"
    }
    fn program(&self) -> &str {
        "claude"
    }
    fn command(&self, _ctx: &CommandContext<'_>) -> CommandSpec {
        let _ = &self.config;
        CommandSpec { program: "claude".into(), args: vec![], env: vec![], stdin: None }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        OutputFormat::ClaudeStreamJson.parser()
    }
}

impl Backend for CustomBackend {
    fn name(&self) -> &'static str {
        "custom"
    }
    fn program(&self) -> &str {
        self.config.command.first().map(String::as_str).unwrap_or("")
    }
    fn command(&self, _ctx: &CommandContext<'_>) -> CommandSpec {
        CommandSpec { program: self.program().into(), args: vec![], env: vec![], stdin: None }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        self.config.output.parser()
    }
}
