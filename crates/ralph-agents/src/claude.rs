//! Claude Code: `claude -p --output-format stream-json --verbose`, prompt on stdin (reference:
//! agent-clis.md §2), and the parser of its stream-json output (which Amp also prints).

use serde_json::Value;

use crate::backend::{
    Backend, BackendConfig, CommandContext, CommandSpec, DenyRule, OutputFormat, PermissionMode,
    PromptVia,
};
use crate::classify::{classify_status, classify_text};
use crate::event::{
    AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, Tokens, FINAL_TEXT_MAX,
};
use crate::parser::{
    exit_summary, head_bytes, head_str, last_nonempty_line, one_line, retry_hint, str_field,
    tail_str, u16_field, u64_field, with_detail, StreamParser, TailBuf, ERROR_MESSAGE_MAX,
    STRAY_MAX,
};
use crate::registry::{BackendDescriptor, Install};
use crate::retry_after::Clock;
use crate::tools::{ToolSpec, ToolTable, WriteInput};

/// Claude Code's tools that run commands or write files.
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("Bash", &["command"], &[]),
        ToolSpec::write("Write", WriteInput::path(&["file_path"])),
        ToolSpec::write("Edit", WriteInput::path(&["file_path"])),
        ToolSpec::write("MultiEdit", WriteInput::path(&["file_path"])),
        ToolSpec::write("NotebookEdit", WriteInput::path(&["notebook_path"])),
    ],
};

/// Registry entry (agent-clis.md §2). Even with `ANTHROPIC_BASE_URL` pointing elsewhere, Claude
/// Code calls api.anthropic.com (telemetry, feature flags) unless
/// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`. `CLAUDE_CONFIG_DIR` moves its state.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "claude",
    aliases: &[],
    program: "claude",
    install: Install::Npm("@anthropic-ai/claude-code"),
    auth_env: &["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"],
    api_hosts: &["api.anthropic.com"],
    api_host_setting: Some("ANTHROPIC_BASE_URL"),
    home_state: &[".claude", ".claude.json"],
    state_env: &["CLAUDE_CONFIG_DIR"],
    prompt: PromptVia::Stdin,
    auto: true,
    output: Some(OutputFormat::ClaudeStreamJson),
    tools: TOOLS,
    new: |config| Box::new(ClaudeBackend::new(config)),
};

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

impl Backend for ClaudeBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        self.config
            .command
            .first()
            .map(String::as_str)
            .unwrap_or(DESCRIPTOR.program)
    }
    fn supports_permission(&self, mode: &PermissionMode) -> bool {
        matches!(mode, PermissionMode::Full | PermissionMode::AllowList(_))
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args: Vec<String> = self.config.command.iter().skip(1).cloned().collect();
        args.extend(["-p", "--output-format", "stream-json", "--verbose"].map(String::from));
        let mut env = Vec::new();
        match &self.config.permission {
            PermissionMode::Full => {
                args.push("--dangerously-skip-permissions".into());
                // Claude refuses skip-permissions as root unless told it is sandboxed.
                if ctx.is_root {
                    env.push(("IS_SANDBOX".to_string(), "1".to_string()));
                }
            }
            // An empty list would pass `--allowedTools ""`; leaving the flag out means the
            // same (nothing beyond the defaults is allowed) without the odd empty argument.
            PermissionMode::AllowList(tools) if tools.is_empty() => {}
            PermissionMode::AllowList(tools) => {
                args.push("--allowedTools".into());
                args.push(tools.join(" "));
            }
            // Refused before start (`supports_permission`); Claude's defaults ask, and a
            // headless agent cannot answer, so nothing is added.
            PermissionMode::Sandbox => {}
        }
        if let Some(model) = ctx.model.filter(|m| !m.is_empty()) {
            args.push("--model".into());
            args.push(model.to_string());
        }
        args.extend(ctx.extra_args.iter().cloned());
        CommandSpec {
            program: self.program().to_string(),
            args,
            env,
            // On stdin, not in argv: prompts can exceed ARG_MAX and argv is visible in `ps`.
            stdin: Some(ctx.prompt.as_bytes().to_vec()),
        }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        OutputFormat::ClaudeStreamJson.parser()
    }
    /// `--disallowedTools` with `Bash(P)` (the command exactly) and `Bash(P *)` (P followed by
    /// arguments) per prefix, space-separated in one argument like `--allowedTools`. Deny rules
    /// hold even with `--dangerously-skip-permissions`.
    fn deny_args(&self, rules: &[DenyRule]) -> Vec<String> {
        let mut tools: Vec<String> = Vec::new();
        for p in rules.iter().filter_map(DenyRule::clean_prefix) {
            for t in [format!("Bash({p})"), format!("Bash({p} *)")] {
                if !tools.contains(&t) {
                    tools.push(t);
                }
            }
        }
        if tools.is_empty() {
            return Vec::new();
        }
        vec!["--disallowedTools".to_string(), tools.join(" ")]
    }
}

