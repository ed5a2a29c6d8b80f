//! Runs the real `fake-agent` binary against scripts built with the
//! `ralph_testkit::script` API.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ralph_testkit::proc::{self, KillOnDrop};
use ralph_testkit::recording::{Recording, RECORD_DIR_ENV};
use ralph_testkit::script::{ClaudeResult, SpawnGrandchild};
use ralph_testkit::{Script, Step};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_fake-agent");
const PID_TIMEOUT: Duration = Duration::from_secs(10);

/// A temp dir holding `script.json`, and a command running the agent there
/// with a clean, explicit environment.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(script: &Script) -> Self {
        let dir = tempfile::tempdir().unwrap();
        script.write_to(dir.path().join("script.json")).unwrap();
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("script.json")
            .current_dir(self.dir.path())
            .env_remove("RALPH_ITERATION")
            .env_remove("FAKE_AGENT_SCRIPT")
            .env_remove("FAKE_AGENT_PROMPT_FROM_LAST_ARG")
            .env_remove(RECORD_DIR_ENV)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self) -> Output {
        self.command().output().unwrap()
    }

    fn run_call(&self, n: u32) -> Output {
        self.command()
            .env("RALPH_ITERATION", n.to_string())
            .output()
            .unwrap()
    }

    fn run_with_stdin(&self, cmd: &mut Command, input: &[u8]) -> Output {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        stderr(out)
    );
}

/// Whether SIGTERM is in the process's ignored-signal mask (`SigIgn` in
/// /proc/PID/status): checks the disposition without racing signal delivery.
fn ignores_sigterm(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap()
        .trim();
    let mask = u64::from_str_radix(mask, 16).unwrap();
    mask & (1 << (libc::SIGTERM - 1)) != 0
}

fn set_nonblocking(fd: i32, nonblocking: bool) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0);
        let flags = if nonblocking {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags), 0);
    }
}

#[test]
fn fake_agent_path_finds_the_built_binary() {
    let found = ralph_testkit::fake_agent_path();
    assert_eq!(
        found.canonicalize().unwrap(),
        Path::new(BIN).canonicalize().unwrap()
    );
}

#[test]
fn per_call_steps_override_default_by_ralph_iteration() {
    let fx = Fixture::new(
        &Script::new()
            .default_steps(vec![Step::print("default")])
            .on_call(2, vec![Step::print("second")]),
    );
    assert_eq!(
        stdout(&fx.run()),
        "default\n",
        "unset RALPH_ITERATION is call 1"
    );
    assert_eq!(stdout(&fx.run_call(1)), "default\n");
    assert_eq!(stdout(&fx.run_call(2)), "second\n");
    assert_eq!(stdout(&fx.run_call(3)), "default\n");
}

