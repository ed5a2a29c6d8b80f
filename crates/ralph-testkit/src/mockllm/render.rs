//! Writing a [`Plan`] in each dialect's wire format: plain JSON, or SSE
//! when the client asked to stream, and errors in each vendor's own
//! envelope.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Datelike, Utc};
use serde_json::{json, Value};

use super::scenario::{ErrorKind, ErrorSpec, Usage};
use super::turn::{Call, CallInput, Dialect, Plan};

/// An HTTP answer, before it becomes a hyper response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplyBody {
    /// Sent with a content length.
    Full(Vec<u8>),
    /// Server-sent events, one HTTP chunk per event (chunked encoding), the
    /// way the real APIs stream.
    Events(Vec<Vec<u8>>),
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Full(body.to_string().into_bytes()),
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: ReplyBody::Full(body.as_bytes().to_vec()),
        }
    }

    fn events(events: Vec<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            body: ReplyBody::Events(events),
        }
    }

    fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A random hex id: unique across parallel sessions, so no CLI mistakes one
/// call for another.
pub(crate) fn hex_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn now_epoch() -> i64 {
    Utc::now().timestamp()
}

/// `event: NAME` + `data: JSON` (Anthropic and Responses name their events).
fn named_event(name: &str, data: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

/// `data: JSON` only (Chat Completions).
fn data_event(data: &Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

fn call_args(call: &Call) -> Value {
    match &call.input {
        CallInput::Json(v) => v.clone(),
        // A JSON-only dialect cannot carry raw text: wrap it the way Codex's
        // JSON flavour of apply_patch does.
        CallInput::Freeform(s) => json!({ "input": s }),
    }
}

// ---------------------------------------------------------------- Anthropic

pub(crate) fn anthropic(plan: &Plan, usage: Usage, model: &str, stream: bool) -> Reply {
    let id = format!("msg_mock_{}", hex_id());
    let (blocks, stop_reason) = match plan {
        Plan::Text(text) => (vec![json!({"type": "text", "text": text})], "end_turn"),
        Plan::Call { preface, call } => (
            vec![
                json!({"type": "text", "text": preface}),
                json!({"type": "tool_use", "id": format!("toolu_mock_{}", hex_id()),
                       "name": call.name, "input": call_args(call)}),
            ],
            "tool_use",
        ),
        Plan::Error(spec) => return error(Dialect::Anthropic, spec),
    };
    let full_usage = json!({
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
    });
    if !stream {
        return Reply::json(
            200,
            &json!({"id": id, "type": "message", "role": "assistant", "model": model,
                    "content": blocks, "stop_reason": stop_reason, "stop_sequence": null,
                    "usage": full_usage}),
        )
        .with_header("request-id", "req_mock");
    }
    // As the real API: input and cache counts in message_start (output so
    // far: 1), the final output count in message_delta.
    let mut start_usage = full_usage.clone();
    start_usage["output_tokens"] = json!(usage.output_tokens.min(1));
    let mut events = vec![
        named_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        ),
        named_event("ping", &json!({"type": "ping"})),
    ];
    for (index, block) in blocks.iter().enumerate() {
        let (start, delta) = if block["type"] == "tool_use" {
            (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            )
        } else {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            )
        };
        events.push(named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        events.push(named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
        events.push(named_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push(named_event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": usage.output_tokens}}),
    ));
    events.push(named_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    Reply::events(events).with_header("request-id", "req_mock")
}

// --------------------------------------------------------- Chat Completions

fn openai_usage(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens(),
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens() + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

pub(crate) fn chat(
    plan: &Plan,
    usage: Usage,
    model: &str,
    stream: bool,
    include_usage: bool,
) -> Reply {
    let id = format!("chatcmpl-mock-{}", hex_id());
    let created = now_epoch();
    let (content, tool_call, finish) = match plan {
        Plan::Text(text) => (text.clone(), None, "stop"),
        Plan::Call { preface, call } => {
            let call_id = format!("call_mock_{}", hex_id());
            let tc = match &call.input {
                CallInput::Json(args) => json!({"id": call_id, "type": "function",
                    "function": {"name": call.name, "arguments": args.to_string()}}),
                CallInput::Freeform(input) => json!({"id": call_id, "type": "custom",
                    "custom": {"name": call.name, "input": input}}),
            };
            (preface.clone(), Some(tc), "tool_calls")
        }
        Plan::Error(spec) => return error(Dialect::Chat, spec),
    };
    if !stream {
        let mut message = json!({"role": "assistant", "content": content});
        if let Some(tc) = &tool_call {
            message["tool_calls"] = json!([tc]);
        }
        return Reply::json(
            200,
            &json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish,
                                 "logprobs": null}],
                    "usage": openai_usage(usage)}),
        );
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        data_event(
            &json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut events = vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": content}), None),
    ];
    if let Some(tc) = tool_call {
        // Name first with empty arguments, then the arguments: the shape
        // clients accumulate tool calls from.
        let mut head = tc.clone();
        let mut tail = json!({"index": 0});
        if let Some(f) = head.get_mut("function") {
            tail["function"] = json!({"arguments": f["arguments"]});
            f["arguments"] = json!("");
        } else if let Some(c) = head.get_mut("custom") {
            tail["custom"] = json!({"input": c["input"]});
            c["input"] = json!("");
        }
        head["index"] = json!(0);
        events.push(chunk(json!({"tool_calls": [head]}), None));
        events.push(chunk(json!({"tool_calls": [tail]}), None));
    }
    events.push(chunk(json!({}), Some(finish)));
    if include_usage {
        events.push(data_event(
            &json!({"id": id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": [], "usage": openai_usage(usage)}),
        ));
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    Reply::events(events)
}

// ---------------------------------------------------------------- Responses

pub(crate) fn responses(plan: &Plan, usage: Usage, model: &str, stream: bool) -> Reply {
    let resp_id = format!("resp_mock_{}", hex_id());
    let created = now_epoch();
    let message = |text: &str| {
        json!({"type": "message", "id": format!("msg_mock_{}", hex_id()), "status": "completed",
               "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": []}]})
    };
    let items = match plan {
        Plan::Text(text) => vec![message(text)],
        Plan::Call { preface, call } => {
            let call_id = format!("call_mock_{}", hex_id());
            let item = match &call.input {
                CallInput::Json(args) => json!({"type": "function_call",
                    "id": format!("fc_mock_{}", hex_id()), "call_id": call_id,
                    "name": call.name, "arguments": args.to_string(), "status": "completed"}),
                CallInput::Freeform(input) => json!({"type": "custom_tool_call",
                    "id": format!("ctc_mock_{}", hex_id()), "call_id": call_id,
                    "name": call.name, "input": input, "status": "completed"}),
            };
            vec![message(preface), item]
        }
        Plan::Error(spec) => return error(Dialect::Responses, spec),
    };
    let usage_json = json!({
        "input_tokens": usage.prompt_tokens(),
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens() + usage.output_tokens,
    });
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": resp_id, "object": "response", "created_at": created, "status": status,
               "model": model, "output": output, "usage": usage, "error": null,
               "incomplete_details": null, "parallel_tool_calls": false, "tool_choice": "auto"})
    };
    if !stream {
        return Reply::json(200, &response("completed", json!(items), usage_json));
    }
    let mut seq = 0u64;
    let mut events = Vec::new();
    let mut push = |ty: &str, mut data: Value| {
        data["type"] = json!(ty);
        data["sequence_number"] = json!(seq);
        seq += 1;
        events.push(named_event(ty, &data));
    };
    push(
        "response.created",
        json!({"response": response("in_progress", json!([]), Value::Null)}),
    );
    push(
        "response.in_progress",
        json!({"response": response("in_progress", json!([]), Value::Null)}),
    );
    for (output_index, item) in items.iter().enumerate() {
        let item_id = item["id"].clone();
        match item["type"].as_str() {
            Some("message") => {
                let text = item["content"][0]["text"].clone();
                let mut added = item.clone();
                added["status"] = json!("in_progress");
                added["content"] = json!([]);
                push(
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": added}),
                );
                let empty_part = json!({"type": "output_text", "text": "", "annotations": []});
                push(
                    "response.content_part.added",
                    json!({"item_id": item_id, "output_index": output_index,
                           "content_index": 0, "part": empty_part}),
                );
                push(
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": output_index,
                           "content_index": 0, "delta": text}),
                );
                push(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": output_index,
                           "content_index": 0, "text": text}),
                );
                push(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": output_index,
                           "content_index": 0, "part": item["content"][0]}),
                );
            }
            Some("function_call") => {
                let mut added = item.clone();
                added["arguments"] = json!("");
                added["status"] = json!("in_progress");
                push(
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": added}),
                );
                push(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": output_index,
                           "delta": item["arguments"]}),
                );
                push(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": output_index,
                           "arguments": item["arguments"]}),
                );
            }
            _ => {
                let mut added = item.clone();
                added["input"] = json!("");
                added["status"] = json!("in_progress");
                push(
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": added}),
                );
                push(
                    "response.custom_tool_call_input.delta",
                    json!({"item_id": item_id, "output_index": output_index,
                           "delta": item["input"]}),
                );
                push(
                    "response.custom_tool_call_input.done",
                    json!({"item_id": item_id, "output_index": output_index,
                           "input": item["input"]}),
                );
            }
        }
        push(
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
    }
    push(
        "response.completed",
        json!({"response": response("completed", json!(items), usage_json)}),
    );
    Reply::events(events)
}

