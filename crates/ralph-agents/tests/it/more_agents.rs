//! Amp, Cursor and Kiro cannot be driven offline (their inference is server-side), so there
//! are no captures: these transcripts follow the formats documented in agent-clis.md §7–8.
//! Also: reset times through the Claude and text parsers.

use ralph_agents::{
    AgentEvent, AmpStreamParser, ClaudeStreamParser, CostSource, CursorStreamParser, ErrorClass,
    KiroTextParser, RetryAfter, TextParser,
};

use crate::{clock, exit, run, unix};

const AMP_OK: &str = r#"{"type":"system","subtype":"init","cwd":"/home/user/project","session_id":"T-1","tools":["Bash","create_file","edit_file","Read"],"mcp_servers":[]}
{"type":"assistant","message":{"id":"m1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Creating the file."},{"type":"tool_use","id":"t1","name":"create_file","input":{"path":"hello.txt","content":"hi\n"}}],"usage":{"input_tokens":100,"output_tokens":20}},"parent_tool_use_id":null,"session_id":"T-1"}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok","is_error":false}]},"parent_tool_use_id":null,"session_id":"T-1"}
{"type":"assistant","message":{"id":"m2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Done. LOOP_COMPLETE"}],"usage":{"input_tokens":150,"output_tokens":5}},"parent_tool_use_id":null,"session_id":"T-1"}
{"type":"result","subtype":"success","duration_ms":1200,"is_error":false,"num_turns":2,"result":"Done. LOOP_COMPLETE","session_id":"T-1"}
"#;

#[test]
fn amp_reads_like_claude_without_usage() {
    let (events, out) = run(&mut AmpStreamParser::default(), AMP_OK, exit(0), "");
    assert_eq!(out.final_text, "Done. LOOP_COMPLETE");
    assert_eq!(out.error, None);
    assert_eq!(out.usage, None);
    assert_eq!(out.cost_usd, None);
    assert_eq!(out.cost_source, CostSource::Unknown);
    assert_eq!(out.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!((out.unknown_lines, out.malformed_lines), (0, 0));
    assert_eq!(events.last(), Some(&AgentEvent::Result { is_error: false }));
    assert!(events.contains(&AgentEvent::ToolUse {
        name: "create_file".into(),
        input: r#"{"content":"hi\n","path":"hello.txt"}"#.into()
    }));
}

#[test]
fn amp_failures() {
    let (_, out) = run(
        &mut AmpStreamParser::default(),
        "",
        exit(1),
        "Error: API request for getUserInfo failed: 404\n",
    );
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(
        out.error_message.as_deref(),
        Some("exited with code 1: Error: API request for getUserInfo failed: 404")
    );
    let (_, out) = run(
        &mut AmpStreamParser::default().with_clock(clock("UTC")),
        r#"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"Insufficient credit balance. Add credits at ampcode.com/settings"}"#,
        exit(1),
        "",
    );
    assert_eq!(out.error, Some(ErrorClass::Quota));
    assert_eq!(out.cost_source, CostSource::Unknown);
}

const CURSOR_OK: &str = r#"{"type":"system","subtype":"init","apiKeySource":"login","cwd":"/home/user/project","session_id":"s1","model":"Auto","permissionMode":"default"}
{"type":"user","message":{"role":"user","content":[{"type":"text","text":"Create hello.txt"}]},"session_id":"s1"}
{"type":"thinking","subtype":"delta","text":"Plan","session_id":"s1"}
{"type":"thinking","subtype":"completed","session_id":"s1"}
{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"Creating hello.txt."}]},"session_id":"s1","model_call_id":"mc1"}
{"type":"tool_call","subtype":"started","call_id":"c1\nx","tool_call":{"writeToolCall":{"args":{"path":"hello.txt","fileText":"hi\n"}}},"session_id":"s1"}
{"type":"tool_call","subtype":"completed","call_id":"c1\nx","tool_call":{"writeToolCall":{"args":{"path":"hello.txt","fileText":"hi\n"},"result":{"success":{"path":"hello.txt","linesCreated":1}}}},"session_id":"s1"}
{"type":"tool_call","subtype":"started","call_id":"c2","tool_call":{"shellToolCall":{"args":{"command":"cat hello.txt"}}},"session_id":"s1"}
{"type":"tool_call","subtype":"completed","call_id":"c2","tool_call":{"shellToolCall":{"args":{"command":"cat hello.txt"},"result":{"failure":{"exitCode":1,"stderr":"nope"}}}},"session_id":"s1"}
{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"Done. LOOP_COMPLETE"}]},"session_id":"s1","model_call_id":"mc2"}
{"type":"result","subtype":"success","duration_ms":1234,"duration_api_ms":1000,"is_error":false,"result":"Done. LOOP_COMPLETE","session_id":"s1","request_id":"r1"}
"#;

