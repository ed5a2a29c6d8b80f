#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration test binary: real captured agent output as fixtures, edge cases of the
//! parsers, and the command lines the backends build.

mod commands;
mod edge_cases;
mod transcripts;

use ralph_agents::{AgentEvent, AgentOutcome, ExitInfo, StreamParser};

/// Copies of `shared/reference/transcripts/claude-*`, so the repository is self-contained.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude/");

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}"))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn exit(code: i32) -> ExitInfo {
    ExitInfo {
        code: Some(code),
        signal: None,
    }
}

/// Feed every line of `text` (split on '\n', as the engine does) and finish.
pub fn run(
    parser: &mut dyn StreamParser,
    text: &str,
    exit: ExitInfo,
    stderr: &str,
) -> (Vec<AgentEvent>, AgentOutcome) {
    let mut events = Vec::new();
    let body = text.strip_suffix('\n').unwrap_or(text);
    if !body.is_empty() {
        for line in body.split('\n') {
            parser.line(line.as_bytes(), false, &mut events);
        }
    }
    let outcome = parser.finish(exit, stderr);
    (events, outcome)
}

pub fn assert_cost(actual: Option<f64>, expected: f64) {
    let a = actual.expect("cost reported");
    assert!((a - expected).abs() < 1e-12, "cost {a} != {expected}");
}
