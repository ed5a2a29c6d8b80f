//! The script format understood by the `fake-agent` binary.
//!
//! A [`Script`] says, for each call (ralph iteration) of the fake agent,
//! which [`Step`]s to run. Tests build scripts with the constructors here and
//! write them as JSON with [`Script::write_to`]; the binary reads the same
//! types back, so the Rust API and the JSON format cannot drift apart.
//!
//! ```json
//! {
//!   "calls": { "3": [ { "claude_result": { "text": "LOOP_COMPLETE" } } ] },
//!   "default": [ { "print": "working" } ],
//!   "log": "calls.log",
//!   "record": "/tmp/agent-calls"
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole fake-agent script.
///
/// The steps for call `N` (taken from `RALPH_ITERATION`, default 1) are
/// `calls[N]` if present, else `default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Per-call overrides, keyed by 1-based call number (a string in JSON).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub calls: BTreeMap<u32, Vec<Step>>,
    /// Steps for every call without an entry in `calls`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default: Vec<Step>,
    /// If set, each invocation appends `"<N> <pid>\n"` to this file (relative
    /// to the agent's cwd) before running its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// If set, each invocation records its argv, environment, stdin and cwd in a new numbered
    /// directory under this one (relative to the agent's cwd) before running its steps; see
    /// [`crate::recording`]. `FAKE_AGENT_RECORD_DIR` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<PathBuf>,
}

impl Script {
    /// An empty script: every call does nothing and exits 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the steps used for calls without a specific entry.
    #[must_use]
    pub fn default_steps(mut self, steps: Vec<Step>) -> Self {
        self.default = steps;
        self
    }

    /// Sets the steps for call `n` (1-based, as in `RALPH_ITERATION`).
    #[must_use]
    pub fn on_call(mut self, n: u32, steps: Vec<Step>) -> Self {
        self.calls.insert(n, steps);
        self
    }

    /// Sets the invocation log file (see [`Script::log`]).
    #[must_use]
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// Records every invocation under `dir` (see the `record` field and
    /// [`crate::recording::Recording::read_all`]).
    #[must_use]
    pub fn record(mut self, dir: impl Into<PathBuf>) -> Self {
        self.record = Some(dir.into());
        self
    }

    /// The steps the agent runs on call `n`.
    pub fn steps_for(&self, n: u32) -> &[Step] {
        self.calls.get(&n).unwrap_or(&self.default)
    }

    /// Pretty JSON, as written by [`Script::write_to`].
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is an integer
        // and every value is plain data. Fall back to an empty script rather
        // than panicking, to keep this infallible signature honest.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Parses a script from JSON text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Writes the script as JSON to `path` (creating parent directories).
    pub fn write_to(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, self.to_json())
    }
}

