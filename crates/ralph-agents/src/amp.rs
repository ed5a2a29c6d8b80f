//! Amp: `amp -x --stream-json`, prompt on stdin (reference: agent-clis.md §7).

use crate::backend::{prefix_args, program_or};
use crate::claude::ClaudeStreamParser;
use crate::event::{AgentEvent, AgentOutcome, CostSource, ExitInfo};
use crate::parser::StreamParser;
use crate::registry::{BackendDescriptor, Install};
use crate::retry_after::Clock;
use crate::tools::{ToolSpec, ToolTable, WriteInput};
use crate::{Backend, BackendConfig, CommandContext, CommandSpec, PromptVia};

/// Amp's tools that run commands or write files (its Bash takes `cmd` and `cwd`).
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("Bash", &["cmd", "command"], &["cwd"]),
        ToolSpec::write("edit_file", WriteInput::path(&["path"])),
        ToolSpec::write("create_file", WriteInput::path(&["path"])),
    ],
};

/// Registry entry (agent-clis.md §7). All inference goes through ampcode.com. The latest
/// `@ampcode/cli` may lack a matching native package (`Amp native binary not installed`); a
/// pinned pair of versions installs. Its output is Claude's format (`claude-stream-json` for a
/// `custom` command), so it has no format of its own.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "amp",
    aliases: &[],
    program: "amp",
    install: Install::Npm("@ampcode/cli"),
    auth_env: &["AMP_API_KEY"],
    api_hosts: &["ampcode.com"],
    api_host_setting: Some("AMP_URL"),
    home_state: &[".config/amp", ".local/share/amp"],
    state_env: &[],
    prompt: PromptVia::Stdin,
    auto: true,
    output: None,
    tools: TOOLS,
    new: |config| Box::new(AmpBackend::new(config)),
};

/// Amp: `amp -x --stream-json --dangerously-allow-all --no-ide --no-notifications [ARGS…]`, the
/// prompt on stdin (execute mode reads it when no message follows `-x`).
///
/// Amp picks its model itself (it has modes, not a model flag), so `agent.model` is not
/// passed. Only full permissions (`--dangerously-allow-all`); finer rules live in Amp's
/// settings (`amp.permissions`).
#[derive(Debug, Clone)]
pub struct AmpBackend {
    config: BackendConfig,
}

impl AmpBackend {
    pub fn new(config: BackendConfig) -> Self {
        AmpBackend { config }
    }
}

impl Backend for AmpBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        program_or(&self.config, DESCRIPTOR.program)
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args = prefix_args(&self.config);
        args.extend(
            [
                "-x",
                "--stream-json",
                "--dangerously-allow-all",
                "--no-ide",
                "--no-notifications",
            ]
            .map(String::from),
        );
        args.extend(ctx.extra_args.iter().cloned());
        CommandSpec {
            program: self.program().to_string(),
            args,
            env: Vec::new(),
            stdin: Some(ctx.prompt.as_bytes().to_vec()),
        }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(AmpStreamParser::default())
    }
    fn reports_usage(&self) -> bool {
        false
    }
}

/// Amp `--stream-json`: Claude Code's format, read by [`ClaudeStreamParser`]; usage and cost
/// are recorded as unknown (Amp's `result` carries neither, and per-message usage does not add
/// up to what Amp bills).
#[derive(Debug, Default)]
pub struct AmpStreamParser {
    inner: ClaudeStreamParser,
}

impl AmpStreamParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(self, clock: Clock) -> Self {
        AmpStreamParser {
            inner: self.inner.with_clock(clock),
        }
    }
}

impl StreamParser for AmpStreamParser {
    fn line(&mut self, line: &[u8], truncated: bool, events: &mut Vec<AgentEvent>) {
        self.inner.line(line, truncated, events);
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let mut out = self.inner.finish(exit, stderr_tail);
        out.usage = None;
        out.cost_usd = None;
        out.cost_source = CostSource::Unknown;
        out
    }
}
