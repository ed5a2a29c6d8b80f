//! GitHub Copilot CLI: `copilot --output-format json`, prompt on stdin, token usage from
//! `--usage-output-file` (reference: agent-clis.md §6).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::backend::DenyRule;
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

/// Copilot CLI's tools that run commands or write files.
const TOOLS: ToolTable = ToolTable {
    tools: &[
        ToolSpec::shell("bash", &["command"], &[]),
        ToolSpec::write("create", WriteInput::path(&["path"])),
        ToolSpec::write("edit", WriteInput::path(&["path"])),
    ],
};

/// Registry entry (agent-clis.md §6; hosts from GitHub's Copilot allowlist reference: the
/// Copilot API under githubcopilot.com, user and token calls to api.github.com).
/// `COPILOT_PROVIDER_BASE_URL` with `COPILOT_OFFLINE=true` sends everything to the configured
/// provider instead. `COPILOT_HOME` moves its state.
pub(crate) static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "copilot",
    aliases: &[],
    program: "copilot",
    install: Install::Npm("@github/copilot"),
    auth_env: &["COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN"],
    api_hosts: &["api.github.com", "*.githubcopilot.com"],
    api_host_setting: Some("COPILOT_PROVIDER_BASE_URL"),
    home_state: &[".copilot", ".cache/copilot"],
    state_env: &["COPILOT_HOME"],
    prompt: PromptVia::Stdin,
    auto: true,
    output: Some(OutputFormat::CopilotJson),
    tools: TOOLS,
    new: |config| Box::new(CopilotBackend::new(config)),
};

/// The usage file's name in the call's scratch directory.
pub const COPILOT_USAGE_FILE: &str = "copilot-usage.json";

/// Largest usage file read (it is a few KiB).
const USAGE_FILE_MAX: u64 = 1024 * 1024;

/// Copilot CLI: `copilot --output-format json <permissions> --usage-output-file
/// <scratch>/copilot-usage.json [--model MODEL] [ARGS…]`, the prompt on stdin (GitHub documents
/// `echo "prompt" | copilot` as the programmatic form next to `-p`).
///
/// Permissions: `Full` → `--allow-all-tools --allow-all-paths`; `AllowList` →
/// `--allow-tool TOOL` per tool (e.g. `shell(git:*)`, `write`).
#[derive(Debug, Clone)]
pub struct CopilotBackend {
    config: BackendConfig,
}

impl CopilotBackend {
    pub fn new(config: BackendConfig) -> Self {
        CopilotBackend { config }
    }
}

fn usage_path(ctx: &CommandContext<'_>) -> PathBuf {
    ctx.scratch_dir.join(COPILOT_USAGE_FILE)
}

impl Backend for CopilotBackend {
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
        args.extend(["--output-format", "json"].map(String::from));
        match &self.config.permission {
            PermissionMode::Full => {
                args.extend(["--allow-all-tools", "--allow-all-paths"].map(String::from));
            }
            PermissionMode::AllowList(tools) => {
                for t in tools {
                    args.extend(["--allow-tool".to_string(), t.clone()]);
                }
            }
            // Refused before start (`supports_permission`).
            PermissionMode::Sandbox => {}
        }
        args.push("--usage-output-file".into());
        args.push(usage_path(ctx).to_string_lossy().into_owned());
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
        Box::new(CopilotJsonParser::default())
    }
    fn parser_for(&self, ctx: &CommandContext<'_>) -> Box<dyn StreamParser> {
        // A file older than this call is a previous attempt's, left in a reused directory.
        let since = SystemTime::now()
            .checked_sub(Duration::from_secs(2))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Box::new(
            CopilotJsonParser::default()
                .with_usage_file_since(usage_path(ctx), since)
                .with_model(model_of(ctx)),
        )
    }
    /// `--deny-tool shell(P)` for each prefix made only of command words (`sudo`, `git push`):
    /// Copilot matches a command's identifiers, not its flags or paths, so `rm -rf /` cannot be
    /// said and `shell(rm)` would refuse every `rm`. Deny rules win over `--allow-all-tools`.
    fn deny_args(&self, rules: &[DenyRule]) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        for p in rules.iter().filter_map(DenyRule::clean_prefix) {
            let plain = p.split(' ').all(|w| {
                !w.starts_with('-')
                    && w.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
            let tool = format!("shell({p})");
            if plain && !args.contains(&tool) {
                args.extend(["--deny-tool".to_string(), tool]);
            }
        }
        args
    }
}

