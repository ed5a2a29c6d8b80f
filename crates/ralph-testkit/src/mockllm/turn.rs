//! Reading a model request (any dialect) into a dialect-neutral [`Turn`],
//! and deciding the answer ([`Plan`]) from the scenario.

use serde_json::{json, Map, Value};

use super::scenario::{Action, ErrorSpec, Scenario, Usage};
use super::schema;

/// The wire API a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    Chat,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
    /// Gemini (`/v1beta/models/{m}:generateContent` and friends).
    Gemini,
}

impl Dialect {
    /// Short name used in the request log.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Anthropic => "anthropic",
            Dialect::Chat => "chat",
            Dialect::Responses => "responses",
            Dialect::Gemini => "gemini",
        }
    }
}

/// A tool the CLI offered to the model.
#[derive(Debug, Clone)]
pub(crate) struct OfferedTool {
    pub name: String,
    /// A freeform (`custom`) tool takes raw text, not JSON arguments.
    pub freeform: bool,
    /// The JSON schema of the arguments (`Null` when none was given).
    pub schema: Value,
}

impl OfferedTool {
    fn has_property(&self, prop: &str) -> bool {
        self.schema
            .get("properties")
            .and_then(|p| p.get(prop))
            .is_some()
    }

    fn property_type(&self, prop: &str) -> Option<String> {
        let ty = self.schema.get("properties")?.get(prop)?.get("type")?;
        ty.as_str().map(str::to_ascii_lowercase)
    }
}

/// Whether the request demands a JSON answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonWanted {
    No,
    /// Any JSON object (`json_object`, `application/json`).
    Any,
    /// An instance of this schema.
    Schema(Value),
}

/// What matters about one request, whatever its dialect.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    pub model: String,
    pub stream: bool,
    /// Chat Completions `stream_options.include_usage`.
    pub include_usage: bool,
    pub tools: Vec<OfferedTool>,
    /// Tool calls the assistant already made in the re-sent history: the
    /// index of the step to answer.
    pub prior_tool_calls: usize,
    /// System text first, then message texts in order (tool results left
    /// out): where the working directory is looked up.
    pub texts: Vec<String>,
    pub json: JsonWanted,
}

impl Turn {
    pub fn tool(&self, name: &str) -> Option<&OfferedTool> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Parses a request body of `dialect`. `path_model` is the model named in
    /// the URL (Gemini).
    pub fn parse(dialect: Dialect, body: &Value, path_model: Option<&str>) -> Turn {
        let model = path_model
            .map(str::to_string)
            .or_else(|| {
                body.get("model")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "mock-model".to_string());
        let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let mut turn = Turn {
            model,
            stream,
            include_usage: false,
            tools: Vec::new(),
            prior_tool_calls: 0,
            texts: Vec::new(),
            json: JsonWanted::No,
        };
        match dialect {
            Dialect::Anthropic => parse_anthropic(body, &mut turn),
            Dialect::Chat => parse_chat(body, &mut turn),
            Dialect::Responses => parse_responses(body, &mut turn),
            Dialect::Gemini => parse_gemini(body, &mut turn),
        }
        turn
    }

    /// The working directory the CLI announced in its prompt, if any.
    pub fn cwd(&self) -> Option<String> {
        self.texts.iter().find_map(|t| find_cwd(t))
    }
}

fn push_text(out: &mut Vec<String>, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str) {
        out.push(s.to_string());
    }
}

/// Text of a content value that is either a string or a list of parts with
/// a `text` field (every dialect uses one of the two).
fn push_content(out: &mut Vec<String>, content: Option<&Value>) {
    match content {
        Some(Value::String(s)) => out.push(s.clone()),
        Some(Value::Array(parts)) => {
            for part in parts {
                let ty = part.get("type").and_then(Value::as_str).unwrap_or("text");
                if matches!(ty, "text" | "input_text" | "output_text") {
                    push_text(out, part.get("text"));
                }
            }
        }
        _ => {}
    }
}

