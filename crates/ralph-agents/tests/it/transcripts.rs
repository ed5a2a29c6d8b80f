//! Every captured Claude Code transcript, parsed as the engine would.

use ralph_agents::{
    AgentEvent, AgentOutcome, ClaudeStreamParser, CostSource, ErrorClass, ExitInfo, TextParser,
    Tokens,
};

use crate::{assert_cost, exit, fixture, run, FIXTURES};

/// Every fixture file and the test that covers it; `every_fixture_is_covered` keeps this honest.
const COVERED: &[&str] = &[
    "claude-allowedtools.jsonl",
    "claude-allowedtools.stderr",
    "claude-bare.jsonl",
    "claude-bare.stderr",
    "claude-denied.jsonl",
    "claude-denied.stderr",
    "claude-err-auth_error.jsonl",
    "claude-err-auth_error.stderr",
    "claude-err-connection-drop.jsonl",
    "claude-err-overloaded.jsonl",
    "claude-err-overloaded.stderr",
    "claude-err-rate_limit.jsonl",
    "claude-err-rate_limit.stderr",
    "claude-err-server_error.jsonl",
    "claude-err-server_error.stderr",
    "claude-err-usage_limit.jsonl",
    "claude-err-usage_limit.stderr",
    "claude-failing-command.jsonl",
    "claude-json.json",
    "claude-json.stderr",
    "claude-maxturns.jsonl",
    "claude-maxturns.stderr",
    "claude-noquiet.jsonl",
    "claude-noquiet.stderr",
    "claude-partial.jsonl",
    "claude-ratelimit-warning.jsonl",
    "claude-stream.jsonl",
    "claude-stream.stderr",
    "claude-text.stderr",
    "claude-text.txt",
];

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `.stderr` captures are the harness's notes, not Claude's stderr: the first line records
/// the exit code ("claude exit code: 1"); the rest is a directory listing. Passing all of it as
/// the stderr tail also checks that such noise does not confuse the classifier.
fn capture(name: &str) -> (String, ExitInfo, String) {
    let stdout = fixture(name);
    let stem = name.rsplit_once('.').unwrap().0;
    let stderr = fixture(&format!("{stem}.stderr"));
    let code: i32 = stderr
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("claude exit code: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (stdout, exit(code), stderr)
}

fn parse_capture(name: &str) -> (Vec<AgentEvent>, AgentOutcome) {
    let (stdout, exit, stderr) = capture(name);
    run(&mut ClaudeStreamParser::default(), &stdout, exit, &stderr)
}

fn line_count(name: &str) -> u64 {
    fixture(name).lines().count() as u64
}

#[test]
fn every_fixture_is_covered() {
    assert_eq!(fixture_names(), COVERED);
}

/// The fixtures are copies: if the reference transcripts sit beside the repository (as in the
/// workspace and in CI), they must not have drifted apart.
#[test]
fn fixtures_match_the_reference_transcripts() {
    let reference = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/transcripts/"
    );
    let Ok(dir) = std::fs::read_dir(reference) else {
        return;
    };
    let mut names: Vec<String> = dir
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("claude-"))
        .collect();
    names.sort();
    assert_eq!(names, fixture_names());
    for n in &names {
        let a = std::fs::read(format!("{reference}{n}")).unwrap();
        let b = std::fs::read(format!("{FIXTURES}{n}")).unwrap();
        assert!(a == b, "{n} differs from the reference copy");
    }
}

#[test]
fn all_stream_fixtures_parse_without_malformed_lines() {
    for name in COVERED
        .iter()
        .filter(|n| n.ends_with(".jsonl") || n.ends_with(".json"))
    {
        let mut p = ClaudeStreamParser::default();
        let (events, out) = run(&mut p, &fixture(name), exit(0), "");
        assert_eq!(out.malformed_lines, 0, "{name}");
        assert_eq!(out.unknown_lines, 0, "{name}");
        assert_eq!(out.lines, line_count(name), "{name}");
        assert!(!events.contains(&AgentEvent::Malformed), "{name}");
    }
}

