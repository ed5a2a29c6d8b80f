//! Kiro, Amp and Cursor cannot run offline (their inference is server-side), so fake
//! executables on PATH replay their documented output (agent-clis.md §7–8) while ralph drives
//! them exactly as it would the real CLIs.

use crate::harness::*;

/// Install `name` on a PATH directory of its own: it records its argv and stdin, then prints
/// `iteration1` on the first call and `iteration2` after, exiting with the given codes.
fn replay(p: &Project, name: &str, first: (&str, &str, i32), second: (&str, &str, i32)) -> String {
    let bin = p.aux_path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mut cases = String::new();
    for (i, (out, err, code)) in [first, second].iter().enumerate() {
        let o = p.aux_path(&format!("{name}.{}.out", i + 1));
        let e = p.aux_path(&format!("{name}.{}.err", i + 1));
        std::fs::write(&o, out).unwrap();
        std::fs::write(&e, err).unwrap();
        cases.push_str(&format!(
            "  {}) cat {}; cat {} >&2; exit {code} ;;\n",
            if i == 0 { "1" } else { "*" },
            o.display(),
            e.display()
        ));
    }
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{name} 9.9.9'; exit 0; fi\n\
         printf '%s\\n' \"$@\" > {args}.$RALPH_ITERATION\ncat > {stdin}.$RALPH_ITERATION\n\
         echo edit >> work-$RALPH_ITERATION.txt\n\
         case \"$RALPH_ITERATION\" in\n{cases}esac\n",
        args = p.aux_path(&format!("{name}.args")).display(),
        stdin = p.aux_path(&format!("{name}.stdin")).display(),
    );
    let path = bin.join(name);
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

fn run_with(p: &Project, path: &str, backend: &str) -> Out {
    p.write("PROMPT.md", "Write hello.txt.\n");
    p.write(
        "ralph.toml",
        &format!("[retry]\nbase_delay = \"0s\"\n{}", p.sandbox_section()),
    );
    Out::from(
        p.ralph()
            .args(["run", "--json", "--backend", backend])
            .env("PATH", path)
            .output()
            .unwrap(),
    )
}

fn read(p: &Project, file: &str) -> String {
    std::fs::read_to_string(p.aux_path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Two iterations, usage unknown and said once, the second completes.
fn assert_completed_without_usage(out: &Out, backend: &str) {
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    let finished: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "iteration.finished")
        .collect();
    assert_eq!(finished.len(), 2, "{}", out.stdout);
    assert_eq!(finished[1]["outcome"], "completed");
    for f in &finished {
        assert_eq!(f["backend"], backend);
        assert!(f["cost_usd"].is_null() && f["tokens"].is_null(), "{f}");
        assert_eq!(f["cost_source"], "unknown");
    }
    let warned = events
        .iter()
        .filter(|e| {
            e["event"] == "warning"
                && e["message"]
                    .as_str()
                    .unwrap()
                    .contains("does not report token usage")
        })
        .count();
    assert_eq!(warned, 1, "said once: {}", out.stdout);
    assert!(
        out.summary().ends_with("cost unknown · tokens unknown"),
        "{}",
        out.summary()
    );
}

const AMP_WORKING: &str = r#"{"type":"system","subtype":"init","session_id":"T-1a2b","tools":["Bash","create_file","edit_file","Read"],"cwd":"/p"}
{"type":"assistant","message":{"type":"message","role":"assistant","content":[{"type":"text","text":"Created hello.txt; tests next."}],"usage":{"input_tokens":1200,"output_tokens":40}},"session_id":"T-1a2b"}
{"type":"result","subtype":"success","duration_ms":900,"is_error":false,"num_turns":2,"result":"Created hello.txt; tests next.","session_id":"T-1a2b"}
"#;
const AMP_DONE: &str = r#"{"type":"system","subtype":"init","session_id":"T-3c4d","tools":["Bash"],"cwd":"/p"}
{"type":"result","subtype":"success","duration_ms":500,"is_error":false,"num_turns":1,"result":"All checks pass.\nLOOP_COMPLETE","session_id":"T-3c4d"}
"#;

#[test]
fn amp_runs_headless_with_its_prompt_on_stdin() {
    let p = Project::new();
    let path = replay(&p, "amp", (AMP_WORKING, "", 0), (AMP_DONE, "", 0));
    let out = run_with(&p, &path, "amp");
    assert_completed_without_usage(&out, "amp");
    let args = read(&p, "amp.args.1");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "-x",
            "--stream-json",
            "--dangerously-allow-all",
            "--no-ide",
            "--no-notifications"
        ]
    );
    assert!(read(&p, "amp.stdin.1").starts_with("Write hello.txt.\n"));
}

