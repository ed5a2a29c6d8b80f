//! opencode: `opencode run --format json`, prompt on stdin (reference: agent-clis.md §5).

use serde_json::Value;

use crate::backend::{model_of, prefix_args, program_or};
use crate::classify::{classify_status, classify_text};
use crate::event::{AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, Tokens};
use crate::parser::{
    compact, failure_without_result, head_str, one_line, retry_hint, str_field, u16_field,
    u64_field, Counts, StreamParser, TailBuf, STRAY_MAX,
};
use crate::registry::{BackendDescriptor, Install};
use crate::retry_after::Clock;
use crate::tools::{ToolSpec, ToolTable, WriteInput};
use crate::{
    Backend, BackendConfig, CommandContext, CommandSpec, OutputFormat, PermissionMode, PromptVia,
};

/// opencode's tools that run commands or write files.
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("bash", &["command"], &["workdir"]),
        ToolSpec::write("write", WriteInput::path(&["filePath"])),
        ToolSpec::write("edit", WriteInput::path(&["filePath"])),
        ToolSpec::write(
            "patch",
            WriteInput {
                path: &[],
                lists: &[],
                patch: &["patchText"],
            },
        ),
    ],
};

/// Registry entry (agent-clis.md §5). opencode talks to many providers: the credentials and hosts
/// are those of the common ones (Anthropic, OpenAI, Google, OpenRouter); a provider configured
/// with its own `baseURL` talks to that instead. Side traffic that can be turned off: the
/// models.dev catalogue (`OPENCODE_DISABLE_MODELS_FETCH=1`) and the npm registry for plugins
/// (`OPENCODE_DISABLE_DEFAULT_PLUGINS=1`, `npm_config_offline=true`). Its state follows the
/// `XDG_*_HOME` variables.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "opencode",
    aliases: &[],
    program: "opencode",
    install: Install::Npm("opencode-ai"),
    auth_env: &[
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "OPENROUTER_API_KEY",
    ],
    api_hosts: &[
        "api.anthropic.com",
        "api.openai.com",
        "generativelanguage.googleapis.com",
        "openrouter.ai",
    ],
    api_host_setting: Some(
        "provider.<id>.options.baseURL in opencode.json (or OPENCODE_CONFIG_CONTENT)",
    ),
    home_state: &[
        ".config/opencode",
        ".local/share/opencode",
        ".cache/opencode",
        ".local/state/opencode",
    ],
    state_env: &[],
    prompt: PromptVia::Stdin,
    auto: true,
    output: Some(OutputFormat::OpencodeJson),
    tools: TOOLS,
    new: |config| Box::new(OpencodeBackend::new(config)),
};

/// opencode: `opencode run --format json --auto [-m PROVIDER/MODEL] [ARGS…]`, the prompt on
/// stdin (`opencode run` appends piped stdin to its message; with no message argument the
/// prompt is stdin alone).
///
/// Permissions: `Full` → `--auto` (approve every permission the config does not deny; without
/// it, `run` rejects whatever would ask). opencode's finer rules live in its config
/// (`permission` block), so `AllowList` and `Sandbox` are refused.
#[derive(Debug, Clone)]
pub struct OpencodeBackend {
    config: BackendConfig,
}

impl OpencodeBackend {
    pub fn new(config: BackendConfig) -> Self {
        OpencodeBackend { config }
    }
}

impl Backend for OpencodeBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        program_or(&self.config, DESCRIPTOR.program)
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args = prefix_args(&self.config);
        args.extend(["run", "--format", "json"].map(String::from));
        if self.config.permission == PermissionMode::Full {
            args.push("--auto".into());
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
        Box::new(OpencodeJsonParser::default())
    }
    fn parser_for(&self, ctx: &CommandContext<'_>) -> Box<dyn StreamParser> {
        Box::new(OpencodeJsonParser::default().with_model(model_of(ctx)))
    }
}

/// An `{"type":"error"}` event.
#[derive(Debug, Default)]
struct OpencodeError {
    name: String,
    message: String,
    status: Option<u16>,
    /// `responseHeaders` and `responseBody`, as text, for reset times and error codes.
    details: String,
}

/// opencode `run --format json`.
///
/// - Final answer: the `text` parts of the last step that had text (joined by newlines).
/// - Usage: the sum of `step_finish.part.tokens` over all steps: `input` (opencode already
///   leaves cached tokens out of it: 1200 + 80 + 300 = total 1580), `output + reasoning`,
///   `cache.read`, `cache.write`.
/// - Cost: the sum of `step_finish.part.cost`, `CostSource::Reported`, computed by opencode from
///   its model config. opencode prints 0 when the model has no price configured, so a zero
///   total for non-zero tokens is taken as unknown (the engine prices the tokens instead).
/// - Errors: `{"type":"error","error":{"name","data":{"message","statusCode",
///   "responseHeaders","responseBody"}}}`, classified by status code and message;
///   `retry-after` from the response headers.
#[derive(Debug, Default)]
pub struct OpencodeJsonParser {
    counts: Counts,
    clock: Clock,
    model: Option<String>,
    step_text: TailBuf,
    new_step: bool,
    steps: u64,
    usage: Tokens,
    cost: f64,
    saw_cost: bool,
    stopped: bool,
    error: Option<OpencodeError>,
    stray: Option<String>,
    /// Largest single-step prompt (input + cache tokens).
    peak_context: u64,
}

