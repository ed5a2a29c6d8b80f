//! The exact command lines the backends build.

use std::path::Path;

use ralph_agents::{
    Backend, BackendConfig, ClaudeBackend, CommandContext, CommandSpec, CustomBackend,
    OutputFormat, PermissionMode, PromptVia,
};

const PROMPT: &str = "Fix the bug.\nSay LOOP_COMPLETE when done.\n";
const PROMPT_PATH: &str = "/work/p/.ralph/runs/r1/0003/prompt.md";

fn ctx<'a>(model: Option<&'a str>, extra: &'a [String], is_root: bool) -> CommandContext<'a> {
    CommandContext {
        prompt: PROMPT,
        prompt_path: Path::new(PROMPT_PATH),
        model,
        extra_args: extra,
        is_root,
        scratch_dir: Path::new("/tmp/run/0001"),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn claude(permission: PermissionMode) -> ClaudeBackend {
    ClaudeBackend::new(BackendConfig {
        permission,
        ..BackendConfig::default()
    })
}

fn custom(command: &[&str], prompt_via: PromptVia) -> CustomBackend {
    CustomBackend::new(BackendConfig {
        command: s(command),
        prompt_via,
        ..BackendConfig::default()
    })
}

#[test]
fn claude_full_permissions() {
    let spec = claude(PermissionMode::Full).command(&ctx(None, &[], false));
    assert_eq!(
        spec,
        CommandSpec {
            program: "claude".into(),
            args: s(&[
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--dangerously-skip-permissions"
            ]),
            env: vec![],
            stdin: Some(PROMPT.as_bytes().to_vec()),
        }
    );
    assert_eq!(
        spec.display(),
        "claude -p --output-format stream-json --verbose --dangerously-skip-permissions"
    );
}

#[test]
fn claude_as_root_gets_is_sandbox() {
    let spec = claude(PermissionMode::Full).command(&ctx(None, &[], true));
    assert_eq!(spec.env, vec![("IS_SANDBOX".to_string(), "1".to_string())]);
    assert_eq!(
        spec.display(),
        "IS_SANDBOX=1 claude -p --output-format stream-json --verbose --dangerously-skip-permissions"
    );
}

#[test]
fn claude_allow_list() {
    let b = claude(PermissionMode::AllowList(s(&["Write", "Bash(cat *)"])));
    let spec = b.command(&ctx(None, &[], true));
    assert_eq!(
        spec.args,
        s(&[
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--allowedTools",
            "Write Bash(cat *)"
        ])
    );
    // Root without skip-permissions needs no sandbox flag.
    assert!(spec.env.is_empty());
    assert_eq!(spec.stdin.as_deref(), Some(PROMPT.as_bytes()));
    assert_eq!(
        spec.display(),
        "claude -p --output-format stream-json --verbose --allowedTools 'Write Bash(cat *)'"
    );
}

#[test]
fn claude_model_and_extra_args() {
    let extra = s(&["--max-turns", "5"]);
    let spec = claude(PermissionMode::Full).command(&ctx(Some("claude-sonnet-4-5"), &extra, false));
    assert_eq!(
        spec.args,
        s(&[
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
            "--model",
            "claude-sonnet-4-5",
            "--max-turns",
            "5",
        ])
    );
    assert!(
        !spec.args.iter().any(|a| a.contains("Fix the bug")),
        "prompt must not be in argv"
    );
}

#[test]
fn claude_command_override() {
    let b = ClaudeBackend::new(BackendConfig {
        command: s(&["/home/me/.local/bin/claude", "--settings", "x.json"]),
        ..BackendConfig::default()
    });
    let spec = b.command(&ctx(None, &[], false));
    assert_eq!(spec.program, "/home/me/.local/bin/claude");
    assert_eq!(&spec.args[..3], &s(&["--settings", "x.json", "-p"])[..]);
    assert_eq!(b.program(), "/home/me/.local/bin/claude");
}

#[test]
fn claude_metadata() {
    let b = claude(PermissionMode::Full);
    assert_eq!(b.name(), "claude");
    assert_eq!(b.program(), "claude");
    assert_eq!(b.version_args(), &["--version"]);
    assert_eq!(
        b.auth_env(),
        &["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"]
    );
}

#[test]
fn custom_stdin() {
    let extra = s(&["--fast"]);
    let spec =
        custom(&["./my-agent", "--flag"], PromptVia::Stdin).command(&ctx(Some("m"), &extra, true));
    assert_eq!(
        spec,
        CommandSpec {
            program: "./my-agent".into(),
            args: s(&["--flag", "--fast"]),
            env: vec![],
            stdin: Some(PROMPT.as_bytes().to_vec()),
        }
    );
}

#[test]
fn custom_arg() {
    let extra = s(&["--fast"]);
    let spec = custom(&["./my-agent", "--flag"], PromptVia::Arg).command(&ctx(None, &extra, false));
    assert_eq!(spec.program, "./my-agent");
    assert_eq!(spec.args, s(&["--flag", "--fast", PROMPT]));
    assert_eq!(spec.stdin, None);
    assert_eq!(
        spec.display(),
        "./my-agent --flag --fast 'Fix the bug.\nSay LOOP_COMPLETE when done.\n'"
    );
}

#[test]
fn custom_file_placeholder() {
    let extra = s(&["--also={prompt_file}"]);
    let spec = custom(
        &[
            "agent",
            "-f",
            "{prompt_file}",
            "--x={prompt_file},{prompt_file}",
        ],
        PromptVia::File,
    )
    .command(&ctx(None, &extra, false));
    assert_eq!(spec.program, "agent");
    assert_eq!(
        spec.args,
        vec![
            "-f".to_string(),
            PROMPT_PATH.to_string(),
            format!("--x={PROMPT_PATH},{PROMPT_PATH}"),
            format!("--also={PROMPT_PATH}"),
        ]
    );
    assert_eq!(spec.stdin, None);
}

#[test]
fn custom_file_without_placeholder_appends_path() {
    let spec = custom(&["agent", "run"], PromptVia::File).command(&ctx(None, &[], false));
    assert_eq!(spec.args, s(&["run", PROMPT_PATH]));
    assert_eq!(spec.stdin, None);
}

#[test]
fn custom_parser_follows_output_format() {
    let mut b = BackendConfig {
        command: s(&["agent"]),
        ..BackendConfig::default()
    };
    b.output = OutputFormat::ClaudeStreamJson;
    let mut p = CustomBackend::new(b).parser();
    let mut events = Vec::new();
    p.line(
        br#"{"type":"system","subtype":"init","model":"m"}"#,
        false,
        &mut events,
    );
    assert_eq!(
        events,
        vec![ralph_agents::AgentEvent::Init {
            model: Some("m".into())
        }]
    );
}