/// One action of the fake agent.
///
/// Externally tagged: every step is a JSON object with exactly one key, e.g.
/// `{"print": "hi"}`, `{"exit": 3}`, `{"hang": null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// `{"write": {"path": "a.txt", "content": "..."}}`: create or overwrite
    /// the file, creating parent directories.
    Write { path: PathBuf, content: String },
    /// `{"append": {"path": "a.txt", "content": "..."}}`: append, creating
    /// the file (and parent directories) if missing.
    Append { path: PathBuf, content: String },
    /// `{"delete": "path"}`: remove a file or a directory recursively; a
    /// missing path is not an error (default steps repeat every call).
    Delete(PathBuf),
    /// `{"print": "text"}`: a stdout line (newline appended), flushed.
    Print(String),
    /// `{"print_raw": "text"}`: stdout text without a newline, flushed.
    PrintRaw(String),
    /// `{"stderr": "text"}`: a stderr line (newline appended).
    Stderr(String),
    /// `{"echo_prompt": null}` (or `{"echo_prompt": {}}`): print the prompt
    /// received verbatim to stdout.
    #[serde(serialize_with = "ser_unit", deserialize_with = "de_unit")]
    EchoPrompt,
    /// `{"claude_init": {"model": "claude-sonnet-4-5"}}`: Claude Code
    /// stream-json `system`/`init` line.
    ClaudeInit(ClaudeInit),
    /// `{"claude_text": "text"}`: stream-json assistant line with a text block.
    ClaudeText(String),
    /// `{"claude_tool_use": {"name": "Bash", "input": {"command": "ls"}}}`:
    /// stream-json assistant line with a tool_use block.
    ClaudeToolUse(ClaudeToolUse),
    /// `{"claude_result": {...}}`: the final stream-json `result` line.
    ClaudeResult(ClaudeResult),
    /// `{"claude_api_retry": {"status": 429, "error": "rate_limit"}}`:
    /// stream-json `system`/`api_retry` line.
    ClaudeApiRetry(ClaudeApiRetry),
    /// `{"sleep_ms": 100}`.
    SleepMs(u64),
    /// `{"hang": null}`: sleep forever.
    #[serde(serialize_with = "ser_unit", deserialize_with = "de_unit")]
    Hang,
    /// `{"ignore_sigterm": null}`: SIGTERM is ignored from now on.
    #[serde(serialize_with = "ser_unit", deserialize_with = "de_unit")]
    IgnoreSigterm,
    /// `{"spawn_grandchild": {"pid_file": "gc.pid", "ignore_sigterm": true,
    /// "hold_stdout": true}}`: spawn a sleeping grandchild (same process
    /// group) that writes its pid to `pid_file`.
    SpawnGrandchild(SpawnGrandchild),
    /// `{"pid_file": "agent.pid"}`: write own pid atomically.
    PidFile(PathBuf),
    /// `{"timestamp": "t.txt"}`: append the wall-clock time (nanoseconds since the Unix epoch)
    /// as a line, so benchmarks can measure when the agent started.
    Timestamp(PathBuf),
    /// `{"wait_for_file": {"path": "go", "timeout_ms": 10000}}`: block until
    /// the file exists; on timeout exit 70.
    WaitForFile(WaitForFile),
    /// `{"print_bytes": {"bytes": 1000000000, "line_len": 100}}`: flood
    /// stdout with exactly `bytes` bytes in lines of `line_len` bytes.
    PrintBytes(PrintBytes),
    /// `{"env_to_file": {"path": "env.json", "vars": ["RALPH_RUN_ID"]}}`:
    /// write a JSON object var -> value (null when unset).
    EnvToFile(EnvToFile),
    /// `{"shell": "rm -f .ralph/ralph.db*"}`: run the command with `sh -c` in the agent's
    /// working directory, as an agent's shell tool would; its output goes to the agent's
    /// stderr, and a failure does not stop the script (a hostile agent tries the next thing).
    Shell(String),
    /// `{"exit": 3}`: flush and exit with that code.
    Exit(i32),
    /// `{"kill_self": 9}`: raise that signal on the agent itself.
    KillSelf(i32),
}

/// Payload-less steps serialise as `{"name": null}`, so every step is a
/// one-key object, the shape hand-written scripts use.
fn ser_unit<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_unit()
}

