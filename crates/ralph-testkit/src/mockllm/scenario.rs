//! Scenarios: what the scripted model answers, step by step.
//!
//! A scenario is a list of [`Step`]s. The server is stateless: the step that
//! answers a request is the one whose index equals the number of tool calls
//! the assistant already made in the history the CLI re-sends (every agent
//! CLI re-sends the whole conversation each turn). So one server can serve
//! any number of parallel sessions, and a retried request gets the same
//! answer as the first attempt.
//!
//! JSON form (one file per scenario for `mock-llm --scenario-dir`, the file
//! stem being the scenario's name):
//!
//! ```json
//! {"steps": [
//!   {"action": "write_file", "path": "hello.txt", "content": "hi\n",
//!    "usage": {"input_tokens": 1200, "output_tokens": 80}},
//!   {"action": "shell", "command": "cat hello.txt"},
//!   {"action": "tool", "name": "Read", "args": {"file_path": "hello.txt"}},
//!   {"action": "error", "kind": "rate_limit", "headers": {"retry-after": "2"}},
//!   {"action": "text", "text": "done. LOOP_COMPLETE"}
//! ]}
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The scenario used for requests without a `/s/<scenario>` prefix.
pub const DEFAULT_SCENARIO: &str = "write_and_finish";

/// What `write_and_finish` writes into `hello.txt`.
pub const HELLO_CONTENT: &str = "hello from the scripted LLM\n";

/// The command `write_and_finish` runs after writing the file.
pub const HELLO_COMMAND: &str = "cat hello.txt && echo SHELL_OK";

/// The final answer of `write_and_finish`.
pub const HELLO_FINAL_TEXT: &str = "I created hello.txt and verified it.\nLOOP_COMPLETE";

/// A scripted conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Answered in order; see the module docs for how the step is chosen.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// A scenario with these steps.
    pub fn new(steps: Vec<Step>) -> Self {
        Self { steps }
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail, but keep the
        // signature infallible without unwrap.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{\"steps\":[]}"))
    }

    /// The built-in scenarios, by name.
    ///
    /// * `write_and_finish`: write `hello.txt` ([`HELLO_CONTENT`]), run
    ///   [`HELLO_COMMAND`], answer [`HELLO_FINAL_TEXT`]; each step reports
    ///   [`Usage::reference`].
    /// * `text_only`: one final answer containing `LOOP_COMPLETE`.
    /// * `rate_limit`, `quota`, `usage_limit`, `auth_error`, `overloaded`,
    ///   `server_error`: every request fails with that [`ErrorKind`]
    ///   (rate_limit and quota carry `retry-after: 1`, as the vendors do).
    pub fn builtins() -> HashMap<String, Scenario> {
        let reference = Usage::reference();
        let mut map = HashMap::new();
        map.insert(
            DEFAULT_SCENARIO.to_string(),
            Scenario::new(vec![
                Step::write_file("hello.txt", HELLO_CONTENT).with_usage(reference),
                Step::shell(HELLO_COMMAND).with_usage(reference),
                Step::text(HELLO_FINAL_TEXT).with_usage(reference),
            ]),
        );
        map.insert(
            "text_only".to_string(),
            Scenario::new(vec![
                Step::text("Nothing to change here.\nLOOP_COMPLETE").with_usage(reference)
            ]),
        );
        let one_second = BTreeMap::from([("retry-after".to_string(), "1".to_string())]);
        let errors = [
            ("rate_limit", ErrorKind::RateLimit, one_second.clone()),
            ("quota", ErrorKind::Quota, one_second),
            ("usage_limit", ErrorKind::UsageLimit, BTreeMap::new()),
            ("auth_error", ErrorKind::Auth, BTreeMap::new()),
            ("overloaded", ErrorKind::Overloaded, BTreeMap::new()),
            ("server_error", ErrorKind::Server, BTreeMap::new()),
        ];
        for (name, kind, headers) in errors {
            let spec = ErrorSpec {
                headers,
                ..ErrorSpec::new(kind)
            };
            map.insert(
                name.to_string(),
                Scenario::new(vec![Step::new(Action::Error(spec))]),
            );
        }
        map
    }

    /// Reads every `*.json` file of `dir` as a scenario named after the
    /// file stem.
    pub fn load_dir(dir: &Path) -> std::io::Result<HashMap<String, Scenario>> {
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let text = std::fs::read_to_string(&path)?;
            let scenario = Scenario::from_json(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            map.insert(name.to_string(), scenario);
        }
        Ok(map)
    }
}

