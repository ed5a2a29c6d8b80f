//! The scripted model server, over raw HTTP/1.1 (no client library, so the
//! framing on the wire is what is tested): every dialect, SSE framing,
//! scenario prefixes, step derivation from history, error envelopes and
//! headers, JSON-schema synthesis, logging, and the `mock-llm` binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ralph_testkit::mockllm::{
    ErrorKind, ErrorSpec, MockServer, Options, Scenario, Step, Usage, HELLO_CONTENT,
};
use serde_json::{json, Value};

/// A parsed HTTP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
    chunked: bool,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// `(event name, data JSON)` of each SSE event; `[DONE]` as a string.
    fn events(&self) -> Vec<(Option<String>, Value)> {
        assert_eq!(
            self.header("content-type"),
            Some("text/event-stream"),
            "{self:?}"
        );
        let normalized = self.body.replace("\r\n", "\n");
        assert!(
            normalized.ends_with("\n\n"),
            "unterminated event: {:?}",
            self.body
        );
        normalized
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|event| {
                let mut name = None;
                let mut data = None;
                for line in event.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = Some(n.to_string());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = Some(if d == "[DONE]" {
                            Value::String(d.into())
                        } else {
                            serde_json::from_str(d).unwrap()
                        });
                    } else {
                        panic!("unexpected SSE line {line:?}");
                    }
                }
                (name, data.expect("event without data"))
            })
            .collect()
    }
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         X-Test: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let chunked = headers.get("transfer-encoding").map(String::as_str) == Some("chunked");
    let mut raw = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    } else {
        let n: usize = headers["content-length"].parse().unwrap();
        raw.resize(n, 0);
        reader.read_exact(&mut raw).unwrap();
    }
    Resp {
        status,
        headers,
        body: String::from_utf8(raw).unwrap(),
        chunked,
    }
}

/// Kills and reaps the child when dropped, also when the test fails.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post(server: &MockServer, path: &str, body: Value) -> Resp {
    http(server.port(), "POST", path, Some(&body))
}

// ---------------------------------------------------------------- Anthropic

fn claude_tools() -> Value {
    json!([
        {"name": "Write", "input_schema": {"type": "object", "properties": {
            "file_path": {"type": "string"}, "content": {"type": "string"}}}},
        {"name": "Bash", "input_schema": {"type": "object", "properties": {
            "command": {"type": "string"}, "description": {"type": "string"}}}}
    ])
}

fn claude_request(history: Vec<Value>, stream: bool) -> Value {
    let mut messages = vec![json!({"role": "user", "content": [{"type": "text", "text": "go"}]})];
    messages.extend(history);
    json!({"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": stream,
           "system": [{"type": "text", "text": "You are Claude Code."},
                      {"type": "text", "text": "Env:\n - Primary working directory: /tmp/my project\n - Is a git repository: false"}],
           "tools": claude_tools(), "messages": messages})
}

fn claude_tool_round(id: &str) -> [Value; 2] {
    [
        json!({"role": "assistant", "content": [{"type": "text", "text": "x"},
               {"type": "tool_use", "id": id, "name": "Write", "input": {}}]}),
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
               "content": "ok Working directory: /elsewhere"}]}),
    ]
}

#[test]
fn anthropic_sse_writes_with_absolute_path_and_reports_usage() {
    let server = MockServer::start();
    let resp = post(
        &server,
        "/v1/messages?beta=true",
        claude_request(vec![], true),
    );
    assert_eq!(resp.status, 200);
    assert!(resp.chunked, "SSE must stream in chunks");
    assert_eq!(resp.header("request-id"), Some("req_mock"));
    let events = resp.events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // Each event's `type` repeats its name, as in the real API.
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_deref().unwrap());
    }
    let start = &events[0].1["message"];
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert_eq!(
        start["usage"],
        json!({"input_tokens": 1200, "output_tokens": 1, "cache_read_input_tokens": 300,
               "cache_creation_input_tokens": 100})
    );
    assert_eq!(events[3].1["delta"]["text"], "Step 1: calling Write.");
    let tool = &events[5].1["content_block"];
    assert_eq!(tool["type"], "tool_use");
    assert_eq!(tool["name"], "Write");
    let input: Value =
        serde_json::from_str(events[6].1["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"file_path": "/tmp/my project/hello.txt", "content": HELLO_CONTENT})
    );
    assert_eq!(events[8].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[8].1["usage"]["output_tokens"], 80);
}

