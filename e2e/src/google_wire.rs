//! The Google wire formats spoken by the Gemini- and Vertex-flavoured mock upstreams
//! (`reference/protocols.md` §5): the Gemini API (`/v1beta/models/{model}:{method}`, or `/v1/…`, key in
//! `x-goog-api-key`), Vertex AI (`/v1/projects/{p}/locations/{l}/publishers/{publisher}/models/{model}:{method}`,
//! an OAuth2 bearer token), `generateContent` answers and `streamGenerateContent?alt=sse`
//! streams (data-only SSE, no `[DONE]`), Claude on Vertex (`rawPredict` / `streamRawPredict`
//! with Anthropic bodies and answers, `count-tokens:rawPredict`), Google's error shape, and what
//! Google refuses in a request body.
//!
//! Written independently of the data plane's translation (its own builders and its own checks),
//! so a test through the mock checks the gateway against a second implementation.

use serde_json::{Map, Value, json};

use crate::wire::{Reply, SseFrame, Usage, anthropic_message, anthropic_stream, split_deltas};

/// Which Google service a path addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The Gemini API (`generativelanguage.googleapis.com`).
    GeminiApi,
    /// Vertex AI (`aiplatform.googleapis.com`).
    Vertex,
}

/// The operation of a Google path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `:generateContent`.
    GenerateContent,
    /// `:streamGenerateContent` (SSE with `?alt=sse`, else a JSON array).
    StreamGenerateContent,
    /// `:countTokens`.
    CountTokens,
    /// Vertex Claude `:rawPredict`.
    RawPredict,
    /// Vertex Claude `:streamRawPredict`.
    StreamRawPredict,
    /// Vertex Claude `count-tokens:rawPredict`.
    ClaudeCountTokens,
}

impl Method {
    /// Whether the answer is a stream.
    pub fn streams(self) -> bool {
        matches!(
            self,
            Method::StreamGenerateContent | Method::StreamRawPredict
        )
    }
}

/// A parsed Google request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GooglePath {
    /// Gemini API or Vertex.
    pub service: Service,
    /// Vertex project (empty for the Gemini API).
    pub project: String,
    /// Vertex location (empty for the Gemini API).
    pub location: String,
    /// `google` or `anthropic` (`google` for the Gemini API).
    pub publisher: String,
    /// The model id (percent-decoded).
    pub model: String,
    /// The operation.
    pub method: Method,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a Gemini API or Vertex path (the query is not part of `path`).
pub fn parse_path(path: &str) -> Option<GooglePath> {
    let (head, method) = path.rsplit_once(':')?;
    // The Gemini API under `/v1beta/` (what the gateway uses) or `/v1/` (google-genai 3).
    let gemini_api = head
        .split_once("/v1beta/")
        .or_else(|| {
            head.split_once("/v1/")
                .filter(|(_, r)| r.starts_with("models/") || r.starts_with("tunedModels/"))
        })
        .map(|(_, rest)| rest);
    if let Some(rest) = gemini_api {
        let model = rest
            .strip_prefix("models/")
            .or_else(|| rest.strip_prefix("tunedModels/"))?;
        let method = match method {
            "generateContent" => Method::GenerateContent,
            "streamGenerateContent" => Method::StreamGenerateContent,
            "countTokens" => Method::CountTokens,
            _ => return None,
        };
        return (!model.is_empty() && !model.contains('/')).then(|| GooglePath {
            service: Service::GeminiApi,
            project: String::new(),
            location: String::new(),
            publisher: "google".into(),
            model: decode(model),
            method,
        });
    }
    let rest = head
        .split("/v1/projects/")
        .nth(1)
        .or_else(|| head.split("/v1beta1/projects/").nth(1))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [_, "locations", _, "publishers", _, "models", _] = parts.as_slice() else {
        return None;
    };
    let (project, location, publisher, model) = (parts[0], parts[2], parts[4], parts[6]);
    let method = match (publisher, model, method) {
        ("anthropic", "count-tokens", "rawPredict") => Method::ClaudeCountTokens,
        ("anthropic", _, "rawPredict") => Method::RawPredict,
        ("anthropic", _, "streamRawPredict") => Method::StreamRawPredict,
        ("google", _, "generateContent") => Method::GenerateContent,
        ("google", _, "streamGenerateContent") => Method::StreamGenerateContent,
        ("google", _, "countTokens") => Method::CountTokens,
        _ => return None,
    };
    Some(GooglePath {
        service: Service::Vertex,
        project: project.into(),
        location: location.into(),
        publisher: publisher.into(),
        model: decode(model),
        method,
    })
}