// ------------------------------------------------------------------- Gemini

/// How a Gemini answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeminiFraming {
    /// `:generateContent`: one response object.
    Single,
    /// `:streamGenerateContent?alt=sse`: SSE, one chunk per event.
    Sse,
    /// `:streamGenerateContent` without `alt=sse`: a JSON array of chunks.
    Array,
}

pub(crate) fn gemini(plan: &Plan, usage: Usage, model: &str, framing: GeminiFraming) -> Reply {
    let response_id = format!("mock{}", hex_id());
    let (first, last): (Vec<Value>, Vec<Value>) = match plan {
        Plan::Text(text) => (Vec::new(), vec![json!({"text": text})]),
        Plan::Call { preface, call } => (
            vec![json!({"text": preface})],
            vec![json!({"functionCall": {"name": call.name, "args": call_args(call)}})],
        ),
        Plan::Error(spec) => return error(Dialect::Gemini, spec),
    };
    let usage_json = json!({
        "promptTokenCount": usage.prompt_tokens(),
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.prompt_tokens() + usage.output_tokens,
        "cachedContentTokenCount": usage.cache_read_input_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt_tokens()}],
    });
    let chunk = |parts: &[Value], done: bool| {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        let mut c = json!({"candidates": [], "modelVersion": model, "responseId": response_id});
        if done {
            candidate["finishReason"] = json!("STOP");
            c["usageMetadata"] = usage_json.clone();
        }
        c["candidates"] = json!([candidate]);
        c
    };
    match framing {
        GeminiFraming::Single => {
            let all: Vec<Value> = first.iter().chain(last.iter()).cloned().collect();
            Reply::json(200, &chunk(&all, true))
        }
        GeminiFraming::Sse | GeminiFraming::Array => {
            let mut chunks = Vec::new();
            if !first.is_empty() {
                chunks.push(chunk(&first, false));
            }
            chunks.push(chunk(&last, true));
            if framing == GeminiFraming::Array {
                Reply::json(200, &Value::Array(chunks))
            } else {
                // Google frames events with CRLF; the SDK accepts both.
                Reply::events(
                    chunks
                        .iter()
                        .map(|c| format!("data: {c}\r\n\r\n").into_bytes())
                        .collect(),
                )
            }
        }
    }
}

