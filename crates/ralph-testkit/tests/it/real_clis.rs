//! Proof that the five real agent CLIs run offline against the scripted
//! model server: each one creates `hello.txt` with its own write tool, runs
//! a command with its own shell tool, ends with LOOP_COMPLETE, and reports
//! exactly the token usage (and, where it computes one, the cost) the
//! scenario scripted. Then each API error scenario, which must fail fast.
//!
//! These tests never skip: the CLIs are installed from npm on first use
//! (`clis::install_dir`), and a failed install fails the test.
//!
//! What the error runs print is kept in `tests/fixtures/<cli>-<scenario>.*`
//! (stdout `.jsonl`, `.stderr`, `.exit`) as parser fixtures for the
//! backends. `RALPH_RECORD_FIXTURES=1` rewrites them; otherwise the tests
//! compare the key facts (exit code and the error signature the CLI
//! printed, digits ignored) with the stored fixture.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ralph_testkit::clis::{self, Cli, CliEnv, RunOutput, OPENCODE_PRICES};
use ralph_testkit::mockllm::{
    LoggedRequest, MockServer, Scenario, Step, Usage, HELLO_COMMAND, HELLO_CONTENT,
    HELLO_FINAL_TEXT,
};
use serde_json::Value;

const PROMPT: &str = "Create hello.txt, check it, then say LOOP_COMPLETE";

/// Generous: on two cores a cold Copilot or Gemini start takes seconds.
const SUCCESS_TIMEOUT: Duration = Duration::from_secs(180);
/// Our own limit for error runs. Every CLI but opencode gives up on its own
/// well before it; opencode retries 5xx forever and is killed at
/// [`HANG_TIMEOUT`].
const ERROR_TIMEOUT: Duration = Duration::from_secs(150);
const HANG_TIMEOUT: Duration = Duration::from_secs(25);

const ERROR_SCENARIOS: [&str; 6] = [
    "rate_limit",
    "quota",
    "usage_limit",
    "auth_error",
    "server_error",
    "overloaded",
];

/// Different numbers per step, so a CLI that reports only the last step,
/// or double counts one, is caught.
fn step_usages() -> [Usage; 3] {
    [
        Usage::new(1200, 80, 300, 100),
        Usage::new(2500, 120, 700, 0),
        Usage::new(900, 45, 1800, 250),
    ]
}

fn total_usage() -> Usage {
    step_usages()
        .into_iter()
        .fold(Usage::default(), Usage::plus)
}

fn proof_server() -> MockServer {
    let [a, b, c] = step_usages();
    MockServer::start_with(HashMap::from([(
        "write_and_finish".to_string(),
        Scenario::new(vec![
            Step::write_file("hello.txt", HELLO_CONTENT).with_usage(a),
            Step::shell(HELLO_COMMAND).with_usage(b),
            Step::text(HELLO_FINAL_TEXT).with_usage(c),
        ]),
    )]))
}

/// A private HOME and a project directory whose name has a space (the
/// server must read the announced cwd to the end of the line).
struct Sandbox {
    dir: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
}

fn sandbox(cli: Cli, label: &str) -> Sandbox {
    let dir = tempfile::Builder::new()
        .prefix(&format!("ralph-{}-{label}-", cli.name()))
        .tempdir()
        .unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("my project");
    std::fs::create_dir_all(&project).unwrap();
    Sandbox { dir, home, project }
}

/// Runs `cli` headless in the sandbox against `scenario`; the prompt on
/// stdin (what ralph does) or as an argument.
fn run_cli(
    cli: Cli,
    server: &MockServer,
    scenario: &str,
    sb: &Sandbox,
    prompt_on_stdin: bool,
    timeout: Duration,
) -> (CliEnv, RunOutput) {
    let env = clis::setup(cli, &sb.home, &server.scenario_url(scenario));
    assert_offline(&env, &sb.home, server);
    let mut args = clis::headless_args(cli, &env, (!prompt_on_stdin).then_some(PROMPT));
    if cli == Cli::Copilot {
        args.push("--usage-output-file".into());
        args.push(copilot_usage_file(sb).display().to_string());
    }
    let cmd = clis::command(cli, &env, &sb.project, &args);
    let out = clis::run(cmd, prompt_on_stdin.then_some(PROMPT), timeout);
    (env, out)
}

/// Claude Code sends `HEAD <base URL>` before its first model call.
fn is_base_probe(r: &LoggedRequest) -> bool {
    r.method == "HEAD" && r.path == format!("/s/{}", r.scenario)
}