fn parse_anthropic(body: &Value, turn: &mut Turn) {
    push_content(&mut turn.texts, body.get("system"));
    for msg in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push_content(&mut turn.texts, msg.get("content"));
        if msg.get("role").and_then(Value::as_str) == Some("assistant") {
            if let Some(blocks) = msg.get("content").and_then(Value::as_array) {
                turn.prior_tool_calls += blocks
                    .iter()
                    .filter(|b| {
                        matches!(
                            b.get("type").and_then(Value::as_str),
                            Some("tool_use" | "server_tool_use")
                        )
                    })
                    .count();
            }
        }
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = tool.get("name").and_then(Value::as_str) {
            turn.tools.push(OfferedTool {
                name: name.to_string(),
                freeform: false,
                schema: tool.get("input_schema").cloned().unwrap_or(Value::Null),
            });
        }
    }
    // Structured outputs: `output_format` (beta) or `output_config.format`.
    let format = body
        .get("output_format")
        .or_else(|| body.get("output_config").and_then(|c| c.get("format")));
    if let Some(format) = format {
        turn.json = match format.get("schema") {
            Some(schema) => JsonWanted::Schema(schema.clone()),
            None => JsonWanted::Any,
        };
    }
}

fn parse_chat(body: &Value, turn: &mut Turn) {
    turn.include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for msg in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "tool" && role != "function" {
            push_content(&mut turn.texts, msg.get("content"));
        }
        if role == "assistant" {
            turn.prior_tool_calls += msg
                .get("tool_calls")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if msg.get("function_call").is_some_and(|f| !f.is_null()) {
                turn.prior_tool_calls += 1;
            }
        }
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (def, freeform) = match tool.get("type").and_then(Value::as_str) {
            Some("custom") => (tool.get("custom"), true),
            _ => (tool.get("function"), false),
        };
        if let Some(name) = def.and_then(|d| d.get("name")).and_then(Value::as_str) {
            turn.tools.push(OfferedTool {
                name: name.to_string(),
                freeform,
                schema: def
                    .and_then(|d| d.get("parameters"))
                    .cloned()
                    .unwrap_or(Value::Null),
            });
        }
    }
    if let Some(format) = body.get("response_format") {
        turn.json = match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => match format.pointer("/json_schema/schema") {
                Some(schema) => JsonWanted::Schema(schema.clone()),
                None => JsonWanted::Any,
            },
            Some("json_object") => JsonWanted::Any,
            _ => JsonWanted::No,
        };
    }
}

fn parse_responses(body: &Value, turn: &mut Turn) {
    push_text(&mut turn.texts, body.get("instructions"));
    match body.get("input") {
        Some(Value::String(s)) => turn.texts.push(s.clone()),
        Some(Value::Array(items)) => {
            for item in items {
                let ty = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                match ty {
                    "message" => push_content(&mut turn.texts, item.get("content")),
                    "function_call" | "custom_tool_call" | "local_shell_call" => {
                        turn.prior_tool_calls += 1;
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let freeform = tool.get("type").and_then(Value::as_str) == Some("custom");
        if let Some(name) = tool.get("name").and_then(Value::as_str) {
            turn.tools.push(OfferedTool {
                name: name.to_string(),
                freeform,
                schema: tool.get("parameters").cloned().unwrap_or(Value::Null),
            });
        }
    }
    if let Some(format) = body.pointer("/text/format") {
        turn.json = match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => match format.get("schema") {
                Some(schema) => JsonWanted::Schema(schema.clone()),
                None => JsonWanted::Any,
            },
            Some("json_object") => JsonWanted::Any,
            _ => JsonWanted::No,
        };
    }
}

fn parse_gemini(body: &Value, turn: &mut Turn) {
    let system = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"));
    match system {
        Some(Value::String(s)) => turn.texts.push(s.clone()),
        Some(v) => push_gemini_parts(&mut turn.texts, v.get("parts")),
        None => {}
    }
    for content in body
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push_gemini_parts(&mut turn.texts, content.get("parts"));
        if content.get("role").and_then(Value::as_str) == Some("model") {
            turn.prior_tool_calls +=
                content
                    .get("parts")
                    .and_then(Value::as_array)
                    .map_or(0, |parts| {
                        parts
                            .iter()
                            .filter(|p| p.get("functionCall").is_some())
                            .count()
                    });
        }
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for decl in tool
            .get("functionDeclarations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = decl.get("name").and_then(Value::as_str) {
                let schema = decl
                    .get("parametersJsonSchema")
                    .or_else(|| decl.get("parameters"))
                    .cloned()
                    .unwrap_or(Value::Null);
                turn.tools.push(OfferedTool {
                    name: name.to_string(),
                    freeform: false,
                    schema: lowercase_types(schema),
                });
            }
        }
    }
    let config = body.get("generationConfig");
    let schema = config.and_then(|c| {
        c.get("responseJsonSchema")
            .or_else(|| c.get("responseSchema"))
            .or_else(|| c.get("response_json_schema"))
    });
    turn.json = match schema {
        Some(schema) => JsonWanted::Schema(schema.clone()),
        None => match config
            .and_then(|c| c.get("responseMimeType"))
            .and_then(Value::as_str)
        {
            Some("application/json") => JsonWanted::Any,
            _ => JsonWanted::No,
        },
    };
}

fn push_gemini_parts(out: &mut Vec<String>, parts: Option<&Value>) {
    for part in parts.and_then(Value::as_array).into_iter().flatten() {
        push_text(out, part.get("text"));
    }
}

/// Gemini's OpenAPI-style schemas say `"type": "STRING"`; the argument
/// mapping compares lower-case JSON-schema types.
fn lowercase_types(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("type", Value::String(s)) => Value::String(s.to_ascii_lowercase()),
                        (_, v) => lowercase_types(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_types).collect()),
        other => other,
    }
}