// ------------------------------------------------------------------- errors

/// Default status of an error kind in a dialect.
fn default_status(dialect: Dialect, kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::RateLimit | ErrorKind::Quota | ErrorKind::UsageLimit => 429,
        ErrorKind::Auth => 401,
        // 529 is Anthropic's own overload status; OpenAI and Google answer 503.
        ErrorKind::Overloaded if dialect == Dialect::Anthropic => 529,
        ErrorKind::Overloaded => 503,
        ErrorKind::Server => 500,
    }
}

const RATE_LIMIT_MSG: &str =
    "Number of request tokens has exceeded your per-minute rate limit (mock)";
const QUOTA_MSG: &str =
    "You exceeded your current quota, please check your plan and billing details. (mock)";
const AUTH_MSG: &str = "invalid x-api-key (mock)";
const OVERLOADED_MSG: &str = "Overloaded (mock)";
const SERVER_MSG: &str = "Internal server error (mock)";

/// An error step in the dialect's native envelope.
pub(crate) fn error(dialect: Dialect, spec: &ErrorSpec) -> Reply {
    let status = spec
        .status
        .unwrap_or_else(|| default_status(dialect, spec.kind));
    let mut reply = match &spec.body {
        Some(Value::String(raw)) => Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Full(raw.clone().into_bytes()),
        },
        Some(body) => Reply::json(status, body),
        None => default_error(dialect, spec, status),
    };
    for (name, value) in &spec.headers {
        reply
            .headers
            .push((name.to_ascii_lowercase(), value.clone()));
    }
    reply
}