#[test]
fn write_append_delete() {
    let fx = Fixture::new(&Script::new().default_steps(vec![
        Step::write("nested/dir/a.txt", "one\n"),
        Step::append("nested/dir/a.txt", "two\n"),
        Step::append("fresh.txt", "created"),
        Step::write("gone.txt", "x"),
        Step::delete("gone.txt"),
        Step::write("tree/sub/f.txt", "x"),
        Step::delete("tree"),
        Step::delete("never-existed"),
    ]));
    let out = fx.run();
    assert_success(&out);
    assert_eq!(
        std::fs::read_to_string(fx.path("nested/dir/a.txt")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(
        std::fs::read_to_string(fx.path("fresh.txt")).unwrap(),
        "created"
    );
    assert!(!fx.path("gone.txt").exists());
    assert!(!fx.path("tree").exists());

    // Overwrite truncates.
    let fx2 = Fixture::new(&Script::new().default_steps(vec![Step::write("a", "short")]));
    std::fs::write(fx2.path("a"), "a much longer previous content").unwrap();
    assert_success(&fx2.run());
    assert_eq!(std::fs::read_to_string(fx2.path("a")).unwrap(), "short");
}

#[test]
fn print_stderr_and_echo_prompt_from_stdin() {
    let fx = Fixture::new(&Script::new().default_steps(vec![
        Step::print("line"),
        Step::print_raw("raw"),
        Step::stderr("to stderr"),
        Step::echo_prompt(),
    ]));
    let out = fx.run_with_stdin(&mut fx.command(), b"the prompt\nsecond line");
    assert_success(&out);
    assert_eq!(stdout(&out), "line\nrawthe prompt\nsecond line");
    assert_eq!(stderr(&out), "to stderr\n");

    // /dev/null stdin: empty prompt.
    let out = fx.run();
    assert_eq!(stdout(&out), "line\nraw");
}

#[test]
fn prompt_from_prompt_md_argument_or_last_argument() {
    let fx = Fixture::new(&Script::new().default_steps(vec![Step::echo_prompt()]));
    std::fs::write(fx.path("prompt.md"), "from file").unwrap();

    let out = fx.run_with_stdin(fx.command().args(["-p", "prompt.md"]), b"from stdin");
    assert_eq!(stdout(&out), "from file");

    let out = fx.run_with_stdin(
        fx.command()
            .args(["-p", "from last arg"])
            .env("FAKE_AGENT_PROMPT_FROM_LAST_ARG", "1"),
        b"from stdin",
    );
    assert_eq!(stdout(&out), "from last arg");

    // A `prompt.md` argument that is not a file is just an argument.
    let out = fx.run_with_stdin(fx.command().arg("missing/prompt.md"), b"from stdin");
    assert_eq!(stdout(&out), "from stdin");
}

#[test]
fn script_path_from_env_leaves_all_arguments_to_the_agent() {
    let fx = Fixture::new(&Script::new().default_steps(vec![Step::echo_prompt()]));
    std::fs::write(fx.path("prompt.md"), "env mode").unwrap();
    let out = Command::new(BIN)
        .args(["--print", "prompt.md"])
        .current_dir(fx.dir.path())
        .env("FAKE_AGENT_SCRIPT", "script.json")
        .env_remove("RALPH_ITERATION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out), "env mode");
}

#[test]
fn claude_stream_json_lines() {
    let fx = Fixture::new(&Script::new().default_steps(vec![
        Step::claude_init("claude-sonnet-4-5"),
        Step::claude_api_retry(429, "rate_limit"),
        Step::claude_text("working on it"),
        Step::claude_tool_use("Bash", json!({"command": "ls"})),
        Step::claude_result(
            ClaudeResult::success("done LOOP_COMPLETE")
                .cost_usd(0.0123)
                .tokens(100, 20)
                .cache_tokens(7, 3)
                .permission_denial("Write", "toolu_1", json!({"file_path": "x"})),
        ),
    ]));
    let out = fx.run();
    assert_success(&out);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let session = lines[0]["session_id"].as_str().unwrap();
    assert_eq!(session.len(), 36);
    for line in &lines {
        assert_eq!(line["session_id"], session, "{line}");
        assert!(line["uuid"].is_string(), "{line}");
    }

    assert_eq!(lines[0]["type"], "system");
    assert_eq!(lines[0]["subtype"], "init");
    assert_eq!(lines[0]["model"], "claude-sonnet-4-5");

    assert_eq!(lines[1]["subtype"], "api_retry");
    assert_eq!(lines[1]["error_status"], 429);
    assert_eq!(lines[1]["error"], "rate_limit");

    assert_eq!(lines[2]["type"], "assistant");
    assert_eq!(
        lines[2]["message"]["content"],
        json!([{"type": "text", "text": "working on it"}])
    );
    let tool = &lines[3]["message"]["content"][0];
    assert_eq!(tool["type"], "tool_use");
    assert_eq!(tool["name"], "Bash");
    assert_eq!(tool["input"], json!({"command": "ls"}));
    assert!(tool["id"].as_str().unwrap().starts_with("toolu_"));

    let result = &lines[4];
    assert_eq!(result["type"], "result");
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["is_error"], false);
    assert_eq!(result["api_error_status"], Value::Null);
    assert_eq!(result["result"], "done LOOP_COMPLETE");
    assert_eq!(result["total_cost_usd"], 0.0123);
    assert_eq!(result["num_turns"], 2);
    assert!(result["duration_ms"].is_u64());
    assert_eq!(result["usage"]["input_tokens"], 100);
    assert_eq!(result["usage"]["output_tokens"], 20);
    assert_eq!(result["usage"]["cache_read_input_tokens"], 7);
    assert_eq!(result["usage"]["cache_creation_input_tokens"], 3);
    let model_usage = &result["modelUsage"]["claude-sonnet-4-5"];
    assert_eq!(model_usage["inputTokens"], 100);
    assert_eq!(model_usage["costUSD"], 0.0123);
    assert_eq!(result["permission_denials"][0]["tool_name"], "Write");
    // Field order follows Claude Code's, which starts with the type.
    assert!(stdout(&out)
        .lines()
        .last()
        .unwrap()
        .starts_with(r#"{"type":"result","subtype":"success","is_error":false"#));
}

#[test]
fn claude_result_defaults_and_errors() {
    let fx = Fixture::new(
        &Script::new()
            .default_steps(vec![Step::ClaudeResult(ClaudeResult::default())])
            .on_call(
                2,
                vec![Step::claude_result(
                    ClaudeResult::error("API Error: 429").api_error_status(429),
                )],
            ),
    );
    let line: Value = serde_json::from_slice(&fx.run().stdout).unwrap();
    assert_eq!(line["subtype"], "success");
    assert_eq!(line["is_error"], false);
    assert_eq!(line["result"], "");
    assert_eq!(line["total_cost_usd"], 0.0);
    assert_eq!(line["usage"]["input_tokens"], 0);
    assert_eq!(line["modelUsage"], json!({}));

    let line: Value = serde_json::from_slice(&fx.run_call(2).stdout).unwrap();
    assert_eq!(line["is_error"], true);
    assert_eq!(line["api_error_status"], 429);
    assert_eq!(line["result"], "API Error: 429");
}

#[test]
fn exit_code_and_kill_self() {
    let fx = Fixture::new(
        &Script::new()
            .default_steps(vec![
                Step::print("before"),
                Step::exit(3),
                Step::print("after"),
            ])
            .on_call(
                2,
                vec![Step::print("flushed"), Step::kill_self(libc::SIGKILL)],
            ),
    );
    let out = fx.run();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "before\n");

    let out = fx.run_call(2);
    assert_eq!(out.status.signal(), Some(libc::SIGKILL));
    assert_eq!(stdout(&out), "flushed\n");
}

#[test]
fn print_bytes_writes_the_exact_byte_count_in_fixed_lines() {
    const TOTAL: u64 = 10_000_037; // not a multiple of the line length
    const LINE: usize = 100;
    let fx = Fixture::new(&Script::new().default_steps(vec![
        Step::print("start"),
        Step::print_bytes(TOTAL, LINE),
        Step::print_raw("|end"),
    ]));
    let out = fx.run();
    assert_success(&out);
    let body = &out.stdout["start\n".len()..out.stdout.len() - "|end".len()];
    assert_eq!(body.len() as u64, TOTAL);
    let mut lines = body.split_inclusive(|&b| b == b'\n');
    let last = lines.next_back().unwrap();
    assert_eq!(last.len() as u64, TOTAL % LINE as u64);
    assert!(lines.all(|l| l.len() == LINE && l.ends_with(b"\n")));
}

#[test]
fn print_bytes_into_a_closed_pipe_ends_quietly() {
    let fx = Fixture::new(&Script::new().default_steps(vec![
        Step::print_bytes(100_000_000_000, 100),
        Step::print("unreachable"),
    ]));
    let mut child = fx
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 4096];
    stdout.read_exact(&mut buf).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.signal() == Some(libc::SIGPIPE) || matches!(out.status.code(), Some(0 | 141)),
        "{:?}",
        out.status
    );
    assert_eq!(stderr(&out), "", "no panic message");
}

#[test]
fn grandchild_holding_stdout_keeps_the_pipe_open_after_the_agent_exits() {
    let fx = Fixture::new(&Script::new().default_steps(vec![
        Step::print("hello"),
        Step::spawn_grandchild(SpawnGrandchild::new("gc.pid").ignore_sigterm().hold_stdout()),
        Step::pid_file("agent.pid"),
    ]));
    let mut child = fx
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // The agent waits for the grandchild's pid file, so it exists now.
    let gc = proc::read_pid_file(fx.path("gc.pid")).expect("grandchild pid file");
    let _guard = KillOnDrop(gc);
    assert!(proc::process_alive(gc));
    assert_ne!(gc, i32::try_from(child.id()).unwrap());
    // Same process group as the agent, i.e. ours (the agent did not setsid).
    // SAFETY: plain syscall.
    assert_eq!(proc::process_group(gc), Some(unsafe { libc::getpgrp() }));
    assert!(ignores_sigterm(gc));

    // The agent has exited and all its output is in the pipe; draining it
    // without blocking must end in "would block", not EOF: someone (the
    // grandchild) still holds the write end.
    set_nonblocking(stdout.as_raw_fd(), true);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) => panic!("EOF although the grandchild holds stdout"),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(seen, b"hello\n");

    proc::kill(gc, libc::SIGKILL).unwrap();
    set_nonblocking(stdout.as_raw_fd(), false);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap(); // returns only at EOF
    assert!(rest.is_empty());
}