/// A `session.error` event.
#[derive(Debug, Default)]
struct CopilotError {
    error_type: String,
    status: Option<u16>,
    message: String,
}

/// Copilot CLI `--output-format json`.
///
/// - Final answer: the content of the last top-level `assistant.message` with text.
/// - Usage: the `--usage-output-file` JSON, summed over `modelMetrics.<model>.usage`. Its
///   `inputTokens` counts the whole prompt, cache reads and writes included (4500 = 3600 new +
///   900 cached in copilot-usage.json; "↑ 4.8k (900 cached, 300 written)" with an Anthropic
///   provider), so `input = inputTokens − cacheReadTokens − cacheWriteTokens`,
///   `cache_read = cacheReadTokens`, `cache_write = cacheWriteTokens`, `output = outputTokens`
///   (`reasoningTokens` is a breakdown of it). Without the file, the text-mode stderr footer
///   `Tokens ↑ 4.5k (900 cached) • ↓ 240` is read instead (rounded figures).
/// - Cost: unknown (Copilot reports premium requests, not dollars); the engine prices tokens.
/// - Errors: `session.error.data.{errorType, statusCode, message}`; a 429 whose message says
///   "exceeded your current quota" is `Quota` although Copilot calls it `rate_limit`.
#[derive(Debug, Default)]
pub struct CopilotJsonParser {
    counts: Counts,
    clock: Clock,
    usage_file: Option<PathBuf>,
    /// Usage files last modified before this are stale.
    usage_not_before: Option<SystemTime>,
    model: Option<String>,
    seen_model: Option<String>,
    last_message: TailBuf,
    error: Option<CopilotError>,
    last_failure: Option<String>,
    result_exit: Option<i64>,
    denials: u32,
    stray: Option<String>,
}

