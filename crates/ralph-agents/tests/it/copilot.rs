//! Every captured GitHub Copilot CLI 1.0.102 transcript (`--output-format json`, BYOK).

use ralph_agents::{
    AgentEvent, AgentOutcome, CopilotJsonParser, CostSource, ErrorClass, TextParser, Tokens,
};

use crate::{
    assert_fixtures_match_reference, capture_in, clock, exit, fixture_dir, fixture_names_in,
    read_fixture, run,
};

const DIR: &str = "copilot";
const FINAL: &str = "I created hello.txt and verified it. LOOP_COMPLETE";

/// Every fixture file and the test that covers it.
const COVERED: &[&str] = &[
    "copilot-anthropic-provider.stderr", // footer_usage_when_there_is_no_usage_file
    "copilot-anthropic-provider.txt",    // text_modes
    "copilot-err-auth_error.jsonl",      // api_errors
    "copilot-err-auth_error.stderr",     // api_errors
    "copilot-err-quota.jsonl",           // api_errors
    "copilot-err-quota.stderr",          // api_errors
    "copilot-err-rate_limit.jsonl",      // api_errors
    "copilot-err-rate_limit.stderr",     // api_errors
    "copilot-err-server_error.jsonl",    // api_errors
    "copilot-err-server_error.stderr",   // api_errors
    "copilot-failing-command.jsonl",     // failing_command_fragment
    "copilot-json.jsonl",                // success_with_usage_file
    "copilot-json.stderr",               // success_with_usage_file
    "copilot-responses-wire.stderr",     // text_modes
    "copilot-responses-wire.txt",        // text_modes
    "copilot-text.stderr",               // footer_usage_when_there_is_no_usage_file
    "copilot-text.stdout",               // text_modes
    "copilot-usage.json",                // success_with_usage_file
];

fn usage_file() -> String {
    format!("{}copilot-usage.json", fixture_dir(DIR))
}

fn parse(name: &str, parser: CopilotJsonParser) -> (Vec<AgentEvent>, AgentOutcome) {
    let (stdout, exit, stderr) = capture_in(DIR, name);
    let mut p = parser.with_clock(clock("UTC"));
    run(&mut p, &stdout, exit, &stderr)
}

#[test]
fn every_fixture_is_covered() {
    assert_eq!(fixture_names_in(DIR), COVERED);
}

#[test]
fn fixtures_match_the_reference_transcripts() {
    assert_fixtures_match_reference(DIR, "copilot-");
}

#[test]
fn success_with_usage_file() {
    let parser = CopilotJsonParser::default().with_usage_file(usage_file());
    let (events, out) = parse("copilot-json.jsonl", parser);
    assert_eq!(out.final_text, FINAL);
    // inputTokens 4500 includes the 900 cache reads.
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
    assert_eq!(out.model.as_deref(), Some("gpt-4.1"));
    assert_eq!(out.error, None);
    assert_eq!(out.error_message, None);
    assert_eq!(
        (out.lines, out.unknown_lines, out.malformed_lines),
        (73, 0, 0)
    );
    let tools: Vec<&AgentEvent> = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolUse { .. }))
        .collect();
    assert_eq!(
        tools,
        vec![
            &AgentEvent::ToolUse {
                name: "create".into(),
                input: r#"{"file_text":"hello from the scripted LLM\n","path":"/home/user/project/hello.txt"}"#
                    .into()
            },
            &AgentEvent::ToolUse {
                name: "bash".into(),
                input: r#"{"command":"cat hello.txt && echo SHELL_OK","description":"Run scripted command"}"#
                    .into()
            },
        ]
    );
    let texts: Vec<&AgentEvent> = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::Text { .. }))
        .collect();
    assert_eq!(texts.len(), 3);
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == AgentEvent::ToolResult { is_error: false })
            .count(),
        2
    );
    assert_eq!(events.last(), Some(&AgentEvent::Result { is_error: false }));
}

#[test]
fn missing_usage_file_means_unknown_usage() {
    let parser = CopilotJsonParser::default().with_usage_file("/nonexistent/copilot-usage.json");
    let (_, out) = parse("copilot-json.jsonl", parser);
    assert_eq!(out.usage, None);
    assert_eq!(out.error, None);
    // The model still comes from the stream.
    assert_eq!(out.model.as_deref(), Some("gpt-4.1"));
}

