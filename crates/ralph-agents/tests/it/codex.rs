//! Every captured Codex CLI 0.169.0 transcript (`codex exec --json`).

use ralph_agents::{
    AgentEvent, AgentOutcome, Clock, CodexJsonParser, CostSource, ErrorClass, RetryAfter,
    TextParser, Tokens,
};

use crate::{
    assert_fixtures_match_reference, capture_in, clock, fixture_names_in, read_fixture, run, unix,
};

const DIR: &str = "codex";
const FINAL: &str = "I created hello.txt and verified it. LOOP_COMPLETE";

/// Every fixture file and the test that covers it.
const COVERED: &[&str] = &[
    "codex-chat-wire.jsonl",         // config_errors_before_any_output
    "codex-chat-wire.stderr",        // config_errors_before_any_output
    "codex-err-auth_error.jsonl",    // api_errors
    "codex-err-auth_error.stderr",   // api_errors
    "codex-err-quota.jsonl",         // api_errors
    "codex-err-quota.stderr",        // api_errors
    "codex-err-rate_limit.jsonl",    // api_errors
    "codex-err-rate_limit.stderr",   // api_errors
    "codex-err-server_error.jsonl",  // api_errors
    "codex-err-server_error.stderr", // api_errors
    "codex-err-usage_limit.jsonl",   // usage_limit_resets_at_the_next_local_time
    "codex-err-usage_limit.stderr",  // usage_limit_resets_at_the_next_local_time
    "codex-failing-command.jsonl",   // failing_command_fragment
    "codex-fullauto.jsonl",          // config_errors_before_any_output
    "codex-fullauto.stderr",         // config_errors_before_any_output
    "codex-json.jsonl",              // success
    "codex-json.stderr",             // success
    "codex-last-message.txt",        // last_message_file_is_the_final_text
    "codex-text.stderr",             // text_mode
    "codex-text.stdout",             // text_mode
    "codex-workspace-write.jsonl",   // success
    "codex-workspace-write.stderr",  // success
];

fn parse_with(name: &str, clock: Clock) -> (Vec<AgentEvent>, AgentOutcome) {
    let (stdout, exit, stderr) = capture_in(DIR, name);
    let mut p = CodexJsonParser::default()
        .with_clock(clock)
        .with_model(Some("gpt-5.5"));
    run(&mut p, &stdout, exit, &stderr)
}

fn parse(name: &str) -> (Vec<AgentEvent>, AgentOutcome) {
    parse_with(name, clock("UTC"))
}

#[test]
fn every_fixture_is_covered() {
    assert_eq!(fixture_names_in(DIR), COVERED);
}

#[test]
fn fixtures_match_the_reference_transcripts() {
    assert_fixtures_match_reference(DIR, "codex-");
}

#[test]
fn success() {
    for name in ["codex-json.jsonl", "codex-workspace-write.jsonl"] {
        let (events, out) = parse(name);
        assert_eq!(out.final_text, FINAL, "{name}");
        // input_tokens 4500 includes the 900 cached.
        assert_eq!(
            out.usage,
            Some(Tokens {
                input: 3600,
                output: 240,
                cache_read: 900,
                cache_write: 0
            }),
            "{name}"
        );
        assert_eq!(out.cost_usd, None);
        assert_eq!(out.cost_source, CostSource::Unknown);
        assert_eq!(out.error, None);
        assert_eq!(out.error_message, None);
        assert_eq!(out.retry_after, None);
        assert_eq!(out.model.as_deref(), Some("gpt-5.5"));
        assert_eq!(
            (out.lines, out.unknown_lines, out.malformed_lines),
            (10, 0, 0)
        );
        assert_eq!(
            events,
            vec![
                AgentEvent::Init {
                    model: Some("gpt-5.5".into())
                },
                AgentEvent::Other,
                AgentEvent::Text {
                    text: "Step 1: calling apply_patch.".into()
                },
                AgentEvent::ToolUse {
                    name: "file_change".into(),
                    input: r#"{"changes":[{"kind":"add","path":"/home/user/project/hello.txt"}]}"#
                        .into()
                },
                AgentEvent::ToolResult { is_error: false },
                AgentEvent::Text {
                    text: "Step 2: calling exec_command.".into()
                },
                AgentEvent::ToolUse {
                    name: "command_execution".into(),
                    input: r#"{"command":"/bin/bash -lc 'cat hello.txt && echo SHELL_OK'"}"#.into()
                },
                AgentEvent::ToolResult { is_error: false },
                AgentEvent::Text { text: FINAL.into() },
                AgentEvent::Result { is_error: false },
            ],
            "{name}"
        );
    }
}

