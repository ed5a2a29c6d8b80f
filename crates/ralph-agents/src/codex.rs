//! OpenAI Codex CLI: `codex exec --json`, prompt on stdin (reference: agent-clis.md §3).

use std::collections::HashSet;

use serde_json::Value;

use crate::backend::{model_of, prefix_args, program_or};
use crate::classify::{classify_status, classify_text, embedded_status};
use crate::event::{AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, Tokens};
use crate::parser::{
    compact, failure_without_result, head_str, one_line, retry_hint, str_field, u64_field, Counts,
    StreamParser, TailBuf, STRAY_MAX,
};
use crate::registry::{BackendDescriptor, Install};
use crate::retry_after::Clock;
use crate::tools::{ToolSpec, ToolTable, WriteInput};
use crate::{
    Backend, BackendConfig, CommandContext, CommandSpec, OutputFormat, PermissionMode, PromptVia,
};

/// Codex's tools: the `command_execution` and `file_change` items `exec --json` reports, and the
/// Responses API tools behind them as other front ends report them (`exec_command`, the argv
/// `shell` and `local_shell` calls, the older `container.exec`, `apply_patch` with the patch
/// as its input).
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("command_execution", &["command"], &[]),
        ToolSpec::shell("exec_command", &["cmd", "command"], &["workdir"]),
        ToolSpec::shell("shell", &["command"], &["workdir"]),
        ToolSpec::shell("shell_command", &["command"], &["workdir"]),
        ToolSpec::shell(
            "local_shell",
            &["command"],
            &["working_directory", "workdir"],
        ),
        ToolSpec::shell(
            "local_shell_call",
            &["command"],
            &["working_directory", "workdir"],
        ),
        ToolSpec::shell("container.exec", &["cmd", "command"], &["workdir"]),
        ToolSpec::write(
            "file_change",
            WriteInput {
                path: &["path"],
                lists: &["changes"],
                patch: &[],
            },
        ),
        ToolSpec::write(
            "apply_patch",
            WriteInput {
                path: &[],
                lists: &[],
                patch: &["input", "patch"],
            },
        ),
    ],
};

/// Registry entry (agent-clis.md §3). api.openai.com with an API key, chatgpt.com with a ChatGPT
/// sign-in; with the default features Codex also calls github.com and api.github.com at startup
/// (plugins; `[features] plugins = false` stops it). `CODEX_HOME` moves its state.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "codex",
    aliases: &[],
    program: "codex",
    install: Install::Npm("@openai/codex"),
    auth_env: &["OPENAI_API_KEY", "CODEX_API_KEY"],
    api_hosts: &["api.openai.com", "chatgpt.com"],
    api_host_setting: Some("model_providers.<id>.base_url in $CODEX_HOME/config.toml (or -c)"),
    home_state: &[".codex"],
    state_env: &["CODEX_HOME"],
    prompt: PromptVia::Stdin,
    auto: true,
    output: Some(OutputFormat::CodexJson),
    tools: TOOLS,
    new: |config| Box::new(CodexBackend::new(config)),
};

/// Codex: `codex exec --json --skip-git-repo-check <permissions> [-m MODEL] [ARGS…]`, the prompt
/// on stdin ("Prompt from stdin if none given"; no prompt argument is passed, so Codex reads
/// all of stdin as the prompt).
///
/// Permissions: `Full` → `--dangerously-bypass-approvals-and-sandbox` (ralph is the sandbox);
/// `Sandbox` → `-s workspace-write` (Codex's own bwrap sandbox; exec mode never asks for
/// approval). Codex has no tool allow-list.
#[derive(Debug, Clone)]
pub struct CodexBackend {
    config: BackendConfig,
}

impl CodexBackend {
    pub fn new(config: BackendConfig) -> Self {
        CodexBackend { config }
    }
}