#[test]
fn grandchild_without_hold_stdout_does_not_hold_the_pipe() {
    let fx = Fixture::new(&Script::new().default_steps(vec![
        // Ignoring SIGTERM in the agent must not leak into the grandchild.
        Step::ignore_sigterm(),
        Step::spawn_grandchild(SpawnGrandchild::new("pids/gc.pid")),
        Step::print("bye"),
    ]));
    // `output()` reads to EOF: it returns although the grandchild lives on.
    let out = fx.run();
    assert_success(&out);
    assert_eq!(stdout(&out), "bye\n");
    let gc = proc::read_pid_file(fx.path("pids/gc.pid")).unwrap();
    let _guard = KillOnDrop(gc);
    assert!(proc::process_alive(gc));
    assert!(!ignores_sigterm(gc));
    proc::kill(gc, libc::SIGTERM).unwrap();
    assert!(proc::wait_for_exit(gc, PID_TIMEOUT));
}

#[test]
fn ignore_sigterm_survives_sigterm_but_not_sigkill() {
    let fx = Fixture::new(
        &Script::new()
            .default_steps(vec![
                Step::ignore_sigterm(),
                Step::pid_file("agent.pid"),
                Step::hang(),
            ])
            .on_call(2, vec![Step::pid_file("agent.pid"), Step::hang()]),
    );

    for (call, expected) in [(1, libc::SIGKILL), (2, libc::SIGTERM)] {
        let _ = std::fs::remove_file(fx.path("agent.pid"));
        let mut child = fx
            .command()
            .env("RALPH_ITERATION", call.to_string())
            .spawn()
            .unwrap();
        let pid = proc::wait_for_pid_file(fx.path("agent.pid"), PID_TIMEOUT).unwrap();
        assert_eq!(pid, i32::try_from(child.id()).unwrap());
        proc::kill(pid, libc::SIGTERM).unwrap();
        // A fatal SIGTERM starts the exit at send time, and a later SIGKILL
        // does not change the reported signal; an ignored one is dropped.
        // So the status tells which happened, with no timing involved.
        proc::kill(pid, libc::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(expected), "call {call}");
    }
}