/// Accepts `null` or `{}` as the payload of a payload-less step: both read
/// naturally in hand-written JSON.
fn de_unit<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    struct UnitVisitor;
    impl<'de> serde::de::Visitor<'de> for UnitVisitor {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("null or {}")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            match map.next_key::<String>()? {
                None => Ok(()),
                Some(key) => Err(serde::de::Error::custom(format!(
                    "unexpected field `{key}`: this step takes no arguments"
                ))),
            }
        }
    }
    deserializer.deserialize_any(UnitVisitor)
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Payload of [`Step::ClaudeInit`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaudeInit {
    /// Model name; default `claude-sonnet-4-5`. Also becomes the default
    /// model of later assistant/result lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Session id used by this and all later stream-json lines; default a
    /// random UUID per process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `permissionMode`; default `bypassPermissions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
}

/// Payload of [`Step::ClaudeToolUse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaudeToolUse {
    /// Tool name, e.g. `Bash`, `Write`.
    pub name: String,
    /// Tool input object; default `{}`.
    #[serde(default = "empty_object")]
    pub input: Value,
    /// If set, a `user` line with the matching `tool_result` block follows,
    /// as real Claude Code prints after running the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// `is_error` of that tool_result.
    #[serde(default, skip_serializing_if = "is_false")]
    pub result_is_error: bool,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl ClaudeToolUse {
    /// A tool_use block without a following tool_result line.
    pub fn new(name: impl Into<String>, input: Value) -> Self {
        Self {
            name: name.into(),
            input,
            result: None,
            result_is_error: false,
        }
    }

    /// Adds the `user` tool_result line that follows the tool call.
    #[must_use]
    pub fn with_result(mut self, content: impl Into<String>, is_error: bool) -> Self {
        self.result = Some(content.into());
        self.result_is_error = is_error;
        self
    }
}

/// Payload of [`Step::ClaudeResult`]; every field is optional and defaults
/// to a successful, free, zero-token result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaudeResult {
    /// `result` text. When absent: `""` for `success`, omitted otherwise (as
    /// in real `error_max_turns` results).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `total_cost_usd` (and the model's `costUSD`).
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub cost_usd: f64,
    #[serde(skip_serializing_if = "is_zero")]
    pub input_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub output_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub is_error: bool,
    /// HTTP status of the failing API call (e.g. 429), `null` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_error_status: Option<u16>,
    /// `subtype`; default `success` (real values include `error_max_turns`,
    /// `error_during_execution`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// Raw `permission_denials` entries, e.g.
    /// `{"tool_name":"Write","tool_use_id":"toolu_1","tool_input":{}}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permission_denials: Vec<Value>,
    /// Key of `modelUsage`; default the `claude_init` model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `num_turns`; default the number of assistant lines printed (min 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_turns: Option<u32>,
    /// `duration_ms`; default the agent's real elapsed time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `stop_reason`; default `end_turn` (`stop_sequence` when `is_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// `terminal_reason`; default `completed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_reason: Option<String>,
    /// `errors` array (e.g. `["Reached maximum number of turns (1)"]`);
    /// omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

impl ClaudeResult {
    /// A successful result with this final text.
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// An `is_error` result with this text, e.g. an API error message.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            is_error: true,
            ..Self::default()
        }
    }

    #[must_use]
    pub fn cost_usd(mut self, cost: f64) -> Self {
        self.cost_usd = cost;
        self
    }

    /// Sets input and output token counts.
    #[must_use]
    pub fn tokens(mut self, input: u64, output: u64) -> Self {
        self.input_tokens = input;
        self.output_tokens = output;
        self
    }

    /// Sets cache read and cache creation token counts.
    #[must_use]
    pub fn cache_tokens(mut self, read: u64, creation: u64) -> Self {
        self.cache_read_input_tokens = read;
        self.cache_creation_input_tokens = creation;
        self
    }

    #[must_use]
    pub fn api_error_status(mut self, status: u16) -> Self {
        self.api_error_status = Some(status);
        self
    }

    #[must_use]
    pub fn subtype(mut self, subtype: impl Into<String>) -> Self {
        self.subtype = Some(subtype.into());
        self
    }

    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    #[must_use]
    pub fn num_turns(mut self, turns: u32) -> Self {
        self.num_turns = Some(turns);
        self
    }

    /// Adds a `permission_denials` entry for this tool call.
    #[must_use]
    pub fn permission_denial(mut self, tool_name: &str, tool_use_id: &str, input: Value) -> Self {
        self.permission_denials.push(serde_json::json!({
            "tool_name": tool_name,
            "tool_use_id": tool_use_id,
            "tool_input": input,
        }));
        self
    }
}

impl From<&str> for ClaudeResult {
    fn from(text: &str) -> Self {
        Self::success(text)
    }
}

impl From<String> for ClaudeResult {
    fn from(text: String) -> Self {
        Self::success(text)
    }
}

/// Payload of [`Step::ClaudeApiRetry`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaudeApiRetry {
    /// `error_status`; default 429.
    pub status: u16,
    /// `error`; default `rate_limit`.
    pub error: String,
    /// `attempt`; default 1.
    pub attempt: u32,
    /// `max_retries`; default 10.
    pub max_retries: u32,
    /// `retry_delay_ms`; default 1000.
    pub retry_delay_ms: u64,
}

impl Default for ClaudeApiRetry {
    fn default() -> Self {
        Self {
            status: 429,
            error: String::from("rate_limit"),
            attempt: 1,
            max_retries: 10,
            retry_delay_ms: 1000,
        }
    }
}

/// Payload of [`Step::SpawnGrandchild`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnGrandchild {
    /// Where the grandchild writes its pid (atomically). The agent removes a
    /// stale file first and only continues once the grandchild wrote it, so
    /// the file exists (and SIGTERM is already ignored, if asked) as soon as
    /// the agent has moved on.
    pub pid_file: PathBuf,
    /// The grandchild ignores SIGTERM.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_sigterm: bool,
    /// The grandchild inherits the agent's stdout/stderr and so keeps the
    /// pipes open after the agent exits; otherwise they are /dev/null.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hold_stdout: bool,
}

impl SpawnGrandchild {
    /// A grandchild that neither ignores SIGTERM nor holds stdout.
    pub fn new(pid_file: impl Into<PathBuf>) -> Self {
        Self {
            pid_file: pid_file.into(),
            ignore_sigterm: false,
            hold_stdout: false,
        }
    }