/// The canonical status name of an HTTP status.
pub fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Google's error body `{"error":{"code","message","status"}}`.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({"error": {"code": status, "message": message, "status": status_name(status)}})
}

/// The 429 quota body, with a `RetryInfo` detail.
pub fn quota_body(retry_seconds: u64) -> Value {
    json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "Resource has been exhausted (e.g. check quota).",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{retry_seconds}s")}]}})
}

/// The 400 a Gemini model answers for a prompt over its context window.
pub fn context_length_message() -> &'static str {
    "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
}

/// Gemini's `usageMetadata` for `usage` (`promptTokenCount` includes the cached tokens).
pub fn usage_metadata(usage: Usage) -> Value {
    let prompt = usage.input + usage.cached;
    let mut m = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output,
        "totalTokenCount": prompt + usage.output,
    });
    if usage.cached > 0 {
        m["cachedContentTokenCount"] = json!(usage.cached);
    }
    m
}

/// The access token the Vertex mock's metadata server hands out.
pub const METADATA_TOKEN: &str = "ya29.mock-metadata-token";

/// Whether `path` is the GCE metadata server's token endpoint
/// (`/computeMetadata/v1/instance/service-accounts/{account}/token`).
pub fn is_metadata_token_path(path: &str) -> bool {
    path.strip_prefix("/computeMetadata/v1/instance/service-accounts/")
        .and_then(|rest| rest.strip_suffix("/token"))
        .is_some_and(|account| !account.is_empty() && !account.contains('/'))
}

/// The fixed thought signature the mock puts on function calls (base64, as Gemini sends one).
pub const THOUGHT_SIGNATURE: &str = "bW9jay10aG91Z2h0LXNpZ25hdHVyZQ==";

fn reply_parts(reply: &Reply) -> Vec<Value> {
    match reply {
        Reply::Text(text) => vec![json!({"text": text})],
        Reply::ToolCall { name, arguments } => vec![json!({
            "functionCall": {"name": name, "args": arguments},
            "thoughtSignature": THOUGHT_SIGNATURE,
        })],
    }
}

/// A whole `generateContent` answer.
pub fn generate_content(model: &str, reply: &Reply, usage: Usage) -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": reply_parts(reply)},
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}]
        }],
        "usageMetadata": usage_metadata(usage),
        "modelVersion": model,
        "responseId": "mock-response-0001"
    })
}

/// The chunks of a `streamGenerateContent` answer: text in word-sized parts, a function call
/// whole; the last chunk carries `finishReason` and the complete `usageMetadata`.
pub fn stream_chunks(model: &str, reply: &Reply, usage: Usage) -> Vec<Value> {
    let chunk = |parts: Vec<Value>, finish: bool| {
        let mut c = json!({
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": model,
            "responseId": "mock-response-0001"
        });
        if finish {
            c["candidates"][0]["finishReason"] = json!("STOP");
            c["usageMetadata"] = usage_metadata(usage);
        } else {
            c["usageMetadata"] = json!({"promptTokenCount": usage.input + usage.cached, "totalTokenCount": usage.input + usage.cached});
        }
        c
    };
    let mut out = Vec::new();
    match reply {
        Reply::Text(text) => {
            let pieces = split_deltas(text);
            let last = pieces.len() - 1;
            for (i, p) in pieces.into_iter().enumerate() {
                out.push(chunk(vec![json!({"text": p})], i == last));
            }
        }
        Reply::ToolCall { .. } => out.push(chunk(reply_parts(reply), true)),
    }
    out
}

/// The SSE frames of a stream (`alt=sse`): `data:` lines only, no terminal event.
pub fn sse_frames(chunks: &[Value]) -> Vec<SseFrame> {
    chunks
        .iter()
        .map(|c| SseFrame {
            event: None,
            data: c.to_string(),
        })
        .collect()
}

/// The in-stream error frame Google sends when a stream fails.
pub fn stream_error(status: u16, message: &str) -> SseFrame {
    SseFrame {
        event: None,
        data: error_body(status, message).to_string(),
    }
}