/// Finds the working directory in one prompt text. Each CLI announces it
/// differently: Claude "Primary working directory: X", Copilot "Current
/// working directory: X", opencode "Working directory: X", Codex
/// `<cwd>X</cwd>`, Gemini "Workspace Directories:" followed by "  - X".
/// Paths may contain spaces, so a value runs to the end of its line.
pub(crate) fn find_cwd(text: &str) -> Option<String> {
    const LINE_MARKERS: [&str; 4] = [
        "Primary working directory: ",
        "Current working directory: ",
        "Working directory: ",
        "working directory: ",
    ];
    for marker in LINE_MARKERS {
        // Not just the first occurrence: prose such as "the working
        // directory: see below" may come before the real announcement.
        for (i, _) in text.match_indices(marker) {
            if let Some(path) = absolute_line(&text[i + marker.len()..]) {
                return Some(path);
            }
        }
    }
    if let Some(i) = text.find("<cwd>") {
        let rest = &text[i + "<cwd>".len()..];
        if let Some(end) = rest.find("</cwd>") {
            let path = rest[..end].trim();
            if path.starts_with('/') {
                return Some(path.to_string());
            }
        }
    }
    if let Some(i) = text.find("Workspace Directories:") {
        let rest = &text[i..];
        if let Some(line) = rest.lines().nth(1) {
            let item = line
                .trim_start()
                .trim_start_matches(['-', '*'])
                .trim_start();
            if let Some(path) = absolute_line(item) {
                return Some(path);
            }
        }
    }
    None
}

fn absolute_line(rest: &str) -> Option<String> {
    let line = rest.lines().next()?.trim_end();
    // A trailing backtick or quote comes from markdown around the value.
    let line = line.trim_matches(|c| c == '`' || c == '"');
    line.starts_with('/').then(|| line.to_string())
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// A final text answer.
    Text(String),
    /// A short text, then one tool call.
    Call { preface: String, call: Call },
    /// An HTTP error.
    Error(ErrorSpec),
}

/// A tool call to emit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub name: String,
    pub input: CallInput,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallInput {
    /// JSON arguments (function tools).
    Json(Value),
    /// Raw text (freeform tools such as Codex's `apply_patch`).
    Freeform(String),
}

/// The plan, the usage to report, and the step index used (`None` for side
/// requests and answers past the end of the script).
pub(crate) struct Decision {
    pub plan: Plan,
    pub usage: Usage,
    pub step: Option<usize>,
}

/// Short answer to tool-less side requests (titles, summaries).
pub(crate) const SIDE_ANSWER: &str = "Scripted mock session";