impl OpencodeJsonParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The model the call was started with: opencode's JSON events do not name it.
    pub fn with_model(mut self, model: Option<&str>) -> Self {
        self.model = model.map(str::to_string);
        self
    }

    fn handle(&mut self, v: &Value, events: &mut Vec<AgentEvent>) -> bool {
        let part = v.get("part").filter(|p| p.is_object());
        match (str_field(v, "type"), part) {
            (Some("step_start"), _) => {
                self.new_step = true;
                events.push(AgentEvent::Other);
            }
            (Some("text"), Some(part)) => {
                let text = str_field(part, "text").unwrap_or("");
                if self.new_step {
                    self.step_text.clear();
                    self.new_step = false;
                } else if !self.step_text.is_empty() {
                    self.step_text.push("\n");
                }
                self.step_text.push(text);
                events.push(AgentEvent::Text {
                    text: text.to_string(),
                });
            }
            (Some("reasoning"), _) => events.push(AgentEvent::Other),
            (Some("tool_use"), Some(part)) => {
                let state = part.get("state");
                events.push(AgentEvent::ToolUse {
                    name: str_field(part, "tool").unwrap_or("").to_string(),
                    input: compact(state.and_then(|s| s.get("input"))),
                });
                match state.and_then(|s| str_field(s, "status")) {
                    Some("completed") => {
                        let exit = state
                            .and_then(|s| s.get("metadata"))
                            .and_then(|m| m.get("exit"))
                            .and_then(Value::as_i64);
                        events.push(AgentEvent::ToolResult {
                            is_error: exit.is_some_and(|c| c != 0),
                        });
                    }
                    Some("error") => events.push(AgentEvent::ToolResult { is_error: true }),
                    _ => {}
                }
            }
            (Some("step_finish"), Some(part)) => {
                self.steps += 1;
                if let Some(t) = part.get("tokens").filter(|t| t.is_object()) {
                    let cache = t.get("cache");
                    // One step is one model request: its prompt is the context at that point.
                    let prompt = u64_field(t, "input")
                        + cache.map_or(0, |c| u64_field(c, "read") + u64_field(c, "write"));
                    self.peak_context = self.peak_context.max(prompt);
                    self.usage.add(&Tokens {
                        input: u64_field(t, "input"),
                        output: u64_field(t, "output") + u64_field(t, "reasoning"),
                        cache_read: cache.map_or(0, |c| u64_field(c, "read")),
                        cache_write: cache.map_or(0, |c| u64_field(c, "write")),
                    });
                }
                if let Some(cost) = part.get("cost").and_then(Value::as_f64) {
                    if cost.is_finite() && cost >= 0.0 {
                        self.cost += cost;
                        self.saw_cost = true;
                    }
                }
                if str_field(part, "reason") == Some("stop") {
                    self.stopped = true;
                    events.push(AgentEvent::Result { is_error: false });
                } else {
                    events.push(AgentEvent::Other);
                }
            }
            (Some("error"), _) => {
                let e = v.get("error");
                let data = e.and_then(|e| e.get("data"));
                let name = e
                    .and_then(|e| str_field(e, "name"))
                    .unwrap_or("")
                    .to_string();
                let message = data
                    .and_then(|d| str_field(d, "message"))
                    .unwrap_or(&name)
                    .to_string();
                let mut details = String::new();
                if let Some(h) = data.and_then(|d| d.get("responseHeaders")) {
                    details.push_str(&compact(Some(h)));
                    details.push('\n');
                }
                if let Some(b) = data.and_then(|d| str_field(d, "responseBody")) {
                    details.push_str(head_str(b, 4 * STRAY_MAX));
                }
                self.error = Some(OpencodeError {
                    name,
                    message: head_str(&message, 4 * STRAY_MAX).to_string(),
                    status: data.and_then(|d| u16_field(d, "statusCode")),
                    details: head_str(&details, 8 * STRAY_MAX).to_string(),
                });
                events.push(AgentEvent::Error { message });
            }
            _ => return false,
        }
        true
    }
}

fn opencode_class(e: &OpencodeError) -> ErrorClass {
    let text = format!("{}\n{}", e.message, e.details);
    if let Some(status) = e.status {
        return classify_status(status, &text);
    }
    match e.name.as_str() {
        "ProviderAuthError" => ErrorClass::Auth,
        "ContextOverflowError" => ErrorClass::ContextOverflow,
        _ => classify_text(&format!("{}\n{text}", e.name)).unwrap_or(ErrorClass::Unknown),
    }
}