#[test]
fn log_records_call_and_pid_per_invocation() {
    let fx = Fixture::new(&Script::new().log("logs/calls.log"));
    std::fs::create_dir(fx.path("logs")).unwrap();
    let mut expected = String::new();
    for call in [1, 2, 2] {
        let child = fx
            .command()
            .env("RALPH_ITERATION", call.to_string())
            .spawn()
            .unwrap();
        expected.push_str(&format!("{call} {}\n", child.id()));
        assert!(child.wait_with_output().unwrap().status.success());
    }
    assert_eq!(
        std::fs::read_to_string(fx.path("logs/calls.log")).unwrap(),
        expected
    );
}

#[test]
fn record_keeps_exactly_the_argv_env_stdin_and_cwd_of_every_invocation() {
    let fx = Fixture::new(
        &Script::new()
            .record("rec")
            .default_steps(vec![Step::write("a.txt", "x")])
            .on_call(2, vec![Step::exit(3)]),
    );
    let mut cmd = fx.command();
    cmd.args(["--model", "m", "arg with space", ""])
        .env("RALPH_ITERATION", "1")
        .env("RALPH_RUN_ID", "run-7")
        .env("IS_SANDBOX", "1")
        .env("OTHER", "o");
    let out = fx.run_with_stdin(&mut cmd, b"the prompt\nline 2\n");
    assert_success(&out);
    // Recorded before the steps run: a failing call is recorded too.
    assert_eq!(fx.run_call(2).status.code(), Some(3));

    let calls = Recording::read_all(&fx.path("rec")).unwrap();
    assert_eq!(calls.len(), 2);
    let first = &calls[0];
    assert_eq!(Path::new(&first.argv[0]), Path::new(BIN));
    assert_eq!(
        first.args(),
        ["script.json", "--model", "m", "arg with space", ""]
    );
    assert_eq!(
        first.ralph_env(),
        BTreeMap::from([
            ("IS_SANDBOX", "1"),
            ("RALPH_ITERATION", "1"),
            ("RALPH_RUN_ID", "run-7")
        ])
    );
    assert_eq!(first.var("OTHER"), Some("o"));
    // Exactly the environment the agent was started with: the test's own, as the fixture
    // changed it.
    let mut expected: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
        .collect();
    for removed in [
        "RALPH_ITERATION",
        "FAKE_AGENT_SCRIPT",
        "FAKE_AGENT_PROMPT_FROM_LAST_ARG",
        RECORD_DIR_ENV,
    ] {
        expected.remove(removed);
    }
    for (k, v) in [
        ("RALPH_ITERATION", "1"),
        ("RALPH_RUN_ID", "run-7"),
        ("IS_SANDBOX", "1"),
        ("OTHER", "o"),
    ] {
        expected.insert(k.into(), v.into());
    }
    assert_eq!(first.env, expected);
    assert_eq!(first.stdin, "the prompt\nline 2\n");
    assert_eq!(
        first.cwd.canonicalize().unwrap(),
        fx.dir.path().canonicalize().unwrap()
    );
    assert_eq!(calls[1].var("RALPH_ITERATION"), Some("2"));
    assert_eq!(calls[1].stdin, "");
}

