//! `fake-agent`: a scripted stand-in for an AI coding agent CLI.
//!
//! ```text
//! fake-agent SCRIPT.json [ARGS...]      # or FAKE_AGENT_SCRIPT=SCRIPT.json fake-agent [ARGS...]
//! ```
//!
//! Runs the steps of the script (see `ralph_testkit::script`) for call
//! `RALPH_ITERATION` (default 1). It runs once per ralph iteration, also in
//! benchmarks, so it stays std + serde_json + libc with no other start-up work.
//!
//! With the script's `record` directory or `FAKE_AGENT_RECORD_DIR` set, each
//! invocation first records its argv, environment, stdin and cwd there (see
//! `ralph_testkit::recording`).
//!
//! Exit codes: 0 after the last step, the code of an `exit` step, 64 for
//! usage/script errors, 70 when `wait_for_file` times out, 74 when a step's
//! I/O fails, 141 when stdout is a closed pipe.
//!
//! This file reads the script and runs each step; the steps live in `output`
//! (stdout), `files`, `procs` (signals and grandchildren) and `claude` (the
//! stream-json lines, whose shapes are in `lines`).

mod claude;
mod files;
mod lines;
mod output;
mod procs;

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ralph_testkit::recording::{Recording, RECORD_DIR_ENV};
use ralph_testkit::script::{Script, Step};

use crate::claude::uuid;
use crate::files::{
    append_timestamp, delete, env_to_file, wait_for_file, write_file, write_pid_file,
};
use crate::lines::ContentBlock;
use crate::output::{print_bytes, print_line, stdout_write};
use crate::procs::{grandchild_main, hang, set_sigterm_ignored, spawn_grandchild, GRANDCHILD_FLAG};

const EXIT_USAGE: i32 = 64;
const EXIT_TIMEOUT: i32 = 70;
const EXIT_IOERR: i32 = 74;
/// What a shell reports for a process killed by SIGPIPE; used when a write
/// to a closed stdout pipe returns EPIPE instead of killing us.
const EXIT_BROKEN_PIPE: i32 = 141;

const DEFAULT_MODEL: &str = "claude-sonnet-4-5";

/// Why the agent stops early: exit code plus a message for stderr.
struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Self {
        Self {
            code: EXIT_IOERR,
            message: format!("{what}: {e}"),
        }
    }
}

fn main() {
    reset_sigpipe();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == GRANDCHILD_FLAG) {
        grandchild_main(&args[1..]);
    }
    let code = match run(&args) {
        Ok(()) => 0,
        Err(failure) => {
            report(&failure.message);
            failure.code
        }
    };
    exit(code);
}

/// Rust ignores SIGPIPE, which turns a closed stdout into EPIPE errors (and
/// `print!` panics). Real CLIs die of SIGPIPE; so do we, silently.
fn reset_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL at start-up, before any
    // threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn report(message: &str) {
    // Ignore failures: there is nowhere left to report them.
    let _ = writeln!(std::io::stderr(), "fake-agent: {message}");
}

fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

fn run(args: &[OsString]) -> Result<(), Failure> {
    let (script_path, rest) = script_path(args)?;
    let text = std::fs::read_to_string(&script_path).map_err(|e| {
        Failure::usage(format!("cannot read script {}: {e}", script_path.display()))
    })?;
    let script = Script::from_json(&text)
        .map_err(|e| Failure::usage(format!("invalid script {}: {e}", script_path.display())))?;
    let call = call_number()?;
    let stdin = read_stdin();
    if let Some(dir) = record_dir(&script) {
        record(&dir, &stdin)?;
    }
    let prompt = read_prompt(rest, stdin);
    if let Some(log) = &script.log {
        append_log(log, call)?;
    }
    let mut agent = Agent::new(prompt);
    for step in script.steps_for(call) {
        agent.step(step)?;
    }
    Ok(())
}

/// The script is the first argument, unless `FAKE_AGENT_SCRIPT` is set and
/// the first argument is not an existing `.json` file: then every argument is
/// an agent argument (ralph appends its own flags and prompt).
fn script_path(args: &[OsString]) -> Result<(PathBuf, &[OsString]), Failure> {
    let from_env = std::env::var_os("FAKE_AGENT_SCRIPT").filter(|v| !v.is_empty());
    match (args.split_first(), from_env) {
        (Some((first, rest)), None) => Ok((PathBuf::from(first), rest)),
        (Some((first, rest)), Some(_)) if is_json_file(first) => Ok((PathBuf::from(first), rest)),
        (_, Some(env)) => Ok((PathBuf::from(env), args)),
        (None, None) => Err(Failure::usage(
            "usage: fake-agent SCRIPT.json [ARGS...] (or set FAKE_AGENT_SCRIPT)",
        )),
    }
}

fn is_json_file(arg: &OsStr) -> bool {
    let path = Path::new(arg);
    path.extension().is_some_and(|e| e == "json") && path.is_file()
}

fn call_number() -> Result<u32, Failure> {
    match std::env::var("RALPH_ITERATION") {
        Ok(v) if v.trim().is_empty() => Ok(1),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| Failure::usage(format!("RALPH_ITERATION is not a number: {v:?}"))),
        Err(std::env::VarError::NotPresent) => Ok(1),
        Err(std::env::VarError::NotUnicode(v)) => Err(Failure::usage(format!(
            "RALPH_ITERATION is not a number: {v:?}"
        ))),
    }
}