#[test]
fn footer_usage_when_there_is_no_usage_file() {
    let stdout = read_fixture(DIR, "copilot-json.jsonl");
    let cases = [
        (
            "copilot-text.stderr",
            Tokens {
                input: 3600,
                output: 240,
                cache_read: 900,
                cache_write: 0,
            },
        ),
        // Anthropic provider: "↑ 4.8k (900 cached, 300 written)".
        (
            "copilot-anthropic-provider.stderr",
            Tokens {
                input: 3600,
                output: 240,
                cache_read: 900,
                cache_write: 300,
            },
        ),
    ];
    for (stderr_file, usage) in cases {
        let stderr = read_fixture(DIR, stderr_file);
        let (_, out) = run(&mut CopilotJsonParser::default(), &stdout, exit(0), &stderr);
        assert_eq!(out.usage, Some(usage), "{stderr_file}");
        assert_eq!(out.cost_source, CostSource::Unknown);
    }
}

#[test]
fn api_errors() {
    let cases: &[(&str, ErrorClass, &str, u16)] = &[
        (
            "copilot-err-auth_error.jsonl",
            ErrorClass::Auth,
            "Authentication failed with provider at http://127.0.0.1:39095/v1 (HTTP 401). Check your COPILOT_PROVIDER_API_KEY, COPILOT_PROVIDER_API_KEY_COMMAND, or COPILOT_PROVIDER_BEARER_TOKEN.",
            401,
        ),
        // Copilot calls it errorType "rate_limit"; the message says it is the quota.
        (
            "copilot-err-quota.jsonl",
            ErrorClass::Quota,
            "Failed to get response from the AI model; retried 5 times (total retry wait time: 5.35 seconds) Last error: 429 You exceeded your current quota, please check your plan and billing details. (mock)",
            429,
        ),
        (
            "copilot-err-rate_limit.jsonl",
            ErrorClass::RateLimit,
            "Failed to get response from the AI model; retried 5 times (total retry wait time: 5.33 seconds) Last error: 429 Number of request tokens has exceeded your per-minute rate limit (mock)",
            429,
        ),
        (
            "copilot-err-server_error.jsonl",
            ErrorClass::Server,
            "Failed to get response from the AI model; retried 5 times (total retry wait time: 16.76 seconds) Last error: 500 Internal server error (mock)",
            500,
        ),
    ];
    for (name, class, message, status) in cases {
        let (events, out) = parse(name, CopilotJsonParser::default());
        assert_eq!(out.error, Some(*class), "{name}");
        assert_eq!(out.error_message.as_deref(), Some(*message), "{name}");
        // "total retry wait time" is what Copilot waited, not when to try again.
        assert_eq!(out.retry_after, None, "{name}");
        assert_eq!(out.usage, None, "{name}");
        assert_eq!(out.final_text, "", "{name}");
        assert_eq!(out.model.as_deref(), Some("gpt-4.1"), "{name}");
        assert_eq!((out.unknown_lines, out.malformed_lines), (0, 0), "{name}");
        let retries = events
            .iter()
            .filter(|e| matches!(e, AgentEvent::ApiRetry { status: Some(s), .. } if s == status))
            .count();
        assert!(retries >= 3, "{name}: {retries} retries");
        assert_eq!(
            events.last(),
            Some(&AgentEvent::Result { is_error: true }),
            "{name}"
        );
    }
}

#[test]
fn failing_command_fragment() {
    let (events, out) = parse(
        "copilot-failing-command.jsonl",
        CopilotJsonParser::default(),
    );
    // `success: true` but the shell exited 3.
    assert_eq!(events, vec![AgentEvent::ToolResult { is_error: true }]);
    assert_eq!(out.error, Some(ErrorClass::Crash));
}

#[test]
fn text_modes() {
    for name in [
        "copilot-text.stdout",
        "copilot-responses-wire.txt",
        "copilot-anthropic-provider.txt",
    ] {
        let (stdout, exit_info, stderr) = capture_in(DIR, name);
        let (_, out) = run(&mut TextParser::default(), &stdout, exit_info, &stderr);
        assert!(out.final_text.trim_end().ends_with(FINAL), "{name}");
        assert_eq!(out.error, None, "{name}");
    }
}