/// Cap on the denied tool names kept for the error message.
const DENIED_NAMES_MAX: usize = 8;
/// Cap on the entries of Claude's `errors` array kept for the error message.
const RESULT_ERRORS_MAX: usize = 4;

/// The last `system/api_retry` line: Claude's own retry loop, which the engine sees as silence.
#[derive(Debug, Clone, Default)]
struct RetryInfo {
    attempt: Option<u64>,
    max_retries: Option<u64>,
    status: Option<u16>,
    error: Option<String>,
}

impl RetryInfo {
    fn class(&self) -> ErrorClass {
        let error = self.error.as_deref().unwrap_or("");
        match self.status {
            Some(s) => classify_status(s, error),
            None => claude_error_code_class(error).unwrap_or(ErrorClass::Unknown),
        }
    }

    fn describe(&self) -> String {
        let mut s = String::from("while the agent was retrying an API call");
        let mut parts = Vec::new();
        match (self.attempt, self.max_retries) {
            (Some(a), Some(m)) => parts.push(format!("attempt {a} of {m}")),
            (Some(a), None) => parts.push(format!("attempt {a}")),
            _ => {}
        }
        if let Some(st) = self.status {
            parts.push(format!("status {st}"));
        }
        if let Some(e) = &self.error {
            parts.push(format!("error: {e}"));
        }
        if !parts.is_empty() {
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
        s
    }
}

/// Claude's machine-readable error codes (`api_retry.error`, the synthetic assistant line's
/// `error`). `None` for codes that say nothing about the cause ("unknown", "invalid_request").
fn claude_error_code_class(code: &str) -> Option<ErrorClass> {
    Some(match code {
        "rate_limit" => ErrorClass::RateLimit,
        "authentication_failed" => ErrorClass::Auth,
        "billing_error" => ErrorClass::Quota,
        "server_error" => ErrorClass::Server,
        "overloaded" => ErrorClass::Overloaded,
        _ => return None,
    })
}

/// What the `result` line said.
#[derive(Debug, Clone, Default)]
struct ResultInfo {
    is_error: bool,
    subtype: String,
    api_error_status: Option<u16>,
    text: Option<String>,
    errors: Vec<String>,
    usage: Option<Tokens>,
    cost_usd: Option<f64>,
    model: Option<String>,
    denials: u32,
    denied_tools: Vec<String>,
    /// `modelUsage.<main model>.contextWindow`.
    context_window: Option<u64>,
}

/// Claude Code `--output-format stream-json --verbose` (also Amp's compatible format).
#[derive(Debug, Default)]
pub struct ClaudeStreamParser {
    lines: u64,
    unknown_lines: u64,
    malformed_lines: u64,
    init_model: Option<String>,
    assistant_model: Option<String>,
    /// Text of the last top-level assistant message: the fallback final answer when the stream
    /// ends without a `result` line.
    last_text: TailBuf,
    last_text_msg_id: Option<String>,
    /// `error` of the last assistant line that carried one (Claude's synthetic error messages).
    last_assistant_error: Option<String>,
    last_retry: Option<RetryInfo>,
    result: Option<ResultInfo>,
    /// A `result` line arrived cut at the engine's line cap, so the outcome is unknowable.
    truncated_result: bool,
    /// The last line that was not JSON at all: CLIs print some fatal errors as plain text.
    stray: Option<String>,
    clock: Clock,
    /// Largest prompt (input + cache) of any single API request seen in assistant lines.
    peak_context: Option<u64>,
}

impl ClaudeStreamParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

impl ClaudeStreamParser {
    /// Handle one parsed line. `false` when the line is not of a shape this parser knows.
    fn handle(&mut self, v: &Value, events: &mut Vec<AgentEvent>) -> bool {
        match str_field(v, "type") {
            Some("system") => self.system(v, events),
            Some("assistant") => return self.assistant(v, events),
            Some("user") => return self.user(v, events),
            Some("result") => self.result(v, events),
            // `--include-partial-messages` deltas and OAuth rate-limit notices: the complete
            // assistant line and the result carry everything ralph uses.
            Some("stream_event") | Some("rate_limit_event") => events.push(AgentEvent::Other),
            _ => return false,
        }
        true
    }

