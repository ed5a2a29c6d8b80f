//! Google Gemini CLI: `gemini --output-format stream-json`, prompt on stdin (reference:
//! agent-clis.md §4).

use serde_json::Value;

use crate::backend::{model_of, prefix_args, program_or};
use crate::classify::{classify_status, classify_text, embedded_status, gemini_exit_status};
use crate::event::{AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, Tokens};
use crate::parser::{
    compact, error_line, exit_summary, head_str, one_line, retry_hint, str_field, u64_field,
    with_detail, Counts, StreamParser, TailBuf, STRAY_MAX,
};
use crate::registry::{BackendDescriptor, Install};
use crate::retry_after::Clock;
use crate::tools::{ToolSpec, ToolTable, WriteInput};
use crate::{
    Backend, BackendConfig, CommandContext, CommandSpec, OutputFormat, PermissionMode, PromptVia,
};

/// Gemini CLI's tools that run commands or write files (offered only with `--yolo` or an
/// approval mode that allows them).
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell(
            "run_shell_command",
            &["command"],
            &["directory", "dir_path"],
        ),
        ToolSpec::write("write_file", WriteInput::path(&["file_path"])),
        ToolSpec::write("replace", WriteInput::path(&["file_path"])),
    ],
};

/// Registry entry (agent-clis.md §4). generativelanguage.googleapis.com with an API key; the
/// "Login with Google" credentials use Code Assist (cloudcode-pa) and Google's token endpoint.
/// Usage statistics go to play.googleapis.com unless `privacy.usageStatisticsEnabled = false`.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "gemini",
    aliases: &[],
    program: "gemini",
    install: Install::Npm("@google/gemini-cli"),
    auth_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
    api_hosts: &[
        "generativelanguage.googleapis.com",
        "cloudcode-pa.googleapis.com",
        "oauth2.googleapis.com",
    ],
    api_host_setting: Some("GOOGLE_GEMINI_BASE_URL"),
    home_state: &[".gemini"],
    state_env: &[],
    prompt: PromptVia::Stdin,
    auto: true,
    output: Some(OutputFormat::GeminiStreamJson),
    tools: TOOLS,
    new: |config| Box::new(GeminiBackend::new(config)),
};

/// Gemini CLI: `gemini --output-format stream-json <permissions> [-m MODEL] [ARGS…]`, the prompt
/// on stdin. Headless mode starts whenever stdin is not a terminal, and the CLI reads the whole
/// of stdin as the prompt (`-p` would only be appended to it), so no `-p` is passed.
///
/// `GEMINI_CLI_TRUST_WORKSPACE=true` is set: in a folder it has not been told to trust, the CLI
/// refuses to run headless (exit 55) and downgrades `--yolo`; ralph was pointed at this project
/// on purpose.
///
/// Permissions: `Full` → `--yolo`; `AllowList` → `--allowed-tools=TOOL` per tool (those run
/// without confirmation; others are not offered headless); `Sandbox` →
/// `--approval-mode auto_edit` (file edits are approved, shell commands are not offered).
#[derive(Debug, Clone)]
pub struct GeminiBackend {
    config: BackendConfig,
}

impl GeminiBackend {
    pub fn new(config: BackendConfig) -> Self {
        GeminiBackend { config }
    }
}

impl Backend for GeminiBackend {
    fn descriptor(&self) -> &'static BackendDescriptor {
        &DESCRIPTOR
    }
    fn program(&self) -> &str {
        program_or(&self.config, DESCRIPTOR.program)
    }
    fn supports_permission(&self, _mode: &PermissionMode) -> bool {
        true
    }
    fn command(&self, ctx: &CommandContext<'_>) -> CommandSpec {
        let mut args = prefix_args(&self.config);
        args.extend(["--output-format", "stream-json"].map(String::from));
        match &self.config.permission {
            PermissionMode::Full => args.push("--yolo".into()),
            PermissionMode::AllowList(tools) => {
                args.extend(tools.iter().map(|t| format!("--allowed-tools={t}")));
            }
            PermissionMode::Sandbox => {
                args.extend(["--approval-mode", "auto_edit"].map(String::from));
            }
        }
        if let Some(model) = model_of(ctx) {
            args.extend(["-m".to_string(), model.to_string()]);
        }
        args.extend(ctx.extra_args.iter().cloned());
        CommandSpec {
            program: self.program().to_string(),
            args,
            env: vec![("GEMINI_CLI_TRUST_WORKSPACE".to_string(), "true".to_string())],
            stdin: Some(ctx.prompt.as_bytes().to_vec()),
        }
    }
    fn parser(&self) -> Box<dyn StreamParser> {
        Box::new(GeminiStreamParser::default())
    }
    fn parser_for(&self, ctx: &CommandContext<'_>) -> Box<dyn StreamParser> {
        Box::new(GeminiStreamParser::default().with_model(model_of(ctx)))
    }
}

