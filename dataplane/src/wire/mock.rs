//! The built-in `Mock` provider: deterministic answers in exact wire format,
//! with no network. Used by the offline quickstart, tests and load tests.
//!
//! What it answers (also documented in `docs/mock-provider.md`):
//! - The reply text is [`MockReply::reply`] when set, otherwise
//!   `"echo: "` followed by the text of the client's last turn: the last
//!   message with role `user` (or `tool`, OpenAI) — string content, or the
//!   `text` parts/blocks joined with `\n` (Anthropic `tool_result` contents
//!   count as text).
//! - Tool call rule: when the request has `tools` and either `tool_choice`
//!   forces a tool (OpenAI `"required"` or `{"type":"function",…}`,
//!   Anthropic `{"type":"any"}` or `{"type":"tool",…}`), or the last message
//!   is a plain user message (no tool results) whose text contains
//!   "weather" (case-insensitive), the answer is one call to the named tool
//!   (forced by name) or else the first tool, with `{}` as arguments.
//!   `tool_choice` `none` disables tool calls. A turn that carries tool
//!   results is answered with text, so agent loops end.
//! - Ids are deterministic: a hash of the request (`chatcmpl-mock-…`,
//!   `msg_mock_…`, `call_mock_…`, `toolu_mock_…`); `created` is 0.
//! - Token counts are the estimate of [`estimate_tokens`]: input is
//!   [`count_tokens`] of the request, output the estimate of the reply text
//!   (or tool name plus arguments).
//! - Streaming (`"stream": true`) uses each dialect's exact framing; OpenAI
//!   sends the usage chunk only with `stream_options.include_usage`.

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Dialect;

/// How a mock backend answers (from the AIBackend's `mock` settings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MockReply {
    /// Fixed reply text; empty means echo the last user turn.
    pub reply: String,
}

/// A mock answer, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MockResponse {
    /// A complete JSON body (`application/json`).
    Json(Bytes),
    /// SSE events, one complete event per element (`text/event-stream`).
    Sse(Vec<Bytes>),
}

/// Estimated tokens of `text`: characters / 4, rounded up, at least 1.
pub fn estimate_tokens(text: &str) -> u64 {
    let chars = text.chars().count() as u64;
    chars.div_ceil(4).max(1)
}

/// Estimated input tokens of a request (either dialect): the estimate of
/// the system prompt, every message's text (tool calls and tool results
/// included) and the tool definitions, joined with newlines.
pub fn count_tokens(request: &Value) -> u64 {
    let mut all = String::new();
    if let Some(system) = request.get("system") {
        push_line(&mut all, &content_text(system));
    }
    for m in messages(request) {
        push_line(
            &mut all,
            &content_text(m.get("content").unwrap_or(&Value::Null)),
        );
        if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
            for c in calls {
                push_line(
                    &mut all,
                    c.pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                );
                push_line(
                    &mut all,
                    c.pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                );
            }
        }
    }
    if let Some(tools) = request.get("tools").and_then(Value::as_array) {
        for t in tools {
            push_line(&mut all, &t.to_string());
        }
    }
    estimate_tokens(&all)
}

fn push_line(all: &mut String, s: &str) {
    if s.is_empty() {
        return;
    }
    if !all.is_empty() {
        all.push('\n');
    }
    all.push_str(s);
}

fn messages(request: &Value) -> &[Value] {
    request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Text of a `content` value: a string, or text parts/blocks joined by `\n`
/// (tool_use inputs and tool_result contents included).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => push_line(
                        &mut out,
                        p.get("text").and_then(Value::as_str).unwrap_or(""),
                    ),
                    Some("tool_result") => push_line(
                        &mut out,
                        &content_text(p.get("content").unwrap_or(&Value::Null)),
                    ),
                    Some("tool_use") => {
                        push_line(
                            &mut out,
                            p.get("name").and_then(Value::as_str).unwrap_or(""),
                        );
                        push_line(
                            &mut out,
                            &p.get("input").map(Value::to_string).unwrap_or_default(),
                        );
                    }
                    _ => {}
                }
            }
            out
        }
        _ => String::new(),
    }
}

