//! Cursor agent: `cursor-agent -p --output-format stream-json`, prompt as the last argument
//! (reference: agent-clis.md §8).

use serde_json::Value;

use crate::backend::{model_of, prefix_args, program_or};
use crate::classify::classify_text;
use crate::event::{AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, FINAL_TEXT_MAX};
use crate::parser::{
    failure_without_result, one_line, retry_hint, str_field, tail_str, Counts, StreamParser,
    TailBuf,
};
use crate::registry::{BackendDescriptor, Install};
use crate::retry_after::Clock;
use crate::tools::{ToolSpec, ToolTable, WriteInput};
use crate::{Backend, BackendConfig, CommandContext, CommandSpec, OutputFormat, PromptVia};

/// Cursor agent's tools as its parser names them (`shellToolCall` → `shell`), and the raw
/// `shellToolCall` with its `args`.
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("shell", &["command"], &["workingDirectory"]),
        ToolSpec::shell("shellToolCall", &["command"], &["workingDirectory"]),
        ToolSpec::write("write", WriteInput::path(&["path"])),
        ToolSpec::write("edit", WriteInput::path(&["path"])),
        ToolSpec::write("delete", WriteInput::path(&["path"])),
    ],
};

/// Registry entry (agent-clis.md §8; install command, hosts and state directories from Cursor's
/// CLI and network documentation, not measured: its backend is closed).
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "cursor",
    aliases: &[],
    program: "cursor-agent",
    install: Install::Script("curl https://cursor.com/install -fsS | bash"),
    auth_env: &["CURSOR_API_KEY"],
    api_hosts: &["*.cursor.sh"],
    api_host_setting: None,
    home_state: &[".cursor", ".local/share/cursor-agent"],
    state_env: &[],
    prompt: PromptVia::Arg,
    auto: true,
    output: Some(OutputFormat::CursorStreamJson),
    tools: TOOLS,
    new: |config| Box::new(CursorBackend::new(config)),
};

/// Cursor agent: `cursor-agent -p --output-format stream-json --force [--model MODEL] [ARGS…]
/// -- PROMPT`. Cursor documents no way to read the prompt from stdin, so it is the last
/// argument, after `--` so that a prompt starting with `-` (YAML front matter: `---`) is not
/// taken for an option.
///
/// Only full permissions (`--force`: run commands unless explicitly denied); finer rules live
/// in Cursor's `cli-config.json`.
#[derive(Debug, Clone)]
pub struct CursorBackend {
    config: BackendConfig,
}

impl CursorBackend {
    pub fn new(config: BackendConfig) -> Self {
        CursorBackend { config }
    }
}

impl Backend for CursorBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        program_or(&self.config, DESCRIPTOR.program)
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args = prefix_args(&self.config);
        args.extend(["-p", "--output-format", "stream-json", "--force"].map(String::from));
        if let Some(model) = model_of(ctx) {
            args.extend(["--model".to_string(), model.to_string()]);
        }
        args.extend(ctx.extra_args.iter().cloned());
        args.push("--".into());
        args.push(ctx.prompt.to_string());
        CommandSpec {
            program: self.program().to_string(),
            args,
            env: Vec::new(),
            stdin: None,
        }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(CursorStreamParser::default())
    }
    fn parser_for(&self, ctx: &CommandContext<'_>) -> Box<dyn StreamParser> {
        Box::new(CursorStreamParser::default().with_model(model_of(ctx)))
    }
    fn reports_usage(&self) -> bool {
        false
    }
}

/// Cursor agent `--output-format stream-json`.
///
/// - Final answer: `result.result`; without a result line, the last assistant message.
/// - Tools: `tool_call` `started`/`completed` events (`{"shellToolCall": {"args", "result"}}`);
///   a result of `rejected`/`permissionDenied` counts as a permission denial.
/// - No usage, no cost.
/// - Errors: `result.is_error`, or (no result line) a non-zero exit with the message on stderr.
#[derive(Debug, Default)]
pub struct CursorStreamParser {
    counts: Counts,
    clock: Clock,
    model: Option<String>,
    init_model: Option<String>,
    last_text: TailBuf,
    result: Option<(bool, Option<String>, String)>,
    denials: u32,
    stray: Option<String>,
}