#[test]
fn anthropic_step_follows_the_number_of_prior_tool_calls() {
    let server = MockServer::start();
    let one: Vec<Value> = claude_tool_round("toolu_1").into();
    let resp = post(&server, "/v1/messages", claude_request(one.clone(), false));
    let body = resp.json();
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][1]["name"], "Bash");
    assert_eq!(
        body["content"][1]["input"],
        json!({"command": "cat hello.txt && echo SHELL_OK", "description": "Run scripted command"})
    );
    let mut two = one;
    two.extend(claude_tool_round("toolu_2"));
    let body = post(&server, "/v1/messages", claude_request(two.clone(), false)).json();
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["content"][0]["text"],
        "I created hello.txt and verified it.\nLOOP_COMPLETE"
    );
    // Past the end of the script: a loud marker, not a crash.
    two.extend(claude_tool_round("toolu_3"));
    let body = post(&server, "/v1/messages", claude_request(two, false)).json();
    assert!(body["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("MOCKLLM_END_OF_SCRIPT"));
    let steps: Vec<Option<usize>> = server.requests().iter().map(|r| r.step).collect();
    assert_eq!(steps, [Some(1), Some(2), None]);
}

#[test]
fn anthropic_count_tokens_and_models() {
    let server = MockServer::start();
    let resp = post(
        &server,
        "/v1/messages/count_tokens?beta=true",
        json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]}),
    );
    assert_eq!(resp.status, 200);
    assert!(resp.json()["input_tokens"].as_u64().unwrap() > 0);
    let models = http(server.port(), "GET", "/v1/models", None).json();
    assert_eq!(models["object"], "list");
    assert!(models["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "claude-sonnet-4-5" && m["type"] == "model"));
    let one = http(server.port(), "GET", "/s/x/v1/models/gpt-5.5", None).json();
    assert_eq!(one["id"], "gpt-5.5");
}

// --------------------------------------------------------- Chat Completions

fn chat_request(history: Vec<Value>, include_usage: bool) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "<env>\n  Working directory: /srv/p q\n  Platform: linux\n</env>"}),
        json!({"role": "user", "content": "go"}),
    ];
    messages.extend(history);
    let mut req = json!({"model": "mock-model", "stream": true, "messages": messages,
    "tools": [
        {"type": "function", "function": {"name": "write", "parameters": {"type": "object",
            "properties": {"filePath": {"type": "string"}, "content": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "bash", "parameters": {"type": "object",
            "properties": {"command": {"type": "string"}, "description": {"type": "string"}}}}}
    ]});
    if include_usage {
        req["stream_options"] = json!({"include_usage": true});
    }
    req
}

#[test]
fn chat_sse_tool_call_and_final_usage_chunk() {
    let server = MockServer::start();
    let events = post(
        &server,
        "/s/write_and_finish/v1/chat/completions",
        chat_request(vec![], true),
    )
    .events();
    assert!(events.iter().all(|(name, _)| name.is_none()));
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert_eq!(events[0].1["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        events[1].1["choices"][0]["delta"]["content"],
        "Step 1: calling write."
    );
    let head = &events[2].1["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(head["function"]["name"], "write");
    assert_eq!(head["function"]["arguments"], "");
    assert!(head["id"].as_str().unwrap().starts_with("call_mock_"));
    let args = events[3].1["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"filePath": "/srv/p q/hello.txt", "content": HELLO_CONTENT})
    );
    assert_eq!(events[4].1["choices"][0]["finish_reason"], "tool_calls");
    let usage_chunk = &events[5].1;
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({"prompt_tokens": 1500, "completion_tokens": 80, "total_tokens": 1580,
               "prompt_tokens_details": {"cached_tokens": 300},
               "completion_tokens_details": {"reasoning_tokens": 0}})
    );
}

#[test]
fn chat_without_include_usage_has_no_usage_chunk_and_counts_history() {
    let server = MockServer::start();
    let history = vec![
        json!({"role": "assistant", "content": "x", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "write", "arguments": "{}"}}]}),
        json!({"role": "tool", "tool_call_id": "c1", "content": "Current working directory: /nope"}),
    ];
    let events = post(
        &server,
        "/v1/chat/completions",
        chat_request(history, false),
    )
    .events();
    assert!(events.iter().all(|(_, d)| d.get("usage").is_none()));
    let call = &events[2].1["choices"][0]["delta"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "bash");
    // Non-streaming: one JSON completion.
    let mut req = chat_request(vec![], false);
    req["stream"] = json!(false);
    let body = post(&server, "/v1/chat/completions", req).json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 300);
}