/// What the `result` line (or a bare `{"error": …}` object) said.
#[derive(Debug, Default)]
struct GeminiResult {
    success: bool,
    error_type: Option<String>,
    error_message: Option<String>,
    /// The CLI's own exit code inside the error object (`"code": 41`).
    error_code: Option<i64>,
    usage: Option<Tokens>,
}

/// Gemini CLI `--output-format stream-json`.
///
/// - Final answer: the assistant `message` chunks (`delta: true`) after the last `tool_use`,
///   concatenated: the text of the final turn.
/// - Usage: `result.stats`. `input_tokens` includes cached tokens, `input` is the uncached part
///   (3600 of 4500 in gemini-stream.jsonl), so `input = input` (or `input_tokens − cached`),
///   `cache_read = cached`, `output = output_tokens` + thinking tokens (`thoughts` where
///   reported, else what `total_tokens` has beyond input and output). No cache writes, no cost
///   (`CostSource::Unknown`).
/// - Errors: `result.status == "error"` with `error.message`. On API errors the CLI exits with
///   the HTTP status mod 256 (429 → 173, 401 → 145, 500 → 244), which decides where the text
///   alone is ambiguous; its own codes: 41 auth misconfiguration, 53 turn limit, 55 untrusted
///   folder.
#[derive(Debug, Default)]
pub struct GeminiStreamParser {
    counts: Counts,
    clock: Clock,
    model: Option<String>,
    init_model: Option<String>,
    turn_text: TailBuf,
    result: Option<GeminiResult>,
    last_error: Option<String>,
    stray: Option<String>,
}

impl GeminiStreamParser {
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
            Some("init") => {
                let model = str_field(v, "model").map(str::to_string);
                if model.is_some() {
                    self.init_model.clone_from(&model);
                }
                events.push(AgentEvent::Init { model });
            }
            Some("message") => match str_field(v, "role") {
                Some("assistant") => {
                    let text = str_field(v, "content").unwrap_or("");
                    self.turn_text.push(text);
                    events.push(AgentEvent::Text {
                        text: text.to_string(),
                    });
                }
                Some(_) => events.push(AgentEvent::Other),
                None => return false,
            },
            Some("tool_use") => {
                // Text before a tool call was narration; the answer is what follows the last.
                self.turn_text.clear();
                events.push(AgentEvent::ToolUse {
                    name: str_field(v, "tool_name").unwrap_or("").to_string(),
                    input: compact(v.get("parameters")),
                });
            }
            Some("tool_result") => {
                let ok = str_field(v, "status") == Some("success");
                events.push(AgentEvent::ToolResult { is_error: !ok });
            }
            Some("error") => {
                let message = str_field(v, "message").unwrap_or("").to_string();
                self.last_error = Some(head_str(&message, STRAY_MAX).to_string());
                events.push(AgentEvent::Error { message });
            }
            Some("result") => {
                let success = str_field(v, "status") == Some("success");
                let mut r = error_object(v.get("error"));
                r.success = success;
                r.usage = stats_usage(v.get("stats"));
                events.push(AgentEvent::Result { is_error: !success });
                self.result = Some(r);
            }
            // `--output-format json` failures print `{"session_id":…,"error":{…,"code":41}}`.
            None if v.get("error").is_some_and(Value::is_object) => {
                let r = error_object(v.get("error"));
                events.push(AgentEvent::Result { is_error: true });
                self.result = Some(r);
            }
            _ => return false,
        }
        true
    }
}