#[test]
fn cursor_stream() {
    let (events, out) = run(&mut CursorStreamParser::default(), CURSOR_OK, exit(0), "");
    assert_eq!(out.final_text, "Done. LOOP_COMPLETE");
    assert_eq!(out.error, None);
    assert_eq!(out.usage, None);
    assert_eq!(out.cost_source, CostSource::Unknown);
    assert_eq!(out.model.as_deref(), Some("Auto"));
    assert_eq!(
        (out.lines, out.unknown_lines, out.malformed_lines),
        (11, 0, 0)
    );
    assert_eq!(
        events,
        vec![
            AgentEvent::Init {
                model: Some("Auto".into())
            },
            AgentEvent::Other,
            AgentEvent::Other,
            AgentEvent::Other,
            AgentEvent::Text {
                text: "Creating hello.txt.".into()
            },
            AgentEvent::ToolUse {
                name: "write".into(),
                input: r#"{"fileText":"hi\n","path":"hello.txt"}"#.into()
            },
            AgentEvent::ToolResult { is_error: false },
            AgentEvent::ToolUse {
                name: "shell".into(),
                input: r#"{"command":"cat hello.txt"}"#.into()
            },
            AgentEvent::ToolResult { is_error: true },
            AgentEvent::Text {
                text: "Done. LOOP_COMPLETE".into()
            },
            AgentEvent::Result { is_error: false },
        ]
    );
}

#[test]
fn cursor_failures() {
    // No JSON result: the message is on stderr.
    let (_, out) = run(
        &mut CursorStreamParser::default().with_clock(clock("UTC")),
        "",
        exit(1),
        "Error: You've hit your usage limit. Get Cursor Pro for more usage, or try again at 3:00 PM.\n",
    );
    assert_eq!(out.error, Some(ErrorClass::UsageLimit));
    assert_eq!(
        out.retry_after,
        Some(RetryAfter::At(unix("2026-11-21T15:00:00Z")))
    );
    let (_, out) = run(
        &mut CursorStreamParser::default(),
        "",
        exit(1),
        "Authentication required. Please run 'cursor-agent login' first, or set CURSOR_API_KEY.\n",
    );
    assert_eq!(out.error, Some(ErrorClass::Auth));
    // A refused tool call and a claim of success.
    let refused = r#"{"type":"tool_call","subtype":"completed","call_id":"c","tool_call":{"shellToolCall":{"args":{"command":"rm -rf x"},"result":{"rejected":{"reason":"not allowed"}}}}}
{"type":"result","subtype":"success","is_error":false,"result":"Done. LOOP_COMPLETE"}"#;
    let (_, out) = run(&mut CursorStreamParser::default(), refused, exit(0), "");
    assert_eq!(out.error, Some(ErrorClass::PermissionDenied));
    assert_eq!(out.permission_denials, 1);
    let (_, out) = run(
        &mut CursorStreamParser::default(),
        r#"{"type":"result","subtype":"error","is_error":true,"result":"Rate limit exceeded"}"#,
        exit(1),
        "",
    );
    assert_eq!(out.error, Some(ErrorClass::RateLimit));
    assert_eq!(out.error_message.as_deref(), Some("Rate limit exceeded"));
}