#[test]
fn chat_side_request_without_tools_gets_a_short_answer_and_json_schema_instance() {
    let server = MockServer::start();
    let title = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": "Generate a title"}]}),
    )
    .json();
    assert_eq!(
        title["choices"][0]["message"]["content"],
        "Scripted mock session"
    );
    assert_eq!(title["usage"]["prompt_tokens"], 0);
    let schema = json!({"type": "object", "properties": {"title": {"type": "string"},
                        "n": {"type": "integer", "minimum": 2}}, "required": ["title"]});
    let body = post(
        &server,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}}),
    )
    .json();
    let content: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"title": "mock", "n": 2}));
    assert!(server.requests().iter().all(|r| r.step.is_none()));
}

// ---------------------------------------------------------------- Responses

fn codex_request(input_extra: Vec<Value>) -> Value {
    let mut input = vec![
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text",
            "text": "<environment_context>\n  <cwd>/w/code x</cwd>\n  <shell>bash</shell>\n</environment_context>"}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}),
    ];
    input.extend(input_extra);
    json!({"model": "gpt-5.5", "stream": true, "instructions": "You are Codex.", "input": input,
    "tools": [
        {"type": "function", "name": "exec_command", "parameters": {"type": "object",
            "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}}}},
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark"}},
        {"type": "web_search"}
    ]})
}

#[test]
fn responses_sse_custom_apply_patch_then_exec_command() {
    let server = MockServer::start();
    let events = post(&server, "/v1/responses", codex_request(vec![])).events();
    let types: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_deref().unwrap());
        assert_eq!(data["sequence_number"], i);
    }
    let call = &events[11].1["item"];
    assert_eq!(call["type"], "custom_tool_call");
    assert_eq!(call["name"], "apply_patch");
    assert_eq!(
        call["input"],
        "*** Begin Patch\n*** Add File: /w/code x/hello.txt\n+hello from the scripted LLM\n*** End Patch\n"
    );
    let done = &events[12].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 1500, "input_tokens_details": {"cached_tokens": 300},
               "output_tokens": 80, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": 1580})
    );
    // Second turn: the history holds the custom call and its output.
    let history = vec![
        json!({"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "..."}),
        json!({"type": "custom_tool_call_output", "call_id": "c1", "output": "Success"}),
    ];
    let events = post(&server, "/v1/responses", codex_request(history)).events();
    let item = &events
        .iter()
        .find(|(n, d)| {
            n.as_deref() == Some("response.output_item.done")
                && d["item"]["type"] == "function_call"
        })
        .unwrap()
        .1["item"];
    assert_eq!(item["name"], "exec_command");
    assert_eq!(
        serde_json::from_str::<Value>(item["arguments"].as_str().unwrap()).unwrap(),
        json!({"cmd": "cat hello.txt && echo SHELL_OK"})
    );
}

#[test]
fn responses_json_and_text_format_schema() {
    let server = MockServer::start();
    let mut req = codex_request(vec![
        json!({"type": "function_call", "call_id": "a", "name": "exec_command", "arguments": "{}"}),
        json!({"type": "function_call", "call_id": "b", "name": "exec_command", "arguments": "{}"}),
    ]);
    req["stream"] = json!(false);
    req["text"] = json!({"format": {"type": "json_schema", "name": "out", "schema":
        {"type": "object", "properties": {"ok": {"type": "boolean"}}}}});
    let body = post(&server, "/v1/responses", req).json();
    assert_eq!(body["object"], "response");
    // The final step is text; with --output-schema it must be an instance.
    let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"ok": false})
    );
}

