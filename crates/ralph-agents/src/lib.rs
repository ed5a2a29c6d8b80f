//! Agent CLI backends. Each backend knows how to build the headless command line for one agent
//! CLI, how to parse its output stream tolerantly line by line, and how to turn what it saw into
//! an [`AgentOutcome`] (final answer, usage, cost, error class). Nothing here spawns processes:
//! the engine in `ralph-core` owns process control.
//!
//! # Backends
//!
//! `agent.command`, when set, replaces the program with its first element and puts the rest
//! before the backend's own arguments; the model (when set) and `agent.args` follow them.
//!
//! | backend | program | headless command (Full permissions) | prompt | narrower modes |
//! |---|---|---|---|---|
//! | `claude` | `claude` | `-p --output-format stream-json --verbose --dangerously-skip-permissions [--model M]` | stdin | AllowList: `--allowedTools "A B"` |
//! | `codex` | `codex` | `exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox [-m M]` | stdin (no prompt argument: Codex reads stdin) | Sandbox: `-s workspace-write` |
//! | `gemini` | `gemini` | `--output-format stream-json --yolo [-m M]`, env `GEMINI_CLI_TRUST_WORKSPACE=true` | stdin (headless when stdin is not a terminal) | AllowList: `--allowed-tools=T` per tool; Sandbox: `--approval-mode auto_edit` |
//! | `opencode` | `opencode` | `run --format json --auto [-m provider/model]` | stdin (`run` appends piped stdin to its message) | – |
//! | `copilot` | `copilot` | `--output-format json --allow-all-tools --allow-all-paths --usage-output-file <scratch>/copilot-usage.json [--model M]` | stdin (`echo prompt \| copilot` is documented) | AllowList: `--allow-tool T` per tool |
//! | `kiro` | `kiro-cli` | `chat --no-interactive --trust-all-tools [--model M]` | stdin ("prompt may be piped on stdin") | AllowList: `--trust-tools=A,B` |
//! | `amp` | `amp` | `-x --stream-json --dangerously-allow-all --no-ide --no-notifications` (no model flag) | stdin (execute mode) | – |
//! | `cursor` | `cursor-agent` | `-p --output-format stream-json --force [--model M] -- PROMPT` | last argument, after `--` (no documented stdin) | – |
//! | `custom` | `agent.command[0]` | `agent.command[1..]` | `agent.prompt_via` | – |
//!
//! No backend passes the prompt through a temporary file.
//!
//! # Registry
//!
//! [`descriptors`] lists every backend with its static facts ([`BackendDescriptor`]: name and
//! aliases, default program, install command, credential variables, API hosts, the state it
//! keeps under HOME, how it takes the prompt). Config name lists ([`all_names_with_aliases`],
//! [`resolve_name`], [`default_priority`]), `ralph doctor` and install hints ([`install_hint`])
//! read it; adding a backend is one module plus one line in `registry.rs`.
//!
//! # Usage and cost
//!
//! Usage is normalised to CLI.md's token kinds: `input` excludes cache reads and writes,
//! `output` includes reasoning.
//!
//! | backend | usage from | input | cost |
//! |---|---|---|---|
//! | `claude` | `result.modelUsage` (or `usage`) | as reported | `total_cost_usd` (Reported) |
//! | `codex` | Σ `turn.completed.usage` | `input_tokens − cached_input_tokens − cache_write_input_tokens` | Unknown (price table) |
//! | `gemini` | `result.stats` | `input` (= `input_tokens − cached`) | Unknown (price table) |
//! | `opencode` | Σ `step_finish.part.tokens` | `input` | Σ `part.cost` (Reported; a zero total for non-zero tokens is Unknown) |
//! | `copilot` | `--usage-output-file`, else the stderr footer | `inputTokens − cacheReadTokens − cacheWriteTokens` | Unknown (price table) |
//! | `amp`, `cursor`, `kiro` | – (`reports_usage() == false`) | – | Unknown |
//!
//! Parsers name the model when the output does (`init`, `modelUsage`, Copilot's usage file);
//! otherwise the model the call was started with (given to [`Backend::parser_for`]).
//! [`pricing::PriceTable`] prices tokens where the agent reports no cost.
//!
//! # Errors and reset times
//!
//! Every parser classifies failures into an [`ErrorClass`] and, for `RateLimit`, `UsageLimit`
//! and `Quota`, sets [`AgentOutcome::retry_after`] when the agent's text or headers say when
//! the limit lifts ([`parse_retry_after`]).
//!
//! # Tool uses
//!
//! Each backend lists its tools that run commands or write files ([`tools::ToolTable`]);
//! [`Backend::tool_action`] reads a tool use with the backend's own table, [`command_any`],
//! [`paths_any`] and [`action_any`] with every table at once (what the guard needs).
//!
//! # Modules
//!
//! | file | owns |
//! |---|---|
//! | `backend.rs` | the [`Backend`] trait, config types, command-line helpers |
//! | `registry.rs` | the table of backends and their [`BackendDescriptor`]s |
//! | `claude.rs`, `codex.rs`, `gemini.rs`, `opencode.rs`, `copilot.rs`, `kiro.rs`, `amp.rs`, `cursor.rs`, `custom.rs` | one backend each: descriptor, tool table, command builder, stream parser |
//! | `parser.rs` | the [`StreamParser`] trait, [`TextParser`], helpers shared by the JSON parsers |
//! | `tools.rs` | normalised tool actions ([`ToolAction`]) |
//! | `event.rs` | [`AgentEvent`], [`AgentOutcome`] and the error classes |
//! | `classify.rs` | error classification from HTTP statuses and texts |
//! | `retry_after/` | reset times and retry delays in error texts |
//! | `pricing.rs`, `prices.toml` | the built-in price table |

mod amp;
mod backend;
mod classify;
mod claude;
mod codex;
mod copilot;
mod cursor;
mod custom;
mod event;
mod gemini;
mod kiro;
mod opencode;
mod parser;
mod plausible;
pub mod pricing;
mod registry;
mod retry_after;
pub mod tools;

pub use amp::{AmpBackend, AmpStreamParser};
pub use backend::{
    parse_output_format, shell_quote, Backend, BackendConfig, CommandContext, CommandSpec,
    DenyRule, OutputFormat, PermissionMode, PromptVia,
};
pub use classify::{classify_status, classify_text};
pub use claude::{ClaudeBackend, ClaudeStreamParser};
pub use codex::{CodexBackend, CodexJsonParser};
pub use copilot::{CopilotBackend, CopilotJsonParser, COPILOT_USAGE_FILE};
pub use cursor::{CursorBackend, CursorStreamParser};
pub use custom::{CustomBackend, PROMPT_FILE_PLACEHOLDER};
pub use event::{
    AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, RetryAfter, Tokens, FINAL_TEXT_MAX,
};
pub use gemini::{GeminiBackend, GeminiStreamParser};
pub use kiro::{strip_ansi, KiroBackend, KiroTextParser};
pub use opencode::{OpencodeBackend, OpencodeJsonParser};
pub use parser::{StreamParser, TextParser};
pub use plausible::reject_implausible_usage;
pub use pricing::{Price, PriceTable};
pub use registry::{
    all_names_with_aliases, backend_names, builtin_backend, default_priority, descriptor,
    descriptors, install_hint, resolve_name, BackendDescriptor, Install,
};
pub use retry_after::{parse_retry_after, Clock};
pub use tools::{action_any, command_any, paths_any, ToolAction};
