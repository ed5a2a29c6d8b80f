//! Garbage, floods and huge lines through every parser added for the other CLIs.

use ralph_agents::{
    AgentEvent, AmpStreamParser, ErrorClass, ExitInfo, KiroTextParser, OutputFormat, StreamParser,
    FINAL_TEXT_MAX,
};

use crate::exit;

const JSON_FORMATS: &[OutputFormat] = &[
    OutputFormat::CodexJson,
    OutputFormat::GeminiStreamJson,
    OutputFormat::OpencodeJson,
    OutputFormat::CopilotJson,
    OutputFormat::CursorStreamJson,
];

fn all_parsers() -> Vec<(String, Box<dyn StreamParser>)> {
    let mut v: Vec<(String, Box<dyn StreamParser>)> = JSON_FORMATS
        .iter()
        .map(|f| (f.as_str().to_string(), f.parser()))
        .collect();
    v.push(("amp".into(), Box::new(AmpStreamParser::default())));
    v.push(("kiro".into(), Box::new(KiroTextParser::default())));
    v
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let garbage: &[&[u8]] = &[
        b"not json",
        b"{",
        b"}",
        b"[1,2",
        b"\xff\xfe\x00binary",
        b"\x1b[31mred\x1b[0m",
        b"{\"type\":\"result\",}",
        b"{\"type\":\"item.completed\",\"item\":{\"type\":\"agent_message\",\"text\":\"\xff\"}}",
    ];
    for (name, mut p) in all_parsers() {
        let mut events = Vec::new();
        for g in garbage {
            p.line(g, false, &mut events);
            p.line(g, true, &mut events);
        }
        for exit_info in [
            exit(0),
            exit(1),
            ExitInfo {
                code: None,
                signal: Some(9),
            },
        ] {
            let out = p.finish(exit_info, "\u{1b}[31mboom\u{1b}[0m\n");
            assert_eq!(out.lines, 2 * garbage.len() as u64, "{name}");
            // A text agent's output is whatever it printed; only its exit status can fail it.
            if name != "kiro" || !exit_info.success() {
                assert!(out.error.is_some(), "{name}: garbage is never a success");
            }
            if name != "kiro" {
                assert_eq!(out.malformed_lines, 2 * garbage.len() as u64, "{name}");
                assert!(events.iter().all(|e| *e == AgentEvent::Malformed), "{name}");
            }
        }
    }
}

#[test]
fn valid_json_of_unexpected_shapes_is_unknown() {
    let shapes = [
        "42",
        "\"s\"",
        "null",
        "[]",
        "{}",
        r#"{"type":7}"#,
        r#"{"type":"zzz"}"#,
    ];
    for f in JSON_FORMATS {
        let mut p = f.parser();
        let mut events = Vec::new();
        for s in shapes {
            p.line(s.as_bytes(), false, &mut events);
        }
        let out = p.finish(exit(0), "");
        assert_eq!(out.unknown_lines, shapes.len() as u64, "{f}");
        assert_eq!(out.malformed_lines, 0, "{f}");
        assert_eq!(out.error, Some(ErrorClass::Crash), "{f}");
    }
}

/// One line of assistant text in each format.
fn text_line(format: OutputFormat, text: &str) -> String {
    let t = serde_json::to_string(text).unwrap();
    match format {
        OutputFormat::CodexJson => format!(
            r#"{{"type":"item.completed","item":{{"id":"i","type":"agent_message","text":{t}}}}}"#
        ),
        OutputFormat::GeminiStreamJson => {
            format!(r#"{{"type":"message","role":"assistant","content":{t},"delta":true}}"#)
        }
        OutputFormat::OpencodeJson => format!(r#"{{"type":"text","part":{{"text":{t}}}}}"#),
        OutputFormat::CopilotJson => {
            format!(r#"{{"type":"assistant.message","data":{{"content":{t}}}}}"#)
        }
        OutputFormat::CursorStreamJson => format!(
            r#"{{"type":"assistant","message":{{"role":"assistant","content":[{{"type":"text","text":{t}}}]}}}}"#
        ),
        _ => unreachable!(),
    }
}

#[test]
fn floods_of_text_stay_bounded() {
    let chunk = "é".repeat(512);
    for f in JSON_FORMATS {
        let mut p = f.parser();
        let line = text_line(*f, &chunk);
        let mut events = Vec::new();
        for _ in 0..5000 {
            p.line(line.as_bytes(), false, &mut events);
            events.clear();
        }
        p.line(text_line(*f, "END").as_bytes(), false, &mut events);
        let out = p.finish(exit(0), "");
        assert!(out.final_text.len() <= FINAL_TEXT_MAX, "{f}");
        assert!(out.final_text.ends_with("END"), "{f}");
        assert_eq!(out.malformed_lines, 0, "{f}");
    }
}

#[test]
fn ten_megabyte_lines() {
    let big = "x".repeat(10 * 1024 * 1024);
    for f in JSON_FORMATS {
        let mut p = f.parser();
        let mut events = Vec::new();
        let line = text_line(*f, &big);
        p.line(line.as_bytes(), false, &mut events);
        // Cut at the engine's line cap: malformed, never a panic.
        p.line(&line.as_bytes()[..1000], true, &mut events);
        let out = p.finish(exit(0), "");
        assert!(out.final_text.len() <= FINAL_TEXT_MAX, "{f}");
        assert_eq!(out.malformed_lines, 1, "{f}");
    }
    let mut kiro = KiroTextParser::default();
    let mut events = Vec::new();
    kiro.line(big.as_bytes(), false, &mut events);
    let out = kiro.finish(exit(0), "");
    assert_eq!(out.final_text.len(), FINAL_TEXT_MAX);
}

#[test]
fn huge_stderr_does_not_bloat_the_message() {
    let stderr = format!(
        "{}\nError: {}\n",
        "noise\n".repeat(10_000),
        "y".repeat(100_000)
    );
    for (name, mut p) in all_parsers() {
        let out = p.finish(exit(1), &stderr);
        let message = out.error_message.unwrap();
        assert!(message.len() <= 400, "{name}: {}", message.len());
    }
}