fn copilot_usage_file(sb: &Sandbox) -> PathBuf {
    sb.home.join("copilot-usage.json")
}

/// Every URL in the environment and in the config files `setup` wrote
/// points at the mock: nothing tells a CLI about any other host.
fn assert_offline(env: &CliEnv, home: &Path, server: &MockServer) {
    let base = server.base_url();
    let check = |what: &str, text: &str| {
        for (i, _) in text.match_indices("://") {
            let start = text[..i]
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |j| j + 1);
            let url = &text[start..];
            assert!(
                url.starts_with(&base),
                "{what} names a URL that is not the mock's ({base}): {}",
                &url[..url.len().min(80)]
            );
        }
    };
    for (k, v) in &env.env {
        check(k, v);
    }
    for arg in &env.args {
        check("args", arg);
    }
    for file in walk(home) {
        let is_config = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("toml" | "json")
        );
        if is_config && file.metadata().map(|m| m.len() < 100_000).unwrap_or(false) {
            check(
                &file.display().to_string(),
                &std::fs::read_to_string(&file).unwrap_or_default(),
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Not into symlinks: Copilot's shared runtime is linked in.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(walk(&path));
        } else if meta.is_file() {
            out.push(path);
        }
    }
    out
}

fn describe(out: &RunOutput) -> String {
    let tail = |s: &str| {
        let start = s.len().saturating_sub(4000);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[start..].to_string()
    };
    format!(
        "status {:?} (timed out: {}) after {:?}\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
        out.status,
        out.timed_out,
        out.elapsed,
        tail(&out.stdout),
        tail(&out.stderr)
    )
}

// ----------------------------------------------------------------- fixtures

fn recording() -> bool {
    std::env::var("RALPH_RECORD_FIXTURES").is_ok_and(|v| v == "1")
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// Stable, shareable text: sandbox paths become /home/user(/project), the
/// install directory /opt/agent-clis, and the mock's port PORT.
fn normalize(text: &str, sb: &Sandbox, server: &MockServer) -> String {
    let port = server.port().to_string();
    text.replace(
        &clis::install_dir().display().to_string(),
        "/opt/agent-clis",
    )
    .replace(&sb.project.display().to_string(), "/home/user/project")
    .replace(&sb.home.display().to_string(), "/home/user")
    .replace(&sb.dir.path().display().to_string(), "/home/user/sandbox")
    .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:PORT")
}

fn exit_text(out: &RunOutput) -> String {
    if out.timed_out {
        "timeout".to_string()
    } else {
        match out.code() {
            Some(code) => code.to_string(),
            None => format!("{:?}", out.status),
        }
    }
}

/// The line a parser would show a user, per CLI (see agent-clis.md §9).
fn error_signature(cli: Cli, stdout: &str) -> String {
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find_last = |ty: &str| {
        lines
            .iter()
            .rev()
            .find(|l| l["type"] == ty)
            .cloned()
            .unwrap_or(Value::Null)
    };
    match cli {
        Cli::Claude => {
            let r = find_last("result");
            format!(
                "is_error={} api_error_status={} result={}",
                r["is_error"], r["api_error_status"], r["result"]
            )
        }
        Cli::Codex => format!(
            "turn.failed: {}",
            find_last("turn.failed")["error"]["message"]
        ),
        Cli::Gemini => {
            let r = find_last("result");
            format!("status={} error={}", r["status"], r["error"]["message"])
        }
        Cli::Opencode => {
            let e = find_last("error");
            format!(
                "error {} status={} message={}",
                e["error"]["name"], e["error"]["data"]["statusCode"], e["error"]["data"]["message"]
            )
        }
        Cli::Copilot => {
            let e = find_last("session.error");
            format!(
                "errorType={} statusCode={} message={}",
                e["data"]["errorType"], e["data"]["statusCode"], e["data"]["message"]
            )
        }
    }
}

/// Digits vary run to run (ports, times, retry waits, reset clocks), and
/// so does the wording of a reset time ("try again at 12:13 PM" or, past
/// midnight, with a date): everything after "try again at" is dropped.
fn without_digits(s: &str) -> String {
    let s = match s.find("try again at ") {
        Some(i) => &s[..i + "try again at ".len()],
        None => s,
    };
    let mut out = String::with_capacity(s.len());
    let mut in_number = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// Writes (when recording) or compares the key facts with the stored
/// fixture of `cli` / `name`.
fn check_fixture(cli: Cli, name: &str, out: &RunOutput, sb: &Sandbox, server: &MockServer) {
    let base = fixtures_dir().join(format!("{}-{name}", cli.name()));
    let stdout = normalize(&out.stdout, sb, server);
    let stderr = normalize(&out.stderr, sb, server);
    let exit = exit_text(out);
    let with_ext = |ext: &str| base.with_extension(ext);
    if recording() {
        std::fs::create_dir_all(fixtures_dir()).unwrap();
        std::fs::write(with_ext("jsonl"), &stdout).unwrap();
        std::fs::write(with_ext("stderr"), &stderr).unwrap();
        std::fs::write(with_ext("exit"), format!("{exit}\n")).unwrap();
        return;
    }
    let stored_exit = std::fs::read_to_string(with_ext("exit")).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record the fixtures with RALPH_RECORD_FIXTURES=1",
            with_ext("exit").display()
        )
    });
    let stored_stdout = std::fs::read_to_string(with_ext("jsonl")).unwrap();
    assert_eq!(
        stored_exit.trim(),
        exit,
        "{} {name}: exit differs from the fixture\n{}",
        cli.name(),
        describe(out)
    );
    assert_eq!(
        without_digits(&error_signature(cli, &stored_stdout)),
        without_digits(&error_signature(cli, &stdout)),
        "{} {name}: error signature differs from the fixture\n{}",
        cli.name(),
        describe(out)
    );
}

