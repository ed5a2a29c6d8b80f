use std::path::Path;

use super::*;
use crate::custom::CustomBackend;

fn exit(code: i32) -> ExitInfo {
    ExitInfo {
        code: Some(code),
        signal: None,
    }
}

fn feed(p: &mut dyn StreamParser, lines: &[&str]) -> Vec<AgentEvent> {
    let mut ev = Vec::new();
    for l in lines {
        p.line(l.as_bytes(), false, &mut ev);
    }
    ev
}

fn ctx<'a>(extra: &'a [String], model: Option<&'a str>, is_root: bool) -> CommandContext<'a> {
    CommandContext {
        prompt: "do the thing\n",
        prompt_path: Path::new("/p/.ralph/runs/r1/0001/prompt.md"),
        model,
        extra_args: extra,
        is_root,
        scratch_dir: Path::new("/tmp/run/0001"),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn claude_program_override() {
    let b = ClaudeBackend::new(BackendConfig {
        command: strings(&["/opt/claude/bin/claude", "--debug"]),
        ..BackendConfig::default()
    });
    assert_eq!(b.program(), "/opt/claude/bin/claude");
    let spec = b.command(&ctx(&[], None, false));
    assert_eq!(spec.program, "/opt/claude/bin/claude");
    assert_eq!(
        spec.args,
        strings(&[
            "--debug",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions"
        ])
    );
}

#[test]
fn claude_empty_allow_list_passes_no_flag() {
    let b = ClaudeBackend::new(BackendConfig {
        permission: PermissionMode::AllowList(vec![]),
        ..BackendConfig::default()
    });
    let spec = b.command(&ctx(&[], Some(""), true));
    assert_eq!(
        spec.args,
        strings(&["-p", "--output-format", "stream-json", "--verbose"])
    );
    assert!(spec.env.is_empty());
}

#[test]
fn claude_deny_args() {
    let b = ClaudeBackend::new(BackendConfig::default());
    let rules = [
        DenyRule::new("git push --force"),
        DenyRule::new("  sudo "),
        DenyRule::new("sudo"),
        DenyRule::new("bad (paren)"),
        DenyRule::new(""),
    ];
    assert_eq!(
        b.deny_args(&rules),
        strings(&[
            "--disallowedTools",
            "Bash(git push --force) Bash(git push --force *) Bash(sudo) Bash(sudo *)"
        ])
    );
    assert!(b.deny_args(&[]).is_empty());
    let custom = CustomBackend::new(BackendConfig::default());
    assert!(custom.deny_args(&rules).is_empty());
}

#[test]
fn claude_multiple_blocks_on_one_line() {
    let mut p = ClaudeStreamParser::default();
    let ev = feed(
        &mut p,
        &[
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"a"},{"type":"tool_use","name":"Bash","input":{"command":"ls -l"}},{"type":"text","text":"b"}]},"parent_tool_use_id":null}"#,
        ],
    );
    assert_eq!(
        ev,
        vec![
            AgentEvent::Other,
            AgentEvent::Text { text: "a".into() },
            AgentEvent::ToolUse {
                name: "Bash".into(),
                input: r#"{"command":"ls -l"}"#.into()
            },
            AgentEvent::Text { text: "b".into() },
        ]
    );
    let out = p.finish(exit(0), "");
    assert_eq!(out.final_text, "a\nb");
    assert_eq!(out.error, Some(ErrorClass::Crash));
}

#[test]
fn claude_subagent_text_is_not_the_answer() {
    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"main"}]},"parent_tool_use_id":null}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"sub"}]},"parent_tool_use_id":"toolu_1"}"#,
        ],
    );
    assert_eq!(p.finish(exit(0), "").final_text, "main");
}

#[test]
fn claude_new_message_replaces_fallback_text() {
    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"one"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"two"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"three"}]}}"#,
        ],
    );
    assert_eq!(p.finish(exit(0), "").final_text, "three");
}

#[test]
fn claude_result_without_status_uses_text_then_assistant_error() {
    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[r#"{"type":"result","subtype":"success","is_error":true,"result":"Prompt is too long"}"#],
    );
    let out = p.finish(exit(1), "");
    assert_eq!(out.error, Some(ErrorClass::ContextOverflow));
    assert_eq!(out.error_message.as_deref(), Some("Prompt is too long"));

    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[
            r#"{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"API Error: billing"}]},"error":"billing_error"}"#,
            r#"{"type":"result","subtype":"success","is_error":true,"result":"Something odd"}"#,
        ],
    );
    assert_eq!(p.finish(exit(1), "").error, Some(ErrorClass::Quota));

    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[r#"{"type":"result","subtype":"error_during_execution","is_error":true}"#],
    );
    let out = p.finish(exit(1), "");
    assert_eq!(out.error, Some(ErrorClass::Unknown));
    assert_eq!(
        out.error_message.as_deref(),
        Some("agent reported an error (subtype error_during_execution)")
    );
}