#[test]
fn stream_success() {
    let (events, out) = parse_capture("claude-stream.jsonl");
    assert_eq!(
        out.final_text,
        "I created hello.txt and verified it. LOOP_COMPLETE"
    );
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 3600,
            output: 240,
            cache_read: 900,
            cache_write: 300
        })
    );
    // The reference doc's example shows 0.015795 (a sonnet price); the captured file was
    // priced for the model it actually used.
    assert_cost(out.cost_usd, 0.026325000000000005);
    assert_eq!(out.cost_source, CostSource::Reported);
    assert_eq!(out.model.as_deref(), Some("claude-opus-4-8[1m]"));
    // Three requests of 1200 input + 300 cache-read + 100 cache-write tokens each: the context
    // peaked at 1600, not at the 4800 the totals add up to.
    assert_eq!(out.context_tokens, Some(1600));
    assert_eq!(out.context_window, Some(1_000_000));
    assert_eq!(out.error, None);
    assert_eq!(out.error_message, None);
    assert_eq!(out.permission_denials, 0);
    assert_eq!(
        (out.lines, out.unknown_lines, out.malformed_lines),
        (9, 0, 0)
    );
    assert_eq!(events.len(), 9);
    assert_eq!(
        events[0],
        AgentEvent::Init {
            model: Some("claude-opus-4-8[1m]".into())
        }
    );
    assert_eq!(
        events[2],
        AgentEvent::ToolUse {
            name: "Write".into(),
            input: r#"{"content":"hello from the scripted LLM\n","file_path":"/home/user/project/hello.txt"}"#
                .into()
        }
    );
    assert_eq!(events[8], AgentEvent::Result { is_error: false });
    insta::assert_debug_snapshot!((events, out));
}

#[test]
fn successful_variants() {
    // (file, usage, cost). bare and noquiet made a side request (title generation) that
    // `result.usage` leaves out but `modelUsage` and the cost include: usage follows modelUsage.
    let cases: &[(&str, Tokens, f64)] = &[
        (
            "claude-allowedtools.jsonl",
            Tokens {
                input: 3600,
                output: 240,
                cache_read: 900,
                cache_write: 300,
            },
            0.026325000000000005,
        ),
        (
            "claude-bare.jsonl",
            Tokens {
                input: 4173,
                output: 245,
                cache_read: 900,
                cache_write: 300,
            },
            0.029315000000000004,
        ),
        (
            "claude-noquiet.jsonl",
            Tokens {
                input: 4173,
                output: 245,
                cache_read: 900,
                cache_write: 300,
            },
            0.029315000000000004,
        ),
        (
            "claude-json.json",
            Tokens {
                input: 3600,
                output: 240,
                cache_read: 900,
                cache_write: 300,
            },
            0.026325000000000005,
        ),
    ];
    for (name, usage, cost) in cases {
        let (_, out) = parse_capture(name);
        assert_eq!(
            out.final_text, "I created hello.txt and verified it. LOOP_COMPLETE",
            "{name}"
        );
        assert_eq!(out.usage, Some(*usage), "{name}");
        assert_cost(out.cost_usd, *cost);
        assert_eq!(out.cost_source, CostSource::Reported);
        assert_eq!(out.error, None, "{name}");
        assert_eq!(out.model.as_deref(), Some("claude-opus-4-8[1m]"), "{name}");
    }
}

#[test]
fn json_output_format_is_a_lone_result_line() {
    let (events, out) = parse_capture("claude-json.json");
    assert_eq!(events, vec![AgentEvent::Result { is_error: false }]);
    assert_eq!(out.lines, 1);
}