#[test]
fn record_dir_from_the_environment_wins_over_the_script() {
    let fx = Fixture::new(&Script::new().record("from-script"));
    let out = fx
        .command()
        .arg("x")
        .env(RECORD_DIR_ENV, fx.path("from-env"))
        .output()
        .unwrap();
    assert_success(&out);
    assert!(!fx.path("from-script").exists());
    let calls = Recording::read_all(&fx.path("from-env")).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].args(), ["script.json", "x"]);
    assert_eq!(
        calls[0].var(RECORD_DIR_ENV).map(PathBuf::from),
        Some(fx.path("from-env"))
    );
}

#[test]
fn env_to_file_and_wait_for_file() {
    let fx = Fixture::new(
        &Script::new()
            .default_steps(vec![
                Step::pid_file("agent.pid"),
                Step::wait_for_file("go", 60_000),
                Step::env_to_file("out/env.json", &["RALPH_RUN_ID", "RALPH_ITERATION"]),
                Step::print("went"),
            ])
            .on_call(2, vec![Step::wait_for_file("never", 10)]),
    );
    let child = fx
        .command()
        .env("RALPH_RUN_ID", "run-42")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    proc::wait_for_pid_file(fx.path("agent.pid"), PID_TIMEOUT).unwrap();
    assert!(!fx.path("out/env.json").exists(), "must wait for `go`");
    std::fs::write(fx.path("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out), "went\n");
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path("out/env.json")).unwrap()).unwrap();
    assert_eq!(
        env,
        json!({"RALPH_RUN_ID": "run-42", "RALPH_ITERATION": null})
    );

    let out = fx.run_call(2);
    assert_eq!(out.status.code(), Some(70));
    assert!(stderr(&out).contains("never"), "{}", stderr(&out));
}

#[test]
fn bad_scripts_exit_64_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("invalid.json"), "{not json").unwrap();
    std::fs::write(
        dir.path().join("unknown.json"),
        r#"{"default": [{"prnt": "x"}]}"#,
    )
    .unwrap();
    for (args, needle) in [
        (vec!["missing.json"], "missing.json"),
        (vec!["invalid.json"], "invalid.json"),
        (vec!["unknown.json"], "prnt"),
        (vec![], "usage"),
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .env_remove("FAKE_AGENT_SCRIPT")
            .env_remove("RALPH_ITERATION")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}