impl Backend for CodexBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        program_or(&self.config, DESCRIPTOR.program)
    }
    fn supports_permission(&self, mode: &PermissionMode) -> bool {
        matches!(mode, PermissionMode::Full | PermissionMode::Sandbox)
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args = prefix_args(&self.config);
        args.extend(["exec", "--json", "--skip-git-repo-check"].map(String::from));
        match &self.config.permission {
            PermissionMode::Full => args.push("--dangerously-bypass-approvals-and-sandbox".into()),
            PermissionMode::Sandbox => args.extend(["-s", "workspace-write"].map(String::from)),
            // Refused before start (`supports_permission`); Codex's defaults (read-only
            // sandbox, no approvals in exec mode) are what is left.
            PermissionMode::AllowList(_) => {}
        }
        if let Some(model) = model_of(ctx) {
            args.extend(["-m".to_string(), model.to_string()]);
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
        Box::new(CodexJsonParser::default())
    }
    fn parser_for(&self, ctx: &CommandContext<'_>) -> Box<dyn StreamParser> {
        Box::new(CodexJsonParser::default().with_model(model_of(ctx)))
    }
}

/// Open tool items remembered at most (a stream of `item.started` lines without their
/// `item.completed` must not grow memory).
const OPEN_ITEMS_MAX: usize = 1024;

/// Codex `exec --json`.
///
/// - Final answer: the text of the last `agent_message` item.
/// - Usage: `turn.completed.usage`, summed over turns. `input_tokens` counts the whole prompt,
///   cached part included (4500 = 3600 new + 900 cached in codex-json.jsonl), so
///   `input = input_tokens − cached_input_tokens − cache_write_input_tokens`,
///   `cache_read = cached_input_tokens`, `cache_write = cache_write_input_tokens`,
///   `output = output_tokens`: OpenAI's `output_tokens` already includes the reasoning tokens
///   (`reasoning_output_tokens` is a breakdown of it; Codex's own "tokens used" total is
///   new input + output, without adding reasoning again).
/// - Cost: none reported (`CostSource::Unknown`); the engine prices the tokens.
/// - Errors: `turn.failed.error.message`, else the last `{"type":"error"}` message. An `error`
///   *item* (such as "Model metadata for `mock-model` not found") is a warning, not a failure.
#[derive(Debug, Default)]
pub struct CodexJsonParser {
    counts: Counts,
    clock: Clock,
    model: Option<String>,
    last_message: TailBuf,
    usage: Option<Tokens>,
    turn_completed: bool,
    turn_failed: Option<String>,
    last_error: Option<String>,
    open_items: HashSet<String>,
    stray: Option<String>,
}