// ------------------------------------------------------------ write_and_finish

fn prove_write_and_finish(cli: Cli) -> RunOutput {
    let server = proof_server();
    let sb = sandbox(cli, "proof");
    let (_env, out) = run_cli(cli, &server, "write_and_finish", &sb, true, SUCCESS_TIMEOUT);
    let what = describe(&out);
    assert!(!out.timed_out, "{} timed out\n{what}", cli.name());
    assert_eq!(out.code(), Some(0), "{} failed\n{what}", cli.name());
    let written = std::fs::read_to_string(sb.project.join("hello.txt"))
        .unwrap_or_else(|e| panic!("{}: hello.txt not created ({e})\n{what}", cli.name()));
    assert_eq!(written, HELLO_CONTENT);
    assert!(
        out.stdout.contains("LOOP_COMPLETE"),
        "{}: no LOOP_COMPLETE\n{what}",
        cli.name()
    );
    // The CLI's own tools did the work: each step was answered once as a
    // tool call (retries would repeat a step), and the CLI offered the tools
    // in its own dialect.
    let requests = server.requests();
    let steps: Vec<usize> = requests.iter().filter_map(|r| r.step).collect();
    assert_eq!(steps, [0, 1, 2], "{}: {requests:#?}", cli.name());
    for r in &requests {
        assert_eq!(r.status, 200, "{}: {r:?}", cli.name());
        assert_eq!(r.scenario, "write_and_finish", "{}: {}", cli.name(), r.path);
        if !is_base_probe(r) {
            assert_eq!(
                r.dialect.as_deref(),
                Some(cli.dialect().name()),
                "{}: {}",
                cli.name(),
                r.path
            );
        }
    }
    assert_usage(cli, &out, &sb);
    if cli == Cli::Copilot {
        // The home still links the runtime unpacked once by install_dir,
        // instead of a 235 MB copy of its own.
        let pkg = sb.home.join(".cache/copilot/pkg");
        let meta = std::fs::symlink_metadata(&pkg).unwrap();
        assert!(meta.file_type().is_symlink(), "{}", pkg.display());
    }
    check_fixture(cli, "write_and_finish", &out, &sb, &server);
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The usage the CLI reports equals the scripted one, in its own terms.
fn assert_usage(cli: Cli, out: &RunOutput, sb: &Sandbox) {
    let u = total_usage();
    let lines = out.json_lines();
    let last = |ty: &str| {
        lines
            .iter()
            .rev()
            .find(|l| l["type"] == ty)
            .cloned()
            .unwrap_or_else(|| panic!("{}: no {ty} line\n{}", cli.name(), describe(out)))
    };
    match cli {
        Cli::Claude => {
            let r = last("result");
            assert_eq!(r["usage"]["input_tokens"], u.input_tokens);
            assert_eq!(r["usage"]["output_tokens"], u.output_tokens);
            assert_eq!(
                r["usage"]["cache_read_input_tokens"],
                u.cache_read_input_tokens
            );
            assert_eq!(
                r["usage"]["cache_creation_input_tokens"],
                u.cache_creation_input_tokens
            );
            // Claude prices claude-sonnet-4-5 itself: $3 in, $15 out, $0.30
            // cache read, $3.75 cache write per million tokens.
            let want = (u.input_tokens as f64 * 3.0
                + u.output_tokens as f64 * 15.0
                + u.cache_read_input_tokens as f64 * 0.3
                + u.cache_creation_input_tokens as f64 * 3.75)
                / 1e6;
            let cost = r["total_cost_usd"].as_f64().unwrap();
            assert!(close(cost, want), "claude cost {cost} != {want}");
            assert_eq!(r["num_turns"], 3);
        }
        Cli::Codex => {
            let usage = &last("turn.completed")["usage"];
            // Responses-API input includes the cached part.
            assert_eq!(usage["input_tokens"], u.prompt_tokens());
            assert_eq!(usage["cached_input_tokens"], u.cache_read_input_tokens);
            assert_eq!(usage["output_tokens"], u.output_tokens);
        }
        Cli::Gemini => {
            let stats = &last("result")["stats"];
            assert_eq!(stats["input_tokens"], u.prompt_tokens());
            assert_eq!(stats["input"], u.input_tokens);
            assert_eq!(stats["cached"], u.cache_read_input_tokens);
            assert_eq!(stats["output_tokens"], u.output_tokens);
            assert_eq!(stats["tool_calls"], 2);
        }
        Cli::Opencode => {
            let finishes: Vec<&Value> = lines
                .iter()
                .filter(|l| l["type"] == "step_finish")
                .collect();
            assert_eq!(finishes.len(), 3, "{}", describe(out));
            let sum = |ptr: &str| -> u64 {
                finishes
                    .iter()
                    .map(|f| f["part"]["tokens"].pointer(ptr).unwrap().as_u64().unwrap())
                    .sum()
            };
            assert_eq!(sum("/input"), u.input_tokens);
            assert_eq!(sum("/output"), u.output_tokens);
            assert_eq!(sum("/cache/read"), u.cache_read_input_tokens);
            // Chat Completions has no cache-write field.
            assert_eq!(sum("/cache/write"), 0);
            let cost: f64 = finishes
                .iter()
                .map(|f| f["part"]["cost"].as_f64().unwrap())
                .sum();
            let [p_in, p_out, p_read, _] = OPENCODE_PRICES;
            let want = (u.input_tokens as f64 * p_in
                + u.output_tokens as f64 * p_out
                + u.cache_read_input_tokens as f64 * p_read)
                / 1e6;
            assert!(close(cost, want), "opencode cost {cost} != {want}");
            assert_eq!(
                finishes.last().unwrap()["part"]["reason"],
                "stop",
                "{}",
                describe(out)
            );
        }
        Cli::Copilot => {
            let file = copilot_usage_file(sb);
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), describe(out)));
            let report: Value = serde_json::from_str(&text).unwrap();
            let m = &report["modelMetrics"][Cli::Copilot.model()];
            assert_eq!(m["usage"]["inputTokens"], u.prompt_tokens(), "{report:#}");
            assert_eq!(m["usage"]["cacheReadTokens"], u.cache_read_input_tokens);
            assert_eq!(m["usage"]["outputTokens"], u.output_tokens);
            assert_eq!(m["requests"]["count"], 3);
            assert_eq!(last("result")["exitCode"], 0);
        }
    }
}