fn error_object(e: Option<&Value>) -> GeminiResult {
    let Some(e) = e.filter(|e| e.is_object()) else {
        return GeminiResult::default();
    };
    GeminiResult {
        error_type: str_field(e, "type").map(str::to_string),
        error_message: str_field(e, "message").map(|m| head_str(m, 4 * STRAY_MAX).to_string()),
        error_code: e.get("code").and_then(Value::as_i64),
        ..GeminiResult::default()
    }
}

fn stats_usage(stats: Option<&Value>) -> Option<Tokens> {
    let s = stats.filter(|s| s.is_object())?;
    let keys = ["input_tokens", "output_tokens", "cached", "input"];
    if !keys.iter().any(|k| s.get(*k).is_some_and(Value::is_u64)) {
        return None;
    }
    let cached = u64_field(s, "cached");
    let input = s
        .get("input")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| u64_field(s, "input_tokens").saturating_sub(cached));
    let output = u64_field(s, "output_tokens");
    let mut thoughts = u64_field(s, "thoughts") + u64_field(s, "thoughts_tokens");
    // `output_tokens` counts the answer's candidates; thinking tokens (billed as output) are
    // only in `total_tokens`: whatever the total has beyond input and output is thinking.
    if let Some(total) = s.get("total_tokens").and_then(Value::as_u64) {
        let prompt = input + cached;
        thoughts = thoughts.max(total.saturating_sub(prompt + output));
    }
    Some(Tokens {
        input,
        output: output + thoughts,
        cache_read: cached,
        cache_write: 0,
    })
}

/// The class of a Gemini failure from its exit code, error type and message.
fn gemini_class(
    exit: ExitInfo,
    code_in_json: Option<i64>,
    error_type: &str,
    text: &str,
) -> Option<ErrorClass> {
    let own_code = code_in_json.or(exit.code.map(i64::from));
    match own_code {
        Some(41) => return Some(ErrorClass::Auth),
        Some(53) => return Some(ErrorClass::MaxTurns),
        Some(55) => return Some(ErrorClass::PermissionDenied),
        _ => {}
    }
    let t = error_type.to_ascii_lowercase();
    if t.contains("turnlimit") {
        return Some(ErrorClass::MaxTurns);
    }
    if t.contains("authentication") {
        return Some(ErrorClass::Auth);
    }
    let status = exit
        .code
        .and_then(gemini_exit_status)
        .or_else(|| embedded_status(text));
    match status {
        Some(status) => Some(classify_status(status, text)),
        None => classify_text(&format!("{error_type}\n{text}")),
    }
}