/// Decides the answer to `turn` from `scenario`.
pub(crate) fn decide(turn: &Turn, name: &str, scenario: &Scenario) -> Decision {
    let idx = turn.prior_tool_calls;
    let Some(step) = scenario.steps.get(idx) else {
        return Decision {
            plan: Plan::Text(format!(
                "MOCKLLM_END_OF_SCRIPT: scenario '{name}' has {} steps and all were used.",
                scenario.steps.len()
            )),
            usage: Usage::default(),
            step: None,
        };
    };
    // Errors apply to every request of the scenario (a rate-limited account
    // fails its title requests too).
    if let Action::Error(spec) = &step.action {
        return Decision {
            plan: Plan::Error(spec.clone()),
            usage: Usage::default(),
            step: Some(idx),
        };
    }
    // Requests that offer no tools are side calls (title generation, Gemini's
    // model router, summaries): answered without consuming a step and with
    // zero usage, so token accounting sees only the scripted steps.
    if turn.tools.is_empty() {
        return Decision {
            plan: Plan::Text(side_text(&turn.json)),
            usage: Usage::default(),
            step: None,
        };
    }
    let usage = step.usage.unwrap_or_default();
    let cwd = turn.cwd();
    let plan = match &step.action {
        Action::Text { text } => match &turn.json {
            JsonWanted::No => Plan::Text(text.clone()),
            json => Plan::Text(side_text(json)),
        },
        Action::WriteFile { path, content } => {
            let path = absolutize(path, cwd.as_deref());
            with_preface(idx, map_write(turn, &path, content), turn, "write_file")
        }
        Action::Shell { command } => with_preface(idx, map_shell(turn, command), turn, "shell"),
        Action::Tool { name, args } => {
            let call = turn.tool(name).map(|tool| Call {
                name: tool.name.clone(),
                input: match (tool.freeform, args) {
                    (true, Value::String(s)) => CallInput::Freeform(s.clone()),
                    (true, other) => CallInput::Freeform(other.to_string()),
                    (false, Value::Null) => CallInput::Json(Value::Object(Map::new())),
                    (false, other) => CallInput::Json(other.clone()),
                },
            });
            with_preface(idx, call, turn, &format!("tool:{name}"))
        }
        Action::Error(spec) => Plan::Error(spec.clone()),
    };
    Decision {
        plan,
        usage,
        step: Some(idx),
    }
}

fn side_text(json: &JsonWanted) -> String {
    match json {
        JsonWanted::No => SIDE_ANSWER.to_string(),
        JsonWanted::Any => "{}".to_string(),
        JsonWanted::Schema(schema) => schema::instance(schema).to_string(),
    }
}

fn with_preface(idx: usize, call: Option<Call>, turn: &Turn, action: &str) -> Plan {
    match call {
        Some(call) => Plan::Call {
            preface: format!("Step {}: calling {}.", idx + 1, call.name),
            call,
        },
        None => {
            let names: Vec<&str> = turn.tools.iter().map(|t| t.name.as_str()).collect();
            Plan::Text(format!(
                "MOCKLLM_NO_TOOL: cannot perform action '{action}' with the tools offered: {}",
                names.join(", ")
            ))
        }
    }
}

/// `path` joined to the announced cwd when relative (left relative when the
/// CLI announced none: every CLI resolves relative paths itself).
pub(crate) fn absolutize(path: &str, cwd: Option<&str>) -> String {
    match cwd {
        Some(cwd) if !path.starts_with('/') => {
            format!("{}/{}", cwd.trim_end_matches('/'), path)
        }
        _ => path.to_string(),
    }
}

/// Write tools by CLI, in the order tried, with their default argument names
/// (used when the tool's schema does not list properties).
const WRITE_TOOLS: [(&str, &str, &str); 5] = [
    ("Write", "file_path", "content"),
    ("write_file", "file_path", "content"),
    ("write", "filePath", "content"),
    ("create", "path", "file_text"),
    ("create_file", "path", "content"),
];