#[test]
fn claude_write_and_finish() {
    prove_write_and_finish(Cli::Claude);
}

#[test]
fn codex_write_and_finish() {
    prove_write_and_finish(Cli::Codex);
}

#[test]
fn gemini_write_and_finish() {
    prove_write_and_finish(Cli::Gemini);
}

#[test]
fn opencode_write_and_finish() {
    prove_write_and_finish(Cli::Opencode);
}

#[test]
fn copilot_write_and_finish() {
    prove_write_and_finish(Cli::Copilot);
}

// ------------------------------------------------------------------- errors

/// How a CLI ends on an error scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Exits by itself with this code, having sent at most this many
    /// requests (first attempt + its capped retries).
    Exit { code: i32, max_requests: usize },
    /// Never gives up (opencode on 5xx): our timeout kills it.
    Hangs,
}

fn expected(cli: Cli, scenario: &str) -> Ending {
    let exit = |code, max_requests| Ending::Exit { code, max_requests };
    match (cli, scenario) {
        // CLAUDE_CODE_MAX_RETRIES=1: one retry.
        (Cli::Claude, _) => exit(1, 2),
        // request_max_retries = 0.
        (Cli::Codex, _) => exit(1, 1),
        // maxAttempts 1; the exit code is the HTTP status & 0xFF.
        (Cli::Gemini, "auth_error") => exit(145, 1),
        (Cli::Gemini, "server_error") => exit(244, 1),
        (Cli::Gemini, "overloaded") => exit(247, 1),
        (Cli::Gemini, _) => exit(173, 1),
        (Cli::Opencode, "server_error" | "overloaded") => Ending::Hangs,
        (Cli::Opencode, _) => exit(1, 12),
        // Copilot retries 5 times; its own title request may add one.
        (Cli::Copilot, _) => exit(1, 8),
    }
}

