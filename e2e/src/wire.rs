//! Provider wire formats spoken by the mock upstreams: pure builders for OpenAI Chat Completions and
//! Anthropic Messages bodies, SSE frames and error shapes (see `reference/protocols.md` §1 and §2).

use serde_json::{Value, json};

/// Which provider dialect a mock upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Flavor {
    /// OpenAI Chat Completions (`/v1/chat/completions`, `data:`-only SSE ending in `[DONE]`).
    OpenAI,
    /// Anthropic Messages (`/v1/messages`, `event:` + `data:` SSE, `/v1/messages/count_tokens`).
    Anthropic,
    /// Amazon Bedrock Runtime (`/model/{id}/converse[-stream]`, `/model/{id}/invoke[-with-response-stream]`,
    /// binary event-stream answers, SigV4-checked requests; see [`crate::bedrock_wire`]).
    Bedrock,
    /// The Gemini API (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
    /// `x-goog-api-key`; see [`crate::google_wire`]).
    Gemini,
    /// Vertex AI (`/v1/projects/{p}/locations/{l}/publishers/{google|anthropic}/models/{model}:…`:
    /// Gemini's `generateContent` and Claude's `rawPredict`, a bearer token; see
    /// [`crate::google_wire`]).
    Vertex,
    /// Azure OpenAI (`/openai/v1/…` and `/openai/deployments/{d}/…?api-version=`, `api-key`,
    /// content-filter annotations; see [`crate::azure_wire`]).
    Azure,
}

/// What the assistant answers with.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Plain text, streamed as several deltas.
    Text(String),
    /// One tool (function) call with JSON object arguments.
    ToolCall {
        /// Tool name.
        name: String,
        /// Arguments object.
        arguments: Value,
    },
}

/// Token usage reported by the mock, in Anthropic terms: `input` excludes `cached`.
/// OpenAI answers report `prompt_tokens = input + cached` and `cached_tokens = cached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens read from the prompt cache.
    pub cached: u64,
}

/// One server-sent event as written on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFrame {
    /// The `event:` line, if any (Anthropic always sets it, OpenAI never).
    pub event: Option<String>,
    /// The `data:` payload (single line).
    pub data: String,
}

impl SseFrame {
    /// Encodes the frame as `event: X\ndata: Y\n\n`.
    pub fn encode(&self) -> String {
        match &self.event {
            Some(event) => format!("event: {event}\ndata: {}\n\n", self.data),
            None => format!("data: {}\n\n", self.data),
        }
    }
}

/// Fixed id used for every mock tool call (valid for both providers' id patterns).
pub const TOOL_CALL_ID: &str = "toolu_mock_0001";
/// Fixed `created` timestamp of OpenAI answers.
pub const CREATED: u64 = 1_700_000_000;

/// A deterministic token estimate for a request body: one token per 4 bytes of its `messages`
/// (and `system`) JSON, at least 1. Used for default usage and `count_tokens`.
pub fn estimate_tokens(body: &Value) -> u64 {
    let mut len = body.get("messages").map_or(0, |m| m.to_string().len());
    len += body.get("system").map_or(0, |s| s.to_string().len());
    (len as u64 / 4).max(1)
}

/// Splits text into word-sized deltas (`"a b c"` → `["a", " b", " c"]`); always at least one piece.
pub fn split_deltas(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch == ' ' && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// Default usage for a request when the behaviour does not fix one.
pub fn default_usage(body: &Value, reply: &Reply) -> Usage {
    let output = match reply {
        Reply::Text(text) => split_deltas(text).len() as u64,
        Reply::ToolCall { .. } => 5,
    };
    Usage {
        input: estimate_tokens(body),
        output,
        cached: 0,
    }
}

/// Splits a JSON string into two fragments (for streamed tool arguments).
fn halves(s: &str) -> (String, String) {
    let mid = s
        .char_indices()
        .nth(s.chars().count() / 2)
        .map_or(s.len(), |(i, _)| i);
    (s[..mid].to_string(), s[mid..].to_string())
}

fn openai_usage(usage: Usage) -> Value {
    let prompt = usage.input + usage.cached;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

fn anthropic_usage(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached
    })
}

/// Non-streaming OpenAI `chat.completion` body.
pub fn openai_completion(model: &str, reply: &Reply, usage: Usage) -> Value {
    let (message, finish) = match reply {
        Reply::Text(text) => (
            json!({"role": "assistant", "content": text, "refusal": null, "annotations": []}),
            "stop",
        ),
        Reply::ToolCall { name, arguments } => (
            json!({"role": "assistant", "content": null, "refusal": null, "annotations": [],
                "tool_calls": [{"id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": name, "arguments": arguments.to_string()}}]}),
            "tool_calls",
        ),
    };
    json!({
        "id": "chatcmpl-mock-0001",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": openai_usage(usage)
    })
}