const CURSOR_WORKING: &str = r#"{"type":"system","subtype":"init","apiKeySource":"login","cwd":"/p","session_id":"c-1","model":"Auto","permissionMode":"default"}
{"type":"user","message":{"role":"user","content":[{"type":"text","text":"Write hello.txt."}]},"session_id":"c-1"}
{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"Writing the file."}]},"session_id":"c-1","model_call_id":"m-1"}
{"type":"tool_call","subtype":"started","call_id":"call\n1","tool_call":{"writeToolCall":{"args":{"path":"hello.txt","fileText":"hi"}}},"session_id":"c-1"}
{"type":"tool_call","subtype":"completed","call_id":"call\n1","tool_call":{"writeToolCall":{"args":{"path":"hello.txt"},"result":{"success":{"path":"hello.txt","linesCreated":1}}}},"session_id":"c-1"}
{"type":"result","subtype":"success","duration_ms":1200,"duration_api_ms":1000,"is_error":false,"result":"Wrote hello.txt; verifying next.","session_id":"c-1","request_id":"r-1"}
"#;
const CURSOR_DONE: &str = r#"{"type":"system","subtype":"init","apiKeySource":"login","cwd":"/p","session_id":"c-2","model":"Auto","permissionMode":"default"}
{"type":"result","subtype":"success","duration_ms":300,"duration_api_ms":250,"is_error":false,"result":"Verified.\n**LOOP_COMPLETE**","session_id":"c-2","request_id":"r-2"}
"#;

#[test]
fn cursor_runs_headless_with_its_prompt_as_the_last_argument() {
    let p = Project::new();
    let path = replay(
        &p,
        "cursor-agent",
        (CURSOR_WORKING, "", 0),
        (CURSOR_DONE, "", 0),
    );
    let out = run_with(&p, &path, "cursor");
    assert_completed_without_usage(&out, "cursor");
    let args = read(&p, "cursor-agent.args.1");
    let argv: Vec<&str> = args.lines().collect();
    assert_eq!(
        &argv[..5],
        ["-p", "--output-format", "stream-json", "--force", "--"]
    );
    assert!(
        args.contains("Write hello.txt.\n"),
        "the prompt is the last argument: {args}"
    );
    assert_eq!(read(&p, "cursor-agent.stdin.1"), "", "nothing on stdin");
}

#[test]
fn cursor_failures_are_classified_from_stderr_and_exit_code() {
    let p = Project::new();
    let path = replay(
        &p,
        "cursor-agent",
        ("", "Error: Authentication required. Please run 'cursor-agent login' first, or set CURSOR_API_KEY.\n", 1),
        ("", "", 0),
    );
    let out = run_with(&p, &path, "cursor");
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert_eq!(p.iterations()[0].2.as_deref(), Some("auth"));
    assert!(
        out.summary().contains("failed to authenticate"),
        "{}",
        out.summary()
    );
}

const KIRO_WORKING: &str = "\x1b[38;5;141m> \x1b[0mI'll create hello.txt.\n\x1b[1mCreating: hello.txt\x1b[0m\n \u{25cf} Completed in 0.2s\n";
const KIRO_DONE: &str =
    "\x1b[38;5;141m> \x1b[0mThe file exists and the check passes.\n\x1b[1mLOOP_COMPLETE\x1b[0m\n";

#[test]
fn kiro_runs_headless_its_ansi_text_is_read_and_its_failures_classified() {
    let p = Project::new();
    let path = replay(&p, "kiro-cli", (KIRO_WORKING, "", 0), (KIRO_DONE, "", 0));
    let out = run_with(&p, &path, "q");
    assert_completed_without_usage(&out, "kiro");
    let args = read(&p, "kiro-cli.args.1");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["chat", "--no-interactive", "--trust-all-tools"]
    );
    assert!(read(&p, "kiro-cli.stdin.1").starts_with("Write hello.txt.\n"));

    let q = Project::new();
    let path = replay(
        &q,
        "kiro-cli",
        (
            "",
            "error: ThrottlingException: Rate exceeded (service: Q Developer)\n",
            1,
        ),
        (KIRO_DONE, "", 0),
    );
    let out = run_with(&q, &path, "kiro");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        q.iterations()[0].2.as_deref(),
        Some("rate_limit"),
        "{:?}",
        q.iterations()
    );
}
