//! Tolerant line parsers for agent output.

use serde_json::Value;

use crate::classify::{classify_status, classify_text};
use crate::event::{
    AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, RetryAfter, Tokens, FINAL_TEXT_MAX,
};
use crate::retry_after::Clock;

/// Parses one agent call's stdout, line by line, as it streams. Memory must stay bounded
/// whatever the agent prints: keep only what the outcome needs.
pub trait StreamParser: Send {
    /// One line of stdout without its line terminator. Lines longer than the engine's cap arrive
    /// truncated, with `truncated` set. Push zero or more events.
    fn line(&mut self, line: &[u8], truncated: bool, events: &mut Vec<AgentEvent>);

    /// The agent has exited and its stdout is closed. `stderr_tail` is the last few KiB of
    /// stderr, for classifying failures that only show there.
    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome;
}

/// Longest `error_message`: it is one line in a terminal summary and a database column.
pub(crate) const ERROR_MESSAGE_MAX: usize = 300;
/// How much of the end of stdout joins stderr when a text agent's failure is classified: enough
/// for a final error message, not so much that an old mention of "429" in the work log counts.
pub(crate) const STDOUT_CLASSIFY_TAIL: usize = 2048;
/// Cap on a non-JSON line kept from a JSON stream (an error the CLI printed to stdout).
pub(crate) const STRAY_MAX: usize = 1024;
/// Cap on the denied tool names kept for the error message.
const DENIED_NAMES_MAX: usize = 8;
/// Cap on the entries of Claude's `errors` array kept for the error message.
const RESULT_ERRORS_MAX: usize = 4;

/// The last `max` bytes of `s`, moved forward to a char boundary.
pub(crate) fn tail_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The first `max` bytes of `s`, moved back to a char boundary.
pub(crate) fn head_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Keeps the tail of a growing text in at most `2 * FINAL_TEXT_MAX` bytes. Trimming lazily (only
/// once the buffer doubles) keeps appending amortised O(1); trimming on every line would move
/// 64 KiB per line of output.
#[derive(Debug, Default)]
pub(crate) struct TailBuf {
    buf: String,
}

impl TailBuf {
    pub(crate) fn push(&mut self, s: &str) {
        if s.len() >= FINAL_TEXT_MAX {
            self.buf.clear();
            self.buf.push_str(tail_str(s, FINAL_TEXT_MAX));
            return;
        }
        self.buf.push_str(s);
        if self.buf.len() > 2 * FINAL_TEXT_MAX {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let start = self.buf.len() - tail_str(&self.buf, FINAL_TEXT_MAX).len();
        self.buf.drain(..start);
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn take(&mut self) -> String {
        self.compact();
        std::mem::take(&mut self.buf)
    }
}

/// Whitespace (newlines included) collapsed to single spaces, cut to [`ERROR_MESSAGE_MAX`].
pub(crate) fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.len() <= ERROR_MESSAGE_MAX {
        joined
    } else {
        format!("{}…", head_str(&joined, ERROR_MESSAGE_MAX))
    }
}

pub(crate) fn last_nonempty_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// "exited with code 3", "killed by signal 9".
pub(crate) fn exit_summary(exit: ExitInfo) -> String {
    match (exit.code, exit.signal) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "exited without an exit status".to_string(),
    }
}

pub(crate) fn with_detail(summary: String, detail: Option<&str>) -> String {
    match detail {
        Some(d) if !d.trim().is_empty() => one_line(&format!("{summary}: {d}")),
        _ => summary,
    }
}

/// Line counters every JSON parser keeps.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) lines: u64,
    pub(crate) unknown: u64,
    pub(crate) malformed: u64,
}

impl Counts {
    /// The line handling every JSON-lines parser shares: count the line, keep a plain-text line
    /// as `stray` (CLIs print some fatal errors that way), and return the JSON value, if any,
    /// for the parser's own handler.
    pub(crate) fn next_json(
        &mut self,
        line: &[u8],
        stray: &mut Option<String>,
        events: &mut Vec<AgentEvent>,
    ) -> Option<Value> {
        self.lines += 1;
        match json_line(line) {
            JsonLine::Empty => None,
            JsonLine::Malformed { stray: s } => {
                self.malformed += 1;
                if s.is_some() {
                    *stray = s;
                }
                events.push(AgentEvent::Malformed);
                None
            }
            JsonLine::Value(v) => Some(v),
        }
    }

