//! The `Mock` provider speaking Google's formats: the answer Gemini (the
//! Gemini API or Vertex) or Claude on Vertex would give to a request body,
//! in its exact framing, so a Mock backend can stand in for them offline
//! and the gateway's Gemini decoding runs on real bytes (issue 14 §1: the
//! Mock emulates every provider's wire format): a Mock backend with
//! `mock.emulate: VertexAI` or `Gemini` answers through it
//! ([`crate::providers::vertex`], [`crate::providers::gemini`]), errors and
//! `countTokens` included.
//!
//! It is the Anthropic mock ([`crate::wire::mock::respond`]) behind two
//! small converters: a `generateContent` body is read as an Anthropic
//! request (text parts, function calls and responses; other parts are
//! ignored, which the echo does not need), and the Anthropic answer is
//! written as a `generateContent` answer, or as the `alt=sse` events of
//! `streamGenerateContent` (text deltas, each function call whole in one
//! event, the last event with `finishReason` and the cumulative usage). A
//! Claude body on Vertex is already an Anthropic request (without `model`).
//! Azure OpenAI is OpenAI's format: the OpenAI mock answers it as it is.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::translate::TranslateError;
use crate::translate::gemini::ids;
use crate::wire::Dialect;
use crate::wire::mock::{MockReply, MockResponse, respond};
use crate::wire::sse::SseParser;

/// A `generateContent` body as the Anthropic request the mock answers.
fn to_messages(body: &Value, model: &str, stream: bool) -> Result<Value, TranslateError> {
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::invalid("contents", "contents is not specified"))?;
    let mut messages = Vec::new();
    for (i, c) in contents.iter().enumerate() {
        let role = match c.get("role").and_then(Value::as_str) {
            Some("model") => "assistant",
            _ => "user",
        };
        let mut blocks = Vec::new();
        for (j, p) in c
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                if !t.is_empty() && p.get("thought") != Some(&json!(true)) {
                    blocks.push(json!({"type": "text", "text": t}));
                }
            } else if let Some(f) = p.get("functionCall") {
                let name = f["name"].as_str().unwrap_or_default();
                blocks.push(
                    json!({"type": "tool_use", "id": format!("call_{i}_{j}"), "name": name,
                    "input": f.get("args").cloned().unwrap_or(json!({}))}),
                );
            } else if let Some(f) = p.get("functionResponse") {
                blocks.push(
                    json!({"type": "tool_result", "tool_use_id": format!("call_{i}_{j}"),
                    "content": f.get("response").map(Value::to_string).unwrap_or_default()}),
                );
            }
        }
        if !blocks.is_empty() {
            messages.push(json!({"role": role, "content": blocks}));
        }
    }
    let mut out =
        json!({"model": model, "max_tokens": 1024, "messages": messages, "stream": stream});
    let tools: Vec<Value> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|t| t.get("functionDeclarations").and_then(Value::as_array).cloned().unwrap_or_default())
        .map(|d| json!({"name": d["name"], "input_schema": d.get("parameters").cloned().unwrap_or(json!({"type": "object"}))}))
        .collect();
    if !tools.is_empty() {
        out["tools"] = Value::Array(tools);
        match body
            .pointer("/toolConfig/functionCallingConfig/mode")
            .and_then(Value::as_str)
        {
            Some("ANY") => out["tool_choice"] = json!({"type": "any"}),
            Some("NONE") => out["tool_choice"] = json!({"type": "none"}),
            _ => {}
        }
    }
    Ok(out)
}

fn usage_metadata(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("input_tokens") + n("cache_read_input_tokens");
    json!({"promptTokenCount": prompt, "candidatesTokenCount": n("output_tokens"),
        "totalTokenCount": prompt + n("output_tokens")})
}

fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        Some("max_tokens") => "MAX_TOKENS",
        Some("refusal") => "SAFETY",
        _ => "STOP",
    }
}

/// The Gemini part of an Anthropic content block.
fn part(block: &Value) -> Option<Value> {
    match block.get("type").and_then(Value::as_str)? {
        "text" => Some(json!({"text": block["text"]})),
        "tool_use" => Some(json!({
            "functionCall": {"name": block["name"], "args": block["input"]},
            "thoughtSignature": "bW9jay1zaWduYXR1cmU=",
        })),
        _ => None,
    }
}

