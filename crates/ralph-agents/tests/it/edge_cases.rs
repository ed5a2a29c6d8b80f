//! Garbage, truncation, silence and floods.

use ralph_agents::{
    AgentEvent, ClaudeStreamParser, ErrorClass, ExitInfo, StreamParser, TextParser, FINAL_TEXT_MAX,
};

use crate::{exit, fixture, run};

const TEN_MB: usize = 10 * 1024 * 1024;

#[test]
fn garbage_lines_are_malformed_and_never_panic() {
    let mut p = ClaudeStreamParser::default();
    let mut events = Vec::new();
    let garbage: &[&[u8]] = &[
        b"not json",
        b"{",
        b"}",
        b"[1,2",
        b"\xff\xfe\x00binary",
        b"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"\xff\"}]}}",
        b"\x1b[31mred\x1b[0m",
        b"{\"type\":\"result\",}",
    ];
    for g in garbage {
        p.line(g, false, &mut events);
    }
    assert_eq!(events, vec![AgentEvent::Malformed; garbage.len()]);
    let out = p.finish(exit(0), "");
    assert_eq!(out.malformed_lines, garbage.len() as u64);
    assert_eq!(out.lines, garbage.len() as u64);
    assert_eq!(out.error, Some(ErrorClass::Crash));
}

#[test]
fn garbage_between_good_lines_does_not_lose_the_result() {
    let good = fixture("claude-stream.jsonl");
    let mut mixed = String::new();
    for line in good.lines() {
        mixed.push_str("warning: something odd\n");
        mixed.push_str(line);
        mixed.push('\n');
    }
    let (_, out) = run(&mut ClaudeStreamParser::default(), &mixed, exit(0), "");
    assert_eq!(out.error, None);
    assert_eq!(
        out.final_text,
        "I created hello.txt and verified it. LOOP_COMPLETE"
    );
    assert_eq!(out.malformed_lines, 9);
    assert_eq!(out.lines, 18);
}

#[test]
fn crlf_line_endings_are_tolerated() {
    let good = fixture("claude-stream.jsonl").replace('\n', "\r\n");
    let (_, out) = run(&mut ClaudeStreamParser::default(), &good, exit(0), "");
    assert_eq!(out.error, None);
    assert_eq!(out.malformed_lines, 0);
}

#[test]
fn truncated_lines() {
    let good = fixture("claude-stream.jsonl");
    let lines: Vec<&str> = good.lines().collect();
    let mut p = ClaudeStreamParser::default();
    let mut events = Vec::new();
    // A truncated assistant line is malformed; the stream goes on.
    p.line(&lines[1].as_bytes()[..100], true, &mut events);
    // A "truncated" line that happens to be complete JSON is used as is.
    p.line(lines[5].as_bytes(), true, &mut events);
    p.line(lines[8].as_bytes(), false, &mut events);
    assert_eq!(events[0], AgentEvent::Malformed);
    assert!(matches!(events[1], AgentEvent::ToolUse { .. }));
    let out = p.finish(exit(0), "");
    assert_eq!(out.malformed_lines, 1);
    assert_eq!(out.error, None);
    assert_eq!(
        out.final_text,
        "I created hello.txt and verified it. LOOP_COMPLETE"
    );
}

#[test]
fn truncated_result_line_is_reported_as_such() {
    let good = fixture("claude-stream.jsonl");
    let result = good.lines().last().unwrap();
    let mut p = ClaudeStreamParser::default();
    let mut events = Vec::new();
    p.line(&result.as_bytes()[..200], true, &mut events);
    let out = p.finish(exit(0), "");
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(
        out.error_message.as_deref(),
        Some("the agent's result line was cut at the line length cap; its outcome is unknown")
    );
}

#[test]
fn empty_stream() {
    let (events, out) = run(&mut ClaudeStreamParser::default(), "", exit(0), "");
    assert!(events.is_empty());
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(
        out.error_message.as_deref(),
        Some("agent exited without a result line")
    );
    assert_eq!(out.final_text, "");
    assert_eq!(out.lines, 0);

    let (_, out) = run(&mut ClaudeStreamParser::default(), "", exit(1), "");
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(
        out.error_message.as_deref(),
        Some("exited with code 1 without a result line")
    );

    let stderr = "Error: When using --print, --output-format=stream-json requires --verbose\n";
    let (_, out) = run(&mut ClaudeStreamParser::default(), "", exit(1), stderr);
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(
        out.error_message.as_deref(),
        Some("exited with code 1: Error: When using --print, --output-format=stream-json requires --verbose")
    );

    let (_, out) = run(
        &mut ClaudeStreamParser::default(),
        "",
        exit(1),
        "Claude AI usage limit reached|1753441200\n",
    );
    assert_eq!(out.error, Some(ErrorClass::UsageLimit));
    assert_eq!(
        out.retry_after,
        Some(ralph_agents::RetryAfter::At(1_753_441_200))
    );
    insta::assert_debug_snapshot!(out);
}

