//! Tolerant line parsers for agent output.

use crate::event::{AgentEvent, AgentOutcome, ExitInfo};

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

/// Plain text output: the final answer is the tail of everything printed.
#[derive(Debug, Default)]
pub struct TextParser {
    tail: String,
    lines: u64,
}

impl StreamParser for TextParser {
    fn line(&mut self, _line: &[u8], _truncated: bool, _events: &mut Vec<AgentEvent>) {
        self.lines += 1;
        let _ = &self.tail;
    }

    fn finish(&mut self, _exit: ExitInfo, _stderr_tail: &str) -> AgentOutcome {
        AgentOutcome::default()
    }
}

/// Claude Code `--output-format stream-json --verbose` (also Amp's compatible format).
#[derive(Debug, Default)]
pub struct ClaudeStreamParser {
    lines: u64,
}

impl StreamParser for ClaudeStreamParser {
    fn line(&mut self, _line: &[u8], _truncated: bool, _events: &mut Vec<AgentEvent>) {
        self.lines += 1;
    }

    fn finish(&mut self, _exit: ExitInfo, _stderr_tail: &str) -> AgentOutcome {
        AgentOutcome::default()
    }
}