    #[must_use]
    pub fn ignore_sigterm(mut self) -> Self {
        self.ignore_sigterm = true;
        self
    }

    #[must_use]
    pub fn hold_stdout(mut self) -> Self {
        self.hold_stdout = true;
        self
    }
}

/// Payload of [`Step::WaitForFile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitForFile {
    pub path: PathBuf,
    /// Default 10000.
    #[serde(default = "default_wait_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_wait_timeout_ms() -> u64 {
    10_000
}

/// Payload of [`Step::PrintBytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintBytes {
    /// Exact number of bytes written (the last line may be cut short).
    pub bytes: u64,
    /// Bytes per line including the newline; default 100, must be >= 1.
    #[serde(default = "default_line_len")]
    pub line_len: usize,
}

fn default_line_len() -> usize {
    100
}

/// Payload of [`Step::EnvToFile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvToFile {
    pub path: PathBuf,
    pub vars: Vec<String>,
}

impl Step {
    pub fn write(path: impl Into<PathBuf>, content: impl Into<String>) -> Self {
        Self::Write {
            path: path.into(),
            content: content.into(),
        }
    }

    pub fn append(path: impl Into<PathBuf>, content: impl Into<String>) -> Self {
        Self::Append {
            path: path.into(),
            content: content.into(),
        }
    }

    pub fn delete(path: impl Into<PathBuf>) -> Self {
        Self::Delete(path.into())
    }

    pub fn print(text: impl Into<String>) -> Self {
        Self::Print(text.into())
    }

    pub fn print_raw(text: impl Into<String>) -> Self {
        Self::PrintRaw(text.into())
    }

    pub fn stderr(text: impl Into<String>) -> Self {
        Self::Stderr(text.into())
    }

    pub fn echo_prompt() -> Self {
        Self::EchoPrompt
    }

    /// `system`/`init` line for this model.
    pub fn claude_init(model: impl Into<String>) -> Self {
        Self::ClaudeInit(ClaudeInit {
            model: Some(model.into()),
            ..ClaudeInit::default()
        })
    }

    pub fn claude_text(text: impl Into<String>) -> Self {
        Self::ClaudeText(text.into())
    }

    /// Assistant tool_use line, e.g.
    /// `Step::claude_tool_use("Bash", json!({"command": "ls"}))`.
    pub fn claude_tool_use(name: impl Into<String>, input: Value) -> Self {
        Self::ClaudeToolUse(ClaudeToolUse::new(name, input))
    }

    /// Final `result` line: `Step::claude_result("LOOP_COMPLETE")` or
    /// `Step::claude_result(ClaudeResult::success("done").cost_usd(0.01))`.
    pub fn claude_result(result: impl Into<ClaudeResult>) -> Self {
        Self::ClaudeResult(result.into())
    }

    /// `system`/`api_retry` line with this HTTP status and error kind.
    pub fn claude_api_retry(status: u16, error: impl Into<String>) -> Self {
        Self::ClaudeApiRetry(ClaudeApiRetry {
            status,
            error: error.into(),
            ..ClaudeApiRetry::default()
        })
    }

    pub fn sleep_ms(ms: u64) -> Self {
        Self::SleepMs(ms)
    }

    pub fn shell(command: impl Into<String>) -> Self {
        Self::Shell(command.into())
    }

    pub fn hang() -> Self {
        Self::Hang
    }

    pub fn ignore_sigterm() -> Self {
        Self::IgnoreSigterm
    }

    /// E.g. `Step::spawn_grandchild(SpawnGrandchild::new("gc.pid").hold_stdout())`.
    pub fn spawn_grandchild(spec: SpawnGrandchild) -> Self {
        Self::SpawnGrandchild(spec)
    }

    pub fn pid_file(path: impl Into<PathBuf>) -> Self {
        Self::PidFile(path.into())
    }

    pub fn timestamp(path: impl Into<PathBuf>) -> Self {
        Self::Timestamp(path.into())
    }

    pub fn wait_for_file(path: impl Into<PathBuf>, timeout_ms: u64) -> Self {
        Self::WaitForFile(WaitForFile {
            path: path.into(),
            timeout_ms,
        })
    }

    pub fn print_bytes(bytes: u64, line_len: usize) -> Self {
        Self::PrintBytes(PrintBytes { bytes, line_len })
    }

