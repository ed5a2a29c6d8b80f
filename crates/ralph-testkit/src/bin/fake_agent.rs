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
//! Exit codes: 0 after the last step, the code of an `exit` step, 64 for
//! usage/script errors, 70 when `wait_for_file` times out, 74 when a step's
//! I/O fails, 141 when stdout is a closed pipe.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ralph_testkit::script::{
    ClaudeApiRetry, ClaudeInit, ClaudeResult, ClaudeToolUse, EnvToFile, PrintBytes, Script,
    SpawnGrandchild, Step, WaitForFile,
};
use serde::Serialize;
use serde_json::Value;

const EXIT_USAGE: i32 = 64;
const EXIT_TIMEOUT: i32 = 70;
const EXIT_IOERR: i32 = 74;
/// What a shell reports for a process killed by SIGPIPE; used when a write
/// to a closed stdout pipe returns EPIPE instead of killing us.
const EXIT_BROKEN_PIPE: i32 = 141;

/// Hidden first argument that turns the process into a grandchild sleeper.
const GRANDCHILD_FLAG: &str = "--grandchild";

const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
const CLAUDE_CODE_VERSION: &str = "2.1.197";

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
    let prompt = read_prompt(rest);
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

/// Stdin is always drained when it is not a terminal, as real CLIs do, so a
/// caller writing the prompt there never hits EPIPE. The prompt is then
/// overridden by the last argument (`FAKE_AGENT_PROMPT_FROM_LAST_ARG=1`) or
/// by an argument naming an existing `...prompt.md` file.
fn read_prompt(args: &[OsString]) -> String {
    let stdin = read_stdin();
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

    fn claude_init(&mut self, init: &ClaudeInit) -> Result<(), Failure> {
        if let Some(model) = &init.model {
            self.model.clone_from(model);
        }
        if let Some(session_id) = &init.session_id {
            self.session_id.clone_from(session_id);
        }
        let cwd = std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        emit(&InitLine {
            kind: "system",
            subtype: "init",
            cwd: &cwd,
            session_id: &self.session_id,
            tools: TOOLS,
            mcp_servers: &[],
            model: &self.model,
            permission_mode: init
                .permission_mode
                .as_deref()
                .unwrap_or("bypassPermissions"),
            slash_commands: SLASH_COMMANDS,
            api_key_source: "ANTHROPIC_API_KEY",
            claude_code_version: CLAUDE_CODE_VERSION,
            output_style: "default",
            agents: AGENTS,
            skills: &[],
            plugins: &[],
            analytics_disabled: true,
            product_feedback_disabled: true,
            uuid: &uuid(),
            fast_mode_state: "off",
        })
    }

    fn assistant(&mut self, block: &ContentBlock<'_>) -> Result<(), Failure> {
        self.assistant_lines += 1;
        emit(&AssistantLine {
            kind: "assistant",
            message: Message {
                id: &format!("msg_{}", hex_id()),
                kind: "message",
                role: "assistant",
                // Real messages name the bare model, without the "[1m]"
                // context-window suffix the init line carries.
                model: self.model.split('[').next().unwrap_or(&self.model),
                content: std::slice::from_ref(block),
                stop_reason: None,
                stop_sequence: None,
                usage: MessageUsage::default(),
                context_management: None,
            },
            parent_tool_use_id: None,
            session_id: &self.session_id,
            uuid: &uuid(),
        })
    }

    fn claude_tool_use(&mut self, tool: &ClaudeToolUse) -> Result<(), Failure> {
        let id = format!("toolu_{}", hex_id());
        self.assistant(&ContentBlock::ToolUse {
            id: &id,
            name: &tool.name,
            input: &tool.input,
        })?;
        let Some(result) = &tool.result else {
            return Ok(());
        };
        emit(&UserLine {
            kind: "user",
            message: UserMessage {
                role: "user",
                content: [ToolResult {
                    tool_use_id: &id,
                    kind: "tool_result",
                    content: result,
                    is_error: tool.result_is_error,
                }],
            },
            parent_tool_use_id: None,
            session_id: &self.session_id,
            uuid: &uuid(),
            tool_use_result: result,
        })
    }

    fn claude_result(&self, r: &ClaudeResult) -> Result<(), Failure> {
        let model = r.model.as_deref().unwrap_or(&self.model);
        let subtype = r.subtype.as_deref().unwrap_or("success");
        let text = match (&r.text, subtype) {
            (Some(text), _) => Some(text.as_str()),
            (None, "success") => Some(""),
            // Real error_max_turns results carry no `result` at all.
            (None, _) => None,
        };
        let duration_ms = r.duration_ms.unwrap_or_else(|| {
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
        });
        let total_tokens = r.input_tokens
            + r.output_tokens
            + r.cache_read_input_tokens
            + r.cache_creation_input_tokens;
        // Real results of failed requests report an empty modelUsage.
        let mut model_usage = std::collections::BTreeMap::new();
        if total_tokens > 0 || r.cost_usd != 0.0 {
            model_usage.insert(
                model,
                ModelUsage {
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                    cache_read_input_tokens: r.cache_read_input_tokens,
                    cache_creation_input_tokens: r.cache_creation_input_tokens,
                    web_search_requests: 0,
                    cost_usd: r.cost_usd,
                    context_window: if model.ends_with("[1m]") {
                        1_000_000
                    } else {
                        200_000
                    },
                    max_output_tokens: 64_000,
                },
            );
        }
        emit(&ResultLine {
            kind: "result",
            subtype,
            is_error: r.is_error,
            api_error_status: r.api_error_status,
            duration_ms,
            duration_api_ms: if r.is_error { 0 } else { duration_ms },
            num_turns: r.num_turns.unwrap_or(self.assistant_lines.max(1)),
            result: text,
            stop_reason: r.stop_reason.as_deref().unwrap_or(if r.is_error {
                "stop_sequence"
            } else {
                "end_turn"
            }),
            session_id: &self.session_id,
            total_cost_usd: r.cost_usd,
            usage: ResultUsage {
                input_tokens: r.input_tokens,
                cache_creation_input_tokens: r.cache_creation_input_tokens,
                cache_read_input_tokens: r.cache_read_input_tokens,
                output_tokens: r.output_tokens,
                server_tool_use: ServerToolUse::default(),
                service_tier: "standard",
                cache_creation: CacheCreation::default(),
                inference_geo: "",
                iterations: &[],
                speed: "standard",
            },
            model_usage,
            permission_denials: &r.permission_denials,
            terminal_reason: r.terminal_reason.as_deref().unwrap_or("completed"),
            fast_mode_state: "off",
            uuid: &uuid(),
            errors: &r.errors,
        })
    }

    fn claude_api_retry(&self, retry: &ClaudeApiRetry) -> Result<(), Failure> {
        emit(&ApiRetryLine {
            kind: "system",
            subtype: "api_retry",
            attempt: retry.attempt,
            max_retries: retry.max_retries,
            retry_delay_ms: retry.retry_delay_ms,
            error_status: retry.status,
            error: &retry.error,
            session_id: &self.session_id,
            uuid: &uuid(),
        })
    }
}