fn default_error(dialect: Dialect, spec: &ErrorSpec, status: u16) -> Reply {
    let now = Utc::now();
    let in_an_hour = now.timestamp() + 3600;
    let msg = |default: String| spec.message.clone().unwrap_or(default);
    match dialect {
        Dialect::Anthropic => {
            let (ty, message) = match spec.kind {
                ErrorKind::RateLimit => ("rate_limit_error", msg(RATE_LIMIT_MSG.into())),
                ErrorKind::Quota => (
                    "billing_error",
                    msg(
                        "Your credit balance is too low to access the Anthropic API. \
                         Please go to Plans & Billing to upgrade or purchase credits. (mock)"
                            .into(),
                    ),
                ),
                // The API-key flavour of a usage limit: a workspace spend
                // limit, reset at the start of next month (00:00 UTC).
                ErrorKind::UsageLimit => (
                    "rate_limit_error",
                    msg(format!(
                        "You have reached your specified API usage limits. You will regain \
                         access on {} at 00:00 UTC.",
                        first_of_next_month(now)
                    )),
                ),
                ErrorKind::Auth => ("authentication_error", msg(AUTH_MSG.into())),
                ErrorKind::Overloaded => ("overloaded_error", msg(OVERLOADED_MSG.into())),
                ErrorKind::Server => ("api_error", msg(SERVER_MSG.into())),
            };
            let mut reply = anthropic_error(status, ty, &message);
            if spec.kind == ErrorKind::UsageLimit {
                // What a subscription session sees when its window is used up.
                reply = reply
                    .with_header("anthropic-ratelimit-unified-status", "rejected")
                    .with_header("anthropic-ratelimit-unified-reset", &in_an_hour.to_string());
            }
            reply
        }
        Dialect::Chat | Dialect::Responses => {
            let body = match spec.kind {
                ErrorKind::RateLimit => openai_body(
                    &msg(RATE_LIMIT_MSG.into()),
                    "rate_limit_exceeded",
                    Some("rate_limit_exceeded"),
                ),
                ErrorKind::Quota => openai_body(
                    &msg(QUOTA_MSG.into()),
                    "insufficient_quota",
                    Some("insufficient_quota"),
                ),
                // ChatGPT-plan limit, as Codex receives it.
                ErrorKind::UsageLimit => json!({"error": {
                    "type": "usage_limit_reached",
                    "message": msg("The usage limit has been reached".into()),
                    "plan_type": "plus",
                    "resets_at": in_an_hour,
                    "resets_in_seconds": 3600,
                }}),
                ErrorKind::Auth => openai_body(
                    &msg(AUTH_MSG.into()),
                    "invalid_request_error",
                    Some("invalid_api_key"),
                ),
                ErrorKind::Overloaded => openai_body(
                    &msg(OVERLOADED_MSG.into()),
                    "server_error",
                    Some("server_is_overloaded"),
                ),
                ErrorKind::Server => openai_body(&msg(SERVER_MSG.into()), "server_error", None),
            };
            Reply::json(status, &body).with_header("x-request-id", "req_mock")
        }
        Dialect::Gemini => {
            let (message, details) = match spec.kind {
                ErrorKind::RateLimit => (
                    msg(RATE_LIMIT_MSG.into()),
                    json!([quota_failure(
                        "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
                        "GenerateContentInputTokensPerModelPerMinute-FreeTier"
                    ), {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]),
                ),
                ErrorKind::Quota => (
                    msg(QUOTA_MSG.into()),
                    json!([quota_failure(
                        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
                    )]),
                ),
                // Gemini's usage limit is the daily quota; it resets at
                // midnight Pacific time, which RetryInfo counts down to.
                ErrorKind::UsageLimit => (
                    msg(
                        "Quota exceeded for quota metric 'Generate Content API requests per day' \
                         and limit 'GenerateRequestsPerDayPerProjectPerModel' of service \
                         'generativelanguage.googleapis.com'. (mock usage limit)"
                            .into(),
                    ),
                    json!([quota_failure(
                        "generativelanguage.googleapis.com/generate_content_requests",
                        "GenerateRequestsPerDayPerProjectPerModel"
                    ), {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": format!("{}s", seconds_to_pacific_midnight(now))}]),
                ),
                ErrorKind::Auth => (msg(AUTH_MSG.into()), json!([])),
                ErrorKind::Overloaded => (
                    msg("The model is overloaded. Please try again later. (mock)".into()),
                    json!([]),
                ),
                ErrorKind::Server => (msg(SERVER_MSG.into()), json!([])),
            };
            gemini_error(status, &message, details)
        }
    }
}

fn quota_failure(metric: &str, id: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure",
           "violations": [{"quotaMetric": metric, "quotaId": id,
                           "quotaDimensions": {"location": "global", "model": "mock-model"}}]})
}

fn openai_body(message: &str, ty: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": ty, "param": null, "code": code}})
}

pub(crate) fn anthropic_error(status: u16, ty: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"type": "error", "error": {"type": ty, "message": message},
                "request_id": "req_mock"}),
    )
    .with_header("request-id", "req_mock")
}