#[test]
fn kiro_text_without_ansi() {
    let stdout =
        "\u{1b}[38;5;12m> \u{1b}[0mI created hello.txt.\n\u{1b}[1mLOOP_COMPLETE\u{1b}[0m\n";
    let (events, out) = run(
        &mut KiroTextParser::default().with_model(Some("claude-sonnet-4.5")),
        stdout,
        exit(0),
        "",
    );
    assert_eq!(out.final_text, "> I created hello.txt.\nLOOP_COMPLETE");
    assert_eq!(
        events,
        vec![
            AgentEvent::Text {
                text: "> I created hello.txt.".into()
            },
            AgentEvent::Text {
                text: "LOOP_COMPLETE".into()
            },
        ]
    );
    assert_eq!(out.error, None);
    assert_eq!(out.usage, None);
    assert_eq!(out.model.as_deref(), Some("claude-sonnet-4.5"));
}

#[test]
fn kiro_failures() {
    let (_, out) = run(
        &mut KiroTextParser::default(),
        "",
        exit(1),
        "\u{1b}[31merror\u{1b}[0m: ThrottlingException: Too many requests, please wait before trying again.\n",
    );
    assert_eq!(out.error, Some(ErrorClass::RateLimit));
    assert_eq!(
        out.error_message.as_deref(),
        Some("exited with code 1: error: ThrottlingException: Too many requests, please wait before trying again.")
    );
    let (_, out) = run(
        &mut KiroTextParser::default(),
        "",
        exit(1),
        "You are not logged in, please log in with kiro-cli login\n",
    );
    assert_eq!(out.error, Some(ErrorClass::Auth));
    let (_, out) = run(
        &mut KiroTextParser::default(),
        "",
        exit(4),
        "Error: agent 'x' not found\n",
    );
    assert_eq!(out.error, Some(ErrorClass::Crash));
}

#[test]
fn claude_usage_limit_resets() {
    let line = serde_json::json!({
        "type": "result", "subtype": "success", "is_error": true, "api_error_status": 429,
        "result": "You've hit your limit · resets 4pm (Europe/Berlin)",
    })
    .to_string();
    let (_, out) = run(
        &mut ClaudeStreamParser::default().with_clock(clock("UTC")),
        &line,
        exit(1),
        "",
    );
    assert_eq!(out.error, Some(ErrorClass::UsageLimit));
    // 4pm in Berlin (CET, +1) is 15:00 UTC.
    assert_eq!(
        out.retry_after,
        Some(RetryAfter::At(unix("2026-11-21T15:00:00Z")))
    );
    // Old Claude Code in text mode.
    let (_, out) = run(
        &mut TextParser::default().with_clock(clock("UTC")),
        "",
        exit(1),
        "Claude AI usage limit reached|1753441200\n",
    );
    assert_eq!(out.error, Some(ErrorClass::UsageLimit));
    assert_eq!(out.retry_after, Some(RetryAfter::At(1_753_441_200)));
    // A server error never carries a reset time, whatever the text says.
    let (_, out) = run(
        &mut TextParser::default().with_clock(clock("UTC")),
        "",
        exit(1),
        "HTTP 500 Internal Server Error; retry-after: 30\n",
    );
    assert_eq!(out.error, Some(ErrorClass::Server));
    assert_eq!(out.retry_after, None);
    let (_, out) = run(
        &mut TextParser::default().with_clock(clock("UTC")),
        "",
        exit(1),
        "HTTP 429 Too Many Requests; retry-after: 30\n",
    );
    assert_eq!(out.error, Some(ErrorClass::RateLimit));
    assert_eq!(out.retry_after, Some(RetryAfter::In(30)));
}