// ------------------------------------------------------------------- Gemini

fn gemini_request(history: Vec<Value>) -> Value {
    let mut contents = vec![json!({"role": "user", "parts": [{"text":
        "<session_context>\n- **Workspace Directories:**\n  - /home/u/my proj\n- **Directory Structure:**\n</session_context>"},
        {"text": "go"}]})];
    contents.extend(history);
    json!({"contents": contents, "systemInstruction": {"parts": [{"text": "You are Gemini CLI."}]},
           "tools": [{"functionDeclarations": [
               {"name": "write_file", "parametersJsonSchema": {"type": "object", "properties": {
                   "file_path": {"type": "string"}, "content": {"type": "string"}}}},
               {"name": "run_shell_command", "parameters": {"type": "OBJECT", "properties": {
                   "command": {"type": "STRING"}, "description": {"type": "STRING"}}}}]}]})
}

#[test]
fn gemini_sse_generate_and_count() {
    let server = MockServer::start();
    let path = "/s/write_and_finish/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse";
    let resp = post(&server, path, gemini_request(vec![]));
    assert!(
        resp.body.contains("\r\n\r\n"),
        "Google frames with CRLF: {:?}",
        resp.body
    );
    let events = resp.events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].1["candidates"][0]["content"]["parts"][0]["text"],
        "Step 1: calling write_file."
    );
    let last = &events[1].1;
    assert_eq!(
        last["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "write_file", "args": {"file_path": "/home/u/my proj/hello.txt",
                                              "content": HELLO_CONTENT}})
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["modelVersion"], "gemini-2.5-pro");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], 1500);
    assert_eq!(last["usageMetadata"]["cachedContentTokenCount"], 300);
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 80);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 1580);

    // History with one functionCall → the shell step, in one JSON object.
    let history = vec![
        json!({"role": "model", "parts": [{"functionCall": {"name": "write_file", "args": {}}}]}),
        json!({"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {}}}]}),
    ];
    let body = post(
        &server,
        "/v1beta/models/gemini-2.5-pro:generateContent",
        gemini_request(history.clone()),
    )
    .json();
    let parts = &body["candidates"][0]["content"]["parts"];
    assert_eq!(parts[1]["functionCall"]["name"], "run_shell_command");
    assert_eq!(
        parts[1]["functionCall"]["args"],
        json!({"command": "cat hello.txt && echo SHELL_OK", "description": "Run scripted command"})
    );
    // Without alt=sse the stream is a JSON array of chunks.
    let array = post(
        &server,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
        gemini_request(history),
    )
    .json();
    assert_eq!(array.as_array().unwrap().len(), 2);
    let count = post(
        &server,
        "/v1beta/models/gemini-2.5-pro:countTokens",
        json!({"contents": []}),
    )
    .json();
    assert!(count["totalTokens"].as_u64().is_some());
    let models = http(server.port(), "GET", "/v1beta/models", None).json();
    assert!(models["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "models/gemini-2.5-pro"));
}

#[test]
fn gemini_router_side_request_gets_schema_instance() {
    let server = MockServer::start();
    let body = post(
        &server,
        "/v1beta/models/gemini-3.5-flash-lite:generateContent",
        json!({"contents": [{"role": "user", "parts": [{"text": "classify"}]}],
               "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
                   "type": "object", "properties": {"complexity_reasoning": {"type": "string"},
                   "complexity_score": {"type": "integer", "minimum": 1, "maximum": 100}},
                   "required": ["complexity_reasoning", "complexity_score"]}}}),
    )
    .json();
    let text = body["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"complexity_reasoning": "mock", "complexity_score": 1})
    );
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 0);
}