impl StreamParser for OpencodeJsonParser {
    fn line(&mut self, line: &[u8], _truncated: bool, events: &mut Vec<AgentEvent>) {
        if let Some(v) = self.counts.next_json(line, &mut self.stray, events) {
            if !self.handle(&v, events) {
                self.counts.unknown(events);
            }
        }
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let mut out = self.counts.outcome();
        out.model = self.model.clone();
        out.context_tokens = (self.peak_context > 0).then_some(self.peak_context);
        out.final_text = self.step_text.take();
        if self.steps > 0 {
            out.usage = Some(self.usage);
        }
        if self.saw_cost && (self.cost > 0.0 || self.usage.total() == 0) {
            out.cost_usd = Some(self.cost);
            out.cost_source = CostSource::Reported;
        }
        let mut texts: Vec<String> = Vec::new();
        if let Some(e) = &self.error {
            out.error = Some(opencode_class(e));
            let mut message = if e.message.trim().is_empty() {
                "agent reported an error".to_string()
            } else {
                e.message.clone()
            };
            if let Some(status) = e.status {
                if !message.contains(&status.to_string()) {
                    message = format!("API error {status}: {message}");
                }
            }
            out.error_message = Some(one_line(&message));
            texts.push(e.details.clone());
            texts.push(e.message.clone());
        } else if !exit.success() || (self.steps == 0 && out.final_text.is_empty()) {
            let (class, message) =
                failure_without_result(exit, stderr_tail, None, self.stray.as_deref());
            out.error = Some(class);
            out.error_message = Some(message);
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

    fn exit(code: i32) -> ExitInfo {
        ExitInfo {
            code: Some(code),
            signal: None,
        }
    }

    fn run(lines: &[&str], code: i32) -> (Vec<AgentEvent>, AgentOutcome) {
        let mut p = OpencodeJsonParser::default();
        let mut ev = Vec::new();
        for l in lines {
            p.line(l.as_bytes(), false, &mut ev);
        }
        let out = p.finish(exit(code), "");
        (ev, out)
    }

    #[test]
    fn zero_cost_with_tokens_is_unknown() {
        let (_, out) = run(
            &[
                r#"{"type":"text","part":{"type":"text","text":"hi"}}"#,
                r#"{"type":"step_finish","part":{"reason":"stop","tokens":{"input":10,"output":2,"reasoning":3,"cache":{"read":1,"write":4}},"cost":0}}"#,
            ],
            0,
        );
        assert_eq!(out.cost_usd, None);
        assert_eq!(out.cost_source, CostSource::Unknown);
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 10,
                output: 5,
                cache_read: 1,
                cache_write: 4
            })
        );
        assert_eq!(out.final_text, "hi");
        assert_eq!(out.error, None);
    }

    #[test]
    fn texts_of_one_step_are_joined_and_a_new_step_replaces_them() {
        let (_, out) = run(
            &[
                r#"{"type":"step_start","part":{}}"#,
                r#"{"type":"text","part":{"text":"a"}}"#,
                r#"{"type":"text","part":{"text":"b"}}"#,
                r#"{"type":"step_finish","part":{"reason":"tool-calls"}}"#,
                r#"{"type":"step_start","part":{}}"#,
                r#"{"type":"text","part":{"text":"c"}}"#,
                r#"{"type":"text","part":{"text":"d"}}"#,
                r#"{"type":"step_finish","part":{"reason":"stop"}}"#,
            ],
            0,
        );
        assert_eq!(out.final_text, "c\nd");
        assert_eq!(out.usage, Some(Tokens::default()));
        assert_eq!(out.cost_usd, None);
    }

    #[test]
    fn errors_without_status() {
        let (ev, out) = run(
            &[
                r#"{"type":"error","error":{"name":"ProviderAuthError","data":{"providerID":"x","message":"No API key"}}}"#,
            ],
            1,
        );
        assert_eq!(
            ev,
            vec![AgentEvent::Error {
                message: "No API key".into()
            }]
        );
        assert_eq!(out.error, Some(ErrorClass::Auth));
        let (_, out) = run(&[r#"{"type":"error","error":{"name":"UnknownError"}}"#], 1);
        assert_eq!(out.error, Some(ErrorClass::Unknown));
        assert_eq!(out.error_message.as_deref(), Some("UnknownError"));
    }

    #[test]
    fn tool_errors_and_unknown_lines() {
        let (ev, out) = run(
            &[
                r#"{"type":"tool_use","part":{"tool":"edit","state":{"status":"error","input":{"filePath":"x"},"error":"no such file"}}}"#,
                r#"{"type":"tool_use"}"#,
                r#"{"type":"whatever","part":{}}"#,
            ],
            0,
        );
        assert_eq!(
            ev,
            vec![
                AgentEvent::ToolUse {
                    name: "edit".into(),
                    input: r#"{"filePath":"x"}"#.into()
                },
                AgentEvent::ToolResult { is_error: true },
                AgentEvent::Unknown,
                AgentEvent::Unknown,
            ]
        );
        // No step, no text, exit 0: nothing happened.
        assert_eq!(out.error, Some(ErrorClass::Crash));
    }
}