    fn system(&mut self, v: &Value, events: &mut Vec<AgentEvent>) {
        match str_field(v, "subtype") {
            Some("init") => {
                let model = str_field(v, "model").map(str::to_string);
                self.init_model.clone_from(&model);
                events.push(AgentEvent::Init { model });
            }
            Some("api_retry") => {
                let retry = RetryInfo {
                    attempt: v.get("attempt").and_then(Value::as_u64),
                    max_retries: v.get("max_retries").and_then(Value::as_u64),
                    status: u16_field(v, "error_status"),
                    error: str_field(v, "error").map(|e| head_str(e, STRAY_MAX).to_string()),
                };
                events.push(AgentEvent::ApiRetry {
                    status: retry.status,
                    error: retry.error.clone(),
                });
                self.last_retry = Some(retry);
            }
            _ => events.push(AgentEvent::Other),
        }
    }

    fn assistant(&mut self, v: &Value, events: &mut Vec<AgentEvent>) -> bool {
        let Some(msg) = v.get("message") else {
            return false;
        };
        let Some(content) = msg.get("content").and_then(Value::as_array) else {
            return false;
        };
        if let Some(model) = str_field(msg, "model") {
            // Claude labels its locally generated error messages with this pseudo-model.
            if model != "<synthetic>" {
                self.assistant_model = Some(model.to_string());
            }
        }
        if let Some(err) = str_field(v, "error") {
            self.last_assistant_error = Some(head_str(err, STRAY_MAX).to_string());
        }
        // Every content block of one request repeats that request's prompt usage, so the
        // maximum over lines is the fullest the context got.
        if let Some(u) = msg.get("usage").filter(|u| u.is_object()) {
            let prompt = u64_field(u, "input_tokens")
                + u64_field(u, "cache_read_input_tokens")
                + u64_field(u, "cache_creation_input_tokens");
            if prompt > 0 {
                self.peak_context = Some(self.peak_context.unwrap_or(0).max(prompt));
            }
        }
        // Subagent (Task tool) messages carry their parent's tool id; their prose is not the
        // session's answer.
        let top_level = v.get("parent_tool_use_id").is_none_or(Value::is_null);
        let msg_id = str_field(msg, "id");
        let before = events.len();
        for block in content {
            match str_field(block, "type") {
                Some("text") => {
                    let text = str_field(block, "text").unwrap_or("");
                    if top_level {
                        self.remember_text(msg_id, text);
                    }
                    events.push(AgentEvent::Text {
                        text: text.to_string(),
                    });
                }
                Some("tool_use") => {
                    let name = str_field(block, "name").unwrap_or("").to_string();
                    let input = match block.get("input") {
                        Some(i) => serde_json::to_string(i).unwrap_or_default(),
                        None => "{}".to_string(),
                    };
                    events.push(AgentEvent::ToolUse { name, input });
                }
                _ => events.push(AgentEvent::Other),
            }
        }
        if events.len() == before {
            events.push(AgentEvent::Other);
        }
        true
    }

    /// Claude prints each content block of one API message as its own line with the same
    /// message id: text blocks of one message are joined, a new message starts afresh.
    fn remember_text(&mut self, msg_id: Option<&str>, text: &str) {
        let same_message = msg_id.is_some() && msg_id == self.last_text_msg_id.as_deref();
        if same_message && !self.last_text.is_empty() {
            self.last_text.push("\n");
        } else {
            self.last_text.clear();
            self.last_text_msg_id = msg_id.map(str::to_string);
        }
        self.last_text.push(text);
    }

    fn user(&mut self, v: &Value, events: &mut Vec<AgentEvent>) -> bool {
        let Some(msg) = v.get("message") else {
            return false;
        };
        let before = events.len();
        if let Some(content) = msg.get("content").and_then(Value::as_array) {
            for block in content {
                if str_field(block, "type") == Some("tool_result") {
                    let is_error = block
                        .get("is_error")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    events.push(AgentEvent::ToolResult { is_error });
                } else {
                    events.push(AgentEvent::Other);
                }
            }
        }
        if events.len() == before {
            events.push(AgentEvent::Other);
        }
        true
    }

