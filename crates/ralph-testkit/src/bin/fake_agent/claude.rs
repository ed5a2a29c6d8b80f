//! The Claude Code stream-json steps: `system`/`init`, assistant text and tool use (with the
//! matching `user` tool result), the final `result` and `system`/`api_retry`, in the shapes and
//! field order real Claude Code prints, plus the random ids those lines carry.

use std::sync::atomic::{AtomicU64, Ordering};

use ralph_testkit::script::{ClaudeApiRetry, ClaudeInit, ClaudeResult, ClaudeToolUse};

use crate::lines::{
    ApiRetryLine, AssistantLine, CacheCreation, ContentBlock, InitLine, Message, MessageUsage,
    ModelUsage, ResultLine, ResultUsage, ServerToolUse, ToolResult, UserLine, UserMessage, AGENTS,
    SLASH_COMMANDS, TOOLS,
};
use crate::output::emit;
use crate::{Agent, Failure};

const CLAUDE_CODE_VERSION: &str = "2.1.197";

impl Agent {
    pub(crate) fn claude_init(&mut self, init: &ClaudeInit) -> Result<(), Failure> {
        if let Some(model) = &init.model {
            self.model.clone_from(model);
        }
        if let Some(session_id) = &init.session_id {
            self.session_id.clone_from(session_id);
        }
        let cwd = std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        emit(&InitLine {
            kind: "system",
            subtype: "init",
            cwd: &cwd,
            session_id: &self.session_id,
            tools: TOOLS,
            mcp_servers: &[],
            model: &self.model,
            permission_mode: init
                .permission_mode
                .as_deref()
                .unwrap_or("bypassPermissions"),
            slash_commands: SLASH_COMMANDS,
            api_key_source: "ANTHROPIC_API_KEY",
            claude_code_version: CLAUDE_CODE_VERSION,
            output_style: "default",
            agents: AGENTS,
            skills: &[],
            plugins: &[],
            analytics_disabled: true,
            product_feedback_disabled: true,
            uuid: &uuid(),
            fast_mode_state: "off",
        })
    }

    pub(crate) fn assistant(&mut self, block: &ContentBlock<'_>) -> Result<(), Failure> {
        self.assistant_lines += 1;
        emit(&AssistantLine {
            kind: "assistant",
            message: Message {
                id: &format!("msg_{}", hex_id()),
                kind: "message",
                role: "assistant",
                // Real messages name the bare model, without the "[1m]"
                // context-window suffix the init line carries.
                model: self.model.split('[').next().unwrap_or(&self.model),
                content: std::slice::from_ref(block),
                stop_reason: None,
                stop_sequence: None,
                usage: MessageUsage::default(),
                context_management: None,
            },
            parent_tool_use_id: None,
            session_id: &self.session_id,
            uuid: &uuid(),
        })
    }

    pub(crate) fn claude_tool_use(&mut self, tool: &ClaudeToolUse) -> Result<(), Failure> {
        let id = format!("toolu_{}", hex_id());
        self.assistant(&ContentBlock::ToolUse {
            id: &id,
            name: &tool.name,
            input: &tool.input,
        })?;
        let Some(result) = &tool.result else {
            return Ok(());
        };
        emit(&UserLine {
            kind: "user",
            message: UserMessage {
                role: "user",
                content: [ToolResult {
                    tool_use_id: &id,
                    kind: "tool_result",
                    content: result,
                    is_error: tool.result_is_error,
                }],
            },
            parent_tool_use_id: None,
            session_id: &self.session_id,
            uuid: &uuid(),
            tool_use_result: result,
        })
    }

    pub(crate) fn claude_result(&self, r: &ClaudeResult) -> Result<(), Failure> {
        let model = r.model.as_deref().unwrap_or(&self.model);
        let subtype = r.subtype.as_deref().unwrap_or("success");
        let text = match (&r.text, subtype) {
            (Some(text), _) => Some(text.as_str()),
            (None, "success") => Some(""),
            // Real error_max_turns results carry no `result` at all.
            (None, _) => None,
        };
        let duration_ms = r.duration_ms.unwrap_or_else(|| {
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
        });
        let total_tokens = r.input_tokens
            + r.output_tokens
            + r.cache_read_input_tokens
            + r.cache_creation_input_tokens;
        // Real results of failed requests report an empty modelUsage.
        let mut model_usage = std::collections::BTreeMap::new();
        if total_tokens > 0 || r.cost_usd != 0.0 {
            model_usage.insert(
                model,
                ModelUsage {
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                    cache_read_input_tokens: r.cache_read_input_tokens,
                    cache_creation_input_tokens: r.cache_creation_input_tokens,
                    web_search_requests: 0,
                    cost_usd: r.cost_usd,
                    context_window: if model.ends_with("[1m]") {
                        1_000_000
                    } else {
                        200_000
                    },
                    max_output_tokens: 64_000,
                },
            );
        }
        emit(&ResultLine {
            kind: "result",
            subtype,
            is_error: r.is_error,
            api_error_status: r.api_error_status,
            duration_ms,
            duration_api_ms: if r.is_error { 0 } else { duration_ms },
            num_turns: r.num_turns.unwrap_or(self.assistant_lines.max(1)),
            result: text,
            stop_reason: r.stop_reason.as_deref().unwrap_or(if r.is_error {
                "stop_sequence"
            } else {
                "end_turn"
            }),
            session_id: &self.session_id,
            total_cost_usd: r.cost_usd,
            usage: ResultUsage {
                input_tokens: r.input_tokens,
                cache_creation_input_tokens: r.cache_creation_input_tokens,
                cache_read_input_tokens: r.cache_read_input_tokens,
                output_tokens: r.output_tokens,
                server_tool_use: ServerToolUse::default(),
                service_tier: "standard",
                cache_creation: CacheCreation::default(),
                inference_geo: "",
                iterations: &[],
                speed: "standard",
            },
            model_usage,
            permission_denials: &r.permission_denials,
            terminal_reason: r.terminal_reason.as_deref().unwrap_or("completed"),
            fast_mode_state: "off",
            uuid: &uuid(),
            errors: &r.errors,
        })
    }

    pub(crate) fn claude_api_retry(&self, retry: &ClaudeApiRetry) -> Result<(), Failure> {
        emit(&ApiRetryLine {
            kind: "system",
            subtype: "api_retry",
            attempt: retry.attempt,
            max_retries: retry.max_retries,
            retry_delay_ms: retry.retry_delay_ms,
            error_status: retry.status,
            error: &retry.error,
            session_id: &self.session_id,
            uuid: &uuid(),
        })
    }
}

/// Random-enough 64 bits without a rand dependency: std's `RandomState` is
/// seeded from the OS once per process and perturbed per instance.
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::hash::RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A version-4-shaped UUID, as Claude Code uses for `session_id` and `uuid`.
pub(crate) fn uuid() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// 24 hex digits, the length of the ids in real `msg_`/`toolu_` ids.
fn hex_id() -> String {
    format!("{:016x}{:08x}", random_u64(), random_u64() >> 32)
}
