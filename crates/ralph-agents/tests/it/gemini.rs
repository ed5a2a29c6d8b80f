//! Every captured Gemini CLI 0.61.0 transcript (`--output-format stream-json`).

use ralph_agents::{
    AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, GeminiStreamParser, Tokens,
};

use crate::{
    assert_fixtures_match_reference, capture_in, clock, exit, fixture_names_in, read_fixture, run,
};

const DIR: &str = "gemini";
const FINAL: &str = "I created hello.txt and verified it. LOOP_COMPLETE";

/// Every fixture file and the test that covers it.
const COVERED: &[&str] = &[
    "gemini-bare.json",                  // clean_exit_without_output
    "gemini-bare.stderr",                // clean_exit_without_output
    "gemini-err-auth_error.jsonl",       // api_errors
    "gemini-err-auth_error.stderr",      // api_errors
    "gemini-err-quota.jsonl",            // api_errors
    "gemini-err-quota.stderr",           // api_errors
    "gemini-err-rate_limit.jsonl",       // api_errors
    "gemini-err-rate_limit.stderr",      // api_errors
    "gemini-err-server_error.jsonl",     // api_errors
    "gemini-err-server_error.stderr",    // api_errors
    "gemini-failing-command.jsonl",      // failing_command_fragment
    "gemini-json-default-settings.json", // json_output_format_is_not_a_stream
    "gemini-no-yolo.jsonl",              // without_yolo_the_agent_only_talks
    "gemini-no-yolo.stderr",             // without_yolo_the_agent_only_talks
    "gemini-stream.jsonl",               // success
    "gemini-stream.stderr",              // success
];

fn parse(name: &str) -> (Vec<AgentEvent>, AgentOutcome) {
    let (stdout, exit, stderr) = capture_in(DIR, name);
    run(
        &mut GeminiStreamParser::default().with_clock(clock("UTC")),
        &stdout,
        exit,
        &stderr,
    )
}

#[test]
fn every_fixture_is_covered() {
    assert_eq!(fixture_names_in(DIR), COVERED);
}

#[test]
fn fixtures_match_the_reference_transcripts() {
    assert_fixtures_match_reference(DIR, "gemini-");
}

#[test]
fn success() {
    let (events, out) = parse("gemini-stream.jsonl");
    assert_eq!(out.final_text, FINAL);
    // input_tokens 4500 includes the 900 cached; `input` is the uncached 3600.
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 3600,
            output: 240,
            cache_read: 900,
            cache_write: 0
        })
    );
    assert_eq!(out.cost_usd, None);
    assert_eq!(out.cost_source, CostSource::Unknown);
    assert_eq!(out.model.as_deref(), Some("gemini-2.5-pro"));
    assert_eq!(out.error, None);
    assert_eq!(out.error_message, None);
    assert_eq!(
        (out.lines, out.unknown_lines, out.malformed_lines),
        (10, 0, 0)
    );
    assert_eq!(
        events,
        vec![
            AgentEvent::Init {
                model: Some("gemini-2.5-pro".into())
            },
            AgentEvent::Other,
            AgentEvent::Text {
                text: "Step 1: calling write_file.".into()
            },
            AgentEvent::ToolUse {
                name: "write_file".into(),
                input: r#"{"content":"hello from the scripted LLM\n","file_path":"hello.txt"}"#.into()
            },
            AgentEvent::ToolResult { is_error: false },
            AgentEvent::Text {
                text: "Step 2: calling run_shell_command.".into()
            },
            AgentEvent::ToolUse {
                name: "run_shell_command".into(),
                input: r#"{"command":"cat hello.txt && echo SHELL_OK","description":"Run scripted command"}"#
                    .into()
            },
            AgentEvent::ToolResult { is_error: false },
            AgentEvent::Text { text: FINAL.into() },
            AgentEvent::Result { is_error: false },
        ]
    );
}

#[test]
fn without_yolo_the_agent_only_talks() {
    let (_, out) = parse("gemini-no-yolo.jsonl");
    assert_eq!(out.final_text, "OK");
    assert_eq!(out.error, None);
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 1200,
            output: 80,
            cache_read: 300,
            cache_write: 0
        })
    );
}