#[test]
fn partial_messages_are_other_not_malformed() {
    let stdout = fixture("claude-partial.jsonl");
    let (events, out) = run(&mut ClaudeStreamParser::default(), &stdout, exit(0), "");
    assert_eq!(out.final_text, "Hello. LOOP_COMPLETE");
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 19464,
            output: 20,
            cache_read: 0,
            cache_write: 0
        })
    );
    assert_cost(out.cost_usd, 0.09781999999999999);
    // Bit-exact, not just close: serde_json's default float parser was one ulp off here.
    assert_eq!(
        out.cost_usd.map(f64::to_bits),
        Some(0.09781999999999999_f64.to_bits())
    );
    assert_eq!(out.error, None);
    assert_eq!(
        (out.lines, out.unknown_lines, out.malformed_lines),
        (10, 0, 0)
    );
    // status line + 6 stream_event lines
    assert_eq!(
        events.iter().filter(|e| **e == AgentEvent::Other).count(),
        7
    );
    insta::assert_debug_snapshot!((events, out));
}

#[test]
fn ratelimit_warning_run_succeeds() {
    let stdout = fixture("claude-ratelimit-warning.jsonl");
    let (_, out) = run(&mut ClaudeStreamParser::default(), &stdout, exit(0), "");
    assert_eq!(out.final_text, "Hello. LOOP_COMPLETE");
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 19464,
            output: 20,
            cache_read: 0,
            cache_write: 0
        })
    );
    assert_cost(out.cost_usd, 0.09781999999999999);
    assert_eq!(out.error, None);
}

#[test]
fn api_errors() {
    let cases: &[(&str, ErrorClass, &str)] = &[
        (
            "claude-err-rate_limit.jsonl",
            ErrorClass::RateLimit,
            "API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit (mock)",
        ),
        ("claude-err-auth_error.jsonl", ErrorClass::Auth, "API error 401: Invalid API key · Fix external API key"),
        (
            "claude-err-overloaded.jsonl",
            ErrorClass::Overloaded,
            "API Error: 529 Overloaded (mock). This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (127.0.0.1:33687).",
        ),
        (
            "claude-err-server_error.jsonl",
            ErrorClass::Server,
            "API Error: 500 Internal server error (mock). This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (127.0.0.1:35285).",
        ),
        // Subscription usage limits cannot be reproduced with an API key: this capture is a
        // plain 429 account rate limit, and must be classified as what it says.
        (
            "claude-err-usage_limit.jsonl",
            ErrorClass::RateLimit,
            "API Error: Request rejected (429) · This request would exceed your account's rate limit. Please try again later.",
        ),
    ];
    for (name, class, message) in cases {
        let (events, out) = parse_capture(name);
        assert_eq!(out.error, Some(*class), "{name}");
        assert_eq!(out.error_message.as_deref(), Some(*message), "{name}");
        assert_eq!(out.usage, Some(Tokens::default()), "{name}");
        assert_eq!(out.cost_usd, Some(0.0), "{name}");
        assert_eq!(out.cost_source, CostSource::Reported, "{name}");
        // modelUsage is empty on failures: the model comes from init.
        assert_eq!(out.model.as_deref(), Some("claude-opus-4-8[1m]"), "{name}");
        assert!(
            matches!(
                events[1],
                AgentEvent::ApiRetry {
                    status: Some(_),
                    ..
                }
            ),
            "{name}"
        );
        assert_eq!(events[3], AgentEvent::Result { is_error: true }, "{name}");
        let snapshot = name.trim_end_matches(".jsonl").replace('-', "_");
        insta::assert_debug_snapshot!(snapshot, out);
    }
}

#[test]
fn api_retry_events_carry_status_and_code() {
    let (events, _) = parse_capture("claude-err-auth_error.jsonl");
    assert_eq!(
        events[1],
        AgentEvent::ApiRetry {
            status: Some(401),
            error: Some("authentication_failed".into())
        }
    );
}