// ---- stdout -------------------------------------------------------------

fn stdout_write(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| stdout_error(&e))
}

fn print_line(text: &str) -> Result<(), Failure> {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    stdout_write(&line)
}

/// A reader that went away is not an agent bug: end quietly, like a CLI
/// killed by SIGPIPE (normally SIGPIPE itself kills us before we get here).
fn stdout_error(e: &std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_BROKEN_PIPE);
    }
    Failure::io("cannot write to stdout", e)
}

/// One stream-json line, written with a single write so concurrent readers
/// never see half a line.
fn emit(line: &impl Serialize) -> Result<(), Failure> {
    let mut bytes = serde_json::to_vec(line).map_err(|e| Failure {
        code: EXIT_IOERR,
        message: format!("cannot serialise stream-json line: {e}"),
    })?;
    bytes.push(b'\n');
    stdout_write(&bytes)
}

/// Floods stdout. Lines are pre-built into a ~1 MiB buffer that is written
/// straight to the stdout descriptor (bypassing std's line buffering), so
/// throughput is bounded by the pipe, not by us.
fn print_bytes(spec: &PrintBytes) -> Result<(), Failure> {
    if spec.line_len == 0 {
        return Err(Failure::usage("print_bytes: line_len must be at least 1"));
    }
    const CHUNK: usize = 1 << 20;
    let mut line = vec![b'x'; spec.line_len - 1];
    line.push(b'\n');
    // Whole lines only, so every chunk starts at a line boundary.
    let chunk = line.repeat((CHUNK / spec.line_len).max(1));

    let stdout = std::io::stdout();
    let mut locked = stdout.lock();
    locked.flush().map_err(|e| stdout_error(&e))?;
    let mut out = locked
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| Failure::io("cannot duplicate stdout", &e))?;
    let mut remaining = spec.bytes;
    while remaining > 0 {
        let n = usize::try_from(remaining).map_or(chunk.len(), |r| r.min(chunk.len()));
        out.write_all(&chunk[..n]).map_err(|e| stdout_error(&e))?;
        remaining -= n as u64;
    }
    Ok(())
}