impl CodexJsonParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The model the call was started with: Codex's JSON output does not name it.
    pub fn with_model(mut self, model: Option<&str>) -> Self {
        self.model = model.map(str::to_string);
        self
    }

    fn handle(&mut self, v: &Value, events: &mut Vec<AgentEvent>) -> bool {
        match str_field(v, "type") {
            Some("thread.started") => events.push(AgentEvent::Init {
                model: self.model.clone(),
            }),
            Some("turn.started") => events.push(AgentEvent::Other),
            Some(phase @ ("item.started" | "item.updated" | "item.completed")) => {
                let Some(item) = v.get("item").filter(|i| i.is_object()) else {
                    return false;
                };
                return self.item(item, phase, events);
            }
            Some("turn.completed") => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    let input = u64_field(u, "input_tokens");
                    let cached = u64_field(u, "cached_input_tokens");
                    let written = u64_field(u, "cache_write_input_tokens");
                    let turn = Tokens {
                        input: input.saturating_sub(cached).saturating_sub(written),
                        output: u64_field(u, "output_tokens"),
                        cache_read: cached,
                        cache_write: written,
                    };
                    self.usage.get_or_insert_with(Tokens::default).add(&turn);
                }
                self.turn_completed = true;
                events.push(AgentEvent::Result { is_error: false });
            }
            Some("turn.failed") => {
                let message = v
                    .get("error")
                    .and_then(|e| str_field(e, "message"))
                    .unwrap_or("turn failed");
                self.turn_failed = Some(head_str(message, STRAY_MAX).to_string());
                events.push(AgentEvent::Result { is_error: true });
            }
            Some("error") => {
                let message = str_field(v, "message").unwrap_or("");
                let message = head_str(message, STRAY_MAX).to_string();
                self.last_error = Some(message.clone());
                events.push(AgentEvent::Error { message });
            }
            _ => return false,
        }
        true
    }

    fn item(&mut self, item: &Value, phase: &str, events: &mut Vec<AgentEvent>) -> bool {
        let id = str_field(item, "id").unwrap_or("").to_string();
        let completed = phase == "item.completed";
        let status = str_field(item, "status");
        let tool = match str_field(item, "type") {
            Some("agent_message") => {
                if completed {
                    let text = str_field(item, "text").unwrap_or("");
                    self.last_message.clear();
                    self.last_message.push(text);
                    events.push(AgentEvent::Text {
                        text: text.to_string(),
                    });
                } else {
                    events.push(AgentEvent::Other);
                }
                return true;
            }
            Some("reasoning" | "todo_list") => {
                events.push(AgentEvent::Other);
                return true;
            }
            Some("error") => {
                // A warning ("Model metadata … not found. Defaulting to fallback metadata"):
                // the run goes on and its outcome is decided by turn.completed/turn.failed.
                let message = str_field(item, "message").unwrap_or("").to_string();
                events.push(AgentEvent::Error { message });
                return true;
            }
            Some("command_execution") => {
                let failed = status == Some("failed")
                    || item
                        .get("exit_code")
                        .and_then(Value::as_i64)
                        .is_some_and(|c| c != 0);
                let input = serde_json::json!({ "command": item.get("command") });
                ("command_execution".to_string(), input.to_string(), failed)
            }
            Some("file_change") => {
                let input = serde_json::json!({ "changes": item.get("changes") });
                (
                    "file_change".to_string(),
                    input.to_string(),
                    status == Some("failed"),
                )
            }
            Some("mcp_tool_call") => {
                let name = match (str_field(item, "server"), str_field(item, "tool")) {
                    (Some(s), Some(t)) => format!("{s}.{t}"),
                    (None, Some(t)) => t.to_string(),
                    _ => "mcp_tool_call".to_string(),
                };
                let failed =
                    status == Some("failed") || item.get("error").is_some_and(|e| !e.is_null());
                (name, compact(item.get("arguments")), failed)
            }
            Some("web_search") => {
                let input = serde_json::json!({ "query": item.get("query") });
                ("web_search".to_string(), input.to_string(), false)
            }
            _ => return false,
        };
        let (name, input, failed) = tool;
        match phase {
            "item.started" => {
                if self.open_items.len() >= OPEN_ITEMS_MAX {
                    self.open_items.clear();
                }
                self.open_items.insert(id);
                events.push(AgentEvent::ToolUse { name, input });
            }
            "item.completed" => {
                // A completed item never seen starting (e.g. a fragment) still reports its use.
                if !self.open_items.remove(&id) {
                    events.push(AgentEvent::ToolUse { name, input });
                }
                events.push(AgentEvent::ToolResult { is_error: failed });
            }
            _ => events.push(AgentEvent::Other),
        }
        true
    }
}

/// Classify a Codex error message: its words first, then an HTTP status inside it.
fn codex_class(message: &str) -> ErrorClass {
    if let Some(status) = embedded_status(message) {
        return classify_status(status, message);
    }
    classify_text(message).unwrap_or(ErrorClass::Unknown)
}