#[test]
fn api_errors() {
    let tail = " Please wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method";
    let cases: &[(&str, i32, ErrorClass, String)] = &[
        (
            "gemini-err-auth_error.jsonl",
            145,
            ErrorClass::Auth,
            r#"[API Error: {"error":{"code":401,"message":"invalid x-api-key (mock)","status":"UNAUTHENTICATED"}}]"#.to_string(),
        ),
        (
            "gemini-err-quota.jsonl",
            173,
            ErrorClass::Quota,
            format!("[API Error: You have exhausted your daily quota on this model.]{tail}"),
        ),
        (
            "gemini-err-rate_limit.jsonl",
            173,
            ErrorClass::RateLimit,
            format!("[API Error: Number of request tokens has exceeded your per-minute rate limit (mock)]{tail}"),
        ),
        (
            "gemini-err-server_error.jsonl",
            244,
            ErrorClass::Server,
            r#"[API Error: {"error":{"code":500,"message":"Internal server error (mock)","status":"INTERNAL"}}]"#.to_string(),
        ),
    ];
    for (name, code, class, message) in cases {
        let (stdout, exit_info, stderr) = capture_in(DIR, name);
        assert_eq!(exit_info, exit(*code), "{name}");
        let (events, out) = run(
            &mut GeminiStreamParser::default().with_clock(clock("UTC")),
            &stdout,
            exit_info,
            &stderr,
        );
        assert_eq!(out.error, Some(*class), "{name}");
        assert_eq!(
            out.error_message.as_deref(),
            Some(message.as_str()),
            "{name}"
        );
        // "try again later" names no time.
        assert_eq!(out.retry_after, None, "{name}");
        assert_eq!(out.usage, Some(Tokens::default()), "{name}");
        assert_eq!(out.cost_source, CostSource::Unknown, "{name}");
        assert_eq!(out.model.as_deref(), Some("gemini-2.5-pro"), "{name}");
        assert_eq!(out.final_text, "", "{name}");
        assert_eq!(events[2], AgentEvent::Result { is_error: true }, "{name}");
    }
}

#[test]
fn exit_code_alone_classifies_when_the_result_line_is_lost() {
    // The same failures with stdout lost: the exit code is the HTTP status mod 256, and the
    // stderr class names (RetryableQuotaError, TerminalQuotaError) tell rate from quota.
    let cases: &[(&str, ErrorClass)] = &[
        ("gemini-err-auth_error.jsonl", ErrorClass::Auth),
        ("gemini-err-quota.jsonl", ErrorClass::Quota),
        ("gemini-err-rate_limit.jsonl", ErrorClass::RateLimit),
        ("gemini-err-server_error.jsonl", ErrorClass::Server),
    ];
    for (name, class) in cases {
        let (_, exit_info, stderr) = capture_in(DIR, name);
        let (_, out) = run(&mut GeminiStreamParser::default(), "", exit_info, &stderr);
        assert_eq!(out.error, Some(*class), "{name}");
        assert!(
            out.error_message.as_deref().is_some_and(
                |m| m.starts_with(&format!("exited with code {}", exit_info.code.unwrap()))
            ),
            "{name}: {:?}",
            out.error_message
        );
    }
}

#[test]
fn failing_command_fragment() {
    let (events, out) = parse("gemini-failing-command.jsonl");
    // Gemini does not expose the exit code of a failing shell command.
    assert_eq!(events, vec![AgentEvent::ToolResult { is_error: false }]);
    assert_eq!(out.error, Some(ErrorClass::Crash));
}

#[test]
fn clean_exit_without_output() {
    let (events, out) = parse("gemini-bare.json");
    assert!(events.is_empty());
    assert_eq!(out.error, Some(ErrorClass::Crash));
    // The stderr stack trace of a clean exit is noise, not the cause.
    assert_eq!(
        out.error_message.as_deref(),
        Some("agent exited without a result")
    );
}

#[test]
fn json_output_format_is_not_a_stream() {
    // `--output-format json` pretty-prints one object over many lines: not this parser's
    // format. Every line is counted as malformed and nothing is mistaken for a result.
    let text = read_fixture(DIR, "gemini-json-default-settings.json");
    let (events, out) = run(
        &mut GeminiStreamParser::default(),
        &text,
        ExitInfo {
            code: Some(0),
            signal: None,
        },
        "",
    );
    let lines = text.lines().count() as u64;
    assert_eq!(out.lines, lines);
    assert_eq!(out.malformed_lines, lines);
    assert!(events.iter().all(|e| *e == AgentEvent::Malformed));
    assert_eq!(out.error, Some(ErrorClass::Crash));
}