// ------------------------------------------------- scenarios, errors, misc

#[test]
fn scenario_prefix_selects_the_script() {
    let server = MockServer::start();
    let body = post(
        &server,
        "/s/text_only/v1/messages",
        claude_request(vec![], false),
    )
    .json();
    assert!(body["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("LOOP_COMPLETE"));
    let resp = post(
        &server,
        "/s/no_such/v1/messages",
        claude_request(vec![], false),
    );
    assert_eq!(resp.status, 404);
    let msg = resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("unknown scenario 'no_such'"), "{msg}");
    assert!(msg.contains("write_and_finish"), "{msg}");
    let log = server.requests();
    assert_eq!(log[0].scenario, "text_only");
    assert_eq!(log[1].scenario, "no_such");
    assert_eq!(server.requests_for("text_only").len(), 1);
}

#[test]
fn error_envelopes_statuses_and_headers() {
    let server = MockServer::start();
    let p = server.port();
    let claude = claude_request(vec![], true);
    let chat = chat_request(vec![], true);
    let codex = codex_request(vec![]);
    let gemini = gemini_request(vec![]);
    let gem_path =
        |s: &str| format!("/s/{s}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");

    // Anthropic.
    let r = http(
        p,
        "POST",
        "/s/rate_limit/v1/messages?beta=true",
        Some(&claude),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("request-id"), Some("req_mock"));
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    let r = http(p, "POST", "/s/overloaded/v1/messages", Some(&claude));
    assert_eq!(
        (r.status, r.json()["error"]["type"].clone()),
        (529, json!("overloaded_error"))
    );
    let r = http(p, "POST", "/s/auth_error/v1/messages", Some(&claude));
    assert_eq!(
        (r.status, r.json()["error"]["type"].clone()),
        (401, json!("authentication_error"))
    );
    let r = http(p, "POST", "/s/server_error/v1/messages", Some(&claude));
    assert_eq!(
        (r.status, r.json()["error"]["type"].clone()),
        (500, json!("api_error"))
    );
    let r = http(p, "POST", "/s/usage_limit/v1/messages", Some(&claude));
    assert_eq!(r.status, 429);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("usage limits. You will regain access on "));
    assert_eq!(
        r.header("anthropic-ratelimit-unified-status"),
        Some("rejected")
    );

    // Chat Completions and Responses share OpenAI's envelope.
    let r = http(p, "POST", "/s/quota/v1/chat/completions", Some(&chat));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "insufficient_quota");
    assert_eq!(r.json()["error"]["type"], "insufficient_quota");
    let r = http(p, "POST", "/s/usage_limit/v1/responses", Some(&codex));
    assert_eq!(r.status, 429);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "usage_limit_reached");
    let now = chrono::Utc::now().timestamp();
    let resets = e["resets_at"].as_i64().unwrap();
    assert!(resets > now && resets <= now + 3700, "{e}");
    let r = http(p, "POST", "/s/auth_error/v1/responses", Some(&codex));
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (401, json!("invalid_api_key"))
    );
    let r = http(p, "POST", "/s/overloaded/v1/chat/completions", Some(&chat));
    assert_eq!(r.status, 503);

    // Gemini.
    let r = http(p, "POST", &gem_path("quota"), Some(&gemini));
    assert_eq!(r.status, 429);
    let e = &r.json()["error"];
    assert_eq!(e["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        e["details"][0]["@type"],
        "type.googleapis.com/google.rpc.QuotaFailure"
    );
    assert!(e["details"][0]["violations"][0]["quotaId"]
        .as_str()
        .unwrap()
        .contains("PerDay"));
    let r = http(p, "POST", &gem_path("rate_limit"), Some(&gemini));
    assert!(r.json()["error"]["details"][0]["violations"][0]["quotaId"]
        .as_str()
        .unwrap()
        .contains("PerMinute"));
    let r = http(p, "POST", &gem_path("auth_error"), Some(&gemini));
    assert_eq!(
        (r.status, r.json()["error"]["status"].clone()),
        (401, json!("UNAUTHENTICATED"))
    );
    let r = http(p, "POST", &gem_path("server_error"), Some(&gemini));
    assert_eq!(
        (r.status, r.json()["error"]["status"].clone()),
        (500, json!("INTERNAL"))
    );
    let r = http(p, "POST", &gem_path("overloaded"), Some(&gemini));
    assert_eq!(
        (r.status, r.json()["error"]["status"].clone()),
        (503, json!("UNAVAILABLE"))
    );

    // Errors apply to tool-less side requests too (the account is limited).
    let r = http(
        p,
        "POST",
        "/s/rate_limit/v1/chat/completions",
        Some(&json!({"model": "m", "messages": []})),
    );
    assert_eq!(r.status, 429);
}