    /// A JSON line of a shape the parser does not know: counted, never dropped silently.
    pub(crate) fn unknown(&mut self, events: &mut Vec<AgentEvent>) {
        self.unknown += 1;
        events.push(AgentEvent::Unknown);
    }

    /// An outcome carrying these counts and nothing else yet.
    pub(crate) fn outcome(&self) -> AgentOutcome {
        AgentOutcome {
            lines: self.lines,
            unknown_lines: self.unknown,
            malformed_lines: self.malformed,
            ..AgentOutcome::default()
        }
    }
}

/// One line of a JSON-lines stream.
pub(crate) enum JsonLine {
    /// Blank: not counted as anything but a line.
    Empty,
    Value(Value),
    /// Not JSON. `stray` is the line as text when it does not even start like JSON (CLIs print
    /// some fatal errors as plain text on stdout), bounded.
    Malformed {
        stray: Option<String>,
    },
}

pub(crate) fn json_line(line: &[u8]) -> JsonLine {
    let line = line.trim_ascii();
    if line.is_empty() {
        return JsonLine::Empty;
    }
    match serde_json::from_slice(line) {
        Ok(v) => JsonLine::Value(v),
        Err(_) => {
            let stray = (!line.starts_with(b"{")).then(|| {
                let text = String::from_utf8_lossy(head_bytes(line, STRAY_MAX + 4));
                head_str(&text, STRAY_MAX).to_string()
            });
            JsonLine::Malformed { stray }
        }
    }
}

/// Classes whose end an agent may announce ("resets 4pm", "retry-after: 30").
pub(crate) fn is_limit(class: Option<ErrorClass>) -> bool {
    matches!(
        class,
        Some(ErrorClass::RateLimit | ErrorClass::UsageLimit | ErrorClass::Quota)
    )
}

/// The first time any of `texts` names for the limit to lift, for limit classes only.
pub(crate) fn retry_hint(
    class: Option<ErrorClass>,
    clock: &Clock,
    texts: &[&str],
) -> Option<RetryAfter> {
    if !is_limit(class) {
        return None;
    }
    texts
        .iter()
        .filter(|t| !t.is_empty())
        .find_map(|t| clock.retry_after(t))
}

/// The most telling line of a stderr tail: the last one that mentions an error (stack frames
/// such as "at throwErrorIfNotOK (file:…)" aside), else the last non-empty one.
pub(crate) fn error_line(s: &str) -> Option<&str> {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.starts_with("at ") && l.to_ascii_lowercase().contains("error"))
        .or_else(|| last_nonempty_line(s))
}

/// A JSON value as compact text (`{}` when absent).
pub(crate) fn compact(v: Option<&Value>) -> String {
    match v {
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
        None => "{}".to_string(),
    }
}

/// How a call that printed no final result ended: classified from the agent's own last error
/// message (if any), its stray stdout text and the stderr tail; `Crash` when nothing says more.
pub(crate) fn failure_without_result(
    exit: ExitInfo,
    stderr_tail: &str,
    agent_error: Option<&str>,
    stray: Option<&str>,
) -> (ErrorClass, String) {
    // After a clean exit only the agent's own words count; stderr is its usual noise.
    let stderr_part = if exit.success() { "" } else { stderr_tail };
    let haystack = format!(
        "{}\n{}\n{stderr_part}",
        agent_error.unwrap_or(""),
        stray.unwrap_or("")
    );
    let class = classify_text(&haystack).unwrap_or(ErrorClass::Crash);
    let agent_error = agent_error.filter(|e| !e.trim().is_empty());
    let message = if exit.success() {
        // A clean exit's stderr is the CLI's usual noise, not the cause.
        with_detail(
            "agent exited without a result".to_string(),
            agent_error.or(stray),
        )
    } else {
        let detail = agent_error.or_else(|| error_line(stderr_tail)).or(stray);
        with_detail(exit_summary(exit), detail)
    };
    (class, message)
}