impl CopilotJsonParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Where the backend told Copilot to write its usage (`--usage-output-file`); read in
    /// `finish`.
    pub fn with_usage_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.usage_file = Some(path.into());
        self
    }

    /// Like [`with_usage_file`](Self::with_usage_file), ignoring the file if it was last
    /// modified before `since` (left over from an earlier call in the same directory).
    pub fn with_usage_file_since(mut self, path: impl Into<PathBuf>, since: SystemTime) -> Self {
        self.usage_file = Some(path.into());
        self.usage_not_before = Some(since);
        self
    }

    /// The model the call was started with, used when the output names none.
    pub fn with_model(mut self, model: Option<&str>) -> Self {
        self.model = model.map(str::to_string);
        self
    }

    fn handle(&mut self, v: &Value, events: &mut Vec<AgentEvent>) -> bool {
        let Some(kind) = str_field(v, "type") else {
            return false;
        };
        let data = v.get("data").filter(|d| d.is_object());
        if let Some(model) = data.and_then(|d| str_field(d, "model")) {
            self.seen_model = Some(model.to_string());
        }
        match (kind, data) {
            ("assistant.message", Some(d)) => {
                let text = str_field(d, "content").unwrap_or("");
                let top_level = d.get("parentToolCallId").is_none_or(Value::is_null);
                if !text.is_empty() {
                    if top_level {
                        self.last_message.clear();
                        self.last_message.push(text);
                    }
                    events.push(AgentEvent::Text {
                        text: text.to_string(),
                    });
                } else {
                    events.push(AgentEvent::Other);
                }
            }
            ("tool.execution_start", Some(d)) => events.push(AgentEvent::ToolUse {
                name: str_field(d, "toolName").unwrap_or("").to_string(),
                input: compact(d.get("arguments")),
            }),
            ("tool.execution_complete", Some(d)) => {
                let success = d.get("success").and_then(Value::as_bool).unwrap_or(true);
                let exit_code = d
                    .get("shellExecution")
                    .and_then(|s| s.get("exitCode"))
                    .and_then(Value::as_i64);
                if !success && denied(d) {
                    self.denials = self.denials.saturating_add(1);
                }
                events.push(AgentEvent::ToolResult {
                    is_error: !success || exit_code.is_some_and(|c| c != 0),
                });
            }
            ("session.error", Some(d)) => {
                let message = str_field(d, "message").unwrap_or("").to_string();
                self.error = Some(CopilotError {
                    error_type: str_field(d, "errorType").unwrap_or("").to_string(),
                    status: u16_field(d, "statusCode"),
                    message: head_str(&message, 4 * STRAY_MAX).to_string(),
                });
                events.push(AgentEvent::Error { message });
            }
            ("model.call_failure", Some(d)) => {
                let error = str_field(d, "errorCode")
                    .or_else(|| str_field(d, "errorType"))
                    .map(str::to_string);
                if let Some(m) = str_field(d, "errorMessage") {
                    self.last_failure = Some(head_str(m, STRAY_MAX).to_string());
                }
                events.push(AgentEvent::ApiRetry {
                    status: u16_field(d, "statusCode"),
                    error,
                });
            }
            ("result", _) => {
                let code = v.get("exitCode").and_then(Value::as_i64);
                self.result_exit = Some(code.unwrap_or(0));
                events.push(AgentEvent::Result {
                    is_error: code.is_some_and(|c| c != 0),
                });
            }
            // Copilot emits dozens of namespaced housekeeping events (`session.*`,
            // `assistant.turn_*`, `tool.shell_output`, …): known shape, nothing ralph uses.
            (k, Some(_)) if k.contains('.') => events.push(AgentEvent::Other),
            _ => return false,
        }
        true
    }
}

/// Whether a failed tool call was refused rather than failing on its own.
fn denied(d: &Value) -> bool {
    let text = format!(
        "{} {}",
        compact(d.get("error")),
        compact(d.get("result"))
            .chars()
            .take(2048)
            .collect::<String>()
    )
    .to_ascii_lowercase();
    text.contains("denied") || text.contains("not permitted") || text.contains("not allowed")
}

/// Sum `modelMetrics.*.usage` of a `--usage-output-file` JSON; also its `currentModel`.
fn usage_from_file(
    path: &Path,
    not_before: Option<SystemTime>,
) -> Option<(Tokens, Option<String>)> {
    let file = std::fs::File::open(path).ok()?;
    if let Some(since) = not_before {
        let modified = file.metadata().and_then(|m| m.modified()).ok()?;
        if modified < since {
            return None;
        }
    }
    let mut text = String::new();
    file.take(USAGE_FILE_MAX).read_to_string(&mut text).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let metrics = v.get("modelMetrics")?.as_object()?;
    let mut total = Tokens::default();
    for m in metrics.values() {
        let Some(u) = m.get("usage").filter(|u| u.is_object()) else {
            continue;
        };
        let read = u64_field(u, "cacheReadTokens");
        let write = u64_field(u, "cacheWriteTokens");
        total.add(&Tokens {
            input: u64_field(u, "inputTokens")
                .saturating_sub(read)
                .saturating_sub(write),
            output: u64_field(u, "outputTokens"),
            cache_read: read,
            cache_write: write,
        });
    }
    let model = str_field(&v, "currentModel")
        .map(str::to_string)
        .or_else(|| {
            (metrics.len() == 1)
                .then(|| metrics.keys().next().cloned())
                .flatten()
        });
    Some((total, model))
}