fn openai_chunk(model: &str, delta: Value, finish: Option<&str>, include_usage: bool) -> String {
    let mut chunk = json!({
        "id": "chatcmpl-mock-0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
    });
    if include_usage {
        chunk["usage"] = Value::Null;
    }
    chunk.to_string()
}

/// Streaming OpenAI frames: role chunk, content (or tool call) chunks, finish chunk, the usage chunk
/// (`choices: []`) only when `include_usage`, then `[DONE]`.
pub fn openai_stream(
    model: &str,
    reply: &Reply,
    usage: Usage,
    include_usage: bool,
) -> Vec<SseFrame> {
    let mut data = vec![openai_chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
        include_usage,
    )];
    let finish = match reply {
        Reply::Text(text) => {
            for piece in split_deltas(text) {
                data.push(openai_chunk(
                    model,
                    json!({"content": piece}),
                    None,
                    include_usage,
                ));
            }
            "stop"
        }
        Reply::ToolCall { name, arguments } => {
            data.push(openai_chunk(
                model,
                json!({"tool_calls": [{"index": 0, "id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                None,
                include_usage,
            ));
            let (a, b) = halves(&arguments.to_string());
            for part in [a, b] {
                data.push(openai_chunk(
                    model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    None,
                    include_usage,
                ));
            }
            "tool_calls"
        }
    };
    data.push(openai_chunk(model, json!({}), Some(finish), include_usage));
    if include_usage {
        data.push(
            json!({
                "id": "chatcmpl-mock-0001", "object": "chat.completion.chunk", "created": CREATED,
                "model": model, "system_fingerprint": "fp_mock", "choices": [], "usage": openai_usage(usage)
            })
            .to_string(),
        );
    }
    data.push("[DONE]".to_string());
    data.into_iter()
        .map(|data| SseFrame { event: None, data })
        .collect()
}

fn anthropic_content(reply: &Reply) -> (Value, &'static str) {
    match reply {
        Reply::Text(text) => (json!([{"type": "text", "text": text}]), "end_turn"),
        Reply::ToolCall { name, arguments } => (
            json!([{"type": "tool_use", "id": TOOL_CALL_ID, "name": name, "input": arguments}]),
            "tool_use",
        ),
    }
}

/// Non-streaming Anthropic `message` body.
pub fn anthropic_message(model: &str, reply: &Reply, usage: Usage) -> Value {
    let (content, stop) = anthropic_content(reply);
    json!({
        "id": "msg_mock_0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": anthropic_usage(usage)
    })
}

fn event(name: &str, data: Value) -> SseFrame {
    SseFrame {
        event: Some(name.to_string()),
        data: data.to_string(),
    }
}

/// Streaming Anthropic frames: `message_start`, `ping`, one content block with its deltas,
/// `message_delta` (stop reason, cumulative usage), `message_stop`.
pub fn anthropic_stream(model: &str, reply: &Reply, usage: Usage) -> Vec<SseFrame> {
    let start_usage = Usage { output: 1, ..usage };
    let mut frames = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_mock_0001", "type": "message", "role": "assistant", "content": [],
                "model": model, "stop_reason": null, "stop_sequence": null,
                "usage": anthropic_usage(start_usage)}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let stop = match reply {
        Reply::Text(text) => {
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
            ));
            for piece in split_deltas(text) {
                frames.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
            "end_turn"
        }
        Reply::ToolCall { name, arguments } => {
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": TOOL_CALL_ID, "name": name, "input": {}}}),
            ));
            let (a, b) = halves(&arguments.to_string());
            for part in [String::new(), a, b] {
                frames.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": part}}),
                ));
            }
            "tool_use"
        }
    };
    frames.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": usage.output}}),
    ));
    frames.push(event("message_stop", json!({"type": "message_stop"})));
    frames
}

/// OpenAI error body `{"error":{"message","type","param","code"}}`.
pub fn openai_error(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// Anthropic error body `{"type":"error","error":{"type","message"},"request_id"}`.
pub fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock_0001"})
}

/// The error body a real provider of `flavor` sends for `status`.
pub fn default_error_body(flavor: Flavor, status: u16) -> Value {
    match flavor {
        Flavor::Gemini | Flavor::Vertex if status == 429 => crate::google_wire::quota_body(1),
        Flavor::Gemini | Flavor::Vertex => {
            crate::google_wire::error_body(status, &format!("mock upstream error {status}"))
        }
        Flavor::Azure => crate::azure_wire::error_body(status),
        Flavor::Bedrock => {
            crate::bedrock_wire::error_body(&format!("mock upstream error {status}"))
        }
        Flavor::OpenAI => {
            let (kind, code) = match status {
                400 => ("invalid_request_error", None),
                401 => ("invalid_request_error", Some("invalid_api_key")),
                403 => ("permission_error", None),
                404 => ("invalid_request_error", Some("model_not_found")),
                429 => ("requests", Some("rate_limit_exceeded")),
                _ => ("server_error", None),
            };
            openai_error(&format!("mock upstream error {status}"), kind, code)
        }
        Flavor::Anthropic => {
            let kind = match status {
                400 | 409 | 422 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                503 | 529 => "overloaded_error",
                504 => "timeout_error",
                _ => "api_error",
            };
            anthropic_error(kind, &format!("mock upstream error {status}"))
        }
    }
}