    fn result(&mut self, v: &Value, events: &mut Vec<AgentEvent>) {
        let subtype = str_field(v, "subtype").unwrap_or("").to_string();
        let is_error = v
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| subtype.starts_with("error"));
        let usage = model_usage_total(v.get("modelUsage")).or_else(|| {
            v.get("usage").filter(|u| u.is_object()).map(|u| Tokens {
                input: u64_field(u, "input_tokens"),
                output: u64_field(u, "output_tokens"),
                cache_read: u64_field(u, "cache_read_input_tokens"),
                cache_write: u64_field(u, "cache_creation_input_tokens"),
            })
        });
        let denials = v.get("permission_denials").and_then(Value::as_array);
        let mut denied_tools: Vec<String> = Vec::new();
        for d in denials.into_iter().flatten() {
            if let Some(name) = str_field(d, "tool_name") {
                if denied_tools.len() < DENIED_NAMES_MAX && !denied_tools.iter().any(|n| n == name)
                {
                    denied_tools.push(head_str(name, 100).to_string());
                }
            }
        }
        let errors = v
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .take(RESULT_ERRORS_MAX)
            .map(|e| head_str(e, ERROR_MESSAGE_MAX).to_string())
            .collect();
        let info = ResultInfo {
            is_error,
            subtype,
            api_error_status: u16_field(v, "api_error_status"),
            text: str_field(v, "result").map(|t| tail_str(t, FINAL_TEXT_MAX).to_string()),
            errors,
            usage,
            cost_usd: v.get("total_cost_usd").and_then(Value::as_f64),
            model: main_model(v.get("modelUsage")),
            context_window: main_model(v.get("modelUsage"))
                .and_then(|m| v.get("modelUsage")?.get(&m)?.get("contextWindow")?.as_u64()),
            denials: denials.map_or(0, |d| u32::try_from(d.len()).unwrap_or(u32::MAX)),
            denied_tools,
        };
        events.push(AgentEvent::Result { is_error });
        self.result = Some(info);
    }

    fn classify_result(&self, r: &ResultInfo) -> (Option<ErrorClass>, Option<String>) {
        if r.is_error {
            let text = r.text.as_deref().unwrap_or("");
            let mut message = if !text.trim().is_empty() {
                text.to_string()
            } else if !r.errors.is_empty() {
                r.errors.join("; ")
            } else {
                format!("agent reported an error (subtype {})", r.subtype)
            };
            let class = if r.subtype == "error_max_turns" {
                ErrorClass::MaxTurns
            } else if let Some(status) = r.api_error_status {
                if !message.contains(&status.to_string()) {
                    message = format!("API error {status}: {message}");
                }
                classify_status(status, &message)
            } else {
                let all = format!("{text}\n{}", r.errors.join("\n"));
                classify_text(&all)
                    .or_else(|| {
                        self.last_assistant_error
                            .as_deref()
                            .and_then(claude_error_code_class)
                    })
                    .unwrap_or(ErrorClass::Unknown)
            };
            return (Some(class), Some(one_line(&message)));
        }
        if r.denials > 0 {
            let names = if r.denied_tools.is_empty() {
                String::new()
            } else {
                format!(": {}", r.denied_tools.join(", "))
            };
            let calls = if r.denials == 1 { "call" } else { "calls" };
            let msg = format!(
                "permission denied for {} tool {calls}{names} (the agent could not do what it tried)",
                r.denials
            );
            return (Some(ErrorClass::PermissionDenied), Some(one_line(&msg)));
        }
        (None, None)
    }

    fn classify_no_result(&self, exit: ExitInfo, stderr_tail: &str) -> (ErrorClass, String) {
        if self.truncated_result {
            return (
                ErrorClass::Crash,
                "the agent's result line was cut at the line length cap; its outcome is unknown"
                    .to_string(),
            );
        }
        if exit.success() {
            return (
                ErrorClass::Crash,
                "agent exited without a result line".to_string(),
            );
        }
        let stray = self.stray.as_deref().unwrap_or("");
        let class = classify_text(&format!("{stderr_tail}\n{stray}"))
            .or_else(|| self.last_retry.as_ref().map(RetryInfo::class))
            .or_else(|| {
                self.last_assistant_error
                    .as_deref()
                    .and_then(claude_error_code_class)
            })
            .unwrap_or(ErrorClass::Crash);
        let detail = last_nonempty_line(stderr_tail).or_else(|| last_nonempty_line(stray));
        let message = match (detail, &self.last_retry) {
            (Some(d), _) => with_detail(exit_summary(exit), Some(d)),
            (None, Some(retry)) => {
                one_line(&format!("{} {}", exit_summary(exit), retry.describe()))
            }
            (None, None) => format!("{} without a result line", exit_summary(exit)),
        };
        (class, message)
    }
}