fn prove_errors(cli: Cli) {
    let server = MockServer::start();
    // In parallel: most of the time is the CLIs' own retry waits.
    let results: Vec<(&str, Sandbox, RunOutput)> = std::thread::scope(|s| {
        let handles: Vec<_> = ERROR_SCENARIOS
            .iter()
            .map(|&scenario| {
                let server = &server;
                s.spawn(move || {
                    let sb = sandbox(cli, scenario);
                    let timeout = match expected(cli, scenario) {
                        Ending::Hangs => HANG_TIMEOUT,
                        Ending::Exit { .. } => ERROR_TIMEOUT,
                    };
                    // The prompt as an argument here (stdin in the success
                    // runs), so both ways are exercised.
                    let (_env, out) = run_cli(cli, server, scenario, &sb, false, timeout);
                    (scenario, sb, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for (scenario, sb, out) in &results {
        let requests = server.requests_for(scenario);
        let model_requests = requests.iter().filter(|r| r.dialect.is_some()).count();
        let what = format!(
            "{} {scenario}: {model_requests} model requests, {}",
            cli.name(),
            describe(out)
        );
        eprintln!(
            "{} {scenario}: exit {} in {:.1?}, {model_requests} requests; {}",
            cli.name(),
            exit_text(out),
            out.elapsed,
            error_signature(cli, &out.stdout)
        );
        if sb.project.join("hello.txt").exists() {
            failures.push(format!("hello.txt was created\n{what}"));
        }
        if requests
            .iter()
            .any(|r| r.status < 400 && r.dialect.is_some())
        {
            failures.push(format!("a model request succeeded\n{what}"));
        }
        match expected(cli, scenario) {
            Ending::Exit { code, max_requests } => {
                if out.timed_out || out.code() != Some(code) {
                    failures.push(format!("expected exit {code}\n{what}"));
                }
                if model_requests == 0 || model_requests > max_requests {
                    failures.push(format!("expected 1..={max_requests} requests\n{what}"));
                }
            }
            Ending::Hangs => {
                if !out.timed_out {
                    failures.push(format!("expected to hang until killed\n{what}"));
                }
            }
        }
        if recording() || failures.is_empty() {
            check_fixture(cli, scenario, out, sb, &server);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Nothing but model routes (and Claude's probe of its base URL) was
    // requested: no registry, no update check.
    let paths: BTreeSet<String> = server
        .requests()
        .iter()
        .filter(|r| r.dialect.is_none() && !is_base_probe(r))
        .map(|r| r.path.clone())
        .collect();
    assert!(paths.is_empty(), "{} requested {paths:?}", cli.name());
}

#[test]
fn claude_error_scenarios() {
    prove_errors(Cli::Claude);
}

#[test]
fn codex_error_scenarios() {
    prove_errors(Cli::Codex);
}

#[test]
fn gemini_error_scenarios() {
    prove_errors(Cli::Gemini);
}

#[test]
fn opencode_error_scenarios() {
    prove_errors(Cli::Opencode);
}

#[test]
fn copilot_error_scenarios() {
    prove_errors(Cli::Copilot);
}

#[test]
fn setup_env_is_offline_and_complete() {
    let server = MockServer::start();
    for cli in Cli::ALL {
        let sb = sandbox(cli, "env");
        let env = clis::setup(cli, &sb.home, &server.scenario_url("text_only"));
        assert_offline(&env, &sb.home, &server);
        assert_eq!(env.model, cli.model());
        assert!(env.args.iter().any(|a| a == cli.model()), "{env:?}");
        let path = env.get("PATH").unwrap();
        assert!(
            path.starts_with(
                &clis::install_dir()
                    .join("node_modules/.bin")
                    .display()
                    .to_string()
            ),
            "{path}"
        );
        assert_eq!(env.get("HOME"), Some(sb.home.to_str().unwrap()));
        let tmp = env.get("TMPDIR").unwrap();
        assert!(Path::new(tmp).is_dir());
        assert!(clis::bin(cli).exists(), "{}", clis::bin(cli).display());
        if let Some(codex_home) = env.get("CODEX_HOME") {
            assert!(!codex_home.starts_with(tmp) && !tmp.starts_with(codex_home));
        }
    }
}