fn is_client_turn(m: &Value) -> bool {
    matches!(m.get("role").and_then(Value::as_str), Some("user" | "tool"))
}

fn has_tool_results(m: &Value) -> bool {
    m.get("role").and_then(Value::as_str) == Some("tool")
        || m.get("content")
            .and_then(Value::as_array)
            .is_some_and(|parts| {
                parts
                    .iter()
                    .any(|p| p.get("type").and_then(Value::as_str) == Some("tool_result"))
            })
}

/// The tool to call, if the tool rule applies (see the module docs).
fn tool_to_call(dialect: Dialect, request: &Value) -> Option<String> {
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())?;
    let tool_name = |t: &Value| -> Option<String> {
        t.pointer("/function/name")
            .or_else(|| t.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let first = tools.iter().find_map(tool_name)?;
    let choice = request.get("tool_choice").unwrap_or(&Value::Null);
    let choice_type = choice
        .as_str()
        .or_else(|| choice.get("type").and_then(Value::as_str));
    let forced_name = match dialect {
        Dialect::OpenAI => choice.pointer("/function/name"),
        Dialect::Anthropic => choice.get("name"),
    }
    .and_then(Value::as_str)
    .map(str::to_owned);
    match (dialect, choice_type) {
        (_, Some("none")) => return None,
        (Dialect::OpenAI, Some("required")) | (Dialect::Anthropic, Some("any")) => {
            return Some(first);
        }
        (Dialect::OpenAI, Some("function")) | (Dialect::Anthropic, Some("tool")) => {
            return Some(forced_name.unwrap_or(first));
        }
        _ => {}
    }
    let last = messages(request).last()?;
    let asks_weather = last.get("role").and_then(Value::as_str) == Some("user")
        && !has_tool_results(last)
        && content_text(last.get("content").unwrap_or(&Value::Null))
            .to_lowercase()
            .contains("weather");
    asks_weather.then_some(first)
}

/// What the mock says, decided once per request.
struct Answer {
    model: String,
    /// Hex digest of the request, for ids.
    hash: String,
    text: String,
    tool: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
}

impl Answer {
    fn new(dialect: Dialect, request: &Value, settings: &MockReply) -> Self {
        let model = request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("mock")
            .to_owned();
        let digest = Sha256::digest(request.to_string().as_bytes());
        let hash = hex::encode(&digest[..12]);
        let tool = tool_to_call(dialect, request);
        let text = if !settings.reply.is_empty() {
            settings.reply.clone()
        } else {
            let last = messages(request).iter().rev().find(|m| is_client_turn(m));
            let said = last
                .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
                .unwrap_or_default();
            format!("echo: {said}")
        };
        let output_tokens = match &tool {
            Some(name) => estimate_tokens(&format!("{name}{{}}")),
            None => estimate_tokens(&text),
        };
        Self {
            model,
            hash,
            text,
            tool,
            input_tokens: count_tokens(request),
            output_tokens,
        }
    }
}

/// Answers `request` (a Chat Completions or Messages request body) in
/// `dialect`, streaming when the request says `"stream": true`.
pub fn respond(dialect: Dialect, request: &Value, settings: &MockReply) -> MockResponse {
    let answer = Answer::new(dialect, request, settings);
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match (dialect, stream) {
        (Dialect::OpenAI, false) => {
            MockResponse::Json(Bytes::from(openai_json(&answer).to_string()))
        }
        (Dialect::Anthropic, false) => {
            MockResponse::Json(Bytes::from(anthropic_json(&answer).to_string()))
        }
        (Dialect::OpenAI, true) => {
            let include_usage = request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            MockResponse::Sse(openai_stream(&answer, include_usage))
        }
        (Dialect::Anthropic, true) => MockResponse::Sse(anthropic_stream(&answer)),
    }
}

/// Splits text into a few deltas at word boundaries (spaces stay attached).
fn deltas(text: &str) -> Vec<&str> {
    let parts: Vec<&str> = text.split_inclusive(' ').collect();
    if parts.is_empty() { vec![""] } else { parts }
}

fn openai_usage(a: &Answer) -> Value {
    json!({
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn openai_json(a: &Answer) -> Value {
    let (message, finish) = match &a.tool {
        Some(name) => (
            json!({
                "role": "assistant",
                "content": null,
                "refusal": null,
                "tool_calls": [{
                    "id": format!("call_mock_{}", a.hash),
                    "type": "function",
                    "function": {"name": name, "arguments": "{}"},
                }],
            }),
            "tool_calls",
        ),
        None => (
            json!({"role": "assistant", "content": a.text, "refusal": null}),
            "stop",
        ),
    };
    json!({
        "id": format!("chatcmpl-mock-{}", a.hash),
        "object": "chat.completion",
        "created": 0,
        "model": a.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": openai_usage(a),
    })
}

fn openai_stream(a: &Answer, include_usage: bool) -> Vec<Bytes> {
    let id = format!("chatcmpl-mock-{}", a.hash);
    let chunk = |choices: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": a.model,
            "choices": choices,
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut chunks = Vec::new();
    match &a.tool {
        Some(name) => {
            chunks.push(chunk(choice(
                json!({"role": "assistant", "content": null}),
                Value::Null,
            )));
            chunks.push(chunk(choice(
                json!({"tool_calls": [{"index": 0, "id": format!("call_mock_{}", a.hash), "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            )));
            chunks.push(chunk(choice(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
                Value::Null,
            )));
            chunks.push(chunk(choice(json!({}), json!("tool_calls"))));
        }
        None => {
            chunks.push(chunk(choice(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )));
            for d in deltas(&a.text) {
                chunks.push(chunk(choice(json!({"content": d}), Value::Null)));
            }
            chunks.push(chunk(choice(json!({}), json!("stop"))));
        }
    }
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = openai_usage(a);
        chunks.push(last);
    }
    let mut out: Vec<Bytes> = chunks
        .into_iter()
        .map(|c| Bytes::from(format!("data: {c}\n\n")))
        .collect();
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

fn anthropic_json(a: &Answer) -> Value {
    let (content, stop) = match &a.tool {
        Some(name) => (
            json!([{"type": "tool_use", "id": format!("toolu_mock_{}", a.hash), "name": name, "input": {}}]),
            "tool_use",
        ),
        None => (json!([{"type": "text", "text": a.text}]), "end_turn"),
    };
    json!({
        "id": format!("msg_mock_{}", a.hash),
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {
            "input_tokens": a.input_tokens,
            "output_tokens": a.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    })
}

fn anthropic_stream(a: &Answer) -> Vec<Bytes> {
    let mut events: Vec<(&str, Value)> = Vec::new();
    events.push((
        "message_start",
        json!({"type": "message_start", "message": {
            "id": format!("msg_mock_{}", a.hash),
            "type": "message",
            "role": "assistant",
            "model": a.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": a.input_tokens, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }}),
    ));
    let stop = match &a.tool {
        Some(name) => {
            events.push((
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block":
                    {"type": "tool_use", "id": format!("toolu_mock_{}", a.hash), "name": name, "input": {}}}),
            ));
            events.push(("ping", json!({"type": "ping"})));
            events.push((
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            ));
            "tool_use"
        }
        None => {
            events.push((
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            events.push(("ping", json!({"type": "ping"})));
            for d in deltas(&a.text) {
                events.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}),
                ));
            }
            "end_turn"
        }
    };
    events.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": a.output_tokens}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    events
        .into_iter()
        .map(|(name, data)| Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
        .collect()
}

#[cfg(test)]
#[path = "mock_tests.rs"]
mod tests;
