//! The exact command lines of the Codex, Gemini, opencode, Copilot, Kiro, Amp and Cursor
//! backends, per permission mode, and what each backend declares about itself.

use std::path::Path;

use ralph_agents::{
    backend_names, builtin_backend, AgentEvent, Backend, BackendConfig, CommandContext,
    CommandSpec, CustomBackend, ErrorClass, OutputFormat, PermissionMode, Tokens,
    COPILOT_USAGE_FILE,
};

use crate::{capture_in, run};

const PROMPT: &str = "---\ntitle: task\n---\nFix the bug.\nSay LOOP_COMPLETE when done.\n";
const PROMPT_PATH: &str = "/work/p/.ralph/runs/r1/0003/prompt.md";
const SCRATCH: &str = "/work/p/.ralph/runs/r1/0003";

fn ctx<'a>(model: Option<&'a str>, extra: &'a [String]) -> CommandContext<'a> {
    CommandContext {
        prompt: PROMPT,
        prompt_path: Path::new(PROMPT_PATH),
        model,
        extra_args: extra,
        is_root: true,
        scratch_dir: Path::new(SCRATCH),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn backend(name: &str, permission: PermissionMode) -> Box<dyn Backend> {
    builtin_backend(
        name,
        &BackendConfig {
            permission,
            ..BackendConfig::default()
        },
    )
    .unwrap()
}

fn spec(name: &str, permission: PermissionMode, model: Option<&str>) -> CommandSpec {
    let extra = s(&["--extra", "x"]);
    backend(name, permission).command(&ctx(model, &extra))
}

fn on_stdin(program: &str, args: &[&str]) -> CommandSpec {
    CommandSpec {
        program: program.into(),
        args: s(args),
        env: vec![],
        stdin: Some(PROMPT.as_bytes().to_vec()),
    }
}

#[test]
fn names_in_priority_order() {
    assert_eq!(
        backend_names(),
        &["claude", "codex", "gemini", "opencode", "copilot", "kiro", "amp", "cursor", "custom"]
    );
    let cfg = BackendConfig::default();
    for name in backend_names() {
        assert_eq!(builtin_backend(name, &cfg).unwrap().name(), *name);
    }
    // The old Amazon Q name.
    assert_eq!(builtin_backend("q", &cfg).unwrap().name(), "kiro");
    assert!(builtin_backend("auto", &cfg).is_none());
}

#[test]
fn programs_auth_and_capabilities() {
    use PermissionMode::*;
    let allow = AllowList(s(&["write"]));
    // (name, program, auth env, supports AllowList, supports Sandbox, reports usage)
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], bool, bool, bool);
    let cases: &[Case] = &[
        (
            "codex",
            "codex",
            &["OPENAI_API_KEY", "CODEX_API_KEY"],
            false,
            true,
            true,
        ),
        (
            "gemini",
            "gemini",
            &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            true,
            true,
            true,
        ),
        (
            "opencode",
            "opencode",
            &[
                "ANTHROPIC_API_KEY",
                "OPENAI_API_KEY",
                "GEMINI_API_KEY",
                "OPENROUTER_API_KEY",
            ],
            false,
            false,
            true,
        ),
        (
            "copilot",
            "copilot",
            &["COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN"],
            true,
            false,
            true,
        ),
        ("kiro", "kiro-cli", &["KIRO_API_KEY"], true, false, false),
        ("amp", "amp", &["AMP_API_KEY"], false, false, false),
        (
            "cursor",
            "cursor-agent",
            &["CURSOR_API_KEY"],
            false,
            false,
            false,
        ),
    ];
    for (name, program, auth, allow_list, sandbox, usage) in cases {
        let b = backend(name, Full);
        assert_eq!(b.program(), *program, "{name}");
        assert_eq!(b.version_args(), &["--version"], "{name}");
        assert_eq!(b.auth_env(), *auth, "{name}");
        assert!(b.supports_permission(&Full), "{name}");
        assert_eq!(b.supports_permission(&allow), *allow_list, "{name}");
        assert_eq!(b.supports_permission(&Sandbox), *sandbox, "{name}");
        assert_eq!(b.reports_usage(), *usage, "{name}");
    }
}