/// `Tokens ↑ 4.5k (900 cached, 300 written) • ↓ 240` from the text-mode stderr footer.
pub(crate) fn usage_from_footer(stderr: &str) -> Option<Tokens> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("Tokens") && l.contains('↑'))?;
    let up_at = line.find('↑')? + '↑'.len_utf8();
    let (up, rest) = footer_number(&line[up_at..])?;
    let mut cached = 0;
    let mut written = 0;
    if let Some(open) = rest.find('(') {
        let close = rest[open..].find(')').map_or(rest.len(), |c| open + c);
        for part in rest[open + 1..close].split(',') {
            if let Some((n, what)) = footer_number(part) {
                let what = what.trim();
                if what.starts_with("cached") {
                    cached = n;
                } else if what.starts_with("written") {
                    written = n;
                }
            }
        }
    }
    let down_at = line.find('↓')? + '↓'.len_utf8();
    let (down, _) = footer_number(&line[down_at..])?;
    Some(Tokens {
        input: up.saturating_sub(cached).saturating_sub(written),
        output: down,
        cache_read: cached,
        cache_write: written,
    })
}

/// "4.5k rest" → (4500, " rest"); also "240", "1.2m".
fn footer_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(s.len());
    let number: f64 = s[..end].replace(',', "").parse().ok()?;
    let rest = &s[end..];
    let (mult, rest) = match rest.chars().next() {
        Some('k' | 'K') => (1e3, &rest[1..]),
        Some('m' | 'M') if !rest.starts_with("ms") => (1e6, &rest[1..]),
        _ => (1.0, rest),
    };
    let value = number * mult;
    (value.is_finite() && value >= 0.0).then(|| (value.round().min(1e18) as u64, rest))
}

fn copilot_class(e: &CopilotError) -> ErrorClass {
    if let Some(status) = e.status {
        return classify_status(status, &e.message);
    }
    let by_type = match e.error_type.as_str() {
        "rate_limit" => Some(ErrorClass::RateLimit),
        "authentication" => Some(ErrorClass::Auth),
        "quota" => Some(ErrorClass::Quota),
        "context_length" | "context_window" => Some(ErrorClass::ContextOverflow),
        _ => None,
    };
    classify_text(&e.message)
        .filter(|c| by_type.is_none() || matches!(c, ErrorClass::UsageLimit | ErrorClass::Quota))
        .or(by_type)
        .unwrap_or(ErrorClass::Unknown)
}