#[test]
fn empty_text_output() {
    let (_, out) = run(&mut TextParser::default(), "", exit(0), "");
    assert_eq!(out.error, None);
    assert_eq!(out.final_text, "");
    let (_, out) = run(&mut TextParser::default(), "", exit(2), "");
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert_eq!(out.error_message.as_deref(), Some("exited with code 2"));
}

#[test]
fn text_agent_failure() {
    let (_, out) = run(
        &mut TextParser::default(),
        "working...\nstill working\n",
        exit(3),
        "debug: x\nError: 503 Service Unavailable\n\n",
    );
    assert_eq!(out.error, Some(ErrorClass::Server));
    assert_eq!(
        out.error_message.as_deref(),
        Some("exited with code 3: Error: 503 Service Unavailable")
    );
    assert_eq!(out.final_text, "working...\nstill working");
    insta::assert_debug_snapshot!(out);
}

#[test]
fn ten_megabyte_text_line() {
    let mut line = "a".repeat(TEN_MB);
    line.push_str("é LOOP_COMPLETE");
    let mut p = TextParser::default();
    let mut events = Vec::new();
    p.line(b"before", false, &mut events);
    p.line(line.as_bytes(), false, &mut events);
    let out = p.finish(
        ExitInfo {
            code: Some(0),
            signal: None,
        },
        "",
    );
    assert!(out.final_text.len() <= FINAL_TEXT_MAX);
    assert!(out.final_text.len() >= FINAL_TEXT_MAX - 3);
    assert!(out.final_text.ends_with("aé LOOP_COMPLETE"));
    assert!(!out.final_text.contains("before"));
    assert_eq!(out.lines, 2);
}

#[test]
fn many_text_lines_keep_only_the_tail() {
    let mut p = TextParser::default();
    let mut events = Vec::new();
    for i in 0..200_000 {
        p.line(format!("line {i}").as_bytes(), false, &mut events);
        events.clear();
    }
    let out = p.finish(exit(0), "");
    assert!(out.final_text.len() <= FINAL_TEXT_MAX);
    assert!(out.final_text.ends_with("line 199998\nline 199999"));
    assert_eq!(out.lines, 200_000);
}

#[test]
fn ten_megabyte_lines_in_a_json_stream() {
    let mut p = ClaudeStreamParser::default();
    let mut events = Vec::new();
    // Plain text: malformed, and only a bounded piece of it is kept.
    p.line("x".repeat(TEN_MB).as_bytes(), false, &mut events);
    // A valid assistant line with a huge text block: the fallback answer is bounded.
    let huge = serde_json::json!({
        "type": "assistant",
        "message": {"id": "m1", "content": [{"type": "text", "text": format!("{}END", "y".repeat(TEN_MB))}]},
        "parent_tool_use_id": null,
    })
    .to_string();
    p.line(huge.as_bytes(), false, &mut events);
    assert_eq!(events[0], AgentEvent::Malformed);
    assert!(matches!(&events[1], AgentEvent::Text { text } if text.len() == TEN_MB + 3));
    let out = p.finish(exit(1), "");
    assert_eq!(out.final_text.len(), FINAL_TEXT_MAX);
    assert!(out.final_text.ends_with("yEND"));
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert!(out.error_message.as_deref().unwrap().len() < 400);
}

#[test]
fn huge_result_text_is_bounded_to_its_tail() {
    let result = serde_json::json!({
        "type": "result", "subtype": "success", "is_error": false,
        "result": format!("{}\nLOOP_COMPLETE", "z".repeat(FINAL_TEXT_MAX * 3)),
    })
    .to_string();
    let (_, out) = run(&mut ClaudeStreamParser::default(), &result, exit(0), "");
    assert_eq!(out.final_text.len(), FINAL_TEXT_MAX);
    assert!(out.final_text.ends_with("z\nLOOP_COMPLETE"));
}

#[test]
fn parsers_are_usable_as_trait_objects_across_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let p: Box<dyn StreamParser> = Box::new(ClaudeStreamParser::default());
    assert_send(&p);
}