#[test]
fn codex_commands() {
    assert_eq!(
        spec("codex", PermissionMode::Full, Some("gpt-5.5")),
        on_stdin(
            "codex",
            &[
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                "-m",
                "gpt-5.5",
                "--extra",
                "x"
            ]
        )
    );
    assert_eq!(
        spec("codex", PermissionMode::Sandbox, None),
        on_stdin(
            "codex",
            &[
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-s",
                "workspace-write",
                "--extra",
                "x"
            ]
        )
    );
}

#[test]
fn gemini_commands() {
    let trust = vec![("GEMINI_CLI_TRUST_WORKSPACE".to_string(), "true".to_string())];
    let with_env = |args: &[&str]| CommandSpec {
        env: trust.clone(),
        ..on_stdin("gemini", args)
    };
    assert_eq!(
        spec("gemini", PermissionMode::Full, Some("gemini-2.5-pro")),
        with_env(&[
            "--output-format",
            "stream-json",
            "--yolo",
            "-m",
            "gemini-2.5-pro",
            "--extra",
            "x"
        ])
    );
    assert_eq!(
        spec(
            "gemini",
            PermissionMode::AllowList(s(&["write_file", "run_shell_command(git status)"])),
            None
        ),
        with_env(&[
            "--output-format",
            "stream-json",
            "--allowed-tools=write_file",
            "--allowed-tools=run_shell_command(git status)",
            "--extra",
            "x"
        ])
    );
    assert_eq!(
        spec("gemini", PermissionMode::Sandbox, None),
        with_env(&[
            "--output-format",
            "stream-json",
            "--approval-mode",
            "auto_edit",
            "--extra",
            "x"
        ])
    );
    assert_eq!(
        spec("gemini", PermissionMode::Full, None).display(),
        "GEMINI_CLI_TRUST_WORKSPACE=true gemini --output-format stream-json --yolo --extra x"
    );
}

#[test]
fn opencode_commands() {
    assert_eq!(
        spec(
            "opencode",
            PermissionMode::Full,
            Some("anthropic/claude-sonnet-4-5")
        ),
        on_stdin(
            "opencode",
            &[
                "run",
                "--format",
                "json",
                "--auto",
                "-m",
                "anthropic/claude-sonnet-4-5",
                "--extra",
                "x"
            ]
        )
    );
}

#[test]
fn copilot_commands() {
    let usage = format!("{SCRATCH}/{COPILOT_USAGE_FILE}");
    assert_eq!(
        spec("copilot", PermissionMode::Full, Some("gpt-4.1")),
        on_stdin(
            "copilot",
            &[
                "--output-format",
                "json",
                "--allow-all-tools",
                "--allow-all-paths",
                "--usage-output-file",
                &usage,
                "--model",
                "gpt-4.1",
                "--extra",
                "x"
            ]
        )
    );
    assert_eq!(
        spec(
            "copilot",
            PermissionMode::AllowList(s(&["shell(git:*)", "write"])),
            None
        ),
        on_stdin(
            "copilot",
            &[
                "--output-format",
                "json",
                "--allow-tool",
                "shell(git:*)",
                "--allow-tool",
                "write",
                "--usage-output-file",
                &usage,
                "--extra",
                "x"
            ]
        )
    );
}

#[test]
fn kiro_commands() {
    assert_eq!(
        spec("kiro", PermissionMode::Full, Some("claude-sonnet-4.5")),
        on_stdin(
            "kiro-cli",
            &[
                "chat",
                "--no-interactive",
                "--trust-all-tools",
                "--model",
                "claude-sonnet-4.5",
                "--extra",
                "x"
            ]
        )
    );
    assert_eq!(
        spec(
            "kiro",
            PermissionMode::AllowList(s(&["fs_read", "fs_write"])),
            None
        ),
        on_stdin(
            "kiro-cli",
            &[
                "chat",
                "--no-interactive",
                "--trust-tools=fs_read,fs_write",
                "--extra",
                "x"
            ]
        )
    );
    assert_eq!(
        spec("kiro", PermissionMode::AllowList(vec![]), None),
        on_stdin("kiro-cli", &["chat", "--no-interactive", "--extra", "x"])
    );
}