/// Token usage summed over `modelUsage`. `result.usage` counts only the main conversation, while
/// `modelUsage` (like `total_cost_usd`) also counts side requests such as the title generation
/// in `--bare` mode (claude-bare.jsonl: usage says 3600 input tokens, modelUsage and the cost
/// say 4173). `None` when there is no entry with token counts, e.g. the empty `{}` of failed
/// calls.
fn model_usage_total(model_usage: Option<&Value>) -> Option<Tokens> {
    let obj = model_usage?.as_object()?;
    let mut total = Tokens::default();
    let mut seen = false;
    for u in obj.values() {
        let keys = [
            "inputTokens",
            "outputTokens",
            "cacheReadInputTokens",
            "cacheCreationInputTokens",
        ];
        if !keys.iter().any(|k| u.get(*k).is_some_and(Value::is_u64)) {
            continue;
        }
        seen = true;
        total.add(&Tokens {
            input: u64_field(u, "inputTokens"),
            output: u64_field(u, "outputTokens"),
            cache_read: u64_field(u, "cacheReadInputTokens"),
            cache_write: u64_field(u, "cacheCreationInputTokens"),
        });
    }
    seen.then_some(total)
}

/// The model that did the work: the `modelUsage` entry that cost the most (Claude also lists
/// cheap helper models there).
fn main_model(model_usage: Option<&Value>) -> Option<String> {
    let obj = model_usage?.as_object()?;
    let mut best: Option<(&String, f64)> = None;
    for (name, u) in obj {
        let cost = u.get("costUSD").and_then(Value::as_f64).unwrap_or(0.0);
        if best.is_none_or(|(_, c)| cost > c) {
            best = Some((name, cost));
        }
    }
    best.map(|(name, _)| name.clone())
}

impl StreamParser for ClaudeStreamParser {
    fn line(&mut self, line: &[u8], truncated: bool, events: &mut Vec<AgentEvent>) {
        self.lines += 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => {
                self.malformed_lines += 1;
                if truncated && line.starts_with(br#"{"type":"result""#) {
                    self.truncated_result = true;
                } else if !line.starts_with(b"{") {
                    let text = String::from_utf8_lossy(head_bytes(line, STRAY_MAX + 4));
                    self.stray = Some(head_str(&text, STRAY_MAX).to_string());
                }
                events.push(AgentEvent::Malformed);
                return;
            }
        };
        if !self.handle(&value, events) {
            self.unknown_lines += 1;
            events.push(AgentEvent::Unknown);
        }
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let mut out = AgentOutcome {
            lines: self.lines,
            unknown_lines: self.unknown_lines,
            malformed_lines: self.malformed_lines,
            context_tokens: self.peak_context,
            context_window: self.result.as_ref().and_then(|r| r.context_window),
            ..AgentOutcome::default()
        };
        let fallback_model = self
            .init_model
            .clone()
            .or_else(|| self.assistant_model.clone());
        match self.result.take() {
            Some(r) => {
                let (error, error_message) = self.classify_result(&r);
                out.retry_after = retry_hint(
                    error,
                    &self.clock,
                    &[r.text.as_deref().unwrap_or(""), &r.errors.join("\n")],
                );
                out.error = error;
                out.error_message = error_message;
                out.usage = r.usage;
                out.cost_usd = r.cost_usd;
                out.cost_source = if r.cost_usd.is_some() {
                    CostSource::Reported
                } else {
                    CostSource::Unknown
                };
                out.model = r.model.or(fallback_model);
                out.permission_denials = r.denials;
                out.final_text = match r.text {
                    Some(t) => t,
                    // error_max_turns results carry no `result` field.
                    None => self.last_text.take(),
                };
            }
            None => {
                let (class, message) = self.classify_no_result(exit, stderr_tail);
                out.retry_after = retry_hint(
                    Some(class),
                    &self.clock,
                    &[self.stray.as_deref().unwrap_or(""), stderr_tail],
                );
                out.error = Some(class);
                out.error_message = Some(message);
                out.model = fallback_model;
                out.final_text = self.last_text.take();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
