//! Whole (non-streaming) answers between the dialects (§3.3).

use serde_json::{Value, json};

use super::mapping::{
    anthropic_usage, finish_reason_from_anthropic, openai_usage, stop_reason_from_openai,
    usage_from_openai,
};
use super::{Session, TranslateError};
use crate::wire::usage::Usage;

/// Anthropic message → OpenAI chat completion. Text blocks are joined into
/// `content`; `tool_use` blocks become `tool_calls` (names restored);
/// thinking becomes the non-standard `reasoning_content` with its signature
/// in `reasoning_signature`, which a client may echo back to keep thinking
/// replayable.
pub fn messages_to_chat(body: &Value, session: &Session) -> Result<Value, TranslateError> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Upstream("Anthropic message without content".into()))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut signature = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b["text"].as_str().unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(b["thinking"].as_str().unwrap_or_default());
                if let Some(s) = b["signature"].as_str() {
                    signature = s.to_string();
                }
            }
            Some("tool_use") => {
                let name = b["name"].as_str().unwrap_or_default();
                let args = serde_json::to_string(b.get("input").unwrap_or(&json!({})))
                    .map_err(|e| TranslateError::Upstream(e.to_string()))?;
                calls.push(json!({
                    "id": b["id"], "type": "function",
                    "function": {"name": session.tool_names.to_client(name), "arguments": args}
                }));
            }
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null,
        "annotations": []
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
        if !signature.is_empty() {
            message["reasoning_signature"] = json!(signature);
        }
    }
    let stop = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let usage = Usage::from_anthropic(body.get("usage").unwrap_or(&Value::Null));
    Ok(json!({
        "id": body.get("id").cloned().unwrap_or_else(|| json!("chatcmpl-switchboard")),
        "object": "chat.completion",
        "created": session.created,
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason_from_anthropic(stop), "logprobs": null}],
        "usage": openai_usage(&usage)
    }))
}

/// OpenAI chat completion → Anthropic message. `content` becomes one text
/// block; `tool_calls` become `tool_use` blocks (arguments parsed, `""` is
/// `{}`, names restored); `reasoning_content` becomes a thinking block with
/// an empty signature (it cannot be replayed to Anthropic).
pub fn chat_to_messages(body: &Value, session: &Session) -> Result<Value, TranslateError> {
    let choice = body
        .pointer("/choices/0")
        .ok_or_else(|| TranslateError::Upstream("OpenAI completion without choices".into()))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(r) = message
        .get("reasoning_content")
        .or_else(|| message.get("reasoning"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    for key in ["content", "refusal"] {
        if let Some(t) = message
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            content.push(json!({"type": "text", "text": t}));
        }
    }
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for c in calls {
            let name = c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let args = c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
            let input = parse_arguments(args);
            content.push(json!({"type": "tool_use", "id": c["id"], "name": session.tool_names.to_client(name), "input": input}));
        }
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let usage = usage_from_openai(body.get("usage").unwrap_or(&Value::Null));
    Ok(json!({
        "id": body.get("id").cloned().unwrap_or_else(|| json!("msg_switchboard")),
        "type": "message",
        "role": "assistant",
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop_reason_from_openai(finish),
        "stop_sequence": null,
        "usage": anthropic_usage(&usage)
    }))
}

/// Tool arguments as an object: `""` is `{}`; text that is not JSON is kept
/// as a string so nothing is lost.
pub fn parse_arguments(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(args).unwrap_or_else(|_| json!(args))
}