#[test]
fn max_turns() {
    let (_, out) = parse_capture("claude-maxturns.jsonl");
    assert_eq!(out.error, Some(ErrorClass::MaxTurns));
    assert_eq!(
        out.error_message.as_deref(),
        Some("Reached maximum number of turns (1)")
    );
    // No `result` field on this subtype: the last assistant text stands in.
    assert_eq!(out.final_text, "Step 1: calling Write.");
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 1200,
            output: 80,
            cache_read: 300,
            cache_write: 100
        })
    );
    assert_cost(out.cost_usd, 0.008775000000000002);
    insta::assert_debug_snapshot!(out);
}

#[test]
fn permission_denied_is_never_a_silent_success() {
    let (events, out) = parse_capture("claude-denied.jsonl");
    assert_eq!(out.error, Some(ErrorClass::PermissionDenied));
    assert_eq!(out.permission_denials, 1);
    assert_eq!(
        out.error_message.as_deref(),
        Some("permission denied for 1 tool call: Write (the agent could not do what it tried)")
    );
    // The agent still claims success; the engine must not take its word for it.
    assert_eq!(
        out.final_text,
        "I created hello.txt and verified it. LOOP_COMPLETE"
    );
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 3600,
            output: 240,
            cache_read: 900,
            cache_write: 300
        })
    );
    let failed_tools = events
        .iter()
        .filter(|e| **e == AgentEvent::ToolResult { is_error: true })
        .count();
    assert_eq!(failed_tools, 2);
    insta::assert_debug_snapshot!(out);
}

#[test]
fn connection_drop_killed_mid_retry() {
    let stdout = fixture("claude-err-connection-drop.jsonl");
    for exit_info in [
        exit(1),
        ExitInfo {
            code: None,
            signal: Some(15),
        },
    ] {
        let (events, out) = run(&mut ClaudeStreamParser::default(), &stdout, exit_info, "");
        // Claude was still retrying with no HTTP status: the cause is genuinely unknown
        // (transient, so the engine retries).
        assert_eq!(out.error, Some(ErrorClass::Unknown));
        assert_eq!(out.usage, None);
        assert_eq!(out.cost_usd, None);
        assert_eq!(out.cost_source, CostSource::Unknown);
        assert_eq!(out.final_text, "Step 2: calling Bash.");
        assert_eq!(out.model.as_deref(), Some("claude-opus-4-8[1m]"));
        assert_eq!(out.lines, 16);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, AgentEvent::ApiRetry { status: None, .. }))
                .count(),
            9
        );
        let msg = out.error_message.unwrap();
        assert!(
            msg.ends_with(
                "while the agent was retrying an API call (attempt 9 of 10, error: unknown)"
            ),
            "{msg}"
        );
    }
    let (_, out) = run(&mut ClaudeStreamParser::default(), &stdout, exit(1), "");
    insta::assert_debug_snapshot!(out);
}

#[test]
fn connection_drop_with_clean_exit_is_a_crash() {
    let stdout = fixture("claude-err-connection-drop.jsonl");
    let (_, out) = run(&mut ClaudeStreamParser::default(), &stdout, exit(0), "");
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(
        out.error_message.as_deref(),
        Some("agent exited without a result line")
    );
}

#[test]
fn failing_command_fragment() {
    let stdout = fixture("claude-failing-command.jsonl");
    let (events, out) = run(&mut ClaudeStreamParser::default(), &stdout, exit(0), "");
    assert_eq!(events, vec![AgentEvent::ToolResult { is_error: true }]);
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(out.final_text, "");
}

#[test]
fn text_output() {
    let (stdout, exit, stderr) = capture("claude-text.txt");
    let (events, out) = run(&mut TextParser::default(), &stdout, exit, &stderr);
    assert_eq!(
        out.final_text,
        "I created hello.txt and verified it. LOOP_COMPLETE"
    );
    assert_eq!(out.lines, 1);
    assert_eq!(out.error, None);
    assert_eq!(out.usage, None);
    assert_eq!(out.cost_source, CostSource::Unknown);
    assert_eq!(
        events,
        vec![AgentEvent::Text {
            text: "I created hello.txt and verified it. LOOP_COMPLETE".into()
        }]
    );
}