#[test]
fn claude_status_mapping_through_result() {
    let cases: &[(u16, &str, ErrorClass)] = &[
        (429, "API Error: Request rejected (429) · rate limit", ErrorClass::RateLimit),
        (429, "You've hit your limit · resets 4pm (Europe/Berlin)", ErrorClass::UsageLimit),
        (429, "You exceeded your current quota", ErrorClass::Quota),
        (400, "You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC.", ErrorClass::UsageLimit),
        (400, "prompt is too long: 250000 tokens > 200000 maximum", ErrorClass::ContextOverflow),
        (403, "Forbidden", ErrorClass::Auth),
        (502, "Bad gateway", ErrorClass::Server),
    ];
    for (status, text, want) in cases {
        let mut p = ClaudeStreamParser::default();
        let line = serde_json::json!({
            "type": "result", "subtype": "success", "is_error": true,
            "api_error_status": status, "result": text,
        })
        .to_string();
        feed(&mut p, &[&line]);
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(*want), "{status} {text}");
        assert!(out
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains(&status.to_string())));
    }
}

#[test]
fn claude_success_result_trusted_despite_exit_code() {
    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[
            r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.5}"#,
        ],
    );
    let out = p.finish(
        ExitInfo {
            code: None,
            signal: Some(15),
        },
        "",
    );
    assert_eq!(out.error, None);
    assert_eq!(out.final_text, "done");
    assert_eq!(out.usage, None);
    assert_eq!(out.cost_usd, Some(0.5));
    assert_eq!(out.cost_source, CostSource::Reported);
}

#[test]
fn claude_plain_text_error_on_stdout() {
    let mut p = ClaudeStreamParser::default();
    let ev = feed(&mut p, &["Error: Invalid API key · Please run /login"]);
    assert_eq!(ev, vec![AgentEvent::Malformed]);
    let out = p.finish(exit(1), "");
    assert_eq!(out.error, Some(ErrorClass::Auth));
    assert_eq!(out.malformed_lines, 1);
    assert_eq!(
        out.error_message.as_deref(),
        Some("exited with code 1: Error: Invalid API key · Please run /login")
    );
}

#[test]
fn claude_truncated_result_line() {
    let mut p = ClaudeStreamParser::default();
    let mut ev = Vec::new();
    p.line(
        br#"{"type":"result","subtype":"success","is_error":false,"result":"aaaa"#,
        true,
        &mut ev,
    );
    assert_eq!(ev, vec![AgentEvent::Malformed]);
    let out = p.finish(exit(0), "");
    assert_eq!(out.error, Some(ErrorClass::Crash));
    assert!(out
        .error_message
        .as_deref()
        .is_some_and(|m| m.contains("line length cap")));
}

#[test]
fn claude_shapes_that_are_unknown_or_other() {
    let mut p = ClaudeStreamParser::default();
    let ev = feed(
        &mut p,
        &[
            "42",
            r#""a string""#,
            r#"{"no_type":1}"#,
            r#"{"type":"brand_new"}"#,
            r#"{"type":"assistant"}"#,
            r#"{"type":"assistant","message":{"content":"not an array"}}"#,
            r#"{"type":"user","message":{"content":"plain prompt"}}"#,
            r#"{"type":"system","subtype":"compact_boundary"}"#,
            r#"{"type":"system","subtype":"init"}"#,
            r#"{"type":"system","subtype":"api_retry","error_status":99999,"error":"unknown"}"#,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning"}}"#,
            "   ",
        ],
    );
    assert_eq!(
        ev,
        vec![
            AgentEvent::Unknown,
            AgentEvent::Unknown,
            AgentEvent::Unknown,
            AgentEvent::Unknown,
            AgentEvent::Unknown,
            AgentEvent::Unknown,
            AgentEvent::Other,
            AgentEvent::Other,
            AgentEvent::Init { model: None },
            AgentEvent::ApiRetry {
                status: None,
                error: Some("unknown".into())
            },
            AgentEvent::Other,
        ]
    );
    let out = p.finish(exit(0), "");
    assert_eq!(
        (out.lines, out.unknown_lines, out.malformed_lines),
        (12, 6, 0)
    );
}

#[test]
fn usage_prefers_model_usage_over_main_thread_usage() {
    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[
            r#"{"type":"result","subtype":"success","is_error":false,"result":"ok",
            "usage":{"input_tokens":10,"output_tokens":2,"cache_read_input_tokens":3,"cache_creation_input_tokens":4},
            "modelUsage":{"a":{"inputTokens":10,"outputTokens":2,"cacheReadInputTokens":3,"cacheCreationInputTokens":4,"costUSD":0.2},
                          "b":{"inputTokens":5,"outputTokens":1,"costUSD":0.01}}}"#,
        ],
    );
    let out = p.finish(exit(0), "");
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 15,
            output: 3,
            cache_read: 3,
            cache_write: 4
        })
    );
    assert_eq!(out.model.as_deref(), Some("a"));

    let mut p = ClaudeStreamParser::default();
    feed(
        &mut p,
        &[
            r#"{"type":"result","is_error":false,"usage":{"input_tokens":7},"modelUsage":{"x":{"costUSD":0}}}"#,
        ],
    );
    let out = p.finish(exit(0), "");
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 7,
            ..Tokens::default()
        })
    );
}

#[test]
fn main_model_picks_the_costliest() {
    let v = serde_json::json!({
        "claude-haiku-4-5": {"costUSD": 0.001},
        "claude-sonnet-4-5": {"costUSD": 0.2},
        "other": {}
    });
    assert_eq!(main_model(Some(&v)).as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(main_model(Some(&serde_json::json!({}))), None);
    assert_eq!(main_model(None), None);
}