impl CursorStreamParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The model the call was started with, used when the stream does not name one.
    pub fn with_model(mut self, model: Option<&str>) -> Self {
        self.model = model.map(str::to_string);
        self
    }

    fn handle(&mut self, v: &Value, events: &mut Vec<AgentEvent>) -> bool {
        match str_field(v, "type") {
            Some("system") => {
                if str_field(v, "subtype") == Some("init") {
                    let model = str_field(v, "model").map(str::to_string);
                    if model.is_some() {
                        self.init_model.clone_from(&model);
                    }
                    events.push(AgentEvent::Init { model });
                } else {
                    events.push(AgentEvent::Other);
                }
            }
            Some("user" | "thinking") => events.push(AgentEvent::Other),
            Some("assistant") => {
                let Some(content) = v
                    .get("message")
                    .and_then(|m| m.get("content"))
                    .and_then(Value::as_array)
                else {
                    return false;
                };
                let text: Vec<&str> = content
                    .iter()
                    .filter(|b| str_field(b, "type") == Some("text"))
                    .filter_map(|b| str_field(b, "text"))
                    .collect();
                if text.is_empty() {
                    events.push(AgentEvent::Other);
                } else {
                    let text = text.concat();
                    self.last_text.clear();
                    self.last_text.push(&text);
                    events.push(AgentEvent::Text { text });
                }
            }
            Some("tool_call") => {
                let Some(call) = v.get("tool_call").and_then(Value::as_object) else {
                    return false;
                };
                let Some((key, body)) = call.iter().next() else {
                    return false;
                };
                let name = key.strip_suffix("ToolCall").unwrap_or(key).to_string();
                match str_field(v, "subtype") {
                    Some("started") => events.push(AgentEvent::ToolUse {
                        name,
                        input: crate::parser::compact(body.get("args")),
                    }),
                    Some("completed") => {
                        let result = body.get("result").and_then(Value::as_object);
                        let ok = result.is_some_and(|r| r.contains_key("success"));
                        let refused = result.is_some_and(|r| {
                            r.contains_key("rejected") || r.contains_key("permissionDenied")
                        });
                        if refused {
                            self.denials = self.denials.saturating_add(1);
                        }
                        events.push(AgentEvent::ToolResult { is_error: !ok });
                    }
                    _ => events.push(AgentEvent::Other),
                }
            }
            Some("result") => {
                let subtype = str_field(v, "subtype").unwrap_or("").to_string();
                let is_error = v
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or_else(|| subtype.starts_with("error"));
                let text = str_field(v, "result").map(|t| tail_str(t, FINAL_TEXT_MAX).to_string());
                events.push(AgentEvent::Result { is_error });
                self.result = Some((is_error, text, subtype));
            }
            _ => return false,
        }
        true
    }
}

impl StreamParser for CursorStreamParser {
    fn line(&mut self, line: &[u8], _truncated: bool, events: &mut Vec<AgentEvent>) {
        if let Some(v) = self.counts.next_json(line, &mut self.stray, events) {
            if !self.handle(&v, events) {
                self.counts.unknown(events);
            }
        }
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let mut out = self.counts.outcome();
        out.model = self.init_model.clone().or_else(|| self.model.clone());
        out.cost_source = CostSource::Unknown;
        out.permission_denials = self.denials;
        let mut texts: Vec<String> = Vec::new();
        match self.result.take() {
            Some((is_error, text, subtype)) => {
                out.final_text = match &text {
                    Some(t) => t.clone(),
                    None => self.last_text.take(),
                };
                if is_error {
                    let message = text
                        .filter(|t| !t.trim().is_empty())
                        .unwrap_or_else(|| format!("agent reported an error (subtype {subtype})"));
                    out.error = Some(
                        classify_text(&message)
                            .or_else(|| classify_text(stderr_tail))
                            .unwrap_or(ErrorClass::Unknown),
                    );
                    out.error_message = Some(one_line(&message));
                    texts.push(message);
                    texts.push(stderr_tail.to_string());
                } else if self.denials > 0 {
                    let calls = if self.denials == 1 { "call" } else { "calls" };
                    out.error = Some(ErrorClass::PermissionDenied);
                    out.error_message = Some(format!(
                        "permission denied for {} tool {calls} (the agent could not do what it tried)",
                        self.denials
                    ));
                }
            }
            None => {
                out.final_text = self.last_text.take();
                let (class, message) =
                    failure_without_result(exit, stderr_tail, None, self.stray.as_deref());
                out.error = Some(class);
                out.error_message = Some(message);
                texts.extend(self.stray.clone());
                texts.push(stderr_tail.to_string());
            }
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        out.retry_after = retry_hint(out.error, &self.clock, &refs);
        out
    }
}