impl StreamParser for CopilotJsonParser {
    fn line(&mut self, line: &[u8], _truncated: bool, events: &mut Vec<AgentEvent>) {
        if let Some(v) = self.counts.next_json(line, &mut self.stray, events) {
            if !self.handle(&v, events) {
                self.counts.unknown(events);
            }
        }
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let mut out = self.counts.outcome();
        out.final_text = self.last_message.take();
        out.cost_source = CostSource::Unknown;
        let from_file = self
            .usage_file
            .as_deref()
            .and_then(|p| usage_from_file(p, self.usage_not_before));
        let file_model = from_file.as_ref().and_then(|(_, m)| m.clone());
        out.usage = match from_file {
            Some((u, _)) => Some(u),
            None => usage_from_footer(stderr_tail),
        };
        out.model = file_model
            .or_else(|| self.seen_model.clone())
            .or_else(|| self.model.clone());
        let mut texts: Vec<String> = Vec::new();
        let failed_exit = self.result_exit.is_some_and(|c| c != 0) || !exit.success();
        if let Some(e) = &self.error {
            out.error = Some(copilot_class(e));
            out.error_message = Some(if e.message.trim().is_empty() {
                format!("agent reported an error ({})", e.error_type)
            } else {
                one_line(&e.message)
            });
            texts.push(e.message.clone());
        } else if failed_exit || self.result_exit.is_none() {
            let (class, message) = failure_without_result(
                exit,
                stderr_tail,
                self.last_failure.as_deref(),
                self.stray.as_deref(),
            );
            out.error = Some(class);
            out.error_message = Some(message);
            texts.extend(self.last_failure.clone());
            texts.push(stderr_tail.to_string());
        } else if self.denials > 0 {
            let calls = if self.denials == 1 { "call" } else { "calls" };
            out.error = Some(ErrorClass::PermissionDenied);
            out.error_message = Some(format!(
                "permission denied for {} tool {calls} (the agent could not do what it tried)",
                self.denials
            ));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        out.retry_after = retry_hint(out.error, &self.clock, &refs);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_args_only_for_command_words() {
        let b = CopilotBackend::new(BackendConfig::default());
        let rules = [
            "sudo",
            "git push",
            "git push --force",
            "rm -rf /",
            "mkfs.ext4",
            "sudo",
        ]
        .map(DenyRule::new);
        assert_eq!(
            b.deny_args(&rules),
            [
                "--deny-tool",
                "shell(sudo)",
                "--deny-tool",
                "shell(git push)",
                "--deny-tool",
                "shell(mkfs.ext4)"
            ]
        );
    }

    #[test]
    fn footers() {
        assert_eq!(
            usage_from_footer("Changes +1 -0\nTokens     ↑ 4.5k (900 cached) • ↓ 240\n"),
            Some(Tokens {
                input: 3600,
                output: 240,
                cache_read: 900,
                cache_write: 0
            })
        );
        assert_eq!(
            usage_from_footer("Tokens     ↑ 4.8k (900 cached, 300 written) • ↓ 240"),
            Some(Tokens {
                input: 3600,
                output: 240,
                cache_read: 900,
                cache_write: 300
            })
        );
        assert_eq!(
            usage_from_footer("Tokens ↑ 1.2m • ↓ 3,456"),
            Some(Tokens {
                input: 1_200_000,
                output: 3456,
                cache_read: 0,
                cache_write: 0
            })
        );
        assert_eq!(usage_from_footer(""), None);
        assert_eq!(usage_from_footer("Tokens ↑ lots • ↓ 1"), None);
        assert_eq!(usage_from_footer("Tokens ↑ 5"), None);
    }

    #[test]
    fn classes_by_error_type() {
        let e = |t: &str, s: Option<u16>, m: &str| CopilotError {
            error_type: t.into(),
            status: s,
            message: m.into(),
        };
        assert_eq!(
            copilot_class(&e("rate_limit", None, "slow down")),
            ErrorClass::RateLimit
        );
        assert_eq!(
            copilot_class(&e("authentication", None, "")),
            ErrorClass::Auth
        );
        assert_eq!(
            copilot_class(&e("rate_limit", None, "You exceeded your current quota")),
            ErrorClass::Quota
        );
        assert_eq!(
            copilot_class(&e(
                "query",
                Some(500),
                "Last error: 500 Internal server error"
            )),
            ErrorClass::Server
        );
        assert_eq!(copilot_class(&e("query", None, "odd")), ErrorClass::Unknown);
    }

    #[test]
    fn denied_tool_calls_make_a_success_a_permission_error() {
        let mut p = CopilotJsonParser::default();
        let mut ev = Vec::new();
        for l in [
            r#"{"type":"tool.execution_complete","data":{"toolCallId":"c","success":false,"error":{"message":"Permission denied: the user did not allow shell(rm)"}}}"#,
            r#"{"type":"assistant.message","data":{"content":"Done. LOOP_COMPLETE"}}"#,
            r#"{"type":"result","exitCode":0}"#,
        ] {
            p.line(l.as_bytes(), false, &mut ev);
        }
        let out = p.finish(
            ExitInfo {
                code: Some(0),
                signal: None,
            },
            "",
        );
        assert_eq!(out.error, Some(ErrorClass::PermissionDenied));
        assert_eq!(out.final_text, "Done. LOOP_COMPLETE");
    }
}
