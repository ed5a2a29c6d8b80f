//! Agent CLI backends. Each backend knows how to build the headless command line for one agent
//! CLI, how to parse its output stream tolerantly line by line, and how to turn what it saw into
//! an [`AgentOutcome`] (final answer, usage, cost, error class). Nothing here spawns processes:
//! the engine in `ralph-core` owns process control.

mod backend;
mod classify;
mod event;
mod parser;

pub use backend::{
    backend_names, builtin_backend, parse_output_format, Backend, BackendConfig, ClaudeBackend,
    CommandContext, CommandSpec, CustomBackend, OutputFormat, PermissionMode, PromptVia,
    PROMPT_FILE_PLACEHOLDER,
};
pub use classify::{classify_status, classify_text};
pub use event::{
    AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, RetryAfter, Usage, FINAL_TEXT_MAX,
};
pub use parser::{ClaudeStreamParser, StreamParser, TextParser};
