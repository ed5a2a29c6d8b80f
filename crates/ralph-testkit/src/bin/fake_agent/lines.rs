//! The stream-json line shapes the Claude steps print.
//!
//! Structs rather than `json!` so fields come out in Claude Code's order (a
//! serde_json `Value` sorts keys), which keeps transcripts easy to compare
//! with /work/shared/reference/transcripts.

use serde::Serialize;
use serde_json::Value;

pub(crate) const TOOLS: &[&str] = &[
    "Task",
    "Bash",
    "Edit",
    "NotebookEdit",
    "Read",
    "Skill",
    "TaskCreate",
    "TaskGet",
    "TaskList",
    "TaskOutput",
    "TaskStop",
    "TaskUpdate",
    "WebFetch",
    "WebSearch",
    "Write",
];
pub(crate) const SLASH_COMMANDS: &[&str] = &[
    "clear", "compact", "config", "context", "init", "review", "usage",
];
pub(crate) const AGENTS: &[&str] = &["claude", "Explore", "general-purpose", "Plan"];

#[derive(Serialize)]
pub(crate) struct InitLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) subtype: &'a str,
    pub(crate) cwd: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) tools: &'a [&'a str],
    pub(crate) mcp_servers: &'a [&'a str],
    pub(crate) model: &'a str,
    #[serde(rename = "permissionMode")]
    pub(crate) permission_mode: &'a str,
    pub(crate) slash_commands: &'a [&'a str],
    #[serde(rename = "apiKeySource")]
    pub(crate) api_key_source: &'a str,
    pub(crate) claude_code_version: &'a str,
    pub(crate) output_style: &'a str,
    pub(crate) agents: &'a [&'a str],
    pub(crate) skills: &'a [&'a str],
    pub(crate) plugins: &'a [&'a str],
    pub(crate) analytics_disabled: bool,
    pub(crate) product_feedback_disabled: bool,
    pub(crate) uuid: &'a str,
    pub(crate) fast_mode_state: &'a str,
}

#[derive(Serialize)]
pub(crate) struct AssistantLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) message: Message<'a>,
    pub(crate) parent_tool_use_id: Option<&'a str>,
    pub(crate) session_id: &'a str,
    pub(crate) uuid: &'a str,
}

#[derive(Serialize)]
pub(crate) struct Message<'a> {
    pub(crate) id: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) role: &'a str,
    pub(crate) model: &'a str,
    pub(crate) content: &'a [ContentBlock<'a>],
    pub(crate) stop_reason: Option<&'a str>,
    pub(crate) stop_sequence: Option<&'a str>,
    pub(crate) usage: MessageUsage,
    pub(crate) context_management: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ContentBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
}

#[derive(Serialize, Default)]
pub(crate) struct MessageUsage {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cache_read_input_tokens: u64,
    pub(crate) cache_creation_input_tokens: u64,
}

#[derive(Serialize)]
pub(crate) struct UserLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) message: UserMessage<'a>,
    pub(crate) parent_tool_use_id: Option<&'a str>,
    pub(crate) session_id: &'a str,
    pub(crate) uuid: &'a str,
    pub(crate) tool_use_result: &'a str,
}

#[derive(Serialize)]
pub(crate) struct UserMessage<'a> {
    pub(crate) role: &'a str,
    pub(crate) content: [ToolResult<'a>; 1],
}

#[derive(Serialize)]
pub(crate) struct ToolResult<'a> {
    pub(crate) tool_use_id: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) content: &'a str,
    pub(crate) is_error: bool,
}

#[derive(Serialize)]
pub(crate) struct ResultLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) subtype: &'a str,
    pub(crate) is_error: bool,
    pub(crate) api_error_status: Option<u16>,
    pub(crate) duration_ms: u64,
    pub(crate) duration_api_ms: u64,
    pub(crate) num_turns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<&'a str>,
    pub(crate) stop_reason: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) total_cost_usd: f64,
    pub(crate) usage: ResultUsage<'a>,
    #[serde(rename = "modelUsage")]
    pub(crate) model_usage: std::collections::BTreeMap<&'a str, ModelUsage>,
    pub(crate) permission_denials: &'a [Value],
    pub(crate) terminal_reason: &'a str,
    pub(crate) fast_mode_state: &'a str,
    pub(crate) uuid: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) errors: &'a [String],
}

#[derive(Serialize)]
pub(crate) struct ResultUsage<'a> {
    pub(crate) input_tokens: u64,
    pub(crate) cache_creation_input_tokens: u64,
    pub(crate) cache_read_input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) server_tool_use: ServerToolUse,
    pub(crate) service_tier: &'a str,
    pub(crate) cache_creation: CacheCreation,
    pub(crate) inference_geo: &'a str,
    pub(crate) iterations: &'a [Value],
    pub(crate) speed: &'a str,
}

#[derive(Serialize, Default)]
pub(crate) struct ServerToolUse {
    pub(crate) web_search_requests: u64,
    pub(crate) web_fetch_requests: u64,
}

#[derive(Serialize, Default)]
pub(crate) struct CacheCreation {
    pub(crate) ephemeral_1h_input_tokens: u64,
    pub(crate) ephemeral_5m_input_tokens: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelUsage {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cache_read_input_tokens: u64,
    pub(crate) cache_creation_input_tokens: u64,
    pub(crate) web_search_requests: u64,
    #[serde(rename = "costUSD")]
    pub(crate) cost_usd: f64,
    pub(crate) context_window: u64,
    pub(crate) max_output_tokens: u64,
}

#[derive(Serialize)]
pub(crate) struct ApiRetryLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) subtype: &'a str,
    pub(crate) attempt: u32,
    pub(crate) max_retries: u32,
    pub(crate) retry_delay_ms: u64,
    pub(crate) error_status: u16,
    pub(crate) error: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) uuid: &'a str,
}