/// A Claude-on-Vertex message (ids in Vertex's spelling).
pub fn vertex_claude_message(model: &str, reply: &Reply, usage: Usage) -> Value {
    let text = anthropic_message(model, reply, usage).to_string();
    serde_json::from_str(&vertex_ids(&text)).unwrap_or(Value::Null)
}

/// A Claude-on-Vertex stream (Anthropic SSE, Vertex ids).
pub fn vertex_claude_stream(model: &str, reply: &Reply, usage: Usage) -> Vec<SseFrame> {
    anthropic_stream(model, reply, usage)
        .into_iter()
        .map(|f| SseFrame {
            event: f.event,
            data: vertex_ids(&f.data),
        })
        .collect()
}

fn vertex_ids(text: &str) -> String {
    text.replace("msg_mock_", "msg_vrtx_")
        .replace("toolu_mock_", "toolu_vrtx_")
}

const TOP_LEVEL: &[&str] = &[
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
];

const GENERATION_CONFIG: &[&str] = &[
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
];

const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "anyOf",
    "default",
    "example",
    "propertyOrdering",
];

fn unknown_name(path: &str, key: &str) -> String {
    format!("Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field.")
}

fn check_schema(path: &str, schema: &Value) -> Result<(), String> {
    let Some(obj) = schema.as_object() else {
        return Err(format!("Invalid value at '{path}': not an object"));
    };
    for key in obj.keys() {
        if !SCHEMA_KEYS.contains(&key.as_str()) {
            return Err(unknown_name(path, key));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        if props.is_empty() {
            return Err(format!(
                "* GenerateContentRequest.{path}.properties: should be non-empty for OBJECT type"
            ));
        }
        for (name, s) in props {
            check_schema(&format!("{path}.properties[{name}]"), s)?;
        }
    }
    if let Some(items) = obj.get("items") {
        check_schema(&format!("{path}.items"), items)?;
    }
    for s in obj
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check_schema(&format!("{path}.anyOf"), s)?;
    }
    Ok(())
}

fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.len().is_multiple_of(4)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

/// What Gemini refuses in a `generateContent` body (the message of its 400), if anything.
/// Vertex also requires a `role` on every content and refuses `id` on function calls and
/// responses.
pub fn refuse_body(service: Service, body: &Value) -> Option<String> {
    let obj = match body.as_object() {
        Some(o) => o,
        None => return Some("Invalid JSON payload received.".into()),
    };
    for key in obj.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            return Some(unknown_name("", key));
        }
    }
    let contents = obj.get("contents").and_then(Value::as_array);
    let Some(contents) = contents.filter(|c| !c.is_empty()) else {
        return Some("* GenerateContentRequest.contents: contents is not specified".into());
    };
    for (i, c) in contents.iter().enumerate() {
        let role = c.get("role").and_then(Value::as_str);
        match (service, role) {
            (_, Some("user" | "model")) => {}
            (Service::GeminiApi, None) => {}
            (Service::Vertex, None) => {
                return Some("Please use a valid role: user, model.".into());
            }
            (_, Some(other)) => {
                return Some(format!(
                    "Please use a valid role: user, model. Got {other}."
                ));
            }
        }
        let parts = c.get("parts").and_then(Value::as_array);
        let Some(parts) = parts.filter(|p| !p.is_empty()) else {
            return Some(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            ));
        };
        for (j, p) in parts.iter().enumerate() {
            if let Some(sig) = p.get("thoughtSignature").and_then(Value::as_str)
                && sig != "skip_thought_signature_validator"
                && !is_base64(sig)
            {
                return Some(format!(
                    "Invalid value at 'contents[{i}].parts[{j}].thought_signature' (TYPE_BYTES), Base64 decoding failed"
                ));
            }
            for key in ["functionCall", "functionResponse"] {
                if let Some(f) = p.get(key) {
                    if service == Service::Vertex && f.get("id").is_some() {
                        return Some(unknown_name(
                            &format!("contents[{i}].parts[{j}].{key}"),
                            "id",
                        ));
                    }
                    if f.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return Some(format!(
                            "* GenerateContentRequest.contents[{i}].parts[{j}].{key}.name: Name cannot be empty."
                        ));
                    }
                }
            }
            if let Some(r) = p.pointer("/functionResponse/response")
                && !r.is_object()
            {
                return Some(format!(
                    "Invalid value at 'contents[{i}].parts[{j}].function_response.response' (type.googleapis.com/google.protobuf.Struct)"
                ));
            }
        }
    }
    if let Some(g) = obj.get("generationConfig").and_then(Value::as_object) {
        for key in g.keys() {
            if !GENERATION_CONFIG.contains(&key.as_str()) {
                return Some(unknown_name("generation_config", key));
            }
        }
        if g.get("stopSequences")
            .and_then(Value::as_array)
            .is_some_and(|s| s.len() > 5)
        {
            return Some("* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences".into());
        }
    }
    for (i, t) in obj
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, d) in t
            .get("functionDeclarations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
            if !valid {
                return Some(format!(
                    "* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Invalid function name."
                ));
            }
            if let Some(p) = d.get("parameters")
                && let Err(m) = check_schema(
                    &format!("tools[{i}].function_declarations[{j}].parameters"),
                    p,
                )
            {
                return Some(m);
            }
        }
    }
    None
}