// ---- files --------------------------------------------------------------

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent),
        _ => Ok(()),
    }
}

fn write_file(path: &Path, content: &[u8], append: bool) -> Result<(), Failure> {
    let result = create_parent(path).and_then(|()| {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)?;
        file.write_all(content)
    });
    result.map_err(|e| Failure::io(format_args!("cannot write {}", path.display()), &e))
}

/// Missing paths are fine: default steps repeat on every call.
fn delete(path: &Path) -> Result<(), Failure> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map_err(|e| Failure::io(format_args!("cannot delete {}", path.display()), &e))
}

/// Write to a temporary sibling then rename, so a reader polling for the
/// file never sees it empty or half-written.
fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    create_parent(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

fn append_timestamp(path: &Path) -> Result<(), Failure> {
    use std::io::Write;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{nanos}"))
        .map_err(|e| Failure::io(format_args!("cannot append to {}", path.display()), &e))
}

fn write_pid_file(path: &Path, pid: u32) -> Result<(), Failure> {
    write_atomically(path, format!("{pid}\n").as_bytes())
        .map_err(|e| Failure::io(format_args!("cannot write pid file {}", path.display()), &e))
}

fn wait_for_file(wait: &WaitForFile) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_millis(wait.timeout_ms);
    while !wait.path.exists() {
        if Instant::now() >= deadline {
            return Err(Failure {
                code: EXIT_TIMEOUT,
                message: format!(
                    "wait_for_file: {} did not appear within {} ms",
                    wait.path.display(),
                    wait.timeout_ms
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn env_to_file(spec: &EnvToFile) -> Result<(), Failure> {
    let map: serde_json::Map<String, Value> = spec
        .vars
        .iter()
        .map(|name| {
            let value = std::env::var_os(name).map_or(Value::Null, |v| {
                Value::String(v.to_string_lossy().into_owned())
            });
            (name.clone(), value)
        })
        .collect();
    let mut text = Value::Object(map).to_string();
    text.push('\n');
    write_atomically(&spec.path, text.as_bytes())
        .map_err(|e| Failure::io(format_args!("cannot write {}", spec.path.display()), &e))
}

// ---- processes and signals ----------------------------------------------

fn set_sigterm_ignored(ignored: bool) {
    let disposition = if ignored {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    // SAFETY: changing a signal disposition to SIG_IGN/SIG_DFL; no handler
    // code runs.
    unsafe {
        libc::signal(libc::SIGTERM, disposition);
    }
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Re-executes this binary in grandchild mode, in our process group (no
/// setsid: the point is to test that ralph kills the whole group), and waits
/// only until it has written its pid file. The child is never waited for.
fn spawn_grandchild(spec: &SpawnGrandchild) -> Result<(), Failure> {
    let exe =
        std::env::current_exe().map_err(|e| Failure::io("cannot locate own executable", &e))?;
    let pid_file = std::env::current_dir()
        .map(|cwd| cwd.join(&spec.pid_file))
        .unwrap_or_else(|_| spec.pid_file.clone());
    // A file left by an earlier call would end the wait below too early.
    let _ = std::fs::remove_file(&pid_file);
    // Output printed so far must come before anything the grandchild does.
    let _ = std::io::stdout().flush();

    let mut cmd = Command::new(exe);
    cmd.arg(GRANDCHILD_FLAG)
        .arg(&pid_file)
        .arg(if spec.ignore_sigterm { "1" } else { "0" })
        .stdin(Stdio::null());
    if !spec.hold_stdout {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::io("cannot spawn grandchild", &e))?;

    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Failure::io(
                "grandchild died before writing its pid file",
                &std::io::Error::other(status.to_string()),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Failure {
                code: EXIT_TIMEOUT,
                message: format!("grandchild did not write {}", pid_file.display()),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Dropping a Child neither kills nor waits for it.
    drop(child);
    Ok(())
}

/// `fake-agent --grandchild PID_FILE IGNORE_TERM(0|1)`: set up SIGTERM,
/// *then* publish the pid (so once the file exists the disposition holds),
/// then sleep forever.
fn grandchild_main(args: &[OsString]) -> ! {
    let (Some(pid_file), Some(ignore)) = (args.first(), args.get(1)) else {
        report("usage: fake-agent --grandchild PID_FILE 0|1");
        exit(EXIT_USAGE);
    };
    // Set explicitly both ways: SIG_IGN survives exec, so a grandchild of an
    // agent that ran `ignore_sigterm` would otherwise inherit it.
    set_sigterm_ignored(ignore == "1");
    if let Err(f) = write_pid_file(Path::new(pid_file), std::process::id()) {
        report(&f.message);
        exit(f.code);
    }
    hang()
}

// ---- ids ------------------------------------------------------------------

/// Random-enough 64 bits without a rand dependency: std's `RandomState` is
/// seeded from the OS once per process and perturbed per instance.
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::hash::RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A version-4-shaped UUID, as Claude Code uses for `session_id` and `uuid`.
fn uuid() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// 24 hex digits, the length of the ids in real `msg_`/`toolu_` ids.
fn hex_id() -> String {
    format!("{:016x}{:08x}", random_u64(), random_u64() >> 32)
}

// ---- stream-json line shapes ----------------------------------------------
//
// Structs rather than `json!` so fields come out in Claude Code's order (a
// serde_json `Value` sorts keys), which keeps transcripts easy to compare
// with /work/shared/reference/transcripts.

const TOOLS: &[&str] = &[
    "Task",
    "Bash",
    "Edit",
    "NotebookEdit",
    "Read",
    "Skill",
    "TaskCreate",
    "TaskGet",
    "TaskList",
    "TaskOutput",
    "TaskStop",
    "TaskUpdate",
    "WebFetch",
    "WebSearch",
    "Write",
];
const SLASH_COMMANDS: &[&str] = &[
    "clear", "compact", "config", "context", "init", "review", "usage",
];
const AGENTS: &[&str] = &["claude", "Explore", "general-purpose", "Plan"];

#[derive(Serialize)]
struct InitLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    subtype: &'a str,
    cwd: &'a str,
    session_id: &'a str,
    tools: &'a [&'a str],
    mcp_servers: &'a [&'a str],
    model: &'a str,
    #[serde(rename = "permissionMode")]
    permission_mode: &'a str,
    slash_commands: &'a [&'a str],
    #[serde(rename = "apiKeySource")]
    api_key_source: &'a str,
    claude_code_version: &'a str,
    output_style: &'a str,
    agents: &'a [&'a str],
    skills: &'a [&'a str],
    plugins: &'a [&'a str],
    analytics_disabled: bool,
    product_feedback_disabled: bool,
    uuid: &'a str,
    fast_mode_state: &'a str,
}

#[derive(Serialize)]
struct AssistantLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: Message<'a>,
    parent_tool_use_id: Option<&'a str>,
    session_id: &'a str,
    uuid: &'a str,
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    role: &'a str,
    model: &'a str,
    content: &'a [ContentBlock<'a>],
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
    usage: MessageUsage,
    context_management: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
}

#[derive(Serialize, Default)]
struct MessageUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
}

#[derive(Serialize)]
struct UserLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: UserMessage<'a>,
    parent_tool_use_id: Option<&'a str>,
    session_id: &'a str,
    uuid: &'a str,
    tool_use_result: &'a str,
}