#[test]
fn amp_commands() {
    // Amp has no model flag: the model is not passed.
    assert_eq!(
        spec("amp", PermissionMode::Full, Some("claude-sonnet-4-5")),
        on_stdin(
            "amp",
            &[
                "-x",
                "--stream-json",
                "--dangerously-allow-all",
                "--no-ide",
                "--no-notifications",
                "--extra",
                "x"
            ]
        )
    );
}

#[test]
fn cursor_commands() {
    let spec = spec("cursor", PermissionMode::Full, Some("gpt-5"));
    assert_eq!(
        spec,
        CommandSpec {
            program: "cursor-agent".into(),
            args: s(&[
                "-p",
                "--output-format",
                "stream-json",
                "--force",
                "--model",
                "gpt-5",
                "--extra",
                "x",
                "--",
                PROMPT
            ]),
            env: vec![],
            stdin: None,
        }
    );
}

#[test]
fn prompts_never_travel_as_temp_files() {
    let extra: Vec<String> = vec![];
    for name in [
        "codex", "gemini", "opencode", "copilot", "kiro", "amp", "cursor",
    ] {
        let spec = backend(name, PermissionMode::Full).command(&ctx(None, &extra));
        assert!(!spec.args.iter().any(|a| a.contains(PROMPT_PATH)), "{name}");
        let in_argv = spec.args.iter().any(|a| a == PROMPT);
        let on_stdin = spec.stdin.as_deref() == Some(PROMPT.as_bytes());
        assert!(in_argv != on_stdin, "{name}: exactly one way");
        assert_eq!(on_stdin, name != "cursor", "{name}");
    }
}

#[test]
fn empty_model_is_not_passed() {
    let extra: Vec<String> = vec![];
    for name in ["codex", "gemini", "opencode", "copilot", "kiro", "cursor"] {
        let spec = backend(name, PermissionMode::Full).command(&ctx(Some(""), &extra));
        assert!(
            !spec.args.iter().any(|a| a == "-m" || a == "--model"),
            "{name}"
        );
    }
}

#[test]
fn command_override_replaces_the_program_and_prefixes_arguments() {
    let extra: Vec<String> = vec![];
    for name in [
        "codex", "gemini", "opencode", "copilot", "kiro", "amp", "cursor",
    ] {
        let b = builtin_backend(
            name,
            &BackendConfig {
                command: s(&["/opt/bin/agent", "--profile", "ci"]),
                ..BackendConfig::default()
            },
        )
        .unwrap();
        assert_eq!(b.program(), "/opt/bin/agent", "{name}");
        let spec = b.command(&ctx(None, &extra));
        assert_eq!(spec.program, "/opt/bin/agent", "{name}");
        assert_eq!(&spec.args[..2], &s(&["--profile", "ci"])[..], "{name}");
    }
}

#[test]
fn output_formats_round_trip_and_custom_reuses_every_parser() {
    assert_eq!(
        OutputFormat::NAMES,
        &[
            "text",
            "claude-stream-json",
            "codex-json",
            "gemini-stream-json",
            "opencode-json",
            "copilot-json",
            "cursor-stream-json"
        ]
    );
    for name in OutputFormat::NAMES {
        let f = OutputFormat::parse(name).unwrap();
        assert_eq!(f.as_str(), *name);
        assert_eq!(f.to_string(), *name);
    }
    // Each captured success through `custom` with the matching `agent.output`.
    let cases = [
        ("codex-json", "codex", "codex-json.jsonl"),
        ("gemini-stream-json", "gemini", "gemini-stream.jsonl"),
        ("opencode-json", "opencode", "opencode-json.jsonl"),
        ("copilot-json", "copilot", "copilot-json.jsonl"),
    ];
    for (format, dir, file) in cases {
        let b = CustomBackend::new(BackendConfig {
            command: s(&["./agent"]),
            output: OutputFormat::parse(format).unwrap(),
            ..BackendConfig::default()
        });
        let (stdout, exit, stderr) = capture_in(dir, file);
        let (events, out) = run(b.parser().as_mut(), &stdout, exit, &stderr);
        assert_eq!(
            out.final_text, "I created hello.txt and verified it. LOOP_COMPLETE",
            "{format}"
        );
        assert_eq!(out.error, None, "{format}");
        assert_eq!(out.malformed_lines, 0, "{format}");
        assert!(!events.contains(&AgentEvent::Unknown), "{format}");
    }
    let b = CustomBackend::new(BackendConfig {
        command: s(&["./agent"]),
        output: OutputFormat::CursorStreamJson,
        ..BackendConfig::default()
    });
    let (_, out) = run(
        b.parser().as_mut(),
        r#"{"type":"result","subtype":"success","is_error":false,"result":"ok"}"#,
        crate::exit(0),
        "",
    );
    assert_eq!(out.final_text, "ok");
}