pub(crate) fn gemini_error(status: u16, message: &str, details: Value) -> Reply {
    let mut error = json!({"code": status, "message": message, "status": google_status(status)});
    if details.as_array().is_some_and(|d| !d.is_empty()) {
        error["details"] = details;
    }
    Reply::json(status, &json!({ "error": error }))
}

fn google_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// A non-scripted error (unknown scenario, unreadable body) in the
/// dialect's envelope, so the CLI shows the message.
pub(crate) fn plain_error(dialect: Dialect, status: u16, message: &str) -> Reply {
    match dialect {
        Dialect::Anthropic => anthropic_error(
            status,
            if status == 404 {
                "not_found_error"
            } else {
                "invalid_request_error"
            },
            message,
        ),
        Dialect::Chat | Dialect::Responses => {
            Reply::json(status, &openai_body(message, "invalid_request_error", None))
        }
        Dialect::Gemini => gemini_error(status, message, json!([])),
    }
}

fn first_of_next_month(now: chrono::DateTime<Utc>) -> String {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    format!("{y:04}-{m:02}-01")
}

/// Seconds until the next midnight in US Pacific time (UTC-8, ignoring
/// daylight saving: the mock only needs the vendor's shape).
fn seconds_to_pacific_midnight(now: chrono::DateTime<Utc>) -> i64 {
    let pacific = now.timestamp() - 8 * 3600;
    let day = 86_400;
    let next = (pacific.div_euclid(day) + 1) * day;
    next - pacific
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn month_rollover() {
        let dec = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        assert_eq!(first_of_next_month(dec), "2027-01-01");
        let nov = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
        assert_eq!(first_of_next_month(nov), "2026-12-01");
    }

    #[test]
    fn pacific_midnight_is_within_a_day() {
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap();
        // 08:00 UTC = 00:00 Pacific (UTC-8): a full day to go.
        assert_eq!(seconds_to_pacific_midnight(t), 86_400);
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 7, 0, 0).unwrap();
        assert_eq!(seconds_to_pacific_midnight(t), 3600);
    }

    #[test]
    fn ids_are_unique() {
        let a = hex_id();
        let b = hex_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