/// What Vertex refuses in a Claude `rawPredict` body (Anthropic's own error message), if anything:
/// a missing `anthropic_version` (the platform's is `vertex-2023-10-16`; the `anthropic` SDK
/// sends a dated one of its own, which Vertex takes too), `model` in a prediction body, no
/// `model` in a token count.
pub fn refuse_claude_body(body: &Value, count_tokens: bool) -> Option<String> {
    let obj: &Map<String, Value> = body.as_object()?;
    match obj.get("anthropic_version").and_then(Value::as_str) {
        Some(v) if !v.trim().is_empty() => {}
        _ => return Some("anthropic_version: field required".into()),
    }
    if !count_tokens && obj.contains_key("model") {
        return Some("model: Extra inputs are not permitted".into());
    }
    if count_tokens && !obj.contains_key("model") {
        return Some("model: field required".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse_path("/v1beta/models/gemini-2.5-pro:streamGenerateContent").unwrap();
        assert_eq!(
            (p.service, p.model.as_str(), p.method),
            (
                Service::GeminiApi,
                "gemini-2.5-pro",
                Method::StreamGenerateContent
            )
        );
        let p = parse_path("/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict").unwrap();
        assert_eq!(
            (p.project.as_str(), p.location.as_str(), p.model.as_str()),
            ("my-project", "us-east5", "claude-sonnet-4@20250514")
        );
        assert_eq!(p.method, Method::StreamRawPredict);
        let p = parse_path(
            "/v1/projects/p/locations/global/publishers/anthropic/models/count-tokens:rawPredict",
        )
        .unwrap();
        assert_eq!(p.method, Method::ClaudeCountTokens);
        assert!(parse_path("/v1/chat/completions").is_none());
        assert!(
            parse_path("/v1/projects/p/locations/l/publishers/meta/models/llama:rawPredict")
                .is_none()
        );
    }

    #[test]
    fn refusals() {
        let ok = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
        assert_eq!(refuse_body(Service::Vertex, &ok), None);
        let no_role = json!({"contents": [{"parts": [{"text": "hi"}]}]});
        assert!(refuse_body(Service::Vertex, &no_role).is_some());
        assert_eq!(refuse_body(Service::GeminiApi, &no_role), None);
        let schema = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}}]}]});
        assert!(
            refuse_body(Service::GeminiApi, &schema)
                .unwrap()
                .contains("additionalProperties")
        );
        let id = json!({"contents": [{"role": "model", "parts": [{"functionCall": {"id": "x", "name": "f", "args": {}}}]}]});
        assert!(refuse_body(Service::Vertex, &id).is_some());
        assert_eq!(refuse_body(Service::GeminiApi, &id), None);
        assert_eq!(
            refuse_claude_body(
                &json!({"anthropic_version": "vertex-2023-10-16", "messages": []}),
                false
            ),
            None
        );
        assert!(
            refuse_claude_body(
                &json!({"anthropic_version": "vertex-2023-10-16", "model": "m"}),
                false
            )
            .is_some()
        );
        assert!(refuse_claude_body(&json!({"model": "m"}), true).is_some());
    }

    #[test]
    fn streams_end_with_the_finish_reason_and_usage() {
        let usage = Usage {
            input: 10,
            output: 3,
            cached: 4,
        };
        let chunks = stream_chunks("gemini-2.5-pro", &Reply::Text("a b c".into()), usage);
        assert_eq!(chunks.len(), 3);
        let last = chunks.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["usageMetadata"]["promptTokenCount"], 14);
        assert_eq!(last["usageMetadata"]["cachedContentTokenCount"], 4);
        assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
    }
}
