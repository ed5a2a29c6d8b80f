//! A scripted model server: real agent CLIs (Claude Code, Codex, Gemini CLI,
//! opencode, Copilot CLI) talk to it as if it were their vendor's API, and
//! it answers from a [`Scenario`] so tests can drive the CLIs' real tools
//! offline and assert exact token accounting.
//!
//! One port speaks four dialects, chosen by path:
//!
//! | path | dialect |
//! |---|---|
//! | `POST /v1/messages` (`?beta=true`), `POST /v1/messages/count_tokens` | Anthropic Messages |
//! | `POST /v1/chat/completions` | OpenAI Chat Completions |
//! | `POST /v1/responses` | OpenAI Responses |
//! | `POST /v1beta/models/{m}:streamGenerateContent?alt=sse`, `:generateContent`, `:countTokens` | Gemini |
//! | `GET /v1/models`, `GET /v1beta/models` | model lists |
//!
//! Every route also works under `/s/<scenario>/…`, which selects the
//! scenario (without the prefix: [`DEFAULT_SCENARIO`]). The server keeps no
//! per-session state (see [`scenario`]), so parallel tests can share one.
//!
//! ```no_run
//! use ralph_testkit::mockllm::MockServer;
//! let server = MockServer::start();
//! let base = server.scenario_url("write_and_finish"); // e.g. ANTHROPIC_BASE_URL
//! # let _ = base;
//! assert!(server.requests().is_empty());
//! ```

mod render;
pub mod scenario;
pub mod schema;
mod turn;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use scenario::{
    Action, ErrorKind, ErrorSpec, Scenario, Step, Usage, DEFAULT_SCENARIO, HELLO_COMMAND,
    HELLO_CONTENT, HELLO_FINAL_TEXT,
};
pub use turn::Dialect;

use render::{GeminiFraming, Reply, ReplyBody};
use turn::Turn;

/// The model ids the list endpoints report (any id is accepted on the wire).
const LISTED_MODELS: [&str; 5] = [
    "mock-model",
    "claude-sonnet-4-5",
    "gpt-5.5",
    "gpt-4.1",
    "gemini-2.5-pro",
];

/// How to start a [`MockServer`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenarios by name, in addition to [`Scenario::builtins`] (same name:
    /// these win).
    pub scenarios: HashMap<String, Scenario>,
    /// Used for requests without a `/s/<scenario>` prefix.
    pub default_scenario: String,
    /// Append every request as a JSON line to this file.
    pub log_file: Option<PathBuf>,
    /// 0 picks a free port.
    pub port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scenarios: HashMap::new(),
            default_scenario: DEFAULT_SCENARIO.to_string(),
            log_file: None,
            port: 0,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, including any `/s/<scenario>` prefix.
    pub path: String,
    /// The scenario that answered (the default one without a prefix).
    pub scenario: String,
    /// `anthropic`, `chat`, `responses`, `gemini`; `None` for other routes.
    pub dialect: Option<String>,
    /// The scenario step that answered; `None` for side requests (no tools
    /// offered), other routes and answers past the end of the script.
    pub step: Option<usize>,
    /// The HTTP status answered.
    pub status: u16,
    /// Request headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (a JSON string when it was not JSON; `null` when
    /// empty).
    pub body: Value,
}