    pub fn env_to_file(path: impl Into<PathBuf>, vars: &[&str]) -> Self {
        Self::EnvToFile(EnvToFile {
            path: path.into(),
            vars: vars.iter().map(|v| (*v).to_owned()).collect(),
        })
    }

    pub fn exit(code: i32) -> Self {
        Self::Exit(code)
    }

    pub fn kill_self(signal: i32) -> Self {
        Self::KillSelf(signal)
    }
}

impl From<ClaudeResult> for Step {
    fn from(r: ClaudeResult) -> Self {
        Self::ClaudeResult(r)
    }
}

impl From<SpawnGrandchild> for Step {
    fn from(s: SpawnGrandchild) -> Self {
        Self::SpawnGrandchild(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all_steps() -> Vec<Step> {
        vec![
            Step::write("a/b.txt", "x"),
            Step::append("a/b.txt", "y"),
            Step::delete("a"),
            Step::print("p"),
            Step::print_raw("r"),
            Step::stderr("e"),
            Step::echo_prompt(),
            Step::claude_init("claude-sonnet-4-5"),
            Step::claude_text("t"),
            Step::ClaudeToolUse(
                ClaudeToolUse::new("Bash", json!({"command": "ls"})).with_result("ok", false),
            ),
            Step::claude_result("done"),
            Step::claude_result(
                ClaudeResult::error("API Error")
                    .api_error_status(429)
                    .cost_usd(0.5)
                    .tokens(1, 2)
                    .cache_tokens(3, 4)
                    .permission_denial("Write", "toolu_1", json!({})),
            ),
            Step::claude_api_retry(529, "overloaded"),
            Step::sleep_ms(5),
            Step::hang(),
            Step::ignore_sigterm(),
            Step::spawn_grandchild(
                SpawnGrandchild::new("gc.pid")
                    .ignore_sigterm()
                    .hold_stdout(),
            ),
            Step::pid_file("agent.pid"),
            Step::wait_for_file("go", 100),
            Step::print_bytes(10, 3),
            Step::env_to_file("env.json", &["A", "B"]),
            Step::exit(3),
            Step::kill_self(9),
        ]
    }

    #[test]
    fn every_step_round_trips_as_one_key_object() {
        let script = Script::new()
            .default_steps(all_steps())
            .on_call(3, vec![Step::exit(1)])
            .log("calls.log")
            .record("rec");
        let text = script.to_json();
        let value: Value = serde_json::from_str(&text).unwrap();
        for step in value["default"].as_array().unwrap() {
            assert_eq!(step.as_object().unwrap().len(), 1, "{step}");
        }
        assert_eq!(value["calls"]["3"], json!([{"exit": 1}]));
        assert_eq!(Script::from_json(&text).unwrap(), script);
    }

    #[test]
    fn hand_written_shapes_parse() {
        let script = Script::from_json(
            r#"{"default": [
                {"echo_prompt": null}, {"echo_prompt": {}}, {"hang": null},
                {"ignore_sigterm": {}}, {"claude_init": {}}, {"claude_result": {}},
                {"claude_api_retry": {"status": 429, "error": "rate_limit"}},
                {"spawn_grandchild": {"pid_file": "gc.pid", "ignore_sigterm": true, "hold_stdout": true}},
                {"print_bytes": {"bytes": 5}}, {"wait_for_file": {"path": "go"}}
            ], "calls": {"2": []}}"#,
        )
        .unwrap();
        assert_eq!(script.default[0], Step::EchoPrompt);
        assert_eq!(script.default[1], Step::EchoPrompt);
        assert_eq!(
            script.default[5],
            Step::ClaudeResult(ClaudeResult::default())
        );
        assert_eq!(script.default[8], Step::print_bytes(5, 100));
        assert_eq!(script.default[9], Step::wait_for_file("go", 10_000));
        assert!(script.steps_for(2).is_empty());
        assert_eq!(script.steps_for(1).len(), 10);
    }

    #[test]
    fn unknown_steps_and_fields_are_rejected() {
        assert!(Script::from_json(r#"{"default": [{"prnt": "x"}]}"#).is_err());
        assert!(Script::from_json(r#"{"default": [{"print": "x", "exit": 1}]}"#).is_err());
        assert!(Script::from_json(
            r#"{"default": [{"write": {"path": "a", "content": "", "x": 1}}]}"#
        )
        .is_err());
        assert!(Script::from_json(r#"{"default": [{"hang": {"x": 1}}]}"#).is_err());
        assert!(Script::from_json(r#"{"defaults": []}"#).is_err());
    }
}