#[test]
fn custom_scenarios_override_status_body_headers_and_message() {
    let custom = Scenario::new(vec![
        Step::shell("echo one").with_usage(Usage::new(10, 2, 0, 0)),
        Step::new(ralph_testkit::mockllm::Action::Error(ErrorSpec {
            status: Some(418),
            message: Some("teapot (mock)".into()),
            headers: [("Retry-After".to_string(), "7".to_string())].into(),
            ..ErrorSpec::new(ErrorKind::Server)
        })),
    ]);
    let raw = Scenario::new(vec![Step::new(ralph_testkit::mockllm::Action::Error(
        ErrorSpec {
            body: Some(json!("not json at all")),
            ..ErrorSpec::new(ErrorKind::RateLimit)
        },
    ))]);
    let server = MockServer::start_with(HashMap::from([
        ("custom".to_string(), custom),
        ("raw".to_string(), raw),
    ]));
    let first = post(
        &server,
        "/s/custom/v1/messages",
        claude_request(vec![], false),
    )
    .json();
    assert_eq!(first["content"][1]["input"]["command"], "echo one");
    assert_eq!(first["usage"]["input_tokens"], 10);
    let history: Vec<Value> = claude_tool_round("t1").into();
    let r = post(
        &server,
        "/s/custom/v1/messages",
        claude_request(history, false),
    );
    assert_eq!(r.status, 418);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["error"]["message"], "teapot (mock)");
    let r = post(
        &server,
        "/s/raw/v1/chat/completions",
        chat_request(vec![], false),
    );
    assert_eq!((r.status, r.body.as_str()), (429, "not json at all"));
}

#[test]
fn unmappable_actions_answer_no_tool_and_fallbacks_work() {
    let scenarios = HashMap::from([
        (
            "exact".to_string(),
            Scenario::new(vec![Step::tool("read_file", json!({"path": "x"}))]),
        ),
        (
            "missing".to_string(),
            Scenario::new(vec![Step::tool("nope", json!({}))]),
        ),
    ]);
    let server = MockServer::start_with(scenarios);
    let only_read = |tools: Value| json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools});
    let read = json!([{"type": "function", "function": {"name": "read_file", "parameters": {}}}]);
    let body = post(&server, "/v1/chat/completions", only_read(read.clone())).json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "MOCKLLM_NO_TOOL: cannot perform action 'write_file' with the tools offered: read_file"
    );
    let body = post(
        &server,
        "/s/exact/v1/chat/completions",
        only_read(read.clone()),
    )
    .json();
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"path\":\"x\"}"
    );
    let body = post(&server, "/s/missing/v1/chat/completions", only_read(read)).json();
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("MOCKLLM_NO_TOOL: cannot perform action 'tool:nope'"));

    // Only an argv-style `shell` tool: the write becomes an exact printf.
    let argv_shell = json!([{"type": "function", "function": {"name": "shell", "parameters":
        {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}}}]);
    let body = post(&server, "/v1/chat/completions", only_read(argv_shell)).json();
    let args: Value = serde_json::from_str(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        args,
        json!({"command": ["bash", "-lc", "printf '%s' 'hello from the scripted LLM\n' > 'hello.txt'"]})
    );
}