fn chunk(
    model: &str,
    response_id: &str,
    parts: Vec<Value>,
    finish: Option<&str>,
    usage: &Value,
) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    json!({"candidates": [candidate], "usageMetadata": usage_metadata(usage),
        "modelVersion": model, "responseId": response_id})
}

/// Answers a `generateContent` body for `model`; `stream` is the operation
/// (`streamGenerateContent?alt=sse`). A body without `contents` is an error
/// (Google's 400 `INVALID_ARGUMENT`).
pub fn respond_gemini(
    body: &Value,
    model: &str,
    stream: bool,
    settings: &MockReply,
) -> Result<MockResponse, TranslateError> {
    let request = to_messages(body, model, stream)?;
    let response_id = ids::synthesize("mock", 0, model, body);
    match respond(Dialect::Anthropic, &request, settings) {
        MockResponse::Json(bytes) => {
            let m: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TranslateError::Upstream(e.to_string()))?;
            let parts: Vec<Value> = m["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(part)
                .collect();
            let out = chunk(
                model,
                &response_id,
                parts,
                Some(finish_reason(m["stop_reason"].as_str())),
                &m["usage"],
            );
            Ok(MockResponse::Json(Bytes::from(out.to_string())))
        }
        MockResponse::Sse(events) => {
            let mut parser = SseParser::default();
            let mut usage = Map::new();
            let mut tool: Option<(Value, String)> = None;
            let mut out = Vec::new();
            let mut emit = |v: Value| out.push(Bytes::from(format!("data: {v}\r\n\r\n")));
            for raw in events {
                for e in parser.feed(&raw).into_iter().flatten() {
                    let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                    match v["type"].as_str().unwrap_or_default() {
                        "message_start" => {
                            if let Some(u) = v.pointer("/message/usage").and_then(Value::as_object)
                            {
                                usage.extend(u.clone());
                            }
                        }
                        "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                            tool = Some((v["content_block"].clone(), String::new()));
                        }
                        "content_block_delta" => match (&mut tool, v["delta"]["type"].as_str()) {
                            (Some((_, args)), Some("input_json_delta")) => {
                                args.push_str(
                                    v["delta"]["partial_json"].as_str().unwrap_or_default(),
                                );
                            }
                            (None, Some("text_delta")) => emit(chunk(
                                model,
                                &response_id,
                                vec![json!({"text": v["delta"]["text"]})],
                                None,
                                &Value::Object(usage.clone()),
                            )),
                            _ => {}
                        },
                        "content_block_stop" => {
                            if let Some((mut block, args)) = tool.take() {
                                block["input"] = serde_json::from_str(&args).unwrap_or(json!({}));
                                emit(chunk(
                                    model,
                                    &response_id,
                                    part(&block).into_iter().collect(),
                                    None,
                                    &Value::Object(usage.clone()),
                                ));
                            }
                        }
                        "message_delta" => {
                            if let Some(u) = v["usage"].as_object() {
                                usage.extend(u.clone());
                            }
                            let finish = finish_reason(v["delta"]["stop_reason"].as_str());
                            emit(chunk(
                                model,
                                &response_id,
                                vec![json!({"text": ""})],
                                Some(finish),
                                &Value::Object(usage.clone()),
                            ));
                        }
                        _ => {}
                    }
                }
            }
            Ok(MockResponse::Sse(out))
        }
    }
}

/// Answers a Claude `rawPredict` / `streamRawPredict` body on Vertex for
/// `model` (Anthropic's answer as it is).
pub fn respond_vertex_claude(
    body: &Value,
    model: &str,
    stream: bool,
    settings: &MockReply,
) -> Result<MockResponse, TranslateError> {
    let mut request = body
        .as_object()
        .cloned()
        .ok_or_else(|| TranslateError::invalid("body", "must be a JSON object"))?;
    if request.remove("anthropic_version").is_none() {
        return Err(TranslateError::invalid(
            "anthropic_version",
            "field required",
        ));
    }
    request.insert("model".into(), json!(model));
    request.insert("stream".into(), json!(stream));
    Ok(respond(
        Dialect::Anthropic,
        &Value::Object(request),
        settings,
    ))
}

/// Google's canonical status name of an HTTP error status.
pub fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// Google's error body for `status` with `message`
/// (`{"error": {"code", "message", "status"}}`), as Gemini and Vertex send
/// it (also for Claude models when the quota or the service refuses).
pub fn error_body(status: u16, message: &str) -> Bytes {
    Bytes::from(
        json!({"error": {"code": status, "message": message, "status": status_name(status)}})
            .to_string(),
    )
}