impl StreamParser for CodexJsonParser {
    fn line(&mut self, line: &[u8], _truncated: bool, events: &mut Vec<AgentEvent>) {
        if let Some(v) = self.counts.next_json(line, &mut self.stray, events) {
            if !self.handle(&v, events) {
                self.counts.unknown(events);
            }
        }
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let mut out: AgentOutcome = self.counts.outcome();
        out.model = self.model.clone();
        out.usage = self.usage;
        out.cost_source = CostSource::Unknown;
        out.final_text = self.last_message.take();
        let mut texts: Vec<String> = Vec::new();
        if let Some(message) = &self.turn_failed {
            let message = if message.trim().is_empty() {
                self.last_error.clone().unwrap_or_default()
            } else {
                message.clone()
            };
            out.error = Some(codex_class(&message));
            out.error_message = Some(if message.trim().is_empty() {
                "agent reported a failed turn".to_string()
            } else {
                one_line(&message)
            });
            texts.push(message);
        } else if !self.turn_completed {
            let (class, message) = failure_without_result(
                exit,
                stderr_tail,
                self.last_error.as_deref(),
                self.stray.as_deref(),
            );
            let class = match (class, self.last_error.as_deref()) {
                (ErrorClass::Crash, Some(e)) if !exit.success() => codex_class(e),
                (c, _) => c,
            };
            out.error = Some(class);
            out.error_message = Some(message);
            texts.extend(self.last_error.clone());
            texts.extend(self.stray.clone());
            texts.push(stderr_tail.to_string());
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        out.retry_after = retry_hint(out.error, &self.clock, &refs);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut CodexJsonParser, lines: &[&str]) -> Vec<AgentEvent> {
        let mut ev = Vec::new();
        for l in lines {
            p.line(l.as_bytes(), false, &mut ev);
        }
        ev
    }

    fn exit(code: i32) -> ExitInfo {
        ExitInfo {
            code: Some(code),
            signal: None,
        }
    }

    #[test]
    fn model_metadata_error_item_is_not_a_failure() {
        let mut p = CodexJsonParser::default().with_model(Some("mock-model"));
        let ev = feed(
            &mut p,
            &[
                r#"{"type":"thread.started","thread_id":"t"}"#,
                r#"{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `mock-model` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}}"#,
                r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"done"}}"#,
                r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":2,"reasoning_output_tokens":1}}"#,
            ],
        );
        assert!(matches!(ev[1], AgentEvent::Error { .. }));
        let out = p.finish(exit(0), "");
        assert_eq!(out.error, None);
        assert_eq!(out.final_text, "done");
        assert_eq!(out.model.as_deref(), Some("mock-model"));
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 6,
                output: 2,
                cache_read: 4,
                cache_write: 0
            })
        );
    }

    #[test]
    fn usage_sums_turns_and_subtracts_cache_writes() {
        let mut p = CodexJsonParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":30,"cache_write_input_tokens":20,"output_tokens":5}}"#,
                r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":50,"output_tokens":1}}"#,
            ],
        );
        let out = p.finish(exit(0), "");
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 50,
                output: 6,
                cache_read: 80,
                cache_write: 20
            })
        );
    }

    #[test]
    fn error_without_turn_failed_and_unknown_shapes() {
        let mut p = CodexJsonParser::default();
        let ev = feed(
            &mut p,
            &[
                r#"{"type":"item.started","item":{"id":"x","type":"brand_new"}}"#,
                r#"{"type":"item.completed"}"#,
                r#"{"type":"nope"}"#,
                "plain text error",
                r#"{"type":"error","message":"stream error: 503 Service Unavailable"}"#,
            ],
        );
        assert_eq!(
            &ev[..4],
            &[
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Malformed
            ]
        );
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(ErrorClass::Server));
        assert_eq!(
            out.error_message.as_deref(),
            Some("exited with code 1: stream error: 503 Service Unavailable")
        );
        assert_eq!(
            (out.lines, out.unknown_lines, out.malformed_lines),
            (5, 3, 1)
        );
    }

    #[test]
    fn clean_exit_without_a_turn_end_is_a_crash() {
        let mut p = CodexJsonParser::default();
        feed(&mut p, &[r#"{"type":"thread.started","thread_id":"t"}"#]);
        let out = p.finish(exit(0), "");
        assert_eq!(out.error, Some(ErrorClass::Crash));
        assert_eq!(
            out.error_message.as_deref(),
            Some("agent exited without a result")
        );
    }

    #[test]
    fn usage_limit_body_with_resets_in_seconds() {
        let mut p = CodexJsonParser::default().with_clock(Clock::fixed(1_000_000_000, Some("UTC")));
        feed(
            &mut p,
            &[
                r#"{"type":"turn.failed","error":{"message":"unexpected status 429 Too Many Requests: {\"error\":{\"type\":\"usage_limit_reached\",\"resets_in_seconds\":3600}}"}}"#,
            ],
        );
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(ErrorClass::UsageLimit));
        assert_eq!(out.retry_after, Some(crate::RetryAfter::In(3600)));
    }
}