/// One scripted model answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What the model does.
    #[serde(flatten)]
    pub action: Action,
    /// Token usage reported with this answer (zeros if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl Step {
    /// A step without usage.
    pub fn new(action: Action) -> Self {
        Self {
            action,
            usage: None,
        }
    }

    /// Create a file with the CLI's own write tool (relative paths are
    /// resolved against the working directory the CLI announces).
    pub fn write_file(path: impl Into<String>, content: impl Into<String>) -> Self {
        Self::new(Action::WriteFile {
            path: path.into(),
            content: content.into(),
        })
    }

    /// Run a shell command with the CLI's own shell tool.
    pub fn shell(command: impl Into<String>) -> Self {
        Self::new(Action::Shell {
            command: command.into(),
        })
    }

    /// Call exactly this tool with these arguments (a string for a freeform
    /// tool such as Codex's `apply_patch`).
    pub fn tool(name: impl Into<String>, args: Value) -> Self {
        Self::new(Action::Tool {
            name: name.into(),
            args,
        })
    }

    /// A final answer.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(Action::Text { text: text.into() })
    }

    /// An HTTP error with the kind's default status, body and no extra
    /// headers.
    pub fn error(kind: ErrorKind) -> Self {
        Self::new(Action::Error(ErrorSpec::new(kind)))
    }

    /// The same step reporting `usage`.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }
}

/// The abstract action of a step; mapped onto whatever tools the CLI offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Claude `Write{file_path,content}`, Gemini `write_file{file_path,content}`,
    /// opencode `write{filePath,content}`, Copilot `create{path,file_text}`,
    /// Codex freeform `apply_patch` (`*** Add File:`), else a shell heredoc.
    WriteFile { path: String, content: String },
    /// Claude `Bash`, Gemini `run_shell_command`, opencode/Copilot `bash`,
    /// Codex `exec_command{cmd}` (or `shell_command` / `shell{command:[..]}`).
    Shell { command: String },
    /// This exact tool and arguments.
    Tool {
        name: String,
        #[serde(default)]
        args: Value,
    },
    /// Final answer text.
    Text { text: String },
    /// HTTP error in the dialect's own envelope.
    Error(ErrorSpec),
}

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorSpec {
    /// Which vendor error to imitate.
    pub kind: ErrorKind,
    /// Overrides the kind's usual status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Overrides the message inside the vendor envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Replaces the whole body: a string is sent verbatim, anything else as
    /// JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Extra response headers, e.g. `retry-after`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl ErrorSpec {
    /// The kind's defaults.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            status: None,
            message: None,
            body: None,
            headers: BTreeMap::new(),
        }
    }
}

/// Vendor error families. Default statuses: rate_limit/quota/usage_limit
/// 429, auth 401, overloaded 529 (Anthropic; the OpenAI and Gemini dialects
/// use their own 503), server 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Per-minute rate limit (429, retryable).
    RateLimit,
    /// Out of credit (429 `insufficient_quota`; Gemini daily `QuotaFailure`).
    Quota,
    /// Subscription usage limit with a reset time (Codex
    /// `usage_limit_reached` with `resets_at`; Anthropic 429 "usage limits").
    UsageLimit,
    /// Bad API key (401).
    Auth,
    /// Server overloaded (529 / 503).
    Overloaded,
    /// Internal server error (500).
    Server,
}

/// Token counts of one answer, in Anthropic's terms: `input_tokens` is the
/// uncached input. Dialects translate: OpenAI `prompt_tokens` /
/// Responses `input_tokens` / Gemini `promptTokenCount` =
/// `input_tokens + cache_read_input_tokens`, with the cached part in their
/// cached-token field. Only Anthropic can report cache writes
/// (`cache_creation_input_tokens`); the other dialects have no such field,
/// so it is left out of their numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    /// Usage with all four counts.
    pub fn new(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> Self {
        Self {
            input_tokens: input,
            output_tokens: output,
            cache_read_input_tokens: cache_read,
            cache_creation_input_tokens: cache_creation,
        }
    }

    /// 1200 in / 80 out / 300 cache read / 100 cache write: what the
    /// built-in scenarios report per step (the numbers of the reference
    /// transcripts).
    pub fn reference() -> Self {
        Self::new(1200, 80, 300, 100)
    }

    /// Field-wise sum.
    #[must_use]
    pub fn plus(self, other: Usage) -> Self {
        Self::new(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
        )
    }

    /// Input including cache reads: the OpenAI and Gemini notion of prompt
    /// tokens.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_input_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_form_round_trips() {
        let text = r#"{"steps":[
            {"action":"shell","command":"ls","usage":{"input_tokens":5,"output_tokens":2}},
            {"action":"write_file","path":"a b.txt","content":"x"},
            {"action":"tool","name":"Read","args":{"file_path":"x"}},
            {"action":"error","kind":"rate_limit","status":429,"headers":{"retry-after":"3"}},
            {"action":"text","text":"done"}]}"#;
        let s = Scenario::from_json(text).unwrap();
        assert_eq!(s.steps.len(), 5);
        assert_eq!(s.steps[0].usage, Some(Usage::new(5, 2, 0, 0)));
        assert_eq!(s.steps[2], Step::tool("Read", json!({"file_path": "x"})),);
        match &s.steps[3].action {
            Action::Error(e) => {
                assert_eq!(e.kind, ErrorKind::RateLimit);
                assert_eq!(e.headers["retry-after"], "3");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Scenario::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn builtins_are_complete() {
        let b = Scenario::builtins();
        for name in [
            "write_and_finish",
            "text_only",
            "rate_limit",
            "quota",
            "usage_limit",
            "auth_error",
            "overloaded",
            "server_error",
        ] {
            assert!(b.contains_key(name), "{name}");
        }
    }
}