#[test]
fn last_message_file_is_the_final_text() {
    let (_, out) = parse("codex-json.jsonl");
    assert_eq!(
        read_fixture(DIR, "codex-last-message.txt").trim_end(),
        out.final_text
    );
}

#[test]
fn api_errors() {
    let cases: &[(&str, ErrorClass, &str)] = &[
        (
            "codex-err-auth_error.jsonl",
            ErrorClass::Auth,
            "unexpected status 401 Unauthorized: invalid x-api-key (mock), url: http://127.0.0.1:34287/v1/responses",
        ),
        (
            "codex-err-quota.jsonl",
            ErrorClass::Quota,
            "Quota exceeded. Check your plan and billing details.",
        ),
        (
            "codex-err-rate_limit.jsonl",
            ErrorClass::RateLimit,
            "exceeded retry limit, last status: 429 Too Many Requests",
        ),
        // The mock's 500 comes back as Codex's "high demand" message.
        (
            "codex-err-server_error.jsonl",
            ErrorClass::Overloaded,
            "We’re currently experiencing high demand, which may cause temporary errors.",
        ),
    ];
    for (name, class, message) in cases {
        let (events, out) = parse(name);
        assert_eq!(out.error, Some(*class), "{name}");
        assert_eq!(out.error_message.as_deref(), Some(*message), "{name}");
        // No reset time in any of these texts.
        assert_eq!(out.retry_after, None, "{name}");
        assert_eq!(out.usage, None, "{name}");
        assert_eq!(out.cost_usd, None, "{name}");
        assert_eq!(out.cost_source, CostSource::Unknown, "{name}");
        assert_eq!(out.final_text, "", "{name}");
        assert_eq!(
            events[2],
            AgentEvent::Error {
                message: message.to_string()
            },
            "{name}"
        );
        assert_eq!(events[3], AgentEvent::Result { is_error: true }, "{name}");
        assert_eq!((out.unknown_lines, out.malformed_lines), (0, 0), "{name}");
    }
}

#[test]
fn usage_limit_resets_at_the_next_local_time() {
    let name = "codex-err-usage_limit.jsonl";
    // Captured at 09:40 UTC; "try again at 11:37 AM" is in the machine's local time.
    let cases = [
        ("UTC", "2026-11-21T11:37:00Z"),
        // 10:40 in Paris: 11:37 Paris time is 10:37 UTC, later today.
        ("Europe/Paris", "2026-11-21T10:37:00Z"),
        // 18:40 in Tokyo: 11:37 tomorrow morning.
        ("Asia/Tokyo", "2026-11-22T02:37:00Z"),
        // 04:40 in New York (EST): 11:37 today.
        ("America/New_York", "2026-11-21T16:37:00Z"),
    ];
    for (tz, when) in cases {
        let (_, out) = parse_with(name, clock(tz));
        assert_eq!(out.error, Some(ErrorClass::UsageLimit), "{tz}");
        assert_eq!(out.retry_after, Some(RetryAfter::At(unix(when))), "{tz}");
        assert_eq!(
            out.error_message.as_deref(),
            Some("You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 11:37 AM.")
        );
    }
}

#[test]
fn failing_command_fragment() {
    let (events, out) = parse("codex-failing-command.jsonl");
    assert_eq!(
        events,
        vec![
            AgentEvent::ToolUse {
                name: "command_execution".into(),
                input: r#"{"command":"/bin/bash -lc 'echo oops >&2; exit 3'"}"#.into()
            },
            AgentEvent::ToolResult { is_error: true },
        ]
    );
    // A fragment without a turn end is not a successful call.
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(
        out.error_message.as_deref(),
        Some("agent exited without a result")
    );
}

#[test]
fn config_errors_before_any_output() {
    let cases: &[(&str, &str)] = &[
        (
            "codex-chat-wire.jsonl",
            "exited with code 1: Error loading config.toml: `wire_api = \"chat\"` is no longer supported.",
        ),
        (
            "codex-fullauto.jsonl",
            "exited with code 2: error: unexpected argument '--full-auto' found",
        ),
    ];
    for (name, message) in cases {
        let (events, out) = parse(name);
        assert!(events.is_empty(), "{name}");
        assert_eq!(out.error, Some(ErrorClass::Crash), "{name}");
        assert_eq!(out.error_message.as_deref(), Some(*message), "{name}");
        assert_eq!(out.lines, 0, "{name}");
    }
}

#[test]
fn text_mode() {
    let (stdout, exit, stderr) = capture_in(DIR, "codex-text.stdout");
    let (_, out) = run(&mut TextParser::default(), &stdout, exit, &stderr);
    assert_eq!(out.final_text, FINAL);
    assert_eq!(out.error, None);
    assert!(stderr.contains("tokens used\n3,840"));
}