#[test]
fn bad_bodies_and_unknown_routes() {
    let server = MockServer::start();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    write!(
        stream,
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{x"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("invalid_request_error"), "{text}");
    let r = http(server.port(), "GET", "/v2/whatever", None);
    assert_eq!(r.status, 404);
    let r = http(server.port(), "GET", "/", None);
    assert_eq!((r.status, r.body.as_str()), (200, "mockllm ok\n"));
}

#[test]
fn parallel_clients_share_one_server() {
    let server = MockServer::start();
    let port = server.port();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let scenario = if i % 2 == 0 {
                    "write_and_finish"
                } else {
                    "text_only"
                };
                let r = http(
                    port,
                    "POST",
                    &format!("/s/{scenario}/v1/messages"),
                    Some(&claude_request(vec![], false)),
                );
                (
                    scenario,
                    r.json()["stop_reason"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    for t in threads {
        let (scenario, stop) = t.join().unwrap();
        let want = if scenario == "text_only" {
            "end_turn"
        } else {
            "tool_use"
        };
        assert_eq!(stop, want);
    }
    assert_eq!(server.requests().len(), 16);
}

#[test]
fn requests_are_logged_in_memory_and_as_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let server = MockServer::try_start(Options {
        log_file: Some(log.clone()),
        ..Options::default()
    })
    .unwrap();
    post(
        &server,
        "/s/text_only/v1/messages?beta=true",
        claude_request(vec![], true),
    );
    let logged = server.requests();
    assert_eq!(logged.len(), 1);
    let r = &logged[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/s/text_only/v1/messages?beta=true");
    assert_eq!(r.dialect.as_deref(), Some("anthropic"));
    assert_eq!(r.step, Some(0));
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-test"], "yes");
    assert_eq!(r.body["model"], "claude-sonnet-4-5");
    drop(server);
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["path"], "/s/text_only/v1/messages?beta=true");
}

#[test]
fn mock_llm_binary_serves_scenarios_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    std::fs::write(
        scenarios.join("failing_command.json"),
        r#"{"steps": [{"action": "shell", "command": "echo oops >&2; exit 3",
                       "usage": {"input_tokens": 7, "output_tokens": 3}},
                      {"action": "text", "text": "The command failed. LOOP_COMPLETE"}]}"#,
    )
    .unwrap();
    let port_file = dir.path().join("port");
    let log = dir.path().join("requests.jsonl");
    let _child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_mock-llm"))
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .arg("--scenario-dir")
            .arg(&scenarios)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let port: u16 = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            break text.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no port file");
        std::thread::sleep(Duration::from_millis(20));
    };
    let body = http(
        port,
        "POST",
        "/s/failing_command/v1/chat/completions",
        Some(
            &chat_request(vec![], false)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("stream".into(), json!(false));
                    Value::Object(o)
                })
                .unwrap(),
        ),
    )
    .json();
    let args = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap()["command"],
        "echo oops >&2; exit 3"
    );
    assert_eq!(body["usage"]["prompt_tokens"], 7);
    // Built-ins are still there.
    let r = http(
        port,
        "POST",
        "/s/auth_error/v1/chat/completions",
        Some(&chat_request(vec![], false)),
    );
    assert_eq!(r.status, 401);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), 2);
}