/// The prompt is what came on stdin, unless overridden by the last argument
/// (`FAKE_AGENT_PROMPT_FROM_LAST_ARG=1`) or by an argument naming an existing
/// `...prompt.md` file.
fn read_prompt(args: &[OsString], stdin: String) -> String {
    if std::env::var_os("FAKE_AGENT_PROMPT_FROM_LAST_ARG").is_some_and(|v| v == "1") {
        if let Some(last) = args.last() {
            return last.to_string_lossy().into_owned();
        }
    }
    for arg in args {
        let path = Path::new(arg);
        if arg.to_string_lossy().ends_with("prompt.md") && path.is_file() {
            if let Ok(bytes) = std::fs::read(path) {
                return String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    stdin
}

/// Stdin is always drained when it is not a terminal, as real CLIs do, so a
/// caller writing the prompt there never hits EPIPE.
fn read_stdin() -> String {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(libc::STDIN_FILENO) } == 1 {
        return String::new();
    }
    let mut buf = Vec::new();
    // A closed or unreadable stdin just means an empty prompt.
    let _ = std::io::stdin().lock().read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `FAKE_AGENT_RECORD_DIR` wins over the script's `record`, so a test can record an agent
/// whose script it does not write.
fn record_dir(script: &Script) -> Option<PathBuf> {
    std::env::var_os(RECORD_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| script.record.clone())
}

/// Exactly what this process was given, before any step can change it.
fn record(dir: &Path, stdin: &str) -> Result<(), Failure> {
    let lossy = |s: OsString| s.to_string_lossy().into_owned();
    let recording = Recording {
        argv: std::env::args_os().map(lossy).collect(),
        env: std::env::vars_os()
            .map(|(k, v)| (lossy(k), lossy(v)))
            .collect(),
        stdin: stdin.to_owned(),
        cwd: std::env::current_dir().unwrap_or_default(),
    };
    recording
        .write_next(dir)
        .map(drop)
        .map_err(|e| Failure::io(format_args!("cannot record into {}", dir.display()), &e))
}

/// One `"<N> <pid>"` line per invocation. O_APPEND keeps lines from
/// concurrent agents whole; fsync makes them visible to a test that counts
/// them right after the agent is reaped, even across crashes.
fn append_log(path: &Path, call: u32) -> Result<(), Failure> {
    let line = format!("{call} {}\n", std::process::id());
    let result = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(line.as_bytes())?;
            f.sync_all()
        });
    result.map_err(|e| Failure::io(format_args!("cannot append to log {}", path.display()), &e))
}

/// Per-process state shared by the stream-json steps.
struct Agent {
    prompt: String,
    started: Instant,
    session_id: String,
    model: String,
    assistant_lines: u32,
}

impl Agent {
    fn new(prompt: String) -> Self {
        Self {
            prompt,
            started: Instant::now(),
            session_id: uuid(),
            model: DEFAULT_MODEL.to_owned(),
            assistant_lines: 0,
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), Failure> {
        match step {
            Step::Write { path, content } => write_file(path, content.as_bytes(), false),
            Step::Append { path, content } => write_file(path, content.as_bytes(), true),
            Step::Delete(path) => delete(path),
            Step::Shell(command) => {
                let _ = std::io::stdout().flush();
                // Its stdout joins the agent's stderr: the agent's own stdout stays its stream.
                let status = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdout(std::io::stderr())
                    .status();
                if let Err(e) = status {
                    let _ = writeln!(std::io::stderr(), "shell: {e}");
                }
                Ok(())
            }
            Step::Print(text) => print_line(text),
            Step::PrintRaw(text) => stdout_write(text.as_bytes()),
            Step::Stderr(text) => {
                let _ = writeln!(std::io::stderr(), "{text}");
                Ok(())
            }
            Step::EchoPrompt => stdout_write(self.prompt.as_bytes()),
            Step::ClaudeInit(init) => self.claude_init(init),
            Step::ClaudeText(text) => {
                let block = ContentBlock::Text { text };
                self.assistant(&block)
            }
            Step::ClaudeToolUse(tool) => self.claude_tool_use(tool),
            Step::ClaudeResult(result) => self.claude_result(result),
            Step::ClaudeApiRetry(retry) => self.claude_api_retry(retry),
            Step::SleepMs(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                Ok(())
            }
            Step::Hang => hang(),
            Step::IgnoreSigterm => {
                set_sigterm_ignored(true);
                Ok(())
            }
            Step::SpawnGrandchild(spec) => spawn_grandchild(spec),
            Step::PidFile(path) => write_pid_file(path, std::process::id()),
            Step::Timestamp(path) => append_timestamp(path),
            Step::WaitForFile(wait) => wait_for_file(wait),
            Step::PrintBytes(spec) => print_bytes(spec),
            Step::EnvToFile(spec) => env_to_file(spec),
            Step::Exit(code) => exit(*code),
            Step::KillSelf(signal) => {
                // Flush first so output before the signal is not lost.
                let _ = std::io::stdout().flush();
                // SAFETY: raising a signal on ourselves; if it is ignored or
                // not fatal, the script simply goes on.
                unsafe {
                    libc::raise(*signal);
                }
                Ok(())
            }
        }
    }
}