/// Plain text output: the final answer is the tail of everything printed.
///
/// Every non-empty line is also pushed as [`AgentEvent::Text`], so that renderers treat text
/// agents like structured ones.
#[derive(Debug, Default)]
pub struct TextParser {
    tail: TailBuf,
    lines: u64,
    clock: Clock,
}

impl TextParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

impl StreamParser for TextParser {
    fn line(&mut self, line: &[u8], _truncated: bool, events: &mut Vec<AgentEvent>) {
        let text = String::from_utf8_lossy(line);
        if self.lines > 0 {
            self.tail.push("\n");
        }
        self.lines += 1;
        self.tail.push(&text);
        if !text.is_empty() {
            events.push(AgentEvent::Text {
                text: text.into_owned(),
            });
        }
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let final_text = self.tail.take();
        let mut out = AgentOutcome {
            lines: self.lines,
            cost_source: CostSource::Unknown,
            ..AgentOutcome::default()
        };
        if !exit.success() {
            let stdout_end = tail_str(&final_text, STDOUT_CLASSIFY_TAIL);
            let haystack = format!("{stderr_tail}\n{stdout_end}");
            out.error = Some(classify_text(&haystack).unwrap_or(ErrorClass::Crash));
            let detail = last_nonempty_line(stderr_tail).or_else(|| last_nonempty_line(stdout_end));
            out.error_message = Some(with_detail(exit_summary(exit), detail));
            out.retry_after = retry_hint(out.error, &self.clock, &[stderr_tail, stdout_end]);
        }
        out.final_text = final_text;
        out
    }
}

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

pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(crate) fn u64_field(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

pub(crate) fn u16_field(v: &Value, key: &str) -> Option<u16> {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
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

pub(crate) fn head_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[..b.len().min(max)]
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

    fn feed(p: &mut dyn StreamParser, lines: &[&str]) -> Vec<AgentEvent> {
        let mut ev = Vec::new();
        for l in lines {
            p.line(l.as_bytes(), false, &mut ev);
        }
        ev
    }

    #[test]
    fn tail_str_respects_char_boundaries() {
        assert_eq!(tail_str("héllo", 4), "llo");
        assert_eq!(tail_str("héllo", 5), "éllo");
        assert_eq!(tail_str("héllo", 6), "héllo");
        assert_eq!(head_str("héllo", 2), "h");
    }

    #[test]
    fn tailbuf_stays_bounded_and_keeps_the_end() {
        let mut t = TailBuf::default();
        let chunk = "é".repeat(1000);
        for _ in 0..1000 {
            t.push(&chunk);
            assert!(t.buf.len() <= 2 * FINAL_TEXT_MAX + chunk.len());
        }
        t.push("END");
        let s = t.take();
        assert!(s.len() <= FINAL_TEXT_MAX);
        assert!(s.ends_with("éEND"));
    }

    #[test]
    fn text_parser_success() {
        let mut p = TextParser::default();
        let ev = feed(&mut p, &["first", "", "LOOP_COMPLETE"]);
        assert_eq!(ev.len(), 2);
        let out = p.finish(exit(0), "some warning");
        assert_eq!(out.final_text, "first\n\nLOOP_COMPLETE");
        assert_eq!(out.lines, 3);
        assert_eq!(out.error, None);
        assert_eq!(out.usage, None);
        assert_eq!(out.cost_source, CostSource::Unknown);
    }

    #[test]
    fn text_parser_failure_classified_from_stderr() {
        let mut p = TextParser::default();
        feed(&mut p, &["working"]);
        let out = p.finish(exit(3), "boom\nError: 429 Too Many Requests\n\n");
        assert_eq!(out.error, Some(ErrorClass::RateLimit));
        assert_eq!(
            out.error_message.as_deref(),
            Some("exited with code 3: Error: 429 Too Many Requests")
        );
    }

    #[test]
    fn text_parser_failure_classified_from_stdout_end() {
        let mut p = TextParser::default();
        feed(&mut p, &["Invalid API key"]);
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(ErrorClass::Auth));
        assert_eq!(
            out.error_message.as_deref(),
            Some("exited with code 1: Invalid API key")
        );
    }

    #[test]
    fn text_parser_signal_is_a_crash() {
        let mut p = TextParser::default();
        let out = p.finish(
            ExitInfo {
                code: None,
                signal: Some(9),
            },
            "",
        );
        assert_eq!(out.error, Some(ErrorClass::Crash));
        assert_eq!(out.error_message.as_deref(), Some("killed by signal 9"));
    }

    #[test]
    fn one_line_collapses_and_bounds() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        let long = "x".repeat(1000);
        let s = one_line(&long);
        assert!(s.len() <= ERROR_MESSAGE_MAX + "…".len());
        assert!(s.ends_with('…'));
    }

    #[test]
    fn claude_multiple_blocks_on_one_line() {
        let mut p = ClaudeStreamParser::default();
        let ev = feed(
            &mut p,
            &[
                r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"a"},{"type":"tool_use","name":"Bash","input":{"command":"ls -l"}},{"type":"text","text":"b"}]},"parent_tool_use_id":null}"#,
            ],
        );
        assert_eq!(
            ev,
            vec![
                AgentEvent::Other,
                AgentEvent::Text { text: "a".into() },
                AgentEvent::ToolUse {
                    name: "Bash".into(),
                    input: r#"{"command":"ls -l"}"#.into()
                },
                AgentEvent::Text { text: "b".into() },
            ]
        );
        let out = p.finish(exit(0), "");
        assert_eq!(out.final_text, "a\nb");
        assert_eq!(out.error, Some(ErrorClass::Crash));
    }

    #[test]
    fn claude_subagent_text_is_not_the_answer() {
        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"main"}]},"parent_tool_use_id":null}"#,
                r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"sub"}]},"parent_tool_use_id":"toolu_1"}"#,
            ],
        );
        assert_eq!(p.finish(exit(0), "").final_text, "main");
    }

    #[test]
    fn claude_new_message_replaces_fallback_text() {
        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"one"}]}}"#,
                r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"two"}]}}"#,
                r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"three"}]}}"#,
            ],
        );
        assert_eq!(p.finish(exit(0), "").final_text, "three");
    }

    #[test]
    fn claude_result_without_status_uses_text_then_assistant_error() {
        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"result","subtype":"success","is_error":true,"result":"Prompt is too long"}"#,
            ],
        );
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(ErrorClass::ContextOverflow));
        assert_eq!(out.error_message.as_deref(), Some("Prompt is too long"));

        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"API Error: billing"}]},"error":"billing_error"}"#,
                r#"{"type":"result","subtype":"success","is_error":true,"result":"Something odd"}"#,
            ],
        );
        assert_eq!(p.finish(exit(1), "").error, Some(ErrorClass::Quota));

        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[r#"{"type":"result","subtype":"error_during_execution","is_error":true}"#],
        );
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(ErrorClass::Unknown));
        assert_eq!(
            out.error_message.as_deref(),
            Some("agent reported an error (subtype error_during_execution)")
        );
    }

    #[test]
    fn claude_status_mapping_through_result() {
        let cases: &[(u16, &str, ErrorClass)] = &[
            (429, "API Error: Request rejected (429) · rate limit", ErrorClass::RateLimit),
            (429, "You've hit your limit · resets 4pm (Europe/Berlin)", ErrorClass::UsageLimit),
            (429, "You exceeded your current quota", ErrorClass::Quota),
            (400, "You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC.", ErrorClass::UsageLimit),
            (400, "prompt is too long: 250000 tokens > 200000 maximum", ErrorClass::ContextOverflow),
            (403, "Forbidden", ErrorClass::Auth),
            (502, "Bad gateway", ErrorClass::Server),
        ];
        for (status, text, want) in cases {
            let mut p = ClaudeStreamParser::default();
            let line = serde_json::json!({
                "type": "result", "subtype": "success", "is_error": true,
                "api_error_status": status, "result": text,
            })
            .to_string();
            feed(&mut p, &[&line]);
            let out = p.finish(exit(1), "");
            assert_eq!(out.error, Some(*want), "{status} {text}");
            assert!(out
                .error_message
                .as_deref()
                .is_some_and(|m| m.contains(&status.to_string())));
        }
    }

    #[test]
    fn claude_success_result_trusted_despite_exit_code() {
        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.5}"#,
            ],
        );
        let out = p.finish(
            ExitInfo {
                code: None,
                signal: Some(15),
            },
            "",
        );
        assert_eq!(out.error, None);
        assert_eq!(out.final_text, "done");
        assert_eq!(out.usage, None);
        assert_eq!(out.cost_usd, Some(0.5));
        assert_eq!(out.cost_source, CostSource::Reported);
    }

    #[test]
    fn claude_plain_text_error_on_stdout() {
        let mut p = ClaudeStreamParser::default();
        let ev = feed(&mut p, &["Error: Invalid API key · Please run /login"]);
        assert_eq!(ev, vec![AgentEvent::Malformed]);
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(ErrorClass::Auth));
        assert_eq!(out.malformed_lines, 1);
        assert_eq!(
            out.error_message.as_deref(),
            Some("exited with code 1: Error: Invalid API key · Please run /login")
        );
    }

    #[test]
    fn claude_truncated_result_line() {
        let mut p = ClaudeStreamParser::default();
        let mut ev = Vec::new();
        p.line(
            br#"{"type":"result","subtype":"success","is_error":false,"result":"aaaa"#,
            true,
            &mut ev,
        );
        assert_eq!(ev, vec![AgentEvent::Malformed]);
        let out = p.finish(exit(0), "");
        assert_eq!(out.error, Some(ErrorClass::Crash));
        assert!(out
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("line length cap")));
    }

    #[test]
    fn claude_shapes_that_are_unknown_or_other() {
        let mut p = ClaudeStreamParser::default();
        let ev = feed(
            &mut p,
            &[
                "42",
                r#""a string""#,
                r#"{"no_type":1}"#,
                r#"{"type":"brand_new"}"#,
                r#"{"type":"assistant"}"#,
                r#"{"type":"assistant","message":{"content":"not an array"}}"#,
                r#"{"type":"user","message":{"content":"plain prompt"}}"#,
                r#"{"type":"system","subtype":"compact_boundary"}"#,
                r#"{"type":"system","subtype":"init"}"#,
                r#"{"type":"system","subtype":"api_retry","error_status":99999,"error":"unknown"}"#,
                r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning"}}"#,
                "   ",
            ],
        );
        assert_eq!(
            ev,
            vec![
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Unknown,
                AgentEvent::Other,
                AgentEvent::Other,
                AgentEvent::Init { model: None },
                AgentEvent::ApiRetry {
                    status: None,
                    error: Some("unknown".into())
                },
                AgentEvent::Other,
            ]
        );
        let out = p.finish(exit(0), "");
        assert_eq!(
            (out.lines, out.unknown_lines, out.malformed_lines),
            (12, 6, 0)
        );
    }

    #[test]
    fn usage_prefers_model_usage_over_main_thread_usage() {
        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"result","subtype":"success","is_error":false,"result":"ok",
                "usage":{"input_tokens":10,"output_tokens":2,"cache_read_input_tokens":3,"cache_creation_input_tokens":4},
                "modelUsage":{"a":{"inputTokens":10,"outputTokens":2,"cacheReadInputTokens":3,"cacheCreationInputTokens":4,"costUSD":0.2},
                              "b":{"inputTokens":5,"outputTokens":1,"costUSD":0.01}}}"#,
            ],
        );
        let out = p.finish(exit(0), "");
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 15,
                output: 3,
                cache_read: 3,
                cache_write: 4
            })
        );
        assert_eq!(out.model.as_deref(), Some("a"));

        let mut p = ClaudeStreamParser::default();
        feed(
            &mut p,
            &[
                r#"{"type":"result","is_error":false,"usage":{"input_tokens":7},"modelUsage":{"x":{"costUSD":0}}}"#,
            ],
        );
        let out = p.finish(exit(0), "");
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 7,
                ..Tokens::default()
            })
        );
    }

    #[test]
    fn main_model_picks_the_costliest() {
        let v = serde_json::json!({
            "claude-haiku-4-5": {"costUSD": 0.001},
            "claude-sonnet-4-5": {"costUSD": 0.2},
            "other": {}
        });
        assert_eq!(main_model(Some(&v)).as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(main_model(Some(&serde_json::json!({}))), None);
        assert_eq!(main_model(None), None);
    }
}
