#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test on a missing or bad fixture"
)]
//! One integration test binary: real captured agent output as fixtures, edge cases of the
//! parsers, and the command lines the backends build.

mod backends;
mod codex;
mod commands;
mod copilot;
mod edge_cases;
mod gemini;
mod more_agents;
mod opencode;
mod proof;
mod robustness;
mod testkit_fixtures;
mod transcripts;

use ralph_agents::{AgentEvent, AgentOutcome, Clock, ExitInfo, StreamParser};

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

/// `tests/fixtures/<dir>/`: copies of `shared/reference/transcripts/<dir>-*`.
pub fn fixture_dir(dir: &str) -> String {
    format!("{}/tests/fixtures/{dir}/", env!("CARGO_MANIFEST_DIR"))
}

pub fn read_fixture(dir: &str, name: &str) -> String {
    std::fs::read_to_string(format!("{}{name}", fixture_dir(dir)))
        .unwrap_or_else(|e| panic!("fixture {dir}/{name}: {e}"))
}

/// The sorted file names of a fixture directory.
pub fn fixture_names_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A captured run: stdout, exit status and the CLI's real stderr. The `.stderr` captures end
/// with the harness's notes ("codex exit code: 1" and a directory listing); what precedes that
/// line is the CLI's stderr. No `.stderr` file: exit 0, empty stderr.
pub fn capture_in(dir: &str, name: &str) -> (String, ExitInfo, String) {
    let stdout = read_fixture(dir, name);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let path = format!("{}{stem}.stderr", fixture_dir(dir));
    let Ok(notes) = std::fs::read_to_string(&path) else {
        return (stdout, exit(0), String::new());
    };
    let mut stderr = String::new();
    for line in notes.split_inclusive('\n') {
        if let Some((_, code)) = line.split_once(" exit code: ") {
            let code: i32 = code.trim().parse().unwrap();
            return (stdout, exit(code), stderr);
        }
        stderr.push_str(line);
    }
    panic!("{path} has no exit code line");
}

/// The instant the reference transcripts were captured: 2026-11-21T09:40:00Z.
pub const CAPTURED_AT: i64 = 1_795_254_000;

/// A clock at [`CAPTURED_AT`] in `tz`.
pub fn clock(tz: &str) -> Clock {
    Clock::fixed(CAPTURED_AT, Some(tz))
}

/// Unix seconds of an RFC 3339 instant.
pub fn unix(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// Every reference transcript whose name starts with `prefix` has an identical copy in
/// `tests/fixtures/<dir>/` and the other way round (when the reference directory sits beside
/// the repository, as in the workspace and in CI).
pub fn assert_fixtures_match_reference(dir: &str, prefix: &str) {
    let reference = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/transcripts/"
    );
    let Ok(entries) = std::fs::read_dir(reference) else {
        return;
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    assert_eq!(names, fixture_names_in(dir), "{dir}");
    for n in &names {
        let a = std::fs::read(format!("{reference}{n}")).unwrap();
        let b = std::fs::read(format!("{}{n}", fixture_dir(dir))).unwrap();
        assert!(a == b, "{n} differs from the reference copy");
    }
}
