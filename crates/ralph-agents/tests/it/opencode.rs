//! Every captured opencode 1.18.33 transcript (`opencode run --format json`).

use ralph_agents::{
    AgentEvent, AgentOutcome, CostSource, ErrorClass, OpencodeJsonParser, PriceTable, RetryAfter,
    TextParser, Tokens,
};

use crate::{
    assert_cost, assert_fixtures_match_reference, capture_in, clock, exit, fixture_names_in, run,
};

const DIR: &str = "opencode";
const FINAL: &str = "I created hello.txt and verified it. LOOP_COMPLETE";

/// Every fixture file and the test that covers it.
const COVERED: &[&str] = &[
    "opencode-default.stderr",          // default_text_format
    "opencode-default.txt",             // default_text_format
    "opencode-err-auth_error.jsonl",    // api_errors
    "opencode-err-auth_error.stderr",   // api_errors
    "opencode-err-quota.jsonl",         // api_errors
    "opencode-err-quota.stderr",        // api_errors
    "opencode-err-rate_limit.jsonl",    // api_errors
    "opencode-err-rate_limit.stderr",   // api_errors
    "opencode-err-server_error.jsonl",  // server_errors_hang_until_killed
    "opencode-err-server_error.stderr", // server_errors_hang_until_killed
    "opencode-failing-command.jsonl",   // failing_command_fragment
    "opencode-json.jsonl",              // success
    "opencode-json.stderr",             // success
];

fn parse(name: &str) -> (Vec<AgentEvent>, AgentOutcome) {
    let (stdout, exit, stderr) = capture_in(DIR, name);
    let mut p = OpencodeJsonParser::default()
        .with_clock(clock("UTC"))
        .with_model(Some("mock/mock-model"));
    run(&mut p, &stdout, exit, &stderr)
}

#[test]
fn every_fixture_is_covered() {
    assert_eq!(fixture_names_in(DIR), COVERED);
}

#[test]
fn fixtures_match_the_reference_transcripts() {
    assert_fixtures_match_reference(DIR, "opencode-");
}

#[test]
fn success() {
    let (events, out) = parse("opencode-json.jsonl");
    assert_eq!(out.final_text, FINAL);
    // Three steps of 1200 new + 300 cached input and 80 output each.
    let usage = Tokens {
        input: 3600,
        output: 240,
        cache_read: 900,
        cache_write: 0,
    };
    assert_eq!(out.usage, Some(usage));
    assert_cost(out.cost_usd, 0.01467);
    assert_eq!(out.cost_source, CostSource::Reported);
    // opencode's own figure agrees with the price table's for the test model.
    assert_cost(
        PriceTable::builtin().cost("mock/mock-model", &usage),
        0.01467,
    );
    assert_eq!(out.model.as_deref(), Some("mock/mock-model"));
    assert_eq!(out.error, None);
    assert_eq!(out.error_message, None);
    assert_eq!(
        (out.lines, out.unknown_lines, out.malformed_lines),
        (11, 0, 0)
    );
    assert_eq!(
        events,
        vec![
            AgentEvent::Other,
            AgentEvent::Text {
                text: "Step 1: calling write.".into()
            },
            AgentEvent::ToolUse {
                name: "write".into(),
                input: r#"{"content":"hello from the scripted LLM\n","filePath":"/home/user/project/hello.txt"}"#
                    .into()
            },
            AgentEvent::ToolResult { is_error: false },
            AgentEvent::Other,
            AgentEvent::Other,
            AgentEvent::Text {
                text: "Step 2: calling bash.".into()
            },
            AgentEvent::ToolUse {
                name: "bash".into(),
                input: r#"{"command":"cat hello.txt && echo SHELL_OK","description":"Run scripted command"}"#
                    .into()
            },
            AgentEvent::ToolResult { is_error: false },
            AgentEvent::Other,
            AgentEvent::Other,
            AgentEvent::Text { text: FINAL.into() },
            AgentEvent::Result { is_error: false },
        ]
    );
}

#[test]
fn api_errors() {
    let cases: &[(&str, ErrorClass, &str, Option<RetryAfter>)] = &[
        (
            "opencode-err-auth_error.jsonl",
            ErrorClass::Auth,
            "API error 401: invalid x-api-key (mock)",
            None,
        ),
        // Both 429s carry `retry-after: 1` in their response headers.
        (
            "opencode-err-quota.jsonl",
            ErrorClass::Quota,
            "API error 429: You exceeded your current quota, please check your plan and billing details. (mock)",
            Some(RetryAfter::In(1)),
        ),
        (
            "opencode-err-rate_limit.jsonl",
            ErrorClass::RateLimit,
            "API error 429: Number of request tokens has exceeded your per-minute rate limit (mock)",
            Some(RetryAfter::In(1)),
        ),
    ];
    for (name, class, message, retry) in cases {
        let (stdout, exit_info, stderr) = capture_in(DIR, name);
        assert_eq!(exit_info, exit(1), "{name}");
        let (events, out) = run(
            &mut OpencodeJsonParser::default().with_clock(clock("UTC")),
            &stdout,
            exit_info,
            &stderr,
        );
        assert_eq!(out.error, Some(*class), "{name}");
        assert_eq!(out.error_message.as_deref(), Some(*message), "{name}");
        assert_eq!(out.retry_after, *retry, "{name}");
        assert_eq!(out.usage, None, "{name}");
        assert_eq!(out.cost_usd, None, "{name}");
        assert_eq!(out.cost_source, CostSource::Unknown, "{name}");
        assert_eq!(events.len(), 1, "{name}");
        assert!(matches!(events[0], AgentEvent::Error { .. }), "{name}");
    }
}

#[test]
fn server_errors_hang_until_killed() {
    // opencode retries a 500 forever; the capture harness killed it (exit 124 from timeout).
    let (events, out) = parse("opencode-err-server_error.jsonl");
    assert!(events.is_empty());
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(out.error_message.as_deref(), Some("exited with code 124"));
}

#[test]
fn failing_command_fragment() {
    let (events, out) = parse("opencode-failing-command.jsonl");
    assert_eq!(
        events,
        vec![
            AgentEvent::ToolUse {
                name: "bash".into(),
                input:
                    r#"{"command":"echo oops >&2; exit 3","description":"Run scripted command"}"#
                        .into()
            },
            // metadata.exit 3
            AgentEvent::ToolResult { is_error: true },
        ]
    );
    assert_eq!(out.error, Some(ErrorClass::Crash));
}

#[test]
fn default_text_format() {
    let (stdout, exit_info, stderr) = capture_in(DIR, "opencode-default.txt");
    let (_, out) = run(&mut TextParser::default(), &stdout, exit_info, &stderr);
    assert_eq!(
        out.final_text,
        format!("Step 1: calling write.\nStep 2: calling bash.\n{FINAL}")
    );
    assert_eq!(out.error, None);
}