#[derive(Serialize)]
struct UserMessage<'a> {
    role: &'a str,
    content: [ToolResult<'a>; 1],
}

#[derive(Serialize)]
struct ToolResult<'a> {
    tool_use_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    content: &'a str,
    is_error: bool,
}

#[derive(Serialize)]
struct ResultLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    subtype: &'a str,
    is_error: bool,
    api_error_status: Option<u16>,
    duration_ms: u64,
    duration_api_ms: u64,
    num_turns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a str>,
    stop_reason: &'a str,
    session_id: &'a str,
    total_cost_usd: f64,
    usage: ResultUsage<'a>,
    #[serde(rename = "modelUsage")]
    model_usage: std::collections::BTreeMap<&'a str, ModelUsage>,
    permission_denials: &'a [Value],
    terminal_reason: &'a str,
    fast_mode_state: &'a str,
    uuid: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    errors: &'a [String],
}

#[derive(Serialize)]
struct ResultUsage<'a> {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
    server_tool_use: ServerToolUse,
    service_tier: &'a str,
    cache_creation: CacheCreation,
    inference_geo: &'a str,
    iterations: &'a [Value],
    speed: &'a str,
}

#[derive(Serialize, Default)]
struct ServerToolUse {
    web_search_requests: u64,
    web_fetch_requests: u64,
}

#[derive(Serialize, Default)]
struct CacheCreation {
    ephemeral_1h_input_tokens: u64,
    ephemeral_5m_input_tokens: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
    web_search_requests: u64,
    #[serde(rename = "costUSD")]
    cost_usd: f64,
    context_window: u64,
    max_output_tokens: u64,
}

#[derive(Serialize)]
struct ApiRetryLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    subtype: &'a str,
    attempt: u32,
    max_retries: u32,
    retry_delay_ms: u64,
    error_status: u16,
    error: &'a str,
    session_id: &'a str,
    uuid: &'a str,
}