/// The running server. Dropping it stops it.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Starts on 127.0.0.1 with a free port and the built-in scenarios.
    ///
    /// # Panics
    ///
    /// If the server cannot start (no socket, no thread): a test cannot go
    /// on without it.
    pub fn start() -> MockServer {
        Self::start_with(HashMap::new())
    }

    /// Like [`MockServer::start`], with extra scenarios.
    ///
    /// # Panics
    ///
    /// As [`MockServer::start`].
    pub fn start_with(scenarios: HashMap<String, Scenario>) -> MockServer {
        match Self::try_start(Options {
            scenarios,
            ..Options::default()
        }) {
            Ok(server) => server,
            Err(e) => panic!("mockllm: cannot start the server: {e}"),
        }
    }

    /// Starts a server; the server runs on its own thread and tokio runtime,
    /// so synchronous tests can use it.
    pub fn try_start(options: Options) -> std::io::Result<MockServer> {
        let mut scenarios = Scenario::builtins();
        scenarios.extend(options.scenarios);
        let log_file = match &options.log_file {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        let state = Arc::new(State {
            scenarios,
            default_scenario: options.default_scenario,
            log: Mutex::new(Vec::new()),
            log_file,
        });
        // Bind before spawning, so a bind error is returned, and the address
        // is known when this returns.
        let listener = std::net::TcpListener::bind(("127.0.0.1", options.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serve_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("mockllm-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, serve_state, rx)))?;
        Ok(MockServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: requests here use the default scenario.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/s/<name>`: a base URL whose requests use
    /// scenario `name`.
    pub fn scenario_url(&self, name: &str) -> String {
        format!("{}/s/{name}", self.base_url())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        match self.state.log.lock() {
            Ok(log) => log.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The requests answered by scenario `name`.
    pub fn requests_for(&self, name: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.scenario == name)
            .collect()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            // The receiver is gone only if the server already stopped.
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct State {
    scenarios: HashMap<String, Scenario>,
    default_scenario: String,
    log: Mutex<Vec<LoggedRequest>>,
    log_file: Option<Mutex<std::fs::File>>,
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mockllm: cannot use the listening socket: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = Arc::clone(&state);
                            async move { Ok::<_, Infallible>(respond(&state, req).await) }
                        });
                        // A client that hangs up mid-request is its business.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors and the like: back off, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn respond(state: &State, req: Request<Incoming>) -> Response<FramesBody> {
    let (parts, body) = req.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let uri = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let reply = state.handle(parts.method.as_str(), &uri, headers, &bytes);
    to_response(reply)
}

fn to_response(reply: Reply) -> Response<FramesBody> {
    let (frames, exact) = match reply.body {
        ReplyBody::Full(bytes) => (VecDeque::from([Bytes::from(bytes)]), true),
        ReplyBody::Events(events) => (events.into_iter().map(Bytes::from).collect(), false),
    };
    let mut response = Response::new(FramesBody { frames, exact });
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        // A scenario may carry a header that is not valid HTTP: skip it
        // rather than failing the whole answer.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A body sent as the given chunks: with a content length when `exact`,
/// else chunked, one chunk per SSE event.
struct FramesBody {
    frames: VecDeque<Bytes>,
    exact: bool,
}

impl hyper::body::Body for FramesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.frames.iter().map(|f| f.len() as u64).sum())
        } else {
            SizeHint::default()
        }
    }
}

/// What a path asks for.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    Model {
        dialect: Dialect,
        path_model: Option<String>,
        framing: GeminiFraming,
    },
    AnthropicCountTokens,
    GeminiCountTokens,
    ListModels {
        gemini: bool,
    },
    GetModel {
        gemini: bool,
        id: String,
    },
    Health,
    NotFound,
}

/// `/s/<name>/rest` → (`Some(name)`, `/rest`).
fn split_scenario(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/s/") {
        let (name, rest) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        (Some(name), rest)
    } else {
        (None, path)
    }
}

fn route(method: &str, path: &str, query: &str) -> Route {
    let post = method == "POST";
    let gemini = path.contains("/v1beta/");
    if post && path.ends_with("/messages/count_tokens") {
        return Route::AnthropicCountTokens;
    }
    if post && path.ends_with("/messages") {
        return Route::Model {
            dialect: Dialect::Anthropic,
            path_model: None,
            framing: GeminiFraming::Single,
        };
    }
    if post && path.ends_with("/chat/completions") {
        return Route::Model {
            dialect: Dialect::Chat,
            path_model: None,
            framing: GeminiFraming::Single,
        };
    }
    if post && path.ends_with("/responses") {
        return Route::Model {
            dialect: Dialect::Responses,
            path_model: None,
            framing: GeminiFraming::Single,
        };
    }
    if let Some(i) = path.find("/models/") {
        let tail = &path[i + "/models/".len()..];
        if let Some((model, action)) = tail.split_once(':') {
            if !post {
                return Route::NotFound;
            }
            let model = model.to_string();
            return match action {
                "streamGenerateContent" => Route::Model {
                    dialect: Dialect::Gemini,
                    path_model: Some(model),
                    framing: if query.split('&').any(|kv| kv == "alt=sse") {
                        GeminiFraming::Sse
                    } else {
                        GeminiFraming::Array
                    },
                },
                "generateContent" => Route::Model {
                    dialect: Dialect::Gemini,
                    path_model: Some(model),
                    framing: GeminiFraming::Single,
                },
                "countTokens" => Route::GeminiCountTokens,
                _ => Route::NotFound,
            };
        }
        if method == "GET" && !tail.is_empty() {
            return Route::GetModel {
                gemini,
                id: tail.to_string(),
            };
        }
    }
    if method == "GET" && path.ends_with("/models") {
        return Route::ListModels { gemini };
    }
    // Claude Code probes its base URL with `HEAD /` before the first call.
    if matches!(method, "GET" | "HEAD") && (path == "/" || path == "/health") {
        return Route::Health;
    }
    Route::NotFound
}

impl State {
    /// Answers one request and logs it.
    fn handle(
        &self,
        method: &str,
        uri: &str,
        headers: BTreeMap<String, String>,
        body: &[u8],
    ) -> Reply {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let (prefix, rest) = split_scenario(path);
        let scenario_name = prefix.unwrap_or(&self.default_scenario).to_string();
        let body_json: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let route = route(method, rest, query);
        let mut dialect_name = None;
        let mut step = None;
        let reply = match route {
            Route::Model {
                dialect,
                path_model,
                framing,
            } => {
                dialect_name = Some(dialect.name().to_string());
                match self.scenarios.get(&scenario_name) {
                    None => {
                        let mut known: Vec<&str> =
                            self.scenarios.keys().map(String::as_str).collect();
                        known.sort_unstable();
                        render::plain_error(
                            dialect,
                            404,
                            &format!(
                                "mockllm: unknown scenario '{scenario_name}' (known: {})",
                                known.join(", ")
                            ),
                        )
                    }
                    Some(_) if !body_json.is_object() => render::plain_error(
                        dialect,
                        400,
                        "mockllm: the request body is not a JSON object",
                    ),
                    Some(scenario) => {
                        let turn = Turn::parse(dialect, &body_json, path_model.as_deref());
                        let decision = turn::decide(&turn, &scenario_name, scenario);
                        step = decision.step;
                        answer(dialect, framing, &turn, &decision)
                    }
                }
            }
            Route::AnthropicCountTokens => {
                Reply::json(200, &json!({"input_tokens": estimate_tokens(body.len())}))
            }
            Route::GeminiCountTokens => {
                Reply::json(200, &json!({"totalTokens": estimate_tokens(body.len())}))
            }
            Route::ListModels { gemini: true } => Reply::json(
                200,
                &json!({"models": LISTED_MODELS.iter().map(|m| gemini_model(m)).collect::<Vec<_>>()}),
            ),
            Route::ListModels { gemini: false } => {
                let data: Vec<Value> = LISTED_MODELS.iter().map(|m| openai_model(m)).collect();
                Reply::json(
                    200,
                    &json!({"object": "list", "data": data, "has_more": false,
                            "first_id": LISTED_MODELS[0],
                            "last_id": LISTED_MODELS[LISTED_MODELS.len() - 1]}),
                )
            }
            Route::GetModel { gemini: true, id } => {
                Reply::json(200, &gemini_model(id.trim_start_matches("models/")))
            }
            Route::GetModel { gemini: false, id } => Reply::json(200, &openai_model(&id)),
            Route::Health => Reply::text(200, "mockllm ok\n"),
            Route::NotFound => Reply::json(
                404,
                &json!({"error": {"message": format!("mockllm: no route for {method} {rest}"),
                                   "type": "not_found_error"}}),
            ),
        };
        self.log(LoggedRequest {
            method: method.to_string(),
            path: uri.to_string(),
            scenario: scenario_name,
            dialect: dialect_name,
            step,
            status: reply.status,
            headers,
            body: body_json,
        });
        reply
    }

    fn log(&self, entry: LoggedRequest) {
        if let Some(file) = &self.log_file {
            if let Ok(mut file) = file.lock() {
                // Logging must not take the answer down: a full disk loses
                // log lines, not the test's model replies.
                let _ = writeln!(file, "{}", json!(entry));
            }
        }
        match self.log.lock() {
            Ok(mut log) => log.push(entry),
            Err(poisoned) => poisoned.into_inner().push(entry),
        }
    }
}

fn answer(
    dialect: Dialect,
    framing: GeminiFraming,
    turn: &Turn,
    decision: &turn::Decision,
) -> Reply {
    let (plan, usage, model) = (&decision.plan, decision.usage, turn.model.as_str());
    match dialect {
        Dialect::Anthropic => render::anthropic(plan, usage, model, turn.stream),
        Dialect::Chat => render::chat(plan, usage, model, turn.stream, turn.include_usage),
        Dialect::Responses => render::responses(plan, usage, model, turn.stream),
        Dialect::Gemini => render::gemini(plan, usage, model, framing),
    }
}

/// About four bytes per token: count_tokens callers only need a plausible
/// number.
fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

fn openai_model(id: &str) -> Value {
    // Both the OpenAI (`object`, `owned_by`) and the Anthropic (`type`,
    // `display_name`) fields, so either SDK can read the list.
    json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "mockllm",
           "type": "model", "display_name": id, "created_at": "2025-01-01T00:00:00Z"})
}

fn gemini_model(id: &str) -> Value {
    json!({"name": format!("models/{id}"), "displayName": id, "version": "mock",
           "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536,
           "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_prefix_split() {
        assert_eq!(
            split_scenario("/s/rate_limit/v1/messages"),
            (Some("rate_limit"), "/v1/messages")
        );
        assert_eq!(split_scenario("/s/x"), (Some("x"), "/"));
        assert_eq!(split_scenario("/v1/responses"), (None, "/v1/responses"));
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(
                "POST",
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                "alt=sse"
            ),
            Route::Model {
                dialect: Dialect::Gemini,
                path_model: Some("gemini-2.5-pro".into()),
                framing: GeminiFraming::Sse
            }
        );
        assert_eq!(
            route("POST", "/v1/messages/count_tokens", "beta=true"),
            Route::AnthropicCountTokens
        );
        assert_eq!(
            route("GET", "/v1beta/models", ""),
            Route::ListModels { gemini: true }
        );
        assert_eq!(
            route("GET", "/v1/models/gpt-5.5", ""),
            Route::GetModel {
                gemini: false,
                id: "gpt-5.5".into()
            }
        );
        assert_eq!(route("DELETE", "/v1/messages", ""), Route::NotFound);
        assert_eq!(route("HEAD", "/", ""), Route::Health);
    }
}