/// The in-stream error event of an SSE flavour for a Bedrock-style exception name
/// (`throttlingException` → Anthropic `rate_limit_error`, OpenAI `rate_limit_exceeded`).
pub fn stream_error_frame(flavor: Flavor, exception: &str, message: &str) -> SseFrame {
    let kind = match exception {
        "throttlingException" => "rate_limit_error",
        "serviceUnavailableException" | "modelNotReadyException" => "overloaded_error",
        "validationException" => "invalid_request_error",
        _ => "api_error",
    };
    match flavor {
        Flavor::Anthropic => event("error", anthropic_error(kind, message)),
        Flavor::Gemini | Flavor::Vertex => {
            let status = match exception {
                "throttlingException" => 429,
                "serviceUnavailableException" | "modelNotReadyException" => 503,
                "validationException" => 400,
                _ => 500,
            };
            crate::google_wire::stream_error(status, message)
        }
        _ => SseFrame {
            event: None,
            data: openai_error(message, kind, None).to_string(),
        },
    }
}

/// The 400 body a provider sends when the prompt exceeds the model's context window.
pub fn context_length_body(flavor: Flavor) -> Value {
    match flavor {
        Flavor::Gemini | Flavor::Vertex => {
            crate::google_wire::error_body(400, crate::google_wire::context_length_message())
        }
        Flavor::Bedrock => {
            crate::bedrock_wire::error_body(crate::bedrock_wire::context_length_message())
        }
        Flavor::OpenAI | Flavor::Azure => openai_error(
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
        Flavor::Anthropic => anthropic_error(
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
        ),
    }
}

/// The 400 body a provider sends when content policy blocks the request.
pub fn content_policy_body(flavor: Flavor) -> Value {
    match flavor {
        Flavor::Gemini | Flavor::Vertex => crate::google_wire::error_body(
            400,
            "The request was blocked by the safety filters (PROHIBITED_CONTENT).",
        ),
        Flavor::Azure => crate::azure_wire::content_filter_body(),
        Flavor::Bedrock => crate::bedrock_wire::error_body(
            "The request was blocked by content filtering policy (safety).",
        ),
        Flavor::OpenAI => openai_error(
            "Your request was rejected as a result of our safety system.",
            "invalid_request_error",
            Some("content_policy_violation"),
        ),
        Flavor::Anthropic => anthropic_error(
            "invalid_request_error",
            "Output blocked by content filtering policy",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_deltas_keeps_text() {
        assert_eq!(split_deltas("a bc d"), vec!["a", " bc", " d"]);
        assert_eq!(split_deltas(""), vec![""]);
        assert_eq!(split_deltas("Hello from mock").concat(), "Hello from mock");
    }

    #[test]
    fn openai_stream_usage_chunk_only_when_asked() {
        let reply = Reply::Text("one two".into());
        let usage = Usage {
            input: 3,
            output: 2,
            cached: 1,
        };
        let without = openai_stream("m", &reply, usage, false);
        assert_eq!(without.last().map(|f| f.data.as_str()), Some("[DONE]"));
        assert!(without.iter().all(|f| !f.data.contains("\"choices\":[]")));
        let with = openai_stream("m", &reply, usage, true);
        let usage_chunk: Value = serde_json::from_str(&with[with.len() - 2].data).unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 4);
        assert_eq!(
            usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
            1
        );
    }

    #[test]
    fn anthropic_stream_event_names_match_types() {
        let frames = anthropic_stream("m", &Reply::Text("a b".into()), Usage::default());
        for frame in &frames {
            let data: Value = serde_json::from_str(&frame.data).unwrap();
            assert_eq!(frame.event.as_deref(), data["type"].as_str());
        }
        assert_eq!(
            frames.last().and_then(|f| f.event.as_deref()),
            Some("message_stop")
        );
    }

    #[test]
    fn tool_arguments_round_trip_through_fragments() {
        let args = json!({"city": "Paris", "days": 3});
        let frames = openai_stream(
            "m",
            &Reply::ToolCall {
                name: "w".into(),
                arguments: args.clone(),
            },
            Usage::default(),
            false,
        );
        let joined: String = frames
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(&f.data).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), args);
    }
}