#[test]
fn copilot_parser_for_reads_the_usage_file_from_the_scratch_dir() {
    let dir = tempfile::tempdir().unwrap();
    let extra: Vec<String> = vec![];
    let ctx = CommandContext {
        scratch_dir: dir.path(),
        ..ctx(None, &extra)
    };
    let b = backend("copilot", PermissionMode::Full);
    // The engine asks for the parser before starting the agent, which then writes the file.
    let mut parser = b.parser_for(&ctx);
    std::fs::write(
        dir.path().join(COPILOT_USAGE_FILE),
        crate::read_fixture("copilot", "copilot-usage.json"),
    )
    .unwrap();
    let spec = b.command(&ctx);
    let at = spec
        .args
        .iter()
        .position(|a| a == "--usage-output-file")
        .unwrap();
    assert_eq!(
        Path::new(&spec.args[at + 1]),
        dir.path().join(COPILOT_USAGE_FILE)
    );
    let (stdout, exit, stderr) = capture_in("copilot", "copilot-json.jsonl");
    let (_, out) = run(parser.as_mut(), &stdout, exit, &stderr);
    assert_eq!(
        out.usage,
        Some(Tokens {
            input: 3600,
            output: 240,
            cache_read: 900,
            cache_write: 0
        })
    );
    // The plain parser has no file to read.
    let (_, out) = run(b.parser().as_mut(), &stdout, exit, &stderr);
    assert_eq!(out.usage, None);
    // A file left by an earlier call in the same directory is not this call's usage.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join(COPILOT_USAGE_FILE))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (_, out) = run(b.parser_for(&ctx).as_mut(), &stdout, exit, &stderr);
    assert_eq!(out.usage, None);
}

#[test]
fn parser_for_names_the_model_the_output_does_not() {
    let extra: Vec<String> = vec![];
    let (stdout, exit, stderr) = capture_in("codex", "codex-json.jsonl");
    let b = backend("codex", PermissionMode::Full);
    let (_, out) = run(
        b.parser_for(&ctx(Some("gpt-5.5"), &extra)).as_mut(),
        &stdout,
        exit,
        &stderr,
    );
    assert_eq!(out.model.as_deref(), Some("gpt-5.5"));
    let (stdout, exit, stderr) = capture_in("opencode", "opencode-json.jsonl");
    let b = backend("opencode", PermissionMode::Full);
    let (_, out) = run(
        b.parser_for(&ctx(Some("mock/mock-model"), &extra)).as_mut(),
        &stdout,
        exit,
        &stderr,
    );
    assert_eq!(out.model.as_deref(), Some("mock/mock-model"));
    // Gemini names its model itself.
    let (stdout, exit, stderr) = capture_in("gemini", "gemini-stream.jsonl");
    let b = backend("gemini", PermissionMode::Full);
    let (_, out) = run(
        b.parser_for(&ctx(Some("something-else"), &extra)).as_mut(),
        &stdout,
        exit,
        &stderr,
    );
    assert_eq!(out.model.as_deref(), Some("gemini-2.5-pro"));
    assert_eq!(out.error, None::<ErrorClass>);
}
