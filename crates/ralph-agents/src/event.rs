//! The normalised vocabulary every parser speaks.

use serde::{Deserialize, Serialize};

pub use ralph_types::Tokens;

/// Why an iteration failed (or looks suspicious). Names are stable: they appear in the database,
/// in `--json` events and in `ralph status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    RateLimit,
    UsageLimit,
    Quota,
    Auth,
    Overloaded,
    Server,
    Timeout,
    Idle,
    ContextOverflow,
    MaxTurns,
    PermissionDenied,
    Crash,
    Unknown,
}

impl ErrorClass {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::RateLimit => "rate_limit",
            ErrorClass::UsageLimit => "usage_limit",
            ErrorClass::Quota => "quota",
            ErrorClass::Auth => "auth",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Server => "server",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Idle => "idle",
            ErrorClass::ContextOverflow => "context_overflow",
            ErrorClass::MaxTurns => "max_turns",
            ErrorClass::PermissionDenied => "permission_denied",
            ErrorClass::Crash => "crash",
            ErrorClass::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorClass> {
        Some(match s {
            "rate_limit" => ErrorClass::RateLimit,
            "usage_limit" => ErrorClass::UsageLimit,
            "quota" => ErrorClass::Quota,
            "auth" => ErrorClass::Auth,
            "overloaded" => ErrorClass::Overloaded,
            "server" => ErrorClass::Server,
            "timeout" => ErrorClass::Timeout,
            "idle" => ErrorClass::Idle,
            "context_overflow" => ErrorClass::ContextOverflow,
            "max_turns" => ErrorClass::MaxTurns,
            "permission_denied" => ErrorClass::PermissionDenied,
            "crash" => ErrorClass::Crash,
            "unknown" => ErrorClass::Unknown,
            _ => return None,
        })
    }

    /// Classes worth retrying after a backoff: the same call may well succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimit
                | ErrorClass::Overloaded
                | ErrorClass::Server
                | ErrorClass::Timeout
                | ErrorClass::Idle
                | ErrorClass::Crash
                | ErrorClass::Unknown
        )
    }

    /// Classes no amount of retrying fixes: a human has to act.
    pub fn needs_human(&self) -> bool {
        matches!(self, ErrorClass::Auth)
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an iteration's cost figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The agent reported it (Claude `total_cost_usd`).
    Reported,
    /// Computed by ralph from reported tokens and the price table.
    Computed,
    /// Nobody knows; ralph still enforces iteration and time limits.
    #[default]
    Unknown,
    /// The agent (or the price table) gave a figure no call can have (negative, not finite,
    /// beyond `ralph_types::plausible`): recorded as invalid, never counted.
    Invalid,
}

impl CostSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            CostSource::Reported => "reported",
            CostSource::Computed => "computed",
            CostSource::Unknown => "unknown",
            CostSource::Invalid => "invalid",
        }
    }
}

/// One parsed line of agent output. Parsers are tolerant: a line they do not understand becomes
/// `Unknown` (valid JSON of an unexpected shape) or `Malformed` (not parseable), never an error.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// Session start: the model the agent says it uses.
    Init {
        model: Option<String>,
    },
    /// Assistant prose.
    Text {
        text: String,
    },
    /// The agent asked to run a tool. `input` is the tool input as compact JSON.
    ToolUse {
        name: String,
        input: String,
    },
    /// A tool finished.
    ToolResult {
        is_error: bool,
    },
    /// The agent is retrying an API call itself (Claude `system/api_retry`).
    ApiRetry {
        status: Option<u16>,
        error: Option<String>,
    },
    /// The agent reported an error it may or may not recover from (Codex `error` events and
    /// `error` items, Gemini `error` events, opencode and Copilot session errors). Whether the
    /// call failed is decided at the end, in [`AgentOutcome::error`].
    Error {
        message: String,
    },
    /// The final summary line (Claude `result`, Codex `turn.completed`/`turn.failed`, Gemini and
    /// Cursor `result`, opencode's last `step_finish`, Copilot `result`).
    Result {
        is_error: bool,
    },
    /// A line of a known shape that carries nothing ralph uses.
    Other,
    Unknown,
    Malformed,
}

/// How the agent process ended, as the engine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitInfo {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Signal number, if it was killed by a signal.
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Everything ralph learned from one agent call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentOutcome {
    /// The agent's final answer, used for completion detection. Bounded in size: parsers keep
    /// at most [`FINAL_TEXT_MAX`] bytes (the tail, for text output).
    pub final_text: String,
    /// Token usage, if the agent reported it.
    pub usage: Option<Tokens>,
    pub cost_usd: Option<f64>,
    pub cost_source: CostSource,
    /// The model the agent reported using.
    pub model: Option<String>,
    /// Why the call failed, if it did.
    pub error: Option<ErrorClass>,
    /// A one-line human explanation of the error (the agent's own words where possible).
    pub error_message: Option<String>,
    /// Tools the agent was refused (Claude `permission_denials`).
    pub permission_denials: u32,
    pub lines: u64,
    pub unknown_lines: u64,
    pub malformed_lines: u64,
    /// When the limit behind a `RateLimit`/`UsageLimit`/`Quota` error lifts, if the agent said.
    pub retry_after: Option<RetryAfter>,
    /// The most tokens the model had in its context in any one request of this call (prompt +
    /// cache), where the stream shows per-request usage. The engine falls back to the call's
    /// total input + cache tokens, an upper bound.
    pub context_tokens: Option<u64>,
    /// The model's context window, when the agent reports it (Claude `modelUsage.contextWindow`).
    pub context_window: Option<u64>,
}

/// When to try again, as the agent's error text or headers said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// At this moment (Unix seconds, UTC): "resets 4pm (Europe/Paris)", "try again at 11:37 AM",
    /// "|1753441200".
    At(i64),
    /// After this many seconds: "retry-after: 30", "try again in 2 days 17 hours".
    In(u64),
}

/// Cap on `AgentOutcome::final_text`.
pub const FINAL_TEXT_MAX: usize = 64 * 1024;