fn map_write(turn: &Turn, path: &str, content: &str) -> Option<Call> {
    for (name, path_key, content_key) in WRITE_TOOLS {
        let Some(tool) = turn.tool(name).filter(|t| !t.freeform) else {
            continue;
        };
        let path_key = ["file_path", "filePath", "path", "absolute_path"]
            .into_iter()
            .find(|k| tool.has_property(k))
            .unwrap_or(path_key);
        let content_key = ["content", "file_text", "contents", "text"]
            .into_iter()
            .find(|k| tool.has_property(k))
            .unwrap_or(content_key);
        let mut args = Map::new();
        args.insert(path_key.to_string(), json!(path));
        args.insert(content_key.to_string(), json!(content));
        return Some(Call {
            name: tool.name.clone(),
            input: CallInput::Json(Value::Object(args)),
        });
    }
    if let Some(tool) = turn.tool("apply_patch") {
        let patch = add_file_patch(path, content);
        return Some(Call {
            name: tool.name.clone(),
            input: if tool.freeform {
                CallInput::Freeform(patch)
            } else {
                CallInput::Json(json!({ "input": patch }))
            },
        });
    }
    // Last resort: let the shell write it (exact bytes, no added newline).
    map_shell(
        turn,
        &format!(
            "printf '%s' {} > {}",
            shell_quote(content),
            shell_quote(path)
        ),
    )
}

/// Codex's patch format: every content line prefixed with `+`.
pub(crate) fn add_file_patch(path: &str, content: &str) -> String {
    let mut patch = format!("*** Begin Patch\n*** Add File: {path}\n");
    for line in content.lines() {
        patch.push('+');
        patch.push_str(line);
        patch.push('\n');
    }
    patch.push_str("*** End Patch\n");
    patch
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Shell tools in the order tried: Codex's current and older names first
/// (Codex offers only one of them), then Claude, opencode/Copilot, Gemini.
const SHELL_TOOLS: [&str; 7] = [
    "exec_command",
    "shell_command",
    "shell",
    "Bash",
    "bash",
    "run_shell_command",
    "local_shell",
];

fn map_shell(turn: &Turn, command: &str) -> Option<Call> {
    let tool = SHELL_TOOLS
        .iter()
        .find_map(|name| turn.tool(name).filter(|t| !t.freeform))?;
    let mut args = Map::new();
    if tool.has_property("cmd") {
        args.insert("cmd".to_string(), json!(command));
    } else if tool.property_type("command").as_deref() == Some("array") {
        args.insert("command".to_string(), json!(["bash", "-lc", command]));
    } else {
        args.insert("command".to_string(), json!(command));
    }
    // opencode and Copilot require a description; the others accept one.
    if tool.has_property("description") {
        args.insert("description".to_string(), json!("Run scripted command"));
    }
    Some(Call {
        name: tool.name.clone(),
        input: CallInput::Json(Value::Object(args)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwd_markers_of_every_cli() {
        let cases = [
            (
                "env:\n - Primary working directory: /tmp/a b/proj\n - Is a git repo: no",
                "/tmp/a b/proj",
            ),
            ("* Current working directory: /w/x y\n* Git", "/w/x y"),
            (
                "<env>\n  Working directory: /srv/p q\n  Workspace root",
                "/srv/p q",
            ),
            ("<environment_context>\n  <cwd>/c d/e</cwd>\n", "/c d/e"),
            (
                "- **Workspace Directories:**\n  - /tmp/cap/proj dir\n- **Directory",
                "/tmp/cap/proj dir",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(find_cwd(text).as_deref(), Some(want), "{text}");
        }
        assert_eq!(find_cwd("no cwd here"), None);
        assert_eq!(find_cwd("working directory: relative/x"), None);
    }

    #[test]
    fn absolutize_joins_relative_paths_only() {
        assert_eq!(absolutize("a.txt", Some("/p q/")), "/p q/a.txt");
        assert_eq!(absolutize("/abs", Some("/p")), "/abs");
        assert_eq!(absolutize("a.txt", None), "a.txt");
    }

    #[test]
    fn patch_has_plus_lines() {
        assert_eq!(
            add_file_patch("/p/h.txt", "a\nb\n"),
            "*** Begin Patch\n*** Add File: /p/h.txt\n+a\n+b\n*** End Patch\n"
        );
    }
}