impl StreamParser for GeminiStreamParser {
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
        out.final_text = self.turn_text.take();
        let mut texts: Vec<String> = Vec::new();
        match self.result.take() {
            Some(r) if r.success => out.usage = r.usage,
            Some(r) => {
                out.usage = r.usage;
                let message = r
                    .error_message
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .or_else(|| self.last_error.clone())
                    .unwrap_or_default();
                let error_type = r.error_type.as_deref().unwrap_or("");
                let class = gemini_class(exit, r.error_code, error_type, &message)
                    .or_else(|| classify_text(stderr_tail))
                    .unwrap_or(ErrorClass::Unknown);
                out.error = Some(class);
                out.error_message = Some(if message.trim().is_empty() {
                    with_detail(
                        "agent reported an error".to_string(),
                        Some(error_type).filter(|t| !t.is_empty() && *t != "unknown"),
                    )
                } else {
                    one_line(&message)
                });
                texts.push(message);
                texts.push(stderr_tail.to_string());
            }
            None => {
                let agent_error = self.last_error.as_deref().or(self.stray.as_deref());
                let haystack = format!("{}\n{stderr_tail}", agent_error.unwrap_or(""));
                let class = if exit.success() {
                    ErrorClass::Crash
                } else {
                    gemini_class(exit, None, "", &haystack).unwrap_or(ErrorClass::Crash)
                };
                let detail = agent_error
                    .filter(|e| !e.trim().is_empty())
                    .or_else(|| (!exit.success()).then(|| error_line(stderr_tail)).flatten());
                let summary = if exit.success() {
                    "agent exited without a result".to_string()
                } else {
                    exit_summary(exit)
                };
                out.error = Some(class);
                out.error_message = Some(with_detail(summary, detail));
                texts.push(haystack);
            }
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

    fn run(lines: &[&str], code: i32, stderr: &str) -> (Vec<AgentEvent>, AgentOutcome) {
        let mut p = GeminiStreamParser::default();
        let mut ev = Vec::new();
        for l in lines {
            p.line(l.as_bytes(), false, &mut ev);
        }
        let out = p.finish(exit(code), stderr);
        (ev, out)
    }

    #[test]
    fn own_exit_codes() {
        let (_, out) = run(&[], 53, "");
        assert_eq!(out.error, Some(ErrorClass::MaxTurns));
        let (_, out) = run(&[], 55, "Gemini CLI is not running in a trusted directory.");
        assert_eq!(out.error, Some(ErrorClass::PermissionDenied));
        assert_eq!(
            out.error_message.as_deref(),
            Some("exited with code 55: Gemini CLI is not running in a trusted directory.")
        );
        let (ev, out) = run(
            &[
                r#"{"session_id":"s","error":{"type":"Error","message":"Invalid auth method selected.","code":41}}"#,
            ],
            41,
            "",
        );
        assert_eq!(ev, vec![AgentEvent::Result { is_error: true }]);
        assert_eq!(out.error, Some(ErrorClass::Auth));
        assert_eq!(
            out.error_message.as_deref(),
            Some("Invalid auth method selected.")
        );
        let (_, out) = run(&[], 0, "");
        assert_eq!(out.error, Some(ErrorClass::Crash));
    }

    #[test]
    fn exit_status_decides_when_text_is_vague() {
        let (_, out) = run(
            &[
                r#"{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: something odd]"}}"#,
            ],
            173,
            "",
        );
        assert_eq!(out.error, Some(ErrorClass::RateLimit));
        let (_, out) = run(
            &[
                r#"{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: something odd]"}}"#,
            ],
            147,
            "",
        );
        assert_eq!(out.error, Some(ErrorClass::Auth));
        let (_, out) = run(&[], 244, "boom");
        assert_eq!(out.error, Some(ErrorClass::Server));
        let (_, out) = run(
            &[
                r#"{"type":"result","status":"error","error":{"type":"FatalTurnLimitedError","message":"Reached max turns"}}"#,
            ],
            1,
            "",
        );
        assert_eq!(out.error, Some(ErrorClass::MaxTurns));
    }

    #[test]
    fn final_text_is_the_last_turn_and_thoughts_count_as_output() {
        let (ev, out) = run(
            &[
                r#"{"type":"message","role":"assistant","content":"Let me ","delta":true}"#,
                r#"{"type":"message","role":"assistant","content":"look.","delta":true}"#,
                r#"{"type":"tool_use","tool_name":"read_file","tool_id":"t1","parameters":{"file_path":"a"}}"#,
                r#"{"type":"tool_result","tool_id":"t1","status":"error","error":{"type":"x","message":"no"}}"#,
                r#"{"type":"error","severity":"warning","message":"Loop detected"}"#,
                r#"{"type":"message","role":"assistant","content":"All ","delta":true}"#,
                r#"{"type":"message","role":"assistant","content":"done.","delta":true}"#,
                r#"{"type":"result","status":"success","stats":{"input_tokens":100,"output_tokens":10,"cached":40,"thoughts":5}}"#,
            ],
            0,
            "",
        );
        assert_eq!(ev[3], AgentEvent::ToolResult { is_error: true });
        assert_eq!(out.final_text, "All done.");
        assert_eq!(out.error, None);
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 60,
                output: 15,
                cache_read: 40,
                cache_write: 0
            })
        );
        // Thinking shows only in the total.
        let (_, out) = run(
            &[
                r#"{"type":"result","status":"success","stats":{"total_tokens":130,"input_tokens":100,"output_tokens":10,"cached":40,"input":60}}"#,
            ],
            0,
            "",
        );
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 60,
                output: 30,
                cache_read: 40,
                cache_write: 0
            })
        );
    }

    #[test]
    fn unknown_shapes() {
        let (ev, out) = run(
            &[r#"{"type":"message"}"#, r#"{"type":"mystery"}"#, "[", "{}"],
            0,
            "",
        );
        assert_eq!(
            ev,
            vec![
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Malformed,
                AgentEvent::Unknown
            ]
        );
        assert_eq!((out.unknown_lines, out.malformed_lines), (3, 1));
    }
}