/// Answers a `countTokens` body (Vertex's top-level `contents`, or the
/// Gemini API's `generateContentRequest`): `{"totalTokens": N}` with the
/// Anthropic mock's estimate of the text.
pub fn respond_count_tokens(body: &Value) -> Result<Bytes, TranslateError> {
    let inner = body.get("generateContentRequest").unwrap_or(body);
    let request = to_messages(inner, "count", false)?;
    let n = crate::wire::mock::count_tokens(&request);
    Ok(Bytes::from(json!({"totalTokens": n}).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ApiFormat;
    use crate::translate::gemini::{self, GeminiOptions};

    /// The gateway's own Gemini request, answered by the mock, translated back.
    #[test]
    fn the_gateways_requests_are_answered_in_geminis_framing() {
        let chat = json!({"model": "g", "messages": [{"role": "user", "content": "hello there"}], "stream": true,
            "stream_options": {"include_usage": true}});
        let req = gemini::request(
            ApiFormat::ChatCompletions,
            &chat,
            "gemini-2.5-pro",
            &GeminiOptions::default(),
            0,
        )
        .unwrap();
        let MockResponse::Json(json) =
            respond_gemini(&req.body, "gemini-2.5-pro", false, &MockReply::default()).unwrap()
        else {
            panic!("not JSON")
        };
        let answer: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(answer["candidates"][0]["finishReason"], "STOP");
        let out =
            gemini::response(ApiFormat::ChatCompletions, &answer, &req, "gemini-2.5-pro").unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "echo: hello there");

        let MockResponse::Sse(events) =
            respond_gemini(&req.body, "gemini-2.5-pro", true, &MockReply::default()).unwrap()
        else {
            panic!("not SSE")
        };
        let wire: Vec<u8> = events.concat();
        let mut t = gemini::stream_translator(ApiFormat::ChatCompletions, &req, "gemini-2.5-pro");
        let mut client = Vec::new();
        for e in SseParser::default().feed(&wire) {
            t.event(&e.unwrap(), &mut client);
        }
        let text = String::from_utf8(client).unwrap();
        assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
        assert!(text.contains("\"prompt_tokens\""), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    }

    #[test]
    fn tool_calls_come_whole_with_a_signature() {
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "weather in Paris?"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}]});
        for stream in [false, true] {
            let text = match respond_gemini(&body, "gemini-2.5-pro", stream, &MockReply::default())
                .unwrap()
            {
                MockResponse::Json(b) => String::from_utf8(b.to_vec()).unwrap(),
                MockResponse::Sse(e) => String::from_utf8(e.concat()).unwrap(),
            };
            assert!(
                text.contains("\"functionCall\":{\"args\":{},\"name\":\"get_weather\"}"),
                "{text}"
            );
            assert!(text.contains("thoughtSignature"), "{text}");
        }
        assert!(respond_gemini(&json!({}), "m", false, &MockReply::default()).is_err());
    }

    #[test]
    fn errors_and_token_counts_in_googles_shape() {
        let e: Value = serde_json::from_slice(&error_body(429, "quota")).unwrap();
        assert_eq!(
            e,
            json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
        );
        assert_eq!(status_name(503), "UNAVAILABLE");
        let contents = json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]});
        let vertex: Value =
            serde_json::from_slice(&respond_count_tokens(&contents).unwrap()).unwrap();
        let api: Value = serde_json::from_slice(
            &respond_count_tokens(&json!({"generateContentRequest": contents})).unwrap(),
        )
        .unwrap();
        assert!(vertex["totalTokens"].as_u64().unwrap() > 0);
        assert_eq!(vertex, api);
        assert!(respond_count_tokens(&json!({})).is_err());
    }

    #[test]
    fn claude_on_vertex_is_the_anthropic_mock() {
        let body = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
        let MockResponse::Json(b) = respond_vertex_claude(
            &body,
            "claude-sonnet-4@20250514",
            false,
            &MockReply::default(),
        )
        .unwrap() else {
            panic!("not JSON")
        };
        let m: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(m["content"][0]["text"], "echo: hi");
        assert!(
            respond_vertex_claude(&json!({"messages": []}), "m", false, &MockReply::default())
                .is_err()
        );
    }
}
