//! Kiro CLI (successor of Amazon Q Developer CLI): `kiro-cli chat --no-interactive`, plain
//! ANSI text, prompt on stdin (reference: agent-clis.md §8).

use crate::backend::{model_of, prefix_args, program_or};
use crate::event::{AgentEvent, AgentOutcome, ExitInfo};
use crate::parser::{StreamParser, TextParser};
use crate::registry::{BackendDescriptor, Install};
use crate::retry_after::Clock;
use crate::tools::{ToolSpec, ToolTable, WriteInput};
use crate::{Backend, BackendConfig, CommandContext, CommandSpec, PermissionMode, PromptVia};

/// Kiro's tools that run commands or write files. Its text output reports no tool uses; the
/// names are for its structured (ACP) mode.
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("execute_bash", &["command"], &[]),
        ToolSpec::write("fs_write", WriteInput::path(&["path"])),
    ],
};

/// Registry entry (agent-clis.md §8; install command and state directory from kiro.dev's CLI
/// docs). `q` is the Amazon Q Developer CLI, Kiro CLI's old name. Its AWS endpoints are not
/// documented, so `api_hosts` is empty.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "kiro",
    aliases: &["q"],
    program: "kiro-cli",
    install: Install::Script("curl -fsSL https://cli.kiro.dev/install | bash"),
    auth_env: &["KIRO_API_KEY"],
    api_hosts: &[],
    api_host_setting: None,
    home_state: &[".kiro"],
    state_env: &[],
    prompt: PromptVia::Stdin,
    auto: true,
    output: None,
    tools: TOOLS,
    new: |config| Box::new(KiroBackend::new(config)),
};

/// Kiro: `kiro-cli chat --no-interactive <permissions> [--model MODEL] [ARGS…]`, the prompt on
/// stdin ("prompt may be piped on stdin").
///
/// Permissions: `Full` → `--trust-all-tools`; `AllowList` → `--trust-tools=A,B` (an empty list
/// passes nothing: no tool is trusted beyond the defaults).
#[derive(Debug, Clone)]
pub struct KiroBackend {
    config: BackendConfig,
}

impl KiroBackend {
    pub fn new(config: BackendConfig) -> Self {
        KiroBackend { config }
    }
}

impl Backend for KiroBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        program_or(&self.config, DESCRIPTOR.program)
    }
    fn supports_permission(&self, mode: &PermissionMode) -> bool {
        matches!(mode, PermissionMode::Full | PermissionMode::AllowList(_))
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args = prefix_args(&self.config);
        args.extend(["chat", "--no-interactive"].map(String::from));
        match &self.config.permission {
            PermissionMode::Full => args.push("--trust-all-tools".into()),
            PermissionMode::AllowList(tools) if tools.is_empty() => {}
            PermissionMode::AllowList(tools) => {
                args.push(format!("--trust-tools={}", tools.join(",")));
            }
            // Refused before start (`supports_permission`).
            PermissionMode::Sandbox => {}
        }
        if let Some(model) = model_of(ctx) {
            args.extend(["--model".to_string(), model.to_string()]);
        }
        args.extend(ctx.extra_args.iter().cloned());
        CommandSpec {
            program: self.program().to_string(),
            args,
            env: Vec::new(),
            stdin: Some(ctx.prompt.as_bytes().to_vec()),
        }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(KiroTextParser::default())
    }
    fn parser_for(&self, ctx: &CommandContext<'_>) -> Box<dyn StreamParser> {
        Box::new(KiroTextParser::default().with_model(model_of(ctx)))
    }
    fn reports_usage(&self) -> bool {
        false
    }
}

/// Kiro's output: a terminal transcript. ANSI escape sequences (colours, cursor movement,
/// OSC titles) are removed, a carriage return keeps only what was drawn after it (spinners),
/// and the rest is read like [`TextParser`]: the final answer is the tail of the output; no
/// usage, no cost; a non-zero exit is classified from stderr and the end of stdout.
#[derive(Debug, Default)]
pub struct KiroTextParser {
    inner: TextParser,
    model: Option<String>,
}

impl KiroTextParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(self, clock: Clock) -> Self {
        KiroTextParser {
            inner: self.inner.with_clock(clock),
            model: self.model,
        }
    }

    /// The model the call was started with (Kiro's text names none).
    pub fn with_model(mut self, model: Option<&str>) -> Self {
        self.model = model.map(str::to_string);
        self
    }
}

impl StreamParser for KiroTextParser {
    fn line(&mut self, line: &[u8], truncated: bool, events: &mut Vec<AgentEvent>) {
        let clean = strip_ansi(line);
        self.inner.line(&clean, truncated, events);
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let stderr = String::from_utf8_lossy(&strip_ansi(stderr_tail.as_bytes())).into_owned();
        let mut out = self.inner.finish(exit, &stderr);
        out.model = self.model.clone();
        out
    }
}

/// `line` without ANSI escape sequences and control characters (tabs stay). A carriage return
/// (not at the end) means the terminal redrew the line: only what follows the last one stays.
pub fn strip_ansi(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        match c {
            0x1b => {
                i += 1;
                match line.get(i) {
                    // CSI: ESC [ params… final byte in 0x40..=0x7e.
                    Some(b'[') => {
                        i += 1;
                        while i < line.len() && !(0x40..=0x7e).contains(&line[i]) {
                            i += 1;
                        }
                        i += 1;
                    }
                    // OSC / DCS / APC / PM / SOS: up to BEL or ESC \.
                    Some(b']' | b'P' | b'_' | b'^' | b'X') => {
                        i += 1;
                        while i < line.len() {
                            if line[i] == 0x07 {
                                i += 1;
                                break;
                            }
                            if line[i] == 0x1b && line.get(i + 1) == Some(&b'\\') {
                                i += 2;
                                break;
                            }
                            i += 1;
                        }
                    }
                    // Character set selection: ESC ( B and the like.
                    Some(b'(' | b')' | b'*' | b'+') => i += 2,
                    // Any other two-byte escape.
                    Some(_) => i += 1,
                    None => {}
                }
            }
            b'\r' => {
                if line[i + 1..].iter().any(|b| !b.is_ascii_whitespace()) {
                    out.clear();
                }
                i += 1;
            }
            b'\t' => {
                out.push(c);
                i += 1;
            }
            0x00..=0x1f | 0x7f => i += 1,
            // C1 CSI (0x9b) only where it cannot be part of a UTF-8 sequence is too rare to
            // handle; UTF-8 bytes pass through.
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> String {
        String::from_utf8(strip_ansi(b)).unwrap()
    }

    #[test]
    fn strips_escapes() {
        assert_eq!(s(b"\x1b[38;5;12m> \x1b[0mHello"), "> Hello");
        assert_eq!(s(b"\x1b]0;title\x07done"), "done");
        assert_eq!(s(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link");
        assert_eq!(s(b"\x1b(Bplain\x1b[K"), "plain");
        assert_eq!(s(b"spin \xe2\xa0\x8b\r\x1b[2Kanswer"), "answer");
        assert_eq!(s(b"answer\r"), "answer");
        assert_eq!(s(b"a\tb\x07c\x7f"), "a\tbc");
        assert_eq!(s("héllo ✓".as_bytes()), "héllo ✓");
        assert_eq!(s(b"\x1b"), "");
        assert_eq!(s(b"\x1b["), "");
        assert_eq!(s(b"\x1b]unterminated"), "");
    }
}
